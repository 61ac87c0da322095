//! Backups and restore against the real thing: restic (Debian's 0.14), a
//! sandboxed systemd running the backup units and timers, the host's Docker
//! engine and its volumes. Every check looks at the data itself.

#[path = "support/lib.rs"]
mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Child, Command, Output};
use std::time::Duration;

use support::docker::docker;
use support::net::free_port;
use support::wait_for;
use support::world::{World, serves};

const IMAGE: &str = "unitgen-test/busybox:1";
const PASSWORD: &str = "correct-horse-ugbk-secret-7731";
const S3_KEY: &str = "AKIA-ugbk-not-for-units-5512";

/// A "database" (its dump is a tar of its data folder on stdout, its restore
/// unpacks one) and a files service whose volume is copied while it is
/// paused; `files` serves its volume on the instance's port.
fn app(name: &str, backup: &str) -> String {
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
    command: [sh, -c, 'mkdir -p /db && exec httpd -f -p 80 -h /db']
    init: true
    volumes: ["dbdata:/db"]
    backup:
      dump: "{{{{ dump }}}}"
      restore: "rm -rf /db/* && tar -x -C /db"
backup:
  password_file: /etc/{name}/restic-password
  helper_image: "{{{{ helper }}}}"
{backup}"#
    )
}

fn instance(name: &str, port: u16, extra: &str) -> String {
    format!("  {name}: {{port: {port}, dump: 'tar -c -C /db .', helper: '{IMAGE}'{extra}}}\n")
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

#[test]
fn backup_delete_restore_gives_back_identical_data_and_restore_into_another_instance() {
    let world = World::new("ugbk");
    let (live_port, staging_port) = (free_port(), free_port());
    let yaml = app(
        "ugbk",
        "  repository: /var/backups/ugbk\n  environment_file: /etc/ugbk/s3.env\n  keep: {daily: 7}\n",
    ) + "instances:\n"
        + &instance("live", live_port, "")
        + &instance("staging", staging_port, "");
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

    // Without --yes and off a terminal, restore refuses and changes nothing.
    let refused = world.unitgen(&["restore", "live", "--into", "staging"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));

    // live's backup into staging: staging gets live's data, live is untouched.
    ok(
        &world.unitgen(&["restore", "live", "--into", "staging", "--yes"]),
        "restore live --into staging",
    );
    assert_eq!(staging(), live_before);
    assert_eq!(live(), live_before);
    assert_eq!(serves(staging_port).as_deref(), Some("live files\n"));
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

#[test]
fn the_timer_backs_up_by_itself_and_a_failed_backup_runs_the_hook_and_resumes_the_paused_service() {
    let world = World::new("ugbkf");
    let (timed_port, broken_port) = (free_port(), free_port());
    let yaml = app(
        "ugbkf",
        "  repository: /var/backups/ugbkf\n  schedule: \"{{ schedule }}\"\n  randomized_delay: 0s\n  \
         on_failure: 'echo \"$FAILED_UNIT\" > /var/tmp/ugbkf-hook-$INSTANCE'\n",
    ) + &format!(
        "instances:\n  \
         timed: {{port: {timed_port}, schedule: '*:*:0/5', dump: 'tar -c -C /db .', helper: '{IMAGE}'}}\n  \
         broken: {{port: {broken_port}, schedule: monthly, dump: 'echo partial; exit 3', helper: '{IMAGE}'}}\n"
    );
    world.write(&yaml);
    secret(&world, "/etc/ugbkf/restic-password", PASSWORD);
    world.apply_ok("timed");
    world.apply_ok("broken");
    seed(&world, "timed", "timed files");
    seed(&world, "broken", "broken files");

    // Nobody runs `unitgen backup timed`: its timer does, within seconds.
    // (Until the first run, there is not even a repository to list.)
    let fired = wait_for(Duration::from_secs(90), || {
        let out = world.unitgen(&["backups", "timed", "--json"]);
        let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
        (out.status.success() && !listed.is_empty()).then_some(listed)
    });
    assert!(
        fired.is_some(),
        "no snapshot from the timer:\n{}",
        world.sandbox.journal("ugbkf-timed-backup.service")
    );

    // A dump that fails: the unit fails, no snapshot, the hook runs.
    let out = world.unitgen(&["backup", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ugbkf-broken-backup.service"), "{err}");
    assert!(
        snapshots(&world, "broken").is_empty(),
        "a failed backup left a snapshot"
    );
    let hook = world.sandbox.root().join("var/tmp/ugbkf-hook-broken");
    let ran = wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(&hook).ok()
    });
    assert_eq!(ran.as_deref(), Some("ugbkf-broken-backup.service\n"));
    let status = ok(&world.unitgen(&["status", "broken"]), "status");
    assert!(status.contains("last run: exit-code"), "{status}");

    // A copy that fails while `files` is paused: it is unpaused all the same.
    let missing = "helper=127.0.0.1:9/unitgen-test/no-such-helper:1";
    let out = world.unitgen(&[
        "apply",
        "broken",
        "--settle",
        "0",
        "--set",
        missing,
        "--set",
        "dump=tar -c -C /db .",
    ]);
    ok(&out, "apply broken");
    let out = world.unitgen(&[
        "backup",
        "broken",
        "--set",
        missing,
        "--set",
        "dump=tar -c -C /db .",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let journal = world.sandbox.journal("ugbkf-broken-backup.service");
    assert!(
        journal.contains("no-such-helper"),
        "failed on the copy:\n{journal}"
    );
    let paused = docker([
        "inspect",
        "--format",
        "{{.State.Status}}",
        "ugbkf-broken-files",
    ]);
    assert_eq!(String::from_utf8_lossy(&paused.stdout).trim(), "running");
    assert_eq!(serves(broken_port).as_deref(), Some("broken files\n"));
    assert!(snapshots(&world, "broken").is_empty());
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
fn a_rest_repository_served_by_rclone_works_and_retention_keeps_what_keep_says() {
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
    let up = wait_for(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", rest_port)).ok()
    });
    assert!(up.is_some(), "rclone serve restic did not listen");
    let yaml = app(
        "ugbkr",
        &format!("  repository: rest:http://127.0.0.1:{rest_port}/\n  keep: {{last: 2}}\n"),
    ) + "instances:\n"
        + &instance("live", port, "");
    world.write(&yaml);
    secret(&world, "/etc/ugbkr/restic-password", PASSWORD);
    world.apply_ok("live");
    seed(&world, "live", "version 1");

    let mut states = Vec::new();
    for version in 1..=3 {
        world.exec(
            "live",
            "files",
            &format!("echo 'version {version}' > /srv/index.html"),
        );
        world.exec("live", "db", &format!("echo {version} > /db/version"));
        ok(&world.unitgen(&["backup", "live"]), "backup");
        states.push((
            fingerprint("ugbkr-live-dbdata"),
            fingerprint("ugbkr-live-files"),
        ));
    }
    // keep: {last: 2}: the first of three is gone.
    let listed = snapshots(&world, "live");
    assert_eq!(listed.len(), 2, "{listed:?}");
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
        &world.unitgen(&["restore", "live", "--snapshot", &second, "--yes"]),
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
    ok(
        &world.unitgen(&["restore", "live", "--yes"]),
        "restore latest",
    );
    assert_eq!(
        (
            fingerprint("ugbkr-live-dbdata"),
            fingerprint("ugbkr-live-files")
        ),
        states[2]
    );
    drop(server);
}
