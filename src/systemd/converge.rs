//! Converging a host to an instance's units over D-Bus: the heart of
//! `apply`, `rollback` and `destroy`.
//!
//! Order of work, and why:
//! 1. removed units are stopped, disabled and deleted first, so that the
//!    ports and names they hold are free for what comes next;
//! 2. new and changed files are written atomically; new units, and
//!    unchanged ones found not enabled, are enabled; systemd reloads once;
//! 3. one batch of jobs: start for new units and unchanged ones found
//!    stopped, restart for changed ones and unchanged ones that run
//!    something else than their file (see [`Plan::observe`]), reload for
//!    changed routes units (see [`crate::plan::reloads_on_change`]). They are
//!    enqueued together and systemd runs them in dependency order
//!    (`After=`), in parallel where the order allows;
//! 4. every touched unit must stay up for the settle time counted from its
//!    own start, so a container that starts and then exits is caught (see
//!    [`settle`] for why this costs no fixed wait on every apply);
//! 5. if anything failed, the files found at the start are restored and the
//!    units that were changed are brought back as they were.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::model::route::{ROUTER_UNIT, router_container};
use crate::plan::{Plan, reloads_on_change};
use crate::progress::Progress;
use crate::render::UnitFile;
use crate::systemd::explain::{Evidence, Explanation, explain_all};
use crate::systemd::{JobKind, JobOutcome, JobResult, Systemd};
use crate::unit_dir;
use crate::{docker, fault};

/// The system manager's runtime unit folder: `systemctl --runtime` writes
/// there, and a reboot empties it.
const RUNTIME_UNIT_DIR: &str = "/run/systemd/system";

/// Where a host's units live and how to reach its systemd.
#[derive(Debug, Clone)]
pub struct Host {
    pub unit_dir: PathBuf,
    /// D-Bus address of the manager; None for the system (or session) bus.
    pub bus: Option<String>,
    pub user: bool,
    /// Root of the host's file system when it is not `/` (a container):
    /// its journal is read from there.
    pub root: Option<PathBuf>,
}

impl Host {
    pub fn connect(&self) -> Result<Systemd, Failure> {
        Systemd::connect(self.bus.as_deref(), self.user).map_err(|e| Failure::new(e.to_string()))
    }

    /// The file systemd loaded `unit` from (`fragment_path`, as the host's
    /// file system names it), when it is not the one in the unit directory:
    /// a file of the same name in a directory systemd reads first
    /// (`/etc/systemd/system.control`, `/run/systemd/transient`, a
    /// generator's), which it runs instead of unitgen's. None when systemd
    /// loaded unitgen's file, or none.
    pub fn loaded_elsewhere(&self, unit: &str, fragment_path: &str) -> Option<String> {
        use std::os::unix::fs::MetadataExt as _;
        if fragment_path.is_empty() {
            return None;
        }
        let ours = self.unit_dir.join(unit);
        let loaded = match &self.root {
            Some(root) => root.join(fragment_path.trim_start_matches('/')),
            None => PathBuf::from(fragment_path),
        };
        // The same file by another path (a linked unit directory) is ours.
        let same_file = || match (std::fs::metadata(&loaded), std::fs::metadata(&ours)) {
            (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
            _ => false,
        };
        (loaded != ours && !same_file()).then(|| fragment_path.to_string())
    }

    /// The folder `EnableUnitFiles` writes enablement links into (`T.wants/`
    /// and the like): the user's configuration folder for a user manager
    /// (where its units are installed), the system's `/etc/systemd/system`
    /// otherwise, whatever folder the unit files are in.
    pub fn links_dir(&self) -> PathBuf {
        match (&self.root, self.user) {
            (_, true) => self.unit_dir.clone(),
            (Some(root), false) => root.join("etc/systemd/system"),
            (None, false) => PathBuf::from("/etc/systemd/system"),
        }
    }

    /// The folders whose enablement links systemd reads: [`Host::links_dir`],
    /// and the runtime one `systemctl enable --runtime` writes (links there
    /// last until a reboot), each with the path it is named by (None: the
    /// first). The user manager's runtime folder is under
    /// `$XDG_RUNTIME_DIR`, when that is set.
    pub fn link_dirs(&self) -> Vec<(PathBuf, Option<String>)> {
        let runtime = match (&self.root, self.user) {
            (_, true) => std::env::var_os("XDG_RUNTIME_DIR")
                .map(|dir| PathBuf::from(dir).join("systemd/user"))
                .map(|dir| (dir.clone(), dir.display().to_string())),
            (root, false) => Some((
                crate::router::on_host(root.as_deref(), Path::new(RUNTIME_UNIT_DIR)),
                RUNTIME_UNIT_DIR.to_string(),
            )),
        };
        std::iter::once((self.links_dir(), None))
            .chain(runtime.map(|(dir, named)| (dir, Some(named))))
            .collect()
    }

    /// The Docker environment this host's units get from their manager, as
    /// unitgen reaches it (see [`docker::environment`]), after a warning
    /// for each variable unitgen's own environment sets otherwise. None,
    /// after a warning, when the manager cannot be asked: unitgen's docker
    /// calls then keep unitgen's environment (the command fails anyway
    /// where it needs systemd).
    pub fn docker_environment(&self) -> Option<docker::environment::Environment> {
        let entries = self
            .connect()
            .map_err(|f| f.message)
            .and_then(|systemd| systemd.environment().map_err(|e| e.to_string()));
        let entries = match entries {
            Ok(entries) => entries,
            Err(why) => {
                let why = why.lines().next().unwrap_or_default().to_owned();
                crate::say!(
                    "warning: could not read the Docker environment of the units from \
                     systemd ({why}); unitgen's docker calls use unitgen's own environment"
                );
                return None;
            }
        };
        let units = docker::environment::Environment::of_manager(&entries);
        for disagreement in units.disagreements(|name| std::env::var(name).ok()) {
            crate::say!("{}", disagreement.warning(self.user));
        }
        Some(match &self.root {
            Some(root) => units.seen_from(root),
            None => units,
        })
    }
}

/// Why a convergence did not complete.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// What was seen of each unit that failed, when it failed.
    evidence: Vec<Evidence>,
    /// Each failed unit, explained (once the convergence has ended).
    pub explained: Vec<Explanation>,
    pub host: HostAfter,
}

/// What the host runs after a failed convergence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAfter {
    /// It failed before anything was changed.
    Untouched,
    /// Things were changed, and the previous revision was put back.
    Restored,
    /// Nothing of the instance was installed before (a first apply): what
    /// it had started was stopped and removed again.
    Cleared,
    /// Things were changed, and putting the previous revision back failed.
    NotRestored,
}

impl Failure {
    /// A failure before anything on the host was changed.
    pub fn untouched(message: impl Into<String>) -> Self {
        Failure::new(message)
    }

    /// Explains each failed unit from what was seen of it, asking the
    /// host's manager through `systemd`.
    pub(super) fn explain(&mut self, host: &Host, systemd: &Systemd) {
        self.explained = explain_all(host, systemd, &self.evidence);
    }

    fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            evidence: Vec::new(),
            explained: Vec::new(),
            host: HostAfter::Untouched,
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::new(e.to_string())
    }
}

pub struct Options<'a> {
    /// How long each touched unit must stay up after its own job is done
    /// (see [`settle`]).
    pub settle: Duration,
    /// Called with every unit about to be started or restarted, before
    /// anything on the host is changed (apply fetches their images here);
    /// an error ends the convergence with the host untouched.
    pub prepare: &'a dyn Fn(&[String]) -> Result<(), Failure>,
    /// Called once systemd has loaded the new unit files: from then on, a
    /// unit that (re)starts runs them.
    pub on_loaded: &'a dyn Fn(),
    /// Called when a failed convergence puts the previous revision back,
    /// before any unit is restarted (apply puts the previous secrets back
    /// here, so the restarted units read them).
    pub before_restore: &'a dyn Fn() -> Result<(), Failure>,
}

/// What a successful convergence did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub started: Vec<String>,
    pub restarted: Vec<String>,
    pub reloaded: Vec<String>,
    pub removed: Vec<String>,
    /// Units found not enabled, now enabled.
    pub enabled: Vec<String>,
}

/// Carries out `plan` (installed → desired units of one instance, and the
/// repairs of what the host got wrong: see [`Plan::observe`]) so the host
/// runs exactly the desired units. On failure, restores the installed ones.
pub fn converge(
    host: &Host,
    plan: &Plan,
    options: &Options,
    progress: &Progress,
) -> Result<Outcome, Failure> {
    if plan.is_empty() && plan.repair.is_empty() {
        return Ok(Outcome::default());
    }
    let systemd = host.connect()?;
    let mut starting = plan.to_start();
    starting.extend(plan.to_restart());
    starting.extend(plan.to_reload());
    (options.prepare)(&starting)?;
    let mut reached = Reached::Nothing;
    match run(host, &systemd, plan, options, progress, &mut reached) {
        Ok(outcome) => Ok(outcome),
        // Nothing was changed: nothing to restore.
        Err(failure) if reached == Reached::Nothing => Err(failure),
        Err(mut failure) => {
            // Restored first, explained after: the explanation waits for
            // journald (up to seconds on a busy host), while the failed
            // unit would run into systemd's own restart of it.
            progress.line(if plan.installs_from_nothing() {
                "removing what this apply started (nothing ran before)"
            } else {
                "restoring the previous revision"
            });
            let idle = plan.to_start();
            let running_before: Vec<String> = plan
                .keep
                .iter()
                .filter(|unit| !idle.contains(unit))
                .cloned()
                .collect();
            let restored = (options.before_restore)().and_then(|()| {
                let jobs_sent = reached == Reached::Jobs;
                restore(host, &systemd, plan, &running_before, jobs_sent, progress)
            });
            failure.host = match restored {
                Ok(()) if plan.installs_from_nothing() => HostAfter::Cleared,
                Ok(()) => HostAfter::Restored,
                Err(e) => {
                    failure.message.push_str(&format!(
                        "; restoring the previous revision failed too: {}",
                        e.message
                    ));
                    HostAfter::NotRestored
                }
            };
            failure.explain(host, &systemd);
            Err(failure)
        }
    }
}

fn names(units: &[UnitFile]) -> Vec<String> {
    units.iter().map(|u| u.name.clone()).collect()
}

fn bus(e: crate::systemd::Error) -> Failure {
    Failure::new(e.to_string())
}

/// How far an apply got before it failed: what its restore must undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    Nothing,
    /// Removed units stopped, unit files written, enabled or reloaded: no
    /// process of a kept unit was touched yet.
    Files,
    /// The starts, restarts and reloads were sent.
    Jobs,
}

/// `reached` moves on before each kind of change to the host, so that a
/// failure before any is reported as one that changed nothing, and one
/// before the jobs restarts nothing on its restore.
fn run(
    host: &Host,
    systemd: &Systemd,
    plan: &Plan,
    options: &Options,
    progress: &Progress,
    reached: &mut Reached,
) -> Result<Outcome, Failure> {
    let mut outcome = Outcome::default();
    if !plan.is_empty() {
        unit_dir::check_writable(&host.unit_dir).map_err(|e| {
            Failure::new(format!(
                "cannot write unit files to {}: {e}",
                host.unit_dir.display()
            ))
        })?;
    }
    if !plan.remove.is_empty() {
        let removed = names(&plan.remove);
        *reached = Reached::Files;
        stop(systemd, &removed, progress)?;
        remove_what_units_made(host, &removed, progress)?;
        systemd.disable(&removed).map_err(bus)?;
        outcome.removed = removed;
        fault::point("after-stop");
    }
    // Removed files go, new and changed ones are written and enabled (from
    // the files on disk, with units found not enabled): then one reload,
    // which also makes the targets they are wanted by (the instance target,
    // multi-user.target) see their new wants. The reload comes before any
    // start, even from scratch where systemd would load the new units when
    // first named: a unit started before a reload loses its start count at
    // it, so `restart: on-failure:N` restarted once more than N (tests/
    // compose_apply.rs on_failure_n_...).
    *reached = Reached::Files;
    unit_dir::write_plan(&host.unit_dir, plan)?;
    fault::point("after-write-units");
    let enable = plan.to_enable();
    if !enable.is_empty() {
        systemd.enable(&enable).map_err(bus)?;
    }
    let changed: Vec<String> = plan.change.iter().map(|c| c.new.name.clone()).collect();
    let mut relink = plan.started_by_apply(&changed);
    relink.extend(plan.to_relink());
    reenable(systemd, &relink)?;
    fault::point("after-enable");
    systemd.reload().map_err(bus)?;
    (options.on_loaded)();
    fault::point("after-reload");

    let mut starts = plan.to_start();
    // Restarting the instance target would restart every unit that is part
    // of it: a changed target is only started (a no-op when it runs).
    let (targets, restarts): (Vec<String>, Vec<String>) = plan
        .to_restart()
        .into_iter()
        .partition(|name| name.ends_with(".target"));
    starts.extend(targets);
    let reloads = plan.to_reload();
    // A unit's start rate limit (a service's `on-failure:N`) counts from
    // this apply on, as Docker counts restarts from a container's start.
    let touched: Vec<String> = (starts.iter().chain(&restarts).chain(&reloads))
        .cloned()
        .collect();
    systemd.reset_failed_all(&touched);
    // systemd's count of its own restarts of each unit (`Restart=`), before
    // the jobs: one that rose since is a unit that went down, however
    // briefly. Read now, not as each job ends: that would hold up the
    // reading of the other jobs' ends while systemd is busiest. The reset
    // just above set every count to 0, and only a unit systemd ran before
    // can have been restarted since (one waiting out its `RestartSec=`):
    // a unit new to this apply counts from 0 unread, so an apply from
    // scratch reads none.
    let restarts_before: HashMap<String, u32> = if options.settle.is_zero() {
        HashMap::new()
    } else {
        let added = names(&plan.add);
        let known: Vec<String> = (touched.iter())
            .filter(|unit| !added.contains(unit))
            .cloned()
            .collect();
        let summaries = systemd.summaries(&known).map_err(bus)?;
        (known.into_iter())
            .zip(summaries.iter().map(|s| s.n_restarts))
            .collect()
    };
    // Starts, restarts and reloads go out as one batch so systemd can order
    // them against each other; several calls would serialize the groups.
    let mut ended = HashMap::new();
    let watch = (!options.settle.is_zero()).then_some(&mut ended);
    *reached = Reached::Jobs;
    let sent_at = crate::state::now_micros();
    let jobs = start_and_restart(
        systemd,
        &Jobs {
            starts: &starts,
            restarts: &restarts,
            reloads: &reloads,
        },
        progress,
        watch,
    );
    fault::point("after-start");

    // Units whose job succeeded are watched for the settle time even when
    // others failed: every unit that does not come up is reported.
    let failed_jobs: Vec<String> = match &jobs {
        Err(failure) => failure.evidence.iter().map(|e| e.unit.clone()).collect(),
        Ok(()) => Vec::new(),
    };
    let to_settle: Vec<(String, Ended)> = starts
        .iter()
        .chain(&restarts)
        .chain(&reloads)
        .filter(|unit| !failed_jobs.contains(unit))
        .filter_map(|unit| {
            let ended = Ended {
                at: ended.remove(unit)?,
                restarts: restarts_before.get(unit).copied().unwrap_or(0),
                sent_at,
            };
            Some((unit.clone(), ended))
        })
        .collect();
    let settled = settle(
        systemd,
        &host.unit_dir,
        &to_settle,
        options.settle,
        progress,
    );
    match (jobs, settled) {
        (Ok(()), Ok(())) => {}
        (Err(failure), Ok(())) | (Ok(()), Err(failure)) => return Err(failure),
        (Err(mut jobs), Err(settled)) => {
            jobs.message = format!("{}; {}", jobs.message, settled.message);
            jobs.evidence.extend(settled.evidence);
            return Err(jobs);
        }
    }
    // A routes file written is not yet served: the router may take no
    // change (a broken file beside it). Failing here puts the previous
    // routes back, as for a reload that failed.
    crate::router::await_routes(host, &touched, progress)?;
    outcome.enabled = plan
        .repair
        .iter()
        .filter(|r| r.enable() || r.relink())
        .map(|r| r.unit.clone())
        .collect();
    outcome.started = starts;
    outcome.restarted = restarts;
    outcome.reloaded = reloads;
    Ok(outcome)
}

/// A changed unit's `[Install]` section may have changed (what it is
/// wanted by), or its links were moved by hand: its enablement symlinks are
/// made anew from its text, the runtime ones (`/run/systemd/system`) gone.
pub fn reenable(systemd: &Systemd, units: &[String]) -> Result<(), Failure> {
    if !units.is_empty() {
        systemd.disable(units).map_err(bus)?;
        systemd.disable_runtime(units).map_err(bus)?;
        systemd.enable(units).map_err(bus)?;
    }
    Ok(())
}

pub(super) fn stop(
    systemd: &Systemd,
    units: &[String],
    progress: &Progress,
) -> Result<(), Failure> {
    // A template (`blog-live-backup-failed@.service`) runs nothing itself
    // and systemd refuses jobs for it: its instances end on their own.
    let units: Vec<String> = units
        .iter()
        .filter(|u| !u.contains("@."))
        .cloned()
        .collect();
    let outcomes = watched(systemd, &[(JobKind::Stop, &units)], progress, None)?;
    failures(systemd, &outcomes, "stop")
}

/// A unit whose start or restart job succeeded.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ended {
    /// When its job ended.
    at: Instant,
    /// systemd's count of its own restarts of the unit (`Restart=`) before
    /// the job: one that rose since is a unit that went down.
    restarts: u32,
    /// When the job was sent (µs since the epoch): the run it started is
    /// the first the journal says started after it.
    sent_at: u64,
}

/// The units of one batch of jobs, by what is done to each.
#[derive(Default)]
pub(super) struct Jobs<'a> {
    pub starts: &'a [String],
    pub restarts: &'a [String],
    /// Reloaded if they run and can, else restarted.
    pub reloads: &'a [String],
}

impl Ended {
    /// When its job ended, in microseconds since the epoch (as systemd and
    /// the journal give times).
    fn at_micros(&self) -> u64 {
        std::time::SystemTime::now()
            .checked_sub(self.at.elapsed())
            .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |at| at.as_micros() as u64)
    }
}

/// `ended`: filled with when the job of each unit whose job succeeded ended.
pub(super) fn start_and_restart(
    systemd: &Systemd,
    jobs: &Jobs,
    progress: &Progress,
    ended: Option<&mut HashMap<String, Instant>>,
) -> Result<(), Failure> {
    let outcomes = watched(
        systemd,
        &[
            (JobKind::Start, jobs.starts),
            (JobKind::Restart, jobs.restarts),
            (JobKind::ReloadOrRestart, jobs.reloads),
        ],
        progress,
        ended,
    )?;
    failures(systemd, &outcomes, "start")
}

/// Enqueues the jobs and reports each result as it arrives; with `ended`,
/// notes when the job of each unit whose job succeeded ended.
fn watched(
    systemd: &Systemd,
    groups: &[(JobKind, &[String])],
    progress: &Progress,
    mut ended: Option<&mut HashMap<String, Instant>>,
) -> Result<Vec<JobOutcome>, Failure> {
    let requests: Vec<(JobKind, String)> = groups
        .iter()
        .flat_map(|(kind, units)| units.iter().map(move |u| (*kind, u.clone())))
        .collect();
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let mut pending: Vec<String> = requests.iter().map(|(_, u)| u.clone()).collect();
    progress.status(&format!("waiting for {}", pending.join(", ")));
    let verbs: HashMap<String, JobKind> = requests.iter().map(|(k, u)| (u.clone(), *k)).collect();
    let outcomes = systemd
        .run_batch(&requests, &mut |outcome: &JobOutcome| {
            if let Some(ended) = ended.as_mut().filter(|_| outcome.result == JobResult::Done) {
                ended.insert(outcome.unit.clone(), Instant::now());
            }
            pending.retain(|u| u != &outcome.unit);
            let verb = match verbs.get(&outcome.unit) {
                Some(JobKind::Start) => "start",
                Some(JobKind::Restart) => "restart",
                Some(JobKind::ReloadOrRestart) => "reload",
                _ => "stop",
            };
            // A stop of a unit systemd no longer knows (`failures` agrees):
            // already gone, as after a destroy or stand-in killed halfway.
            let mark = match outcome.result {
                JobResult::Done => "ok",
                JobResult::NotLoaded if verb == "stop" => "ok",
                _ => "FAILED",
            };
            progress.line(&format!(
                "  {verb:<7} {:<40} {mark} ({})",
                outcome.unit, outcome.result
            ));
            if !pending.is_empty() {
                progress.status(&format!("waiting for {}", pending.join(", ")));
            }
        })
        .map_err(bus)?;
    progress.finish();
    Ok(outcomes)
}

/// Every job that did not succeed, as one failure with what was seen of
/// each unit (read now: a restart by systemd would replace it).
fn failures(systemd: &Systemd, outcomes: &[JobOutcome], what: &str) -> Result<(), Failure> {
    // A stop of a unit systemd no longer knows is nothing to do.
    let failed: Vec<&JobOutcome> = outcomes
        .iter()
        .filter(|o| {
            o.result != JobResult::Done && !(what == "stop" && o.result == JobResult::NotLoaded)
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let mut evidence = Vec::new();
    for outcome in &failed {
        evidence.push(Evidence {
            unit: outcome.unit.clone(),
            job: Some(outcome.result.clone()),
            state: systemd.unit_state(&outcome.unit).map_err(bus)?,
            restarted: None,
        });
    }
    let list: Vec<&str> = failed.iter().map(|o| o.unit.as_str()).collect();
    Err(Failure {
        message: format!("did not {what}: {}", list.join(", ")),
        evidence,
        explained: Vec::new(),
        host: HostAfter::Untouched,
    })
}

/// How often the settle time looks at the units (one `ListUnitsByNames`
/// for all of them): often enough to see a failed unit before systemd
/// restarts it (`RestartSec=5s`), so that what is explained is the failed
/// run.
const SETTLE_POLL: Duration = Duration::from_millis(250);

/// How long the settle time waits for the router's container to run
/// (see `settle`): a started router's image is on the host already.
const ROUTER_RUNNING_WITHIN: Duration = Duration::from_secs(30);

/// How long systemd may take, at the end of the settle time, to see the
/// end of a `docker run` whose container is gone already.
const VANISHED_GRACE: Duration = Duration::from_secs(5);

/// Every unit just started or restarted must stay active, without systemd
/// restarting it, for the settle time counted from the end of its own job;
/// every unit that does not is reported.
///
/// Why this costs no fixed wait on every apply: a container that starts
/// and then exits is caught by watching it, and the watch of each unit
/// runs from its own start, while the other units are still starting
/// (systemd runs the batch in parallel; a look at the end sees whatever
/// went down meanwhile: not active, or restarted by systemd). So only what
/// is left of the window of the units that started last is waited for,
/// and not even that for units already proven by their start:
/// - a service whose container has a healthcheck: its start waited until
///   Docker found it healthy (see `render::docker::start_waits_for_health`),
///   which is the proof a time window only guesses at;
/// - a oneshot that completed, a target: done once their job is.
///
/// The window catches what dies at once (a bad flag, a missing file, a
/// crash on start); what fails later is a healthcheck's job.
fn settle(
    systemd: &Systemd,
    unit_dir: &Path,
    touched: &[(String, Ended)],
    window: Duration,
    progress: &Progress,
) -> Result<(), Failure> {
    if touched.is_empty() || window.is_zero() {
        return Ok(());
    }
    let units: Vec<String> = touched.iter().map(|(unit, _)| unit.clone()).collect();
    let now = systemd.summaries(&units).map_err(bus)?;
    // The units that must wait out their window: running, not proven by
    // their start (a healthcheck's), with their container if they run one.
    // Read from the files systemd loaded: no engine call.
    let mut done_when_exited: Vec<&String> = Vec::new();
    let (waited, windows): (Vec<(&String, Option<String>)>, Vec<Instant>) = touched
        .iter()
        .zip(&now)
        .filter(|(_, summary)| summary.sub_state == "running")
        .filter_map(|((unit, ended), _)| {
            let text = std::fs::read_to_string(unit_dir.join(unit)).unwrap_or_default();
            if crate::render::docker::done_when_exited(&text) {
                done_when_exited.push(unit);
            }
            if crate::render::docker::start_waits_for_health(&text) {
                return None;
            }
            // The router's start waits for nothing (its job ends when its
            // `docker run` is executed): on a loaded host, a router that
            // cannot start may not have failed yet when the window ends,
            // so its container is looked at too.
            let container = if unit == ROUTER_UNIT {
                Some(router_container().to_owned())
            } else {
                crate::render::owner(&text).and_then(|o| o.container())
            };
            Some(((unit, container), ended.at + window))
        })
        .unzip();
    let mut failed: Vec<Evidence> = Vec::new();
    let look = |states: Vec<String>, failed: &mut Vec<Evidence>| -> Result<(), Failure> {
        for ((unit, ended), state) in touched.iter().zip(states) {
            if state != "active" && !failed.iter().any(|f| &f.unit == unit) {
                failed.push(evidence_now(systemd, unit, ended)?);
            }
        }
        Ok(())
    };
    look(
        now.iter().map(|s| s.active_state.clone()).collect(),
        &mut failed,
    )?;
    // The router's job ended when its `docker run` was executed, before
    // its container existed (it waits for no readiness, so that a new
    // router's text need not restart every host's router): its window
    // runs from its container's start, once it is seen running, which a
    // loaded host may take seconds to get to (the window ended first, and
    // a router that exited a moment later passed).
    let mut router_unseen = (waited.iter().any(|(unit, _)| *unit == ROUTER_UNIT))
        .then(|| Instant::now() + ROUTER_RUNNING_WITHIN);
    let mut router_window = None;
    let deadline = windows.iter().max().copied();
    if deadline.is_some_and(|d| d > Instant::now()) || router_unseen.is_some() {
        let waiting = windows.len();
        progress.waiting(&format!(
            "checking that {} {} up for {}s after {} start",
            crate::progress::count(waiting, "unit"),
            if waiting == 1 { "stays" } else { "stay" },
            window.as_secs_f32(),
            if waiting == 1 { "its" } else { "their" },
        ));
        loop {
            if let Some(give_up) = router_unseen {
                let seen = docker::inspect(router_container()).filter(|c| c.status == "running");
                let running = seen.is_some();
                if let Some(container) = seen {
                    // Counted from its start, as Docker has it (from now,
                    // when that cannot be read).
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default();
                    let age = crate::cli::when::parse_iso_micros(&container.started_at)
                        .map(|started| now.saturating_sub(Duration::from_micros(started)))
                        .unwrap_or_default();
                    router_window = Some(Instant::now() + window.saturating_sub(age));
                }
                // Not running in time: the looks below tell why (its unit
                // failed or restarted, its container ended or is missing).
                if running
                    || Instant::now() >= give_up
                    || failed.iter().any(|f| f.unit == ROUTER_UNIT)
                {
                    router_unseen = None;
                }
            }
            let end = deadline.max(router_window);
            let left = end.map_or(Duration::ZERO, |end| {
                end.saturating_duration_since(Instant::now())
            });
            // The look at the deadline is the last one, below.
            if left <= SETTLE_POLL && router_unseen.is_none() {
                std::thread::sleep(left);
                break;
            }
            std::thread::sleep(SETTLE_POLL);
            look(systemd.active_states(&units).map_err(bus)?, &mut failed)?;
        }
        progress.finish();
    }
    // Failed and restarted between two looks (or before the first).
    let last = systemd.summaries(&units).map_err(bus)?;
    for ((unit, ended), summary) in touched.iter().zip(last) {
        if failed.iter().any(|f| &f.unit == unit) {
            continue;
        }
        if went_down(&summary, ended)
            && let Some(evidence) = went_down_evidence(systemd, unit, ended)?
        {
            failed.push(evidence);
        }
    }
    // A container that ended inside its window, whose unit still looks
    // active: `docker run --rm` ends only once the engine has removed the
    // container, which on a busy host takes longer than the rest of the
    // window. One engine call for all.
    let waited: Vec<(&String, String)> = (waited.into_iter())
        .filter(|(unit, _)| !failed.iter().any(|f| &f.unit == *unit))
        .filter_map(|(unit, container)| Some((unit, container?)))
        .collect();
    let (ended, vanished) = containers_ended(&waited, touched);
    // One that is done when its container exits 0 is judged by systemd
    // too: active (exited) once `docker run` has ended 0, failed else.
    let (done_or_not, ended): (Vec<_>, Vec<_>) =
        (ended.into_iter()).partition(|(unit, _)| done_when_exited.contains(unit));
    // Each is given systemd a while to tell (the unit leaves active, or
    // its restart count grows), so that what is explained is systemd's
    // account of the end (`docker run` exited with the container's
    // status), not a unit still `active (running)`:
    // - a container that exists and has ended (`certain`): `docker run`
    //   has yet to return, or systemd to see it, on a busy host. It failed,
    //   whatever systemd says by the end of the while;
    // - a container already removed (`--rm`): the engine removed it before
    //   `docker run` ended or systemd saw it end. One that stays active
    //   with no container is left to systemd's states, as above; so is one
    //   done when its container exits 0.
    let mut waiting: Vec<(&String, &Ended, bool)> = (ended.into_iter())
        .map(|(unit, ended)| (unit, ended, true))
        .chain((vanished.into_iter().chain(done_or_not)).map(|(unit, ended)| (unit, ended, false)))
        .collect();
    let grace = Instant::now() + VANISHED_GRACE;
    while !waiting.is_empty() && Instant::now() < grace {
        std::thread::sleep(SETTLE_POLL);
        let names: Vec<String> = waiting.iter().map(|(u, _, _)| (*u).clone()).collect();
        let summaries = systemd.summaries(&names).map_err(bus)?;
        let mut still = Vec::new();
        for ((unit, ended, certain), summary) in waiting.into_iter().zip(summaries) {
            if went_down(&summary, ended)
                && let Some(evidence) = went_down_evidence(systemd, unit, ended)?
            {
                failed.push(evidence);
            } else {
                still.push((unit, ended, certain));
            }
        }
        waiting = still;
    }
    for (unit, ended, _) in waiting.into_iter().filter(|(_, _, certain)| *certain) {
        failed.push(evidence_now(systemd, unit, ended)?);
    }
    if failed.is_empty() {
        return Ok(());
    }
    let list: Vec<&str> = failed.iter().map(|f| f.unit.as_str()).collect();
    Err(Failure {
        message: format!("did not stay up: {}", list.join(", ")),
        evidence: failed,
        explained: Vec::new(),
        host: HostAfter::Untouched,
    })
}

/// Units, each with how its job ended.
type UnitsWithJobs<'u> = Vec<(&'u String, &'u Ended)>;

/// The units among `units` (each with its container) whose container
/// exists and is not running (exited, being removed), then those whose
/// container is missing, which `settle` gives systemd a while to explain:
/// a `docker` that cannot reach the engine lists none, so a missing
/// container alone fails nothing. Each comes with how its job ended (from
/// `touched`).
fn containers_ended<'u>(
    units: &[(&'u String, String)],
    touched: &'u [(String, Ended)],
) -> (UnitsWithJobs<'u>, UnitsWithJobs<'u>) {
    let names: Vec<String> = units.iter().map(|(_, name)| name.clone()).collect();
    let found = docker::inspect_all(&names);
    let (ended, missing): (Vec<_>, Vec<_>) = (units.iter())
        .filter(|(_, name)| found.get(name).is_none_or(|c| c.status != "running"))
        .partition(|(_, name)| found.contains_key(name));
    let with_job = |list: Vec<&(&'u String, String)>| -> UnitsWithJobs<'u> {
        (list.into_iter())
            .filter_map(|&(unit, _)| Some((unit, &touched.iter().find(|(u, _)| u == unit)?.1)))
            .collect()
    };
    (with_job(ended), with_job(missing))
}

/// Whether systemd says a unit may have gone down since its job ended:
/// not active, or restarted by systemd (`Restart=`) in between, which
/// [`went_down_evidence`] then makes sure of.
fn went_down(summary: &crate::systemd::UnitSummary, ended: &Ended) -> bool {
    summary.n_restarts > ended.restarts || summary.active_state != "active"
}

/// What a unit that [`went_down`] is now: `restarted` when systemd has it
/// active again; None when it did not go down after all: its restart
/// count rose, but it has been active since before its job ended. That is
/// a restart of systemd's own before the job took over: a unit waiting out
/// `RestartSec=` (a crash loop an earlier, killed command left) whose
/// timer fired between the count's reading and the job. Counted as going
/// down, a sound change was rolled back on a busy host.
fn went_down_evidence(
    systemd: &Systemd,
    unit: &str,
    ended: &Ended,
) -> Result<Option<Evidence>, Failure> {
    let state = systemd.unit_state(unit).map_err(bus)?;
    if state.is_active() && up_since_before(state.active_enter_timestamp, ended) {
        return Ok(None);
    }
    Ok(Some(Evidence {
        unit: unit.to_string(),
        job: None,
        restarted: (state.is_active() || state.n_restarts > ended.restarts)
            .then_some(ended.sent_at),
        state,
    }))
}

/// What a unit found down is now, read at once, with whether systemd has
/// restarted it (`Restart=`) since its job ended: a unit whose job ended
/// before the batch's others (health probes that took longer than its
/// `RestartSec=`) may be in a later run by the first look, and its state
/// then tells of that run, not of the one this command started.
fn evidence_now(systemd: &Systemd, unit: &str, ended: &Ended) -> Result<Evidence, Failure> {
    let state = systemd.unit_state(unit).map_err(bus)?;
    Ok(Evidence {
        unit: unit.to_string(),
        job: None,
        restarted: (state.n_restarts > ended.restarts).then_some(ended.sent_at),
        state,
    })
}

/// Whether a unit active since `active_since` (µs since the epoch, as
/// systemd gives it; 0: never) has been since before `ended`'s job ended.
fn up_since_before(active_since: u64, ended: &Ended) -> bool {
    active_since != 0 && active_since <= ended.at_micros()
}

/// Puts back the unit files found before `plan` was applied and brings the
/// units back as they were: new ones stopped and deleted, changed ones
/// restarted with their old text, removed ones started again, and unchanged
/// ones that ran before (`running_before`) started if the failure took them
/// down (the dependents of a oneshot that failed, which `Require` it).
/// Without `jobs_sent` (the apply failed before its starts and restarts,
/// on a full unit directory, say), no changed unit ran its new text: the
/// old files go back and nothing of the last good revision is restarted.
fn restore(
    host: &Host,
    systemd: &Systemd,
    plan: &Plan,
    running_before: &[String],
    jobs_sent: bool,
    progress: &Progress,
) -> Result<(), Failure> {
    let added = names(&plan.add);
    if !added.is_empty() {
        // A new unit that cannot be stopped means the old revision is not
        // what runs: that must surface as a failed restore.
        stop(systemd, &added, progress)?;
        // One whose file was never written (a full unit directory) was
        // never enabled either.
        disable_present(host, systemd, &added)?;
        for name in &added {
            let path = host.unit_dir.join(name);
            unit_dir::remove_if_exists(&path).map_err(|e| unit_dir::at(&path, e))?;
        }
        // One that failed (its container killed at stop, say) would stay
        // listed as failed with its file gone: `systemctl --failed` and the
        // monitoring that reads it would report a unit that is not there.
        systemd.reset_failed_all(&added);
    }
    // Only files that differ are written back: with a unit directory that
    // became read-only, a restore that needs no write still succeeds.
    for unit in plan.change.iter().map(|c| &c.old).chain(&plan.remove) {
        let path = host.unit_dir.join(&unit.name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(unit.text.as_str()) {
            unit_dir::write_atomic(&path, unit.text.as_bytes())
                .map_err(|e| unit_dir::at(&path, e))?;
        }
    }
    let removed = plan.started_by_apply(&names(&plan.remove));
    if !removed.is_empty() {
        systemd.enable(&removed).map_err(bus)?;
    }
    let changed: Vec<String> = plan.change.iter().map(|c| c.old.name.clone()).collect();
    let changed = plan.started_by_apply(&changed);
    reenable(systemd, &changed)?;
    systemd.reload().map_err(bus)?;
    // Only started, as apply starts them (see `plan::starts_on_change`).
    let (targets, changed): (Vec<String>, Vec<String>) = changed.into_iter().partition(|name| {
        name.ends_with(".target")
            || (plan.change.iter()).any(|c| &c.old.name == name && c.only_started())
    });
    // The previous routes go back in place, as they were replaced.
    let (reloads, changed): (Vec<String>, Vec<String>) = changed.into_iter().partition(|name| {
        (plan.change.iter()).any(|c| &c.old.name == name && reloads_on_change(&c.old.text))
    });
    // No job was sent: what runs is the old text already.
    let (changed, reloads) = if jobs_sent {
        (changed, reloads)
    } else {
        (Vec::new(), Vec::new())
    };
    let states = systemd.active_states(running_before).map_err(bus)?;
    let mut starts: Vec<String> = removed.into_iter().chain(targets).collect();
    starts.extend(
        running_before
            .iter()
            .zip(states)
            .filter(|(_, state)| state != "active")
            .map(|(unit, _)| unit.clone()),
    );
    let touched: Vec<String> = (changed.iter().chain(&starts).chain(&reloads))
        .cloned()
        .collect();
    systemd.reset_failed_all(&touched);
    let jobs = Jobs {
        starts: &starts,
        restarts: &changed,
        reloads: &reloads,
    };
    start_and_restart(systemd, &jobs, progress, None)
}

/// Runs jobs on units of an instance (`unitgen start|stop|restart`, the
/// router): one batch, so systemd orders the jobs by the units' dependencies,
/// each awaited and reported as apply's are; then, as apply's, every unit
/// started must stay up for `settle` (see [`settle`]), so a container that
/// starts and exits is not reported as started. A unit that fails comes
/// back explained. `jobs`: units by the kind of job each gets (a restart
/// reloads the routes unit: see `cli::control`).
pub fn control(
    host: &Host,
    jobs: &[(JobKind, &[String])],
    settle_for: Duration,
    progress: &Progress,
) -> Result<(), Failure> {
    let systemd = host.connect()?;
    let units: Vec<String> = jobs.iter().flat_map(|(_, u)| u.iter().cloned()).collect();
    let stop = (jobs.iter())
        .filter(|(_, units)| !units.is_empty())
        .all(|(kind, _)| *kind == JobKind::Stop);
    let watch = !stop && !settle_for.is_zero();
    if !stop {
        // A unit that failed before (or hit its start limit) starts afresh.
        systemd.reset_failed_all(&units);
    }
    let restarts_before: Vec<u32> = if watch {
        let summaries = systemd.summaries(&units).map_err(bus)?;
        summaries.iter().map(|s| s.n_restarts).collect()
    } else {
        Vec::new()
    };
    let mut ended = HashMap::new();
    let sent_at = crate::state::now_micros();
    let outcomes = watched(&systemd, jobs, progress, watch.then_some(&mut ended))?;
    let mut what: Vec<&str> = (jobs.iter())
        .filter(|(_, units)| !units.is_empty())
        .map(|(kind, _)| match kind {
            JobKind::Start => "start",
            JobKind::Stop => "stop",
            JobKind::Restart => "restart",
            JobKind::ReloadOrRestart => "reload",
        })
        .collect();
    what.dedup();
    let explained = |mut failure: Failure| {
        failure.explain(host, &systemd);
        failure
    };
    failures(&systemd, &outcomes, &what.join(" or ")).map_err(explained)?;
    let touched: Vec<(String, Ended)> = (units.iter().zip(restarts_before))
        .filter_map(|(unit, restarts)| {
            let at = ended.remove(unit)?;
            Some((
                unit.clone(),
                Ended {
                    at,
                    restarts,
                    sent_at,
                },
            ))
        })
        .collect();
    settle(&systemd, &host.unit_dir, &touched, settle_for, progress).map_err(explained)?;
    // A stopped routes unit removed its file: nothing to serve.
    if stop {
        return Ok(());
    }
    crate::router::await_routes(host, &units, progress)
}

/// Disables those of `units` whose file is in the unit directory: systemd
/// refuses to disable a unit it has no file of.
fn disable_present(host: &Host, systemd: &Systemd, units: &[String]) -> Result<(), Failure> {
    let present: Vec<String> = (units.iter())
        .filter(|name| host.unit_dir.join(name).exists())
        .cloned()
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    systemd.disable(&present).map_err(bus)
}

/// Stops, disables and deletes units: every unit of an instance (`destroy`;
/// files an interrupted destroy removed already are fine), or the router.
pub fn remove_all(host: &Host, units: &[String], progress: &Progress) -> Result<(), Failure> {
    let systemd = host.connect()?;
    stop(&systemd, units, progress)?;
    remove_what_units_made(host, units, progress)?;
    // A file an interrupted destroy removed was disabled before.
    disable_present(host, &systemd, units)?;
    fault::point("after-stop");
    for name in units {
        unit_dir::remove_if_exists(&host.unit_dir.join(name))?;
    }
    fault::point("after-remove-units");
    systemd.reload().map_err(bus)?;
    // A unit that failed stays listed until its failed state is reset.
    systemd.reset_failed_all(units);
    Ok(())
}

/// Removes what stopped service units made for their containers, which
/// nothing starts again: their files in `/run/unitgen` (see
/// [`crate::render::run_files`]; `env_file:` copies may hold secrets), and
/// the images built for exec-form healthchecks (see
/// [`crate::render::docker::health_tag`]; one Docker call for all). A
/// service unit is named after its container (`<container>.service`).
/// Only files that are there are touched: unitgen writes nowhere else
/// unless its units made something.
pub fn remove_what_units_made(
    host: &Host,
    units: &[String],
    progress: &Progress,
) -> Result<(), Failure> {
    let root = host.root.as_deref().unwrap_or(Path::new("/"));
    let containers: Vec<&str> = (units.iter())
        .filter_map(|u| u.strip_suffix(".service"))
        .collect();
    let health_images: Vec<String> = (containers.iter())
        .map(|c| crate::render::docker::health_tag(c))
        .collect();
    // Not worth failing for: one a leftover container still uses stays.
    if let Err(e) = docker::remove_images(&health_images) {
        progress.line(&format!("warning: {e}"));
    }
    for container in containers {
        for file in crate::render::run_files(container) {
            let path = root.join(file.trim_start_matches('/'));
            if path.symlink_metadata().is_ok() {
                unit_dir::remove_if_exists(&path)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A restart count that rose is a going down only when the unit became
    /// active after its job ended; one active since before (systemd's own
    /// restart, then the job) is not, and a unit never active is.
    #[test]
    fn only_a_unit_up_again_after_its_job_ended_was_restarted_since() {
        let ended = Ended {
            sent_at: 0,
            at: Instant::now() - Duration::from_secs(2),
            restarts: 0,
        };
        let micros_ago = |ago: Duration| {
            (std::time::SystemTime::now() - ago)
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros() as u64
        };
        assert!(up_since_before(micros_ago(Duration::from_secs(3)), &ended));
        assert!(!up_since_before(micros_ago(Duration::from_secs(1)), &ended));
        assert!(!up_since_before(micros_ago(Duration::ZERO), &ended));
        assert!(!up_since_before(0, &ended));
    }
}
