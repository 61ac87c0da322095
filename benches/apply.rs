//! How long `unitgen apply` takes on a real host: a sandboxed systemd (see
//! tests/support/sandbox.rs) driving the machine's Docker engine, with a
//! 20-service app on the local test image. Compared with starting the same
//! containers by hand with `docker run -d`, in parallel.
//!
//! Needs root and the test bed (`scripts/testbed.sh`); run it with
//! `cargo bench --bench apply` or `scripts/bench`. Reports timings; never
//! fails on them.

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
const REPS: usize = 5;

fn main() {
    // /proc/self belongs to the effective user.
    if std::fs::metadata("/proc/self").ok().map(|m| m.uid()) != Some(0) {
        println!("apply bench skipped: it needs root (it boots a sandboxed systemd)");
        return;
    }
    let mut sandbox = Sandbox::boot();
    sandbox.own_containers(&format!("{APP}-{INSTANCE}-"));
    sandbox.own_containers(&format!("{PLAIN}-"));
    let dir = support::tempdir("bench-apply-");
    let bench = Bench {
        root: sandbox.root(),
        file: dir.path().join("unitgen.yaml"),
        port: free_port(),
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "{SERVICES} services on {IMAGE} (+1 network unit), sandboxed systemd pid {}, {cores} cores, {REPS} runs\n",
        sandbox.pid()
    );

    let mut times: Vec<(&str, Vec<Duration>)> = [
        "apply from scratch, --settle 0",
        "apply from scratch, default settle (3s)",
        "apply, nothing changed",
        "apply, one service changed, --settle 0",
        "apply, one service changed, default settle",
        "destroy",
        "docker network create + 20 docker run -d",
        "20 docker rm -f + docker network rm",
    ]
    .into_iter()
    .map(|name| (name, Vec::new()))
    .collect();
    let mut revision = 0;
    for _ in 0..REPS {
        revision += 1;
        bench.write(revision);
        times[0]
            .1
            .push(bench.unitgen(&["apply", INSTANCE, "--settle", "0"]));
        bench.check_running(SERVICES);
        times[2].1.push(bench.unitgen(&["apply", INSTANCE]));
        revision += 1;
        bench.write(revision);
        times[3]
            .1
            .push(bench.unitgen(&["apply", INSTANCE, "--settle", "0"]));
        revision += 1;
        bench.write(revision);
        times[4].1.push(bench.unitgen(&["apply", INSTANCE]));
        bench.check_running(SERVICES);
        times[5].1.push(bench.unitgen(&["destroy", INSTANCE]));
        bench.check_running(0);

        times[1].1.push(bench.unitgen(&["apply", INSTANCE]));
        bench.check_running(SERVICES);
        bench.unitgen(&["destroy", INSTANCE]);

        let (up, down) = bench.plain_docker();
        times[6].1.push(up);
        times[7].1.push(down);
    }
    for (name, samples) in &times {
        report(name, samples, None);
    }
    drop(sandbox);
    remove_networks();
}

struct Bench {
    root: PathBuf,
    file: PathBuf,
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
        let start = Instant::now();
        check(
            &docker(["network", "create", PLAIN]),
            "docker network create",
        );
        parallel(|i| {
            let mut args = vec![
                "run".to_string(),
                "-d".into(),
                "--name".into(),
                format!("{PLAIN}-{}", service_name(i)),
                "--network".into(),
                PLAIN.into(),
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
        check(&docker(["network", "rm", PLAIN]), "docker network rm");
        (up, start.elapsed())
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
    for name in [format!("{APP}-{INSTANCE}"), PLAIN.to_string()] {
        let _ = docker(["network", "rm", &name]);
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
