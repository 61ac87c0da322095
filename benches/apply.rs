//! How long `unitgen apply`, `status` and `destroy` take on a real host: a
//! sandboxed systemd (see tests/support/sandbox.rs) driving the machine's
//! Docker engine, with a 20-service app on the local test image. Measured
//! in the same runs, interleaved, beside the alternatives a user would
//! pick: `docker-compose up -d` / `down` (Debian's docker-compose 1.29, on
//! the same services as a compose file; skipped when it is not installed:
//! `scripts/bench apply` installs it) and the same containers started by
//! hand with `docker run -d`, all at once.
//!
//! Needs root and the test bed (`scripts/testbed.sh`); run it with
//! `scripts/bench apply` (or `cargo bench --bench apply`). Reports timings;
//! never fails on them.

#[path = "../tests/support/lib.rs"]
#[allow(
    unused_imports,
    reason = "clippy --all-targets builds this bench with cfg(test) but without the \
              #[test] functions, leaving the imports of support's unit tests unused"
)]
mod support;

#[path = "support/report.rs"]
mod report;

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use report::report;
use support::docker::docker;
use support::net::free_port;
use support::sandbox::Sandbox;

const APP: &str = "bench";
const INSTANCE: &str = "run";
const SERVICES: usize = 20;
const IMAGE: &str = "unitgen-test/busybox:1";
/// Names of the hand-started containers and their network.
const PLAIN: &str = "benchplain";
/// The compose project of the same services.
const COMPOSE: &str = "benchcompose";
const REPS: usize = 7;

/// What is measured, in the order printed: each of unitgen's figures is
/// followed by its alternative's.
#[derive(Clone, Copy)]
enum Step {
    ApplyFromScratch,
    ComposeUp,
    PlainRun,
    ApplyFromScratchNoSettle,
    ApplyNoOp,
    ComposeUpNoOp,
    ApplyOneChanged,
    ApplyOneChangedNoSettle,
    Status,
    ComposePs,
    Destroy,
    ComposeDown,
    PlainRemove,
}

const STEPS: [(Step, &str); 13] = [
    (
        Step::ApplyFromScratch,
        "unitgen apply from scratch (default)",
    ),
    (Step::ComposeUp, "docker-compose up -d from scratch"),
    (Step::PlainRun, "docker network create + 20 docker run -d"),
    (
        Step::ApplyFromScratchNoSettle,
        "unitgen apply from scratch, --settle 0",
    ),
    (Step::ApplyNoOp, "unitgen apply, nothing changed"),
    (Step::ComposeUpNoOp, "docker-compose up -d, nothing changed"),
    (Step::ApplyOneChanged, "unitgen apply, one service changed"),
    (
        Step::ApplyOneChangedNoSettle,
        "unitgen apply, one changed, --settle 0",
    ),
    (Step::Status, "unitgen status"),
    (Step::ComposePs, "docker-compose ps"),
    (Step::Destroy, "unitgen destroy"),
    (Step::ComposeDown, "docker-compose down"),
    (Step::PlainRemove, "20 docker rm -f + docker network rm"),
];

fn main() {
    // /proc/self belongs to the effective user.
    if std::fs::metadata("/proc/self").ok().map(|m| m.uid()) != Some(0) {
        println!("apply bench skipped: it needs root (it boots a sandboxed systemd)");
        return;
    }
    let mut sandbox = Sandbox::boot();
    sandbox.own_containers(&format!("{APP}-{INSTANCE}-"));
    sandbox.own_containers(&format!("{PLAIN}-"));
    sandbox.own_containers(&format!("{COMPOSE}_"));
    let dir = support::tempdir("bench-apply-");
    let bench = Bench {
        root: sandbox.root(),
        file: dir.path().join("unitgen.yaml"),
        compose_file: dir.path().join("docker-compose.yml"),
        port: free_port(),
    };
    std::fs::write(&bench.compose_file, compose_yaml(free_port())).expect("writing compose");
    let compose = compose_version();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "{SERVICES} services on {IMAGE} (+1 network unit), sandboxed systemd pid {}, {cores} cores, {REPS} runs",
        sandbox.pid()
    );
    match &compose {
        Some(version) => println!("alternative: {version}\n"),
        None => println!("docker-compose is not installed: its lines are skipped\n"),
    }

    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); STEPS.len()];
    let mut time = |step: Step, took: Duration| times[step as usize].push(took);
    let mut revision = 0;
    for _ in 0..REPS {
        revision += 1;
        bench.write(revision);
        time(Step::ApplyFromScratch, bench.unitgen(&["apply", INSTANCE]));
        bench.check_running(SERVICES);
        time(Step::ApplyNoOp, bench.unitgen(&["apply", INSTANCE]));
        time(Step::Status, bench.unitgen(&["status", INSTANCE]));
        revision += 1;
        bench.write(revision);
        time(Step::ApplyOneChanged, bench.unitgen(&["apply", INSTANCE]));
        revision += 1;
        bench.write(revision);
        time(
            Step::ApplyOneChangedNoSettle,
            bench.unitgen(&["apply", INSTANCE, "--settle", "0"]),
        );
        bench.check_running(SERVICES);
        time(Step::Destroy, bench.unitgen(&["destroy", INSTANCE]));
        bench.check_running(0);

        time(
            Step::ApplyFromScratchNoSettle,
            bench.unitgen(&["apply", INSTANCE, "--settle", "0"]),
        );
        bench.check_running(SERVICES);
        bench.unitgen(&["destroy", INSTANCE]);

        if compose.is_some() {
            time(Step::ComposeUp, bench.compose(&["up", "-d"]));
            assert_eq!(running(&format!("{COMPOSE}_")), SERVICES);
            time(Step::ComposeUpNoOp, bench.compose(&["up", "-d"]));
            time(Step::ComposePs, bench.compose(&["ps"]));
            time(Step::ComposeDown, bench.compose(&["down"]));
            assert_eq!(running(&format!("{COMPOSE}_")), 0);
        }

        let (up, down) = bench.plain_docker();
        time(Step::PlainRun, up);
        time(Step::PlainRemove, down);
    }
    for ((_, name), samples) in STEPS.iter().zip(&times) {
        if !samples.is_empty() {
            report(name, samples, None);
        }
    }
    drop(sandbox);
    remove_networks();
}

/// `docker-compose version`'s first line; None when it is not installed.
fn compose_version() -> Option<String> {
    let out = Command::new("docker-compose")
        .arg("version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    out.status
        .success()
        .then(|| text.lines().next().unwrap_or_default().to_owned())
}

struct Bench {
    root: PathBuf,
    file: PathBuf,
    compose_file: PathBuf,
    port: u16,
}

impl Bench {
    /// Writes the template; `revision` changes one service's environment.
    fn write(&self, revision: u32) {
        std::fs::write(&self.file, template_yaml(revision, self.port))
            .expect("writing the template");
    }

    /// Runs `unitgen ARGS -f FILE --root ROOT`; panics unless it succeeds.
    fn unitgen(&self, args: &[&str]) -> Duration {
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_unitgen"))
            .args(args)
            .arg("-f")
            .arg(&self.file)
            .arg("--root")
            .arg(&self.root)
            .env("NO_COLOR", "1")
            .output()
            .expect("running unitgen");
        let took = start.elapsed();
        check(&out, &format!("unitgen {}", args.join(" ")));
        took
    }

    /// Runs `docker-compose -p benchcompose -f FILE ARGS`; panics unless it
    /// succeeds.
    fn compose(&self, args: &[&str]) -> Duration {
        let start = Instant::now();
        let out = Command::new("docker-compose")
            .args(["--ansi", "never", "-p", COMPOSE, "-f"])
            .arg(&self.compose_file)
            .args(args)
            .output()
            .expect("running docker-compose");
        let took = start.elapsed();
        check(&out, &format!("docker-compose {}", args.join(" ")));
        took
    }

    /// Each run must have done the real work: the containers run.
    fn check_running(&self, expected: usize) {
        let running = running(&format!("{APP}-{INSTANCE}-"));
        assert_eq!(
            running, expected,
            "{running} containers of {APP}-{INSTANCE} run, expected {expected}"
        );
    }

    /// The same containers started by hand: a network, then every
    /// `docker run -d` at once, one thread each; then all removed at once.
    fn plain_docker(&self) -> (Duration, Duration) {
        // A network of its own per run: Docker 20.10 sometimes keeps a
        // removed container's endpoint, and then the network for good.
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let network = format!(
            "{PLAIN}-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let start = Instant::now();
        check(
            &docker(["network", "create", &network]),
            "docker network create",
        );
        parallel(|i| {
            let mut args = vec![
                "run".to_string(),
                "-d".into(),
                "--name".into(),
                format!("{PLAIN}-{}", service_name(i)),
                "--network".into(),
                network.clone(),
                "--network-alias".into(),
                service_name(i),
                "--init".into(),
                "--env".into(),
                format!("INSTANCE={INSTANCE}"),
            ];
            if i == 0 {
                args.extend(["--publish".into(), format!("127.0.0.1:{}:80", self.port)]);
            }
            args.push(IMAGE.into());
            args.extend(service_command(i).iter().map(|w| w.to_string()));
            docker(&args)
        });
        let up = start.elapsed();
        assert_eq!(running(&format!("{PLAIN}-")), SERVICES);

        let start = Instant::now();
        parallel(|i| docker(["rm", "--force", &format!("{PLAIN}-{}", service_name(i))]));
        remove_network(&network);
        (up, start.elapsed())
    }
}

/// `docker network rm`, again while the engine still detaches the removed
/// containers ("has active endpoints": `docker rm --force` returns before
/// the network lets go of them). An endpoint the engine keeps for good (a
/// Docker 20.10 bug) leaves the network behind, with a note.
fn remove_network(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = docker(["network", "rm", name]);
        let detaching = String::from_utf8_lossy(&out.stderr).contains("active endpoints");
        if detaching && Instant::now() > deadline {
            eprintln!("note: the engine kept an endpoint of network {name}; left behind");
            return;
        }
        if out.status.success() || !detaching {
            return check(&out, "docker network rm");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `command(i)` for every service at once, one thread each.
fn parallel(command: impl Fn(usize) -> Output + Sync) {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..SERVICES)
            .map(|i| {
                let command = &command;
                scope.spawn(move || command(i))
            })
            .collect();
        for handle in handles {
            check(&handle.join().expect("a docker thread"), "docker");
        }
    });
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How many running containers have a name starting with `prefix`.
fn running(prefix: &str) -> usize {
    let out = docker(["ps", "--format", "{{.Names}}"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// Networks outlive the sandbox: the engine is the host's.
fn remove_networks() {
    let plain = docker([
        "network",
        "ls",
        "--quiet",
        "--filter",
        &format!("name={PLAIN}-{}-", std::process::id()),
    ]);
    let plain = String::from_utf8_lossy(&plain.stdout).into_owned();
    let names = [format!("{APP}-{INSTANCE}"), format!("{COMPOSE}_default")];
    for name in names.iter().map(String::as_str).chain(plain.lines()) {
        let _ = docker(["network", "rm", name]);
    }
}

fn service_name(i: usize) -> String {
    format!("s{:02}", i + 1)
}

/// Half the services serve HTTP, half sleep.
fn service_command(i: usize) -> &'static [&'static str] {
    if i.is_multiple_of(2) {
        &["sh", "-c", "exec httpd -f -p 80 -h /bin"]
    } else {
        &["sleep", "1000000"]
    }
}

/// The app: `s01` publishes a loopback port and carries `REVISION`, the
/// value an apply changes.
fn template_yaml(revision: u32, port: u16) -> String {
    let mut y = format!("app: {APP}\nservices:\n");
    for i in 0..SERVICES {
        let command: Vec<String> = service_command(i)
            .iter()
            .map(|w| format!("'{w}'"))
            .collect();
        y.push_str(&format!(
            "  {}:\n    image: {IMAGE}\n    command: [{}]\n    init: true\n    environment:\n      INSTANCE: \"{{{{ instance }}}}\"\n",
            service_name(i),
            command.join(", ")
        ));
        if i == 0 {
            y.push_str(&format!(
                "      REVISION: \"{revision}\"\n    ports: [\"127.0.0.1:{{{{ port }}}}:80\"]\n"
            ));
        }
    }
    y.push_str(&format!("instances:\n  {INSTANCE}: {{port: {port}}}\n"));
    y
}

/// The same services as a compose file: same image, commands, init, env
/// and published port (its own, so that both never compete for one).
fn compose_yaml(port: u16) -> String {
    let mut y = String::from("version: \"2.4\"\nservices:\n");
    for i in 0..SERVICES {
        let command: Vec<String> = service_command(i)
            .iter()
            .map(|w| format!("'{w}'"))
            .collect();
        y.push_str(&format!(
            "  {}:\n    image: {IMAGE}\n    command: [{}]\n    init: true\n    environment:\n      INSTANCE: {INSTANCE}\n",
            service_name(i),
            command.join(", ")
        ));
        if i == 0 {
            y.push_str(&format!("    ports: [\"127.0.0.1:{port}:80\"]\n"));
        }
    }
    y
}
