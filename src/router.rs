//! The host's router (see `model::route` for the whole layout): what
//! `apply` and `destroy` do beside an instance's own units. An instance's
//! routes file is written by its routes unit (recorded, planned and rolled
//! back like any unit); the router unit is the host's, shared by every
//! instance with routes, and the users' certificate, key and htpasswd files
//! are copied where the router reads them.

pub mod certificate;
pub mod moves;
pub mod status;

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diagnostic::{Problem, shown};
use crate::model::Instance;
use crate::model::route::{HTTP_ENTRY_POINT, ROUTER_UNIT, Router, router_container};
use crate::plan::{Plan, Repair};
use crate::progress::Progress;
use crate::render::{UnitFile, content_digest};
use crate::systemd::JobKind;
use crate::systemd::converge::{self, Failure, Host};
use crate::unit_dir;

/// `path` on the host: under its root when unitgen acts on one (`--root`).
pub fn on_host(root: Option<&Path>, path: &Path) -> PathBuf {
    match root {
        Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
        None => path.to_path_buf(),
    }
}

/// The host's machine ID (`/etc/machine-id`, under its root), which
/// systemd gives the router and routes units as `%m`: the name of its
/// certificate resolver for routes in etcd (`model::route::host_resolver`).
pub fn machine_id(root: Option<&Path>) -> std::io::Result<String> {
    let path = on_host(root, Path::new("/etc/machine-id"));
    let text = fs::read_to_string(&path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(text.trim().to_string())
}

/// Held while a command decides about the host's router and changes it
/// ([`ensure`], [`after_destroy`]): one router serves every instance, and
/// the instance locks do not keep two instances' commands apart. Without
/// it, a destroy that found no other instance's routes removed the router
/// while another instance's apply, which had just found it there (or
/// stopping, and started it), said it was up to date.
pub struct RouterLock {
    _file: fs::File,
}

impl RouterLock {
    /// The file locked, in the state directory (no instance's name: it has
    /// no `-`).
    pub const FILE: &str = "router.lock";

    /// Takes the lock (flock on [`RouterLock::FILE`] in `state_dir`),
    /// saying so if another command holds it, and waiting for it.
    pub fn take(state_dir: &Path, progress: &Progress) -> std::io::Result<RouterLock> {
        let path = state_dir.join(Self::FILE);
        let at =
            |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        crate::state::create_private_dir(state_dir).map_err(at)?;
        let file = fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(at)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                progress.line(&format!(
                    "waiting for another unitgen command that is changing {ROUTER_UNIT}"
                ));
                file.lock().map_err(at)?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(at(e)),
        }
        Ok(RouterLock { _file: file })
    }
}

/// Reads the users' files the routes have the router read, and records a
/// digest of each in the model (it goes into the routes file, so that a
/// renewed certificate changes it). Their contents, for [`install_files`].
pub fn read_files(instance: &mut Instance) -> Result<Vec<(String, Vec<u8>)>, Problem> {
    let mut contents = Vec::new();
    for route in &mut instance.routes {
        let host = route.hosts.first().cloned().unwrap_or_default();
        for file in route.files_mut() {
            let bytes = crate::template::read_capped(&file.source).map_err(|e| {
                let problem = Problem::new(format!(
                    "route {host}: cannot read {}: {e}",
                    crate::diagnostic::shown_path(&file.source)
                ))
                .help("the path is relative to the file that names it, or absolute; apply reads it on this machine");
                match &file.at {
                    Some(at) => problem.at(at).label("this file"),
                    None => problem,
                }
            })?;
            // The bytes, as the router reads them: a file that changes only
            // where it is not UTF-8 (a DER certificate, a hash) is a change.
            file.digest = Some(content_digest(&bytes));
            contents.push((file.name.clone(), bytes));
        }
    }
    Ok(contents)
}

/// Writes the instance's copies into the router's folder (0600, in a 0700
/// folder of the instance's), and removes copies no route names any more.
pub fn install_files(
    root: Option<&Path>,
    router: &Router,
    prefix: &str,
    contents: &[(String, Vec<u8>)],
) -> std::io::Result<()> {
    let dir = on_host(root, &router.files_dir().join(prefix));
    if contents.is_empty() {
        return remove_dir(&dir);
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    for (name, bytes) in contents {
        let path = dir.join(name);
        unit_dir::write_atomic_mode(&path, bytes, 0o600).map_err(|e| unit_dir::at(&path, e))?;
    }
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !contents.iter().any(|(n, _)| *n == name) {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// The files of `contents` that [`install_files`] would write again: missing
/// in the router's folder, or holding something else.
pub fn stale_files(
    root: Option<&Path>,
    router: &Router,
    prefix: &str,
    contents: &[(String, Vec<u8>)],
) -> Vec<String> {
    let dir = on_host(root, &router.files_dir().join(prefix));
    (contents.iter())
        .filter(|(name, bytes)| fs::read(dir.join(name)).ok().as_ref() != Some(bytes))
        .map(|(name, _)| name.clone())
        .collect()
}

fn remove_dir(dir: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// What [`ensure`] did to the router unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterChange {
    Unchanged,
    /// Its file changed in what it records only: rewritten, not restarted.
    Recorded,
    Started,
    Installed,
    Changed,
    /// Its file as wanted, but the host not as it says (see [`found`]):
    /// what apply did about it, after why.
    Repaired(String),
}

/// How the running router differs on the host from its installed file
/// `present`, as `plan` tells it (see `plan::Observed::faults`): its
/// container replaced by hand (other flags, image, published ports),
/// paused or gone, its enablement links moved, its file changed since
/// systemd loaded it. None when it does not.
pub fn found(
    host: &Host,
    systemd: &crate::systemd::Systemd,
    present: &UnitFile,
) -> Result<Option<Repair>, crate::systemd::Error> {
    let present = std::slice::from_ref(present);
    let mut plan = Plan::new(present, present);
    let observed = crate::systemd::observe::observe(systemd, host, present, &plan, None)?;
    plan.observe(&observed.units);
    told_as_pending(host, &present[0], &mut plan);
    Ok(plan.repair.pop())
}

/// After an apply killed between writing the router's unit `unit` and
/// restarting it ([`restart_pending`]), tells that in `plan` (observed):
/// its container runs the file before, which is why it differs from the
/// unit's `docker run`, not a hand that replaced it.
pub fn told_as_pending(host: &Host, unit: &UnitFile, plan: &mut Plan) {
    if !restart_pending(host, unit) {
        return;
    }
    for repair in &mut plan.repair {
        (repair.faults).retain(|f| !matches!(f, crate::plan::Fault::ContainerDiffers { .. }));
    }
    plan.repair.retain(|r| !r.faults.is_empty());
    plan.found(ROUTER_UNIT, crate::plan::Fault::OldConfiguration);
}

/// The installed router unit, if any.
pub fn installed(host: &Host) -> Option<UnitFile> {
    let text = fs::read_to_string(host.unit_dir.join(ROUTER_UNIT)).ok()?;
    Some(UnitFile {
        name: ROUTER_UNIT.to_string(),
        text,
    })
}

/// Where the installed router takes plain HTTP (its `web` entry point, as
/// its `docker run` names it), to ask it what it serves; None without a
/// router unit. Every address it listens on: asked on loopback.
pub fn http_address(host: &Host) -> Option<std::net::SocketAddr> {
    http_address_of(&installed(host)?)
}

/// Waits until the router serves the routes files that the routes units
/// among `units` (just started or reloaded: their files written) write,
/// as written: asked for each file's mark (see `render::route::marked`).
/// Traefik takes no change while a file in its folder cannot be read; the
/// routes written are not served until then, which fails the command.
pub fn await_routes(host: &Host, units: &[String], progress: &Progress) -> Result<(), Failure> {
    for unit in units {
        let Ok(text) = fs::read_to_string(host.unit_dir.join(unit)) else {
            continue;
        };
        let Some(owner) = crate::render::owner(&text) else {
            continue;
        };
        if let (Some(file), Some(mark)) = (&owner.routes, &owner.routes_mark) {
            let file = on_host(host.root.as_deref(), Path::new(file));
            crate::systemd::handover::await_served(host, &file, mark, progress)?;
        }
    }
    Ok(())
}

/// Why the host's router does not serve the routes file `routes_file` (as
/// the routes unit names it) whose mark is `mark`, if it is listening and
/// does not: asked once.
pub fn not_serving(host: &Host, routes_file: &Path, mark: &str) -> Option<String> {
    let address = http_address(host)?;
    let seen = crate::systemd::handover::serves_mark(address, mark)?.err()?;
    let file = on_host(host.root.as_deref(), routes_file);
    Some(format!(
        "asked for the file's mark on {address}, {seen}; {}",
        crate::systemd::handover::takes_no_change(&file)
    ))
}

/// The address the router unit's Traefik flag gives the HTTP entry point:
/// read where `render::route::docker_run` puts it, a line of its own in
/// the command line of `ExecStart=`, never elsewhere in the unit (the
/// router's folder, a user's path, is named in a comment and in mounts
/// before it, and may hold the flag's text).
fn http_address_of(unit: &UnitFile) -> Option<std::net::SocketAddr> {
    let flag = format!("--entryPoints.{HTTP_ENTRY_POINT}.address=");
    let after = exec_start_lines(&unit.text).find_map(|line| {
        let word = line.trim_start();
        // Quoted when the address is not plain words (`[::]`).
        word.strip_prefix('"').unwrap_or(word).strip_prefix(&flag)
    })?;
    let value: String = (after.chars())
        .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | '\\'))
        .collect();
    let (address, port) = value.rsplit_once(':')?;
    let address = match address.trim_start_matches('[').trim_end_matches(']') {
        "" | "0.0.0.0" => "127.0.0.1",
        "::" => "::1",
        address => address,
    };
    Some(std::net::SocketAddr::new(
        address.parse().ok()?,
        port.parse().ok()?,
    ))
}

/// The lines of the unit's `ExecStart=` command line: the first (after
/// `ExecStart=`) and each continuation line after a line ending in `\`.
fn exec_start_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut lines = text.lines();
    let first = lines.find_map(|line| line.strip_prefix("ExecStart="));
    let mut continued = first.is_some_and(|line| line.ends_with('\\'));
    first.into_iter().chain(lines.map_while(move |line| {
        let this = continued.then_some(line);
        continued = line.ends_with('\\');
        this
    }))
}

/// A value the router unit records in its `[X-Unitgen]` section.
fn recorded<'a>(unit: &'a UnitFile, key: &str) -> Option<&'a str> {
    let section = unit.text.split("\n[X-Unitgen]\n").nth(1)?;
    (section.lines()).find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

/// Whether two router units run the same router: they differ, if at all,
/// in what they record (`[X-Unitgen]`, the last section) only.
fn runs_the_same(a: &UnitFile, b: &UnitFile) -> bool {
    let running = |u: &UnitFile| u.text.split("\n[X-Unitgen]\n").next().map(str::to_owned);
    running(a) == running(b)
}

/// Refuses, before anything changes, an apply whose router settings
/// differ from the installed router's while that router serves other
/// instances: one router serves every app of the host, and the last
/// apply's `router:` would change it for all of them without a word.
/// `replace`: the user means to (`apply --replace-router`). A router unit
/// of an older unitgen records no settings: it is not compared.
pub fn refuse_other_settings(
    host: &Host,
    instance: &Instance,
    unit: &UnitFile,
    replace: bool,
) -> Result<(), Problem> {
    let (Some(router), Some(present)) = (&instance.router, installed(host)) else {
        return Ok(());
    };
    let (Some(theirs), Some(ours)) = (recorded(&present, "Settings"), recorded(unit, "Settings"))
    else {
        return Ok(());
    };
    if replace || theirs == ours {
        return Ok(());
    }
    let prefix = instance.prefix();
    let root = host.root.as_deref();
    let mut others = other_routes(root, &router.dynamic_dir(), &prefix);
    if let Some(dir) = recorded(&present, "Directory") {
        let dir = Path::new(dir).join("dynamic");
        others.extend(other_routes(root, &dir, &prefix));
    }
    others.sort();
    others.dedup();
    if others.is_empty() {
        return Ok(());
    }
    // File names and the installed unit's record are the host's: a name
    // with a line feed would add a line of its own to the message.
    let users: Vec<String> = (others.iter())
        .map(|n| shown(n.trim_end_matches(".yaml")))
        .collect();
    let theirs = shown(theirs);
    let mut problem = Problem::new(format!(
        "{prefix}'s router settings differ from those of {ROUTER_UNIT}, which serves {} on this host; nothing was changed",
        users.join(", ")
    ))
    .label("this apply's router")
    .help(format!(
        "the installed router: {theirs}\nthis apply's router:  {ours}{}\n\
         one router serves every app of a host: give every `router:` of this host the same \
         settings, or apply with --replace-router to change the router for all of them",
        if router.declared_at.is_none() { " (the defaults: no `router:` block)" } else { "" }
    ));
    if let Some(at) = &router.declared_at {
        problem = problem.at(at);
    }
    Err(problem)
}

/// Installs (or updates) the router unit, enables it, and makes sure it
/// runs the installed file: restarted when it changed, started when it
/// was not running; either way it must stay up for `settle`, as apply's
/// units must. A changed router that does not is replaced by the one that
/// ran before: it serves every instance of the host. Traefik reads each
/// instance's routes file itself. Under the [`RouterLock`].
pub fn ensure(
    _held: &RouterLock,
    host: &Host,
    unit: &UnitFile,
    settle: Duration,
    progress: &Progress,
) -> Result<RouterChange, Failure> {
    let present = installed(host);
    let pending = pending_marker(host, unit);
    let change = match &present {
        None => RouterChange::Installed,
        // Only what it records changed (an upgrade of unitgen): rewritten,
        // not restarted.
        Some(p) if p.text != unit.text && runs_the_same(p, unit) => RouterChange::Recorded,
        Some(p) if p.text != unit.text => RouterChange::Changed,
        // Written by an apply that was killed before it restarted it.
        Some(_) if pending.as_deref().is_some_and(Path::exists) => RouterChange::Changed,
        Some(_) => RouterChange::Unchanged,
    };
    let systemd = host.connect()?;
    if change == RouterChange::Changed
        && let Some(marker) = &pending
    {
        if let Some(dir) = marker.parent() {
            fs::create_dir_all(dir)?;
        }
        unit_dir::write_atomic(marker, b"").map_err(|e| unit_dir::at(marker, e))?;
    }
    if change != RouterChange::Unchanged {
        let path = host.unit_dir.join(ROUTER_UNIT);
        unit_dir::write_atomic(&path, unit.text.as_bytes()).map_err(|e| unit_dir::at(&path, e))?;
        systemd
            .reload()
            .map_err(|e| Failure::untouched(e.to_string()))?;
    }
    crate::fault::point("after-router-write");
    let done = || match &pending {
        Some(marker) => unit_dir::remove_if_exists(marker).map_err(Failure::from),
        None => Ok(()),
    };
    let names = [ROUTER_UNIT.to_string()];
    systemd
        .enable(&names)
        .map_err(|e| Failure::untouched(e.to_string()))?;
    let active = systemd
        .active_states(&names)
        .map_err(|e| Failure::untouched(e.to_string()))?
        .first()
        .is_some_and(|s| s == "active");
    match (change.clone(), active) {
        // Running its file: as that file says on the host too?
        (RouterChange::Unchanged | RouterChange::Recorded, true) => {
            let untouched = |e: crate::systemd::Error| Failure::untouched(e.to_string());
            match found(host, &systemd, unit).map_err(untouched)? {
                None => Ok(change),
                Some(repair) => repair_router(host, &systemd, &repair, settle, progress),
            }
        }
        (RouterChange::Unchanged | RouterChange::Recorded, false) => {
            converge::control(host, &[(JobKind::Start, &names)], settle, progress)?;
            Ok(RouterChange::Started)
        }
        (change, _) => {
            let Err(mut failure) =
                converge::control(host, &[(JobKind::Restart, &names)], settle, progress)
            else {
                done()?;
                return Ok(change);
            };
            if let Some(previous) = &present {
                let put_back = unit_dir::write_atomic(
                    &host.unit_dir.join(ROUTER_UNIT),
                    previous.text.as_bytes(),
                )
                .map_err(|e| e.to_string())
                .and_then(|()| systemd.reload().map_err(|e| e.to_string()))
                .and_then(|()| {
                    converge::control(host, &[(JobKind::Restart, &names)], settle, progress)
                        .map_err(|f| f.message)
                });
                failure.message += &match put_back.and_then(|()| done().map_err(|f| f.message)) {
                    Ok(()) => "; the router that ran before was put back and runs".to_string(),
                    Err(e) => format!("; putting back the router that ran before failed: {e}"),
                };
            }
            Err(failure)
        }
    }
}

/// Repairs the running router as `repair` says, touching nothing else:
/// resumes its paused container, makes its links as its file says, and
/// restarts it when it runs something else than its file (a container
/// replaced by hand).
fn repair_router(
    host: &Host,
    systemd: &crate::systemd::Systemd,
    repair: &Repair,
    settle: Duration,
    progress: &Progress,
) -> Result<RouterChange, Failure> {
    let bus = |e: crate::systemd::Error| Failure::untouched(e.to_string());
    let names = [ROUTER_UNIT.to_string()];
    if repair.paused_container().is_some() {
        crate::docker::unpause(router_container()).map_err(Failure::untouched)?;
    }
    if repair.relink() {
        converge::reenable(systemd, &names)?;
    }
    if repair.relink() || repair.reload() {
        systemd.reload().map_err(bus)?;
    }
    if repair.restart() {
        converge::control(host, &[(JobKind::Restart, &names)], settle, progress)?;
    }
    let why: Vec<String> = repair.faults.iter().map(ToString::to_string).collect();
    Ok(RouterChange::Repaired(format!(
        "{}: {}",
        why.join(", "),
        repair.actions()
    )))
}

/// Where [`ensure`] marks a restart of the router as due, in the router's
/// folder: written before a changed router unit is, removed once the
/// router runs it, so that an apply killed in between is completed by the
/// next (which finds the file as it wants it, and nothing else would tell
/// that the router still runs the one before). None for a router unit that
/// records no folder (an older unitgen's).
fn pending_marker(host: &Host, unit: &UnitFile) -> Option<PathBuf> {
    let dir = recorded(unit, "Directory")?;
    Some(on_host(host.root.as_deref(), Path::new(dir)).join("restart-pending"))
}

/// Whether an apply was killed after it changed the router's unit and
/// before the router ran it (see [`pending_marker`]).
fn restart_pending(host: &Host, unit: &UnitFile) -> bool {
    pending_marker(host, unit).is_some_and(|marker| marker.exists())
}

/// The routes files other instances have in the router's folder.
pub fn other_routes(root: Option<&Path>, dynamic_dir: &Path, prefix: &str) -> Vec<String> {
    let own = Router::dynamic_file_name(prefix);
    let entries = fs::read_dir(on_host(root, dynamic_dir))
        .into_iter()
        .flatten();
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && *n != own)
        .collect();
    names.sort();
    names
}

/// What `instance`'s routes claim: `host/path` for each name they serve or
/// redirect (no trailing `/`).
pub fn claims(instance: &Instance) -> Vec<String> {
    (instance.routes.iter())
        .flat_map(|r| {
            let path = r.path.as_deref().unwrap_or("").trim_end_matches('/');
            r.hosts
                .iter()
                .chain(&r.aliases)
                .map(move |h| format!("{h}{path}"))
        })
        .collect()
}

/// The claims (`host/path`) of `instance` that another instance's routes
/// file in the router's folder makes too, with that file's name.
pub fn claimed_elsewhere(
    root: Option<&Path>,
    router: &Router,
    instance: &Instance,
) -> Vec<(String, String)> {
    let prefix = instance.prefix();
    let own = claims(instance);
    let dir = router.dynamic_dir();
    let mut taken = Vec::new();
    for name in other_routes(root, &dir, &prefix) {
        let text = fs::read_to_string(on_host(root, &dir.join(&name))).unwrap_or_default();
        for line in text.lines() {
            let Some(claim) = line.strip_prefix(crate::render::route::CLAIM) else {
                continue;
            };
            let claim = claim.trim_end_matches('/');
            if own.iter().any(|c| c == claim) {
                taken.push((claim.to_string(), name.clone()));
            }
        }
    }
    taken
}

/// Whether the router unit has Traefik read etcd too: then it may serve
/// routes of other hosts' instances, which nothing on this host shows.
pub fn reads_etcd(unit: &UnitFile) -> bool {
    unit.text.contains(crate::render::route::ETCD_PROVIDER)
}

/// After an instance's routes unit was removed (`destroy`): its copied
/// files go, and so does the router when no other instance on the host has
/// routes and it does not read etcd (see [`reads_etcd`]: DNS may send any
/// routed name to it, and only the one who points DNS knows). Under the
/// [`RouterLock`].
pub fn after_destroy(
    _held: &RouterLock,
    host: &Host,
    routes_file: &Path,
    prefix: &str,
    progress: &Progress,
) -> Result<(), Failure> {
    let Some(dynamic_dir) = routes_file.parent() else {
        return Ok(());
    };
    let router_dir = dynamic_dir.parent().unwrap_or(dynamic_dir);
    let root = host.root.as_deref();
    remove_dir(&on_host(root, &router_dir.join("files").join(prefix)))?;
    let others = other_routes(root, dynamic_dir, prefix);
    let Some(unit) = installed(host) else {
        return Ok(());
    };
    if others.is_empty() && reads_etcd(&unit) {
        progress.line(&format!(
            "{ROUTER_UNIT} stays: it serves the routes in etcd, those of other hosts' instances too \
             (on a host DNS does not point at: systemctl disable --now {ROUTER_UNIT})"
        ));
    } else if others.is_empty() {
        let names = std::slice::from_ref(&unit.name);
        if let Err(failure) = converge::remove_all(host, names, progress) {
            // Another instance's apply, starting its routes unit (which
            // wants the router) before its routes file was written, sent a
            // start that canceled this stop: the router is wanted again.
            // The start is waited for; that apply makes sure of the
            // router once it has this lock.
            let state = host.connect()?.active_states(names).ok();
            let state = state.as_ref().and_then(|s| s.first()).map(String::as_str);
            let restarted = matches!(
                state,
                Some("active" | "activating" | "deactivating" | "reloading")
            );
            if !restarted || installed(host).is_none_or(|now| now.text != unit.text) {
                return Err(failure);
            }
            converge::control(host, &[(JobKind::Start, names)], Duration::ZERO, progress)
                .map_err(|_| failure)?;
            progress.line(&format!(
                "{ROUTER_UNIT} stays: another instance's routes started it again while it stopped"
            ));
            return Ok(());
        }
        progress.line(&format!(
            "{ROUTER_UNIT}: no instance has routes any more: stopped and removed"
        ));
    } else {
        progress.line(&format!(
            "{ROUTER_UNIT} stays: it serves the routes of {}",
            others
                .iter()
                .map(|n| n.trim_end_matches(".yaml"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_router_is_asked_where_its_http_entry_point_listens() {
        let unit = |address: &str| UnitFile {
            name: ROUTER_UNIT.to_string(),
            text: format!(
                "[Service]\nExecStart=/usr/bin/docker run --rm traefik:v3.7 traefik \\\n    \
                 --global.sendAnonymousUsage=false \\\n    \
                 --entryPoints.web.address={address} \\\n    \
                 --entryPoints.websecure.address=:443\n"
            ),
        };
        let at = |address: &str| http_address_of(&unit(address)).map(|a| a.to_string());
        assert_eq!(at(":80").as_deref(), Some("127.0.0.1:80"));
        assert_eq!(at("0.0.0.0:8080").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(at("192.0.2.7:80").as_deref(), Some("192.0.2.7:80"));
        assert_eq!(at("[::]:80").as_deref(), Some("[::1]:80"));
        assert_eq!(at("[2001:db8::1]:80").as_deref(), Some("[2001:db8::1]:80"));
        let none = UnitFile {
            name: ROUTER_UNIT.to_string(),
            text: "[Service]\nExecStart=/bin/true\n".to_string(),
        };
        assert_eq!(http_address_of(&none), None);
    }

    /// The flag's text elsewhere in the unit (here in the router's folder,
    /// named in its header comment, its mkdir and its mounts before the
    /// flag, and a CA certificate's path) was taken for the address: the
    /// first one in the unit's text was read, wherever it stood.
    #[test]
    fn the_http_address_is_read_from_the_flag_alone() {
        let decoy = "--entryPoints.web.address=192.0.2.99:81";
        let router = crate::model::route::Router {
            image: "traefik:v3.7".into(),
            http_port: 8080,
            https_port: 8443,
            address: Some("::1".into()),
            directory: format!("/srv/{decoy} router").into(),
            acme: crate::model::route::Acme {
                email: None,
                ca_server: "https://ca.example/dir".into(),
                ca_certificate: Some(format!("/etc/{decoy}.pem")),
            },
            etcd: None,
            declared_at: None,
        };
        let unit =
            crate::render::Renderer::new(crate::render::Flavour::System).router_unit(&router);
        let first = unit.text.find(decoy).unwrap();
        let flag = unit.text.find("--entryPoints.web.address=[::1]").unwrap();
        assert!(
            first < flag,
            "the decoy stands before the flag:\n{}",
            unit.text
        );
        assert_eq!(
            http_address_of(&unit).map(|a| a.to_string()).as_deref(),
            Some("[::1]:8080")
        );
    }
}
