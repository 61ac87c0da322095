//! A client for fleet's v1 HTTP API (fleet's `Documentation/api-v1.md`,
//! `schema/v1.json`).
//!
//! fleet listens on a unix socket by default (`unix:///var/run/fleet.sock`),
//! which no common blocking HTTP crate speaks simply, so this carries its own
//! minimal HTTP/1.1: one request per connection (`Connection: close`), its
//! answer read by [`crate::http`].

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize};
use sha1::{Digest, Sha1};

use super::{ErrorKind, FleetError};
use crate::escape::percent_encoded;
use crate::http;
use crate::unit_file::UnitOption;

/// A unit's desired or current state in fleet (`job.JobState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Inactive,
    Loaded,
    Launched,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Inactive => "inactive",
            JobState::Loaded => "loaded",
            JobState::Launched => "launched",
        }
    }
}

/// fleet's Unit entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unit {
    pub name: String,
    #[serde(default)]
    pub options: Vec<UnitOption>,
    #[serde(default, deserialize_with = "state_or_empty")]
    pub desired_state: Option<JobState>,
    #[serde(default, deserialize_with = "state_or_empty")]
    pub current_state: Option<JobState>,
    #[serde(default, rename = "machineID")]
    pub machine_id: String,
    /// fleet's hash of the unit file as submitted (see [`unit_hash`]),
    /// which its machines report: read before `options` are taken as
    /// systemd reads them (see [`Unit::into_systemd_reading`]).
    #[serde(skip)]
    pub hash: String,
}

impl Unit {
    /// The unit with its options as systemd reads them, so that one
    /// submitted by fleetctl (continued lines kept) compares equal to the
    /// same unit submitted by unitgen (joined); `hash` stays the submitted
    /// file's.
    fn into_systemd_reading(mut self) -> Unit {
        self.hash = unit_hash(&self.options);
        self.options = (self.options.into_iter())
            .map(UnitOption::into_systemd_reading)
            .collect();
        self
    }
}

/// fleet's UnitState entity: what systemd reports for a unit on a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitState {
    pub name: String,
    #[serde(default)]
    pub hash: String,
    #[serde(default, rename = "machineID")]
    pub machine_id: String,
    #[serde(default)]
    pub systemd_load_state: String,
    #[serde(default)]
    pub systemd_active_state: String,
    #[serde(default)]
    pub systemd_sub_state: String,
}

/// The hash fleet reports in a unit's state (`UnitState.hash`): SHA-1 of the
/// unit file as go-systemd serializes its options (unit/unit.go `Hash`):
/// options grouped by section in order of first appearance, a blank line
/// between sections. Checked against a live fleet v1.0.
pub fn unit_hash(options: &[UnitOption]) -> String {
    let mut sections: Vec<(&str, Vec<&UnitOption>)> = Vec::new();
    for option in options {
        match sections.iter_mut().find(|(s, _)| *s == option.section) {
            Some((_, list)) => list.push(option),
            None => sections.push((&option.section, vec![option])),
        }
    }
    let mut text = String::new();
    for (i, (section, list)) in sections.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&format!("[{section}]\n"));
        for option in list {
            text.push_str(&format!("{}={}\n", option.name, option.value));
        }
    }
    Sha1::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// fleet leaves currentState empty for a unit it has not scheduled.
fn state_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<JobState>, D::Error> {
    match Option::<String>::deserialize(d)?.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => JobState::deserialize(serde::de::value::StrDeserializer::new(s)).map(Some),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnitPage {
    #[serde(default)]
    units: Vec<Unit>,
    #[serde(default)]
    next_page_token: String,
}

/// fleet's Machine entity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub id: String,
    #[serde(default, rename = "primaryIP")]
    pub primary_ip: String,
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MachinePage {
    #[serde(default)]
    machines: Vec<Machine>,
    #[serde(default)]
    next_page_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnitStatePage {
    #[serde(default)]
    states: Vec<UnitState>,
    #[serde(default)]
    next_page_token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SetUnit<'a> {
    name: &'a str,
    desired_state: JobState,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    options: &'a [UnitOption],
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorEntity,
}

#[derive(Deserialize)]
struct ErrorEntity {
    #[serde(default)]
    message: String,
}

#[derive(Debug, Clone)]
enum Transport {
    Tcp { authority: String },
    Unix(PathBuf),
}

/// A connection to one fleet API endpoint.
#[derive(Debug, Clone)]
pub struct FleetClient {
    endpoint: String,
    transport: Transport,
    /// Path prefix before `/fleet/v1` (from an `http://host:port/prefix` endpoint).
    base: String,
    connect_timeout: Duration,
    io_timeout: Duration,
    /// How long a request fleet answers 500 or 503 is sent again.
    retry_for: Duration,
    /// Told once a request is sent again: without, a command waited up to
    /// `retry_for` without a word.
    on_retry: Option<fn(&str)>,
    /// Whether fleet has answered this client (or a clone of it) before:
    /// a connection refused or closed unanswered after that is fleetd
    /// restarting, and the request is sent again.
    answered: Arc<AtomicBool>,
}

// Between two tries of a request fleet answered 500 or 503.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

// How long a request fleet answers 500 or 503 is sent again. A fleetd
// that crashed answers 503 until its old machine entry in etcd expires
// (fleet's agent_ttl, 30 s) after systemd has started it again: seen live
// 36 s after the kill, when 30 s here cut an apply short midway through
// a roll.
const RETRY_FOR: Duration = Duration::from_secs(60);

// Guards against a server that keeps handing out page tokens.
const MAX_PAGES: usize = 10_000;

impl FleetClient {
    /// `unix:///var/run/fleet.sock` (fleet's default) or `http://host:port`;
    /// like fleetctl, a bare `host:port` means http.
    pub fn new(endpoint: &str) -> Result<Self, FleetError> {
        let invalid =
            |detail: String| FleetError::new("connecting to fleet", ErrorKind::Endpoint(detail));
        // Its path is written into each request's first line: a space or a
        // line break there would end that line and start a header of the
        // endpoint's choosing.
        if !endpoint.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(format!(
                "`{}` holds a space, a control or a non-ASCII character: write a URL as typed (`http://10.0.0.1:49153`)",
                crate::diagnostic::shown(endpoint)
            )));
        }
        let (transport, base) = if let Some(path) = endpoint.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(invalid(format!(
                    "`{endpoint}`: a unix endpoint needs an absolute path, e.g. unix:///var/run/fleet.sock"
                )));
            }
            (Transport::Unix(PathBuf::from(path)), String::new())
        } else {
            let rest = match endpoint.split_once("://") {
                Some(("http", rest)) => rest,
                Some((scheme, _)) => {
                    return Err(invalid(format!(
                        "`{endpoint}`: unsupported scheme `{scheme}` (use http:// or unix://)"
                    )));
                }
                None => endpoint,
            };
            let (authority, path) = match rest.find('/') {
                Some(at) => rest.split_at(at),
                None => (rest, ""),
            };
            if authority.is_empty() {
                return Err(invalid(format!("`{endpoint}` has no host")));
            }
            let authority = if authority
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                authority.to_owned()
            } else {
                format!("{authority}:80")
            };
            (
                Transport::Tcp { authority },
                path.trim_end_matches('/').to_owned(),
            )
        };
        Ok(FleetClient {
            endpoint: endpoint.to_owned(),
            transport,
            base,
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(30),
            retry_for: RETRY_FOR,
            on_retry: None,
            answered: Arc::new(AtomicBool::new(false)),
        })
    }

    /// How long a request fleet answers 500 or 503 (it cannot use etcd)
    /// is sent again before its error is returned (60 s by default).
    pub fn with_retry_for(mut self, retry_for: Duration) -> Self {
        self.retry_for = retry_for;
        self
    }

    /// `tell` is given a line when a request fleet answered 500 or 503
    /// is to be sent again (once a request).
    pub fn with_retry_notice(mut self, tell: fn(&str)) -> Self {
        self.on_retry = Some(tell);
        self
    }

    /// Overrides the connect timeout and the per-read/write timeout.
    pub fn with_timeouts(mut self, connect: Duration, io: Duration) -> Self {
        self.connect_timeout = connect;
        self.io_timeout = io;
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every unit fleet knows, following `nextPageToken` across pages.
    pub fn list_units(&self) -> Result<Vec<Unit>, FleetError> {
        let doing = "listing fleet units";
        let mut units = Vec::new();
        self.pages(doing, "/units", &[], |body| {
            let page: UnitPage = decode(doing, body)?;
            units.extend(page.units.into_iter().map(Unit::into_systemd_reading));
            Ok(page.next_page_token)
        })?;
        Ok(units)
    }

    /// One unit, or `None` when fleet has no unit by that name (404).
    pub fn get_unit(&self, name: &str) -> Result<Option<Unit>, FleetError> {
        let doing = format!("reading {name}");
        let response = self.call(&doing, "GET", &unit_path(name), None)?;
        if response.status == 404 {
            return Ok(None);
        }
        let body = check(&doing, response)?;
        decode(&doing, &body).map(|unit: Unit| Some(unit.into_systemd_reading()))
    }

    /// `PUT /fleet/v1/units/NAME`. With options this creates the unit, or
    /// replaces an existing one whose options differ (fleet answers 201 either
    /// way); without, it only sets the desired state of an existing unit.
    pub fn put_unit(
        &self,
        name: &str,
        desired: JobState,
        options: &[UnitOption],
    ) -> Result<(), FleetError> {
        let doing = if options.is_empty() {
            format!("setting {name} to {}", desired.as_str())
        } else {
            format!("submitting {name}")
        };
        let body = serde_json::to_vec(&SetUnit {
            name,
            desired_state: desired,
            options,
        })
        .map_err(|e| FleetError::new(&doing, ErrorKind::Protocol(e.to_string())))?;
        let response = self.call(&doing, "PUT", &unit_path(name), Some(&body))?;
        check(&doing, response).map(drop)
    }

    /// `DELETE /fleet/v1/units/NAME`: stops the unit wherever it runs and
    /// forgets it. fleet answers 404 if there is no such unit.
    pub fn delete_unit(&self, name: &str) -> Result<(), FleetError> {
        let doing = format!("destroying {name}");
        let response = self.call(&doing, "DELETE", &unit_path(name), None)?;
        check(&doing, response).map(drop)
    }

    /// Every machine of the cluster (`GET /fleet/v1/machines`), across pages.
    pub fn list_machines(&self) -> Result<Vec<Machine>, FleetError> {
        let doing = "listing fleet machines";
        let mut machines = Vec::new();
        self.pages(doing, "/machines", &[], |body| {
            let page: MachinePage = decode(doing, body)?;
            machines.extend(page.machines);
            Ok(page.next_page_token)
        })?;
        Ok(machines)
    }

    /// `GET /fleet/v1/state`, optionally only for one unit name, across pages.
    pub fn list_state(&self, unit_name: Option<&str>) -> Result<Vec<UnitState>, FleetError> {
        let doing = match unit_name {
            Some(name) => format!("reading the state of {name}"),
            None => "reading unit states".to_owned(),
        };
        let query: Vec<(&str, &str)> = unit_name.map(|n| ("unitName", n)).into_iter().collect();
        let mut states = Vec::new();
        self.pages(&doing, "/state", &query, |body| {
            let page: UnitStatePage = decode(&doing, body)?;
            states.extend(page.states);
            Ok(page.next_page_token)
        })?;
        Ok(states)
    }

    fn pages(
        &self,
        doing: &str,
        resource: &str,
        query: &[(&str, &str)],
        mut take: impl FnMut(&[u8]) -> Result<String, FleetError>,
    ) -> Result<(), FleetError> {
        let mut token = String::new();
        for _ in 0..MAX_PAGES {
            let mut params = query.to_vec();
            if !token.is_empty() {
                params.push(("nextPageToken", &token));
            }
            let mut target = format!("/fleet/v1{resource}");
            for (i, (key, value)) in params.iter().enumerate() {
                target.push(if i == 0 { '?' } else { '&' });
                target.push_str(&format!("{key}={}", percent_encoded(value, b"")));
            }
            let body = check(doing, self.call(doing, "GET", &target, None)?)?;
            let next = take(&body)?;
            if next.is_empty() {
                return Ok(());
            }
            if next == token {
                return Err(FleetError::new(
                    doing,
                    ErrorKind::Protocol(format!(
                        "fleet returned the same nextPageToken `{next}` twice"
                    )),
                ));
            }
            token = next;
        }
        Err(FleetError::new(
            doing,
            ErrorKind::Protocol(format!("more than {MAX_PAGES} pages")),
        ))
    }

    /// One request, sent again (1 s apart, for `retry_for`) while fleet
    /// answers 500 or 503: live fleetd answers 500 with no message while
    /// etcd is down or does not answer, and 503 while it waits to register
    /// again after a restart. So too, once fleet has answered this client,
    /// while the connection is refused or closed before an answer: fleetd
    /// ended (killed, restarted) as it had the request, or is not back
    /// yet (an endpoint that never answered is said at once: a wrong
    /// one). Every request unitgen sends may be sent twice: a PUT sets
    /// the same unit and state again; a DELETE fleet did before its answer
    /// failed is found gone (404), and is done.
    fn call(
        &self,
        doing: &str,
        method: &str,
        target: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, FleetError> {
        let started = Instant::now();
        let mut failed_before = false;
        loop {
            let mut response = match self.call_once(doing, method, target, body) {
                Ok(response) => response,
                Err(e)
                    if self.answered.load(Ordering::Relaxed)
                        && is_restart(&e)
                        && started.elapsed() < self.retry_for =>
                {
                    if !failed_before && let Some(tell) = self.on_retry {
                        tell(&format!(
                            "{e}; asking again each second, for up to {} s (fleetd ended or \
                             restarts)",
                            self.retry_for.as_secs()
                        ));
                    }
                    failed_before = true;
                    thread::sleep(RETRY_PAUSE.min(self.retry_for - started.elapsed()));
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.answered.store(true, Ordering::Relaxed);
            let elapsed = started.elapsed();
            if !matches!(response.status, 500 | 503) || elapsed >= self.retry_for {
                if failed_before && method == "DELETE" && response.status == 404 {
                    response.status = 204;
                    response.body.clear();
                }
                if failed_before {
                    response.tried_for = Some(elapsed);
                }
                return Ok(response);
            }
            if !failed_before && let Some(tell) = self.on_retry {
                tell(&format!(
                    "{doing}: fleet at {} answered {}{}; asking again each second, for up to {} s \
                     (fleetd answers so while it cannot use etcd: etcd down, or fleetd just restarted)",
                    self.endpoint,
                    response.status,
                    match serde_json::from_slice::<ErrorBody>(&response.body) {
                        Ok(body) if !body.error.message.is_empty() =>
                            format!(" `{}`", body.error.message),
                        _ => " with no message".to_owned(),
                    },
                    self.retry_for.as_secs()
                ));
            }
            failed_before = true;
            thread::sleep(RETRY_PAUSE.min(self.retry_for - elapsed));
        }
    }

    fn call_once(
        &self,
        doing: &str,
        method: &str,
        target: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, FleetError> {
        let io_error = |source| {
            FleetError::new(
                doing,
                ErrorKind::Io {
                    endpoint: self.endpoint.clone(),
                    source,
                },
            )
        };
        let (mut stream, host): (Box<dyn Stream>, &str) = match &self.transport {
            Transport::Tcp { authority } => (
                Box::new(self.connect_tcp(authority).map_err(io_error)?),
                authority,
            ),
            Transport::Unix(path) => {
                let stream = UnixStream::connect(path).map_err(io_error)?;
                stream
                    .set_read_timeout(Some(self.io_timeout))
                    .map_err(io_error)?;
                stream
                    .set_write_timeout(Some(self.io_timeout))
                    .map_err(io_error)?;
                // Go's server wants a Host header; fleetctl sends this one.
                (Box::new(stream), "domain-sock")
            }
        };
        let request = encode_request(method, &format!("{}{target}", self.base), host, body);
        stream.write_all(&request).map_err(io_error)?;
        stream.flush().map_err(io_error)?;
        let http::Response {
            status,
            reason,
            body,
        } = http::read_response(&mut BufReader::new(stream), method).map_err(|e| {
            match e.kind() {
                io::ErrorKind::InvalidData => {
                    FleetError::new(doing, ErrorKind::Protocol(e.to_string()))
                }
                // fleetd ended (or dropped the connection) before it
                // answered in full: see `is_restart`.
                io::ErrorKind::UnexpectedEof => io_error(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection was closed before fleet answered",
                )),
                _ => io_error(e),
            }
        })?;
        Ok(Response {
            status,
            reason,
            body,
            tried_for: None,
        })
    }

    fn connect_tcp(&self, authority: &str) -> io::Result<TcpStream> {
        let mut last = io::Error::new(
            io::ErrorKind::NotFound,
            format!("`{authority}` resolves to no address"),
        );
        for addr in authority.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(self.io_timeout))?;
                    stream.set_write_timeout(Some(self.io_timeout))?;
                    return Ok(stream);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// Whether an error is what a fleetd ending or restarting gives its
/// clients: the connection refused (no socket activation), reset, or
/// closed before an answer.
fn is_restart(error: &FleetError) -> bool {
    match &error.kind {
        ErrorKind::Io { source, .. } => matches!(
            source.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn unit_path(name: &str) -> String {
    // `@` and `:` are legal in a path segment and common in unit names.
    format!("/fleet/v1/units/{}", percent_encoded(name, b"@:"))
}

fn decode<'a, T: Deserialize<'a>>(doing: &str, body: &'a [u8]) -> Result<T, FleetError> {
    serde_json::from_slice(body).map_err(|e| {
        FleetError::new(
            doing,
            ErrorKind::Protocol(format!("invalid JSON from fleet: {e}")),
        )
    })
}

/// The body of a 2xx response, or fleet's error as a `FleetError`.
fn check(doing: &str, response: Response) -> Result<Vec<u8>, FleetError> {
    if (200..300).contains(&response.status) {
        return Ok(response.body);
    }
    let entity = serde_json::from_slice::<ErrorBody>(&response.body);
    // Live fleetd's answer while etcd is down or does not answer.
    let etcd_gone = response.status == 500
        && entity
            .as_ref()
            .is_ok_and(|body| body.error.message.is_empty());
    let message = match entity {
        Ok(body) if !body.error.message.is_empty() => body.error.message,
        Ok(_) if etcd_gone => "an error with no message".to_owned(),
        _ => {
            let text = String::from_utf8_lossy(&response.body);
            let text = text.trim();
            if text.is_empty() {
                response.reason
            } else {
                text.chars().take(200).collect()
            }
        }
    };
    let mut error = FleetError::new(
        doing,
        ErrorKind::Api {
            status: response.status,
            message,
        },
    );
    if etcd_gone {
        error.notes.push(
            "fleetd answers so while it cannot reach etcd (etcd down, or not answering)".to_owned(),
        );
    }
    if response.status == 503 {
        // Seen live: a fleetd (re)started answers so until it has its
        // machine entry in etcd: a few seconds, and after a crash until its
        // old entry expires. With etcd down, fleetd answers 500 instead.
        error.notes.push(
            "this fleetd has just (re)started and cannot use etcd yet: it waits for its \
             machine entry there (after a crash, about 30 s, until the old one expires); try \
             again, or another machine's endpoint"
                .to_owned(),
        );
    }
    if let Some(tried) = response.tried_for {
        error.notes.push(format!(
            "fleet answered so for {} s, each time it was asked again",
            tried.as_secs_f64().ceil()
        ));
    }
    Err(error)
}

fn encode_request(method: &str, target: &str, host: &str, body: Option<&[u8]>) -> Vec<u8> {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: unitgen/{}\r\nAccept: application/json\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body.unwrap_or_default());
    request
}

/// fleet's answer to one request (see [`http::Response`]).
#[derive(Debug)]
struct Response {
    status: u16,
    reason: String,
    body: Vec<u8>,
    /// How long the request was sent again while fleet answered 500 or
    /// 503, if it was.
    tried_for: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_encoding() {
        let request = encode_request("PUT", "/fleet/v1/units/a%40.service", "h:1", Some(b"{}"));
        let text = String::from_utf8(request).unwrap();
        assert!(text.starts_with("PUT /fleet/v1/units/a%40.service HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(text.contains("Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"));
        let get = String::from_utf8(encode_request("GET", "/x", "h", None)).unwrap();
        assert!(!get.contains("Content-Length") && get.ends_with("\r\n\r\n"));
    }

    #[test]
    fn unit_names_in_paths_and_queries() {
        assert_eq!(unit_path("web@1.service"), "/fleet/v1/units/web@1.service");
        assert_eq!(
            unit_path("a\\x b.service"),
            "/fleet/v1/units/a%5Cx%20b.service"
        );
        assert_eq!(percent_encoded("web@1.service", b""), "web%401.service");
    }

    #[test]
    fn endpoints() {
        let c = FleetClient::new("unix:///var/run/fleet.sock").unwrap();
        assert!(
            matches!(c.transport, Transport::Unix(ref p) if p.as_os_str() == "/var/run/fleet.sock")
        );
        let c = FleetClient::new("http://10.0.0.1:49153/").unwrap();
        assert!(
            matches!(c.transport, Transport::Tcp { ref authority } if authority == "10.0.0.1:49153")
        );
        assert_eq!(c.base, "");
        let c = FleetClient::new("http://fleet.example/api").unwrap();
        assert!(
            matches!(c.transport, Transport::Tcp { ref authority } if authority == "fleet.example:80")
        );
        assert_eq!(c.base, "/api");
        let c = FleetClient::new("127.0.0.1:8080").unwrap();
        assert!(
            matches!(c.transport, Transport::Tcp { ref authority } if authority == "127.0.0.1:8080")
        );
        for bad in [
            "https://x",
            "unix://relative.sock",
            "http://",
            "http://h:1/x HTTP/1.1\r\nX-Injected: 1",
            "http://h:1/a b",
            "unix:///run/fleet\n.sock",
        ] {
            let err = FleetClient::new(bad).unwrap_err();
            assert!(matches!(err.kind, ErrorKind::Endpoint(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn fleet_error_entity_becomes_the_message() {
        let response = Response {
            status: 409,
            reason: "Conflict".into(),
            body:
                br#"{"error":{"code":409,"message":"unit does not exist and options field empty"}}"#
                    .to_vec(),
            tried_for: None,
        };
        let err = check("submitting x@.service", response).unwrap_err();
        assert_eq!(err.status(), Some(409));
        assert_eq!(
            err.to_string(),
            "submitting x@.service: fleet answered 409: unit does not exist and options field empty"
        );
        let plain = Response {
            status: 502,
            reason: "Bad Gateway".into(),
            body: Vec::new(),
            tried_for: None,
        };
        assert_eq!(
            check("x", plain).unwrap_err().to_string(),
            "x: fleet answered 502: Bad Gateway"
        );
    }

    #[test]
    fn unit_hash_is_the_one_live_fleet_reports() {
        // A unit submitted to fleet v1.0.0-15, whose state carried this hash.
        let options = [
            UnitOption::new("Unit", "Description", "x y"),
            UnitOption::new("Service", "ExecStart", "/bin/sleep 1000"),
            UnitOption::new("X-Fleet", "Conflicts", "flt-hash@*.service"),
            UnitOption::new("Service", "Restart", "always"),
        ];
        assert_eq!(
            unit_hash(&options),
            "abc50d91e5e29767240c0facbd3b8bb4a879148e"
        );
    }

    #[test]
    fn unit_json_matches_fleet_schema() {
        let unit: Unit = serde_json::from_str(
            r#"{"name":"a@1.service","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}],
                "desiredState":"launched","currentState":"","machineID":"m1"}"#,
        )
        .unwrap();
        assert_eq!(unit.desired_state, Some(JobState::Launched));
        assert_eq!(unit.current_state, None);
        assert_eq!(unit.machine_id, "m1");
        let body = serde_json::to_string(&SetUnit {
            name: "a@1.service",
            desired_state: JobState::Launched,
            options: &[],
        })
        .unwrap();
        assert_eq!(body, r#"{"name":"a@1.service","desiredState":"launched"}"#);
    }
}
