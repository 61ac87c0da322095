//! A fake fleet API server for tests: fleet is archived upstream and in no
//! registry (a live one needs the binaries of ../shared/fleet, which only
//! scripts/fleet-live uses), so this enforces the contract of fleet's v1 HTTP
//! API as fleet's own source defines it and a live fleet showed, and
//! simulates a small cluster behind it.
//!
//! Sources (github.com/coreos/fleet):
//! - api/units.go: routes, `set` (create, replace when the options differ,
//!   update of the desired state; 201/204/409/400),
//!   `ValidateName`, `ValidateOptions`, 404 on GET/DELETE of a missing unit;
//! - api/state.go: `GET /fleet/v1/state` filtered by `machineID`/`unitName`;
//! - api/pagination.go: page tokens (base64url of little-endian
//!   {Limit u16, Page u16}), `extractUnitPageData` paging;
//! - api/serialization.go: Content-Type check (415), error entity JSON;
//! - schema/v1-json.go: entity field names and state enums;
//! - job/job.go: `[X-Fleet]` requirements, `%n %N %p %i` substitution;
//! - unit/unit.go: X-Fleet multi-value parsing, unit name info (template,
//!   instance);
//! - agent/state.go `AbleToRun`, engine/reconciler.go: scheduling rules;
//!   engine/scheduler.go's least-loaded choice.
//!
//! What a live fleet (v1.0.0-15, ../shared/fleet) showed, and the fake
//! does too:
//! - a PUT of different options under an existing name replaces the unit
//!   (201); a running copy keeps its process with the new file loaded;
//! - after a DELETE (or a PUT of desired state `inactive`: its machine
//!   unloads it alike), the unit's process runs on while systemd stops it
//!   (seconds; `set_forget_delay` here), and its last state shows in
//!   `/fleet/v1/state` for part of that time only (the first half here);
//!   a unit loaded under the name meanwhile reports `deactivating`, then
//!   `failed` (fleet unloads a destroyed unit's file before systemd stops
//!   it, so the stop ends failed), and still `failed` in the first answer
//!   after it is launched;
//! - a unit submitted under that name while the old state is still there
//!   and placed on the same machine is the agent's stop and start in one
//!   pass: the start cancels the stop, the OLD process keeps running with
//!   the NEW unit file loaded, and systemd reports it active;
//! - a copy fleet has `loaded` on a machine runs there once a unit that
//!   wants, requires or is bound to it starts (systemd starts it; fleet
//!   still says loaded): a sidekick stopped with its service comes back
//!   with it;
//! - with etcd stopped or not answering, fleetd answers every request 500
//!   with no message (`{"error":{"code":500,"message":""}}`); a write may
//!   be done all the same (`etcd_outage_after_writes`);
//! - a fleetd killed (a crash) and restarted by systemd answers every
//!   request 503 `fleet server unable to communicate with etcd` until its
//!   old machine entry expires: 31 s after its 5 s restart
//!   (`restart_after_writes`; `set_etcd_unreachable` for good);
//! - every refusal's status and body (`refusals_are_answered_with_live_
//!   fleets_bodies` has each, side by side with live's): a missing unit
//!   404 `unit does not exist`, an unknown path 404 with no message, 405,
//!   415 (`expected 1 Content-Type, got 0`), 409, 400 for names, X-Fleet
//!   options and page tokens; a desired state outside the enum 500 with
//!   no message, nothing stored; a request without `Host` Go's plain-text
//!   400; an empty list or page `{}` (no empty array); `201 Created` with
//!   `Content-Length: 0`, 204 with none;
//! - units and states are paged 100 at a time (`nextPageToken` `ZAACAA==`
//!   for page 2), a page exactly full still names a next, empty, page;
//! - a machine's state of a running copy may be missing for a moment
//!   (right after a roll: the agent's delete of the old copy's states
//!   lands after the new one's, published again within 5 s):
//!   `hide_state`;
//! - a unit whose start fails under `Restart=always` or `on-failure`
//!   (unitgen's) is activating/auto-restart, never `failed`
//!   (`fail_units_containing`);
//! - template units report `currentState: "inactive"`;
//! - the state `hash` is SHA-1 of the unit file as go-systemd serializes it.
//!
//! `process` tells which unit file a copy's running process was started
//! from, which no API answer shows: that is what tests check to catch a
//! replacement that did not happen.
//!
//! Global units run on every machine at once (each reports a state; fleet
//! itself never schedules them), as one-shot units that stay
//! `active/exited`; `loaded`, each machine reports `inactive/dead`, as when
//! `stop_process` stopped them behind fleet's back. As live, fleet gives
//! them no machine and no current state (`inactive` in the list, none in a
//! unit's own answer). `/machines` lists the three machines, but a lost
//! one once its entry expired (`lose_machine`: seen live, a machine whose
//! systemd died stayed listed, with the states it last reported, for
//! 15-25 s; then fleet placed its units on the other machine).
//!
//! Not simulated: Go's JSON decoder's words for a body that is no JSON
//! (`unable to decode body: ` and serde's); an agent busy unloading many
//! units (live: 120 over about two minutes, a few seconds each, while a
//! copy placed on that machine waited for its turn); machine metadata
//! (the fake machines have none, so a unit
//! requiring metadata never schedules), `Replaces=`, go-systemd's
//! line-length sanity check, the `/discovery` resource; and the 1-3 s a
//! live fleet keeps a copy it has just placed at `currentState: inactive`
//! with no state on its machine, and a launched one at `loaded` (here both
//! follow the desired state at once): unitgen reads the current state only
//! to wait for the one it set, which such a lag makes longer and no
//! different, and `status` meanwhile names the copy not running ("machine
//! … reports no state for it"), which it is not yet.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

/// The fake cluster's machines.
pub const MACHINES: [&str; 3] = ["machine-1", "machine-2", "machine-3"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opt {
    pub section: String,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUnit {
    pub name: String,
    pub options: Vec<Opt>,
    pub desired_state: String,
    pub current_state: String,
    pub machine_id: String,
    /// `/state` answers that have shown this unit still activating.
    activating_seen: u32,
    /// The hash of the unit file the running process was started from.
    process: Option<String>,
    /// How many processes were started for it (a restart makes one more).
    pub starts: u32,
    /// Stopped by systemd while fleet still has it launched.
    stopped: bool,
    /// `/state` answers still showing the failed stop of the unit this one
    /// replaced, after it was launched.
    stale_failed: u32,
}

impl FakeUnit {
    pub fn option(&self, section: &str, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|o| o.section == section && o.name == name)
            .map(|o| o.value.as_str())
    }

    /// What systemd reports of it when its start fails: with `Restart=`
    /// always or on-failure (unitgen's units), it is started again after
    /// `RestartSec=` and never reaches `failed` (seen live: a copy whose
    /// `docker run` failed was activating/auto-restart and
    /// activating/start-post in turn, for good).
    fn failed_start(&self) -> (&'static str, &'static str) {
        match self.option("Service", "Restart") {
            Some("always" | "on-failure") => ("activating", "auto-restart"),
            _ => ("failed", "failed"),
        }
    }
}

/// One request the fake answered.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Percent-decoded path.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    pub status: u16,
}

impl Request {
    /// A short form for asserting order: `LIST`, `GET x`, `SUBMIT x`
    /// (PUT with options), `SET x launched` (PUT of desiredState only),
    /// `DESTROY x`, `STATE x` (state of one unit), `STATE`.
    pub fn summary(&self) -> String {
        let item = self.path.strip_prefix("/fleet/v1/units/").unwrap_or("");
        let body = self.body.as_ref();
        let has_options = body
            .and_then(|b| b.get("options"))
            .and_then(Value::as_array)
            .is_some_and(|o| !o.is_empty());
        let state = body
            .and_then(|b| b.get("desiredState"))
            .and_then(Value::as_str)
            .unwrap_or("");
        match (self.method.as_str(), self.path.as_str()) {
            ("GET", "/fleet/v1/units") => "LIST".to_owned(),
            ("GET", "/fleet/v1/state") => match self.query.iter().find(|(k, _)| k == "unitName") {
                Some((_, name)) => format!("STATE {name}"),
                None => "STATE".to_owned(),
            },
            ("GET", _) => format!("GET {item}"),
            ("PUT", _) if has_options => format!("SUBMIT {item}"),
            ("PUT", _) => format!("SET {item} {state}"),
            ("DELETE", _) => format!("DESTROY {item}"),
            (method, path) => format!("{method} {path}"),
        }
    }

    pub fn is_write(&self) -> bool {
        self.method == "PUT" || self.method == "DELETE"
    }
}

struct Cluster {
    units: BTreeMap<String, FakeUnit>,
    log: Vec<Request>,
    /// fleet's page-token limit (100 in fleet, configurable in later ones).
    page_size: u16,
    /// `/state` answers showing a launched unit "activating" before "active".
    activation_polls: u32,
    /// Launched units with an option value containing this fail in systemd
    /// (a restart loop under `Restart=always`: `FakeUnit::failed_start`).
    failing_marker: Option<String>,
    chunked: bool,
    /// How long a destroyed unit's state (and process) outlives it.
    forget_delay: Duration,
    /// Destroyed units whose machine has not caught up yet.
    leftovers: Vec<Leftover>,
    /// (name, machine) of destroyed units whose stop ended `failed`: live
    /// fleet unloads the file first, so `SuccessExitStatus=` is gone. A unit
    /// loaded under the name there shows that until it is started.
    failed_stops: Vec<(String, String)>,
    /// Requests after this many writes (PUT, DELETE) are held unanswered
    /// (see `FakeFleet::hold_after_writes`).
    hold_after: Option<usize>,
    /// Whether a request is being held.
    holding: bool,
    /// Every request answers 503, as a live fleetd does just after it
    /// (re)started, until it has its machine entry in etcd (after a crash,
    /// until its old entry has expired: about 30 s). With etcd down it
    /// answers 500 with no message instead (`outage`).
    etcd_unreachable: bool,
    /// (writes, requests): once the log holds this many writes, this many
    /// requests answer 500 with no message, as a live fleetd while etcd
    /// is down or does not answer; a write among them is done first (etcd
    /// may take it before fleetd's wait for it ends).
    outage: Option<(usize, u32)>,
    /// (writes, requests): once the log holds this many writes, this many
    /// requests answer 503 and are not done, as a live fleetd that crashed
    /// and was restarted (by systemd, 5 s later) does until its old
    /// machine entry in etcd expires: 31 s of 503s, seen live.
    restart: Option<(usize, u32)>,
    /// (writes, unit, options): once the log holds this many writes, the
    /// unit's options are replaced before the next request is answered, as
    /// a PUT of another client (another apply) would.
    replace_after: Option<(usize, String, Vec<Opt>)>,
    /// (writes, unit): once the log holds this many writes, the unit is
    /// set inactive before the next request is answered, as a PUT of
    /// another client (another apply's roll back) would.
    unload_after: Option<(usize, String)>,
    /// Units whose state the next so many `/state` answers leave out.
    hidden_states: BTreeMap<String, u32>,
    /// Machines lost (their systemd gone), with when fleet drops each
    /// one's entry (see `FakeFleet::lose_machine`).
    lost: Vec<(String, Instant)>,
    /// Machines whose entry fleet has dropped.
    gone: Vec<String>,
}

impl Cluster {
    /// The machines fleet lists (and schedules on): a lost one until its
    /// entry expires.
    fn listed(&self) -> Vec<&'static str> {
        (MACHINES.iter().copied())
            .filter(|m| !self.gone.iter().any(|g| g == m))
            .collect()
    }

    /// Whether machine `m` was lost: it starts nothing and reports nothing
    /// new.
    fn is_lost(&self, m: &str) -> bool {
        self.lost.iter().any(|(l, _)| l == m) || self.gone.iter().any(|g| g == m)
    }
}

/// A destroyed unit the agent of its machine has not stopped yet.
struct Leftover {
    name: String,
    machine_id: String,
    /// The hash of the unit file loaded on the machine.
    hash: String,
    process: String,
    /// Until when its state shows: live fleet drops it as soon as it has
    /// asked systemd to stop the unit, which may take much longer.
    state_until: Instant,
    until: Instant,
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

pub struct FakeFleet {
    endpoint: String,
    cluster: Arc<Mutex<Cluster>>,
    stop: Arc<AtomicBool>,
    wake: Box<dyn Fn() + Send>,
    thread: Option<JoinHandle<()>>,
    socket: Option<PathBuf>,
}

impl FakeFleet {
    /// Serves on 127.0.0.1 with a free port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake fleet");
        let addr = listener.local_addr().unwrap();
        Self::serve(Listener::Tcp(listener), format!("http://{addr}"), None)
    }

    /// Serves on a unix socket, as fleet does by default.
    pub fn start_unix(path: &Path) -> Self {
        let listener = UnixListener::bind(path).expect("bind fake fleet socket");
        let endpoint = format!("unix://{}", path.display());
        Self::serve(
            Listener::Unix(listener, path.to_owned()),
            endpoint,
            Some(path.to_owned()),
        )
    }

    fn serve(listener: Listener, endpoint: String, socket: Option<PathBuf>) -> Self {
        let cluster = Arc::new(Mutex::new(Cluster {
            units: BTreeMap::new(),
            log: Vec::new(),
            page_size: 100,
            activation_polls: 1,
            failing_marker: None,
            chunked: false,
            forget_delay: Duration::from_secs(1),
            leftovers: Vec::new(),
            failed_stops: Vec::new(),
            etcd_unreachable: false,
            outage: None,
            restart: None,
            replace_after: None,
            unload_after: None,
            hidden_states: BTreeMap::new(),
            lost: Vec::new(),
            gone: Vec::new(),
            hold_after: None,
            holding: false,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let wake: Box<dyn Fn() + Send> = match &listener {
            Listener::Tcp(l) => {
                let addr = l.local_addr().unwrap();
                Box::new(move || drop(TcpStream::connect(addr)))
            }
            Listener::Unix(_, path) => {
                let path = path.clone();
                Box::new(move || drop(UnixStream::connect(&path)))
            }
        };
        let thread = {
            let (cluster, stop) = (cluster.clone(), stop.clone());
            thread::spawn(move || {
                loop {
                    let stream: Box<dyn Stream> = match &listener {
                        Listener::Tcp(l) => match l.accept() {
                            Ok((s, _)) => {
                                s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                                Box::new(s)
                            }
                            Err(_) => continue,
                        },
                        Listener::Unix(l, _) => match l.accept() {
                            Ok((s, _)) => {
                                s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                                Box::new(s)
                            }
                            Err(_) => continue,
                        },
                    };
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    handle_connection(stream, &cluster);
                }
            })
        };
        FakeFleet {
            endpoint,
            cluster,
            stop,
            wake,
            thread: Some(thread),
            socket,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn cluster(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap()
    }

    pub fn set_etcd_unreachable(&self, unreachable: bool) {
        self.cluster().etcd_unreachable = unreachable;
    }

    /// Once `writes` PUTs and DELETEs are in the log, the next `requests`
    /// requests answer 500 with no message (etcd briefly unreachable); the
    /// writes among them are done all the same.
    pub fn etcd_outage_after_writes(&self, writes: usize, requests: u32) {
        self.cluster().outage = Some((writes, requests));
    }

    /// Once `writes` PUTs and DELETEs are in the log, the options of
    /// `name` are replaced by `options` (its process goes on), as another
    /// client's PUT of other options under its name: another apply of the
    /// instance at the same time, from another machine.
    /// Once `writes` PUTs and DELETEs are in the log, `name` is set
    /// inactive (its machine unloads it), as another client's PUT would:
    /// another apply of the instance at the same time.
    pub fn unload_after_writes(&self, writes: usize, name: &str) {
        self.cluster().unload_after = Some((writes, name.to_owned()));
    }

    /// Once `writes` PUTs and DELETEs are in the log, the next `requests`
    /// requests answer 503 `fleet server unable to communicate with etcd`
    /// and are not done: fleetd crashed and was restarted (a second
    /// apart, as unitgen asks again, 35 requests are a crashed live
    /// fleetd's 5 s restart and 31 s of 503s).
    pub fn restart_after_writes(&self, writes: usize, requests: u32) {
        self.cluster().restart = Some((writes, requests));
    }

    pub fn replace_options_after_writes(&self, writes: usize, name: &str, options: Vec<Opt>) {
        self.cluster().replace_after = Some((writes, name.to_owned(), options));
    }

    /// The next `answers` answers of `/state` leave out `name`'s state, as
    /// a live fleet did for a running copy right after a roll: its agent's
    /// delete of the old copy's state (every machine's, by name) landed
    /// after the new copy's, which came back at its next round (5 s).
    pub fn hide_state(&self, name: &str, answers: u32) {
        self.cluster()
            .hidden_states
            .insert(name.to_owned(), answers);
    }

    /// Machine `machine` is lost (its systemd and containers gone, as a
    /// machine that died): fleet still lists it and shows the states it
    /// last reported, and places units on it, which never start there,
    /// until its entry expires after `expires_in` (seen live: 15-25 s);
    /// then fleet drops it and places its units again on the others.
    pub fn lose_machine(&self, machine: &str, expires_in: Duration) {
        let mut cluster = self.cluster();
        cluster
            .lost
            .push((machine.to_owned(), Instant::now() + expires_in));
    }

    pub fn set_page_size(&self, size: u16) {
        self.cluster().page_size = size;
    }

    pub fn set_activation_polls(&self, polls: u32) {
        self.cluster().activation_polls = polls;
    }

    pub fn fail_units_containing(&self, marker: &str) {
        self.cluster().failing_marker = Some(marker.to_owned());
    }

    /// How long a destroyed unit still shows in `/state` and runs (1 s by
    /// default; live fleet took 1-3 s).
    pub fn set_forget_delay(&self, delay: Duration) {
        self.cluster().forget_delay = delay;
    }

    /// From now on, the request that follows the `writes`-th PUT or DELETE
    /// of the log is held unanswered; `release` drops it unanswered (and
    /// answers those after it): a client killed meanwhile has made exactly
    /// those writes.
    pub fn hold_after_writes(&self, writes: usize) {
        let mut cluster = self.cluster();
        cluster.hold_after = Some(writes);
        cluster.holding = false;
    }

    /// Whether a request is held (see `hold_after_writes`).
    pub fn holding(&self) -> bool {
        self.cluster().holding
    }

    /// Drops the held request (fleet never had it) and answers those after.
    pub fn release(&self) {
        let mut cluster = self.cluster();
        cluster.hold_after = None;
        cluster.holding = false;
    }

    /// Whether `name` runs a process started from the unit file fleet holds
    /// under its name now.
    pub fn runs_its_unit_file(&self, name: &str) -> bool {
        let hash = self.unit(name).map(|u| unit_hash(&u.options));
        hash.is_some() && self.process(name) == hash
    }

    /// The hash of the unit file the process running under `name` was
    /// started from, if one runs (a destroyed unit's runs until its
    /// machine forgets it).
    pub fn process(&self, name: &str) -> Option<String> {
        let mut cluster = self.cluster();
        forget_expired(&mut cluster);
        cluster
            .units
            .get(name)
            .and_then(|u| u.process.clone())
            .or_else(|| {
                cluster
                    .leftovers
                    .iter()
                    .find(|l| l.name == name)
                    .map(|l| l.process.clone())
            })
    }

    /// systemd on its machine stops a launched unit behind fleet's back (a
    /// sidekick stopped by `BindsTo=` when its service restarted): fleet
    /// still says launched, the state says inactive/dead.
    /// A global unit is stopped on every machine.
    pub fn stop_process(&self, name: &str) {
        let mut cluster = self.cluster();
        let unit = cluster.units.get_mut(name).expect("a unit to stop");
        unit.process = None;
        unit.stopped = true;
    }

    pub fn set_chunked(&self, chunked: bool) {
        self.cluster().chunked = chunked;
    }

    pub fn unit(&self, name: &str) -> Option<FakeUnit> {
        self.cluster().units.get(name).cloned()
    }

    pub fn units(&self) -> Vec<FakeUnit> {
        self.cluster().units.values().cloned().collect()
    }

    pub fn log(&self) -> Vec<Request> {
        self.cluster().log.clone()
    }

    pub fn clear_log(&self) {
        self.cluster().log.clear();
    }

    /// Summaries of every request, in order.
    pub fn summaries(&self) -> Vec<String> {
        self.cluster().log.iter().map(Request::summary).collect()
    }

    /// Summaries of the PUT and DELETE requests, in order.
    pub fn writes(&self) -> Vec<String> {
        self.cluster()
            .log
            .iter()
            .filter(|r| r.is_write())
            .map(Request::summary)
            .collect()
    }

    /// Sends one raw request (for contract tests that need requests
    /// unitgen's client would never send) and returns status and JSON body.
    pub fn raw(
        &self,
        method: &str,
        target: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let mut request =
            format!("{method} {target} HTTP/1.1\r\nHost: fleet\r\nConnection: close\r\n");
        if let Some(ct) = content_type {
            request.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let mut response = Vec::new();
        if let Some(path) = &self.socket {
            let mut s = UnixStream::connect(path).unwrap();
            s.write_all(request.as_bytes()).unwrap();
            s.read_to_end(&mut response).unwrap();
        } else {
            let addr = self.endpoint.trim_start_matches("http://");
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(request.as_bytes()).unwrap();
            s.read_to_end(&mut response).unwrap();
        }
        let text = String::from_utf8(response).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap()
        };
        (status, body)
    }
}

impl Drop for FakeFleet {
    fn drop(&mut self) {
        self.release();
        self.stop.store(true, Ordering::SeqCst);
        (self.wake)();
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
        if let Some(path) = &self.socket {
            std::fs::remove_file(path).ok();
        }
    }
}

// ---- HTTP ---------------------------------------------------------------

struct HttpRequest {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn handle_connection(stream: Box<dyn Stream>, cluster: &Mutex<Cluster>) {
    let mut reader = BufReader::new(stream);
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    // Go's net/http rejects an HTTP/1.1 request without Host before fleet
    // sees it: plain text, not fleet's JSON (as live).
    if !request.headers.iter().any(|(n, _)| n == "host") {
        let said = "400 Bad Request: missing required Host header";
        let answer = format!(
            "HTTP/1.1 {said}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n{said}"
        );
        reader.into_inner().write_all(answer.as_bytes()).ok();
        return;
    }
    let mut was_held = false;
    let mut cluster = loop {
        let mut held = cluster.lock().unwrap();
        let writes = held.log.iter().filter(|r| r.is_write()).count();
        if held.hold_after.is_none_or(|after| writes < after) {
            break held;
        }
        held.holding = true;
        was_held = true;
        drop(held);
        thread::sleep(Duration::from_millis(10));
    };
    // Released: its client was killed before fleet had it.
    if was_held {
        return;
    }
    let (status, body) = route(&mut cluster, &request);
    cluster.log.push(Request {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        body: serde_json::from_slice(&request.body).ok(),
        status,
    });
    let chunked = cluster.chunked;
    drop(cluster);
    let mut stream = reader.into_inner();
    write_response(&mut stream, status, body, chunked).ok();
}

fn read_request(reader: &mut impl BufRead) -> Option<HttpRequest> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Some(HttpRequest {
        method,
        path: percent_decode(path),
        query,
        headers,
        body,
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if let (b'%', Some(Ok(b))) = (bytes[i], hex.map(|h| u8::from_str_radix(h, 16))) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn write_response(
    stream: &mut dyn Stream,
    status: u16,
    body: Option<Value>,
    chunked: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        415 => "Unsupported Media Type",
        _ => "Error",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    let Some(body) = body else {
        // Live: `201 Created` with `Content-Length: 0`, 204 with neither.
        if status != 204 {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        return stream.write_all(head.as_bytes());
    };
    let body = serde_json::to_vec(&body).unwrap();
    head.push_str("Content-Type: application/json\r\n");
    let mut out = if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let mut out = head.into_bytes();
        // Small chunks, so a body spans several.
        for chunk in body.chunks(7) {
            out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        head.into_bytes()
    };
    if !chunked {
        out.extend_from_slice(&body);
    }
    stream.write_all(&out)
}

type Answer = (u16, Option<Value>);

// api/serialization.go sendError: {"error":{"code":..,"message":..}}.
fn error(code: u16, message: &str) -> Answer {
    (
        code,
        Some(json!({"error": {"code": code, "message": message}})),
    )
}

// ---- API (api/units.go, api/state.go) ------------------------------------

fn route(cluster: &mut Cluster, request: &HttpRequest) -> Answer {
    drop_expired_machines(cluster);
    // Live fleet v1.0's body, on every resource.
    if cluster.etcd_unreachable {
        return error(503, "fleet server unable to communicate with etcd");
    }
    let writes = cluster.log.iter().filter(|r| r.is_write()).count();
    if cluster
        .replace_after
        .as_ref()
        .is_some_and(|(after, _, _)| writes >= *after)
    {
        let (_, name, options) = cluster.replace_after.take().unwrap();
        if let Some(unit) = cluster.units.get_mut(&name) {
            unit.options = options;
        }
        reconcile(cluster);
    }
    if cluster
        .unload_after
        .as_ref()
        .is_some_and(|(after, _)| writes >= *after)
    {
        let (_, name) = cluster.unload_after.take().unwrap();
        if let Some(unit) = cluster.units.get_mut(&name) {
            unit.desired_state = "inactive".to_owned();
            if let Some(process) = unit.process.take() {
                let unloaded = FakeUnit {
                    process: Some(process),
                    ..unit.clone()
                };
                unit.stopped = false;
                leave_stopping(&mut cluster.leftovers, cluster.forget_delay, unloaded);
            }
        }
        reconcile(cluster);
    }
    if let Some((after, left)) = cluster.restart
        && writes >= after
    {
        cluster.restart = (left > 1).then_some((after, left - 1));
        return error(503, "fleet server unable to communicate with etcd");
    }
    if let Some((after, left)) = cluster.outage
        && writes >= after
    {
        cluster.outage = (left > 1).then_some((after, left - 1));
        if matches!(request.method.as_str(), "PUT" | "DELETE") {
            answer(cluster, request);
        }
        return error(500, "");
    }
    answer(cluster, request)
}

fn answer(cluster: &mut Cluster, request: &HttpRequest) -> Answer {
    let method = request.method.as_str();
    match request.path.as_str() {
        "/fleet/v1/units" => match method {
            "GET" => list_units(cluster, request),
            _ => error(405, "only GET supported against this resource"),
        },
        "/fleet/v1/machines" => match method {
            "GET" => {
                let machines: Vec<Value> = (cluster.listed().into_iter())
                    .map(|m| json!({"id": m, "primaryIP": "127.0.0.1", "metadata": {}}))
                    .collect();
                page(cluster, request, "machines", machines)
            }
            _ => error(405, "only GET supported against this resource"),
        },
        "/fleet/v1/state" => match method {
            "GET" => list_states(cluster, request),
            _ => error(405, "only GET supported against this resource"),
        },
        path => {
            // api/path.go isItemPath: base/* with no further `/`.
            let item = path
                .strip_prefix("/fleet/v1/units/")
                .filter(|i| !i.is_empty() && !i.contains('/'));
            match (item, method) {
                (None, _) => error(404, ""),
                (Some(item), "GET") => match cluster.units.get(item) {
                    Some(unit) => (200, Some(unit_json(unit, false))),
                    None => error(404, "unit does not exist"),
                },
                (Some(item), "DELETE") => match cluster.units.remove(item) {
                    Some(unit) => {
                        leave_stopping(&mut cluster.leftovers, cluster.forget_delay, unit);
                        reconcile(cluster);
                        (204, None)
                    }
                    None => error(404, "unit does not exist"),
                },
                (Some(item), "PUT") => set_unit(cluster, request, item),
                (Some(_), _) => error(
                    405,
                    "only GET, PUT and DELETE supported against this resource",
                ),
            }
        }
    }
}

/// A unit its machine no longer has (destroyed, or unscheduled: desired
/// `inactive`): the agent stops and unloads it alike, a little later.
fn leave_stopping(leftovers: &mut Vec<Leftover>, forget_delay: Duration, unit: FakeUnit) {
    if let Some(process) = unit.process {
        let until = Instant::now() + forget_delay;
        let state_until = Instant::now() + forget_delay / 2;
        leftovers.push(Leftover {
            state_until,
            hash: unit_hash(&unit.options),
            name: unit.name,
            machine_id: unit.machine_id,
            process,
            until,
        });
    }
}

/// `listed`: as `GET /fleet/v1/units` lists it. Live, a global unit has
/// no machine and its current state is `inactive` in the list, while
/// `GET /fleet/v1/units/NAME` leaves the current state out.
fn unit_json(unit: &FakeUnit, listed: bool) -> Value {
    let mut json = json!({
        "name": unit.name,
        "options": unit.options,
        "desiredState": unit.desired_state,
        "currentState": unit.current_state,
        "machineID": unit.machine_id,
    });
    if !listed && !is_template(&unit.name) && requirements(&unit.name, &unit.options).is_global() {
        json.as_object_mut().unwrap().remove("currentState");
    }
    json
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    options: Vec<Opt>,
    #[serde(default)]
    desired_state: String,
}

fn set_unit(cluster: &mut Cluster, request: &HttpRequest, item: &str) -> Answer {
    // api/serialization.go validateContentType.
    let types: Vec<&str> = request
        .headers
        .iter()
        .filter(|(n, _)| n == "content-type")
        .map(|(_, v)| v.as_str())
        .collect();
    if types.len() != 1 {
        return error(
            415,
            &format!("expected 1 Content-Type, got {}", types.len()),
        );
    }
    if types[0].split(';').next().unwrap_or("").trim() != "application/json" {
        return error(415, "only acceptable Content-Type is application/json");
    }
    let body: SetBody = match serde_json::from_slice(&request.body) {
        Ok(body) => body,
        Err(e) => return error(400, &format!("unable to decode body: {e}")),
    };
    let name = if body.name.is_empty() {
        item
    } else {
        body.name.as_str()
    };
    if name != item {
        return error(
            400,
            &format!("name in URL {item:?} differs from unit name in request body {name:?}"),
        );
    }
    if let Err(e) = validate_name(name) {
        return error(400, &e);
    }
    // A state outside schema/v1-json.go's enum: live fleetd stores
    // nothing and answers 500 with no message (as while etcd is down).
    if !["", "inactive", "loaded", "launched"].contains(&body.desired_state.as_str()) {
        return error(500, "");
    }

    let Some(existing) = cluster.units.get_mut(name) else {
        if body.options.is_empty() {
            return error(409, "unit does not exist and options field empty");
        }
        if let Err(e) = validate_options(&body.options) {
            return error(400, &e);
        }
        let desired = if body.desired_state.is_empty() {
            "inactive".to_owned()
        } else {
            body.desired_state
        };
        cluster.units.insert(
            name.to_owned(),
            FakeUnit {
                name: name.to_owned(),
                options: body.options,
                desired_state: desired,
                current_state: "inactive".to_owned(),
                machine_id: String::new(),
                activating_seen: 0,
                process: None,
                starts: 0,
                stopped: false,
                stale_failed: 0,
            },
        );
        reconcile(cluster);
        return (201, None);
    };

    if body.desired_state.is_empty() {
        return error(409, "must provide DesiredState to update existing unit");
    }
    if body.desired_state == "inactive" && existing.process.is_some() {
        let unloaded = existing.clone();
        existing.process = None;
        existing.stopped = false;
        leave_stopping(&mut cluster.leftovers, cluster.forget_delay, unloaded);
    }
    if is_template(name) && body.desired_state != "inactive" {
        return error(400, &format!("cannot activate template {name:?}"));
    }
    // Different options replace the unit (api/units.go: MatchUnitFiles,
    // then create). A running process is not restarted for it.
    if !body.options.is_empty() && body.options != existing.options {
        if let Err(e) = validate_options(&body.options) {
            return error(400, &e);
        }
        existing.options = body.options;
        existing.desired_state = body.desired_state;
        reconcile(cluster);
        return (201, None);
    }
    existing.desired_state = body.desired_state;
    reconcile(cluster);
    (204, None)
}

const VALID_UNIT_TYPES: [&str; 13] = [
    "service",
    "socket",
    "busname",
    "target",
    "snapshot",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

// api/units.go ValidateName (after systemd's unit_name_is_valid).
fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("unit name cannot be empty".into());
    }
    if name.len() > 256 {
        return Err("unit name exceeds maximum length (256)".into());
    }
    let Some(dot) = name.rfind('.') else {
        return Err(r#"unit name must contain ".""#.into());
    };
    if dot == name.len() - 1 {
        return Err(r#"unit name cannot end in ".""#.into());
    }
    let suffix = &name[dot + 1..];
    if !VALID_UNIT_TYPES.contains(&suffix) {
        return Err(format!("invalid unit type: {suffix:?}"));
    }
    if let Some(c) = name[..dot]
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !":-_.\\@".contains(*c))
    {
        return Err(format!("invalid character {c:?} in unit name"));
    }
    if name.starts_with('@') {
        return Err(r#"unit name cannot start in "@""#.into());
    }
    Ok(())
}

// api/units.go ValidateOptions. The job has no name there, so no specifier
// substitution happens during validation.
fn validate_options(options: &[Opt]) -> Result<(), String> {
    let req = requirements("", options);
    let conflicts = req.conflicts();
    let peers = req.peers();
    for peer in &peers {
        for conflict in &conflicts {
            if glob_match(conflict, peer) {
                return Err(format!(
                    "unresolvable requirements: peer {peer:?} matches conflict {conflict:?}"
                ));
            }
        }
    }
    let (has_peers, has_conflicts) = (!peers.is_empty(), !conflicts.is_empty());
    let has_target = req.required_target().is_some();
    let global = req.is_global();
    match () {
        _ if has_target && has_peers => Err("MachineID cannot be used with Peers".into()),
        _ if has_target && has_conflicts => Err("MachineID cannot be used with Conflicts".into()),
        _ if has_target && global => Err("MachineID cannot be used with Global".into()),
        _ if global && has_peers => Err("Global cannot be used with Peers".into()),
        _ if global && has_conflicts => Err("Global cannot be used with Conflicts".into()),
        _ => Ok(()),
    }
}

// unit/unit.go UnitNameInfo.
fn is_template(name: &str) -> bool {
    let base = name.rsplit_once('.').map_or(name, |(b, _)| b);
    base.split_once('@')
        .is_some_and(|(_, instance)| instance.is_empty())
}

/// The `[X-Fleet]` requirements of a unit (job/job.go `requirements`).
struct Requirements(BTreeMap<String, Vec<String>>);

fn requirements(unit_name: &str, options: &[Opt]) -> Requirements {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for opt in options.iter().filter(|o| o.section == "X-Fleet") {
        let values = multivalue(&opt.value)
            .into_iter()
            .map(|v| unit_printf(&v, unit_name));
        map.entry(opt.name.clone()).or_default().extend(values);
    }
    Requirements(map)
}

impl Requirements {
    fn values(&self, keys: &[&str]) -> Vec<String> {
        keys.iter()
            .flat_map(|k| self.0.get(*k).cloned().unwrap_or_default())
            .collect()
    }
    fn conflicts(&self) -> Vec<String> {
        self.values(&["X-Conflicts", "Conflicts"])
    }
    fn peers(&self) -> Vec<String> {
        self.values(&["X-ConditionMachineOf", "MachineOf"])
    }
    fn required_target(&self) -> Option<String> {
        [
            "MachineID",
            "X-ConditionMachineID",
            "X-ConditionMachineBootID",
        ]
        .iter()
        .find_map(|k| self.0.get(*k).and_then(|v| v.first().cloned()))
    }
    fn wants_metadata(&self) -> bool {
        !self
            .values(&["X-ConditionMachineMetadata", "MachineMetadata"])
            .is_empty()
    }
    // job/job.go IsGlobal: the last value wins.
    fn is_global(&self) -> bool {
        self.0
            .get("Global")
            .and_then(|v| v.last())
            .is_some_and(|v| matches!(v.to_lowercase().as_str(), "true" | "yes" | "1" | "on" | "t"))
    }
}

// unit/unit.go parseMultivalueLine: `"a=b" "c=d"` holds two values.
fn multivalue(line: &str) -> Vec<String> {
    if !(line.starts_with('"') && line.ends_with('"')) {
        return vec![line.to_owned()];
    }
    let (mut values, mut current, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => values.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    values.push(current);
    values
}

// job/job.go unitPrintf: %n full name, %N name without suffix, %p prefix,
// %i instance. Only applied when the unit has a name.
fn unit_printf(value: &str, unit_name: &str) -> String {
    let Some((name, _)) = unit_name.rsplit_once('.') else {
        return value.to_owned();
    };
    let (prefix, instance) = name.split_once('@').unwrap_or((name, ""));
    value
        .replace("%n", unit_name)
        .replace("%N", name)
        .replace("%p", prefix)
        .replace("%i", instance)
}

/// Go's path.Match: `*` (no `/`), `?`, `[...]` classes with ranges and `^`,
/// `\` escapes. A malformed pattern matches nothing, as fleet ignores the
/// error (agent/state.go globMatches).
fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n).unwrap_or(false)
}

fn glob_at(p: &[char], n: &[char]) -> Option<bool> {
    match p.first() {
        None => Some(n.is_empty()),
        Some('*') => {
            for i in 0..=n.len() {
                if glob_at(&p[1..], &n[i..])? {
                    return Some(true);
                }
                if i < n.len() && n[i] == '/' {
                    break;
                }
            }
            Some(false)
        }
        Some('?') => Some(!n.is_empty() && n[0] != '/' && glob_at(&p[1..], &n[1..])?),
        Some('[') => {
            let close = p.iter().skip(1).position(|&c| c == ']')? + 1;
            let class = &p[1..close];
            let (negated, class) = match class.first() {
                Some('^') => (true, &class[1..]),
                _ => (false, class),
            };
            let Some(&c) = n.first() else {
                return Some(false);
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            Some(hit != negated && glob_at(&p[close + 1..], &n[1..])?)
        }
        Some('\\') => {
            let &escaped = p.get(1)?;
            Some(n.first() == Some(&escaped) && glob_at(&p[2..], &n[1..])?)
        }
        Some(&c) => Some(n.first() == Some(&c) && glob_at(&p[1..], &n[1..])?),
    }
}

// ---- the simulated cluster -------------------------------------------------

// agent/state.go AbleToRun, against the units scheduled on `machine`.
fn able_to_run(cluster: &Cluster, unit: &FakeUnit, machine: &str) -> bool {
    let req = requirements(&unit.name, &unit.options);
    if req.required_target().is_some_and(|t| t != machine) || req.wants_metadata() {
        return false;
    }
    let local: Vec<&FakeUnit> = cluster
        .units
        .values()
        .filter(|u| u.machine_id == machine && u.name != unit.name)
        .collect();
    if !req
        .peers()
        .iter()
        .all(|peer| local.iter().any(|u| &u.name == peer))
    {
        return false;
    }
    let conflicts = req.conflicts();
    !local.iter().any(|other| {
        conflicts.iter().any(|c| glob_match(c, &other.name))
            || requirements(&other.name, &other.options)
                .conflicts()
                .iter()
                .any(|c| glob_match(c, &unit.name))
    })
}

/// engine/reconciler.go: unschedule inactive units and units their machine
/// can no longer run; schedule the others on the least-loaded able machine.
/// Templates are never scheduled. Scheduled units reach their desired
/// state at once; `/state` models systemd taking its time.
fn reconcile(cluster: &mut Cluster) {
    let names: Vec<String> = cluster.units.keys().cloned().collect();
    for _ in 0..=names.len() {
        let mut changed = false;
        for name in &names {
            let Some(unit) = cluster.units.get(name).cloned() else {
                continue;
            };
            if requirements(&unit.name, &unit.options).is_global() {
                // Live: fleet keeps no current state of a global unit (its
                // list says `inactive`); only the machines' states tell.
                let entry = cluster.units.get_mut(name).unwrap();
                entry.current_state = "inactive".to_owned();
                // Stopped on its machines behind fleet's back: stays so
                // until fleet tells them to stop and start it again.
                if entry.desired_state != "launched" {
                    entry.stopped = false;
                    entry.activating_seen = 0;
                }
                continue;
            }
            let wants_machine = unit.desired_state != "inactive" && !is_template(&unit.name);
            let machine = if !wants_machine {
                String::new()
            } else if !unit.machine_id.is_empty() && able_to_run(cluster, &unit, &unit.machine_id) {
                unit.machine_id.clone()
            } else {
                (cluster.listed().iter())
                    .filter(|m| able_to_run(cluster, &unit, m))
                    .min_by_key(|m| {
                        cluster
                            .units
                            .values()
                            .filter(|u| u.machine_id == **m)
                            .count()
                    })
                    .map(|m| m.to_string())
                    .unwrap_or_default()
            };
            let current = if machine.is_empty() {
                "inactive".to_owned()
            } else {
                unit.desired_state.clone()
            };
            // One systemd stopped on its own stays stopped until fleet
            // tells its machine to stop it and start it again.
            // A lost machine starts nothing.
            let started = current == "launched"
                && unit.process.is_none()
                && !unit.stopped
                && !cluster.is_lost(&machine);
            // The agent's stop of the destroyed unit and start of this one in
            // one pass: the start cancels the stop, the old process runs on.
            let inherited = started
                .then(|| {
                    cluster
                        .leftovers
                        .iter()
                        .position(|l| l.name == *name && l.machine_id == machine)
                })
                .flatten()
                .map(|at| cluster.leftovers.remove(at).process);
            let failed_stop = started
                && inherited.is_none()
                && cluster
                    .failed_stops
                    .iter()
                    .any(|(n, m)| n == name && *m == machine);
            if started {
                cluster
                    .failed_stops
                    .retain(|(n, m)| !(n == name && *m == machine));
            }
            let entry = cluster.units.get_mut(name).unwrap();
            if failed_stop {
                entry.stale_failed = 1;
            }
            if entry.machine_id != machine || entry.current_state != current {
                if entry.machine_id != machine {
                    entry.activating_seen = 0;
                }
                entry.machine_id = machine;
                entry.current_state = current.clone();
                changed = true;
            }
            if started {
                // An inherited process is already up: no "activating".
                if inherited.is_some() {
                    entry.activating_seen = u32::MAX;
                } else {
                    entry.starts += 1;
                }
                entry.process = Some(inherited.unwrap_or_else(|| unit_hash(&entry.options)));
            } else if current != "launched"
                && (unit.current_state == "launched" || entry.machine_id != unit.machine_id)
            {
                // Told to stop: what systemd had stopped on its own is
                // moot, the next launch starts it.
                entry.process = None;
                entry.stopped = false;
            }
            if started {
                start_wanted(cluster, name);
            }
        }
        if !changed {
            return;
        }
    }
}

/// systemd on a machine starts what a unit it starts wants, requires or is
/// bound to, where that machine has the unit file: a copy fleet has there
/// `loaded` then runs while fleet still says loaded (seen live: a sidekick
/// stopped with `fleetctl stop` ran again once its service started).
fn start_wanted(cluster: &mut Cluster, name: &str) {
    let unit = &cluster.units[name];
    let machine = unit.machine_id.clone();
    let wanted: Vec<String> = (unit.options.iter())
        .filter(|o| {
            o.section == "Unit" && ["Wants", "Requires", "BindsTo"].contains(&o.name.as_str())
        })
        .flat_map(|o| {
            o.value
                .split_whitespace()
                .map(|v| unit_printf(v, name))
                .collect::<Vec<_>>()
        })
        .collect();
    for other in wanted {
        if let Some(entry) = cluster.units.get_mut(&other)
            && entry.machine_id == machine
            && entry.current_state == "loaded"
            && entry.process.is_none()
        {
            entry.process = Some(unit_hash(&entry.options));
            entry.starts += 1;
            cluster
                .failed_stops
                .retain(|(n, m)| !(*n == other && *m == machine));
        }
    }
}

fn list_units(cluster: &Cluster, request: &HttpRequest) -> Answer {
    let units: Vec<Value> = cluster.units.values().map(|u| unit_json(u, true)).collect();
    page(cluster, request, "units", units)
}

fn list_states(cluster: &mut Cluster, request: &HttpRequest) -> Answer {
    let filter = |key: &str| {
        request
            .query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let (machine, unit_name) = (filter("machineID"), filter("unitName"));
    forget_expired(cluster);
    let (polls, marker) = (cluster.activation_polls, cluster.failing_marker.clone());
    let mut states = Vec::new();
    let now = Instant::now();
    for leftover in &cluster.leftovers {
        if leftover.state_until <= now
            || machine.as_ref().is_some_and(|m| m != &leftover.machine_id)
            || unit_name.as_ref().is_some_and(|n| n != &leftover.name)
        {
            continue;
        }
        states.push(json!({
            "name": leftover.name,
            "hash": leftover.hash,
            "machineID": leftover.machine_id,
            "systemdLoadState": "loaded",
            "systemdActiveState": "active",
            "systemdSubState": "running",
        }));
    }
    let failed_stops = cluster.failed_stops.clone();
    let reporting: Vec<&str> = (cluster.listed().into_iter())
        .filter(|m| !cluster.is_lost(m))
        .collect();
    let lost: Vec<String> = cluster.lost.iter().map(|(m, _)| m.clone()).collect();
    // (name, machine, whether its state still shows)
    let leftovers: Vec<(String, String, bool)> = cluster
        .leftovers
        .iter()
        .map(|l| (l.name.clone(), l.machine_id.clone(), l.state_until > now))
        .collect();
    for unit in cluster.units.values_mut() {
        let wants = requirements(&unit.name, &unit.options);
        // No fake machine has metadata: one that requires some runs nowhere.
        if !wants.is_global()
            || wants.wants_metadata()
            || is_template(&unit.name)
            || unit.desired_state == "inactive"
        {
            continue;
        }
        let failing = marker
            .as_ref()
            .is_some_and(|m| unit.options.iter().any(|o| o.value.contains(m)));
        let (active, sub) = match unit.desired_state.as_str() {
            // A start that fails goes through activating too.
            "launched" if unit.activating_seen < polls => {
                unit.activating_seen += 1;
                ("activating", "start")
            }
            "launched" if failing => unit.failed_start(),
            "launched" if !unit.stopped => ("active", "exited"),
            _ => ("inactive", "dead"),
        };
        for &m in &reporting {
            if machine.as_ref().is_some_and(|f| f != m)
                || unit_name.as_ref().is_some_and(|n| n != &unit.name)
            {
                continue;
            }
            states.push(json!({
                "name": unit.name,
                "hash": unit_hash(&unit.options),
                "machineID": m,
                "systemdLoadState": "loaded",
                "systemdActiveState": active,
                "systemdSubState": sub,
            }));
        }
    }
    for unit in cluster.units.values_mut() {
        if unit.machine_id.is_empty()
            || machine.as_ref().is_some_and(|m| m != &unit.machine_id)
            || unit_name.as_ref().is_some_and(|n| n != &unit.name)
        {
            continue;
        }
        // A lost machine reports only what it ran before.
        if lost.contains(&unit.machine_id) && unit.process.is_none() {
            continue;
        }
        // Until its machine has stopped the destroyed unit of the same
        // name, that one's state is what the machine reports.
        let stopping = leftovers
            .iter()
            .find(|(n, m, _)| *n == unit.name && *m == unit.machine_id);
        if stopping.is_some_and(|(_, _, shown)| *shown) {
            continue;
        }
        let (active, sub) = match unit.current_state.as_str() {
            // The new file is loaded; the old process is still stopping.
            _ if stopping.is_some() && unit.process.is_none() => ("deactivating", "stop-sigterm"),
            "loaded"
                if failed_stops
                    .iter()
                    .any(|(n, m)| *n == unit.name && *m == unit.machine_id) =>
            {
                ("failed", "failed")
            }
            "launched" if unit.stale_failed > 0 => {
                unit.stale_failed -= 1;
                ("failed", "failed")
            }
            "launched" if unit.stopped => ("inactive", "dead"),
            // Started on its machine by a unit that wants it.
            "loaded" if unit.process.is_some() => ("active", "running"),
            // A start that fails goes through activating too.
            "launched" if unit.activating_seen < polls => {
                unit.activating_seen += 1;
                ("activating", "start")
            }
            "launched"
                if marker
                    .as_ref()
                    .is_some_and(|m| unit.options.iter().any(|o| o.value.contains(m))) =>
            {
                unit.failed_start()
            }
            "launched" => ("active", "running"),
            _ => ("inactive", "dead"),
        };
        states.push(json!({
            "name": unit.name,
            "hash": unit_hash(&unit.options),
            "machineID": unit.machine_id,
            "systemdLoadState": "loaded",
            "systemdActiveState": active,
            "systemdSubState": sub,
        }));
    }
    // Counted per answer, whether it names the unit or not.
    for left in cluster.hidden_states.values_mut() {
        *left = left.saturating_sub(1);
    }
    let hidden: Vec<String> = cluster.hidden_states.keys().cloned().collect();
    states.retain(|s| !hidden.iter().any(|h| s["name"] == h.as_str()));
    cluster.hidden_states.retain(|_, left| *left > 0);
    page(cluster, request, "states", states)
}

/// Lost machines whose entry has expired leave the cluster: their units
/// are placed again on the others (engine/reconciler.go), their states and
/// processes gone with them.
fn drop_expired_machines(cluster: &mut Cluster) {
    let now = Instant::now();
    let (expired, down): (Vec<_>, Vec<_>) = cluster.lost.drain(..).partition(|(_, at)| *at <= now);
    cluster.lost = down;
    if expired.is_empty() {
        return;
    }
    for (machine, _) in expired {
        for unit in cluster.units.values_mut() {
            if unit.machine_id == machine {
                unit.machine_id.clear();
                unit.process = None;
                unit.stopped = false;
                unit.activating_seen = 0;
            }
        }
        cluster.leftovers.retain(|l| l.machine_id != machine);
        cluster.failed_stops.retain(|(_, m)| *m != machine);
        cluster.gone.push(machine);
    }
    reconcile(cluster);
}

fn forget_expired(cluster: &mut Cluster) {
    let now = Instant::now();
    let (ended, left): (Vec<Leftover>, Vec<Leftover>) =
        cluster.leftovers.drain(..).partition(|l| l.until <= now);
    cluster.leftovers = left;
    cluster
        .failed_stops
        .extend(ended.into_iter().map(|l| (l.name, l.machine_id)));
}

// unit/unit.go Hash: SHA-1 of go-systemd's serialization (options grouped
// by section in order of first appearance, a blank line between sections).
fn unit_hash(options: &[Opt]) -> String {
    let mut sections: Vec<&str> = Vec::new();
    for option in options {
        if !sections.contains(&option.section.as_str()) {
            sections.push(&option.section);
        }
    }
    let text = sections
        .iter()
        .map(|section| {
            let lines: String = options
                .iter()
                .filter(|o| o.section == *section)
                .map(|o| format!("{}={}\n", o.name, o.value))
                .collect();
            format!("[{section}]\n{lines}")
        })
        .collect::<Vec<_>>()
        .join("\n");
    Sha1::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// api/pagination.go + extractUnitPageData: a token is base64url of the
// little-endian {Limit, Page}; its limit must equal the server's. A full
// last page still carries a next token, whose page comes back empty.
fn page(cluster: &Cluster, request: &HttpRequest, field: &str, items: Vec<Value>) -> Answer {
    let tokens: Vec<&String> = request
        .query
        .iter()
        .filter(|(k, _)| k == "nextPageToken")
        .map(|(_, v)| v)
        .collect();
    let page_number = match tokens.as_slice() {
        [] => 1,
        [token] => match decode_token(token) {
            Some((limit, _)) if limit != cluster.page_size => {
                return error(400, &format!("token limit must be {}", cluster.page_size));
            }
            Some((_, 0)) => return error(400, "token page must be greater than zero"),
            Some((_, page)) => page,
            None => return error(400, &token_error(token)),
        },
        _ => return error(400, "too many values for page token"),
    };
    let limit = usize::from(cluster.page_size);
    let start = usize::from(page_number - 1) * limit;
    let mut stop = usize::from(page_number) * limit;
    let mut body = serde_json::Map::new();
    if start < items.len() {
        if stop > items.len() {
            stop = items.len();
        } else {
            body.insert(
                "nextPageToken".into(),
                encode_token(cluster.page_size, page_number + 1).into(),
            );
        }
        body.insert(field.into(), items[start..stop].to_vec().into());
    }
    (200, Some(Value::Object(body)))
}

const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn encode_token(limit: u16, page: u16) -> String {
    let bytes = [limit.to_le_bytes(), page.to_le_bytes()].concat();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64_URL[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What live fleet answers to a page token that does not decode: Go's
/// base64 error (`illegal base64 data at input byte N`: a byte outside the
/// alphabet or a misplaced `=` there, an unfinished group of four where it
/// starts, anything after the padding where it starts), else
/// encoding/binary's for fewer than 4 bytes (`EOF`, `unexpected EOF`).
fn token_error(token: &str) -> String {
    // As Go's base64 decodeQuantum, group of four by group of four.
    let src = token.as_bytes();
    let illegal = |at: usize| format!("illegal base64 data at input byte {at}");
    let (mut si, mut decoded) = (0, 0);
    'groups: while si < src.len() {
        for j in 0..4 {
            if si == src.len() {
                if j == 0 {
                    break 'groups;
                }
                return illegal(si - j);
            }
            let c = src[si];
            si += 1;
            if c == b'=' {
                match j {
                    0 | 1 => return illegal(si - 1),
                    2 if si == src.len() => return illegal(src.len()),
                    2 if src[si] != b'=' => return illegal(si - 1),
                    2 => si += 1,
                    _ => {}
                }
                if si < src.len() {
                    return illegal(si);
                }
                decoded += j * 6 / 8;
                break 'groups;
            }
            if !BASE64_URL.contains(&c) {
                return illegal(si - 1);
            }
        }
        decoded += 3;
    }
    if decoded == 0 {
        "EOF"
    } else {
        "unexpected EOF"
    }
    .to_owned()
}

fn decode_token(token: &str) -> Option<(u16, u16)> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in token.trim_end_matches('=').bytes() {
        let v = BASE64_URL.iter().position(|&b| b == c)? as u32;
        bits = bits << 6 | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
        }
    }
    (bytes.len() == 4).then(|| {
        (
            u16::from_le_bytes([bytes[0], bytes[1]]),
            u16::from_le_bytes([bytes[2], bytes[3]]),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_page_tokens_are_answered_as_live_fleet_does() {
        for (token, said) in [
            ("zz", "illegal base64 data at input byte 0"),
            ("ZAACAA", "illegal base64 data at input byte 4"),
            ("ZAACAA==ZAACAA==", "illegal base64 data at input byte 8"),
            ("ZA!CAA==", "illegal base64 data at input byte 2"),
            ("Z=AA", "illegal base64 data at input byte 1"),
            ("ZA=A", "illegal base64 data at input byte 2"),
            ("ZAACAA=", "illegal base64 data at input byte 7"),
            ("ZAACAA=A", "illegal base64 data at input byte 6"),
            ("ZAA=", "unexpected EOF"),
            ("AAAA", "unexpected EOF"),
            ("", "EOF"),
        ] {
            assert_eq!(token_error(token), said, "{token:?}");
        }
    }

    #[test]
    fn page_tokens_round_trip_like_go() {
        // Go: base64.URLEncoding of LittleEndian {Limit: 100, Page: 2}.
        assert_eq!(encode_token(100, 2), "ZAACAA==");
        assert_eq!(decode_token("ZAACAA=="), Some((100, 2)));
        assert_eq!(decode_token("!!"), None);
    }

    #[test]
    fn globs_like_go_path_match() {
        assert!(glob_match("web@*.service", "web@1.service"));
        assert!(!glob_match("web@*.service", "db@1.service"));
        assert!(glob_match("web@?.service", "web@1.service"));
        assert!(glob_match("web@[0-9].service", "web@7.service"));
        assert!(!glob_match("web@[^0-9].service", "web@7.service"));
        assert!(!glob_match("a*", "a/b"));
        assert!(!glob_match("web@[.service", "web@[.service"));
    }

    #[test]
    fn specifiers_and_multivalues() {
        assert_eq!(
            unit_printf("web@%i.service", "ann@3.service"),
            "web@3.service"
        );
        assert_eq!(
            unit_printf("%p-%N-%n", "ann@3.service"),
            "ann-ann@3-ann@3.service"
        );
        assert_eq!(unit_printf("web@%i.service", ""), "web@%i.service");
        assert_eq!(multivalue(r#""a=b" "c=d""#), ["a=b", "c=d"]);
        assert_eq!(multivalue("plain value"), ["plain value"]);
    }
}
