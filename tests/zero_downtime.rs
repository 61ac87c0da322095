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

use support::docker::{container_id, is_running};
use support::net::free_port;
use support::pebble::Pebble;
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
    world.own_router();
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
            // Polled fast throughout: both run only from the stand-in's
            // start to the old container's stop, which may be short.
            support::wait_for_moment(Duration::from_secs(60), || {
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
    assert_eq!(container_id(&standin), None, "the broken container is gone");
    assert!(!standin_unit.exists());
    let plan = world.unitgen(&["plan", "live", "--set", "version=v3"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );

    // A container still holding the stand-in's name (Docker's removal of
    // the last one lagging, or failed and left `dead`; made here by hand)
    // is removed before the next stand-in starts. Before, `docker run`
    // failed on the name ("Conflict. The container name … is already in
    // use") and restart failed.
    let held = support::docker::docker([
        "create",
        "--name",
        &standin,
        "unitgen-test/busybox:1",
        "true",
    ]);
    assert!(
        held.status.success(),
        "{}",
        String::from_utf8_lossy(&held.stderr)
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
    assert_eq!(container_id(&standin), None);
    assert!(!standin_unit.exists());
    let plan = world.unitgen(&["plan", "live", "--set", "version=v2"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );

    // A router that takes no change: a file in its folder it cannot read
    // (Traefik then takes none, and logs why). apply does not stop the old
    // version on a guess: it asks the router, and waits while v2 keeps
    // serving; once the file is gone, the switch goes through. Before, it
    // stopped v2 after its 5 s drain while the router still sent it every
    // request.
    let broken = routes_file.with_file_name("by-hand.yaml");
    std::fs::write(&broken, "http:\n  routers: [\n").unwrap();
    let load = Load::start(http, DOMAIN);
    let apply = world.spawn_kept(&["apply", "live", "--settle", "1", "--set", "version=v5"]);
    let started = support::wait_for(Duration::from_secs(60), || {
        is_running(&standin).then_some(())
    });
    assert!(started.is_some(), "the stand-in never started");
    // Longer than the drain that used to follow the switch.
    std::thread::sleep(Duration::from_secs(8));
    assert!(
        is_running(&web),
        "the old version stopped while the router could not take the switch"
    );
    std::fs::remove_file(&broken).unwrap();
    let out = apply.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("waiting for the router to serve"),
        "{}",
        stderr(&out)
    );
    let answers = load.stop();
    assert_eq!(bodies(&answers), ["v2", "v5"], "{answers:?}");
    assert!(!is_running(&standin));

    // The same while a change of routes alone is applied (a host added):
    // apply waits for the router to serve the file, then fails naming the
    // file to suspect and puts the routes back. The router served the old
    // routes all along, and plan does not say up to date. Before, apply
    // wrote the file and said done, and plan then said up to date while
    // the router still served the old routes.
    std::fs::write(&broken, "http:\n  routers: [\n").unwrap();
    let added = "\n      - hosts: new.bluegreen.test\n        service: web\n        port: 8000\n        tls: off";
    world.write(&template(
        &world,
        http,
        https,
        port,
        &format!("{alias}{added}"),
    ));
    let v5 = ["--settle", "1", "--set", "version=v5"];
    let out = world.unitgen_with(
        &[&["apply", "live"][..], &v5].concat(),
        // The router never takes it: why wait the full minute.
        &[("UNITGEN_TEST_ROUTER_TAKES_WITHIN", "3")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains("waiting for the router to serve"), "{said}");
    assert!(
        said.contains("did not serve") && said.contains("unitgen wrote none of: by-hand.yaml"),
        "{said}"
    );
    assert_eq!(
        get("http", "new.bluegreen.test", http, "/", None)
            .unwrap()
            .status,
        404
    );
    let plan = world.unitgen(&["plan", "live", "--set", "version=v5"]);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
    std::fs::remove_file(&broken).unwrap();
    let out = world.unitgen(&[&["apply", "live"][..], &v5].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let new = get("http", "new.bluegreen.test", http, "/", None).unwrap();
    assert_eq!((new.status, new.body.trim()), (200, "v5"));
}

const TLS_APP: &str = "ugbgtls";
const TLS_DOMAIN: &str = "live.bgtls.test";

/// One state of the TLS instance: `web` answers `VERSION@PORT` on two
/// container ports (8000 and 8001), both published; the route names one.
struct Tls<'a> {
    version: &'a str,
    healthy: bool,
    hosts: &'a str,
    route_port: u16,
    /// The host ports of 8000 and 8001.
    published: (u16, u16),
}

fn tls_template(world: &World, pebble: &Pebble, (http, https): (u16, u16), s: &Tls) -> String {
    let health = if s.healthy {
        "&& echo ok > /w8000/healthz && echo ok > /w8001/healthz "
    } else {
        ""
    };
    format!(
        r#"app: {TLS_APP}
services:
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /w8000 /w8001 && echo "{version}@8000" > /w8000/index.html && echo "{version}@8001" > /w8001/index.html {health}&& httpd -p 8001 -h /w8001 && exec httpd -f -p 8000 -h /w8000']
    init: true
    ports: ["127.0.0.1:{p0}:8000", "127.0.0.1:{p1}:8001"]
    health_path: /healthz
    healthcheck: {{test: [CMD-SHELL, "test -f /w8000/healthz"], interval: 1s, retries: 2}}
instances:
  live:
    routes:
      - hosts: {hosts}
        service: web
        port: {route_port}
router:
  image: {image}
  directory: {dir}
  address: 127.0.0.1
  http_port: {http}
  https_port: {https}
  acme:
    email: ops@example.test
    ca_server: {ca_server}
    ca_certificate: {ca_certificate}
"#,
        version = s.version,
        hosts = s.hosts,
        route_port = s.route_port,
        p0 = s.published.0,
        p1 = s.published.1,
        image = traefik::IMAGE,
        dir = world.sandbox.shared_dir().join("router").display(),
        ca_server = pebble.directory_url(),
        ca_certificate = pebble.tls_certificate().display(),
    )
}

/// With TLS (a certificate from a real ACME CA, every request verified
/// against its root), the routed service behind HTTPS load through: a host
/// added to its route (a new certificate ordered), the route moved to
/// another container port, the service moved to another host port, a new
/// version, a restart of the service alone, a rollback, and a new version
/// that never becomes healthy. Not one request may fail.
#[test]
fn a_tls_route_and_its_service_change_restart_and_roll_back_under_load() {
    let mut world = World::new(TLS_APP);
    world.own_router();
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http);
    let mut state = Tls {
        version: "v1",
        healthy: true,
        hosts: TLS_DOMAIN,
        route_port: 8000,
        published: (free_port(), free_port()),
    };
    let apply = |world: &World, state: &Tls| {
        world.write(&tls_template(world, &pebble, (http, https), state));
        let out = world.unitgen(&["apply", "live", "--settle", "1"]);
        assert!(out.status.success(), "{}", stderr(&out));
        out
    };
    apply(&world, &state);
    let root = pebble.issuing_root();
    let https_serves = |domain: &str, body: &str| {
        wait_until(
            Duration::from_secs(120),
            &format!("{domain} served over verified HTTPS"),
            || get("https", domain, https, "/", Some(&root)),
            |a| a.status == 200 && a.body.trim() == body,
        );
    };
    https_serves(TLS_DOMAIN, "v1@8000");
    let web = world.container("live", "web");

    // A second host on the route: a certificate is ordered for both names
    // while the first keeps its own.
    let load = Load::start_https(https, TLS_DOMAIN, &root);
    state.hosts = "[live.bgtls.test, www2.bgtls.test]";
    apply(&world, &state);
    https_serves("www2.bgtls.test", "v1@8000");
    assert_eq!(bodies(&load.stop()), ["v1@8000"]);

    // The route to the other container port: a reload of the routes.
    let load = Load::start_https(https, TLS_DOMAIN, &root);
    state.route_port = 8001;
    apply(&world, &state);
    https_serves(TLS_DOMAIN, "v1@8001");
    assert_eq!(bodies(&load.stop()), ["v1@8000", "v1@8001"]);

    // The service on other host ports: its unit and the routes change.
    let load = Load::start_https(https, TLS_DOMAIN, &root);
    state.published = (free_port(), free_port());
    apply(&world, &state);
    assert_eq!(bodies(&load.stop()), ["v1@8001"]);

    // A new version.
    let load = Load::start_https(https, TLS_DOMAIN, &root);
    state.version = "v2";
    apply(&world, &state);
    assert_eq!(bodies(&load.stop()), ["v1@8001", "v2@8001"]);

    // The routed service restarted alone: a fresh container takes over
    // from a stand-in.
    let before = container_id(&web);
    let load = Load::start_https(https, TLS_DOMAIN, &root);
    let out = world.unitgen(&["restart", "live", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(bodies(&load.stop()), ["v2@8001"]);
    assert_ne!(container_id(&web), before, "web was not restarted");

    // Back to the revision before.
    let load = Load::start_https(https, TLS_DOMAIN, &root);
    let out = world.unitgen(&["rollback", "live", "--settle", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(bodies(&load.stop()), ["v2@8001", "v1@8001"]);

    // A version that never becomes healthy: apply fails and says so, the
    // old one serves throughout, and plan still shows the change.
    let load = Load::start_https(https, TLS_DOMAIN, &root);
    state.version = "v3";
    state.healthy = false;
    world.write(&tls_template(&world, &pebble, (http, https), &state));
    let out = world.unitgen(&["apply", "live", "--settle", "1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the old version kept serving all along"),
        "{}",
        stderr(&out)
    );
    assert_eq!(bodies(&load.stop()), ["v1@8001"]);
    let plan = world.unitgen(&["plan", "live"]);
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains(&format!("~ {web}.service (changed: zero-downtime replace")),
        "{shown}"
    );
    assert!(!is_running(&format!("{web}.next")));
}
