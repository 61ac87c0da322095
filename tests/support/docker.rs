//! The machine's Docker engine, as the tests use it.

use std::fs::File;
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use unitgen::docker::engine::{self, Engine};

/// Runs `scripts/testbed.sh` once per test process: installs what is
/// missing, starts dockerd, builds the test image. So `cargo test` alone
/// works on a fresh machine.
///
/// It also takes the machine-wide test-bed lock and holds it until the test
/// process exits: the tests use fixed app names on the one Docker engine, so
/// two checkouts running their suites at once would remove each other's
/// containers. With the lock, their test binaries take turns.
///
/// `scripts/test` runs `scripts/testbed.sh` first, then holds the lock for
/// its whole run and runs the binaries of one checkout side by side; it sets
/// `UNITGEN_TESTBED_LOCKED=1`, and the binaries take the lock no more nor
/// run the script again (its package check would take the packages that
/// tests/deb.rs's apt-get is configuring at that moment for missing).
pub fn ensure_testbed() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        if std::env::var_os(LOCKED_BY_RUNNER).is_some() {
            return Ok(());
        }
        hold_testbed_lock()?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/testbed.sh");
        let out = Command::new(script)
            .output()
            .map_err(|e| format!("running {script}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{script} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(message) = result {
        panic!("the test bed is not ready: {message}");
    }
}

/// Set by `scripts/test` for the binaries it runs, once the test bed is up
/// and while it holds the test-bed lock.
const LOCKED_BY_RUNNER: &str = "UNITGEN_TESTBED_LOCKED";

/// Waits for, then keeps (for the life of the process) an exclusive lock on
/// a file outside every checkout. The kernel drops it when the process ends,
/// however it ends.
fn hold_testbed_lock() -> Result<(), String> {
    static LOCK: OnceLock<File> = OnceLock::new();
    let _ = LOCK.set(lock_file("/var/tmp/unitgen-testbed.lock")?);
    Ok(())
}

/// Makes the caller the only one on the machine that owns container names
/// starting with `prefix`, while the returned lock lives: waits while
/// another test owns them, in another process or in this one (another
/// thread: a lock is its open file's, so two opens of one file wait for
/// each other even in one process). `scripts/test` runs test binaries side
/// by side, and cargo runs a binary's tests on threads: a name several
/// tests use (the host router's `unitgen-router`, unless World::own_router
/// names it otherwise) must not be removed under
/// one test by another. A name only one test uses costs one lock no one
/// waits for.
pub fn claim_names(prefix: &str) -> File {
    const DIR: &str = "/var/tmp/unitgen-testbed-names";
    assert!(
        !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "a container name prefix, not {prefix:?}"
    );
    std::fs::create_dir_all(DIR).unwrap_or_else(|e| panic!("creating {DIR}: {e}"));
    lock_file(&format!("{DIR}/{prefix}.lock")).unwrap_or_else(|e| panic!("{e}"))
}

/// Opens (creating it) and exclusively locks the file at `path`, waiting
/// while another process holds it.
fn lock_file(path: &str) -> Result<File, String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("opening {path}: {e}"))?;
    file.lock().map_err(|e| format!("locking {path}: {e}"))?;
    Ok(file)
}

/// Runs the docker CLI against the machine's engine.
pub fn docker<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running docker: {e}"))
}

/// `docker pause NAME`, as a user would type it: asked again while Docker
/// fails it, as runc's cgroup v1 freezer does now and then on a busy host
/// ("OCI runtime pause failed: unable to freeze"; unitgen's backups retry
/// it too). Panics with Docker's last answer after 30 s.
pub fn pause(name: &str) {
    let mut last = None;
    let paused = super::wait_for(std::time::Duration::from_secs(30), || {
        let out = docker(["pause", name]);
        let done = out.status.success();
        last = Some(out);
        done.then_some(())
    });
    if paused.is_none() {
        let out = last.expect("asked at least once");
        panic!(
            "docker pause {name} kept failing: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The machine's engine, reached over its unix socket with unitgen's own
/// client: a read-only question costs no `docker` process (a Go binary's
/// start, some 30 ms of CPU, which the tests' polls paid up to ten times a
/// second). State changes (run, rm, exec...) still go through the CLI, as a
/// user would make them.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        engine::local().expect(
            "the tests ask the machine's Docker engine over its unix socket \
             (DOCKER_HOST unset or unix://, no other context)",
        )
    })
}

/// `GET path` (already encoded) on the engine: its JSON, or None when it
/// answers 404 (no such object). Panics on any other failure.
pub fn get(path: &str) -> Option<Value> {
    engine().get(path).unwrap_or_else(|e| panic!("{e}"))
}

/// What `docker container inspect NAME` shows (NAME: a name or an id), if
/// that container exists.
pub fn inspect_container(name: &str) -> Option<Value> {
    get(&format!("/containers/{}/json", engine::encoded(name)))
}

/// What `docker network inspect NAME` shows, if that network exists.
pub fn inspect_network(name: &str) -> Option<Value> {
    get(&format!("/networks/{}", engine::encoded(name)))
}

/// What `docker volume inspect NAME` shows, if that volume exists.
pub fn inspect_volume(name: &str) -> Option<Value> {
    get(&format!("/volumes/{}", engine::encoded(name)))
}

/// What `docker image inspect REFERENCE` shows, if the engine has that image.
pub fn inspect_image(reference: &str) -> Option<Value> {
    get(&format!("/images/{}/json", engine::path_encoded(reference)))
}

/// The containers `docker ps` lists (with `--all`: stopped ones too), with
/// `filters` as its `--filter KEY=VALUE`s (`name=` matches a part of the name).
pub fn list_containers(all: bool, filters: &[(&str, &str)]) -> Vec<Value> {
    let all = if all { "all=1&" } else { "" };
    listed(get(&format!(
        "/containers/json?{all}filters={}",
        engine::filters(filters)
    )))
}

/// The names of the containers `docker ps` lists (with `--all`: stopped
/// ones too), as its `{{.Names}}` shows them (without the `/` the engine
/// puts before them, nor the `/other/alias` names of links).
pub fn container_names(all: bool) -> Vec<String> {
    (list_containers(all, &[]).iter())
        .flat_map(|json| strings(&json["Names"]))
        .filter_map(|name| name.strip_prefix('/').map(str::to_owned))
        .filter(|name| !name.contains('/'))
        .collect()
}

/// The networks `docker network ls` lists, with `filters` as its `--filter`s.
pub fn list_networks(filters: &[(&str, &str)]) -> Vec<Value> {
    listed(get(&format!(
        "/networks?filters={}",
        engine::filters(filters)
    )))
}

/// The volumes `docker volume ls` lists, with `filters` as its `--filter`s.
pub fn list_volumes(filters: &[(&str, &str)]) -> Vec<Value> {
    let answer = get(&format!("/volumes?filters={}", engine::filters(filters)));
    listed(answer.and_then(|mut json| json.get_mut("Volumes").map(Value::take)))
}

fn listed(answer: Option<Value>) -> Vec<Value> {
    match answer {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

/// The strings in the JSON array `json` (none if it is not one).
pub fn strings(json: &Value) -> impl Iterator<Item = &str> {
    (json.as_array().into_iter().flatten()).filter_map(Value::as_str)
}

/// The text at `pointer` (`/State/Status`) in `json`; "" if there is none.
pub fn text_at<'a>(json: &'a Value, pointer: &str) -> &'a str {
    json.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The full id of the container named `name`, if it exists (running or not).
pub fn container_id(name: &str) -> Option<String> {
    inspect_container(name).map(|json| text_at(&json, "/Id").to_owned())
}

/// Whether the container named `name` exists and is running.
pub fn is_running(name: &str) -> bool {
    inspect_container(name)
        .is_some_and(|json| json.pointer("/State/Running") == Some(&Value::Bool(true)))
}

/// Force-removes every container whose name starts with `prefix`.
pub fn remove_containers(prefix: &str) {
    let names: Vec<String> = (container_names(true).into_iter())
        .filter(|name| name.starts_with(prefix))
        .collect();
    if !names.is_empty() {
        docker(["rm", "--force"].into_iter().map(String::from).chain(names));
    }
}

/// The IDs of the engine's networks named exactly `network`.
pub fn networks(network: &str) -> Vec<String> {
    (list_networks(&[("name", network)]).iter())
        .filter(|json| json["Name"] == network)
        .map(|json| text_at(json, "/Id").to_owned())
        .collect()
}

pub fn remove_networks(network: &str) {
    for id in networks(network) {
        docker(["network", "rm", &id]);
    }
}

/// A second network of the same name, as two racing creates leave (the CLI
/// refuses, the engine's API does not when asked not to check), with the
/// labels the units' creates give it (network `APP-INSTANCE`).
pub fn create_duplicate(network: &str) {
    let (app, instance) = network.split_once('-').unwrap();
    let body = format!(
        r#"{{"Name":"{network}","CheckDuplicate":false,"Labels":{{"unitgen.app":"{app}","unitgen.instance":"{instance}"}}}}"#
    );
    let out = std::process::Command::new("curl")
        .args(["-sf", "--unix-socket", "/var/run/docker.sock", "-XPOST"])
        .args(["-H", "Content-Type: application/json", "-d", &body])
        .arg("http://localhost/networks/create")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
