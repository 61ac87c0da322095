//! The command line as a shell and `man` see it: completion scripts and
//! manual pages generated from the clap definitions, and what a command
//! line clap refuses prints.

use std::process::{Command, Output};

fn unitgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(args)
        .output()
        .expect("run unitgen")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[derive(Debug, Clone, Copy)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// What `shell` offers when the user types `unitgen LINE` and TAB in
/// `dir` (a trailing space starts a new word), with unitgen's completion
/// script loaded as its `--help` says to install it, sorted.
fn offers(shell: Shell, dir: &std::path::Path, line: &str) -> Vec<String> {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_unitgen"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let shell_name = format!("{shell:?}").to_lowercase();
    let script = stdout(&unitgen(&["completions", &shell_name]));
    let installed = tempfile::tempdir().unwrap();
    let mut command = match shell {
        Shell::Bash => bash_completing(&script, line),
        Shell::Zsh => {
            // zsh loads `_unitgen` from a folder of its $fpath.
            std::fs::write(installed.path().join("_unitgen"), &script).unwrap();
            let mut zsh = Command::new("zsh");
            zsh.args(["-f", "-c", ZSH_TAB])
                .env("FPATH_DIR", installed.path())
                .env("LINE", format!("unitgen {line}"));
            zsh
        }
        Shell::Fish => {
            let file = installed.path().join("unitgen.fish");
            std::fs::write(&file, &script).unwrap();
            let mut fish = Command::new("fish");
            fish.args(["--no-config", "-c", "source $argv[1]; complete -C $argv[2]"])
                .arg(&file)
                .arg(format!("unitgen {line}"));
            fish
        }
    };
    let out = command
        .current_dir(dir)
        .env("PATH", path)
        .output()
        .unwrap_or_else(|e| panic!("running {shell_name}: {e}"));
    assert!(
        out.status.success(),
        "{shell_name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // fish: a match, a tab, its description.
    let mut offered: Vec<String> = (stdout(&out).lines())
        .map(|l| l.split('\t').next().unwrap_or(l).to_string())
        .collect();
    offered.sort();
    offered.dedup();
    offered
}

/// bash calls the function the script registers (`complete -F`) with the
/// words of the line, as it does on TAB.
fn bash_completing(script: &str, line: &str) -> Command {
    let function = (script.lines().rev())
        .find_map(|l| l.trim().strip_prefix("complete -F "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the script registers a function")
        .to_string();
    let words: Vec<String> = (line.split(' '))
        .map(|word| format!("'{}'", word.replace('\'', r"'\''")))
        .collect();
    let program = format!(
        "{script}\nCOMP_WORDS=(unitgen {}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
         {function} \"${{COMP_WORDS[0]}}\" \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words.join(" ")
    );
    let mut bash = Command::new("bash");
    bash.arg("-c").arg(program);
    bash
}

/// An interactive zsh on a pseudo-terminal (zpty) with compinit and
/// `_unitgen` from $FPATH_DIR: it types $LINE and TAB, and prints each
/// match completion offers (compadd, through which every match goes, is
/// wrapped to print them, \x01 before each; \x02 once completion is done).
const ZSH_TAB: &str = r#"
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "fpath=(${(q)FPATH_DIR} \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'compadd() { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi; local -a m; builtin compadd -O m "$@"; for x in $m; print -r -- $'"'"'\x01'"'"'"$x" >/dev/tty; builtin compadd "$@" }'
zpty -w z 'comppostfuncs=(__done); __done() { print -r -- $'"'"'\x02'"'"' >/dev/tty }'
zpty -n -w z "$LINE"$'\t'
while zpty -r -t z line || { sleep 0.05; (( SECONDS < 30 )) }; do
  [[ $line == *$'\x02'* ]] && break
  [[ $line == *$'\x01'* ]] && print -r -- "${${line#*$'\x01'}%%$'\r'*}"
  line=
done
zpty -d z
"#;

#[test]
fn every_shell_completes_commands_and_their_options() {
    let dir = tempfile::tempdir().unwrap();
    for shell in SHELLS {
        let commands = offers(shell, dir.path(), "");
        for command in [
            "apply",
            "plan",
            "logs",
            "restart",
            "history",
            "completions",
            "man",
        ] {
            assert!(
                commands.contains(&command.to_string()),
                "{shell:?}: {command} in {commands:?}"
            );
        }
        assert!(
            !commands.iter().any(|c| c.starts_with("complete-")),
            "{shell:?}: the helper command is not offered: {commands:?}"
        );
        // Before the positions: zsh offers options only there (clap's script).
        let logs = offers(shell, dir.path(), "logs --");
        for option in ["--follow", "--since", "--lines", "--file"] {
            assert!(
                logs.contains(&option.to_string()),
                "{shell:?}: {option} in {logs:?}"
            );
        }
    }
}

// `unitgen status <TAB>` offered options and file names: instance and
// service names had to be typed from memory, where `systemctl status <TAB>`
// completes units and `docker compose logs <TAB>` services. bash completed
// them from stop 21; zsh and fish offered only commands and options. Every
// shell completes them now, from the file the command line names (-f) or
// the default one, as one reading of the command line (`complete-names`)
// finds them.
#[test]
fn every_shell_completes_instance_and_service_names_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("unitgen.yaml"),
        "app: shop\nservices:\n  web: x:1\n  worker: x:1\n  db: x:1\n\
         instances:\n  live: {}\n  staging: {}\n",
    )
    .unwrap();
    let site = std::fs::canonicalize("examples/site/site.yaml").unwrap();
    let site = site.to_str().unwrap();
    for shell in SHELLS {
        let offers = |line: &str| offers(shell, dir.path(), line);
        assert_eq!(offers("status "), ["live", "staging"], "{shell:?}");
        assert_eq!(offers("rollback --to 2 s"), ["staging"], "{shell:?}");
        assert_eq!(offers("logs live "), ["db", "web", "worker"], "{shell:?}");
        // `logs -f` is --follow, and takes no value.
        assert_eq!(offers("logs -f live w"), ["web", "worker"], "{shell:?}");
        assert_eq!(
            offers("restart live web "),
            ["db", "web", "worker"],
            "{shell:?}"
        );
        assert_eq!(offers("exec live d"), ["db"], "{shell:?}");
        assert_eq!(
            offers(&format!("status -f {site} ")),
            ["blog/live", "blog/staging", "wiki/acme", "wiki/globex"],
            "{shell:?}"
        );
        assert_eq!(
            offers(&format!("restart --file={site} blog/live w")),
            ["web", "worker"],
            "{shell:?}"
        );
        // Options, and the words of commands without names, stay clap's.
        assert_eq!(offers("status --js"), ["--json"], "{shell:?}");
        assert!(
            !offers("status live ").contains(&"live".to_string()),
            "{shell:?}"
        );
    }
    let bad = unitgen(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(1), "clap refuses an unknown shell");
}

/// Found in hostile values round 6: bash completed names with `compgen -W
/// "$names"`, which expands `$(…)` in them, and `complete-names` printed
/// the file's names as written: in a folder holding a unitgen.yaml from
/// anyone (a cloned repository) with a service or instance named
/// `web$(touch PWNED)`, `unitgen logs live <TAB>` ran the command. Only
/// names a compile takes are offered now, and bash matches them as text.
#[test]
fn names_from_a_hostile_file_are_never_run_by_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("unitgen.yaml"),
        "app: shop\nservices:\n  web: x:1\n  \"w$(touch PWNED-service)\": x:1\n  \"w`touch PWNED-tick`\": x:1\n\
         instances:\n  live: {}\n  \"l$(touch PWNED-instance)\": {}\n  \"l\\nfake\": {}\n",
    )
    .unwrap();
    for shell in SHELLS {
        let offers = |line: &str| offers(shell, dir.path(), line);
        assert_eq!(offers("status "), ["live"], "{shell:?}");
        assert_eq!(offers("status l"), ["live"], "{shell:?}");
        assert_eq!(offers("logs live "), ["web"], "{shell:?}");
        assert_eq!(offers("logs live w"), ["web"], "{shell:?}");
        let run: Vec<String> = (std::fs::read_dir(dir.path()).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("PWNED"))
            .collect();
        assert!(run.is_empty(), "{shell:?} ran {run:?}");
    }
}

/// `unitgen --help` lists every command with its summary, and each
/// command's own `--help` begins with that summary: a doc comment put above
/// the wrong command (`init` once showed `import`'s text, and `import` none)
/// shows here.
#[test]
fn every_command_has_its_own_summary_in_the_help() {
    let help = stdout(&unitgen(&["--help"]));
    let listed: Vec<(&str, &str)> = (help.lines())
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .map(|l| match l.trim().split_once(' ') {
            Some((command, summary)) => (command, summary.trim()),
            None => (l.trim(), ""),
        })
        .filter(|(command, _)| *command != "help")
        .collect();
    assert!(listed.len() > 20, "{help}");
    for (command, summary) in listed {
        assert!(!summary.is_empty(), "`{command}` has no summary:\n{help}");
        let own = stdout(&unitgen(&[command, "--help"]));
        // The list cuts a long summary where the terminal width ends.
        let start: String = summary.chars().take(40).collect();
        assert!(
            own.starts_with(&start),
            "`unitgen {command} --help` begins otherwise than its summary {summary:?}:\n{own}"
        );
    }
}

// The exit codes were in the README only: `unitgen --help` and `man unitgen`
// (what a user on a server has) did not say that plan exits 2 or status 3
// and 4. Both list them now, and this test checks them against the README's.
#[test]
fn help_and_manual_page_list_the_exit_codes() {
    let help = stdout(&unitgen(&["--help"]));
    let page = stdout(&unitgen(&["man"]));
    let readme = std::fs::read_to_string("README.md").unwrap();
    for (code, what) in [
        ("0", "success"),
        ("1", "an error"),
        ("2", "`plan`: apply would change or repair something"),
        ("3", "`status`: a unit is not as applied"),
        ("4", "`status`: the instance is not installed;"),
    ] {
        let line = format!("  {code}  {what}");
        assert!(help.contains(&line), "{line:?} in:\n{help}");
        // roff escapes dashes and quotes; the words stay.
        assert!(
            page.contains(&format!("{code}  {}", what.replace('-', "\\-"))),
            "{line:?} in the page"
        );
    }
    // history exits 4 as status does (it exited 0).
    let history = "`history`: it has no recorded revision on this host";
    assert!(help.contains(&format!("\n     {history}\n")), "{help}");
    assert!(page.contains(history), "the page");
    // The README says the same (its section is the long form).
    for said in [
        "2\n\"differs\": `plan`",
        "3 when a unit is not as\napplied",
        "4 when the instance\nis not installed",
        "`history` exits 4, as `status` does",
    ] {
        assert!(readme.contains(said), "README: {said:?}");
    }
}

#[test]
fn man_pages_render_with_man() {
    let dir = tempfile::tempdir().unwrap();
    let out = unitgen(&["man", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    for page in [
        "unitgen.1",
        "unitgen-apply.1",
        "unitgen-logs.1",
        "unitgen-history.1",
    ] {
        assert!(dir.path().join(page).exists(), "{page}");
    }
    // man itself formats the page: what a user reads.
    let shown = Command::new("man")
        .arg("-l")
        .arg(dir.path().join("unitgen-logs.1"))
        .env("MANPAGER", "cat")
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("--follow"), "{text}");
    assert!(text.contains("Show the journal of an instance"), "{text}");
    assert_eq!(
        stdout(&unitgen(&["man"])),
        std::fs::read_to_string(dir.path().join("unitgen.1")).unwrap(),
        "`unitgen man` prints the main page"
    );
}

fn unitgen_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run unitgen")
}

#[test]
fn init_writes_a_commented_template_that_validates_and_keeps_an_existing_one() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("my-shop");
    std::fs::create_dir(&folder).unwrap();
    let init = unitgen_in(&folder, &["init"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let written = std::fs::read_to_string(folder.join("unitgen.yaml")).unwrap();
    assert!(written.contains("app: my_shop"), "named after its folder");
    assert!(
        written
            .lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count()
            > 10
    );
    let validate = unitgen_in(&folder, &["validate"]);
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );
    let render = unitgen_in(&folder, &["render", "staging"]);
    assert!(stdout(&render).contains("# ==> my_shop-staging-web.service <=="));

    std::fs::write(folder.join("unitgen.yaml"), "app: mine\n").unwrap();
    let again = unitgen_in(&folder, &["init"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    assert_eq!(
        std::fs::read_to_string(folder.join("unitgen.yaml")).unwrap(),
        "app: mine\n"
    );
}

#[test]
fn init_from_a_compose_file_imports_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        "services:\n  web:\n    image: \"nginx:${TAG:-1.27}\"\n    ports: [\"8080:80\"]\n",
    )
    .unwrap();
    let init = unitgen_in(
        dir.path(),
        &["init", "--from", "docker-compose.yml", "--app", "shop"],
    );
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let written = std::fs::read_to_string(dir.path().join("unitgen.yaml")).unwrap();
    assert!(written.contains("app: shop"), "{written}");
    assert!(written.contains("{{ tag }}"), "{written}");
    let validate = unitgen_in(dir.path(), &["validate"]);
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );
}

/// `-o` names where the output goes, not a file to put in its place: a
/// pipe (as `/dev/null` is a device) is written into and stays a pipe, and
/// a symbolic link stays, its file replaced with the file's mode kept. Renaming
/// over them replaced `/dev/null` itself with a regular file on a test machine.
#[test]
fn init_and_import_write_through_a_pipe_or_a_link_without_replacing_it() {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("out.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let init = unitgen_in(dir.path(), &["init", "-o", "out.fifo", "--app", "piped"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(reader.join().unwrap().contains("app: piped"));
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "{kind:?}");

    std::fs::write(
        dir.path().join("docker-compose.yml"),
        "services:\n  web:\n    image: nginx:1.27\n",
    )
    .unwrap();
    let real = dir.path().join("real.yaml");
    std::fs::write(&real, "app: old\n").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("real.yaml", dir.path().join("link.yaml")).unwrap();
    let args = [
        "import",
        "docker-compose.yml",
        "-o",
        "link.yaml",
        "--app",
        "linked",
    ];
    let refused = unitgen_in(dir.path(), &args);
    assert_eq!(refused.status.code(), Some(1), "replacing needs --force");
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "app: old\n");
    let import = unitgen_in(dir.path(), &[&args[..], &["--force"]].concat());
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let link = std::fs::symlink_metadata(dir.path().join("link.yaml")).unwrap();
    assert!(link.file_type().is_symlink());
    assert!(
        std::fs::read_to_string(&real)
            .unwrap()
            .contains("app: linked")
    );
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

/// Validates a YAML file's data against a JSON Schema with Python's
/// `jsonschema` (a real, independent validator); the errors, if any.
fn schema_errors(schema: &std::path::Path, yaml: &str) -> Vec<String> {
    let data: serde_json::Value = serde_saphyr::from_str(yaml).expect("test YAML parses");
    // Each error with the reasons under it (an `anyOf` says why each
    // alternative failed).
    let program = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        jsonschema.Draft202012Validator.check_schema(schema)\n\
        def show(e):\n\
        \x20   print(e.message)\n\
        \x20   for c in e.context or []: show(c)\n\
        for e in jsonschema.Draft202012Validator(schema).iter_errors(json.load(sys.stdin)):\n\
        \x20   show(e)\n";
    // Debian's python3 and python3-jsonschema, as scripts/testbed.sh installs them.
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", program])
        .arg(schema)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    serde_json::to_writer(child.stdin.take().unwrap(), &data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the validator failed (is python3-jsonschema installed? scripts/testbed.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out).lines().map(str::to_string).collect()
}

#[test]
fn every_example_is_valid_against_the_schema_and_a_broken_file_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("unitgen.schema.json");
    let out = unitgen(&["schema"]);
    assert!(out.status.success());
    std::fs::write(&schema, &out.stdout).unwrap();

    let mut checked = 0;
    for example in std::fs::read_dir("examples").unwrap() {
        let example = example.unwrap().path();
        if !example.is_dir() {
            continue; // a note beside the examples, say
        }
        for file in std::fs::read_dir(example).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".yaml") && !name.contains("compose") {
                let text = std::fs::read_to_string(&path).unwrap();
                assert_eq!(
                    schema_errors(&schema, &text),
                    Vec::<String>::new(),
                    "{name}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 5, "every example's files: {checked}");

    for (broken, expected) in [
        (
            "app: shop\nservices:\n  web:\n    image: shop:1\n    enviroment: {A: b}\n",
            "'enviroment' was unexpected",
        ),
        (
            "app: shop\nservices:\n  web:\n    image: shop:1\n    ports: 8080\n",
            "8080 is not of type 'array', 'null'",
        ),
        (
            "app: shop\nservices:\n  web: [shop]\n",
            "['shop'] is not valid",
        ),
    ] {
        let errors = schema_errors(&schema, broken);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{expected:?} in {errors:?}"
        );
    }
}

// The parser reads a plain scalar into a text field (`docker_args: [--cpus,
// 1]`, `stop_signal: 9`), but the schema said `"type": "string"` there: an
// editor marked files that `unitgen validate` accepts. Both now agree, on
// these and on a short form that unitgen refuses (`web: 5`). A service
// named `5` in `depends_on: [5]` was marked too.
#[test]
fn the_schema_accepts_numbers_in_text_fields_as_unitgen_does() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("unitgen.schema.json");
    std::fs::write(&schema, unitgen(&["schema"]).stdout).unwrap();
    let validate = |yaml: &str| {
        let file = dir.path().join("unitgen.yaml");
        std::fs::write(&file, yaml).unwrap();
        unitgen(&["validate", "-f", file.to_str().unwrap()])
    };
    let accepted = "app: shop
services:
  web:
    image: unitgen-test/busybox:1
    hostname: 5
    stop_signal: 9
    docker_args: [--cpus, 1, --init, true]
    depends_on: [5]
  \"5\":
    image: unitgen-test/busybox:1
router:
  image: 3
instances:
  live: {}
  staging: {extends: live}
";
    let out = validate(accepted);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(schema_errors(&schema, accepted), Vec::<String>::new());

    let refused = "app: shop\nservices:\n  web: 5\ninstances:\n  live: {}\n";
    let out = validate(refused);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid type: integer `5`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(schema_errors(&schema, refused), Vec::<String>::new());
}

// `unitgen destroy stagign` (a typo) said "has no units installed", but
// left the instance's state folder with its lock, and `ls` listed
// `stagign` as "not installed (revisions kept)" from then on, though it
// never was. Such a folder is not listed.
#[test]
fn ls_does_not_list_an_instance_only_a_typo_named() {
    let dir = tempfile::tempdir().unwrap();
    let (units, state) = (dir.path().join("units"), dir.path().join("state"));
    std::fs::create_dir_all(&units).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    let file = dir.path().join("unitgen.yaml");
    std::fs::write(
        &file,
        "app: shop\nservices:\n  web: x:1\ninstances:\n  live: {}\n",
    )
    .unwrap();
    let host = [
        "--unit-dir",
        units.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--bus",
        "unix:path=/nonexistent",
    ];
    let run = |args: &[&str]| unitgen(&[args, &host[..]].concat());
    let file = file.to_str().unwrap();
    assert_eq!(
        run(&["destroy", "stagign", "-f", file]).status.code(),
        Some(0)
    );
    assert_eq!(
        run(&["rollback", "lvie", "-f", file]).status.code(),
        Some(1)
    );
    let ls = run(&["ls"]);
    assert_eq!(ls.status.code(), Some(0));
    let said = stdout(&ls);
    assert!(said.starts_with("no instance on this host"), "{said}");
    let json: serde_json::Value = serde_json::from_slice(&run(&["ls", "--json"]).stdout).unwrap();
    assert_eq!(json, serde_json::json!([]));
}

// clap's errors echoed the arguments raw: an escape sequence in one was
// played by the terminal, a line feed faked a line of the error. Escaped
// now, as unitgen's own messages show the user's values.
#[test]
fn a_refused_command_line_shows_control_characters_escaped() {
    let out = unitgen(&["completions", "\x1b[2J\x1b]0;owned\x07zsh\nerror: fake\r"]);
    let said = String::from_utf8(out.stderr).unwrap();
    assert!(
        said.contains(
            r"invalid value '\u{1b}[2J\u{1b}]0;owned\u{7}zsh\nerror: fake\r' for '<SHELL>'"
        ),
        "{said}"
    );
    assert!(
        !said.chars().any(|c| c.is_control() && c != '\n'),
        "a control character reaches the terminal: {said:?}"
    );
    assert!(!said.contains("\nerror: fake"), "{said}");
    let out = unitgen(&["\x1b[31mapply"]);
    let said = String::from_utf8(out.stderr).unwrap();
    assert!(
        said.contains(r"unrecognized subcommand '\u{1b}[31mapply'"),
        "{said}"
    );
}

// A typo on a `plan` line in CI exited 2, which `plan` says for "the host
// differs": a wrong command line is an error (1), as any other.
#[test]
fn a_refused_command_line_exits_1_not_plans_2() {
    let out = unitgen(&["plan", "live", "--colr", "never"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8(out.stderr).unwrap();
    assert!(said.contains("unexpected argument '--colr'"), "{said}");
    assert!(
        said.contains("a similar argument exists: '--color'"),
        "{said}"
    );
    let help = unitgen(&["plan", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("Usage: unitgen plan"));
    assert_eq!(unitgen(&["--version"]).status.code(), Some(0));
}

// Host options a command would have ignored: `logs --bus` read this
// machine's journal, `--user --root` mixed a user's units with the root's
// system manager, `destroy --fleet --volumes` left the volumes. Each is
// refused; `docs` without --live, which reads no host, says so.
#[test]
fn host_options_a_command_would_ignore_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    let root = dir.path().to_str().unwrap();
    let example = "examples/blog/unitgen.yaml";
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "logs",
                "live",
                "--file",
                example,
                "--bus",
                "unix:path=/run/other",
            ],
            "`unitgen logs --bus unix:path=/run/other`: the journal is read from files, not over D-Bus",
        ),
        (
            &["status", "live", "-f", example, "--user", "--root", root],
            "the argument '--user' cannot be used with '--root <DIR>'",
        ),
        (
            &[
                "destroy",
                "blog/live",
                "--fleet",
                "--volumes",
                "--endpoint",
                "http://127.0.0.1:1",
            ],
            "`unitgen destroy --fleet --volumes`: the volumes are on each machine's Docker engine, which unitgen cannot reach through fleet; nothing was changed",
        ),
    ];
    for (args, message) in cases {
        let out = unitgen(args);
        let said: String = String::from_utf8_lossy(&out.stderr)
            .split_whitespace()
            .filter(|w| *w != "│")
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {said}");
        assert!(said.contains(message), "{args:?}: {said}");
    }
    // docs reads no host without --live: it says so, and writes the pages.
    let out = unitgen(&[
        "docs",
        "-f",
        example,
        "--out",
        docs.to_str().unwrap(),
        "--root",
        root,
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(
            "warning: --root read a host only with --live: these pages come from the files alone"
        ),
        "{said}"
    );
}

// `--unit-dir` with `--root` was a path of this machine, where the root's
// systemd never looks, while `--state-dir` was inside the root: both are
// paths inside the root now.
#[test]
fn unit_dir_with_root_is_inside_the_root() {
    let root = tempfile::tempdir().unwrap();
    let units = root.path().join("srv/units");
    let out = unitgen(&[
        "render",
        "live",
        "-f",
        "examples/blog/unitgen.yaml",
        "--out",
        units.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bus = format!("unix:path={}/no-bus", root.path().display());
    let out = unitgen(&[
        "ls",
        "--json",
        "--root",
        root.path().to_str().unwrap(),
        "--unit-dir",
        "/srv/units",
        "--bus",
        &bus,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["app"], "blog", "{rows}");
    assert_eq!(rows[0]["instance"], "live", "{rows}");
}
