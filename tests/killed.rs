//! "A kill at any moment is repaired by the next apply", beyond a plain
//! apply: unitgen killed (SIGKILL, as `kill -9`) at moments a reviewer
//! would pick, seen from outside (a container up, a file switched), in a
//! sandboxed systemd with real containers and a real router. After each
//! kill, what a user checks tells the truth, the router serves, and the
//! next command finishes the job.

#[path = "support/lib.rs"]
mod support;

use std::process::{Child, Output};
use std::time::Duration;

use support::docker::{container_id, docker, is_running};
use support::net::free_port;
use support::traefik::{self, Load, bodies, get, wait_until};
use support::wait_for;
use support::world::World;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `args`, and kills it (SIGKILL) as soon as `moment` holds; panics
/// if it ended before.
fn kill_when(world: &World, args: &[&str], what: &str, moment: impl Fn() -> bool) {
    let mut child: Child = world.spawn(args);
    let seen = wait_for(Duration::from_secs(90), || {
        if moment() {
            return Some(true);
        }
        child.try_wait().unwrap().map(|_| false)
    });
    assert_eq!(seen, Some(true), "{args:?} ended before {what}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The names of the running containers whose name starts with `prefix`.
fn running(prefix: &str) -> Vec<String> {
    let out = docker(["ps", "--format", "{{.Names}}"]);
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// A moment of a routed apply, given the old version's container id.
type Moment<'a> = dyn Fn(&str) -> bool + 'a;

const ROUTED: &str = "ugkillroute";
const DOMAIN: &str = "live.killroute.test";

/// `web`, routed by the host's router, answers with its version.
fn routed(world: &World, version: &str, (http, https, port): (u16, u16, u16)) -> String {
    format!(
        r#"app: {ROUTED}
services:
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo "{version}" > /www/index.html && echo ok > /www/healthz && exec httpd -f -p 8000 -h /www']
    init: true
    ports: ["127.0.0.1:{port}:8000"]
    health_path: /healthz
    healthcheck: {{test: [CMD-SHELL, "test -f /www/healthz"], interval: 1s, retries: 2}}
instances:
  live:
    routes:
      - hosts: {DOMAIN}
        service: web
        port: 8000
        tls: off
router:
  image: {image}
  directory: {dir}
  address: 127.0.0.1
  http_port: {http}
  https_port: {https}
"#,
        image = traefik::IMAGE,
        dir = world.sandbox.shared_dir().join("router").display(),
    )
}

/// A routed apply (the new version started beside the old as a stand-in,
/// the router switched to it, the old one replaced, the router switched
/// back) killed at each of its moments: the router keeps answering from a
/// live version throughout, `plan` never says "up to date" before the
/// apply's work is done, and the next apply finishes it: the stand-in gone,
/// one version serving. A rollback after a kill does the same.
#[test]
fn a_routed_apply_killed_during_its_switch_keeps_serving_and_is_finished_by_the_next() {
    let mut world = World::new(ROUTED);
    world.sandbox.own_containers("unitgen-router");
    let ports = (free_port(), free_port(), free_port());
    world.write(&routed(&world, "v0", ports));
    world.apply_ok("live");
    let served = |version: &str| {
        wait_until(
            Duration::from_secs(30),
            &format!("the router serves {version}"),
            || get("http", DOMAIN, ports.0, "/", None),
            |a| a.status == 200 && a.body.trim() == version,
        );
    };
    served("v0");
    let web = format!("{ROUTED}-live-web");
    let standin = format!("{web}.next");
    let standin_unit = world.unit_file(&format!("{standin}.service"));
    let routes_file = (world.sandbox.shared_dir()).join("router/dynamic/ugkillroute-live.yaml");
    let routes = std::fs::read_to_string(&routes_file).unwrap();
    let record = (world.sandbox.root()).join("var/lib/unitgen/ugkillroute-live/handover.json");
    let routes_now = || std::fs::read_to_string(&routes_file).unwrap_or_default();
    let apply = ["apply", "live", "--settle", "1"];

    // (Killed once the traffic is switched to the new version: see
    // zero_downtime.rs, and the rollback below.)
    let moments: [(&str, &Moment); 3] = [
        (
            "the new version runs beside the old, not yet routed",
            &|_| is_running(&standin) && routes_now() == routes,
        ),
        ("the old version is replaced behind the stand-in", &|old| {
            container_id(&web).is_none_or(|id| id != old)
        }),
        (
            "the traffic is switched back, the stand-in drains",
            &|old| routes_now() == routes && container_id(&web).is_some_and(|id| id != old),
        ),
    ];
    for (i, (moment, holds)) in moments.iter().enumerate() {
        let version = format!("v{}", i + 1);
        let at = format!("{version} killed when {moment}");
        world.write(&routed(&world, &version, ports));
        let old = container_id(&web).unwrap();
        let load = Load::start(ports.0, DOMAIN);
        kill_when(&world, &apply, moment, || holds(&old));

        let plan = world.unitgen(&["plan", "live"]);
        assert_eq!(
            plan.status.code(),
            Some(2),
            "{at}: plan said\n{}",
            text(&plan)
        );
        assert!(
            text(&plan).contains("an earlier apply's zero-downtime switch did not finish"),
            "{at}: plan said\n{}",
            text(&plan)
        );

        let status = world.unitgen(&["status", "live"]);
        assert_eq!(status.status.code(), Some(3), "{at}: {}", text(&status));
        assert!(
            text(&status).contains("did not finish"),
            "{at}: {}",
            text(&status)
        );

        let next = world.unitgen(&apply);
        assert!(next.status.success(), "{at}: {}", text(&next));
        let answers = load.stop();
        let seen = bodies(&answers);
        assert_eq!(seen.last(), Some(&version), "{at}: {answers:?}");
        assert!(!is_running(&standin), "{at}: the stand-in still runs");
        assert!(!standin_unit.exists(), "{at}: the stand-in's unit is left");
        assert!(!record.exists(), "{at}: the handover's record is left");
        assert_eq!(running(&format!("{ROUTED}-")), [web.as_str()], "{at}");
        assert_eq!(routes_now(), routes, "{at}: the routes file");
        let plan = world.unitgen(&["plan", "live"]);
        assert_eq!(
            plan.status.code(),
            Some(0),
            "{at}: plan said\n{}",
            text(&plan)
        );
    }

    // Killed with the traffic on the stand-in, then rolled back: the router
    // serves the revision rolled back to, not the killed apply's stand-in.
    world.write(&routed(&world, "v9", ports));
    let killed = world.unitgen_with(&apply, &[("UNITGEN_FAULT", "after-switch")]);
    assert!(!killed.status.success());
    served("v9");
    let out = world.unitgen(&["rollback", "live"]);
    assert!(out.status.success(), "{}", text(&out));
    served("v2");
    assert!(!is_running(&standin), "the stand-in outlived the rollback");
    assert!(!standin_unit.exists());
    assert_eq!(running(&format!("{ROUTED}-")), [web.as_str()]);
    assert_eq!(routes_now(), routes);
}
