//! Operating what unitgen deployed, as an operator does from the shell:
//! the instance target, logs, ls, history, exec, restart/stop/start. Each
//! against a sandboxed real systemd and real containers.

#[path = "support/lib.rs"]
mod support;

use std::time::Duration;

use support::docker::is_running;
use support::net::free_port;
use support::wait_for;
use support::world::{World, serves};

/// Three services on the busybox test image: `api` serves and says so on
/// stdout, `web` publishes a port, `worker` prints a line now and then.
fn app(name: &str, port: u16, greeting: &str) -> String {
    format!(
        r#"app: {name}
services:
  api:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'echo "api of $INSTANCE says {greeting}"; mkdir -p /www && echo "$INSTANCE" > /www/index.html && exec httpd -f -p 80 -h /www']
    environment: {{INSTANCE: "{{{{ instance }}}}"}}
    init: true
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo web > /www/index.html && exec httpd -f -p 80 -h /www']
    init: true
    ports: ["127.0.0.1:{{{{ port }}}}:80"]
    depends_on: [api]
  worker:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'n=0; while :; do n=$((n+1)); echo "worker tick $n"; sleep 1; done']
    init: true
    depends_on: [api]
instances:
  live: {{port: {port}}}
"#
    )
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_instance_target_stops_and_starts_the_whole_instance() {
    let world = World::new("ugtarget");
    let port = free_port();
    world.write(&app("ugtarget", port, "hi"));
    world.apply_ok("live");
    let units = [
        "ugtarget-live-network.service",
        "ugtarget-live-api.service",
        "ugtarget-live-web.service",
        "ugtarget-live-worker.service",
    ];

    let deps =
        stdout(
            &world
                .sandbox
                .systemctl(["list-dependencies", "--plain", "ugtarget-live.target"]),
        );
    for unit in units {
        assert!(deps.contains(unit), "{unit} in list-dependencies:\n{deps}");
    }
    let boot =
        stdout(
            &world
                .sandbox
                .systemctl(["list-dependencies", "--plain", "multi-user.target"]),
        );
    assert!(
        boot.contains("ugtarget-live.target"),
        "the instance starts at boot through its target:\n{boot}\n{}",
        stdout(&world.sandbox.exec("ls", ["-lR", "/etc/systemd/system"]))
    );

    // systemctl waits for the target's own job; its units' stop jobs (by
    // `PartOf=`) finish a moment later.
    let stop = world.sandbox.systemctl(["stop", "ugtarget-live.target"]);
    assert!(stop.status.success());
    let all_down = wait_for(Duration::from_secs(30), || {
        units
            .iter()
            .all(|unit| world.active(unit) == "inactive")
            .then_some(())
    });
    assert!(all_down.is_some(), "every unit stopped with the target");
    for service in ["api", "web", "worker"] {
        assert!(!is_running(&world.container("live", service)), "{service}");
    }

    let start = world.sandbox.systemctl(["start", "ugtarget-live.target"]);
    assert!(start.status.success());
    let all_up = wait_for(Duration::from_secs(30), || {
        units
            .iter()
            .all(|unit| world.active(unit) == "active")
            .then_some(())
    });
    assert!(all_up.is_some(), "every unit started with the target");
    assert!(serves(port).is_some(), "and web serves again");
    assert_eq!(world.unitgen(&["plan", "live"]).status.code(), Some(0));
}
