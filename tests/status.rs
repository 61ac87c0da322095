//! `unitgen status` and `destroy` against a sandboxed systemd: exit codes a
//! script can use, and both working from what is installed when the
//! template is broken or gone; `plan --json`, what a script reads of a plan.

#[path = "support/lib.rs"]
mod support;

use std::process::Output;

use support::docker::{container_id, docker};
use support::world::World;

const APP: &str = "app: ugstat
services:
  api:
    image: unitgen-test/busybox:1
    command: [sleep, \"1000000\"]
    init: true
  worker:
    image: unitgen-test/busybox:1
    command: [sleep, \"1000000\"]
    init: true
    volumes: [\"data:/data\"]
instances:
  live: {}
";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn status(world: &World) -> (Option<i32>, String) {
    let out = world.unitgen(&["status", "live"]);
    (out.status.code(), text(&out))
}

// Issue 15 item 6: status exited 0 with a unit failed or nothing installed.
// `history` of an instance never applied exited 0 while status said 4.
#[test]
fn status_exits_as_systemctl_status_does() {
    let world = World::new("ugstat");
    world.write(APP);
    let (code, said) = status(&world);
    assert_eq!(code, Some(4), "not installed: {said}");
    assert!(said.contains("ugstat-live is not installed"), "{said}");
    // history agrees (it exited 0 here while status said 4).
    for args in [&["history", "live"][..], &["history", "live", "--json"]] {
        let out = world.unitgen(args);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", text(&out));
    }

    world.apply_ok("live");
    let (code, said) = status(&world);
    assert_eq!(code, Some(0), "{said}");
    let history = world.unitgen(&["history", "live"]);
    assert_eq!(history.status.code(), Some(0), "{}", text(&history));
    assert!(said.contains("ugstat-live: revision 1\n"), "{said}");
    let json = world.unitgen(&["status", "live", "--json"]);
    assert_eq!(json.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["as_applied"], true);

    world
        .sandbox
        .systemctl(["stop", "ugstat-live-worker.service"]);
    let (code, said) = status(&world);
    assert_eq!(code, Some(3), "a unit is not active: {said}");
    assert!(said.contains("inactive (dead)"), "{said}");
    // Something for plan and status to find in what Docker records: a
    // limit changed by hand, and the stopped worker's volume.
    let updated = docker([
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "ugstat-live-api",
    ]);
    assert!(updated.status.success(), "{}", text(&updated));
    for args in [
        &["status", "live", "--json"][..],
        &["plan", "live", "--json"],
    ] {
        same_through_the_cli(&world, args);
    }
    world.apply_ok("live");
    assert_eq!(status(&world).0, Some(0));

    // Issue 7 item 8: a garbage revision.json read as "none recorded".
    let revision = world
        .sandbox
        .root()
        .join("var/lib/unitgen/ugstat-live/revisions/0001/revision.json");
    let good = std::fs::read_to_string(&revision).unwrap();
    std::fs::write(&revision, "garbage").unwrap();
    let (code, said) = status(&world);
    assert_eq!(code, Some(3), "{said}");
    assert!(
        said.contains(&format!(
            "revision unknown: {}: unreadable",
            revision.display()
        )),
        "{said}"
    );
    std::fs::write(&revision, good).unwrap();
    assert_eq!(status(&world).0, Some(0));
}

/// unitgen asks a local engine over its socket and any other through the
/// docker CLI: both must read the same of containers (state, limits,
/// networks, image ids), the instance's network, volumes and images. A
/// `currentContext` in the units' DOCKER_CONFIG makes unitgen leave the
/// engine to the CLI, which itself takes the units' DOCKER_HOST over a
/// context: both reach this engine.
fn same_through_the_cli(world: &World, args: &[&str]) {
    let through_socket = world.unitgen(args);
    let config = world.sandbox.root().join("etc/ugstat-docker");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        r#"{"currentContext": "elsewhere"}"#,
    )
    .unwrap();
    let set = (world.sandbox).systemctl(["set-environment", "DOCKER_CONFIG=/etc/ugstat-docker"]);
    assert!(set.status.success());
    let through_cli = world.unitgen(args);
    let unset = (world.sandbox).systemctl(["unset-environment", "DOCKER_CONFIG"]);
    assert!(unset.status.success());
    let read = |out: &Output| {
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)));
        (out.status.code(), json)
    };
    assert_eq!(read(&through_socket), read(&through_cli), "{args:?}");
}

// `plan` had no --json (status, ls and history had): a CI job or a deploy
// script could learn only that something differs (exit 2), not what, short
// of scraping the diff. `plan --json` says what apply would do to each unit,
// with the same exit code.
#[test]
fn plan_json_tells_a_script_what_apply_would_do_to_each_unit() {
    let world = World::new("ugpjson");
    world.write(&APP.replace("ugstat", "ugpjson"));
    let plan = || {
        let out = world.unitgen(&["plan", "live", "--json"]);
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        (out.status.code(), json)
    };
    let ops = |json: &serde_json::Value| -> Vec<(String, String)> {
        (json["units"].as_array().unwrap().iter())
            .map(|u| {
                (
                    u["op"].as_str().unwrap().into(),
                    u["unit"].as_str().unwrap().into(),
                )
            })
            .collect()
    };

    let (code, json) = plan();
    assert_eq!(code, Some(2), "{json}");
    assert_eq!(json["app"], "ugpjson");
    assert_eq!(json["instance"], "live");
    assert_eq!(json["up_to_date"], false);
    assert!(
        ops(&json).contains(&("add".into(), "ugpjson-live-api.service".into())),
        "{json}"
    );

    world.apply_ok("live");
    let (code, json) = plan();
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["up_to_date"], true);
    assert_eq!(ops(&json), Vec::<(String, String)>::new());

    world
        .sandbox
        .systemctl(["stop", "ugpjson-live-worker.service"]);
    let (code, json) = plan();
    assert_eq!(code, Some(2), "{json}");
    assert_eq!(
        ops(&json),
        vec![("repair".into(), "ugpjson-live-worker.service".into())]
    );
    assert!(
        json["units"][0]["what"].as_str().unwrap().contains("start"),
        "{json}"
    );

    world.write(&APP.replace("ugstat", "ugpjson").replace(
        "command: [sleep, \"1000000\"]\n    init: true\n  worker",
        "command: [sleep, \"2000000\"]\n    init: true\n  worker",
    ));
    let (code, json) = plan();
    assert_eq!(code, Some(2), "{json}");
    assert!(
        ops(&json).contains(&("change".into(), "ugpjson-live-api.service".into())),
        "{json}"
    );
    let diff = json["diffs"][0]["diff"].as_str().unwrap();
    assert!(
        diff.contains("+    unitgen-test/busybox:1 sleep 2000000"),
        "{diff}"
    );
}

// A service whose container runs but fails its healthcheck is not serving:
// status said all fine (exit 0). It is marked and exits 3; plan has nothing
// to change (the host is as applied), and once the probe passes again,
// status is clean.
#[test]
fn an_unhealthy_container_makes_status_exit_3() {
    let world = World::new("ugsick");
    world.write(
        "app: ugsick
services:
  api:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'touch /ok; exec sleep 1000000']
    init: true
    healthcheck: {test: [CMD, test, -f, /ok], interval: 1s, retries: 1}
instances:
  live: {}
",
    );
    world.apply_ok("live");
    let health = || {
        let api = support::docker::inspect_container("ugsick-live-api");
        api.map(|json| support::docker::text_at(&json, "/State/Health/Status").to_owned())
    };
    let until = |wanted: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while health().as_deref() != Some(wanted) {
            assert!(std::time::Instant::now() < deadline, "never {wanted}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    until("healthy");
    assert_eq!(status(&world).0, Some(0));

    world.exec("live", "api", "rm /ok");
    until("unhealthy");
    let (code, said) = status(&world);
    assert_eq!(code, Some(3), "{said}");
    assert!(
        said.contains("! api ") && said.contains(" unhealthy "),
        "the row is marked: {said}"
    );
    assert!(
        said.contains("! its container fails its healthcheck: `unitgen logs live api`"),
        "{said}"
    );
    assert_eq!(world.unitgen(&["plan", "live"]).status.code(), Some(0));

    world.exec("live", "api", "touch /ok");
    until("healthy");
    assert_eq!(status(&world).0, Some(0));
}

// A service with an exec-form healthcheck runs a local image built for the
// check: status showed `unitgen-health/ugstimg-live-api` as its image, so
// nobody could tell which version ran; and the STARTED column (not on a
// terminal) carried Docker's nanoseconds where `ls` and `history` show
// seconds. It shows the service's image, and the time to the second.
#[test]
fn status_shows_the_services_image_and_its_start_to_the_second() {
    let world = World::new("ugstimg");
    world.write(
        "app: ugstimg
services:
  api:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'touch /ok; exec sleep 1000000']
    init: true
    healthcheck: {test: [CMD, test, -f, /ok], interval: 1s}
instances:
  live: {}
",
    );
    world.apply_ok("live");
    let (code, said) = status(&world);
    assert_eq!(code, Some(0), "{said}");
    let row = said
        .lines()
        .find(|line| line.starts_with("  api "))
        .unwrap_or_else(|| panic!("a row for api: {said}"));
    assert!(row.contains(" unitgen-test/busybox:1 "), "{row}");
    assert!(!said.contains("unitgen-health"), "{said}");
    let started = row.split_whitespace().last().unwrap();
    assert!(
        started.len() == "2026-11-29T10:02:03Z".len() && started.ends_with('Z'),
        "{row}"
    );
    let json = world.unitgen(&["status", "live", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        json["units"][0]["container"]["image"], "unitgen-test/busybox:1",
        "{json}"
    );
}

// Issue 15 item 7: status and destroy refused to work with a broken template
// ("unknown key"), so what ran could be neither inspected nor removed.
#[test]
fn status_and_destroy_work_from_what_is_installed_when_the_template_is_broken_or_gone() {
    let world = World::new("ugorph");
    let app = APP.replace("ugstat", "ugorph");
    world.write(&app);
    world.apply_ok("live");

    // A YAML syntax error: nothing of the file can be read.
    world.write("app: ugorph\nservices:\n  api: {image: [\n");
    let (code, said) = status(&world);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("could not be read"), "{said}");
    assert!(
        said.contains("acting on what is installed for app ugorph"),
        "{said}"
    );
    assert!(said.contains("api"), "{said}");

    std::fs::remove_file(world.file()).unwrap();
    let (code, said) = status(&world);
    assert_eq!(code, Some(0), "{said}");

    let out = world.unitgen(&["destroy", "live"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!world.unit_file("ugorph-live-api.service").exists());
    assert!(container_id("ugorph-live-api").is_none());
    // The state directory still knows the app (its volumes are kept).
    let (code, said) = status(&world);
    assert_eq!(code, Some(4), "{said}");
    assert!(said.contains("ugorph-live is not installed"), "{said}");
}

// unitgen's docker calls look at the engine the units run on: the Docker
// environment of the sandbox's systemd (DOCKER_HOST=unix:///hostrun/
// docker.sock, the host's /run/docker.sock, reached through --root), not
// the shell's. Before, this shell's DOCKER_HOST made apply look for the
// image in an engine that does not exist (and fail), and DOCKER_CONTEXT
// named a context that does not exist.
#[test]
fn apply_status_and_exec_follow_the_units_docker_environment_not_the_shells() {
    let world = World::new("ugdenv");
    world.write(&APP.replace("ugstat", "ugdenv"));
    let lying = [
        ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        ("DOCKER_CONTEXT", "no-such-context"),
    ];
    let warned = |said: &str| {
        let host = "warning: unitgen's environment has DOCKER_HOST=unix:///nonexistent/docker.sock, \
                    but the units get DOCKER_HOST=unix:///hostrun/docker.sock from systemd's manager";
        assert_eq!(said.matches(host).count(), 1, "one warning: {said}");
        assert!(
            said.contains(
                "`systemctl set-environment DOCKER_HOST=unix:///nonexistent/docker.sock`"
            ),
            "{said}"
        );
        assert!(
            said.contains(
                "has DOCKER_CONTEXT=no-such-context, but the units get no DOCKER_CONTEXT"
            ),
            "{said}"
        );
    };

    let out = world.unitgen_with(&["apply", "live", "--settle", "2"], &lying);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    warned(&said);
    let api = world.id("live", "api");

    let out = world.unitgen_with(&["status", "live"], &lying);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    warned(&said);
    assert!(
        said.contains(&api[..12]),
        "the running api container: {said}"
    );
    let json = world.unitgen_with(&["status", "live", "--json"], &lying);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["as_applied"], true, "{json}");

    let out = world.unitgen_with(&["plan", "live"], &lying);
    assert_eq!(out.status.code(), Some(0), "up to date: {}", text(&out));

    // `exec`'s command comes last, after the options World adds.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["exec", "live", "worker", "--file"])
        .arg(world.file())
        .arg("--root")
        .arg(world.sandbox.root())
        .args(["--", "echo", "in worker"])
        .envs(lying)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "in worker\n",
        "{}",
        text(&out)
    );
}

/// What `plan` sees only by reading the template, status now sees from the
/// host alone: a container started by hand with the instance's labels, a
/// secrets file changed or deleted by hand, and a tag moved onto another
/// image than its running container's. Each is told and exits 3; apply
/// repairs it. Before, status said all fine (exit 0) for each.
#[test]
fn status_tells_strays_stale_secrets_files_and_moved_tags() {
    let world = World::new("ugseen");
    let image = "ugseen-image/busybox:1";
    support::docker::docker(["rmi", image]);
    assert!(
        support::docker::docker(["tag", "unitgen-test/busybox:1", image])
            .status
            .success()
    );
    std::fs::write(world.dir().join("token"), "first\n").unwrap();
    world.write(&format!(
        "app: ugseen
services:
  api:
    image: {image}
    command: [sleep, \"1000000\"]
    init: true
    secrets: {{TOKEN: token}}
  worker:
    image: unitgen-test/busybox:1
    command: [sleep, \"1000000\"]
    init: true
secrets:
  token: {{file: token}}
instances:
  live: {{}}
"
    ));
    world.apply_ok("live");
    let (code, said) = status(&world);
    assert_eq!(code, Some(0), "{said}");
    let plan_code = |world: &World| world.unitgen(&["plan", "live"]).status.code();

    // A container run by hand with the instance's labels.
    let stray = world.container("live", "stray");
    let started = support::docker::docker([
        "run",
        "-d",
        "--name",
        &stray,
        "--label",
        "unitgen.app=ugseen",
        "--label",
        "unitgen.instance=live",
        "unitgen-test/busybox:1",
        "sleep",
        "1000000",
    ]);
    assert!(started.status.success(), "{}", text(&started));
    let (code, said) = status(&world);
    assert_eq!(code, Some(3), "{said}");
    assert!(
        said.contains(&format!(
            "! container {stray} runs with the instance's labels, but no unit of it runs it"
        )),
        "{said}"
    );
    let json = world.unitgen(&["status", "live", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["stray_containers"][0], stray.as_str());
    world.apply_ok("live");
    assert_eq!(status(&world).0, Some(0));

    // The secrets file: a variable added by hand, then the file deleted.
    let secrets = (world.sandbox.root()).join("var/lib/unitgen/ugseen-live/secrets/api.env");
    let held = std::fs::read_to_string(&secrets).unwrap();
    std::fs::write(&secrets, format!("{held}LD_PRELOAD=/tmp/x.so\n")).unwrap();
    let (code, said) = status(&world);
    assert_eq!(code, Some(3), "{said}");
    let told = format!(
        "! its secrets file {} is missing or was changed by hand",
        secrets.display()
    );
    assert!(said.contains(&told), "{said}");
    assert!(said.lines().any(|l| l.starts_with("! api")), "{said}");
    assert!(!said.contains("first"), "no value shown: {said}");
    assert_eq!(plan_code(&world), Some(2));
    world.apply_ok("live");
    assert_eq!(std::fs::read_to_string(&secrets).unwrap(), held);
    assert_eq!(status(&world).0, Some(0));
    std::fs::remove_file(&secrets).unwrap();
    let (code, said) = status(&world);
    assert_eq!(code, Some(3), "{said}");
    assert!(said.contains(&told), "{said}");
    world.apply_ok("live");
    assert_eq!(status(&world).0, Some(0));

    // A network joined by hand: the container reaches what is there, and
    // is reached from it. plan and status call it drift; apply gives the
    // service a new container on its own network only.
    let extra = "ugseen-extra";
    let network = support::docker::docker(["network", "create", extra]);
    assert!(network.status.success(), "{}", text(&network));
    let worker = world.container("live", "worker");
    let connected = support::docker::docker(["network", "connect", extra, &worker]);
    assert!(connected.status.success(), "{}", text(&connected));
    let (code, said) = status(&world);
    assert_eq!(code, Some(3), "{said}");
    let told = format!("network {extra}, which the unit does not ask for");
    assert!(said.contains(&told), "{said}");
    let plan = world.unitgen(&["plan", "live"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(text(&plan).contains(&told), "{}", text(&plan));
    world.apply_ok("live");
    let worker_json = support::docker::inspect_container(&worker).expect("worker runs");
    let networks: Vec<&String> = (worker_json["NetworkSettings"]["Networks"].as_object())
        .expect("its networks")
        .keys()
        .collect();
    assert_eq!(networks, ["ugseen-live"]);
    assert_eq!(status(&world).0, Some(0));
    support::docker::docker(["network", "rm", extra]);

    // The tag moved onto another image on this host (a build, a pull).
    let committed = support::docker::docker([
        "commit",
        "--change",
        "LABEL moved=yes",
        &world.container("live", "api"),
        image,
    ]);
    assert!(committed.status.success(), "{}", text(&committed));
    let (code, said) = status(&world);
    assert_eq!(code, Some(3), "{said}");
    assert!(
        said.contains(&format!("! its image {image} moved")),
        "{said}"
    );
    assert_eq!(plan_code(&world), Some(2));
    world.apply_ok("live");
    let (code, said) = status(&world);
    assert_eq!(code, Some(0), "{said}");
    support::docker::docker(["rmi", "--force", image]);
}
