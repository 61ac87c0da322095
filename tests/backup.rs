//! Backups and restore against the real thing: restic (Debian's 0.14), a
//! sandboxed systemd running the backup units and timers, the host's Docker
//! engine and its volumes. Every check looks at the data itself.

#[path = "support/lib.rs"]
mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use support::docker::{docker, inspect_container, list_containers};
use support::net::free_port;
use support::registry::{Registry, image_id, push, untag};
use support::wait_for;
use support::world::{World, serves};

const IMAGE: &str = "unitgen-test/busybox:1";
const PASSWORD: &str = "correct-horse-ugbk-secret-7731";
const S3_KEY: &str = "AKIA-ugbk-not-for-units-5512";

/// A "database" (its dump is a tar of its data folder on stdout, its restore
/// unpacks one; healthy `ready_after` seconds after each start) and a files
/// service whose volume is copied while it is
/// paused; `files` serves its volume on the instance's port.
fn app(name: &str, backup: &str) -> String {
    app_with(name, backup, "")
}

/// [`app`] with more services (after these).
fn app_with(name: &str, backup: &str, services: &str) -> String {
    format!(
        r#"app: {name}
services:
  files:
    image: {IMAGE}
    command: [httpd, -f, -p, "80", -h, /srv]
    init: true
    ports: ["127.0.0.1:{{{{ port }}}}:80"]
    volumes: ["files:/srv"]
    backup: {{consistency: pause}}
  db:
    image: {IMAGE}
    # Healthy only `ready_after` seconds after it starts.
    command: [sh, -c, 'mkdir -p /db /tmp; (sleep {{{{ ready_after }}}}; touch /tmp/ready) & exec httpd -f -p 80 -h /db']
    init: true
    healthcheck: {{test: "test -e /tmp/ready", interval: 1s, start_period: 60s}}
    volumes: ["dbdata:/db"]
    backup:
      dump: "{{{{ dump }}}}"
      # Notes (outside the volume) whether it ran on a healthy database.
      restore: "if [ -e /tmp/ready ]; then echo healthy; else echo starting; fi >> /tmp/restores; rm -rf /db/* && tar -x -C /db"{services}
backup:
  password_file: /etc/{name}/restic-password
  helper_image: "{{{{ helper }}}}"
{backup}"#
    )
}

fn instance(name: &str, port: u16, helper: &str, ready_after: u32) -> String {
    format!(
        "  {name}: {{port: {port}, dump: 'tar -c -C /db .', helper: '{helper}', ready_after: {ready_after}}}\n"
    )
}

/// Writes a secret file (mode 0600) where the sandbox's units read it.
fn secret(world: &World, path: &str, text: &str) {
    let file = world.sandbox.root().join(path.trim_start_matches('/'));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, text).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Every path of a volume, sorted, with its mode, owner, size and bytes:
/// equal fingerprints, equal data.
fn fingerprint(volume: &str) -> String {
    let out = docker([
        "run",
        "--rm",
        "--network=none",
        "--volume",
        &format!("{volume}:/d:ro"),
        IMAGE,
        "sh",
        "-c",
        "cd /d && find . | sort | while read -r f; do ls -ldn \"$f\" | tr -s ' ' | cut -d' ' -f1,3,4,5; \
         echo \"$f\"; if [ -f \"$f\" ]; then cat \"$f\"; fi; done",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a command printed, both streams.
fn text_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn snapshots(world: &World, instance: &str) -> Vec<serde_json::Value> {
    let out = world.unitgen(&["backups", instance, "--json"]);
    serde_json::from_str(&ok(&out, "backups")).unwrap()
}

/// Seeds an instance's data: binary bytes, a subfolder, a page to serve.
fn seed(world: &World, instance: &str, page: &str) {
    world.exec(
        instance,
        "db",
        "printf 'row 1\\nrow 2\\n' > /db/table && mkdir -p /db/sub && printf '\\000\\001\\377' > /db/sub/blob && chmod 640 /db/table",
    );
    world.exec(
        instance,
        "files",
        &format!("echo '{page}' > /srv/index.html && mkdir -p /srv/up && echo x > /srv/up/a.txt"),
    );
}

/// The restores below run on a database that turns healthy 2s after it
/// starts, with a helper image whose ENTRYPOINT would swallow the copy
/// command were it not overridden (it only echoes its arguments).
#[test]
fn backup_delete_restore_gives_back_identical_data_and_restore_into_another_instance() {
    let world = World::new("ugbk");
    let helper = "ugbk/helper-with-entrypoint:1";
    let _helper_image = LocalImage(helper.into());
    build_image(
        helper,
        &format!("FROM {IMAGE}\nENTRYPOINT [\"echo\", \"helper entrypoint:\"]\n"),
    );
    let (live_port, staging_port) = (free_port(), free_port());
    let yaml = app(
        "ugbk",
        "  repository: /var/backups/ugbk\n  environment_file: /etc/ugbk/s3.env\n  keep: {daily: 7}\n",
    ) + "instances:\n"
        + &instance("live", live_port, helper, 2)
        + &instance("staging", staging_port, helper, 2);
    world.write(&yaml);
    secret(&world, "/etc/ugbk/restic-password", PASSWORD);
    secret(
        &world,
        "/etc/ugbk/s3.env",
        &format!("AWS_SECRET_ACCESS_KEY={S3_KEY}\n"),
    );
    world.apply_ok("live");
    world.apply_ok("staging");
    seed(&world, "live", "live files");
    seed(&world, "staging", "staging files");
    let live = || {
        (
            fingerprint("ugbk-live-dbdata"),
            fingerprint("ugbk-live-files"),
        )
    };
    let staging = || {
        (
            fingerprint("ugbk-staging-dbdata"),
            fingerprint("ugbk-staging-files"),
        )
    };
    let live_before = live();
    assert!(live_before.0.contains("row 2"), "{}", live_before.0);
    assert_ne!(live_before, staging());

    // The backup runs as the unit, started over D-Bus; it names its snapshot.
    let out = ok(&world.unitgen(&["backup", "live"]), "backup live");
    assert!(out.contains("snapshot "), "{out}");
    let listed = snapshots(&world, "live");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["revision"], "1");
    assert!(
        out.contains(listed[0]["short_id"].as_str().unwrap()),
        "{out}"
    );
    assert!(listed[0]["size"].as_u64().unwrap() > 0);
    assert_eq!(world.active("ugbk-live-files.service"), "active");
    assert_eq!(world.active("ugbk-live-backup.timer"), "active");
    // A backup unit found inactive (as it should be between runs) is no
    // drift: plan says up to date.
    let plan = world.unitgen(&["plan", "live"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );

    // Lose the data, then restore it: byte for byte, and serving again.
    world.exec("live", "db", "rm -rf /db/*");
    world.exec("live", "files", "rm -rf /srv/*");
    assert_ne!(live(), live_before);
    ok(
        &world.unitgen(&["restore", "live", "--yes"]),
        "restore live",
    );
    assert_eq!(live(), live_before);
    // Its restore command ran once the database was healthy, not before.
    assert_eq!(world.exec("live", "db", "cat /tmp/restores"), "healthy\n");
    for service in ["files", "db"] {
        assert_eq!(
            world.active(&format!("ugbk-live-{service}.service")),
            "active"
        );
    }
    assert_eq!(serves(live_port).as_deref(), Some("live files\n"));
    assert_eq!(
        world.exec("live", "files", "wget -qO- http://db/table"),
        "row 1\nrow 2\n"
    );

    // Without --yes and off a terminal, restore refuses and changes
    // nothing: staging keeps its data and keeps running.
    let staging_before = staging();
    let staging_db_started = || {
        inspect_container("ugbk-staging-db").expect("staging's db")["State"]["StartedAt"].clone()
    };
    let staging_started = staging_db_started();
    let refused = world.unitgen(&["restore", "live", "--into", "staging"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert_eq!(staging(), staging_before);
    assert_eq!(serves(staging_port).as_deref(), Some("staging files\n"));
    assert_eq!(
        staging_db_started(),
        staging_started,
        "staging's database was not restarted"
    );

    // live's backup into staging: staging gets live's data, live is untouched.
    ok(
        &world.unitgen(&["restore", "live", "--into", "staging", "--yes"]),
        "restore live --into staging",
    );
    assert_eq!(staging(), live_before);
    assert_eq!(live(), live_before);
    assert_eq!(serves(staging_port).as_deref(), Some("live files\n"));
    assert_eq!(
        world.exec("staging", "db", "cat /tmp/restores"),
        "healthy\n"
    );
    assert!(
        snapshots(&world, "staging").is_empty(),
        "staging has no snapshot of its own"
    );

    // status: the last backup, its snapshot, the next run.
    let status = ok(&world.unitgen(&["status", "live"]), "status");
    assert!(
        status.contains(listed[0]["short_id"].as_str().unwrap()),
        "{status}"
    );
    assert!(status.contains("next"), "{status}");
    // Every command prints a time one way, ISO 8601 in UTC: backups and
    // status's backup lines said `2026-11-29 10:03:16 UTC` where history,
    // ls and status's STARTED say `2026-11-29T10:03:16Z`.
    let iso = |time: &str| {
        let b = time.as_bytes();
        b.len() == 20
            && (b[4], b[7], b[10], b[13], b[16], b[19]) == (b'-', b'-', b'T', b':', b':', b'Z')
            && time.chars().filter(char::is_ascii_digit).count() == 14
    };
    let after = |text: &str, word: &str| -> String {
        let rest = text.split(word).nth(1).unwrap_or_default();
        rest.chars().take(20).collect()
    };
    assert!(iso(&after(&status, "last good ")), "{status}");
    assert!(iso(&after(&status, "next ")), "{status}");
    let backups = ok(&world.unitgen(&["backups", "live"]), "backups");
    let history = ok(&world.unitgen(&["history", "live"]), "history");
    for (listing, text) in [("backups", &backups), ("history", &history)] {
        let row = text.lines().nth(1).unwrap_or_default();
        let time = row.split_whitespace().nth(1).unwrap_or_default();
        assert!(iso(time), "{listing}: {text}");
    }

    // A container paused by hand is copied as it is and left paused: the
    // backup neither fails on it nor resumes what it did not pause.
    support::docker::pause("ugbk-live-files");
    ok(
        &world.unitgen(&["backup", "live"]),
        "backup live, files paused by hand",
    );
    assert_eq!(status_of("ugbk-live-files"), "paused");
    ok(&docker(["unpause", "ugbk-live-files"]), "docker unpause");

    // The backup timer disabled and stopped by hand: no backup would run,
    // and status, whose rows leave the timer out, exited 0 while plan
    // said the host differs.
    let timer = "ugbk-live-backup.timer";
    for verb in ["disable", "stop"] {
        let out = world.sandbox.systemctl([verb, timer]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = world.unitgen(&["plan", "live"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains(&format!(
            "* {timer} (not enabled (disabled), inactive (dead): enable, start)"
        )),
        "{shown}"
    );
    let out = world.unitgen(&["status", "live"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{shown}");
    assert!(
        shown.contains(&format!(
            "! {timer}: not enabled (disabled), inactive (dead)"
        )),
        "{shown}"
    );
    world.apply_ok("live");
    assert_eq!(world.active(timer), "active");
    assert_eq!(world.unitgen(&["status", "live"]).status.code(), Some(0));

    // Nothing secret in units, render output, revisions, status or listings.
    let mut seen = vec![
        status,
        ok(
            &world.unitgen(&["status", "live", "--json"]),
            "status --json",
        ),
        ok(
            &Command::new(env!("CARGO_BIN_EXE_unitgen"))
                .args(["render", "live", "-f"])
                .arg(world.file())
                .output()
                .unwrap(),
            "render",
        ),
        ok(&world.unitgen(&["backups", "live"]), "backups"),
    ];
    for dir in [
        world.sandbox.unit_dir(),
        world
            .sandbox
            .root()
            .join("var/lib/unitgen/ugbk-live/revisions/0001"),
    ] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                seen.push(std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    assert!(seen.len() > 10);
    for text in &seen {
        assert!(
            !text.contains(PASSWORD) && !text.contains(S3_KEY),
            "a secret leaked:\n{text}"
        );
    }
}

/// A service copied while stopped (`consistency: stop`): on SIGTERM it
/// notes the stop in its own volume, so a snapshot that holds the note was
/// taken after the stop. `reader` restarts (and stops) with it (`PartOf=`).
const STOPPED_SERVICE: &str = r#"
  cache:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'trap "echo stopped >> /data/stops; exit 0" TERM; httpd -f -p 80 -h /data & wait']
    init: true
    volumes: ["cache:/data"]
    backup: {consistency: stop}
  reader:
    image: unitgen-test/busybox:1
    command: [sleep, "1000000"]
    init: true
    depends_on: {cache: {condition: service_started, restart: true}}"#;

/// `docker build` of a Dockerfile (FROM a local image: no registry).
fn build_image(reference: &str, dockerfile: &str) {
    let mut build = Command::new("docker")
        .args(["build", "--quiet", "--tag", reference, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    build
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    let out = build.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A helper image (sh and tar) whose tar refuses a volume holding a
/// `.fail-backup` file (a copy that fails where a test says) and waits
/// while it holds a `.hold-backup` file (a backup that lasts).
fn build_failing_helper(reference: &str) {
    let script = r#"#!/bin/sh
if [ -e /data/.fail-backup ]; then echo "tar: refusing /data (.fail-backup)" >&2; exit 2; fi
while [ -e /data/.hold-backup ]; do sleep 0.1; done
exec busybox tar "$@"
"#;
    build_image(
        reference,
        &format!(
            "FROM {IMAGE}\nRUN rm /bin/tar && printf '{}' > /bin/tar && chmod 755 /bin/tar\n",
            script.replace('\n', "\\n")
        ),
    );
}

/// Removes a local image when dropped.
struct LocalImage(String);

impl Drop for LocalImage {
    fn drop(&mut self) {
        docker(["rmi", "--force", &self.0]);
    }
}

/// `restic ARGS` from the host against a repository in the sandbox, with
/// the right password whatever the sandbox's password file says now.
fn restic(world: &World, repository: &str, args: &[&str]) -> Output {
    let password = support::tempdir("restic-password-");
    let file = password.path().join("password");
    std::fs::write(&file, PASSWORD).unwrap();
    Command::new("restic")
        .arg("--no-cache")
        .args(args)
        .env(
            "RESTIC_REPOSITORY",
            world
                .sandbox
                .root()
                .join(repository.trim_start_matches('/')),
        )
        .env("RESTIC_PASSWORD_FILE", &file)
        .output()
        .unwrap()
}

/// The `stops` notes in a snapshot's copy of the `cache` volume.
fn stops_in_snapshot(world: &World, repository: &str, snapshot: &str) -> String {
    let tar = restic(world, repository, &["dump", snapshot, "/volumes/cache.tar"]);
    let tar = ok(&tar, "restic dump").into_bytes();
    let mut read = Command::new("tar")
        .args(["-x", "-O", "-f", "-", "./stops"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    read.stdin.take().unwrap().write_all(&tar).unwrap();
    ok(&read.wait_with_output().unwrap(), "tar -x ./stops")
}

/// Until `unit` is active again (a backup starts what it stopped without
/// waiting for it).
fn active_again(world: &World, unit: &str) {
    let active = wait_for(Duration::from_secs(30), || {
        (world.active(unit) == "active").then_some(())
    });
    assert!(
        active.is_some(),
        "{unit} was not started again:\n{}",
        world.sandbox.journal(unit)
    );
}

#[test]
fn the_timer_backs_up_by_itself_and_failed_backups_are_recorded_hooked_and_leave_services_running()
{
    let world = World::new("ugbkf");
    let registry = Registry::start();
    // The helper image is only in the registry: apply must fetch it.
    let helper = registry.image("ugbkf/helper:1");
    let _helper_image = LocalImage(helper.clone());
    build_failing_helper(&helper);
    push(&helper);
    untag(&helper);
    let (timed_port, broken_port) = (free_port(), free_port());
    // A dump that fails (after writing half its output) once told to, and
    // that lasts while told to.
    // While held, it also starts a process in a session of its own (a
    // `setsid` child), which must end with it too.
    let dump = "if [ -e /db/.fail-dump ]; then echo partial; exit 3; fi; \
                if [ -e /db/.hold-dump ]; then busybox setsid busybox sleep 86399 & fi; \
                while [ -e /db/.hold-dump ]; do sleep 0.1; done; tar -c -C /db .";
    let yaml = app_with(
        "ugbkf",
        "  repository: \"/var/backups/ugbkf-{{ instance }}\"\n  schedule: \"{{ schedule }}\"\n  randomized_delay: 0s\n  \
         on_failure: 'echo \"$FAILED_UNIT\" > /var/tmp/ugbkf-hook-$INSTANCE'\n",
        STOPPED_SERVICE,
    ) + &format!(
        "instances:\n  \
         timed: {{port: {timed_port}, schedule: '*:*:0/5', dump: '{dump}', helper: '{helper}', ready_after: 0}}\n  \
         broken: {{port: {broken_port}, schedule: monthly, dump: '{dump}', helper: '{helper}', ready_after: 0}}\n"
    );
    world.write(&yaml);
    secret(&world, "/etc/ugbkf/restic-password", PASSWORD);

    // `--pull never` and no helper image on the host: refused, untouched.
    let out = world.unitgen(&["apply", "broken", "--pull", "never"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&helper), "{err}");
    assert!(err.contains("nothing on the host was changed"), "{err}");
    // The default policy fetches it with the services' images.
    world.apply_ok("broken");
    assert!(image_id(&helper).is_some(), "apply did not pull {helper}");
    // Its timer fires every 5s once applied: first applied with a monthly
    // one, so that no backup stops `cache` while apply checks it stays up.
    ok(
        &world.unitgen(&[
            "apply",
            "timed",
            "--settle",
            "2",
            "--set",
            "schedule=monthly",
        ]),
        "apply timed",
    );
    seed(&world, "timed", "timed files");
    world.apply_ok("timed");
    seed(&world, "broken", "broken files");

    // Nobody runs `unitgen backup timed`: its timer does, within seconds.
    // (Until the first run, there is not even a repository to list.)
    let fired = wait_for(Duration::from_secs(90), || {
        let out = world.unitgen(&["backups", "timed", "--json"]);
        let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
        (out.status.success() && !listed.is_empty()).then_some(listed)
    });
    let fired = fired.unwrap_or_else(|| {
        panic!(
            "no snapshot from the timer:\n{}",
            world.sandbox.journal("ugbkf-timed-backup.service")
        )
    });
    // From now on restic fails: the repository's password is wrong.
    secret(&world, "/etc/ugbkf/restic-password", "not-the-password");
    // `broken` shares the file: applied again, it records the new one (as
    // a user does after changing it), so that its plans below tell only
    // what they are about. `timed` is left telling the change.
    world.apply_ok("broken");
    // `cache` was stopped before its volume was copied: the snapshot holds
    // the note it wrote when stopped.
    let first = fired[0]["id"].as_str().unwrap();
    let stops = stops_in_snapshot(&world, "/var/backups/ugbkf-timed", first);
    assert!(stops.starts_with("stopped\n"), "{stops:?}");

    // A failed run is recorded with its time, and after twice the interval
    // (5s) without a good one, status says OVERDUE.
    // The timer fires every 5s: JSON and text are read until both show a
    // failed last run (not the next run already under way).
    let (status, text) = wait_for(Duration::from_secs(60), || {
        let out = world.unitgen(&["status", "timed", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let backup = &status["backup"];
        if !(backup["overdue"] == true && backup["last_run"] == "failed (exit-code)") {
            return None;
        }
        let text = String::from_utf8(world.unitgen(&["status", "timed"]).stdout).unwrap();
        (text.contains("last run: failed (exit-code) at 20")).then(|| (backup.clone(), text))
    })
    .unwrap_or_else(|| {
        panic!(
            "no failed run recorded or not overdue:\n{}",
            world.sandbox.journal("ugbkf-timed-backup.service")
        )
    });
    assert!(
        status["last_run_time"].as_u64().unwrap() > status["last_good"]["time"].as_u64().unwrap(),
        "{status}"
    );
    // (Its exit code says whether every service runs: not the point here.)
    let good = status["last_good"]["snapshot"].as_str().unwrap();
    assert!(text.contains(&format!("snapshot {good}")), "{text}");
    assert!(text.contains("OVERDUE"), "{text}");
    // `docs --live` says it as status does. Read until it does: the 5 s
    // timer may be running the next (failing) backup when it reads, which
    // it then says instead (CI met that).
    let docs = world.dir().join("docs");
    let timed_section = || {
        ok(
            &world.unitgen(&["docs", "--out", docs.to_str().unwrap(), "--live"]),
            "docs --live",
        );
        let page = std::fs::read_to_string(docs.join("ugbkf.md")).unwrap();
        let live = &page[page.find("## Live on").expect("a live section")..];
        let timed = &live[live.find("### `timed`").expect("timed's section")..];
        timed[..timed[4..].find("### ").map_or(timed.len(), |end| end + 4)].to_string()
    };
    let says = |timed: &str| {
        timed.contains(&format!("`{good}`"))
            && timed.contains("; last run failed (exit-code) at 20")
            && timed.contains("; **OVERDUE: no good backup")
    };
    let told = wait_for(Duration::from_secs(60), || {
        let timed = timed_section();
        says(&timed).then_some(timed)
    });
    assert!(told.is_some(), "{}", timed_section());
    let overview = std::fs::read_to_string(docs.join("README.md")).unwrap();
    let row = overview
        .lines()
        .find(|l| l.starts_with("| `ugbkf/timed` |"))
        .unwrap_or_else(|| panic!("{overview}"));
    assert!(
        row.contains("last run failed") && row.contains("OVERDUE"),
        "{row}"
    );
    assert!(
        world
            .sandbox
            .journal_with("ugbkf-timed-backup.service", "wrong password")
            .contains("wrong password"),
        "restic's own reason is logged"
    );
    let hook = |instance: &str| {
        let file = world
            .sandbox
            .root()
            .join(format!("var/tmp/ugbkf-hook-{instance}"));
        wait_for(Duration::from_secs(60), || {
            std::fs::read_to_string(&file).ok()
        })
    };
    assert_eq!(
        hook("timed").as_deref(),
        Some("ugbkf-timed-backup.service\n")
    );
    world
        .sandbox
        .systemctl(["stop", "ugbkf-timed-backup.timer"]);
    for service in ["cache", "reader"] {
        active_again(&world, &format!("ugbkf-timed-{service}.service"));
    }

    // A dump that fails: the unit fails, no snapshot, the hook runs, and
    // status shows the failure.
    world.exec("broken", "db", "touch /db/.fail-dump");
    let out = world.unitgen(&["backup", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ugbkf-broken-backup.service"), "{err}");
    assert!(
        snapshots(&world, "broken").is_empty(),
        "a failed backup left a snapshot"
    );
    assert_eq!(
        hook("broken").as_deref(),
        Some("ugbkf-broken-backup.service\n")
    );
    let status = String::from_utf8(world.unitgen(&["status", "broken"]).stdout).unwrap();
    assert!(
        status.contains("last good none yet; last run: failed (exit-code) at 20"),
        "{status}"
    );
    assert!(status.contains("OVERDUE"), "{status}");
    world.exec("broken", "db", "rm /db/.fail-dump");

    // A copy that fails while `files` is paused: it is unpaused all the same.
    world.exec("broken", "files", "touch /srv/.fail-backup");
    let out = world.unitgen(&["backup", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    let journal = (world.sandbox).journal_with("ugbkf-broken-backup.service", "refusing");
    assert!(
        journal.contains("refusing"),
        "failed on the copy:\n{journal}"
    );
    assert_eq!(status_of("ugbkf-broken-files"), "running");
    assert_eq!(serves(broken_port).as_deref(), Some("broken files\n"));
    world.exec("broken", "files", "rm /srv/.fail-backup");

    // A copy that fails while `cache` is stopped: it is started again, and
    // so is `reader`, which stopped with it.
    world.exec("broken", "cache", "touch /data/.fail-backup");
    let out = world.unitgen(&["backup", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        world
            .sandbox
            .journal_with("ugbkf-broken-backup.service", "refusing /data")
            .contains("refusing /data"),
        "failed on the copy of cache"
    );
    for service in ["cache", "reader"] {
        active_again(&world, &format!("ugbkf-broken-{service}.service"));
    }
    assert_eq!(
        world.exec("broken", "cache", "cat /data/stops"),
        "stopped\n",
        "stopped once, for the copy"
    );
    assert!(snapshots(&world, "broken").is_empty());

    // A backup that starts while unitgen changes the instance (here: its
    // lock held, as apply holds it) waits for it.
    world.exec(
        "broken",
        "cache",
        "rm /data/.fail-backup && touch /data/.hold-backup",
    );
    let backup_unit = "ugbkf-broken-backup.service";
    let lock = std::fs::File::options()
        .append(true)
        .open(
            world
                .sandbox
                .root()
                .join("var/lib/unitgen/ugbkf-broken/lock"),
        )
        .unwrap();
    lock.lock().unwrap();
    ok(
        &world
            .sandbox
            .systemctl(["start", "--no-block", backup_unit]),
        "systemctl start",
    );
    let waiting = wait_for(Duration::from_secs(30), || {
        world
            .sandbox
            .journal(backup_unit)
            .contains("waiting for unitgen to finish changing this instance")
            .then_some(())
    });
    assert!(waiting.is_some(), "{}", world.sandbox.journal(backup_unit));
    assert_eq!(world.active("ugbkf-broken-cache.service"), "active");
    drop(lock);
    // Then it stops `cache` and copies it (held by `.hold-backup`): an
    // apply meanwhile waits for the backup, saying so, instead of finding
    // `cache` down and rolling back.
    let cache_unit = "ugbkf-broken-cache.service";
    let stopped = wait_for(Duration::from_secs(30), || {
        (world.active(cache_unit) == "inactive").then_some(())
    });
    assert!(stopped.is_some(), "{}", world.sandbox.journal(backup_unit));
    // `plan` meanwhile tells the backup's stop from drift: the host is as
    // applied, and the stopped units come back when the backup ends.
    let planned = world.unitgen(&["plan", "broken"]);
    let shown = String::from_utf8_lossy(&planned.stdout);
    assert_eq!(planned.status.code(), Some(0), "{shown}");
    assert!(shown.contains("no changes"), "{shown}");
    assert!(
        shown.contains(
            "ugbkf-broken-cache.service, ugbkf-broken-reader.service stopped or paused by the running \
             backup (ugbkf-broken-backup.service)"
        ),
        "{shown}"
    );
    let said = world.dir().join("apply-during-backup.log");
    let mut apply = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["apply", "broken", "--settle", "2", "--file"])
        .arg(world.file())
        .arg("--root")
        .arg(world.sandbox.root())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&said).unwrap())
        .spawn()
        .unwrap();
    let told = wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(&said)
            .unwrap()
            .contains("waiting for the running backup (ugbkf-broken-backup.service) to finish")
            .then_some(())
    });
    assert!(
        told.is_some(),
        "{}",
        std::fs::read_to_string(&said).unwrap()
    );
    assert!(apply.try_wait().unwrap().is_none(), "apply did not wait");
    assert_eq!(world.active(cache_unit), "inactive");
    let released = docker([
        "run",
        "--rm",
        "--volume",
        "ugbkf-broken-cache:/d",
        IMAGE,
        "rm",
        "/d/.hold-backup",
    ]);
    ok(&released, "removing .hold-backup");
    let applied = apply.wait().unwrap();
    let said = std::fs::read_to_string(&said).unwrap();
    assert!(applied.success(), "{said}");
    assert!(
        said.contains("ugbkf-broken-backup.service finished after"),
        "{said}"
    );
    for service in ["cache", "reader", "files", "db"] {
        assert_eq!(
            world.active(&format!("ugbkf-broken-{service}.service")),
            "active"
        );
    }
    assert_eq!(snapshots(&world, "broken").len(), 1, "the backup succeeded");
    // What the backup unit records is as private as the rest of the state.
    let state = world.sandbox.root().join("var/lib/unitgen/ugbkf-broken");
    for record in ["last-backup.json", "last-backup-run.json"] {
        let mode = std::fs::metadata(state.join(record))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{record}");
    }

    // A backup killed (SIGKILL to all its processes) while it dumps: the
    // dump it ran in the database's container (`docker exec`) ends too,
    // its `setsid` child as well (a kill of the dump's process group left
    // it running). Docker alone leaves it running: killing a `docker exec`
    // client does not end what it started.
    world.exec("broken", "db", "touch /db/.hold-dump");
    let dumping = || {
        let top = docker(["top", "ugbkf-broken-db"]);
        let top = String::from_utf8_lossy(&top.stdout).into_owned();
        (top.contains(".hold-dump") || top.contains("sleep 86399")).then_some(top)
    };
    let killed = |moment: &dyn Fn() -> bool, what: &str| {
        ok(
            &world
                .sandbox
                .systemctl(["start", "--no-block", backup_unit]),
            "systemctl start",
        );
        let reached = wait_for(Duration::from_secs(30), || moment().then_some(()));
        assert!(
            reached.is_some(),
            "no {what}:\n{}",
            world.sandbox.journal(backup_unit)
        );
        ok(
            &world
                .sandbox
                .systemctl(["kill", "--signal=SIGKILL", backup_unit]),
            "systemctl kill",
        );
        let ended = wait_for(Duration::from_secs(30), || {
            (world.active(backup_unit) == "failed").then_some(())
        });
        assert!(ended.is_some(), "{}", world.sandbox.journal(backup_unit));
    };
    killed(&|| dumping().is_some(), "dump");
    let ended = wait_for(Duration::from_secs(30), || {
        dumping().is_none().then_some(())
    });
    assert!(
        ended.is_some(),
        "the dump outlived its killed backup:\n{}",
        dumping().unwrap_or_default()
    );
    world.exec("broken", "db", "rm /db/.hold-dump");

    // Killed while it copies `cache`'s volume (stopped for it): no copy
    // container is left (Docker alone left it running, holding the volume:
    // it could not be removed), and `cache` and `reader` run again.
    world.exec("broken", "cache", "touch /data/.hold-backup");
    let using_cache = || -> Vec<String> {
        let users = list_containers(true, &[("volume", "ugbkf-broken-cache")]);
        (users.iter())
            .filter_map(|json| json["Names"][0].as_str()?.strip_prefix('/'))
            .filter(|name| *name != "ugbkf-broken-cache")
            .map(str::to_string)
            .collect()
    };
    // And a copy an earlier unitgen left running (Docker named it then),
    // which a kill of its backup left holding the volume: removed too.
    ok(
        &docker([
            "run",
            "--detach",
            "--rm",
            "--network=none",
            "--entrypoint",
            "tar",
            "--volume",
            "ugbkf-broken-cache:/data:ro",
            &helper,
            "-c",
            "-C",
            "/data",
            ".",
        ]),
        "an earlier unitgen's copy",
    );
    killed(
        &|| {
            world.active(cache_unit) == "inactive"
                && using_cache().contains(&"ugbkf-broken-cache.backup".to_string())
        },
        "copy of cache",
    );
    assert_eq!(
        using_cache(),
        Vec::<String>::new(),
        "left holding the volume"
    );
    for service in ["cache", "reader"] {
        active_again(&world, &format!("ugbkf-broken-{service}.service"));
    }
    world.exec("broken", "cache", "rm /data/.hold-backup");
    // The next backup runs as if nothing had happened.
    ok(
        &world.unitgen(&["backup", "broken"]),
        "backup after the kills",
    );
    assert_eq!(snapshots(&world, "broken").len(), 2);

    // Restarting the whole instance runs no backup (its timer does).
    ok(&world.unitgen(&["restart", "broken"]), "restart broken");
    assert_eq!(snapshots(&world, "broken").len(), 2, "restart ran a backup");

    // `unitgen pull` fetches the helper image too.
    let pulled = support::tempdir("ugbkf-pull-");
    let service_image = registry.image("ugbkf/service:1");
    registry.push_new("ugbkf/service:1", "ugbkf-pull");
    untag(&helper);
    std::fs::write(
        pulled.path().join("unitgen.yaml"),
        format!(
            "app: ugbkfp\nservices:\n  db:\n    image: {service_image}\n    volumes: [\"data:/d\"]\n    backup: {{}}\n\
             backup:\n  repository: /var/backups/ugbkfp\n  password_file: /etc/ugbkfp/password\n  helper_image: {helper}\n\
             instances:\n  one: {{}}\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["pull", "one", "--file"])
        .arg(pulled.path().join("unitgen.yaml"))
        .output()
        .unwrap();
    ok(&out, "unitgen pull");
    assert!(image_id(&helper).is_some(), "pull did not fetch {helper}");
    assert!(image_id(&service_image).is_some());
    docker(["rmi", &service_image]);

    // destroy removes the backup units too, the failure hook's template
    // (which systemd cannot stop) included.
    ok(&world.unitgen(&["destroy", "broken"]), "destroy");
    let left: Vec<String> = std::fs::read_dir(world.sandbox.unit_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("ugbkf-broken"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `rclone serve restic` on a loopback port, stopped on drop.
struct RestServer(Child);

impl Drop for RestServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_rest_repository_served_by_rclone_works_retention_keeps_what_keep_says_and_runs_wait_for_each_other()
 {
    let world = World::new("ugbkr");
    let (port, rest_port) = (free_port(), free_port());
    let dir = support::tempdir("rclone-");
    let server = RestServer(
        Command::new("rclone")
            .args([
                "serve",
                "restic",
                "--addr",
                &format!("127.0.0.1:{rest_port}"),
            ])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("running rclone"),
    );
    let up = wait_for(Duration::from_secs(60), || {
        std::net::TcpStream::connect(("127.0.0.1", rest_port)).ok()
    });
    assert!(up.is_some(), "rclone serve restic did not listen");
    let yaml = app(
        "ugbkr",
        &format!("  repository: rest:http://127.0.0.1:{rest_port}/\n  keep: {{last: 2}}\n"),
    ) + "instances:\n"
        + &instance("live", port, IMAGE, 0);
    world.write(&yaml);
    secret(&world, "/etc/ugbkr/restic-password", PASSWORD);
    // A state directory of its own (inside the sandbox's root, where the
    // backup unit reads the applied revision).
    let unitgen = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--state-dir", "/var/lib/ugbkr-state"]);
        world.unitgen(&all)
    };
    ok(&unitgen(&["apply", "live", "--settle", "2"]), "apply");
    seed(&world, "live", "version 1");

    let mut states = Vec::new();
    for version in 1..=3 {
        world.exec(
            "live",
            "files",
            &format!("echo 'version {version}' > /srv/index.html"),
        );
        world.exec("live", "db", &format!("echo {version} > /db/version"));
        let out = ok(&unitgen(&["backup", "live"]), "backup");
        assert!(out.contains("(revision 1)"), "{out}");
        states.push((
            fingerprint("ugbkr-live-dbdata"),
            fingerprint("ugbkr-live-files"),
        ));
    }
    // keep: {last: 2}: the first of three is gone.
    let listed = snapshots(&world, "live");
    assert_eq!(listed.len(), 2, "{listed:?}");
    for snapshot in &listed {
        assert_eq!(snapshot["revision"], "1", "{snapshot}");
    }
    assert!(
        std::fs::read_dir(dir.path().join("snapshots"))
            .unwrap()
            .count()
            == 2,
        "the REST server holds exactly the kept snapshots"
    );

    // An older snapshot by id, then the latest, both from the REST server.
    let second = listed[0]["short_id"].as_str().unwrap().to_string();
    ok(
        &unitgen(&["restore", "live", "--snapshot", &second, "--yes"]),
        "restore --snapshot",
    );
    assert_eq!(
        (
            fingerprint("ugbkr-live-dbdata"),
            fingerprint("ugbkr-live-files")
        ),
        states[1]
    );
    assert_eq!(serves(port).as_deref(), Some("version 2\n"));
    ok(&unitgen(&["restore", "live", "--yes"]), "restore latest");
    assert_eq!(
        (
            fingerprint("ugbkr-live-dbdata"),
            fingerprint("ugbkr-live-files")
        ),
        states[2]
    );

    // Runs against one repository wait for each other instead of failing
    // on restic's lock (restic 0.14 cannot wait): while another restic
    // holds it (here a backup that reads its standard input, started
    // inside the sandbox under the repository's lock file, as the units
    // take it), the check and the backup unit both wait, then succeed; so
    // does `unitgen backups`.
    let check_unit =
        std::fs::read_to_string(world.unit_file("ugbkr-live-backup-check.service")).unwrap();
    let lock = check_unit
        .split("exec 9>>")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("the check unit takes a lock file")
        .to_string();
    let mut holder = Command::new("nsenter")
        .arg(format!("--target={}", world.sandbox.pid()))
        .args(["-m", "-p", "-u", "-i", "-C", "-r", "-w", "flock", &lock])
        .args([
            "restic",
            "--no-cache",
            "backup",
            "--stdin",
            "--stdin-filename",
            "holder",
        ])
        .env(
            "RESTIC_REPOSITORY",
            format!("rest:http://127.0.0.1:{rest_port}/"),
        )
        .env("RESTIC_PASSWORD_FILE", "/etc/ugbkr/restic-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let locked = wait_for(Duration::from_secs(60), || {
        let locks = std::fs::read_dir(dir.path().join("locks")).ok()?;
        (locks.count() > 0).then_some(())
    });
    assert!(locked.is_some(), "the holder took no restic lock");
    let (check, backup) = (
        "ugbkr-live-backup-check.service",
        "ugbkr-live-backup.service",
    );
    ok(
        &world
            .sandbox
            .systemctl(["start", "--no-block", check, backup]),
        "systemctl start",
    );
    let mut listing = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["backups", "live", "--json", "--file"])
        .arg(world.file())
        .arg("--root")
        .arg(world.sandbox.root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its standard error, line by line as it comes: the holder must not let
    // go before the listing has found the lock taken (a slow start of the
    // listing would otherwise find it free, and prove nothing).
    let listing_err = {
        let stderr = listing.stderr.take().unwrap();
        let (lines, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        received
    };
    let mut err = String::new();
    while !err.contains("waiting for a backup or check") {
        match listing_err.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => err += &(line + "\n"),
            Err(_) => panic!("`unitgen backups` did not wait for the lock:\n{err}"),
        }
    }
    for unit in [check, backup] {
        let waiting = wait_for(Duration::from_secs(30), || {
            world
                .sandbox
                .journal(unit)
                .contains("waiting for another backup or check of this repository")
                .then_some(())
        });
        assert!(
            waiting.is_some(),
            "{unit} did not wait:\n{}",
            world.sandbox.journal(unit)
        );
        assert_eq!(world.active(unit), "activating", "{unit}");
    }
    {
        use std::io::Write as _;
        let mut input = holder.stdin.take().unwrap();
        input.write_all(b"held\n").unwrap();
    }
    assert!(
        holder.wait().unwrap().success(),
        "the holder's backup failed"
    );
    for unit in [check, backup] {
        let done = wait_for(Duration::from_secs(60), || {
            let state = world.active(unit);
            (!state.ends_with("activating")).then_some(state)
        });
        assert_eq!(
            done.as_deref(),
            Some("inactive"),
            "{unit}:\n{}",
            world.sandbox.journal(unit)
        );
    }
    let listing = listing.wait_with_output().unwrap();
    err.extend(listing_err.iter().map(|line| line + "\n"));
    assert!(listing.status.success(), "{err}");
    let snapshots: serde_json::Value = serde_json::from_slice(&listing.stdout).expect("JSON");
    assert!(snapshots.as_array().is_some_and(|s| !s.is_empty()), "{err}");
    drop(server);
}

/// A restore killed halfway left the services stopped and the data half
/// restored with nothing saying so: `plan` offered to start the services,
/// `apply` started them on the half-restored data and said all was well.
/// Now its record says what was interrupted until the restore, run again,
/// finishes (apply starts the services and keeps saying so).
#[test]
fn a_restore_killed_halfway_is_told_until_running_it_again_finishes_it() {
    let world = World::new("ugrk");
    let port = free_port();
    let yaml = app("ugrk", "  repository: /var/backups/ugrk\n")
        + "instances:\n"
        + &instance("live", port, IMAGE, 1);
    world.write(&yaml);
    secret(&world, "/etc/ugrk/restic-password", PASSWORD);
    world.apply_ok("live");
    seed(&world, "live", "live files");
    let live = || {
        (
            fingerprint("ugrk-live-dbdata"),
            fingerprint("ugrk-live-files"),
        )
    };
    let before = live();
    ok(&world.unitgen(&["backup", "live"]), "backup live");
    let short = snapshots(&world, "live")[0]["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    world.exec("live", "db", "rm -rf /db/*");
    world.exec("live", "files", "rm -rf /srv/*");

    // Killed with the files volume refilled and the database's dump not
    // yet read back: its services are stopped.
    let killed = world.unitgen_with(
        &["restore", "live", "--yes"],
        &[("UNITGEN_FAULT", "after-restore-volume")],
    );
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed.status),
        Some(6),
        "{}",
        String::from_utf8_lossy(&killed.stderr)
    );
    assert_eq!(world.active("ugrk-live-db.service"), "inactive");
    let told = format!(
        "a restore of snapshot {short} did not finish: volume ugrk-live-files, the dump of db \
         may be half restored; `unitgen restore ugrk/live --snapshot {short}` finishes it"
    );
    let plan = world.unitgen(&["plan", "live"]);
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(shown.contains(&told), "{shown}");
    let status = world.unitgen(&["status", "live"]);
    assert_eq!(status.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&status.stdout).contains(&told));

    // apply starts what the restore stopped, and does not call that done.
    let applied = world.apply("live");
    let said = String::from_utf8_lossy(&applied.stderr);
    assert!(applied.status.success(), "{said}");
    assert!(said.contains(&told), "{said}");
    assert!(!said.contains("up to date"), "{said}");
    for unit in ["files.service", "db.service", "backup.timer"] {
        assert_eq!(
            world.active(&format!("ugrk-live-{unit}")),
            "active",
            "{unit}"
        );
    }
    assert_ne!(live(), before, "the database is still empty");
    let plan = world.unitgen(&["plan", "live"]);
    assert_eq!(plan.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&plan.stdout).contains(&told));
    // Nor is the half-restored data backed up, by hand or by the timer: it
    // would be the newest snapshot.
    let refused = world.unitgen(&["backup", "live"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("not backed up: a restore of snapshot"),
        "{said}"
    );
    let started = world
        .sandbox
        .systemctl(["start", "ugrk-live-backup.service"]);
    assert!(!started.status.success());
    let refusal = "a restore of this instance did not finish";
    assert!(
        world
            .sandbox
            .journal_with("ugrk-live-backup.service", refusal)
            .contains(refusal)
    );
    assert_eq!(snapshots(&world, "live").len(), 1);

    // Killed once more, after it started everything again: run as told, it
    // finishes, and everything is as backed up.
    let killed = world.unitgen_with(
        &["restore", "live", "--yes"],
        &[("UNITGEN_FAULT", "after-start")],
    );
    assert!(!killed.status.success());
    assert!(String::from_utf8_lossy(&world.unitgen(&["plan", "live"]).stdout).contains(&told));
    ok(
        &world.unitgen(&["restore", "live", "--snapshot", &short, "--yes"]),
        "restore as told",
    );
    assert_eq!(live(), before);
    assert_eq!(serves(port).as_deref(), Some("live files\n"));
    let plan = world.unitgen(&["plan", "live"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
    assert_eq!(world.unitgen(&["status", "live"]).status.code(), Some(0));
}

/// The processes whose parent is `pid`, each with its command line.
fn children(pid: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
        let ppid = (stat.rsplit_once(')'))
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            found.push((child, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

/// Whether a process runs (a zombie does not).
fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| Some(stat.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

/// A restore killed with SIGKILL left its processes running: restic still
/// dumping, and `docker exec` still feeding the dump to the database, with
/// unitgen gone and the next command free to start. Now they die with it,
/// and the next apply starts what the restore had stopped.
#[test]
fn the_processes_of_a_restore_killed_with_sigkill_die_with_it() {
    let world = World::new("ugrd");
    let port = free_port();
    // A database that reads nothing of its dump for 10 minutes: the dump,
    // bigger than every buffer on the way, keeps restic waiting.
    // Its dump waits for /db/go (then takes it away), so a backup can be
    // caught halfway.
    let yaml = app("ugrd", "  repository: /var/backups/ugrd\n")
        .replace("rm -rf /db/* && tar -x -C /db\"", "sleep 600\"")
        + "instances:\n"
        + &instance("live", port, IMAGE, 0).replace(
            "dump: 'tar",
            "dump: 'until rm /db/go 2>/dev/null; do sleep 0.2; done; tar",
        );
    assert!(yaml.contains("sleep 600") && yaml.contains("/db/go"));
    world.write(&yaml);
    secret(&world, "/etc/ugrd/restic-password", PASSWORD);
    world.apply_ok("live");
    world.exec("live", "db", "head -c 8000000 /dev/urandom > /db/big");

    // `unitgen backup` killed while the backup runs: the backup is its
    // unit's, which goes on; `unitgen backup` run again waits for it and
    // says its snapshot, and plan and status tell nothing amiss. The
    // backup itself killed (its unit's processes, SIGKILL) halfway: status
    // says that run failed, and the next backup is made as if it had not
    // run (nothing of it is left in the way: staged copies, locks).
    let unit = "ugrd-live-backup.service";
    let mut backup = world.spawn(&["backup", "live"]);
    let running = wait_for(Duration::from_secs(60), || {
        (world.active(unit) == "activating").then_some(())
    });
    backup.kill().unwrap();
    backup.wait().unwrap();
    assert!(running.is_some(), "the backup did not start");
    let plan = world.unitgen(&["plan", "live"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text_of(&plan));
    let again = world.spawn_kept(&["backup", "live"]);
    world.exec("live", "db", "echo > /db/go");
    let again = again.wait_with_output().unwrap();
    let said = ok(&again, "backup after a killed one");
    assert!(said.contains("snapshot"), "{said}");
    assert_eq!(world.active(unit), "inactive");
    assert_eq!(snapshots(&world, "live").len(), 1);
    assert_eq!(world.unitgen(&["status", "live"]).status.code(), Some(0));

    let backup = world.spawn(&["backup", "live"]);
    let running = wait_for(Duration::from_secs(60), || {
        (world.active(unit) == "activating").then_some(())
    });
    assert!(running.is_some(), "the backup did not start");
    let killed = world.sandbox.systemctl(["kill", "--signal=KILL", unit]);
    assert!(killed.status.success(), "{}", text_of(&killed));
    let failed = backup.wait_with_output().unwrap();
    assert!(!failed.status.success());
    let status = world.unitgen(&["status", "live"]);
    let shown = text_of(&status);
    assert!(shown.contains("failed (signal)"), "{shown}");
    assert_eq!(world.active("ugrd-live-files.service"), "active");
    // The killed run's dump goes on in the container (Docker ends no `docker
    // exec` whose client died; a real dump dies at its next write): ended
    // here, else it might take /db/go first.
    let top = docker(["top", "ugrd-live-db", "-o", "pid,args"]);
    for line in String::from_utf8_lossy(&top.stdout).lines() {
        if line.contains("/db/go") {
            let pid = line.split_whitespace().next().unwrap();
            Command::new("kill").args(["-9", pid]).status().unwrap();
        }
    }
    world.exec("live", "db", "echo > /db/go");
    ok(
        &world.unitgen(&["backup", "live"]),
        "backup after a killed backup",
    );
    assert_eq!(snapshots(&world, "live").len(), 2);

    let mut restore = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["restore", "live", "--yes", "--file"])
        .arg(world.file())
        .arg("--root")
        .arg(world.sandbox.root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Its restore command runs in the database's container too (a `docker
    // exec` client may not have asked Docker yet).
    let reading = || {
        let top = docker(["top", "ugrd-live-db"]);
        String::from_utf8_lossy(&top.stdout).contains("sleep 600")
    };
    let feeding = wait_for(Duration::from_secs(60), || {
        let running = children(restore.id());
        let find = |what: &str| running.iter().find(|(_, line)| line.contains(what));
        let pids = [find("restic --no-cache dump")?.0, find("docker exec")?.0];
        reading().then_some(pids)
    });
    let Some(pids) = feeding else {
        let _ = restore.kill();
        panic!("the restore never fed the database its dump");
    };
    restore.kill().unwrap();
    restore.wait().unwrap();
    let gone = wait_for(Duration::from_secs(30), || {
        pids.iter().all(|&pid| !is_alive(pid)).then_some(())
    });
    assert!(
        gone.is_some(),
        "restic and docker exec ({pids:?}) outlived the restore"
    );

    // What a user sees then: the restore told by plan and status, and the
    // services it stopped left stopped (not run on half-restored data)
    // until an apply starts them all, on the data as it is, still telling
    // the restore that did not finish.
    let told = "a restore of snapshot";
    // What the database's `docker exec` ran goes on in its container,
    // reading the dump as far as it came (here: for 10 minutes), while
    // the apply below started the other services: plan tells it, and
    // apply restarts the database, which ends it.
    assert!(reading(), "its restore command outlived the restore");
    let plan = world.unitgen(&["plan", "live"]);
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(shown.contains(told), "{shown}");
    assert!(
        shown.contains(
            "* ugrd-live-db.service (the restore that did not finish still reads its dump into \
             it, cut short: restart)"
        ),
        "{shown}"
    );
    let status = world.unitgen(&["status", "live"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(3), "{shown}");
    // db's row marked, the reason under it.
    let mut rows = shown.lines().skip_while(|l| !l.starts_with("! db "));
    assert!(rows.next().is_some(), "{shown}");
    assert!(
        (rows.take_while(|l| l.starts_with("    ! "))).any(|l| l.contains("still reads its dump")),
        "{shown}"
    );
    assert_eq!(world.active("ugrd-live-files.service"), "inactive");
    let applied = world.apply("live");
    let said = String::from_utf8_lossy(&applied.stderr);
    assert!(applied.status.success(), "{said}");
    assert!(said.contains(told), "{said}");
    for unit in ["files.service", "db.service", "backup.timer"] {
        let unit = format!("ugrd-live-{unit}");
        assert_eq!(world.active(&unit), "active", "{unit}");
    }
    assert!(!reading(), "its restore command ended with the restart");
}

/// A repository (under `--root`, as the template names it) holding one
/// snapshot of app `app`'s instance `live` with the revision tag
/// `revision:REVISION`, as anyone who can write to the repository (another
/// host, another instance sharing it) can make one; it holds a copy of
/// volume `data`, as the backup unit writes one. Returns the folder, the
/// root and the template (its helper image is the test image, on the host).
fn repository_tagged(app: &str, revision: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let repository = format!("/srv/{app}-repo");
    let password = format!("/etc/{app}/restic-password");
    let at = |path: &str| root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(at(&format!("/etc/{app}"))).unwrap();
    std::fs::write(at(&password), PASSWORD).unwrap();
    std::fs::set_permissions(at(&password), std::fs::Permissions::from_mode(0o600)).unwrap();
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(staging.join("volumes")).unwrap();
    std::fs::write(staging.join("volumes/data.tar"), "").unwrap();
    let restic = |args: &[&str]| {
        let out = Command::new("restic")
            .env("RESTIC_REPOSITORY", at(&repository))
            .env("RESTIC_PASSWORD_FILE", at(&password))
            .current_dir(&staging)
            .args(args)
            .output()
            .unwrap();
        ok(&out, "restic");
    };
    restic(&["init"]);
    restic(&[
        "backup",
        ".",
        "--tag",
        &format!("app:{app},instance:live"),
        "--tag",
        &format!("revision:{revision}"),
    ]);
    let template = dir.path().join("app.yaml");
    std::fs::write(
        &template,
        format!(
            "app: {app}\nservices:\n  web:\n    image: {IMAGE}\n    volumes: [\"data:/data\"]\n    backup: {{}}\n\
             backup:\n  repository: {repository}\n  password_file: {password}\n  helper_image: {IMAGE}\n\
             instances:\n  live: {{}}\n"
        ),
    )
    .unwrap();
    (dir, root, template)
}

/// `unitgen backups` printed a snapshot's revision tag as restic gave it:
/// anyone who can write to the repository (another host, another instance
/// sharing it) could tag a snapshot `revision:7\e[2J\e]0;…\a`, and the
/// listing cleared the terminal and retitled it. What the repository says
/// is shown escaped now.
#[test]
fn a_hostile_tag_in_the_repository_is_shown_not_obeyed_by_backups() {
    let hostile = "7\u{1b}[2J\u{1b}]0;owned\u{7}\u{202e}";
    let (_dir, root, template) = repository_tagged("ugbkt", hostile);
    let out = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["backups", "live", "-f"])
        .arg(&template)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    let listed = ok(&out, "backups");
    assert!(
        listed.contains("7\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\u{202e}"),
        "the tag is shown, escaped: {listed}"
    );
    assert!(
        !listed.contains('\u{1b}') && !listed.contains('\u{7}') && !listed.contains('\u{202e}'),
        "the terminal obeyed the repository: {listed:?}"
    );
    // `--json` carries the tag as it is: JSON escapes it.
    let out = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["backups", "live", "--json", "-f"])
        .arg(&template)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&ok(&out, "backups --json")).unwrap();
    assert_eq!(json[0]["revision"], hostile);
}

/// Found in hostile values round 7: `restore` showed the snapshot's
/// revision tag in the question it asks before replacing an instance's
/// data with its line feeds: a tag written into the repository added lines
/// of its own to what the user reads before confirming (here, that nothing
/// is replaced). The question shows it on its line.
#[test]
fn a_hostile_tag_adds_no_line_to_restores_question() {
    let (_dir, root, template) = repository_tagged(
        "ugbkq",
        "7)\nrestore snapshot 00000000 of ugbkq-live into ugbkq-live:\n  replaces volumes: none",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["restore", "live", "--snapshot", "latest", "-f"])
        .arg(&template)
        .arg("--root")
        .arg(&root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("pass --yes"), "stopped at the question: {err}");
    assert!(
        err.contains("revision 7)\\nrestore snapshot 00000000"),
        "the tag, on its line: {err}"
    );
    let starting = |start: &str| err.lines().filter(|l| l.starts_with(start)).count();
    assert_eq!(starting("restore snapshot "), 1, "{err}");
    assert_eq!(starting("  replaces volumes: "), 1, "{err}");
    assert!(
        err.contains("\n  replaces volumes: ugbkq-live-data\n"),
        "{err}"
    );
}

/// stderr with miette's wrapping and frame undone: one line of words.
fn one_line(out: &Output) -> String {
    (String::from_utf8_lossy(&out.stderr).split_whitespace())
        .filter(|word| *word != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `State.Status` of the container `name` (`running`, `paused`...).
fn status_of(name: &str) -> String {
    let json = inspect_container(name).unwrap_or_else(|| panic!("no container {name}"));
    support::docker::text_at(&json, "/State/Status").to_owned()
}

/// When each container of the instance started: equal before and after,
/// nothing was stopped or restarted.
fn started(world: &World, instance: &str) -> Vec<String> {
    ["files", "db"]
        .iter()
        .map(|service| {
            let name = world.container(instance, service);
            let json = inspect_container(&name).unwrap_or_else(|| panic!("no container {name}"));
            format!("{} {}", json["State"]["StartedAt"], json["State"]["Paused"])
        })
        .collect()
}

/// The default helper image (busybox:1.36) cannot be pulled here, as on a
/// host whose registry is down. Before: apply said only "image
/// busybox:1.36 could not be had", an image the user wrote nowhere; a
/// restore stopped the services, then failed to start the volume writer
/// and left them stopped, the restore recorded as unfinished; a backup
/// paused `files` before its copy failed. Then the volume set changes
/// (`files` renamed `uploads`): the restore of the older snapshot failed
/// halfway on the volume the snapshot lacks, services down, and asked to be
/// run again, which failed the same way.
#[test]
fn a_helper_image_that_cannot_be_had_stops_nothing_and_a_restore_leaves_what_its_snapshot_lacks() {
    let world = World::new("ugbkv");
    let port = free_port();
    let instances = |helper: &str| format!("instances:\n{}", instance("live", port, helper, 0));
    let base = app("ugbkv", "  repository: /var/backups/ugbkv\n");
    secret(&world, "/etc/ugbkv/restic-password", PASSWORD);

    // apply: the default helper, which this host cannot pull.
    world.write(&(base.clone() + &instances("busybox:1.36")));
    let out = world.apply("live");
    let said = one_line(&out);
    assert!(!out.status.success());
    assert!(
        said.contains("image busybox:1.36 could not be had"),
        "{said}"
    );
    assert!(
        said.contains("is the backups' helper image, which copies volumes: set `helper_image`"),
        "{said}"
    );
    assert!(said.contains("nothing on the host was changed"), "{said}");
    assert!(!world.unit_file("ugbkv-live-files.service").exists());

    // A helper of its own, removed after apply (as `docker image prune
    // -a` does: no container uses it between backups).
    let helper = "ugbkv/helper:1";
    let _helper_image = LocalImage(helper.into());
    build_image(helper, &format!("FROM {IMAGE}\n"));
    world.write(&(base.clone() + &instances(helper)));
    world.apply_ok("live");
    seed(&world, "live", "live files");
    ok(&world.unitgen(&["backup", "live"]), "backup live");
    let short = snapshots(&world, "live")[0]["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&docker(["rmi", helper]), "docker rmi");
    let before = started(&world, "live");

    // restore: refused before anything stops.
    let out = world.unitgen(&["restore", "live", "--yes"]);
    let said = one_line(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("image {helper} could not be had")),
        "{said}"
    );
    assert!(said.contains("set `helper_image`"), "{said}");
    assert!(said.contains("nothing was changed"), "{said}");
    assert_eq!(started(&world, "live"), before);
    let state = world.sandbox.root().join("var/lib/unitgen/ugbkv-live");
    assert!(!state.join("restoring.json").exists());
    // status names the missing helper (as before), and no restore.
    let status = world.unitgen(&["status", "live"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains("its helper image ugbkv/helper:1 is not on this host any more"),
        "{shown}"
    );
    assert!(!shown.contains("restore"), "{shown}");

    // The backup unit: fails before it pauses `files`, saying why.
    let since = ok(&Command::new("date").arg("+%s").output().unwrap(), "date");
    let out = world.unitgen(&["backup", "live"]);
    let said = one_line(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("{helper} is the backups' helper image")),
        "{said}"
    );
    let paused = docker([
        "events",
        "--since",
        since.trim(),
        "--until",
        "0s",
        "--filter",
        "event=pause",
        "--filter",
        &format!("container={}", world.container("live", "files")),
    ]);
    assert_eq!(ok(&paused, "docker events"), "", "files was paused");
    assert_eq!(started(&world, "live"), before);

    // The volume set changed since the snapshot: `files` is `uploads` now.
    build_image(helper, &format!("FROM {IMAGE}\n"));
    let renamed = base.replace(r#"volumes: ["files:/srv"]"#, r#"volumes: ["uploads:/srv"]"#);
    assert_ne!(renamed, base);
    world.write(&(renamed + &instances(helper)));
    world.apply_ok("live");
    world.exec("live", "files", "echo 'new uploads' > /srv/index.html");
    world.exec("live", "db", "rm -rf /db/*");
    let out = world.unitgen(&["restore", "live", "--yes"]);
    let said = one_line(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(
            "volume ugbkv-live-uploads is left as it is: the snapshot has no copy of volume `uploads`"
        ),
        "{said}"
    );
    assert!(
        said.contains("the snapshot's copy of volume `files` is not restored: the instance backs up no volume of that name now"),
        "{said}"
    );
    assert!(
        said.contains(&format!("restored from snapshot {short}")),
        "{said}"
    );
    // The dump the snapshot has is back; the new volume is as it was.
    assert_eq!(
        world.exec("live", "files", "wget -qO- http://db/table"),
        "row 1\nrow 2\n"
    );
    assert_eq!(serves(port).as_deref(), Some("new uploads\n"));
    assert!(!state.join("restoring.json").exists());
    assert_eq!(world.unitgen(&["status", "live"]).status.code(), Some(0));
}

/// With a site file of two apps, `restore a/live --into staging` (the
/// README's `--into staging`) was refused as ambiguous ("which one's
/// `staging`?"), and `--into b/other` was taken: b's volumes of the same
/// names were emptied and refilled with a's data. `--into` now names an
/// instance of the snapshot's own app, alone or as APP/INSTANCE; another
/// app's instance is refused before anything changes.
#[test]
fn a_site_restores_live_into_staging_and_never_into_another_apps_instance() {
    let mut world = World::new("ugbksa");
    world.also_own("ugbksb");
    let dir = world.dir().to_path_buf();
    let template = |name: &str| {
        let text = app(name, "");
        text[..text.find("\nbackup:\n").unwrap() + 1].to_string()
    };
    std::fs::write(dir.join("a.yaml"), template("ugbksa")).unwrap();
    std::fs::write(dir.join("b.yaml"), template("ugbksb")).unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let app_entry = |name: &str, file: &str, instances: &[(&str, u16)]| {
        let mut entry = format!(
            "  {name}:\n    template: {file}\n    backup: {{repository: /var/backups/{name}, password_file: /etc/{name}/restic-password, helper_image: {IMAGE}}}\n    defaults: {{host: h1, dump: 'tar -c -C /db .', helper: {IMAGE}, ready_after: 0}}\n    instances:\n"
        );
        for (instance, port) in instances {
            entry += &format!("      {instance}: {{port: {port}}}\n");
        }
        entry
    };
    let site = format!(
        "hosts:\n  h1: {{address: 192.0.2.1}}\napps:\n{}{}",
        app_entry(
            "ugbksa",
            "a.yaml",
            &[("live", ports[0]), ("staging", ports[1])]
        ),
        app_entry("ugbksb", "b.yaml", &[("other", ports[2])]),
    );
    std::fs::write(dir.join("site.yaml"), site).unwrap();
    secret(&world, "/etc/ugbksa/restic-password", PASSWORD);
    secret(&world, "/etc/ugbksb/restic-password", PASSWORD);
    let file = std::path::Path::new("site.yaml");
    let run = |args: &[&str]| world.unitgen_in(&dir, file, args);
    ok(&run(&["apply", "--host", "h1", "--settle", "1"]), "apply");
    let data = |app: &str, instance: &str| {
        (
            fingerprint(&format!("{app}-{instance}-dbdata")),
            fingerprint(&format!("{app}-{instance}-files")),
        )
    };
    for (app, instance) in [
        ("ugbksa", "live"),
        ("ugbksa", "staging"),
        ("ugbksb", "other"),
    ] {
        for (service, file) in [("files", "/srv/index.html"), ("db", "/db/table")] {
            let container = format!("{app}-{instance}-{service}");
            let script = format!("echo '{app} {instance}' > {file}");
            let out = docker(["exec", &container, "sh", "-c", &script]);
            assert!(out.status.success(), "{out:?}");
        }
    }
    let live = data("ugbksa", "live");
    let other = data("ugbksb", "other");
    ok(&run(&["backup", "ugbksa/live"]), "backup ugbksa/live");

    // Another app's instance: refused, its data and services untouched.
    let refused = run(&["restore", "ugbksa/live", "--into", "ugbksb/other", "--yes"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("restores into an instance of app ugbksa only")
            && said.contains("nothing was changed"),
        "{said}"
    );
    assert_eq!(data("ugbksb", "other"), other);
    assert_eq!(serves(ports[2]).as_deref(), Some("ugbksb other\n"));

    // The same app's staging, named alone as the README shows it.
    ok(
        &run(&["restore", "ugbksa/live", "--into", "staging", "--yes"]),
        "restore ugbksa/live --into staging",
    );
    assert_eq!(data("ugbksa", "staging"), live);
    assert_eq!(data("ugbksa", "live"), live);
    assert_eq!(data("ugbksb", "other"), other);
    assert_eq!(serves(ports[1]).as_deref(), Some("ugbksa live\n"));
}

/// Found in hostile values round 6: systemd lets `EnvironmentFile=` win
/// over `Environment=`, so a backup's `environment_file` that set
/// `RESTIC_REPOSITORY` (as restic's guides write such files) sent every
/// backup to its repository, while `unitgen backups`, `restore`, `status`
/// and the docs read the template's. The backup unit fails now, naming the
/// file and the variable (never its value), and `backups` refuses the file
/// alike; without the line, the same file serves.
#[test]
fn an_environment_file_cannot_send_the_backups_elsewhere() {
    let world = World::new("ugbke");
    let yaml = app(
        "ugbke",
        "  repository: /var/backups/ugbke\n  environment_file: /etc/ugbke/s3.env\n",
    ) + "instances:\n"
        + &instance("live", free_port(), IMAGE, 0);
    world.write(&yaml);
    secret(&world, "/etc/ugbke/restic-password", PASSWORD);
    let credentials = format!("AWS_SECRET_ACCESS_KEY=\"{S3_KEY}\\\"x\"\n");
    secret(
        &world,
        "/etc/ugbke/s3.env",
        &format!("{credentials}RESTIC_REPOSITORY=/var/backups/elsewhere\n"),
    );
    world.apply_ok("live");
    let elsewhere = world.sandbox.root().join("var/backups/elsewhere");

    let out = world.unitgen(&["backup", "live"]);
    let said = one_line(&out) + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(
            "/etc/ugbke/s3.env sets RESTIC_REPOSITORY, which the backup units set from the template"
        ),
        "{said}"
    );
    assert!(
        !elsewhere.exists(),
        "the backup went to the file's repository"
    );
    let out = world.unitgen(&["backups", "live"]);
    let said = one_line(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("/etc/ugbke/s3.env sets RESTIC_REPOSITORY, which the backup units set"),
        "{said}"
    );
    assert!(
        !said.contains("elsewhere") && !said.contains(S3_KEY),
        "{said}"
    );

    // Nor what systemd sets for the unit's steps, which the file would win
    // over too: with a CACHE_DIRECTORY there, the backup emptied that
    // folder's `staging`; with a SERVICE_RESULT, the refused run was
    // recorded as the file said.
    let others = world.sandbox.root().join("var/tmp/ugbke-other/staging");
    std::fs::create_dir_all(&others).unwrap();
    std::fs::write(others.join("keep"), "not the backup's").unwrap();
    secret(
        &world,
        "/etc/ugbke/s3.env",
        &format!("{credentials}CACHE_DIRECTORY=/var/tmp/ugbke-other\nSERVICE_RESULT=success\n"),
    );
    let out = world.unitgen(&["backup", "live"]);
    let said = one_line(&out) + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(
            "/etc/ugbke/s3.env sets CACHE_DIRECTORY, which systemd sets for the backup units' steps"
        ),
        "{said}"
    );
    assert!(
        others.join("keep").exists(),
        "the backup emptied another folder"
    );
    let status = world.unitgen(&["status", "live", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        status["backup"]["last_run"], "failed (exit-code)",
        "{status}"
    );

    // Nor the engine the unit's docker reaches, which it gets from the
    // manager as the instance's units do: refused by the unit before it
    // pauses or copies anything (on either engine), and by `backups`.
    secret(
        &world,
        "/etc/ugbke/s3.env",
        &format!("{credentials}DOCKER_HOST=unix:///run/ugbke-elsewhere.sock\n"),
    );
    let out = world.unitgen(&["backup", "live"]);
    let said = one_line(&out) + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("/etc/ugbke/s3.env sets DOCKER_HOST, which would have the backup units' docker reach another engine"),
        "{said}"
    );
    assert!(!said.contains("ugbke-elsewhere"), "{said}");
    let out = world.unitgen(&["backups", "live"]);
    let said = one_line(&out);
    assert!(
        !out.status.success() && said.contains("/etc/ugbke/s3.env sets DOCKER_HOST"),
        "{said}"
    );

    secret(&world, "/etc/ugbke/s3.env", &credentials);
    ok(&world.unitgen(&["backup", "live"]), "backup live");
    assert_eq!(snapshots(&world, "live").len(), 1);
    assert!(!elsewhere.exists());

    // The password file changed or deleted by hand (restic reads it at
    // each run, apply never): plan and status tell it now, not as an
    // OVERDUE backup later; apply records it.
    let unit = "ugbke-live-backup.service";
    let told = |what: &str| {
        let plan = world.unitgen(&["plan", "live"]);
        let shown = String::from_utf8_lossy(&plan.stdout).to_string();
        assert_eq!(plan.status.code(), Some(2), "{what}: {shown}");
        assert!(
            shown.contains(unit) && shown.contains("PasswordDigest="),
            "{what}: {shown}"
        );
        let status = world.unitgen(&["status", "live"]);
        let shown = String::from_utf8_lossy(&status.stdout).to_string();
        assert!(
            shown.contains(&format!(
                "its password file /etc/ugbke/restic-password {what} since apply"
            )),
            "{shown}"
        );
    };
    let quiet = || {
        assert!(ok(&world.unitgen(&["plan", "live"]), "plan live").contains("no changes"));
        let status = ok(&world.unitgen(&["status", "live"]), "status live");
        assert!(!status.contains("password file"), "{status}");
    };
    quiet();
    secret(
        &world,
        "/etc/ugbke/restic-password",
        "not-the-repository-password",
    );
    told("was changed");
    world.apply_ok("live");
    quiet();
    let password = world.sandbox.root().join("etc/ugbke/restic-password");
    std::fs::remove_file(&password).unwrap();
    told("was deleted");
}
