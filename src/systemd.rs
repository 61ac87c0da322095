//! The low-level systemd client: reload, enqueue jobs and await their
//! results, enable and disable unit files, read a unit's state. Everything
//! goes through systemd's D-Bus API (the manager at
//! `org.freedesktop.systemd1`), never through `systemctl`.

pub mod converge;
mod dbus;
pub mod environment_file;
pub mod explain;
pub mod handover;
pub mod journal;
pub mod observe;

use std::collections::HashMap;
use std::fmt;

use futures_util::future::join_all;
use zbus::blocking::{Connection, MessageIterator, connection};
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use crate::diagnostic::quoted_output;
use dbus::{ListedUnit, ManagerProxy, ServiceProxy, TimerProxy, UnitProxy};

/// How many `JobRemoved` signals may wait unread while jobs are enqueued.
/// zbus stops reading the socket (and so the replies to our own calls) when
/// a stream's queue is full, so this bounds the size of one batch of jobs,
/// dependencies included.
const JOB_SIGNAL_QUEUE: usize = 4096;

const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";

/// The most calls [`Systemd::call_all`] leaves unanswered at once. The
/// system bus refuses more than `max_replies_per_connection` (128 in
/// dbus-daemon's system.conf) with `LimitsExceeded`: `status` of an
/// instance of 20 services, seven reads each, failed so.
const MAX_PENDING_CALLS: usize = 64;

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// A connection to one systemd manager.
pub struct Systemd {
    conn: Connection,
    manager: ManagerProxy<'static>,
}

/// The kind of job [`Systemd::run_jobs`] enqueues for each unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Start,
    Stop,
    Restart,
    /// Reload when it runs and can (`ExecReload=`), else restart (which
    /// starts it when it does not run).
    ReloadOrRestart,
}

impl JobKind {
    /// The manager's method that enqueues this kind of job.
    fn method(self) -> &'static str {
        match self {
            JobKind::Start => "StartUnit",
            JobKind::Stop => "StopUnit",
            JobKind::Restart => "RestartUnit",
            JobKind::ReloadOrRestart => "ReloadOrRestartUnit",
        }
    }

    fn doing(self) -> &'static str {
        match self {
            JobKind::Start => "starting",
            JobKind::Stop => "stopping",
            JobKind::Restart => "restarting",
            JobKind::ReloadOrRestart => "reloading",
        }
    }
}

/// What became of the job enqueued for one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    pub unit: String,
    pub result: JobResult,
}

/// A job's result as systemd reports it in `JobRemoved`, plus the two ways
/// a job can fail to be enqueued at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    Done,
    Canceled,
    Timeout,
    Failed,
    Dependency,
    Skipped,
    /// systemd has no such unit (no unit file), or, for a stop, the unit is
    /// not loaded and not running: there was nothing to do.
    NotLoaded,
    /// systemd refused to enqueue the job (masked unit, bad unit file,
    /// destructive transaction ...): the D-Bus error name and message.
    Rejected(String),
    /// Any other result word systemd reports.
    Other(String),
}

impl JobResult {
    fn from_signal(result: &str) -> Self {
        match result {
            "done" => JobResult::Done,
            "canceled" => JobResult::Canceled,
            "timeout" => JobResult::Timeout,
            "failed" => JobResult::Failed,
            "dependency" => JobResult::Dependency,
            "skipped" => JobResult::Skipped,
            other => JobResult::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for JobResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobResult::Done => f.write_str("done"),
            JobResult::Canceled => f.write_str("canceled"),
            JobResult::Timeout => f.write_str("timeout"),
            JobResult::Failed => f.write_str("failed"),
            JobResult::Dependency => f.write_str("dependency failed"),
            JobResult::Skipped => f.write_str("skipped"),
            JobResult::NotLoaded => f.write_str("not loaded"),
            JobResult::Rejected(why) => write!(f, "rejected: {why}"),
            JobResult::Other(word) => f.write_str(word),
        }
    }
}

/// What became of a job whose enqueue call was lost (see
/// [`Systemd::lost_jobs`]).
enum LostJob {
    /// It is queued or running: this job.
    Enqueued(OwnedObjectPath),
    /// It ran already: its result, as the unit's state tells it.
    Ran(JobResult),
    /// Nothing was done: to be sent again.
    NotSent,
}

/// The part of a unit's state `status` shows (see [`Systemd::summaries`]).
#[derive(Debug, Clone)]
pub struct UnitSummary {
    pub active_state: String,
    pub sub_state: String,
    /// How often systemd restarted the service (0 for other units).
    pub n_restarts: u32,
}

/// What `plan` and `status` compare of a unit: its state, whether it is
/// enabled, loaded as on disk, changed by drop-ins, and, for a service, the
/// command line it runs (see [`Systemd::details`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitDetails {
    /// See [`UnitState::active_state`].
    pub active_state: String,
    /// See [`UnitState::sub_state`].
    pub sub_state: String,
    pub unit_file_state: String,
    pub need_daemon_reload: bool,
    pub drop_in_paths: Vec<String>,
    /// The file systemd loaded the unit from (see [`UnitState::fragment_path`]).
    pub fragment_path: String,
    /// The first `ExecStart=` command line as systemd parsed it, program
    /// first (empty for other units).
    pub exec_start: Vec<String>,
    /// How the service's main process (that command's) last ended, as
    /// `(code, status)`: code 1 exited (status is its exit code), 2 killed
    /// and 3 dumped core (status is the signal); 0 not yet.
    pub exec_main_ended: (i32, i32),
    /// When the unit last became active, in microseconds since the epoch.
    pub active_enter_timestamp: u64,
    /// When it last stopped (or failed), in microseconds since the epoch.
    pub inactive_enter_timestamp: u64,
}

/// A command of a unit besides its main one that failed (see
/// [`UnitState::failed_command`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCommand {
    /// `ExecStartPre`, `ExecStartPost`, `ExecStop` or `ExecStopPost`.
    pub kind: &'static str,
    /// Its words, program first.
    pub argv: Vec<String>,
    /// 1 exited (`status` is its exit code), 2 killed, 3 dumped core
    /// (`status` is the signal).
    pub code: i32,
    pub status: i32,
    /// Its process (0: not known).
    pub pid: u32,
    /// The processes of the unit's other commands' last runs (not `docker
    /// run`): a line none of them nor `docker run` wrote is the failed
    /// command's, or of a program it ran (`sh -c '… awk …'`).
    pub others: Vec<u32>,
}

/// The first of a unit's commands (by kind, in order) whose last run
/// failed, unless its failure is ignored (`-`).
fn failed_command(mut commands: Vec<(&'static str, dbus::ExecCommand)>) -> Option<FailedCommand> {
    let failed = (commands.iter())
        .position(|(_, c)| !c.2 && ((c.8 == 1 && c.9 != 0) || matches!(c.8, 2 | 3)))?;
    let (kind, c) = commands.remove(failed);
    Some(FailedCommand {
        kind,
        argv: c.1,
        code: c.8,
        status: c.9,
        pid: c.7,
        others: (commands.iter().map(|(_, c)| c.7))
            .filter(|pid| *pid != 0)
            .collect(),
    })
}

/// A unit's state as systemd sees it. The service fields are zero or empty
/// for units that are not services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    pub unit: String,
    /// `loaded`, `not-found`, `bad-setting`, `error` or `masked`.
    pub load_state: String,
    /// `active`, `inactive`, `failed`, `activating`, `deactivating` ...
    pub active_state: String,
    /// The unit type's own state: `running`, `exited`, `dead` ...
    pub sub_state: String,
    /// When the unit last became active, in microseconds since the epoch
    /// (0: never).
    pub active_enter_timestamp: u64,
    /// When it last stopped or failed, in microseconds since the epoch (0:
    /// never, since the manager started).
    pub inactive_enter_timestamp: u64,
    /// How often systemd restarted the service (`Restart=`).
    pub n_restarts: u32,
    /// The service's main process (0: none).
    pub main_pid: u32,
    /// `success`, `exit-code`, `signal`, `timeout` ...
    pub result: String,
    /// The exit status of the main process's last run.
    pub exec_main_status: i32,
    /// How it ended: 1 exited (status is its exit code), 2 killed and 3
    /// dumped core (status is the signal); 0 not yet.
    pub exec_main_code: i32,
    /// The main process of the last run (kept after it exited; 0: none).
    pub exec_main_pid: u32,
    /// The first of its other commands (`ExecStartPre=`, `ExecStartPost=`,
    /// `ExecStop=`, `ExecStopPost=`, in that order) whose last run failed,
    /// its failure not ignored; read only when the unit's result is not
    /// `success`.
    pub failed_command: Option<FailedCommand>,
    /// The current (or last) run of the unit, in hex as the journal's
    /// `_SYSTEMD_INVOCATION_ID` has it; empty if it never ran.
    pub invocation_id: String,
    /// `enabled`, `disabled`, `static`, `linked` ... (empty: no unit file).
    pub unit_file_state: String,
    /// The unit file (or a drop-in) on disk is not what systemd loaded: a
    /// `daemon-reload` is pending.
    pub need_daemon_reload: bool,
    /// Drop-in files (`systemctl edit`, `set-property` ...) that systemd
    /// merged into the unit.
    pub drop_in_paths: Vec<String>,
    /// The unit file systemd loaded, as its file system names it (empty:
    /// none). Of several files of the unit's name, the one in the
    /// directory systemd reads first (`/etc/systemd/system.control`,
    /// `/run/systemd/transient`, ... before `/etc/systemd/system`).
    pub fragment_path: String,
}

impl UnitState {
    pub fn is_loaded(&self) -> bool {
        self.load_state == "loaded"
    }

    pub fn is_active(&self) -> bool {
        self.active_state == "active"
    }

    pub fn is_failed(&self) -> bool {
        self.active_state == "failed"
    }

    /// Enabled: it starts at boot (`enabled-runtime` would not survive one).
    pub fn is_enabled(&self) -> bool {
        self.unit_file_state == "enabled"
    }
}

/// A D-Bus call to systemd failed; says what unitgen was doing.
#[derive(Debug)]
pub struct Error {
    doing: String,
    cause: Cause,
}

#[derive(Debug)]
enum Cause {
    Bus(Box<zbus::Error>),
    /// No connection at all: the error, and what it likely means.
    Unreachable(Box<zbus::Error>, String),
    Disconnected,
}

impl Error {
    fn new(doing: impl Into<String>, cause: zbus::Error) -> Self {
        Error {
            doing: doing.into(),
            cause: Cause::Bus(Box::new(cause)),
        }
    }

    /// The bus's answer for a call whose recipient left the bus before
    /// answering it: systemd re-executed (or died) while it had the call.
    fn is_lost_reply(&self) -> bool {
        match &self.cause {
            Cause::Bus(e) => refusal(e).is_some_and(|(name, _)| name == NO_REPLY),
            _ => false,
        }
    }
}

const NO_REPLY: &str = "org.freedesktop.DBus.Error.NoReply";

/// How long calls lost to systemd re-executing are sent again: once it is
/// back, one more suffices, but re-execs may follow each other (a package
/// upgrade, `daemon-reexec` run twice), each losing the call again, and a
/// loaded host takes seconds for one; a systemd that keeps leaving the bus
/// this long is failing.
const REEXEC_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// `call`, made again when systemd left the bus while it had the call.
/// systemd re-executing (`systemctl daemon-reexec`, which Debian's systemd
/// package runs on each upgrade) leaves the bus for a moment: the calls it
/// was answering come back as NoReply ("Message recipient disconnected from
/// message bus without replying"), and calls sent meanwhile wait until it
/// is back. An apply failed so, and restarted the previous revision. Only
/// calls that may be made twice are: reads, reloads, enabling and disabling
/// unit files. Jobs are seen to in [`Systemd::run_batch`]
/// ([`Systemd::lost_jobs`]): a restart made twice restarts twice.
fn again_if_reexecuted<T>(mut call: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let began = std::time::Instant::now();
    loop {
        match call() {
            Err(e) if e.is_lost_reply() && began.elapsed() < REEXEC_PATIENCE => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            result => return result,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            // The bus's error is any text the peer answered with.
            Cause::Bus(e) => write!(f, "{}: {}", self.doing, quoted_output(&e.to_string())),
            Cause::Unreachable(e, hint) => {
                let e = quoted_output(&e.to_string());
                write!(f, "{}: {e}\n{hint}", self.doing)
            }
            Cause::Disconnected => write!(f, "{}: the D-Bus connection closed", self.doing),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Bus(e) | Cause::Unreachable(e, _) => Some(e.as_ref()),
            Cause::Disconnected => None,
        }
    }
}

/// What a failed connection to systemd's bus most likely means, and what
/// to do about it: the bare "Failed to connect to address
/// unix:path=/var/run/dbus/system_bus_socket" leaves a user guessing.
fn unreachable_hint(address: Option<&str>, user: bool) -> String {
    const CHOOSE: &str = "--root DIR acts on a systemd whose root file system is DIR \
        (e.g. /proc/PID/root of a container that runs systemd), --bus ADDRESS on the \
        manager at that D-Bus address";
    match (address, user) {
        (Some(address), _) => format!(
            "nothing answers at {address}: is systemd running there, with its D-Bus? {CHOOSE}."
        ),
        (None, true) => "your user's systemd does not answer on the session bus: --user \
            needs a login session (`systemctl --user status` works, XDG_RUNTIME_DIR or \
            DBUS_SESSION_BUS_ADDRESS is set). Without --user, unitgen acts on the system's \
            systemd."
            .to_owned(),
        (None, false) => match std::fs::read_to_string("/proc/1/comm") {
            Ok(pid1) if pid1.trim() != "systemd" => format!(
                "systemd is not running here: PID 1 is `{}`, so there is no systemd to \
                apply to (a container, or a machine booted without it). Run unitgen on a \
                host booted with systemd, or point it at one: {CHOOSE}.",
                pid1.trim()
            ),
            _ => format!(
                "systemd's system bus does not answer: is D-Bus running \
                (`systemctl status dbus.socket`)? Or point unitgen at another systemd: \
                {CHOOSE}."
            ),
        },
    }
}

/// The error name and message of an error systemd (or the bus) answered a
/// call with, as opposed to a broken connection.
fn refusal(e: &zbus::Error) -> Option<(String, String)> {
    use zbus::DBusError;
    match e {
        zbus::Error::MethodError(name, message, _) => {
            Some((name.to_string(), message.clone().unwrap_or_default()))
        }
        zbus::Error::FDO(fdo) => Some((
            fdo.name().to_string(),
            fdo.description().unwrap_or_default().to_owned(),
        )),
        _ => None,
    }
}

impl Systemd {
    /// Connects to a systemd manager and subscribes to its job signals.
    ///
    /// `address`: a D-Bus address (e.g.
    /// `unix:path=/proc/123/root/run/dbus/system_bus_socket`); `None` means
    /// the system bus, or the session bus if `user`.
    pub fn connect(address: Option<&str>, user: bool) -> Result<Self, Error> {
        let (doing, builder) = match (address, user) {
            (Some(address), _) => (
                format!("connecting to D-Bus at {address}"),
                connection::Builder::address(address),
            ),
            (None, false) => (
                "connecting to the system bus".to_owned(),
                connection::Builder::system(),
            ),
            (None, true) => (
                "connecting to the session bus".to_owned(),
                connection::Builder::session(),
            ),
        };
        let conn = builder.and_then(|b| b.build()).map_err(|e| Error {
            doing,
            cause: Cause::Unreachable(Box::new(e), unreachable_hint(address, user)),
        })?;
        let doing = "asking systemd for its manager";
        let manager = ManagerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .map_err(|e| Error::new(doing, e))?;
        // Without a subscription systemd emits no JobRemoved to this client.
        again_if_reexecuted(|| {
            (manager.subscribe()).map_err(|e| Error::new("subscribing to systemd's job signals", e))
        })?;
        Ok(Systemd { conn, manager })
    }

    /// Makes systemd re-read all unit files (`daemon-reload`); returns once
    /// the reload is complete.
    pub fn reload(&self) -> Result<(), Error> {
        again_if_reexecuted(|| {
            self.manager
                .reload()
                .map_err(|e| Error::new("reloading systemd's unit files", e))
        })
    }

    /// When the manager started, in microseconds since the epoch.
    pub fn started_at(&self) -> Result<u64, Error> {
        again_if_reexecuted(|| {
            self.manager
                .userspace_timestamp()
                .map_err(|e| Error::new("reading systemd's UserspaceTimestamp", e))
        })
    }

    /// The manager's state: `running`, `degraded`, `starting`, `stopping` ...
    pub fn system_state(&self) -> Result<String, Error> {
        again_if_reexecuted(|| {
            self.manager
                .system_state()
                .map_err(|e| Error::new("reading systemd's SystemState", e))
        })
    }

    /// The environment the manager gives every unit before the unit's own
    /// `Environment=`: `KEY=VALUE` entries.
    pub fn environment(&self) -> Result<Vec<String>, Error> {
        again_if_reexecuted(|| {
            self.manager
                .environment()
                .map_err(|e| Error::new("reading systemd's Environment", e))
        })
    }

    /// Asks the journal daemon to write out every line it has received, as
    /// `journalctl --sync` does: SIGRTMIN+1 to its main process through
    /// `KillUnit`. journald handles the request only after the lines
    /// already waiting in its sockets, and tells it has by writing the time
    /// into `/run/systemd/journal/synced` ([`crate::systemd::explain`]
    /// waits for that).
    pub fn request_journal_sync(&self) -> Result<(), Error> {
        let signal = libc::SIGRTMIN() + 1;
        let call = ("KillUnit", ("systemd-journald.service", "main", signal));
        match self.call_manager_all(&[call]).pop() {
            Some(Err(e)) => Err(Error::new("asking journald to sync", e)),
            _ => Ok(()),
        }
    }

    /// One job of the same kind per unit, as one batch (see [`Systemd::run_batch`]).
    pub fn run_jobs(&self, kind: JobKind, units: &[String]) -> Result<Vec<JobOutcome>, Error> {
        let jobs: Vec<(JobKind, String)> = units.iter().map(|u| (kind, u.clone())).collect();
        self.run_batch(&jobs, &mut |_| {})
    }

    /// Enqueues every job at once (mode `replace`), so systemd can order
    /// them against each other and run them in parallel, then waits for
    /// each to finish. `on_done` hears of each result as it arrives; the
    /// return value has them all, in the order of `jobs`.
    ///
    /// A unit systemd cannot enqueue a job for (no such unit, masked, a stop
    /// of a unit that is not loaded ...) gets [`JobResult::NotLoaded`] or
    /// [`JobResult::Rejected`] instead of failing the whole batch. `Err` means
    /// the bus itself failed.
    pub fn run_batch(
        &self,
        jobs: &[(JobKind, String)],
        on_done: &mut dyn FnMut(&JobOutcome),
    ) -> Result<Vec<JobOutcome>, Error> {
        let units: Vec<&str> = jobs.iter().map(|(_, u)| u.as_str()).collect();
        let waiting_for = || format!("waiting for the jobs of {}", units.join(", "));
        // Open the signal stream before enqueueing: a job can finish before
        // its enqueue call has returned.
        let rule = dbus::job_removed_rule().map_err(|e| Error::new(waiting_for(), e))?;
        let mut removed = MessageIterator::for_match_rule(rule, &self.conn, Some(JOB_SIGNAL_QUEUE))
            .map_err(|e| Error::new(waiting_for(), e))?;

        let mut results: Vec<Option<JobResult>> = vec![None; jobs.len()];
        // One job can stand for several units: systemd merges jobs.
        let mut pending: HashMap<OwnedObjectPath, Vec<usize>> = HashMap::new();
        let sent_at = crate::state::now_micros();
        let mut to_send: Vec<usize> = (0..jobs.len()).collect();
        let began = std::time::Instant::now();
        while !to_send.is_empty() {
            let calls: Vec<(&str, (&str, &str))> = (to_send.iter())
                .map(|&i| (jobs[i].0.method(), (jobs[i].1.as_str(), "replace")))
                .collect();
            let replies = self.call_manager_all(&calls);
            let mut lost = Vec::new();
            for (&i, reply) in to_send.iter().zip(replies) {
                let (kind, unit) = &jobs[i];
                let enqueued =
                    reply.and_then(|reply| reply.body().deserialize::<OwnedObjectPath>());
                let refused = match enqueued {
                    Ok(job) => {
                        pending.entry(job).or_default().push(i);
                        continue;
                    }
                    Err(e) => match refusal(&e) {
                        Some((name, _))
                            if name == NO_REPLY && began.elapsed() < REEXEC_PATIENCE =>
                        {
                            lost.push(i);
                            continue;
                        }
                        Some((name, _)) if name == NO_SUCH_UNIT => JobResult::NotLoaded,
                        Some((name, message)) => JobResult::Rejected(format!("{name}: {message}")),
                        None => return Err(Error::new(format!("{} {unit}", kind.doing()), e)),
                    },
                };
                on_done(&JobOutcome {
                    unit: unit.clone(),
                    result: refused.clone(),
                });
                results[i] = Some(refused);
            }
            if !lost.is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let found = self.lost_jobs(jobs, &lost, sent_at)?;
            to_send = Vec::new();
            for (i, found) in lost.into_iter().zip(found) {
                match found {
                    LostJob::Enqueued(job) => pending.entry(job).or_default().push(i),
                    LostJob::Ran(result) => {
                        on_done(&JobOutcome {
                            unit: jobs[i].1.clone(),
                            result: result.clone(),
                        });
                        results[i] = Some(result);
                    }
                    LostJob::NotSent => to_send.push(i),
                }
            }
        }

        while !pending.is_empty() {
            let message = match removed.next() {
                Some(Ok(message)) => message,
                Some(Err(e)) => return Err(Error::new(waiting_for(), e)),
                None => {
                    return Err(Error {
                        doing: waiting_for(),
                        cause: Cause::Disconnected,
                    });
                }
            };
            let (_id, job, _unit, result): (u32, OwnedObjectPath, String, String) = message
                .body()
                .deserialize()
                .map_err(|e| Error::new(waiting_for(), e))?;
            for i in pending.remove(&job).unwrap_or_default() {
                let result = JobResult::from_signal(&result);
                on_done(&JobOutcome {
                    unit: jobs[i].1.clone(),
                    result: result.clone(),
                });
                results[i] = Some(result);
            }
        }

        Ok(jobs
            .iter()
            .zip(results)
            .map(|((_, unit), result)| JobOutcome {
                unit: unit.clone(),
                result: result.expect("every job was enqueued, refused or awaited"),
            })
            .collect())
    }

    /// What became of the jobs `lost` (indices into `jobs`) whose enqueue
    /// call systemd left unanswered (NoReply: it re-executed, see
    /// [`again_if_reexecuted`]), now that it answers again. A call it had
    /// not read yet is gone with nothing done (what was seen each time); one
    /// it had acted on may have left a job. A start or stop is sent again
    /// either way: sent again in mode `replace`, it merges with a job of its
    /// kind still queued, and is done at once on a unit already in its
    /// state. A restart twice restarts twice: it is sent again only when
    /// the unit has no job of its own and has neither started nor stopped
    /// since it was first sent (`sent_at`, µs since the epoch).
    fn lost_jobs(
        &self,
        jobs: &[(JobKind, String)],
        lost: &[usize],
        sent_at: u64,
    ) -> Result<Vec<LostJob>, Error> {
        let units: Vec<String> = lost.iter().map(|&i| jobs[i].1.clone()).collect();
        let listed = again_if_reexecuted(|| self.list_by_names(&units))?;
        (lost.iter().zip(listed))
            .map(|(&i, (_, _, _, _, _, _, _, job_id, job_type, job))| {
                let (kind, unit) = &jobs[i];
                if matches!(kind, JobKind::Start | JobKind::Stop) {
                    return Ok(LostJob::NotSent);
                }
                // A restart's job turns into a start once the unit stopped;
                // a reload-or-restart's is a reload or a restart.
                if job_id != 0 && ["restart", "start", "reload"].contains(&job_type.as_str()) {
                    return Ok(LostJob::Enqueued(job));
                }
                let state = self.unit_state(unit)?;
                Ok(
                    if state.active_enter_timestamp >= sent_at
                        || state.inactive_enter_timestamp >= sent_at
                    {
                        LostJob::Ran(if state.is_active() {
                            JobResult::Done
                        } else {
                            JobResult::Failed
                        })
                    } else {
                        LostJob::NotSent
                    },
                )
            })
            .collect()
    }

    /// Enables unit files (`EnableUnitFiles`, persistent, replacing symlinks
    /// in the way). Unlike `systemctl enable` it does not reload: call
    /// [`Systemd::reload`] for the running manager to see the new wants.
    pub fn enable(&self, unit_files: &[String]) -> Result<(), Error> {
        again_if_reexecuted(|| {
            let files: Vec<&str> = unit_files.iter().map(String::as_str).collect();
            self.manager
                .enable_unit_files(&files, false, true)
                .map(drop)
                .map_err(|e| Error::new(format!("enabling {}", unit_files.join(", ")), e))
        })
    }

    /// Disables unit files (`DisableUnitFiles`, persistent). See
    /// [`Systemd::enable`] about reloading.
    pub fn disable(&self, unit_files: &[String]) -> Result<(), Error> {
        self.disable_unit_files(unit_files, false)
    }

    /// Removes the runtime enablement links of unit files
    /// (`DisableUnitFiles` with `runtime`: those in `/run/systemd/system`,
    /// as `systemctl disable --runtime`). See [`Systemd::enable`] about
    /// reloading.
    pub fn disable_runtime(&self, unit_files: &[String]) -> Result<(), Error> {
        self.disable_unit_files(unit_files, true)
    }

    fn disable_unit_files(&self, unit_files: &[String], runtime: bool) -> Result<(), Error> {
        again_if_reexecuted(|| {
            let files: Vec<&str> = unit_files.iter().map(String::as_str).collect();
            self.manager
                .disable_unit_files(&files, runtime)
                .map(drop)
                .map_err(|e| Error::new(format!("disabling {}", unit_files.join(", ")), e))
        })
    }

    /// Reads a unit's state. A unit without a unit file reads as
    /// `load_state == "not-found"`, inactive.
    pub fn unit_state(&self, unit: &str) -> Result<UnitState, Error> {
        again_if_reexecuted(|| {
            let doing = format!("reading the state of {unit}");
            let bus = |e| Error::new(&doing, e);
            // LoadUnit, unlike GetUnit, also answers for units systemd has not
            // loaded (yet, or any more).
            let path = self.manager.load_unit(unit).map_err(bus)?;
            let props = UnitProxy::builder(&self.conn)
                .path(path.clone())
                .and_then(|b| b.cache_properties(CacheProperties::No).build())
                .map_err(bus)?;
            let mut state = UnitState {
                unit: unit.to_owned(),
                load_state: props.load_state().map_err(bus)?,
                active_state: props.active_state().map_err(bus)?,
                sub_state: props.sub_state().map_err(bus)?,
                active_enter_timestamp: props.active_enter_timestamp().map_err(bus)?,
                inactive_enter_timestamp: props.inactive_enter_timestamp().map_err(bus)?,
                n_restarts: 0,
                main_pid: 0,
                result: String::new(),
                exec_main_status: 0,
                exec_main_code: 0,
                exec_main_pid: 0,
                failed_command: None,
                invocation_id: props
                    .invocation_id()
                    .map_err(bus)?
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect(),
                unit_file_state: props.unit_file_state().map_err(bus)?,
                need_daemon_reload: props.need_daemon_reload().map_err(bus)?,
                drop_in_paths: props.drop_in_paths().map_err(bus)?,
                fragment_path: props.fragment_path().map_err(bus)?,
            };
            // Also for a service whose unit file is gone: it may still run.
            if unit.ends_with(".service") {
                let service = ServiceProxy::builder(&self.conn)
                    .path(path)
                    .and_then(|b| b.cache_properties(CacheProperties::No).build())
                    .map_err(bus)?;
                state.n_restarts = service.n_restarts().map_err(bus)?;
                state.main_pid = service.main_pid().map_err(bus)?;
                state.result = service.result().map_err(bus)?;
                state.exec_main_status = service.exec_main_status().map_err(bus)?;
                state.exec_main_code = service.exec_main_code().map_err(bus)?;
                state.exec_main_pid = service.exec_main_pid().map_err(bus)?;
                // Which of its other commands failed, when one may have.
                if !matches!(state.result.as_str(), "" | "success") {
                    let kinds = [
                        ("ExecStartPre", service.exec_start_pre()),
                        ("ExecStartPost", service.exec_start_post()),
                        ("ExecStop", service.exec_stop()),
                        ("ExecStopPost", service.exec_stop_post()),
                    ];
                    let mut commands = Vec::new();
                    for (kind, of_kind) in kinds {
                        commands.extend(of_kind.map_err(bus)?.into_iter().map(|c| (kind, c)));
                    }
                    state.failed_command = failed_command(commands);
                }
            }
            Ok(state)
        })
    }

    /// A timer's next and last elapse, in microseconds since the epoch
    /// (0: none).
    pub fn timer_times(&self, timer: &str) -> Result<(u64, u64), Error> {
        again_if_reexecuted(|| {
            let doing = format!("reading the times of {timer}");
            let bus = |e| Error::new(&doing, e);
            let path = self.manager.load_unit(timer).map_err(bus)?;
            let props = TimerProxy::builder(&self.conn)
                .path(path)
                .and_then(|b| b.cache_properties(CacheProperties::No).build())
                .map_err(bus)?;
            Ok((
                props.next_elapse_usec_realtime().map_err(bus)?,
                props.last_trigger_usec().map_err(bus)?,
            ))
        })
    }

    /// The `ActiveState` of each unit, in the order given, in one call
    /// (`ListUnitsByNames`) where [`Systemd::unit_state`] takes twelve per
    /// unit. A unit without a unit file reads as `inactive`.
    pub fn active_states(&self, units: &[String]) -> Result<Vec<String>, Error> {
        again_if_reexecuted(|| {
            Ok(self
                .list_by_names(units)?
                .into_iter()
                .map(|listed| listed.3)
                .collect())
        })
    }

    /// What `status` shows of each unit, in the order given: one call for
    /// all (`ListUnitsByNames`), then one restart-count read per service, all
    /// sent at once (see [`Systemd::call_all`]), where
    /// [`Systemd::unit_state`] takes twelve calls per unit, one after the other.
    pub fn summaries(&self, units: &[String]) -> Result<Vec<UnitSummary>, Error> {
        again_if_reexecuted(|| {
            let listed = self.list_by_names(units)?;
            let get = ("org.freedesktop.systemd1.Service", "NRestarts");
            let calls: Vec<(&str, &str, &str, (&str, &str))> = (units.iter().zip(&listed))
                .filter(|(unit, _)| unit.ends_with(".service"))
                .map(|(_, listed)| (listed.6.as_str(), PROPERTIES, "Get", get))
                .collect();
            let mut counts = self.call_all(&calls).into_iter();
            units
                .iter()
                .zip(listed)
                .map(|(unit, listed)| {
                    let n_restarts = if unit.ends_with(".service") {
                        let reply = counts.next().expect("one read per service");
                        reply
                            .and_then(|reply| reply.body().deserialize::<OwnedValue>())
                            .and_then(|value| u32::try_from(value).map_err(zbus::Error::Variant))
                            .map_err(|e| {
                                Error::new(format!("reading the restart count of {unit}"), e)
                            })?
                    } else {
                        0
                    };
                    Ok(UnitSummary {
                        active_state: listed.3,
                        sub_state: listed.4,
                        n_restarts,
                    })
                })
                .collect()
        })
    }

    /// Each unit's [`UnitDetails`], in the order given: one
    /// `ListUnitsByNames`, then its property reads, all sent at once.
    pub fn details(&self, units: &[String]) -> Result<Vec<UnitDetails>, Error> {
        again_if_reexecuted(|| {
            const UNIT: &str = "org.freedesktop.systemd1.Unit";
            let listed = self.list_by_names(units)?;
            let per_unit = [
                (UNIT, "UnitFileState"),
                (UNIT, "NeedDaemonReload"),
                (UNIT, "DropInPaths"),
                (UNIT, "FragmentPath"),
                (UNIT, "ActiveEnterTimestamp"),
                (UNIT, "InactiveEnterTimestamp"),
                ("org.freedesktop.systemd1.Service", "ExecStart"),
                ("org.freedesktop.systemd1.Service", "ExecMainCode"),
                ("org.freedesktop.systemd1.Service", "ExecMainStatus"),
            ];
            let calls: Vec<(&str, &str, &str, (&str, &str))> = (units.iter().zip(&listed))
                .flat_map(|(unit, listed)| {
                    let reads = if unit.ends_with(".service") { 9 } else { 6 };
                    (per_unit.iter().take(reads))
                        .map(|read| (listed.6.as_str(), PROPERTIES, "Get", *read))
                })
                .collect();
            let mut replies = self.call_all(&calls).into_iter();
            let mut next = |unit: &str, property: &str| -> Result<OwnedValue, Error> {
                replies
                    .next()
                    .expect("one reply per read")
                    .and_then(|reply| reply.body().deserialize::<OwnedValue>())
                    .map_err(|e| Error::new(format!("reading {property} of {unit}"), e))
            };
            fn typed<T: TryFrom<OwnedValue, Error = zbus::zvariant::Error>>(
                unit: &str,
                property: &str,
                value: OwnedValue,
            ) -> Result<T, Error> {
                T::try_from(value).map_err(|e| {
                    Error::new(
                        format!("reading {property} of {unit}"),
                        zbus::Error::Variant(e),
                    )
                })
            }
            let mut details = Vec::new();
            for (unit, listed) in units.iter().zip(listed) {
                let mut read = UnitDetails {
                    active_state: listed.3,
                    sub_state: listed.4,
                    unit_file_state: typed(unit, "UnitFileState", next(unit, "UnitFileState")?)?,
                    need_daemon_reload: typed(
                        unit,
                        "NeedDaemonReload",
                        next(unit, "NeedDaemonReload")?,
                    )?,
                    drop_in_paths: typed(unit, "DropInPaths", next(unit, "DropInPaths")?)?,
                    fragment_path: typed(unit, "FragmentPath", next(unit, "FragmentPath")?)?,
                    active_enter_timestamp: typed(
                        unit,
                        "ActiveEnterTimestamp",
                        next(unit, "ActiveEnterTimestamp")?,
                    )?,
                    inactive_enter_timestamp: typed(
                        unit,
                        "InactiveEnterTimestamp",
                        next(unit, "InactiveEnterTimestamp")?,
                    )?,
                    exec_start: Vec::new(),
                    exec_main_ended: (0, 0),
                };
                if unit.ends_with(".service") {
                    type Command = (String, Vec<String>, bool, u64, u64, u64, u64, u32, i32, i32);
                    let commands: Vec<Command> =
                        typed(unit, "ExecStart", next(unit, "ExecStart")?)?;
                    read.exec_start = commands.into_iter().next().map(|c| c.1).unwrap_or_default();
                    // The main process's, which a daemon-reload keeps (the
                    // command's own status it does not).
                    read.exec_main_ended = (
                        typed(unit, "ExecMainCode", next(unit, "ExecMainCode")?)?,
                        typed(unit, "ExecMainStatus", next(unit, "ExecMainStatus")?)?,
                    );
                }
                details.push(read);
            }
            Ok(details)
        })
    }

    /// Whether each unit's file is enabled, as its symlinks on disk say now
    /// (`GetUnitFileState`), in the order given, one call each, all sent at
    /// once (see [`Systemd::call_all`]): the unit's `UnitFileState` is what
    /// systemd read before its last reload, so a unit disabled since (by a
    /// destroy killed before its reload) still reads as enabled there.
    pub fn unit_file_states(&self, units: &[String]) -> Result<Vec<String>, Error> {
        again_if_reexecuted(|| {
            let calls: Vec<(&str, &str)> = (units.iter())
                .map(|unit| ("GetUnitFileState", unit.as_str()))
                .collect();
            (units.iter().zip(self.call_manager_all(&calls)))
                .map(|(unit, reply)| {
                    reply
                        .and_then(|reply| reply.body().deserialize::<String>())
                        .map_err(|e| Error::new(format!("reading whether {unit} is enabled"), e))
                })
                .collect()
        })
    }

    /// Each unit as `ListUnitsByNames` lists it, in the order given, in one
    /// call; a unit systemd leaves out is an error that names it.
    fn list_by_names(&self, units: &[String]) -> Result<Vec<ListedUnit>, Error> {
        if units.is_empty() {
            return Ok(Vec::new());
        }
        let doing = || format!("reading the state of {}", units.join(", "));
        let names: Vec<&str> = units.iter().map(String::as_str).collect();
        let listed = self
            .manager
            .list_units_by_names(&names)
            .map_err(|e| Error::new(doing(), e))?;
        let by_name: HashMap<&str, &ListedUnit> =
            listed.iter().map(|unit| (unit.0.as_str(), unit)).collect();
        units
            .iter()
            .map(|unit| match by_name.get(unit.as_str()) {
                Some(listed) => Ok((*listed).clone()),
                None => Err(Error::new(
                    doing(),
                    zbus::Error::Failure(format!("systemd did not list {unit}")),
                )),
            })
            .collect()
    }

    /// Resets the `failed` state of each unit (one `ResetFailedUnit` each, all
    /// sent at once), so that its start rate limit counts from now on. A
    /// unit systemd does not know has nothing to reset: errors are ignored.
    pub fn reset_failed_all(&self, units: &[String]) {
        let calls: Vec<(&str, &str)> = units
            .iter()
            .map(|unit| ("ResetFailedUnit", unit.as_str()))
            .collect();
        self.call_manager_all(&calls);
    }

    /// Calls the manager's methods: `(method, arguments)` each.
    fn call_manager_all<B>(&self, calls: &[(&str, B)]) -> Vec<zbus::Result<zbus::Message>>
    where
        B: serde::Serialize + zbus::zvariant::Type,
    {
        let calls: Vec<(&str, &str, &str, &B)> = calls
            .iter()
            .map(|(method, body)| (MANAGER_PATH, MANAGER, *method, body))
            .collect();
        self.call_all(&calls)
    }

    /// Makes the calls `(object path, interface, method, arguments)`, up to
    /// [`MAX_PENDING_CALLS`] sent before any answer is awaited; the answers,
    /// in the order of the calls. One call after the other, each waiting
    /// for its answer, costs a round trip through the bus per call: on a
    /// loaded host, while systemd forks the units it starts, 22 `StartUnit`s
    /// took three seconds that way, and the last unit started that much
    /// later.
    fn call_all<B>(&self, calls: &[(&str, &str, &str, B)]) -> Vec<zbus::Result<zbus::Message>>
    where
        B: serde::Serialize + zbus::zvariant::Type,
    {
        let conn = self.conn.inner();
        let mut answers = Vec::with_capacity(calls.len());
        for batch in calls.chunks(MAX_PENDING_CALLS) {
            answers.extend(zbus::block_on(join_all(batch.iter().map(
                |(path, interface, method, body)| {
                    conn.call_method(Some(SYSTEMD), *path, Some(*interface), *method, body)
                },
            ))));
        }
        answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found in round 10: a D-Bus error's message (any text the peer
    /// answered with) was shown with its line feeds.
    #[test]
    fn a_bus_errors_message_adds_no_line_of_its_own() {
        let refused = zbus::fdo::Error::Failed("no\nall units started".into());
        let error = Error::new("starting web.service", zbus::Error::FDO(Box::new(refused)));
        assert_eq!(
            error.to_string(),
            "starting web.service: org.freedesktop.DBus.Error.Failed: no\n  | all units started"
        );
    }

    #[test]
    fn job_results_read_systemds_words() {
        for (word, result) in [
            ("done", JobResult::Done),
            ("canceled", JobResult::Canceled),
            ("timeout", JobResult::Timeout),
            ("failed", JobResult::Failed),
            ("dependency", JobResult::Dependency),
            ("skipped", JobResult::Skipped),
            ("frozen", JobResult::Other("frozen".into())),
        ] {
            assert_eq!(JobResult::from_signal(word), result);
        }
        assert_eq!(JobResult::Dependency.to_string(), "dependency failed");
        assert_eq!(JobResult::NotLoaded.to_string(), "not loaded");
    }

    #[test]
    fn errors_say_what_unitgen_was_doing() {
        let err = Error::new(
            "starting blog-staging-web.service",
            zbus::Error::InvalidReply,
        );
        assert_eq!(
            err.to_string(),
            "starting blog-staging-web.service: Invalid D-Bus method reply"
        );
    }
}
