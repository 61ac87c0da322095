//! What compose means, said in a template, becomes units that do the same
//! (issue 9): oneshot init services, `on-failure:N`, `restart: true` on a
//! dependency. Rendered with the built binary and checked by
//! `systemd-analyze verify`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn unitgen(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("unitgen runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Renders instance `live` of `template` and returns the units by name,
/// having checked that `systemd-analyze verify` has nothing to say.
fn render(template: &str) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("unitgen.yaml"), template).unwrap();
    let out = unitgen(dir.path(), &["render", "live", "--out", "units"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut paths: Vec<_> = fs::read_dir(dir.path().join("units"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .expect("systemd-analyze is installed");
    assert_eq!(
        text(&verify.stderr),
        "",
        "systemd-analyze verify complained"
    );
    paths
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read_to_string(p).unwrap())
        })
        .collect()
}

fn unit<'a>(units: &'a [(String, String)], name: &str) -> &'a str {
    &units
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no unit {name}"))
        .1
}

fn errors(template: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("unitgen.yaml"), template).unwrap();
    let out = unitgen(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    text(&out.stderr)
}

/// Paperless, Immich: a `chown` / bucket-creation container runs and exits;
/// the others wait for it with `condition: service_completed_successfully`.
#[test]
fn a_oneshot_runs_to_completion_before_its_dependents() {
    let units = render(
        r#"app: shop
services:
  init:
    image: busybox:1
    command: [chown, -R, "1000:1000", /data]
    oneshot: true
    volumes: ["data:/data"]
  web:
    image: nginx:1
    depends_on:
      init: {condition: service_completed_successfully}
instances:
  live: {}
"#,
    );
    let init = unit(&units, "shop-live-init.service");
    for line in [
        "\nType=oneshot\n",
        "\nRemainAfterExit=yes\n",
        "\nRestart=no\n",
        "\nTimeoutStartSec=infinity\n",
        "\nExecStart=/usr/bin/docker run --rm \\\n",
    ] {
        assert!(init.contains(line), "{line:?} in\n{init}");
    }
    assert!(!init.contains("ExecStartPost="), "{init}");
    assert!(!init.contains("ExecStop="), "{init}");
    let web = unit(&units, "shop-live-web.service");
    assert!(
        web.contains(
            "\nRequires=docker.service shop-live-network.service shop-live-init.service\n"
        ),
        "{web}"
    );
    assert!(
        web.contains("\nAfter=docker.service shop-live-network.service shop-live-init.service\n"),
        "{web}"
    );
    assert!(!web.contains("Wants="), "{web}");
}

/// Docker's `on-failure:3` restarts at most three times; Loki and Netbox
/// write it. The count was lost.
#[test]
fn on_failure_keeps_its_count() {
    let units = render(
        "app: shop\nservices:\n  worker:\n    image: busybox:1\n    restart: on-failure:3\ninstances:\n  live: {}\n",
    );
    let worker = unit(&units, "shop-live-worker.service");
    for line in [
        "\nStartLimitIntervalSec=infinity\n",
        "\nStartLimitBurst=4\n",
        "\nRestart=on-failure\n",
    ] {
        assert!(worker.contains(line), "{line:?} in\n{worker}");
    }
}

/// Docker's `on-failure:0` sets no maximum (its restart manager enforces
/// a count only above 0); it became `StartLimitBurst=1`, which let the
/// unit start and never restart.
#[test]
fn on_failure_0_restarts_without_a_limit_as_docker_does() {
    let units = render(
        "app: shop\nservices:\n  worker:\n    image: busybox:1\n    restart: on-failure:0\ninstances:\n  live: {}\n",
    );
    let worker = unit(&units, "shop-live-worker.service");
    assert!(worker.contains("\nRestart=on-failure\n"), "{worker}");
    assert!(!worker.contains("StartLimitBurst="), "{worker}");
}

/// `depends_on: {db: {restart: true}}`: restarting db restarts the app.
#[test]
fn restart_true_on_a_dependency_is_part_of() {
    let units = render(
        r#"app: shop
services:
  db: postgres:16
  cache: redis:7
  web:
    image: nginx:1
    depends_on:
      db: {condition: service_started, restart: true}
      cache: {condition: service_started}
instances:
  live: {}
"#,
    );
    let web = unit(&units, "shop-live-web.service");
    assert!(web.contains("\nPartOf=shop-live-db.service\n"), "{web}");
    assert!(
        web.contains("\nWants=shop-live-db.service shop-live-cache.service\n"),
        "{web}"
    );
}

#[test]
fn waiting_for_completion_needs_a_oneshot() {
    let stderr = errors(
        "app: shop\nservices:\n  init: busybox:1\n  web:\n    image: nginx:1\n    depends_on:\n      init: {condition: service_completed_successfully}\ninstances:\n  live: {}\n",
    );
    assert!(
        stderr.contains("`web` waits for `init` to complete, but `init` is not a oneshot"),
        "{stderr}"
    );
    assert!(stderr.contains("unitgen.yaml:7:25"), "{stderr}");
    assert!(stderr.contains("add `oneshot: true` to `init`"), "{stderr}");
    let stderr = errors(
        "app: shop\nservices:\n  init:\n    image: busybox:1\n    oneshot: true\n    restart: always\ninstances:\n  live: {}\n",
    );
    assert!(
        stderr.contains("`init` is a oneshot: it cannot be restarted `always`"),
        "{stderr}"
    );
    assert!(stderr.contains("unitgen.yaml:6:14"), "{stderr}");
}

/// Loki's image is distroless: `test: [CMD, /usr/bin/loki, -health]` must
/// run without a shell. `--health-cmd` always runs one, so the test goes into
/// an image built on the service's own (see tests/compose_apply.rs for it
/// running).
#[test]
fn an_exec_form_healthcheck_runs_without_a_shell() {
    let units = render(
        r#"app: shop
services:
  loki:
    image: "grafana/loki:3.1"
    healthcheck:
      test: [CMD, /usr/bin/loki, -health, "it's 100%"]
      interval: 5s
      retries: 3
  shell:
    image: "grafana/loki:3.1"
    healthcheck:
      test: [CMD-SHELL, "wget -q -O- http://localhost:3100/ready || exit 1"]
instances:
  live: {}
"#,
    );
    let loki = unit(&units, "shop-live-loki.service");
    assert!(
        loki.contains(concat!(
            "        printf '%%s\\\\n' 'FROM grafana/loki:3.1' \\\"LABEL unitgen.base-image=$$base\\\" ",
            "'HEALTHCHECK CMD [\\\"/usr/bin/loki\\\",\\\"-health\\\",\\\"it'\\\\''s 100%%\\\"]' | \\\n",
            "          /usr/bin/docker build --quiet --tag unitgen-health/shop-live-loki - >/dev/null\"\n"
        )),
        "{loki}"
    );
    assert!(!loki.contains("--health-cmd"), "{loki}");
    assert!(loki.contains("    --health-interval 5s \\\n"), "{loki}");
    assert!(
        loki.contains("    unitgen-health/shop-live-loki\n"),
        "{loki}"
    );
    let shell = unit(&units, "shop-live-shell.service");
    assert!(
        shell.contains(
            "    --health-cmd \"wget -q -O- http://localhost:3100/ready || exit 1\" \\\n"
        ),
        "{shell}"
    );
    assert!(shell.contains("    grafana/loki:3.1\n"), "{shell}");
}
