//! Support code shared by the integration tests: the real test bed (Docker,
//! a sandboxed systemd, etcd) and the fake fleet API. A test file includes it with
//!
//! ```ignore
//! #[path = "support/lib.rs"]
//! mod support;
//! ```
//!
//! (A `tests/support.rs` would be built as a test binary of its own.)

#![allow(
    dead_code,
    reason = "each test binary uses only part of the support code"
)]

pub mod docker;
pub mod etcd;
pub mod fake_fleet;
pub mod net;
pub mod pebble;
pub mod registry;
pub mod sandbox;
pub mod tools;
pub mod traefik;
pub mod world;

/// A fresh directory for one test's files, under cargo's target/tmp, and
/// never under /tmp: a sandbox's systemd empties /tmp as it sees it.
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap_or_else(|e| panic!("creating a temporary directory: {e}"))
}

/// The time of day (UTC) to the millisecond, `HH:MM:SS.mmm`: what the
/// tests' transcripts and failed requests are stamped with, so that a
/// failure seen in CI's log can be placed among the commands run.
pub fn clock() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let of_day = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        now.subsec_millis()
    )
}

/// Runs the unitgen binary under test, without colours in its messages.
pub fn unitgen(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run unitgen")
}

/// Runs the command `said` suggests (on the one line where `program` and
/// a space appear) as a user copies it: from `program` to the line's end,
/// pasted into a shell.
pub fn run_as_copied(said: &str, program: &str) {
    let start = format!("{program} ");
    let lines: Vec<&str> = said.lines().filter(|l| l.contains(&start)).collect();
    let [line] = lines[..] else {
        panic!("one line with `{program}` in\n{said}")
    };
    let command = &line[line.find(&start).unwrap()..];
    let run = std::process::Command::new("sh")
        .args(["-c", command])
        .output()
        .expect("run sh");
    assert!(run.status.success(), "{command}: {run:?}");
}

/// Every file in `dir` as (name, text), sorted by name: what a command
/// that writes a folder (`dns --out`, `docs --out`) left there.
pub fn files_in(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Polls `check` until it gives `Some`, for at most `timeout`: every
/// 100 ms for the first 2 s, which most waits take less than, then ever
/// less often, up to every 500 ms. A poll often runs a process (`unitgen`,
/// `systemctl`, `docker exec`), and a test run is short of CPU throughout:
/// a minute's wait polled every 100 ms was 600 of them.
///
/// Not for a state that may last less than a second (a moment to kill a
/// command at), which a poll every 500 ms could miss: [`wait_for_moment`].
pub fn wait_for<T>(timeout: std::time::Duration, check: impl FnMut() -> Option<T>) -> Option<T> {
    poll(timeout, check, std::time::Duration::from_millis(500))
}

/// Polls `check` every 100 ms until it gives `Some`, for at most `timeout`:
/// for a state that may not last (a command under way, to be killed in its
/// middle), which [`wait_for`]'s slower polls after 2 s could miss.
pub fn wait_for_moment<T>(
    timeout: std::time::Duration,
    check: impl FnMut() -> Option<T>,
) -> Option<T> {
    poll(timeout, check, std::time::Duration::from_millis(100))
}

/// Polls `check` every 100 ms for 2 s, then at intervals growing by half
/// up to `slowest`, until it gives `Some` or `timeout` has passed (checked
/// once more then).
fn poll<T>(
    timeout: std::time::Duration,
    mut check: impl FnMut() -> Option<T>,
    slowest: std::time::Duration,
) -> Option<T> {
    const FAST_FOR: std::time::Duration = std::time::Duration::from_secs(2);
    let start = std::time::Instant::now();
    let deadline = start + timeout;
    let mut interval = std::time::Duration::from_millis(100);
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return None;
        }
        if now - start >= FAST_FOR {
            interval = (interval * 3 / 2).min(slowest);
        }
        std::thread::sleep(interval.min(deadline - now));
    }
}
