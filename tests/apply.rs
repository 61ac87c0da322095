//! `unitgen apply` and friends against the real thing: a sandboxed systemd
//! (PID 1 in its own namespaces), the host's Docker engine, real containers.
//! Every check looks at what runs and what it serves.

#[path = "support/lib.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::docker::{container_id, docker, inspect_network, inspect_volume, is_running};
use support::net::{free_port, http_get};
use support::sandbox::Sandbox;
use support::wait_for;
use support::world::{World, serves};

/// A three-service app on the busybox test image: `web` serves on a host
/// port, `api` serves a page naming its instance, `worker` just runs.
/// `api_command` and `api_image` let tests break one service.
struct App {
    name: String,
    greeting: String,
    api_image: String,
    api_command: Option<String>,
    with_worker: bool,
    extra_env: Vec<(String, String)>,
}

impl App {
    fn new(name: &str) -> App {
        App {
            name: name.to_string(),
            greeting: "hello".into(),
            api_image: "unitgen-test/busybox:1".into(),
            api_command: None,
            with_worker: true,
            extra_env: Vec::new(),
        }
    }

    fn yaml(&self, instances: &[(&str, u16)]) -> String {
        let api_command = self.api_command.clone().unwrap_or_else(|| {
            r#"[sh, -c, 'mkdir -p /www && echo "api of $INSTANCE says $GREETING" > /www/index.html && exec httpd -f -p 80 -h /www']"#.into()
        });
        let mut env = format!(
            "      INSTANCE: \"{{{{ instance }}}}\"\n      GREETING: {}\n",
            json(&self.greeting)
        );
        for (k, v) in &self.extra_env {
            env.push_str(&format!("      {k}: {}\n", json(v)));
        }
        let worker = if self.with_worker {
            "  worker:\n    image: unitgen-test/busybox:1\n    command: [sleep, \"1000000\"]\n    init: true\n    depends_on: [api]\n"
        } else {
            ""
        };
        let mut yaml = format!(
            "app: {name}\n\
             services:\n\
             \x20 api:\n\
             \x20   image: {api_image}\n\
             \x20   command: {api_command}\n\
             \x20   init: true\n\
             \x20   volumes: [\"data:/data\"]\n\
             \x20   environment:\n{env}\
             \x20 web:\n\
             \x20   image: unitgen-test/busybox:1\n\
             \x20   command: [sh, -c, 'mkdir -p /www && echo \"web of $INSTANCE\" > /www/index.html && exec httpd -f -p 80 -h /www']\n\
             \x20   environment: {{INSTANCE: \"{{{{ instance }}}}\"}}\n\
             \x20   init: true\n\
             \x20   ports: [\"127.0.0.1:{{{{ port }}}}:80\"]\n\
             \x20   depends_on: [api]\n\
             {worker}\
             instances:\n",
            name = self.name,
            api_image = self.api_image,
        );
        for (instance, port) in instances {
            yaml.push_str(&format!("  {instance}: {{port: {port}}}\n"));
        }
        yaml
    }
}

/// A YAML double-quoted string (JSON's, with the controls JSON leaves
/// as they are, DEL and C1, escaped too: YAML does not allow them raw).
fn json(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap()
        .chars()
        .map(|c| match c {
            '\u{7f}'..='\u{9f}' => format!("\\u{:04x}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

#[test]
fn apply_starts_every_service_serves_and_resolves_names_on_the_instance_network() {
    let world = World::new("ugone");
    let port = free_port();
    let app = App::new("ugone");
    world.write(&app.yaml(&[("live", port)]));

    world.apply_ok("live");
    for unit in [
        "ugone-live-network",
        "ugone-live-api",
        "ugone-live-web",
        "ugone-live-worker",
    ] {
        assert_eq!(world.active(&format!("{unit}.service")), "active", "{unit}");
    }
    assert!(serves(port).is_some(), "web answers on its published port");
    world.exec_until(
        "live",
        "web",
        "wget -qO- http://api/",
        "api of live says hello\n",
    );

    // 9. plan: nothing to do right after apply, exit 2 after an edit.
    let plan = world.unitgen(&["plan", "live"]);
    assert_eq!(plan.status.code(), Some(0));
    let mut edited = App::new("ugone");
    edited.greeting = "bonjour".into();
    world.write(&edited.yaml(&[("live", port)]));
    let plan = world.unitgen(&["plan", "live"]);
    assert_eq!(plan.status.code(), Some(2));
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert!(shown.contains("~ ugone-live-api.service"), "{shown}");
    assert!(shown.contains("+    --env GREETING=bonjour"), "{shown}");

    // status shows each service, its state and its container.
    let status = world.unitgen(&["status", "live", "--json"]);
    assert!(status.status.success());
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let api = status["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["service"] == "api")
        .unwrap();
    assert_eq!(api["active_state"], "active");
    assert_eq!(api["container"]["image"], "unitgen-test/busybox:1");
    assert!(
        world
            .id("live", "api")
            .starts_with(api["container"]["id"].as_str().unwrap())
    );
}

// Regression: units recorded the template path as typed, so `plan -f
// /abs/app.yaml` after `apply -f app.yaml` (or a teammate's checkout
// elsewhere) saw every unit changed and apply restarted everything.
#[test]
fn where_the_template_is_read_from_changes_no_unit() {
    let world = World::new("ugwhere");
    let port = free_port();
    world.write(&App::new("ugwhere").yaml(&[("live", port)]));
    let apply = world.unitgen_in(
        world.dir(),
        Path::new("unitgen.yaml"),
        &["apply", "live", "--settle", "1"],
    );
    assert!(apply.status.success(), "apply from the template's folder");

    let checkout = support::tempdir("checkout-");
    let copy = checkout.path().join("app.yaml");
    std::fs::copy(world.file(), &copy).unwrap();
    let elsewhere = support::tempdir("elsewhere-");
    let plan = world.unitgen_in(elsewhere.path(), &copy, &["plan", "live"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "plan from another folder, another checkout, an absolute path: {}",
        String::from_utf8_lossy(&plan.stdout)
    );
}

#[test]
fn two_instances_side_by_side_each_reach_their_own_peers() {
    let world = World::new("ugtwo");
    let (live_port, staging_port) = (free_port(), free_port());
    world.write(&App::new("ugtwo").yaml(&[("live", live_port), ("staging", staging_port)]));
    world.apply_ok("live");
    world.apply_ok("staging");
    world.exec_until(
        "live",
        "web",
        "wget -qO- http://api/",
        "api of live says hello\n",
    );
    world.exec_until(
        "staging",
        "web",
        "wget -qO- http://api/",
        "api of staging says hello\n",
    );
    assert!(serves(live_port).is_some() && serves(staging_port).is_some());
    assert_ne!(world.id("live", "api"), world.id("staging", "api"));
}

#[test]
fn a_change_replaces_only_its_container_and_a_removal_only_its_unit() {
    let world = World::new("ugchg");
    let port = free_port();
    let mut app = App::new("ugchg");
    world.write(&app.yaml(&[("live", port)]));
    world.apply_ok("live");
    let before = |s| world.id("live", s);
    let (api, web, worker) = (before("api"), before("web"), before("worker"));

    app.greeting = "bonjour".into();
    world.write(&app.yaml(&[("live", port)]));
    world.apply_ok("live");
    assert_ne!(
        world.id("live", "api"),
        api,
        "the changed service got a new container"
    );
    assert_eq!(world.id("live", "web"), web, "web untouched");
    assert_eq!(world.id("live", "worker"), worker, "worker untouched");
    assert_eq!(
        world.exec("live", "api", "printf %s \"$GREETING\""),
        "bonjour"
    );
    world.exec_until(
        "live",
        "web",
        "wget -qO- http://api/",
        "api of live says bonjour\n",
    );

    // A no-op apply touches nothing.
    let api = world.id("live", "api");
    world.apply_ok("live");
    assert_eq!(world.id("live", "api"), api);

    app.with_worker = false;
    world.write(&app.yaml(&[("live", port)]));
    world.apply_ok("live");
    assert!(
        !world.unit_file("ugchg-live-worker.service").exists(),
        "unit file deleted"
    );
    assert!(
        container_id(&world.container("live", "worker")).is_none(),
        "container gone"
    );
    assert_ne!(world.active("ugchg-live-worker.service"), "active");
    assert_eq!(world.id("live", "api"), api);
    assert_eq!(world.id("live", "web"), web);
}

#[test]
fn a_bad_change_fails_names_the_unit_and_leaves_the_last_good_revision_serving() {
    let world = World::new("ugbad");
    let port = free_port();
    let good = App::new("ugbad");
    world.write(&good.yaml(&[("live", port)]));
    world.apply_ok("live");
    let good_units = std::fs::read_to_string(world.unit_file("ugbad-live-api.service")).unwrap();

    // An image that does not exist (no registry is reachable).
    let mut missing_image = App::new("ugbad");
    // A registry on a closed loopback port: the pull fails at once, and no
    // traffic leaves the machine.
    missing_image.api_image = "127.0.0.1:9/unitgen-test/no-such-image:1".into();
    world.write(&missing_image.yaml(&[("live", port)]));
    let out = world.apply("live");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    // Images are pulled before anything stops: the pull fails, and nothing
    // on the host is touched.
    assert!(err.contains("no-such-image"), "names the image: {err}");
    assert!(err.contains("nothing on the host was changed"), "{err}");
    assert_eq!(
        std::fs::read_to_string(world.unit_file("ugbad-live-api.service")).unwrap(),
        good_units
    );
    assert_eq!(world.active("ugbad-live-api.service"), "active");
    world.exec_until(
        "live",
        "web",
        "wget -qO- http://api/",
        "api of live says hello\n",
    );
    assert!(serves(port).is_some());

    // A command that starts, then exits.
    let mut exits = App::new("ugbad");
    exits.api_command = Some("[sh, -c, 'sleep 0.5; exit 3']".into());
    world.write(&exits.yaml(&[("live", port)]));
    let out = world.apply("live");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("ugbad-live-api.service"), "{err}");
    assert!(err.contains("previous revision was restored"), "{err}");
    world.exec_until(
        "live",
        "web",
        "wget -qO- http://api/",
        "api of live says hello\n",
    );

    // A new service whose first container exits and which systemd restarts
    // within the settle time, the next container running on: caught, by a
    // look during the gap or by its restart count at the end (which apply
    // does not read before the start of a unit new to it: the reset before
    // its job set it to 0), and removed again.
    let flaps_once = "  flap:\n    image: unitgen-test/busybox:1\n    command: [sh, -c, 'if [ -e /v/ran ]; then exec sleep 1000000; fi; touch /v/ran; sleep 0.3; exit 3']\n    stop_grace_period: 1s\n    volumes: [\"flap:/v\"]\n    systemd: {Service: {RestartSec: 100ms}}\n";
    let flapping = good.yaml(&[("live", port)]);
    world.write(&flapping.replace("instances:\n", &format!("{flaps_once}instances:\n")));
    let out = world.apply("live");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("ugbad-live-flap.service"), "{err}");
    assert!(err.contains("previous revision was restored"), "{err}");
    // Without init, sh ignores the stop signal: killed after the grace
    // period, the unit failed as it stopped; with its file gone it must not
    // stay listed as failed.
    assert_eq!(world.active("ugbad-live-flap.service"), "inactive");

    // The template is good again: plan sees exactly the revision that runs.
    world.write(&good.yaml(&[("live", port)]));
    assert_eq!(world.unitgen(&["plan", "live"]).status.code(), Some(0));
}

#[test]
fn rollback_returns_to_the_previous_revision_and_destroy_keeps_volumes_unless_asked() {
    let world = World::new("ugrb");
    let port = free_port();
    let mut app = App::new("ugrb");
    world.write(&app.yaml(&[("live", port)]));
    world.apply_ok("live");
    world.exec("live", "api", "echo precious > /data/file");
    app.greeting = "v2".into();
    world.write(&app.yaml(&[("live", port)]));
    world.apply_ok("live");
    assert_eq!(world.exec("live", "api", "printf %s \"$GREETING\""), "v2");

    let out = world.unitgen(&["rollback", "live", "--settle", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        world.exec("live", "api", "printf %s \"$GREETING\""),
        "hello"
    );
    assert_eq!(
        world.exec("live", "api", "cat /data/file"),
        "precious\n",
        "volume kept across restarts"
    );
    let out = world.unitgen(&["rollback", "live", "--to", "2", "--settle", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(world.exec("live", "api", "printf %s \"$GREETING\""), "v2");
    let out = world.unitgen(&["rollback", "live", "--to", "99"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no revision 99"));

    let out = world.unitgen(&["destroy", "live"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for unit in [
        "ugrb-live-api.service",
        "ugrb-live-web.service",
        "ugrb-live-network.service",
    ] {
        assert!(!world.unit_file(unit).exists(), "{unit} deleted");
    }
    assert!(container_id("ugrb-live-api").is_none());
    assert!(inspect_network("ugrb-live").is_none(), "network removed");
    assert!(inspect_volume("ugrb-live-data").is_some(), "volume kept");
    assert!(String::from_utf8_lossy(&out.stderr).contains("volumes kept: ugrb-live-data"));

    world.apply_ok("live");
    assert_eq!(
        world.exec("live", "api", "cat /data/file"),
        "precious\n",
        "data survived destroy"
    );
    let out = world.unitgen(&["destroy", "live", "--volumes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(inspect_volume("ugrb-live-data").is_none(), "volume removed");
}

#[test]
fn hostile_values_reach_the_container_byte_for_byte() {
    let world = World::new("ugenv");
    let port = free_port();
    let hostile = [
        ("SPACES", "two  spaces and a trailing one "),
        ("QUOTES", r#"it's "quoted" and 'single'"#),
        ("BACKSLASH", r"C:\path\ and \n not a newline \\ done"),
        ("PERCENT", "100% %n %i %% specifiers"),
        ("DOLLAR", "$HOME ${HOME} $$ $1 cost: $5"),
        ("SEMICOLON", "a; b ; ;"),
        ("NEWLINES", "line one\nline two\n\nlast"),
        ("UNICODE", "ünïcödé 日本語 🚀"),
        // Regression (issue 7): C1 controls arrived as U+FFFD, escaped as one byte.
        ("C1", "a\u{85}b\u{9f}c\u{80}"),
        ("CONTROL", "bell\u{7} esc\u{1b} del\u{7f} cr\r tab\t"),
        (
            "INJECTION",
            "hi\r[Service]\rExecStartPre=/bin/touch /pwned\n\\",
        ),
        ("EMPTY", ""),
        ("MIXED", "a\tb \"c\" 'd' \\e $f %g ;h\ni"),
    ];
    let mut app = App::new("ugenv");
    app.extra_env = hostile
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    world.write(&app.yaml(&[("live", port)]));
    world.apply_ok("live");
    for (key, value) in hostile {
        let got = world.exec("live", "api", &format!("printf %s \"${key}\""));
        assert_eq!(got, value, "{key} arrived changed");
    }
}

#[test]
fn an_applied_instance_comes_back_after_a_reboot() {
    let mut world = World::new("ugboot");
    let port = free_port();
    world.write(&App::new("ugboot").yaml(&[("live", port)]));
    world.apply_ok("live");
    assert!(serves(port).is_some());
    world.sandbox.reboot();
    let up = wait_for(Duration::from_secs(60), || {
        is_running("ugboot-live-web").then_some(())
    });
    assert!(up.is_some(), "web runs again after reboot");
    assert!(serves(port).is_some(), "and serves");
    world.exec_until(
        "live",
        "web",
        "wget -qO- http://api/",
        "api of live says hello\n",
    );
    // State survived too: nothing to apply.
    assert_eq!(world.unitgen(&["plan", "live"]).status.code(), Some(0));

    // systemd killed while the engine keeps the containers running: at the
    // next boot the network unit removes them, so every service starts
    // afresh under its own name, at the first try.
    let before = world.id("live", "web");
    world.sandbox.power_off();
    assert!(
        is_running("ugboot-live-web"),
        "the container outlives systemd"
    );
    world.sandbox.restart_systemd_only();
    let replaced = wait_for(Duration::from_secs(60), || {
        let now = container_id("ugboot-live-web")?;
        (now != before && world.active("ugboot-live-web.service") == "active").then_some(())
    });
    assert!(replaced.is_some(), "web runs in a new container");
    for service in ["api", "web", "worker"] {
        let unit = format!("ugboot-live-{service}.service");
        let out = world
            .sandbox
            .systemctl(["show", "--value", "-p", "NRestarts", &unit]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{unit}");
    }
    world.exec_until(
        "live",
        "web",
        "wget -qO- http://api/",
        "api of live says hello\n",
    );
}

/// The README's first command applies examples/hello: it must come up and
/// serve what its web service fetched from `api` by name.
#[test]
fn the_readme_example_comes_up_and_serves() {
    let mut sandbox = Sandbox::boot();
    sandbox.own_containers("hello-");
    let port = free_port().to_string();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello/unitgen.yaml");
    let root = sandbox.root();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_unitgen"))
            .args(args)
            .args(["-f", file])
            .arg("--root")
            .arg(&root)
            .output()
            .unwrap()
    };
    let set_port = format!("port={port}");
    let out = run(&["apply", "staging", "--set", &set_port]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = wait_for(Duration::from_secs(60), || {
        http_get(port.parse().unwrap(), "/")
            .filter(|(s, b)| *s == 200 && !b.is_empty())
            .map(|(_, b)| b)
    });
    assert_eq!(
        page.as_deref(),
        Some("Hello from staging (hello 1.1-rc1)\n")
    );
    let out = run(&["destroy", "staging", "--volumes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    docker(["network", "rm", "hello-staging"]);
}

#[test]
fn two_applies_of_one_instance_at_once_never_interleave() {
    let world = World::new("uglock");
    let port = free_port();
    world.write(&App::new("uglock").yaml(&[("live", port)]));
    // Started together: whichever takes the instance's lock second (which
    // one is up to the scheduler) must wait, then find nothing left to do.
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| world.unitgen(&["apply", "live", "--settle", "1"]));
        let second = s.spawn(|| world.unitgen(&["apply", "live", "--settle", "1"]));
        (first.join().unwrap(), second.join().unwrap())
    });
    for out in [&first, &second] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let said = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let waited = |err: &str| err.contains("waiting for another unitgen working on uglock-live");
    let (waiter, worker) = match (said(&first), said(&second)) {
        (a, b) if waited(&a) && !waited(&b) => (a, b),
        (a, b) if waited(&b) && !waited(&a) => (b, a),
        (a, b) => panic!("exactly one apply should wait for the other:\n{a}\n---\n{b}"),
    };
    assert!(worker.contains(" to add,"), "{worker}");
    // The waiter found the other's work done: nothing left to change.
    assert!(waiter.contains("is up to date"), "{waiter}");
    assert!(serves(port).is_some());
}
