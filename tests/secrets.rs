//! Secrets against the real thing: a sandboxed systemd, the host's Docker
//! engine, real containers. The container must see each value byte for byte,
//! and no local user may find it anywhere else: not in unit files, render or
//! plan output, revisions, `systemctl show`, nor any process's command line.

#[path = "support/lib.rs"]
mod support;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::world::World;

/// Distinctive cores: escaped or not, a leak would contain them.
const DB_CORE: &str = "Zq9db-s3cr3t";
const TOKEN_CORE: &str = "Tk7api-t0ken";
const SMTP_CORE: &str = "Mx4smtp-pw";
const NEW_DB_CORE: &str = "Rn2db-r0tated";
const FAILED_DB_CORE: &str = "Fb8db-n3ver";
/// In an `env_file:`, which the unit reads at its start.
const ENV_FILE_CORE: &str = "Ev5file-pw";

/// Around each core, what quoting gets wrong: spaces at both ends, quotes,
/// `$`, `%`, a backslash, `#`, `=`, a tab, non-ASCII and a C1 control.
fn hostile(core: &str) -> String {
    format!(" {core} \"q\" 'x' $HOME %n \\ #c =é\u{85}\t ")
}

/// `db_command`: what db runs (a command that exits breaks it).
fn yaml(dir: &Path, db_command: &str) -> String {
    format!(
        r#"app: sekret
services:
  db:
    image: unitgen-test/busybox:1
    command: {db_command}
    init: true
    environment: {{PLAIN: visible}}
    secrets: {{DB_PASSWORD: db_password, API_TOKEN: api_token, EMPTY: empty, SMTP_PASSWORD: smtp}}
  web:
    image: unitgen-test/busybox:1
    command: [sleep, "1000000"]
    init: true
secrets:
  db_password: {{file: db_password}}
  api_token: {{environment: SEKRET_API_TOKEN}}
  smtp: {{command: [cat, "{smtp}"]}}
  empty: {{command: [printf, ""]}}
instances:
  live: {{}}
"#,
        smtp = dir.join("smtp").display()
    )
}

const SLEEP: &str = r#"[sleep, "1000000"]"#;

/// `unitgen ARGS` against the world's sandbox (but `render`, which knows
/// no host), with the token in its environment (the `environment:` source).
fn unitgen(world: &World, args: &[&str]) -> Output {
    unitgen_with(world, args, &[])
}

/// [`unitgen`] with more environment variables.
fn unitgen_with(world: &World, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_unitgen"));
    cmd.args(args);
    // (`ls` takes no template; what reads no host takes no --root.)
    if args[0] != "ls" {
        // (The long form: `logs` takes -f for --follow.)
        cmd.arg("--file").arg(world.file());
    }
    let reads_no_host = ["render", "validate"].contains(&args[0])
        || (args[0] == "docs" && !args.contains(&"--live"));
    if !reads_no_host {
        cmd.arg("--root").arg(world.sandbox.root());
    }
    let out = cmd
        .env("NO_COLOR", "1")
        .env("SEKRET_API_TOKEN", hostile(TOKEN_CORE))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    eprintln!(
        "$ unitgen {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_no_secret(what: &str, text: &str) {
    for core in [DB_CORE, TOKEN_CORE, SMTP_CORE, NEW_DB_CORE, FAILED_DB_CORE] {
        assert!(
            !text.contains(core),
            "{what} shows a secret ({core}):\n{text}"
        );
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Watches every process's command line on the machine (the sandbox's
/// processes are visible from here) until stopped; returns those that
/// showed a secret.
struct CmdlineWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl CmdlineWatch {
    fn start() -> CmdlineWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut leaks = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                leaks.extend(cmdlines_with_secrets());
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            leaks
        });
        CmdlineWatch { stop, thread }
    }

    fn leaks(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn cmdlines_with_secrets() -> Vec<String> {
    let mut leaks = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if [DB_CORE, TOKEN_CORE, SMTP_CORE, NEW_DB_CORE, FAILED_DB_CORE]
            .iter()
            .any(|core| cmdline.contains(core))
        {
            leaks.push(cmdline);
        }
    }
    leaks
}

/// The temporary files of atomic writes in `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".unitgen-")
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn secrets_reach_the_container_byte_for_byte_and_no_local_user() {
    let world = World::new("sekret");
    let dir = world.file().parent().unwrap().to_path_buf();
    // As `echo … > file` and password managers write them: one line break.
    std::fs::write(dir.join("db_password"), hostile(DB_CORE) + "\n").unwrap();
    std::fs::write(dir.join("smtp"), hostile(SMTP_CORE) + "\n").unwrap();
    world.write(&yaml(&dir, SLEEP));

    let watch = CmdlineWatch::start();
    let out = unitgen(&world, &["apply", "live", "--settle", "2"]);
    let leaks = watch.leaks();
    assert!(out.status.success(), "apply failed: {}", text(&out));
    assert_no_secret("apply", &text(&out));
    assert!(leaks.is_empty(), "command lines showed secrets: {leaks:#?}");
    // The attached `docker run` clients, now.
    assert!(cmdlines_with_secrets().is_empty());

    // The container sees each value exactly (the trailing line break of the
    // file and of the command's output dropped).
    let seen = |variable: &str| world.exec("live", "db", &format!("printf '%s' \"${variable}\""));
    assert_eq!(seen("DB_PASSWORD"), hostile(DB_CORE));
    assert_eq!(seen("API_TOKEN"), hostile(TOKEN_CORE));
    assert_eq!(seen("SMTP_PASSWORD"), hostile(SMTP_CORE));
    assert_eq!(seen("PLAIN"), "visible");
    // An empty value is a variable set to "", not one left out.
    let empty = world.exec("live", "db", "printf '%s' \"${EMPTY+set:}$EMPTY\"");
    assert_eq!(empty, "set:");

    // Nowhere a local user can look.
    let unit = "sekret-live-db.service";
    let unit_text = std::fs::read_to_string(world.unit_file(unit)).unwrap();
    assert_no_secret("the unit file", &unit_text);
    assert!(
        unit_text.contains("--env-file /var/lib/unitgen/sekret-live/secrets/db.env"),
        "{unit_text}"
    );
    assert!(
        unit_text.contains("Secret=DB_PASSWORD db_password hmac-sha256:"),
        "{unit_text}"
    );
    let show = world.sandbox.systemctl(["show", unit]);
    assert!(show.status.success());
    assert_no_secret("systemctl show", &text(&show));
    let render = unitgen(&world, &["render", "live"]);
    assert!(render.status.success());
    assert_no_secret("render", &text(&render));
    let plan = unitgen(&world, &["plan", "live"]);
    assert_eq!(plan.status.code(), Some(0), "nothing to do after apply");
    assert_no_secret("plan", &text(&plan));

    let state_dir = world.sandbox.root().join("var/lib/unitgen");
    let instance_dir = state_dir.join("sekret-live");
    for revision_file in files_under(&instance_dir.join("revisions")) {
        let bytes = std::fs::read(&revision_file).unwrap();
        assert_no_secret(
            &revision_file.display().to_string(),
            &String::from_utf8_lossy(&bytes),
        );
    }

    // The one place the values are: root-only, written by apply.
    let env_file = instance_dir.join("secrets/db.env");
    // The key of the digests, which would let a dictionary find the values
    // from the units' digests, is as private as the values.
    for file in [&env_file, &instance_dir.join("secrets/digest.key")] {
        let meta = std::fs::metadata(file).unwrap();
        assert_eq!((meta.uid(), mode(file)), (0, 0o600), "{}", file.display());
    }
    for dir in [&state_dir, &instance_dir, &instance_dir.join("secrets")] {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
    }
    assert!(!instance_dir.join("secrets/web.env").exists());

    // A new value: plan says which secret changed, without the value;
    // apply restarts that service only, and it sees the new value.
    let db_before = world.id("live", "db");
    let web_before = world.id("live", "web");
    std::fs::write(dir.join("db_password"), hostile(NEW_DB_CORE) + "\n").unwrap();
    let plan = unitgen(&world, &["plan", "live"]);
    assert_eq!(plan.status.code(), Some(2), "a changed secret is a change");
    let shown = text(&plan);
    assert_no_secret("plan", &shown);
    assert!(
        shown.contains(
            "~ sekret-live-db.service (changed: restart; new value of secret DB_PASSWORD)"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("-Secret=DB_PASSWORD db_password hmac-sha256:")
            && shown.contains("+Secret=DB_PASSWORD db_password hmac-sha256:"),
        "{shown}"
    );
    assert!(
        !shown.contains("-Secret=API_TOKEN") && !shown.contains("+Secret=API_TOKEN"),
        "only the changed secret shows as changed:\n{shown}"
    );
    // Regression: plan also said the file was "missing or changed by hand".
    assert!(!shown.contains("changed by hand"), "{shown}");

    // An apply killed between writing the new env file's temporary copy
    // and renaming it over the file: the copy, holding the new value, was
    // root-only from its first byte, and the next apply removes it.
    let out = unitgen_with(
        &world,
        &["apply", "live"],
        &[("UNITGEN_FAULT", "before-rename:db.env")],
    );
    assert!(!out.status.success(), "the fault aborts apply");
    let leftovers = temp_files(&instance_dir.join("secrets"));
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    let meta = std::fs::metadata(&leftovers[0]).unwrap();
    assert_eq!((meta.uid(), mode(&leftovers[0])), (0, 0o600));
    assert!(
        std::fs::read_to_string(&leftovers[0])
            .unwrap()
            .contains(NEW_DB_CORE)
    );

    let watch = CmdlineWatch::start();
    let out = unitgen(&world, &["apply", "live", "--settle", "2"]);
    let leaks = watch.leaks();
    assert!(out.status.success(), "apply failed: {}", text(&out));
    assert!(leaks.is_empty(), "command lines showed secrets: {leaks:#?}");
    assert_ne!(world.id("live", "db"), db_before, "db restarted");
    assert_eq!(world.id("live", "web"), web_before, "web untouched");
    assert_eq!(seen("DB_PASSWORD"), hostile(NEW_DB_CORE));
    assert_eq!(seen("API_TOKEN"), hostile(TOKEN_CORE));
    assert_eq!(
        temp_files(&instance_dir.join("secrets")),
        Vec::<PathBuf>::new()
    );

    // A failed apply puts the previous secret back with the previous unit.
    std::fs::write(dir.join("db_password"), hostile(FAILED_DB_CORE) + "\n").unwrap();
    world.write(&yaml(&dir, r#"[sh, -c, "exit 3"]"#));
    let out = unitgen(&world, &["apply", "live", "--settle", "2"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a db that exits fails the apply"
    );
    assert_no_secret("a failed apply", &text(&out));
    let restored = std::fs::read_to_string(&env_file).unwrap();
    assert!(
        restored.contains(NEW_DB_CORE) && !restored.contains(FAILED_DB_CORE),
        "the previous secret is back"
    );
    assert_eq!(mode(&env_file), 0o600);
    assert_eq!(seen("DB_PASSWORD"), hostile(NEW_DB_CORE));

    // A secrets file deleted on the host is not "up to date": the next
    // start of db (a reboot) would fail without it. plan says so, without
    // the value; apply writes it again, restarting nothing.
    std::fs::write(dir.join("db_password"), hostile(NEW_DB_CORE) + "\n").unwrap();
    world.write(&yaml(&dir, SLEEP));
    std::fs::remove_file(&env_file).unwrap();
    let plan = unitgen(&world, &["plan", "live"]);
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert_no_secret("plan", &shown);
    assert!(
        shown.contains("! secrets file db.env is missing or was changed by hand"),
        "{shown}"
    );
    let db_before = world.id("live", "db");
    let out = unitgen(&world, &["apply", "live"]);
    assert!(out.status.success(), "apply failed: {}", text(&out));
    assert!(
        text(&out).contains("wrote the secrets file db.env again"),
        "{}",
        text(&out)
    );
    assert_eq!(world.id("live", "db"), db_before, "db untouched");
    assert!(
        std::fs::read_to_string(&env_file)
            .unwrap()
            .contains(NEW_DB_CORE)
    );
    assert_eq!(mode(&env_file), 0o600);
    assert_eq!(unitgen(&world, &["plan", "live"]).status.code(), Some(0));

    // Rollback restores units, never values. A revision that gives db a
    // variable its secrets file no longer holds (an apply since removed
    // the secret) would start db without it: refused, nothing changed.
    let without_smtp = yaml(&dir, SLEEP).replace(", SMTP_PASSWORD: smtp}", "}");
    world.write(&without_smtp);
    let out = unitgen(&world, &["apply", "live", "--settle", "2"]);
    assert!(out.status.success(), "apply failed: {}", text(&out));
    assert!(
        !std::fs::read_to_string(&env_file)
            .unwrap()
            .contains("SMTP_PASSWORD")
    );
    let db_before = world.id("live", "db");
    let out = unitgen(&world, &["rollback", "live", "--to", "2"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert_no_secret("a refused rollback", &shown);
    // (miette wraps the message: its parts, one by one.)
    for part in [
        "cannot roll sekret-live back to revision 2: its units give SMTP_PASSWORD",
        "to sekret-live-db.service, which no secrets file holds any more",
        "nothing on the host was changed",
    ] {
        assert!(shown.contains(part), "{part:?} not in:\n{shown}");
    }
    assert_eq!(world.id("live", "db"), db_before, "nothing changed");
    // Otherwise the services get the current values, and rollback says so.
    world.write(&yaml(&dir, SLEEP));
    let out = unitgen(&world, &["apply", "live", "--settle", "2"]);
    assert!(out.status.success(), "apply failed: {}", text(&out));
    let out = unitgen(&world, &["rollback", "live", "--to", "1", "--settle", "2"]);
    let shown = text(&out);
    assert!(out.status.success(), "rollback failed: {shown}");
    assert_no_secret("rollback", &shown);
    assert!(
        shown.contains("note: sekret-live-db.service gets the current value of DB_PASSWORD, not the one of revision 1"),
        "{shown}"
    );
    assert!(!shown.contains("of API_TOKEN"), "{shown}");
    assert_eq!(seen("DB_PASSWORD"), hostile(NEW_DB_CORE));

    // destroy takes the secrets with the units. The digests' key stays
    // with the revisions, whose units hold digests of it: before, a new
    // key made every secret of an older revision look changed, and a
    // rollback to it after destroy and apply noted each as a new value.
    let out = unitgen(&world, &["destroy", "live"]);
    assert!(out.status.success(), "destroy failed: {}", text(&out));
    let key = instance_dir.join("secrets/digest.key");
    let left: Vec<PathBuf> = (std::fs::read_dir(instance_dir.join("secrets")).unwrap())
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(left, std::slice::from_ref(&key), "no value is left");
    assert_eq!(mode(&key), 0o600);
    let out = unitgen(&world, &["apply", "live", "--settle", "2"]);
    assert!(out.status.success(), "apply failed: {}", text(&out));
    let out = unitgen(&world, &["rollback", "live", "--to", "1", "--settle", "2"]);
    let shown = text(&out);
    assert!(out.status.success(), "rollback failed: {shown}");
    assert!(shown.contains("current value of DB_PASSWORD"), "{shown}");
    assert!(!shown.contains("of API_TOKEN"), "{shown}");
    // With --volumes, the instance is forgotten: revisions and key too.
    let out = unitgen(&world, &["destroy", "live", "--volumes"]);
    assert!(out.status.success(), "destroy failed: {}", text(&out));
    assert!(!instance_dir.exists());
}

/// Every file under `dir` (not following links), skipping `skip`.
fn files_below(dir: &Path, skip: &[&Path]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if skip.contains(&path.as_path()) {
            continue;
        }
        if kind.is_dir() {
            files.extend(files_below(&path, skip));
        } else if kind.is_file() {
            files.push(path);
        }
    }
    files
}

/// Whether `path`'s bytes (its first MiB) hold a secret's core.
fn holds_secret(path: &Path) -> bool {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let _ = file.take(1 << 20).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    [
        DB_CORE,
        TOKEN_CORE,
        SMTP_CORE,
        NEW_DB_CORE,
        FAILED_DB_CORE,
        ENV_FILE_CORE,
    ]
    .iter()
    .any(|core| text.contains(core))
}

/// A planted secret is looked for on every surface a local user, a log
/// collector or a reviewer sees: each command's output (also as JSON, and
/// its errors), the docs, the journal of every unit (every field: a
/// process's command line is one), `systemctl show` of every unit, the
/// command line of every process while apply and a backup run, and every
/// file the sandbox's systemd, its units and unitgen wrote (world-readable
/// or not: only the secrets files may hold a value).
#[test]
fn a_planted_secret_shows_on_no_surface() {
    let mut world = World::new("sekswp");
    world.sandbox.own_containers("sekswp-");
    let dir = world.file().parent().unwrap().to_path_buf();
    std::fs::write(dir.join("db_password"), hostile(DB_CORE) + "\n").unwrap();
    std::fs::write(dir.join("smtp"), hostile(SMTP_CORE) + "\n").unwrap();
    let env_file = dir.join("app.env");
    std::fs::write(&env_file, format!("FROM_FILE={ENV_FILE_CORE}\n")).unwrap();
    let password = world.sandbox.root().join("etc/sekswp/restic-password");
    std::fs::create_dir_all(password.parent().unwrap()).unwrap();
    std::fs::write(&password, "restic\n").unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let yaml = yaml(&dir, SLEEP)
        .replace("app: sekret", "app: sekswp")
        .replace(
            "    environment: {PLAIN: visible}\n",
            &format!(
                "    environment: {{PLAIN: visible}}\n    env_file: [\"{}\"]\n    \
                 volumes: [\"data:/data\"]\n    backup: {{}}\n",
                env_file.display()
            ),
        )
        + "backup:\n  repository: /var/backups/sekswp\n  password_file: /etc/sekswp/restic-password\n  \
           helper_image: unitgen-test/busybox:1\n";
    world.write(&yaml);
    let mut seen = Vec::new();
    let mut run = |args: &[&str]| {
        let out = unitgen(&world, args);
        assert_no_secret(&format!("unitgen {}", args.join(" ")), &text(&out));
        seen.push(args.join(" "));
        out
    };

    let watch = CmdlineWatch::start();
    assert!(run(&["apply", "live", "--settle", "2"]).status.success());
    // A new value: plan's diff, apply's restart.
    std::fs::write(dir.join("db_password"), hostile(NEW_DB_CORE) + "\n").unwrap();
    assert_eq!(run(&["plan", "live"]).status.code(), Some(2));
    assert!(run(&["apply", "live", "--settle", "2"]).status.success());
    assert!(run(&["backup", "live"]).status.success());
    let leaks = watch.leaks();
    assert!(leaks.is_empty(), "command lines showed secrets: {leaks:#?}");

    let docs = dir.join("docs");
    for args in [
        &["plan", "live"][..],
        &["status", "live"],
        &["status", "live", "--json"],
        &["ls"],
        &["ls", "--json"],
        &["history", "live"],
        &["history", "live", "--json"],
        &["backups", "live"],
        &["backups", "live", "--json"],
        &["validate"],
        &["render", "live"],
        &["render", "live", "--values"],
        &[
            "render",
            "live",
            "--out",
            dir.join("units").to_str().unwrap(),
        ],
        &["docs", "--out", docs.to_str().unwrap()],
        &["docs", "--live", "--out", docs.to_str().unwrap()],
        &["logs", "live", "-n", "1000"],
    ] {
        let out = run(args);
        assert!(out.status.success(), "unitgen {args:?}: {}", text(&out));
    }
    let sources = [dir.join("db_password"), dir.join("smtp"), env_file.clone()];
    let sources: Vec<&Path> = sources.iter().map(PathBuf::as_path).collect();
    for file in files_below(&dir, &sources) {
        assert!(!holds_secret(&file), "{} holds a secret", file.display());
    }
    // --fleet refuses secrets, without them.
    let out = run(&["render", "live", "--fleet"]);
    assert!(!out.status.success(), "{}", text(&out));

    // Values refused for their bytes: the error points at the source and
    // never quotes the value.
    for bad in [
        format!("{DB_CORE}\nsecond line\n"),
        format!("{DB_CORE}\0"),
        format!("{DB_CORE}\r\r\n"),
    ] {
        std::fs::write(dir.join("db_password"), &bad).unwrap();
        let out = run(&["plan", "live"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    }
    let mut not_utf8 = DB_CORE.as_bytes().to_vec();
    not_utf8.extend([0xff, 0xfe]);
    std::fs::write(dir.join("db_password"), &not_utf8).unwrap();
    assert_eq!(run(&["plan", "live"]).status.code(), Some(1));
    // A command source that prints the value, then fails.
    let failing = yaml.replace(
        &format!("{{command: [cat, \"{}\"]}}", dir.join("smtp").display()),
        &format!(
            "{{command: [sh, -c, 'cat \"{}\"; exit 3']}}",
            dir.join("smtp").display()
        ),
    );
    assert_ne!(failing, yaml);
    world.write(&failing);
    std::fs::write(dir.join("db_password"), hostile(NEW_DB_CORE) + "\n").unwrap();
    assert_eq!(run(&["plan", "live"]).status.code(), Some(1));
    world.write(&yaml);

    // The journal, every field of every entry (units' command lines among
    // them), and what systemd shows of every unit.
    let journal = world
        .sandbox
        .exec("journalctl", ["--no-pager", "--output=json", "--all"]);
    assert!(journal.status.success());
    assert_no_secret("the journal", &text(&journal));
    let units =
        world
            .sandbox
            .systemctl(["list-units", "--all", "--plain", "--no-legend", "sekswp-*"]);
    let units: Vec<String> = String::from_utf8_lossy(&units.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(units.len() >= 4, "{units:?}");
    let show = world
        .sandbox
        .systemctl(std::iter::once("show".to_string()).chain(units.iter().cloned()));
    assert_no_secret("systemctl show", &text(&show));

    // Every file written in the sandbox, whoever may read it: its root file
    // system's writes (the overlay's upper layer) and its own /run and /tmp
    // (file systems of their own, when they are). Only the secrets files
    // hold values.
    let root = world.sandbox.root();
    let written = world.sandbox.written();
    let secrets_dir = written.join("var/lib/unitgen/sekswp-live/secrets");
    let mut holding: Vec<PathBuf> = files_below(&written, &[])
        .into_iter()
        .filter(|file| holds_secret(file))
        .collect();
    let device = |path: &Path| std::fs::metadata(path).unwrap().dev();
    for mounted in ["run", "tmp"].map(|dir| root.join(dir)) {
        if device(&mounted) != device(&root.join("etc")) {
            holding.extend(
                files_below(&mounted, &[])
                    .into_iter()
                    .filter(|f| holds_secret(f)),
            );
        }
    }
    // The unit's copy of its env_file (its values read as compose reads
    // them), root-only.
    let env_file_copy = root.join("run/unitgen/sekswp-live-db.env-files");
    assert_eq!(mode(&env_file_copy), 0o600);
    holding.retain(|file| !file.starts_with(&secrets_dir) && *file != env_file_copy);
    assert!(holding.is_empty(), "files hold a secret: {holding:#?}");
    for file in files_below(&secrets_dir, &[]) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // destroy takes them all.
    assert!(run(&["destroy", "live"]).status.success());
    let left: Vec<PathBuf> = (files_below(&written, &[]).into_iter())
        .chain(files_below(&root.join("run"), &[]))
        .filter(|file| holds_secret(file))
        .collect();
    assert_eq!(left, Vec::<PathBuf>::new(), "destroy leaves values behind");
    eprintln!("looked at: {seen:#?}");
}

/// A unitgen that dumps core while it holds secrets (SIGABRT, Ctrl-\ in a
/// terminal, a crash): with the kernel's default core pattern (`core`, in
/// the working directory) and cores allowed (`ulimit -c unlimited`;
/// systemd's `DefaultLimitCORE=infinity` for a CI runner's service), the
/// core, holding every value read so far, landed beside the template,
/// where `git add .` takes it. unitgen makes no core at all (as
/// ssh-agent: `PR_SET_DUMPABLE` 0).
#[test]
fn a_unitgen_killed_while_it_holds_secrets_leaves_no_core() {
    use std::os::unix::process::CommandExt as _;
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    assert_eq!(
        pattern.trim(),
        "core",
        "this test needs the kernel's default core pattern (as on this project's machines)"
    );
    let dir = support::tempdir("core-");
    let mark = dir.path().join("reading");
    std::fs::write(dir.path().join("db_password"), hostile(DB_CORE) + "\n").unwrap();
    // The file is read first; the command then waits, with the value in
    // unitgen's memory, and tells its shell's PID.
    std::fs::write(
        dir.path().join("unitgen.yaml"),
        format!(
            "app: sekcore\nservices:\n  db:\n    image: unitgen-test/busybox:1\n    \
             secrets: {{A: aa_password, B: zz_slow}}\nsecrets:\n  aa_password: {{file: db_password}}\n  \
             zz_slow: {{command: [sh, -c, 'echo $$ > {mark}; sleep 60']}}\ninstances:\n  live: {{}}\n",
            mark = mark.display()
        ),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_unitgen"));
    command
        .args(["plan", "live"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .stdin(std::process::Stdio::null());
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            let unlimited = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_CORE, &unlimited) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let shell = support::wait_for(std::time::Duration::from_secs(30), || {
        std::fs::read_to_string(&mark)
            .ok()?
            .trim()
            .parse::<i32>()
            .ok()
    })
    .expect("the command source runs");
    // SAFETY: plain kill(2) of processes this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGABRT) };
    let status = child.wait().unwrap();
    unsafe { libc::kill(shell, libc::SIGKILL) };
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGABRT)
    );
    let cores: Vec<PathBuf> = files_under(dir.path())
        .into_iter()
        .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with("core"))
        .collect();
    assert_eq!(cores, Vec::<PathBuf>::new(), "a core with the secrets");
}
