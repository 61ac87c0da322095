//! The command line as a shell and `man` see it: completion scripts and
//! manual pages generated from the clap definitions.

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

/// What bash offers after `unitgen WORDS<TAB>`, from the generated script.
fn bash_completes(words: &str) -> Vec<String> {
    let script = stdout(&unitgen(&["completions", "bash"]));
    let program = format!(
        "{script}\nCOMP_WORDS=(unitgen {words}); COMP_CWORD=${{#COMP_WORDS[@]}}; \
         COMP_WORDS+=(''); _unitgen unitgen '' \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(program)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out).lines().map(str::to_string).collect()
}

#[test]
fn bash_completes_commands_and_their_options() {
    let commands = bash_completes("");
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
            "{command} in {commands:?}"
        );
    }
    let logs = bash_completes("logs live");
    for option in ["--follow", "--since", "--lines", "--file"] {
        assert!(logs.contains(&option.to_string()), "{option} in {logs:?}");
    }
}

#[test]
fn completion_scripts_for_zsh_and_fish_name_every_command() {
    for shell in ["zsh", "fish"] {
        let script = stdout(&unitgen(&["completions", shell]));
        for command in ["apply", "rollback", "exec", "ls"] {
            assert!(script.contains(command), "{shell}: {command}");
        }
    }
    let bad = unitgen(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2), "clap refuses an unknown shell");
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
