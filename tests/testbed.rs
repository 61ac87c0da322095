//! The test bed itself: what the other tests rely on when they boot a
//! sandboxed systemd or start an etcd.

#[path = "support/lib.rs"]
mod support;

use std::time::Duration;

use support::etcd::Etcd;
use support::sandbox::Sandbox;
use unitgen::systemd::{JobKind, JobResult};

fn start(sandbox: &Sandbox, unit: &str, body: &str) {
    std::fs::write(sandbox.unit_dir().join(unit), body).unwrap();
    let systemd = sandbox.systemd();
    systemd.reload().unwrap();
    let outcomes = systemd
        .run_jobs(JobKind::Start, &[unit.to_owned()])
        .unwrap();
    assert_eq!(
        outcomes[0].result,
        JobResult::Done,
        "{}",
        sandbox.journal(unit)
    );
}

/// The trap TESTBED.md warns about: systemd's boot empties /tmp
/// (tmpfiles' `D /tmp`). The sandbox keeps its /tmp at boot (see
/// boot-sandbox.sh), and what is removed in it is removed in its overlay
/// only, never on the machine.
#[test]
fn booting_a_sandbox_leaves_the_machines_tmp_alone() {
    let marker = tempfile::Builder::new()
        .prefix("unitgen-testbed-marker-")
        .tempfile_in("/tmp")
        .unwrap();
    let sandbox = Sandbox::boot();
    assert!(
        marker.path().exists(),
        "the sandbox's boot emptied the machine's /tmp"
    );
    let inside = sandbox
        .root()
        .join(marker.path().strip_prefix("/").unwrap());
    assert!(
        inside.exists(),
        "the sandbox's boot emptied its /tmp (tmpfiles' `D /tmp` was not overridden)"
    );
    std::fs::remove_file(&inside).unwrap();
    assert!(!inside.exists(), "the file is gone in the sandbox");
    assert!(
        marker.path().exists(),
        "a file removed in the sandbox was removed on the machine"
    );
}

#[test]
fn every_exec_phase_of_a_unit_gets_the_host_docker_engine() {
    let sandbox = Sandbox::boot();
    let unit = "ug-testbed-env.service";
    start(
        &sandbox,
        unit,
        "[Service]
Type=oneshot
RemainAfterExit=yes
ExecStartPre=/bin/sh -c 'echo \"$DOCKER_HOST\" >/run/ug-pre'
ExecStart=/bin/sh -c 'echo \"$DOCKER_HOST\" >/run/ug-start'
ExecStart=/usr/bin/docker image inspect unitgen-test/busybox:1
ExecStop=/bin/sh -c 'echo \"$DOCKER_HOST\" >/run/ug-stop'
",
    );
    let systemd = sandbox.systemd();
    let stopped = systemd.run_jobs(JobKind::Stop, &[unit.to_owned()]).unwrap();
    assert_eq!(stopped[0].result, JobResult::Done);
    for phase in ["pre", "start", "stop"] {
        let seen = std::fs::read_to_string(sandbox.root().join(format!("run/ug-{phase}"))).unwrap();
        assert_eq!(seen.trim(), "unix:///hostrun/docker.sock", "Exec{phase}");
    }
}

#[test]
fn sandboxes_side_by_side_do_not_touch_each_other() {
    let boot = || std::thread::spawn(Sandbox::boot);
    let (a, b) = (boot(), boot());
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    let unit = "ug-testbed-sleep.service";
    let body = "[Service]\nExecStart=/bin/sleep infinity\n";
    start(&a, unit, body);
    start(&b, unit, body);
    let pid_in_b = b.systemd().unit_state(unit).unwrap().main_pid;

    // Same unit name, distinct cgroup trees.
    let cgroup =
        |s: &Sandbox| std::fs::read_to_string(format!("/proc/{}/cgroup", s.pid())).unwrap();
    assert_ne!(cgroup(&a), cgroup(&b));

    let a_pid = a.pid();
    drop(a);
    assert!(
        !std::path::Path::new(&format!("/proc/{a_pid}")).exists(),
        "the dropped sandbox's systemd still runs"
    );
    let state = b.systemd().unit_state(unit).unwrap();
    assert!(state.is_active(), "{state:?}");
    assert_eq!(
        state.main_pid, pid_in_b,
        "the other sandbox's unit was restarted"
    );
}

#[test]
fn a_test_that_panics_still_stops_its_sandbox() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let sandbox = Sandbox::boot();
        tx.send(sandbox.pid()).unwrap();
        panic!("a failing test");
    })
    .join();
    assert!(result.is_err());
    let pid = rx.recv().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "systemd {pid} outlived its test"
    );
}

#[test]
fn etcd_serves_both_apis() {
    let etcd = Etcd::start(true);
    etcd.put("/unitgen/test", "v3 value");
    assert_eq!(etcd.get("/unitgen/test").as_deref(), Some("v3 value"));
    assert_eq!(etcd.get("/unitgen/missing"), None);

    let set = etcd.etcdctl(2, &["set", "/unitgen/v2", "v2 value", "--ttl", "30"]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    assert_eq!(etcd.get_v2("/unitgen/v2").as_deref(), Some("v2 value"));
    assert_eq!(etcd.get_v2("/unitgen/missing"), None);

    // Stopped with its owner.
    let endpoint = etcd.endpoint();
    drop(etcd);
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let gone = support::wait_for(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .is_err()
            .then_some(())
    });
    assert!(gone.is_some(), "etcd still listens on {endpoint}");
}
