//! The few questions unitgen asks Docker directly (images to pull before an
//! apply, containers for `plan` and `status`, `destroy --volumes`), through
//! the `docker` CLI the units use too ([`DOCKER`]), in the Docker
//! environment the units get ([`environment`]).

pub mod environment;
pub mod run_args;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// Path of the Docker CLI: in every line of a unit (`Exec*=` lines and the
/// shell scripts in them alike) and in every call unitgen makes itself
/// ([`command`]). systemd wants absolute paths in `Exec*=`, and Debian's
/// `docker.io` and Docker's `docker-ce-cli` both install the CLI here. The
/// scripts name it too, rather than take `docker` from systemd's PATH, where
/// another one (a /usr/local/bin/docker of another version) would come
/// first: one client for the `docker run` and the readiness check that
/// judges it.
///
/// unitgen's own calls (pull, plan's and status's look at the containers,
/// exec, restore) use this path too, not the first `docker` on the user's
/// PATH: what unitgen checks must be what systemd runs. A PATH docker (a
/// wrapper, another version, Podman's shim) could see another engine or
/// answer otherwise, and `plan` would call a host up to date on the word of
/// a client its units never run. Not the other way round (units taking the
/// PATH docker unitgen finds): units are rendered for a host, often on
/// another machine (`render --out`, fleet), whose PATH unitgen cannot see.
pub const DOCKER: &str = "/usr/bin/docker";

/// A `docker` command, of the CLI the units run ([`DOCKER`]): once a
/// command has named the host it acts on ([`environment::follow`]), with
/// the `DOCKER_*` variables of that host's units instead of unitgen's own.
pub fn command() -> Command {
    let mut command = Command::new(DOCKER);
    if let Some(units) = environment::followed() {
        units.apply(&mut command);
    }
    command
}

/// A container as `docker inspect` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Container {
    pub id: String,
    pub image: String,
    pub status: String,
    pub started_at: String,
    /// `healthy`, `starting` or `unhealthy`; None without a healthcheck.
    pub health: Option<String>,
    /// The networks it is connected to.
    pub networks: Vec<String>,
    /// When Docker made it (RFC 3339, nanoseconds).
    #[serde(skip)]
    pub created: String,
    /// The settings `docker update` changes, as Docker records them now.
    #[serde(skip)]
    pub limits: Option<run_args::Limits>,
    /// The ID of the image it was created from (see [`IMAGE_ID_FORMAT`]).
    #[serde(skip)]
    pub image_id: String,
    /// Its command (`Config.Cmd`: the words after the image of its `docker
    /// run`, or the image's own); None when Docker did not say.
    #[serde(skip)]
    pub command: Option<Vec<String>>,
}

/// `docker inspect --format` of the ID of the image a container was
/// created from, as a JSON string. A container run from the image an
/// exec-form healthcheck is built into (see `render::docker::health_image`)
/// gives the ID of the service's own image, which that image records in a
/// label: JSON, as a label is any text (a tab or a line feed in one made
/// by hand would otherwise start a field or a container of its own).
const IMAGE_ID_FORMAT: &str = "{{with index .Config.Labels \"unitgen.base-image\"}}{{json .}}\
     {{else}}{{json .Image}}{{end}}";

/// `docker inspect --format` of a [`Container`], after its name. `index`:
/// a container without a healthcheck has no `Health` key, and naming a
/// missing key fails the whole template in Docker's inspect. Network names
/// are any text (`docker network create $'a,b\tc'`): each is a JSON
/// string.
const CONTAINER_FORMAT: &str = "{{.Name}}\t{{.Id}}\t{{.Config.Image}}\t{{.State.Status}}\t\
     {{.State.StartedAt}}\t{{with index .State \"Health\"}}{{.Status}}{{end}}\t\
     {{range $name, $_ := .NetworkSettings.Networks}}{{json $name}}{{end}}";

/// The container of that name, if one exists.
pub fn inspect(name: &str) -> Option<Container> {
    inspect_all(&[name.to_string()]).remove(name)
}

/// The containers of these names that exist, by name, in one `docker
/// inspect` (one engine call for all: status of an instance stays fast).
pub fn inspect_all(names: &[String]) -> HashMap<String, Container> {
    let format = format!(
        "{CONTAINER_FORMAT}\t{{{{.Created}}}}\t{IMAGE_ID_FORMAT}\t{}\t{{{{json .Config.Cmd}}}}",
        run_args::INSPECT_FORMAT
    );
    inspect_containers(names, &format)
        .into_iter()
        .filter_map(|(name, rest)| Some((name, container_of(&rest)?)))
        .collect()
}

/// A [`Container`] from the fields of its line of [`inspect_all`]'s
/// format, after its name.
fn container_of(fields: &str) -> Option<Container> {
    let mut fields = fields.split('\t');
    Some(Container {
        id: fields.next()?.chars().take(12).collect(),
        image: fields.next()?.to_string(),
        status: fields.next()?.to_string(),
        started_at: fields.next()?.to_string(),
        health: fields.next().filter(|h| !h.is_empty()).map(str::to_string),
        networks: json_strings(fields.next().unwrap_or_default()),
        created: fields.next().unwrap_or_default().to_string(),
        image_id: json_strings(fields.next().unwrap_or_default())
            .pop()
            .unwrap_or_default(),
        limits: fields.next().and_then(run_args::Limits::from_inspect),
        // (JSON: a tab or newline in it is escaped.)
        command: fields
            .next()
            .and_then(|json| serde_json::from_str(json).ok()),
    })
}

/// The JSON strings of `text`, written one after the other (Go's `json`
/// template function escapes every control character, so none holds a tab
/// or a line feed); those before anything else.
fn json_strings(text: &str) -> Vec<String> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<String>()
        .map_while(Result::ok)
        .collect()
}

/// One `docker inspect --type container` of all `names` with `format`,
/// which must start with `{{.Name}}\t`: each existing container's name and
/// the rest of its line. Docker exits 1 when some container is missing,
/// still listing the others; a docker that cannot run lists none.
fn inspect_containers(names: &[String], format: &str) -> Vec<(String, String)> {
    if names.is_empty() {
        return Vec::new();
    }
    let Ok(out) = command()
        .args(["inspect", "--type", "container", "--format", format])
        .args(names)
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once('\t')?;
            Some((name.trim_start_matches('/').to_string(), rest.to_string()))
        })
        .collect()
}

/// Removes named volumes; a volume that does not exist is not an error.
/// Returns the ones that could not be removed, with Docker's reason.
pub fn remove_volumes(names: &[String]) -> Vec<(String, String)> {
    let mut failed = Vec::new();
    for name in names {
        match command().args(["volume", "rm", name]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                let why = crate::diagnostic::quoted_output(&String::from_utf8_lossy(&out.stderr));
                if !why.contains("no such volume") {
                    failed.push((name.clone(), why));
                }
            }
            Err(e) => failed.push((name.clone(), format!("running {DOCKER}: {e}"))),
        }
    }
    failed
}

/// The ID of the image a reference names on this host (`docker image
/// inspect`); None when the host does not have it.
pub fn image_id(image: &str) -> Option<String> {
    inspect_image(image, "{{.Id}}")
}

/// `docker image inspect --format FORMAT` of one image; None when the host
/// does not have it.
fn inspect_image(reference: &str, format: &str) -> Option<String> {
    let out = command()
        .args(["image", "inspect", "--format", format, reference])
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !line.is_empty()).then_some(line)
}

/// Fetches an image from its registry. `Err` is Docker's own message.
pub fn pull(image: &str) -> Result<(), String> {
    match command().args(["pull", "--quiet", image]).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(crate::diagnostic::quoted_output(&String::from_utf8_lossy(
            &out.stderr,
        ))),
        Err(e) => Err(format!("running {DOCKER}: {e}")),
    }
}

/// The ID of the image each existing container (by name) was created
/// from (see [`IMAGE_ID_FORMAT`]), in one `docker inspect`; containers that
/// do not exist are left out.
pub fn container_image_ids(names: &[String]) -> HashMap<String, String> {
    inspect_containers(names, &format!("{{{{.Name}}}}\t{IMAGE_ID_FORMAT}"))
        .into_iter()
        .filter_map(|(name, json)| Some((name, json_strings(&json).pop()?)))
        .collect()
}

/// The ID of the image each reference names on this host, by reference, in
/// one `docker image inspect`; references the host has no image for are
/// left out.
pub fn image_ids(references: &[String]) -> HashMap<String, String> {
    inspect_images(references, "{{.Id}}")
}

/// The paths each image (by reference) declares as volumes (`VOLUME` in its
/// Dockerfile: redis's `/data`), in one `docker image inspect`; references
/// the host has no image for are left out.
pub fn image_volumes(references: &[String]) -> HashMap<String, Vec<String>> {
    (inspect_images(references, "{{json .Config.Volumes}}").into_iter())
        .map(|(reference, json)| {
            let declared: Option<std::collections::BTreeMap<String, serde_json::Value>> =
                serde_json::from_str(&json).unwrap_or_default();
            (
                reference,
                declared.unwrap_or_default().into_keys().collect(),
            )
        })
        .collect()
}

/// `docker image inspect --format FORMAT` of each reference, by reference,
/// in one call. Docker answers in the order asked, and skips a missing one:
/// then each is asked on its own (the lines no longer say which is which).
/// A format must give one line per image.
fn inspect_images(references: &[String], format: &str) -> HashMap<String, String> {
    if references.is_empty() {
        return HashMap::new();
    }
    let out = command()
        .args(["image", "inspect", "--format", format])
        .args(references)
        .output();
    if let Ok(out) = &out
        && out.status.success()
    {
        let lines: Vec<String> = (String::from_utf8_lossy(&out.stdout).lines())
            .map(str::to_string)
            .collect();
        if lines.len() == references.len() {
            return references.iter().cloned().zip(lines).collect();
        }
    }
    std::thread::scope(|scope| {
        let asked: Vec<_> = (references.iter())
            .map(|reference| {
                scope.spawn(move || (reference.clone(), inspect_image(reference, format)))
            })
            .collect();
        (asked.into_iter())
            .filter_map(|asked| {
                let (reference, line) = asked.join().expect("docker image inspect does not panic");
                Some((reference, line?))
            })
            .collect()
    })
}

/// A running container, as `docker ps` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// `docker pause` froze it: it runs no code, but `docker ps` lists it.
    pub paused: bool,
    /// The networks it is connected to (`docker network disconnect` takes
    /// one away while it runs).
    pub networks: Vec<String>,
}

/// An instance's containers that Docker runs (found by the labels its
/// units give them), by name, in one call.
pub fn running_containers(app: &str, instance: &str) -> Result<HashMap<String, Running>, String> {
    let listed = run(
        "docker ps",
        &[
            "ps",
            "--filter",
            &format!("label=unitgen.app={app}"),
            "--filter",
            &format!("label=unitgen.instance={instance}"),
            "--format",
            // (Network names are any text: a line feed in one would list
            // a container of its own.)
            "{{.Names}}\t{{.State}}\t{{json .Networks}}",
        ],
    )?;
    Ok(listed
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next()?.to_owned();
            let paused = fields.next()? == "paused";
            let networks = json_strings(fields.next().unwrap_or_default());
            let networks = (networks.first().map_or("", String::as_str).split(','))
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect();
            Some((name, Running { paused, networks }))
        })
        .collect())
}

/// The names of Docker's volumes, in one call.
pub fn volumes() -> Result<Vec<String>, String> {
    let listed = run(
        "docker volume ls",
        &["volume", "ls", "--format", "{{.Name}}"],
    )?;
    Ok(listed.lines().map(str::to_owned).collect())
}

/// Of the volumes `names`, those that exist, each with when it was made
/// (microseconds since the epoch; None when Docker's time cannot be read),
/// in one call.
pub fn volumes_made(names: &[String]) -> Result<HashMap<String, Option<u64>>, String> {
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let out = command()
        .args(["volume", "inspect", "--format", "{{.Name}}\t{{.CreatedAt}}"])
        .args(names)
        .output()
        .map_err(|e| format!("running docker volume inspect: {e}"))?;
    // It lists those that exist, and fails on the others.
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && !(stderr.lines()).all(|l| l.contains("No such volume")) {
        return Err(format!(
            "docker volume inspect failed: {}",
            crate::diagnostic::quoted_output(&stderr)
        ));
    }
    Ok((String::from_utf8_lossy(&out.stdout).lines())
        .filter_map(|line| line.split_once('\t'))
        .map(|(name, made)| (name.to_string(), crate::cli::when::parse_iso_micros(made)))
        .collect())
}

/// How the instance's network `name` differs from what its network unit
/// makes (`docker network create` with the instance's labels, Docker's
/// bridge driver, not internal, no IPv6, no options; the subnet is
/// Docker's to pick), in two calls: None when there is no network of the
/// name, else one phrase per difference (none: as made).
/// A network made again by hand under the name (`docker network rm`, then
/// `docker network create --internal`) lacks the labels; the unit's start
/// keeps any network of its name, so only a restart of it, which removes
/// the network once its services stopped, makes it again as it should be.
pub fn network_differences(
    name: &str,
    app: &str,
    instance: &str,
) -> Result<Option<Vec<String>>, String> {
    let listed = run(
        "docker network ls",
        &[
            "network",
            "ls",
            "--filter",
            &format!("name=^{name}$"),
            "--format",
            // A name and labels are any text: JSON strings, or a line
            // feed in a label would list a network of its own.
            "{{json .Name}}\t{{.Driver}}\t{{.Internal}}\t{{json (.Label \"unitgen.app\")}}\t\
             {{json (.Label \"unitgen.instance\")}}\t{{.IPv6}}\t{{.ID}}",
        ],
    )?;
    let text = |json: &str| json_strings(json).pop().unwrap_or_default();
    let listed: Vec<Vec<String>> = (listed.lines())
        .map(|line| {
            let mut fields: Vec<String> = line.split('\t').map(str::to_string).collect();
            for i in [0, 3, 4] {
                if let Some(field) = fields.get_mut(i) {
                    *field = text(field);
                }
            }
            fields
        })
        .filter(|fields| fields.first().map(String::as_str) == Some(name))
        .collect();
    // Driver and IPAM options (`--opt com.docker.network.bridge.enable_icc=false`:
    // its containers cannot reach each other), which the unit sets none of.
    let ids: Vec<&str> = (listed.iter())
        .filter_map(|f| f.get(6).map(String::as_str))
        .collect();
    // (One removed since it was listed: nothing to tell of its options.)
    let options = network_options(&ids).unwrap_or_default();
    let seen: Vec<Vec<String>> = (listed.iter())
        .map(|fields| {
            let field = |i: usize| fields.get(i).map_or("", String::as_str);
            let mut differences = Vec::new();
            if (field(3), field(4)) != (app, instance) {
                differences.push("it has not the instance's labels".to_string());
            }
            if field(1) != "bridge" {
                differences.push(format!("driver {}, not bridge", field(1)));
            }
            if field(2) == "true" {
                differences.push("internal (no way out, no published port)".to_string());
            }
            if field(5) == "true" {
                differences.push("IPv6 enabled, which the unit does not ask for".to_string());
            }
            if let Some(set) = options.get(field(6)).filter(|set| !set.is_empty()) {
                differences.push(format!(
                    "option{} {}, which the unit does not set",
                    if set.len() == 1 { "" } else { "s" },
                    set.join(", ")
                ));
            }
            differences
        })
        .collect();
    // (Two of the name: the unit's next start keeps one, and says so.)
    Ok((!seen.is_empty()).then(|| {
        (seen.iter().find(|d| d.is_empty()))
            .unwrap_or(&seen[0])
            .clone()
    }))
}

/// The driver and IPAM options of each network (by ID), `key=value`
/// (an IPAM driver other than the default as `ipam driver=NAME`), in one
/// `docker network inspect`.
fn network_options(ids: &[&str]) -> Result<HashMap<String, Vec<String>>, String> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut args = vec![
        "network",
        "inspect",
        "--format",
        "{{.Id}}\t{{json .Options}}\t{{.IPAM.Driver}}\t{{json .IPAM.Options}}",
    ];
    args.extend(ids);
    let inspected = run("docker network inspect", &args)?;
    let map = |json: &str| -> Vec<String> {
        let map: Option<std::collections::BTreeMap<String, String>> =
            serde_json::from_str(json).unwrap_or_default();
        (map.unwrap_or_default().into_iter())
            .map(|(key, value)| format!("{key}={value}"))
            .collect()
    };
    Ok((inspected.lines())
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [id, options, ipam_driver, ipam_options] = fields[..] else {
                return None;
            };
            // (Newer Dockers may record their defaults for IP versions.)
            let defaults = [
                "com.docker.network.enable_ipv4=true",
                "com.docker.network.enable_ipv6=false",
            ];
            let mut set = map(options);
            set.retain(|option| !defaults.contains(&option.as_str()));
            if !matches!(ipam_driver, "default" | "") {
                set.push(format!("ipam driver={ipam_driver}"));
            }
            set.extend(map(ipam_options));
            // `ls` gives the ID cut to 12 characters.
            Some((id.chars().take(12).collect(), set))
        })
        .collect())
}

/// Those of `names` that are volumes on this host; all of them when
/// Docker cannot be asked (a listing must not hide data that may be there).
pub fn existing_volumes(names: &[String]) -> Vec<String> {
    match volumes() {
        Ok(listed) => (names.iter())
            .filter(|name| listed.contains(name))
            .cloned()
            .collect(),
        Err(_) => names.to_vec(),
    }
}

/// Removes containers by force (running or not); one that is already
/// gone is not an error.
fn remove_containers(names: &[String]) -> Result<(), String> {
    if names.is_empty() {
        return Ok(());
    }
    let mut args = vec!["rm", "--force"];
    args.extend(names.iter().map(String::as_str));
    match run("docker rm", &args) {
        Err(e) if !e.contains("No such container") => Err(e),
        _ => Ok(()),
    }
}

/// How long Docker may take to remove a container whose name is needed
/// (a `--rm` one's removal runs after its `docker run` has returned, on a
/// busy host).
pub const NAME_RELEASE: Duration = Duration::from_secs(30);

/// Frees container names for a `docker run --name`: removes the
/// containers holding them and waits until Docker has. `docker rm` returns
/// at once for a `--rm` container whose removal is already under way
/// ("removal … is already in progress"), and a removal that failed leaves
/// a `dead` container: either still holds the name, and the next `docker
/// run` of it fails ("Conflict. The container name … is already in use").
pub fn free_names(names: &[String], within: Duration) -> Result<(), String> {
    let started = Instant::now();
    let mut last_removal = None;
    loop {
        let held = inspect_containers(names, "{{.Name}}\t{{.State.Status}}");
        if held.is_empty() {
            return Ok(());
        }
        let holders: Vec<String> = held.iter().map(|(name, _)| name.clone()).collect();
        // Again each second: a removal that failed can succeed when asked again.
        if last_removal.is_none_or(|at: Instant| at.elapsed() >= Duration::from_secs(1)) {
            last_removal = Some(Instant::now());
            if let Err(e) = remove_containers(&holders)
                && !e.contains("already in progress")
            {
                return Err(e);
            }
        }
        if started.elapsed() >= within {
            let described: Vec<String> = (held.iter())
                .map(|(name, status)| format!("{name} ({status})"))
                .collect();
            return Err(format!(
                "Docker did not remove {} within {}s, and their names are needed",
                described.join(", "),
                within.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a process in `container` has `word` in its command line (`docker
/// top`); false when Docker cannot say.
pub fn runs_process_with(container: &str, word: &str) -> bool {
    command()
        .args(["top", container])
        .output()
        .is_ok_and(|out| {
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains(word)
        })
}

/// Removes images by reference, in one call; one that does not exist is
/// not an error. (An image that other tags name too only loses this one.)
pub fn remove_images(references: &[String]) -> Result<(), String> {
    if references.is_empty() {
        return Ok(());
    }
    let mut args = vec!["image", "rm"];
    args.extend(references.iter().map(String::as_str));
    match run("docker image rm", &args) {
        Err(e) if (e.lines()).any(|l| !l.is_empty() && !l.contains("No such image")) => Err(e),
        _ => Ok(()),
    }
}

/// Resumes a container `docker pause` froze.
pub fn unpause(container: &str) -> Result<(), String> {
    run(
        &format!("docker unpause {container}"),
        &["unpause", container],
    )
    .map(drop)
}

/// Why the engine the units use does not answer, if it does not: the
/// docker CLI's own words, which name the address it tried ("Cannot
/// connect to the Docker daemon at unix:///var/run/docker.sock. Is the
/// docker daemon running?").
pub fn engine_unreachable() -> Option<String> {
    let out = command()
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match out {
        Err(e) => Some(format!("running {DOCKER}: {e}")),
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(crate::diagnostic::shown(
            String::from_utf8_lossy(&out.stderr).trim(),
        )),
    }
}

/// The docker CLI's standard output, or why it failed: `what` (the
/// command, as messages name it) and Docker's own message.
fn run(what: &str, args: &[&str]) -> Result<String, String> {
    let out = command()
        .args(args)
        .output()
        .map_err(|e| format!("running {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            crate::diagnostic::quoted_output(&String::from_utf8_lossy(&out.stderr))
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Docker refuses to start a container with more `--cpus` than the host
/// has ("Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs
/// available"), as docker-compose's `up` then fails: the template is
/// wrong for this host, so `plan` and `apply` refuse it before anything
/// changes, where it is written. Counted as the CPUs online: Docker counts
/// those its daemon may run on, never more, so this refuses only what
/// Docker would. Nothing is refused when the host does not say.
pub fn check_cpus_on_this_host(instance: &crate::model::Instance) -> crate::diagnostic::Problems {
    let mut problems = crate::diagnostic::Problems::default();
    let Some(online) = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|list| count_cpu_list(&list))
    else {
        return problems;
    };
    for service in &instance.services {
        let (Some(cpus), Some(at)) = (&service.cpus, &service.cpus_at) else {
            continue;
        };
        if cpus.parse::<f64>().is_ok_and(|n| n > f64::from(online)) {
            problems.push(
                crate::diagnostic::Problem::new(format!(
                    "service `{}` asks for {cpus} CPUs, and this host has {online}: Docker would refuse to start it",
                    service.name
                ))
                .at(at)
                .label("cpus")
                .help(format!("give it at most {online} here, or run the instance on a host with more CPUs")),
            );
        }
    }
    problems
}

/// The number of CPUs in a kernel CPU list (`0-3,6,8-9`).
fn count_cpu_list(list: &str) -> Option<u32> {
    let mut count = 0;
    for part in list.trim().split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let (first, last): (u32, u32) = (first.parse().ok()?, last.parse().ok()?);
        count += last.checked_sub(first)? + 1;
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    /// Found in hostile values round 9: network names and labels are any
    /// text (`docker network create $'a,b\tc'`), and were read as they
    /// were between tabs: a tab shifted the fields after it, a comma split
    /// a name in two, and a line feed (in a label of a container made by
    /// hand) started a line that `docker inspect` seemed to give for
    /// another container. As JSON strings they are one field each.
    #[test]
    fn names_and_labels_docker_reads_back_are_one_field_each() {
        let line = "abcdef0123456789\tbusybox:1\trunning\t2026-01-01T00:00:00Z\t\t\
                    \"a,b\\tc\\nshop-live-db\\u0009x\"\"shop-live\"\t2026-01-01T00:00:00Z\t\
                    \"sha256:1\\nshop-live-db\\tsha256:0\"\t0 0 0 0 0 0 0 0 0 0 0 0 no cpus= mems=\t\
                    [\"sleep\",\"1\"]";
        let container = super::container_of(line).unwrap();
        assert_eq!(container.networks, ["a,b\tc\nshop-live-db\tx", "shop-live"]);
        assert_eq!(container.image_id, "sha256:1\nshop-live-db\tsha256:0");
        assert!(container.limits.is_some());
        assert_eq!(container.command.unwrap(), ["sleep", "1"]);
        assert_eq!(super::json_strings("\"sha256:2\""), ["sha256:2"]);
        assert_eq!(super::json_strings(""), [""; 0]);
    }

    #[test]
    fn a_cpu_list_is_counted_as_the_kernel_writes_it() {
        assert_eq!(super::count_cpu_list("0-1\n"), Some(2));
        assert_eq!(super::count_cpu_list("0-3,6,8-9"), Some(7));
        assert_eq!(super::count_cpu_list("0"), Some(1));
        assert_eq!(super::count_cpu_list(""), None);
        assert_eq!(super::count_cpu_list("3-1"), None);
    }
}
