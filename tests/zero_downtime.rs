//! Zero-downtime deploys of a routed service, end to end: a sandboxed
//! systemd runs the instance and the host's router (real Traefik), and a
//! load loop sends requests through the router by domain, the way users
//! would, while apply deploys new versions: a good one, one killed in the
//! middle of its switch (repaired by the next apply), and a broken one;
//! then while the instance is restarted and rolled back. Every request
//! must succeed. One sandbox and one router serve it all.

#[path = "support/lib.rs"]
mod support;

use std::time::Duration;

use support::docker::is_running;
use support::net::free_port;
use support::traefik::{self, Load, Presence, bodies, get, wait_until};
use support::world::World;

const APP: &str = "ugbluegreen";
const DOMAIN: &str = "live.bluegreen.test";
/// A second route of the instance, which one apply changes.
const ADMIN: &str = "admin.bluegreen.test";

/// `web` answers with its version; `healthy: false` makes a broken
/// version: no health file, so both its healthcheck and the router's
/// health path fail. `admin` is more of the second route's keys.
fn template(world: &World, http: u16, https: u16, port: u16, admin: &str) -> String {
    let router_dir = world.sandbox.shared_dir().join("router");
    format!(
        r#"app: {APP}
services:
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo "{{{{ version }}}}" > /www/index.html && {{% if healthy %}}echo ok > /www/healthz && {{% endif %}}exec httpd -f -p 8000 -h /www']
    init: true
    ports: ["127.0.0.1:{port}:8000"]
    health_path: /healthz
    healthcheck: {{test: [CMD-SHELL, "test -f /www/healthz"], interval: 1s, retries: 2}}
instances:
  live:
    version: v1
    healthy: true
    routes:
      - hosts: {DOMAIN}
        service: web
        port: 8000
        tls: off
      - hosts: {ADMIN}
        service: web
        port: 8000
        tls: off{admin}
router:
  image: {image}
  directory: {router_dir}
  address: 127.0.0.1
  http_port: {http}
  https_port: {https}
"#,
        image = traefik::IMAGE,
        router_dir = router_dir.display(),
    )
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn routed_service_is_replaced_without_a_failed_request() {
    let mut world = World::new(APP);
    world.sandbox.own_containers("unitgen-router");
    let (http, https, port) = (free_port(), free_port(), free_port());
    world.write(&template(&world, http, https, port, ""));
    world.apply_ok("live");
    wait_until(
        Duration::from_secs(60),
        "the router serves v1",
        || get("http", DOMAIN, http, "/", None),
        |a| a.status == 200 && a.body.trim() == "v1",
    );

    // A change of one route (an alias added) leaves the instance's other
    // routes served throughout: the routes file is swapped, never missing.
    let load = Load::start(http, DOMAIN);
    let routes_file = (world.sandbox.shared_dir()).join("router/dynamic/ugbluegreen-live.yaml");
    let presence = Presence::watch(&routes_file);
    let alias = "\n        aliases: [old.admin.bluegreen.test]";
    world.write(&template(&world, http, https, port, alias));
    let plan = world.unitgen(&["plan", "live"]);
    let shown = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        shown.contains("~ ugbluegreen-live-routes.service (changed: reload"),
        "{shown}"
    );
    world.apply_ok("live");
    wait_until(
        Duration::from_secs(60),
        "the new alias redirects",
        || get("http", "old.admin.bluegreen.test", http, "/", None),
        |a| matches!(a.status, 301 | 308),
    );
    assert_eq!(presence.stop(), 0, "the routes file went missing");
    assert_eq!(bodies(&load.stop()), ["v1"]);
    let web = world.container("live", "web");
    let standin = format!("{web}.next");
    let standin_unit = world.unit_file(&format!("{standin}.service"));

    // plan says the routed service is replaced without downtime.
    let plan = world.unitgen(&["plan", "live", "--set", "version=v2"]);
    let shown = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        shown.contains(&format!("~ {web}.service (changed: zero-downtime replace")),
        "{shown}"
    );

    // A new version: beside the old one, then the traffic switches.
    let load = Load::start(http, DOMAIN);
    let seen_both = std::thread::spawn({
        let (web, standin) = (web.clone(), standin.clone());
        move || {
            support::wait_for(Duration::from_secs(60), || {
                (is_running(&web) && is_running(&standin)).then_some(())
            })
            .is_some()
        }
    });
    let out = world.unitgen(&["apply", "live", "--settle", "1", "--set", "version=v2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let answers = load.stop();
    assert_eq!(bodies(&answers), ["v1", "v2"], "{answers:?}");
    assert!(seen_both.join().unwrap(), "v2 never ran beside v1");
    assert!(
        stderr(&out).contains("traffic switched to"),
        "{}",
        stderr(&out)
    );
    assert!(is_running(&web));
    assert!(!is_running(&standin), "the stand-in outlived the apply");
    assert!(!standin_unit.exists());

    // Killed (as kill -9) once the traffic went to the new version's
    // stand-in: the next apply switches back, removes it, then deploys.
    let load = Load::start(http, DOMAIN);
    let killed = world.unitgen_with(
        &["apply", "live", "--settle", "1", "--set", "version=v3"],
        &[("UNITGEN_FAULT", "after-switch")],
    );
    assert!(!killed.status.success());
    assert!(
        is_running(&standin),
        "the fault point comes after the switch"
    );
    wait_until(
        Duration::from_secs(60),
        "the router serves the stand-in's v3",
        || get("http", DOMAIN, http, "/", None),
        |a| a.status == 200 && a.body.trim() == "v3",
    );
    // And the service stopped by hand since. plan tells the unfinished
    // switch in one line (before: also a line per stand-in, its unit to
    // remove and its container "started by hand?").
    let stopped = world.sandbox.systemctl(["stop", &format!("{web}.service")]);
    assert!(stopped.status.success());
    let plan = world.unitgen(&["plan", "live", "--set", "version=v3"]);
    let shown = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("! an earlier apply's zero-downtime switch did not finish"),
        "{shown}"
    );
    assert!(!shown.contains(&standin), "{shown}");
    // The next apply starts the service behind the stand-in, which keeps
    // serving, then hands the traffic back (before: it waited 30 s for
    // the stopped service and failed, asking to start it first).
    let out = world.unitgen(&["apply", "live", "--settle", "1", "--set", "version=v3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("finishing the handover an earlier apply left"),
        "{}",
        stderr(&out)
    );
    let answers = load.stop();
    // v3 from the stand-in, then from the service: never v2 again.
    assert_eq!(bodies(&answers), ["v2", "v3"], "{answers:?}");
    assert!(!is_running(&standin));
    assert!(!standin_unit.exists());

    // A broken version: its stand-in never becomes healthy; apply fails,
    // v3 kept serving, the broken container is gone, the revision stays.
    let load = Load::start(http, DOMAIN);
    let out = world.unitgen(&[
        "apply",
        "live",
        "--settle",
        "1",
        "--set",
        "version=v4",
        "--set",
        "healthy=false",
    ]);
    let answers = load.stop();
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains("the old version kept serving all along; the new version was removed"),
        "{said}"
    );
    assert_eq!(bodies(&answers), ["v3"], "{answers:?}");
    assert!(!is_running(&standin));
    assert!(!standin_unit.exists());
    let plan = world.unitgen(&["plan", "live", "--set", "version=v3"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );

    // `restart` of the whole instance, and `rollback`, replace the routed
    // service as apply does, with the stand-ins kept with the revision.
    // Before, they restarted it (and restart the network too), and the
    // router answered 502 and 503 for a second or two.
    let load = Load::start(http, DOMAIN);
    let out = world.unitgen(&["restart", "live"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Each says what it starts: not "the new version" of an unchanged one.
    assert!(
        stderr(&out).contains(
            "starting the fresh copy of ugbluegreen-live-web.service beside the running copy"
        ),
        "{}",
        stderr(&out)
    );
    let out = world.unitgen(&["rollback", "live", "--settle", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("starting the rolled-back version of ugbluegreen-live-web.service beside the current version"),
        "{}",
        stderr(&out)
    );
    let answers = load.stop();
    assert_eq!(bodies(&answers), ["v3", "v2"], "{answers:?}");
    assert!(!is_running(&standin));
    assert!(!standin_unit.exists());
    let plan = world.unitgen(&["plan", "live", "--set", "version=v2"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
}
