//! Routes across hosts, end to end: a real etcd, two sandboxed systemd
//! "hosts" and a real Traefik. Host A runs the router; host B runs an
//! instance whose routes its routes unit writes to etcd and whose backend
//! its announce sidekick writes under its lease. A request through A's
//! router reaches B's container; B dies (SIGKILL to its systemd) and its
//! backend leaves the router when the lease expires, though the container
//! itself (in the machine's engine) still serves. A name B routes is
//! refused to an instance on A. A change of one of A's routes rewrites its
//! keys in one transaction, with its other route served throughout; and A's
//! router outlives A's last instance, since it serves B's routes too.
//!
//! Both sandboxes share the machine's Docker engine and loopback, where one
//! router container and one pair of ports fit: B's router, which apply
//! starts as on any host with routes, is stopped before A's starts, as on a
//! host that DNS does not point at.

#[path = "support/lib.rs"]
mod support;

use std::process::Output;
use std::time::Duration;

use support::etcd::Etcd;
use support::net::{free_port, http_get};
use support::pebble::Pebble;
use support::traefik::{self, Load, bodies, get, get_unverified, wait_until};
use support::wait_for;
use support::world::World;

const FRONT: &str = "ugrxfront";
const BACK: &str = "ugrxback";
/// The announcements' lease: short, so that the test waits little, but
/// not shorter than a sidekick's round (a `docker inspect`, a `docker port`
/// and three `etcdctl` calls, refreshed each third of it) can take on a
/// loaded machine: at 4 s, a round past it let a lease lapse for a moment
/// (A's backend missing just after an apply, at load 30).
const TTL_SECONDS: u64 = 10;
/// Traefik applies a change from etcd within about two seconds.
const ROUTED: Duration = Duration::from_secs(60);

struct Shared {
    etcd: String,
    http: u16,
    https: u16,
}

/// App `app`'s template: one busybox web server saying `<app> of
/// <instance>`, published on loopback, routed by `domain` in etcd; `more`:
/// more routes.
fn template(
    world: &World,
    app: &str,
    domain: &str,
    port: u16,
    shared: &Shared,
    more: &str,
) -> String {
    format!(
        r#"app: {app}
services:
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo "{app} of {{{{ instance }}}}" > /www/index.html && exec httpd -f -p 8000 -h /www']
    init: true
    ports: ["127.0.0.1:{port}:8000"]
instances:
  live:
    routes:
      - hosts: {domain}
        service: web
        port: 8000
        tls: off{more}
etcd:
  endpoints: {etcd}
  ttl: {TTL_SECONDS}s
router:
  image: {image}
  directory: {router_dir}
  address: 127.0.0.1
  http_port: {http}
  https_port: {https}
"#,
        etcd = shared.etcd,
        image = traefik::IMAGE,
        router_dir = world.sandbox.shared_dir().join("router").display(),
        http = shared.http,
        https = shared.https,
    )
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A host of its own name: the last part of its backends' keys.
fn host(app: &str, name: &str) -> World {
    let world = World::new(app);
    ok(&world.sandbox.exec("hostname", [name]), "hostname");
    world
}

/// Every key under `prefix`.
fn keys(etcd: &Etcd, prefix: &str) -> Vec<String> {
    let out = etcd.etcdctl(3, &["get", "--prefix", "--keys-only", prefix]);
    ok(&out, "etcdctl get");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn a_router_on_one_host_reaches_an_instance_on_another_until_its_lease_expires() {
    let etcd = Etcd::start(false);
    let shared = Shared {
        etcd: etcd.endpoint(),
        http: free_port(),
        https: free_port(),
    };
    let (front_port, back_port) = (free_port(), free_port());
    let mut a = host(FRONT, "ugrx-a");
    a.own_router();
    let mut b = host(BACK, "ugrx-b");
    b.own_router();
    b.write(&template(
        &b,
        BACK,
        "back.example.test",
        back_port,
        &shared,
        "",
    ));
    // A's instance has a second route, which it changes below.
    let admin = "\n      - hosts: admin.front.example.test\n        service: web\n        port: 8000\n        tls: off";
    let front = template(&a, FRONT, "front.example.test", front_port, &shared, admin);
    a.write(&front);

    // B: the instance. Its routes go to etcd; its own router is stopped.
    b.apply_ok("live");
    ok(
        &b.sandbox.systemctl(["stop", "unitgen-router.service"]),
        "stopping B's router",
    );
    // The sidekick writes the backend from its loop, after its start job
    // (and so apply) has ended: waited for, as a user watching etcd would.
    let back = "traefik/http/services/ugrxback-live-web/loadbalancer/servers/ugrx-b/url";
    let written = wait_for(ROUTED, || etcd.get(back));
    assert_eq!(
        written.as_deref(),
        Some(format!("http://127.0.0.1:{back_port}").as_str()),
        "B's sidekick writes its backend; its journal:\n{}",
        b.sandbox.journal("ugrxback-live-web-announce.service"),
    );
    assert_eq!(
        etcd.get("traefik/http/routers/ugrxback-live-web/rule")
            .as_deref(),
        Some("Host(`back.example.test`)")
    );

    // A: plan shows the routes unit; apply starts the router, which reads
    // etcd.
    let plan = a.unitgen(&["plan", "live"]);
    let shown = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        shown.contains("+ ugrxfront-live-routes.service (new"),
        "{shown}"
    );
    a.apply_ok("live");
    assert_eq!(a.active("unitgen-router.service"), "active");

    // Through A's router: B's instance, and A's own.
    let body = |text: &'static str| {
        move |answer: &traefik::Answer| answer.status == 200 && answer.body.trim() == text
    };
    wait_until(
        ROUTED,
        "back.example.test through A's router",
        || get("http", "back.example.test", shared.http, "/", None),
        body("ugrxback of live"),
    );
    wait_until(
        ROUTED,
        "front.example.test through A's router",
        || get("http", "front.example.test", shared.http, "/", None),
        body("ugrxfront of live"),
    );

    // A name another host's instance routes in etcd is refused on A.
    a.write(&front.replace(
        "      - hosts: front.example.test",
        "      - hosts: [front.example.test, back.example.test]",
    ));
    let refused = a.apply("live");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && said.contains("routes back.example.test, which router ugrxback-live-web"),
        "{said}"
    );
    a.write(&front);

    // A change of A's second route (an alias added) is one transaction:
    // its first route is served throughout, and none of that route's keys
    // was deleted (a key deleted and put again is created anew).
    let unchanged = "traefik/http/routers/ugrxfront-live-web/";
    let (before, first) = etcd.revisions(unchanged);
    let load = Load::start(shared.http, "front.example.test");
    a.write(&front.replace(
        "admin.front.example.test",
        "admin.front.example.test\n        aliases: [old.front.example.test]",
    ));
    a.apply_ok("live");
    wait_until(
        ROUTED,
        "the new alias redirects through A's router",
        || get("http", "old.front.example.test", shared.http, "/", None),
        |answer| matches!(answer.status, 301 | 308),
    );
    assert_eq!(bodies(&load.stop()), ["ugrxfront of live"]);
    let (_, after) = etcd.revisions(unchanged);
    assert_eq!(after.len(), first.len());
    assert!(after.iter().all(|k| k.created < before), "{after:?}");
    let (_, changed) = etcd.revisions("traefik/http/routers/ugrxfront-live-");
    let mut written: Vec<i64> = (changed.iter())
        .filter(|k| k.modified > before)
        .map(|k| k.modified)
        .collect();
    written.dedup();
    assert_eq!(written.len(), 1, "written in one revision: {changed:?}");

    // A's keys deleted by hand in etcd: every router stops routing the
    // name, and plan says so (it said "no changes" and apply did nothing);
    // apply writes them again.
    let plan = |world: &World| {
        let out = world.unitgen(&["plan", "live"]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, shown) = plan(&a);
    assert_eq!(code, Some(0), "the keys as written are no drift: {shown}");
    // status said "routes: unknown" (it parsed the routes file, comments
    // only with routes in etcd) and exited 3 for any such instance.
    let status = |world: &World| world.unitgen_said(&["status", "live"]);
    let (code, shown) = status(&a);
    assert_eq!(code, Some(0), "{shown}");
    // Its route, as etcd has it: where it answers and the backend the
    // sidekick announced (status showed no route at all).
    let row = (shown.lines())
        .find(|line| line.trim_start().starts_with("http://front.example.test/ "))
        .unwrap_or_else(|| panic!("no route row: {shown}"));
    assert!(
        row.contains(&format!("http://127.0.0.1:{front_port}")),
        "{row}"
    );
    // A backend written into etcd by anyone who can write there: its line
    // feed added a row of its own to the table, and an escape sequence
    // reached the terminal; in --json a C1 control or bidi override was
    // written raw (or, from status, as `\u{85}`: no longer JSON).
    let planted = "traefik/http/services/ugrxfront-live-web/loadbalancer/servers/evil/url";
    let hostile = "http://10.9.9.9:80\n  https://bank.example/ FAKE \u{1b}[2J\u{85}\u{202e}";
    etcd.put(planted, hostile);
    let (code, shown) = status(&a);
    // Read as one value: the instance's own keys read as they are (etcdctl's
    // plain output, a line each, made the value's lines keys and values of
    // their own, and the routes "changed by hand"), the sidekick's backend
    // still listed beside it.
    assert_eq!(code, Some(0), "{shown}");
    let row = (shown.lines())
        .find(|line| line.trim_start().starts_with("http://front.example.test/ "))
        .unwrap_or_else(|| panic!("no route row: {shown}"));
    assert!(
        row.contains(&format!("http://127.0.0.1:{front_port}"))
            && row.contains("http://10.9.9.9:80\\n  https://bank.example/ FAKE"),
        "{shown}"
    );
    assert!(
        !shown
            .chars()
            .any(|c| c.is_control() && c != '\n' || c == '\u{202e}'),
        "{shown:?}"
    );
    let json = String::from_utf8(a.unitgen(&["status", "live", "--json"]).stdout).unwrap();
    assert!(
        !json
            .chars()
            .any(|c| c.is_control() && c != '\n' || c == '\u{202e}'),
        "{json:?}"
    );
    let read: serde_json::Value = serde_json::from_str(&json).unwrap();
    let front = (read["routes"].as_array().unwrap().iter())
        .find(|r| r["url"] == "http://front.example.test/")
        .unwrap_or_else(|| panic!("{read}"));
    assert!(
        front["backends"]
            .as_array()
            .unwrap()
            .contains(&hostile.into()),
        "{front}"
    );
    ok(&etcd.etcdctl(3, &["del", planted]), "etcdctl del");
    let rule = "traefik/http/routers/ugrxfront-live-web/rule";
    ok(&etcd.etcdctl(3, &["del", rule]), "etcdctl del");
    let (code, shown) = plan(&a);
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains(
            "* ugrxfront-live-routes.service (its routes in etcd are missing or were changed \
             by hand: reload: write the routes again)"
        ),
        "{shown}"
    );
    // status did not read the keys (only the routes file, as written).
    let (code, shown) = status(&a);
    assert_eq!(code, Some(3), "{shown}");
    assert!(
        shown.contains(
            "! ugrxfront-live-routes.service: its routes in etcd are missing or were changed \
             by hand"
        ),
        "{shown}"
    );
    wait_until(
        ROUTED,
        "front.example.test unrouted without its rule",
        || get("http", "front.example.test", shared.http, "/", None),
        |answer| answer.status == 404,
    );
    // Keys planted under A's own prefix by anyone who can write to etcd:
    // one holding `"`, which the routes unit's delete wrote into etcdctl's
    // transaction as it was (a broken or ranged `del "a" "b"`), and one
    // holding a line feed, whose second line, B's rule, was deleted as a
    // stale key of A's, and which itself stayed (plan said A's routes were
    // changed by hand for good). A's own stale keys go; B's keys stay.
    let quoted = "traefik/http/routers/ugrxfront-live-x\"y";
    let split =
        "traefik/http/routers/ugrxfront-live-y\ntraefik/http/routers/ugrxback-live-web/rule";
    let service = "traefik/http/services/ugrxfront-live-web\n/loadbalancer/x";
    etcd.put(quoted, "planted");
    etcd.put(split, "planted");
    etcd.put(service, "planted");
    a.apply_ok("live");
    assert_eq!(
        etcd.get(rule).as_deref(),
        Some("Host(`front.example.test`)")
    );
    for stale in [quoted, split, service] {
        assert_eq!(etcd.get(stale), None, "A's stale key {stale:?} is deleted");
    }
    assert_eq!(
        etcd.get("traefik/http/routers/ugrxback-live-web/rule")
            .as_deref(),
        Some("Host(`back.example.test`)"),
        "B's rule stays"
    );
    assert!(etcd.get(back).is_some(), "B's backend stays");
    assert!(
        etcd.get("traefik/http/services/ugrxfront-live-web/loadbalancer/servers/ugrx-a/url")
            .is_some(),
        "A's backend (its sidekick's) stays"
    );
    wait_until(
        ROUTED,
        "front.example.test routed again",
        || get("http", "front.example.test", shared.http, "/", None),
        body("ugrxfront of live"),
    );
    assert_eq!(plan(&a).0, Some(0));
    assert_eq!(status(&a).0, Some(0));

    // `unitgen restart` reloads the routes unit, as apply does: a restart's
    // stop deleted the instance's routers from etcd, and every host's router
    // answered 404 until the services were up and the routes written again.
    // None of the keys was deleted (a key deleted and put again is created
    // anew).
    let (before, first) = etcd.revisions(unchanged);
    let said = ok(&a.unitgen(&["restart", "live"]), "restart live on A");
    let (_, after) = etcd.revisions(unchanged);
    assert_eq!(after.len(), first.len());
    assert!(after.iter().all(|k| k.created < before), "{after:?}");
    assert!(
        said.contains("its routes reloaded (ugrxfront-live-routes.service)"),
        "{said}"
    );
    wait_until(
        ROUTED,
        "front.example.test served after the restart",
        || get("http", "front.example.test", shared.http, "/", None),
        body("ugrxfront of live"),
    );
    assert_eq!(plan(&a).0, Some(0));

    // destroy on A removes A's instance's keys; A's router stays, as it
    // still routes B's instance (etcd routing is configured).
    let said = ok(&a.unitgen(&["destroy", "live"]), "destroy live on A");
    assert!(
        said.contains("unitgen-router.service stays: it serves the routes in etcd"),
        "{said}"
    );
    assert_eq!(
        keys(&etcd, "traefik/http/routers/ugrxfront-"),
        Vec::<String>::new()
    );
    assert_eq!(
        keys(&etcd, "traefik/http/services/ugrxfront-"),
        Vec::<String>::new()
    );
    assert_eq!(a.active("unitgen-router.service"), "active");
    wait_until(
        ROUTED,
        "front.example.test no longer routed",
        || get("http", "front.example.test", shared.http, "/", None),
        |answer| answer.status == 404,
    );
    assert_eq!(
        get("http", "back.example.test", shared.http, "/", None).map(|a| a.body),
        Some("ugrxback of live\n".to_string())
    );

    // B dies: its lease expires, and its backend leaves the router (the
    // lease is the TTL; when etcd and then Traefik act on a loaded machine
    // is theirs).
    let listed = etcd.etcdctl(3, &["get", back, "--write-out=json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let lease = (listed["kvs"][0]["lease"].as_u64())
        .unwrap_or_else(|| panic!("{back} has no lease: {listed}"));
    let granted = etcd.etcdctl(3, &["lease", "timetolive", &format!("{lease:x}")]);
    let granted = String::from_utf8_lossy(&granted.stdout);
    assert!(
        granted.contains(&format!("granted with TTL({TTL_SECONDS}s)")),
        "{granted}"
    );
    b.sandbox.power_off();
    let gone = wait_until(
        ROUTED,
        "B's backend leaving the router after its lease",
        || get("http", "back.example.test", shared.http, "/", None),
        |answer| matches!(answer.status, 404 | 503),
    );
    assert_eq!(etcd.get(back), None, "{gone:?}");
    assert!(
        http_get(back_port, "/").is_some_and(|(status, _)| status == 200),
        "B's container still serves: only the lease took it out of the router"
    );
    assert!(!keys(&etcd, "traefik/http/routers/ugrxback-").is_empty());
}

/// App `app`'s one web server, routed by `domain` in etcd with a
/// certificate from pebble.
fn acme_template(
    world: &World,
    app: &str,
    domain: &str,
    port: u16,
    shared: &Shared,
    pebble: &Pebble,
) -> String {
    format!(
        r#"app: {app}
services:
  web:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo "{app} of {{{{ instance }}}}" > /www/index.html && exec httpd -f -p 8000 -h /www']
    init: true
    ports: ["127.0.0.1:{port}:8000"]
instances:
  live:
    routes:
      - hosts: {domain}
        service: web
        port: 8000
etcd:
  endpoints: {etcd}
  ttl: {TTL_SECONDS}s
router:
  image: {image}
  directory: {router_dir}
  address: 127.0.0.1
  http_port: {http}
  https_port: {https}
  acme:
    ca_server: {ca_server}
    ca_certificate: {ca_certificate}
"#,
        etcd = shared.etcd,
        image = traefik::IMAGE,
        router_dir = world.sandbox.shared_dir().join("router").display(),
        http = shared.http,
        https = shared.https,
        ca_server = pebble.directory_url(),
        ca_certificate = pebble.tls_certificate().display(),
    )
}

/// The names of the certificates in a router's `acme.json`, by resolver.
fn stored_certificates(world: &World) -> Vec<(String, String)> {
    let path = world.sandbox.shared_dir().join("router/acme/acme.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut names = Vec::new();
    for (resolver, stored) in json.as_object().unwrap() {
        for certificate in stored["Certificates"].as_array().into_iter().flatten() {
            let main = certificate["domain"]["main"].as_str().unwrap();
            names.push((resolver.clone(), main.to_string()));
        }
    }
    names.sort();
    names
}

/// The ACME orders pebble has taken.
fn orders(pebble: &Pebble) -> usize {
    pebble.log().matches("Added order").count()
}

/// Every host's router reads every route in etcd, and each used to order
/// every route's certificate: the orders of hosts DNS does not send the
/// name to failed, again at every change. A route in etcd now names the
/// certificate resolver of the host that applied it (`unitgen-<machine
/// ID>`), which only that host's router has. One router at a time (the
/// machine has one pair of loopback ports): A's orders and serves its
/// certificate; B's, with A's keys in etcd, orders only its own, logs the
/// resolver it lacks, and still routes A's name (with its default
/// certificate).
#[test]
fn only_the_router_of_the_host_that_applied_a_route_orders_its_certificate() {
    const A_ID: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
    const B_ID: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
    let etcd = Etcd::start(false);
    let shared = Shared {
        etcd: etcd.endpoint(),
        http: free_port(),
        https: free_port(),
    };
    // pebble checks HTTP-01 on the routers' HTTP port; every name is
    // 127.0.0.1 to it.
    let pebble = Pebble::start(shared.http);
    let (a_port, b_port) = (free_port(), free_port());
    let mut a = World::on_machine("ugacmea", A_ID);
    a.own_router();
    let mut b = World::on_machine("ugacmeb", B_ID);
    b.own_router();
    ok(&a.sandbox.exec("hostname", ["ugacme-a"]), "hostname");
    ok(&b.sandbox.exec("hostname", ["ugacme-b"]), "hostname");

    // A: its route names A's resolver, which A's router has.
    a.write(&acme_template(
        &a,
        "ugacmea",
        "a.acme.test",
        a_port,
        &shared,
        &pebble,
    ));
    a.apply_ok("live");
    let resolver_key = "traefik/http/routers/ugacmea-live-web/tls/certresolver";
    let a_resolver = format!("unitgen-{A_ID}");
    assert_eq!(etcd.get(resolver_key).as_deref(), Some(a_resolver.as_str()));
    let root = pebble.issuing_root();
    wait_until(
        ROUTED,
        "a.acme.test over HTTPS through A's router, with pebble's certificate",
        || get("https", "a.acme.test", shared.https, "/", Some(&root)),
        |answer| answer.status == 200 && answer.body.trim() == "ugacmea of live",
    );
    // Traefik writes its storage a moment after it serves the certificate.
    let stored = |world: &World, resolver: &str, name: &str| {
        let want = [(resolver.to_string(), name.to_string())];
        let found = wait_for(ROUTED, || {
            let found = stored_certificates(world);
            (!found.is_empty()).then_some(found)
        });
        assert_eq!(found.as_deref(), Some(&want[..]));
    };
    stored(&a, &a_resolver, "a.acme.test");
    // status finds the certificate under the host's resolver, and finds
    // the keys as written (with the machine ID); plan finds nothing to do.
    let (code, shown) = a.unitgen_said(&["status", "live"]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("acme, expires 20"), "{shown}");
    let plan = a.unitgen(&["plan", "live"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
    // The resolver as an earlier unitgen wrote it is a change of the
    // routes in etcd, which apply writes back.
    etcd.put(resolver_key, "unitgen");
    let plan = a.unitgen(&["plan", "live"]);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
    a.apply_ok("live");
    assert_eq!(etcd.get(resolver_key).as_deref(), Some(a_resolver.as_str()));
    let ordered_by_a = orders(&pebble);
    assert_eq!(ordered_by_a, 1, "{}", pebble.log());

    // B, A's router stopped: B's apply starts B's router, which reads A's
    // keys too.
    ok(
        &a.sandbox.systemctl(["stop", "unitgen-router.service"]),
        "stopping A's router",
    );
    b.write(&acme_template(
        &b,
        "ugacmeb",
        "b.acme.test",
        b_port,
        &shared,
        &pebble,
    ));
    b.apply_ok("live");
    assert_eq!(b.active("unitgen-router.service"), "active");
    wait_until(
        ROUTED,
        "b.acme.test over HTTPS through B's router, with pebble's certificate",
        || get("https", "b.acme.test", shared.https, "/", Some(&root)),
        |answer| answer.status == 200 && answer.body.trim() == "ugacmeb of live",
    );
    // B's router read A's route (and said it lacks its resolver) in the
    // same configuration as B's own, whose certificate it got: A's name
    // was never ordered, though pebble would have certified it.
    let logged = wait_for(ROUTED, || {
        let log = support::docker::docker(["logs", b.router()]);
        let log = String::from_utf8_lossy(&log.stdout).into_owned()
            + &String::from_utf8_lossy(&log.stderr);
        log.lines()
            .any(|line| {
                line.contains("Router uses a nonexistent certificate resolver")
                    && line.contains(&a_resolver)
                    && line.contains("ugacmea-live-web@etcd")
            })
            .then_some(())
    });
    assert!(
        logged.is_some(),
        "B's router did not say it lacks A's resolver"
    );
    stored(&b, &format!("unitgen-{B_ID}"), "b.acme.test");
    assert_eq!(orders(&pebble), ordered_by_a + 1, "{}", pebble.log());
    // A's name still reaches A's instance through B's router, with
    // Traefik's default certificate (DNS sends A's names to A).
    wait_until(
        ROUTED,
        "a.acme.test through B's router",
        || get_unverified("a.acme.test", shared.https, "/"),
        |answer| answer.status == 200 && answer.body.trim() == "ugacmea of live",
    );
    assert!(
        traefik::served_certificate("a.acme.test", shared.https).contains("TRAEFIK DEFAULT CERT")
    );
}
