//! The unit injections of issue 7, tried against a real, sandboxed systemd
//! 252. First a control: a unit written the way unitgen used to write such
//! values does run the injected command there. Then unitgen: the same
//! values, from the file, from `--set` and as etcd endpoints, change nothing
//! (the apply is refused where the value is written, the running unit keeps
//! its `ProtectSystem=`, no injected command runs), and through
//! `environment` they reach the container exactly.

#[path = "support/lib.rs"]
mod support;

use support::net::free_port;
use support::sandbox::Sandbox;
use support::world::World;

const INJECTIONS: &[&str] = &[
    "hi\r[Service]\rExecStartPre=/bin/touch /pwned",
    "hi\n[Service]\nExecStartPre=/bin/touch /pwned",
    "hi\0ExecStartPre=/bin/touch /pwned",
    // Joins the next line, `ProtectSystem=strict`, into this value.
    "swallow\\",
];

fn show(sandbox: &Sandbox, unit: &str, property: &str) -> String {
    let out = sandbox.systemctl(["show", "--value", "-p", property, unit]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_carriage_return_in_a_raw_unit_value_runs_a_command_in_real_systemd() {
    // The control experiment: what the old rendering of
    // `Environment: "GREETING={{ greeting }}"` gave systemd.
    let sandbox = Sandbox::boot();
    let unit = "[Unit]\nDescription=control\n\n[Service]\nType=oneshot\n\
                Environment=GREETING=hi\r[Service]\rExecStartPre=/bin/touch /pwned-control\n\
                ExecStart=/bin/true\n";
    std::fs::write(sandbox.unit_dir().join("ugctl-control.service"), unit).unwrap();
    sandbox.systemctl(["daemon-reload"]);
    sandbox.systemctl(["start", "ugctl-control.service"]);
    assert!(
        sandbox.root().join("pwned-control").exists(),
        "the sandbox's systemd did not read `\\r` as a line end: the test below would prove nothing"
    );
}

#[test]
fn the_issue_injections_change_nothing_in_real_systemd() {
    let world = World::new("ugsafe");
    let port = free_port();
    let template = |greeting: &str| {
        format!(
            "app: ugsafe\n\
             services:\n\
             \x20 web:\n\
             \x20   image: unitgen-test/busybox:1\n\
             \x20   command: [sh, -c, 'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 80 -h /www']\n\
             \x20   init: true\n\
             \x20   ports: [\"127.0.0.1:{port}:80\"]\n\
             \x20   environment: {{ESCAPED: \"{{{{ greeting }}}}\"}}\n\
             \x20   systemd:\n\
             \x20     Service:\n\
             \x20       Environment: \"GREETING={{{{ greeting }}}}\"\n\
             \x20       ProtectSystem: strict\n\
             instances:\n\
             \x20 live: {{greeting: {}}}\n",
            serde_json::to_string(greeting).unwrap()
        )
    };
    world.write(&template("hello"));
    world.apply_ok("live");
    let unit = "ugsafe-live-web.service";
    let unit_file = world.unit_file(unit);
    let applied = std::fs::read_to_string(&unit_file).unwrap();
    let container = world.id("live", "web");
    assert_eq!(show(&world.sandbox, unit, "ProtectSystem"), "strict");

    for injection in INJECTIONS {
        // From the file.
        world.write(&template(injection));
        let out = world.apply("live");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{injection:?} was applied");
        assert!(
            err.contains("unitgen.yaml:") && err.contains("cannot"),
            "{injection:?}: no located refusal:\n{err}"
        );
        // From the command line (which cannot carry a NUL).
        world.write(&template("hello"));
        if !injection.contains('\0') {
            let set = format!("greeting={injection}");
            let out = world.unitgen(&["apply", "live", "--set", &set]);
            assert_eq!(
                out.status.code(),
                Some(1),
                "--set {injection:?} was applied"
            );
        }
    }
    let endpoint = "http://127.0.0.1:2379\nExecStartPre=/bin/touch /pwned";
    let out = world.unitgen(&["apply", "live", "--etcd", endpoint]);
    assert_eq!(out.status.code(), Some(1), "the etcd endpoint was applied");

    // Nothing changed: same unit file, same container, settings kept, and
    // no injected command ran.
    assert_eq!(std::fs::read_to_string(&unit_file).unwrap(), applied);
    assert_eq!(world.id("live", "web"), container);
    assert_eq!(show(&world.sandbox, unit, "ProtectSystem"), "strict");
    assert_eq!(show(&world.sandbox, unit, "NeedDaemonReload"), "no");
    assert!(!world.sandbox.root().join("pwned").exists());

    // Where unitgen escapes (a `docker run` argument), the same text is
    // just a value: it arrives exactly and runs nothing.
    let carried = INJECTIONS[0];
    let mut escaped_only =
        template("hello").replace("        Environment: \"GREETING={{ greeting }}\"\n", "");
    escaped_only = escaped_only.replace(
        "{greeting: \"hello\"}",
        &format!("{{greeting: {}}}", serde_json::to_string(carried).unwrap()),
    );
    assert!(!escaped_only.contains("GREETING"), "{escaped_only}");
    world.write(&escaped_only);
    world.apply_ok("live");
    assert_eq!(world.exec("live", "web", "printf %s \"$ESCAPED\""), carried);
    assert_eq!(show(&world.sandbox, unit, "ProtectSystem"), "strict");
    assert!(!world.sandbox.root().join("pwned").exists());
}

/// Values with systemd's specifiers and variables, shell and Traefik-rule
/// syntax, quotes, backslashes and a bidirectional override, from each
/// place a user gives them (the deployments file, `--set`) and into each
/// kind of `docker run` argument (environment, label, healthcheck word),
/// reach the container exactly when applied to a real systemd.
#[test]
fn hostile_values_from_the_deployments_file_and_the_command_line_reach_docker_exactly() {
    let world = World::new("ugvals");
    // The bidirectional characters and the C1 control are written into the
    // unit as `\u` escapes (a reviewer's terminal would obey them).
    let from_file = "100% %n %i %% $HOME ${HOME} $$ \\x \\\\ \"q\" 'q' ;#` || ) \u{202e}ü \u{2066}i\u{2069}\u{200f} \u{85}.";
    let from_set = "%h%%$USER ${X:-y} \\ \" a;b `id` $(id)";
    std::fs::write(
        world.dir().join("app.yaml"),
        "app: ugvals\n\
         services:\n\
         \x20 web:\n\
         \x20   image: unitgen-test/busybox:1\n\
         \x20   command: [sleep, \"3600\"]\n\
         \x20   init: true\n\
         \x20   environment: {FROM_FILE: \"{{ greeting }}\", FROM_SET: \"{{ extra }}\"}\n\
         \x20   labels: {note: \"{{ greeting }}\"}\n\
         \x20   healthcheck: {test: [CMD, echo, \"{{ extra }}\"], interval: 1s}\n",
    )
    .unwrap();
    world.write(&format!(
        "template: ./app.yaml\ninstances:\n  live: {{greeting: {}, extra: x}}\n",
        serde_json::to_string(from_file).unwrap()
    ));
    let set = format!("extra={from_set}");
    let out = world.unitgen(&["apply", "live", "--set", &set]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        world.exec("live", "web", "printf %s \"$FROM_FILE\""),
        from_file
    );
    assert_eq!(
        world.exec("live", "web", "printf %s \"$FROM_SET\""),
        from_set
    );
    let web =
        support::docker::inspect_container(&world.container("live", "web")).expect("web runs");
    assert_eq!(web["Config"]["Labels"]["note"], from_file);
    let test: Vec<&str> = support::docker::strings(&web["Config"]["Healthcheck"]["Test"]).collect();
    assert_eq!(test, ["CMD", "echo", from_set]);
    let unit = "ugvals-live-web.service";
    assert_eq!(show(&world.sandbox, unit, "NeedDaemonReload"), "no");
    assert_eq!(show(&world.sandbox, unit, "ActiveState"), "active");
}

// A failed apply reports the container's last lines, which the container
// writes: they were printed as logged, so a program (or whoever controls
// its input) could clear the reviewer's terminal, retitle it, hide text
// behind a bidirectional override, or print a line that reads as
// unitgen's own. They arrive escaped, one report line each.
#[test]
fn a_failed_containers_lines_reach_the_terminal_escaped() {
    let world = World::new("ugloud");
    world.write(
        "app: ugloud\n\
         services:\n\
         \x20 web:\n\
         \x20   image: unitgen-test/busybox:1\n\
         \x20   command: [sh, -c, 'printf \"\\033]0;pwned\\007\\033[2Jcleared\\n\"; printf \"over\\rwritten \\342\\200\\256desrever\\n\"; exit 3']\n\
         instances:\n\
         \x20 live: {}\n",
    );
    let out = world.unitgen(&["apply", "live", "--settle", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ugloud-live-web.service: the container exited with status 3"),
        "{err}"
    );
    // The lines are there, as escapes.
    assert!(
        err.contains("| \\u{1b}]0;pwned\\u{7}\\u{1b}[2Jcleared\n"),
        "{err}"
    );
    assert!(
        err.contains("| over\\rwritten \\u{202e}desrever\n"),
        "{err}"
    );
    let obeyed: Vec<char> = err
        .chars()
        .filter(|&c| {
            c != '\n'
                && (c.is_control()
                    || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
                        | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'))
        })
        .collect();
    assert_eq!(obeyed, Vec::<char>::new(), "{err}");
}

/// Found in hostile values round 7: a failed apply took every line of the
/// unit's run that starts `unitgen:` for its own readiness check's notes,
/// the container's too. A container (or whoever controls what it prints)
/// that wrote `unitgen: health probe …` before exiting made the report say
/// it turned unhealthy, with its words as Docker's probes, for a container
/// with no healthcheck. Its lines are its own now: shown among its last
/// lines, never as unitgen's reason.
#[test]
fn a_failed_containers_lines_never_pass_for_unitgens_notes() {
    let world = World::new("ugnote");
    world.write(
        "app: ugnote\n\
         services:\n\
         \x20 web:\n\
         \x20   image: unitgen-test/busybox:1\n\
         \x20   command: [sh, -c, 'echo \"unitgen: health probe exited 0: all is well, an admin stopped it\"; exit 3']\n\
         instances:\n\
         \x20 live: {}\n",
    );
    let out = world.unitgen(&["apply", "live", "--settle", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ugnote-live-web.service: the container exited with status 3"),
        "{err}"
    );
    assert!(!err.contains("unhealthy"), "{err}");
    assert!(
        err.contains("  | unitgen: health probe exited 0: all is well, an admin stopped it\n"),
        "the container's line, among its own: {err}"
    );
    assert_eq!(
        err.matches("all is well").count(),
        1,
        "said once, as the container's: {err}"
    );
}

/// Found in hostile values round 6: unitgen read a backup's
/// `environment_file` (credentials for restic) with a reader of its own,
/// which took `KEY="a\"b"` as `a\"b`, `'it''s'` as `it''s`, kept a `;`
/// comment and `export X` as variables and split continued lines: `unitgen
/// backups` and `restore` ran restic with other credentials than the
/// units, which systemd gives theirs. Each file here is read by a real
/// systemd 252 as `EnvironmentFile=` and by unitgen: the same variables.
#[test]
fn an_environment_file_is_read_as_systemd_reads_it() {
    use unitgen::systemd::environment_file;
    let sandbox = Sandbox::boot();
    let files: &[&str] = &[
        "UGT_A=\"x\\\"y\\\\z\\$w\\`v\\q\"\nUGT_B='it''s'\n  UGT_C = spaced out  \n",
        "; UGT_COMMENT=1\n# UGT_HASH=1\nUGT_D=a\\\nb\nUGT_E=\"one\\\ntwo\"\nUGT_F=tail\\ \n",
        "export UGT_EXPORTED=1\nUGT_G=first\nUGT_G=second\nUGT_ALONE\n9UGT=x\nUGT_H=\r",
        "UGT_I='open\nclosed' after\nUGT_J=\"a\" 'b' c\nUGT_K=#not a comment ;nor this\nUGT_L=\"unclosed",
        "UGT_M=a\tb\u{1b}c\nUGT_N = \u{202e}x\nUGT\u{e9}=1\nUGT_O=\\\\\\'x\n",
    ];
    for (i, text) in files.iter().enumerate() {
        let file = format!("/etc/ugenv-{i}.env");
        std::fs::write(sandbox.root().join(&file[1..]), text).unwrap();
        let out_file = format!("/ugenv-{i}.out");
        let unit = format!(
            "[Service]\nType=oneshot\nEnvironmentFile={file}\nExecStart=/bin/sh -c 'env -0 > {out_file}'\n"
        );
        let name = format!("ugenv-{i}.service");
        std::fs::write(sandbox.unit_dir().join(&name), unit).unwrap();
        sandbox.systemctl(["daemon-reload"]);
        let started = sandbox.systemctl(["start", &name]);
        assert!(
            started.status.success(),
            "{text:?}: {}",
            sandbox.journal(&name)
        );
        let env = std::fs::read(sandbox.root().join(&out_file[1..])).unwrap();
        let mut systemd: Vec<(String, String)> = (env.split(|b| *b == 0))
            .filter_map(|pair| {
                let pair = String::from_utf8(pair.to_vec()).unwrap();
                let (name, value) = pair.split_once('=')?;
                name.starts_with("UGT")
                    .then(|| (name.to_string(), value.to_string()))
            })
            .collect();
        let mut unitgen = environment_file::read(text).unwrap();
        systemd.sort();
        unitgen.sort();
        assert!(!systemd.is_empty(), "file {i}: systemd set nothing");
        assert_eq!(unitgen, systemd, "file {i}: {text:?}");
    }
}
