//! `unitgen render` and `unitgen validate` as a user runs them: the units of
//! every example (as reviewed snapshots), their validity for systemd, their
//! isolation between instances, and the folder workflow for pull requests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use unitgen::site::Site;
use unitgen::template::Template;

fn unitgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run unitgen")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Every example's entry file (the one that declares instances).
fn examples() -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("examples").unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        for file in ["unitgen.yaml", "deployments.yaml", "site.yaml"] {
            if dir.join(file).exists() {
                found.push((name.clone(), dir.join(file)));
            }
        }
    }
    found.sort();
    assert!(
        found.len() >= 3,
        "expected at least three examples, found {found:?}"
    );
    found
}

/// The instances a file declares; `APP/INSTANCE` in a site file.
fn instances(file: &Path) -> Vec<String> {
    let names = if file.ends_with("site.yaml") {
        let site = Site::load(file).unwrap();
        (site.apps.iter())
            .flat_map(|app| {
                app.instances
                    .iter()
                    .map(|p| format!("{}/{}", app.name, p.instance))
            })
            .collect()
    } else {
        Template::load(file).unwrap().instance_names()
    };
    assert!(
        names.len() >= 2,
        "{} should declare two instances",
        file.display()
    );
    names
}

fn render(file: &Path, instance: &str) -> String {
    let out = unitgen(&["render", instance, "-f", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "render {instance} failed: {}",
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn examples_render_as_reviewed() {
    for (example, file) in examples() {
        for instance in instances(&file) {
            insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
                let name = format!("{example}-{}", instance.replace('/', "-"));
                insta::assert_snapshot!(name, render(&file, &instance));
            });
        }
    }
}

// The router's backend in a sidekick asked `docker port` of the first
// `docker` on systemd's PATH, where every other line names /usr/bin/docker,
// the CLI unitgen itself asks (see `docker::DOCKER`).
#[test]
fn units_run_docker_by_its_path_only() {
    for (_, file) in examples() {
        for instance in instances(&file) {
            let units = render(&file, &instance);
            // Where a command starts: a line, `$(`, after `|`, `;`, `&&`,
            // `=` or an opening quote (prose and messages say "docker" too).
            for (at, _) in units.match_indices("docker ") {
                let before = units[..at].trim_end_matches(' ');
                assert!(
                    !before.ends_with(['\n', '(', '|', ';', '&', '=', '"']),
                    "{instance}: bare docker in {}",
                    &units[at.saturating_sub(60)..at + 30]
                );
            }
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    for (_, file) in examples() {
        for instance in instances(&file) {
            assert_eq!(render(&file, &instance), render(&file, &instance));
        }
    }
}

/// Names a rendered instance claims on a host: units, containers, networks, volumes.
fn claimed_names(units: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut words = units.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if let Some(unit) = word.strip_prefix("# ==> ") {
            names.insert(format!("unit:{unit}"));
        }
        if word == "==>" {
            names.insert(format!("unit:{}", words.peek().unwrap()));
        }
        match word {
            "--name" => names.insert(format!("container:{}", words.peek().unwrap())),
            "--network" => names.insert(format!("network:{}", words.peek().unwrap())),
            "--volume" => {
                let spec = words.peek().unwrap().trim_matches('"');
                let source = spec.split(':').next().unwrap();
                // Host paths are shared on purpose; named volumes must not be.
                source.starts_with('/') || names.insert(format!("volume:{source}"))
            }
            _ => false,
        };
    }
    names
}

#[test]
fn two_instances_share_no_unit_container_network_or_volume() {
    for (example, file) in examples() {
        let all = instances(&file);
        let a = claimed_names(&render(&file, &all[0]));
        let b = claimed_names(&render(&file, &all[1]));
        assert!(a.iter().any(|n| n.starts_with("container:")));
        assert!(a.iter().any(|n| n.starts_with("network:")));
        let shared: Vec<_> = a.intersection(&b).collect();
        assert!(
            shared.is_empty(),
            "{example}: {} and {} share {shared:?}",
            all[0],
            all[1]
        );
    }
}

#[test]
fn every_example_passes_systemd_analyze_verify() {
    for (example, file) in examples() {
        for instance in instances(&file) {
            let dir = tempfile::tempdir().unwrap();
            let out = unitgen(&[
                "render",
                &instance,
                "-f",
                file.to_str().unwrap(),
                "--out",
                dir.path().to_str().unwrap(),
            ]);
            assert!(out.status.success(), "{}", stderr(&out));
            let mut units: Vec<PathBuf> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            units.sort();
            let verify = Command::new("systemd-analyze")
                .args(["verify", "--man=no"])
                .args(&units)
                .output()
                .expect("systemd-analyze is installed");
            // verify can exit 0 and still complain: stderr is the verdict.
            assert_eq!(
                stderr(&verify),
                "",
                "{example}/{instance}: systemd-analyze verify complained"
            );
            assert!(verify.status.success());
        }
    }
}

const BLOG: &str = "examples/blog/unitgen.yaml";

#[test]
fn out_folder_is_written_checked_and_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    std::fs::write(dir.path().join("README.md"), "not ours").unwrap();
    std::fs::write(
        dir.path().join("other.service"),
        "[Unit]\nDescription=not ours\n",
    )
    .unwrap();

    let out = unitgen(&["render", "live", "-f", BLOG, "--out", out_dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = unitgen(&["render", "staging", "-f", BLOG, "--out", out_dir]);
    assert!(out.status.success());
    assert!(dir.path().join("blog-live-web.service").exists());
    assert!(dir.path().join("blog-staging-web.service").exists());

    let check = unitgen(&["render", "live", "-f", BLOG, "--out", out_dir, "--check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));

    // A template change makes the committed units out of date.
    let check = unitgen(&[
        "render",
        "live",
        "-f",
        BLOG,
        "--out",
        out_dir,
        "--check",
        "--set",
        "version=9.9",
    ]);
    assert_eq!(check.status.code(), Some(2));
    assert!(
        stdout(&check).contains("out of date:"),
        "{}",
        stdout(&check)
    );
    assert!(stdout(&check).contains("blog-live-web.service"));
    assert!(
        !stdout(&check).contains("blog-live-db.service"),
        "only what changed is named"
    );
    // Regression: the hint dropped `-f FILE` (and the values), so running
    // it rendered another template.
    assert!(
        stderr(&check).contains(&format!(
            "run `unitgen render live -f {BLOG} --set version=9.9 --out {out_dir}`"
        )),
        "{}",
        stderr(&check)
    );

    // A unit of this instance that is no longer rendered is stale, and removed.
    let stale = dir.path().join("blog-live-old.service");
    let mut text = std::fs::read_to_string(dir.path().join("blog-live-cache.service")).unwrap();
    text = text.replace("Service=cache", "Service=old");
    std::fs::write(&stale, text).unwrap();
    let check = unitgen(&["render", "live", "-f", BLOG, "--out", out_dir, "--check"]);
    assert_eq!(check.status.code(), Some(2));
    assert!(stdout(&check).contains("stale:"));
    assert!(stale.exists(), "--check changes nothing");
    let out = unitgen(&["render", "live", "-f", BLOG, "--out", out_dir]);
    assert!(out.status.success());
    assert!(!stale.exists());
    assert!(
        dir.path().join("blog-staging-web.service").exists(),
        "other instance untouched"
    );
    assert!(dir.path().join("README.md").exists());
    assert!(dir.path().join("other.service").exists());
}

#[test]
fn undeclared_instance_renders_with_set_values() {
    let out = unitgen(&[
        "render",
        "preview",
        "-f",
        BLOG,
        "--set",
        "version=2.0",
        "--set",
        "port=9000",
        "--set",
        "db_password=x",
        "--allow-undeclared",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("ghcr.io/acme/blog:2.0"));
    assert!(stdout(&out).contains("--name blog-preview-web"));
}

#[test]
fn set_overrides_a_declared_value() {
    let out = unitgen(&["render", "live", "-f", BLOG, "--set", "version=1.4.3"]);
    assert!(stdout(&out).contains("ghcr.io/acme/blog:1.4.3"));
    assert!(!stdout(&out).contains("1.4.2"));
}

#[test]
fn every_example_validates() {
    for (example, file) in examples() {
        let out = unitgen(&["validate", "-f", file.to_str().unwrap()]);
        assert!(out.status.success(), "{example}: {}", stderr(&out));
    }
}

#[test]
fn user_units_do_without_the_system_docker_service() {
    let out = unitgen(&["render", "live", "-f", BLOG, "--user"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let units = stdout(&out);
    assert!(
        !units.contains("docker.service"),
        "a user manager has no docker.service"
    );
    assert!(units.contains("WantedBy=default.target"));
    assert!(!units.contains("multi-user.target"));
    assert!(units.contains("Requires=blog-live-network.service"));
}

#[test]
fn etcd_on_the_command_line_turns_discovery_on() {
    let hello = "examples/hello/unitgen.yaml";
    let plain = stdout(&unitgen(&["render", "live", "-f", hello]));
    assert!(
        !plain.contains("-announce.service"),
        "no etcd, no sidekicks"
    );

    let out = unitgen(&[
        "render",
        "live",
        "-f",
        hello,
        "--etcd",
        "http://10.0.0.1:2379,http://10.0.0.2:2379",
        "--etcd-api",
        "v2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let units = stdout(&out);
    assert!(
        units.contains("# ==> hello-live-web-announce.service <=="),
        "web publishes a port"
    );
    assert!(
        !units.contains("hello-live-api-announce"),
        "api publishes none"
    );
    assert!(units.contains("Environment=ETCDCTL_API=2"));
    assert!(
        units.contains("Environment=ETCDCTL_ENDPOINTS=http://10.0.0.1:2379,http://10.0.0.2:2379")
    );
    assert!(units.contains("--ttl 30"), "v2 keys carry a TTL");

    let bad = unitgen(&["render", "live", "-f", hello, "--etcd", "10.0.0.1:2379"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("etcd endpoint `10.0.0.1:2379` is not an http(s) URL"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn validate_warns_when_instances_would_share_a_host_port() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unitgen.yaml");
    std::fs::write(
        &file,
        "app: shop\nservices:\n  web:\n    image: shop:1\n    ports: [\"8080:80\"]\ninstances:\n  live: {}\n  staging: {}\n",
    )
    .unwrap();
    let out = unitgen(&["validate", "-f", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "a warning, not an error: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(
            "warning: instances `live` (web) and `staging` (web) both publish host port 8080/tcp"
        ),
        "{}",
        stderr(&out)
    );
    // The router a routed instance brings listens on its ports for every
    // instance of the host; on another address it is no clash.
    std::fs::write(
        &file,
        "app: shop\nservices:\n  web:\n    image: shop:1\n    ports: [\"{{ port }}:80\"]\n\
         instances:\n  live:\n    port: 127.0.0.1:8080\n    routes:\n      - hosts: shop.example.com\n        service: web\n        port: 80\n\
         \x20 admin:\n    port: 80\n  spare:\n    port: 127.0.0.2:443\n\
         router:\n  address: 127.0.0.1\n",
    )
    .unwrap();
    let out = unitgen(&["validate", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "warning: instance `admin` (web) publishes host port 80/tcp, where the host's router listens for `live`'s routes"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("`spare`"), "{}", stderr(&out));
    let examples = unitgen(&["validate", "-f", BLOG]);
    assert!(
        !stderr(&examples).contains("warning"),
        "{}",
        stderr(&examples)
    );
}

// Regression: `unitgen plan ... | head` panicked on the closed pipe (exit
// 101). A reader that goes away is not an error: no panic, no message, and
// the command's own outcome stands.
#[test]
fn a_closed_pipe_is_not_an_error() {
    let units = tempfile::tempdir().unwrap();
    let unit_dir = units.path().to_str().unwrap();
    let file = "examples/blog/unitgen.yaml";
    for (args, code) in [
        (vec!["render", "live", "-f", file], 0),
        (vec!["plan", "live", "-f", file, "--unit-dir", unit_dir], 2),
    ] {
        // The read end is closed before unitgen writes a byte: its first
        // write fails with EPIPE every time.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_unitgen"))
            .args(&args)
            .stdout(writer)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

#[test]
fn a_start_lasts_as_long_as_the_wait_for_dependencies_in_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unitgen.yaml");
    let render = |wait: &str| {
        std::fs::write(
            &file,
            format!(
                "app: w\netcd: {{endpoints: http://10.0.0.1:2379{wait}}}\nservices:\n  db: {{image: x, ports: [\"5432:5432\"]}}\n  api: {{image: x, depends_on: [db]}}\n  job: {{image: x, depends_on: [db], oneshot: true}}\ninstances:\n  live: {{}}\n"
            ),
        )
        .unwrap();
        let out = unitgen(&["render", "live", "-f", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let units = stdout(&out);
        move |name: &str| {
            let start = units.find(&format!("# ==> {name} <==")).unwrap();
            let unit = units[start..].split("\n# ==> ").next().unwrap();
            let line = unit.lines().find(|l| l.starts_with("TimeoutStartSec="));
            line.unwrap().to_string()
        }
    };
    // The default wait (60 s) fits in the usual 5 minutes.
    let default = render("");
    assert_eq!(default("w-live-api.service"), "TimeoutStartSec=5min");
    // A longer wait: systemd must not end the start before the wait ends
    // (the unit's log would say "timeout", not which address is missing).
    let long = render(", wait: 10m");
    assert_eq!(long("w-live-api.service"), "TimeoutStartSec=840s");
    assert_eq!(
        long("w-live-db.service"),
        "TimeoutStartSec=5min",
        "waits for nothing"
    );
    assert_eq!(long("w-live-job.service"), "TimeoutStartSec=infinity");
}

#[test]
fn the_stop_signal_sets_the_exit_status_of_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unitgen.yaml");
    std::fs::write(
        &file,
        "app: sig\nservices:\n  web: {image: x, stop_signal: SIGINT}\n  db: x\ninstances:\n  live: {}\n",
    )
    .unwrap();
    let out = unitgen(&["render", "live", "-f", file.to_str().unwrap()]);
    let units = stdout(&out);
    let unit = |name: &str| {
        let start = units.find(&format!("# ==> {name} <==")).unwrap();
        units[start..].split("\n# ==> ").next().unwrap().to_string()
    };
    // 128 + SIGINT (2): what `docker run` exits with when the container
    // ends on the signal `docker stop` sent.
    assert!(unit("sig-live-web.service").contains("\nSuccessExitStatus=130\n"));
    assert!(unit("sig-live-web.service").contains("--stop-signal SIGINT"));
    assert!(unit("sig-live-db.service").contains("\nSuccessExitStatus=143\n"));
}

#[test]
fn several_instances_render_in_one_run_as_each_alone() {
    for (_, file) in examples() {
        let path = file.to_str().unwrap();
        let names = instances(&file);
        let alone: Vec<String> = names.iter().map(|name| render(&file, name)).collect();
        // On stdout: each instance's units in the order named, as if
        // rendered one after the other.
        let mut args = vec!["render"];
        args.extend(names.iter().map(String::as_str));
        args.extend(["-f", path]);
        let together = unitgen(&args);
        assert!(together.status.success(), "{}", stderr(&together));
        assert_eq!(stdout(&together), alone.join("\n"), "{path}");
        let all = unitgen(&["render", "--all", "-f", path]);
        assert_eq!(stdout(&all), alone.join("\n"), "--all of {path}");

        // Into a folder: exactly the files each instance writes alone.
        let one_by_one = tempfile::tempdir().unwrap();
        for name in &names {
            let dir = one_by_one.path().to_str().unwrap();
            let out = unitgen(&["render", name, "-f", path, "--out", dir]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
        let at_once = tempfile::tempdir().unwrap();
        let dir = at_once.path().to_str().unwrap();
        let out = unitgen(&["render", "--all", "-f", path, "--out", dir]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            folder_files(at_once.path()),
            folder_files(one_by_one.path())
        );
        let check = unitgen(&["render", "--all", "-f", path, "--out", dir, "--check"]);
        assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    }

    // One instance's change is found, and named, by a check of all.
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let out = unitgen(&["render", "--all", "-f", BLOG, "--out", out_dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let web = dir.path().join("blog-staging-web.service");
    let text = std::fs::read_to_string(&web).unwrap();
    std::fs::write(&web, text.replace("RestartSec=5s", "RestartSec=1s")).unwrap();
    let check = unitgen(&["render", "--all", "-f", BLOG, "--out", out_dir, "--check"]);
    assert_eq!(check.status.code(), Some(2));
    assert_eq!(
        stdout(&check),
        format!("out of date: {}\n", web.display()),
        "only the edited file is named"
    );
    assert!(
        stderr(&check).contains(&format!(
            "run `unitgen render --all -f {BLOG} --out {out_dir}`"
        )),
        "{}",
        stderr(&check)
    );
}

#[test]
fn render_all_refuses_a_file_without_instances_and_values_wants_one_instance() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unitgen.yaml");
    std::fs::write(&file, "app: lonely\nservices:\n  web: nginx:1.27\n").unwrap();
    let out = unitgen(&["render", "--all", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("declares no instances"),
        "{}",
        stderr(&out)
    );

    // A mistake of the template is one mistake, however many instances.
    std::fs::write(
        &file,
        "app: shop\nservices:\n  web:\n    image: x\n    systemd: {Service: {TimeouvStartSec: 10s}}\ninstances:\n  live: {}\n  staging: {}\n",
    )
    .unwrap();
    let docs = dir.path().join("docs");
    for args in [
        &["render", "--all"][..],
        &["dns"],
        &["docs", "--out", docs.to_str().unwrap()],
    ] {
        let out = unitgen(&[args, &["-f", file.to_str().unwrap()]].concat());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&out)
                .matches("systemd has no key `TimeouvStartSec`")
                .count(),
            1,
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(!docs.exists(), "docs were written despite the mistake");

    let out = unitgen(&["render", "live", "staging", "--values", "-f", BLOG]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("one instance"), "{}", stderr(&out));
}

/// Every file of a folder, by name, with its text.
fn folder_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

/// A route's htpasswd (or certificate) file that changes only in bytes that
/// are not UTF-8 changes the routes unit, so that apply reloads the router:
/// the file's digest is of its bytes, not of a lossy text of them.
#[test]
fn a_route_file_changed_only_in_non_utf8_bytes_changes_the_routes_unit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unitgen.yaml");
    std::fs::write(
        &file,
        "app: shop\nservices:\n  web:\n    image: shop:1\n    ports: [\"127.0.0.1:8001:80\"]\n\
         instances:\n  live:\n    routes:\n      - {hosts: a.example.com, service: web, port: 80, basic_auth: ./pw}\n",
    )
    .unwrap();
    let routes_unit = |password: &[u8]| {
        std::fs::write(dir.path().join("pw"), password).unwrap();
        let template = Template::load(&file).unwrap();
        let mut instance =
            unitgen::compile::compile(&template, "live", &Default::default()).unwrap();
        unitgen::router::read_files(&mut instance).unwrap();
        let units =
            unitgen::render::Renderer::new(unitgen::render::Flavour::System).render(&instance);
        let routes = units.into_iter().find(|u| u.name.contains("routes"));
        routes.expect("a routes unit").text
    };
    let before = routes_unit(b"user:\xff\xfe$apr1$x\n");
    assert_ne!(before, routes_unit(b"user:\xfe\xff$apr1$x\n"));
    assert_eq!(before, routes_unit(b"user:\xff\xfe$apr1$x\n"));
}
