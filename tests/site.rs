//! The site file: hosts and apps in one file. The example site validates
//! and renders; site-level mistakes are located in the site file; `apply`
//! with no instance brings up exactly what the site assigns to `--host`.

#[path = "support/lib.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::net::free_port;
use support::pebble::Pebble;
use support::traefik::{self, Load, bodies, get, served_certificate, wait_until};
use support::world::{World, serves};

fn unitgen(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .current_dir(dir)
        .output()
        .expect("run unitgen")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const EXAMPLE: &str = "examples/site";

#[test]
fn the_example_site_validates() {
    let dir = Path::new(EXAMPLE);
    // site.yaml is the default file when there is no unitgen.yaml.
    let out = unitgen(dir, &["validate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("site.yaml: 2 hosts, 2 apps, 4 instances valid"),
        "{}",
        text(&out.stderr)
    );
    // Each instance renders as reviewed (snapshots/site-*), and passes
    // `systemd-analyze verify`: tests/render.rs, with the other examples.
    // staging extends live and leaves the worker out.
    let staging = text(&unitgen(dir, &["render", "blog/staging"]).stdout);
    assert!(!staging.contains("worker"), "{staging}");
    assert!(staging.contains("ALLOWED_HOSTS=staging.blog.example.com"));
    // The merged entry: defaults under the instance's own values, its host.
    let out = unitgen(dir, &["render", "wiki/globex", "--values"]);
    assert_eq!(
        text(&out.stdout),
        "language: de_DE\ndomain: docs.globex.example\nport: 8102\nversion: \"0.81.1\"\nhost: web2\n"
    );
    // A plain instance name is ambiguous with two apps: the error says how.
    let out = unitgen(dir, &["render", "staging"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("name it APP/INSTANCE: blog/staging"));
}

#[test]
fn site_mistakes_are_located_in_the_site_file() {
    let dir = tempfile::tempdir().unwrap();
    let app = |name: &str| {
        format!(
            "app: {name}\nservices:\n  web:\n    image: nginx:1\n    ports: [\"{{{{ port }}}}:80\"]\n"
        )
    };
    std::fs::write(dir.path().join("shop.yaml"), app("shop")).unwrap();
    std::fs::write(dir.path().join("blog.yaml"), app("blog")).unwrap();
    std::fs::write(
        dir.path().join("site.yaml"),
        "hosts:\n  web1: {address: 203.0.113.10}\n  web2: {address: [203.0.113.300]}\n  web3: {adress: 10.0.0.1}\napps:\n  shop:\n    template: shop.yaml\n    instances:\n      live: {host: web1, port: 8080}\n      staging: {host: wbe2, port: 8081}\n      preview: {port: 8082}\n  blogg:\n    template: blog.yaml\n    volumes: {data: {}}\n    instances:\n      live: {host: web1, port: 80}\n",
    )
    .unwrap();
    let out = unitgen(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(1));
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("site-errors", text(&out.stderr));
    });

    // What no app alone can see: two apps publishing one port on one host.
    std::fs::write(
        dir.path().join("site.yaml"),
        "hosts:\n  web1: {address: \"2001:db8::1\"}\n  web2: {address: 203.0.113.20}\napps:\n  shop:\n    template: shop.yaml\n    instances:\n      live: {host: web1, port: 8080}\n      staging: {host: web2, port: 8080}\n  blog:\n    template: blog.yaml\n    instances:\n      live: {host: web1, port: 8080}\n",
    )
    .unwrap();
    let out = unitgen(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(1));
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("site-port-clash", text(&out.stderr));
    });

    // And one domain routed by two apps (on any hosts).
    std::fs::write(
        dir.path().join("site.yaml"),
        "hosts:\n  web1: {address: 192.0.2.1}\n  web2: {address: 192.0.2.2}\napps:\n  shop:\n    template: shop.yaml\n    instances:\n      live:\n        host: web1\n        port: 8080\n        routes: [{hosts: [shop.example.com, www.example.com], service: web, port: 80}]\n  blog:\n    template: blog.yaml\n    instances:\n      live:\n        host: web2\n        port: 8080\n        routes: [{hosts: www.example.com, service: web, port: 80}]\n",
    )
    .unwrap();
    let out = unitgen(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("site-route-clash", text(&out.stderr));
    });
}

/// An instance publishing the port the host's router listens on (443 by
/// default) for another instance's routes passed validate; applied, the
/// router or the container could not bind it. And two instances of a host
/// publishing one port on two addresses, which Docker allows, were called
/// a clash (which apply now refuses). Both are told as Docker binds them.
#[test]
fn a_host_port_clashes_with_the_router_and_only_on_one_address() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shop.yaml"),
        "app: shop\nservices:\n  web:\n    image: nginx:1\n    ports: [\"{{ ip }}:{{ port }}:80\"]\n",
    )
    .unwrap();
    let site = |ip: &str, port: u16, routes: &str| {
        format!(
            "hosts:\n  web1: {{address: 192.0.2.1}}\napps:\n  shop:\n    template: shop.yaml\n    defaults: {{host: web1}}\n    instances:\n      live: {{ip: 127.0.0.1, port: 8080{routes}}}\n      admin: {{ip: '{ip}', port: {port}}}\n"
        )
    };
    let routes = ", routes: [{hosts: shop.example.com, service: web, port: 80}]";
    let validate = |yaml: &str| {
        std::fs::write(dir.path().join("site.yaml"), yaml).unwrap();
        unitgen(dir.path(), &["validate"])
    };
    let out = validate(&site("0.0.0.0", 443, routes));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // (Laid out at 100 columns: the message is on two lines.)
    let said = text(&out.stderr);
    assert!(
        said.contains(
            "the host's router (`https_port` of shop/live's `router:`) and shop/admin (web)"
        ) && said.contains("port 443/tcp on host `web1`"),
        "{said}"
    );
    // Without routes there is no router to clash with.
    let out = validate(&site("0.0.0.0", 443, ""));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // One port on two addresses is two sockets; on one address, one.
    let out = validate(&site("127.0.0.2", 8080, ""));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = validate(&site("127.0.0.1", 8080, ""));
    assert!(
        text(&out.stderr)
            .contains("shop/live (web) and shop/admin (web) both publish port 8080/tcp"),
        "{}",
        text(&out.stderr)
    );
}

/// A host named `"web1\n## Owned"` was taken: `validate` printed the
/// line break as it is, and every message, `status` and the docs' tables
/// carried it. A host is named as a machine is.
#[test]
fn a_host_name_that_is_no_machines_name_is_refused_where_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shop.yaml"),
        "app: shop\nservices:\n  web: nginx:1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("site.yaml"),
        "hosts:\n  \"web1\\n## Owned\": {address: 203.0.113.10}\n  web.2: {address: 203.0.113.11}\napps:\n  shop:\n    template: shop.yaml\n    instances:\n      live: {host: web.2}\n",
    )
    .unwrap();
    let out = unitgen(dir.path(), &["validate"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`web1\\n## Owned` is not a host name: `\\n` is not a letter"),
        "{err}"
    );
    assert!(err.contains("site.yaml:2:3"), "{err}");
    assert_eq!(err.matches("is not a host name").count(), 1, "{err}");
}

/// An app on the test image: `web` serves a page naming its app and
/// instance on a host port; `worker` just runs.
fn app_template(app: &str) -> String {
    format!(
        r#"app: {app}
services:
  web:
    image: "{{{{ image }}}}"
    command: [sh, -c, 'mkdir -p /www && echo "{app} $INSTANCE" > /www/index.html && exec httpd -f -p 80 -h /www']
    environment: {{INSTANCE: "{{{{ instance }}}}"}}
    init: true
    ports: ["127.0.0.1:{{{{ port }}}}:80"]
  worker:
    image: unitgen-test/busybox:1
    command: [sleep, "1000000"]
    init: true
"#
    )
}

/// Found in hostile values round 7: the instances installed on a host were
/// read from every unit file's `[X-Unitgen]` section as written, so a unit
/// there naming app `x$(touch …)` (a unit folder read with --root, a user's
/// own folder) was an instance left alone: plan and apply suggested
/// `unitgen destroy x$(touch …)/live -f site.yaml` to copy and run, and
/// the docs listed it. A unit naming no valid app, instance or service is
/// none unitgen wrote; the others are still said.
#[test]
fn a_unit_naming_no_valid_instance_is_no_instance_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("root/etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    let unit = |app: &str, instance: &str, service: &str| {
        format!(
            "[Service]\nExecStart=/bin/true\n\n[X-Unitgen]\nApp={app}\nInstance={instance}\nService={service}\n"
        )
    };
    let files = [
        ("ugleft-old-web.service", unit("ugleft", "old", "web")),
        ("x-live-web.service", unit("x$(touch PWNED)", "live", "web")),
        ("y-live-web.service", unit("y", "live;reboot", "web")),
        ("z-live-web.service", unit("z", "live", "w`id`")),
    ];
    for (name, text) in &files {
        std::fs::write(units.join(name), text).unwrap();
    }
    std::fs::write(
        dir.path().join("site.yaml"),
        "hosts:\n  h1: {address: 192.0.2.1}\napps: {}\n",
    )
    .unwrap();
    let root = dir.path().join("root");
    let root = root.to_str().unwrap();
    let out = unitgen(dir.path(), &["plan", "--host", "h1", "--root", root]);
    let said = text(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("`unitgen destroy ugleft/old -f site.yaml` removes it"),
        "{said}"
    );
    assert!(said.contains("1 left alone"), "{said}");
    for hostile in ["PWNED", "reboot", "`id`"] {
        assert!(!said.contains(hostile), "{hostile}: {said}");
    }
    // The docs read the instances so too (without the one instance, whose
    // state takes a systemd to read).
    std::fs::remove_file(units.join(files[0].0)).unwrap();
    let out = unitgen(
        dir.path(),
        &[
            "docs", "--live", "--host", "h1", "--root", root, "--out", "docs",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let overview = std::fs::read_to_string(dir.path().join("docs/README.md")).unwrap();
    assert!(!overview.contains("left alone"), "{overview}");
    for hostile in ["PWNED", "reboot", "`id`"] {
        assert!(!overview.contains(hostile), "{hostile}: {overview}");
    }
}

#[test]
fn apply_without_an_instance_converges_what_the_site_assigns_to_the_host() {
    let mut world = World::new("ugsitea");
    world.also_own("ugsiteb");
    let dir = world.dir().to_path_buf();
    std::fs::write(dir.join("a.yaml"), app_template("ugsitea")).unwrap();
    std::fs::write(dir.join("b.yaml"), app_template("ugsiteb")).unwrap();
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let site = |with_one: bool, more: &str| {
        let one = if with_one {
            format!("      one: {{host: h1, port: {p1}}}\n")
        } else {
            String::new()
        };
        format!(
            "hosts:\n  h1: {{address: 192.0.2.1}}\n  h2: {{address: 192.0.2.2}}\napps:\n  ugsitea:\n    template: a.yaml\n    defaults: {{image: unitgen-test/busybox:1}}\n    instances:\n{one}      two: {{host: h2, port: {p2}}}\n  ugsiteb:\n    template: b.yaml\n    defaults: {{image: unitgen-test/busybox:1}}\n    instances:\n      three:\n        host: h1\n        port: {p3}\n        services: {{worker: {{enabled: false}}}}\n{more}"
        )
    };
    std::fs::write(dir.join("site.yaml"), site(true, "")).unwrap();
    let file = Path::new("site.yaml");
    let run = |args: &[&str]| world.unitgen_in(&dir, file, args);

    let out = run(&["apply", "--host", "h1", "--settle", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("host h1: 2 of 2 instances applied"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(serves(p1).as_deref(), Some("ugsitea one\n"));
    assert_eq!(serves(p3).as_deref(), Some("ugsiteb three\n"));
    assert_eq!(world.active("ugsitea-one-worker.service"), "active");
    // Exactly what h1 runs: not h2's instance, not the worker three leaves out.
    assert!(!world.unit_file("ugsitea-two-web.service").exists());
    assert!(!world.unit_file("ugsiteb-three-worker.service").exists());
    let plan = run(&["plan", "--host", "h1"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stdout));

    // The same machine playing h2 gets the other instance.
    let out = run(&["apply", "--host", "h2", "--settle", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(serves(p2).as_deref(), Some("ugsitea two\n"));

    // An instance the site no longer assigns to h1 is left running, and
    // the apply says so and how to remove it.
    std::fs::write(dir.join("site.yaml"), site(false, "")).unwrap();
    let out = run(&["apply", "--host", "h1", "--settle", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("left alone: ugsitea/one is installed here")
            && said.contains("`unitgen destroy ugsitea/one -f site.yaml` removes it"),
        "{said}"
    );
    assert_eq!(world.active("ugsitea-one-web.service"), "active");
    // APP/INSTANCE works for the commands on what is installed, too.
    let status = run(&["status", "ugsiteb/three"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stdout));
    let out = run(&["destroy", "ugsitea/one"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!world.unit_file("ugsitea-one-web.service").exists());

    // One instance failing does not stop the others; the summary names it.
    let broken = format!(
        "      four: {{host: h1, port: {}, image: unitgen-test/missing:1}}\n",
        free_port()
    );
    std::fs::write(dir.join("site.yaml"), site(false, &broken)).unwrap();
    let out = run(&["apply", "--host", "h1", "--pull", "never", "--settle", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("host h1: 1 of 2 instances applied, failed: ugsiteb/four"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(serves(p3).as_deref(), Some("ugsiteb three\n"));

    // An app taken out of the site keeps running, and plan says so (it
    // said nothing: only instances of the site's apps were looked for).
    let without_b = site(false, "");
    let without_b = &without_b[..without_b.find("  ugsiteb:\n").unwrap()];
    std::fs::write(dir.join("site.yaml"), without_b).unwrap();
    let plan = run(&["plan", "--host", "h1"]);
    let said = text(&plan.stderr);
    assert!(
        said.contains(
            "left alone: ugsiteb/three is installed here, but its app ugsiteb is not in site.yaml; \
             `unitgen destroy ugsiteb/three -f site.yaml` removes it"
        ),
        "{said}"
    );
    assert_eq!(serves(p3).as_deref(), Some("ugsiteb three\n"));
}

#[test]
fn a_hosts_etcd_serves_the_apps_without_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let app = |name: &str, etcd: &str| {
        format!(
            "app: {name}\nservices:\n  web:\n    image: nginx:1\n    ports: [\"8080:80\"]\n{etcd}"
        )
    };
    std::fs::write(dir.path().join("shop.yaml"), app("shop", "")).unwrap();
    std::fs::write(dir.path().join("blog.yaml"), app("blog", "")).unwrap();
    std::fs::write(
        dir.path().join("site.yaml"),
        "hosts:\n  h1:\n    address: 192.0.2.1\n    etcd: {endpoints: \"http://10.0.0.1:2379\", prefix: /h1}\n  h2: {address: 192.0.2.2}\napps:\n  shop:\n    template: shop.yaml\n    instances:\n      live: {host: h1}\n      other: {host: h2}\n  blog:\n    template: blog.yaml\n    etcd: {endpoints: \"http://10.9.9.9:2379\"}\n    instances:\n      live: {host: h1}\n",
    )
    .unwrap();
    let render = |target: &str| {
        let out = unitgen(dir.path(), &["render", target]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let on_h1 = render("shop/live");
    assert!(
        on_h1.contains("# ==> shop-live-web-announce.service <=="),
        "{on_h1}"
    );
    assert!(
        on_h1.contains("http://10.0.0.1:2379") && on_h1.contains("/h1/"),
        "{on_h1}"
    );
    // h2 has no etcd: no sidekick.
    assert!(!render("shop/other").contains("announce"));
    // An app's own `etcd:` wins over its host's.
    let own = render("blog/live");
    assert!(
        own.contains("http://10.9.9.9:2379") && !own.contains("10.0.0.1"),
        "{own}"
    );
}

#[test]
fn app_slash_instance_names_one_apps_file_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("unitgen.yaml"),
        "app: shop\nservices:\n  web: nginx:1\ninstances:\n  live: {}\n",
    )
    .unwrap();
    let out = unitgen(dir.path(), &["render", "shop/live"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("# ==> shop-live-web.service <=="));
    let out = unitgen(dir.path(), &["render", "blog/live"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unitgen.yaml is app `shop`, not `blog`"),
        "{}",
        text(&out.stderr)
    );
}

/// Two apps' instances on one host publishing one port and routing one
/// name: `validate` said it, but `apply --host` applied the first and
/// failed on the second (its port taken, its name routed already). Now
/// plan and apply refuse before anything changes, showing both places.
#[test]
fn a_clash_between_two_apps_is_shown_at_both_and_applies_nothing() {
    let mut world = World::new("ugclasha");
    world.also_own("ugclashb");
    let dir = world.dir().to_path_buf();
    std::fs::write(dir.join("a.yaml"), app_template("ugclasha")).unwrap();
    std::fs::write(dir.join("b.yaml"), app_template("ugclashb")).unwrap();
    let port = free_port();
    let app = |name: &str, instance: &str| {
        format!(
            "  {name}:\n    template: {file}.yaml\n    defaults: {{host: h1, image: unitgen-test/busybox:1}}\n    instances:\n      {instance}:\n        port: {port}\n        routes:\n          - {{hosts: shop.clash.test, service: web, port: 80, tls: 'off'}}\n",
            file = &name[7..],
        )
    };
    let site = format!(
        "hosts:\n  h1: {{address: 192.0.2.1}}\napps:\n{}{}",
        app("ugclasha", "one"),
        app("ugclashb", "two")
    );
    std::fs::write(dir.join("site.yaml"), site).unwrap();
    let file = Path::new("site.yaml");
    for args in [
        &["apply", "--host", "h1", "--settle", "1"][..],
        &["apply", "ugclasha/one", "--settle", "1"][..],
    ] {
        let out = world.unitgen_in(&dir, file, args);
        let said = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(
            said.contains("apply refused: instances of site.yaml clash; nothing was changed"),
            "{said}"
        );
        // Each clash points at both instances in the site file.
        for shown in [
            "ugclasha/one (web) and ugclashb/two (web) both publish port",
            "ugclasha/one assigned here",
            "ugclashb/two assigned here",
            "`shop.clash.test` is routed by ugclasha/one and by ugclashb/two",
            "claimed by ugclasha/one",
            "claimed by ugclashb/two",
        ] {
            assert!(said.contains(shown), "{shown:?} in\n{said}");
        }
        for unit in ["ugclasha-one-web.service", "ugclashb-two-web.service"] {
            assert!(!world.unit_file(unit).exists(), "{unit} was installed");
        }
        assert_eq!(serves(port), None);
    }
    // plan says the same, and validate too.
    let plan = world.unitgen_in(&dir, file, &["plan", "--host", "h1"]);
    assert_eq!(plan.status.code(), Some(1), "{}", text(&plan.stderr));
    assert!(
        text(&plan.stderr).contains("plan refused: instances of site.yaml clash"),
        "{}",
        text(&plan.stderr)
    );
    let validate = unitgen(&dir, &["validate", "-f", "site.yaml"]);
    assert!(
        text(&validate.stderr).contains("ugclasha/one assigned here"),
        "{}",
        text(&validate.stderr)
    );
}

/// A domain moved from one app's instance to another's in the site file,
/// applied with `apply --host`: the app that gave it up was applied first
/// (file order) and the name went unrouted until the other's apply wrote
/// it (404s); moved the other way, the new owner was refused, since the
/// old one still routed it, and the old one then dropped it. Now the
/// instance taking the name over is applied first, beside the one giving
/// it up: every request through the router is answered, over HTTPS with
/// the certificate the name already had.
#[test]
fn a_domain_moved_between_apps_is_served_throughout_with_its_certificate() {
    const DOMAIN: &str = "shop.move.test";
    let mut world = World::new("ugmovea");
    world.also_own("ugmoveb");
    world.own_router();
    let dir = world.dir().to_path_buf();
    std::fs::write(dir.join("a.yaml"), app_template("ugmovea")).unwrap();
    std::fs::write(dir.join("b.yaml"), app_template("ugmoveb")).unwrap();
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http);
    let router = format!(
        "    router:\n      image: {}\n      directory: {}\n      address: 127.0.0.1\n      http_port: {http}\n      https_port: {https}\n      acme: {{email: ops@example.test, ca_server: {}, ca_certificate: {}}}\n",
        traefik::IMAGE,
        world.sandbox.shared_dir().join("router").display(),
        pebble.directory_url(),
        pebble.tls_certificate().display(),
    );
    let (pa, pb) = (free_port(), free_port());
    let route = format!("        routes: [{{hosts: {DOMAIN}, service: web, port: 80}}]\n");
    let site = |a_routes: bool| {
        let (ra, rb) = if a_routes {
            (&route[..], "")
        } else {
            ("", &route[..])
        };
        format!(
            "hosts:\n  h1: {{address: 127.0.0.1}}\napps:\n  ugmovea:\n    template: a.yaml\n    defaults: {{host: h1, image: unitgen-test/busybox:1}}\n{router}    instances:\n      one:\n        port: {pa}\n{ra}  ugmoveb:\n    template: b.yaml\n    defaults: {{host: h1, image: unitgen-test/busybox:1}}\n{router}    instances:\n      two:\n        port: {pb}\n{rb}"
        )
    };
    let file = Path::new("site.yaml");
    let apply = || {
        let out = world.unitgen_in(&dir, file, &["apply", "--host", "h1", "--settle", "1"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    std::fs::write(dir.join("site.yaml"), site(true)).unwrap();
    apply();
    let root = pebble.issuing_root();
    wait_until(
        Duration::from_secs(60),
        "https://shop.move.test/ served by ugmovea/one with pebble's certificate",
        || get("https", DOMAIN, https, "/", Some(&root)),
        |a| a.status == 200 && a.body.trim() == "ugmovea one",
    );
    let certificate = served_certificate(DOMAIN, https);
    assert!(certificate.contains("serial="), "{certificate}");

    // To the app listed after: it gave the name up first, before.
    // Back to the app listed first: its apply was refused, before.
    for (a_routes, from, to) in [
        (false, "ugmovea/one", "ugmoveb/two"),
        (true, "ugmoveb/two", "ugmovea/one"),
    ] {
        std::fs::write(dir.join("site.yaml"), site(a_routes)).unwrap();
        let load = Load::start_https(https, DOMAIN, &root);
        let said = apply();
        let answers = load.stop();
        let served = [from, to].map(|label| label.replace('/', " "));
        assert_eq!(bodies(&answers), served, "{answers:?}");
        assert!(
            said.contains(&format!("{to}: {DOMAIN} moves here from {from}")),
            "{said}"
        );
        assert_eq!(served_certificate(DOMAIN, https), certificate);
        let plan = world.unitgen_in(&dir, file, &["plan", "--host", "h1"]);
        assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stdout));
    }
}
