//! `unitgen import`, run as a user runs it: compose files in a temporary
//! folder, the built binary, assertions on the template and the warnings.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// What a run of the binary left behind.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn unitgen(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("unitgen runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A project folder named `shop` holding `docker-compose.yml`.
struct Project {
    _tmp: TempDir,
    dir: PathBuf,
}

impl Project {
    fn new(compose: &str) -> Project {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("shop");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("docker-compose.yml"), compose).unwrap();
        Project { _tmp: tmp, dir }
    }

    fn file(self, name: &str, text: &str) -> Project {
        let path = self.dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
        self
    }

    fn import(&self, args: &[&str]) -> Run {
        let mut all = vec!["import", "docker-compose.yml"];
        all.extend(args);
        unitgen(&self.dir, &all)
    }

    /// Imports into `unitgen.yaml`, expecting success, and returns the run.
    fn import_ok(&self, args: &[&str]) -> Run {
        let mut all = vec!["-o", "unitgen.yaml"];
        all.extend(args);
        let run = self.import(&all);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run
    }

    fn template(&self) -> String {
        fs::read_to_string(self.dir.join("unitgen.yaml")).unwrap()
    }

    fn run(&self, args: &[&str]) -> Run {
        unitgen(&self.dir, args)
    }
}

#[test]
fn every_example_compose_file_imports_validates_and_renders() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut imported = 0;
    for entry in fs::read_dir(&examples).unwrap() {
        let compose = entry.unwrap().path().join("docker-compose.yml");
        if !compose.exists() {
            continue;
        }
        let tmp = TempDir::new().unwrap();
        let out = tmp.path().join("unitgen.yaml");
        let (compose, out) = (compose.to_str().unwrap(), out.to_str().unwrap());
        let run = unitgen(tmp.path(), &["import", compose, "-o", out]);
        assert_eq!(run.code, 0, "import {compose}: {}", run.stderr);
        let run = unitgen(tmp.path(), &["validate", "-f", out]);
        assert_eq!(run.code, 0, "validate {compose}: {}", run.stderr);
        let run = unitgen(tmp.path(), &["render", "default", "-f", out]);
        assert_eq!(run.code, 0, "render {compose}: {}", run.stderr);
        assert!(run.stdout.contains("ExecStart=/usr/bin/docker run"));
        imported += 1;
    }
    assert!(imported > 0, "no example has a docker-compose.yml");
}

#[test]
fn prints_to_stdout_and_warns_on_stderr() {
    let project = Project::new("services:\n  web:\n    image: nginx:1.27\n    scale: 2\n");
    let run = project.import(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("# Imported by `unitgen import` from docker-compose.yml.\n")
    );
    assert!(
        run.stdout
            .ends_with("app: shop\n\nservices:\n  web:\n    image: nginx:1.27\n    restart: \"no\"\n\n  web-2:\n    image: nginx:1.27\n    restart: \"no\"\n    docker_args: [--network-alias=web]\n\ninstances:\n  default: {}\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(
            "warning: docker-compose.yml:4:5: web: scale: compose runs 2 containers of it, which its name answers for in turn: the instance runs 2 services, `web` and its copies `web-2`, each with the network alias `web`, and services that depend on it wait for all\n"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(
        "imported 2 services from docker-compose.yml as app `shop`, instance `default`: 1 warning"
    ));
}

/// Each kind of thing that is not carried over is named with its service and
/// key, on stderr and at the top of the template.
#[test]
fn warnings_name_the_service_and_the_key() {
    let project = Project::new(
        r#"services:
  web:
    build: ./web
    container_name: shop_web
    networks:
      front:
        aliases: [www]
    links: [db]
    expose: ["8000"]
    ports: ["8000-8010:80"]
    volumes: ["./static:/static"]
    secrets: [api_key]
    deploy:
      mode: global
    frobnicate: true
  db:
    image: postgres:16
    profiles: [debug]
    networks: [back]
networks:
  front:
  back:
secrets:
  api_key:
    environment: API_KEY
"#,
    );
    // `web` links to `db`: compose refuses the file while `debug` is off.
    let run = project.import_ok(&["--profile", "debug"]);
    let expected = [
        (
            "3:5",
            "web: build: unitgen runs images, it does not build them",
        ),
        (
            "4:5",
            "web: container_name: unitgen names containers itself",
        ),
        (
            "8:5",
            "web: links: not needed: services find each other by name",
        ),
        (
            "10:13",
            "web: ports: not carried over: `8000-8010:80` lets Docker pick one host port of `8000-8010`",
        ),
        (
            "11:15",
            "web: volumes: `./static` is relative to the compose file",
        ),
        (
            "12:15",
            "web: secrets: `api_key` is not backed by a `file:`",
        ),
        ("14:7", "web: deploy.mode: swarm only"),
        (
            "15:5",
            "web: frobnicate: not carried over: unitgen has no such key",
        ),
        ("18:5", "db: profiles: unitgen has no profiles"),
        ("20:1", "networks: `front`, `back` not carried over"),
    ];
    // The header's list, its wrapped lines joined again.
    let header = project
        .template()
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .collect::<Vec<_>>()
        .join(" ");
    for (place, start) in expected {
        let line = format!("warning: docker-compose.yml:{place}: {start}");
        assert!(run.stderr.contains(&line), "{line}\nnot in\n{}", run.stderr);
        let listed = format!("- {start}");
        assert!(header.contains(&listed), "{listed}\nnot in\n{header}");
    }
    assert_eq!(run.stderr.matches("warning: ").count(), expected.len());
    // What could be carried over was, in another form.
    let template = project.template();
    assert!(template.contains("    # TODO: compose built this image from ./web"));
    assert!(template.contains("    image: shop-web\n"));
    assert!(
        template.contains(
            "docker_args: [--network-alias=shop_web, --network-alias=www, --expose=8000]"
        )
    );
    let run = project.run(&["validate", "-f", "unitgen.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn variables_become_values_of_the_declared_instance() {
    let project = Project::new(
        r#"name: Web Shop
services:
  web:
    image: "ghcr.io/acme/shop:${TAG:-1.0}"
    ports: ["127.0.0.1:${PORT:-8080}:8000"]
    environment:
      DATABASE_URL: postgres://shop:${DB_PASSWORD}@db/shop
      PRICE_FORMAT: $$%.2f
"#,
    )
    .file(".env", "DB_PASSWORD=s3cret\n");
    let run = project.import_ok(&["--instance", "live"]);
    assert!(run.stderr.contains("as app `web_shop`, instance `live`"));
    // Regression: a password from .env became an instance value (in the
    // template and the units) without a word.
    assert!(
        run.stderr
            .contains("web: environment: `${DB_PASSWORD}` looks like a secret: its value from .env is an instance value now"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("`${TAG}` looks like"));
    let template = project.template();
    for line in [
        "    image: \"ghcr.io/acme/shop:{{ tag }}\"\n",
        "    ports: [\"127.0.0.1:{{ port }}:8000\"]\n",
        "      DATABASE_URL: \"postgres://shop:{{ db_password }}@db/shop\"\n",
        "      PRICE_FORMAT: $%.2f\n",
        "instances:\n  live:\n    tag: 1.0\n    port: 8080\n    db_password: s3cret\n",
    ] {
        assert!(template.contains(line), "{line}not in\n{template}");
    }
    // Another instance is one more entry with its own values.
    let two = template.replace(
        "instances:\n",
        "instances:\n  staging:\n    tag: 1.1-rc1\n    port: 8081\n    db_password: staging\n",
    );
    fs::write(project.dir.join("unitgen.yaml"), two).unwrap();
    let run = project.run(&["render", "staging", "-f", "unitgen.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("ghcr.io/acme/shop:1.1-rc1"));
    assert!(run.stdout.contains("--publish 127.0.0.1:8081:8000"));
    assert!(run.stdout.contains("--env PRICE_FORMAT=$$%%.2f"));
}

/// Values YAML or the template language would misread reach Docker as the
/// compose file wrote them.
#[test]
fn tricky_values_survive_the_round_trip() {
    let values = [
        ("COLON", "a: b"),
        ("HASH", "x #y"),
        ("YES", "yes"),
        ("BRACES", "{{.Name}}"),
        ("STAR", "*all"),
        ("AMP", "&ref"),
        ("QUOTES", "say \"hi\" and 'bye'"),
        ("NUMBER", "1.10"),
        ("OCTAL", "0755"),
        ("EMPTY", ""),
    ];
    let mut compose = "services:\n  web:\n    image: nginx\n    environment:\n".to_string();
    for (name, value) in values {
        let yaml_value = format!("'{}'", value.replace('\'', "''"));
        compose.push_str(&format!("      {name}: {yaml_value}\n"));
    }
    let project = Project::new(&compose);
    project.import_ok(&[]);
    let template = unitgen::template::Template::load(&project.dir.join("unitgen.yaml")).unwrap();
    let instance = unitgen::compile::compile(&template, "default", &Default::default()).unwrap();
    let environment: Vec<(&str, &str)> = instance.services[0]
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(environment, values);
}

/// Text of the compose file that looks like template code, specifiers,
/// variables or escapes is a literal: each environment value, label and
/// command word compiles to exactly what compose gives the container. A
/// value a warning quotes (a container name with a line feed) stays on the
/// warning's line, and nothing a terminal obeys is printed raw.
#[test]
fn hostile_compose_values_stay_literal_and_warnings_stay_on_their_line() {
    // As written in YAML's double quotes (its escapes are JSON's).
    let values = [
        r#"{{ 7*7 }}"#,
        r#"{% if true %}x{% endif %}"#,
        r#"{#c#}{{- x -}}"#,
        r#"{%endraw%}{{ x }}"#,
        r#"endraw {{"#,
        r#"a{"#,
        r#"%n %i %%"#,
        r#"$HOME ${X} \\$"#,
        r#"back\\slash \"quote\" 'single'"#,
        r#"bidi \u202e here \u2066"#,
        r#"esc \u001b[2J c1 \u0085"#,
        r#"line\nExecStartPre=/bin/false"#,
    ];
    // compose's own `$$` is a literal `$`.
    let in_compose = |v: &str| format!("\"{}\"", v.replace('$', "$$"));
    let mut compose = String::from("services:\n  web:\n    image: nginx\n");
    compose.push_str("    container_name: \"web\\nFAKE: all good\"\n    environment:\n");
    for (i, v) in values.iter().enumerate() {
        compose.push_str(&format!("      V{i}: {}\n", in_compose(v)));
    }
    compose.push_str("    labels:\n");
    for (i, v) in values.iter().enumerate() {
        compose.push_str(&format!("      l{i}: {}\n", in_compose(v)));
    }
    let command: Vec<String> = values.iter().map(|v| in_compose(v)).collect();
    compose.push_str(&format!("    command: [{}]\n", command.join(", ")));
    let project = Project::new(&compose);
    let run = project.import_ok(&[]);
    assert!(
        !run.stderr.chars().any(|c| c.is_control() && c != '\n'
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
        "{:?}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("FAKE").count(),
        run.stderr.matches("\\nFAKE").count(),
        "a value's line feed made a line:\n{}",
        run.stderr
    );
    let literal = |v: &str| -> String {
        // The compose file's escapes, as YAML reads them.
        serde_json::from_str(&format!("\"{v}\"")).unwrap()
    };
    let expected: Vec<String> = values.iter().map(|v| literal(v)).collect();
    let template = unitgen::template::Template::load(&project.dir.join("unitgen.yaml")).unwrap();
    let instance = unitgen::compile::compile(&template, "default", &Default::default()).unwrap();
    let web = &instance.services[0];
    let environment: Vec<&str> = web.environment.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(environment, expected);
    let labels: Vec<&str> = (web.labels.iter())
        .filter(|(k, _)| k.starts_with('l'))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(labels, expected);
    assert_eq!(web.command.as_ref().unwrap(), &expected);
}

/// Found in hostile values round 7: a refusal quoted the compose file's
/// value with its line feeds (a `label_file` path, a service's name), so a
/// compose file from anyone put lines of its own into the error, here one
/// that reads as a second error. Each refusal is one line, as the warnings
/// are, its values shown with `\n`.
#[test]
fn a_refusal_quotes_compose_values_on_its_line() {
    let project = Project::new(
        "services:\n  \"web\\n  × FAKE: the project is fine\":\n    label_file: [\"nope\\n  × FAKE: label files are fine\"]\n",
    );
    let run = project.import(&["-o", "unitgen.yaml"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("label_file"), "{}", run.stderr);
    assert!(
        run.stderr.contains("neither `image` nor `build`"),
        "{}",
        run.stderr
    );
    for line in run.stderr.lines() {
        let text = line.trim_start_matches([' ', '│', '├', '╰', '─', '·']);
        assert!(
            !text.starts_with("× FAKE"),
            "a line of the value's own: {}",
            run.stderr
        );
    }
    assert_eq!(
        run.stderr.matches("FAKE").count(),
        run.stderr.matches("\\n  × FAKE").count(),
        "{}",
        run.stderr
    );
}

#[test]
fn an_existing_output_file_is_kept_unless_forced() {
    let project =
        Project::new("services:\n  web:\n    image: nginx\n").file("unitgen.yaml", "mine\n");
    let run = project.import(&["-o", "unitgen.yaml"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("unitgen.yaml exists already"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--force"));
    assert_eq!(project.template(), "mine\n");
    project.import_ok(&["--force"]);
    assert!(project.template().contains("  web:\n    image: nginx\n"));
}

#[test]
fn the_app_name_is_chosen_or_derived() {
    let project = Project::new("services:\n  web:\n    image: nginx\n");
    let run = project.import_ok(&["--force", "--app", "store"]);
    assert!(run.stderr.contains("as app `store`"));
    assert!(project.template().contains("\napp: store\n"));
    let run = project.import(&["--app", "My-Store"]);
    assert_eq!(run.code, 1, "a usage error: 1, as any error");
    assert!(run.stderr.contains("try `my_store`"), "{}", run.stderr);
}

#[test]
fn bad_compose_yaml_is_reported_at_its_place() {
    let project = Project::new("services:\n  web:\n    image: [nginx\n  db: {}\n");
    let run = project.import(&[]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("docker-compose.yml:"), "{}", run.stderr);
    let project = Project::new("services:\n  web:\n    image: nginx\n    ports: 80\n");
    let run = project.import(&[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("`ports` of service `web`: expected a list, found a number"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("docker-compose.yml:4:12"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_compose_file_is_an_error() {
    let tmp = TempDir::new().unwrap();
    let run = unitgen(tmp.path(), &["import"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("no compose file here"),
        "{}",
        run.stderr
    );
}

/// A port made of a variable compose took from its environment is kept; the
/// template then asks for the value instead of losing the port.
#[test]
fn a_port_without_its_value_is_kept_and_asked_for() {
    let project =
        Project::new("services:\n  web:\n    image: nginx\n    ports: [\"${WEB_PORT}:80\"]\n");
    let run = project.import(&["-o", "unitgen.yaml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(
        "warning: docker-compose.yml:4:13: web: ports: needs a value for `web_port` in each instance"
    ));
    assert!(
        run.stderr
            .contains("undefined variable `web_port` in instance `default`")
    );
    assert!(
        project
            .template()
            .contains("ports: [\"{{ web_port }}:80\"]")
    );
    let run = project.run(&[
        "render",
        "default",
        "-f",
        "unitgen.yaml",
        "--set",
        "web_port=8080",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("--publish 8080:80"));
}

// ---- Real-world shapes (issue 9): each modelled on a project's compose file ----

/// Sentry self-hosted: one `&restart_policy` anchor merged into a hundred
/// services. The alias/anchor ratio heuristic refused it ("budget breached").
#[test]
fn one_anchor_used_a_hundred_times_loads() {
    let mut compose =
        "x-restart-policy: &restart_policy\n  restart: unless-stopped\nservices:\n".to_string();
    for i in 0..120 {
        compose.push_str(&format!(
            "  worker{i}:\n    <<: *restart_policy\n    image: \"getsentry/sentry:${{SENTRY_IMAGE:-nightly}}\"\n"
        ));
    }
    let project = Project::new(&compose);
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("imported 120 services"),
        "{}",
        run.stderr
    );
    let template = project.template();
    assert_eq!(
        template.matches("    restart: unless-stopped\n").count(),
        120
    );
    let run = project.run(&["validate", "-f", "unitgen.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// A "billion laughs" bomb: nine levels of ten aliases each would expand to
/// 10^9 strings. Refused at once, with the file and place, having read
/// little (the test would run out of memory or time otherwise).
#[test]
fn an_alias_bomb_is_refused() {
    let mut compose = "a0: &a0 [lol]\n".to_string();
    for level in 1..10 {
        let prev = format!("*a{}", level - 1);
        let list = [prev.as_str(); 10].join(", ");
        compose.push_str(&format!("a{level}: &a{level} [{list}]\n"));
    }
    compose.push_str("services:\n  web:\n    image: nginx\n    labels: *a9\n");
    let project = Project::new(&compose);
    let run = project.import(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("docker-compose.yml:"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

/// Immich and friends: `mem_limit: 1.5G`, and `${IMMICH_HOST-}:2283:2283`
/// (an empty host IP: all interfaces); `driver: local` is Docker's default.
#[test]
fn memory_with_a_fraction_an_empty_host_ip_and_the_local_driver() {
    let project = Project::new(
        r#"services:
  immich-server:
    image: ghcr.io/immich-app/immich-server:release
    mem_limit: 1.5G
    ports: ["${IMMICH_HOST-}:2283:2283"]
    volumes: [model-cache:/cache]
volumes:
  model-cache:
    driver: local
"#,
    );
    let run = project.import_ok(&[]);
    assert!(
        !run.stderr.contains("warning: docker-compose.yml:10"),
        "{}",
        run.stderr
    );
    let template = project.template();
    assert!(template.contains("    mem_limit: 1.5G\n"), "{template}");
    assert!(
        template.contains("    ports: [\"{{ immich_host }}:2283:2283\"]\n"),
        "{template}"
    );
    let run = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("--memory 1.5g"), "{}", run.stdout);
    assert!(
        run.stdout.contains("--publish 2283:2283 "),
        "{}",
        run.stdout
    );
}

/// Sentry again: `${STATSD_ADDR:-}` in one service and
/// `${STATSD_ADDR:-127.0.0.1:8125}` in another. Each use keeps its default.
#[test]
fn defaults_belong_to_each_use() {
    let project = Project::new(
        r#"services:
  web:
    image: getsentry/sentry:nightly
    environment:
      SENTRY_STATSD_ADDR: "${STATSD_ADDR:-}"
  snuba:
    image: getsentry/snuba:nightly
    environment:
      SNUBA_STATSD_ADDR: "${STATSD_ADDR:-127.0.0.1:8125}"
"#,
    );
    let run = project.import_ok(&[]);
    assert!(!run.stderr.contains("two defaults"), "{}", run.stderr);
    let run = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("--env SENTRY_STATSD_ADDR= "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("--env SNUBA_STATSD_ADDR=127.0.0.1:8125 "),
        "{}",
        run.stdout
    );
    // A value set for the instance wins at both uses, as in compose.
    let run = project.run(&[
        "render",
        "default",
        "-f",
        "unitgen.yaml",
        "--set",
        "statsd_addr=statsd:9125",
    ]);
    assert_eq!(
        run.stdout.matches("STATSD_ADDR=statsd:9125").count(),
        2,
        "{}",
        run.stdout
    );
}

/// Outline, Supabase: `${SECRET_KEY:?...}`. compose refuses to start
/// without it; so does unitgen, quoting the message.
#[test]
fn a_required_variable_fails_with_its_message() {
    let project = Project::new(
        r#"services:
  outline:
    image: outlinewiki/outline:0.80
    environment:
      SECRET_KEY: ${SECRET_KEY:?Generate one with openssl rand -hex 32}
"#,
    );
    let run = project.import(&["-o", "unitgen.yaml"]);
    assert!(run.stderr.contains(
        "warning: docker-compose.yml:5:19: outline: variables: `${SECRET_KEY:?Generate one with openssl rand -hex 32}` is required: instance"
    ), "{}", run.stderr);
    let run = project.run(&["validate", "-f", "unitgen.yaml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("a required value is missing: Generate one with openssl"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("unitgen.yaml:"), "{}", run.stderr);
    let run = project.run(&[
        "render",
        "default",
        "-f",
        "unitgen.yaml",
        "--set",
        "secret_key=abc",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("--env SECRET_KEY=abc"),
        "{}",
        run.stdout
    );
}

/// Zulip, Mastodon: `extends` of a service of the same file and of another
/// file. The base's keys are merged in (maps by key, ports joined), as
/// compose does; it was refused with "has neither image nor build".
#[test]
fn extends_merges_the_base_service() {
    let project = Project::new(
        r#"services:
  web:
    extends:
      file: common.yml
      service: rails
    command: bundle exec puma
    volumes: ["/srv/mastodon/public:/mastodon/public"]
  sidekiq:
    extends: web
    command: bundle exec sidekiq
    volumes: ["/srv/mastodon/tmp:/tmp"]
    environment:
      - DB_POOL=25
"#,
    )
    .file(
        "common.yml",
        "services:\n  rails:\n    image: ghcr.io/mastodon/mastodon:v4.3\n    environment: {RAILS_ENV: production, DB_POOL: 5}\n    restart: always\n    frobnicate: yes\n",
    );
    let run = project.import_ok(&[]);
    // A key of the other file that is not carried over is warned at the
    // `extends` that brought it in.
    assert!(
        run.stderr
            .contains("warning: docker-compose.yml:3:5: web: frobnicate: not carried over"),
        "{}",
        run.stderr
    );
    let template = project.template();
    assert!(template.contains(
        "  sidekiq:\n    image: ghcr.io/mastodon/mastodon:v4.3\n    environment:\n      RAILS_ENV: production\n      DB_POOL: \"25\"\n    restart: always\n    command: bundle exec sidekiq\n    volumes: [\"/srv/mastodon/public:/mastodon/public\", \"/srv/mastodon/tmp:/tmp\"]\n"
    ), "{template}");
    let run = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("--env DB_POOL=25"), "{}", run.stdout);

    // An unknown base is an error at the `extends`.
    let project = Project::new("services:\n  web:\n    extends: base\n    image: x\n");
    let run = project.import(&[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("`extends`: this file has no service `base`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("docker-compose.yml:3:5"),
        "{}",
        run.stderr
    );
}

/// Supabase/Outline-style: a bucket-creation container others wait for with
/// `service_completed_successfully`, services with no restart policy (compose
/// restarts nothing unless told), `on-failure:3`, swarm's `max_attempts`, and
/// `restart: true` on a dependency. It used to become `Restart=always` and a
/// wait for "running": a restart loop.
#[test]
fn init_containers_and_restart_policies_keep_their_meaning() {
    let project = Project::new(
        r#"services:
  minio:
    image: minio/minio:RELEASE.2024-01-01
    restart: unless-stopped
  createbuckets:
    image: minio/mc:latest
    depends_on: [minio]
    entrypoint: [/bin/sh, -c, "mc mb --ignore-existing local/outline"]
    restart: always
  outline:
    image: outlinewiki/outline:0.80
    restart: on-failure:3
    depends_on:
      createbuckets:
        condition: service_completed_successfully
      minio:
        condition: service_started
        restart: true
  worker:
    image: outlinewiki/outline:0.80
    deploy:
      restart_policy: {condition: on-failure, max_attempts: 5}
"#,
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:9:14: createbuckets: restart: others wait for this service to complete, so it is a oneshot"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.matches("warning: ").count(), 1, "{}", run.stderr);
    let template = project.template();
    for part in [
        "  createbuckets:\n    image: minio/mc:latest\n    depends_on: [minio]\n    entrypoint: [/bin/sh, -c, mc mb --ignore-existing local/outline]\n    oneshot: true\n",
        "  outline:\n    image: outlinewiki/outline:0.80\n    restart: on-failure:3\n    depends_on:\n      createbuckets: {}\n      minio:\n        restart: true\n",
        "  worker:\n    image: outlinewiki/outline:0.80\n    restart: on-failure:5\n",
        "  minio:\n    image: minio/minio:RELEASE.2024-01-01\n    restart: unless-stopped\n",
    ] {
        assert!(template.contains(part), "{part}not in\n{template}");
    }
    let run = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outline = run
        .stdout
        .split("# Generated by unitgen")
        .find(|u| u.contains("service outline."))
        .unwrap();
    for line in [
        "\nRequires=docker.service shop-default-network.service shop-default-createbuckets.service\n",
        "\nPartOf=shop-default-minio.service\n",
        "\nStartLimitBurst=4\n",
        "\nRestart=on-failure\n",
    ] {
        assert!(outline.contains(line), "{line:?} in\n{outline}");
    }

    // No restart policy: compose's default, written out.
    let project = Project::new("services:\n  web:\n    image: nginx:1\n");
    project.import_ok(&[]);
    assert!(
        project
            .template()
            .contains("  web:\n    image: nginx:1\n    restart: \"no\"\n")
    );
}

/// An env file is read when the unit starts, as compose reads it; what a
/// unit cannot deliver the same way (a value over several lines, a variable
/// of compose's own environment) is warned at the `env_file` naming it.
#[test]
fn env_file_lines_a_unit_cannot_deliver_are_warned_at_the_env_file() {
    let project = Project::new(
        "services:\n  outline:\n    image: outlinewiki/outline:0.80\n    env_file: ./outline.env\n",
    )
    .file(
        "outline.env",
        "SECRET_KEY='r(m)9'\nURL=https://wiki.example.com\nCALLBACK=${URL}/auth\nHOME_DIR=${HOME}/data\nCERT=\"-----BEGIN\nabc\n-----END\"\n",
    );
    let run = project.import_ok(&[]);
    let path = project.dir.join("outline.env");
    let path = path.canonicalize().unwrap();
    for line in [
        format!(
            "warning: docker-compose.yml:4:15: outline: env_file: {}:4: `HOME_DIR` uses `$HOME`, which compose takes from its environment",
            path.display()
        ),
        format!(
            "warning: docker-compose.yml:4:15: outline: env_file: {}:5: `CERT` spans several lines",
            path.display()
        ),
    ] {
        assert!(run.stderr.contains(&line), "{line}\nnot in\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("SECRET_KEY"), "{}", run.stderr);
    assert!(!run.stderr.contains("CALLBACK"), "{}", run.stderr);
}

/// Loki's compose file checks its distroless image with an exec-form test.
/// It is carried over as written, and the unit runs it without a shell (no
/// `--health-cmd`, which Docker runs with `/bin/sh`).
#[test]
fn an_exec_form_healthcheck_stays_exec_form() {
    let project = Project::new(
        r#"services:
  loki:
    image: grafana/loki:3.1.0
    restart: unless-stopped
    healthcheck:
      test: ["CMD", "/usr/bin/loki", "-health"]
      interval: 10s
"#,
    );
    let run = project.import_ok(&[]);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let template = project.template();
    assert!(
        template.contains(
            "    healthcheck:\n      test: [CMD, /usr/bin/loki, -health]\n      interval: 10s\n"
        ),
        "{template}"
    );
    let run = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("--health-cmd"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(r#"'HEALTHCHECK CMD [\"/usr/bin/loki\",\"-health\"]'"#),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("    unitgen-health/shop-default-loki\n"),
        "{}",
        run.stdout
    );
}

/// `condition: service_healthy` on a service whose healthcheck is its
/// image's own: compose waits for it, unitgen only for a healthcheck it is
/// given. Warned at the condition's service, not silently weaker.
#[test]
fn waiting_for_an_image_healthcheck_is_warned() {
    let project = Project::new(
        r#"services:
  db:
    image: postgres:16
  cache:
    image: redis:7
    healthcheck: {test: [CMD, redis-cli, ping]}
  web:
    image: nginx:1
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_healthy}
"#,
    );
    let run = project.import_ok(&[]);
    assert!(run.stderr.contains(
        "warning: docker-compose.yml:10:7: web: depends_on: `db`: compose waits until it is healthy by its image's own healthcheck"
    ), "{}", run.stderr);
    assert_eq!(run.stderr.matches("warning: ").count(), 1, "{}", run.stderr);
}

#[test]
fn labels_docker_would_read_otherwise_or_unitgen_owns_are_warned_not_carried() {
    let project = Project::new(
        "services:\n  web:\n    image: nginx\n    labels:\n      keep: yes\n      \"a b\": c\n      unitgen.instance: other\n",
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr
            .contains("web: labels: not carried over: `a b` is not a label name"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("web: labels: not carried over: `unitgen.instance` is unitgen's"),
        "{}",
        run.stderr
    );
    assert!(
        project
            .template()
            .contains("    labels:\n      keep: \"yes\"\n")
    );
    let validate = project.run(&["validate"]);
    assert_eq!(validate.code, 0, "{}", validate.stderr);
}

/// immich's compose file names its container `${CONTAINER_NAME}` (from
/// `.env`): the alias that keeps the name reachable is that name, not the
/// text `${CONTAINER_NAME}`.
#[test]
fn a_container_name_from_a_variable_is_the_alias_it_names() {
    let project = Project::new(
        "services:\n  web:\n    image: nginx\n    container_name: ${CONTAINER_NAME}\n",
    )
    .file(".env", "CONTAINER_NAME=shop_web\n");
    let run = project.import_ok(&[]);
    assert!(
        run.stderr
            .contains("a network alias keeps `shop_web` reachable"),
        "{}",
        run.stderr
    );
    assert!(
        project
            .template()
            .contains("docker_args: [\"--network-alias={{ container_name }}\"]"),
        "{}",
        project.template()
    );
    let render = project.run(&["render", "default"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    assert!(
        render.stdout.contains("--network-alias=shop_web"),
        "{}",
        render.stdout
    );
}

#[test]
fn a_compose_file_that_is_not_utf8_is_located_at_its_first_bad_byte() {
    let project = Project::new("");
    fs::write(
        project.dir.join("docker-compose.yml"),
        b"services:\n  web:\n    image: nginx\n    environment:\n      A: \"caf\xe9\"\n",
    )
    .unwrap();
    let run = project.import(&["-o", "unitgen.yaml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("is not UTF-8 text: byte 0xE9"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("docker-compose.yml:5:14"),
        "{}",
        run.stderr
    );
    assert!(!project.dir.join("unitgen.yaml").exists());
}

/// `.env` as compose reads it: a quoted value with a comment after it, and
/// a value built from an earlier one (immich's and many others' `.env`).
#[test]
fn dotenv_values_are_what_compose_reads() {
    let project = Project::new(
        "services:\n  web:\n    image: \"nginx:${TAG}\"\n    environment:\n      URL: ${URL}\n",
    )
    .file(
        ".env",
        "TAG=\"1.27\" # pinned\nHOST=db\nURL=postgres://${HOST}:5432/app\n",
    );
    project.import_ok(&[]);
    let template = project.template();
    assert!(template.contains("    tag: 1.27\n"), "{template}");
    assert!(
        template.contains("    url: postgres://db:5432/app\n"),
        "{template}"
    );
    let render = project.run(&["render", "default"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    assert!(render.stdout.contains("nginx:1.27"), "{}", render.stdout);
}

/// `DEBUG=true` in `.env` reaches the container as `true`, as compose
/// passes it: the imported value is a YAML boolean, which the template
/// engine alone would write as `True` (apps compare with "true").
#[test]
fn a_boolean_from_dotenv_reaches_the_container_as_written() {
    let project = Project::new(
        "services:\n  web:\n    image: nginx:1.27\n    environment:\n      DEBUG: ${DEBUG}\n      OFF: ${OFF:-false}\n",
    )
    .file(".env", "DEBUG=true\n");
    project.import_ok(&[]);
    let render = project.run(&["render", "default"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    for env in ["--env DEBUG=true ", "--env OFF=false "] {
        assert!(render.stdout.contains(env), "{env:?} in {}", render.stdout);
    }
}

/// Airflow's `${AIRFLOW_PROJ_DIR:-.}/dags` and jitsi's `${CONFIG}/web`
/// (`CONFIG=./jitsi-cfg` in `.env`): compose resolves the path, once the
/// variable is replaced, against the compose file's folder. The variable's
/// value is made absolute, so every path starting with it is carried over.
#[test]
fn a_path_starting_with_a_relative_variable_is_made_absolute() {
    let project = Project::new(
        r#"services:
  scheduler:
    image: apache/airflow:2.7.1
    volumes:
      - ${AIRFLOW_PROJ_DIR:-.}/dags:/opt/airflow/dags
      - ${CONFIG}/web:/config:ro
  init:
    image: apache/airflow:2.7.1
    volumes:
      - ${AIRFLOW_PROJ_DIR:-.}:/sources
"#,
    )
    .file(".env", "CONFIG=./jitsi-cfg\n");
    let run = project.import_ok(&[]);
    assert!(!run.stderr.contains("not carried over"), "{}", run.stderr);
    let dir = project.dir.canonicalize().unwrap();
    let dir = dir.to_str().unwrap();
    assert!(
        run.stderr.contains(&format!(
            "warning: docker-compose.yml:5:9: scheduler: volumes: `./dags` is relative to the compose file: instance value `airflow_proj_dir` is now `{dir}`"
        )),
        "{}",
        run.stderr
    );
    let template = project.template();
    for line in [
        "      - \"{{ airflow_proj_dir }}/dags:/opt/airflow/dags\"\n".to_string(),
        "      - \"{{ config }}/web:/config:ro\"\n".to_string(),
        format!("    airflow_proj_dir: {dir}\n"),
        format!("    config: {dir}/jitsi-cfg\n"),
    ] {
        assert!(template.contains(&line), "{line:?} in {template}");
    }
    let render = project.run(&["render", "default"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    for volume in [
        format!("--volume {dir}/dags:/opt/airflow/dags "),
        format!("--volume {dir}/jitsi-cfg/web:/config:ro "),
        format!("--volume {dir}:/sources "),
    ] {
        assert!(
            render.stdout.contains(&volume),
            "{volume} in {}",
            render.stdout
        );
    }
}

/// n8n's AI starter kit: `ollama-cpu` (profile `cpu`) and `ollama-gpu`
/// (profile `gpu-nvidia`) publish the same port. `docker compose up` runs
/// neither, `--profile cpu` (or `COMPOSE_PROFILES` in `.env`) the first;
/// import does the same. A service an enabled one depends on must be
/// enabled too: compose refuses the file otherwise ("depends on undefined
/// service"), and so does import, where the dependency is named.
#[test]
fn services_of_inactive_profiles_are_left_out_as_compose_up_does() {
    let project = Project::new(
        r#"services:
  n8n:
    image: n8nio/n8n:latest
    depends_on: [qdrant]
  ollama-cpu:
    profiles: ["cpu"]
    image: ollama/ollama:latest
    ports: ["11434:11434"]
  ollama-gpu:
    profiles: ["gpu-nvidia"]
    image: ollama/ollama:latest
    ports: ["11434:11434"]
  ollama-pull-llama-cpu:
    profiles: ["cpu"]
    image: ollama/ollama:latest
    depends_on: [ollama-cpu]
  qdrant:
    profiles: [vectors]
    image: qdrant/qdrant
"#,
    );
    let services = |template: &str| {
        [
            "n8n",
            "ollama-cpu",
            "ollama-gpu",
            "ollama-pull-llama-cpu",
            "qdrant",
        ]
        .into_iter()
        .filter(|s| template.contains(&format!("\n  {s}:\n")))
        .collect::<Vec<_>>()
    };

    let refused = project.import(&[]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    for part in [
        "service `n8n` depends on `qdrant`, which `docker compose up` leaves out",
        "while profile `vectors` is not active",
        "docker-compose.yml:4:18",
    ] {
        assert!(
            refused.stderr.replace("\n  │ ", " ").contains(part),
            "{part} in {}",
            refused.stderr
        );
    }

    let run = project.import_ok(&["--profile", "vectors"]);
    assert_eq!(services(&project.template()), ["n8n", "qdrant"]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:6:5: ollama-cpu: profiles: unitgen has no profiles: left out, as `docker compose up` leaves it out while profile `cpu` is not active; import with `--profile cpu` to make it part of every instance\n"),
        "{}",
        run.stderr
    );

    let run = project.import_ok(&["--force", "--profile", "cpu", "--profile", "vectors"]);
    assert_eq!(
        services(&project.template()),
        ["n8n", "ollama-cpu", "ollama-pull-llama-cpu", "qdrant"]
    );
    assert!(
        run.stderr.contains("warning: docker-compose.yml:6:5: ollama-cpu: profiles: unitgen has no profiles: profile `cpu` is active, so this service runs in every instance\n"),
        "{}",
        run.stderr
    );

    let project = project.file(".env", "COMPOSE_PROFILES=gpu-nvidia,vectors\n");
    project.import_ok(&["--force"]);
    assert_eq!(
        services(&project.template()),
        ["n8n", "ollama-gpu", "qdrant"]
    );
    let run = project.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// A guacamole stack behind gluetun (`network_mode: container:gluetun`,
/// gluetun's `container_name`: reaching guacd on localhost, going out
/// through the VPN), qbittorrent's `service:gluetun`, a home-assistant style
/// `network_mode: host` and a `none`: each was warned and run on the
/// instance network instead. `docker run --network` takes each; what Docker
/// refuses beside a shared network fails compose, and import.
#[test]
fn network_mode_is_carried_over_as_docker_run_takes_it() {
    let project = Project::new(
        r#"services:
  guacamole:
    image: guacamole/guacamole
    container_name: guac
    environment:
      - GUACD_HOSTNAME=localhost
    network_mode: container:gluetun
  qbittorrent:
    image: lscr.io/linuxserver/qbittorrent:latest
    network_mode: "service:gluetun"
  gluetun:
    image: qmcgaw/gluetun:latest
    container_name: gluetun
    cap_add: [NET_ADMIN]
    ports: ["8080:8080"]
  homeassistant:
    image: ghcr.io/home-assistant/home-assistant:stable
    network_mode: host
    ports: ["8123:8123"]
  isolated:
    image: busybox
    network_mode: none
  outside:
    image: busybox
    network_mode: container:vpn
"#,
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:18:5: homeassistant: network_mode: `ports` are not carried over: Docker discards them with `network_mode: host`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("guacamole: network_mode: the names others would reach this service by"),
        "{}",
        run.stderr
    );
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    let unit = |name: &str| {
        let start = render
            .stdout
            .find(&format!("# ==> shop-default-{name}.service <=="))
            .unwrap_or_else(|| panic!("no unit {name}: {}", render.stdout));
        let text = &render.stdout[start..];
        let end = text[1..].find("# ==> ").map_or(text.len(), |e| e + 1);
        text[..end].to_string()
    };
    for (service, network) in [
        ("guacamole", "container:shop-default-gluetun"),
        ("qbittorrent", "container:shop-default-gluetun"),
        ("homeassistant", "host"),
        ("isolated", "none"),
        ("outside", "container:vpn"),
    ] {
        let unit = unit(service);
        assert!(
            unit.contains(&format!("    --network {network} \\\n")),
            "{unit}"
        );
        assert!(!unit.contains("--network-alias"), "{unit}");
        assert!(!unit.contains("--publish"), "{unit}");
    }
    // It starts after the service whose network it shares, and with it.
    let qbittorrent = unit("qbittorrent");
    assert!(
        qbittorrent.contains(
            "After=docker.service shop-default-network.service shop-default-gluetun.service\n"
        ),
        "{qbittorrent}"
    );
    assert!(
        qbittorrent.contains("PartOf=shop-default-gluetun.service\n"),
        "{qbittorrent}"
    );

    let refused = Project::new(
        "services:\n  vpn:\n    image: gluetun\n  app:\n    image: nginx\n    network_mode: service:vpn\n    ports: [\"80:80\"]\n",
    )
    .import(&[]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let said = refused.stderr.replace("\n  │ ", " ");
    assert!(
        said.contains(
            "`ports` of service `app` with `network_mode: service:vpn`: Docker refuses it"
        ),
        "{said}"
    );
    assert!(said.contains("docker-compose.yml:7:5"), "{said}");
}

/// Firezone's `deploy.restart_policy` (from an `x-deploy` anchor) says
/// `condition: unless-stopped`, which `docker compose up` maps as it maps
/// `restart:`. And compose applies `deploy.restart_policy` after `restart`:
/// where both are set, the deploy condition wins.
#[test]
fn deploy_restart_conditions_map_as_compose_maps_them() {
    let project = Project::new(
        r#"x-deploy: &default-deploy
  restart_policy:
    condition: unless-stopped
    delay: 5s
services:
  firezone:
    image: firezone/firezone
    deploy:
      <<: *default-deploy
  postgres:
    image: postgres:15
    restart: "no"
    deploy:
      restart_policy:
        condition: any
"#,
    );
    let run = project.import_ok(&[]);
    let template = project.template();
    for part in [
        "  firezone:\n    image: firezone/firezone\n    restart: unless-stopped\n",
        "  postgres:\n    image: postgres:15\n    restart: always\n",
    ] {
        assert!(template.contains(part), "{part}not in\n{template}");
    }
    assert!(
        run.stderr.contains("warning: docker-compose.yml:12:5: postgres: restart: `deploy.restart_policy` is set too: compose applies that one, and so does the template\n"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("unknown condition"), "{}", run.stderr);
}

/// Airflow's init script uses `${AIRFLOW_UID}` bare where `user:` says
/// `${AIRFLOW_UID:-50000}`: unset, compose gives the script an empty value
/// and the user 50000. The script, a `|` block, keeps its last line break
/// though it uses a value.
#[test]
fn a_bare_use_is_empty_where_another_use_has_a_default() {
    let project = Project::new(
        r#"services:
  airflow-init:
    image: apache/airflow:2.7.1
    user: "${AIRFLOW_UID:-50000}:0"
    entrypoint: /bin/bash
    command:
      - -c
      - |
        chown -R "${AIRFLOW_UID}:0" /sources
"#,
    );
    project.import_ok(&[]);
    let render = project.run(&["render", "default"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    for part in [
        "--user 50000:0 ",
        "apache/airflow:2.7.1 -c \"chown -R \\\":0\\\" /sources\\n\"\n",
    ] {
        assert!(render.stdout.contains(part), "{part} in {}", render.stdout);
    }
}

/// GPU reservations of ollama (n8n's AI starter kit) and immich's machine
/// learning (`hwaccel.ml.yml`): `docker compose up` asks Docker for the
/// same devices as `docker run --gpus` with these values. Without a count,
/// compose reserves every matching device, so `count=all` is written.
#[test]
fn gpu_reservations_become_gpus_flags() {
    let project = Project::new(
        r#"services:
  ollama:
    image: ollama/ollama:latest
    deploy:
      resources:
        reservations:
          devices:
            - driver: nvidia
              count: 1
              capabilities: [gpu]
  immich-machine-learning:
    image: ghcr.io/immich-app/immich-machine-learning:release-cuda
    deploy:
      resources:
        reservations:
          devices:
            - driver: nvidia
              capabilities:
                - gpu
                - compute
                - video
  tpu:
    image: example/tpu:1
    deploy:
      resources:
        reservations:
          devices:
            - capabilities: [tpu]
"#,
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:28:15: tpu: deploy.resources.reservations.devices: not carried over: `docker run` asks for devices by capability only for GPUs"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.matches("warning: ").count(), 1, "{}", run.stderr);
    let render = project.run(&["render", "default"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    for flag in [
        "    --gpus=driver=nvidia,count=1 \\\n",
        // One argument: --gpus=driver=nvidia,count=all,"capabilities=compute,video"
        "    \"--gpus=driver=nvidia,count=all,\\\"capabilities=compute,video\\\"\" \\\n",
    ] {
        assert!(render.stdout.contains(flag), "{flag} in {}", render.stdout);
    }
}

/// `extends` of a file in another folder: compose resolves that file's
/// relative paths (`env_file`, bind mounts) against its own folder, not
/// against the compose file extending it.
#[test]
fn extends_resolves_the_base_files_paths_against_its_folder() {
    let project = Project::new(
        r#"services:
  web:
    extends:
      file: common/services.yml
      service: rails
    command: bundle exec puma
"#,
    );
    fs::create_dir(project.dir.join("common")).unwrap();
    let project = project.file(
        "common/services.yml",
        "services:\n  rails:\n    image: ghcr.io/mastodon/mastodon:v4.3\n    env_file: .env.production\n    volumes:\n      - ./public/system:/mastodon/public/system\n      - type: bind\n        source: ../certs\n        target: /certs\n      - assets:/assets\n",
    );
    let run = project.import_ok(&[]);
    let dir = project.dir.canonicalize().unwrap();
    let dir = dir.to_str().unwrap();
    let template = project.template();
    for part in [
        format!("    env_file: [{dir}/common/.env.production]\n"),
        format!("      - {dir}/common/public/system:/mastodon/public/system\n"),
        format!("      - {dir}/certs:/certs\n"),
        "      - assets:/assets\n".to_string(),
    ] {
        assert!(
            template.contains(&part),
            "{part}not in\n{template}\n{}",
            run.stderr
        );
    }
}

/// Plane: `ports: [${NGINX_PORT}:80]` where another use says
/// `${NGINX_PORT:-84}`. Unset, compose publishes `:80` (any free host
/// port) and sets NGINX_PORT=84; the import failed to compile.
#[test]
fn an_empty_host_port_is_any_free_port() {
    let project = Project::new(
        r#"services:
  proxy:
    image: makeplane/plane-proxy:latest
    environment:
      - NGINX_PORT=${NGINX_PORT:-84}
    ports:
      - ${NGINX_PORT}:80
"#,
    );
    project.import_ok(&[]);
    let render = project.run(&["render", "default"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    for part in ["--env NGINX_PORT=84 ", "--publish 80 "] {
        assert!(render.stdout.contains(part), "{part} in {}", render.stdout);
    }
}

/// `entrypoint: []` (frappe-style init jobs, `entrypoint: ""` likewise):
/// compose runs the command without the image's entrypoint, as `docker run
/// --entrypoint ""` does; it was warned and the image's entrypoint kept.
#[test]
fn an_empty_entrypoint_runs_none() {
    let project = Project::new(
        r#"services:
  worker:
    image: busybox:1
    entrypoint: []
    command: sh -c 'echo "a b" && sleep 1'
"#,
    );
    let run = project.import_ok(&[]);
    assert!(!run.stderr.contains("entrypoint"), "{}", run.stderr);
    let render = project.run(&["render", "default"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    assert!(
        render.stdout.contains(
            "    --entrypoint \"\" \\\n    busybox:1 sh -c \"echo \\\"a b\\\" && sleep 1\"\n"
        ),
        "{}",
        render.stdout
    );
}

/// Mailcow: unbound has a fixed address on the compose network
/// (`${IPV4_NETWORK:-172.22.1}.254`) and every other service uses it as its
/// `dns`. unitgen does not give the address, so that `dns` would leave the
/// container with no DNS at all: it is left out, and said so.
#[test]
fn dns_at_a_fixed_compose_address_is_left_out() {
    let project = Project::new(
        r#"services:
  unbound-mailcow:
    image: mailcow/unbound:1.19
    networks:
      mailcow-network:
        ipv4_address: ${IPV4_NETWORK:-172.22.1}.254
        aliases:
          - unbound
  clamd-mailcow:
    image: mailcow/clamd:1.63
    dns:
      - ${IPV4_NETWORK:-172.22.1}.254
      - 9.9.9.9
networks:
  mailcow-network:
"#,
    )
    .file(".env", "IPV4_NETWORK=172.30.1\n");
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:12:9: clamd-mailcow: dns: `172.30.1.254` not carried over: it was `unbound-mailcow`'s fixed address on a compose network (`ipv4_address`), which unitgen does not give it, so no DNS server would answer there; the container uses Docker's DNS, which finds `unbound-mailcow` by name\n"),
        "{}",
        run.stderr
    );
    let render = project.run(&["render", "default"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    assert!(
        render.stdout.contains("--dns=9.9.9.9 "),
        "{}",
        render.stdout
    );
    assert!(!render.stdout.contains("172.30.1.254"), "{}", render.stdout);
}

/// Round 8, bitmagnet: gluetun's `extra_hosts: ["postgres:192.168.55.11"]`
/// names postgres's fixed compose address (`ipv4_address`). unitgen does
/// not give the address, so `--add-host` sent the name to an address
/// nothing has, in front of the Docker DNS that finds postgres: left out,
/// and said so, in the list and the map forms; other hosts stay.
#[test]
fn extra_hosts_at_a_fixed_compose_address_are_left_out() {
    let project = Project::new(
        r#"services:
  gluetun:
    image: qmcgaw/gluetun
    extra_hosts:
      - "postgres:192.168.55.11"
      - "host.docker.internal:host-gateway"
    networks:
      bitmagnet:
        ipv4_address: 192.168.55.10
  postgres:
    image: postgres:16-alpine
    networks:
      bitmagnet:
        ipv4_address: ${NET:-192.168.55}.11
  agent:
    image: grafana/agent
    extra_hosts:
      gluetun: 192.168.55.10
networks:
  bitmagnet:
    ipam:
      config:
        - subnet: 192.168.55.0/24
"#,
    );
    let run = project.import_ok(&[]);
    for warning in [
        "warning: docker-compose.yml:5:9: gluetun: extra_hosts: `postgres:192.168.55.11` not carried over: `192.168.55.11` was `postgres`'s fixed address on a compose network (`ipv4_address`), which unitgen does not give it, so the name would lead nowhere; the services reach `postgres` by that name on the instance network\n",
        "warning: docker-compose.yml:18:16: agent: extra_hosts: `gluetun: 192.168.55.10` not carried over",
    ] {
        assert!(run.stderr.contains(warning), "{warning} in\n{}", run.stderr);
    }
    let render = project.run(&["render", "default"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    assert!(
        render
            .stdout
            .contains("--add-host=host.docker.internal:host-gateway"),
        "{}",
        render.stdout
    );
    assert!(!render.stdout.contains("192.168.55."), "{}", render.stdout);
}

/// Round 8. Compose reads `extra_hosts` as `HOST=IP` too (the form its
/// reference now shows) and an IPv6 address in brackets, and hands Docker
/// `HOST:IP`; import wrote `--add-host=somehost=162.242.195.82`, which the
/// CLI of Debian 12's Docker (20.10) refuses ("bad format for add-host"),
/// so the unit never started there. Written as compose hands it now.
#[test]
fn extra_hosts_are_written_as_compose_hands_them_to_docker() {
    let project = Project::new(
        "services:\n  web:\n    image: nginx\n    extra_hosts:\n      - \"somehost=162.242.195.82\"\n      - \"myhostv6=[::1]\"\n      - \"old:10.0.0.1\"\n      - \"gw=host-gateway\"\n  api:\n    image: nginx\n    extra_hosts:\n      v6: \"[::1]\"\n",
    );
    project.import_ok(&[]);
    let render = project.run(&["render", "default"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    for flag in [
        "--add-host=somehost:162.242.195.82 ",
        "--add-host=myhostv6:::1 ",
        "--add-host=old:10.0.0.1 ",
        "--add-host=gw:host-gateway ",
        "--add-host=v6:::1 ",
    ] {
        assert!(render.stdout.contains(flag), "{flag} in\n{}", render.stdout);
    }
    assert!(!render.stdout.contains("[::1]"), "{}", render.stdout);
}

/// Mastodon keeps its database on `internal_network` (`internal: true`): no
/// way out of the host. The instance network has one, which is said.
#[test]
fn an_internal_network_lost_is_said() {
    let project = Project::new(
        r#"services:
  db:
    image: postgres:14-alpine
    networks: [internal_network]
  web:
    image: ghcr.io/mastodon/mastodon:v4.3.17
    networks: [external_network, internal_network]
networks:
  external_network:
  internal_network:
    internal: true
"#,
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:8:1: networks: `external_network`, `internal_network` not carried over: unitgen gives every instance one network, where all its services find each other by name; under compose too, each service shared a network with every other, and those only on `internal_network` (`internal: true`) can now reach outside the host\n"),
        "{}",
        run.stderr
    );
}

/// The one instance network joins services compose kept apart, which is
/// said only when some were: here `cache` (on `back`) and `proxy` (on
/// `default`, having no `networks:`) shared none; `metrics` shares the
/// host's network and joins none.
#[test]
fn networks_lost_say_whether_they_kept_services_apart() {
    let project = |proxy: &str| {
        Project::new(&format!(
            r#"services:
  cache:
    image: redis:7
    networks: [back]
  web:
    image: nginx
    networks: [back, default]
  proxy:
    image: traefik:v3
{proxy}  metrics:
    image: prom/node-exporter
    network_mode: host
networks:
  back:
"#
        ))
    };
    let apart = "services that compose kept on separate networks can now reach each other\n";
    let together = "under compose too, each service shared a network with every other\n";
    let run = project("").import_ok(&[]);
    assert!(run.stderr.contains(apart), "{}", run.stderr);
    assert!(!run.stderr.contains(together), "{}", run.stderr);
    let run = project("    networks: [back]\n").import_ok(&[]);
    assert!(run.stderr.contains(together), "{}", run.stderr);
    assert!(!run.stderr.contains(apart), "{}", run.stderr);
}

/// `.env` sets `X=` (empty): compose's `${X-dflt}` is then empty (the
/// default is for an unset X only) and `${X+set}` is `set`, while
/// `${X:-dflt}` and `${X:+set}` look at emptiness. They used to be read as
/// their `:` forms.
#[test]
fn operators_without_a_colon_look_at_whether_the_variable_is_set() {
    let project = Project::new(
        "services:\n  a:\n    image: nginx:1\n    environment:\n      A: ${X-dflt}\n      B: ${X:-dflt}\n      C: ${X+set}\n      D: ${X:+set}\n      E: ${UNSET-dflt}\n",
    )
    .file(".env", "X=\n");
    project.import_ok(&[]);
    let render = project.run(&["render", "default"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    for env in [
        "--env A= ",
        "--env B=dflt ",
        "--env C=set ",
        "--env D= ",
        "--env E=dflt ",
    ] {
        assert!(render.stdout.contains(env), "{env} in {}", render.stdout);
    }
}

/// awesome-compose's prometheus-grafana mounts `./etc/prometheus` and the
/// `prom_data` volume both at `/prometheus`. Compose mounts one volume per
/// target, the last listed; Docker refuses two.
#[test]
fn of_two_volumes_at_one_target_the_last_is_kept() {
    let project = Project::new(
        r#"services:
  prometheus:
    image: prom/prometheus
    volumes:
      - ./etc/prometheus:/prometheus
      - prom_data:/prometheus/
volumes:
  prom_data:
"#,
    );
    let run = project.import_ok(&[]);
    let dir = project.dir.canonicalize().unwrap();
    assert!(
        run.stderr.contains(&format!("warning: docker-compose.yml:5:9: prometheus: volumes: `{}/etc/prometheus:/prometheus` not carried over: a later volume mounts at `/prometheus` too, and compose mounts only the last\n", dir.display())),
        "{}",
        run.stderr
    );
    assert!(
        project
            .template()
            .contains("    volumes: [\"prom_data:/prometheus/\"]\n"),
        "{}",
        project.template()
    );
}

/// n8n's AI starter kit: named volumes the local driver binds to host
/// folders (`driver_opts: {type: none, o: bind, device: …}`). The data is in
/// those folders; an instance-scoped volume would start empty elsewhere.
#[test]
fn a_named_volume_bound_to_a_host_folder_is_that_folder() {
    let project = Project::new(
        r#"volumes:
  n8n_storage:
    driver: local
    driver_opts:
      type: none
      device: /storage/n8n_storage
      o: bind
  cache:
services:
  n8n:
    image: n8nio/n8n:latest
    volumes:
      - n8n_storage:/home/node/.n8n
      - cache:/cache
"#,
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:13:9: n8n: volumes: `n8n_storage` is the host folder `/storage/n8n_storage` (its `driver_opts` bind it): mounted as that folder, which must exist on every host that runs the units\n"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("driver_opts: not carried over"),
        "{}",
        run.stderr
    );
    let template = project.template();
    assert!(
        template.contains(
            "    volumes: [\"/storage/n8n_storage:/home/node/.n8n\", \"cache:/cache\"]\n"
        ),
        "{template}"
    );
    assert!(template.contains("volumes:\n  cache: {}\n"), "{template}");
}

/// Compose variables named like an instance entry's own keys (`HOST`, a
/// common one, `SERVICES`, `ROUTES`, `EXTENDS`) become values with a `_`:
/// written as they were, `host: db` would have said which host runs the
/// instance, and `services:`/`routes:` were refused as no switches or routes.
/// (Found by the `import` fuzz target.)
#[test]
fn variables_named_like_instance_keys_stay_values() {
    let project = Project::new(
        "services:\n  web:\n    image: nginx:1.27\n    environment:\n      DB: ${HOST}\n      S: ${SERVICES:-all}\n      R: ${ROUTES:-none}\n      E: ${EXTENDS-base}\n",
    )
    .file(".env", "HOST=db\n");
    project.import_ok(&[]);
    let template = project.template();
    for value in [
        "host_: db",
        "services_: all",
        "routes_: none",
        "extends_: base",
    ] {
        assert!(
            template.contains(&format!("    {value}\n")),
            "{value} in {template}"
        );
    }
    let render = project.run(&["render", "default"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    for env in [
        "--env DB=db ",
        "--env S=all ",
        "--env R=none ",
        "--env E=base ",
    ] {
        assert!(render.stdout.contains(env), "{env:?} in {}", render.stdout);
    }
}

/// nginx-proxy's acme-companion (nginx-proxy/acme-companion's
/// docs/Docker-Compose.md) and redash's worker take the volumes of another
/// service with `volumes_from`: without them the companion wrote
/// certificates nginx never saw. Docker gives the container the other's
/// mounts at the same paths, its own volumes winning at theirs, in the mode
/// `:ro`/`:rw` forces or the other's.
#[test]
fn volumes_from_mounts_the_other_services_volumes() {
    let project = Project::new(
        r#"services:
  nginx-proxy:
    image: nginx:alpine
    volumes:
      - conf:/etc/nginx/conf.d
      - certs:/etc/nginx/certs:ro
      - /srv/html:/usr/share/nginx/html
      - /var/cache/nginx
  acme-companion:
    image: nginxproxy/acme-companion
    volumes_from:
      - nginx-proxy
    volumes:
      - certs:/etc/nginx/certs:rw
      - acme:/etc/acme.sh
  reader:
    image: busybox
    volumes_from: ["nginx-proxy:ro", "container:other"]
volumes:
  conf:
  certs:
  acme:
"#,
    );
    let run = project.import_ok(&[]);
    // Round 9: an anonymous volume is the instance's, named after the
    // service and the path, shared as compose shares it.
    assert!(
        run.stderr.contains("warning: docker-compose.yml:8:9: nginx-proxy: volumes: an anonymous volume: compose keeps it when it restarts or recreates the container (until `down`), where a unit's `docker run --rm` would remove it at every stop; it is the instance's volume `nginx-proxy-var-cache-nginx`, kept until `destroy --volumes`\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("warning: docker-compose.yml:18:38: reader: volumes_from: `container:other` not carried over: a container outside the compose file; mount its volumes with `volumes`\n"),
        "{}",
        run.stderr
    );
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    let unit = |service: &str| {
        let start = render
            .stdout
            .find(&format!("# ==> shop-default-{service}.service <=="))
            .unwrap();
        render.stdout[start..]
            .split("\n\n# ==>")
            .next()
            .unwrap()
            .to_string()
    };
    let companion = unit("acme-companion");
    for volume in [
        "--volume shop-default-certs:/etc/nginx/certs \\",
        "--volume shop-default-acme:/etc/acme.sh \\",
        "--volume shop-default-conf:/etc/nginx/conf.d \\",
        "--volume /srv/html:/usr/share/nginx/html \\",
        "--volume shop-default-nginx-proxy-var-cache-nginx:/var/cache/nginx \\",
    ] {
        assert!(companion.contains(volume), "{volume}: {companion}");
    }
    assert!(!companion.contains("/etc/nginx/certs:ro"), "{companion}");
    let reader = unit("reader");
    for volume in [
        "--volume shop-default-conf:/etc/nginx/conf.d:ro \\",
        "--volume shop-default-certs:/etc/nginx/certs:ro \\",
        "--volume /srv/html:/usr/share/nginx/html:ro \\",
    ] {
        assert!(reader.contains(volume), "{volume}: {reader}");
    }
}

/// superset's services read `docker/.env-local` with `required: false`
/// (apache/superset's docker-compose-non-dev.yml): compose skips it when it
/// is missing, where the unit failed to start on it.
#[test]
fn a_missing_optional_env_file_is_left_out() {
    let project = Project::new(
        r#"services:
  db:
    image: postgres:16
    env_file:
      - path: docker/.env
        required: true
      - path: docker/.env-local
        required: false
      - path: docker/.env-extra
        required: false
"#,
    )
    .file("docker/.env", "POSTGRES_USER=superset\n")
    .file("docker/.env-extra", "POSTGRES_DB=superset\n");
    let run = project.import_ok(&[]);
    let dir = project.dir.display();
    assert!(
        run.stderr.contains(&format!("warning: docker-compose.yml:7:9: db: env_file: `{dir}/docker/.env-local` (`required: false`) does not exist: left out, as compose leaves it out; add it to env_file once it exists\n")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("warning: docker-compose.yml:9:9: db: env_file: `required: false` is not carried over: the unit fails to start if the file is missing\n"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("`docker/.env-local` is relative"),
        "{}",
        run.stderr
    );
    let template = project.template();
    let services = &template[template.find("services:").unwrap()..];
    assert!(
        services.contains(&format!("{dir}/docker/.env\n"))
            && services.contains(&format!("{dir}/docker/.env-extra\n"))
            && !services.contains(".env-local"),
        "{template}"
    );
}

/// Kong's compose file (Kong/docker-kong's compose/docker-compose.yml) runs
/// read-only with its prefix and /tmp on named volumes the local driver makes
/// a tmpfs: they were instance volumes on disk, kept from start to start,
/// with `driver_opts` warned as not carried over. A tmpfs volume is a new,
/// empty tmpfs at each start (checked with Docker), as `--tmpfs` is.
#[test]
fn a_tmpfs_volume_is_a_tmpfs_mount() {
    let project = Project::new(
        r#"volumes:
  kong_data: {}
  kong_prefix_vol:
    driver_opts:
      type: tmpfs
      device: tmpfs
  kong_tmp_vol:
    driver_opts:
      type: tmpfs
      device: tmpfs
      o: size=64m
services:
  kong:
    image: kong:latest
    read_only: true
    volumes:
      - kong_prefix_vol:${KONG_PREFIX:-/var/run/kong}
      - type: volume
        source: kong_tmp_vol
        target: /tmp
      - kong_data:/data
"#,
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:17:9: kong: volumes: `kong_prefix_vol` is a tmpfs (its `driver_opts`): mounted as the container's own tmpfs, empty at each start as the volume was; other services no longer share it\n"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("driver_opts: not carried over"),
        "{}",
        run.stderr
    );
    let template = project.template();
    assert!(
        template.contains("volumes:\n  kong_data: {}\n\n"),
        "{template}"
    );
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    for arg in [
        "--tmpfs /var/run/kong \\",
        "--tmpfs /tmp:size=64m \\",
        "--volume shop-default-kong_data:/data \\",
    ] {
        assert!(render.stdout.contains(arg), "{arg}: {}", render.stdout);
    }
    assert!(!render.stdout.contains("kong_tmp_vol"), "{}", render.stdout);
}

/// A tmpfs mount's `size: 0` (and `mode: 0`) is Docker's "not given"
/// (its mount API adds `size=` only when it is not 0): the kernel's
/// default, half the RAM. The import wrote `size=0`, which `--tmpfs` passes
/// to the kernel as no limit at all, and the template it wrote failed to
/// compile for it.
#[test]
fn a_tmpfs_size_of_0_is_left_out_as_docker_does() {
    let project = Project::new(
        "services:\n  web:\n    image: nginx:1\n    volumes:\n      - type: tmpfs\n        target: /cache\n        tmpfs: {size: 0, mode: 0}\n      - type: tmpfs\n        target: /run\n        tmpfs: {size: 0m}\n      - type: tmpfs\n        target: /tmp\n        tmpfs: {size: 64m}\n",
    );
    project.import_ok(&[]);
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    for arg in [
        "--tmpfs /cache \\",
        "--tmpfs /run \\",
        "--tmpfs /tmp:size=64m \\",
    ] {
        assert!(render.stdout.contains(arg), "{arg}: {}", render.stdout);
    }
}

/// `$PWD:/usr/src/app` (a devcontainer compose file's bind of the project)
/// is the folder compose ran in, which its shell sets: the import asked for
/// a value and the template did not compile. It is the compose file's folder
/// now, said so; a `.env` value still wins.
#[test]
fn pwd_is_the_compose_files_folder() {
    let compose = r#"services:
  deploy-fedora:
    image: "fedora:39"
    working_dir: "/usr/src/app/bin"
    volumes: ["$PWD:/usr/src/app", "${PWD}/data:/data"]
"#;
    let project = Project::new(compose);
    let run = project.import_ok(&[]);
    let dir = project.dir.display();
    assert!(
        run.stderr.contains(&format!("warning: docker-compose.yml:5:15: deploy-fedora: variables: `$PWD` is the folder compose ran in: instance value `pwd` is the compose file's folder, `{dir}`; set it for each instance that runs elsewhere\n")),
        "{}",
        run.stderr
    );
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    assert!(
        render
            .stdout
            .contains(&format!("--volume {dir}:/usr/src/app \\"))
            && render
                .stdout
                .contains(&format!("--volume {dir}/data:/data \\")),
        "{}",
        render.stdout
    );

    let project = Project::new(compose).file(".env", "PWD=/srv/fedora\n");
    let run = project.import_ok(&["--force"]);
    assert!(!run.stderr.contains("`${PWD}`"), "{}", run.stderr);
    assert!(project.template().contains("    pwd: /srv/fedora\n"));
}

/// node-exporter's compose file (its README, copied into many stacks)
/// mounts the host's root `/:/host:ro,rslave`, so that mounts made later on
/// the host show inside; cadvisor's long form says `bind: {propagation:
/// rslave}`. The propagation was dropped with a warning; Docker takes it on
/// a bind (`-v /:/host:ro,rslave`), and so do unitgen's volumes now. Its
/// `container_name` is also its old name: one network alias, not two.
#[test]
fn a_bind_keeps_its_mount_propagation() {
    let project = Project::new(
        r#"services:
  node_exporter:
    image: quay.io/prometheus/node-exporter:latest
    container_name: node_exporter
    command:
      - '--path.rootfs=/host'
    pid: host
    restart: unless-stopped
    volumes:
      - '/:/host:ro,rslave'
  cadvisor:
    image: gcr.io/cadvisor/cadvisor:latest
    volumes:
      - type: bind
        source: /var/lib/docker
        target: /var/lib/docker
        read_only: true
        bind:
          propagation: rslave
      - data:/data:rslave
"#,
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:20:9: cadvisor: volumes: mode `rslave` is not carried over: unitgen mounts with ro or rw, z or Z, volumes with nocopy, and binds with a propagation\n"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.matches("mode `").count(), 1, "{}", run.stderr);
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    for arg in [
        "--volume /:/host:ro,rslave \\",
        // A `bind:` block without `create_host_path: true`: compose's
        // mount API, which fails on a missing host path as `--mount` does.
        "--mount=type=bind,source=/var/lib/docker,target=/var/lib/docker,readonly,bind-propagation=rslave \\",
        "--volume shop-default-data:/data \\",
    ] {
        assert!(render.stdout.contains(arg), "{arg}: {}", render.stdout);
    }
    assert_eq!(
        render
            .stdout
            .matches("--network-alias=node_exporter")
            .count(),
        1,
        "{}",
        render.stdout
    );
}

/// coturn's relay ports, as a stack publishes them
/// (`"49160-49200:49160-49200/udp"` beside `3478:3478/udp`): a port range
/// was warned and left out, so no relay could be reached. Docker publishes a
/// range as one binding per port: so does the imported template.
#[test]
fn a_port_range_is_published_port_by_port() {
    let project = Project::new(
        r#"services:
  coturn:
    image: coturn/coturn
    restart: always
    ports:
      - "3478:3478"
      - "3478:3478/udp"
      - "49160-49200:49160-49200/udp"
      - "8000-8010:80"
"#,
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:9:9: coturn: ports: not carried over: `8000-8010:80` lets Docker pick one host port of `8000-8010`; give one (`HOST:80`)\n"),
        "{}",
        run.stderr
    );
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    for port in 49160..=49200 {
        let arg = format!("--publish {port}:{port}/udp \\");
        assert!(render.stdout.contains(&arg), "{arg}: {}", render.stdout);
    }
    assert_eq!(
        render.stdout.matches("--publish ").count(),
        43,
        "{}",
        render.stdout
    );
}

/// Rocket.Chat's and zulip's old compose files list their services at the
/// top, compose's first file format, which docker compose no longer reads:
/// refused where it starts, saying so, with nothing written.
#[test]
fn a_first_format_compose_file_is_refused_saying_why() {
    let project = Project::new(
        "db:\n  image: mongo\n  command: mongod --smallfiles\n\nrocketchat:\n  image: rocketchat/rocket.chat\n  links:\n    - db:db\n  ports:\n    - 8818:3000\n",
    );
    let run = project.import(&["-o", "unitgen.yaml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // The message as one line, without the report's wrapping.
    let message = run.stderr.replace("\n  │ ", " ");
    assert!(
        message.contains("the compose file has no `services:`: its services are at the top, as in compose's first file format, which docker compose no longer reads; indent them under `services:`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("docker-compose.yml:1:1"),
        "{}",
        run.stderr
    );
    assert!(!project.dir.join("unitgen.yaml").exists());
}

/// marzban's mariadb (its install script's compose file) probes every 3s
/// during its start period (`start_interval`, Docker 25): not carried over,
/// and the warning says what that costs, not only that the key is unknown.
#[test]
fn a_start_interval_warning_says_what_is_lost() {
    let project = Project::new(
        r#"services:
  mariadb:
    image: mariadb:lts
    healthcheck:
      test: ["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"]
      start_period: 10s
      start_interval: 3s
      interval: 10s
"#,
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:7:7: mariadb: healthcheck.start_interval: `3s` is not carried over: `docker run --health-start-interval` needs Docker 25 (API 1.44) and an older engine refuses the container; the probes during `start_period` come every `interval`, so the service is found healthy later\n"),
        "{}",
        run.stderr
    );
    assert!(
        project
            .template()
            .contains("      start_period: 10s\n      interval: 10s\n"),
        "{}",
        project.template()
    );
}

/// zabbix's services reserve CPUs (zabbix/zabbix-docker's compose files),
/// which `docker compose up` does not use (a swarm option, in compose's
/// setReservations): the warning said only "not carried over", as if the
/// template lost something compose gives; the memory reservation is kept.
#[test]
fn a_cpu_reservation_is_said_to_be_swarm_only() {
    let project = Project::new(
        r#"services:
  zabbix-server:
    image: zabbix/zabbix-server-mysql:alpine-4.0-latest
    deploy:
      resources:
        limits:
          cpus: '0.70'
          memory: 1G
        reservations:
          cpus: '0.5'
          memory: 512M
"#,
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:10:11: zabbix-server: deploy.resources.reservations.cpus: swarm only: `docker compose up` does not use it either\n"),
        "{}",
        run.stderr
    );
    let template = project.template();
    assert!(
        template.contains("    cpus: \"0.70\"\n    mem_limit: 1G\n"),
        "{template}"
    );
    assert!(template.contains("--memory-reservation=512M"), "{template}");
}

/// supabase's and jitsi's binds relabelled for SELinux (`:z`, `:Z`,
/// `ro,z`, `bind: {selinux: Z}`) and a volume mounted `nocopy`: the modes
/// were warned and dropped, so on an SELinux host the containers could not
/// read their own configuration. Docker takes each on `--volume`; a bind
/// `nocopy` is refused by Docker, so by compose, and so by import.
#[test]
fn selinux_relabelling_and_nocopy_are_carried_over() {
    let project = Project::new(
        r#"services:
  kong:
    image: kong:2.8.1
    volumes:
      - ./volumes/api/kong.yml:/home/kong/temp.yml:ro,z
      - ./volumes/functions:/home/deno/functions:Z
      - type: bind
        source: /srv/web
        target: /config
        bind:
          selinux: z
      - deno-cache:/root/.cache/deno:nocopy
      - type: volume
        source: cache
        target: /cache
        read_only: true
        volume:
          nocopy: true
volumes:
  deno-cache:
  cache:
"#,
    );
    let run = project.import_ok(&[]);
    assert!(!run.stderr.contains("mode `"), "{}", run.stderr);
    assert!(!run.stderr.contains("selinux"), "{}", run.stderr);
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    let dir = project.dir.display();
    for arg in [
        format!("--volume {dir}/volumes/api/kong.yml:/home/kong/temp.yml:ro,z \\"),
        format!("--volume {dir}/volumes/functions:/home/deno/functions:Z \\"),
        "--volume /srv/web:/config:z \\".to_string(),
        "--volume shop-default-deno-cache:/root/.cache/deno:nocopy \\".to_string(),
        "--volume shop-default-cache:/cache:ro,nocopy \\".to_string(),
    ] {
        assert!(render.stdout.contains(&arg), "{arg}: {}", render.stdout);
    }

    let refused =
        Project::new("services:\n  web:\n    image: nginx\n    volumes:\n      - ./x:/x:nocopy\n")
            .import(&[]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("mode `nocopy` is for volumes"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("docker-compose.yml:5:9"),
        "{}",
        refused.stderr
    );
}

/// What compose refuses to run, import refuses, saying where and what: an
/// unclosed `${B:-x` (was kept literally, with a warning), a `depends_on` of
/// a service the file does not have (was warned and left out), and a
/// service that depends on one that extends a base of an inactive profile:
/// compose merges the base's `profiles` in, so leaves the service out
/// (import kept it, as its own definition has no profiles).
#[test]
fn what_compose_refuses_is_refused_where_it_is_written() {
    for (compose, place, part) in [
        (
            "services:\n  web:\n    image: nginx\n    environment:\n      B: ${B:-x\n",
            "docker-compose.yml:5:10",
            "`${` without `}` in `${B:-x`",
        ),
        (
            "services:\n  web:\n    image: nginx\n    depends_on: [db]\n",
            "docker-compose.yml:4:18",
            "service `web` depends on `db`, which is not a service of this file",
        ),
        (
            "services:\n  debugger:\n    image: busybox\n    profiles: [debug]\n  tools:\n    extends: debugger\n    command: sleep 1d\n  web:\n    image: nginx\n    depends_on:\n      tools:\n        condition: service_started\n",
            "docker-compose.yml:11:7",
            "service `web` depends on `tools`, which `docker compose up` leaves out while profile `debug` is not active",
        ),
        // compose-go's validation: a top-level limit beside its deploy
        // counterpart must be the same (one left out of a limits block is
        // 0); import took the last of the two.
        (
            "services:\n  web:\n    image: nginx\n    pids_limit: 64\n    deploy:\n      resources:\n        limits:\n          pids: 50\n",
            "docker-compose.yml:4:17",
            "`pids_limit: 64` and `deploy.resources.limits.pids: 50` differ: compose refuses the file",
        ),
        (
            "services:\n  web:\n    image: nginx\n    mem_limit: 1g\n    deploy:\n      resources:\n        limits:\n          cpus: '0.5'\n",
            "docker-compose.yml:4:16",
            "`mem_limit: 1g` and `deploy.resources.limits` without `memory` (0) differ",
        ),
    ] {
        let run = Project::new(compose).import(&["-o", "unitgen.yaml"]);
        assert_eq!(run.code, 1, "{compose}: {}", run.stderr);
        let said = run.stderr.replace("\n  │ ", " ");
        assert!(said.contains(part), "{part} in {}", run.stderr);
        assert!(said.contains(place), "{place} in {}", run.stderr);
        assert!(!said.contains("imported"), "{}", run.stderr);
    }

    // The same limit said twice alike is fine, in any unit.
    let project = Project::new(
        "services:\n  web:\n    image: nginx\n    mem_limit: 1g\n    mem_reservation: 512m\n    cpus: 0.5\n    deploy:\n      resources:\n        limits: {memory: 1024M, cpus: '0.50'}\n        reservations: {memory: 512M}\n",
    );
    project.import_ok(&[]);

    // Without the dependent, the extending service is left out with its
    // base's profile, as compose leaves it out; `required: false` lets
    // compose skip a missing dependency, and import too.
    let project = Project::new(
        "services:\n  debugger:\n    image: busybox\n    profiles: [debug]\n  tools:\n    extends: debugger\n  web:\n    image: nginx\n    depends_on:\n      tools:\n        condition: service_started\n        required: false\n",
    );
    let run = project.import_ok(&[]);
    let template = project.template();
    assert!(!template.contains("\n  tools:"), "{template}");
    assert!(!template.contains("\n    depends_on"), "{template}");
    assert!(
        run.stderr.contains("web: depends_on: `tools` is not imported (not in this file, or left out with its profile) and `required: false`: left out, as compose leaves it"),
        "{}",
        run.stderr
    );
}

/// sentry's `environment:` passes `SENTRY_EVENT_RETENTION_DAYS:` (set in
/// .env) and `SENTRY_MAX_EXTERNAL_SOURCEMAP_SIZE:` and `OPENAI_API_KEY:`
/// (set nowhere) from compose's environment. Compose gives the container
/// the first and leaves the others unset; import gave them an empty value,
/// and the sourcemap size the `1M` another use's `${…:-1M}` defaults to.
#[test]
fn a_variable_passed_through_without_a_value_stays_unset() {
    let project = Project::new(
        r#"services:
  memcached:
    image: memcached:1.6.26-alpine
    command: ["-I", "${SENTRY_MAX_EXTERNAL_SOURCEMAP_SIZE:-1M}"]
  web:
    image: sentry:nightly
    environment:
      SENTRY_EVENT_RETENTION_DAYS:
      SENTRY_MAX_EXTERNAL_SOURCEMAP_SIZE:
      OPENAI_API_KEY:
"#,
    )
    .file(".env", "SENTRY_EVENT_RETENTION_DAYS=90\n");
    let run = project.import_ok(&[]);
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    assert!(
        render
            .stdout
            .contains("--env SENTRY_EVENT_RETENTION_DAYS=90 \\"),
        "{}",
        render.stdout
    );
    assert!(
        render.stdout.contains("memcached:1.6.26-alpine -I 1M"),
        "{}",
        render.stdout
    );
    for name in ["SENTRY_MAX_EXTERNAL_SOURCEMAP_SIZE", "OPENAI_API_KEY"] {
        assert!(
            !render.stdout.contains(&format!("--env {name}")),
            "{}",
            render.stdout
        );
        let warning = format!(
            "web: environment: `{name}` has no value, here nor in .env: compose passes it from the shell it runs in, and without one the container has no `{name}`; not carried over"
        );
        assert!(run.stderr.contains(&warning), "{warning} in {}", run.stderr);
    }
}

/// `stdin_open: true` with `tty: true` (a shell or REPL kept up, in many
/// compose files) became `--interactive --tty`: a unit's `docker run` has
/// no terminal, and Docker refused to start ("the input device is not a
/// TTY"). `--tty` alone gives what compose gives, a terminal whose reads
/// wait; `stdin_open` alone cannot be given and is said so.
#[test]
fn stdin_open_with_a_tty_is_a_tty_alone() {
    let project = Project::new(
        "services:\n  shell:\n    image: busybox\n    command: sh\n    stdin_open: true\n    tty: true\n  repl:\n    image: python:3\n    stdin_open: true\n",
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:9:5: repl: stdin_open: not carried over: compose keeps the container's stdin open"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("stdin_open").count(),
        1,
        "{}",
        run.stderr
    );
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    assert!(
        render.stdout.contains("    --tty \\\n    busybox sh\n"),
        "{}",
        render.stdout
    );
    assert!(
        !render.stdout.contains("--interactive"),
        "{}",
        render.stdout
    );
}

/// The monitoring stacks' `expose:` was warned as not needed and left out,
/// so the containers' config had no exposed ports where compose's had them
/// (what nginx-proxy and Traefik's Docker provider read for a port); an
/// IPv6 host address (element-web's `[::1]:8081:80`, a long-form `host_ip:
/// "::1"`) was refused and the port not published. Both reach `docker run`.
#[test]
fn expose_and_ipv6_host_addresses_reach_docker_run() {
    let project = Project::new(
        r#"services:
  prometheus:
    image: prom/prometheus
    expose:
      - 9090
      - "9091-9092"
  element:
    image: vectorim/element-web
    ports:
      - "[::1]:8081:80"
      - target: 8443
        published: "8444"
        host_ip: "::1"
"#,
    );
    let run = project.import_ok(&[]);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    for arg in [
        "--expose=9090 \\",
        "--expose=9091-9092 \\",
        r#"--publish "[::1]:8081:80" \"#,
        r#"--publish "[::1]:8444:8443" \"#,
    ] {
        assert!(render.stdout.contains(arg), "{arg}: {}", render.stdout);
    }
}

/// compose makes a service's file-backed `secrets` and `configs` binds, and
/// `volumes_from` that service mounts them too (docker inspect of compose's
/// worker showed them); import left them out of the worker.
#[test]
fn volumes_from_mounts_the_others_secrets_and_configs_too() {
    let project = Project::new(
        r#"services:
  web:
    image: nginx
    volumes: ["data:/data"]
    secrets: [api_key]
    configs: [{source: conf, target: /etc/app.ini}]
  worker:
    image: nginx
    volumes_from: [web]
volumes:
  data:
secrets:
  api_key:
    file: ./api_key.txt
configs:
  conf:
    file: ./app.ini
"#,
    )
    .file("api_key.txt", "k")
    .file("app.ini", "[x]");
    project.import_ok(&[]);
    let template = project.template();
    let dir = project.dir.to_str().unwrap();
    let worker = template.split("  worker:").nth(1).unwrap();
    for mount in [
        "data:/data".to_string(),
        format!("{dir}/api_key.txt:/run/secrets/api_key:ro"),
        format!("{dir}/app.ini:/etc/app.ini:ro"),
    ] {
        assert!(worker.contains(&mount), "{mount} not in\n{worker}");
    }
}

/// The OpenTelemetry demo passes a hundred `.env` values through bare
/// (`- FLAGD_HOST`): each became an instance value, as `${FLAGD_HOST}` does,
/// but each was also warned ("it is now the instance value…"), drowning the
/// few warnings that mattered. And what was said of one item of a list
/// (plausible's `- TOTP_VAULT_KEY`, set nowhere) pointed at the list's first.
#[test]
fn a_variable_passed_through_from_dotenv_is_carried_silently_and_warnings_point_at_their_item() {
    let project = Project::new(
        "services:\n  web:\n    image: nginx\n    environment:\n      - PORT=80\n      - FLAGD_HOST\n      - TOTP_VAULT_KEY\n    labels:\n      - ok=1\n      - \"bad label=2\"\n",
    )
    .file(".env", "FLAGD_HOST=flagd\n");
    let run = project.import_ok(&[]);
    assert!(!run.stderr.contains("FLAGD_HOST"), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "warning: docker-compose.yml:7:9: web: environment: `TOTP_VAULT_KEY` has no value, here nor in .env"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("warning: docker-compose.yml:10:9: web: labels: not carried over"),
        "{}",
        run.stderr
    );
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    assert!(
        render.stdout.contains("--env FLAGD_HOST=flagd \\"),
        "{}",
        render.stdout
    );
}

/// plausible's community edition publishes its port from a
/// `compose.override.yml`, which `docker compose up` merges over the
/// compose file it finds; import read the compose file alone (and only
/// warned), so the template published nothing. The override file is now
/// merged as compose merges it: mappings key by key, `command` and the
/// health test replaced, ports joined, environment by name, volumes by
/// target, `depends_on` joined, `!reset` and `!override` (compose 2.18).
/// Warnings about its keys point at it; the header names both files.
#[test]
fn the_override_file_beside_the_compose_file_is_merged_as_compose_up_merges_it() {
    let project = Project::new(
        "services:\n  web:\n    image: nginx:${TAG}\n    command: [nginx, -g, daemon off;]\n    ports: [\"8080:80\"]\n    environment:\n      A: \"1\"\n      B: \"2\"\n      P: ${P}\n    volumes: [\"./data:/data\", \"logs:/var/log/nginx\"]\n    depends_on: [db]\n    healthcheck:\n      test: [CMD, \"true\"]\n      interval: 10s\n    labels: [x=1]\n  db:\n    image: postgres:16\nvolumes:\n  logs:\n",
    )
    .file(
        "docker-compose.override.yml",
        "services:\n  web:\n    command: [nginx-debug, -g, daemon off;]\n    ports: [\"8443:443\"]\n    environment: [B=3, C=4]\n    volumes: [\"/srv/data:/data\"]\n    depends_on: {cache: {condition: service_started}}\n    healthcheck:\n      test: [CMD, \"false\"]\n    labels: !reset []\n  cache:\n    image: redis:7\n    build: ./cache\n",
    )
    .file(".env", "TAG=1.27\nP=x\\$HOME\n");
    // The fixture means to compose what the assertions below say (Debian's
    // docker-compose 1.29 merges override files as compose v2 does, but
    // reads no `!reset`: checked without it).
    if Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok()
    {
        let plain =
            Project::new(&fs::read_to_string(project.dir.join("docker-compose.yml")).unwrap())
                .file(
                    "docker-compose.override.yml",
                    &fs::read_to_string(project.dir.join("docker-compose.override.yml"))
                        .unwrap()
                        .replace("    labels: !reset []\n", ""),
                )
                .file(".env", "TAG=1.27\n")
                .file("cache/Dockerfile", "FROM redis:7\n");
        let out = Command::new("docker-compose")
            .args(["config"])
            .current_dir(&plain.dir)
            .output()
            .unwrap();
        let config = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for merged in [
            "    command:\n    - nginx-debug\n",
            "      cache:\n        condition: service_started\n      db:\n        condition: service_started\n",
            "      A: '1'\n      B: '3'\n      C: '4'\n",
            "      test:\n      - CMD\n      - \"false\"\n",
            "    - published: 8080\n      target: 80\n    - published: 8443\n      target: 443\n",
            "    - /srv/data:/data:rw\n    - logs:/var/log/nginx:rw\n",
        ] {
            assert!(config.contains(merged), "{merged} in\n{config}");
        }
    }
    let run = project.import_ok(&[]);
    let template = project.template();
    for merged in [
        "    command: [nginx-debug, -g, daemon off;]\n",
        "    ports: [\"8080:80\", \"8443:443\"]\n",
        "      A: \"1\"\n      B: \"3\"\n",
        "      C: \"4\"\n",
        "    volumes: [\"/srv/data:/data\", \"logs:/var/log/nginx\"]\n",
        "    depends_on: [db, cache]\n",
        "      test: [CMD, \"false\"]\n      interval: 10s\n",
    ] {
        assert!(template.contains(merged), "{merged} in\n{template}");
    }
    assert!(!template.contains("labels"), "{template}");
    assert!(
        template.starts_with("# Imported by `unitgen import` from docker-compose.yml, with\n# docker-compose.override.yml merged over it.\n"),
        "{template}"
    );
    assert!(
        run.stderr
            .contains("warning: docker-compose.override.yml:13: cache: build: unitgen runs images"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("warning: .env:2: variables: `P` uses `$HOME`, which compose takes from the shell it runs in"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("imported 3 services from docker-compose.yml + docker-compose.override.yml"),
        "{}",
        run.stderr
    );
    assert!(
        template.contains("# - docker-compose.override.yml:13: cache: build:"),
        "{template}"
    );
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    assert!(
        render.stdout.contains("--publish 8443:443"),
        "{}",
        render.stdout
    );
}

/// `-f a -f b`, as compose takes it: the files merged in order, and no
/// override file looked for (nor with `COMPOSE_FILE=a:b` in `.env`); a
/// fault in a later file is shown in it.
#[test]
fn files_given_with_f_are_merged_in_order_without_the_override_file() {
    let project = Project::new("services:\n  web:\n    image: nginx\n")
        .file(
            "base.yml",
            "services:\n  web:\n    image: nginx:1\n    environment: {MODE: base}\n",
        )
        .file(
            "prod.yml",
            "services:\n  web:\n    image: nginx:2\n    environment: {MODE: prod}\n",
        )
        .file(
            "docker-compose.override.yml",
            "services:\n  web:\n    ports: [\"80:80\"]\n",
        );
    let run = project.run(&["import", "-f", "base.yml", "-f", "prod.yml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("    image: nginx:2\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("      MODE: prod\n"), "{}", run.stdout);
    assert!(!run.stdout.contains("ports"), "{}", run.stdout);
    assert!(
        run.stdout.starts_with(
            "# Imported by `unitgen import` from base.yml, with prod.yml merged over it.\n"
        ),
        "{}",
        run.stdout
    );

    // Given no file, compose takes its files from `COMPOSE_FILE` in `.env`.
    let project = project.file(".env", "COMPOSE_FILE=base.yml:prod.yml\n");
    let run = project.run(&["import"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("    image: nginx:2\n"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("ports"), "{}", run.stdout);

    let project = project.file("bad.yml", "services:\n  web:\n    ports: 80\n");
    let run = project.run(&["import", "-f", "base.yml", "-f", "bad.yml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`ports` of service `web`: expected a list, found a number"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("[bad.yml:3:12]"), "{}", run.stderr);
    let run = project.run(&["import", "docker-compose.yml", "-f", "base.yml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
}

/// `include` was warned and its services left out. Now each included
/// project's services, networks and volumes are added, its relative paths
/// from its own folder; a service both define is refused as compose 2
/// refuses it, at the including file's definition; an include cycle too.
#[test]
fn included_projects_are_added_with_their_paths() {
    let project = Project::new(
        "include:\n  - db/compose.yaml\n  - path: cache/compose.yaml\n    env_file: cache/cache.env\nservices:\n  web:\n    image: nginx\n    depends_on: [db, cache]\n  copy:\n    extends: db\n    image: postgres:17\n",
    )
    .file(
        "db/compose.yaml",
        "services:\n  db:\n    image: postgres:16\n    volumes: [\"./pgdata:/var/lib/postgresql/data\", \"dbdata:/x\"]\n    secrets: [pw]\n    build: ./img\nvolumes:\n  dbdata:\nsecrets:\n  pw:\n    file: ./pw.txt\n",
    )
    .file(
        "cache/compose.yaml",
        "services:\n  cache:\n    image: redis:${REDIS_TAG:-7}\n",
    )
    .file("cache/cache.env", "REDIS_TAG=6\n")
    .file("db/pw.txt", "secret\n");
    let run = project.import_ok(&[]);
    let template = project.template();
    let dir = fs::canonicalize(&project.dir).unwrap();
    for line in [
        "  db:\n    image: postgres:16\n".to_string(),
        format!(
            "  db:\n    image: postgres:16\n    volumes:\n      - {0}/db/pgdata:/var/lib/postgresql/data\n      - dbdata:/x\n      - {0}/db/pw.txt:/run/secrets/pw:ro\n",
            dir.display()
        ),
        // A service may extend an included one (compose-go includes first).
        format!(
            "  copy:\n    image: postgres:17\n    volumes:\n      - {0}/db/pgdata:/var/lib/postgresql/data\n      - dbdata:/x\n      - {0}/db/pw.txt:/run/secrets/pw:ro\n",
            dir.display()
        ),
        // The entry's env_file gives the included file its values, as
        // compose gives them (the including project's `.env` has none).
        "  cache:\n    image: \"redis:{{ redis_tag }}\"\n".to_string(),
        "instances:\n  default:\n    redis_tag: 6\n".to_string(),
        "volumes:\n  dbdata: {}\n".to_string(),
        "# Imported by `unitgen import` from docker-compose.yml, including\n# db/compose.yaml, cache/compose.yaml.\n".to_string(),
    ] {
        assert!(template.contains(&line), "{line} in\n{template}");
    }
    assert!(!run.stderr.contains("include:"), "{}", run.stderr);
    let warning = "warning: db/compose.yaml:6: db: build: unitgen runs images, it does not build them: build ./db/img";
    assert!(run.stderr.contains(warning), "{warning} in\n{}", run.stderr);

    let conflict = project.file(
        "docker-compose.yml",
        "include: [db/compose.yaml]\nservices:\n  db:\n    image: mysql\n",
    );
    let run = conflict.import(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`services.db` is defined here and in the included db/compose.yaml")
            && run
                .stderr
                .contains("(\"services.db conflicts with imported resource\")"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("[docker-compose.yml:3:3]"),
        "{}",
        run.stderr
    );

    let cycle = conflict
        .file(
            "docker-compose.yml",
            "include: [db/compose.yaml]\nservices:\n  web:\n    image: nginx\n",
        )
        .file(
            "db/compose.yaml",
            "include: [../docker-compose.yml]\nservices:\n  db:\n    image: postgres\n",
        );
    let run = cycle.import(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`include`: docker-compose.yml includes this file already")
            && run.stderr.contains("(\"include cycle detected\")"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("[db/compose.yaml:1:11]"),
        "{}",
        run.stderr
    );

    let remote = cycle.file(
        "docker-compose.yml",
        "include: [\"oci://example.org/app:1\"]\nservices:\n  web:\n    image: nginx\n",
    );
    let run = remote.import(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("oci://example.org/app:1 is remote: import reads files only"),
        "{}",
        run.stderr
    );
}

/// bunkerweb's compose gives its network the subnet `10.20.30.0/24` and
/// names it again in `API_WHITELIST_IP`: the instance network gets another
/// subnet, so the scheduler is refused, and import said only that the
/// network was not carried over. The subnet is now warned at its place.
#[test]
fn a_subnet_given_by_hand_is_warned_as_not_kept() {
    let project = Project::new(
        "services:\n  web:\n    image: nginx\n    environment:\n      API_WHITELIST_IP: 10.20.30.0/24\n    networks: [universe]\nnetworks:\n  universe:\n    ipam:\n      config:\n        - subnet: 10.20.30.0/24\n",
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains(
            "warning: docker-compose.yml:11:19: networks.universe.ipam: subnet `10.20.30.0/24` not kept: the instance network's subnet is Docker's choice"
        ),
        "{}",
        run.stderr
    );
}

/// shlink's and zammad's services reach others through `links` alone:
/// compose starts the linked services first (links are dependencies, as
/// `depends_on` are), but import dropped the links as not needed for names,
/// and with them the order: nginx started before the PHP backend it proxies.
#[test]
fn links_stay_dependencies() {
    let project = Project::new(
        r#"services:
  nginx:
    image: nginx
    links: [php, "cache:memo"]
  php:
    image: php:8
    depends_on:
      db:
        restart: true
    links: [db, cache]
  db:
    image: postgres:16
  cache:
    image: redis:7
"#,
    );
    project.import_ok(&[]);
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    let unit = |name: &str| {
        let start = render
            .stdout
            .find(&format!("# ==> shop-default-{name}.service <=="))
            .unwrap();
        let rest = &render.stdout[start..];
        rest[..rest.find("[Service]").unwrap()].to_string()
    };
    let nginx = unit("nginx");
    assert!(
        nginx.contains("After=docker.service shop-default-network.service shop-default-php.service shop-default-cache.service"),
        "{nginx}"
    );
    let php = unit("php");
    assert!(
        php.contains("shop-default-db.service shop-default-cache.service"),
        "{php}"
    );
    assert!(php.contains("PartOf=shop-default-db.service"), "{php}");
}

/// nginx-proxy's acme-companion takes nginx-proxy's volumes
/// (`volumes_from`): compose starts nginx-proxy first, so a volume holds
/// what nginx-proxy's image put in it; the units started both at once.
#[test]
fn volumes_from_is_a_dependency() {
    let project = Project::new(
        "services:\n  proxy:\n    image: nginxproxy/nginx-proxy\n    volumes: [\"certs:/etc/nginx/certs\"]\n  acme:\n    image: nginxproxy/acme-companion\n    volumes_from: [\"proxy:rw\"]\nvolumes:\n  certs:\n",
    );
    project.import_ok(&[]);
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    let start = render
        .stdout
        .find("# ==> shop-default-acme.service <==")
        .unwrap();
    let acme = &render.stdout[start..];
    let acme = &acme[..acme.find("[Service]").unwrap()];
    assert!(
        acme.contains(
            "After=docker.service shop-default-network.service shop-default-proxy.service"
        ),
        "{acme}"
    );
}

/// invoiceninja mounts `./docker/app/public` in three services, authentik
/// `./media` in two, each with the same `env_file`: each was said relative
/// at every use, the same sentence again and again. Said once now, at the
/// first use; every use is still made absolute.
#[test]
fn a_relative_path_used_by_several_services_is_said_once() {
    let project = Project::new(
        "services:\n  server:\n    image: nginx\n    env_file: env\n    volumes: [\"./public:/srv/public\"]\n  app:\n    image: php:8\n    env_file: env\n    volumes: [\"./public:/var/www/public:ro\"]\n",
    )
    .file("env", "A=1\n");
    let run = project.import_ok(&[]);
    for path in ["`./public`", "`env`"] {
        assert_eq!(
            run.stderr
                .matches(&format!("{path} is relative to the compose file"))
                .count(),
            1,
            "{}",
            run.stderr
        );
    }
    assert!(
        run.stderr.contains(
            "warning: docker-compose.yml:5:15: server: volumes: `./public` is relative to the compose file"
        ),
        "{}",
        run.stderr
    );
    let template = project.template();
    let dir = project.dir.display();
    assert!(
        template.contains(&format!("{dir}/public:/var/www/public:ro")),
        "{template}"
    );
}

/// Windmill's indexer (`deploy.replicas: 0 # set to 1 to enable`) and a
/// `scale: 0` service: `docker compose up` runs no container of them, and a
/// service depending on one does not wait for it. Both ran in every instance.
#[test]
fn a_service_scaled_to_zero_is_left_out() {
    let project = Project::new(
        r#"services:
  db:
    image: postgres:16
  windmill_indexer:
    image: ghcr.io/windmill-labs/windmill:main
    deploy:
      replicas: 0 # set to 1 to enable full-text job and log search
    depends_on: [db]
  spare:
    image: nginx
    scale: 0
  web:
    image: nginx
    depends_on:
      db:
        condition: service_started
      spare:
        condition: service_healthy
"#,
    );
    let run = project.import_ok(&[]);
    for expected in [
        "warning: docker-compose.yml:7:7: windmill_indexer: deploy.replicas: `deploy.replicas: 0`: left out, as `docker compose up` runs no container of it;",
        "warning: docker-compose.yml:11:5: spare: scale: `scale: 0`: left out,",
        "warning: docker-compose.yml:17:7: web: depends_on: `spare` is left out (scaled to 0): compose starts none of it and does not wait for it, so neither does this service\n",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
    let template = project.template();
    let services = &template[template.find("services:").unwrap()..];
    assert!(
        !services.contains("windmill") && !services.contains("spare"),
        "{template}"
    );
    assert!(services.contains("depends_on: [db]"), "{template}");
    assert_eq!(project.run(&["validate"]).code, 0);

    // Sharing its network is impossible: refused, saying why.
    let project = Project::new(
        "services:\n  vpn:\n    image: gluetun\n    scale: 0\n  app:\n    image: nginx\n    network_mode: service:vpn\n",
    );
    let run = project.import(&["-o", "unitgen.yaml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`network_mode` of service `app`: `vpn` is scaled to 0"),
        "{}",
        run.stderr
    );
}

/// compose-anything's debian-dind: `profiles: [${COMPOSE_PROFILES:-}]`.
/// Compose replaces variables in profile names as everywhere else, so with
/// `COMPOSE_PROFILES=gpu` in `.env` both services run; the profile was
/// compared as the text `${COMPOSE_PROFILES:-}` and `dind` left out.
#[test]
fn profile_names_are_interpolated_as_compose_does() {
    let project = Project::new(
        r#"services:
  dind:
    image: alexsuntop/debian-dind:0.1.2
    profiles:
      - ${COMPOSE_PROFILES:-}
  dind-gpu:
    image: alexsuntop/debian-dind:0.1.2-gpu
    profiles:
      - gpu
"#,
    )
    .file(".env", "COMPOSE_PROFILES=gpu\n");
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:4:5: dind: profiles: unitgen has no profiles: profile `gpu` is active, so this service runs in every instance\n"),
        "{}",
        run.stderr
    );
    let template = project.template();
    let services = &template[template.find("services:").unwrap()..];
    assert!(
        services.contains("\n  dind:\n") && services.contains("\n  dind-gpu:\n"),
        "{template}"
    );
}

/// A config's `mode` and `uid` (prometheus set-ups, wazuh's secrets) are
/// warned at their own lines: both were warned at the item's first line,
/// `source:`, two and three lines above.
#[test]
fn a_file_mounts_owner_and_mode_are_warned_where_written() {
    let project = Project::new(
        r#"services:
  prom:
    image: prom/prometheus
    configs:
      - source: prom_cfg
        target: /etc/prometheus/prometheus.yml
        mode: 0440
        uid: "65534"
configs:
  prom_cfg:
    file: ./prom.yml
"#,
    )
    .file("prom.yml", "global: {}\n");
    let run = project.import_ok(&[]);
    for expected in [
        "warning: docker-compose.yml:7:9: prom: configs.mode: not carried over: the mount keeps the host file's owner and mode\n",
        "warning: docker-compose.yml:8:9: prom: configs.uid: not carried over: the mount keeps the host file's owner and mode\n",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
}

/// Round 7. A long-syntax tmpfs `mode` is a YAML integer to compose, handed
/// to Docker as the mode's bits: `1777` (decimal) is 0o3361 under compose
/// (checked through Docker's API: `d-wxrwS--t`), `0o1777` and `01777` are
/// the sticky, world-writable 1777. Import wrote `mode=1777` for the first
/// (1777 to the kernel, which reads it as octal) and `mode=0o1777` for the
/// second, which the kernel refuses.
#[test]
fn a_tmpfs_mode_is_the_number_compose_gives_docker() {
    let project = Project::new(
        "services:\n  web:\n    image: nginx\n    volumes:\n      - type: tmpfs\n        target: /a\n        tmpfs: {mode: 1777}\n      - type: tmpfs\n        target: /b\n        tmpfs: {mode: 0o1777}\n      - type: tmpfs\n        target: /c\n        tmpfs: {mode: 01777, size: 64m}\n      - type: tmpfs\n        target: /d\n        tmpfs: {mode: 0o77777}\n",
    );
    let run = project.import_ok(&[]);
    assert!(
        project
            .template()
            .contains("tmpfs: [\"/a:mode=3361\", \"/b:mode=1777\", \"/c:size=64m,mode=1777\", /d]"),
        "{}",
        project.template()
    );
    for warning in [
        "warning: docker-compose.yml:7:23: web: volumes.tmpfs.mode: `1777` is a decimal number to compose, which gives Docker the mode 0o3361: carried over as that; write `0o1777` for the mode 1777 reads as\n",
        "warning: docker-compose.yml:16:23: web: volumes.tmpfs.mode: `0o77777` is not a file mode compose takes (a number up to 0o7777): not carried over\n",
    ] {
        assert!(run.stderr.contains(warning), "{warning} in\n{}", run.stderr);
    }
    assert_eq!(
        run.stderr.matches("tmpfs.mode").count(),
        2,
        "{}",
        run.stderr
    );
}

/// Round 7. Compose mounts a long-syntax bind with a `bind:` block through
/// Docker's mount API unless the block says `create_host_path: true`
/// (docker/compose `requireMountAPI`), and Docker then fails the container
/// on a missing host path, where `--volume` creates an empty folder (seen
/// here: "bind source path does not exist"). Import warned
/// `create_host_path: false` as not carried over and dropped
/// `bind.recursive` without a word. Round 8: with `create_host_path: true`
/// and a propagation, compose's mount asks Docker to create the path
/// (`CreateMountpoint`); it was `--mount`, failing where compose creates.
#[test]
fn a_bind_compose_mounts_through_the_mount_api_fails_on_a_missing_path() {
    let project = Project::new(
        "services:\n  web:\n    image: nginx\n    volumes:\n      - type: bind\n        source: ./conf\n        target: /conf\n        read_only: true\n        bind: {create_host_path: false}\n      - type: bind\n        source: ./made\n        target: /made\n        bind: {create_host_path: true}\n      - type: bind\n        source: ./plain\n        target: /plain\n      - type: bind\n        source: /srv\n        target: /srv\n        bind: {selinux: z}\n      - type: bind\n        source: /opt\n        target: /opt\n        bind: {create_host_path: true, recursive: readonly}\n      - type: bind\n        source: /mnt/disks\n        target: /disks\n        bind: {create_host_path: true, propagation: rslave}\n      - type: bind\n        source: /mnt/usb\n        target: /usb\n        bind: {propagation: rshared}\n",
    );
    let run = project.import_ok(&[]);
    let dir = fs::canonicalize(&project.dir).unwrap();
    let dir = dir.display();
    let template = project.template();
    for line in [
        format!("      - {dir}/made:/made\n"),
        format!("      - {dir}/plain:/plain\n"),
        format!("      - --mount=type=bind,source={dir}/conf,target=/conf,readonly\n"),
        "      - /srv:/srv:z\n".to_string(),
        // `create_host_path: true`: compose's mount creates the path
        // (a propagation or `recursive` beside it changes nothing there).
        "      - /opt:/opt\n".to_string(),
        "      - /mnt/disks:/disks:rslave\n".to_string(),
        "      - --mount=type=bind,source=/mnt/usb,target=/usb,bind-propagation=rshared\n"
            .to_string(),
    ] {
        assert!(template.contains(&line), "{line} in\n{template}");
    }
    for warning in [
        "warning: docker-compose.yml:17:9: web: volumes: `/srv:/srv:z` is mounted with `--volume`, which creates the host path when it is missing; compose's mount API fails the start then (its `bind:` options), and `--mount` cannot take this path or SELinux relabelling\n",
        "warning: docker-compose.yml:24:40: web: volumes.bind.recursive: `readonly` is not carried over: unitgen binds with a propagation and SELinux relabelling only\n",
    ] {
        assert!(run.stderr.contains(warning), "{warning} in\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("create_host_path"), "{}", run.stderr);
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    assert!(
        render.stdout.contains(&format!(
            "--mount=type=bind,source={dir}/conf,target=/conf,readonly \\"
        )),
        "{}",
        render.stdout
    );
}

/// Round 7. An included project's own `.env` gives its files' variables
/// their values where the including project's `.env` gives none (compose-go
/// `ApplyInclude`: the including environment merged with the included
/// one, its own values kept); import warned and left them empty. A use of
/// such a variable in the including project's own files, which compose
/// leaves unset, is warned (an instance has one value for both). An
/// `include` path starting with `~` is in the home folder, as compose-go
/// resolves it; an entry's `env_file` that is missing makes compose refuse
/// the file.
#[test]
fn an_included_project_takes_its_own_dotenv_values() {
    let home = TempDir::new().unwrap();
    fs::create_dir_all(home.path().join("stacks/mail")).unwrap();
    fs::write(
        home.path().join("stacks/mail/compose.yaml"),
        "services:\n  mail:\n    image: mailpit:${MAIL_TAG:-1}\n",
    )
    .unwrap();
    let project = Project::new(
        "include:\n  - db/compose.yaml\n  - ~/stacks/mail/compose.yaml\nservices:\n  web:\n    image: nginx:${TAG}\n  tools:\n    image: busybox:${PG_TAG}\n",
    )
    .file(".env", "TAG=1.27\n")
    .file(
        "db/compose.yaml",
        "services:\n  db:\n    image: postgres:${PG_TAG}-${TAG}\n",
    )
    .file("db/.env", "PG_TAG=16\nTAG=ignored\n");
    let out = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["import", "docker-compose.yml", "-o", "unitgen.yaml"])
        .env("HOME", home.path())
        .current_dir(&project.dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let template = project.template();
    for line in [
        "    image: \"postgres:{{ pg_tag }}-{{ tag }}\"\n",
        "    image: \"mailpit:{{ mail_tag }}\"\n",
        "instances:\n  default:\n    tag: 1.27\n    pg_tag: 16\n    mail_tag: 1\n",
    ] {
        assert!(template.contains(line), "{line} in\n{template}");
    }
    assert!(!stderr.contains("include:"), "{stderr}");
    // This project's own files get no value from db/.env under compose.
    assert!(
        stderr.contains("warning: docker-compose.yml:8:12: tools: variables: `${PG_TAG}` has its value from db/.env, which compose gives to the included project's files only: here compose leaves it unset (empty, or its default); the instance value `pg_tag` serves both\n"),
        "{stderr}"
    );

    let missing = project.file(
        "docker-compose.yml",
        "include:\n  - path: db/compose.yaml\n    env_file: db/missing.env\nservices: {}\n",
    );
    let run = missing.import(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`include`: cannot read its env_file db/missing.env"),
        "{}",
        run.stderr
    );
}

/// Round 8. The lines of an included project's `.env` that compose
/// completes from the shell (`$HOME`, a bare `NAME`) were not warned, where
/// the project's own `.env`'s are; and its `${VAR}` of a variable the
/// including project's `.env` sets was empty, where compose-go's dotenv
/// looks the including values up first (`ApplyInclude`'s lookup).
#[test]
fn an_included_projects_dotenv_is_read_as_compose_reads_it() {
    let project = Project::new(
        "include:\n  - db/compose.yaml\nservices:\n  web:\n    image: nginx:${TAG}\n",
    )
    .file(".env", "TAG=1.27\n")
    .file(
        "db/compose.yaml",
        "services:\n  db:\n    image: postgres:16\n    environment: [\"URL=${DB_URL}\", \"DATA=${DATA_DIR}\", \"TZ=${TZ}\"]\n",
    )
    .file(
        "db/.env",
        "# from the including project\nDB_URL=postgres://db/${TAG}\nDATA_DIR=$HOME/data\nTZ\n",
    );
    let run = project.import_ok(&[]);
    let template = project.template();
    assert!(
        template.contains("    db_url: postgres://db/1.27\n"),
        "{template}"
    );
    for warning in [
        "warning: db/.env:3: variables: `DATA_DIR` uses `$HOME`, which compose takes from the shell it runs in; import does not read the shell, so it is empty in `DATA_DIR`'s value\n",
        "warning: db/.env:4: variables: `TZ` takes its value from the shell compose runs in, which import does not read: it is not set\n",
    ] {
        assert!(run.stderr.contains(warning), "{warning} in\n{}", run.stderr);
    }
    // `${TAG}` is the including project's: no shell in it.
    assert!(!run.stderr.contains("db/.env:2"), "{}", run.stderr);
}

/// Round 8. A tag compose's YAML reader (go-yaml v3) does not know
/// (`!custom`, `!!python/str`, `!`) it ignores, and the scalar is the text
/// written: `!custom ~` the text `~`, where import read a null (the
/// variable left out); `!!int "12"` is the number 12, where import kept
/// the quotes in the value; `!!null x` compose refuses, import read a null.
#[test]
fn yaml_tags_are_read_as_compose_reads_them() {
    let project = Project::new(concat!(
        "services:\n  web:\n    image: !custom nginx:1.27\n    environment:\n",
        "      TILDE: !custom ~\n      EMPTY: !custom\n      SWITCH: !custom true\n",
        "      QUOTED: !!int \"12\"\n      RATIO: !!float \"1.50\"\n      VERSION: !custom 1.10\n",
        "      OCTAL: !!python/str 010\n      BARE: ! 12\n",
        "    command: !!python/tuple [echo, hi]\n    labels: !custom {a: b}\n",
    ));
    let run = project.import_ok(&[]);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let template = project.template();
    assert!(
        template.contains(concat!(
            "    image: nginx:1.27\n    environment:\n",
            "      TILDE: \"~\"\n      EMPTY: \"\"\n      SWITCH: \"true\"\n",
            "      QUOTED: 12\n      RATIO: 1.5\n      VERSION: \"1.10\"\n",
            "      OCTAL: \"010\"\n      BARE: \"12\"\n",
            "    command: [echo, hi]\n    labels:\n      a: b\n",
        )),
        "{template}"
    );
    for (value, message) in [
        ("!!null x", "`x` is not a null, which its tag `!!null` says"),
        (
            "!!binary aGk=",
            "a `!!binary` value (base64, which compose decodes)",
        ),
    ] {
        fs::write(
            project.dir.join("docker-compose.yml"),
            format!("services:\n  web:\n    image: nginx\n    environment:\n      E: {value}\n"),
        )
        .unwrap();
        let run = project.import(&[]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.contains(message), "{message} in\n{}", run.stderr);
        assert!(
            run.stderr.contains("docker-compose.yml:5:"),
            "{}",
            run.stderr
        );
    }
}

/// Round 8. compose interpolates every value as it loads the file, and
/// refuses it at a `${…}` it cannot read wherever it is: mayan's
/// `${MAYAN_TRAEFIK_RABBITMQ_ENABLE;-false}` sits in a service of an
/// inactive profile, which import left out without a word.
#[test]
fn an_invalid_interpolation_anywhere_is_refused() {
    for (compose, place, path) in [
        (
            "services:\n  web:\n    image: nginx\n  queue:\n    image: rabbitmq\n    profiles: [rabbitmq]\n    labels:\n      - \"traefik.enable=${ENABLE;-false}\"\n",
            "docker-compose.yml:8:9",
            "`services.queue.labels`: `${ENABLE;-false}`",
        ),
        (
            "x-env: &env\n  A: ${A:-x\nservices:\n  web:\n    image: nginx\n",
            "docker-compose.yml:2:6",
            "`x-env.A`: `${` without `}`",
        ),
    ] {
        let project = Project::new(compose);
        let run = project.import(&[]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.contains(path), "{path} in\n{}", run.stderr);
        assert!(run.stderr.contains(place), "{place} in\n{}", run.stderr);
        assert_eq!(run.stderr.matches(" × ").count(), 1, "{}", run.stderr);
    }
}

/// Round 8. `cpu_rt_runtime` and `cpu_rt_period` (microseconds, or a
/// duration compose gives Docker in microseconds) were warned as keys
/// unitgen has not, so the container ran without compose's real-time CPU
/// budget: they are `--cpu-rt-runtime` and `--cpu-rt-period` now.
#[test]
fn realtime_cpu_limits_are_docker_run_flags() {
    let project = Project::new(
        "services:\n  audio:\n    image: pipewire\n    cpu_rt_runtime: 400ms\n    cpu_rt_period: 1000000\n  bad:\n    image: busybox\n    cpu_rt_runtime: soon\n",
    );
    let run = project.import_ok(&[]);
    let template = project.template();
    assert!(
        template.contains("    docker_args: [--cpu-rt-runtime=400000, --cpu-rt-period=1000000]\n")
            || template
                .contains("      - --cpu-rt-runtime=400000\n      - --cpu-rt-period=1000000\n"),
        "{template}"
    );
    assert!(
        run.stderr.contains("warning: docker-compose.yml:8:21: bad: cpu_rt_runtime: not carried over: `soon` is not a duration"),
        "{}",
        run.stderr
    );
}

/// Round 7. `docker compose up` in a folder with no compose file takes the
/// closest one in the folders above (compose-go `WithDefaultConfigPath`),
/// with its override file and `.env`; import said "no compose file here".
#[test]
fn import_finds_the_compose_file_in_a_folder_above() {
    let project = Project::new("services:\n  web:\n    image: nginx:${TAG}\n")
        .file(".env", "TAG=1.27\n")
        .file(
            "docker-compose.override.yml",
            "services:\n  web:\n    ports: [\"8080:80\"]\n",
        );
    let below = project.dir.join("src/app");
    fs::create_dir_all(&below).unwrap();
    let run = unitgen(&below, &["import"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for line in ["ports: [\"8080:80\"]", "    tag: 1.27\n", "app: shop\n"] {
        assert!(run.stdout.contains(line), "{line} in\n{}", run.stdout);
    }
    assert!(
        run.stderr.contains("from ../../docker-compose.yml"),
        "{}",
        run.stderr
    );
}

/// Round 7. A key a `<<: *anchor` merge (or an alias) brings into a service
/// is warned where it is written, at the anchor, once per service that
/// uses it; it pointed at the alias, where there is nothing to change.
/// An empty profile name read "profile `` is not active".
#[test]
fn warnings_point_where_an_anchor_writes_the_key() {
    let project = Project::new(
        "x-common: &common\n  image: nginx\n  container_name: foo\n\nservices:\n  web:\n    <<: *common\n  api:\n    <<: *common\n    container_name: bar\n  tools:\n    image: busybox\n    profiles: [\"\"]\n",
    );
    let run = project.import_ok(&[]);
    for warning in [
        "warning: docker-compose.yml:3:3: web: container_name: unitgen names containers itself",
        "warning: docker-compose.yml:10:5: api: container_name: unitgen names containers itself",
        "warning: docker-compose.yml:13:5: tools: profiles: unitgen has no profiles: profile `\"\"` (the empty name) is active, so this service runs in every instance\n",
    ] {
        assert!(run.stderr.contains(warning), "{warning} in\n{}", run.stderr);
    }
}

/// Round 13, private-gpt: its default mode's services are in profile `""`
/// (beside `ollama-cpu`, …), its other modes in named profiles only. Plain
/// `docker compose up` runs the first: compose-go's `WithDefaultProfiles`
/// splits an unset `COMPOSE_PROFILES` at commas, which gives the empty
/// name. Import left them out (the app had no services) unless `.env` set
/// `COMPOSE_PROFILES=`. A profile given replaces `COMPOSE_PROFILES` (and so
/// the empty name), as compose's `--profile` does; names are trimmed.
#[test]
fn the_empty_profile_is_active_unless_a_profile_is_given() {
    let project = Project::new(
        r#"services:
  private-gpt-ollama:
    image: zylonai/private-gpt:0.6.2-ollama
    profiles: ["", ollama-cpu, ollama-cuda]
    depends_on: [ollama]
  private-gpt-llamacpp-cpu:
    image: zylonai/private-gpt:0.6.2-llamacpp-cpu
    profiles: [llamacpp-cpu]
  ollama:
    image: traefik:v2.10
    profiles: ["", ollama-cpu, ollama-cuda]
  debug:
    image: busybox
    profiles: [debug]
"#,
    );
    let services = |template: &str| {
        [
            "private-gpt-ollama",
            "private-gpt-llamacpp-cpu",
            "ollama",
            "debug",
        ]
        .into_iter()
        .filter(|s| template.contains(&format!("\n  {s}:\n")))
        .collect::<Vec<_>>()
    };
    let run = project.import_ok(&[]);
    assert_eq!(
        services(&project.template()),
        ["private-gpt-ollama", "ollama"],
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("warning: docker-compose.yml:4:5: private-gpt-ollama: profiles: unitgen has no profiles: profile `\"\"` (the empty name) is active, so this service runs in every instance\n"),
        "{}",
        run.stderr
    );

    project.import_ok(&["--force", "--profile", "llamacpp-cpu"]);
    assert_eq!(services(&project.template()), ["private-gpt-llamacpp-cpu"]);

    let project = project.file(".env", "COMPOSE_PROFILES=ollama-cpu, debug\n");
    project.import_ok(&["--force"]);
    assert_eq!(
        services(&project.template()),
        ["private-gpt-ollama", "ollama", "debug"]
    );
    project.import_ok(&["--force", "--profile", "llamacpp-cpu"]);
    assert_eq!(services(&project.template()), ["private-gpt-llamacpp-cpu"]);
}

/// Round 7. Compose waits for a `service_started` dependency (the list
/// form's too) only until its container has started
/// (docker/compose `shouldWaitForDependency`); a unit's start waits until a
/// dependency with a healthcheck is healthy, and until a oneshot has
/// completed. Import said nothing of the later start; now each such
/// dependency is warned at its name (not one whose healthcheck is
/// disabled, nor one awaited `service_healthy`).
#[test]
fn a_dependency_awaited_longer_than_compose_waits_is_warned() {
    let project = Project::new(
        "services:\n  db:\n    image: postgres\n    healthcheck: {test: [CMD, pg_isready], interval: 5s}\n  cache:\n    image: redis\n    healthcheck: {disable: true}\n  init:\n    image: busybox\n  migrate:\n    image: busybox\n    depends_on:\n      init: {condition: service_completed_successfully}\n  web:\n    image: nginx\n    depends_on: [db, cache, init]\n  worker:\n    image: nginx\n    depends_on:\n      db: {condition: service_healthy}\n      cache: {condition: service_started}\n",
    );
    let run = project.import_ok(&[]);
    for warning in [
        "warning: docker-compose.yml:16:18: web: depends_on: `db` has a healthcheck: a unit waits until it is healthy (or its start failed) before starting this service, where compose starts this service once `db` has started\n",
        "warning: docker-compose.yml:16:29: web: depends_on: `init` runs to completion before this service starts (another service waits for it to complete, so it is a oneshot); compose starts this service once `init` has started\n",
    ] {
        assert!(run.stderr.contains(warning), "{warning} in\n{}", run.stderr);
    }
    assert_eq!(
        run.stderr.matches("depends_on").count(),
        2,
        "{}",
        run.stderr
    );
}

/// Round 7. influxdata's sandbox writes `build.args` as one string
/// (`INFLUXDB_TAG:${INFLUXDB_TAG}`), which compose refuses as it loads the
/// file (`args` is a map or a list); import warned only that it does not
/// build. And sonarqube's network `dual`, which no service joins while
/// `NETWORK_TYPE` is unset (`networks: [${NETWORK_TYPE:-ipv4}]`), had its
/// `ipam` subnet warned as not kept, though compose creates no such
/// network.
#[test]
fn build_args_compose_refuses_are_refused_and_unjoined_networks_are_not_warned() {
    let project = Project::new(
        "services:\n  influxdb:\n    build:\n      context: ./images/influxdb/\n      args:\n        INFLUXDB_TAG:${INFLUXDB_TAG}\n    image: influxdb\n",
    );
    let run = project.import(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`build.args` of service `influxdb` is a string, where compose takes a map")
            && run.stderr.contains("[docker-compose.yml:6:9]"),
        "{}",
        run.stderr
    );

    let project = Project::new(
        "services:\n  db:\n    image: postgres:17\n    networks:\n      - ${NETWORK_TYPE:-ipv4}\nnetworks:\n  ipv4:\n    driver: bridge\n    ipam:\n      config:\n        - subnet: 10.9.0.0/24\n  dual:\n    enable_ipv6: true\n    ipam:\n      config:\n        - subnet: \"192.168.2.0/24\"\n",
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr
            .contains("networks.ipv4.ipam: subnet `10.9.0.0/24` not kept"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("192.168.2.0/24"), "{}", run.stderr);

    // pterodactyl's and owncloud's `default` network with a subnet (and
    // nextcloud AIO's MTU): the instance network is the default one, so
    // nothing compose kept apart is joined; its settings are not kept.
    let project = Project::new(
        "services:
  web:
    image: nginx
networks:
  default:
    driver_opts:
      com.docker.network.driver.mtu: 1440
    ipam:
      config:
        - subnet: 172.20.0.0/16
",
    );
    let run = project.import_ok(&[]);
    for warning in [
        "warning: docker-compose.yml:6:5: networks.default.driver_opts: not carried over: the instance network is made with Docker's defaults\n",
        "warning: docker-compose.yml:10:19: networks.default.ipam: subnet `172.20.0.0/16` not kept",
    ] {
        assert!(run.stderr.contains(warning), "{warning} in\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("separate networks"), "{}", run.stderr);
}

/// Round 9. `label_file` (compose 2.32) was warned as a key unitgen has
/// not, and the container lost the labels compose gives it: compose reads
/// each file as a `.env` when it loads the project (`${VAR}` of the labels
/// read before), later files over earlier ones, and `labels` over all.
/// Import reads them as compose does; a missing file is refused, as compose
/// refuses the project.
#[test]
fn label_files_are_read_as_compose_reads_them() {
    let project = Project::new(concat!(
        "services:\n  web:\n    image: nginx:1.27\n",
        "    labels:\n      - tier=from-labels\n",
        "    label_file: [./a.labels, labels/b.labels]\n",
        "  base:\n    image: nginx:1.27\n    label_file: ./a.labels\n",
        "  child:\n    extends: {file: sub/base.yml, service: base}\n",
    ))
    .file(
        "a.labels",
        "# shared\ntier=from-file\nteam=\"web {{ x }}\"\nurl=${team}/a\n",
    )
    .file("labels/b.labels", "team=ops\nrole='$x'\n")
    .file(
        "sub/base.yml",
        "services:\n  base:\n    image: busybox\n    label_file: own.labels\n",
    )
    .file("sub/own.labels", "from=sub\n");
    let run = project.import_ok(&[]);
    assert!(!run.stderr.contains("label_file"), "{}", run.stderr);
    let template = project.template();
    assert!(
        template.contains(concat!(
            "    labels:\n      tier: from-labels\n      team: ops\n",
            "      url: \"{% raw %}web {{ x }}/a{% endraw %}\"\n      role: $x\n",
        )),
        "{template}"
    );
    assert!(template.contains("      from: sub\n"), "{template}");
    // What the container is given.
    let units = project
        .run(&["render", "default", "-f", "unitgen.yaml"])
        .stdout;
    for label in [
        "--label tier=from-labels",
        "--label team=ops",
        "--label \"url=web {{ x }}/a\"",
        "--label role=$$x",
        "--label tier=from-file",
        "--label from=sub",
    ] {
        assert!(units.contains(label), "{label} in\n{units}");
    }
    // The long form (compose-go's LabelFile): `required: false` skips a
    // missing file; `format: raw` takes each value as written.
    fs::write(
        project.dir.join("docker-compose.yml"),
        concat!(
            "services:\n  web:\n    image: nginx:1.27\n    label_file:\n",
            "      - ./a.labels\n      - {path: ./gone.labels, required: false}\n",
            "      - {path: ./raw.labels, format: raw}\n",
        ),
    )
    .unwrap();
    fs::write(
        project.dir.join("raw.labels"),
        "quoted=\"as is\" #kept\ntier\n",
    )
    .unwrap();
    let run = project.import_ok(&["--force"]);
    assert!(!run.stderr.contains("label"), "{}", run.stderr);
    let template = project.template();
    assert!(
        template.contains("      tier: from-file\n")
            && template.contains("      quoted: \"\\\"as is\\\" #kept\"\n"),
        "{template}"
    );
    fs::write(
        project.dir.join("docker-compose.yml"),
        concat!(
            "services:\n  web:\n    image: nginx:1.27\n",
            "    labels:\n      - tier=from-labels\n",
            "    label_file: [./a.labels, labels/b.labels]\n",
        ),
    )
    .unwrap();
    fs::remove_file(project.dir.join("labels/b.labels")).unwrap();
    let run = project.import(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("labels/b.labels") && run.stderr.contains("docker-compose.yml:6:"),
        "{}",
        run.stderr
    );
}

/// Round 9. `env_file` with `format: raw` was warned as `env_file.format:
/// not carried over`, saying nothing of what differs, and its lines were
/// judged as a `.env`'s (`$HOME` "empty there", where compose gives the
/// text `$HOME`). compose reads such a file as `docker run --env-file` does;
/// the unit reads compose's default format: each line the two read apart
/// is said, with the value compose gives; lines they read alike are not. A
/// format compose does not know is refused, as compose refuses it.
#[test]
fn a_raw_env_file_is_said_where_the_unit_reads_it_otherwise() {
    let project = Project::new(concat!(
        "services:\n  web:\n    image: nginx:1.27\n",
        "    env_file:\n      - path: ./raw.env\n        format: raw\n",
    ))
    .file(
        "raw.env",
        "PLAIN=value\nURL=http://x/?a=b\nHASH=$2y$10$abc\nQUOTED=\"x\"\nTAIL=a #b\n",
    );
    let run = project.import_ok(&[]);
    for line in ["raw.env:1:", "raw.env:2:", "env_file.format"] {
        assert!(!run.stderr.contains(line), "{line} in\n{}", run.stderr);
    }
    for said in [
        "raw.env:3: `HASH` is `$2y$10$abc` to compose",
        "raw.env:4: `QUOTED` is `\"x\"` to compose, which reads a `format: raw` file as written; the unit reads env files in compose's default format, which gives `x`; in single quotes (`QUOTED='\"x\"'`)",
        "raw.env:5: `TAIL` is `a #b` to compose",
    ] {
        assert!(run.stderr.contains(said), "{said} in\n{}", run.stderr);
    }
    fs::write(
        project.dir.join("docker-compose.yml"),
        "services:\n  web:\n    image: nginx\n    env_file:\n      - path: ./raw.env\n        format: json\n",
    )
    .unwrap();
    let run = project.import(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("`env_file.format` `json`")
            && run.stderr.contains("docker-compose.yml:6:17"),
        "{}",
        run.stderr
    );
}

/// Round 9. A service's per-network `mac_address` and `link_local_ips`
/// were warned and left out, and `priority`/`gw_priority` warned too. The
/// instance network is the service's only one: it gets what compose gives
/// the main network (highest `priority`, then name), as compose on an
/// engine before API 1.44 (Debian's 20.10) sets the main network's MAC
/// address as the container's; another network's are said. A main
/// network's MAC address other than the service's own is refused, as
/// compose refuses it.
#[test]
fn the_main_networks_addresses_are_the_instance_networks() {
    let project = Project::new(concat!(
        "services:\n  web:\n    image: nginx:1.27\n    networks:\n",
        "      back:\n        mac_address: 02:42:ac:11:00:01\n",
        "      front:\n        priority: 10\n        gw_priority: 1\n",
        "        mac_address: 02:42:ac:11:65:43\n        link_local_ips: [169.254.8.8]\n",
        "networks:\n  front: {}\n  back: {}\n",
    ));
    let run = project.import_ok(&[]);
    let template = project.template();
    assert!(
        template.contains("--mac-address=02:42:ac:11:65:43")
            && template.contains("--link-local-ip=169.254.8.8")
            && !template.contains("02:42:ac:11:00:01"),
        "{template}"
    );
    assert!(
        run.stderr.contains("docker-compose.yml:6:9: web: networks.back.mac_address: not carried over: the service joins one network, the instance's, which takes what compose gives `front`"),
        "{}",
        run.stderr
    );
    for key in [
        "networks.front.priority",
        "gw_priority",
        "networks.front.mac",
        "link_local",
    ] {
        assert!(!run.stderr.contains(key), "{key} in\n{}", run.stderr);
    }
    fs::write(
        project.dir.join("docker-compose.yml"),
        "services:\n  web:\n    image: nginx\n    mac_address: 02:42:ac:11:00:02\n    networks:\n      front:\n        mac_address: 02:42:ac:11:65:43\nnetworks:\n  front: {}\n",
    )
    .unwrap();
    let run = project.import(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("docker-compose.yml:7:22")
            && run
                .stderr
                .contains("compose refuses to create the container"),
        "{}",
        run.stderr
    );
}

/// Round 9. What compose does beside the container it creates was warned
/// as "unitgen has no such key; if `docker run` has a flag for it, add that
/// to `docker_args`", which none has: lifecycle hooks (`docker exec` after
/// the start, before the stop), annotations (set through the API), models
/// (Docker Model Runner). Each is said with what compose does, the hooks'
/// commands and the models' variables named. A service a provider runs
/// (`provider: {type: model}`: a plugin, no container) was refused for
/// having no image; it is left out now, as it has no container, and a
/// dependency on it too, each said with the variables the provider gives.
#[test]
fn what_compose_does_beside_the_container_is_said_with_what_it_does() {
    let project = Project::new(concat!(
        "services:\n  web:\n    image: nginx:1.27\n",
        "    post_start:\n      - command: chown -R 1001 /data\n        user: root\n",
        "    pre_stop:\n      - command: [/bin/sh, -c, echo bye]\n",
        "    annotations:\n      com.example.a: \"1\"\n",
        "    models: [llm]\n    depends_on: [ai]\n",
        "    deploy: {replicas: 3}\n",
        "  ai:\n    provider:\n      type: model\n      options: {model: ai/smollm2}\n",
        "models:\n  llm: {model: ai/smollm2}\n",
    ));
    let run = project.import_ok(&[]);
    for said in [
        "docker-compose.yml:4:5: web: post_start: not carried over: compose runs `chown -R 1001 /data` (as root) in the container (`docker exec`) after starting it",
        "docker-compose.yml:7:5: web: pre_stop: not carried over: compose runs `/bin/sh -c 'echo bye'` in the container (`docker exec`) before stopping it",
        "docker-compose.yml:9:5: web: annotations: not carried over: `docker run` has no flag for a container's annotations",
        "docker-compose.yml:11:5: web: models: not carried over: compose has Docker Model Runner serve these models and gives the service `LLM_URL`, `LLM_MODEL`",
        "docker-compose.yml:12:18: web: depends_on: `ai` is left out (run by the `model` provider, not a container)",
        "docker-compose.yml:13:14: web: deploy.replicas: compose runs 3 containers of it, which its name answers for in turn: the instance runs 3 services, `web` and its copies `web-2`, `web-3`",
        "docker-compose.yml:15:5: ai: provider: left out: `docker compose up` runs no container of it, but the `model` provider",
    ] {
        assert!(run.stderr.contains(said), "{said} in\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("no such key"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("models: not a compose key"),
        "{}",
        run.stderr
    );
    let template = project.template();
    let services = &template[template.find("\nservices:").unwrap()..];
    assert!(
        !services.contains("ai:") && !services.contains("depends_on"),
        "{template}"
    );
    let units = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(units.code, 0, "{}", units.stderr);
}

/// Round 9. `deploy.replicas: 3` (teable's cluster example runs two
/// `teable`s, thingsboard ten js-executors) was one container, warned:
/// compose runs three, which the service's name answers for in turn, and
/// starts a dependent after all of them. The copies are services of their
/// own now (`worker-2`, `worker-3`), each aliased `worker`, and a dependent
/// waits for all; each copy's anonymous volume is its own, as each of
/// compose's containers has its own. Compose refuses `container_name` beside
/// replicas (a name must be unique); a copy's name another service has
/// keeps one container, said.
#[test]
fn replicas_are_services_of_their_own_under_one_name() {
    let project = Project::new(concat!(
        "services:\n  worker:\n    image: busybox\n    deploy:\n      replicas: 3\n",
        "    volumes: [/cache]\n",
        "  api:\n    image: busybox\n    depends_on: [worker]\n",
    ));
    let run = project.import_ok(&[]);
    assert_eq!(run.stderr.matches("warning:").count(), 2, "{}", run.stderr);
    let template = project.template();
    let services = &template[template.find("\nservices:").unwrap()..];
    for copy in ["worker-2", "worker-3"] {
        assert!(
            services.contains(&format!(
                "  {copy}:\n    image: busybox\n    volumes: [\"{copy}-cache:/cache\"]\n    restart: \"no\"\n    docker_args: [--network-alias=worker]\n"
            )),
            "{template}"
        );
    }
    assert!(
        services.contains("depends_on: [worker, worker-2, worker-3]"),
        "{template}"
    );
    let validate = project.run(&["validate", "-f", "unitgen.yaml"]);
    assert_eq!(validate.code, 0, "{}", validate.stderr);

    fs::write(
        project.dir.join("docker-compose.yml"),
        "services:\n  worker:\n    image: busybox\n    container_name: w\n    deploy: {replicas: 2}\n",
    )
    .unwrap();
    let run = project.import(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("`container_name` of service `worker`, which compose runs 2 containers of: compose refuses the file")
            && run.stderr.contains("docker-compose.yml:4:5"),
        "{}",
        run.stderr
    );

    fs::write(
        project.dir.join("docker-compose.yml"),
        "services:\n  worker:\n    image: busybox\n    scale: 2\n  worker-2:\n    image: nginx\n",
    )
    .unwrap();
    let run = project.import_ok(&["--force"]);
    assert!(
        run.stderr.contains("worker: scale: not carried over: compose runs 2 containers of it; an instance runs one here (a copy's name is taken"),
        "{}",
        run.stderr
    );
}

/// Round 14 sweep. compose's YAML reader reads an unquoted number as a
/// number and hands Docker its text as Go prints it: greenbone's
/// `FEED_RELEASE: 24.10` reaches the container as `24.1`, a PIN `0123` as
/// octal `83`. Import passed `24.10` and `0123`, which compose never runs.
/// Compose's values are carried over, each said where it is written; a
/// quoted value, a number compose prints as written and a tagged string
/// stay as they are. Compose's reader is go-yaml's (`go.yaml.in/yaml/v4`):
/// `0123` is octal to it, `0129` (no octal) the decimal 129, `1e3` the
/// float 1000.
#[test]
fn an_unquoted_number_is_the_text_compose_makes_of_it() {
    let project = Project::new(concat!(
        "services:\n  vt:\n    image: greenbone/vulnerability-tests\n",
        "    environment:\n      FEED_RELEASE: 24.10\n      ADMIN_PIN: 0123\n",
        "      QUOTED: '24.10'\n      PORT: 8080\n      TAGGED: !!str 1.10\n",
        "      BATCH: 1e3\n      CODE: 0129\n",
        "    labels:\n      version: 1.20\n",
        "    command: [serve, --ratio, 0.50]\n",
    ));
    let run = project.import_ok(&[]);
    for (place, written, given) in [
        ("5:21", "24.10", "24.1"),
        ("6:18", "0123", "83"),
        ("10:14", "1e3", "1000"),
        ("11:13", "0129", "129"),
        ("13:16", "1.20", "1.2"),
        ("14:31", "0.50", "0.5"),
    ] {
        let warning = format!(
            "docker-compose.yml:{place}: vt: {}: `{written}` is a number to compose's YAML reader, which hands Docker `{given}`",
            match place {
                "13:16" => "labels",
                "14:31" => "command",
                _ => "environment",
            }
        );
        assert!(run.stderr.contains(&warning), "{warning}\n{}", run.stderr);
    }
    assert_eq!(run.stderr.matches("warning:").count(), 6, "{}", run.stderr);
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    for arg in [
        "--env FEED_RELEASE=24.1 \\",
        "--env ADMIN_PIN=83 \\",
        "--env QUOTED=24.10 \\",
        "--env PORT=8080 \\",
        "--env TAGGED=1.10 \\",
        "--env BATCH=1000 \\",
        "--env CODE=129 \\",
        "--label version=1.2 \\",
        "greenbone/vulnerability-tests serve --ratio 0.5\n",
    ] {
        assert!(render.stdout.contains(arg), "{arg}: {}", render.stdout);
    }
}

/// Firezone's relay publishes 16,384 UDP ports (`49152-65535`), which
/// import left out (warned: "list those the service needs"), so no relay
/// was reachable. A range past 1024 ports is one `--publish` flag now, as
/// compose has Docker publish it, warned for the host-port checks it
/// escapes; a shorter one stays port by port.
#[test]
fn a_large_port_range_is_one_publish_flag() {
    let project = Project::new(
        "services:\n  relay:\n    image: firezone/relay\n    ports:\n      - \"3478:3478/udp\"\n      - \"127.0.0.1:49152-65535:49152-65535/udp\"\n",
    );
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:6:9: relay: ports: `127.0.0.1:49152-65535:49152-65535/udp` is 16384 ports: carried over as one `--publish` flag in `docker_args`"),
        "{}",
        run.stderr
    );
    let render = project.run(&["render", "default", "-f", "unitgen.yaml"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    assert!(
        render
            .stdout
            .contains("--publish=127.0.0.1:49152-65535:49152-65535/udp \\"),
        "{}",
        render.stdout
    );
    assert!(
        render.stdout.contains("--publish 3478:3478/udp \\"),
        "{}",
        render.stdout
    );
    assert_eq!(
        render.stdout.matches("--publish").count(),
        2,
        "{}",
        render.stdout
    );
}

/// jitsi's `restart: ${RESTART_POLICY:-unless-stopped}` and sentry's
/// healthcheck `retries: $HEALTHCHECK_RETRIES`: unitgen's `restart` and
/// `retries` take no template, so import wrote their values, while the
/// instance kept `restart_policy` and `healthcheck_retries` as if changing
/// them did something. Said now at each such key, as for a boolean.
#[test]
fn a_variable_in_a_key_without_templates_is_said_to_be_fixed() {
    let project = Project::new(concat!(
        "services:\n  web:\n    image: jitsi/web\n",
        "    restart: ${RESTART_POLICY:-unless-stopped}\n",
        "    healthcheck:\n      test: curl -f localhost\n      retries: $HEALTHCHECK_RETRIES\n",
        "  db:\n    image: postgres\n    restart: always\n",
    ))
    .file(".env", "HEALTHCHECK_RETRIES=10\n");
    let run = project.import_ok(&[]);
    for warning in [
        "warning: docker-compose.yml:4:14: web: restart: `restart` cannot vary by instance in unitgen: written as its value here, `unless-stopped`\n",
        "warning: docker-compose.yml:7:16: web: healthcheck.retries: `healthcheck.retries` cannot vary by instance in unitgen: written as its value here, `10`\n",
    ] {
        assert!(run.stderr.contains(warning), "{warning}\n{}", run.stderr);
    }
    assert_eq!(run.stderr.matches("warning:").count(), 2, "{}", run.stderr);
    let template = project.template();
    assert!(
        template.contains("    restart: unless-stopped\n"),
        "{template}"
    );
    assert!(template.contains("      retries: 10\n"), "{template}");
}

/// netmaker's UI reaches its API by a link alias (`links:
/// ["netmaker:api"]`), which import warned and left out, so `api` named
/// nothing and the UI could not reach the API. The alias is a network
/// alias of the linked service now; one that would name another service
/// on the instance network, or that links give two services, stays out,
/// warned.
#[test]
fn a_link_alias_is_a_network_alias_of_the_linked_service() {
    let project = Project::new(concat!(
        "services:\n  netmaker:\n    image: gravitl/netmaker\n",
        "  ui:\n    image: gravitl/netmaker-ui\n    links: [\"netmaker:api\", \"db:netmaker\", \"db:store\"]\n",
        "  db:\n    image: postgres\n",
        "  worker:\n    image: busybox\n    links: [\"netmaker:store\"]\n",
    ));
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:6:5: ui: links: not needed: services find each other by name on the instance network; the linked services are dependencies (`depends_on`), as compose starts them first; the link alias `api` of `netmaker` is a network alias now, which every service of the instance reaches it by, where compose gave it to this service alone; the aliases in `db:netmaker`, `db:store` are not carried over"),
        "{}",
        run.stderr
    );
    let template = project.template();
    assert!(
        template.contains("  netmaker:\n    image: gravitl/netmaker\n    restart: \"no\"\n    docker_args: [--network-alias=api]\n"),
        "{template}"
    );
    assert_eq!(template.matches("--network-alias").count(), 1, "{template}");
}

/// linuxserver's webtop example writes `version: "2.1"`, then `---` and
/// its services: two YAML documents, which compose merges in order. Import
/// refused the file with its YAML reader's advice to call another function.
/// Each document is merged over the ones before it now, as compose does;
/// warnings name their lines in the whole file.
#[test]
fn the_yaml_documents_of_a_file_are_merged_as_compose_merges_them() {
    let project = Project::new(concat!(
        "version: \"2.1\"\n---\nservices:\n  webtop:\n    image: lscr.io/linuxserver/webtop\n",
        "    environment: [PUID=1000]\n---\n# nothing\n---\n",
        "services:\n  webtop:\n    environment: [TZ=Etc/UTC]\n    volumes: [./config:/config]\n",
    ));
    let run = project.import_ok(&[]);
    assert!(
        run.stderr.contains("warning: docker-compose.yml:13:15: webtop: volumes: `./config` is relative to the compose file"),
        "{}",
        run.stderr
    );
    let template = project.template();
    assert!(
        template.contains("    environment:\n      PUID: \"1000\"\n      TZ: Etc/UTC\n"),
        "{template}"
    );
}
