//! Two things changing one instance at the same moment, in a sandboxed
//! systemd with real containers and restic: an apply and the backup its
//! timer starts, two users' commands, one of them killed while it holds the
//! instance's lock. Each ends, in some order, with the host as the last one
//! left it; none waits for ever.

#[path = "support/lib.rs"]
mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::wait_for;
use support::world::World;

const IMAGE: &str = "unitgen-test/busybox:1";

/// `files` serves its volume, which the backup copies while it is paused.
fn backed_up(app: &str, greeting: &str) -> String {
    format!(
        r#"app: {app}
services:
  files:
    image: {IMAGE}
    command: [httpd, -f, -p, "80", -h, /srv]
    init: true
    environment: {{GREETING: "{greeting}"}}
    volumes: ["files:/srv"]
    backup: {{consistency: pause}}
backup:
  repository: /var/backups/{app}
  password_file: /etc/{app}/restic-password
  helper_image: {IMAGE}
instances:
  live: {{}}
"#
    )
}

/// Writes the repository's password file (0600) where the units read it.
fn password(world: &World, app: &str) {
    let file = world
        .sandbox
        .root()
        .join(format!("etc/{app}/restic-password"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "ugcb-password-5512").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The instance's lock file, as the sandbox's units see it.
fn lock_file(world: &World, prefix: &str) -> std::fs::File {
    std::fs::File::options()
        .append(true)
        .open(
            world
                .sandbox
                .root()
                .join(format!("var/lib/unitgen/{prefix}/lock")),
        )
        .unwrap()
}

/// Whether some process holds `file`'s lock.
fn held(file: &std::fs::File) -> bool {
    matches!(
        file.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    ) || {
        // Taken (shared) just now: let it go again.
        let _ = file.unlock();
        false
    }
}

/// The processes running `program` in `unit`'s control group.
fn in_unit(unit: &str, program: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        if cgroup.contains(&format!("/{unit}")) && argv0.ends_with(program.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} {pid}");
}

/// `unitgen ARGS` against the world's sandbox, its stderr into `log`.
fn spawn_logged(world: &World, args: &[&str], log: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(args)
        .arg("--file")
        .arg(world.file())
        .arg("--root")
        .arg(world.sandbox.root())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Waits (at most `limit`) for `child` to end; kills it if it did not.
fn ended(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let status = wait_for(limit, || child.try_wait().unwrap());
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// The backup's timer fired while an apply held the instance's lock (its
/// pull, a handover, a slow start): the backup waited for the lock, and the
/// apply, finding the backup running, waited for the backup to end. Each
/// waited for the other for ever: the deploy hung and no backup ran. Now
/// the apply tells a backup still waiting for the lock (it has paused or
/// stopped nothing) from one past it, and goes on; the backup runs after.
#[test]
fn an_apply_and_a_backup_started_while_it_holds_the_lock_both_finish() {
    let app = "ugcb";
    let world = World::new(app);
    world.write(&backed_up(app, "one"));
    password(&world, app);
    world.apply_ok("live");
    let backup = format!("{app}-live-backup.service");

    // The timer's backup starts while the apply holds the lock: ordered
    // here by holding the lock first, then holding back the backup's
    // `flock` (SIGSTOP) so that the apply gets the lock when it is let go.
    let lock = lock_file(&world, &format!("{app}-live"));
    lock.lock().unwrap();
    let started = world
        .sandbox
        .systemctl(["start", "--no-block", backup.as_str()]);
    assert!(started.status.success());
    let waiting = "waiting for unitgen to finish changing this instance";
    let flock = wait_for(Duration::from_secs(60), || {
        let pids = in_unit(&backup, "flock");
        (world.sandbox.journal(&backup).contains(waiting) && !pids.is_empty()).then_some(pids)
    })
    .unwrap_or_else(|| {
        panic!(
            "the backup never waited: {}",
            world.sandbox.journal(&backup)
        )
    });
    for &pid in &flock {
        signal(pid, "-STOP");
    }
    world.write(&backed_up(app, "two"));
    let log = world.dir().join("apply.log");
    let mut apply = spawn_logged(&world, &["apply", "live", "--settle", "1"], &log);
    let told = wait_for(Duration::from_secs(60), || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("waiting for another unitgen")
            .then_some(())
    });
    assert!(told.is_some(), "{}", std::fs::read_to_string(&log).unwrap());
    lock.unlock().unwrap();
    let taken = wait_for(Duration::from_secs(60), || held(&lock).then_some(()));
    for &pid in &flock {
        signal(pid, "-CONT");
    }
    assert!(taken.is_some(), "the apply never took the lock");

    let status = ended(&mut apply, Duration::from_secs(120));
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        status.is_some(),
        "the apply and the backup waited for each other:\n{said}\n{}",
        world.sandbox.journal(&backup)
    );
    assert!(status.unwrap().success(), "{said}");
    assert!(!said.contains("waiting for the running backup"), "{said}");
    // Then the backup, let through, runs to its end.
    let done = wait_for(Duration::from_secs(120), || {
        let state = world.active(&backup);
        (state == "inactive" || state == "failed").then_some(state)
    });
    assert_eq!(
        done.as_deref(),
        Some("inactive"),
        "{}",
        world.sandbox.journal(&backup)
    );
    assert!(
        world
            .sandbox
            .journal_with(&backup, "saved (revision")
            .contains("saved (revision 2)")
    );
    assert_eq!(world.active(&format!("{app}-live-files.service")), "active");
    assert_eq!(world.exec("live", "files", "echo $GREETING"), "two\n");
    let (code, plan) = world.unitgen_said(&["plan", "live"]);
    assert_eq!(code, Some(0), "{plan}");
}

/// A plain app: `web` answers with its version.
fn plain(app: &str, version: &str) -> String {
    format!(
        r#"app: {app}
services:
  web:
    image: {IMAGE}
    command: [sh, -c, 'mkdir -p /www && echo {version} > /www/index.html && exec httpd -f -p 80 -h /www']
    init: true
instances:
  live: {{}}
"#
    )
}

/// Two users' applies of one instance at once: the second waited saying
/// only "another unitgen", not which command, whose, or since when, so no
/// one could tell a colleague's deploy from a hung one. Now it names the
/// holder (command, user, pid, since); and the holder killed (`kill -9`)
/// while the other waits lets the waiter through, whose apply finishes the
/// killed one's work.
#[test]
fn a_second_apply_names_the_holder_and_goes_on_when_it_is_killed() {
    let app = "ugcl";
    let world = World::new(app);
    world.write(&plain(app, "one"));
    world.apply_ok("live");
    let lock = lock_file(&world, &format!("{app}-live"));

    // Alice's apply of version two, held still (SIGSTOP) once it holds the
    // lock, wherever it is then.
    world.write(&plain(app, "two"));
    let mut alice = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["apply", "live", "--file"])
        .arg(world.file())
        .arg("--root")
        .arg(world.sandbox.root())
        .env("SUDO_USER", "alice")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock_path = world
        .sandbox
        .root()
        .join(format!("var/lib/unitgen/{app}-live/lock"));
    let holds = wait_for(Duration::from_secs(60), || {
        let said = std::fs::read_to_string(&lock_path).unwrap_or_default();
        (held(&lock) && said.contains(&format!("\"pid\":{},", alice.id()))).then_some(())
    });
    assert!(holds.is_some(), "alice's apply never took the lock");
    signal(alice.id(), "-STOP");

    // Bob's apply of version three waits, naming alice's.
    world.write(&plain(app, "three"));
    let log = world.dir().join("bob.log");
    let mut bob = spawn_logged(&world, &["apply", "live", "--settle", "1"], &log);
    let named = format!(
        "waiting for another unitgen working on {app}-live to finish: `unitgen apply` of user \
         alice, pid {}, since ",
        alice.id()
    );
    let told = wait_for(Duration::from_secs(60), || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains(&named)
            .then_some(())
    });
    assert!(told.is_some(), "{}", std::fs::read_to_string(&log).unwrap());
    assert!(
        bob.try_wait().unwrap().is_none(),
        "bob's apply did not wait"
    );

    // Alice's killed while she holds it: bob goes on and finishes.
    alice.kill().unwrap();
    alice.wait().unwrap();
    let status = ended(&mut bob, Duration::from_secs(120));
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(status.is_some_and(|s| s.success()), "{said}");
    assert_eq!(world.exec("live", "web", "cat /www/index.html"), "three\n");
    let (code, plan) = world.unitgen_said(&["plan", "live"]);
    assert_eq!(code, Some(0), "{plan}");
    // No one holds it now, and no stale holder is named.
    assert!(!held(&lock));
    let (code, said) = world.unitgen_said(&["apply", "live"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(!said.contains("waiting for another"), "{said}");
}

/// Makes the instance's backup unit the one an earlier unitgen installed:
/// the same, but without the line that marks its run past the instance's
/// lock (see `backup::await_running`), loaded by systemd.
fn backup_unit_without_mark(world: &World, unit: &str) {
    let file = world.unit_file(unit);
    let text = std::fs::read_to_string(&file).unwrap();
    let older: String = (text.split_inclusive('\n'))
        .filter(|line| !line.contains("past-lock"))
        .collect();
    assert_ne!(older, text, "the unit marks its run");
    std::fs::write(&file, older).unwrap();
    assert!(world.sandbox.systemctl(["daemon-reload"]).status.success());
}

/// A backup unit an earlier unitgen installed writes no mark that its run
/// got past the instance's lock, which apply and restore read to tell a
/// backup waiting for their lock (not waited for: each would wait for the
/// other) from one past it, about to pause or stop services. Without the
/// mark, every backup still in its `ExecStartPre=` was taken for one
/// waiting: one past the lock (here waiting for the repository's lock, held
/// by another backup) was not waited for, and the apply restarted the
/// service the backup then paused for its copy. Now a backup without the
/// mark is waited for unless one of its processes is blocked on the
/// instance's lock: the apply waits for it, and both end; and one waiting
/// for the apply's lock is not waited for.
#[test]
fn a_backup_unit_without_the_past_lock_mark_is_waited_for_only_past_the_lock() {
    let app = "ugcold";
    let world = World::new(app);
    world.write(&backed_up(app, "one"));
    password(&world, app);
    world.apply_ok("live");
    let backup = format!("{app}-live-backup.service");
    backup_unit_without_mark(&world, &backup);

    // Past the instance's lock, held back in its `ExecStartPre=` by the
    // repository's lock (as when another instance's backup holds it).
    let repository_lock = world.sandbox.root().join(
        unitgen::model::backup::lock_file(&format!("/var/backups/{app}")).trim_start_matches('/'),
    );
    std::fs::create_dir_all(repository_lock.parent().unwrap()).unwrap();
    let repository = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&repository_lock)
        .unwrap();
    repository.lock().unwrap();
    let started = world
        .sandbox
        .systemctl(["start", "--no-block", backup.as_str()]);
    assert!(started.status.success());
    let waiting = "waiting for another backup or check of this repository to finish";
    let held_back = wait_for(Duration::from_secs(60), || {
        (world.sandbox.journal(&backup).contains(waiting) && !in_unit(&backup, "flock").is_empty())
            .then_some(())
    });
    assert!(held_back.is_some(), "{}", world.sandbox.journal(&backup));

    world.write(&backed_up(app, "two"));
    let log = world.dir().join("apply.log");
    let mut apply = spawn_logged(&world, &["apply", "live", "--settle", "1"], &log);
    let told = wait_for(Duration::from_secs(60), || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("waiting for the running backup")
            .then_some(())
    });
    let said = || std::fs::read_to_string(&log).unwrap();
    assert!(told.is_some(), "the apply did not wait: {}", said());
    assert!(apply.try_wait().unwrap().is_none(), "{}", said());
    assert_eq!(world.exec("live", "files", "echo $GREETING"), "one\n");

    repository.unlock().unwrap();
    let status = ended(&mut apply, Duration::from_secs(120));
    assert!(status.is_some_and(|s| s.success()), "{}", said());
    let journal = world.sandbox.journal_with(&backup, "saved (revision");
    assert!(journal.contains("saved (revision 1)"), "{journal}");
    assert_eq!(world.exec("live", "files", "echo $GREETING"), "two\n");

    // Waiting for the apply's lock, it is not waited for.
    backup_unit_without_mark(&world, &backup);
    let lock = lock_file(&world, &format!("{app}-live"));
    lock.lock().unwrap();
    let started = world
        .sandbox
        .systemctl(["start", "--no-block", backup.as_str()]);
    assert!(started.status.success());
    let waiting = "waiting for unitgen to finish changing this instance";
    let blocked = wait_for(Duration::from_secs(60), || {
        let journal = world.sandbox.journal(&backup);
        (journal.matches(waiting).count() == 1 && !in_unit(&backup, "flock").is_empty())
            .then_some(())
    });
    assert!(blocked.is_some(), "{}", world.sandbox.journal(&backup));
    world.write(&backed_up(app, "three"));
    let mut apply = spawn_logged(&world, &["apply", "live", "--settle", "1"], &log);
    let told = wait_for(Duration::from_secs(60), || {
        said().contains("waiting for another unitgen").then_some(())
    });
    assert!(told.is_some(), "{}", said());
    lock.unlock().unwrap();
    let status = ended(&mut apply, Duration::from_secs(120));
    assert!(
        status.is_some_and(|s| s.success()),
        "the apply and the backup waited for each other:\n{}\n{}",
        said(),
        world.sandbox.journal(&backup)
    );
    let done = wait_for(Duration::from_secs(120), || {
        let state = world.active(&backup);
        (state == "inactive" || state == "failed").then_some(state)
    });
    assert_eq!(
        done.as_deref(),
        Some("inactive"),
        "{}",
        world.sandbox.journal(&backup)
    );
    assert_eq!(world.exec("live", "files", "echo $GREETING"), "three\n");
}
