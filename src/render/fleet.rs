//! What only fleet-flavoured units have: a fleet cluster has no network unit
//! (each copy makes sure of the instance network on its machine, and
//! `destroy --fleet` runs a cleanup unit everywhere to remove it), places
//! copies with `[X-Fleet]`, and can only give a service its dependencies by
//! name where they run on the same machine.

use crate::escape::{sh_quote, systemd_value};
use crate::model::{Instance, Service};

use super::discovery;
use super::docker::DOCKER;

/// Lock file serialising network changes of one instance on one machine.
fn lock_file(network: &str) -> String {
    format!("/run/lock/unitgen-network-{network}.lock")
}

/// Makes sure this machine has exactly one network of the instance. Copies
/// of several services start at once (a `fleetctl start`, a reboot): without
/// the lock, each would see no network and create one, and Docker allows two
/// networks of one name, after which every `docker run --network NAME`
/// fails as ambiguous. Duplicates made earlier are repaired (see
/// [`one_network_lines`]). One statement per element (see
/// `escape::systemd_shell`).
pub fn ensure_network_script(instance: &Instance) -> Vec<String> {
    let (lock_and_list, keep_one) = one_network_lines(instance);
    let quoted = sh_quote(&instance.network());
    let mut script = lock_and_list;
    script.push(format!(
        "if [ -z \"$ids\" ]; then exec {DOCKER} network create --label unitgen.app={} --label unitgen.instance={} {quoted} >/dev/null; fi;",
        sh_quote(&instance.app),
        sh_quote(&instance.instance)
    ));
    script.extend(keep_one);
    script
}

/// The statements that make sure of one network of the instance, in two
/// parts around its creation: the machine's lock on the instance network's
/// changes (held until the script ends) and the IDs of the networks of its
/// name in `$ids`; then, of several, the empty extras removed (two in use
/// cannot be merged: that fails with a message saying so). The last
/// statement ends without `;`.
pub fn one_network_lines(instance: &Instance) -> (Vec<String>, Vec<String>) {
    let network = instance.network();
    let lock_and_list = vec![
        format!("exec 9>>{};", lock_file(&network)),
        format!(
            "flock --wait 60 9 || {{ echo 'no lock on network {network} after 60s' >&2; exit 1; }};"
        ),
        format!("{};", list_networks(instance)),
    ];
    let keep_one = vec![
        format!(
            "busy=$(for id in $ids; do if [ -n \"$({DOCKER} network inspect --format '{{{{range .Containers}}}}x{{{{end}}}}' $id)\" ]; then echo $id; fi; done);"
        ),
        format!(
            "if [ $(echo \"$busy\" | grep -c .) -gt 1 ]; then echo \"several Docker networks named {network} are in use (\"$busy\"): stop their containers and remove all but one\" >&2; exit 1; fi;"
        ),
        "keep=${busy:-$(echo \"$ids\" | head -n 1)};".into(),
        format!(
            "for id in $ids; do if [ \"$id\" != \"$keep\" ]; then echo \"removing a duplicate Docker network {network} ($id)\" >&2; {DOCKER} network rm $id >/dev/null; fi; done"
        ),
    ];
    (lock_and_list, keep_one)
}

/// The statement that puts the IDs of the networks of the instance's name
/// in `$ids` (without `;`).
pub fn list_networks(instance: &Instance) -> String {
    let quoted = sh_quote(&instance.network());
    format!(
        "ids=$({DOCKER} network ls --no-trunc --format '{{{{.ID}}}} {{{{.Name}}}}' | awk -v n={quoted} '$2 == n {{ print $1 }}')"
    )
}

/// Removes the instance network from this machine once no container of
/// the instance is left (waiting up to 2 minutes for those still
/// stopping), every copy of it if a race left several. Run by the cleanup
/// unit `destroy --fleet` starts on every machine.
pub fn cleanup_script(app: &str, instance: &str) -> Vec<String> {
    let network = crate::model::prefix(app, instance);
    let quoted = sh_quote(&network);
    vec![
        "n=0;".into(),
        format!(
            "while [ -n \"$({DOCKER} ps -aq --filter label=unitgen.app={} --filter label=unitgen.instance={})\" ]; do",
            sh_quote(app),
            sh_quote(instance)
        ),
        format!(
            "  n=$((n+1)); if [ $n -ge 120 ]; then echo 'containers of {network} still exist after 2 minutes: network kept' >&2; exit 1; fi;"
        ),
        "  sleep 1;".into(),
        "done;".into(),
        format!("exec 9>>{};", lock_file(&network)),
        format!(
            "flock --wait 60 9 || {{ echo 'no lock on network {network} after 60s' >&2; exit 1; }};"
        ),
        format!(
            "for id in $({DOCKER} network ls --no-trunc --format '{{{{.ID}}}} {{{{.Name}}}}' | awk -v n={quoted} '$2 == n {{ print $1 }}'); do"
        ),
        // Gone meanwhile (another machine on the same engine) is no failure.
        format!(
            "  {DOCKER} network rm $id >/dev/null || ! {DOCKER} network inspect $id >/dev/null 2>&1 || exit 1;"
        ),
        "done".into(),
    ]
}

/// How a copy of `service` gets its dependencies under fleet: unit names
/// to `Wants=`/`After=`, the unit it must share a machine with
/// (`[X-Fleet] MachineOf=`), and notes on what fleet cannot express.
///
/// A dependency announced in etcd is read from there (the copy waits for
/// it) and may run anywhere. Any other is reached by name on the instance
/// network, which exists per machine, so copy N of a service and copy N of
/// each such dependency must share a machine. Services linked that way form
/// a group, and copy N of every member is placed with copy N of the group's
/// anchor: its first service (in template order) that has no such
/// dependency itself. One anchor, rather than one `MachineOf=` per
/// dependency, keeps every group schedulable (two dependencies placed
/// independently would rarely share a machine).
pub struct Dependencies {
    pub units: Vec<String>,
    pub machine_of: Option<String>,
    pub notes: Vec<String>,
}

pub fn dependencies(instance: &Instance, service: &Service) -> Dependencies {
    let mut deps = Dependencies {
        units: Vec::new(),
        machine_of: None,
        notes: Vec::new(),
    };
    let copy = |name: &str| format!("{}@%i.service", instance.container(name));
    for name in &service.depends_on {
        if is_global(instance, name) {
            deps.notes.push(format!(
                "depends_on {name}: a global service, expected on every machine (not ordered)"
            ));
        } else if is_global(instance, &service.name) && by_name(instance, name) {
            deps.notes.push(format!(
                "depends_on {name}: fleet cannot place a global service with another \
                 (Global= excludes MachineOf=), so {name} is reached by name only where a \
                 copy of it runs on the same machine; announce it in etcd to find it anywhere"
            ));
        } else if by_name(instance, name) {
            deps.units.push(copy(name));
        }
    }
    let anchor = anchor(instance, &service.name);
    if anchor != service.name {
        deps.machine_of = Some(copy(&anchor));
    }
    deps
}

fn is_global(instance: &Instance, service: &str) -> bool {
    instance.fleet.global.iter().any(|g| g == service)
}

/// Whether a dependency is reached by name (not read from etcd).
fn by_name(instance: &Instance, dependency: &str) -> bool {
    let announced = instance.discovery.is_some()
        && instance
            .service(dependency)
            .is_some_and(|d| discovery::announced_port(d).is_some());
    !announced
}

/// The dependencies a service must share a machine with.
fn placed_with<'a>(instance: &'a Instance, service: &'a Service) -> impl Iterator<Item = &'a str> {
    service
        .depends_on
        .iter()
        .map(String::as_str)
        .filter(move |d| {
            !is_global(instance, &service.name)
                && !is_global(instance, d)
                && instance.service(d).is_some()
                && by_name(instance, d)
        })
}

/// The anchor of the group `service` belongs to (itself when alone).
fn anchor(instance: &Instance, service: &str) -> String {
    let mut group = vec![service.to_owned()];
    let mut grew = true;
    while grew {
        grew = false;
        for other in &instance.services {
            let linked = placed_with(instance, other).any(|d| group.iter().any(|g| g == d))
                || group.iter().any(|g| {
                    instance
                        .service(g)
                        .is_some_and(|g| placed_with(instance, g).any(|d| d == other.name))
                });
            if linked && !group.contains(&other.name) {
                group.push(other.name.clone());
                grew = true;
            }
        }
    }
    let members = instance.services.iter().filter(|s| group.contains(&s.name));
    members
        .clone()
        .find(|s| placed_with(instance, s).next().is_none())
        .or(members.clone().next())
        .map_or_else(|| service.to_owned(), |s| s.name.clone())
}

/// A service's `[X-Fleet]` lines: one copy per machine (or every machine,
/// for a global service), placed with the dependencies it must share a
/// machine with, on machines with the instance's metadata.
pub fn service_x_fleet(
    instance: &Instance,
    service: &str,
    machine_of: Option<&str>,
) -> Vec<String> {
    let mut lines: Vec<String> = machine_of
        .map(|u| format!("MachineOf={u}"))
        .into_iter()
        .collect();
    if instance.fleet.global.iter().any(|g| g == service) {
        lines.push("Global=true".to_string());
    } else {
        lines.push(format!(
            "Conflicts={}@*.service",
            instance.container(service)
        ));
    }
    lines.extend(metadata(instance));
    lines
}

/// A sidekick's `[X-Fleet]` lines: the machine of the copy it serves.
pub fn sidekick_x_fleet(instance: &Instance, service_copy: &str) -> Vec<String> {
    let mut lines = vec![format!("MachineOf={service_copy}")];
    lines.extend(metadata(instance));
    lines
}

fn metadata(instance: &Instance) -> impl Iterator<Item = String> + '_ {
    instance
        .fleet
        .metadata
        .iter()
        .map(|m| format!("MachineMetadata={}", systemd_value(m)))
}
