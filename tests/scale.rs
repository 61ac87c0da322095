//! One instance of a larger app (40 services, each in its own unit, two
//! with sidekicks) against a sandboxed systemd and real containers: the
//! limits of a bus, an engine or a command line that a test of three
//! services never reaches. What a user checks of such an instance: apply
//! starts all, plan and status say so, a change touches only what changed,
//! what was stopped by hand is found and repaired, restart and destroy act
//! on every unit, and an apply killed halfway is finished by the next.

#[path = "support/lib.rs"]
mod support;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Output;
use std::time::Duration;

use support::docker::container_id;
use support::etcd::Etcd;
use support::net::free_port;
use support::wait_for;
use support::world::{World, serves};

const SERVICES: usize = 40;

/// Service `i` of the app: `s00` … `s39`.
fn name(i: usize) -> String {
    format!("s{i:02}")
}

/// The services with a published port (each is announced in etcd by a
/// sidekick).
const PUBLISHED: [usize; 2] = [0, 20];
/// The services with a healthcheck; the next in their chain waits for them
/// to be healthy.
const CHECKED: [usize; 3] = [7, 17, 27];

/// Whether service `i` has a named volume.
fn has_volume(i: usize) -> bool {
    i % 4 == 3
}

/// Each service's version: `v1` unless set.
type Versions = BTreeMap<usize, &'static str>;

fn version(versions: &Versions, i: usize) -> &'static str {
    versions.get(&i).copied().unwrap_or("v1")
}

/// 40 services in eight chains of five (each service after the one before
/// it; the first of each chain after `s00`), each serving `NAME VERSION`;
/// those with a volume also serve `/written`: what the first of their
/// containers wrote into it.
fn template(app: &str, etcd: &Etcd, ports: &[u16], versions: &Versions) -> String {
    let mut yaml = format!("app: {app}\nservices:\n");
    for i in 0..SERVICES {
        let service = name(i);
        let mut script = String::from("mkdir -p /www && echo $SERVICE $VERSION > /www/index.html");
        if has_volume(i) {
            script.push_str(
                " && (test -f /data/first || echo $SERVICE $VERSION > /data/first) \
                 && cp /data/first /www/written",
            );
        }
        if CHECKED.contains(&i) {
            script.push_str(" && echo > /ok");
        }
        script.push_str(" && exec httpd -f -p 80 -h /www");
        yaml.push_str(&format!(
            "  {service}:\n    image: unitgen-test/busybox:1\n    command: [sh, -c, '{script}']\n    \
             init: true\n    environment: {{SERVICE: {service}, VERSION: {}}}\n",
            version(versions, i)
        ));
        if let Some(at) = PUBLISHED.iter().position(|&p| p == i) {
            yaml.push_str(&format!("    ports: [\"127.0.0.1:{}:80\"]\n", ports[at]));
        }
        if has_volume(i) {
            yaml.push_str(&format!("    volumes: [\"data{i}:/data\"]\n"));
        }
        if CHECKED.contains(&i) {
            yaml.push_str("    healthcheck: {test: test -f /ok, interval: 1s, retries: 3}\n");
        }
        match i {
            0 => {}
            _ if i % 5 == 0 => yaml.push_str("    depends_on: [s00]\n"),
            _ if CHECKED.contains(&(i - 1)) => yaml.push_str(&format!(
                "    depends_on: {{{}: {{condition: service_healthy}}}}\n",
                name(i - 1)
            )),
            _ => yaml.push_str(&format!("    depends_on: [{}]\n", name(i - 1))),
        }
    }
    yaml.push_str(&format!(
        "instances:\n  live: {{}}\netcd:\n  endpoints: {}\n  api: v3\n  ttl: 5s\n  wait: 30s\n",
        etcd.endpoint()
    ));
    yaml
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn plan(world: &World) -> (Option<i32>, String) {
    let out = world.unitgen(&["plan", "live"]);
    (out.status.code(), text(&out))
}

/// Each service's container id (None: no container).
fn ids(world: &World) -> Vec<Option<String>> {
    (0..SERVICES)
        .map(|i| container_id(&world.container("live", &name(i))))
        .collect()
}

/// The names of the app's containers, running or not (by unitgen's labels).
fn containers(app: &str, running_only: bool) -> Vec<String> {
    let label = format!("unitgen.app={app}");
    let listed = support::docker::list_containers(!running_only, &[("label", &label)]);
    let mut names: Vec<String> = (listed.iter())
        .filter_map(|json| json["Names"][0].as_str()?.strip_prefix('/'))
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// Every service runs and serves its version to the others by its name on
/// the instance's network (asked from `s00`, in one `docker exec`), those
/// with a volume what their first container wrote into it (the volume
/// outlives containers); the published ones serve on the host.
fn all_serve(world: &World, app: &str, ports: &[u16], versions: &Versions) {
    let expected: Vec<String> = (0..SERVICES)
        .map(|i| format!("{app}-live-{}", name(i)))
        .collect();
    assert_eq!(containers(app, true), expected);
    let mut ask = String::new();
    let mut answers = String::new();
    for i in 0..SERVICES {
        let service = name(i);
        ask.push_str(&format!(
            "wget -qO- http://{service}/ || echo {service} down; "
        ));
        answers.push_str(&format!("{service} {}\n", version(versions, i)));
        if has_volume(i) {
            ask.push_str(&format!(
                "wget -qO- http://{service}/written || echo {service} wrote nothing; "
            ));
            answers.push_str(&format!("{service} v1\n"));
        }
    }
    // (Waited for: a server a unit just started may not listen yet.)
    world.exec_until("live", "s00", &ask, &answers);
    for (&port, &i) in ports.iter().zip(&PUBLISHED) {
        assert_eq!(
            serves(port),
            Some(format!("{} {}\n", name(i), version(versions, i))),
            "{} on the host",
            name(i)
        );
    }
}

/// The instance's unit files in the sandbox's unit directory.
fn unit_files(world: &World, app: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(world.sandbox.unit_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&format!("{app}-live")))
        .collect();
    names.sort();
    names
}

/// `status` reads each sidekick's announcement from etcd (an `etcdctl`
/// that waits up to its timeouts when etcd does not answer) side by side:
/// one after the other, an instance of many announced services waited that
/// long for each. Seen through an `etcdctl` that takes a second.
fn sidekicks_are_read_side_by_side(world: &World) {
    let bin = support::tempdir("slow-etcdctl-");
    let log = bin.path().join("calls");
    let slow = bin.path().join("etcdctl");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\necho start >> {log}\nsleep 1\n/usr/bin/etcdctl \"$@\"\nstatus=$?\n\
             echo end >> {log}\nexit $status\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let status = world.unitgen_with(&["status", "live"], &[("PATH", &path)]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let calls = std::fs::read_to_string(&log).unwrap();
    let starts = PUBLISHED.len();
    assert_eq!(
        calls,
        format!("{}{}", "start\n".repeat(starts), "end\n".repeat(starts)),
        "one read after the other"
    );
}

#[test]
fn an_instance_of_forty_services_is_applied_changed_repaired_restarted_and_destroyed() {
    let app = "ugscale";
    let etcd = Etcd::start(false);
    let world = World::new(app);
    let ports = [free_port(), free_port()];
    let mut versions = Versions::new();
    world.write(&template(app, &etcd, &ports, &versions));

    // From scratch: all start and serve, and plan and status say so.
    world.apply_ok("live");
    all_serve(&world, app, &ports, &versions);
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(0), "{shown}");
    let status = world.unitgen(&["status", "live"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let table = String::from_utf8_lossy(&status.stdout);
    for i in 0..SERVICES {
        let row = format!("  {} ", name(i));
        assert!(table.lines().any(|l| l.starts_with(&row)), "{table}");
    }
    // The sidekicks announce once their service runs: status shows what
    // etcd holds.
    let announced = wait_for(Duration::from_secs(60), || {
        let json = world.unitgen(&["status", "live", "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        let rows = json["units"].as_array().unwrap().clone();
        (PUBLISHED.iter().zip(ports))
            .all(|(&i, port)| {
                let row = (rows.iter()).find(|row| row["service"] == name(i).as_str());
                let hosts = row.and_then(|row| row["announced"]["hosts"].as_object());
                hosts.is_some_and(|hosts| {
                    (hosts.values()).any(|address| *address == format!("127.0.0.1:{port}").as_str())
                })
            })
            .then_some(())
    });
    assert!(
        announced.is_some(),
        "not announced within 60s: {}",
        world
            .sandbox
            .journal(&format!("{app}-live-s00-announce.service"))
    );
    let json = world.unitgen(&["status", "live", "--json"]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["as_applied"], true, "{json}");
    let rows = json["units"].as_array().unwrap();
    let row = |field: &str, i: usize| {
        (rows.iter())
            .find(|row| row[field] == name(i).as_str())
            .unwrap_or_else(|| panic!("no {field} {} in {json}", name(i)))
    };
    for i in 0..SERVICES {
        assert_eq!(row("service", i)["active_state"], "active", "{json}");
        assert_eq!(row("service", i)["as_applied"], true, "{json}");
    }
    for i in CHECKED {
        assert_eq!(row("service", i)["container"]["health"], "healthy");
    }
    for i in PUBLISHED {
        assert_eq!(row("announces", i)["active_state"], "active", "{json}");
    }
    sidekicks_are_read_side_by_side(&world);

    // A change to five services replaces only their containers.
    let before = ids(&world);
    let changed = [3, 9, 15, 20, 38];
    for i in changed {
        versions.insert(i, "v2");
    }
    world.write(&template(app, &etcd, &ports, &versions));
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    for i in 0..SERVICES {
        let unit = format!("{app}-live-{}.service", name(i));
        assert_eq!(
            shown.contains(&unit),
            changed.contains(&i),
            "{unit} in\n{shown}"
        );
    }
    world.apply_ok("live");
    let after = ids(&world);
    for i in 0..SERVICES {
        assert_eq!(
            before[i] != after[i],
            changed.contains(&i),
            "{}: {:?} then {:?}",
            name(i),
            before[i],
            after[i]
        );
    }
    all_serve(&world, app, &ports, &versions);
    assert_eq!(plan(&world).0, Some(0));

    // Among the forty, one unit stopped and one container paused by hand.
    let stopped = format!("{app}-live-s31.service");
    world.sandbox.systemctl(["stop", &stopped]);
    let paused = world.container("live", "s33");
    support::docker::pause(&paused);
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(&format!("* {stopped} (inactive (dead): start)")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("its container {paused} is paused: unpause")),
        "{shown}"
    );
    let status = world.unitgen(&["status", "live"]);
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));
    let table = String::from_utf8_lossy(&status.stdout);
    let marked: Vec<&str> = table.lines().filter(|l| l.starts_with("! s")).collect();
    assert!(
        marked.len() == 2 && marked[0].starts_with("! s31 ") && marked[1].starts_with("! s33 "),
        "{table}"
    );
    world.apply_ok("live");
    all_serve(&world, app, &ports, &versions);
    assert_eq!(plan(&world).0, Some(0));

    // restart gives every service a new container.
    let before = ids(&world);
    let out = world.unitgen(&["restart", "live"]);
    assert!(out.status.success(), "{}", text(&out));
    let after = ids(&world);
    for i in 0..SERVICES {
        assert!(
            after[i].is_some() && before[i] != after[i],
            "{} not restarted",
            name(i)
        );
    }
    all_serve(&world, app, &ports, &versions);
    assert_eq!(plan(&world).0, Some(0));

    // An apply killed (-9) while it replaces every container: plan says
    // so, and the next apply finishes it.
    for i in 0..SERVICES {
        versions.insert(i, "v3");
    }
    world.write(&template(app, &etcd, &ports, &versions));
    let before = ids(&world);
    let mut apply = world.spawn(&["apply", "live", "--settle", "2"]);
    let midway = wait_for(Duration::from_secs(60), || {
        let now = ids(&world);
        (now.iter().zip(&before))
            .any(|(now, before)| now != before)
            .then_some(())
    });
    assert!(midway.is_some(), "the apply replaced no container");
    apply.kill().unwrap();
    let killed = apply.wait().unwrap();
    assert_eq!(killed.signal(), Some(9), "the apply had ended: {killed}");
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    // Once the jobs the killed apply left with systemd are done.
    let idle = wait_for(Duration::from_secs(120), || {
        let jobs = world.sandbox.systemctl(["list-jobs", "--no-legend"]);
        (String::from_utf8_lossy(&jobs.stdout).trim().is_empty()).then_some(())
    });
    assert!(idle.is_some(), "systemd still has jobs after two minutes");
    // Every unit may now run what the killed apply wrote: its revision is
    // not recorded, so neither says the instance is as applied.
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("an earlier apply did not finish"), "{shown}");
    let status = world.unitgen(&["status", "live"]);
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));
    world.apply_ok("live");
    all_serve(&world, app, &ports, &versions);
    assert_eq!(plan(&world).0, Some(0));

    // destroy removes every unit and container.
    let out = world.unitgen(&["destroy", "live"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(unit_files(&world, app), Vec::<String>::new());
    assert_eq!(containers(app, false), Vec::<String>::new());
    let status = world.unitgen(&["status", "live"]);
    assert_eq!(status.status.code(), Some(4), "{}", text(&status));
}
