//! unitgen's read-only questions to a local Docker engine, asked over its
//! unix socket (the Engine API: HTTP/1.1 and JSON) instead of one `docker`
//! process each: a Go client's start costs some 30 ms of CPU, and a `plan`
//! asks several. Used only where the Docker CLI would talk to that socket
//! itself ([`local`]); any other engine (TCP, TLS, ssh, a context) is still
//! reached through the CLI, which knows how.
//!
//! Paths are unversioned (`/containers/json`): the engine answers them in
//! its own current API version, which every engine accepts (Docker 29 no
//! longer serves versions below 1.44, Debian's 20.10 none above 1.41). The
//! fields read here mean the same in all of them. Unless the CLI would ask
//! another: with `DOCKER_API_VERSION` set, it asks that version's paths
//! (`/v1.41/containers/json`), and so does this ([`path_prefix`]).

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use super::environment;

/// The engine the Docker CLI would reach, when it reaches it over a unix
/// socket of its own accord; None when it would go elsewhere (or unitgen
/// cannot tell), and then the CLI is asked. Decided at each question (a
/// few variables and one small file), in the units' environment once a
/// command has named a host ([`environment::follow`]).
pub fn local() -> Option<Engine> {
    let variable = |name: &str| match environment::followed() {
        Some(units) => units.get(name).map(str::to_owned),
        None => std::env::var(name).ok(),
    };
    let config = || read_config(variable("DOCKER_CONFIG"));
    let prefix = path_prefix(variable("DOCKER_API_VERSION").as_deref())?;
    let socket = socket_of(variable, config)?;
    Some(Engine { socket, prefix })
}

/// What the CLI puts before each path for `DOCKER_API_VERSION`'s value:
/// nothing when it is unset or empty, `/v1.41` for `1.41`; None for a
/// value that is not a version (digits, a dot, digits), which the CLI is
/// left to refuse in its own words.
fn path_prefix(api_version: Option<&str>) -> Option<String> {
    let Some(version) = api_version.filter(|version| !version.is_empty()) else {
        return Some(String::new());
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let (major, minor) = version.split_once('.')?;
    (digits(major) && digits(minor)).then(|| format!("/v{version}"))
}

/// Where the Docker CLI would connect, as it decides (docker/cli's
/// `resolveContextName`, then the default context's host): a unix socket
/// when no context is chosen (by `DOCKER_CONTEXT` or the config's
/// `currentContext`), `DOCKER_HOST` is unset or `unix://PATH` and TLS is
/// not asked for. `config`: the text of the CLI's config.json (None:
/// none; Err: one that cannot be read, where the CLI may see a context).
fn socket_of(
    variable: impl Fn(&str) -> Option<String>,
    config: impl FnOnce() -> Result<Option<String>, ()>,
) -> Option<PathBuf> {
    // The CLI takes an empty variable as unset.
    let set = |name: &str| variable(name).filter(|value| !value.is_empty());
    if set("DOCKER_CONTEXT").is_some_and(|context| context != "default")
        || set("DOCKER_TLS_VERIFY").is_some()
    {
        return None;
    }
    if let Some(text) = config().ok()? {
        let config: serde_json::Value = serde_json::from_str(&text).ok()?;
        match config.get("currentContext") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(name)) if name.is_empty() || name == "default" => {}
            Some(_) => return None,
        }
    }
    let host =
        set("DOCKER_HOST").unwrap_or_else(|| format!("unix://{}", environment::DEFAULT_SOCKET));
    let path = host.strip_prefix("unix://")?;
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// The CLI's config.json (`$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`): None when there is none, Err when it is there
/// but cannot be read.
fn read_config(docker_config: Option<String>) -> Result<Option<String>, ()> {
    let dir = match docker_config.filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").ok_or(())?).join(".docker"),
    };
    match std::fs::read_to_string(dir.join("config.json")) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(_) => Err(()),
    }
}

/// A Docker engine reached over its unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    socket: PathBuf,
    /// Put before each path: the API version asked for (see [`path_prefix`]).
    prefix: String,
}

/// How long an answer may take: these questions are answered from the
/// engine's memory, and a hung engine must not hang `status`.
const TIMEOUT: Duration = Duration::from_secs(60);

impl Engine {
    /// The address, as the CLI names it in its messages.
    pub fn address(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// `GET path` (with its query, already encoded, and unversioned: see
    /// [`path_prefix`]): the JSON of a 2xx answer; Ok(None) for 404 (no
    /// such object); Err with what failed and where otherwise.
    pub fn get(&self, path_and_query: &str) -> Result<Option<serde_json::Value>, String> {
        let path_and_query = &self.target(path_and_query);
        let (status, body) = self.request(path_and_query)?;
        match status {
            200..=299 => serde_json::from_slice(&body).map(Some).map_err(|e| {
                format!(
                    "the Docker engine at {} answered GET {path_and_query} with what is not JSON: {e}",
                    self.address()
                )
            }),
            404 => Ok(None),
            _ => Err(format!(
                "the Docker engine at {} answered GET {path_and_query} with {status}: {}",
                self.address(),
                engine_message(&body)
            )),
        }
    }

    /// `path` as the CLI would ask it.
    fn target(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    /// One request on a connection of its own: the status and the body.
    fn request(&self, path_and_query: &str) -> Result<(u16, Vec<u8>), String> {
        let mut stream = UnixStream::connect(&self.socket).map_err(|e| self.unreachable(&e))?;
        let failed = |e: std::io::Error| {
            format!(
                "asking the Docker engine at {} (GET {path_and_query}): {e}",
                self.address()
            )
        };
        stream.set_read_timeout(Some(TIMEOUT)).map_err(failed)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(failed)?;
        // Closed after the answer: its end is the end of the body too.
        write!(
            stream,
            "GET {path_and_query} HTTP/1.1\r\nHost: docker\r\nUser-Agent: unitgen\r\n\
             Connection: close\r\n\r\n"
        )
        .map_err(failed)?;
        let answer = crate::http::read_response(&mut BufReader::new(stream), "GET");
        match answer {
            Ok(answer) => Ok((answer.status, answer.body)),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(format!(
                "the Docker engine at {} answered GET {path_and_query} in a way unitgen cannot read: {e}",
                self.address()
            )),
            Err(e) => Err(failed(e)),
        }
    }

    /// Why the socket could not be reached, in the CLI's terms (its
    /// address, whether the engine runs, whether this user may use it).
    fn unreachable(&self, e: &std::io::Error) -> String {
        let address = self.address();
        match e.kind() {
            std::io::ErrorKind::PermissionDenied => format!(
                "permission denied while trying to connect to the Docker daemon socket at \
                 {address} ({e}): run as root, or as a user of the socket's group (usually `docker`)"
            ),
            _ => format!(
                "Cannot connect to the Docker daemon at {address}. Is the docker daemon running? ({e})"
            ),
        }
    }

    /// Whether the engine answers (`GET /_ping`); why not otherwise.
    pub fn ping(&self) -> Result<(), String> {
        let (status, body) = self.request(&self.target("/_ping"))?;
        match status {
            200..=299 => Ok(()),
            _ => Err(format!(
                "the Docker engine at {} answered its ping with {status}: {}",
                self.address(),
                engine_message(&body)
            )),
        }
    }
}

/// The engine's own message in an error's body (`{"message": "..."}`),
/// else the body as text.
fn engine_message(body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|json| json.get("message")?.as_str().map(str::to_owned));
    let text = message.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    // The engine's text may hold anything (a name asked for, echoed).
    crate::diagnostic::shown(&text)
}

/// `text` as one segment of a URL's path, or a value of its query: every
/// byte but the unreserved ones percent-encoded (a name is the user's text).
pub fn encoded(text: &str) -> String {
    crate::escape::percent_encoded(text, b"")
}

/// An image reference as the end of a path (`/images/REF/json`): its `/`,
/// `:` and `@` kept, as Docker's own client sends them (the engine's route
/// takes the rest of the path as the reference), the rest as [`encoded`].
pub fn path_encoded(reference: &str) -> String {
    crate::escape::percent_encoded(reference, b"/:@")
}

/// The `filters` query value of a list call: `{"label": ["a=b"], ...}`.
pub fn filters(pairs: &[(&str, &str)]) -> String {
    let mut map = serde_json::Map::new();
    for (key, value) in pairs {
        let entry = map
            .entry(*key)
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(values) = entry {
            values.push(serde_json::Value::String((*value).to_owned()));
        }
    }
    encoded(&serde_json::Value::Object(map).to_string())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn an_engines_error_message_is_shown_as_text() {
        assert_eq!(
            engine_message(b"{\"message\":\"No such container: a\\u001b[2Jb\"}"),
            crate::diagnostic::shown("No such container: a\u{1b}[2Jb")
        );
        assert_eq!(engine_message(b"page not found\n"), "page not found");
    }

    #[test]
    fn names_and_filters_are_encoded_for_the_url() {
        assert_eq!(encoded("shop-live_db.1"), "shop-live_db.1");
        assert_eq!(encoded("a b/../?x#\n"), "a%20b%2F..%2F%3Fx%23%0A");
        assert_eq!(
            path_encoded("127.0.0.1:5055/x/busybox:1@sha256:ab"),
            "127.0.0.1:5055/x/busybox:1@sha256:ab"
        );
        assert_eq!(path_encoded("a?b#c d"), "a%3Fb%23c%20d");
        assert_eq!(
            filters(&[("label", "unitgen.app=a&b"), ("label", "x=y")]),
            encoded(r#"{"label":["unitgen.app=a&b","x=y"]}"#)
        );
    }

    /// A socket that answers one request as `answer`; the request it read.
    fn serve_once(
        answer: &'static [u8],
    ) -> (tempfile::TempDir, Engine, std::thread::JoinHandle<String>) {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let served = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                request.extend_from_slice(&buf[..n]);
            }
            stream.write_all(answer).unwrap();
            String::from_utf8(request).unwrap()
        });
        let engine = Engine {
            socket,
            prefix: String::new(),
        };
        (dir, engine, served)
    }

    #[test]
    fn a_question_goes_over_the_socket_and_its_answer_is_read() {
        let (_dir, engine, served) = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[{}]\r\n0\r\n\r\n",
        );
        let asked = format!("/containers/json?filters={}", filters(&[("label", "a=b")]));
        assert_eq!(engine.get(&asked).unwrap(), Some(serde_json::json!([{}])));
        let request = served.join().unwrap();
        assert!(
            request.starts_with(&format!("GET {asked} HTTP/1.1\r\nHost: docker\r\n")),
            "{request}"
        );
        assert!(request.contains("\r\nConnection: close\r\n"), "{request}");

        let (_dir, engine, _) = serve_once(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 34\r\n\r\n{\"message\":\"No such container: x\"}",
        );
        assert_eq!(
            engine.get("/containers/x/json").unwrap(),
            None,
            "missing: none"
        );
        let (_dir, engine, _) = serve_once(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 20\r\n\r\n{\"message\":\"broken\"}",
        );
        let error = engine.get("/volumes").unwrap_err();
        assert_eq!(
            error,
            format!(
                "the Docker engine at {} answered GET /volumes with 500: broken",
                engine.address()
            )
        );
    }

    /// With `DOCKER_API_VERSION`, the paths the CLI would ask; a value
    /// the CLI would refuse leaves the question to it.
    #[test]
    fn the_api_version_asked_for_is_the_one_the_cli_would_ask() {
        assert_eq!(path_prefix(None).as_deref(), Some(""));
        assert_eq!(path_prefix(Some("")).as_deref(), Some(""), "empty is unset");
        assert_eq!(path_prefix(Some("1.41")).as_deref(), Some("/v1.41"));
        assert_eq!(path_prefix(Some("1.9")).as_deref(), Some("/v1.9"));
        for invalid in [
            "1",
            "1.",
            ".41",
            "v1.41",
            "1.41.0",
            "1.4a",
            " 1.41",
            "1.41/../x",
            "1.41?a",
        ] {
            assert_eq!(path_prefix(Some(invalid)), None, "{invalid:?}");
        }

        let (_dir, mut engine, served) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]");
        engine.prefix = path_prefix(Some("1.41")).unwrap();
        assert_eq!(
            engine.get("/containers/json").unwrap(),
            Some(serde_json::json!([]))
        );
        let request = served.join().unwrap();
        assert!(
            request.starts_with("GET /v1.41/containers/json HTTP/1.1\r\n"),
            "{request}"
        );
        let (_dir, mut engine, served) = serve_once(b"HTTP/1.1 200 OK\r\n\r\nOK");
        engine.prefix = path_prefix(Some("1.44")).unwrap();
        engine.ping().unwrap();
        assert!(
            served
                .join()
                .unwrap()
                .starts_with("GET /v1.44/_ping HTTP/1.1\r\n")
        );
    }

    #[test]
    fn an_answer_the_engine_cuts_short_or_garbles_is_said_so() {
        let (_dir, engine, _) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n[]");
        assert_eq!(
            engine.get("/volumes").unwrap_err(),
            format!(
                "asking the Docker engine at {} (GET /volumes): the connection was closed before \
                 the answer ended",
                engine.address()
            )
        );
        let (_dir, engine, _) = serve_once(b"SSH-2.0-OpenSSH\r\n\r\n");
        assert_eq!(
            engine.get("/volumes").unwrap_err(),
            format!(
                "the Docker engine at {} answered GET /volumes in a way unitgen cannot read: a \
                 status line `SSH-2.0-OpenSSH`",
                engine.address()
            )
        );
    }

    #[test]
    fn an_engine_that_does_not_run_is_told_with_its_address() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine {
            socket: dir.path().join("docker.sock"),
            prefix: String::new(),
        };
        let error = engine.ping().unwrap_err();
        assert!(
            error.starts_with(&format!(
                "Cannot connect to the Docker daemon at unix://{}/docker.sock. Is the docker daemon running?",
                dir.path().display()
            )),
            "{error}"
        );
    }

    /// The socket is used exactly when the docker CLI would use it.
    #[test]
    fn the_socket_is_used_only_where_the_cli_would_use_it() {
        let with = |vars: &'static [(&'static str, &'static str)], config: Option<&'static str>| {
            socket_of(
                |name| {
                    vars.iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| v.to_string())
                },
                || Ok(config.map(str::to_owned)),
            )
        };
        let default = Some(PathBuf::from("/var/run/docker.sock"));
        assert_eq!(with(&[], None), default);
        assert_eq!(
            with(&[("DOCKER_HOST", "")], None),
            default,
            "empty is unset"
        );
        assert_eq!(with(&[("DOCKER_CONTEXT", "default")], None), default);
        assert_eq!(
            with(&[], Some(r#"{"auths":{},"currentContext":"default"}"#)),
            default
        );
        assert_eq!(with(&[], Some(r#"{"currentContext":""}"#)), default);
        assert_eq!(
            with(
                &[("DOCKER_HOST", "unix:///run/user/1000/docker.sock")],
                None
            ),
            Some(PathBuf::from("/run/user/1000/docker.sock"))
        );
        for (vars, config) in [
            (&[("DOCKER_HOST", "tcp://10.0.0.1:2376")][..], None),
            (&[("DOCKER_HOST", "ssh://me@host")][..], None),
            (&[("DOCKER_HOST", "unix://")][..], None),
            (&[("DOCKER_CONTEXT", "remote")][..], None),
            (&[("DOCKER_TLS_VERIFY", "1")][..], None),
            (&[][..], Some(r#"{"currentContext":"remote"}"#)),
            (&[][..], Some("not json")),
        ] {
            assert_eq!(with(vars, config), None, "{vars:?} {config:?}");
        }
        assert_eq!(
            socket_of(|_| None, || Err(())),
            None,
            "a config.json that cannot be read may name a context"
        );
    }
}
