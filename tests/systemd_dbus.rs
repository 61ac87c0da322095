//! unitgen's systemd D-Bus client against a real systemd (a sandbox) that
//! runs real containers on the host's Docker engine.

#[path = "support/lib.rs"]
mod support;

use std::time::Duration;

use support::docker::{container_id, is_running};
use support::net::{free_port, http_get};
use support::sandbox::Sandbox;
use support::{wait_for, wait_for_moment};
use unitgen::systemd::{JobKind, JobOutcome, JobResult, Systemd};

const WEB: &str = "ug-dbus-test-web.service";
const BROKEN: &str = "ug-dbus-test-broken.service";
const CONTAINER: &str = "ug-dbus-test-web";
const BODY: &str = "ug-dbus-test";

fn web_unit(port: u16) -> String {
    format!(
        "[Unit]
Description=unitgen D-Bus test web server
Requires=docker.service
After=docker.service

[Service]
# Fails the start if the docker CLI cannot reach the engine from here.
ExecStartPre=/usr/bin/docker info --format '{{{{.ServerVersion}}}}'
# --init: httpd as PID 1 would ignore docker stop's SIGTERM for 10 s.
ExecStart=/usr/bin/docker run --rm --init --name {CONTAINER} -p 127.0.0.1:{port}:80 \\
    unitgen-test/busybox:1 sh -c 'mkdir -p /www && echo {BODY} >/www/index.html && exec httpd -f -p 80 -h /www'
ExecStop=/usr/bin/docker stop {CONTAINER}
# docker run exits with the container's status: 128 + SIGTERM once stopped.
SuccessExitStatus=143

[Install]
WantedBy=multi-user.target
"
    )
}

const BROKEN_UNIT: &str = "[Unit]
Description=unitgen D-Bus test unit that fails

[Service]
Type=oneshot
ExecStart=/bin/false
";

fn units(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn outcome(unit: &str, result: JobResult) -> JobOutcome {
    JobOutcome {
        unit: unit.to_owned(),
        result,
    }
}

/// Waits until the web container answers with its page.
fn serves(port: u16) -> bool {
    wait_for(Duration::from_secs(30), || {
        http_get(port, "/").filter(|(status, body)| *status == 200 && body.trim() == BODY)
    })
    .is_some()
}

fn start_web(sandbox: &Sandbox, systemd: &Systemd) -> u16 {
    let port = free_port();
    std::fs::write(sandbox.unit_dir().join(WEB), web_unit(port)).unwrap();
    std::fs::write(sandbox.unit_dir().join(BROKEN), BROKEN_UNIT).unwrap();
    systemd.reload().unwrap();
    let outcomes = systemd
        .run_jobs(JobKind::Start, &units(&[WEB, BROKEN]))
        .unwrap();
    assert_eq!(
        outcomes,
        [
            outcome(WEB, JobResult::Done),
            outcome(BROKEN, JobResult::Failed)
        ],
        "{}\n{}",
        sandbox.journal(WEB),
        sandbox.journal(BROKEN)
    );
    port
}

#[test]
fn start_restart_stop_enable_and_reboot_a_container_unit() {
    let mut sandbox = Sandbox::boot();
    sandbox.own_containers("ug-dbus-test-");
    let systemd = sandbox.systemd();

    // Both jobs at once: the good unit starts, the broken one fails.
    let port = start_web(&sandbox, &systemd);
    let web = systemd.unit_state(WEB).unwrap();
    assert!(web.is_active(), "{web:?}\n{}", sandbox.journal(WEB));
    assert_ne!(web.main_pid, 0);
    assert_ne!(web.active_enter_timestamp, 0);
    assert!(
        serves(port),
        "nothing served on 127.0.0.1:{port}\n{}",
        sandbox.journal(WEB)
    );
    let broken = systemd.unit_state(BROKEN).unwrap();
    assert!(broken.is_failed(), "{broken:?}");
    assert_eq!(
        (broken.result.as_str(), broken.exec_main_status),
        ("exit-code", 1)
    );
    assert_eq!(
        systemd
            .active_states(&units(&[BROKEN, "ug-dbus-test-missing.service", WEB]))
            .unwrap(),
        ["failed", "inactive", "active"]
    );

    // Restart: a new container.
    let first = container_id(CONTAINER).expect("the web container exists");
    let restarted = systemd.run_jobs(JobKind::Restart, &units(&[WEB])).unwrap();
    assert_eq!(
        restarted,
        [outcome(WEB, JobResult::Done)],
        "{}",
        sandbox.journal(WEB)
    );
    assert!(
        serves(port),
        "nothing served after restart\n{}",
        sandbox.journal(WEB)
    );
    let second = container_id(CONTAINER).expect("the web container exists after restart");
    assert_ne!(first, second, "restart kept the same container");

    // Stop: the container goes away.
    let stopped = systemd.run_jobs(JobKind::Stop, &units(&[WEB])).unwrap();
    assert_eq!(
        stopped,
        [outcome(WEB, JobResult::Done)],
        "{}",
        sandbox.journal(WEB)
    );
    let web = systemd.unit_state(WEB).unwrap();
    assert_eq!(
        web.active_state,
        "inactive",
        "{web:?}\n{}",
        sandbox.journal(WEB)
    );
    assert!(
        wait_for(Duration::from_secs(60), || (!is_running(CONTAINER))
            .then_some(()))
        .is_some(),
        "the container still runs after stop"
    );

    // Enable: the wants symlink, as `systemctl enable` makes it.
    systemd.enable(&units(&[WEB])).unwrap();
    let link = sandbox.unit_dir().join("multi-user.target.wants").join(WEB);
    let target = std::fs::read_link(&link).expect("the wants symlink exists");
    assert_eq!(
        target,
        std::path::Path::new("/etc/systemd/system").join(WEB)
    );

    // After a reboot the enabled unit is up again; the other is not.
    sandbox.reboot();
    let systemd = sandbox.systemd();
    let web = systemd.unit_state(WEB).unwrap();
    assert!(web.is_active(), "{web:?}\n{}", sandbox.journal(WEB));
    assert!(
        serves(port),
        "nothing served after reboot\n{}",
        sandbox.journal(WEB)
    );
    assert_eq!(systemd.unit_state(BROKEN).unwrap().active_state, "inactive");

    // Disable removes the symlink again.
    systemd.disable(&units(&[WEB])).unwrap();
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "{} still exists",
        link.display()
    );
}

// The system bus keeps at most 128 calls of one connection waiting for
// their answers (`max_replies_per_connection`) and refuses the rest: on a
// busy host, `status` of an instance of 20 services, seven reads each,
// failed with `LimitsExceeded`. Reads of many units all come back while
// systemd is kept busy (daemon-reloads, one after the other).
#[test]
fn reads_of_many_units_stay_within_the_bus_limits() {
    let sandbox = Sandbox::boot();
    let systemd = sandbox.systemd();
    let many: Vec<String> = vec!["systemd-journald.service".to_string(); 60];
    let busy = std::sync::atomic::AtomicBool::new(true);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while busy.load(std::sync::atomic::Ordering::Relaxed) {
                sandbox.exec("systemctl", ["daemon-reload"]);
            }
        });
        for _ in 0..10 {
            let details = systemd.details(&many);
            let summaries = systemd.summaries(&many);
            let on_disk = systemd.unit_file_states(&many);
            // The reloads stop before a failed read panics (the scope would
            // wait for them forever), and go on for the next round.
            busy.store(false, std::sync::atomic::Ordering::Relaxed);
            let details = details.unwrap();
            assert!(details.iter().all(|d| !d.fragment_path.is_empty()));
            assert_eq!(summaries.unwrap().len(), 60);
            assert!(on_disk.unwrap().iter().all(|state| state == "static"));
            busy.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        busy.store(false, std::sync::atomic::Ordering::Relaxed);
    });
}

/// systemd re-executing (`systemctl daemon-reexec`, as Debian's systemd
/// package does on each upgrade) leaves the bus for a moment, and a call it
/// had then came back as NoReply: an apply whose settle-time read met it
/// failed and restarted the previous revision. Reads made across re-execs
/// now all answer, and a job awaited across one is told done.
#[test]
fn reads_and_jobs_outlast_systemd_reexecuting() {
    let sandbox = Sandbox::boot();
    let systemd = sandbox.systemd();
    let many: Vec<String> = vec!["systemd-journald.service".to_string(); 60];
    let reexecs = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| reexec_six_times(&sandbox, &reexecs));
        while reexecs.load(std::sync::atomic::Ordering::Relaxed) < 6 {
            let details = systemd.details(&many);
            let summaries = systemd.summaries(&many);
            let state = systemd.unit_state("systemd-journald.service");
            if details.is_err() || summaries.is_err() || state.is_err() {
                // The re-execs end before the panic (the scope waits for them).
                while reexecs.load(std::sync::atomic::Ordering::Relaxed) < 6 {}
            }
            assert!(details.unwrap().iter().all(|d| !d.fragment_path.is_empty()));
            assert_eq!(summaries.unwrap().len(), 60);
            assert!(state.unwrap().is_active());
        }
    });

    // A job that takes two seconds, systemd re-executed while it runs.
    let slow = "ug-dbus-test-slow.service";
    std::fs::write(
        sandbox.unit_dir().join(slow),
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep 2\n",
    )
    .unwrap();
    systemd.reload().unwrap();
    std::thread::scope(|scope| {
        let job = scope.spawn(|| systemd.run_jobs(JobKind::Start, &units(&[slow])));
        // Polled fast throughout: the job is there for its 2 s only.
        let running = wait_for_moment(Duration::from_secs(60), || {
            let jobs = sandbox.systemctl(["list-jobs"]);
            String::from_utf8_lossy(&jobs.stdout)
                .contains(slow)
                .then_some(())
        });
        assert!(running.is_some(), "the job was not enqueued");
        assert!(sandbox.systemctl(["daemon-reexec"]).status.success());
        let outcomes = job.join().unwrap().unwrap();
        assert_eq!(outcomes, [outcome(slow, JobResult::Done)]);
    });
}

#[test]
fn units_without_unit_file_and_failed_units() {
    let sandbox = Sandbox::boot();
    let systemd = sandbox.systemd();
    let missing = "ug-dbus-test-missing.service";

    // Neither start nor stop of a unit that does not exist hangs.
    let outcomes = systemd.run_jobs(JobKind::Stop, &units(&[missing])).unwrap();
    assert_eq!(outcomes, [outcome(missing, JobResult::NotLoaded)]);
    let outcomes = systemd
        .run_jobs(JobKind::Start, &units(&[missing]))
        .unwrap();
    assert_eq!(outcomes, [outcome(missing, JobResult::NotLoaded)]);
    let state = systemd.unit_state(missing).unwrap();
    assert_eq!(
        (state.load_state.as_str(), state.active_state.as_str()),
        ("not-found", "inactive")
    );
    assert!(!state.is_loaded());

    // A masked unit is refused, with systemd's reason.
    std::os::unix::fs::symlink(
        "/dev/null",
        sandbox.unit_dir().join("ug-dbus-test-masked.service"),
    )
    .unwrap();
    systemd.reload().unwrap();
    let outcomes = systemd
        .run_jobs(JobKind::Start, &units(&["ug-dbus-test-masked.service"]))
        .unwrap();
    assert!(
        matches!(&outcomes[0].result, JobResult::Rejected(why) if why.contains("UnitMasked")),
        "{outcomes:?}"
    );

    // A failed unit stays failed until reset.
    std::fs::write(sandbox.unit_dir().join(BROKEN), BROKEN_UNIT).unwrap();
    systemd.reload().unwrap();
    let outcomes = systemd.run_jobs(JobKind::Start, &units(&[BROKEN])).unwrap();
    assert_eq!(outcomes, [outcome(BROKEN, JobResult::Failed)]);
    assert!(systemd.unit_state(BROKEN).unwrap().is_failed());
    // Resetting a unit systemd does not know is nothing to do.
    systemd.reset_failed_all(&units(&[missing, BROKEN]));
    assert_eq!(systemd.unit_state(BROKEN).unwrap().active_state, "inactive");

    // Bus errors say what unitgen was doing.
    let err = systemd.enable(&units(&[missing])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("enabling {missing}: ")),
        "{err}"
    );
}

#[test]
fn connecting_to_a_missing_bus_is_an_error_not_a_panic() {
    let err = match Systemd::connect(Some("unix:path=/nonexistent/unitgen/bus"), false) {
        Ok(_) => panic!("connected to a bus that does not exist"),
        Err(err) => err,
    };
    assert!(
        err.to_string()
            .starts_with("connecting to D-Bus at unix:path=/nonexistent/unitgen/bus: "),
        "{err}"
    );
}

/// systemd re-executing while jobs are enqueued: the enqueue calls it had
/// not read yet came back as NoReply, and unitgen took each as refused
/// ("rejected: ... Message recipient disconnected from message bus without
/// replying"), so an apply met by a `daemon-reexec` (Debian's systemd
/// package runs one on each upgrade) failed and put the previous revision
/// back. Every start, restart and stop enqueued across re-execs is now
/// done, and each unit ends in the state asked.
#[test]
fn jobs_enqueued_while_systemd_reexecutes_are_all_done() {
    let sandbox = Sandbox::boot();
    let systemd = sandbox.systemd();
    let names: Vec<String> = (0..30)
        .map(|i| format!("ug-dbus-test-reexec-{i}.service"))
        .collect();
    for name in &names {
        std::fs::write(
            sandbox.unit_dir().join(name),
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
        )
        .unwrap();
    }
    systemd.reload().unwrap();
    let reexecs = std::sync::atomic::AtomicU32::new(0);
    let done = |kind| {
        let outcomes = systemd.run_jobs(kind, &names).unwrap();
        let not_done: Vec<&JobOutcome> = (outcomes.iter())
            .filter(|o| o.result != JobResult::Done)
            .collect();
        (not_done.is_empty(), format!("{kind:?}: {not_done:?}"))
    };
    std::thread::scope(|scope| {
        scope.spawn(|| reexec_six_times(&sandbox, &reexecs));
        while reexecs.load(std::sync::atomic::Ordering::Relaxed) < 6 {
            for (kind, state) in [
                (JobKind::Start, "active"),
                (JobKind::Restart, "active"),
                (JobKind::Stop, "inactive"),
            ] {
                let (all_done, said) = done(kind);
                let states = systemd.active_states(&names).unwrap();
                if !all_done || states.iter().any(|s| s != state) {
                    // The re-execs end before the panic (the scope waits for them).
                    while reexecs.load(std::sync::atomic::Ordering::Relaxed) < 6 {}
                }
                assert!(all_done, "{said}");
                assert!(states.iter().all(|s| s == state), "{kind:?}: {states:?}");
            }
        }
    });
}

/// `systemctl daemon-reexec` six times in a row, counting each in `done`.
fn reexec_six_times(sandbox: &Sandbox, done: &std::sync::atomic::AtomicU32) {
    for _ in 0..6 {
        let out = sandbox.systemctl(["daemon-reexec"]);
        assert!(out.status.success(), "{out:?}");
        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
