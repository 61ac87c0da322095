//! Zero-downtime deploys of routed services: when apply changes a service
//! that the host's router sends traffic to, the new version takes the
//! traffic over before the old one stops.
//!
//! Two containers of one service cannot publish the same host port at
//! once, and the router reaches a service through that port (see
//! `model::route`). So the new version first runs as a *stand-in*: the
//! service's unit as rendered for this apply, named
//! `<app>-<instance>-<service>.next` (a `.` is in no service name), with
//! only the routed container ports published, on loopback ports Docker
//! picks. In order:
//!
//! 1. the stand-in starts beside the old container; its start job waits
//!    for the container (and its healthcheck), then the router's health
//!    path (any HTTP answer without one) must answer on its port;
//! 2. the instance's routes file is rewritten (atomically) with the
//!    stand-in's address in place of the service's, and its own mark (see
//!    [`route::marked`]): Traefik reloads the file, and once the router
//!    answers the mark (it serves the switch: the old container gets no new
//!    request), the old container keeps running for [`DRAIN`] to finish
//!    the requests it has;
//! 3. apply converges as always: the service's own unit restarts onto the
//!    new version, on the service's own port (nothing routes there now);
//! 4. once that answers too, the routes file is put back as it was (it
//!    names the service's own port); once the router answers that file's
//!    mark, the stand-in drains, then it is stopped and deleted.
//!
//! The router is asked, not trusted to be quick: Traefik takes a change
//! within a second, but took over 5 s on a busy host, and takes none at
//! all while a file in its folder cannot be read. Stopping the old
//! container on a guess sent requests to it (502, then 503 once Traefik's
//! health check took it out).
//!
//! So units and routes files stay exactly what `render` shows: the stand-in
//! lives for one apply. A failure before the switch (the stand-in does not
//! start or never becomes healthy) removes the stand-in and fails the apply
//! with nothing else changed: the old version never stopped serving. A
//! failure of step 3 restores the previous revision as any failed apply
//! does, behind the stand-in, and step 4 switches back to it.
//!
//! Crash safety: before the stand-in starts, `handover.json` in the
//! instance's state folder records the routes file as it was, the
//! stand-ins and (once known) the routes file that names them. The next
//! apply (or rollback) finishes an interrupted handover: if the router
//! still reads the stand-in's file, the stand-ins keep the traffic while
//! it converges the services as always (starting one stopped by hand
//! since), then their own ports are waited for and the file put back, and
//! the stand-ins drain and go; if the file was put back already (or never
//! switched), they go once the router serves it, after what is left of
//! their drain, before anything else. A reboot
//! needs none of it: the stand-in is not enabled, and the routes unit
//! writes its own file at boot.
//!
//! Limits: a request that takes longer than [`DRAIN`] is cut when the old
//! container stops; the new and the old version serve side by side for a
//! moment (both must accept the same data, e.g. the same database schema);
//! the service's own published port (not the router) is down while its
//! unit restarts, as today.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::converge::{Failure, Host};
use crate::docker;
use crate::fault;
use crate::model::route::ROUTER_UNIT;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::render::UnitFile;
use crate::render::route::{self, MARK_HOST, MARK_STATUS};
use crate::unit_dir;

/// How long the old container keeps running once the router serves the
/// switch (asked, see [`await_router`]): the requests it had under way
/// finish.
pub const DRAIN: Duration = Duration::from_secs(5);

/// How long the router may take to serve a routes file as written. Traefik
/// takes a change well within a second (written in one step, see
/// [`write_routes`]), seen taking over 5 s on a host whose CPU was taken;
/// one that takes none for a minute is kept from it: a file in its folder
/// that it cannot read stops it taking any change.
pub const ROUTER_TAKES_WITHIN: Duration = Duration::from_secs(60);

/// How long a new version may take to answer on its routed port once its
/// container runs (and is healthy, with a healthcheck).
pub const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(250);

/// The record of a handover under way, in the instance's state folder.
pub const RECORD: &str = "handover.json";

/// A routed service that apply may replace without downtime.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routed {
    /// The service's unit (`blog-live-web.service`).
    pub unit: String,
    /// The stand-in: its unit as rendered for this apply, renamed.
    pub standin: UnitFile,
    pub standin_container: String,
    pub routes: Vec<Route>,
}

/// One route to a routed service, as the routes file names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Its service in the routes file (Traefik's name).
    pub name: String,
    pub container_port: u16,
    /// Sent as `Host:` by the health probe.
    pub host: String,
    /// What the router polls: a 2xx or 3xx answer is healthy. None: any
    /// HTTP answer is.
    pub health_path: Option<String>,
}

/// What apply hands over: the instance's routed services, and where the
/// router reads its routes.
#[derive(Debug, Clone)]
pub struct Handover {
    /// The instance's routes file on this host.
    pub routes_file: PathBuf,
    /// [`RECORD`] in the instance's state folder.
    pub record: PathBuf,
    pub services: Vec<Routed>,
    /// What the stand-ins are, for what the handover says.
    pub replacement: Replacement,
}

/// What replaces the running containers: what progress and failures call
/// the stand-in and the container it takes over from. Recorded as the
/// command that does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Replacement {
    /// apply: the template or instance changed.
    #[serde(rename = "apply")]
    NewVersion,
    /// restart: the same units, started again.
    #[serde(rename = "restart")]
    FreshCopy,
    /// rollback: a recorded revision's units.
    #[serde(rename = "rollback")]
    RolledBack,
}

impl Replacement {
    /// The command that hands over so.
    fn command(self) -> &'static str {
        match self {
            Replacement::NewVersion => "apply",
            Replacement::FreshCopy => "restart",
            Replacement::RolledBack => "rollback",
        }
    }

    /// The stand-in, then the container it takes over from.
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Replacement::NewVersion => ("the new version", "the old version"),
            Replacement::FreshCopy => ("the fresh copy", "the running copy"),
            Replacement::RolledBack => ("the rolled-back version", "the current version"),
        }
    }
}

/// A revision's stand-ins, kept with its units: `restart` and `rollback`
/// render nothing (they act on what is installed, or on a recorded
/// revision), yet replace its routed services without downtime as apply
/// does, with these.
pub const STORED: &str = "standins.json";

/// Like every record unitgen keeps, it refuses fields it does not know:
/// they come from a newer unitgen (see `state::written_by_newer`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    /// The routes file as the router's settings name it (without --root).
    routes_file: PathBuf,
    services: Vec<Routed>,
}

impl Handover {
    /// Keeps what this handover needs in `revision_dir` ([`STORED`]); its
    /// routes file is on the host under `root`.
    pub fn store(&self, revision_dir: &Path, root: Option<&Path>) -> std::io::Result<()> {
        let json = self.stored_text(root);
        unit_dir::write_atomic_mode(&revision_dir.join(STORED), json.as_bytes(), 0o600)
    }

    /// [`STORED`]'s text: what [`Handover::store`] writes, and what a new
    /// revision is recorded with (`state::InstanceState::record`).
    pub fn stored_text(&self, root: Option<&Path>) -> String {
        let routes_file = match root.map(|root| self.routes_file.strip_prefix(root)) {
            Some(Ok(inside)) => Path::new("/").join(inside),
            _ => self.routes_file.clone(),
        };
        let stored = Stored {
            routes_file,
            services: self.services.clone(),
        };
        serde_json::to_string_pretty(&stored).expect("stand-ins serialize")
    }

    /// The handover a revision's apply stored (None: the revision has no
    /// routed service, or was recorded before stand-ins were kept), its
    /// routes file on the host under `root`, recorded at `record`. A file
    /// there that cannot be read is an error (see [`Unusable`]): taken for
    /// none, the routed services would restart under the router.
    pub fn stored(
        revision_dir: &Path,
        root: Option<&Path>,
        record: PathBuf,
        replacement: Replacement,
    ) -> Result<Option<Handover>, Unusable> {
        let path = revision_dir.join(STORED);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Unusable::Damaged(format!("{}: {e}", path.display()))),
        };
        let stored: Stored = serde_json::from_str(&text).map_err(|e| {
            match crate::state::written_by_newer(&path, &e) {
                Some(newer) => Unusable::Newer(newer.to_string()),
                None => Unusable::Damaged(format!("{}: unreadable: {e}", path.display())),
            }
        })?;
        Ok(Some(Handover {
            routes_file: crate::router::on_host(root, &stored.routes_file),
            record,
            services: stored.services,
            replacement,
        }))
    }

    /// Whether `revision_dir` keeps exactly this handover's stand-ins.
    pub fn is_stored(&self, revision_dir: &Path, root: Option<&Path>) -> bool {
        Handover::stored(revision_dir, root, self.record.clone(), self.replacement)
            .ok()
            .flatten()
            .is_some_and(|stored| {
                stored.routes_file == self.routes_file
                    && serde_json::to_value(&stored.services).ok()
                        == serde_json::to_value(&self.services).ok()
            })
    }

    /// Only the routed services whose units are `units`.
    pub fn only(mut self, units: &[String]) -> Handover {
        self.services.retain(|s| units.contains(&s.unit));
        self
    }
}

/// Why a revision's [`STORED`] stand-ins cannot be used.
#[derive(Debug)]
pub enum Unusable {
    /// A newer unitgen wrote it: refused whatever the command, and kept as
    /// it is (rewritten, what this unitgen does not know would be lost).
    Newer(String),
    /// Damaged since it was written (by hand, a bad disk): its path and why.
    Damaged(String),
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Newer(why) | Unusable::Damaged(why) => f.write_str(why),
        }
    }
}

/// Refuses a revision whose [`STORED`] a newer unitgen wrote, before
/// anything changes: `apply` would write it again (losing what it says),
/// `restart` and `rollback` would act without it. A damaged one is told by
/// the commands that read it (see [`Handover::stored`]).
pub fn refuse_newer_stored(revision_dir: &Path) -> Result<(), String> {
    match Handover::stored(revision_dir, None, PathBuf::new(), Replacement::NewVersion) {
        Err(Unusable::Newer(why)) => Err(why),
        _ => Ok(()),
    }
}

/// A handover under way, as recorded (see the module's comment). Refuses
/// fields it does not know, as [`Stored`] does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    routes_file: PathBuf,
    /// The routes file before the switch: it names the services' own ports.
    previous: String,
    /// The routes file that names the stand-ins, once written.
    switched: Option<String>,
    standins: Vec<String>,
    /// What must answer before `previous` is put back.
    probes: Vec<Probe>,
    /// The command that started it (none in records of unitgen before 0.1
    /// stop 27: an apply, as they were told).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<Replacement>,
    /// Set when the record could not be read: it was rebuilt from the host
    /// (see [`rebuild`]).
    #[serde(skip)]
    unreadable: Option<Unreadable>,
}

impl Record {
    /// The command that started the handover, as the user knows it.
    fn command(&self) -> &'static str {
        self.by.map_or("apply", Replacement::command)
    }
}

/// What stands for a record found unreadable (damaged on disk or by hand:
/// it is written whole, atomically).
#[derive(Debug, Clone)]
struct Unreadable {
    /// Its path and why it cannot be read.
    why: String,
    /// The instance's routes unit: reloaded, it writes the routes file as
    /// installed, naming the services' own ports (the record's `previous`
    /// is lost).
    routes_unit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe {
    url: String,
    host: String,
    health_path: Option<String>,
}

/// The traffic switched to stand-ins: [`Switched::finish`] switches back.
#[derive(Debug)]
pub struct Switched {
    record_path: PathBuf,
    record: Record,
}

impl Handover {
    /// Steps 1 and 2: for each routed service that `plan` changes and that
    /// runs and is routed now, starts its stand-in, waits until it is
    /// healthy and switches the routes file to it. None when no service
    /// needs it (they restart as any other). A failure leaves the host as
    /// it was: the stand-ins are removed, the old versions never stopped.
    pub fn switch(
        &self,
        host: &Host,
        plan: &Plan,
        progress: &Progress,
    ) -> Result<Option<Switched>, Failure> {
        // A change of routing alone keeps the container: nothing to hand over.
        let changed: Vec<&str> = (plan.change.iter())
            .filter(|c| !c.only_started())
            .map(|c| c.new.name.as_str())
            .collect();
        self.switch_units(host, &changed, progress)
    }

    /// [`Handover::switch`] for the routed services whose units are
    /// `units` (those `restart` restarts).
    pub fn switch_units(
        &self,
        host: &Host,
        units: &[&str],
        progress: &Progress,
    ) -> Result<Option<Switched>, Failure> {
        let Ok(previous) = fs::read_to_string(&self.routes_file) else {
            // Not routed yet: nothing to keep serving.
            return Ok(None);
        };
        let candidates: Vec<&Routed> = (self.services.iter())
            .filter(|s| units.contains(&s.unit.as_str()))
            .collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        let systemd = host.connect()?;
        let units: Vec<String> = candidates.iter().map(|s| s.unit.clone()).collect();
        let states = systemd
            .active_states(&units)
            .map_err(|e| Failure::untouched(e.to_string()))?;
        let urls = backend_urls(&previous);
        // Only what serves now, through a backend the file names.
        let services: Vec<&Routed> = (candidates.into_iter().zip(states))
            .filter(|(_, state)| state == "active")
            .map(|(s, _)| s)
            .filter(|s| {
                s.routes
                    .iter()
                    .all(|r| urls.iter().any(|(n, _)| *n == r.name))
            })
            .collect();
        if services.is_empty() {
            return Ok(None);
        }
        let url_of = |name: &str| {
            (urls.iter())
                .find(|(n, _)| n == name)
                .map(|(_, u)| u.clone())
                .unwrap_or_default()
        };
        let mut record = Record {
            routes_file: self.routes_file.clone(),
            previous: previous.clone(),
            switched: None,
            standins: services.iter().map(|s| s.standin.name.clone()).collect(),
            probes: (services.iter())
                .flat_map(|s| &s.routes)
                .map(|r| Probe {
                    url: url_of(&r.name),
                    host: r.host.clone(),
                    health_path: r.health_path.clone(),
                })
                .collect(),
            by: Some(self.replacement),
            unreadable: None,
        };
        write_record(&self.record, &record)?;
        let (standin, running) = self.replacement.words();
        let names: Vec<&str> = services.iter().map(|s| s.unit.as_str()).collect();
        progress.line(&format!(
            "zero-downtime: starting {standin} of {} beside {running}",
            names.join(", ")
        ));
        let started = self.start_standins(host, &services, progress);
        let switched = started.and_then(|ports| {
            let mut text = previous.clone();
            for (service, ports) in services.iter().zip(&ports) {
                for (route, port) in service.routes.iter().zip(ports) {
                    let url = format!("http://127.0.0.1:{port}");
                    wait_healthy(&url, route, &service.standin_container)?;
                    text = replace_url(&text, &url_of(&route.name), &url);
                }
            }
            Ok(text)
        });
        let switched = match switched {
            Ok(text) => text,
            Err(mut failure) => {
                if let Err(e) = remove_standins(host, &record.standins, progress) {
                    failure.message.push_str(&format!(
                        "; removing {standin}'s stand-in failed too: {}",
                        e.message
                    ));
                } else {
                    let _ = fs::remove_file(&self.record);
                }
                failure.message.push_str(&format!(
                    "\n{running} kept serving all along; {standin} was removed"
                ));
                return Err(failure);
            }
        };
        // Its own mark: the router tells when it serves the switch.
        let switched = route::marked(&switched, &file_name(&self.routes_file)).unwrap_or(switched);
        record.switched = Some(switched.clone());
        write_record(&self.record, &record)?;
        write_routes(&self.routes_file, &switched)?;
        fault::point("after-switch");
        if let Err(mut failure) = await_router(host, &self.routes_file, &switched, progress) {
            // It still sends the traffic to the old version: back as it was.
            write_routes(&self.routes_file, &previous)?;
            let put_back = await_router(host, &self.routes_file, &previous, progress)
                .and_then(|_| remove_standins(host, &record.standins, progress))
                .and_then(|()| forget_record(&self.record, &record));
            match put_back {
                Ok(()) => failure.message.push_str(&format!(
                    "\n{running} kept serving all along; {standin} was removed"
                )),
                Err(e) => failure.message.push_str(&format!(
                    "; the routes file was put back, but {}: run `unitgen apply` again once the router reads its folder",
                    e.message
                )),
            }
            return Err(failure);
        }
        progress.line(&format!(
            "zero-downtime: traffic switched to {}; {running} drains for {}s",
            record.standins.join(", "),
            DRAIN.as_secs()
        ));
        std::thread::sleep(DRAIN);
        Ok(Some(Switched {
            record_path: self.record.clone(),
            record,
        }))
    }

    /// Writes, starts and locates the stand-ins: the host port of each
    /// routed container port, per service.
    fn start_standins(
        &self,
        host: &Host,
        services: &[&Routed],
        progress: &Progress,
    ) -> Result<Vec<Vec<u16>>, Failure> {
        let systemd = host.connect()?;
        // A stand-in of an earlier handover (or a container made by hand)
        // may still hold the name.
        let containers: Vec<String> = (services.iter())
            .map(|s| s.standin_container.clone())
            .collect();
        docker::free_names(&containers, docker::NAME_RELEASE)
            .map_err(|e| Failure::untouched(format!("{e} (for the stand-ins)")))?;
        for service in services {
            unit_dir::write_atomic(
                &host.unit_dir.join(&service.standin.name),
                service.standin.text.as_bytes(),
            )?;
        }
        systemd
            .reload()
            .map_err(|e| Failure::untouched(e.to_string()))?;
        let names: Vec<String> = services.iter().map(|s| s.standin.name.clone()).collect();
        systemd.reset_failed_all(&names);
        super::converge::start_and_restart(
            &systemd,
            &super::converge::Jobs {
                starts: &names,
                ..Default::default()
            },
            progress,
            None,
        )
        .map_err(|mut failure| {
            failure.explain(host, &systemd);
            failure.message = format!("{} {}", self.replacement.words().0, failure.message);
            failure
        })?;
        services
            .iter()
            .map(|s| {
                (s.routes.iter())
                    .map(|r| published_port(&s.standin_container, r.container_port))
                    .collect()
            })
            .collect()
    }
}

impl Switched {
    /// Step 4, once apply has converged (or restored the previous
    /// revision): when the services' own ports answer, the routes file is
    /// put back (unless apply's routes unit wrote a new one meanwhile),
    /// and the stand-ins drain and go.
    pub fn finish(self, host: &Host, progress: &Progress) -> Result<(), Failure> {
        switch_back(host, &self.record_path, &self.record, progress)
    }
}

fn switch_back(
    host: &Host,
    record_path: &Path,
    record: &Record,
    progress: &Progress,
) -> Result<(), Failure> {
    let current = fs::read_to_string(&record.routes_file).ok();
    let routes_unit = record.unreadable.as_ref().map(|u| u.routes_unit.as_ref());
    let switched_now = record.switched.is_some() && current == record.switched;
    if let Some(routes_unit) = routes_unit {
        // Rebuilt from the host: the routes unit puts the file back.
        if let Some(unit) = routes_unit.filter(|_| record.switched.is_some())
            && switched_now
        {
            for address in own_addresses(&record.standins) {
                await_service(&address, "localhost", None, &record.standins)?;
            }
            super::converge::control(
                host,
                &[(super::JobKind::ReloadOrRestart, std::slice::from_ref(unit))],
                Duration::ZERO,
                progress,
            )?;
            let written = fs::read_to_string(&record.routes_file).unwrap_or_default();
            await_standins_unrouted(host, record, &written, progress)?;
            progress.line(&format!(
                "zero-downtime: traffic switched back to the service's own unit ({unit} wrote the routes again); {} drains for {}s",
                record.standins.join(", "),
                DRAIN.as_secs()
            ));
            std::thread::sleep(DRAIN);
        } else if let Some(written) = &current {
            let taken = await_standins_unrouted(host, record, written, progress)?;
            if let Some(left) = taken.drain_left(&record.routes_file) {
                std::thread::sleep(left);
            }
        }
    } else if switched_now {
        for probe in &record.probes {
            await_service(
                &probe.url,
                &probe.host,
                probe.health_path.clone(),
                &record.standins,
            )?;
        }
        write_routes(&record.routes_file, &record.previous)?;
        await_standins_unrouted(host, record, &record.previous, progress)?;
        progress.line(&format!(
            "zero-downtime: traffic switched back to the service's own unit; {} drains for {}s",
            record.standins.join(", "),
            DRAIN.as_secs()
        ));
        std::thread::sleep(DRAIN);
    } else if let Some(written) = current.as_deref().filter(|_| record.switched.is_some()) {
        // Put back already, by an apply killed while the stand-ins drained
        // (or by the routes unit): the router may not serve the file yet,
        // and requests under way still reach the stand-ins. They go once
        // it does, and what was under way had its drain.
        let taken = await_standins_unrouted(host, record, written, progress)?;
        if let Some(left) = taken.drain_left(&record.routes_file) {
            progress.line(&format!(
                "zero-downtime: the router was switched back; {} drains for {}s more",
                record.standins.join(", "),
                left.as_secs_f32().ceil()
            ));
            std::thread::sleep(left);
        }
    }
    remove_standins(host, &record.standins, progress)?;
    forget_record(record_path, record)
}

/// [`await_router`] for a file put back: failing, the stand-ins keep the
/// traffic, and the next apply finishes.
fn await_standins_unrouted(
    host: &Host,
    record: &Record,
    written: &str,
    progress: &Progress,
) -> Result<Taken, Failure> {
    await_router(host, &record.routes_file, written, progress).map_err(|mut failure| {
        failure.message.push_str(&format!(
            "\nthe router may still send the traffic to {}: they keep running; run `unitgen apply` again once the router reads its folder",
            record.standins.join(", ")
        ));
        failure
    })
}

/// Waits until the service answers at `url` (asked as `host`, on
/// `health_path` or any path) before the router is switched back to it;
/// failing, says that the traffic stays on the `standins`.
fn await_service(
    url: &str,
    host: &str,
    health_path: Option<String>,
    standins: &[String],
) -> Result<(), Failure> {
    let route = Route {
        name: String::new(),
        container_port: 0,
        host: host.to_string(),
        health_path,
    };
    wait_healthy(url, &route, "the service").map_err(|mut failure| {
        failure.message.push_str(&format!(
            "\nthe router still sends the traffic to {}: run `unitgen apply` again once the service answers",
            standins.join(", ")
        ));
        failure
    })
}

/// Removes the record of a finished handover; one that could not be read
/// is kept as `handover.json.unreadable`, for whoever wants to know what it
/// held.
fn forget_record(record_path: &Path, record: &Record) -> Result<(), Failure> {
    let gone = match &record.unreadable {
        Some(_) => fs::rename(record_path, kept_aside(record_path)),
        None => fs::remove_file(record_path),
    };
    match gone {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

fn kept_aside(record_path: &Path) -> PathBuf {
    record_path.with_extension("json.unreadable")
}

/// Finishes a handover an earlier apply left (killed): see the module's
/// comment. Nothing to do without a record. While the router still sends
/// the traffic to the stand-ins, they keep it: that is returned, to be
/// finished ([`Switched::finish`]) once apply or rollback has converged the
/// services behind them (started one stopped by hand since, replaced one
/// as the template now says). Otherwise the stand-ins drain and go now.
pub fn resume(
    host: &Host,
    record_path: &Path,
    progress: &Progress,
) -> Result<Option<Switched>, Failure> {
    let Some(record) = read_record(record_path, host)? else {
        return Ok(None);
    };
    match &record.unreadable {
        Some(unreadable) => progress.line(&format!(
            "zero-downtime: finishing the handover an earlier command left, from what the host \
             runs: its record is unreadable ({}; kept as {}); stand-ins found: {}",
            unreadable.why,
            kept_aside(record_path).display(),
            if record.standins.is_empty() {
                "none".to_string()
            } else {
                record.standins.join(", ")
            }
        )),
        None => progress.line(&format!(
            "zero-downtime: finishing the handover an earlier {} left ({})",
            record.command(),
            record.standins.join(", ")
        )),
    }
    let current = fs::read_to_string(&record.routes_file).ok();
    if record.switched.is_some() && current == record.switched {
        progress.line(&format!(
            "zero-downtime: {} keeps the traffic while the services converge",
            record.standins.join(", ")
        ));
        // Switched by a command killed before the old version had drained
        // (just after it wrote the file): the router may not serve the
        // switch yet, and the services converging now are what it still
        // sends the requests to (502s and 503s, seen when a killed restart
        // was run again at once). They drain for what is left first.
        let written = record.switched.as_deref().unwrap_or_default();
        let taken = await_router(host, &record.routes_file, written, progress)?;
        if let Some(left) = taken.drain_left(&record.routes_file) {
            progress.line(&format!(
                "zero-downtime: the traffic was switched; the old version drains for {}s more",
                left.as_secs_f32().ceil()
            ));
            std::thread::sleep(left);
        }
        return Ok(Some(Switched {
            record_path: record_path.to_path_buf(),
            record,
        }));
    }
    switch_back(host, record_path, &record, progress)?;
    Ok(None)
}

/// When the router was seen serving a routes file as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// At the first question: at some moment since the file was written.
    Already,
    /// After it was asked again: just now.
    Now,
    /// It could not be asked: no router unit, a router not listening (it
    /// reads the folder as it is when it starts), a file without a mark
    /// (written by an older unitgen).
    Unknown,
}

impl Taken {
    /// What is left of [`DRAIN`] for the requests the router sent before:
    /// all of it when it changed just now, otherwise what is left since the
    /// file was written (the latest it can have changed).
    fn drain_left(self, routes_file: &Path) -> Option<Duration> {
        if self == Taken::Now {
            return Some(DRAIN);
        }
        let written = fs::metadata(routes_file).and_then(|m| m.modified()).ok()?;
        (written + DRAIN)
            .duration_since(std::time::SystemTime::now())
            .ok()
    }
}

/// Waits until the host's router serves `routes_file` as `written`, asking
/// the router itself for the file's mark (see [`route::marked`]). Until
/// then the router may still send requests to what the file named before,
/// which must keep running. Fails after [`ROUTER_TAKES_WITHIN`].
fn await_router(
    host: &Host,
    routes_file: &Path,
    written: &str,
    progress: &Progress,
) -> Result<Taken, Failure> {
    match route::mark_of(written, &file_name(routes_file)) {
        Some(mark) => await_served(host, routes_file, &mark, progress),
        None => Ok(Taken::Unknown),
    }
}

fn file_name(routes_file: &Path) -> String {
    let name = routes_file.file_name().unwrap_or_default();
    name.to_string_lossy().into_owned()
}

/// Waits until the host's router serves the routes file `routes_file`
/// (its path on the host) whose mark is `mark` ([`route::mark_path`]),
/// saying that it waits when it does not at once. Fails after
/// [`ROUTER_TAKES_WITHIN`], naming the files unitgen did not write in the
/// router's folder. Nothing to wait for without a router unit, or a router
/// not listening: it reads the folder as it is when it starts.
pub fn await_served(
    host: &Host,
    routes_file: &Path,
    mark: &str,
    progress: &Progress,
) -> Result<Taken, Failure> {
    let Some(address) = crate::router::http_address(host) else {
        return Ok(Taken::Unknown);
    };
    let said = std::cell::Cell::new(false);
    let waiting = || {
        if !said.replace(true) {
            progress.line(&format!(
                "waiting for the router to serve {} as written (up to {}s)",
                routes_file.display(),
                router_takes_within().as_secs()
            ));
        }
    };
    await_mark(address, mark, router_takes_within(), waiting).map_err(|seen| {
        Failure::untouched(format!(
            "the router ({ROUTER_UNIT}, on {address}) did not serve {} as written within {}s \
             (asked for the file's mark, Host {MARK_HOST}: {seen}); {}",
            crate::diagnostic::shown_path(routes_file),
            router_takes_within().as_secs(),
            takes_no_change(routes_file)
        ))
    })
}

/// Why a router may not serve `routes_file` (its path on the host), with
/// the files of its folder to suspect.
pub fn takes_no_change(routes_file: &Path) -> String {
    let folder = routes_file.parent().unwrap_or(Path::new("/"));
    let foreign = match foreign_files(folder)[..] {
        [] => String::new(),
        ref names => format!(" (there, unitgen wrote none of: {})", names.join(", ")),
    };
    format!(
        "a file in its folder it cannot read stops it taking any change{foreign}: its log says which"
    )
}

/// [`ROUTER_TAKES_WITHIN`]; for tests only, `UNITGEN_TEST_ROUTER_TAKES_WITHIN`
/// (seconds) makes it shorter, so that a router that never takes a change
/// fails its test in seconds.
fn router_takes_within() -> Duration {
    std::env::var("UNITGEN_TEST_ROUTER_TAKES_WITHIN")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(ROUTER_TAKES_WITHIN, Duration::from_secs)
}

/// The files in the routes folder no instance's routes unit wrote (added
/// by hand), shown escaped: a first suspect when the router takes no
/// change.
fn foreign_files(folder: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut names: Vec<String> = (entries.flatten())
        .filter(|entry| {
            let text = fs::read_to_string(entry.path()).unwrap_or_default();
            !text.starts_with(crate::render::route::ROUTES_HEADER)
        })
        .map(|entry| crate::diagnostic::shown(&entry.file_name().to_string_lossy()))
        .collect();
    names.sort();
    names
}

/// What the router at `address` answers for the mark `mark`, asked once:
/// whether it serves it (418); None when it does not listen.
pub fn serves_mark(address: SocketAddr, mark: &str) -> Option<Result<(), String>> {
    match probe(&format!("http://{address}"), MARK_HOST, mark) {
        Ok(MARK_STATUS) => Some(Ok(())),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => None,
        Ok(status) => Some(Err(format!("it answered {status}"))),
        Err(e) => Some(Err(e.to_string())),
    }
}

/// [`await_served`]'s questions, to the router at `address`: GET the mark
/// until it answers 418, `waiting` called once it did not at once. Why it
/// never did, on failure.
fn await_mark(
    address: SocketAddr,
    mark: &str,
    within: Duration,
    waiting: impl Fn(),
) -> Result<Taken, String> {
    let deadline = Instant::now() + within;
    let asked = Instant::now();
    let mut taken = Taken::Already;
    loop {
        let seen = match serves_mark(address, mark) {
            Some(Ok(())) => return Ok(taken),
            None => return Ok(Taken::Unknown),
            Some(Err(seen)) => seen,
        };
        if Instant::now() >= deadline {
            return Err(seen);
        }
        if asked.elapsed() >= Duration::from_secs(2) {
            waiting();
        }
        taken = Taken::Now;
        std::thread::sleep(MARK_POLL);
    }
}

const MARK_POLL: Duration = Duration::from_millis(100);

/// Whether the routes file is a handover's switch to its stand-ins (one a
/// killed apply left): not a hand change, and finishing the handover puts
/// the file back.
/// An unreadable record's switch is told as the unfinished handover, and
/// finishing it writes the file as the routes unit does.
pub fn routes_switched(record_path: &Path) -> bool {
    match recorded(record_path) {
        Ok(Some(Ok(record))) => {
            record.switched.is_some()
                && fs::read_to_string(&record.routes_file).ok() == record.switched
        }
        Ok(Some(Err(_))) => true,
        _ => false,
    }
}

/// What plan and status say of a handover an earlier command left, if any.
/// `when`: "an earlier" (plan: than now) or "a later" (status: than the
/// revision it shows), before the command the record names. A record a
/// newer unitgen wrote (or one that cannot be opened) is an error, as the
/// commands that would finish it refuse it.
pub fn left(record_path: &Path, when: &str) -> Result<Option<String>, String> {
    left_finished_by(record_path, when, "applying finishes it")
}

/// [`left`], saying which command finishes it (`finisher`: "applying
/// finishes it").
pub fn left_finished_by(
    record_path: &Path,
    when: &str,
    finisher: &str,
) -> Result<Option<String>, String> {
    let record = match recorded(record_path).map_err(|f| f.message)? {
        None => return Ok(None),
        Some(record) => record,
    };
    Ok(Some(match record {
        Ok(record) => format!(
            "{when} {}'s zero-downtime switch did not finish (its stand-in may still \
             run, or serve the traffic): {finisher}",
            record.command()
        ),
        Err(why) => format!(
            "{when} command's zero-downtime switch did not finish, its record unreadable \
             ({why}): {finisher} from what the host runs (the stand-ins, the routes \
             unit) and keeps the record as {}",
            kept_aside(record_path).display()
        ),
    }))
}

/// The containers of the stand-ins a handover under way runs (see
/// [`RECORD`]): no unit of the instance runs them, yet they are no strays.
/// Those of an unreadable record are its stand-in units in `unit_dir`.
pub fn standin_containers(record_path: &Path, unit_dir: &Path) -> Vec<String> {
    let standins = match recorded(record_path) {
        Ok(Some(Ok(record))) => record.standins,
        Ok(Some(Err(_))) => standin_units(unit_dir, record_path).unwrap_or_default(),
        _ => Vec::new(),
    };
    (standins.iter())
        .filter_map(|unit| unit.strip_suffix(".service"))
        .map(str::to_string)
        .collect()
}

/// Removes the stand-ins of a handover an earlier apply left, without
/// switching anything back (`destroy`: the routes go with the instance).
pub fn abandon(host: &Host, record_path: &Path, progress: &Progress) -> Result<(), Failure> {
    let Some(record) = read_record(record_path, host)? else {
        return Ok(());
    };
    remove_standins(host, &record.standins, progress)?;
    forget_record(record_path, &record)
}

/// The record at `path` (None: no handover under way); one that cannot be
/// read is rebuilt from `host` (see [`rebuild`]).
fn read_record(path: &Path, host: &Host) -> Result<Option<Record>, Failure> {
    match recorded(path)? {
        None => Ok(None),
        Some(Ok(record)) => Ok(Some(record)),
        Some(Err(why)) => rebuild(host, path, why).map(Some),
    }
}

/// The record at `path` as written, or why it cannot be read. One a newer
/// unitgen wrote is refused (kept as it is): taken for damage, it would be
/// finished from the host and set aside, without what it says.
fn recorded(path: &Path) -> Result<Option<Result<Record, String>>, Failure> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Ok(Some(Err(format!("{}: unreadable: {e}", path.display()))));
        }
        Err(e) => {
            return Err(Failure::untouched(format!(
                "reading {}: {e}",
                path.display()
            )));
        }
    };
    match serde_json::from_str(&text) {
        Ok(record) => Ok(Some(Ok(record))),
        Err(e) => match crate::state::written_by_newer(path, &e) {
            Some(newer) => Err(Failure::untouched(newer.to_string())),
            None => Ok(Some(Err(format!("{}: unreadable: {e}", path.display())))),
        },
    }
}

/// A handover whose record cannot be read, as the host shows it: the
/// stand-ins are the instance's stand-in units (their files carry
/// `[X-Unitgen-Standin]`), the routes file is the one the instance's
/// routes unit writes, switched while it is not what that unit wrote (its
/// digest); the routes unit, reloaded, puts it back.
fn rebuild(host: &Host, path: &Path, why: String) -> Result<Record, Failure> {
    let standins = standin_units(&host.unit_dir, path)?;
    let instance = instance_of(path);
    let installed = fs::read_dir(&host.unit_dir)
        .map(|entries| entries.flatten().collect::<Vec<_>>())
        .unwrap_or_default();
    let routes = installed.iter().find_map(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("{instance}-")) || !name.ends_with(".service") {
            return None;
        }
        let owner = crate::render::owner(&fs::read_to_string(entry.path()).ok()?)?;
        let file = owner.routes.as_ref()?;
        (crate::model::prefix(&owner.app, &owner.instance) == instance).then(|| {
            let file = crate::router::on_host(host.root.as_deref(), Path::new(file));
            (name, file, owner.routes_digest)
        })
    });
    let (routes_unit, routes_file, switched) = match routes {
        Some((unit, file, digest)) => {
            let current = fs::read(&file).ok();
            let as_written = (current.as_deref())
                .is_some_and(|bytes| Some(crate::render::content_digest(bytes)) == digest);
            let switched = (current.filter(|_| !as_written))
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
            (Some(unit), file, switched)
        }
        None => (None, PathBuf::new(), None),
    };
    Ok(Record {
        routes_file,
        previous: String::new(),
        switched,
        standins,
        probes: Vec::new(),
        by: None,
        unreadable: Some(Unreadable { why, routes_unit }),
    })
}

/// `<app>-<instance>`, the name of the instance's state folder, which
/// holds its record.
fn instance_of(record_path: &Path) -> String {
    (record_path.parent().and_then(Path::file_name))
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The instance's stand-in units in `unit_dir`, by their files.
fn standin_units(unit_dir: &Path, record_path: &Path) -> Result<Vec<String>, Failure> {
    let instance = instance_of(record_path);
    let entries = match fs::read_dir(unit_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let suffix = format!("{}.service", crate::model::STANDIN_SUFFIX);
    let mut units = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("{instance}-")) || !name.ends_with(&suffix) {
            continue;
        }
        let Ok(text) = fs::read_to_string(unit_dir.join(&name)) else {
            continue;
        };
        if crate::render::standin_owner(&text)
            .is_some_and(|(app, of)| crate::model::prefix(&app, &of) == instance)
        {
            units.push(name);
        }
    }
    units.sort();
    Ok(units)
}

/// Where each stand-in's service publishes the ports its stand-in does:
/// what must answer before the router goes back to it.
fn own_addresses(standins: &[String]) -> Vec<String> {
    let mut urls = Vec::new();
    for standin in standins {
        let Some(container) = standin.strip_suffix(".service") else {
            continue;
        };
        let Some(service) = container.strip_suffix(crate::model::STANDIN_SUFFIX) else {
            continue;
        };
        // The service's own ports, asked once, not once per stand-in port.
        let own = docker::published_ports(service);
        for (container_port, _, _) in docker::published_ports(container) {
            if let Some((_, address, port)) = own.iter().find(|(p, _, _)| *p == container_port) {
                let address = match address.as_str() {
                    "0.0.0.0" | "" => "127.0.0.1".to_string(),
                    "::" => "[::1]".to_string(),
                    a if a.contains(':') => format!("[{a}]"),
                    a => a.to_string(),
                };
                urls.push(format!("http://{address}:{port}"));
            }
        }
    }
    urls
}

/// Stops and deletes stand-ins (never enabled: nothing else to undo).
fn remove_standins(host: &Host, names: &[String], progress: &Progress) -> Result<(), Failure> {
    let systemd = host.connect()?;
    // One being started (systemd restarting a stand-in that failed, once
    // its `RestartSec=` is over, on a busy host): stopping it kills its
    // `docker run` mid-way, and the engine may create and start the
    // container after the unit's `ExecStopPost=` found none to remove.
    let starting = (systemd.active_states(names))
        .map_err(|e| Failure::untouched(e.to_string()))?
        .iter()
        .any(|state| state == "activating");
    super::converge::stop(&systemd, names, progress)?;
    // Gone when the stop job is done, unless Docker's removal lags: then
    // the next handover would find the name taken.
    let containers: Vec<String> = (names.iter())
        .filter_map(|n| n.strip_suffix(".service"))
        .map(str::to_string)
        .collect();
    docker::free_names(&containers, docker::NAME_RELEASE).map_err(Failure::untouched)?;
    if starting {
        remove_late_containers(&containers)?;
    }
    super::converge::remove_what_units_made(host, names, progress)?;
    for name in names {
        unit_dir::remove_if_exists(&host.unit_dir.join(name))?;
    }
    systemd
        .reload()
        .map_err(|e| Failure::untouched(e.to_string()))?;
    systemd.reset_failed_all(names);
    Ok(())
}

/// How long a `docker run` killed mid-way may still have its container
/// created and started by the engine (seen: a stand-in's, running after
/// its unit was stopped, at load 30).
const LATE_CREATE: Duration = Duration::from_secs(10);

/// Removes `containers` that appear within [`LATE_CREATE`] (see
/// [`remove_standins`]), waiting until the engine has.
fn remove_late_containers(containers: &[String]) -> Result<(), Failure> {
    let until = Instant::now() + LATE_CREATE;
    while Instant::now() < until {
        // One question to the engine when none is there.
        docker::free_names(containers, docker::NAME_RELEASE).map_err(Failure::untouched)?;
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

/// Writes the routes file the router watches, staged in the router's own
/// folder (the routes folder's parent), so that Traefik applies the change
/// at once (see `unit_dir::write_atomic_watched`).
fn write_routes(routes_file: &Path, text: &str) -> Result<(), Failure> {
    let staging = crate::model::route::staging_dir(routes_file);
    unit_dir::sweep_leftovers(staging)?;
    unit_dir::write_atomic_watched(routes_file, staging, text.as_bytes())?;
    Ok(())
}

fn write_record(path: &Path, record: &Record) -> Result<(), Failure> {
    let json = serde_json::to_string_pretty(record).expect("a record serializes");
    unit_dir::write_atomic_mode(path, json.as_bytes(), 0o600)?;
    Ok(())
}

/// The host port Docker picked for a stand-in's container port.
fn published_port(container: &str, port: u16) -> Result<u16, Failure> {
    (docker::published_ports(container).into_iter())
        .find(|(published, _, _)| *published == port)
        .map(|(_, _, host_port)| host_port)
        .ok_or_else(|| {
            Failure::untouched(format!(
                "the stand-in's container {container} publishes no port for {port}"
            ))
        })
}

/// Polls `url` as the router would, until it answers or [`HEALTHY_WITHIN`].
fn wait_healthy(url: &str, route: &Route, what: &str) -> Result<(), Failure> {
    let path = route.health_path.as_deref().unwrap_or("/");
    let deadline = Instant::now() + HEALTHY_WITHIN;
    let mut last;
    loop {
        last = probe(url, &route.host, path);
        match &last {
            Ok(status) if route.health_path.is_none() || (200..400).contains(status) => {
                return Ok(());
            }
            _ if Instant::now() >= deadline => break,
            _ => std::thread::sleep(POLL),
        }
    }
    let seen = match last {
        Ok(status) => format!("it answered {status}"),
        Err(e) => e.to_string(),
    };
    Err(Failure::untouched(format!(
        "{what} did not become healthy within {}s: GET {path} on {url} (Host: {}): {seen}",
        HEALTHY_WITHIN.as_secs(),
        route.host
    )))
}

/// One `GET` over HTTP/1.1: the status, or why there was none.
fn probe(url: &str, host: &str, path: &str) -> std::io::Result<u16> {
    let other = std::io::Error::other;
    let authority = url.strip_prefix("http://").unwrap_or(url);
    let (address, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| other(format!("no port in {url}")))?;
    let address = address.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = (port.parse()).map_err(|_| other(format!("bad port in {url}")))?;
    let socket: SocketAddr = (address, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| other(format!("{address} has no address")))?;
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&socket, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: unitgen\r\nConnection: close\r\n\r\n"
    );
    // One write: a server may answer (and close) after the first packet.
    stream.write_all(request.as_bytes())?;
    let mut head = [0u8; 32];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..])? {
            0 => break,
            n => read += n,
        }
    }
    let line = String::from_utf8_lossy(&head[..read]);
    line.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| other("no HTTP answer (the connection closed)".to_string()))
}

/// Each service of a routes file with the URL of its (first) server.
fn backend_urls(text: &str) -> Vec<(String, String)> {
    #[derive(Deserialize)]
    struct File {
        http: Option<Http>,
    }
    #[derive(Deserialize)]
    struct Http {
        #[serde(default)]
        services: indexmap::IndexMap<String, Service>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Service {
        load_balancer: Option<LoadBalancer>,
    }
    #[derive(Deserialize)]
    struct LoadBalancer {
        #[serde(default)]
        servers: Vec<Server>,
    }
    #[derive(Deserialize)]
    struct Server {
        url: String,
    }
    let Ok(file) = serde_saphyr::from_str::<File>(text) else {
        return Vec::new();
    };
    (file
        .http
        .map(|h| h.services)
        .unwrap_or_default()
        .into_iter())
    .filter_map(|(name, service)| {
        let server = service.load_balancer?.servers.into_iter().next()?;
        Some((name, server.url))
    })
    .collect()
}

/// `text` with every `url:` whose value is `old` naming `new` instead:
/// only backend addresses change, byte for byte the rest stays.
fn replace_url(text: &str, old: &str, new: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let replaced = line.split_once("url: ").and_then(|(before, value)| {
            let bare = value.trim_end();
            let quote = bare.chars().next().filter(|c| *c == '"' || *c == '\'');
            let unquoted = match quote {
                Some(q) => bare.strip_prefix(q)?.strip_suffix(q)?,
                None => bare,
            };
            (unquoted == old).then(|| {
                let q = quote.map(String::from).unwrap_or_default();
                let end = &value[bare.len()..];
                format!("{before}url: {q}{new}{q}{end}")
            })
        });
        out.push_str(replaced.as_deref().unwrap_or(line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = concat!(
        "# unitgen: the routes of blog live\n",
        "http:\n",
        "  routers:\n",
        "    blog-live-web:\n",
        "      rule: Host(`blog.example.test`)\n",
        "      service: blog-live-web\n",
        "  services:\n",
        "    blog-live-web:\n",
        "      loadBalancer:\n",
        "        servers:\n",
        "        - url: http://127.0.0.1:18090\n",
        "    blog-live-api:\n",
        "      loadBalancer:\n",
        "        servers:\n",
        "        - url: 'http://127.0.0.1:180901'\n",
    );

    /// A newer unitgen's handover record and stand-ins (a field this one
    /// does not know) were read without it: the record finished and
    /// removed, the stand-ins written again by apply, what the newer one
    /// said lost. Both are refused now, as written by a newer unitgen,
    /// while damaged ones are still told as damaged.
    #[test]
    fn records_of_a_newer_unitgen_are_refused_not_taken_for_damage() {
        let dir = tempfile::tempdir().unwrap();
        let handover = Handover {
            routes_file: PathBuf::from("/srv/router/dynamic/blog-live.yaml"),
            record: dir.path().join(RECORD),
            services: vec![Routed {
                unit: "blog-live-web.service".into(),
                standin: UnitFile {
                    name: "blog-live-web.next.service".into(),
                    text: "[Unit]\n".into(),
                },
                standin_container: "blog-live-web.next".into(),
                routes: vec![Route {
                    name: "blog-live-web".into(),
                    container_port: 80,
                    host: "blog.example.test".into(),
                    health_path: None,
                }],
            }],
            replacement: Replacement::NewVersion,
        };
        handover.store(dir.path(), None).unwrap();
        assert!(handover.is_stored(dir.path(), None));
        assert!(refuse_newer_stored(dir.path()).is_ok());
        let stored = dir.path().join(STORED);
        let text = fs::read_to_string(&stored).unwrap();
        for newer in [
            text.replacen('{', "{\n  \"format\": 2,", 1),
            text.replacen("\"health_path\"", "\"health_port\": 81, \"health_path\"", 1),
        ] {
            fs::write(&stored, &newer).unwrap();
            let said = refuse_newer_stored(dir.path()).unwrap_err();
            assert!(said.contains("written by a newer unitgen"), "{said}");
            let read = Handover::stored(dir.path(), None, PathBuf::new(), Replacement::FreshCopy);
            assert!(matches!(read, Err(Unusable::Newer(_))));
        }
        fs::write(&stored, "{\"routes_file\": ").unwrap();
        assert!(
            refuse_newer_stored(dir.path()).is_ok(),
            "damaged, not newer"
        );
        let read = Handover::stored(dir.path(), None, PathBuf::new(), Replacement::FreshCopy);
        assert!(matches!(read, Err(Unusable::Damaged(_))));

        let record = dir.path().join(RECORD);
        let written = r#"{"routes_file": "/x", "previous": "", "switched": null, "standins": [], "probes": []}"#;
        fs::write(&record, written).unwrap();
        assert!(left(&record, "an earlier apply").unwrap().is_some());
        let newer = written.replacen('{', "{\"format\": 2, ", 1);
        fs::write(&record, &newer).unwrap();
        let said = left(&record, "an earlier apply").unwrap_err();
        assert!(said.contains("written by a newer unitgen"), "{said}");
        assert!(standin_containers(&record, dir.path()).is_empty());
        assert!(!routes_switched(&record));
        assert_eq!(fs::read_to_string(&record).unwrap(), newer, "kept as it is");
        fs::write(&record, "{\"routes_file\"").unwrap();
        let said = left(&record, "an earlier apply").unwrap().unwrap();
        assert!(said.contains("its record unreadable"), "{said}");
    }

    #[test]
    fn reads_each_services_backend() {
        assert_eq!(
            backend_urls(FILE),
            vec![
                (
                    "blog-live-web".to_string(),
                    "http://127.0.0.1:18090".to_string()
                ),
                (
                    "blog-live-api".to_string(),
                    "http://127.0.0.1:180901".to_string()
                ),
            ]
        );
        assert!(backend_urls("not: [yaml").is_empty());
    }

    #[test]
    fn switches_only_the_named_backend_and_back() {
        let switched = replace_url(FILE, "http://127.0.0.1:18090", "http://127.0.0.1:40001");
        assert!(switched.contains("- url: http://127.0.0.1:40001\n"));
        // A URL the old one is a prefix of is another backend: kept.
        assert!(switched.contains("- url: 'http://127.0.0.1:180901'\n"));
        assert_eq!(switched.lines().count(), FILE.lines().count());
        let back = replace_url(
            &switched,
            "http://127.0.0.1:40001",
            "http://127.0.0.1:18090",
        );
        assert_eq!(back, FILE);
        let quoted = replace_url(FILE, "http://127.0.0.1:180901", "http://[::1]:7");
        assert!(quoted.contains("- url: 'http://[::1]:7'\n"));
    }

    #[test]
    fn a_switch_carries_its_own_mark_and_nothing_else_changes() {
        let name = "blog-live.yaml";
        let previous = route::marked(FILE, name).unwrap();
        let switched = replace_url(
            &previous,
            "http://127.0.0.1:18090",
            "http://127.0.0.1:40001",
        );
        let switched = route::marked(&switched, name).unwrap();
        // One mark, its own: the router tells the switch from the file put back.
        assert_eq!(switched.matches("service: noop@internal\n").count(), 1);
        let (before, after) = (
            route::mark_of(&previous, name),
            route::mark_of(&switched, name),
        );
        assert!(before.is_some() && after.is_some() && before != after);
        // The rest is the switch, byte for byte.
        assert_eq!(
            route::unmarked(&switched),
            replace_url(FILE, "http://127.0.0.1:18090", "http://127.0.0.1:40001")
        );
    }

    #[test]
    fn a_router_that_takes_no_change_is_told_with_the_files_unitgen_did_not_write() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("blog-live.yaml"), FILE).unwrap();
        fs::write(dir.path().join("by-hand.yaml"), "http:\n  routers: [\n").unwrap();
        fs::write(dir.path().join("x\x1b[2Jy.yaml"), "").unwrap();
        assert_eq!(
            foreign_files(dir.path()),
            ["by-hand.yaml", "x\\u{1b}[2Jy.yaml"]
        );
    }

    /// A server answering `statuses` in turn, one per connection.
    fn answering(statuses: Vec<u16>) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for status in statuses.iter().cycle() {
                let Ok((mut conn, _)) = listener.accept() else {
                    return;
                };
                let mut buffer = [0u8; 512];
                let _ = conn.read(&mut buffer);
                let _ = write!(conn, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            }
        });
        address
    }

    #[test]
    fn the_router_is_asked_until_it_serves_the_file_as_written() {
        let mark = "/626c6f672d6c6976652e79616d6c/0123456789abcdef";
        let within = Duration::from_secs(10);
        // 404 until Traefik took the file, then its mark's 418.
        let router = answering(vec![404, 404, 418]);
        assert_eq!(await_mark(router, mark, within, || {}), Ok(Taken::Now));
        assert_eq!(
            await_mark(answering(vec![418]), mark, within, || {}),
            Ok(Taken::Already)
        );
        // Never taken: why, once the time is up.
        let router = answering(vec![404]);
        let seen = await_mark(router, mark, Duration::from_millis(300), || {});
        assert_eq!(seen, Err("it answered 404".to_string()));
        // Not listening: it reads the folder as it is when it starts.
        let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = gone.local_addr().unwrap();
        drop(gone);
        assert_eq!(await_mark(address, mark, within, || {}), Ok(Taken::Unknown));
        assert_eq!(serves_mark(address, mark), None);
        // plan's and status's one question.
        assert_eq!(serves_mark(answering(vec![418]), mark), Some(Ok(())));
        assert_eq!(
            serves_mark(answering(vec![404]), mark),
            Some(Err("it answered 404".to_string()))
        );
    }

    #[test]
    fn probes_speak_http() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 256];
            while !request.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buffer).unwrap();
                request.extend_from_slice(&buffer[..n]);
            }
            conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
                .unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        assert_eq!(probe(&url, "blog.example.test", "/healthz").unwrap(), 503);
        let request = server.join().unwrap();
        assert!(request.starts_with("GET /healthz HTTP/1.1\r\nHost: blog.example.test\r\n"));
        // Nobody listens there any more.
        assert!(probe(&url, "blog.example.test", "/").is_err());
    }
}
