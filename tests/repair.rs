//! `plan` and `apply` against the host's real state, in a sandboxed systemd
//! with real containers: units disabled, stopped, loaded from an older
//! file or changed by drop-ins are seen and repaired, and an apply killed
//! at any step is completed by the next one, also across a reboot.

#[path = "support/lib.rs"]
mod support;

use std::os::unix::process::ExitStatusExt as _;
use std::process::Output;
use std::time::{Duration, Instant};

use support::docker::{create_duplicate, is_running, networks, remove_networks};
use support::net::free_port;
use support::world::{World, serves};
use support::{run_as_copied, wait_for};

/// `api` serves its greeting (with limits: plan compares them with what
/// Docker records), `web` a page on a host port, and an optional `extra`
/// service just runs, with a named volume (tests add and remove it).
fn yaml(app: &str, greeting: &str, extra: Option<&str>, port: u16) -> String {
    let mut yaml = format!(
        "app: {app}
services:
  api:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo \"$GREETING\" > /www/index.html && exec httpd -f -p 80 -h /www']
    init: true
    environment: {{GREETING: \"{greeting}\"}}
    mem_limit: 128m
    cpus: 0.5
    docker_args: [--pids-limit=100]
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo web > /www/index.html && exec httpd -f -p 80 -h /www']
    init: true
    ports: [\"127.0.0.1:{{{{ port }}}}:80\"]
"
    );
    if let Some(extra) = extra {
        yaml.push_str(&format!(
            "  {extra}:\n    image: unitgen-test/busybox:1\n    command: [sleep, \"1000000\"]\n    init: true\n    volumes: [\"data:/data\"]\n"
        ));
    }
    yaml.push_str(&format!("instances:\n  live: {{port: {port}}}\n"));
    yaml
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The greeting the running `api` container was started with.
fn greeting(world: &World) -> String {
    world.exec("live", "api", "printf %s \"$GREETING\"")
}

fn is_enabled(world: &World, unit: &str) -> String {
    let out = world.sandbox.systemctl(["is-enabled", unit]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn plan(world: &World) -> (Option<i32>, String) {
    let out = world.unitgen(&["plan", "live"]);
    (out.status.code(), text(&out))
}

fn status(world: &World) -> (Option<i32>, String) {
    let out = world.unitgen(&["status", "live"]);
    (out.status.code(), text(&out))
}

/// Whether `status` marks `service`'s row as not as applied, giving `why`
/// under it.
fn marked(shown: &str, service: &str, why: &str) -> bool {
    let mut lines = shown.lines().skip_while(|l| {
        !(l.starts_with("! ") && l[2..].split_whitespace().next() == Some(service))
    });
    lines.next().is_some()
        && lines
            .take_while(|l| l.starts_with("    ! "))
            .any(|l| l.contains(why))
}

#[test]
fn plan_sees_what_systemd_runs_and_apply_repairs_it() {
    let mut world = World::new("ugfix");
    let port = free_port();
    world.write(&yaml("ugfix", "v1", Some("extra"), port));
    world.apply_ok("live");
    assert_eq!(plan(&world).0, Some(0));

    // Disabled by hand: would not come back after a reboot.
    world
        .sandbox
        .systemctl(["disable", "ugfix-live-web.service"]);
    // Stopped by hand.
    world
        .sandbox
        .systemctl(["stop", "ugfix-live-extra.service"]);
    // api runs a configuration its file no longer has: started from a
    // changed file, then the file was put back without a daemon-reload.
    let api = world.unit_file("ugfix-live-api.service");
    let applied = std::fs::read_to_string(&api).unwrap();
    std::fs::write(&api, applied.replace("GREETING=v1", "GREETING=stale")).unwrap();
    world.sandbox.systemctl(["daemon-reload"]);
    world
        .sandbox
        .systemctl(["restart", "ugfix-live-api.service"]);
    assert_eq!(greeting(&world), "stale");
    std::fs::write(&api, &applied).unwrap();

    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains("* ugfix-live-web.service (not enabled (disabled): enable)"),
        "{shown}"
    );
    assert!(
        shown.contains("* ugfix-live-extra.service (inactive (dead): start)"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "* ugfix-live-api.service (file changed since systemd loaded it: reload, restart)"
        ),
        "{shown}"
    );
    // status agrees with plan: it exited 0 with a disabled unit.
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(marked(&shown, "web", "not enabled (disabled)"), "{shown}");

    world.apply_ok("live");
    assert_eq!(is_enabled(&world, "ugfix-live-web.service"), "enabled");
    assert_eq!(world.active("ugfix-live-extra.service"), "active");
    assert_eq!(greeting(&world), "v1", "api restarted with its file");
    assert_eq!(plan(&world).0, Some(0));

    // A drop-in (what `systemctl edit` writes) changes the unit's meaning.
    let drop_in_dir = world.unit_file("ugfix-live-web.service.d");
    std::fs::create_dir_all(&drop_in_dir).unwrap();
    std::fs::write(
        drop_in_dir.join("override.conf"),
        "[Service]\nEnvironment=EXTRA=1\n",
    )
    .unwrap();
    world.sandbox.systemctl(["daemon-reload"]);
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(
            "! ugfix-live-web.service has drop-ins that change its meaning: \
             /etc/systemd/system/ugfix-live-web.service.d/override.conf"
        ),
        "{shown}"
    );
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(
        marked(&shown, "web", "drop-ins change its meaning"),
        "{shown}"
    );
    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("drop-ins that change its meaning, left in place"));
    assert!(
        text(&out).contains(
            "ugfix-live: its units are revision 1, but drop-ins change \
             ugfix-live-web.service: not up to date"
        ),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(&drop_in_dir).unwrap();
    world.sandbox.systemctl(["daemon-reload"]);
    assert_eq!(plan(&world).0, Some(0));
    assert_eq!(status(&world).0, Some(0));

    // Masked by hand (`systemctl mask` refuses a unit whose file is in
    // /etc/systemd/system; a link in system.control, which comes first,
    // masks it): apply tried to enable it, failed on systemd's refusal, and
    // said it restored the revision it had not changed.
    let control = world.sandbox.root().join("etc/systemd/system.control");
    std::fs::create_dir_all(&control).unwrap();
    let mask = control.join("ugfix-live-web.service");
    std::os::unix::fs::symlink("/dev/null", &mask).unwrap();
    world.sandbox.systemctl(["daemon-reload"]);
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains("* ugfix-live-web.service (masked: systemd will not start it;"),
        "{shown}"
    );
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(marked(&shown, "web", "masked"), "{shown}");
    let out = world.apply("live");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("ugfix-live-web.service is masked")
            && text(&out).contains("nothing on the host was changed"),
        "{}",
        text(&out)
    );
    std::fs::remove_file(&mask).unwrap();
    world.sandbox.systemctl(["daemon-reload"]);
    assert_eq!(plan(&world).0, Some(0));

    // Limits changed in place (`docker update`): web ran without limits
    // its unit never asked for, and plan said up to date.
    let web = world.container("live", "web");
    let started = world.id("live", "web");
    let updated = support::docker::docker([
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--pids-limit",
        "50",
        &web,
    ]);
    assert!(updated.status.success(), "{}", text(&updated));
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    let differs = "its container differs: memory 64 MiB, the unit asks for none; \
                   pids limit 50, the unit asks for none";
    assert!(
        shown.contains(&format!("* ugfix-live-web.service ({differs}: restart)")),
        "{shown}"
    );
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(marked(&shown, "web", differs), "{shown}");
    world.apply_ok("live");
    assert_ne!(world.id("live", "web"), started, "a new container");
    assert_eq!(serves(port).as_deref(), Some("web\n"));
    assert_eq!(plan(&world).0, Some(0));

    // Renamed away, and another run by hand under its name with its labels:
    // the unit is active (its `docker run` still runs the renamed one), the
    // name answers with a container the unit did not make.
    let renamed = world.container("live", "renamed");
    let out = support::docker::docker(["rename", &web, &renamed]);
    assert!(out.status.success(), "{}", text(&out));
    let by_hand = support::docker::docker([
        "run",
        "-d",
        "--name",
        &web,
        "--network",
        "ugfix-live",
        "--label",
        "unitgen.app=ugfix",
        "--label",
        "unitgen.instance=live",
        "unitgen-test/busybox:1",
        "sleep",
        "1000000",
    ]);
    assert!(by_hand.status.success(), "{}", text(&by_hand));
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(
            "* ugfix-live-web.service (its container differs: it was made after its unit \
             started (replaced by hand?): restart)"
        ),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("! container {renamed} runs")),
        "{shown}"
    );
    world.apply_ok("live");
    assert!(!is_running(&renamed));
    assert_eq!(serves(port).as_deref(), Some("web\n"));
    assert_eq!(plan(&world).0, Some(0));

    // extra's named volume removed while it was stopped (`docker volume
    // prune` does that too): its start makes it again, empty, and plan
    // said only "start".
    let extra = world.container("live", "extra");
    world.exec("live", "extra", "echo kept > /data/file");
    world
        .sandbox
        .systemctl(["stop", "ugfix-live-extra.service"]);
    let removed = support::docker::docker(["volume", "rm", "ugfix-live-data"]);
    assert!(removed.status.success(), "{}", text(&removed));
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    let gone = "its volume ugfix-live-data is gone: its start makes it again, EMPTY";
    assert!(
        shown.contains(&format!(
            "* ugfix-live-extra.service (inactive (dead), {gone}: start)"
        )),
        "{shown}"
    );
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(marked(&shown, "extra", gone), "{shown}");
    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(
            "warning: ugfix-live-extra.service is started with ugfix-live-data made again EMPTY"
        ),
        "{}",
        text(&out)
    );
    assert!(is_running(&extra));
    assert_eq!(
        world.exec("live", "extra", "ls /data"),
        "",
        "empty, as told"
    );
    assert_eq!(plan(&world).0, Some(0));

    // Its container replaced by hand while its unit was down (`docker run
    // --name` with the labels copied): plan said only "start", whose
    // `docker run` then failed on the name taken, and apply with it.
    world
        .sandbox
        .systemctl(["stop", "ugfix-live-extra.service"]);
    let by_hand = support::docker::docker([
        "run",
        "-d",
        "--name",
        &extra,
        "--network",
        "ugfix-live",
        "--label",
        "unitgen.app=ugfix",
        "--label",
        "unitgen.instance=live",
        "--label",
        "unitgen.service=extra",
        "unitgen-test/busybox:1",
        "sleep",
        "1000000",
    ]);
    assert!(by_hand.status.success(), "{}", text(&by_hand));
    let by_hand = String::from_utf8_lossy(&by_hand.stdout).trim().to_string();
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains("* ugfix-live-extra.service (inactive (dead): start)"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "! container {extra} runs with the instance's labels, but no unit of it runs it"
        )),
        "{shown}"
    );
    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert_ne!(
        world.id("live", "extra"),
        by_hand,
        "the unit's own container"
    );
    assert_eq!(plan(&world).0, Some(0));

    // Paused by hand (`docker pause`): Docker still lists it as up and the
    // unit is active, but it answers nothing.
    let web = world.container("live", "web");
    let started = world.id("live", "web");
    support::docker::pause(&web);
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(&format!(
            "* ugfix-live-web.service (its container {web} is paused: unpause)"
        )),
        "{shown}"
    );
    let out = world.unitgen(&["status", "live"]);
    let (code, shown) = (out.status.code(), text(&out));
    assert_eq!(code, Some(3), "not as applied: {shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("! web") && l.contains("paused")),
        "{shown}"
    );
    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("resumed {web}, which was paused")),
        "{}",
        text(&out)
    );
    assert_eq!(serves(port).as_deref(), Some("web\n"), "serves again");
    assert_eq!(world.id("live", "web"), started, "resumed, not restarted");
    assert_eq!(plan(&world).0, Some(0));

    // Disconnected from the instance network by hand: api runs and its unit
    // is active, but web can no longer reach it by name.
    let api = world.container("live", "api");
    // (Not busybox wget's -T: it crashes this busybox.)
    let reaches_api = |world: &World| {
        let out = support::docker::docker(["exec", &web, "wget", "-qO-", "http://api/"]);
        out.status.success() && String::from_utf8_lossy(&out.stdout) == greeting(world) + "\n"
    };
    // A server a unit just started may not listen yet on a loaded machine.
    let reaches_api_soon = |world: &World| {
        wait_for(Duration::from_secs(60), || reaches_api(world).then_some(())).is_some()
    };
    assert!(reaches_api_soon(&world), "web reaches api by name");
    let cut = support::docker::docker(["network", "disconnect", "ugfix-live", &api]);
    assert!(cut.status.success(), "{}", text(&cut));
    assert!(!reaches_api(&world), "disconnected");
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(
            "* ugfix-live-api.service (its container is not on network ugfix-live: restart)"
        ),
        "{shown}"
    );
    let out = world.unitgen(&["status", "live"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).lines().any(|l| l.starts_with("! api")),
        "{}",
        text(&out)
    );
    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert!(reaches_api_soon(&world), "apply joined it again");
    assert_eq!(plan(&world).0, Some(0));

    // A container started by hand with the instance's labels, on its
    // network under api's alias: it answers for api, no unit runs it.
    let stray = world.container("live", "stray");
    let started_by_hand = support::docker::docker([
        "run",
        "-d",
        "--name",
        &stray,
        "--network",
        "ugfix-live",
        "--network-alias",
        "api",
        "--label",
        "unitgen.app=ugfix",
        "--label",
        "unitgen.instance=live",
        "unitgen-test/busybox:1",
        "sleep",
        "1000000",
    ]);
    assert!(
        started_by_hand.status.success(),
        "{}",
        text(&started_by_hand)
    );
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(&format!(
            "! container {stray} runs with the instance's labels, but no unit of it runs it"
        )),
        "{shown}"
    );
    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("removed {stray}")),
        "{}",
        text(&out)
    );
    assert!(!is_running(&stray), "the stray container is gone");
    assert_eq!(plan(&world).0, Some(0));

    // The instance network removed by hand (its containers disconnected
    // first, as Docker demands): everything runs, nothing reaches anything,
    // and the network unit, a oneshot, stays active.
    for service in ["api", "web", "extra"] {
        let container = world.container("live", service);
        let cut = support::docker::docker(["network", "disconnect", "ugfix-live", &container]);
        assert!(cut.status.success(), "{}", text(&cut));
    }
    let removed = support::docker::docker(["network", "rm", "ugfix-live"]);
    assert!(removed.status.success(), "{}", text(&removed));
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains("* ugfix-live-network.service (its network ugfix-live is gone: restart)"),
        "{shown}"
    );
    let out = world.unitgen(&["status", "live"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).lines().any(|l| l.starts_with("! (network)")),
        "{}",
        text(&out)
    );
    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert!(reaches_api_soon(&world), "apply made the network again");
    assert_eq!(serves(port).as_deref(), Some("web\n"));
    assert_eq!(plan(&world).0, Some(0));

    // Its container killed (`docker kill`, the OOM killer): systemd waits
    // out `RestartSec=` before it runs the unit again. An apply meanwhile
    // started it, a start systemd holds until its own restart, which the
    // apply then counted against it: "did not stay up", and a restore.
    let killed = support::docker::docker(["kill", &api]);
    assert!(killed.status.success(), "{}", text(&killed));
    let waiting = wait_for(Duration::from_secs(60), || {
        let out = world.sandbox.systemctl([
            "show",
            "--property=SubState",
            "--value",
            "ugfix-live-api.service",
        ]);
        (String::from_utf8_lossy(&out.stdout).trim() == "auto-restart").then_some(())
    });
    assert!(waiting.is_some(), "systemd waits to restart api");
    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("restart ugfix-live-api.service"),
        "{}",
        text(&out)
    );
    assert!(reaches_api_soon(&world), "api runs again");
    assert_eq!(plan(&world).0, Some(0));

    // A stopped container left with web's name (a `docker run` killed after
    // creating it), whose network was then removed by hand: the network
    // unit looked for leftovers only when the network was there already,
    // so every apply failed on web's `docker run --name`. Containers of
    // another instance and of another app, stopped too, are not leftovers.
    let stopped = world.sandbox.systemctl(["stop", "ugfix-live.target"]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    let all_stopped = wait_for(Duration::from_secs(60), || {
        let gone = ["api", "web", "extra"]
            .iter()
            .all(|s| support::docker::container_id(&world.container("live", s)).is_none());
        (gone && world.active("ugfix-live-network.service") == "inactive").then_some(())
    });
    assert!(all_stopped.is_some(), "the instance stops");
    let by_hand = |args: &[&str]| {
        let out = support::docker::docker(args);
        assert!(out.status.success(), "docker {args:?}: {}", text(&out));
    };
    // (The network unit's stop may have left it: its removal is allowed
    // to fail while Docker still detaches the containers.)
    if support::docker::inspect_network("ugfix-live").is_none() {
        by_hand(&["network", "create", "ugfix-live"]);
    }
    let create = |name: &str, app: &str, instance: &str, network: &str| {
        by_hand(&[
            "create",
            "--name",
            name,
            "--label",
            &format!("unitgen.app={app}"),
            "--label",
            &format!("unitgen.instance={instance}"),
            "--network",
            network,
            "unitgen-test/busybox:1",
            "true",
        ]);
    };
    create("ugfix-live-web", "ugfix", "live", "ugfix-live");
    create("ugfix-other-web", "ugfix", "other", "bridge");
    world.also_own("ugfixother");
    create("ugfixother-live-web", "ugfixother", "live", "bridge");
    by_hand(&["network", "rm", "ugfix-live"]);
    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(serves(port).as_deref(), Some("web\n"), "web runs again");
    assert!(is_running("ugfix-live-web"), "web's own container");
    for other in ["ugfix-other-web", "ugfixother-live-web"] {
        assert!(
            support::docker::container_id(other).is_some(),
            "{other} is another's: kept"
        );
    }
    assert_eq!(plan(&world).0, Some(0));

    // The network unit as another unitgen wrote it (an upgrade changes its
    // script): apply restarted it, which restarted every service with it
    // (they require it), and called them untouched. Now it is rewritten,
    // and the services keep their containers.
    let running = ["api", "web", "extra"].map(|s| world.id("live", s));
    let network = world.unit_file("ugfix-live-network.service");
    let applied = std::fs::read_to_string(&network).unwrap();
    std::fs::write(
        &network,
        applied.replace("# Create the network", "# Create it"),
    )
    .unwrap();
    world.sandbox.systemctl(["daemon-reload"]);
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(&format!(
            "~ ugfix-live-network.service ({})",
            unitgen::plan::NETWORK_REWRITE
        )),
        "{shown}"
    );
    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("restart "), "{}", text(&out));
    assert_eq!(
        ["api", "web", "extra"].map(|s| world.id("live", s)),
        running,
        "no service restarted"
    );
    assert_eq!(std::fs::read_to_string(&network).unwrap(), applied);
    assert_eq!(plan(&world).0, Some(0));
}

/// A file of a unit's name in a directory systemd reads before the unit
/// directory (`/etc/systemd/system.control`, where `systemctl
/// set-property` and `systemctl edit --full` of a runtime unit write;
/// `/run/systemd/transient`) is what systemd runs: web served another page
/// while plan, status and apply said "up to date".
#[test]
fn a_file_systemd_reads_before_unitgens_is_told_and_left_in_place() {
    let world = World::new("ugelse");
    let port = free_port();
    world.write(&yaml("ugelse", "v1", None, port));
    world.apply_ok("live");
    let unit = "ugelse-live-web.service";
    let applied = std::fs::read_to_string(world.unit_file(unit)).unwrap();
    let other_page = applied.replace("echo web >", "echo other >");
    assert_ne!(other_page, applied);

    for dir in ["etc/systemd/system.control", "run/systemd/transient"] {
        let other = world.sandbox.root().join(dir);
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join(unit), &other_page).unwrap();
        world.sandbox.systemctl(["daemon-reload"]);
        world.sandbox.systemctl(["restart", unit]);
        assert_eq!(serves(port).as_deref(), Some("other\n"), "{dir} wins");
        let file = format!("/{dir}/{unit}");

        let (code, shown) = plan(&world);
        assert_eq!(code, Some(2), "{shown}");
        assert!(
            shown.contains(&format!(
                "! {unit} is loaded from {file}: {}",
                unitgen::plan::LOADED_ELSEWHERE
            )),
            "{shown}"
        );
        // Its enablement is the other file's: not a fault of unitgen's.
        assert!(!shown.contains("not enabled"), "{shown}");
        let (code, shown) = status(&world);
        assert_eq!(code, Some(3), "{shown}");
        assert!(
            marked(&shown, "web", &format!("loaded from {file}")),
            "{shown}"
        );
        // Not unitgen's to delete: told, left in place, not up to date.
        let out = world.apply("live");
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("warning: systemd loads {unit} from {file}"))
                && text(&out).contains(&format!(
                    "ugelse-live: its units are revision 1, but systemd runs {unit} from \
                     other files: not up to date"
                )),
            "{}",
            text(&out)
        );
        assert!(other.join(unit).exists(), "left in place");

        std::fs::remove_file(other.join(unit)).unwrap();
        world.sandbox.systemctl(["daemon-reload"]);
        world.sandbox.systemctl(["restart", unit]);
        assert_eq!(serves(port).as_deref(), Some("web\n"));
        assert_eq!(plan(&world).0, Some(0), "{dir}");
        assert_eq!(status(&world).0, Some(0), "{dir}");
    }
}

/// An image removed from the host while its container runs (`docker rmi`
/// of the tag, `docker image prune -a` of the backup's helper): all runs,
/// but the next start (a reboot, the night's backup) must pull it, and
/// fails where it cannot be had; plan, status and apply said "up to date".
/// Now told, and apply pulls it, restarting nothing.
#[test]
fn an_image_removed_from_under_a_running_service_is_pulled_again() {
    let registry = support::registry::Registry::start();
    registry.push_new("ugimg/web:1", "ugimg-web");
    registry.push_new("ugimg/helper:1", "ugimg-helper");
    let (web_image, helper) = (
        registry.image("ugimg/web:1"),
        registry.image("ugimg/helper:1"),
    );
    let world = World::new("ugimg");
    let password = world.sandbox.root().join("etc/ugimg/restic-password");
    std::fs::create_dir_all(password.parent().unwrap()).unwrap();
    std::fs::write(&password, "restic\n").unwrap();
    std::fs::set_permissions(
        &password,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    world.write(&format!(
        "app: ugimg
services:
  web:
    image: {web_image}
    command: [sleep, \"1000000\"]
    init: true
    volumes: [\"data:/data\"]
    backup: {{}}
backup:
  repository: /var/backups/ugimg
  password_file: /etc/ugimg/restic-password
  helper_image: {helper}
instances:
  live: {{}}
"
    ));
    world.apply_ok("live");
    assert_eq!(plan(&world).0, Some(0));
    let running = world.id("live", "web");

    // (The tag of an image a container uses goes only with --force.)
    for image in [&web_image, &helper] {
        let removed = support::docker::docker(["rmi", "--force", image.as_str()]);
        assert!(removed.status.success(), "{}", text(&removed));
    }
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    for image in [&web_image, &helper] {
        assert!(
            shown.contains(&format!(
                "! image {image} is not on this host any more (removed by hand?): the next \
                 start of what runs it must pull it; applying pulls it"
            )),
            "{shown}"
        );
    }
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(
        marked(
            &shown,
            "web",
            &format!("its image {web_image} is not on this host any more")
        ),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "its helper image {helper} is not on this host any more"
        )),
        "{shown}"
    );

    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "ugimg-live: pulled {helper}, {web_image}, which this host no longer had"
        )),
        "{}",
        text(&out)
    );
    assert_eq!(world.id("live", "web"), running, "nothing restarted");
    for image in [&web_image, &helper] {
        let back = support::docker::inspect_image(image);
        assert!(back.is_some(), "{image} is back");
    }
    assert_eq!(plan(&world).0, Some(0));
    assert_eq!(status(&world).0, Some(0));
}

/// A stopped service's named volume removed and made again by hand
/// (`docker volume rm`, then `docker volume create`, or a compose file's
/// `up` with the same name): it exists, so plan said only "start", whose
/// container then mounted the new, empty volume instead of its data.
#[test]
fn a_volume_made_again_while_its_service_is_stopped_is_told() {
    let world = World::new("ugvol");
    let port = free_port();
    world.write(&yaml("ugvol", "v1", Some("extra"), port));
    world.apply_ok("live");
    world.exec("live", "extra", "echo kept > /data/file");
    let stopped = world
        .sandbox
        .systemctl(["stop", "ugvol-live-extra.service"]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(!shown.contains("made again"), "the same volume: {shown}");

    // Docker counts a volume's time in whole seconds: made in a later
    // second than the stop.
    let after_stop = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    wait_for(Duration::from_secs(5), || {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        (now.unwrap().as_secs() > after_stop).then_some(())
    })
    .unwrap();
    for args in [
        ["volume", "rm", "ugvol-live-data"],
        ["volume", "create", "ugvol-live-data"],
    ] {
        let out = support::docker::docker(args);
        assert!(out.status.success(), "{}", text(&out));
    }
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    let again = "its volume ugvol-live-data was made again since it last stopped: its start \
                 mounts it as it is, not the data it ran with";
    assert!(
        shown.contains(&format!(
            "* ugvol-live-extra.service (inactive (dead), {again}: start)"
        )),
        "{shown}"
    );
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(marked(&shown, "extra", again), "{shown}");
    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(
            "warning: ugvol-live-extra.service is started with ugvol-live-data as made again \
             since it stopped"
        ),
        "{}",
        text(&out)
    );
    assert_eq!(world.exec("live", "extra", "ls /data"), "", "as told");
    assert_eq!(plan(&world).0, Some(0));

    // A first apply that fails (web ends at once) records no revision, but
    // extra's container made its volume: `destroy --volumes` found none to
    // remove ("no named volumes") and left it, with its data.
    let failing = yaml("ugvol", "v1", Some("extra"), free_port())
        .replace("echo web > /www/index.html && exec httpd", "exit 3; httpd")
        .replace("  live: {", "  first: {");
    world.write(&failing);
    let out = world.apply("first");
    assert!(!out.status.success(), "{}", text(&out));
    let volume = "ugvol-first-data";
    let exists = |volume: &str| support::docker::inspect_volume(volume).is_some();
    assert!(exists(volume), "made by extra's start: {}", text(&out));
    let out = world.unitgen(&["destroy", "first", "--volumes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("volumes removed: {volume}")),
        "{}",
        text(&out)
    );
    assert!(!exists(volume), "removed");
    assert!(exists("ugvol-live-data"), "not another instance's");
}

/// Issue 7 item 3: killed right after writing unit files, the next apply
/// started them but never enabled them (nothing ran after a reboot), or
/// restarted nothing (the old container kept serving) while `plan` said
/// "up to date". Each step of an apply is killed in turn here.
#[test]
fn an_apply_killed_at_any_step_is_completed_by_the_next_and_survives_a_reboot() {
    let mut world = World::new("ugkill");
    let port = free_port();
    world.write(&yaml("ugkill", "v0", Some("extra0"), port));
    world.apply_ok("live");

    let points = [
        "after-intent",
        "after-stop",
        "after-write-units",
        "after-enable",
        "after-reload",
        "after-start",
        "before-record",
        "after-record",
    ];
    let mut last = 0;
    for (i, point) in points.iter().enumerate() {
        let version = i + 1;
        let (greeting_now, extra) = (format!("v{version}"), format!("extra{version}"));
        // Each step: api changes, a service is added and one removed.
        world.write(&yaml("ugkill", &greeting_now, Some(&extra), port));
        let killed = world.unitgen_with(
            &["apply", "live", "--settle", "1"],
            &[("UNITGEN_FAULT", point)],
        );
        assert_eq!(
            killed.status.signal(),
            Some(6),
            "{point}: apply was not aborted: {}",
            text(&killed)
        );

        // In between, plan tells the truth: only after the revision was
        // recorded does the host run exactly the template.
        let (code, shown) = plan(&world);
        let expected = if *point == "after-record" { 0 } else { 2 };
        assert_eq!(code, Some(expected), "{point}: plan said\n{shown}");
        // status tells whether the host runs a recorded revision as
        // applied: before the kill changed anything (the old one), or once
        // the new one was recorded; not in between.
        let status = world.unitgen(&["status", "live"]);
        let expected = match *point {
            "after-intent" | "after-record" => 0,
            _ => 3,
        };
        assert_eq!(
            status.status.code(),
            Some(expected),
            "{point}: status said\n{}",
            text(&status)
        );

        world.apply_ok("live");
        for unit in ["api", "web", &extra] {
            let unit = format!("ugkill-live-{unit}.service");
            assert_eq!(is_enabled(&world, &unit), "enabled", "{point}: {unit}");
            assert_eq!(world.active(&unit), "active", "{point}: {unit}");
        }
        assert_eq!(
            greeting(&world),
            greeting_now,
            "{point}: api runs the new file"
        );
        let removed = format!("ugkill-live-extra{i}.service");
        assert!(!world.unit_file(&removed).exists(), "{point}: {removed}");
        assert!(!is_running(&format!("ugkill-live-extra{i}")), "{point}");
        let (code, shown) = plan(&world);
        assert_eq!(
            code,
            Some(0),
            "{point}: after the next apply, plan said\n{shown}"
        );
        last = version;
    }

    world.sandbox.reboot();
    let up = wait_for(Duration::from_secs(60), || {
        (is_running("ugkill-live-api") && is_running(&format!("ugkill-live-extra{last}")))
            .then_some(())
    });
    assert!(up.is_some(), "the instance runs again after a reboot");
    assert_eq!(greeting(&world), format!("v{last}"));
    assert!(serves(port).is_some());
    assert_eq!(plan(&world).0, Some(0));
}

/// The same promise at moments no fault point names: an apply killed
/// (SIGKILL) at moments spread over its run, its jobs half done, in its
/// settle window, or while it puts back the revision before a failed
/// change, leaves a host of which `plan` says "up to date" only when it
/// runs the template, and which the next apply brings to the template.
#[test]
fn an_apply_killed_at_any_moment_leaves_plan_truthful_and_is_finished_by_the_next() {
    let world = World::new("ugsig9");
    let port = free_port();
    let good = |version: usize| {
        yaml(
            "ugsig9",
            &format!("v{version}"),
            Some(&format!("extra{version}")),
            port,
        )
    };
    // api's new container exits 0.3 s after its start: a failed change,
    // which apply undoes.
    let failing =
        |version: usize| good(version).replace("exec httpd -f -p 80 -h /www", "sleep 0.3; exit 3");
    world.write(&good(0));
    world.apply_ok("live");
    let apply = ["apply", "live", "--settle", "1"];

    // How long each kind of apply takes here, only to spread the kills
    // over it.
    let mut version = 1;
    world.write(&good(version));
    let started = Instant::now();
    assert!(world.unitgen(&apply).status.success());
    let change = started.elapsed();
    runs_exactly(&world, version, "a change applied");
    world.write(&failing(version + 1));
    let started = Instant::now();
    assert_eq!(world.unitgen(&apply).status.code(), Some(1));
    let failure = started.elapsed();
    runs_exactly(&world, version, "a failed change undone");

    for (template, took, moments) in [
        (&good as &dyn Fn(usize) -> String, change, 5),
        (&failing, failure, 4),
    ] {
        for moment in 1..=moments {
            let before = version;
            version += 1;
            world.write(&template(version));
            let mut child = world.spawn(&apply);
            std::thread::sleep(took * moment / (moments + 1));
            let finished = child.try_wait().unwrap();
            if finished.is_none() {
                child.kill().unwrap();
            }
            let status = child.wait().unwrap();
            let at = format!(
                "v{version} killed at {moment}/{} of {took:?} ({status})",
                moments + 1
            );

            let (code, shown) = plan(&world);
            eprintln!("{at}: plan exited {code:?}");
            match code {
                // Up to date: the host must run exactly this template.
                Some(0) => runs_exactly(
                    &world,
                    version,
                    &format!("{at}: plan said up to date\n{shown}"),
                ),
                Some(2) => assert!(
                    finished.is_none_or(|s| !s.success()),
                    "{at}: the apply had succeeded, yet plan said\n{shown}"
                ),
                _ => panic!("{at}: plan said\n{shown}"),
            }

            // The next apply of a good template finishes the job, once the
            // jobs the killed one left with systemd are done (as when an
            // operator looks, then applies again).
            let idle = wait_for(Duration::from_secs(60), || {
                let jobs = world.sandbox.systemctl(["list-jobs", "--no-legend"]);
                String::from_utf8_lossy(&jobs.stdout)
                    .trim()
                    .is_empty()
                    .then_some(())
            });
            assert!(
                idle.is_some(),
                "{at}: systemd still has jobs after a minute"
            );
            version += 1;
            world.write(&good(version));
            let next = world.unitgen(&apply);
            assert!(
                next.status.success(),
                "{at}: the next apply failed:\n{}",
                text(&next)
            );
            runs_exactly(&world, version, &format!("{at}: after the next apply"));
            for old in [before, version - 1] {
                let unit = format!("ugsig9-live-extra{old}.service");
                assert!(!world.unit_file(&unit).exists(), "{at}: {unit} left behind");
                assert!(
                    !is_running(&format!("ugsig9-live-extra{old}")),
                    "{at}: extra{old} still runs"
                );
            }
            let (code, shown) = plan(&world);
            assert_eq!(
                code,
                Some(0),
                "{at}: after the next apply, plan said\n{shown}"
            );
        }
    }
}

/// The host runs the template of `version` (see [`yaml`]): its units
/// enabled and active, and api serving that version's greeting.
fn runs_exactly(world: &World, version: usize, context: &str) {
    for service in ["api", "web", &format!("extra{version}")] {
        let unit = format!("ugsig9-live-{service}.service");
        assert_eq!(is_enabled(world, &unit), "enabled", "{context}: {unit}");
        assert_eq!(world.active(&unit), "active", "{context}: {unit}");
    }
    assert_eq!(
        greeting(world),
        format!("v{version}"),
        "{context}: api's greeting"
    );
}

fn mount(world: &World, args: &[&str]) {
    let out = world.sandbox.exec("mount", args);
    assert!(out.status.success(), "mount {args:?}: {}", text(&out));
}

fn umount(world: &World, path: &str) {
    let out = world.sandbox.exec("umount", [path]);
    assert!(out.status.success(), "umount {path}: {}", text(&out));
}

/// While an apply runs, its record is of a command under way: `plan`,
/// `status` and `ls` (which take no lock) say another command is changing
/// the instance, not that an apply "did not finish", which sent users to
/// run a second apply beside the first. Once it is killed, it did not.
#[test]
fn a_command_under_way_is_told_as_such_not_as_unfinished() {
    let world = World::new("ugbusy");
    let port = free_port();
    world.write(&yaml("ugbusy", "v1", None, port));
    world.apply_ok("live");
    world.write(&yaml("ugbusy", "v2", None, port));
    // An apply that waits out a long settle window after its starts.
    let mut apply = world.spawn(&["apply", "live", "--settle", "120"]);
    let api = world.unit_file("ugbusy-live-api.service");
    let written = wait_for(Duration::from_secs(60), || {
        (std::fs::read_to_string(&api).ok()?.contains("GREETING=v2")).then_some(())
    });
    assert!(written.is_some(), "the apply wrote the new unit");

    let changing = "another unitgen command (apply, rollback, destroy or restore) is changing \
                    ugbusy-live right now";
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains(changing), "{shown}");
    assert!(!shown.contains("did not finish"), "{shown}");
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(shown.contains(changing), "{shown}");
    assert!(!shown.contains("did not finish"), "{shown}");
    let listed = text(&world.ls());
    let row = listed
        .lines()
        .find(|l| l.contains("ugbusy"))
        .unwrap_or_default();
    assert!(row.contains("being changed now"), "{listed}");

    apply.kill().unwrap();
    apply.wait().unwrap();
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("an earlier apply did not finish"), "{shown}");
    assert!(!shown.contains(changing), "{shown}");
    world.apply_ok("live");
    assert_eq!(plan(&world).0, Some(0));
}

/// Issue 7 item 8: with a read-only unit directory apply said the previous
/// revision could NOT be restored (nothing had been changed); with a full
/// state directory the host was changed, apply said only "recording the
/// revision", and the next plan said "up to date".
#[test]
fn a_read_only_unit_dir_and_a_full_state_dir_are_told_truthfully() {
    let world = World::new("ugfull");
    let port = free_port();
    world.write(&yaml("ugfull", "v1", None, port));
    world.apply_ok("live");
    world.write(&yaml("ugfull", "v2", None, port));

    const UNITS: &str = "/etc/systemd/system";
    mount(&world, &["--bind", UNITS, UNITS]);
    mount(&world, &["-o", "remount,ro,bind", UNITS]);
    let out = world.apply("live");
    umount(&world, UNITS);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("cannot write unit files"), "{said}");
    assert!(said.contains("nothing on the host was changed"), "{said}");
    assert!(!said.contains("could NOT be restored"), "{said}");
    assert_eq!(greeting(&world), "v1");

    // A state directory with room for the lock and the apply's intent, and
    // not for the revision (tmpfs counts its root folder as one inode).
    const STATE: &str = "/var/lib/unitgen";
    mount(
        &world,
        &["-t", "tmpfs", "-o", "nr_inodes=5", "tmpfs", STATE],
    );
    let out = world.apply("live");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("the host runs the new units"), "{said}");
    assert!(said.contains("No space left on device"), "{said}");
    assert_eq!(greeting(&world), "v2", "the host was changed");
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("an earlier apply did not finish"), "{shown}");
    assert_eq!(world.unitgen(&["status", "live"]).status.code(), Some(3));

    // The old state directory again: it records revision 1 (v1).
    umount(&world, STATE);
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains("the installed units are not revision 1 as recorded"),
        "{shown}"
    );
    world.apply_ok("live");
    assert_eq!(plan(&world).0, Some(0));
    assert_eq!(greeting(&world), "v2");
}

/// A full unit directory (ENOSPC while the new unit files are written):
/// apply said "No space left on device" without the file, and its restore
/// restarted every changed service of the last good revision, whose
/// processes the failed apply had never touched. Now the error names the
/// file, nothing is restarted or left half-installed, and the apply after
/// space is freed completes.
#[test]
fn a_full_unit_dir_names_the_file_restarts_nothing_and_the_next_apply_completes() {
    let world = World::new("ugnospace");
    let port = free_port();
    world.write(&yaml("ugnospace", "v1", None, port));
    world.apply_ok("live");
    let (api, web) = (world.id("live", "api"), world.id("live", "web"));
    // api changes, extra is new.
    world.write(&yaml("ugnospace", "v2", Some("extra"), port));

    // The unit directory on a small tmpfs of its own, filled up.
    const UNITS: &str = "/etc/systemd/system";
    let fill = format!(
        "mkdir -p /run/full && mount -t tmpfs -o size=2m tmpfs /run/full \
         && cp -a {UNITS}/. /run/full/ && mount --bind /run/full {UNITS} \
         && (dd if=/dev/zero of={UNITS}/filler bs=4096 2>/dev/null; true)"
    );
    let out = world.sandbox.exec("sh", ["-c", &fill]);
    assert!(out.status.success(), "{}", text(&out));
    let out = world.apply("live");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("No space left on device"), "{said}");
    // (The first file written: extra's, new, or api's, changed.)
    let file = world.unit_file("ugnospace-live-");
    assert!(
        said.replace("\n  │ ", "")
            .contains(&file.display().to_string()),
        "the error names the file: {said}"
    );
    assert!(
        said.contains("the previous revision was restored"),
        "{said}"
    );
    assert_eq!(world.id("live", "api"), api, "api was restarted");
    assert_eq!(world.id("live", "web"), web, "web was restarted");
    assert_eq!(greeting(&world), "v1");
    assert!(!world.unit_file("ugnospace-live-extra.service").exists());
    let units = std::fs::read_dir(world.sandbox.unit_dir()).unwrap();
    let names: Vec<String> = units
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with(".unitgen")),
        "{names:?}"
    );
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert_eq!(status(&world).0, Some(0));

    std::fs::remove_file(world.unit_file("filler")).unwrap();
    world.apply_ok("live");
    assert_eq!(greeting(&world), "v2");
    assert_eq!(world.active("ugnospace-live-extra.service"), "active");
    assert_eq!(plan(&world).0, Some(0));
}

/// The backup's failure hook (a template, `…-backup-failed@.service`, whose
/// instances `OnFailure=` starts) masked by hand: no failed backup would
/// ever be told, while plan and status said up to date (a template has no
/// state of its own, so they skipped it). Now told as any masked unit.
/// A hook instance started by hand, which runs once and ends, is nothing
/// to tell.
#[test]
fn a_masked_failure_hook_is_told() {
    let world = World::new("ughook");
    let yaml = "app: ughook
services:
  db:
    image: unitgen-test/busybox:1
    command: [sleep, \"1000000\"]
    init: true
    volumes: [\"data:/data\"]
    backup: {}
backup:
  repository: /var/backups/ughook
  password_file: /etc/ughook/password
  helper_image: unitgen-test/busybox:1
  schedule: monthly
  on_failure: 'echo \"$FAILED_UNIT\" >> /var/tmp/ughook-hook'
instances:
  live: {}
";
    world.write(yaml);
    world.apply_ok("live");
    let hook = "ughook-live-backup-failed@.service";
    let by_hand = world
        .sandbox
        .systemctl(["start", "ughook-live-backup-failed@by-hand.service"]);
    assert!(by_hand.status.success(), "{}", text(&by_hand));
    assert_eq!(plan(&world).0, Some(0));
    assert_eq!(status(&world).0, Some(0));

    let control = world.sandbox.root().join("etc/systemd/system.control");
    std::fs::create_dir_all(&control).unwrap();
    std::os::unix::fs::symlink("/dev/null", control.join(hook)).unwrap();
    world.sandbox.systemctl(["daemon-reload"]);
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(&format!("* {hook} (masked: systemd will not start it;")),
        "{shown}"
    );
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(shown.contains(&format!("! {hook}: masked")), "{shown}");
    let out = world.apply("live");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{hook} is masked")),
        "{}",
        text(&out)
    );

    std::fs::remove_file(control.join(hook)).unwrap();
    world.sandbox.systemctl(["daemon-reload"]);
    assert_eq!(plan(&world).0, Some(0));
    assert_eq!(status(&world).0, Some(0));
}

/// `web` routed by the host's router (plain HTTP, behind basic auth, so the
/// router holds a copy of the htpasswd file), `api` with a greeting and a
/// secret.
fn routed_yaml(world: &World, app: &str, greeting: &str, ports: (u16, u16, u16)) -> String {
    let (port, http, https) = ports;
    format!(
        "app: {app}
services:
  api:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo \"$GREETING\" > /www/index.html && exec httpd -f -p 80 -h /www']
    init: true
    environment: {{GREETING: \"{greeting}\"}}
    secrets: {{TOKEN: token}}
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo web > /www/index.html && exec httpd -f -p 80 -h /www']
    init: true
    ports: [\"127.0.0.1:{{{{ port }}}}:80\"]
secrets:
  token: {{file: token.txt}}
instances:
  live:
    port: {port}
    routes:
      - hosts: live.example.test
        service: web
        port: 80
        tls: off
        basic_auth: users.htpasswd
router:
  image: {image}
  directory: {dir}
  address: 127.0.0.1
  http_port: {http}
  https_port: {https}
",
        image = support::traefik::IMAGE,
        dir = world.sandbox.shared_dir().join("router").display(),
    )
}

fn killed_at(world: &World, args: &[&str], point: &str) {
    let killed = world.unitgen_with(args, &[("UNITGEN_FAULT", point)]);
    assert_eq!(
        killed.status.signal(),
        Some(6),
        "{args:?} was not aborted at {point}: {}",
        text(&killed)
    );
}

/// The crash-safety promise beyond apply: a rollback killed halfway was
/// not seen by `plan` (killed before it changed anything, plan said "up to
/// date") and, killed after it recorded its revision, running it again
/// rolled back the rollback; a destroy killed after it removed the unit
/// files left the router running and its copies in place, since the next
/// destroy found nothing installed, and `plan` never said a destroy was
/// interrupted.
#[test]
fn a_rollback_or_destroy_killed_halfway_is_told_and_finished_by_the_next_command() {
    let mut world = World::new("ugcrash");
    world.own_router();
    let ports = (free_port(), free_port(), free_port());
    let out = std::process::Command::new("openssl")
        .args(["passwd", "-apr1", "wonderland"])
        .output()
        .unwrap();
    let hash = String::from_utf8(out.stdout).unwrap();
    std::fs::write(world.dir().join("users.htpasswd"), format!("alice:{hash}")).unwrap();
    std::fs::write(world.dir().join("token.txt"), "s3cr3t-ugcrash\n").unwrap();
    world.write(&routed_yaml(&world, "ugcrash", "v1", ports));
    world.apply_ok("live");
    world.write(&routed_yaml(&world, "ugcrash", "v2", ports));
    world.apply_ok("live");
    assert_eq!(greeting(&world), "v2");

    // Rollback killed before it changed anything: the host still runs the
    // template, but not what was asked for.
    killed_at(&world, &["rollback", "live"], "after-intent");
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(
            "an earlier rollback to revision 1 did not finish: `unitgen rollback ugcrash/live` finishes it"
        ),
        "{shown}"
    );
    let status = world.unitgen(&["status", "live"]);
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));
    assert!(text(&status).contains("a rollback to revision 1 did not finish"));
    let out = world.unitgen(&["rollback", "live"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(greeting(&world), "v1");

    // Rollback (to revision 2 now) killed after it recorded revision 4:
    // running it again finishes it instead of going back to revision 3.
    killed_at(&world, &["rollback", "live"], "after-record");
    assert_eq!(greeting(&world), "v2");
    let out = world.unitgen(&["rollback", "live"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("finishing the rollback to revision 2"),
        "{}",
        text(&out)
    );
    assert_eq!(greeting(&world), "v2");
    assert_eq!(plan(&world).0, Some(0), "v2 is the template");

    // Killed there again (to revision 3, v1, recording 5), then restarted:
    // the rollback is done, and the next one goes back from revision 5 (to
    // 4, v2). Before, the restart left its record, and that rollback said
    // "finishing the rollback to revision 3" and stayed at v1.
    killed_at(&world, &["rollback", "live"], "after-record");
    assert_eq!(greeting(&world), "v1");
    let out = world.unitgen(&["restart", "live"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = world.unitgen(&["rollback", "live"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("rolling ugcrash-live back to revision 4"),
        "{}",
        text(&out)
    );
    assert_eq!(greeting(&world), "v2");

    let destroy_note = "an earlier destroy of ugcrash-live did not finish: `unitgen destroy ugcrash/live` finishes it";
    // plan tells the destroy that did not finish, as drift.
    let told = || {
        let (code, shown) = plan(&world);
        assert_eq!(code, Some(2), "{shown}");
        assert!(shown.contains(destroy_note), "{shown}");
        shown
    };
    let routed = || {
        support::traefik::get_as(
            Some("alice:wonderland"),
            "http",
            "live.example.test",
            ports.1,
            "/",
            None,
        )
    };
    // Destroy killed with its units stopped, their files still there: plan
    // says so, and apply brings the instance back.
    killed_at(&world, &["destroy", "live"], "after-stop");
    assert_eq!(world.active("ugcrash-live-api.service"), "inactive");
    told();
    world.apply_ok("live");
    assert_eq!(greeting(&world), "v2");
    assert_eq!(plan(&world).0, Some(0));

    // Killed after the router went (this was its only routed instance):
    // apply brings the router back too.
    killed_at(&world, &["destroy", "live"], "after-unroute");
    assert!(!world.unit_file("unitgen-router.service").exists());
    told();
    world.apply_ok("live");
    assert_eq!(world.active("unitgen-router.service"), "active");
    support::traefik::wait_until(
        Duration::from_secs(60),
        "live.example.test is routed again",
        routed,
        |a| a.status == 200 && a.body.trim() == "web",
    );
    assert_eq!(plan(&world).0, Some(0));

    // Killed with the unit files deleted: nothing of the instance is
    // installed, yet the router, its copies and the secrets are still
    // there. The next destroy removes them.
    killed_at(&world, &["destroy", "live"], "after-remove-units");
    assert!(!world.unit_file("ugcrash-live-api.service").exists());
    let shown = told();
    assert!(shown.contains("+ ugcrash-live-api.service"), "{shown}");
    let out = world.unitgen(&["destroy", "live"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("finishing the destroy that was interrupted"),
        "{said}"
    );
    assert!(said.contains("no instance has routes any more"), "{said}");
    assert!(!world.unit_file("unitgen-router.service").exists());
    assert!(!is_running(world.router()));
    let router_files = world.sandbox.shared_dir().join("router/files/ugcrash-live");
    assert!(!router_files.exists(), "{}", router_files.display());
    let state = world.sandbox.root().join("var/lib/unitgen/ugcrash-live");
    // (The digests' key stays with the revisions: see tests/secrets.rs.)
    assert!(!state.join("secrets/api.env").exists(), "the secrets went");
    assert!(!state.join("applying.json").exists(), "the destroy is done");
    for service in ["api", "web"] {
        assert!(!is_running(&format!("ugcrash-live-{service}")));
    }
    let networks = support::docker::list_networks(&[("name", "ugcrash-")]);
    assert_eq!(networks, Vec::<serde_json::Value>::new());
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(!shown.contains(destroy_note), "{shown}");
    // And once more: nothing left to do is no error.
    let out = world.unitgen(&["destroy", "live"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// Docker allows two networks of one name (two creates at once; a create
/// whose client was killed goes on in the engine), and then every
/// service's `docker run --network` failed as ambiguous, start after start
/// (seen in CI: a restart killed while the network unit stopped, then run
/// again). The network unit's start keeps one, as fleet's copies do.
#[test]
fn a_duplicated_instance_network_is_repaired_by_the_next_start() {
    let world = World::new("ugdupnet");
    let port = free_port();
    world.write(&yaml("ugdupnet", "v1", None, port));
    world.apply_ok("live");
    let out = world.unitgen(&["stop", "live"]);
    assert!(out.status.success(), "{}", text(&out));
    remove_networks("ugdupnet-live");
    create_duplicate("ugdupnet-live");
    create_duplicate("ugdupnet-live");
    assert_eq!(networks("ugdupnet-live").len(), 2);

    let out = world.unitgen(&["start", "live"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(serves(port).as_deref().map(str::trim), Some("web"));
    assert_eq!(networks("ugdupnet-live").len(), 1);
    assert_eq!(plan(&world).0, Some(0));
}

/// The state folder's records damaged (by hand, a bad disk) or deleted
/// after an apply killed between loading its new files and restarting
/// onto them: `plan` and `status` said only "applying.json: unreadable"
/// (exit 1), every command refused without a way out, and with the record
/// deleted the next apply recorded the revision while `api` still ran the
/// old greeting. Now an unreadable record is a command that did not
/// finish: `plan` says so (exit 2), apply restarts the units whose files
/// were written since they started, and keeps the damaged record as
/// `applying.json.unreadable`; a rollback asks which revision to go to. A
/// damaged `revision.json` is refused with the `mv` that sets it aside, a
/// damaged `restoring.json` is told and can be moved away.
#[test]
fn damaged_or_deleted_records_are_told_and_repaired_by_the_next_apply() {
    let world = World::new("ugdamage");
    let port = free_port();
    world.write(&yaml("ugdamage", "v0", None, port));
    world.apply_ok("live");
    let dir = world.sandbox.root().join("var/lib/unitgen/ugdamage-live");
    let record = dir.join("applying.json");
    let kept = dir.join("applying.json.unreadable");
    let damages: [(&str, Option<&[u8]>); 3] = [
        ("garbage", Some(b"{\"digest\": \"sha256:")),
        ("not UTF-8", Some(&[0xff, 0x00, 0xfe])),
        ("deleted", None),
    ];
    for (i, (damage, bytes)) in damages.iter().enumerate() {
        let version = format!("v{}", i + 1);
        world.write(&yaml("ugdamage", &version, None, port));
        let killed = world.unitgen_with(&["apply", "live"], &[("UNITGEN_FAULT", "after-reload")]);
        assert_eq!(killed.status.signal(), Some(6), "{}", text(&killed));
        match bytes {
            Some(bytes) => std::fs::write(&record, bytes).unwrap(),
            None => std::fs::remove_file(&record).unwrap(),
        }
        let (code, shown) = plan(&world);
        assert_eq!(code, Some(2), "{damage}: plan said\n{shown}");
        if bytes.is_some() {
            assert!(shown.contains("applying.json: unreadable"), "{shown}");
        }
        assert!(shown.contains("api.service"), "{damage}: {shown}");
        assert_eq!(status(&world).0, Some(3), "{damage}");
        world.apply_ok("live");
        assert_eq!(greeting(&world), version, "{damage}: api runs the new file");
        assert_eq!(plan(&world).0, Some(0), "{damage}");
        if let Some(bytes) = bytes {
            assert_eq!(std::fs::read(&kept).unwrap(), *bytes, "{damage}: kept");
        }
    }

    // A rollback cannot tell where an unreadable record was going.
    std::fs::write(&record, "{").unwrap();
    let (code, said) = world.unitgen_said(&["rollback", "live"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("--to N"), "{said}");
    assert_eq!(greeting(&world), "v3", "nothing changed");
    // Revision 2 is v1's.
    let (code, said) = world.unitgen_said(&["rollback", "live", "--to", "2"]);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(greeting(&world), "v1");
    assert_eq!(status(&world).0, Some(0), "the revision runs as applied");
    world.apply_ok("live");

    // A revision's record: refused with the way out, which then works.
    let latest = world.unitgen(&["history", "live"]);
    assert!(latest.status.success(), "{}", text(&latest));
    let revisions = dir.join("revisions");
    let last = std::fs::read_dir(&revisions)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .max()
        .unwrap();
    std::fs::write(revisions.join(&last).join("revision.json"), "[").unwrap();
    // On a terminal as narrow as 40 columns (the sandbox's state path is
    // longer), the command is whole; copied and run, it is the way out.
    let out = world.unitgen_with(&["plan", "live"], &[("COLUMNS", "40")]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("revision.json:"), "{said}");
    run_as_copied(&said, "mv");
    let aside = format!(".{last}.unreadable");
    assert!(revisions.join(&aside).join("revision.json").exists());
    assert_eq!(
        plan(&world).0,
        Some(2),
        "the units are recorded by no revision"
    );
    world.apply_ok("live");
    assert_eq!(plan(&world).0, Some(0));
    assert_eq!(greeting(&world), "v3");

    // A restore's record.
    std::fs::write(dir.join("restoring.json"), "{\"snapshot\": 1}").unwrap();
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("restoring.json: unreadable"), "{shown}");
    assert!(
        shown.contains("if none was under way, move the record away:"),
        "{shown}"
    );
    run_as_copied(&shown, "mv");
    assert!(dir.join("restoring.json.unreadable").exists());
    assert_eq!(plan(&world).0, Some(0));
}

/// The Docker engine unreachable (its socket gone, a wrong DOCKER_HOST):
/// apply's headline said only that a unit failed, the engine named in that
/// unit's explanation alone, after the old container was stopped. Now the
/// engine is asked first: apply fails at once, its headline names the
/// engine's address and the fix, and nothing on the host is changed; also
/// on a first apply, which asked Docker nothing before its starts.
#[test]
fn an_unreachable_docker_engine_is_told_first_and_changes_nothing() {
    let world = World::new("ugnodocker");
    let port = free_port();
    world.write(&yaml("ugnodocker", "v1", None, port));
    world.apply_ok("live");
    world.write(&yaml("ugnodocker", "v2", None, port).replace(
        "instances:\n",
        &format!("instances:\n  new: {{port: {}}}\n", free_port()),
    ));

    const NOWHERE: &str = "unix:///run/ugnodocker/docker.sock";
    let units_env = format!("DOCKER_HOST={NOWHERE}");
    let set = world.sandbox.systemctl(["set-environment", &units_env]);
    assert!(set.status.success());
    let out = world.unitgen_with(&["apply", "live"], &[("DOCKER_HOST", NOWHERE)]);
    let unset = world
        .sandbox
        .systemctl(["unset-environment", "DOCKER_HOST"]);
    assert!(unset.status.success());
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    // The error as one line (the terminal's width wraps it).
    let flat: String = (said.chars())
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect();
    assert!(
        flat.contains("applyofugnodocker-livefailed:theDockerengineisunreachable:")
            && flat.contains("/run/ugnodocker/docker.sock"),
        "{said}"
    );
    assert!(said.contains("DOCKER_HOST"), "{said}");
    assert!(said.contains("nothing on the host was changed"), "{said}");
    assert_eq!(greeting(&world), "v1");
    assert_eq!(world.active("ugnodocker-live-api.service"), "active");

    // A first apply (nothing to look at before the starts) is refused too,
    // without a unit file written.
    let set = world.sandbox.systemctl(["set-environment", &units_env]);
    assert!(set.status.success());
    let out = world.unitgen_with(&["apply", "new"], &[("DOCKER_HOST", NOWHERE)]);
    let unset = world
        .sandbox
        .systemctl(["unset-environment", "DOCKER_HOST"]);
    assert!(unset.status.success());
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let flat: String = (said.chars())
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect();
    assert!(
        flat.contains("applyofugnodocker-newfailed:theDockerengineisunreachable:"),
        "{said}"
    );
    assert!(!world.unit_file("ugnodocker-new-api.service").exists());

    world.apply_ok("live");
    assert_eq!(greeting(&world), "v2");
    assert_eq!(plan(&world).0, Some(0));
}

/// A unit file removed by hand while systemd runs it (with or without a
/// `daemon-reload`: systemd keeps running what it loaded). plan called it
/// new ("enable and start") and its container a stray no unit runs; apply
/// removed that container, "started" the unit (still active: nothing
/// done), found it restarted by systemd, failed, and stopped it while
/// "restoring": the service was down, with no file, after the repair.
#[test]
fn a_unit_file_removed_while_systemd_runs_it_is_written_back_and_restarted() {
    let world = World::new("ugrmf");
    let port = free_port();
    world.write(&yaml("ugrmf", "v1", None, port));
    world.apply_ok("live");
    let web = world.unit_file("ugrmf-live-web.service");
    let applied = std::fs::read_to_string(&web).unwrap();
    for reload in [false, true] {
        let api = world.id("live", "api");
        let before = world.id("live", "web");
        std::fs::remove_file(&web).unwrap();
        if reload {
            world.sandbox.systemctl(["daemon-reload"]);
        }
        let (code, shown) = plan(&world);
        assert_eq!(code, Some(2), "{shown}");
        assert!(
            shown.contains(&format!(
                "+ ugrmf-live-web.service ({})",
                unitgen::plan::RUNNING_WITHOUT_FILE
            )),
            "{shown}"
        );
        assert!(!shown.contains("! container"), "not a stray: {shown}");
        let (code, shown) = status(&world);
        assert_eq!(code, Some(3), "{shown}");
        assert!(
            shown.contains("ugrmf-live-web.service: active (running), but its file is gone"),
            "{shown}"
        );
        assert!(!shown.contains("no unit of it runs it"), "{shown}");
        let out = world.apply("live");
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("restart ugrmf-live-web.service"),
            "{}",
            text(&out)
        );
        assert_eq!(std::fs::read_to_string(&web).unwrap(), applied);
        assert_eq!(is_enabled(&world, "ugrmf-live-web.service"), "enabled");
        assert_ne!(world.id("live", "web"), before, "restarted from its file");
        assert_eq!(world.id("live", "api"), api, "api untouched");
        assert_eq!(serves(port).as_deref(), Some("web\n"));
        assert_eq!(plan(&world).0, Some(0));
        assert_eq!(status(&world).0, Some(0));
    }
}

/// The instance network made again by hand under its name, with other
/// settings (`docker network create --internal`, no labels) while the
/// services were stopped: the network unit, a oneshot, stayed active and
/// its next start keeps any network of its name, so plan said only
/// "start" of the services, apply started them on it, and said "up to
/// date" while web's published port answered nothing.
#[test]
fn a_network_made_again_by_hand_with_other_settings_is_made_again_by_apply() {
    let world = World::new("ugnet");
    let port = free_port();
    world.write(&yaml("ugnet", "v1", None, port));
    world.apply_ok("live");
    assert_eq!(serves(port).as_deref(), Some("web\n"));
    let stopped =
        world
            .sandbox
            .systemctl(["stop", "ugnet-live-api.service", "ugnet-live-web.service"]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    let removed = support::docker::docker(["network", "rm", "ugnet-live"]);
    assert!(removed.status.success(), "{}", text(&removed));
    let made = support::docker::docker(["network", "create", "--internal", "ugnet-live"]);
    assert!(made.status.success(), "{}", text(&made));

    let differs = "its network ugnet-live is not as it makes it (made again by hand?): \
                   it has not the instance's labels, internal (no way out, no published port)";
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(&format!(
            "* ugnet-live-network.service ({differs}: restart)"
        )),
        "{shown}"
    );
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(marked(&shown, "(network)", differs), "{shown}");
    world.apply_ok("live");
    let network = support::docker::inspect_network("ugnet-live").expect("ugnet-live made again");
    assert_eq!(network["Internal"], false);
    assert_eq!(network["Labels"]["unitgen.app"], "ugnet");
    assert_eq!(serves(port).as_deref(), Some("web\n"), "reached again");
    assert_eq!(plan(&world).0, Some(0));
    assert_eq!(status(&world).0, Some(0));

    // The same while they run on it (connected to the one made by hand):
    // the network unit's restart stops them first, then makes it again,
    // and starts them again, which apply awaits and tells (it returned
    // while they were still down, and called them untouched).
    let api = world.id("live", "api");
    for service in ["api", "web"] {
        let cut = support::docker::docker([
            "network",
            "disconnect",
            "ugnet-live",
            &world.container("live", service),
        ]);
        assert!(cut.status.success(), "{}", text(&cut));
    }
    let removed = support::docker::docker(["network", "rm", "ugnet-live"]);
    assert!(removed.status.success(), "{}", text(&removed));
    // With the instance's labels this time, and an option that keeps its
    // containers from reaching each other: told by that option.
    let made = support::docker::docker([
        "network",
        "create",
        "--label",
        "unitgen.app=ugnet",
        "--label",
        "unitgen.instance=live",
        "--opt",
        "com.docker.network.bridge.enable_icc=false",
        "ugnet-live",
    ]);
    assert!(made.status.success(), "{}", text(&made));
    let differs = "its network ugnet-live is not as it makes it (made again by hand?): \
                   option com.docker.network.bridge.enable_icc=false, which the unit does not set";
    for service in ["api", "web"] {
        let joined = support::docker::docker([
            "network",
            "connect",
            "ugnet-live",
            &world.container("live", service),
        ]);
        assert!(joined.status.success(), "{}", text(&joined));
    }
    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(&format!(
            "* ugnet-live-network.service ({differs}: restart)"
        )),
        "{shown}"
    );
    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    for service in ["api", "web"] {
        assert!(
            text(&out).contains(&format!("restart ugnet-live-{service}.service")),
            "{}",
            text(&out)
        );
    }
    assert_ne!(world.id("live", "api"), api, "restarted with its network");
    assert_eq!(serves(port).as_deref(), Some("web\n"));
    assert_eq!(plan(&world).0, Some(0));
}

/// A container made by hand under the name of a stopped service's
/// container without the instance's labels (or with them, but not
/// running: `docker create`): plan saw only labelled running strays, said
/// "start", and apply's `docker run --name` failed on the name.
#[test]
fn a_container_made_by_hand_under_a_stopped_services_name_is_removed_before_its_start() {
    let world = World::new("ugname");
    let port = free_port();
    world.write(&yaml("ugname", "v1", None, port));
    world.apply_ok("live");
    let web = world.container("live", "web");
    let holders: [&[&str]; 2] = [
        &[
            "run",
            "-d",
            "--name",
            &web,
            "unitgen-test/busybox:1",
            "sleep",
            "1000000",
        ],
        &[
            "create",
            "--name",
            &web,
            "--label",
            "unitgen.app=ugname",
            "--label",
            "unitgen.instance=live",
            "unitgen-test/busybox:1",
            "true",
        ],
    ];
    for holder in holders {
        let api = world.id("live", "api");
        let stopped = world.sandbox.systemctl(["stop", "ugname-live-web.service"]);
        assert!(stopped.status.success(), "{}", text(&stopped));
        let made = support::docker::docker(holder);
        assert!(made.status.success(), "{}", text(&made));
        let by_hand = support::docker::container_id(&web).unwrap();

        let (code, shown) = plan(&world);
        assert_eq!(code, Some(2), "{shown}");
        assert!(
            shown.contains("* ugname-live-web.service (inactive (dead): start)"),
            "{shown}"
        );
        assert!(
            shown.contains(&format!(
                "! container {web} has the name of ugname-live-web.service's container, but the \
                 unit does not run it (made by hand?), and its start would fail on the name: \
                 applying removes it"
            )),
            "{shown}"
        );
        let (code, shown) = status(&world);
        assert_eq!(code, Some(3), "{shown}");
        assert!(
            marked(
                &shown,
                "web",
                "has the name of ugname-live-web.service's container"
            ),
            "{shown}"
        );
        let out = world.apply("live");
        assert!(out.status.success(), "{}", text(&out));
        assert_ne!(world.id("live", "web"), by_hand, "the unit's own container");
        assert_eq!(world.id("live", "api"), api, "api untouched");
        assert_eq!(serves(port).as_deref(), Some("web\n"));
        assert_eq!(plan(&world).0, Some(0));
    }
}

/// A revision's record edited by hand: its unit copies (which a rollback
/// installs) or its number. A rollback to it installed the edited copy
/// ('tampered' served), and plan and no-op apply said up to date over a
/// latest revision whose copies or number were not as recorded (status
/// then marked every row against a revision no folder held).
#[test]
fn a_revision_edited_since_it_was_recorded_is_refused_with_the_way_out() {
    let world = World::new("ugrec");
    let port = free_port();
    world.write(&yaml("ugrec", "v1", None, port));
    world.apply_ok("live");
    world.write(&yaml("ugrec", "v2", None, port));
    world.apply_ok("live");
    let revisions = world
        .sandbox
        .root()
        .join("var/lib/unitgen/ugrec-live/revisions");
    let edit = |file: &std::path::Path, from: &str, to: &str| {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains(from), "{text}");
        std::fs::write(file, text.replace(from, to)).unwrap();
    };

    let copy = revisions.join("0001/ugrec-live-api.service");
    edit(&copy, "GREETING=v1", "GREETING=tampered");
    let (code, said) = world.unitgen_said(&["rollback", "live", "--to", "1"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("unreadable: its unit files are not the ones it records (edited since?)")
            && said.contains("nothing on the host was changed"),
        "{said}"
    );
    assert_eq!(greeting(&world), "v2", "nothing installed");
    edit(&copy, "GREETING=tampered", "GREETING=v1");

    let latest = revisions.join("0002/ugrec-live-api.service");
    edit(&latest, "GREETING=v2", "GREETING=tampered");
    let (code, said) = plan(&world);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("its unit files are not the ones it records"),
        "{said}"
    );
    let (code, said) = status(&world);
    assert_eq!(code, Some(3), "{said}");
    assert!(
        said.contains("its unit files are not the ones it records"),
        "{said}"
    );
    edit(&latest, "GREETING=tampered", "GREETING=v2");
    assert_eq!(plan(&world).0, Some(0));

    let record = revisions.join("0002/revision.json");
    edit(&record, "\"number\": 2", "\"number\": 7");
    let (code, said) = plan(&world);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("it says revision 7, in another's folder"),
        "{said}"
    );
    edit(&record, "\"number\": 7", "\"number\": 2");
    assert_eq!(plan(&world).0, Some(0));
    let (code, said) = world.unitgen_said(&["rollback", "live", "--to", "1"]);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(greeting(&world), "v1");
}

/// The folders of the unit directory that hold an enablement link of
/// `unit` (`x.target.wants`), sorted.
fn linked_from(world: &World, unit: &str) -> Vec<String> {
    let dir = world.sandbox.unit_dir();
    let mut folders: Vec<String> = (std::fs::read_dir(&dir).unwrap().flatten())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|folder| dir.join(folder).join(unit).symlink_metadata().is_ok())
        .collect();
    folders.sort();
    folders
}

/// A service's wants-link moved by hand to another target (`mv` from the
/// instance target's folder to multi-user.target.wants), or one added
/// beside it: systemd still calls the unit enabled, so plan said "up to
/// date" and status healthy, while the service started at boot without its
/// instance (and stayed out of `systemctl stop` of the instance's target
/// only by its PartOf=). Plan tells it, apply re-enables only those units,
/// restarting nothing.
#[test]
fn a_wants_link_moved_to_another_target_is_told_and_made_again() {
    let world = World::new("ugwant");
    let port = free_port();
    world.write(&yaml("ugwant", "v1", None, port));
    world.apply_ok("live");
    let dir = world.sandbox.unit_dir();
    let (web, api) = ("ugwant-live-web.service", "ugwant-live-api.service");
    let target_wants = "ugwant-live.target.wants";
    assert_eq!(linked_from(&world, web), [target_wants]);
    std::fs::create_dir_all(dir.join("multi-user.target.wants")).unwrap();
    std::fs::rename(
        dir.join(target_wants).join(web),
        dir.join("multi-user.target.wants").join(web),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        format!("/etc/systemd/system/{api}"),
        dir.join("multi-user.target.wants").join(api),
    )
    .unwrap();
    world.sandbox.systemctl(["daemon-reload"]);
    // What made plan say "up to date".
    assert_eq!(is_enabled(&world, web), "enabled");
    let ids = (world.id("live", "api"), world.id("live", "web"));

    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(&format!(
            "* {web} (enabled, but not wanted by ugwant-live.target (its link is gone); wanted \
             by multi-user.target, which its file does not say (linked by hand?): re-enable)"
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "* {api} (enabled, but wanted by multi-user.target, which its file does not say \
             (linked by hand?): re-enable)"
        )),
        "{shown}"
    );
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(
        marked(&shown, "web", "not wanted by ugwant-live.target"),
        "{shown}"
    );
    assert!(
        marked(&shown, "api", "wanted by multi-user.target"),
        "{shown}"
    );

    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("2 enabled"), "{}", text(&out));
    assert_eq!(linked_from(&world, web), [target_wants]);
    assert_eq!(linked_from(&world, api), [target_wants]);
    // systemd sees it too: the instance's target wants it again.
    let wanted_by = world
        .sandbox
        .systemctl(["show", "--property=WantedBy", "--value", web]);
    assert_eq!(
        String::from_utf8_lossy(&wanted_by.stdout).trim(),
        "ugwant-live.target"
    );
    assert_eq!(
        (world.id("live", "api"), world.id("live", "web")),
        ids,
        "nothing restarted"
    );
    assert_eq!(plan(&world).0, Some(0));
    assert_eq!(status(&world).0, Some(0));
    runtime_and_alias_links_are_told_and_removed(&world, ids);
}

/// The same for links systemd reads beside those in /etc/systemd/system:
/// web linked from the runtime folder (`systemctl enable --runtime` to
/// another target, a link put in /run/systemd/system by hand), and api by
/// an alias (a link of another name to its file, wanted by another
/// target). Neither was read: plan said "up to date" while both started
/// with multi-user.target. Apply re-enables both, which removes them.
fn runtime_and_alias_links_are_told_and_removed(world: &World, ids: (String, String)) {
    let (web, api) = ("ugwant-live-web.service", "ugwant-live-api.service");
    let runtime = world.sandbox.root().join("run/systemd/system");
    let runtime_wants = runtime.join("multi-user.target.wants");
    std::fs::create_dir_all(&runtime_wants).unwrap();
    std::os::unix::fs::symlink(
        format!("/etc/systemd/system/{web}"),
        runtime_wants.join(web),
    )
    .unwrap();
    let dir = world.sandbox.unit_dir();
    std::fs::create_dir_all(dir.join("multi-user.target.wants")).unwrap();
    std::os::unix::fs::symlink(
        format!("/etc/systemd/system/{api}"),
        dir.join("multi-user.target.wants/ugwant-alias.service"),
    )
    .unwrap();
    world.sandbox.systemctl(["daemon-reload"]);
    assert_eq!(is_enabled(world, web), "enabled");

    let (code, shown) = plan(world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(&format!(
            "* {web} (enabled, but wanted by multi-user.target (a link in /run/systemd/system), \
             which its file does not say (linked by hand?): re-enable)"
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "* {api} (enabled, but wanted by multi-user.target, which its file does not say \
             (linked by hand?): re-enable)"
        )),
        "{shown}"
    );
    let (code, shown) = status(world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(
        marked(&shown, "web", "(a link in /run/systemd/system)"),
        "{shown}"
    );

    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("2 enabled"), "{}", text(&out));
    assert!(
        !runtime_wants.join(web).exists(),
        "the runtime link is gone"
    );
    assert!(
        (dir.join("multi-user.target.wants/ugwant-alias.service")
            .symlink_metadata())
        .is_err(),
        "the alias's link is gone"
    );
    assert_eq!(
        (world.id("live", "api"), world.id("live", "web")),
        ids,
        "nothing restarted"
    );
    assert_eq!(plan(world).0, Some(0));
    assert_eq!(status(world).0, Some(0));
}

/// The host's router's container replaced by hand under its name (`docker
/// rename`, then `docker run --name unitgen-router` with another entry
/// port; a `docker rm -f` instead is mended by the unit's own restart):
/// plan and apply read only the router unit's systemd state, which was
/// fine, so both said "up to date" and status healthy while the router's
/// name ran other flags, and the unit a container under another name.
/// Plan tells it, status marks it, apply restarts the router alone, and
/// the domain is served by the router as applied.
#[test]
fn a_router_container_replaced_by_hand_is_told_and_restarted() {
    let mut world = World::new("ugrtr");
    let router = world.own_router();
    let ports = (free_port(), free_port(), free_port());
    let out = std::process::Command::new("openssl")
        .args(["passwd", "-apr1", "wonderland"])
        .output()
        .unwrap();
    let hash = String::from_utf8(out.stdout).unwrap();
    std::fs::write(world.dir().join("users.htpasswd"), format!("alice:{hash}")).unwrap();
    std::fs::write(world.dir().join("token.txt"), "s3cr3t-ugrtr\n").unwrap();
    world.write(&routed_yaml(&world, "ugrtr", "v1", ports));
    world.apply_ok("live");
    let routed = || {
        support::traefik::get_as(
            Some("alice:wonderland"),
            "http",
            "live.example.test",
            ports.1,
            "/",
            None,
        )
    };
    let served = |a: &support::traefik::Answer| a.status == 200 && a.body == "web\n";
    support::traefik::wait_until(Duration::from_secs(30), "routed", routed, served);
    assert_eq!(plan(&world).0, Some(0));

    let docker = |args: &[&str]| {
        let out = std::process::Command::new("docker")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "docker {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let other_port = free_port();
    docker(&["rename", &router, &format!("{router}-by-hand-old")]);
    let by_hand = docker(&[
        "run",
        "-d",
        "--name",
        &router,
        "--network",
        "host",
        support::traefik::IMAGE,
        "traefik",
        &format!("--entryPoints.web.address=127.0.0.1:{other_port}"),
    ]);
    let ids = (world.id("live", "api"), world.id("live", "web"));

    let (code, shown) = plan(&world);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(&format!(
            "the host's router:\n* unitgen-router.service (its container differs: its command \
             has `--entryPoints.web.address=127.0.0.1:{other_port}` where the unit's has \
             `--global.checkNewVersion=false` (replaced by hand?): restart)"
        )),
        "{shown}"
    );
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(
        shown.contains("! unitgen-router.service: its container differs: its command has"),
        "{shown}"
    );

    let out = world.apply("live");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("unitgen-router.service (unitgen-test/traefik:3): repaired ("),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("ugrtr-live is up to date"),
        "{}",
        text(&out)
    );
    assert_ne!(
        support::docker::container_id(&router).expect("the router runs"),
        by_hand
    );
    support::traefik::wait_until(Duration::from_secs(30), "routed again", routed, served);
    assert_eq!(
        (world.id("live", "api"), world.id("live", "web")),
        ids,
        "the instance untouched"
    );
    assert_eq!(plan(&world).0, Some(0));
    assert_eq!(status(&world).0, Some(0));
}
