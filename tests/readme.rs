//! The README, walked through: every command line its examples show is run
//! as shown, in a folder holding the hello example as `./unitgen.yaml`,
//! against a sandboxed systemd, and checked for what the README says it
//! does. A second test keeps the walk complete: a command line added to the
//! README and not walked here fails it.
//!
//! Adjustments for the shared test machine, none in the command lines: the
//! example's app is renamed (`ugreadme`), its ports are free ones, and its
//! image comes from a registry on loopback, so that `pull` pulls for real.
//! Host commands get `--root SANDBOX`: the sandbox stands in for the host.

#[path = "support/lib.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::docker::{container_id, docker};
use support::net::{free_port, http_get};
use support::registry::{self, Registry};
use support::sandbox::Sandbox;
use support::wait_for;

/// Every command line of the README's examples that this walk runs.
const WALKED: &[&str] = &[
    "unitgen apply staging -f examples/hello/unitgen.yaml",
    "curl http://127.0.0.1:8081/",
    "unitgen validate",
    "unitgen render staging",
    "unitgen render staging --out units/",
    "unitgen plan staging",
    "unitgen apply staging",
    "unitgen pull staging",
    "unitgen status staging",
    "unitgen restart staging web",
    "unitgen ls",
    "unitgen history staging",
    "unitgen rollback staging",
    "unitgen destroy staging",
    "unitgen import docker-compose.yml -o unitgen.yaml",
    "unitgen init",
    "unitgen schema > unitgen.schema.json",
    "unitgen render live --out units/",
    "git diff units/",
    "unitgen render live --out units/ --check",
    "unitgen render --all --out units/ --check",
    "unitgen docs --out docs/",
    "unitgen docs --out docs/ --check",
];

/// Command lines the README shows that a test cannot run as shown, and
/// where they are covered instead.
const NOT_WALKED: &[(&str, &str)] = &[
    (
        "unitgen dns --format bind",
        "the hello example routes no domain; tests/dns.rs checks the zone lines with named-checkzone",
    ),
    (
        "unitgen dns --format octodns --out zones/",
        "the hello example routes no domain; tests/dns.rs checks the files with octodns-validate",
    ),
    (
        "unitgen dns --check",
        "asks a resolver; tests/dns.rs runs the check against dnsmasq on loopback",
    ),
    (
        "unitgen plan --host web1",
        "the walk's file is one app, not a site; tests/site.rs applies and plans a site by --host",
    ),
    (
        "unitgen apply --host web1",
        "the walk's file is one app, not a site; tests/site.rs applies and plans a site by --host",
    ),
    (
        "scripts/install",
        "builds a release binary into /usr/local; its example (apply + curl) is walked here",
    ),
    ("scripts/test", "runs this very suite"),
    (
        "cargo install --locked cargo-deb",
        "installs a build tool once; tests/deb.rs builds and installs the package",
    ),
    ("scripts/deb", "tests/deb.rs builds the package"),
    (
        "cargo install --locked cargo-fuzz",
        "installs a fuzzing tool once; fuzzing runs until its time is up, outside the suite",
    ),
    (
        "RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz -s none template -- -max_total_time=600",
        "fuzzing runs until its time is up, outside the suite; tests/injection.rs mutates templates in the suite",
    ),
    (
        "mkdir -p fuzz/corpus/site",
        "seeds the site target's corpus (gitignored) before fuzzing, outside the suite",
    ),
    (
        "cp examples/site/site.yaml fuzz/corpus/site/",
        "seeds the site target's corpus (gitignored) before fuzzing, outside the suite",
    ),
    (
        "RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz -s none site -- -max_total_time=600",
        "fuzzing runs until its time is up, outside the suite; tests/site.rs checks site files in the suite",
    ),
    (
        "apt-get install ./target/debian/unitgen_*.deb",
        "tests/deb.rs installs the package with apt-get",
    ),
    (
        "unitgen logs staging -f",
        "follows until interrupted; tests/operate.rs follows logs with -f",
    ),
    (
        "unitgen exec staging db -- psql",
        "the hello example has no database; tests/operate.rs runs exec",
    ),
    (
        "unitgen completions bash > /etc/bash_completion.d/unitgen",
        "writes into /etc; tests/cli.rs checks the completion scripts",
    ),
    (
        "unitgen man | man -l -",
        "tests/cli.rs renders the man pages with man",
    ),
    (
        "unitgen backup live",
        "the hello example has no backups; tests/backup.rs runs backup, backups and restore (--snapshot, --into)",
    ),
    (
        "unitgen backups live",
        "the hello example has no backups; tests/backup.rs runs backup, backups and restore (--snapshot, --into)",
    ),
    (
        "unitgen restore live --into staging",
        "the hello example has no backups; tests/backup.rs runs backup, backups and restore (--snapshot, --into)",
    ),
    (
        "unitgen restore live",
        "the hello example has no backups; tests/backup.rs runs backup, backups and restore (--snapshot, --into)",
    ),
    (
        "unitgen restore live --snapshot 4f3a9c1e",
        "the hello example has no backups; tests/backup.rs runs backup, backups and restore (--snapshot, --into)",
    ),
];

/// The command lines of the README's `sh` blocks: comments dropped, `&&`
/// chains split.
fn readme_command_lines() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut lines = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let command = line.split(" #").next().unwrap_or("").trim();
        if command.is_empty() || command.starts_with('#') {
            continue;
        }
        lines.extend(command.split(" && ").map(|c| c.trim().to_string()));
    }
    lines
}

#[test]
fn every_command_line_the_readme_shows_is_walked() {
    let shown = readme_command_lines();
    assert!(
        shown.len() > 10,
        "the README's commands were not found: {shown:?}"
    );
    for line in &shown {
        assert!(
            WALKED.contains(&line.as_str()) || NOT_WALKED.iter().any(|(l, _)| l == line),
            "the README shows `{line}`, which tests/readme.rs does not walk"
        );
    }
    // And nothing is walked that the README no longer shows.
    for line in WALKED {
        assert!(
            shown.iter().any(|s| s == line),
            "`{line}` is not in the README any more"
        );
    }
}

/// The commands that act on the host: the sandbox stands in for it.
const HOST_COMMANDS: &[&str] = &[
    "plan", "apply", "status", "restart", "ls", "history", "rollback", "destroy",
];

struct Walk {
    sandbox: Sandbox,
    dir: tempfile::TempDir,
    walked: BTreeSet<&'static str>,
}

impl Walk {
    /// Runs one README command line in `folder` (relative to the walk's
    /// folder), host commands with `--root` the sandbox.
    fn run(&mut self, line: &'static str, folder: &str) -> Output {
        assert!(WALKED.contains(&line), "{line} is not in WALKED");
        self.walked.insert(line);
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut cmd = if line.contains(" > ") {
            // A shell line: the shell finds this build's unitgen first.
            let bin = Path::new(env!("CARGO_BIN_EXE_unitgen")).parent().unwrap();
            let path = format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let mut sh = Command::new("sh");
            sh.args(["-c", line]).env("PATH", path);
            sh
        } else {
            let mut cmd = match words[0] {
                "unitgen" => Command::new(env!("CARGO_BIN_EXE_unitgen")),
                other => Command::new(other),
            };
            cmd.args(&words[1..]);
            if words[0] == "unitgen" && HOST_COMMANDS.contains(&words[1]) {
                cmd.arg("--root").arg(self.sandbox.root());
            }
            cmd
        };
        cmd.current_dir(self.dir.path().join(folder))
            .env("NO_COLOR", "1");
        let out = cmd.output().unwrap();
        eprintln!(
            "$ {line}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn ok(&mut self, line: &'static str, folder: &str) -> Output {
        let out = self.run(line, folder);
        assert!(out.status.success(), "`{line}` failed");
        out
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The page `curl http://127.0.0.1:PORT/` would print, once it is there.
fn curl(port: u16, expected: &str) -> Option<String> {
    wait_for(Duration::from_secs(60), || {
        http_get(port, "/")
            .filter(|(s, b)| *s == 200 && b == expected)
            .map(|(_, b)| b)
    })
}

/// The hello example, adjusted for the shared machine (see the top).
fn hello(image: &str, live_port: u16, staging_port: u16) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/hello/unitgen.yaml"
    ))
    .unwrap();
    let adjusted = text
        .replace("app: hello", "app: ugreadme")
        .replace("unitgen-test/busybox:1", image)
        .replace("port: 8080", &format!("port: {live_port}"))
        .replace("port: 8081", &format!("port: {staging_port}"));
    assert_ne!(adjusted, text);
    adjusted
}

#[test]
fn the_readme_walked_through() {
    let registry = Registry::start();
    let image = registry.image("ugreadme/busybox:1");
    assert!(
        docker(["tag", "unitgen-test/busybox:1", &image])
            .status
            .success()
    );
    registry::push(&image);
    registry::untag(&image);

    let mut sandbox = Sandbox::boot();
    sandbox.own_containers("ugreadme-");
    let mut walk = Walk {
        sandbox,
        dir: support::tempdir("readme-"),
        walked: BTreeSet::new(),
    };
    let (live, staging) = (free_port(), free_port());
    let template = hello(&image, live, staging);
    std::fs::create_dir_all(walk.path("examples/hello")).unwrap();
    std::fs::write(walk.path("examples/hello/unitgen.yaml"), &template).unwrap();
    std::fs::write(walk.path("unitgen.yaml"), &template).unwrap();
    let greeting = "Hello from staging (ugreadme 1.1-rc1)\n";

    // Set up: apply the example, then curl it.
    walk.ok("unitgen apply staging -f examples/hello/unitgen.yaml", "");
    walk.walked.insert("curl http://127.0.0.1:8081/");
    assert_eq!(curl(staging, greeting).as_deref(), Some(greeting));
    let out = walk.ok("unitgen destroy staging", "");
    assert!(
        stderr(&out).contains("units stopped and removed"),
        "{}",
        stderr(&out)
    );
    assert!(container_id("ugreadme-staging-web").is_none());

    // The tour.
    let out = walk.ok("unitgen validate", "");
    assert!(
        stderr(&out).contains("instances live, staging are valid"),
        "{}",
        stderr(&out)
    );
    let out = walk.ok("unitgen render staging", "");
    assert!(stdout(&out).contains("# ==> ugreadme-staging-web.service <=="));
    walk.ok("unitgen render staging --out units/", "");
    assert!(walk.path("units/ugreadme-staging-api.service").exists());
    let out = walk.run("unitgen plan staging", "");
    assert_eq!(out.status.code(), Some(2), "something to apply");
    assert!(stdout(&out).contains("+ ugreadme-staging-web.service"));
    walk.ok("unitgen apply staging", "");
    assert_eq!(curl(staging, greeting).as_deref(), Some(greeting));
    let out = walk.ok("unitgen pull staging", "");
    assert!(stderr(&out).contains("1 image pulled"), "{}", stderr(&out));
    let out = walk.ok("unitgen status staging", "");
    // Each service's row: its state and the image the template names.
    assert!(
        (stdout(&out).lines()).any(|row| row.starts_with("  api ")
            && row.contains("active (running)")
            && row.contains("/ugreadme/busybox:1 ")),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("active"), "{}", stdout(&out));

    // A second revision, so that there is one to roll back from.
    std::fs::write(
        walk.path("unitgen.yaml"),
        template.replace("1.1-rc1", "1.1"),
    )
    .unwrap();
    walk.ok("unitgen apply staging", "");
    let newer = "Hello from staging (ugreadme 1.1)\n";
    assert_eq!(curl(staging, newer).as_deref(), Some(newer));
    let web = container_id("ugreadme-staging-web").unwrap();
    walk.ok("unitgen restart staging web", "");
    assert_ne!(
        container_id("ugreadme-staging-web"),
        Some(web),
        "a new container"
    );
    let out = walk.ok("unitgen ls", "");
    assert!(stdout(&out).contains("ugreadme"), "{}", stdout(&out));
    let out = walk.ok("unitgen history staging", "");
    assert!(
        stdout(&out).contains('2'),
        "two revisions: {}",
        stdout(&out)
    );
    walk.ok("unitgen rollback staging", "");
    assert_eq!(curl(staging, greeting).as_deref(), Some(greeting));
    let out = walk.ok("unitgen destroy staging", "");
    assert!(
        stderr(&out).contains("volumes kept: ugreadme-staging-data"),
        "{}",
        stderr(&out)
    );
    assert!(container_id("ugreadme-staging-api").is_none());
    docker(["volume", "rm", "ugreadme-staging-data"]);

    // Import, in a folder of its own.
    std::fs::create_dir_all(walk.path("voting")).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/voting/docker-compose.yml"
        ),
        walk.path("voting/docker-compose.yml"),
    )
    .unwrap();
    walk.ok(
        "unitgen import docker-compose.yml -o unitgen.yaml",
        "voting",
    );
    assert!(walk.path("voting/unitgen.yaml").exists());

    // A new app from scratch, and the schema for editors.
    std::fs::create_dir_all(walk.path("new")).unwrap();
    walk.ok("unitgen init", "new");
    assert!(walk.path("new/unitgen.yaml").exists());
    walk.ok("unitgen schema > unitgen.schema.json", "new");
    let schema = std::fs::read_to_string(walk.path("new/unitgen.schema.json")).unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&schema).is_ok(),
        "{schema}"
    );

    // Rendered units in pull requests.
    let root = walk.path("");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    };
    std::fs::write(walk.path("unitgen.yaml"), &template).unwrap();
    walk.ok("unitgen render live --out units/", "");
    git(&["init", "-q"]);
    git(&["add", "units"]);
    git(&["commit", "-q", "-m", "units"]);
    let out = walk.ok("unitgen render live --out units/ --check", "");
    assert!(stderr(&out).contains("up to date"), "{}", stderr(&out));
    std::fs::write(
        walk.path("unitgen.yaml"),
        template.replace("\"1.0\"", "\"1.0.1\""),
    )
    .unwrap();
    let out = walk.run("unitgen render live --out units/ --check", "");
    assert_eq!(out.status.code(), Some(2), "out of date");
    assert!(
        stdout(&out).contains("ugreadme-live-api.service"),
        "{}",
        stdout(&out)
    );
    walk.ok("unitgen render live --out units/", "");
    let out = walk.ok("git diff units/", "");
    assert!(
        stdout(&out).contains("+    --env \"MESSAGE=Hello from live (ugreadme 1.0.1)\""),
        "{}",
        stdout(&out)
    );
    // Both instances' units (staging's written above), checked in one run.
    let out = walk.ok("unitgen render --all --out units/ --check", "");
    assert!(stderr(&out).contains("up to date"), "{}", stderr(&out));
    // The docs of the same template, kept as current as its units.
    walk.ok("unitgen docs --out docs/", "");
    let overview = std::fs::read_to_string(walk.path("docs/README.md")).unwrap();
    assert!(overview.contains("[ugreadme](ugreadme.md)"), "{overview}");
    let out = walk.ok("unitgen docs --out docs/ --check", "");
    assert!(stderr(&out).contains("up to date"), "{}", stderr(&out));

    let missed: Vec<&&str> = WALKED
        .iter()
        .filter(|l| !walk.walked.contains(**l))
        .collect();
    assert!(missed.is_empty(), "not walked: {missed:?}");
    drop(walk);
    docker(["network", "rm", "ugreadme-staging"]);
}
