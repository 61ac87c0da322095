//! The machine's Docker engine, as the tests use it.

use std::process::{Command, Output};
use std::sync::OnceLock;

/// Runs `scripts/testbed.sh` once per test process: installs what is
/// missing, starts dockerd, builds the test image. So `cargo test` alone
/// works on a fresh machine.
///
/// It also takes the machine-wide test-bed lock and holds it until the test
/// process exits: the tests use fixed app names on the one Docker engine, so
/// two checkouts running their suites at once would remove each other's
/// containers. With the lock, their test binaries take turns.
pub fn ensure_testbed() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
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

/// Waits for, then keeps (for the life of the process) an exclusive lock on
/// a file outside every checkout. The kernel drops it when the process ends,
/// however it ends.
fn hold_testbed_lock() -> Result<(), String> {
    static LOCK: OnceLock<std::fs::File> = OnceLock::new();
    const PATH: &str = "/var/tmp/unitgen-testbed.lock";
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(PATH)
        .map_err(|e| format!("opening {PATH}: {e}"))?;
    file.lock().map_err(|e| format!("locking {PATH}: {e}"))?;
    let _ = LOCK.set(file);
    Ok(())
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

/// The full id of the container named `name`, if it exists (running or not).
pub fn container_id(name: &str) -> Option<String> {
    let out = docker(["container", "inspect", "--format", "{{.Id}}", name]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether the container named `name` exists and is running.
pub fn is_running(name: &str) -> bool {
    let out = docker([
        "container",
        "inspect",
        "--format",
        "{{.State.Running}}",
        name,
    ]);
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "true"
}

/// Force-removes every container whose name starts with `prefix`.
pub fn remove_containers(prefix: &str) {
    let out = docker(["ps", "--all", "--format", "{{.Names}}"]);
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    if !names.is_empty() {
        docker(["rm", "--force"].into_iter().map(String::from).chain(names));
    }
}
