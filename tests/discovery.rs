//! Service discovery through etcd, for real: a throw-away etcd (Debian's
//! 3.4) on loopback, a sandboxed systemd running the sidekicks and the
//! services' `docker run`, and the host's Docker engine. Every check reads
//! etcd, a container's environment, or what a container serves.

#[path = "support/lib.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::docker::is_running;
use support::etcd::Etcd;
use support::net::free_port;
use support::world::{World, serves};
use support::{tempdir, wait_for};
use unitgen::model::{EtcdApi, Instance};
use unitgen::render::discovery::resolve_script;
use unitgen::template::Template;

/// Short, so expiry is seen quickly; sidekicks refresh every TTL/3 = 1s.
const TTL: u64 = 3;
/// How long a consumer waits for its dependency to be announced.
const WAIT: u64 = 10;

/// `api` serves a page on 127.0.0.1:`port` (a published port, so it gets a
/// sidekick); `web` depends on it and only sleeps, for `docker exec`.
fn template(app: &str, etcd: &Etcd, api: &str, port: u16) -> String {
    format!(
        r#"app: {app}
services:
  api:
    image: unitgen-test/busybox:1
    command: [sh, -c, 'mkdir -p /www && echo "api of $INSTANCE" > /www/index.html && exec httpd -f -p 80 -h /www']
    environment: {{INSTANCE: "{{{{ instance }}}}"}}
    init: true
    ports: ["127.0.0.1:{{{{ port }}}}:80"]
  web:
    image: unitgen-test/busybox:1
    command: [sleep, "1000000"]
    init: true
    depends_on: [api]
instances:
  live: {{port: {port}}}
etcd:
  endpoints: {endpoint}
  api: {api}
  ttl: {TTL}s
  wait: {WAIT}s
"#,
        endpoint = etcd.endpoint()
    )
}

/// The sandbox's hostname: the last part of every key its sidekicks write.
fn hostname(world: &World) -> String {
    let out = world.sandbox.exec("hostname", [] as [&str; 0]);
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Where `service` of `<app>-live` is announced by the sandbox's host.
fn key(world: &World, app: &str, service: &str) -> String {
    format!("/unitgen/{app}/live/{service}/{}", hostname(world))
}

/// A key prefix with characters that mean something to sh and systemd.
const ODD_PREFIX: &str = "/ug'$HOME;%n";

/// How long a test waits for what a sidekick does from its loop, or for
/// etcd to expire a lease: seconds when idle, far longer on a loaded
/// machine (CI runs the suite beside fleet-live on two cores).
const SIDEKICK: Duration = Duration::from_secs(60);

/// Waits for `read` to give a value, with the sidekick's log on failure.
fn announced(world: &World, unit: &str, read: impl FnMut() -> Option<String>) -> String {
    wait_for(SIDEKICK, read).unwrap_or_else(|| {
        panic!(
            "nothing announced within {SIDEKICK:?}; {unit}:\n{}",
            world.sandbox.journal(unit)
        )
    })
}

fn status_json(world: &World) -> Value {
    let out = world.unitgen(&["status", "live", "--json"]);
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The row of `status --json` whose `field` is `value`.
fn row<'a>(status: &'a Value, field: &str, value: &str) -> &'a Value {
    status["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u[field] == value)
        .unwrap_or_else(|| panic!("no row with {field} {value} in {status:#}"))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_published_address_is_announced_serves_shows_in_status_and_is_withdrawn_on_destroy() {
    let etcd = Etcd::start(false);
    let world = World::new("ugdann");
    let port = free_port();
    let yaml = template("ugdann", &etcd, "v3", port).replace(
        "etcd:\n",
        &format!(
            "etcd:\n  prefix: {}\n",
            serde_json::to_string(ODD_PREFIX).unwrap()
        ),
    );
    world.write(&yaml);
    world.apply_ok("live");

    let folder = format!("{ODD_PREFIX}/ugdann/live/api");
    let key = format!("{folder}/{}", hostname(&world));
    let address = announced(&world, "ugdann-live-api-announce.service", || {
        etcd.get(&key)
    });
    // Published on 127.0.0.1, so that is the address: no `etcd.address`
    // needed, it only replaces a wildcard (0.0.0.0) host.
    assert_eq!(address, format!("127.0.0.1:{port}"));
    let (_, announced_port) = address.rsplit_once(':').unwrap();
    assert_eq!(
        serves(announced_port.parse().unwrap()).as_deref(),
        Some("api of live\n"),
        "the announced address serves"
    );

    let status = status_json(&world);
    let api = &row(&status, "service", "api")["announced"];
    assert_eq!(api["key"], folder);
    assert_eq!(api["etcd_api"], "v3");
    assert_eq!(api["endpoints"], etcd.endpoint());
    assert_eq!(
        api["hosts"],
        serde_json::json!({ hostname(&world): address }),
        "{status:#}"
    );
    assert!(api.get("error").is_none(), "{status:#}");
    assert!(
        row(&status, "service", "web")["announced"].is_null(),
        "web publishes no port: nothing to announce"
    );
    let sidekick = row(&status, "announces", "api");
    assert_eq!(sidekick["unit"], "ugdann-live-api-announce.service");
    assert_eq!(sidekick["active_state"], "active");
    let table = stdout(&world.unitgen(&["status", "live"]));
    assert!(
        table.contains(&format!(
            "  announced: {address} by {}, under {folder}/ in etcd v3 at {}",
            hostname(&world),
            etcd.endpoint()
        )),
        "{table}"
    );
    assert!(table.contains("(api sidekick)"), "{table}");

    let out = world.unitgen(&["destroy", "live"]);
    assert!(out.status.success());
    // The sidekick's ExecStopPost ran before its stop job completed.
    assert_eq!(etcd.get(&key), None, "withdrawn on destroy");
}

#[test]
fn a_consumer_on_the_same_host_gets_an_address_it_can_reach_and_status_survives_a_dead_etcd() {
    let etcd = Etcd::start(false);
    let world = World::new("ugdcon");
    let port = free_port();
    world.write(&template("ugdcon", &etcd, "v3", port));
    world.apply_ok("live");
    announced(&world, "ugdcon-live-api-announce.service", || {
        etcd.get(&key(&world, "ugdcon", "api"))
    });

    // Announced by this host, so reached on the instance network: from
    // inside a container, the host's 127.0.0.1 is not the host.
    assert_eq!(
        world.exec(
            "live",
            "web",
            r#"printf '%s|%s|%s' "$API_HOST" "$API_PORT" "$API_ADDR""#
        ),
        "api|80|api:80"
    );
    assert_eq!(
        world.exec("live", "web", r#"wget -qO- "http://$API_ADDR/""#),
        "api of live\n"
    );

    // With etcd gone, status still answers and says why it knows nothing.
    drop(etcd);
    let status = status_json(&world);
    let api = &row(&status, "service", "api")["announced"];
    assert!(
        api["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{status:#}"
    );
    assert_eq!(api["hosts"], serde_json::json!({}));
}

#[test]
fn a_killed_sidekick_is_replaced_and_a_host_killed_hard_lets_its_key_expire_within_the_ttl() {
    let etcd = Etcd::start(false);
    let mut world = World::new("ugdkill");
    let port = free_port();
    world.write(&template("ugdkill", &etcd, "v3", port));
    world.apply_ok("live");
    let key = key(&world, "ugdkill", "api");
    let sidekick = "ugdkill-live-api-announce.service";
    let address = announced(&world, sidekick, || etcd.get(&key));

    // The announcement deleted by hand in etcd: the sidekick writes it
    // again on its next round (every 10 s), as it does after an etcd
    // outage; plan does not read etcd for announcements.
    let deleted = etcd.etcdctl(3, &["del", &key]);
    assert_eq!(stdout(&deleted).trim(), "1", "{}", stdout(&deleted));
    assert_eq!(
        announced(&world, sidekick, || etcd.get(&key)),
        address,
        "announced again"
    );

    // kill -9 of the service's docker client and of the sidekick, systemd
    // alive: systemd withdraws the key (ExecStopPost), restarts both
    // (Restart=always), and the key comes back.
    let out = world.sandbox.systemctl([
        "kill",
        "--signal=KILL",
        "ugdkill-live-api.service",
        sidekick,
    ]);
    assert!(out.status.success());
    let gone = wait_for(SIDEKICK, || etcd.get(&key).is_none().then_some(()));
    assert!(gone.is_some(), "{}", world.sandbox.journal(sidekick));
    assert_eq!(
        announced(&world, sidekick, || etcd.get(&key)),
        address,
        "announced again after the restart"
    );
    assert!(serves(port).is_some());

    // The host dies hard: every process of the sandbox is killed at once,
    // systemd too, so nothing withdraws the key. The container lives on in
    // the host's engine; only the refreshing stopped. The key's lease is
    // the TTL (etcd expires it that long after the last refresh: when, on a
    // loaded machine, is up to etcd).
    let lease = lease_of(&etcd, &key);
    let granted = stdout(&etcd.etcdctl(3, &["lease", "timetolive", &lease]));
    assert!(
        granted.contains(&format!("granted with TTL({TTL}s)")),
        "lease {lease}: {granted}"
    );
    let killed = Instant::now();
    world.sandbox.power_off();
    assert!(is_running("ugdkill-live-api"), "the container outlives it");
    let expired = wait_for(SIDEKICK, || etcd.get(&key).is_none().then_some(()));
    assert!(
        expired.is_some(),
        "{key} still there {:?} after the kill",
        killed.elapsed()
    );
    // Gone with its lease, so it expired: a withdrawal deletes the key and
    // leaves the lease to run out.
    let ttl = etcd.etcdctl(3, &["lease", "timetolive", &lease]);
    assert!(
        stdout(&ttl).contains("already expired"),
        "lease {lease}: {}",
        stdout(&ttl)
    );

    // After a reboot the service and its sidekick (enabled into it) are back.
    world.sandbox.reboot();
    assert_eq!(announced(&world, sidekick, || etcd.get(&key)), address);
}

/// The lease a v3 key is attached to, in hex as etcdctl takes it.
fn lease_of(etcd: &Etcd, key: &str) -> String {
    let out = etcd.etcdctl(3, &["get", key, "--write-out=json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lease = json["kvs"][0]["lease"]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} has no lease: {json}"));
    format!("{lease:x}")
}

#[test]
fn the_v2_api_announces_with_a_ttl_resolves_and_withdraws_on_destroy() {
    let etcd = Etcd::start(true);
    let world = World::new("ugdv2");
    let port = free_port();
    world.write(&template("ugdv2", &etcd, "v2", port));
    world.apply_ok("live");

    let key = key(&world, "ugdv2", "api");
    let address = announced(&world, "ugdv2-live-api-announce.service", || {
        etcd.get_v2(&key)
    });
    assert_eq!(address, format!("127.0.0.1:{port}"));
    assert!(serves(port).is_some());
    // A v2 key carries its own TTL, refreshed by every `set`.
    let extended = stdout(&etcd.etcdctl(2, &["-o", "extended", "get", &key]));
    let ttl: u64 = extended
        .lines()
        .find_map(|l| l.strip_prefix("TTL: "))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no TTL in {extended}"));
    assert!((1..=TTL).contains(&ttl), "TTL {ttl}");
    assert_eq!(
        world.exec(
            "live",
            "web",
            r#"printf %s "$API_ADDR" && wget -qO- "http://$API_ADDR/""#
        ),
        "api:80api of live\n"
    );

    let status = status_json(&world);
    let api = &row(&status, "service", "api")["announced"];
    assert_eq!(api["etcd_api"], "v2");
    assert_eq!(
        api["hosts"],
        serde_json::json!({ hostname(&world): address }),
        "{status:#}"
    );

    let out = world.unitgen(&["destroy", "live"]);
    assert!(out.status.success());
    assert_eq!(etcd.get_v2(&key), None, "withdrawn on destroy");
}

/// The consumer's resolver script, run by `sh` on this machine against a
/// real etcd, for cases one host cannot stage: another host's
/// announcements, and none at all.
#[test]
fn the_resolver_prefers_this_host_skips_other_hosts_loopback_and_gives_up_after_its_wait() {
    let etcd = Etcd::start(true);
    let dir = tempdir("resolve-");
    let here = String::from_utf8(Command::new("hostname").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    // An etcd that does not answer: each etcdctl call takes seconds to give
    // up, and the wait is still bounded by the clock.
    let file = dir.path().join("dead.yaml");
    let dead = template("ugdres", &etcd, "v3", 8080)
        .replace(
            &etcd.endpoint(),
            &format!("http://127.0.0.1:{}", free_port()),
        )
        .replace(&format!("wait: {WAIT}s"), "wait: 2s");
    std::fs::write(&file, dead).unwrap();
    let instance = compile(&file);
    let script = resolve_script(
        &instance,
        instance.discovery.as_ref().unwrap(),
        &[instance.service("api").unwrap()],
        dir.path().join("dead/web.env").to_str().unwrap(),
    );
    let started = Instant::now();
    let out = // systemd joins the script's lines with spaces, as here.
    Command::new("sh").arg("-c").arg(script.join(" ")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    // One round of two calls that time out (5s each), not one per second.
    assert!(
        started.elapsed() < Duration::from_secs(18),
        "gave up after {:?}",
        started.elapsed()
    );

    for (api, number) in [(EtcdApi::V3, 3), (EtcdApi::V2, 2)] {
        let name = if number == 3 { "v3" } else { "v2" };
        let file = dir.path().join(format!("{name}.yaml"));
        let text =
            template("ugdres", &etcd, name, 8080).replace(&format!("wait: {WAIT}s"), "wait: 2s");
        std::fs::write(&file, text).unwrap();
        let instance = compile(&file);
        let env_file = dir.path().join(format!("{name}/web.env"));
        let resolve = || {
            let discovery = instance.discovery.as_ref().unwrap();
            let api_service = instance.service("api").unwrap();
            let script = resolve_script(
                &instance,
                discovery,
                &[api_service],
                env_file.to_str().unwrap(),
            );
            Command::new("sh")
                .arg("-c")
                .arg(script.join(" "))
                .output()
                .unwrap()
        };
        let put = |host: &str, value: &str| {
            let key = format!("/unitgen/ugdres/live/api/{host}");
            let set: &[&str] = match api {
                EtcdApi::V3 => &["put", &key, value],
                EtcdApi::V2 => &["set", &key, value],
            };
            assert!(etcd.etcdctl(number, set).status.success());
        };

        // Nothing announced: it gives up after its wait, and says why.
        let started = Instant::now();
        let out = resolve();
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(started.elapsed() < Duration::from_secs(10), "{name}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("api: no address announced under /unitgen/ugdres/live/api/ after 2s"),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!env_file.exists(), "{name}: no partial env file");

        // Another host's loopback address means nothing here; its other
        // address does.
        put("aaa-loopback-host", "127.0.0.1:1234");
        put("zzz-other-host", "192.0.2.10:8080");
        assert!(resolve().status.success(), "{name}");
        assert_eq!(
            std::fs::read_to_string(&env_file).unwrap(),
            "API_HOST=192.0.2.10\nAPI_PORT=8080\nAPI_ADDR=192.0.2.10:8080\n",
            "{name}"
        );

        // Announced by this host: reached by name on the instance network.
        put(&here, "127.0.0.1:5555");
        assert!(resolve().status.success(), "{name}");
        assert_eq!(
            std::fs::read_to_string(&env_file).unwrap(),
            "API_HOST=api\nAPI_PORT=80\nAPI_ADDR=api:80\n",
            "{name}"
        );
    }
}

fn compile(file: &Path) -> Instance {
    let template = Template::load(file).unwrap();
    unitgen::compile::compile(&template, "live", &Default::default()).unwrap()
}

/// The sidekick and the consumer's resolver, as rendered for both APIs,
/// pass `systemd-analyze verify` without a word.
#[test]
fn sidekick_and_consumer_units_pass_systemd_analyze_verify() {
    let dir = tempdir("verify-");
    // Rendering needs no running etcd: any endpoint will do.
    for api in ["v3", "v2"] {
        let file = dir.path().join(format!("{api}.yaml"));
        let text = format!(
            "app: ugdver\nservices:\n  api:\n    image: unitgen-test/busybox:1\n    ports: [\"127.0.0.1:8080:80\"]\n  web:\n    image: unitgen-test/busybox:1\n    depends_on: [api]\ninstances:\n  live: {{}}\netcd:\n  endpoints: http://127.0.0.1:2379,http://127.0.0.1:22379\n  api: {api}\n  prefix: /odd$prefix;%n\n"
        );
        std::fs::write(&file, text).unwrap();
        let out_dir = dir.path().join(api);
        let out = Command::new(env!("CARGO_BIN_EXE_unitgen"))
            .args(["render", "live", "-f"])
            .arg(&file)
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let units: Vec<_> = std::fs::read_dir(&out_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(
            units
                .iter()
                .any(|u| u.ends_with("ugdver-live-api-announce.service")),
            "{units:?}"
        );
        let verify = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .args(&units)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&verify.stderr), "", "{api}");
        assert!(verify.status.success());
    }
}
