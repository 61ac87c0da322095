//! What the host makes of an instance's installed units, for `plan` and
//! `apply` to compare with the template: systemd's view of each unit
//! (enabled, loaded as on disk, running, drop-ins), Docker's of each
//! container (running, paused, on the instance network, its limits as the
//! unit asks, made by its unit) and of containers of the instance that no
//! unit runs, the named volumes a stopped service's start would make empty,
//! the kept services whose image tag moved (see [`crate::pull`]), and,
//! after an interrupted apply, which units may still run the configuration
//! from before it.

use crate::docker::{self, Container, run_args};
use crate::model::route::{ROUTER_UNIT, router_container};
use std::collections::HashMap;
use std::path::Path;

use crate::plan::{LinksDiffer, Moved, Observation, Observed, Plan};
use crate::render::{self, UnitFile};
use crate::state::Intent;
use crate::systemd::converge::Host;
use crate::systemd::{Error, Systemd};

/// Whether `file` was written after `since` (µs since the epoch).
fn written_since(file: &std::path::Path, since: u64) -> bool {
    std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .is_some_and(|t| t.as_micros() > u128::from(since))
}

/// The enablement links of the host (see [`Host::link_dirs`]), by the
/// unit they link: the folders (`T.wants`, `T.requires`, `T.upholds`) that
/// hold a link of its name, or a link of another name (an alias) that
/// leads to its file. A folder in the runtime directory (`systemctl enable
/// --runtime`, a link put in `/run/systemd/system` by hand) is named with
/// that directory (`/run/systemd/system/multi-user.target.wants`): systemd
/// reads it as well, until a reboot. One read of each folder for all units.
pub fn enablement_links(host: &Host) -> HashMap<String, Vec<String>> {
    let mut links: HashMap<String, Vec<String>> = HashMap::new();
    for (dir, shown_as) in host.link_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !LINK_FOLDERS.iter().any(|kind| name.ends_with(kind)) {
                continue;
            }
            let folder = match &shown_as {
                Some(runtime) => format!("{runtime}/{name}"),
                None => name,
            };
            for link in std::fs::read_dir(entry.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let unit = link.file_name().to_string_lossy().into_owned();
                let leads_to = linked_file_name(host.root.as_deref(), &link.path());
                for unit in std::iter::once(unit.clone()).chain(leads_to.filter(|t| *t != unit)) {
                    let folders = links.entry(unit).or_default();
                    if !folders.contains(&folder) {
                        folders.push(folder.clone());
                    }
                }
            }
        }
    }
    links
}

/// The name of the file a link leads to, through links (an alias's: a
/// link of another name to the unit's file, or to another link to it);
/// absolute targets are on the host (under `root`). None when it is no
/// link, or leads nowhere within a few steps.
fn linked_file_name(root: Option<&Path>, link: &Path) -> Option<String> {
    let mut at = link.to_path_buf();
    for _ in 0..8 {
        let Ok(target) = std::fs::read_link(&at) else {
            return (at != link).then(|| at.file_name()?.to_str().map(str::to_owned))?;
        };
        at = match (target.is_absolute(), root) {
            (true, Some(root)) => crate::router::on_host(Some(root), &target),
            (true, None) => target,
            (false, _) => at.parent()?.join(target),
        };
    }
    None
}

/// The folders of the links an `[Install]` key makes, by key.
const INSTALL_KEYS: [(&str, &str); 3] = [
    ("WantedBy", ".wants"),
    ("RequiredBy", ".requires"),
    ("UpheldBy", ".upholds"),
];
const LINK_FOLDERS: [&str; 3] = [".wants", ".requires", ".upholds"];

/// The link folders the `[Install]` section of `text` makes links in
/// (`WantedBy=x.target`: `x.target.wants`), sorted. None when a target is
/// named with a specifier (`%i`), which only systemd resolves.
pub fn install_folders(text: &str) -> Option<Vec<String>> {
    let mut folders: Vec<String> = Vec::new();
    let section = (text.lines())
        .skip_while(|line| line.trim() != "[Install]")
        .skip(1)
        .take_while(|line| !line.starts_with('['));
    for line in section {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let Some((_, suffix)) = INSTALL_KEYS.iter().find(|(k, _)| *k == key.trim()) else {
            continue;
        };
        // An empty assignment resets the list, as systemd reads it.
        if value.trim().is_empty() {
            folders.retain(|folder| !folder.ends_with(suffix));
        }
        for target in value.split_whitespace() {
            if target.contains('%') {
                return None;
            }
            folders.push(format!("{target}{suffix}"));
        }
    }
    folders.sort();
    folders.dedup();
    Some(folders)
}

/// How the links of `unit` (`found`: the folders that hold one) differ
/// from those its file's `[Install]` section makes. None when they match,
/// or when it cannot be told (see [`install_folders`]).
pub fn links_differ(text: &str, found: &[String]) -> Option<LinksDiffer> {
    let wanted = install_folders(text)?;
    // A runtime link to a folder its file names wants nothing more (one
    // there alone leaves the unit `enabled-runtime`: not enabled).
    let in_folder = |folder: &String| folder.rsplit('/').next().unwrap_or(folder).to_string();
    let differ = LinksDiffer {
        missing: (wanted.iter())
            .filter(|folder| !found.iter().any(|f| f == *folder))
            .cloned()
            .collect(),
        extra: (found.iter())
            .filter(|folder| !wanted.contains(&in_folder(folder)))
            .cloned()
            .collect(),
    };
    (differ != LinksDiffer::default()).then_some(differ)
}

/// Observes every unit of `plan` that is installed and stays (kept or
/// changed) on `host`. `installed`: the unit files found on the host;
/// `intent`: the record of an apply that did not finish.
pub fn observe(
    systemd: &Systemd,
    host: &Host,
    installed: &[UnitFile],
    plan: &Plan,
    intent: Option<&Intent>,
) -> Result<Observation, Error> {
    // A template (`x@.service`, e.g. a failure hook) has no state of its
    // own: only its instances do, and systemd refuses to load it.
    let names: Vec<String> = (plan.keep.iter())
        .chain(plan.change.iter().map(|c| &c.new.name))
        .filter(|name| !name.contains("@."))
        .cloned()
        .collect();
    let manager_started = match intent {
        Some(_) => systemd.started_at()?,
        None => 0,
    };
    // All read at once, not unit by unit: a plan of a hundred units
    // otherwise waits for some two thousand answers one after the other,
    // each the slower for a systemd busy starting units.
    // The units to add, in the same call: one whose file was removed by
    // hand may still run what systemd loaded before.
    let adding: Vec<String> = (plan.add.iter())
        .map(|unit| unit.name.clone())
        .filter(|name| !name.contains("@.") && !plan.triggered.contains(name))
        .collect();
    let mut details = systemd.details(&[names.clone(), adding.clone()].concat())?;
    let running_without_file: Vec<String> = (adding.into_iter())
        .zip(details.split_off(names.len()))
        .filter(|(_, state)| !matches!(state.active_state.as_str(), "inactive" | "failed"))
        .map(|(name, _)| name)
        .collect();
    // A unit's own UnitFileState is what systemd read before its last
    // reload: a unit a killed destroy (or apply) disabled and did not
    // reload reads as enabled there. After one, read it from disk.
    let on_disk = match intent {
        Some(_) => Some(systemd.unit_file_states(&names)?),
        None => None,
    };
    // A link moved to another target by hand leaves the unit enabled to
    // systemd: its links are read from disk, all at once.
    let links = enablement_links(host);
    let mut observed = Vec::new();
    // (index in `observed`, owner, container name) of the running units
    // that run a container.
    let mut with_container = Vec::new();
    // (index in `observed`, network, app, instance) of the active network
    // unit.
    let mut network_unit = None;
    // (index in `observed`, what its `docker run` asks, when it became
    // active, when it stopped) of every unit that runs a container.
    let mut asked = Vec::new();
    // (unit, container, image) of the active kept units that run one
    // (oneshots' included: theirs stays, exited), for moved tags.
    let mut kept_images = Vec::new();
    // The instance's app and instance name, from any unit that runs a
    // container.
    let mut whose = None;
    // (container, unit) of the units that do not run their container now.
    let mut down_containers = Vec::new();
    for (at, (name, state)) in names.iter().zip(details).enumerate() {
        let is_active = state.active_state == "active";
        let old_configuration = is_active
            && intent.is_some_and(|intent| match intent.unreadable {
                // Which units it restarted is unknown: one whose file was
                // written since it started may run what was there before.
                Some(_) => written_since(&host.unit_dir.join(name), state.active_enter_timestamp),
                None => intent.may_run_old(name, state.active_enter_timestamp, manager_started),
            });
        let text = installed.iter().find(|u| &u.name == name).map(|u| &u.text);
        let owner = text.and_then(|text| render::owner(text));
        let links_differ = text
            .and_then(|text| links_differ(text, links.get(name).map_or(&[][..], Vec::as_slice)));
        if is_active
            && let Some(o) = owner.as_ref()
            && let Some(network) = o.network.clone()
        {
            network_unit = Some((observed.len(), network, o.app.clone(), o.instance.clone()));
        }
        // The host's router runs a container too, of no instance: replaced
        // by hand (other flags, image, ports) it is seen as a service's is.
        let is_router = name == ROUTER_UNIT;
        if is_router || owner.as_ref().is_some_and(|o| o.container().is_some()) {
            // What its `docker run` asks, as systemd runs it.
            asked.push((
                observed.len(),
                run_args::read(&state.exec_start),
                state.active_enter_timestamp,
                state.inactive_enter_timestamp,
            ));
        }
        if let Some(o) = owner.as_ref().filter(|o| o.container().is_some()) {
            whose.get_or_insert_with(|| (o.app.clone(), o.instance.clone()));
            if is_down(&state.active_state, &state.sub_state) && !plan.triggered.contains(name) {
                down_containers.push((o.container().unwrap_or_default(), name.clone()));
            }
        }
        if is_active
            && plan.keep.contains(name)
            && let Some(owner) = &owner
            && let (Some(container), Some(image)) = (owner.container(), owner.image.clone())
        {
            kept_images.push((name.clone(), container, image));
        }
        // A oneshot's container is done once the unit is active (exited).
        let container = match owner {
            _ if is_router => Some(router_container().to_string()),
            Some(owner) => owner.container(),
            None => None,
        };
        if is_active
            && state.sub_state == "running"
            && let Some(container) = container
        {
            with_container.push((observed.len(), container));
        }
        let not_done = text.is_some_and(|text| not_done(text, &state));
        let unit_file_state = match &on_disk {
            Some(on_disk) => on_disk[at].clone(),
            None => state.unit_file_state,
        };
        observed.push(Observed {
            unit: name.clone(),
            unit_file_state,
            need_daemon_reload: state.need_daemon_reload,
            active_state: state.active_state,
            sub_state: state.sub_state,
            drop_ins: state.drop_in_paths,
            loaded_from: host.loaded_elsewhere(name, &state.fragment_path),
            old_configuration,
            container_missing: not_done,
            container_paused: None,
            restore_reading: false,
            container_off_network: None,
            network_missing: None,
            network_differs: None,
            container_differs: Vec::new(),
            volumes_missing: Vec::new(),
            volumes_made_again: Vec::new(),
            links_differ,
        });
    }
    // A template's file state is read from disk: masked, no instance of it
    // starts (a backup's failure hook never runs).
    let templates: Vec<String> = (plan.keep.iter())
        .chain(plan.change.iter().map(|c| &c.new.name))
        .filter(|name| name.contains("@."))
        .cloned()
        .collect();
    for (unit, unit_file_state) in templates.iter().zip(systemd.unit_file_states(&templates)?) {
        observed.push(Observed {
            unit: unit.clone(),
            unit_file_state,
            active_state: "inactive".into(),
            sub_state: "dead".into(),
            ..Observed::default()
        });
    }
    // The network unit is a oneshot that stays active: its network removed
    // by hand (`docker network rm`) is not made again, and no service can
    // start; one made again by hand under its name (`docker network create
    // --internal`) is kept by its next start too. One question to Docker,
    // asked beside the others.
    let network_seen = |(_, network, app, instance): &(usize, String, String, String)| {
        docker::network_differences(network, app, instance)
    };
    let mut network = None;
    // Three questions to Docker, and only if some active unit runs (or
    // ran, a oneshot) a container: its containers, the instance's (for
    // strays), and the images the kept ones' references name now (for
    // moved tags; with the backup's helper images, for those gone).
    let mut stray_containers = Vec::new();
    let mut name_holders = Vec::new();
    let mut moved = Vec::new();
    let mut missing_images = Vec::new();
    if !with_container.is_empty() || !kept_images.is_empty() || !down_containers.is_empty() {
        let mut names: Vec<String> = with_container.iter().map(|(_, c)| c.clone()).collect();
        names.extend(
            (kept_images.iter())
                .map(|(_, container, _)| container.clone())
                .filter(|c| !with_container.iter().any(|(_, running)| running == c)),
        );
        names.extend(
            down_containers
                .iter()
                .map(|(container, _)| container.clone()),
        );
        let kept_units: Vec<UnitFile> = (installed.iter())
            .filter(|unit| plan.keep.contains(&unit.name))
            .cloned()
            .collect();
        let references: Vec<String> = (kept_images.iter())
            .map(|(_, _, image)| image.clone())
            .chain(crate::pull::helper_images(&kept_units))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        // They mostly wait for the engine: asked side by side.
        let (containers, running, named_now) = std::thread::scope(|scope| {
            // (The router alone is no instance's: none to list.)
            let listed = scope.spawn(|| {
                (whose.as_ref()).map(|(app, instance)| docker::running_containers(app, instance))
            });
            let named_now = scope.spawn(|| docker::image_ids(&references));
            let network_seen = scope.spawn(|| network_unit.as_ref().map(network_seen));
            let containers = docker::inspect_all(&names);
            network = network_seen
                .join()
                .expect("docker network ls does not panic");
            (
                containers,
                listed.join().expect("docker ps does not panic"),
                named_now
                    .join()
                    .expect("docker image inspect does not panic"),
            )
        });
        moved = (kept_images.into_iter())
            .filter(|(_, container, image)| {
                crate::pull::tag_moved(
                    containers.get(container).map(|c| c.image_id.as_str()),
                    named_now.get(image).map(String::as_str),
                )
            })
            .map(|(unit, _, image)| Moved { unit, image })
            .collect();
        // The images their next start needs that the host no longer has
        // (`docker rmi` of a running service's tag: its container keeps
        // its image by ID; a prune of the backup's helper). Told only when
        // the engine answered for some container: one that cannot be
        // asked names no image at all.
        if !containers.is_empty() {
            missing_images = (references.into_iter())
                .filter(|image| !named_now.contains_key(image))
                .collect();
        }
        let network = (whose.as_ref())
            .map(|(app, instance)| crate::model::prefix(app, instance))
            .unwrap_or_default();
        for (index, name) in &with_container {
            let (args, started) = match asked.iter().find(|(i, ..)| i == index) {
                // The router's unit (`Type=exec`) is active before its
                // `docker run` makes the container: when is no clue.
                Some((_, args, _, _)) if observed[*index].unit == ROUTER_UNIT => (args.as_ref(), 0),
                Some((_, args, started, _)) => (args.as_ref(), *started),
                None => (None, 0),
            };
            let seen = &mut observed[*index];
            see_container(seen, name, containers.get(name), args, started, &network);
        }
        let running = (running.transpose()).map_err(|e| {
            Error::new("listing the instance's containers", zbus::Error::Failure(e))
        })?;
        let down: Vec<&str> = (observed.iter())
            .filter(|o| is_down(&o.active_state, &o.sub_state))
            .map(|o| o.unit.as_str())
            .collect();
        // Those systemd runs without their file run their own container.
        let run_by: Vec<UnitFile> = (installed.iter().cloned())
            .chain(
                (plan.add.iter())
                    .filter(|unit| running_without_file.contains(&unit.name))
                    .cloned(),
            )
            .collect();
        stray_containers = strays(
            running.into_iter().flat_map(|r| r.into_keys()),
            &run_by,
            &down,
        );
        // Any container of such a name, running or not, labelled or not:
        // its unit's `docker run --name` would fail on it.
        name_holders = (down_containers.into_iter())
            .filter(|(container, _)| {
                containers.contains_key(container) && !stray_containers.contains(container)
            })
            .collect();
    }
    // A service that does not run makes the named volumes it mounts at its
    // start: one removed meanwhile (`docker volume rm`, `docker volume
    // prune` while it was stopped) comes back empty, and one made again
    // since it stopped is not the one it ran with. One question to
    // Docker, only if such a service mounts one.
    let stopped: Vec<(usize, Vec<String>, u64)> = (asked.iter())
        .filter(|(index, ..)| observed[*index].active_state != "active")
        .filter_map(|(index, args, _, stopped)| {
            Some((*index, args.as_ref()?.named_volumes.clone(), *stopped))
        })
        .filter(|(_, volumes, _)| !volumes.is_empty())
        .collect();
    if !stopped.is_empty() {
        let named: Vec<String> = (stopped.iter())
            .flat_map(|(_, volumes, _)| volumes.iter().cloned())
            .collect();
        let volumes = docker::volumes_made(&named)
            .map_err(|e| Error::new("reading Docker's volumes", zbus::Error::Failure(e)))?;
        for (index, named, stopped) in stopped {
            let seen = &mut observed[index];
            seen.volumes_missing = (named.iter())
                .filter(|v| !volumes.contains_key(*v))
                .cloned()
                .collect();
            seen.volumes_made_again = made_since(&named, &volumes, stopped);
        }
    }
    let on_network: Vec<String> = match &network_unit {
        Some((_, network, ..)) => (asked.iter())
            .filter(|(_, args, ..)| args.as_ref().is_some_and(|a| a.networks.contains(network)))
            .map(|(index, ..)| observed[*index].unit.clone())
            .collect(),
        None => Vec::new(),
    };
    // (Asked here when no container was.)
    if let Some((index, network_name, app, instance)) = network_unit {
        let seen = match network {
            Some(seen) => seen,
            None => network_seen(&(index, network_name.clone(), app, instance)),
        };
        match seen.map_err(|e| {
            Error::new(
                "looking for the instance's network",
                zbus::Error::Failure(e),
            )
        })? {
            None => observed[index].network_missing = Some(network_name),
            Some(differences) if !differences.is_empty() => {
                observed[index].network_differs = Some((network_name, differences));
            }
            Some(_) => {}
        }
    }
    Ok(Observation {
        units: observed,
        stray_containers,
        moved,
        missing_images,
        running_without_file,
        name_holders,
        on_network,
    })
}

/// Whether a service unit that is done when its container exits 0 (see
/// `render::docker::done_when_exited`) is active (exited) with its `docker
/// run` ended otherwise: a status its `SuccessExitStatus=` counts clean (the
/// container stopped by hand, `docker stop`), not done. Its container does
/// not run, as it should.
pub fn not_done(text: &str, state: &crate::systemd::UnitDetails) -> bool {
    state.active_state == "active"
        && state.sub_state == "exited"
        && state.exec_main_ended != (1, 0)
        && render::docker::done_when_exited(text)
}

/// Whether a restore that did not finish (its record's `dumps`: the
/// services it fed a dump) still reads one into the service `seen` is, of
/// the unit `text`: its container runs, and the restore command in it
/// (`backup::restore::READER`) too (see [`Observed::restore_reading`]).
/// `plan` and `status` both ask it here, so they cannot disagree.
pub fn restore_still_reading(seen: &Observed, text: &str, dumps: &[String]) -> bool {
    let Some(owner) = render::owner(text) else {
        return false;
    };
    seen.active_state == "active"
        && seen.sub_state == "running"
        && (owner.service.as_ref()).is_some_and(|service| dumps.contains(service))
        && (owner.container())
            .is_some_and(|name| docker::runs_process_with(&name, crate::backup::restore::READER))
}

/// Whether a unit in this state does not run its container: stopped,
/// failed, or waiting out `RestartSec=` after its `docker run` ended (its
/// `ExecStopPost=` removed the container). A container of its name then is
/// not its own.
pub fn is_down(active_state: &str, sub_state: &str) -> bool {
    matches!(active_state, "inactive" | "failed") || sub_state == "auto-restart"
}

/// Of the instance's running containers (found by its labels), those no
/// installed unit runs, sorted: started by hand, or left by a unit removed
/// without systemd; on the instance network under a service's alias, they
/// answer for it. One under the name of a service whose unit is `down`
/// (stopped, or failed: its `docker run` ended) is not its unit's either
/// (`docker rm -f`, then `docker run --name` by hand), and would make the
/// unit's start fail on its name.
pub fn strays(
    running: impl IntoIterator<Item = String>,
    installed: &[UnitFile],
    down: &[&str],
) -> Vec<String> {
    let ours: Vec<String> = (installed.iter())
        .filter(|u| !down.contains(&u.name.as_str()))
        .filter_map(|u| render::owner(&u.text)?.container())
        .collect();
    let mut strays: Vec<String> = (running.into_iter())
        .filter(|name| !ours.contains(name))
        .collect();
    strays.sort();
    strays
}

/// Of a stopped service's named volumes (`volumes`: those that exist, with
/// when each was made), those made after it `stopped` (microseconds since
/// the epoch; 0: not since its manager started, when nothing is told).
/// Docker counts a volume's time in whole seconds: one made in the second
/// the service stopped is not told.
pub fn made_since(
    named: &[String],
    volumes: &std::collections::HashMap<String, Option<u64>>,
    stopped: u64,
) -> Vec<String> {
    (named.iter())
        .filter(|v| {
            let made = volumes.get(*v).copied().flatten();
            stopped > 0 && made.is_some_and(|made| made > stopped)
        })
        .cloned()
        .collect()
}

/// What the container `name` of a running service unit tells of it
/// (`plan` and `status` both read it so): gone or stopped, paused (`docker
/// pause`: listed as up, answers nothing), disconnected from the instance
/// `network` when its unit asks for no other (`network_mode`) — it runs,
/// but the instance's other services cannot reach it, nor it them —, or
/// not as its unit's `docker run` (`args`; the unit active since
/// `started`) asks ([`differences`]).
pub fn see_container(
    seen: &mut Observed,
    name: &str,
    container: Option<&Container>,
    args: Option<&run_args::RunArgs>,
    started: u64,
    network: &str,
) {
    let on_instance_network = args.is_none_or(|args| args.networks.iter().all(|n| n == network));
    match container {
        Some(c) if c.status == "paused" => seen.container_paused = Some(name.to_string()),
        Some(c) if c.status != "running" => seen.container_missing = true,
        None => seen.container_missing = true,
        Some(c) if on_instance_network && !c.networks.iter().any(|n| n == network) => {
            seen.container_off_network = Some(network.to_string());
        }
        Some(c) => {
            if let Some(args) = args {
                seen.container_differs = differences(c, args, started);
            }
        }
    }
}

/// How a running container differs from what its unit's `docker run`
/// asks (`args`; the unit became active at `started`, in microseconds):
/// settings changed by `docker update`, a network joined by hand (`docker
/// network connect`: it reaches, and is reached from, what is there), or
/// a container made after its unit started it, which the unit did not make
/// (replaced by hand, `docker rm -f` then `docker run --name` with other
/// arguments).
fn differences(container: &Container, args: &run_args::RunArgs, started: u64) -> Vec<String> {
    let made = crate::cli::when::parse_iso_micros(&container.created);
    if started > 0 && made.is_some_and(|made| made > started) {
        return vec!["it was made after its unit started (replaced by hand?)".to_string()];
    }
    let mut found = Vec::new();
    // Run by hand with another image or command (flags after the image):
    // the router, whose unit is active before its container is made, is
    // told so.
    if let Some(image) = args
        .image
        .as_deref()
        .filter(|image| *image != container.image)
    {
        found.push(format!(
            "image {}, the unit runs {image} (replaced by hand?)",
            container.image
        ));
    }
    if let Some(command) = &container.command
        && !args.command.is_empty()
        && *command != args.command
    {
        let at = (command.iter().zip(&args.command))
            .position(|(is, asked)| is != asked)
            .unwrap_or(command.len().min(args.command.len()));
        let word = |words: &[String]| {
            words
                .get(at)
                .map_or("(nothing)".to_string(), |w| format!("`{w}`"))
        };
        found.push(format!(
            "its command has {} where the unit's has {} (replaced by hand?)",
            word(command),
            word(&args.command)
        ));
    }
    found.extend(
        (container.limits.as_ref())
            .map(|recorded| args.limits.differences(recorded))
            .unwrap_or_default(),
    );
    // (`--network container:NAME` shares another's: Docker lists none.)
    let asked: Vec<&str> = match args.networks.as_slice() {
        [] => vec!["bridge"],
        networks => networks.iter().map(String::as_str).collect(),
    };
    if !asked.iter().any(|n| n.starts_with("container:")) {
        found.extend(
            (container.networks.iter())
                .filter(|network| !asked.contains(&network.as_str()))
                .map(|network| {
                    format!(
                        "network {network}, which the unit does not ask for (`docker network \
                         connect` by hand?)"
                    )
                }),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_links_are_read_as_systemctl_enable_makes_them() {
        let text = "[Service]\nWantedBy=not.target\n\n[Install]\nWantedBy=a.target b.target\n\
                    RequiredBy=c.target\nWantedBy=\nWantedBy=d.target\n\n[X-Unitgen]\nApp=x\n";
        assert_eq!(
            install_folders(text).unwrap(),
            ["c.target.requires", "d.target.wants"]
        );
        assert_eq!(
            install_folders("[Service]\nExecStart=/bin/true\n").unwrap(),
            [""; 0]
        );
        assert_eq!(install_folders("[Install]\nWantedBy=x@%i.target\n"), None);
        let text = "[Install]\nWantedBy=i.target\n";
        assert_eq!(links_differ(text, &["i.target.wants".to_string()]), None);
        let moved = links_differ(text, &["multi-user.target.wants".to_string()]).unwrap();
        assert_eq!(
            moved.to_string(),
            "enabled, but not wanted by i.target (its link is gone); wanted by \
             multi-user.target, which its file does not say (linked by hand?)"
        );
        // A runtime link to its own target wants nothing more; one to
        // another target is told with where it is.
        let runtime = |folder: &str| format!("/run/systemd/system/{folder}");
        let found = ["i.target.wants".to_string(), runtime("i.target.wants")];
        assert_eq!(links_differ(text, &found), None);
        let found = ["i.target.wants".to_string(), runtime("x.target.wants")];
        assert_eq!(
            links_differ(text, &found).unwrap().to_string(),
            "enabled, but wanted by x.target (a link in /run/systemd/system), which its file \
             does not say (linked by hand?)"
        );
    }

    #[test]
    fn a_unit_waiting_out_its_restart_delay_runs_no_container() {
        assert!(is_down("inactive", "dead"));
        assert!(is_down("failed", "failed"));
        assert!(is_down("activating", "auto-restart"));
        assert!(!is_down("activating", "start"));
        assert!(!is_down("active", "running"));
        assert!(!is_down("deactivating", "stop-sigterm"));
    }
}
