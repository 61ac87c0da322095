//! "A kill at any moment is repaired by the next apply", beyond a plain
//! apply: unitgen killed (SIGKILL, as `kill -9`) at moments a reviewer
//! would pick, seen from outside (a container up, a file switched), in a
//! sandboxed systemd with real containers and a real router. After each
//! kill, what a user checks tells the truth, the router serves, and the
//! next command finishes the job.

#[path = "support/lib.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Child, Output};
use std::time::Duration;

use support::docker::{container_id, container_names, is_running, list_networks};
use support::net::free_port;
use support::traefik::{self, Load, bodies, get, wait_until};
use support::world::World;
use support::{run_as_copied, wait_for, wait_for_moment};

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
    // Polled fast throughout: some moments last less than a second.
    let seen = wait_for_moment(Duration::from_secs(90), || {
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
    let mut names: Vec<String> = (container_names(false).into_iter())
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// A moment of a routed apply, given the old version's container id.
type Moment<'a> = dyn Fn(&str) -> bool + 'a;

const DOMAIN: &str = "live.killroute.test";

/// `web`, routed by the host's router, answers with its version.
fn routed(world: &World, version: &str, (http, https, port): (u16, u16, u16)) -> String {
    format!(
        r#"app: {app}
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
        app = world.app(),
        image = traefik::IMAGE,
        dir = world.sandbox.shared_dir().join("router").display(),
    )
}

/// A world whose routed app is applied at `version`, the host's router
/// its own, and the ports `routed` gave it. Its app is the calling test's
/// own (`ugkr` and a hash of the test's name), so that these tests run
/// side by side.
fn applied_routed(version: &str) -> (World, (u16, u16, u16)) {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    std::thread::current().name().hash(&mut hasher);
    let mut world = World::new(&format!("ugkr{:08x}", hasher.finish() as u32));
    world.own_router();
    let ports = (free_port(), free_port(), free_port());
    world.write(&routed(&world, version, ports));
    world.apply_ok("live");
    (world, ports)
}

/// Waits until the router on `routed`'s ports serves `version`.
fn served((http, _, _): (u16, u16, u16), version: &str) {
    wait_until(
        Duration::from_secs(60),
        &format!("the router serves {version}"),
        || get("http", DOMAIN, http, "/", None),
        |a| a.status == 200 && a.body.trim() == version,
    );
}

/// What a test of [`applied_routed`]'s instance looks at: the service's
/// container, its stand-in's, and the handover's files.
struct Handover {
    app: String,
    web: String,
    standin: String,
    standin_unit: PathBuf,
    routes_file: PathBuf,
    /// The routes file as the routes unit wrote it.
    routes: String,
    record: PathBuf,
}

impl Handover {
    fn of(world: &World) -> Handover {
        let app = world.app().to_string();
        let web = format!("{app}-live-web");
        let standin = format!("{web}.next");
        let routes_file =
            (world.sandbox.shared_dir()).join(format!("router/dynamic/{app}-live.yaml"));
        Handover {
            standin_unit: world.unit_file(&format!("{standin}.service")),
            routes: std::fs::read_to_string(&routes_file).unwrap(),
            record: (world.sandbox.root())
                .join(format!("var/lib/unitgen/{app}-live/handover.json")),
            routes_file,
            app,
            web,
            standin,
        }
    }

    fn routes_now(&self) -> String {
        std::fs::read_to_string(&self.routes_file).unwrap_or_default()
    }

    /// Finished: the stand-in gone (its container, unit and the record),
    /// the service's own container the instance's only one, and the routes
    /// file as the routes unit wrote it.
    fn assert_finished(&self, at: &str) {
        assert!(!is_running(&self.standin), "{at}: the stand-in still runs");
        assert!(
            !self.standin_unit.exists(),
            "{at}: the stand-in's unit is left"
        );
        assert!(!self.record.exists(), "{at}: the handover's record is left");
        let app = &self.app;
        assert_eq!(running(&format!("{app}-")), [self.web.as_str()], "{at}");
        assert_eq!(self.routes_now(), self.routes, "{at}: the routes file");
    }
}

/// A routed apply (the new version started beside the old as a stand-in,
/// the router switched to it, the old one replaced, the router switched
/// back) killed at each of its moments: the router keeps answering from a
/// live version throughout, `plan` never says "up to date" before the
/// apply's work is done, and the next apply finishes it: the stand-in gone,
/// one version serving. A rollback after a kill does the same.
#[test]
fn a_routed_apply_killed_during_its_switch_keeps_serving_and_is_finished_by_the_next() {
    let (world, ports) = applied_routed("v0");
    let app = world.app();
    served(ports, "v0");
    let handover = Handover::of(&world);
    let Handover { web, standin, .. } = &handover;
    let routes = handover.routes.as_str();
    let routes_now = || handover.routes_now();
    let apply = ["apply", "live", "--settle", "1"];

    // (Killed once the traffic is switched to the new version: see
    // zero_downtime.rs, and the rollback below.)
    let moments: [(&str, &Moment); 3] = [
        (
            "the new version runs beside the old, not yet routed",
            &|_| is_running(standin) && routes_now() == routes,
        ),
        ("the old version is replaced behind the stand-in", &|old| {
            container_id(web).is_none_or(|id| id != old)
        }),
        (
            "the traffic is switched back, the stand-in drains",
            &|old| routes_now() == routes && container_id(web).is_some_and(|id| id != old),
        ),
    ];
    for (i, (moment, holds)) in moments.iter().enumerate() {
        let version = format!("v{}", i + 1);
        let at = format!("{version} killed when {moment}");
        world.write(&routed(&world, &version, ports));
        let old = container_id(web).unwrap();
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
        handover.assert_finished(&at);
        let plan = world.unitgen(&["plan", "live"]);
        assert_eq!(
            plan.status.code(),
            Some(0),
            "{at}: plan said\n{}",
            text(&plan)
        );
    }

    // Killed with the traffic on the stand-in, the service then stopped by
    // hand, then rolled back: the rollback starts the service (before, it
    // waited 30 s for its port and failed), and the router serves the
    // revision rolled back to, not the killed apply's stand-in.
    world.write(&routed(&world, "v9", ports));
    let killed = world.unitgen_with(&apply, &[("UNITGEN_FAULT", "after-switch")]);
    assert!(!killed.status.success());
    served(ports, "v9");
    let stopped = world.sandbox.systemctl(["stop", &format!("{web}.service")]);
    assert!(stopped.status.success());
    let out = world.unitgen(&["rollback", "live"]);
    assert!(out.status.success(), "{}", text(&out));
    served(ports, "v2");
    handover.assert_finished("the rollback after a kill");

    // A rollback hands over as an apply does (with the stand-ins kept with
    // the revision), killed at each of the same moments: the router keeps
    // answering, plan tells both the rollback and its switch, and the
    // rollback run again finishes it (to the same revision: each goes back
    // one from the last, v2 to v3 and back). Killed before its switch, it
    // has recorded nothing but the handover: run again, it starts over.
    let mut now = "v2";
    for (i, (moment, holds)) in moments.iter().enumerate() {
        let to = if now == "v2" { "v3" } else { "v2" };
        let at = format!("rollback to {to} killed when {moment}");
        let old = container_id(web).unwrap();
        let load = Load::start(ports.0, DOMAIN);
        kill_when(&world, &["rollback", "live"], moment, || holds(&old));

        let plan = world.unitgen(&["plan", "live"]);
        let shown = text(&plan);
        assert_eq!(plan.status.code(), Some(2), "{at}: plan said\n{shown}");
        // Named as the rollback it is (before: "an earlier apply's").
        assert!(
            shown.contains("an earlier rollback's zero-downtime switch did not finish"),
            "{at}: plan said\n{shown}"
        );
        // Once it recorded its intent, the rollback (not an apply, which
        // would go to the template's units) is what finishes it.
        let finisher = format!("`unitgen rollback {app}/live` finishes it");
        assert_eq!(shown.contains(&finisher), i > 0, "{at}: plan said\n{shown}");
        let status = world.unitgen(&["status", "live"]);
        assert_eq!(status.status.code(), Some(3), "{at}: {}", text(&status));

        let again = world.unitgen(&["rollback", "live"]);
        assert!(again.status.success(), "{at}: {}", text(&again));
        assert_eq!(
            text(&again).contains("finishing the rollback to revision"),
            i > 0,
            "{at}: {}",
            text(&again)
        );
        let answers = load.stop();
        assert_eq!(
            bodies(&answers).last().map(String::as_str),
            Some(to),
            "{at}"
        );
        served(ports, to);
        handover.assert_finished(&at);
        // As rolled back (plan compares with the template, v9).
        let status = world.unitgen(&["status", "live"]);
        assert_eq!(status.status.code(), Some(0), "{at}: {}", text(&status));
        let plan = text(&world.unitgen(&["plan", "live"]));
        assert!(!plan.contains("did not finish"), "{at}: plan said\n{plan}");
        now = to;
    }
}

/// A restart of a routed service killed with the traffic on its stand-in,
/// then run again: the second restart restarted the network unit too, and
/// with it the stand-in (it requires the network) on a new host port, so
/// the router, still sending it the traffic, answered 503 ("no available
/// server") until the next apply, while restart said "2 units restarted".
/// Now it finishes the switch first: the stand-in keeps the traffic while
/// the service restarts, then goes; every request is answered throughout.
#[test]
fn a_restart_killed_with_the_traffic_on_its_stand_in_is_finished_by_the_next() {
    let (world, ports) = applied_routed("v0");
    served(ports, "v0");
    let handover = Handover::of(&world);
    let standin = &handover.standin;
    let killed = world.unitgen_with(&["restart", "live"], &[("UNITGEN_FAULT", "after-switch")]);
    assert!(!killed.status.success(), "{}", text(&killed));
    assert!(is_running(standin), "the stand-in has the traffic");
    let plan = world.unitgen(&["plan", "live"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(
        text(&plan).contains("an earlier restart's zero-downtime switch did not finish"),
        "{}",
        text(&plan)
    );

    let load = Load::start(ports.0, DOMAIN);
    let again = world.unitgen(&["restart", "live"]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(bodies(&load.stop()), ["v0"]);
    assert_eq!(
        get("http", DOMAIN, ports.0, "/", None).map(|a| (a.status, a.body)),
        Some((200, "v0\n".to_string()))
    );
    handover.assert_finished("the restart run again");
    let plan = world.unitgen(&["plan", "live"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
}

/// An apply that waited for a `destroy --volumes` of its instance: the
/// destroy forgot the instance (its state folder, the lock file with it)
/// while the apply waited on that lock, so the apply held the lock of a
/// file no other command opened: `plan` and `status` saw no command under
/// way, and a third command would not have waited. The apply now takes the
/// lock of the folder made anew, brings the instance back, and `plan` says
/// it is changing meanwhile.
#[test]
fn an_apply_that_waited_for_a_destroy_with_volumes_holds_the_instances_new_lock() {
    let world = World::new("ugkilllock");
    let port = free_port();
    world.write(&format!(
        "app: ugkilllock\nservices:\n  web:\n    image: unitgen-test/busybox:1\n    command: [sh, -c, 'mkdir -p /www && echo v1 > /www/index.html && exec httpd -f -p 80 -h /www']\n    init: true\n    ports: [\"127.0.0.1:{port}:80\"]\n  worker:\n    image: unitgen-test/busybox:1\n    command: [sleep, \"1000000\"]\n    init: true\n    volumes: [\"data:/data\"]\ninstances:\n  live: {{}}\n"
    ));
    world.apply_ok("live");
    let units = [
        "ugkilllock-live-web.service",
        "ugkilllock-live-worker.service",
    ];
    let mut destroy = world.spawn(&["destroy", "live", "--volumes"]);
    // Polled fast throughout: the apply below must start while the
    // destroy still runs, and what is left of it after its stops is short.
    let under_way = wait_for_moment(Duration::from_secs(60), || {
        units
            .iter()
            .any(|u| world.active(u) != "active")
            .then_some(())
    });
    assert!(under_way.is_some(), "the destroy did not begin");
    std::thread::scope(|scope| {
        let apply = scope.spawn(|| world.unitgen(&["apply", "live", "--settle", "5"]));
        // The apply holds the lock once the destroy is over: plan says a
        // command is changing the instance.
        assert!(destroy.wait().unwrap().success(), "the destroy failed");
        let told = wait_for(Duration::from_secs(60), || {
            let plan = world.unitgen(&["plan", "live"]);
            let shown = text(&plan);
            if shown.contains("another unitgen command") {
                return Some(true);
            }
            apply.is_finished().then_some(false)
        });
        let applied = apply.join().unwrap();
        assert!(applied.status.success(), "{}", text(&applied));
        assert!(
            text(&applied).contains("waiting for another unitgen"),
            "the apply did not wait for the destroy: {}",
            text(&applied)
        );
        assert_eq!(told, Some(true), "plan never saw the apply under way");
    });
    assert_eq!(
        support::world::serves(port).as_deref().map(str::trim),
        Some("v1")
    );
    let plan = world.unitgen(&["plan", "live"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
}

/// An app of the site: `web` serves its version on a host port, `worker`
/// just runs.
fn site_app(app: &str) -> String {
    format!(
        r#"app: {app}
services:
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo "$VERSION" > /www/index.html && exec httpd -f -p 80 -h /www']
    environment: {{VERSION: "{{{{ version }}}}"}}
    init: true
    ports: ["127.0.0.1:{{{{ port }}}}:80"]
  worker:
    image: unitgen-test/busybox:1
    command: [sleep, "1000000"]
    init: true
    volumes: ["data:/data"]
"#
    )
}

/// A site of two apps, each with instance `live` on host h1.
fn site(ports: (u16, u16), version: &str) -> String {
    format!(
        "hosts:\n  h1: {{address: 192.0.2.1}}\napps:\n  ugkilla:\n    template: a.yaml\n    instances:\n      live: {{host: h1, port: {}, version: {version}}}\n  ugkillb:\n    template: b.yaml\n    instances:\n      live: {{host: h1, port: {}, version: {version}}}\n",
        ports.0, ports.1
    )
}

/// The other commands that change a host, each killed (SIGKILL) at a
/// moment in its work: a site's apply between its apps, a rollback and a
/// restart with a container replaced, a stop and a start halfway, a
/// destroy while it stops. After each, `plan`, `status` and `ls` tell
/// what is there, and running the command again finishes it. A destroy
/// killed halfway was "not installed (revisions kept)" in `ls`, as if it
/// had finished.
#[test]
fn site_apply_rollback_restart_stop_start_and_destroy_killed_halfway_are_finished_by_the_next() {
    let mut world = World::new("ugkilla");
    world.also_own("ugkillb");
    std::fs::write(world.dir().join("a.yaml"), site_app("ugkilla")).unwrap();
    std::fs::write(world.dir().join("b.yaml"), site_app("ugkillb")).unwrap();
    let ports = (free_port(), free_port());
    let a = "ugkilla/live";
    let web = "ugkilla-live-web";
    let units = ["ugkilla-live-web.service", "ugkilla-live-worker.service"];
    let serves = |port: u16, version: &str, at: &str| {
        assert_eq!(
            support::world::serves(port).as_deref().map(str::trim),
            Some(version),
            "{at}"
        );
    };
    let plan = |args: &[&str]| {
        let out = world.unitgen(&[&["plan"], args].concat());
        (out.status.code(), text(&out))
    };
    let ok = |args: &[&str], at: &str| {
        let out = world.unitgen(args);
        assert!(out.status.success(), "{at}: {args:?}: {}", text(&out));
        text(&out)
    };
    // `ls` takes no template.
    let ls = |at: &str| {
        let out = world.ls();
        assert!(out.status.success(), "{at}: ls: {}", text(&out));
        text(&out)
    };
    let apply = ["apply", "--host", "h1", "--settle", "1"];
    world.write(&site(ports, "v1"));
    ok(&apply, "the first apply");
    let replaced = |old: &str| container_id(web).is_none_or(|id| id != old);

    // A site's apply killed while it replaces the first app's container:
    // the host differs until the next apply, which brings both apps up.
    world.write(&site(ports, "v2"));
    let old = container_id(web).unwrap();
    kill_when(
        &world,
        &apply,
        "the first app's container is replaced",
        || replaced(&old),
    );
    let (code, shown) = plan(&["--host", "h1"]);
    assert_eq!(code, Some(2), "site apply killed: plan said\n{shown}");
    ok(&apply, "after a killed site apply");
    serves(ports.0, "v2", "ugkilla after the next site apply");
    serves(ports.1, "v2", "ugkillb after the next site apply");
    assert_eq!(plan(&["--host", "h1"]).0, Some(0));

    // A rollback killed while it replaces the container: plan says so,
    // and running it again finishes it (back to v1, not forward to v2).
    let old = container_id(web).unwrap();
    kill_when(
        &world,
        &["rollback", a],
        "the container is replaced",
        || replaced(&old),
    );
    let (code, shown) = plan(&[a]);
    assert_eq!(code, Some(2), "rollback killed: plan said\n{shown}");
    assert!(
        shown.contains("an earlier rollback to revision 1 did not finish"),
        "{shown}"
    );
    let said = ok(&["rollback", a], "rollback again");
    assert!(
        said.contains("finishing the rollback to revision 1"),
        "{said}"
    );
    serves(ports.0, "v1", "after the rollback");
    ok(&apply, "apply after the rollback");
    serves(ports.0, "v2", "applied again");

    // A restart killed while it replaces the container: systemd finishes
    // the job it was given; plan says "up to date" only once it has.
    let old = container_id(web).unwrap();
    kill_when(&world, &["restart", a], "the container is replaced", || {
        replaced(&old)
    });
    if plan(&[a]).0 == Some(0) {
        for unit in units {
            assert_eq!(world.active(unit), "active", "restart killed: {unit}");
        }
    }
    ok(&["restart", a], "restart again");
    serves(ports.0, "v2", "after the restart");
    assert_eq!(plan(&[a]).0, Some(0));

    // A stop killed halfway, then a start killed halfway: each finishes
    // when run again; plan says the instance differs while it is down.
    kill_when(&world, &["stop", a], "a unit is stopped", || {
        units.iter().any(|u| world.active(u) != "active")
    });
    assert_eq!(plan(&[a]).0, Some(2), "stop killed");
    ok(&["stop", a], "stop again");
    for unit in units {
        assert_eq!(world.active(unit), "inactive", "stopped: {unit}");
    }
    assert_eq!(plan(&[a]).0, Some(2), "stopped");
    kill_when(&world, &["start", a], "a unit is started", || {
        units.iter().any(|u| world.active(u) != "inactive")
    });
    ok(&["start", a], "start again");
    serves(ports.0, "v2", "after the start");
    assert_eq!(plan(&[a]).0, Some(0));

    // A destroy killed while it stops the units (killed once its unit
    // files are gone: see repair.rs): plan, status and ls say it did not
    // finish, the next destroy finishes it, and an apply brings the
    // instance back.
    let destroy_note = "an earlier destroy of ugkilla-live did not finish";
    let moments: [(&str, &dyn Fn() -> bool); 1] = [("a unit is stopped", &|| {
        units.iter().any(|u| world.active(u) != "active")
    })];
    for (moment, holds) in moments {
        let at = format!("destroy killed when {moment}");
        kill_when(&world, &["destroy", a], moment, holds);
        let (code, shown) = plan(&[a]);
        assert_eq!(code, Some(2), "{at}: plan said\n{shown}");
        assert!(shown.contains(destroy_note), "{at}: plan said\n{shown}");
        let status = world.unitgen(&["status", a]);
        assert_ne!(status.status.code(), Some(0), "{at}: {}", text(&status));
        let listed = ls(&at);
        let row = (listed.lines())
            .find(|l| l.starts_with("ugkilla "))
            .unwrap_or("");
        assert!(
            row.contains("destroy did not finish"),
            "{at}: ls said\n{listed}"
        );

        let said = ok(&["destroy", a], &at);
        assert!(said.contains("finishing the destroy"), "{at}: {said}");
        assert_eq!(running("ugkilla-"), Vec::<String>::new(), "{at}");
        for unit in units {
            assert!(!world.unit_file(unit).exists(), "{at}: {unit}");
        }
        let networks = list_networks(&[("name", "ugkilla-")]);
        assert_eq!(networks, Vec::<serde_json::Value>::new(), "{at}");
        let (code, shown) = plan(&[a]);
        assert_eq!(code, Some(2), "{at}: plan said\n{shown}");
        assert!(!shown.contains(destroy_note), "{at}: plan said\n{shown}");
        let listed = ls(&at);
        assert!(
            listed.contains("not installed (revisions kept)"),
            "{at}: ls said\n{listed}"
        );
        serves(ports.1, "v2", "the other app runs on");

        ok(&apply, &format!("{at}: apply after the destroy"));
        serves(ports.0, "v2", &at);
        assert_eq!(plan(&[a]).0, Some(0), "{at}");
    }

    // A `destroy --volumes` killed once its volumes are gone: plan and ls
    // say it is finished with --volumes (they said a plain destroy, which
    // keeps the revisions the user meant to remove). Finished by a plain
    // destroy all the same, it called the removed volumes kept.
    let killed = world.unitgen_with(
        &["destroy", a, "--volumes"],
        &[("UNITGEN_FAULT", "after-remove-volumes")],
    );
    assert!(!killed.status.success(), "{}", text(&killed));
    let finish = "`unitgen destroy ugkilla/live --volumes` finishes it";
    let (code, shown) = plan(&[a]);
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains(finish), "plan said\n{shown}");
    let listed = ls("destroy --volumes killed");
    assert!(listed.contains(finish), "ls said\n{listed}");
    let said = ok(&["destroy", a], "destroy after destroy --volumes");
    assert!(said.contains("finishing the destroy"), "{said}");
    assert!(!said.contains("volumes kept"), "{said}");
    // Its units were gone already: nothing failed.
    assert!(!said.contains("FAILED"), "{said}");

    // A site's apply killed between its apps (the first applied and
    // recorded, the second untouched): the site's plan and the second
    // app's differ, the first's does not; the next apply finishes the
    // second and leaves the first as it is.
    world.write(&site(ports, "v3"));
    let killed = world.unitgen_with(&apply, &[("UNITGEN_FAULT", "after-record")]);
    assert!(!killed.status.success(), "{}", text(&killed));
    serves(ports.0, "v3", "the first app, applied before the kill");
    serves(ports.1, "v2", "the second app, not yet applied");
    let (code, shown) = plan(&["--host", "h1"]);
    assert_eq!(code, Some(2), "killed between apps: plan said\n{shown}");
    assert_eq!(plan(&[a]).0, Some(0), "killed between apps: {a}");
    let (code, shown) = plan(&["ugkillb/live"]);
    assert_eq!(code, Some(2), "killed between apps: plan said\n{shown}");
    let first = container_id(web).unwrap();
    let said = ok(&apply, "after a site apply killed between apps");
    assert!(said.contains("host h1: 2 of 2 instances"), "{said}");
    serves(ports.0, "v3", "ugkilla after the next site apply");
    serves(ports.1, "v3", "ugkillb after the next site apply");
    assert_eq!(container_id(web), Some(first), "ugkilla was replaced again");
    assert_eq!(plan(&["--host", "h1"]).0, Some(0));
}

/// The stand-ins kept with a revision (`standins.json`) damaged, or lost
/// to a kill between recording the revision and keeping them: `restart`
/// and `rollback` took them for none and restarted the routed service
/// under the router (502s) with no more than a missing zero-downtime
/// line. Now they refuse, naming the file and why, with nothing changed;
/// `apply` (the template renders the revision) keeps them again, and the
/// restart then hands over without a failed request. A damaged revision
/// rolled back to is refused the same way; moved away as the error says,
/// the rollback goes ahead.
#[test]
fn damaged_stand_ins_are_refused_and_kept_again_by_apply() {
    let (world, ports) = applied_routed("v1");
    let app = world.app();
    world.write(&routed(&world, "v2", ports));
    world.apply_ok("live");
    served(ports, "v2");
    let web = format!("{app}-live-web");
    let revisions = (world.sandbox.root()).join(format!("var/lib/unitgen/{app}-live/revisions"));
    let stored = |n: u32| revisions.join(format!("{n:04}/standins.json"));
    let kept = std::fs::read_to_string(stored(2)).unwrap();

    for damage in ["{\"routes_file\": \"/x\", \"serv", ""] {
        std::fs::write(stored(2), damage).unwrap();
        let before = container_id(&web).unwrap();
        let restart = world.unitgen(&["restart", "live"]);
        let said = text(&restart);
        assert_eq!(restart.status.code(), Some(1), "{said}");
        assert!(said.contains("0002/standins.json: unreadable"), "{said}");
        assert!(said.contains("nothing on the host was changed"), "{said}");
        assert!(said.contains("`unitgen apply`"), "{said}");
        assert_eq!(container_id(&web).as_deref(), Some(before.as_str()));
        let apply = world.unitgen(&["apply", "live"]);
        assert!(apply.status.success(), "{}", text(&apply));
        assert!(
            text(&apply).contains("kept the stand-ins of revision 2 again"),
            "{}",
            text(&apply)
        );
        assert_eq!(std::fs::read_to_string(stored(2)).unwrap(), kept);
    }
    // The revision's own record damaged: which stand-ins it kept is
    // unknown, and restart refused (it restarted the routed service under
    // the router), with the way out, until the record is whole again.
    let record = revisions.join("0002/revision.json");
    let recorded = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, &recorded[..recorded.len() / 2]).unwrap();
    let before = container_id(&web).unwrap();
    let restart = world.unitgen(&["restart", "live"]);
    let said = text(&restart);
    assert_eq!(restart.status.code(), Some(1), "{said}");
    assert!(said.contains("cannot restart"), "{said}");
    assert!(said.contains("0002/revision.json: unreadable"), "{said}");
    assert!(said.contains("to go on without that revision"), "{said}");
    assert!(said.contains("nothing on the host was changed"), "{said}");
    assert_eq!(container_id(&web).as_deref(), Some(before.as_str()));
    std::fs::write(&record, recorded).unwrap();

    // Lost (killed before it kept them): kept again too.
    std::fs::remove_file(stored(2)).unwrap();
    let apply = world.unitgen(&["apply", "live"]);
    assert!(
        text(&apply).contains("kept the stand-ins"),
        "{}",
        text(&apply)
    );
    let load = Load::start(ports.0, DOMAIN);
    let restart = world.unitgen(&["restart", "live"]);
    assert!(restart.status.success(), "{}", text(&restart));
    assert_eq!(bodies(&load.stop()), ["v2"]);

    // Revision 1's damaged: its rollback is refused, then goes ahead once
    // the file is moved away as the error says.
    std::fs::write(stored(1), "[1, 2").unwrap();
    let before = container_id(&web).unwrap();
    // Laid out for 40 columns, the `mv` the error suggests stays whole.
    let rollback = world.unitgen_with(&["rollback", "live"], &[("COLUMNS", "40")]);
    let said = text(&rollback);
    assert_eq!(rollback.status.code(), Some(1), "{said}");
    assert!(said.contains("0001/standins.json:"), "{said}");
    assert!(said.contains("nothing on the host was changed"), "{said}");
    assert_eq!(container_id(&web).as_deref(), Some(before.as_str()));
    run_as_copied(&said, "mv");
    let moved = stored(1).with_extension("json.unreadable");
    let rollback = world.unitgen(&["rollback", "live"]);
    assert!(rollback.status.success(), "{}", text(&rollback));
    served(ports, "v1");
    assert_eq!(std::fs::read_to_string(moved).unwrap(), "[1, 2");
}

/// Two instances of a host's router: `a` and `b` route their own names.
fn two_routed(world: &World, (http, https): (u16, u16), ports: (u16, u16)) -> String {
    format!(
        r#"app: ugrace
services:
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo "{{{{ name }}}}" > /www/index.html && exec httpd -f -p 8000 -h /www']
    init: true
    ports: ["127.0.0.1:{{{{ port }}}}:8000"]
instances:
  a:
    name: a
    port: {a}
    routes:
      - {{hosts: a.race.test, service: web, port: 8000, tls: off}}
  b:
    name: b
    port: {b}
    routes:
      - {{hosts: b.race.test, service: web, port: 8000, tls: off}}
router:
  image: {image}
  directory: {dir}
  address: 127.0.0.1
  http_port: {http}
  https_port: {https}
"#,
        a = ports.0,
        b = ports.1,
        image = traefik::IMAGE,
        dir = world.sandbox.shared_dir().join("router").display(),
    )
}

/// One instance's destroy and another's apply at once, both rewriting the
/// host's router: the destroy found no other instance's routes (the
/// apply's were not written yet) and removed the router, while the apply,
/// finding it still there, said "unitgen-router.service: up to date" (or
/// started it, to be removed under it): `b` applied, its name unrouted.
/// The router is now changed under a host-wide lock, its decision taken
/// again under it: whichever comes second sees what the first left. The
/// destroy's router stop is made slow (a drop-in) and the apply is run
/// inside it.
#[test]
fn a_destroy_and_another_instances_apply_leave_the_router_serving() {
    let mut world = World::new("ugrace");
    world.own_router();
    let router_ports = (free_port(), free_port());
    world.write(&two_routed(
        &world,
        router_ports,
        (free_port(), free_port()),
    ));
    world.apply_ok("a");
    let router = "unitgen-router.service";
    let drop_in = world.unit_file(&format!("{router}.d"));
    std::fs::create_dir_all(&drop_in).unwrap();
    std::fs::write(
        drop_in.join("slow-stop.conf"),
        "[Service]\nExecStopPost=/bin/sleep 8\n",
    )
    .unwrap();
    assert!(world.sandbox.systemctl(["daemon-reload"]).status.success());

    let (destroyed, applied) = std::thread::scope(|scope| {
        let destroy = scope.spawn(|| world.unitgen(&["destroy", "a"]));
        let stopping = wait_for(Duration::from_secs(90), || {
            (world.active(router) == "deactivating").then_some(())
        });
        assert!(stopping.is_some(), "the destroy never stopped the router");
        let applied = world.unitgen(&["apply", "b", "--settle", "0"]);
        (destroy.join().unwrap(), applied)
    });
    assert!(destroyed.status.success(), "{}", text(&destroyed));
    std::fs::remove_dir_all(&drop_in).unwrap();
    assert!(world.sandbox.systemctl(["daemon-reload"]).status.success());

    assert!(applied.status.success(), "{}", text(&applied));
    assert_eq!(world.active(router), "active", "{}", text(&applied));
    assert!(world.unit_file(router).exists());
    wait_until(
        Duration::from_secs(60),
        "the router serves b",
        || get("http", "b.race.test", router_ports.0, "/", None),
        |a| a.status == 200 && a.body.trim() == "b",
    );
    let plan = world.unitgen(&["plan", "b"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
}

/// The record of a routed apply's switch (`handover.json`) damaged while
/// the apply was killed: every command stopped with its path and a parse
/// error, and nothing got the stand-in off the host. The handover is now
/// read from the host: `plan` and `status` say it did not finish, its
/// record unreadable, and `apply` finishes it from the stand-in units it
/// finds and the routes unit (which writes the routes file back), with
/// every request answered; the damaged record is kept aside. Killed with
/// the traffic on the stand-in, and before the switch.
#[test]
fn a_damaged_handover_record_is_told_and_finished_from_the_host() {
    let (world, ports) = applied_routed("v0");
    served(ports, "v0");
    let handover = Handover::of(&world);
    let Handover {
        standin, record, ..
    } = &handover;
    let routes = handover.routes.as_str();
    let kept = record.with_file_name("handover.json.unreadable");
    let routes_now = || handover.routes_now();
    let apply = ["apply", "live", "--settle", "1"];

    for (version, damage) in [("v1", "{\"routes_file\": \"/x\", \"prev"), ("v2", "")] {
        world.write(&routed(&world, version, ports));
        if version == "v1" {
            let killed = world.unitgen_with(&apply, &[("UNITGEN_FAULT", "after-switch")]);
            assert!(!killed.status.success(), "{}", text(&killed));
            assert_ne!(routes_now(), routes, "the traffic is on the stand-in");
        } else {
            kill_when(&world, &apply, "the stand-in runs, not yet routed", || {
                is_running(standin) && routes_now() == routes
            });
        }
        let at = format!("{version}, record damaged as {damage:?}");
        std::fs::write(record, damage).unwrap();

        let plan = world.unitgen(&["plan", "live"]);
        let said = text(&plan);
        assert_eq!(plan.status.code(), Some(2), "{at}: plan said\n{said}");
        assert!(
            said.contains("zero-downtime switch did not finish, its record unreadable")
                && said.contains("handover.json: unreadable"),
            "{at}: plan said\n{said}"
        );
        assert!(!said.contains("no unit of it runs"), "{at}: {said}");
        let status = world.unitgen(&["status", "live"]);
        let said = text(&status);
        assert_eq!(status.status.code(), Some(3), "{at}: {said}");
        assert!(said.contains("handover.json: unreadable"), "{at}: {said}");
        assert!(!said.contains("no unit of it runs"), "{at}: {said}");

        let load = Load::start(ports.0, DOMAIN);
        let next = world.unitgen(&apply);
        assert!(next.status.success(), "{at}: {}", text(&next));
        let answers = load.stop();
        assert_eq!(bodies(&answers).last(), Some(&version.to_string()), "{at}");
        handover.assert_finished(&at);
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), damage, "{at}");
        let plan = world.unitgen(&["plan", "live"]);
        assert_eq!(plan.status.code(), Some(0), "{at}: {}", text(&plan));
        served(ports, version);
    }
}

/// `web` answers with its version (no router).
fn versioned(version: &str) -> String {
    format!(
        r#"app: ugnewer
services:
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo {version} > /www/index.html && exec httpd -f -p 80 -h /www']
    init: true
instances:
  live: {{}}
"#
    )
}

/// A state folder a newer unitgen wrote (a revision with a field this one
/// does not know, a command under way of a kind it does not know): plan
/// offered a rollback's "move the revision out of the history", apply took
/// the newer command's record for damage and set it aside, and a field
/// this one did not know was dropped at its next write. Now every command
/// refuses, naming the file and the newer unitgen, and changes nothing;
/// the records stay as they were.
#[test]
fn a_state_folder_a_newer_unitgen_wrote_is_refused_and_kept() {
    let world = World::new("ugnewer");
    world.write(&versioned("one"));
    world.apply_ok("live");
    world.write(&versioned("two"));
    let folder = world.sandbox.root().join("var/lib/unitgen/ugnewer-live");
    let revision = folder.join("revisions/0001/revision.json");
    let as_written = std::fs::read_to_string(&revision).unwrap();
    let unit = world.sandbox.unit_dir().join("ugnewer-live-web.service");
    let unit_before = std::fs::read_to_string(&unit).unwrap();
    let refused = |args: &[&str]| {
        let (code, said) = world.unitgen_said(args);
        assert_eq!(code, Some(1), "{args:?}: {said}");
        assert!(
            said.contains("written by a newer unitgen"),
            "{args:?}: {said}"
        );
        assert!(!said.contains("up to date"), "{args:?}: {said}");
        said
    };
    let unchanged = |what: &str| {
        assert_eq!(
            std::fs::read_to_string(&unit).unwrap(),
            unit_before,
            "{what}"
        );
        assert_eq!(
            world.exec("live", "web", "cat /www/index.html"),
            "one\n",
            "{what}"
        );
        assert_eq!(world.active("ugnewer-live-web.service"), "active", "{what}");
    };

    let newer = as_written.replacen('{', "{\n  \"format\": 2,", 1);
    std::fs::write(&revision, &newer).unwrap();
    for args in [
        &["plan", "live"][..],
        &["apply", "live"],
        &["rollback", "live", "--to", "1"],
        &["destroy", "live"],
    ] {
        let said = refused(args);
        assert!(said.contains("revisions/0001/revision.json"), "{said}");
        assert!(!said.contains("mv "), "{said}");
        unchanged(args[0]);
    }
    assert_eq!(std::fs::read_to_string(&revision).unwrap(), newer);
    std::fs::write(&revision, &as_written).unwrap();

    let intent = folder.join("applying.json");
    let record =
        r#"{"command": {"migrate": {"to": 2}}, "digest": "", "started_at": 1, "restart": []}"#;
    std::fs::write(&intent, record).unwrap();
    for args in [
        &["plan", "live"][..],
        &["apply", "live"],
        &["destroy", "live"],
    ] {
        let said = refused(args);
        assert!(said.contains("applying.json"), "{said}");
        unchanged(args[0]);
    }
    assert_eq!(
        std::fs::read_to_string(&intent).unwrap(),
        record,
        "kept as it is"
    );
    assert!(!folder.join("applying.json.unreadable").exists());

    // Its command finished (by the newer unitgen), this one goes on.
    std::fs::remove_file(&intent).unwrap();
    world.apply_ok("live");
    assert_eq!(world.exec("live", "web", "cat /www/index.html"), "two\n");
}

/// An apply that takes away an instance's routes (and with them the
/// host's only use of its router), killed once it recorded its revision,
/// before it removed the router: `plan` said "up to date" while the router
/// still ran, and no later apply removed it (the routes unit that named
/// its folder was gone). Now `plan` says the removal is pending, and the
/// next apply finishes it: the router gone, as after an apply not killed.
#[test]
fn an_apply_that_removes_the_routes_killed_before_the_router_goes_is_finished_by_the_next() {
    let (world, ports) = applied_routed("one");
    let app = world.app();
    served(ports, "one");
    let router = "unitgen-router.service";
    let unrouted = routed(&world, "two", ports);
    let unrouted =
        unrouted[..unrouted.find("instances:").unwrap()].to_string() + "instances:\n  live: {}\n";
    world.write(&unrouted);
    let killed = world.unitgen_with(
        &["apply", "live", "--settle", "1"],
        &[("UNITGEN_FAULT", "after-record")],
    );
    assert!(!killed.status.success(), "{}", text(&killed));
    assert_eq!(world.active(router), "active");

    let plan = world.unitgen(&["plan", "live"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(
        text(&plan).contains(&format!(
            "an earlier apply that took {app}-live's routes away did not finish"
        )),
        "{}",
        text(&plan)
    );

    let next = world.unitgen(&["apply", "live", "--settle", "1"]);
    assert!(next.status.success(), "{}", text(&next));
    assert_ne!(world.active(router), "active", "{}", text(&next));
    assert!(!world.unit_file(router).exists());
    let plan = world.unitgen(&["plan", "live"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
}

/// A newer unitgen's records beside its routed services (a revision's
/// stand-ins, a handover under way: a field this one does not know), a
/// file in the state folder this one never writes, and a revision
/// recorded without its stand-ins (as an older unitgen, or a kill between
/// the two writes, left it). The newer records were read without what
/// this one did not know: the handover finished and its record removed,
/// the stand-ins written again by the next apply, and `ls` showed no
/// command under way; the unknown file was passed over in silence; the
/// missing stand-ins left `plan` "up to date" while `restart` would
/// restart the service under the router. Now every command refuses the
/// newer records and keeps them, `ls` names them; plan, status and ls
/// name the unknown file; plan says the stand-ins are not kept, and apply
/// keeps them again.
#[test]
fn a_newer_unitgens_stand_ins_and_handover_are_refused_and_unknown_files_told() {
    let (world, ports) = applied_routed("v0");
    let app = world.app();
    served(ports, "v0");
    let state = (world.sandbox.root()).join(format!("var/lib/unitgen/{app}-live"));
    let serves_v0 = |what: &str| {
        let answer = get("http", DOMAIN, ports.0, "/", None);
        assert!(
            answer
                .as_ref()
                .is_some_and(|a| a.status == 200 && a.body.trim() == "v0"),
            "{what}: the router answered {:?}",
            answer.map(|a| (a.status, a.body))
        );
    };

    let unknown = state.join("migrating.json");
    std::fs::write(&unknown, "{}").unwrap();
    let (code, said) = world.unitgen_said(&["plan", "live"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("migrating.json") && said.contains("does not know it"),
        "{said}"
    );
    let (code, said) = world.unitgen_said(&["status", "live"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("migrating.json"), "{said}");
    assert!(text(&world.ls()).contains("migrating.json"));
    std::fs::remove_file(&unknown).unwrap();

    let stored = state.join("revisions/0001/standins.json");
    let as_written = std::fs::read_to_string(&stored).unwrap();
    std::fs::remove_file(&stored).unwrap();
    let (code, said) = world.unitgen_said(&["plan", "live"]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("does not keep the stand-ins"), "{said}");
    let (code, said) = world.unitgen_said(&["apply", "live"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("kept the stand-ins of revision 1 again"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), as_written);
    let (code, said) = world.unitgen_said(&["plan", "live"]);
    assert_eq!(code, Some(0), "{said}");

    world.write(&routed(&world, "v1", ports));
    let refused = |args: &[&str], file: &str| {
        let (code, said) = world.unitgen_said(args);
        assert_eq!(code, Some(1), "{args:?}: {said}");
        assert!(
            said.contains("written by a newer unitgen") && said.contains(file),
            "{args:?}: {said}"
        );
        assert!(!said.contains("up to date"), "{args:?}: {said}");
        serves_v0(args[0]);
    };
    let newer = as_written.replacen('{', "{\n  \"format\": 2,", 1);
    std::fs::write(&stored, &newer).unwrap();
    for args in [
        &["plan", "live"][..],
        &["status", "live"],
        &["apply", "live"],
        &["restart", "live"],
        &["rollback", "live", "--to", "1"],
    ] {
        if args[0] == "status" {
            let (_, said) = world.unitgen_said(args);
            assert!(said.contains("written by a newer unitgen"), "{said}");
        } else {
            refused(args, "standins.json");
        }
    }
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), newer);
    std::fs::write(&stored, &as_written).unwrap();

    let record = state.join("handover.json");
    let routes_file = (world.sandbox.shared_dir()).join(format!("router/dynamic/{app}-live.yaml"));
    let newer = serde_json::json!({
        "routes_file": routes_file,
        "previous": std::fs::read_to_string(&routes_file).unwrap(),
        "switched": null,
        "standins": [],
        "probes": [],
        "drained_at": 1,
    })
    .to_string();
    std::fs::write(&record, &newer).unwrap();
    for args in [
        &["plan", "live"][..],
        &["status", "live"],
        &["apply", "live"],
        &["restart", "live"],
        &["rollback", "live", "--to", "1"],
        &["destroy", "live"],
    ] {
        refused(args, "handover.json");
    }
    let ls = text(&world.ls());
    assert!(
        ls.contains("handover.json") && ls.contains("written by a newer unitgen"),
        "{ls}"
    );
    assert_eq!(std::fs::read_to_string(&record).unwrap(), newer);
    assert!(
        !state.join("applying.json").exists(),
        "destroy recorded nothing"
    );

    // Its command finished (by the newer unitgen), this one goes on.
    std::fs::remove_file(&record).unwrap();
    world.apply_ok("live");
    served(ports, "v1");
}
