//! Operating what unitgen deployed, as an operator does from the shell:
//! the instance target, logs, ls, history, exec, restart/stop/start. Each
//! against a sandboxed real systemd and real containers.

#[path = "support/lib.rs"]
mod support;

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::docker::{container_id, is_running};
use support::net::free_port;
use support::wait_for;
use support::world::{World, serves};

/// Three services on the busybox test image: `api` serves and says so on
/// stdout, `web` publishes a port, `worker` prints a line now and then.
fn app(name: &str, port: u16, greeting: &str) -> String {
    app_with(name, &[("live", port)], greeting, true)
}

fn app_with(name: &str, instances: &[(&str, u16)], greeting: &str, worker: bool) -> String {
    let worker = if worker {
        r#"  worker:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'n=0; while :; do n=$((n+1)); echo "worker tick $n"; sleep 1; done']
    init: true
    depends_on: [api]
"#
    } else {
        ""
    };
    let instances: String = instances
        .iter()
        .map(|(instance, port)| format!("  {instance}: {{port: {port}}}\n"))
        .collect();
    format!(
        r#"app: {name}
services:
  api:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'echo "api of $INSTANCE says {greeting}"; mkdir -p /www && echo "$INSTANCE" > /www/index.html && exec httpd -f -p 80 -h /www']
    environment: {{INSTANCE: "{{{{ instance }}}}"}}
    init: true
    healthcheck: {{test: [CMD, wget, -q, -O, /dev/null, "http://127.0.0.1/"], interval: 2s}}
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo web > /www/index.html && exec httpd -f -p 80 -h /www']
    init: true
    ports: ["127.0.0.1:{{{{ port }}}}:80"]
    depends_on: [api]
{worker}instances:
{instances}"#
    )
}

/// `unitgen ARGS --root SANDBOX [-f FILE] [-- AFTER...]`, for commands the
/// world's helper cannot shape (`ls` takes no -f; `exec`'s command comes last).
fn unitgen(world: &World, args: &[&str], file: Option<&Path>, after: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_unitgen"));
    cmd.args(args).arg("--root").arg(world.sandbox.root());
    if let Some(file) = file {
        cmd.arg("-f").arg(file);
    }
    if !after.is_empty() {
        cmd.arg("--").args(after);
    }
    let out = cmd.env("NO_COLOR", "1").output().unwrap();
    eprintln!(
        "$ unitgen {} -- {}\n{}{}",
        args.join(" "),
        after.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
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

#[test]
fn restart_stop_and_start_touch_only_the_named_services() {
    let world = World::new("ugctl");
    let port = free_port();
    world.write(&app("ugctl", port, "hi"));
    world.apply_ok("live");
    let ids =
        |world: &World| ["api", "web", "worker"].map(|s| container_id(&world.container("live", s)));
    let [api, web, worker] = ids(&world);

    let restart = world.unitgen(&["restart", "live", "worker"]);
    assert!(restart.status.success(), "{}", stderr(&restart));
    assert!(stderr(&restart).contains("restart ugctl-live-worker.service"));
    let [api2, web2, worker2] = ids(&world);
    assert_ne!(worker2, worker, "the named service got a new container");
    assert!(worker2.is_some());
    assert_eq!(
        (api2, web2),
        (api.clone(), web.clone()),
        "the others did not"
    );

    let stop = world.unitgen(&["stop", "live", "web"]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    assert_eq!(world.active("ugctl-live-web.service"), "inactive");
    assert!(!is_running(&world.container("live", "web")));
    assert_eq!(
        container_id(&world.container("live", "api")),
        api,
        "api untouched"
    );
    // status marks what is not as applied, and shows health and restarts.
    let table = stdout(&world.unitgen(&["status", "live"]));
    let line = |service: &str| {
        table
            .lines()
            .find(|l| {
                l.get(2..)
                    .is_some_and(|l| l.starts_with(&format!("{service} ")))
            })
            .unwrap_or_else(|| panic!("{service} in {table}"))
            .to_string()
    };
    assert!(line("web").starts_with("! web"), "{table}");
    assert!(line("api").starts_with("  api"), "{table}");
    assert!(line("api").contains(" healthy "), "{table}");
    assert!(table.contains("! not as applied"), "{table}");
    let json = world.unitgen(&["status", "live", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let api_row = json["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["service"] == "api")
        .unwrap()
        .clone();
    assert_eq!(api_row["container"]["health"], "healthy");
    assert_eq!(api_row["restarts"], 0);
    assert_eq!(api_row["as_applied"], true);
    assert!(
        api_row["container"]["started_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let start = world.unitgen(&["start", "live", "web"]);
    assert!(start.status.success(), "{}", stderr(&start));
    assert!(serves(port).is_some(), "web serves again");
    assert_eq!(
        container_id(&world.container("live", "api")),
        api,
        "api untouched"
    );
    let table = stdout(&world.unitgen(&["status", "live"]));
    assert!(!table.contains('!'), "all as applied again: {table}");

    // The whole instance, in dependency order, each job awaited: when stop
    // returns, everything is down; when start returns, everything is up.
    let stop = world.unitgen(&["stop", "live"]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    for unit in [
        "ugctl-live.target",
        "ugctl-live-network.service",
        "ugctl-live-api.service",
    ] {
        assert_eq!(world.active(unit), "inactive", "{unit}");
    }
    assert!(!is_running(&world.container("live", "api")));
    let start = world.unitgen(&["start", "live"]);
    assert!(start.status.success(), "{}", stderr(&start));
    for unit in [
        "ugctl-live.target",
        "ugctl-live-web.service",
        "ugctl-live-worker.service",
    ] {
        assert_eq!(world.active(unit), "active", "{unit}");
    }
    assert!(serves(port).is_some());

    let unknown = world.unitgen(&["restart", "live", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("has no service `nope`; installed: api, web, worker"),
        "{}",
        stderr(&unknown)
    );

    // A restarted container that exits soon after its start is a failed
    // restart, as it is a failed apply: not "restarted" (here one that runs
    // only once). It exits 0.3 s after starting, inside the settle time:
    // one that exits at once may be caught by its start job instead ("did
    // not restart"), whichever of the two sees it first.
    let flaky = r#"  flaky:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'if [ -e /v/ran ]; then echo "ran before: giving up"; sleep 0.3; exit 3; fi; touch /v/ran; exec sleep 1d']
    volumes: ["runs:/v"]
"#;
    world.write(&app("ugctl", port, "hi").replace("instances:\n", &format!("{flaky}instances:\n")));
    world.apply_ok("live");
    let restart = world.unitgen(&["restart", "live", "flaky"]);
    assert_eq!(restart.status.code(), Some(1), "{}", stderr(&restart));
    for said in [
        "ugctl-live: did not stay up: ugctl-live-flaky.service",
        "ran before: giving up",
    ] {
        assert!(
            stderr(&restart).contains(said),
            "{said:?} in {}",
            stderr(&restart)
        );
    }
}

#[test]
fn logs_show_what_the_containers_printed_and_exec_runs_in_the_right_container() {
    let world = World::new("uglogs");
    let port = free_port();
    world.write(&app("uglogs", port, "hi"));
    world.apply_ok("live");
    let file = world.file();

    // A few ticks, then every service's lines, each under its name.
    let ticked = wait_for(Duration::from_secs(60), || {
        let out = world.unitgen(&["logs", "live", "worker"]);
        stdout(&out).contains("worker tick 3").then_some(())
    });
    assert!(ticked.is_some(), "worker's lines reach its log");
    let all = stdout(&world.unitgen(&["logs", "live"]));
    assert!(all.contains("api     | api of live says hi"), "{all}");
    assert!(all.contains("worker  | worker tick 2"), "{all}");
    assert!(
        all.contains("web     | Started uglogs-live-web.service"),
        "{all}"
    );

    let last = stdout(&world.unitgen(&["logs", "live", "worker", "-n", "2"]));
    let lines: Vec<&str> = last.lines().collect();
    assert_eq!(lines.len(), 2, "{last}");
    assert!(
        lines.iter().all(|l| l.starts_with("worker | worker tick ")),
        "{last}"
    );

    let recent = world.unitgen(&["logs", "live", "--since", "1 hour ago"]);
    assert!(
        stdout(&recent).contains("worker tick 1"),
        "{}",
        stdout(&recent)
    );
    let none = world.unitgen(&["logs", "live", "--since", "tomorrow"]);
    assert_eq!(stdout(&none), "", "nothing logged since tomorrow");

    // -f: lines logged after the command started arrive.
    let mut follow = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["logs", "live", "worker", "-f", "-n", "1", "--file"])
        .arg(&file)
        .arg("--root")
        .arg(world.sandbox.root())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let n: u32 = first.rsplit(' ').next().unwrap().parse().unwrap();
    let later = lines.next().unwrap().unwrap();
    assert_eq!(later, format!("worker | worker tick {}", n + 1));
    follow.kill().unwrap();
    follow.wait().unwrap();

    // exec: in the named service's container of this instance.
    let env = unitgen(
        &world,
        &["exec", "live", "api"],
        Some(&file),
        &["sh", "-c", "echo $INSTANCE"],
    );
    assert!(env.status.success(), "{}", stderr(&env));
    assert_eq!(stdout(&env), "live\n");
    let host = unitgen(
        &world,
        &["exec", "live", "worker"],
        Some(&file),
        &["cat", "/etc/hostname"],
    );
    let id = container_id(&world.container("live", "worker")).unwrap();
    let hostname = stdout(&host);
    // Not empty: every id starts with "" (exec failing printed nothing).
    assert!(
        !hostname.trim().is_empty() && id.starts_with(hostname.trim()),
        "hostname is the container's id: {hostname:?}, {}",
        stderr(&host)
    );
    let page = unitgen(
        &world,
        &["exec", "live", "web"],
        Some(&file),
        &["cat", "/www/index.html"],
    );
    assert_eq!(stdout(&page), "web\n");
    let code = unitgen(
        &world,
        &["exec", "live", "web"],
        Some(&file),
        &["sh", "-c", "exit 3"],
    );
    assert_eq!(code.status.code(), Some(3), "the command's exit code");

    // unitgen runs the Docker CLI its units run (/usr/bin/docker), not the
    // first `docker` on the user's PATH: here one that knows no container.
    // It was taken before: exec said "uglogs-live-api has no container".
    let elsewhere = support::tempdir("path-docker-");
    let fake = elsewhere.path().join("docker");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"Error: No such container: $*\" >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        elsewhere.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let with_path_docker = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["exec", "live", "api", "--root"])
        .arg(world.sandbox.root())
        .arg("-f")
        .arg(&file)
        .args(["--", "sh", "-c", "echo $INSTANCE"])
        .env("PATH", &path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(
        stdout(&with_path_docker),
        "live\n",
        "{}",
        stderr(&with_path_docker)
    );
    let shell = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["exec", "live", "api", "-f"])
        .arg(&file)
        .arg("--root")
        .arg(world.sandbox.root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = shell.stdin.as_ref().unwrap();
        stdin
            .write_all(b"echo from the shell in $INSTANCE\n")
            .unwrap();
    }
    let mut shell = shell;
    drop(shell.stdin.take());
    let out = shell.wait_with_output().unwrap();
    assert_eq!(
        stdout(&out),
        "from the shell in live\n",
        "no command: a shell"
    );
}

#[test]
fn history_lists_what_the_applies_did_and_ls_every_instance() {
    let mut world = World::new("ughist");
    world.also_own("ughistb");
    let (port, port_b1, port_b2) = (free_port(), free_port(), free_port());
    world.write(&app_with("ughist", &[("live", port)], "hi", true));
    world.apply_ok("live");
    world.write(&app_with("ughist", &[("live", port)], "bonjour", true));
    world.apply_ok("live");
    world.write(&app_with("ughist", &[("live", port)], "bonjour", false));
    world.apply_ok("live");
    let rollback = world.unitgen(&["rollback", "live", "--to", "1", "--settle", "1"]);
    assert!(rollback.status.success(), "{}", stderr(&rollback));

    let history = world.unitgen(&["history", "live"]);
    assert!(history.status.success(), "{}", stderr(&history));
    let lines: Vec<String> = stdout(&history).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 5, "a header and four revisions: {lines:?}");
    let row = |n: usize| {
        lines[n]
            .split_whitespace()
            .skip(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(lines[1].starts_with("1 "), "{lines:?}");
    assert_eq!(row(1), "added api, network, target, web, worker");
    assert_eq!(row(2), "changed api");
    assert_eq!(row(3), "removed worker");
    assert_eq!(row(4), "rollback to 1: added worker changed api (current)");

    let json = world.unitgen(&["history", "live", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json[3]["rollback_of"], 1);
    assert!(json[0]["applied_at"].as_str().unwrap().ends_with('Z'));

    // A second app with two instances, applied from another file.
    let other = support::tempdir("other-app-");
    let other_file = other.path().join("unitgen.yaml");
    std::fs::write(
        &other_file,
        app_with(
            "ughistb",
            &[("one", port_b1), ("two", port_b2)],
            "yo",
            false,
        ),
    )
    .unwrap();
    for instance in ["one", "two"] {
        let out = world.unitgen_in(
            other.path(),
            &other_file,
            &["apply", instance, "--settle", "1"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let stop = unitgen(&world, &["stop", "two", "web"], Some(&other_file), &[]);
    assert!(stop.status.success(), "{}", stderr(&stop));

    let ls = unitgen(&world, &["ls"], None, &[]);
    assert!(ls.status.success(), "{}", stderr(&ls));
    let listed: Vec<Vec<String>> = stdout(&ls)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    let row = |app: &str, instance: &str| {
        listed
            .iter()
            .find(|r| r[0] == app && r[1] == instance)
            .unwrap_or_else(|| panic!("{app} {instance} listed: {listed:?}"))
            .clone()
    };
    assert_eq!(listed.len(), 4, "a header and three instances: {listed:?}");
    let live = row("ughist", "live");
    assert_eq!(
        (live[2].as_str(), &live[4..]),
        ("4", &["3/3".to_string(), "up".to_string()][..])
    );
    let one = row("ughistb", "one");
    assert_eq!((one[2].as_str(), one[4].as_str()), ("1", "2/2"));
    let two = row("ughistb", "two");
    assert_eq!(two[4], "1/2", "web of two was stopped");
    assert!(live[3].ends_with('Z'), "ISO time when not on a terminal");
}

/// Found in hostile values round 6: `logs` showed each line escaped but
/// put before it the service as the unit file's `[X-Unitgen]` section
/// names it, as it was: a unit of the instance whose `Service=` held an
/// escape sequence (a disk read with `--root`, a user unit dir) cleared
/// and retitled the terminal at every line. The prefix is shown escaped;
/// and since round 7 a unit whose `Service=` is no service name is none
/// unitgen wrote (`render::owner`): none of the instance's, not shown.
#[test]
fn a_units_hostile_service_name_never_reaches_logs() {
    let world = World::new("uglogh");
    world.write("app: uglogh\nservices:\n  web: unitgen-test/busybox:1\ninstances:\n  live: {}\n");
    let unit = |service: &str, says: &str| {
        format!(
            "[Service]\nType=oneshot\nExecStart=/bin/echo {says}\n\n\
             [X-Unitgen]\nApp=uglogh\nInstance=live\nService={service}\n"
        )
    };
    let hostile = "web\u{1b}]0;owned\u{7}\u{1b}[2J\u{202e}";
    let units = [
        (
            "uglogh-live-web.service",
            unit(hostile, "hello from the hostile unit"),
        ),
        ("uglogh-live-db.service", unit("db", "hello from db")),
    ];
    for (name, text) in &units {
        std::fs::write(world.sandbox.unit_dir().join(name), text).unwrap();
    }
    world.sandbox.systemctl(["daemon-reload"]);
    for (name, _) in &units {
        world.sandbox.systemctl(["start", name]);
    }
    let ran = (world.sandbox).journal_with(units[0].0, "hello from the hostile unit");
    assert!(ran.contains("hello from the hostile unit"), "it ran: {ran}");
    let said = wait_for(Duration::from_secs(60), || {
        let said = stdout(&world.unitgen(&["logs", "live"]));
        said.contains("hello from db").then_some(said)
    })
    .expect("db's line reaches its log");
    assert!(said.contains("db | hello from db"), "{said}");
    assert!(!said.contains("hostile"), "{said}");
    assert!(
        !said.contains('\u{1b}') && !said.contains('\u{7}') && !said.contains('\u{202e}'),
        "{said:?}"
    );
}
