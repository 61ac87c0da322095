//! Deploying a new version on the real test bed (a sandboxed systemd, the
//! host's Docker engine, a registry on loopback): images are pulled before
//! anything stops, a missing image changes nothing, moved tags are seen,
//! stops are clean, and a failure says what happened.

#[path = "support/lib.rs"]
mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use support::docker::{container_id, docker};
use support::net::free_port;
use support::registry::{self, Registry};
use support::world::{World, serves};

/// `web` serves `version N` on `port`, from the image `registry/ugpull/web:N`.
fn web_app(app: &str, registry: &Registry, version: &str, port: u16) -> String {
    format!(
        "app: {app}\n\
         services:\n\
         \x20 web:\n\
         \x20   image: \"{{{{ registry }}}}/{app}/web:{{{{ version }}}}\"\n\
         \x20   command: [sh, -c, 'mkdir -p /www && echo \"version $V\" > /www/index.html && exec httpd -f -p 80 -h /www']\n\
         \x20   environment: {{V: \"{{{{ version }}}}\"}}\n\
         \x20   init: true\n\
         \x20   ports: [\"127.0.0.1:{{{{ port }}}}:80\"]\n\
         instances:\n\
         \x20 live: {{registry: \"{}\", version: \"{version}\", port: {port}}}\n",
        registry.image("").trim_end_matches('/'),
    )
}

/// The id of the image the container `id` runs (`docker inspect`'s `.Image`).
fn image_of(id: &str) -> String {
    let json =
        support::docker::inspect_container(id).unwrap_or_else(|| panic!("no container {id}"));
    support::docker::text_at(&json, "/Image").to_owned()
}

fn now() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// Docker's events between `since` and now, as (time in ns, type, action,
/// actor id, actor name).
fn events(since: &str) -> Vec<(u128, String, String, String, String)> {
    let out = docker([
        "events",
        "--since",
        since,
        "--until",
        &now(),
        "--format",
        "{{.TimeNano}}\t{{.Type}}\t{{.Action}}\t{{.Actor.ID}}\t{{index .Actor.Attributes \"name\"}}",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            Some((
                f.next()?.parse().ok()?,
                f.next()?.to_string(),
                f.next()?.to_string(),
                f.next()?.to_string(),
                f.next().unwrap_or("").to_string(),
            ))
        })
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_new_version_is_pulled_before_the_old_container_stops_and_a_missing_one_changes_nothing() {
    let registry = Registry::start();
    let world = World::new("ugpull");
    let port = free_port();
    registry.push_new("ugpull/web:1", "v1");
    let v2 = registry.push_new("ugpull/web:2", "v2");

    // The first apply pulls version 1: it is not on this host.
    world.write(&web_app("ugpull", &registry, "1", port));
    world.apply_ok("live");
    assert_eq!(serves(port).as_deref(), Some("version 1\n"));
    let old = world.id("live", "web");

    // Version 2 must be pulled: the pull completes before the old container
    // is stopped, so it serves for the whole download.
    let since = now();
    world.write(&web_app("ugpull", &registry, "2", port));
    let out = world.apply("live");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(serves(port).as_deref(), Some("version 2\n"));
    assert_eq!(
        registry::image_id(&registry.image("ugpull/web:2")),
        Some(v2)
    );
    let seen = events(&since);
    let pulled = seen
        .iter()
        .find(|e| e.1 == "image" && e.2 == "pull" && e.3.ends_with("ugpull/web:2"))
        .unwrap_or_else(|| panic!("no pull of version 2 in {seen:#?}"));
    let old_died = seen
        .iter()
        .find(|e| e.1 == "container" && e.2 == "die" && e.3 == old)
        .unwrap_or_else(|| panic!("the old container did not stop: {seen:#?}"));
    assert!(
        pulled.0 < old_died.0,
        "the old container stopped before the new image was there: {seen:#?}"
    );
    assert!(stderr(&out).contains("pull"), "{}", stderr(&out));

    // Version 9 is in no registry: apply fails naming the image and
    // Docker's reason, and touches nothing.
    let serving = world.id("live", "web");
    let unit = std::fs::read_to_string(world.unit_file("ugpull-live-web.service")).unwrap();
    let since = now();
    world.write(&web_app("ugpull", &registry, "9", port));
    let out = world.apply("live");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&registry.image("ugpull/web:9")), "{err}");
    assert!(
        err.contains("not found") || err.contains("unknown"),
        "Docker's reason: {err}"
    );
    assert!(err.contains("nothing on the host was changed"), "{err}");
    assert_eq!(
        world.id("live", "web"),
        serving,
        "the container was not touched"
    );
    assert_eq!(
        std::fs::read_to_string(world.unit_file("ugpull-live-web.service")).unwrap(),
        unit
    );
    assert!(
        !events(&since)
            .iter()
            .any(|e| e.1 == "container" && e.3 == serving),
        "nothing happened to the serving container"
    );
    assert_eq!(serves(port).as_deref(), Some("version 2\n"));
}

#[test]
fn a_moved_tag_is_restarted_onto_with_pull_always() {
    let registry = Registry::start();
    let world = World::new("ugtag");
    let port = free_port();
    let reference = registry.image("ugtag/web:1");
    let first = registry.build("ugtag/web:1", "first");
    registry::push(&reference);
    world.write(&web_app("ugtag", &registry, "1", port));
    world.apply_ok("live");
    let old = world.id("live", "web");

    // The tag moves in the registry; this host still has the first image.
    let second = registry.build("ugtag/web:1", "second");
    registry::push(&reference);
    assert!(docker(["tag", &first, &reference]).status.success());
    let plan = world.unitgen(&["plan", "live"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "this host's tag names the running image"
    );

    let out = world.unitgen(&["apply", "live", "--settle", "1", "--pull", "always"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 to restart (image moved)"),
        "{}",
        stderr(&out)
    );
    let new = world.id("live", "web");
    assert_ne!(new, old, "restarted");
    assert_eq!(image_of(&new), second);
    assert_eq!(serves(port).as_deref(), Some("version 1\n"));
    assert_eq!(world.unitgen(&["plan", "live"]).status.code(), Some(0));

    // `pull` fetches, `plan` then shows the moved tag, `apply` restarts.
    let third = registry.build("ugtag/web:1", "third");
    registry::push(&reference);
    assert!(docker(["tag", &second, &reference]).status.success());
    // `pull` pulls into the engine of the host's units (the sandbox's
    // DOCKER_HOST), not the one a stray DOCKER_HOST of the shell names.
    let out = world.unitgen_with(
        &["pull", "live"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("DOCKER_HOST=unix:///nonexistent/docker.sock"),
        "warned about the shell's engine: {}",
        stderr(&out)
    );
    let plan = world.unitgen(&["plan", "live"]);
    assert_eq!(plan.status.code(), Some(2));
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert!(
        shown.contains(&format!(
            "~ ugtag-live-web.service (image {reference} moved"
        )),
        "{shown}"
    );
    world.apply_ok("live");
    assert_eq!(image_of(&world.id("live", "web")), third);
}

#[test]
fn a_stop_on_sigint_leaves_the_unit_inactive_not_failed() {
    // `strict` is the same service with systemd's old rule put back (only
    // 143 is a clean exit): it shows what the stop ends with otherwise.
    let service = |name: &str, extra: &str| {
        format!(
            "  {name}:\n    image: unitgen-test/busybox:1\n    command: [sleep, \"1000000\"]\n    init: true\n    stop_signal: SIGINT\n{extra}"
        )
    };
    let world = World::new("ugsig");
    world.write(&format!(
        "app: ugsig\nservices:\n{}{}instances:\n  live: {{}}\n",
        service("worker", ""),
        service(
            "strict",
            "    systemd: {Service: {SuccessExitStatus: \"143\"}}\n"
        ),
    ));
    world.apply_ok("live");
    for unit in ["ugsig-live-worker.service", "ugsig-live-strict.service"] {
        assert_eq!(world.active(unit), "active");
        world.sandbox.systemctl(["stop", unit]);
    }
    // (The worker's lines came before the strict one's, which is waited
    // for: journald writes systemd's lines a moment after the stop ended.)
    let strict = (world.sandbox).journal_with("ugsig-live-strict.service", "status=130");
    assert_eq!(
        world.active("ugsig-live-strict.service"),
        "failed",
        "{strict}"
    );
    assert!(
        strict.contains("status=130"),
        "it ended on SIGINT: {strict}"
    );
    let worker = world.sandbox.journal("ugsig-live-worker.service");
    assert_eq!(
        world.active("ugsig-live-worker.service"),
        "inactive",
        "{worker}"
    );
    assert!(!worker.contains("Failed with result"), "{worker}");
    assert!(container_id("ugsig-live-worker").is_none());
}

#[test]
fn a_failed_first_apply_says_nothing_ran_before_and_removes_what_it_started() {
    let world = World::new("ugfirst");
    world.write(
        "app: ugfirst\n\
         services:\n\
         \x20 api:\n\
         \x20   image: unitgen-test/busybox:1\n\
         \x20   command: [sh, -c, 'echo starting up; sleep 0.5; echo giving up; exit 3']\n\
         instances:\n\
         \x20 live: {}\n",
    );
    let out = world.apply("live");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("previous revision"), "{err}");
    assert!(err.contains("nothing of it was running before"), "{err}");
    assert!(
        err.contains("ugfirst-live-api.service: the container exited with status 3"),
        "{err}"
    );
    assert!(
        err.contains(
            "| starting up
  | giving up
"
        ),
        "{err}"
    );
    for unit in ["ugfirst-live-api.service", "ugfirst-live-network.service"] {
        assert!(!world.unit_file(unit).exists(), "{unit} removed");
    }
    assert!(container_id("ugfirst-live-api").is_none());
}

#[test]
fn a_failed_apply_explains_every_failed_unit_from_this_start_only() {
    let world = World::new("ugwhy");
    let long_line = format!("api run two: {}", "a-long-word ".repeat(12).trim_end());
    let app = |run: &str, api_serves: bool, worker_exits: bool| {
        let api_page = if api_serves {
            "mkdir -p /www && echo ok > /www/index.html && "
        } else {
            // No index page: the health probe's wget gets 404.
            "mkdir -p /www && "
        };
        // Each run counts itself in its volume. It exits once its start
        // job is done (its container seen running), and systemd starts it
        // again at once: by the time api's probes have failed, it is in a
        // later run, and the report must still tell of the first.
        let worker = if worker_exits {
            format!(
                "n=$(cat /runs/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /runs/n; \
                 echo worker {run} run $n; sleep 2; exit 4"
            )
        } else {
            format!("echo worker {run}; exec sleep 1000000")
        };
        format!(
            "app: ugwhy\n\
             services:\n\
             \x20 api:\n\
             \x20   image: unitgen-test/busybox:1\n\
             \x20   command: [sh, -c, 'echo \"{long}\"; {api_page}exec httpd -f -p 80 -h /www']\n\
             \x20   init: true\n\
             \x20   healthcheck: {{test: [CMD, wget, -q, -O, /dev/null, \"http://127.0.0.1/\"], interval: 1s, retries: 2}}\n\
             \x20 worker:\n\
             \x20   image: unitgen-test/busybox:1\n\
             \x20   command: [sh, -c, '{worker}']\n\
             \x20   init: true\n\
             \x20   volumes: [\"runs:/runs\"]\n\
             \x20   systemd: {{Service: {{RestartSec: 100ms}}}}\n\
             instances:\n\
             \x20 live: {{}}\n",
            long = if run == "one" {
                "api run one".to_string()
            } else {
                long_line.clone()
            },
        )
    };
    world.write(&app("one", true, false));
    let out = world.apply("live");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    // api's start waited until Docker found it healthy: proven, it is not
    // watched for the settle time; only worker (no healthcheck) may be.
    assert!(!err.contains("checking that 2 units"), "{err}");

    world.write(&app("two", false, true));
    let out = world.apply("live");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // Each failed unit, with its reason.
    assert!(
        err.contains("ugwhy-live-api.service: the container turned unhealthy"),
        "{err}"
    );
    assert!(
        err.contains("health probe exited 1"),
        "Docker's health log: {err}"
    );
    assert!(err.contains("404"), "the probe's own output: {err}");
    assert!(
        err.contains("ugwhy-live-worker.service: the container exited with status 4"),
        "{err}"
    );
    // The containers' own lines of this start, whole: the worker's first
    // run's, not those of the runs systemd started after it.
    assert!(err.contains(&format!("| {long_line}\n")), "{err}");
    assert!(err.contains("| worker two run 1\n"), "{err}");
    assert!(!err.contains("worker two run 2"), "{err}");
    assert!(!err.contains("run one"), "no line of an earlier run: {err}");
    assert!(
        !err.contains("No such container"),
        "no housekeeping noise: {err}"
    );
    assert!(err.contains("previous revision was restored"), "{err}");
    assert_eq!(world.exec("live", "api", "cat /www/index.html"), "ok\n");
}

// journald writes a unit's lines a moment after the unit printed them, on a
// busy host much later: the report of a failed apply waits for journald to
// catch up (as `journalctl --sync` does), so that the container's last
// lines, the reason it died, are in it, even when journald read them only
// after systemd had begun the unit's next run (`Restart=`). Here the
// sandbox's journald is held stopped from the container's first line until
// unitgen asks it to sync (the signal is pending) or apply has ended; the
// settle window outlasts the container (3 s) and systemd's restart (5 s).
#[test]
fn a_failed_containers_last_lines_wait_for_a_busy_journald() {
    let world = World::new("ugbusy");
    world.write(
        "app: ugbusy\n\
         services:\n\
         \x20 api:\n\
         \x20   image: unitgen-test/busybox:1\n\
         \x20   command: [sh, -c, 'echo \"starting\"; sleep 3; echo \"fatal: the last word\"; exit 3']\n\
         instances:\n\
         \x20 live: {}\n",
    );
    let journald = world
        .sandbox
        .systemctl(["show", "-P", "MainPID", "systemd-journald.service"]);
    let journald = String::from_utf8_lossy(&journald.stdout).trim().to_string();
    assert_ne!(journald, "0", "the sandbox's journald runs");
    let signal = |name: &str| {
        let out = world.sandbox.exec("kill", [name, journald.as_str()]);
        assert!(out.status.success(), "kill {name} {journald}: {out:?}");
    };
    let apply = world.spawn_kept(&["apply", "live", "--settle", "12"]);
    let journal = world
        .sandbox
        .journal_with("ugbusy-live-api.service", "starting");
    assert!(journal.contains("starting"), "{journal}");
    // SIGRTMIN+1 (glibc's SIGRTMIN is 34) pending for the whole process.
    let sync_asked = || {
        let status = world
            .sandbox
            .exec("cat", [format!("/proc/{journald}/status")]);
        let status = String::from_utf8_lossy(&status.stdout).into_owned();
        let pending = status
            .lines()
            .find_map(|line| line.strip_prefix("ShdPnd:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .unwrap_or(0);
        pending & (1 << (35 - 1)) != 0
    };
    signal("-STOP");
    let mut apply = apply;
    let held_since = std::time::Instant::now();
    while apply.try_wait().unwrap().is_none()
        && !sync_asked()
        && held_since.elapsed() < std::time::Duration::from_secs(120)
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    signal("-CONT");
    let out = apply.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ugbusy-live-api.service: the container exited with status 3"),
        "{err}"
    );
    assert!(err.contains("| starting\n"), "{err}");
    assert!(err.contains("| fatal: the last word\n"), "{err}");
}
