//! Issue 7: `--out`, the unit directory and the state directory are the
//! only places unitgen writes. Every command that acts on a host is run
//! under `strace` against a sandboxed systemd, and every file system call
//! that writes (an open for writing, a rename, mkdir, unlink, chmod ...) by
//! unitgen itself must name a path in one of those. The programs it starts
//! (docker, journalctl) are not unitgen: their calls are left out. (One
//! more place when its units made files there: what a removed service's
//! unit wrote in /run/unitgen goes with it, see tests/compose_apply.rs.)

#[path = "support/lib.rs"]
mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use support::net::free_port;
use support::tempdir;
use support::world::World;

const WRITING_CALLS: &str = "openat,open,creat,mkdir,mkdirat,rename,renameat,renameat2,\
     unlink,unlinkat,rmdir,chmod,fchmodat,symlink,symlinkat,link,linkat,truncate,execve";

/// strace names an fd's folder by its path in the sandbox's mount
/// namespace, `…/sandbox-XXXX/root/…` (the overlay, see boot-sandbox.sh):
/// the same folder as `root` (`/proc/PID/root`) that unitgen was given.
fn as_given(root: &str, path: &str) -> String {
    let sandboxes = concat!(env!("CARGO_TARGET_TMPDIR"), "/sandbox-");
    match path
        .strip_prefix(sandboxes)
        .and_then(|p| p.split_once("/root"))
    {
        Some((_, inside)) if inside.is_empty() || inside.starts_with('/') => {
            format!("{root}{inside}")
        }
        _ => path.to_string(),
    }
}

/// Runs `unitgen ARGS` under strace; returns every path unitgen itself
/// wrote to (or tried to). `root`: the sandbox's root as given to unitgen.
fn written_paths(cwd: &Path, root: &str, args: &[&str]) -> Vec<String> {
    let trace = tempdir("strace-");
    let log = trace.path().join("trace");
    let out = Command::new("strace")
        .args(["-f", "-y", "-qq", "-s", "4096", "-e"])
        .arg(format!("trace={WRITING_CALLS}"))
        .arg("-o")
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_unitgen"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("running strace: {e}"));
    eprintln!(
        "$ unitgen {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let mut others = HashSet::new();
    let mut paths = Vec::new();
    for line in text.lines() {
        let Some((pid, call)) = line.split_once(' ') else {
            continue;
        };
        let call = call.trim_start();
        if call.starts_with("execve(") {
            if !call.contains(env!("CARGO_BIN_EXE_unitgen")) {
                others.insert(pid.to_string());
            }
            continue;
        }
        if others.contains(pid) {
            continue;
        }
        let is_open = call.starts_with("open");
        let writes = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"];
        if is_open && !writes.iter().any(|flag| call.contains(flag)) {
            continue;
        }
        // The quoted arguments are the paths (strace escapes quotes in them);
        // a relative one is relative to the folder of the fd before it
        // (`-y` prints it as `5</path>`).
        let mut rest = call;
        while let Some(start) = rest.find('"') {
            let before = &rest[..start];
            let after = &rest[start + 1..];
            let Some(end) = after.find('"') else { break };
            let path = &after[..end];
            let dir = before
                .strip_suffix(">, ")
                .and_then(|b| b.rfind('<').map(|open| &b[open + 1..]));
            paths.push(match dir {
                Some(dir) if !path.starts_with('/') => as_given(root, &format!("{dir}/{path}")),
                _ => path.to_string(),
            });
            rest = &after[end + 1..];
            if is_open {
                break;
            }
            // A link's first path is its source (a file written without a
            // name, `/proc/self/fd/N`): only the last is written.
            if call.starts_with("link") && rest.contains('"') {
                paths.pop();
            }
        }
    }
    paths
}

fn assert_only_under(paths: &[String], allowed: &[String], what: &str) {
    let stray: Vec<&String> = paths
        .iter()
        .filter(|p| p.as_str() != "/dev/null")
        .filter(|p| {
            !allowed
                .iter()
                .any(|a| *p == a || p.starts_with(&format!("{a}/")))
        })
        .collect();
    assert!(
        stray.is_empty(),
        "{what} wrote outside {allowed:?}: {stray:?}"
    );
}

#[test]
fn unitgen_writes_only_to_out_the_unit_dir_and_the_state_dir() {
    let world = World::new("ugwrite");
    let port = free_port();
    world.write(&format!(
        "app: ugwrite
services:
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 80 -h /www']
    init: true
    volumes: [\"data:/data\"]
    ports: [\"127.0.0.1:{{{{ port }}}}:80\"]
instances:
  live: {{port: {port}}}
"
    ));
    let root = world.sandbox.root().display().to_string();
    let file = world.file().display().to_string();
    let cwd = tempdir("cwd-");
    let allowed = [
        format!("{root}/etc/systemd/system"),
        format!("{root}/var/lib/unitgen"),
    ];
    for command in [
        vec!["apply", "live", "--settle", "1"],
        vec!["plan", "live"],
        vec!["status", "live"],
        vec!["rollback", "live", "--to", "1", "--settle", "1"],
        vec!["destroy", "live", "--volumes"],
    ] {
        let mut args = command.clone();
        args.extend(["-f", &file, "--root", &root]);
        let paths = written_paths(cwd.path(), &root, &args);
        if command[0] == "apply" {
            assert!(
                paths.iter().any(|p| p.starts_with(&allowed[0])),
                "the trace saw apply write its units: {paths:?}"
            );
        }
        assert_only_under(&paths, &allowed, command[0]);
    }
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "nothing in the working folder"
    );

    let out = tempdir("out-");
    let out_dir = out.path().join("units").display().to_string();
    let paths = written_paths(
        cwd.path(),
        &root,
        &["render", "live", "-f", &file, "--out", &out_dir],
    );
    assert!(!paths.is_empty(), "render --out wrote its units");
    assert_only_under(&paths, &[out_dir], "render --out");
}

/// Runs `unitgen ARGS` in `cwd` under strace, which kills it (SIGKILL) at
/// the `when`-th call of `syscall`.
fn killed_at(cwd: &Path, syscall: &str, when: u32, args: &[&str]) {
    let out = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("inject={syscall}:signal=KILL:when={when}"))
        .arg(env!("CARGO_BIN_EXE_unitgen"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("running strace: {e}"));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "unitgen {args:?} was to be killed at {syscall} #{when}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every entry of `dir` (hidden ones too), with its text, sorted.
fn entries(dir: &Path) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), text)
        })
        .collect();
    all.sort();
    all
}

/// `render --out` and `init -o` killed between writing a file and naming it
/// left a `.unitgen-XXXXXX` file in the user's folder (a whole unit under a
/// name of ours, which `git add .` takes), and nothing ever removed it.
/// Files are now written without a name and linked once whole; a kill
/// between linking under a temporary name and renaming it over the old file
/// leaves one, which the next write of the folder removes.
#[test]
fn files_written_by_a_killed_command_are_whole_or_absent() {
    let blog = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/blog/unitgen.yaml");
    let cwd = tempdir("killed-writes-");
    let render = |out: &Path, version: &str| -> Vec<String> {
        let (out, set) = (out.display().to_string(), format!("version={version}"));
        ["render", "live", "-f", blog, "--out", &out, "--set", &set]
            .map(String::from)
            .to_vec()
    };
    let run = |args: &[String]| {
        let out = Command::new(env!("CARGO_BIN_EXE_unitgen"))
            .args(args)
            .current_dir(cwd.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let kill = |syscall: &str, when: u32, args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        killed_at(cwd.path(), syscall, when, &args);
    };
    // What whole renders of 1.0 and 2.0 write.
    let (one, two) = (tempdir("whole-1-"), tempdir("whole-2-"));
    run(&render(one.path(), "1.0"));
    run(&render(two.path(), "2.0"));
    let (one, two) = (entries(one.path()), entries(two.path()));
    assert!(one.len() > 2 && one != two, "{one:?}");
    let whole = |file: &(String, String)| one.contains(file) || two.contains(file);

    // Into an empty folder, killed once its second file is written (and
    // synced), not yet in place: the first is there, whole, nothing else.
    let out = tempdir("out-");
    kill("fsync", 2, &render(out.path(), "1.0"));
    let left = entries(out.path());
    assert!(!left.is_empty() && left.iter().all(whole), "{left:?}");
    // Finished; then 2.0 killed as it puts its first file in place of a
    // 1.0 one: every unit is whole, 1.0 or 2.0 (what is left beside them
    // goes with the next render).
    run(&render(out.path(), "1.0"));
    assert_eq!(entries(out.path()), one);
    kill("rename", 1, &render(out.path(), "2.0"));
    let left = entries(out.path());
    let units: Vec<_> = (left.iter())
        .filter(|(name, _)| !name.starts_with(".unitgen-"))
        .collect();
    assert!(
        units.len() == one.len() && units.iter().all(|f| whole(f)),
        "{left:?}"
    );
    run(&render(out.path(), "2.0"));
    assert_eq!(entries(out.path()), two, "finished, and nothing else");

    // `init -o` killed before its file is in place: no file at all.
    let folder = tempdir("init-");
    let file = folder.path().join("unitgen.yaml").display().to_string();
    kill(
        "fsync",
        1,
        &["init", "-o", &file, "--app", "shop"].map(String::from),
    );
    assert_eq!(entries(folder.path()), [], "nothing of a killed init");
    run(&["init", "-o", &file, "--app", "shop"].map(String::from));
    assert_eq!(entries(folder.path()).len(), 1);
}
