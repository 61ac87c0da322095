//! What compose files mean, run for real (issue 9): a sandboxed systemd, the
//! host's Docker engine, real containers. An image without a shell becomes
//! healthy by its exec-form healthcheck; a oneshot init container runs to
//! completion before its dependents, and its failure fails their start.

#[path = "support/lib.rs"]
mod support;

use std::process::Command;

use support::docker::{docker, ensure_testbed};
use support::world::World;

/// An image holding only a static busybox at `/x/busybox`: no `/bin/sh`,
/// like distroless and scratch images.
const NO_SHELL: &str = "unitgen-test/noshell:1";

/// What a command printed, stdout then stderr.
fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `unitgen import --instance live -o TEMPLATE COMPOSE` into the world's
/// template file, which must succeed.
fn import_live(world: &World, compose: &std::path::Path) {
    let imported = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["import", "--instance", "live", "-o"])
        .arg(world.file())
        .arg(compose)
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
}

fn build_image_without_a_shell() {
    ensure_testbed();
    if docker(["image", "inspect", NO_SHELL]).status.success() {
        return;
    }
    let dir = support::tempdir("noshell-");
    std::fs::create_dir(dir.path().join("x")).unwrap();
    std::fs::copy("/usr/bin/busybox", dir.path().join("x/busybox")).unwrap();
    let tar = dir.path().join("root.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .arg("-cf")
        .arg(&tar)
        .arg("x")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = docker(["import", tar.to_str().unwrap(), NO_SHELL]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn inspect(container: &str, format: &str) -> String {
    let out = docker(["inspect", "--format", format, container]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Loki's image is distroless and its compose file checks it with
/// `test: ["CMD", "/usr/bin/loki", "-health"]`. It used to be run through
/// `/bin/sh`, so the service never became healthy and its start failed.
#[test]
fn an_image_without_a_shell_becomes_healthy_by_its_exec_form_check() {
    build_image_without_a_shell();
    let world = World::new("ugnosh");
    world.write(&format!(
        r#"app: ugnosh
services:
  api:
    image: {NO_SHELL}
    command: [/x/busybox, httpd, -f, -p, "80", -h, /x]
    healthcheck:
      test: [CMD, /x/busybox, wget, -q, -O, /dev/null, "http://127.0.0.1/busybox"]
      interval: 1s
      retries: 30
  web:
    image: unitgen-test/busybox:1
    command: [sleep, "1000000"]
    init: true
    depends_on: [api]
instances:
  live: {{}}
"#
    ));
    world.apply_ok("live");
    let api = world.container("live", "api");
    assert_eq!(inspect(&api, "{{.State.Health.Status}}"), "healthy");
    assert_eq!(
        inspect(&api, "{{json .Config.Healthcheck.Test}}"),
        r#"["CMD","/x/busybox","wget","-q","-O","/dev/null","http://127.0.0.1/busybox"]"#
    );
    // There really is no shell to run a check with.
    assert!(
        !docker(["exec", &api, "/bin/sh", "-c", "true"])
            .status
            .success()
    );
    assert_eq!(world.active("ugnosh-live-web.service"), "active");
    assert!(
        world
            .exec("live", "web", "wget -q -O- http://api/busybox | wc -c")
            .trim()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    // A second apply changes nothing: the image build is part of the start,
    // not of the units' text.
    assert_eq!(world.unitgen(&["plan", "live"]).status.code(), Some(0));

    // destroy takes the image built for the check away (it was left, one
    // per service); the service's own image stays.
    let built = "unitgen-health/ugnosh-live-api";
    assert!(docker(["image", "inspect", built]).status.success());
    let out = world.unitgen(&["destroy", "live"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!docker(["image", "inspect", built]).status.success());
    assert!(docker(["image", "inspect", NO_SHELL]).status.success());
}

fn init_app(init_script: &str) -> String {
    format!(
        r#"app: uginit
services:
  init:
    image: unitgen-test/busybox:1
    oneshot: true
    command: [sh, -c, {init_script:?}]
    volumes: ["data:/data"]
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'cat /data/flag > /seen && exec sleep 1000000']
    init: true
    volumes: ["data:/data"]
    depends_on:
      init: {{condition: service_completed_successfully}}
instances:
  live: {{}}
"#
    )
}

/// Immich's and paperless's `chown`/bucket init containers: the dependent
/// starts only after the init container wrote its file and exited 0; a
/// failing init fails the dependent's start with the init's log, and apply
/// puts the previous revision back.
#[test]
fn a_oneshot_init_runs_before_its_dependent_and_its_failure_fails_the_apply() {
    let world = World::new("uginit");
    // Slow on purpose: a dependent started before it finished finds no file.
    world.write(&init_app("sleep 2; echo ready > /data/flag"));
    world.apply_ok("live");
    assert_eq!(world.active("uginit-live-init.service"), "active");
    assert!(
        inspect(&world.container("live", "init"), "{{.State.Status}}").is_empty(),
        "the init container ran to completion and is gone"
    );
    assert_eq!(world.active("uginit-live-web.service"), "active");
    world.exec_until("live", "web", "cat /seen", "ready\n");
    let good_init = std::fs::read_to_string(world.unit_file("uginit-live-init.service")).unwrap();

    world.write(&init_app(
        "echo 'init: the bucket cannot be created' >&2; exit 3",
    ));
    let out = world.apply("live");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("uginit-live-init.service"),
        "names the oneshot: {err}"
    );
    assert!(
        err.contains("the bucket cannot be created"),
        "shows the oneshot's log: {err}"
    );
    assert!(err.contains("previous revision was restored"), "{err}");
    assert_eq!(
        std::fs::read_to_string(world.unit_file("uginit-live-init.service")).unwrap(),
        good_init
    );
    assert_eq!(world.active("uginit-live-init.service"), "active");
    assert_eq!(world.active("uginit-live-web.service"), "active");
    world.exec_until("live", "web", "cat /seen", "ready\n");
}

/// Outline's and Netbox's env files quote their secrets:
/// `SECRET_KEY='r(m)9...'`. `docker run --env-file` alone passed the quotes
/// on; compose strips them, and so does unitgen now. A variable set twice
/// (by two lines or files, or by the file and `environment`) is set once.
#[test]
fn an_env_file_delivers_what_compose_would() {
    let world = World::new("ugenvf");
    let env_file = world.dir().join("outline.env");
    std::fs::write(
        &env_file,
        r#"# Generate with: openssl rand -hex 32
SECRET_KEY='r(m)9$x "q" %n'
export DATABASE_URL="postgres://outline:pass@db/outline"
URL=https://wiki.example.com # the public address
FORCE_HTTPS=false
  REDIS_URL = redis://cache:6379
CALLBACK="${URL}/auth"
URL=https://docs.example.com
"#,
    )
    .unwrap();
    world.write(&format!(
        r#"app: ugenvf
services:
  outline:
    image: unitgen-test/busybox:1
    command: [sleep, "1000000"]
    init: true
    env_file: {env_file:?}
    environment:
      FORCE_HTTPS: "true"
instances:
  live: {{}}
"#
    ));
    world.apply_ok("live");
    let env = world.exec("live", "outline", "env");
    for line in [
        "SECRET_KEY=r(m)9$x \"q\" %n",
        "DATABASE_URL=postgres://outline:pass@db/outline",
        // The last of two lines wins, as in compose.
        "URL=https://docs.example.com",
        // `environment` wins over the env file, as in compose.
        "FORCE_HTTPS=true",
        "REDIS_URL=redis://cache:6379",
        "CALLBACK=https://wiki.example.com/auth",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} not in\n{env}");
    }
    // The container's config lists each once, as compose's does: it listed
    // both URLs and both FORCE_HTTPS (the process saw the last of each).
    let config = inspect(&world.container("live", "outline"), "{{json .Config.Env}}");
    let config: Vec<String> = serde_json::from_str(&config).unwrap();
    for name in ["URL=", "FORCE_HTTPS="] {
        let set: Vec<&String> = config.iter().filter(|e| e.starts_with(name)).collect();
        assert_eq!(set.len(), 1, "{name} in {config:?}");
    }

    // A value on several lines cannot be given to docker run: the start
    // fails, naming the line; the last good revision keeps running.
    std::fs::write(&env_file, "SECRET_KEY=\"line one\nline two\"\n").unwrap();
    let out = world.unitgen(&["apply", "live", "--settle", "2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    // Nothing in the template changed: apply starts nothing, so restart.
    assert!(out.status.success(), "{err}");
    let out = world
        .sandbox
        .systemctl(["restart", "ugenvf-live-outline.service"]);
    assert!(!out.status.success());
    let said = "outline.env:1: SECRET_KEY: a value on several lines cannot be given to docker run";
    let journal = (world.sandbox).journal_with("ugenvf-live-outline.service", said);
    assert!(journal.contains(said), "{journal}");
}

/// Netbox's workers say `restart: on-failure:3`: Docker restarts them at
/// most three times. The count used to be lost (restarted forever). A unit
/// now stops after its N restarts, and the next apply starts it again.
#[test]
fn on_failure_n_restarts_n_times_then_stays_failed_until_the_next_apply() {
    let world = World::new("ugonfail");
    world.write(
        r#"app: ugonfail
services:
  worker:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'sleep 2; exit 1']
    restart: on-failure:2
instances:
  live: {}
"#,
    );
    let out = world.unitgen(&["apply", "live", "--settle", "0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unit = "ugonfail-live-worker.service";
    let gave_up = support::wait_for(std::time::Duration::from_secs(90), || {
        (world.active(unit) == "failed").then_some(())
    });
    assert!(gave_up.is_some(), "still {}", world.active(unit));
    // One run and two restarts: three containers exited (journald writes
    // systemd's last line a moment after the unit failed).
    let exits = |journal: &str| journal.matches("status=1/FAILURE").count();
    let logged = support::wait_for(std::time::Duration::from_secs(60), || {
        (exits(&world.sandbox.journal(unit)) == 3).then_some(())
    });
    let journal = world.sandbox.journal(unit);
    assert!(logged.is_some(), "{} exits: {journal}", exits(&journal));
    // The next apply starts it again: its restarts count from there.
    let out = world.unitgen(&["apply", "live", "--settle", "0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(world.active(unit), "active");
}

/// A container that ends on its own with status 0 is done, as Docker and
/// compose read it: `restart: on-failure` does not restart it, and with
/// `restart: "no"` (compose's default) a container that exits 0 at once
/// (zabbix's busybox data containers, an init job) lets `compose up`
/// succeed. Its unit stays active (exited): apply succeeds, plan is up to
/// date, status says how it ended, a dependent's restart does not run it
/// again. Before, the unit's `docker stop` found no container and made the
/// unit failed (on-failure restarted every 5 s for ever), and then the
/// readiness check took the exit for a failed start ("did not stay up").
/// A service stopped by hand (`docker stop`: 143, clean to systemd) is not
/// done: plan and apply start it again. A non-zero exit fails the apply,
/// said with its status.
#[test]
fn a_container_that_ends_cleanly_on_its_own_is_not_a_failure() {
    let world = World::new("ugclean");
    let template = |data: &str| {
        format!(
            r#"app: ugclean
services:
  data:
    image: unitgen-test/busybox:1
    command: [sh, -c, '{data}']
    restart: "no"
  task:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'sleep 2']
    restart: on-failure
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, "trap 'exit 143' TERM; sleep 1000 & wait"]
    restart: "no"
    depends_on: [data]
instances:
  live: {{}}
"#
        )
    };
    world.write(&template("exit 0"));
    let out = world.unitgen(&["apply", "live", "--settle", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    // `systemctl show` lists them in its own order: sorted here.
    let show = |unit: &str| {
        let out = world.sandbox.systemctl([
            "show",
            "--property=ActiveState,SubState,Result,NRestarts,InvocationID",
            unit,
        ]);
        let mut lines: Vec<String> = (String::from_utf8_lossy(&out.stdout).lines())
            .map(str::to_string)
            .collect();
        lines.sort();
        lines.join(" ")
    };
    let data = "ugclean-live-data.service";
    for unit in [data, "ugclean-live-task.service"] {
        // Not restarted (`activating (auto-restart)`), not failed: done.
        let done = support::wait_for(std::time::Duration::from_secs(60), || {
            show(unit).contains("SubState=exited").then_some(())
        });
        let shown = show(unit);
        assert!(done.is_some(), "{unit}: {shown}");
        assert!(
            shown.starts_with("ActiveState=active ")
                && shown.contains(" NRestarts=0 Result=success SubState=exited"),
            "{unit}: {shown}"
        );
    }
    assert_eq!(world.unitgen(&["plan", "live"]).status.code(), Some(0));
    let status = world.unitgen(&["status", "live"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    assert!(
        text(&status).contains("active (exited 0)"),
        "{}",
        text(&status)
    );
    // The dependent's restart leaves the done one done.
    let invocation = show(data);
    world
        .sandbox
        .systemctl(["restart", "ugclean-live-web.service"]);
    assert_eq!(show(data), invocation);

    // Stopped by hand (143, its stop signal's: clean to systemd): not done.
    docker(["stop", &world.container("live", "web")]);
    let stopped = support::wait_for(std::time::Duration::from_secs(60), || {
        (world.unitgen(&["plan", "live"]).status.code() == Some(2)).then_some(())
    });
    let plan = world.unitgen(&["plan", "live"]);
    assert!(stopped.is_some(), "{}", text(&plan));
    assert!(
        text(&plan).contains("its container is not running"),
        "{}",
        text(&plan)
    );
    world.apply_ok("live");
    assert_eq!(world.active("ugclean-live-web.service"), "active");
    assert_eq!(world.unitgen(&["plan", "live"]).status.code(), Some(0));

    // A failing one fails the apply, said with its status.
    world.write(&template("exit 3"));
    let out = world.unitgen(&["apply", "live", "--settle", "1"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("ugclean-live-data.service: the container exited with status 3"),
        "{}",
        text(&out)
    );
}

/// A unit's `env_file:` copy in /run/unitgen (0600: env files hold
/// passwords) outlived its service: `destroy` and an apply that removed
/// the service left it, with its values, until the next boot. Now what a
/// stopped unit made there goes with it (a kill's temporary file too), and
/// another instance's copy stays.
#[test]
fn destroy_and_removing_a_service_take_its_env_file_copy_away() {
    let world = World::new("ugenvd");
    let env_file = world.dir().join("app.env");
    std::fs::write(&env_file, "PASSWORD='hunter2'\n").unwrap();
    let service = |name: &str| {
        format!(
            "  {name}:\n    image: unitgen-test/busybox:1\n    command: [sleep, \"1000000\"]\n    \
             init: true\n    env_file: {env_file:?}\n"
        )
    };
    let app = |services: &str| {
        format!("app: ugenvd\nservices:\n{services}instances:\n  live: {{}}\n  other: {{}}\n")
    };
    world.write(&app(&(service("web") + &service("worker"))));
    world.apply_ok("live");
    world.apply_ok("other");
    let run = world.sandbox.root().join("run/unitgen");
    let copy = |container: &str| run.join(format!("{container}.env-files"));
    for container in ["ugenvd-live-web", "ugenvd-live-worker", "ugenvd-other-web"] {
        let text = std::fs::read_to_string(copy(container)).unwrap();
        assert_eq!(text, "PASSWORD=hunter2\n", "{container}");
    }

    world.write(&app(&service("web")));
    world.apply_ok("live");
    assert!(
        !copy("ugenvd-live-worker").exists(),
        "the removed service's"
    );
    assert!(copy("ugenvd-live-web").exists());

    // A kill between the copy's write and its rename leaves this.
    let temporary = run.join("ugenvd-live-web.env-files.tmp");
    std::fs::write(&temporary, "PASSWORD=hunter2\n").unwrap();
    let out = world.unitgen(&["destroy", "live"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!copy("ugenvd-live-web").exists());
    assert!(!temporary.exists());
    assert!(
        copy("ugenvd-other-web").exists(),
        "another instance's stays"
    );

    // An env file the reader refuses fails the start before docker run:
    // the report shows the reader's own error line, not docker rm's
    // "No such container" of the cleanup beside it in the journal.
    std::fs::write(&env_file, "PASSWORD hunter2\n").unwrap();
    let out = world.unitgen(&["apply", "live"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("that command's last lines:"), "{said}");
    assert!(
        said.contains(&format!("| {}:1: not NAME=value", env_file.display())),
        "{said}"
    );
    assert!(!said.contains("No such container"), "{said}");
}

/// qbittorrent behind gluetun (`network_mode: service:gluetun`): the
/// container runs in the other's network, reaching it on localhost; one on
/// `network_mode: none` has loopback only. plan and status see them as
/// applied, though neither is on the instance network. A restart of the
/// service whose network is shared restarts the other with it, into the new
/// network.
#[test]
fn a_service_in_another_services_network_reaches_it_on_localhost() {
    let world = World::new("ugnetm");
    world.write(
        r#"app: ugnetm
services:
  vpn:
    image: unitgen-test/busybox:1
    command: [httpd, -f, -p, "8080", -h, /bin]
  torrent:
    image: unitgen-test/busybox:1
    command: [sleep, "1000000"]
    init: true
    network_mode: service:vpn
  isolated:
    image: unitgen-test/busybox:1
    command: [sleep, "1000000"]
    init: true
    network_mode: none
instances:
  live: {}
"#,
    );
    world.apply_ok("live");
    // Fetched once vpn's server listens, which it may not yet on a loaded
    // machine.
    let fetch =
        r#"test "$(wget -q -O- http://localhost:8080/busybox | wc -c)" -gt 0 && echo fetched"#;
    world.exec_until("live", "torrent", fetch, "fetched\n");
    assert_eq!(
        inspect(
            &world.container("live", "isolated"),
            "{{.HostConfig.NetworkMode}}"
        ),
        "none"
    );
    assert_eq!(world.unitgen(&["plan", "live"]).status.code(), Some(0));
    assert_eq!(world.unitgen(&["status", "live"]).status.code(), Some(0));

    let restart = world.unitgen(&["restart", "live", "vpn"]);
    assert!(
        restart.status.success(),
        "{}",
        String::from_utf8_lossy(&restart.stderr)
    );
    world.exec_until("live", "torrent", fetch, "fetched\n");
    assert_eq!(world.unitgen(&["plan", "live"]).status.code(), Some(0));
}

/// A shell kept up by compose's `stdin_open: true` and `tty: true`,
/// imported: the unit's `docker run --tty` starts (with `--interactive`
/// too, Docker refused: "the input device is not a TTY") and the shell
/// waits on its terminal, as under compose.
#[test]
fn an_imported_shell_with_a_tty_stays_up() {
    let world = World::new("ugtty");
    let compose = world.dir().join("docker-compose.yml");
    std::fs::write(
        &compose,
        "name: ugtty\nservices:\n  shell:\n    image: unitgen-test/busybox:1\n    command: sh\n    stdin_open: true\n    tty: true\n",
    )
    .unwrap();
    import_live(&world, &compose);
    world.apply_ok("live");
    let shell = world.container("live", "shell");
    assert_eq!(
        inspect(&shell, "{{.State.Status}} {{.Config.Tty}}"),
        "running true"
    );
    assert_eq!(world.active("ugtty-live-shell.service"), "active");
}

/// What `docker inspect` showed differently from compose's container, for
/// real files: the monitoring stacks' `expose` (left out), element-web's
/// IPv6 `[::1]:8081:80` (refused), keycloak's `stop_grace_period` (only the
/// unit's `docker stop --time` had it: a `docker stop` by hand, or the
/// engine's shutdown, gave the container 10 s) and a variable two env
/// files set (listed twice). Each is now as compose has it.
#[test]
fn an_imported_container_is_configured_as_compose_configures_it() {
    let world = World::new("ugsame");
    let dir = world.dir();
    std::fs::write(dir.join("a.env"), "SHARED=from a\nA=1\n").unwrap();
    std::fs::write(dir.join("b.env"), "SHARED=from b\n").unwrap();
    let compose = dir.join("docker-compose.yml");
    std::fs::write(
        &compose,
        r#"name: ugsame
services:
  web:
    image: unitgen-test/busybox:1
    command: [httpd, -f, -p, "80", -h, /bin]
    init: true
    expose: ["9090", "9100-9101"]
    ports: ["[::1]::80", "127.0.0.1::80"]
    env_file: [./a.env, ./b.env]
    stop_grace_period: 1m30s
"#,
    )
    .unwrap();
    import_live(&world, &compose);
    world.apply_ok("live");
    let web = world.container("live", "web");
    assert_eq!(
        inspect(&web, "{{json .Config.ExposedPorts}}"),
        r#"{"80/tcp":{},"9090/tcp":{},"9100/tcp":{},"9101/tcp":{}}"#
    );
    assert_eq!(
        inspect(
            &web,
            "{{range (index .HostConfig.PortBindings \"80/tcp\")}}{{.HostIp}} {{end}}"
        ),
        "::1 127.0.0.1"
    );
    assert_eq!(inspect(&web, "{{.Config.StopTimeout}}"), "90");
    let env: Vec<String> = serde_json::from_str(&inspect(&web, "{{json .Config.Env}}")).unwrap();
    let shared: Vec<&String> = env.iter().filter(|e| e.starts_with("SHARED=")).collect();
    assert_eq!(shared, ["SHARED=from b"], "{env:?}");
    // Published on the IPv6 loopback too, where compose published it.
    let v6 = docker(["port", &web, "80/tcp"]);
    let v6 = String::from_utf8_lossy(&v6.stdout);
    assert!(v6.contains("[::1]:"), "{v6}");
}

/// Round 7, run for real: a long-syntax tmpfs `mode: 1777` is the mode
/// compose gives Docker (decimal 1777, `d-wxrwS--t` as Docker's API makes
/// it) and `0o1777` the sticky, world-writable one; a long-syntax bind with
/// a `bind:` block (compose's mount API) fails the start while its host
/// folder is missing, as compose's does, and runs once it is there; one
/// without the block is created by Docker, as compose's is.
#[test]
fn imported_mounts_behave_as_composes() {
    let world = World::new("ugmnt");
    let dir = world.dir();
    let compose = dir.join("docker-compose.yml");
    std::fs::write(
        &compose,
        r#"name: ugmnt
services:
  web:
    image: unitgen-test/busybox:1
    command: [sleep, "1000000"]
    init: true
    volumes:
      - type: tmpfs
        target: /decimal
        tmpfs: {mode: 1777}
      - type: tmpfs
        target: /octal
        tmpfs: {mode: 0o1777}
      - type: bind
        source: ./conf
        target: /conf
        read_only: true
        bind: {create_host_path: false}
      - type: bind
        source: ./made
        target: /made
      - type: bind
        source: ./shared
        target: /shared
        bind: {create_host_path: true, propagation: private}
"#,
    )
    .unwrap();
    import_live(&world, &compose);
    let failed = world.apply("live");
    assert!(!failed.status.success(), "the start failed: no ./conf");
    assert!(!dir.join("conf").exists(), "nothing made ./conf");

    std::fs::create_dir(dir.join("conf")).unwrap();
    std::fs::write(dir.join("conf/app.ini"), "x=1\n").unwrap();
    world.apply_ok("live");
    assert_eq!(
        world
            .exec(
                "live",
                "web",
                "busybox stat -c %A /decimal /octal; cat /conf/app.ini"
            )
            .trim(),
        "d-wxrwS--t\ndrwxrwxrwt\nx=1"
    );
    assert!(dir.join("made").is_dir(), "Docker made ./made");
    // Round 8: compose's mount asks Docker to create the path
    // (`create_host_path: true`), with the propagation given.
    assert!(dir.join("shared").is_dir(), "Docker made ./shared");
    let web = world.container("live", "web");
    assert_eq!(
        inspect(
            &web,
            "{{range .Mounts}}{{if eq .Destination \"/shared\"}}{{.Propagation}}{{end}}{{end}}"
        ),
        "private"
    );
}

/// Round 9, run for real. What compose gives a container, imported:
/// - an anonymous volume (`- /data`) keeps its data when the container is
///   restarted, as compose keeps it; the unit's `docker run --rm` removed it
///   at every stop, so the data was lost at the first restart;
/// - the labels of a `label_file` (warned and lost before);
/// - the main network's `mac_address` and `link_local_ips` (warned and
///   lost before).
#[test]
fn what_compose_gives_a_container_survives_the_import() {
    let world = World::new("ugkeep");
    let dir = world.dir();
    std::fs::write(dir.join("web.labels"), "team=web\nurl=${team}/a\n").unwrap();
    let compose = dir.join("docker-compose.yml");
    std::fs::write(
        &compose,
        r#"name: ugkeep
services:
  web:
    image: unitgen-test/busybox:1
    command: [sleep, "1000000"]
    init: true
    volumes:
      - /data
    label_file: ./web.labels
    networks:
      front:
        priority: 5
        mac_address: "02:42:ac:11:65:43"
        link_local_ips: [169.254.8.8]
networks:
  front: {}
"#,
    )
    .unwrap();
    import_live(&world, &compose);
    world.apply_ok("live");
    let web = world.container("live", "web");
    assert_eq!(
        inspect(
            &web,
            "{{index .Config.Labels \"team\"}} {{index .Config.Labels \"url\"}}"
        ),
        "web web/a"
    );
    let network = inspect(
        &web,
        "{{range .NetworkSettings.Networks}}{{.MacAddress}} {{.IPAMConfig.LinkLocalIPs}}{{end}}",
    );
    assert_eq!(network, "02:42:ac:11:65:43 [169.254.8.8]");
    let wrote = docker(["exec", &web, "sh", "-c", "echo kept > /data/file"]);
    assert!(
        wrote.status.success(),
        "{}",
        String::from_utf8_lossy(&wrote.stderr)
    );
    let restart = world.unitgen(&["restart", "live", "web"]);
    assert!(
        restart.status.success(),
        "{}",
        String::from_utf8_lossy(&restart.stderr)
    );
    world.exec_until("live", "web", "cat /data/file", "kept\n");
    assert_eq!(world.unitgen(&["plan", "live"]).status.code(), Some(0));
}

/// An image that declares `VOLUME /data`, as redis's does.
const WITH_VOLUME: &str = "unitgen-test/volume:1";

fn build_image_with_a_volume() {
    ensure_testbed();
    if docker(["image", "inspect", WITH_VOLUME]).status.success() {
        return;
    }
    let maker = format!("ugvolimg-{}", std::process::id());
    let made = docker(["create", "--name", &maker, "unitgen-test/busybox:1", "true"]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let committed = docker(["commit", "--change", "VOLUME /data", &maker, WITH_VOLUME]);
    docker(["rm", &maker]);
    assert!(
        committed.status.success(),
        "{}",
        String::from_utf8_lossy(&committed.stderr)
    );
}

/// A compose service whose image declares a volume it does not mount
/// (`image: redis`, nothing at /data) keeps its data under compose until
/// `down`; the unit's `docker run --rm` deleted that anonymous volume at
/// every restart, without a word. plan and apply say so, naming the
/// service, the image, the path and the line that keeps it; with that line
/// the data survives the restart, and nothing is said.
#[test]
fn an_image_volume_the_template_does_not_mount_is_said_and_kept_once_named() {
    build_image_with_a_volume();
    let world = World::new("ugimgvol");
    let compose = world.dir().join("docker-compose.yml");
    std::fs::write(
        &compose,
        format!(
            "name: ugimgvol\nservices:\n  cache:\n    image: {WITH_VOLUME}\n    command: [sleep, \"1000000\"]\n    init: true\n"
        ),
    )
    .unwrap();
    import_live(&world, &compose);
    let said = format!("cache: image {WITH_VOLUME} declares VOLUME /data");
    let fix = "add `- cache-data:/data` to cache's volumes";
    let (_, plan) = world.unitgen_said(&["plan", "live"]);
    assert!(plan.contains(&said) && plan.contains(fix), "{plan}");
    let applied = world.apply("live");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&applied.stdout),
        String::from_utf8_lossy(&applied.stderr)
    );
    assert!(applied.status.success(), "{output}");
    assert!(output.contains(&said) && output.contains(fix), "{output}");

    // What the warning says: the file is gone after a restart.
    world.exec("live", "cache", "echo kept > /data/file");
    let restart = world.unitgen(&["restart", "live", "cache"]);
    assert!(
        restart.status.success(),
        "{}",
        String::from_utf8_lossy(&restart.stderr)
    );
    world.exec_until(
        "live",
        "cache",
        "cat /data/file 2>/dev/null || echo gone",
        "gone\n",
    );

    // The fix, as the warning words it: kept, and nothing said.
    let template = std::fs::read_to_string(world.file()).unwrap();
    let fixed = template.replace(
        "    init: true\n",
        "    init: true\n    volumes:\n      - cache-data:/data\n",
    );
    assert_ne!(
        fixed, template,
        "the imported template has no `init: true` line:\n{template}"
    );
    world.write(&fixed);
    let applied = world.apply("live");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&applied.stdout),
        String::from_utf8_lossy(&applied.stderr)
    );
    assert!(applied.status.success(), "{output}");
    assert!(!output.contains("declares VOLUME"), "{output}");
    world.exec("live", "cache", "echo kept > /data/file");
    let restart = world.unitgen(&["restart", "live", "cache"]);
    assert!(
        restart.status.success(),
        "{}",
        String::from_utf8_lossy(&restart.stderr)
    );
    world.exec_until("live", "cache", "cat /data/file", "kept\n");
    let (code, plan) = world.unitgen_said(&["plan", "live"]);
    assert_eq!(code, Some(0), "{plan}");
    assert!(!plan.contains("declares VOLUME"), "{plan}");
}
