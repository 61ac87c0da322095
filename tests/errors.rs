//! Bad input, one class per case: the message, where it points (file:line:
//! column) and the hint, as the user sees them; and nothing written.

use std::process::{Command, Output};

struct Case {
    yaml: &'static str,
    args: &'static [&'static str],
    message: &'static str,
    at: &'static str,
    hint: Option<&'static str>,
}

impl Case {
    fn assert_refused(&self) {
        assert_refused(self.yaml, self.args, self.message, self.at, self.hint);
    }
}

/// unitgen ARGS on YAML exits 1 saying `message` at `at` (with the hint),
/// and writes nothing.
fn assert_refused(yaml: &str, args: &[&str], message: &str, at: &str, hint: Option<&str>) {
    let (out, dir) = run(yaml, args);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{message}: {err}");
    assert!(err.contains(message), "expected {message:?} in:\n{err}");
    assert!(
        err.contains(at),
        "expected location {at:?} for {message:?} in:\n{err}"
    );
    if let Some(hint) = hint {
        assert!(err.contains(hint), "expected hint {hint:?} in:\n{err}");
    }
    assert!(
        !dir.path().join("units").exists(),
        "nothing is written on error"
    );
}

fn run(yaml: &str, args: &[&str]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unitgen.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out_dir = dir.path().join("units");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_unitgen"));
    cmd.env("NO_COLOR", "1")
        .env("COLUMNS", "200")
        .current_dir(dir.path());
    if args.is_empty() {
        cmd.args(["render", "live", "--out"]).arg(&out_dir);
    } else {
        cmd.args(args);
    }
    // Most cases declare no instance: the undeclared one is not what they test.
    if matches!(args.first(), None | Some(&("render" | "plan" | "apply"))) {
        cmd.arg("--allow-undeclared");
    }
    (cmd.output().unwrap(), dir)
}

const GOOD_WEB: &str = "app: shop\nservices:\n  web:\n    image: shop:1\n";

#[test]
fn each_class_of_bad_input_is_located_and_explained() {
    let cases = [
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    enviroment: {A: b}\n",
            args: &[],
            message: "unknown key `enviroment`",
            at: "unitgen.yaml:5:5",
            hint: Some("did you mean `environment`?"),
        },
        Case {
            yaml: "app: shop\nservies:\n  web: shop:1\n",
            args: &[],
            message: "unknown key `servies`",
            at: "unitgen.yaml:2:1",
            hint: Some("did you mean `services`?"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    volumes: [\"/srv/prom:/prometheus\", \"data:/prometheus/\"]\n",
            args: &[],
            message: "two volumes mount at `/prometheus/`: Docker refuses to start the container",
            at: "unitgen.yaml:5:40",
            hint: Some("keep one of them"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    ports: 8080\n",
            args: &[],
            message: "expected a list",
            at: "unitgen.yaml:5:12",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web: shop:1\n  web: shop:2\n",
            args: &[],
            message: "duplicate key `web`",
            at: "unitgen.yaml:4:3",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    ports: [\"8080:http\"]\n",
            args: &[],
            message: "`http` is not a valid container port",
            at: "unitgen.yaml:5:13",
            hint: None,
        },
        Case {
            // Docker would bind-mount the host's /etc for this "volume".
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    volumes: [\"shared:/s\"]\nvolumes:\n  shared: {external: true, name: /etc}\n",
            args: &[],
            message: "`/etc` is not a Docker volume name",
            at: "unitgen.yaml:7:34",
            hint: None,
        },
        Case {
            // Docker refuses to run it ("invalid hostname" from Linux).
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    hostname: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
            args: &[],
            message: "this hostname is 65 bytes long; Linux takes at most 64",
            at: "unitgen.yaml:5:15",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    network_mode: vpn\n",
            args: &[],
            message: "unknown network_mode `vpn`",
            at: "unitgen.yaml:5:19",
            hint: Some("service:NAME"),
        },
        // A cycle only through network_mode is placed at the one closing it.
        Case {
            yaml: "app: shop\nservices:\n  vpn:\n    image: gluetun:1\n    network_mode: service:web\n  web:\n    image: shop:1\n    network_mode: service:vpn\n",
            args: &[],
            message: "dependency cycle: vpn → web → vpn",
            at: "unitgen.yaml:8:19",
            hint: Some("a cycle can never start"),
        },
        Case {
            yaml: "app: shop\nservices:\n  vpn:\n    image: gluetun:1\n  web:\n    image: shop:1\n    network_mode: service:vnp\n",
            args: &[],
            message: "`web` shares the network of `vnp`, which is not a service",
            at: "unitgen.yaml:7:19",
            hint: Some("did you mean `vpn`?"),
        },
        Case {
            // Docker refuses it: "conflicting options: port publishing and
            // the container type network mode".
            yaml: "app: shop\nservices:\n  vpn:\n    image: gluetun:1\n  web:\n    image: shop:1\n    network_mode: service:vpn\n    ports: [\"80:80\"]\n",
            args: &[],
            message: "`ports` with network_mode `service:vpn`: Docker publishes none",
            at: "unitgen.yaml:8:13",
            hint: Some("publish the port on the service whose network this one shares"),
        },
        Case {
            yaml: "app: shop\nservices:\n  vpn:\n    image: gluetun:1\n  web:\n    image: shop:1\n    network_mode: service:vpn\n    hostname: web\n",
            args: &[],
            message: "`hostname` with network_mode `service:vpn`: Docker refuses it",
            at: "unitgen.yaml:8:15",
            hint: None,
        },
        Case {
            // Docker refuses it at the start: "unknown capability".
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    cap_add: [NET_BIND_SERVCE]\n",
            args: &[],
            message: "`NET_BIND_SERVCE` is not a Linux capability",
            at: "unitgen.yaml:5:15",
            hint: None,
        },
        Case {
            // Docker refuses it at the start: "mount path must be absolute".
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    tmpfs: [run]\n",
            args: &[],
            message: "tmpfs `run` is not an absolute path in the container",
            // The mount itself, not the list.
            at: "unitgen.yaml:5:13",
            hint: None,
        },
        Case {
            // Docker refuses it at the start: "it needs to be an absolute path".
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    working_dir: app/src\n",
            args: &[],
            message: "working_dir `app/src` is not an absolute path",
            at: "unitgen.yaml:5:18",
            hint: Some("`/app`"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    volumes: [\"./data:/data\"]\n",
            args: &[],
            message: "bind mount source `./data` is relative",
            at: "unitgen.yaml:5:15",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    volumes: [\"data:/x:rx\"]\n",
            args: &[],
            message: "unknown volume mode `rx`",
            at: "unitgen.yaml:5:15",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    depends_on: [dbb]\n  db: postgres:16\n",
            args: &[],
            message: "`web` depends on `dbb`, which is not a service",
            at: "unitgen.yaml:5:18",
            hint: Some("did you mean `db`?"),
        },
        Case {
            yaml: "app: shop\nservices:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n",
            args: &[],
            message: "dependency cycle: a → b → c → a",
            at: "unitgen.yaml:11:18",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    ports: [\"8080:80\"]\n  api:\n    image: y\n    ports: [\"8080:81\"]\n",
            args: &[],
            message: "host port 8080/tcp is published by both `web` and `api`",
            at: "unitgen.yaml:6:3",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    ports: [\"443:80\"]\ninstances:\n  live:\n    routes:\n      - hosts: shop.example.com\n        service: web\n        port: 80\n",
            args: &[],
            message: "`web` of instance `live` publishes host port 443/tcp, where the host's router listens for the instance's routes (its `https_port`)",
            at: "unitgen.yaml:3:3",
            hint: Some("let the router serve the service"),
        },
        Case {
            yaml: "app: shop\nservices:\n  Web_1: x\n",
            args: &[],
            message: "`Web_1` is not a valid service name",
            at: "unitgen.yaml:3:3",
            hint: Some("try `web-1`"),
        },
        Case {
            yaml: "app: shop\nservices:\n  network: x\n",
            args: &[],
            message: "`network` is reserved",
            at: "unitgen.yaml:3:3",
            hint: None,
        },
        Case {
            yaml: "app: my-shop\nservices:\n  web: x\n",
            args: &[],
            message: "`my-shop` is not a valid name",
            at: "unitgen.yaml:1:6",
            hint: Some("try `my_shop`"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web: x\ninstances:\n  Live: {}\n",
            args: &["validate"],
            message: "`Live` is not a valid name",
            at: "unitgen.yaml:5:3",
            hint: Some("try `live`"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: \"shop:{{ versoin }}\"\ninstances:\n  live: {version: 1}\n",
            args: &[],
            message: "undefined variable `versoin` in instance `live`",
            at: "unitgen.yaml:4:21",
            hint: Some("did you mean `version`?"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: \"shop:{{ version }}\"\n",
            args: &[],
            message: "undefined variable `version` in instance `live`",
            at: "unitgen.yaml:4:21",
            hint: Some("pass `--set version=VALUE`"),
        },
        // minijinja points at the filter the undefined value reached; the
        // message names the variable, at its place (it said `upper`).
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: \"shop:{{ versoin | upper }}\"\ninstances:\n  live: {version: 1}\n",
            args: &[],
            message: "undefined variable `versoin` in instance `live`",
            at: "unitgen.yaml:4:21",
            hint: Some("did you mean `version`?"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: \"shop:{{ app | replace('s', suffix) }}-{% for i in range(2) %}{{ i }}{% endfor %}\"\n",
            args: &[],
            message: "undefined variable `suffix` in instance `live`",
            at: "unitgen.yaml:4:40",
            hint: Some("or pass `--set suffix=VALUE`"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: \"shop:{{ version | nope }}\"\n",
            args: &["render", "x", "--set", "version=1"],
            message: "template error: filter nope is unknown",
            at: "unitgen.yaml:4:",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    environment: {A: b}\n",
            args: &[],
            message: "service `web` has no `image`",
            at: "unitgen.yaml:3:3",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    environment: {TOKEN: }\n",
            args: &[],
            message: "environment variable `TOKEN` has no value",
            at: "unitgen.yaml:5:19",
            hint: Some("units do not inherit your shell's environment"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    restart: sometimes\n",
            args: &[],
            message: "unknown restart policy `sometimes`",
            at: "unitgen.yaml:5:14",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    systemd: {Servce: {Nice: 5}}\n",
            args: &[],
            message: "unknown unit section `Servce`",
            at: "unitgen.yaml:5:15",
            hint: Some("did you mean `Service`?"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    stop_grace_period: soon\n",
            args: &[],
            message: "`soon` is not a duration",
            at: "unitgen.yaml:5:24",
            hint: None,
        },
        Case {
            // The seconds overflowed the stop timeout's margin: the unit
            // said TimeoutStopSec=29s (a debug build panicked).
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    stop_grace_period: 18446744073709551615s\n",
            args: &[],
            message: "is longer than a duration can be",
            at: "unitgen.yaml:5:24",
            hint: None,
        },
        Case {
            // Said as serde-saphyr says it: `invalid u32`.
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    healthcheck: {test: [CMD, x], retries: 99999999999}\n",
            args: &[],
            message: "expected a whole number from 0 to 4294967295",
            at: "unitgen.yaml:5:44",
            hint: None,
        },
        // Values Docker, the kernel or etcd refused (or misread) only when
        // the unit started.
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    tmpfs: [/run, \"/tmp:size=99999999999999999999\"]\n",
            args: &[],
            message: "of `/tmp` is more than the kernel",
            at: "unitgen.yaml:5:19",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    tmpfs: /tmp:size=0\n",
            args: &[],
            message: "tmpfs option `size=0` of `/tmp` means no",
            at: "unitgen.yaml:5:12",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\netcd:\n  endpoints: http://127.0.0.1:2379\n  ttl: 9000000001s\n",
            args: &[],
            message: "`9000000001s` is longer than etcd keeps a lease",
            at: "unitgen.yaml:7:8",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    healthcheck: {test: [CMD, x], interval: 500us}\n",
            args: &[],
            message: "`500us` is shorter than Docker lets a",
            at: "unitgen.yaml:5:45",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    mem_limit: 1m\n",
            args: &[],
            message: "`1m` is less memory than Docker gives a container",
            at: "unitgen.yaml:5:16",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    cpus: 0.001\n",
            args: &[],
            message: "`0.001` is fewer CPUs than Docker can give a",
            at: "unitgen.yaml:5:11",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\nfleet:\n  copies: 0\n",
            args: &[],
            message: "fleet copies must be at least 1",
            at: "unitgen.yaml:6:11",
            hint: Some("switch it off"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\nfleet:\n  copies: 4000000000\n",
            args: &[],
            message: "fleet copies must be at most 1000, not 4000000000",
            at: "unitgen.yaml:6:11",
            hint: Some("machine of its own"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    stop_signal: SIGFOO\n",
            args: &[],
            message: "`SIGFOO` is not a signal",
            at: "unitgen.yaml:5:18",
            hint: None,
        },
        // Regression: YAML syntax errors were all reported at 1:1.
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n   command: [a]\n",
            args: &[],
            message: "did not find expected key",
            at: "unitgen.yaml:5:4",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n      command: [a]\n",
            args: &[],
            message: "mapping values are not allowed in this context",
            at: "unitgen.yaml:5:14",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  db:\n    image: x\n    secrets: {PASSWORD: db_pasword}\nsecrets:\n  db_password: {file: pw}\n",
            args: &[],
            message: "unknown secret `db_pasword`",
            at: "unitgen.yaml:5:25",
            hint: Some("did you mean `db_password`?"),
        },
        Case {
            yaml: "app: shop\nservices:\n  db:\n    image: x\n    secrets: [db_password]\nsecrets:\n  db_password: {file: pw}\n",
            args: &[],
            message: "`db_password` says which secret, but not as which variable",
            at: "unitgen.yaml:5:15",
            hint: Some("write `secrets: {DB_PASSWORD: db_password}`"),
        },
        Case {
            yaml: "app: shop\nservices:\n  db:\n    image: x\n    secrets: {PASSWORD: pw}\nsecrets:\n  pw: {file: a, environment: B}\n",
            args: &[],
            message: "secret `pw` needs exactly one source",
            at: "unitgen.yaml:7:3",
            hint: Some("give one of `file: PATH`, `environment: VARIABLE`"),
        },
        Case {
            yaml: "app: shop\nservices:\n  db:\n    image: x\n    environment: {PASSWORD: x}\n    secrets: {PASSWORD: pw}\nsecrets:\n  pw: {file: a}\n",
            args: &[],
            message: "`PASSWORD` is set both in `environment` and in `secrets`",
            at: "unitgen.yaml:6:14",
            hint: Some("keep it in `secrets` only"),
        },
        // Secrets are read by plan and apply, never by render or validate;
        // a source that cannot be read points at its declaration.
        Case {
            yaml: "app: shop\nservices:\n  db:\n    image: x\n    secrets: {PASSWORD: pw}\nsecrets:\n  pw: {file: missing.txt}\n",
            args: &["plan", "live"],
            message: "secret `pw`: cannot read missing.txt: No such file",
            at: "unitgen.yaml:7:14",
            hint: Some("read by `plan` and `apply`"),
        },
        Case {
            yaml: "app: shop\nservices:\n  db:\n    image: x\n    secrets: {PASSWORD: pw}\nsecrets:\n  pw: {environment: UNITGEN_TEST_NEVER_SET}\n",
            args: &["plan", "live"],
            message: "secret `pw`: `UNITGEN_TEST_NEVER_SET` is not set in unitgen's environment",
            at: "unitgen.yaml:7:21",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  db:\n    image: x\n    secrets: {PASSWORD: pw}\nsecrets:\n  pw: {command: \"false --quiet\"}\n",
            args: &["plan", "live"],
            message: "secret `pw`: `false --quiet` failed (exit status: 1)",
            at: "unitgen.yaml:7:17",
            hint: None,
        },
        // A route's file that is not there: plan and apply said so with no
        // place in the file.
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    ports: [\"127.0.0.1:8080:80\"]\ninstances:\n  live:\n    routes:\n      - {hosts: shop.example.com, service: web, port: 80, basic_auth: ./admins.htpasswd}\n",
            args: &["plan", "live"],
            message: "route shop.example.com: cannot read ./admins.htpasswd",
            at: "unitgen.yaml:9:71",
            hint: Some("relative to the file that names it, or absolute"),
        },
        // A path that names no file (empty, a folder's, a line break in it).
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    ports: [\"127.0.0.1:8080:80\"]\ninstances:\n  live:\n    routes:\n      - {hosts: shop.example.com, service: web, port: 80, tls: {certificate: \"\", key: ./k}}\n",
            args: &["validate"],
            message: "`` is not a file's path",
            at: "unitgen.yaml:9:78",
            hint: Some("relative to this file or absolute"),
        },
        // More CPUs than the host has: Docker refused the container at its
        // start, after apply had changed the host.
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    cpus: 100000\n",
            args: &["plan", "live"],
            message: "service `web` asks for 100000 CPUs, and this host has",
            at: "unitgen.yaml:5:11",
            hint: Some("give it at most"),
        },
        // on-failure:4294967295 saturated the unit's StartLimitBurst (the
        // restarts plus the start) and its comment named one restart less.
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: shop:1\n    restart: on-failure:4294967295\n",
            args: &[],
            message: "`on-failure:4294967295`: systemd counts at most 4294967294 restarts",
            at: "unitgen.yaml:5:14",
            hint: Some("for no limit, leave the number out: `on-failure`"),
        },
    ];
    cases.iter().for_each(Case::assert_refused);
}

/// Found in hostile values round 7: a refusal quoted the template's value
/// with its line feeds (a `systemd:` section or key name, a route's file,
/// a backup path, a secret's name…), so a template from anyone (a cloned
/// repository) put lines of its own into the error, here ones that read as
/// other errors. A refusal that points at its place is one line: the
/// snippet shows the value as written.
#[test]
fn a_refusal_quotes_the_templates_values_on_its_line() {
    let fake = "\\n  × FAKE: all good";
    let yaml = format!(
        "app: shop\nservices:\n  web:\n    image: nginx\n    systemd:\n      \"Service{fake}\": {{A: b}}\n      \
         Unit: {{\"Key{fake}\": x}}\n    environment: [\"NAME{fake}\"]\n    backup: {{volumes: [data]}}\n    \
         volumes: [\"data:/data\"]\nbackup:\n  repository: /srv/b\n  password_file: \"rel{fake}\"\n"
    );
    let (out, _dir) = run(&yaml, &[]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    let said = err.matches("FAKE").count();
    assert!(said >= 4, "each value is quoted: {err}");
    for line in err.lines() {
        let text = line.trim_start_matches([' ', '│', '├', '╰', '─', '·']);
        assert!(
            !text.starts_with("× FAKE"),
            "a line of the value's own:\n{err}"
        );
    }
}

#[test]
fn all_problems_of_a_file_are_reported_at_once() {
    let yaml = "app: shop\nservices:\n  web:\n    image: x\n    ports: [\"80:http\"]\n    depends_on: [nope]\n  api:\n    image: \"{{ missing }}\"\n";
    let (out, _dir) = run(yaml, &[]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("3 problems found"), "{err}");
    for expected in [
        "`http` is not a valid",
        "depends on `nope`",
        "undefined variable `missing`",
    ] {
        assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    }
}

// Regression: one unknown key stopped the parse and hid the file's other
// problems (seven mistakes, one reported).
#[test]
fn unknown_keys_are_reported_with_every_other_problem_each_at_its_place() {
    let yaml = "app: shop\n\
                services:\n\
                \x20 web:\n\
                \x20   image: \"shop:{{ versoin }}\"\n\
                \x20   enviroment: {A: b}\n\
                \x20   ports: [\"80:http\"]\n\
                \x20   depends_on: [dbb]\n\
                \x20   restart: sometimes\n\
                \x20   healthcheck: {tset: [NONE]}\n\
                \x20 db:\n\
                \x20   image: postgres:16\n\
                \x20   stop_grace_period: soon\n\
                instances:\n\
                \x20 live: {version: 1}\n";
    let (out, _dir) = run(yaml, &["validate"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("7 problems found"), "{err}");
    for (message, at) in [
        ("unknown key `enviroment`", "unitgen.yaml:5:5"),
        ("unknown key `tset`", "unitgen.yaml:9:19"),
        ("undefined variable `versoin`", "unitgen.yaml:4:21"),
        ("`http` is not a valid container port", "unitgen.yaml:6:13"),
        ("depends on `dbb`", "unitgen.yaml:7:18"),
        ("unknown restart policy `sometimes`", "unitgen.yaml:8:14"),
        ("`soon` is not a duration", "unitgen.yaml:12:24"),
    ] {
        let shown = err
            .split("  × ")
            .find(|p| p.lines().next().is_some_and(|l| l.contains(message)))
            .unwrap_or_else(|| panic!("expected {message:?} in:\n{err}"));
        assert!(shown.contains(at), "{message} at {at}:\n{shown}");
    }
    assert!(err.contains("did you mean `environment`?"), "{err}");
    assert!(err.contains("did you mean `test`?"), "{err}");
}

#[test]
fn missing_file_says_how_to_point_at_one() {
    let (out, dir) = run(GOOD_WEB, &["render", "live", "-f", "nope.yaml"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("cannot read nope.yaml"), "{err}");
    assert!(err.contains("-f FILE"));
    drop(dir);
}

#[test]
fn a_good_file_renders() {
    let (out, _dir) = run(GOOD_WEB, &["render", "live"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// Regression: with no systemd to talk to, apply said only "Failed to connect
// to address unix:path=/var/run/dbus/system_bus_socket".
#[test]
fn no_systemd_to_talk_to_is_explained_and_changes_nothing() {
    let (out, dir) = run(
        GOOD_WEB,
        &[
            "apply",
            "live",
            "--unit-dir",
            "units",
            "--state-dir",
            "state",
            "--bus",
            "unix:path=no-such-bus",
        ],
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    for expected in [
        "nothing answers at unix:path=no-such-bus",
        "is systemd running there",
        "--root DIR",
        "--bus ADDRESS",
        "nothing on the host was changed",
    ] {
        assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    }
    assert!(!dir.path().join("units").exists(), "no unit written");
}

// Regression: a plan as another user than root of an instance with
// backups failed with "reading the backups' password file …: Permission
// denied (os error 13)" and said nothing of the rest.
#[test]
fn a_plan_that_may_not_read_the_backups_password_file_says_the_rest_and_what_it_did_not_check() {
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::process::CommandExt as _;
    let dir = tempfile::tempdir().unwrap();
    let open = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    open(dir.path(), 0o755);
    let password = dir.path().join("password");
    std::fs::write(&password, "secret").unwrap();
    open(&password, 0o600);
    std::fs::write(
        dir.path().join("unitgen.yaml"),
        format!(
            "app: shop\nservices:\n  db:\n    image: shop:1\n    volumes: [\"data:/d\"]\n    backup: {{}}\n\
             backup:\n  repository: /srv/backups/shop\n  password_file: {}\ninstances:\n  live: {{}}\n",
            password.display()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("units")).unwrap();
    open(&dir.path().join("units"), 0o755);
    let plan = |user: Option<u32>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_unitgen"));
        cmd.args([
            "plan",
            "live",
            "--unit-dir",
            "units",
            "--state-dir",
            "state",
        ])
        .env("NO_COLOR", "1")
        .current_dir(dir.path());
        if let Some(id) = user {
            cmd.uid(id).gid(id);
        }
        cmd.output().unwrap()
    };
    let unchecked = "not checked: whether the backups' password file";
    let out = plan(None);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(!shown.contains(unchecked), "{shown}");
    // As `nobody`: the same plan, and what it could not check, and why.
    let out = plan(Some(65534));
    let (shown, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{shown}{err}");
    assert!(shown.contains("+ shop-live-backup.service"), "{shown}");
    assert!(
        shown.contains(&format!(
            "? {unchecked} {} changed since apply: reading the backups' password file {}: \
             Permission denied (os error 13); a plan as root compares it",
            password.display(),
            password.display()
        )),
        "{shown}"
    );
    // The state folder as apply leaves it on a system host, root's (0700):
    // said at once, with what to do, not as the first file that could not
    // be read ("…/applying.json: Permission denied").
    std::fs::create_dir(dir.path().join("state")).unwrap();
    open(&dir.path().join("state"), 0o700);
    let out = plan(Some(65534));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for expected in [
        "cannot read the state of instance `live` of `shop` in",
        "Permission denied",
        "it is root's (mode 0700",
        "run it as root",
    ] {
        assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    }
}

/// Values that would change a unit's lines, or that systemd could not load,
/// are refused where they are written (issue 7: unit injection, limits).
#[test]
fn each_unsafe_value_is_refused_where_it_is_written() {
    let cases = [
        Case {
            // A message quoting a value shows its control characters as
            // escapes: an escape sequence would repaint the terminal.
            yaml: "app: shop\nservices:\n  web:\n    image: \"{{ v }}\"\n",
            args: &["render", "live", "--set", "v=x\u{1b}[2J\ry"],
            message: "`x\\u{1b}[2J\\ry` is not a valid image reference",
            at: "unitgen.yaml:4:12",
            hint: None,
        },
        Case {
            // Docker keeps the last of two labels of one name: this one
            // would make the container another instance's for `status`.
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    labels: {note: hi, unitgen.instance: other}\n",
            args: &[],
            message: "`unitgen.instance` is unitgen's",
            at: "unitgen.yaml:5:24",
            hint: None,
        },
        Case {
            // docker run -d would end the unit's main process at once; a
            // unitgen. label would make the container another app's.
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    docker_args: [--shm-size=1g, \"{{ flags }}\"]\n",
            args: &["render", "live", "--set", "flags=-dit"],
            message: "`--detach` (`-d`) would end the unit's `docker run` at once",
            at: "unitgen.yaml:5:34",
            hint: Some("`docker_args` adds to what unitgen gives `docker run`"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    docker_args: [--label, unitgen.app=other]\n",
            args: &[],
            message: "the label `unitgen.app=other` is unitgen's",
            at: "unitgen.yaml:5:28",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    labels: [\"a b=c\"]\n",
            args: &[],
            message: "`a b` is not a label name Docker reads back",
            at: "unitgen.yaml:5:14",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    systemd: {Service: {TimeouvStartSec: 10s}}\n",
            args: &[],
            message: "systemd has no key `TimeouvStartSec` in [Service]",
            at: "unitgen.yaml:5:25",
            hint: Some("did you mean `TimeoutStartSec`?"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    systemd: {Service: {Environment: \"GREETING={{ greeting }}\"}}\n",
            args: &[
                "render",
                "live",
                "--set",
                "greeting=hi\r[Service]\rExecStartPre=/bin/touch /tmp/pwned",
            ],
            message: "a unit value cannot contain a carriage return",
            at: "unitgen.yaml:5:38",
            hint: Some("through `environment` instead"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    systemd: {Service: {Environment: \"A=b\\\\\"}}\n",
            args: &[],
            message: "a unit value cannot end in a backslash",
            at: "unitgen.yaml:5:38",
            hint: None,
        },
        Case {
            // systemd splits `Environment=` into words and ignores `there`.
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    systemd: {Service: {Environment: \"GREETING=hi there\"}}\n",
            args: &[],
            message: "systemd would ignore `there` here",
            at: "unitgen.yaml:5:38",
            hint: Some("through `environment`"),
        },
        Case {
            // unitgen reads whose unit it is from the first `[X-Unitgen]`:
            // this one would make it another app's.
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    systemd: {X-Unitgen: {App: other, Instance: live}}\n",
            args: &[],
            message: "`[X-Unitgen]` is unitgen's section, not one of your own",
            at: "unitgen.yaml:5:15",
            hint: Some("reads it back"),
        },
        Case {
            // After unitgen's own `ExecStartPre=` (the env file's reader),
            // an empty one would drop it.
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    env_file: /etc/a.env\n    systemd: {Service: {ExecStartPre: \"{{ pre }}\"}}\n",
            args: &["render", "live", "--set", "pre="],
            message: "an empty `ExecStartPre=` makes systemd forget every earlier",
            at: "unitgen.yaml:6:39",
            hint: Some("leave the key out"),
        },
        Case {
            // `@` takes the word after the program as its argv[0]: without
            // one, systemd 252 does not load the unit.
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    systemd: {Service: {ExecStartPre: \"{{ how }}/bin/true\"}}\n",
            args: &["render", "live", "--set", "how=@"],
            message: "after `@/bin/true` comes the argv[0] to run it with, and there is none",
            at: "unitgen.yaml:5:39",
            hint: None,
        },
        Case {
            // An unclosed quote in a command line: systemd 252 does not
            // load the unit at all ("Unbalanced quoting").
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    systemd: {Service: {ExecStartPre: \"/bin/echo {{ v }}\"}}\n",
            args: &["render", "live", "--set", "v=it's"],
            message: "an unclosed quote: systemd would not load the unit",
            at: "unitgen.yaml:5:39",
            hint: Some("close each quote"),
        },
        Case {
            // Nor can it resolve `%z` ("Invalid slot"): the line is dropped.
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    systemd: {Unit: {Description: \"zone %z\"}}\n",
            args: &[],
            message: "`%z` is no systemd specifier",
            at: "unitgen.yaml:5:35",
            hint: None,
        },
        Case {
            // A `%` systemd cannot resolve would make it drop the line.
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    systemd: {Unit: {Documentation: \"https://docs%.example.com\"}}\n",
            args: &[],
            message: "`%.` is no systemd specifier",
            at: "unitgen.yaml:5:37",
            hint: Some("write `%%` for a literal `%`"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    systemd: {\"X-a]\\n[Service\": {K: v}}\n",
            args: &[],
            message: "is not a unit section name",
            at: "unitgen.yaml:5:15",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    ports: [\"80:80\"]\netcd:\n  endpoints: \"http://a:2379\\nExecStartPre=/bin/x\"\n",
            args: &[],
            message: "etcd endpoint `http://a:2379\\nExecStartPre=/bin/x` has a character",
            at: "unitgen.yaml:7:14",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    command: [\"{% for i in range(100000) %}{{ 'x' * 10000 }}{% endfor %}\"]\n",
            args: &[],
            message: "this value's template does too much work",
            at: "unitgen.yaml:5:",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    command: [\"{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}{% endfor %}{% endfor %}\"]\n",
            args: &[],
            message: "this value's template does too much work",
            at: "unitgen.yaml:5:",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    command: [\"{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{{ f(0) }}\"]\n",
            args: &[],
            message: "template error: recursion limit exceeded",
            at: "unitgen.yaml:5:35",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    environment: {BIG: \"{{ 'x' * 40000 }}\"}\n",
            args: &[],
            message: "unitgen writes at most 32 KiB per value",
            at: "unitgen.yaml:5:24",
            hint: None,
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    environment: {A: \"{{ 'x' * 30000 }}\", B: \"{{ 'x' * 30000 }}\", C: \"{{ 'x' * 30000 }}\", D: \"{{ 'x' * 30000 }}\", E: \"{{ 'x' * 30000 }}\"}\n",
            args: &[],
            message: "service `web` has 146 KiB of values, over the 128 KiB limit",
            at: "unitgen.yaml:3:3",
            hint: Some("move large data into a file"),
        },
        Case {
            yaml: "app: shop\nservices:\n  web:\n    image: x\n    environment: {BIG: \"{{ 'x' * 40000 }}\"}\n",
            args: &[],
            message: "unitgen writes at most 32 KiB per value",
            at: "unitgen.yaml:5:24",
            hint: None,
        },
    ];
    cases.iter().for_each(Case::assert_refused);
}

#[test]
fn a_secret_docker_cannot_pass_on_is_refused_without_showing_it() {
    // printf writes "s3cr3t", a line break and "v4lue": octal escapes keep
    // the value itself out of the template (whose text errors show).
    let yaml = r#"app: shop
services:
  db:
    image: x
    secrets: {KEY: key}
secrets:
  key: {command: [printf, '\163\063\143\162\063\164\n\166\064\154\165\145']}
"#;
    let (out, _dir) = run(yaml, &["plan", "live"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("secret `key`: the value spans several lines"),
        "{err}"
    );
    assert!(err.contains("unitgen.yaml:7:"), "{err}");
    assert!(
        !err.contains("s3cr3t") && !err.contains("v4lue"),
        "the value is never shown:\n{err}"
    );
}

// Regression: a source that never ends (a device, a command that keeps
// writing) was read to its end, until unitgen ran out of memory.
#[test]
fn a_secret_source_that_never_ends_is_refused_after_60_kib() {
    let yaml = r#"app: shop
services:
  db:
    image: x
    secrets: {A: zeros, B: endless}
secrets:
  zeros: {file: /dev/zero}
  endless: {command: [yes, "Yz5endless"]}
"#;
    let (out, _dir) = run(yaml, &["plan", "live"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    for secret in ["zeros", "endless"] {
        assert!(
            err.contains(&format!(
                "secret `{secret}`: the value is longer than 61440 bytes"
            )),
            "{err}"
        );
    }
    assert!(!err.contains("Yz5endless\nYz5"), "{err}");
}

// Regression: the hint for a secret's name used in a template suggested
// `--set NAME=VALUE`, which writes the value into the units.
#[test]
fn a_secret_used_in_a_template_is_refused_with_a_hint_that_keeps_it_secret() {
    let yaml = r#"app: shop
services:
  db:
    image: x
    environment: {A: "{{ db_password }}", B: "{{ secrets.db_password }}"}
secrets:
  db_password: {file: pw}
instances:
  live: {}
"#;
    let (out, _dir) = run(yaml, &["render", "live"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`db_password` is a secret: its value never goes into a unit"),
        "{err}"
    );
    assert!(
        err.contains("the values of `secrets:` never go into a unit"),
        "{err}"
    );
    assert!(!err.contains("--set"), "{err}");
}

#[test]
fn secrets_are_refused_with_fleet() {
    let yaml = "app: shop\nservices:\n  db:\n    image: x\n    secrets: {KEY: key}\nsecrets:\n  key: {file: k}\n";
    // Before any fleet is asked (there is none here) or a secret is read.
    for command in ["render", "plan", "apply"] {
        let (out, _dir) = run(yaml, &[command, "live", "--fleet"]);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{command}: {err}");
        assert!(
            err.contains(
                "service `db` has secrets, which unitgen cannot deliver to fleet machines"
            ),
            "{command}: {err}"
        );
    }
}

/// A file that never ends (a device, a pipe fed forever) named as the
/// template, a compose file, a compose file's `.env` or a route's htpasswd
/// file is refused once it
/// passes 64 MiB: unitgen read it to the end and held it in memory until it
/// ran out (`validate -f /dev/zero` never returned).
#[test]
fn a_file_that_never_ends_is_refused_after_64_mib() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web: {image: nginx}\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join(".env")).unwrap();
    std::fs::write(
        dir.path().join("unitgen.yaml"),
        "app: shop\nservices:\n  web:\n    image: shop:1\n    ports: [\"127.0.0.1:8080:80\"]\n\
         instances:\n  live:\n    routes:\n      - {hosts: shop.example.com, service: web, port: \
         80, basic_auth: /dev/zero}\n",
    )
    .unwrap();
    let unitgen = env!("CARGO_BIN_EXE_unitgen");
    let command = |args: &[&str]| {
        let mut command = Command::new(unitgen);
        command.args(args);
        command
    };
    let mut endless_stdin = Command::new("sh");
    (endless_stdin.arg("-c"))
        .arg("yes x | exec \"$0\" validate -f /dev/stdin")
        .arg(unitgen);
    for (what, mut command) in [
        (
            "validate -f /dev/zero",
            command(&["validate", "-f", "/dev/zero"]),
        ),
        ("yes | validate -f /dev/stdin", endless_stdin),
        ("import /dev/zero", command(&["import", "/dev/zero"])),
        (
            "a route's basic_auth: /dev/zero",
            command(&["plan", "live"]),
        ),
        (
            "import with .env -> /dev/zero",
            command(&["import", "compose.yaml"]),
        ),
    ] {
        command.current_dir(dir.path()).env("NO_COLOR", "1");
        let mut child = (command.stdout(std::process::Stdio::null()))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("{what}: still reading after 120 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains("longer than 64 MiB"), "{what}: {err}");
    }
}

// Regression (issue 7): "stream did not contain valid UTF-8", with no place.
#[test]
fn a_file_that_is_not_utf8_is_located_at_its_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("unitgen.yaml"),
        b"app: shop\nservices:\n  web: caf\xe9:1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["render", "live"])
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("unitgen.yaml is not UTF-8 text: byte 0xE9"),
        "{err}"
    );
    assert!(err.contains("unitgen.yaml:3:11"), "{err}");
    assert!(err.contains("iconv"), "{err}");
}

// Regression (issue 7): `template: ../../../etc/shadow` printed the file's
// first lines in the error.
#[test]
fn a_template_path_reads_only_templates_in_the_deployments_folder_and_quotes_no_other_file() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("secret.txt");
    std::fs::write(&outside, "root:$6$SECRET-HASH:19000:0:99999:7:::\n").unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(project.join("notes.txt"), "password: SECRET-IN-FOLDER\n[\n").unwrap();
    for (named, message) in [
        (
            "../secret.txt",
            "template ../secret.txt is outside the deployments file's folder",
        ),
        (outside.to_str().unwrap(), "is an absolute path"),
        ("notes.txt", "is not an app template"),
    ] {
        std::fs::write(
            project.join("deployments.yaml"),
            format!("template: {named}\ninstances:\n  live: {{}}\n"),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_unitgen"))
            .args(["render", "live", "-f", "deployments.yaml"])
            .env("NO_COLOR", "1")
            .env("COLUMNS", "200")
            .current_dir(&project)
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(message),
            "{named}: expected {message:?} in:\n{err}"
        );
        assert!(err.contains("deployments.yaml:1:11"), "{err}");
        assert!(
            !err.contains("SECRET"),
            "{named}: the file's text is shown:\n{err}"
        );
    }
}

// Regression (issue 7): the YAML reader's limit said `Nodes { nodes: 250001 }`.
#[test]
fn the_yaml_size_limit_is_said_in_words_where_it_is_reached() {
    let mut yaml = String::from("app: shop\nservices:\n  web:\n    image: x\n    command:\n");
    for _ in 0..250_001 {
        yaml.push_str("      - a\n");
    }
    let (out, _dir) = run(&yaml, &[]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the file is too big for unitgen: more than 250000 YAML values"),
        "{err}"
    );
    assert!(err.contains("unitgen.yaml:2499"), "{err}");

    // Nesting, in maps and in lists (the reader's own guard, which lists
    // reach first, said `recursion limit exceeded`).
    for nested in [
        format!("{}1{}", "{a: ".repeat(100_000), "}".repeat(100_000)),
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    ] {
        // An instance value may be any YAML: the reader's limits, not the
        // key's type, stop it.
        let yaml = format!(
            "app: shop\nservices:\n  web:\n    image: x\ninstances:\n  live: {{deep: {nested}}}\n"
        );
        let (out, _dir) = run(&yaml, &[]);
        let err = String::from_utf8(out.stderr).unwrap();
        let shown = &err[..err.len().min(2_000)];
        assert_eq!(out.status.code(), Some(1), "{shown}");
        assert!(
            err.contains("the file is too big for unitgen: lists and maps nested"),
            "{shown}"
        );
        assert!(err.contains("unitgen.yaml:6:"), "{shown}");
    }
}

#[test]
fn a_typo_in_an_instance_name_or_a_set_key_is_an_error_unless_allowed() {
    let yaml = "app: shop\nservices:\n  web: \"shop:{{ version }}\"\ninstances:\n  staging: {version: 1}\n  live: {version: 1}\n";
    let render = |args: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("unitgen.yaml"), yaml).unwrap();
        Command::new(env!("CARGO_BIN_EXE_unitgen"))
            .args(args)
            .env("NO_COLOR", "1")
            .env("COLUMNS", "200")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = render(&["render", "stagng"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("instance `stagng` is not declared under `instances:`"),
        "{err}"
    );
    assert!(err.contains("did you mean `staging`?"), "{err}");

    let out = render(&["render", "live", "--set", "verison=2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`--set verison`: no instance or expression uses `verison`"),
        "{err}"
    );
    assert!(err.contains("did you mean `version`?"), "{err}");

    // A value no instance declares is fine when an expression uses it, and
    // anything goes when asked for.
    let yaml_uses = render(&["render", "live", "--set", "version=2"]);
    assert!(yaml_uses.status.success());
    for args in [
        &[
            "render",
            "stagng",
            "--set",
            "version=1",
            "--allow-undeclared",
        ][..],
        &["render", "live", "--set", "verison=2", "--allow-undeclared"],
    ] {
        let out = render(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// An app with a `db` service and an instance with backups configured; the
/// placeholders are the service's `backup:` and the instance block's extra keys.
fn backup_yaml(service_backup: &str, block: &str) -> String {
    format!(
        "app: shop\nservices:\n  db:\n    image: db:1\n    volumes: [\"data:/d\"]\n    backup: {service_backup}\ninstances: {{live: {{}}}}\nbackup:\n  password_file: /etc/shop/pw\n{block}"
    )
}

#[test]
fn backup_keys_are_checked() {
    let repo = "  repository: /srv/backup\n";
    let cases = [
        (
            backup_yaml("{consistency: frozen}", repo),
            "unknown consistency `frozen`",
            "unitgen.yaml:6:27",
            "use live",
        ),
        (
            backup_yaml("{dump: pg_dump}", repo),
            "`dump` and `restore` go together",
            "unitgen.yaml:6:20",
            "give both commands",
        ),
        (
            backup_yaml("{volumes: [cache]}", repo),
            "`cache` is not a named volume of service `db`",
            "unitgen.yaml:6:24",
            "its volumes: data",
        ),
        (
            backup_yaml("{}", "  repository: rest:https://u:pw@host/x\n"),
            "the repository URL holds a password",
            "unitgen.yaml:10:15",
            "environment_file",
        ),
        (
            backup_yaml("{}", &format!("{repo}  keep: {{dayly: 7}}\n")),
            "unknown retention period `dayly`",
            "unitgen.yaml:11:10",
            "did you mean `daily`?",
        ),
        (
            backup_yaml("{}", &format!("{repo}  instances: [liv]\n")),
            "`liv` is not a declared instance",
            "unitgen.yaml:11:15",
            "did you mean `live`?",
        ),
        (
            // Written as it is into `Description=`: the backslash would join
            // the unit's next line to it (the render used to panic).
            backup_yaml("{}", "  repository: '/srv/backup\\'\n"),
            "cannot end in a backslash",
            "unitgen.yaml:10:15",
            "",
        ),
        (
            backup_yaml(
                "{}",
                &format!("{repo}  environment_file: \"/etc/shop/env\\r[Service]\"\n"),
            ),
            "cannot contain a carriage return",
            "unitgen.yaml:11:21",
            "",
        ),
        (
            backup_yaml("{}", &format!("{repo}  schedule: 'daily\\'\n")),
            "is not a calendar expression",
            "unitgen.yaml:11:13",
            "OnCalendar",
        ),
        (
            // Only characters calendars use, but not one systemd reads: the
            // timer would be left without a trigger at apply.
            backup_yaml("{}", &format!("{repo}  schedule: dailyx\n")),
            "`dailyx` is not a calendar expression: a number expected at `dailyx`",
            "unitgen.yaml:11:13",
            "OnCalendar",
        ),
        (
            backup_yaml("{}", &format!("{repo}  check: \"Mon..Fri 25:00\"\n")),
            "the hour is out of its",
            "unitgen.yaml:11:10",
            "",
        ),
        (
            backup_yaml("{}", &format!("{repo}  schedule: \"03:00 Mars/Olympus\"\n")),
            "`Mars/Olympus` is not a",
            "unitgen.yaml:11:13",
            "",
        ),
        (
            backup_yaml("{}", repo)
                .replace("backup: {}\n", "backup: null\n")
                .replace("    backup: null\n", ""),
            "no service says what to back up",
            "unitgen.yaml:",
            "add `backup: {}`",
        ),
    ];
    for (yaml, message, at, hint) in cases {
        assert_refused(&yaml, &[], message, at, Some(hint));
    }
}

/// A template whose `live` instance has one route, as `route` says (the
/// lines from `hosts:` on, indented under the list item).
fn routed(route: &str, more: &str) -> String {
    format!(
        "app: shop\nservices:\n  web:\n    image: shop:1\n    ports: [\"127.0.0.1:8001:80\", \"81\"]\ninstances:\n  live:\n    routes:\n      - {route}\n{more}"
    )
}

#[test]
fn bad_routes_are_located_and_explained() {
    let cases = [
        // Traefik 3.7 matched no request to these prefixes (it compares
        // the decoded, cleaned path): the routes answered 404 forever.
        (
            routed(
                "hosts: a.example\n        path: /caf%C3%A9\n        service: web\n        port: 80",
                "",
            ),
            "the path `/caf%C3%A9` has a `%` escape, which no request matches",
            "unitgen.yaml:10:15",
            Some("write the characters themselves"),
        ),
        (
            routed(
                "hosts: a.example\n        path: /x/../y\n        service: web\n        port: 80",
                "",
            ),
            "the path `/x/../y` has an empty, `.` or `..` segment",
            "unitgen.yaml:10:15",
            Some("the router cleans a request's path"),
        ),
        // An address with ACME (by default, or said): Let's Encrypt gives
        // one only a 6-day certificate Traefik does not renew as such.
        (
            routed(
                "hosts: 203.0.113.7\n        service: web\n        port: 80",
                "",
            ),
            "`203.0.113.7` is an IP address: the router gets ACME certificates for",
            "unitgen.yaml:9:16",
            Some("`tls: off`"),
        ),
        (
            routed(
                "hosts: a.example\n        aliases: [203.0.113.7]\n        service: web\n        port: 80\n        tls: acme",
                "",
            ),
            "`203.0.113.7` is an IP address",
            "unitgen.yaml:13:14",
            Some("route a domain that points at the host"),
        ),
        (
            routed(
                "hosts: a.example\n        service: webb\n        port: 80",
                "",
            ),
            "no service `webb` in the app template",
            "unitgen.yaml:10:18",
            Some("did you mean `web`?"),
        ),
        (
            routed(
                "hosts: a.example\n        service: web\n        port: 8080",
                "",
            ),
            "service `web` does not publish port 8080",
            "unitgen.yaml:11:15",
            Some("`web` publishes 80, 81"),
        ),
        (
            routed(
                "hosts: a.example\n        service: web\n        port: 81",
                "",
            ),
            "port 81 of `web` is published on a host port Docker chooses",
            "unitgen.yaml:11:15",
            Some("publish it on a fixed host port"),
        ),
        (
            routed(
                "hosts: a.example\n        service: web\n        port: 80",
                "  staging:\n    routes:\n      - {hosts: [b.example, a.example], service: web, port: 80}\n",
            ),
            "`a.example` is also routed by instance `staging`",
            "unitgen.yaml:9:16",
            Some("one router serves every instance"),
        ),
        (
            routed(
                "hosts: [a.example, B.example]\n        service: web\n        port: 80",
                "",
            ),
            "`B.example` has uppercase letters",
            "unitgen.yaml:9:28",
            Some("write `b.example`"),
        ),
        (
            routed(
                "hosts: a.example\n        path: api\n        service: web\n        port: 80",
                "",
            ),
            "the path `api` does not start with `/`",
            "unitgen.yaml:10:15",
            None,
        ),
        (
            routed(
                "hosts: a.example\n        service: web\n        port: 80\n        tls: acmee",
                "",
            ),
            "unknown tls `acmee`",
            "unitgen.yaml:12:14",
            Some("use `acme`"),
        ),
        (
            routed(
                "hosts: a.example\n        servce: web\n        port: 80",
                "",
            ),
            "unknown key `servce`",
            "unitgen.yaml:10:9",
            Some("did you mean `service`?"),
        ),
        (
            routed(
                "hosts: a.example\n        servce: web\n        port: 80",
                "",
            ),
            "this route has no `service`",
            "unitgen.yaml:9:9",
            Some("a route needs `hosts`"),
        ),
        (
            routed(
                "hosts: a.example\n        service: web\n        port: 80",
                "router:\n  acme: {ca_server: \"http://ca.example\"}\n",
            ),
            "`http://ca.example` is not an https:// URL",
            "unitgen.yaml:13:21",
            None,
        ),
        (
            routed(
                "hosts: a.example\n        service: web\n        port: 80\n        https_redirect: true\n        tls: off",
                "",
            ),
            "`https_redirect` needs TLS",
            "unitgen.yaml:12:25",
            None,
        ),
    ];
    for (yaml, message, at, hint) in cases {
        assert_refused(&yaml, &["validate"], message, at, hint);
    }
}

// `router: {directory: 5}` passed `validate` (and render, plan) while no
// instance had routes: the block was read only for a routed instance, so
// its mistakes waited for the first route. It is checked for every one.
#[test]
fn the_router_block_is_checked_without_routes() {
    let app = |router: &str| {
        format!(
            "app: shop\nservices:\n  web:\n    image: unitgen-test/busybox:1\n\
             router:\n  {router}\ninstances:\n  live: {{}}\n"
        )
    };
    for (router, message, at) in [
        (
            "directory: 5",
            "`5` is not an absolute path",
            "unitgen.yaml:6:14",
        ),
        (
            "address: 8080",
            "`8080` is not an IP address",
            "unitgen.yaml:6:12",
        ),
        (
            "acme: {email: true}",
            "`true` is not an email address",
            "unitgen.yaml:6:17",
        ),
        (
            "image: \"traefik 3\"",
            "`traefik 3` is not a valid image",
            "unitgen.yaml:6:10",
        ),
    ] {
        for args in [&["validate"][..], &[]] {
            assert_refused(&app(router), args, message, at, None);
        }
    }
    // A good block changes nothing for an instance without routes.
    let (out, dir) = run(&app("directory: /srv/router"), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let units = std::fs::read_dir(dir.path().join("units")).unwrap();
    assert!(
        units
            .map(|u| u.unwrap().file_name())
            .all(|n| n != "unitgen-router.service"),
        "no router for an instance without routes"
    );
}

/// Issue 11's follow-up: `router:` settings came from whichever app applied
/// last. An apply whose router differs from the installed one while it
/// serves another instance is refused, before anything changes, pointing
/// at this file's `router:` and naming both routers' settings.
#[test]
fn router_settings_that_differ_from_the_shared_router_are_refused_at_apply() {
    let yaml = routed(
        "hosts: a.example\n        service: web\n        port: 80\n        tls: off",
        "router:\n  http_port: 8080\n  https_port: 8443\n",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("unitgen.yaml"), &yaml).unwrap();
    // A host (--root) whose router another app's apply installed, with the
    // defaults, and that serves that app's instance.
    let root = dir.path().join("host");
    let units = root.join("etc/systemd/system");
    let dynamic = root.join("var/lib/unitgen/router/dynamic");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::create_dir_all(&dynamic).unwrap();
    std::fs::write(
        units.join("unitgen-router.service"),
        "[Service]\nExecStart=/bin/true\n\n[X-Unitgen]\nRole=router\n\
         Settings=image traefik:v3.7, ports 80 and 443 on every address\n\
         Directory=/var/lib/unitgen/router\n",
    )
    .unwrap();
    std::fs::write(dynamic.join("blog-live.yaml"), "# claim: blog.example\n").unwrap();
    // A file of any name in the router's folder is named back, shown and
    // not obeyed by the terminal, on its line (a line feed in a file name
    // added a line to the message, in plan's output too).
    std::fs::write(
        dynamic.join("x\u{1b}[2J\u{202e}\nz.yaml"),
        "# claim: x.example\n",
    )
    .unwrap();
    let unitgen = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_unitgen"))
            .env("NO_COLOR", "1")
            .env("COLUMNS", "200")
            .current_dir(dir.path())
            .args(args)
            .arg("--root")
            .arg(&root)
            .output()
            .unwrap()
    };

    let out = unitgen(&["apply", "live"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for expected in [
        "shop-live's router settings differ from those of unitgen-router.service",
        "which serves blog-live, x\\u{1b}[2J\\u{202e}\\nz on this host; nothing was",
        "unitgen.yaml:14:14",
        "this apply's router",
        "the installed router: image traefik:v3.7, ports 80 and 443",
        "this apply's router:  image traefik:v3.7, ports 8080 and 8443",
        "--replace-router",
    ] {
        assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    }
    let written: Vec<_> = std::fs::read_dir(&units).unwrap().flatten().collect();
    assert_eq!(written.len(), 1, "only the router unit: {written:?}");

    // plan says that apply would refuse it.
    let out = unitgen(&["plan", "live"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("! apply refuses this router change without --replace-router"),
        "{shown}"
    );
    assert!(
        shown.contains("x\\u{1b}[2J\\u{202e}\\nz on this host")
            && !shown.contains(['\u{1b}', '\u{202e}']),
        "{shown}"
    );

    // With --replace-router, apply goes past the check (and here fails to
    // reach the host's systemd, which this test does not have).
    let out = unitgen(&["apply", "live", "--replace-router"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!err.contains("router settings differ"), "{err}");
}

/// Units name the state directory (the backup's `Environment=`, the
/// secrets' env files): one they could not name is refused before anything
/// (systemd ignores an `Environment=` value with a control character).
#[test]
fn a_state_directory_units_cannot_name_is_refused() {
    let (out, dir) = run(
        GOOD_WEB,
        &["plan", "live", "--state-dir", "/tmp/unitgen\tstate"],
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the state directory \"/tmp/unitgen\\tstate\" is not UTF-8 text")
            && err.contains("control"),
        "{err}"
    );
    assert!(!dir.path().join("units").exists());
}

/// A template of 1,000 services (read in two halves at once, see
/// src/template/parallel_parse.rs) with `mistake` replacing the line of
/// service `at`'s image; the line number of that line.
fn big_template(mistakes: &[(usize, &str)]) -> String {
    let mut yaml = String::from("app: shop\nservices:\n");
    for i in 0..1_000 {
        let image = (mistakes.iter())
            .find(|(at, _)| *at == i)
            .map_or("    image: shop:1", |(_, line)| line);
        yaml.push_str(&format!(
            "  svc{i:04}:\n{image}\n    command: [/bin/serve, --id, \"{i}\"]\n    environment: {{ID: \"{i}\"}}\n"
        ));
    }
    yaml
}

/// The line of service `i`'s image in [`big_template`].
fn image_line(i: usize) -> usize {
    2 + 4 * i + 2
}

// Errors in a big template are found where they are, whichever half of it
// they are in, as in a small one.
#[test]
fn mistakes_in_a_big_template_are_located_in_either_half() {
    let cases = [
        (
            big_template(&[(900, "    image: shop:1\n    ports: 8080")]),
            "expected a list".to_string(),
            format!("unitgen.yaml:{}:12", image_line(900) + 1),
        ),
        (
            big_template(&[(950, "    image: shop:1\n  svc0003: {image: x}")]),
            "duplicate key `svc0003`".to_string(),
            format!("unitgen.yaml:{}:3", image_line(950) + 1),
        ),
        (
            big_template(&[
                (10, "    image: \"{{ nope }}\""),
                (990, "    image: \"{{ nope }}\""),
            ]),
            "undefined variable `nope`".to_string(),
            format!("unitgen.yaml:{}:", image_line(990)),
        ),
    ];
    for (yaml, message, at) in cases {
        assert!(yaml.len() > 64 * 1024, "big enough to be read in halves");
        assert_refused(&yaml, &[], &message, &at, None);
    }
    // Both halves' problems, in file order.
    let (out, _dir) = run(
        &big_template(&[
            (10, "    image: \"{{ nope }}\""),
            (990, "    image: \"{{ nope }}\""),
        ]),
        &[],
    );
    let err = String::from_utf8(out.stderr).unwrap();
    let first = err.find(&format!("unitgen.yaml:{}:", image_line(10)));
    let second = err.find(&format!("unitgen.yaml:{}:", image_line(990)));
    assert!(first.is_some() && first < second, "{err}");
}

/// Values too long for a unit line, in keys read as written (not through a
/// template expression) and on one long line of a flow-style file: each is
/// refused where it is written, the ones past column 65535 too (miette
/// panicked drawing their snippet: they say `file:line:column` instead).
#[test]
fn values_too_long_for_a_unit_are_refused_where_written_on_any_column() {
    let long = "d".repeat(40_000);
    for (top, at) in [
        (
            format!("router: {{directory: /srv/{long}}}\n"),
            "unitgen.yaml:6:21",
        ),
        (
            format!("fleet: {{metadata: {{region: r{long}}}}}\n"),
            "unitgen.yaml:6:28",
        ),
        (
            format!(
                "router: {{acme: {{email: a{long}@example.com, ca_server: https://{long}}}}}\n"
            ),
            "at unitgen.yaml:6:40050",
        ),
    ] {
        let yaml = format!(
            "app: shop\nservices:\n  web:\n    image: x\n    ports: [\"127.0.0.1:8080:80\"]\n{top}\
             instances:\n  live: {{routes: [{{hosts: a.example.com, service: web, port: 80}}]}}\n"
        );
        let (out, dir) = run(&yaml, &[]);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            &err[..err.len().min(2000)]
        );
        assert!(
            err.contains("unitgen writes at most 32 KiB per value"),
            "{err:.2000}"
        );
        assert!(err.contains(at), "expected {at:?} in {err:.2000}");
        assert!(!dir.path().join("units").exists());
    }
}

/// Characters a terminal obeys rather than shows (as `diagnostic::shown`
/// lists them).
fn acts_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
        // Drawn as nothing: zero-width spaces and joiners, fillers, tags.
        || matches!(c, '\u{ad}' | '\u{34f}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
            | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2065}'
            | '\u{206a}'..='\u{206f}' | '\u{3164}' | '\u{feff}' | '\u{ffa0}'
            | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e0fff}')
}

/// A value on the command line (an instance, a service, a file, a `--set`
/// key or value) that holds an escape sequence, a carriage return, a bell,
/// a C1 control, a bidirectional override or a line feed is shown escaped in
/// whatever unitgen says back, for every command that echoes it; it changes
/// nothing on the host either.
#[test]
fn hostile_command_line_values_are_shown_escaped() {
    let hostile = [
        "a\u{1b}[2Jb",
        "a\rb",
        "a\u{7}b",
        "a\u{9b}31mb",
        "a\u{202e}b",
        "a\u{8}b",
        "a\nFAKE: all good",
    ];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("unitgen.yaml"),
        // A value only `live` has: another instance's messages name it.
        "app: shop\nservices:\n  web:\n    image: \"shop:{{ tag }}\"\ninstances:\n  live: {tag: \"1\"}\n",
    )
    .unwrap();
    let unitgen = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_unitgen"))
            .env("NO_COLOR", "1")
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    // An installed instance, to ask for services it does not have.
    let out = unitgen(&["render", "live", "--out", "units"]);
    assert!(out.status.success(), "{out:?}");
    let installed = support_files(&dir.path().join("units"));
    for value in hostile {
        let shop_value = format!("shop/{value}");
        let set = format!("{value}=1");
        let set_value = format!("web={value}");
        let host = ["--unit-dir", "units", "--state-dir", "state"];
        let commands: Vec<Vec<&str>> = vec![
            vec!["render", value],
            vec!["plan", value],
            vec!["status", value],
            vec!["status", &shop_value],
            vec!["destroy", value],
            vec!["logs", value],
            vec!["history", value],
            vec!["rollback", value],
            vec!["start", "live", value],
            vec!["stop", "live", "web", value],
            vec!["logs", "live", value],
            vec!["exec", "live", value, "sh"],
            vec!["render", "live", "--set", &set],
            vec!["render", "live", "--set", &set_value],
            vec!["render", "live", "-f", value],
            vec!["validate", "-f", value],
            vec!["import", value],
            vec!["render", "live", "--out", value, "--check"],
            vec!["render", value, "--allow-undeclared"],
            vec!["render", "live", "--etcd", value],
            vec!["status", "live", "--root", value],
            vec!["start", "live", "--unit-dir", value],
        ];
        for command in commands {
            let mut args = command.clone();
            let own_host = command.contains(&"--root") || command.contains(&"--unit-dir");
            if !matches!(command[0], "render" | "validate" | "import") && !own_host {
                args.extend(host);
            }
            let out = unitgen(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            let said = format!("{err}{}", String::from_utf8_lossy(&out.stdout));
            assert!(!out.status.success(), "{command:?} succeeded: {said}");
            assert!(
                !said.chars().any(|c| acts_on_terminal(c) && c != '\n'),
                "{command:?}: raw control in:\n{said:?}"
            );
            // Every `FAKE` shown follows the line feed written as `\n`.
            assert_eq!(
                said.matches("FAKE").count(),
                said.matches("\\nFAKE").count(),
                "{command:?}: a value's line feed made a line:\n{said}"
            );
            assert!(said.len() > 10, "{command:?}: says why: {said:?}");
        }
    }
    assert_eq!(support_files(&dir.path().join("units")), installed);
    assert!(!dir.path().join("state").exists());
}

fn support_files(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let text = std::fs::read_to_string(e.path()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    files
}

/// A command an error tells the user to run came out cut where miette
/// wrapped the line, after a `/` or a `-` of its paths, with the report's
/// margin (`│`) drawn into the cut: the `mv` that sets a damaged revision
/// aside could not be copied in one piece. It is on a line of its own now,
/// whole at any width, its paths quoted for the shell: copied from the
/// output (from `mv` to the line's end) and run, it does what it says.
#[test]
fn a_suggested_command_is_whole_at_any_width_and_runs_as_copied() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("unitgen.yaml"), GOOD_WEB).unwrap();
    let state = dir
        .path()
        .join("a state folder/with-a-name-longer-than-a-narrow-terminal-is-wide/var/lib/unitgen");
    let revisions = state.join("shop-live/revisions");
    std::fs::create_dir_all(revisions.join("0001")).unwrap();
    std::fs::write(revisions.join("0001/revision.json"), "[").unwrap();
    let history = |columns: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_unitgen"));
        cmd.env("NO_COLOR", "1")
            .env_remove("COLUMNS")
            .current_dir(dir.path())
            .args(["history", "live", "--state-dir"])
            .arg(&state);
        if let Some(columns) = columns {
            cmd.env("COLUMNS", columns);
        }
        cmd.output().unwrap()
    };
    let mut copied = Vec::new();
    for columns in [Some("40"), Some("80"), None] {
        let out = history(columns);
        let said = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(said.contains("0001/revision.json:"), "{said}");
        let lines: Vec<&str> = said.lines().filter(|l| l.contains("mv ")).collect();
        let [line] = lines[..] else {
            panic!("COLUMNS={columns:?}: one line with the command in\n{said}")
        };
        copied.push(line[line.find("mv ").unwrap()..].to_string());
        // Wrapped prose, not a cut command: the words after it are on
        // lines of their own.
        let width: usize = columns.map_or(usize::MAX, |c| c.parse().unwrap());
        assert!(
            (said.lines())
                .filter(|l| l.chars().count() > width)
                .all(|l| l == line || !l.trim_start_matches([' ', '│']).contains(' ')),
            "COLUMNS={columns:?}: a line is longer than the terminal:\n{said}"
        );
    }
    assert!(
        copied.iter().all(|c| *c == copied[0]),
        "the same at every width: {copied:#?}"
    );
    let run = Command::new("sh")
        .args(["-c", &copied[0]])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}: {run:?}", copied[0]);
    assert!(revisions.join(".0001.unreadable/revision.json").exists());
    // The only revision set aside, history reads the folder again: no
    // revision recorded (exit 4, as status for nothing installed), and
    // no error.
    let out = history(Some("40"));
    assert_eq!(
        out.status.code(),
        Some(4),
        "the revision set aside, history reads: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
