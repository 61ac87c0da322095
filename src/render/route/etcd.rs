//! Routes across hosts: an instance's routes in etcd, under Traefik's KV
//! layout (`traefik/http/routers/<name>/rule`, …), where every host's
//! router reads them (`--providers.etcd`).
//!
//! Two writers share the layout, so that a dead host drops out by itself:
//!
//! - the instance's routes unit writes what does not depend on where the
//!   instance runs: routers, middlewares, the services' health checks and
//!   the TLS certificates' files; stopping it removes them;
//! - each routed service's announce sidekick writes its own backend's URL,
//!   `traefik/http/services/<route>/loadbalancer/servers/<hostname>/url`,
//!   under the lease of its announcement: when the host dies, the lease
//!   expires and the backend leaves every router. The host name keeps two
//!   hosts' copies apart, as the announcements' keys do.
//!
//! Every Traefik name of an instance starts with `<app>-<instance>-` (app
//! and instance names have no `-`), so the routes unit finds the
//! instance's old keys by prefix, without touching another instance's.
//!
//! The routes unit writes in one transaction: the new keys, and the
//! removal of the instance's keys it no longer has. Traefik reads etcd's
//! keys as they are at one revision, so a router never sees the instance's
//! routes half written, or missing while they are rewritten.

use serde_json::Value;

use super::Dynamic;
use crate::docker::DOCKER;
use crate::escape::{sh_quote, txn_quote};
use crate::model::route::{ACME_RESOLVER, MACHINE_ID_SPECIFIER, Route, host_resolver};

/// Traefik's root key (`--providers.etcd.rootkey`). No leading `/`:
/// Traefik v3 does not find keys under `/traefik`.
pub const ROOT_KEY: &str = "traefik";

/// The variable the routes unit sets to the host's machine ID
/// (`Environment=UNITGEN_MACHINE_ID=%m`): the certificate resolver of its
/// routes ([`host_resolver`]) is written with it.
pub const MACHINE_ID_VARIABLE: &str = "UNITGEN_MACHINE_ID";

/// The folders the routes unit owns, each holding names that start with
/// `<prefix>-`.
const OWNED: [&str; 3] = ["http/routers", "http/middlewares", "tls/certificates"];

/// The folder of a route's backends (one key per host below it).
pub fn servers_folder(route: &Route) -> String {
    format!(
        "{ROOT_KEY}/http/services/{}/loadbalancer/servers",
        route.name
    )
}

/// `dynamic` as etcd keys and values, without the backends (the
/// sidekicks' part). Traefik reads field names in any case; they are
/// written lowercase, as Traefik's documentation does. Lists are numbered,
/// except the TLS certificates, which every instance adds to one list:
/// theirs are numbered `<prefix>-<n>`.
pub fn pairs(dynamic: &Dynamic, prefix: &str) -> Vec<(String, String)> {
    let value = serde_json::to_value(dynamic).expect("the dynamic configuration serializes");
    value_pairs(&value, prefix)
}

fn value_pairs(value: &Value, prefix: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    flatten(value, ROOT_KEY.to_string(), prefix, &mut pairs);
    pairs.retain(|(key, _)| !is_server_key(key));
    pairs
}

/// A backend's key: its announce sidekick's, not the routes unit's.
pub fn is_server_key(key: &str) -> bool {
    key.starts_with(&format!("{ROOT_KEY}/http/services/")) && key.contains("/loadbalancer/servers/")
}

fn flatten(value: &Value, key: String, prefix: &str, out: &mut Vec<(String, String)>) {
    match value {
        // A part that is on without options (`tls: {}`): Traefik's KV
        // says so with `true`.
        Value::Object(map) if map.is_empty() => out.push((key, "true".to_string())),
        Value::Object(map) => {
            for (name, child) in map {
                flatten(child, format!("{key}/{}", name.to_lowercase()), prefix, out);
            }
        }
        Value::Array(items) => {
            let shared = key == format!("{ROOT_KEY}/tls/certificates");
            for (i, child) in items.iter().enumerate() {
                let index = if shared {
                    format!("{prefix}-{i}")
                } else {
                    i.to_string()
                };
                flatten(child, format!("{key}/{index}"), prefix, out);
            }
        }
        Value::String(text) => out.push((key, text.clone())),
        Value::Null => {}
        other => out.push((key, other.to_string())),
    }
}

/// The routes unit's start (and reload): one `etcdctl txn` that puts
/// `pairs` and deletes the instance's other keys (routes it no longer has
/// must not stay; etcd refuses a transaction that deletes a key it puts).
/// The deletes are ranges, known when rendered ([`stale_ranges`]): every
/// key under the instance's prefixes but `pairs` and the backends of
/// `servers` (its routes' [`servers_folder`]s, the sidekicks'), whatever
/// the key holds. (Keys read from etcd a line each could not name a key
/// holding a line feed, planted by anyone who can write to etcd: it
/// stayed, and plan said the routes were changed by hand for good.)
/// etcd takes at most `--max-txn-ops` (128 by default) operations in one
/// transaction: with more, each goes alone, the puts first, so that the
/// routes are never missing, only briefly mixed. One statement per element
/// (see `escape::systemd_shell`); fails when etcd does not answer.
pub fn write_script(prefix: &str, pairs: &[(String, String)], servers: &[String]) -> Vec<String> {
    let mut script = vec![
        "set -e;".to_string(),
        // The operations, one per line: the puts, then the deletes.
        "ops=$(printf '%s\\n'".to_string(),
    ];
    for (key, value) in pairs {
        script.push(put_op(key, value));
    }
    let wanted: Vec<&str> = pairs.iter().map(|(key, _)| key.as_str()).collect();
    for (start, end) in stale_ranges(prefix, &wanted, servers) {
        let op = format!("del -- {} {}", txn_quote(&start), txn_quote(&end));
        script.push(sh_quote(&op));
    }
    // Not at the start of the next line: systemd drops a continued line
    // that starts with `;` (a comment).
    script.last_mut().expect("the printf").push_str(");");
    script.extend([
        // No comparisons (the empty first part): the operations always run.
        "if ! said=$(printf '\\n%s\\n\\n\\n' \"$ops\" | etcdctl txn 2>&1); then".to_string(),
        "  case \"$said\" in *'too many operations'*) ;; *) echo \"$said\" >&2; exit 1;; esac;"
            .to_string(),
        "  printf '%s\\n' \"$ops\" | while IFS= read -r op; do".to_string(),
        "    printf '\\n%s\\n\\n\\n' \"$op\" | etcdctl txn >/dev/null;".to_string(),
        "  done;".to_string(),
        "fi".to_string(),
    ]);
    script
}

/// One `put` of [`write_script`], as one word of the shell. The host's
/// certificate resolver is completed at run time with the machine ID
/// systemd gives the unit ([`MACHINE_ID_VARIABLE`]).
fn put_op(key: &str, value: &str) -> String {
    // `--`: a value may start with `-`.
    let op = format!("put -- {} ", txn_quote(key));
    if is_resolver_key(key) && value == host_resolver(MACHINE_ID_SPECIFIER) {
        // A machine ID is hex: nothing in it needs a Go string's escape.
        return format!(
            "{}\"${{{MACHINE_ID_VARIABLE}:?}}\"{}",
            sh_quote(&format!("{op}\"{ACME_RESOLVER}-")),
            sh_quote("\"")
        );
    }
    sh_quote(&format!("{op}{}", txn_quote(value)))
}

/// A router's certificate resolver key (`…/tls/certresolver`).
fn is_resolver_key(key: &str) -> bool {
    key.starts_with(&format!("{ROOT_KEY}/http/routers/")) && key.ends_with("/tls/certresolver")
}

/// `pairs` as the routes unit of the host with `machine_id` writes them to
/// etcd: its certificate resolver named (see [`put_op`]).
pub fn with_machine_id(pairs: &mut [(String, String)], machine_id: &str) {
    let unexpanded = host_resolver(MACHINE_ID_SPECIFIER);
    for (key, value) in pairs.iter_mut() {
        if is_resolver_key(key) && *value == unexpanded {
            *value = host_resolver(machine_id);
        }
    }
}

/// The reverse of [`with_machine_id`]: keys read from etcd as the pairs
/// they were rendered from (whose digest the routes unit records).
pub fn without_machine_id(pairs: &mut [(String, String)], machine_id: &str) {
    let expanded = host_resolver(machine_id);
    for (key, value) in pairs.iter_mut() {
        if is_resolver_key(key) && *value == expanded {
            *value = host_resolver(MACHINE_ID_SPECIFIER);
        }
    }
}

/// The key ranges `[start, end)` that hold every key under the instance's
/// prefixes ([`owned_prefixes`]) but `kept` and the folders `spared` (each
/// a folder's key without its `/`): what the routes unit deletes.
fn stale_ranges(prefix: &str, kept: &[&str], spared: &[String]) -> Vec<(String, String)> {
    // What stays, as ranges: a key is [key, key + NUL), a folder every key
    // that starts with it.
    let mut holes: Vec<(String, String)> = (kept.iter())
        .map(|key| (key.to_string(), format!("{key}\0")))
        .chain(spared.iter().map(|folder| {
            let folder = format!("{folder}/");
            let end = prefix_end(&folder);
            (folder, end)
        }))
        .collect();
    holes.sort();
    let mut ranges = Vec::new();
    for owned in owned_prefixes(prefix) {
        let (mut from, to) = (owned.clone(), prefix_end(&owned));
        for (start, end) in &holes {
            if *end <= from || *start >= to {
                continue;
            }
            if *start > from {
                ranges.push((from.clone(), start.clone()));
            }
            from = from.max(end.clone());
        }
        if from < to {
            ranges.push((from, to));
        }
    }
    ranges
}

/// The first key after every key that starts with `prefix` (etcd's prefix
/// range end): its last byte plus one (the prefixes here end in ASCII).
fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    let last = bytes.last_mut().expect("a prefix");
    assert!(*last < 0x7f, "prefixes end in ASCII");
    *last += 1;
    String::from_utf8(bytes).expect("ASCII stays UTF-8")
}

/// The key prefixes under which every key is the routes unit's but the
/// backends: `<folder>/<prefix>-` for each folder of Traefik's layout it
/// writes.
pub fn owned_prefixes(prefix: &str) -> Vec<String> {
    (OWNED.iter().chain(&["http/services"]))
        .map(|folder| format!("{ROOT_KEY}/{folder}/{prefix}-"))
        .collect()
}

/// The routes unit's stop: remove the instance's routers, middlewares,
/// certificates and service options, whatever their keys hold. The
/// backends (in `servers`, as for [`write_script`]) stay their sidekicks'
/// to remove (a service may outlive its route for a moment).
pub fn remove_script(prefix: &str, servers: &[String]) -> Vec<String> {
    let mut script = vec!["set -e;".to_string()];
    for (start, end) in stale_ranges(prefix, &[], servers) {
        script.push(format!(
            "etcdctl del -- {} {} >/dev/null;",
            sh_quote(&start),
            sh_quote(&end)
        ));
    }
    script
}

/// The sidekick's part, for each route to the service: its backend's URL
/// under the host's key, with the announcement's lease (`$lease`). The
/// address is what Docker published for the route's port; one published
/// on every interface is announced as the announcement's is (`$host`'s
/// rule, `wildcard_host`). One statement per element.
pub fn announce_lines(routes: &[&Route], container: &str, wildcard_host: &str) -> Vec<String> {
    let mut script = Vec::new();
    for route in routes {
        let key = format!("{}/$(hostname)/url", sh_quote(&servers_folder(route)));
        script.extend([
            format!(
                "        published=$({DOCKER} port {container} {}/tcp | head -n 1);",
                route.port
            ),
            "        if [ -n \"$published\" ]; then".to_string(),
            "          host=${published%:*};".to_string(),
            format!("          case \"$host\" in 0.0.0.0|::|\"[::]\") {wildcard_host};; esac;"),
            format!(
                "          etcdctl put --lease=\"$lease\" {key} \"http://$host:${{published##*:}}\" >/dev/null;"
            ),
            "        fi;".to_string(),
        ]);
    }
    script
}

/// Removes the host's backends of `routes` (the sidekick's withdrawal).
pub fn withdraw_lines(routes: &[&Route]) -> Vec<String> {
    routes
        .iter()
        .map(|route| {
            format!(
                "etcdctl del {}/$(hostname)/url >/dev/null;",
                sh_quote(&servers_folder(route))
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_dynamic_configuration_becomes_traefiks_keys_without_the_backends() {
        let dynamic = json!({
            "http": {
                "routers": {"blog-live-web": {
                    "entryPoints": ["websecure"],
                    "rule": "Host(`blog.example.com`)",
                    "service": "blog-live-web",
                    "tls": {},
                }},
                "services": {"blog-live-web": {"loadBalancer": {
                    "servers": [{"url": "http://127.0.0.1:8080"}],
                    "healthCheck": {"path": "/healthz"},
                }}},
                "middlewares": {"blog-live-to-https": {"redirectScheme": {
                    "scheme": "https", "permanent": true,
                }}},
            },
            "tls": {"certificates": [{"certFile": "/c.pem", "keyFile": "/k.pem"}]},
        });
        let pairs = value_pairs(&dynamic, "blog-live");
        let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k} {v}")).collect();
        assert_eq!(
            text,
            [
                "traefik/http/middlewares/blog-live-to-https/redirectscheme/permanent true",
                "traefik/http/middlewares/blog-live-to-https/redirectscheme/scheme https",
                "traefik/http/routers/blog-live-web/entrypoints/0 websecure",
                "traefik/http/routers/blog-live-web/rule Host(`blog.example.com`)",
                "traefik/http/routers/blog-live-web/service blog-live-web",
                "traefik/http/routers/blog-live-web/tls true",
                "traefik/http/services/blog-live-web/loadbalancer/healthcheck/path /healthz",
                "traefik/tls/certificates/blog-live-0/certfile /c.pem",
                "traefik/tls/certificates/blog-live-0/keyfile /k.pem",
            ]
        );
    }

    #[test]
    fn one_transaction_puts_every_pair_and_deletes_only_keys_no_longer_wanted() {
        let key = "traefik/http/routers/blog-live-web/rule";
        let servers = ["traefik/http/services/blog-live-web/loadbalancer/servers".to_string()];
        let script = write_script(
            "blog-live",
            &[(key.into(), r#"-a' $(reboot) "q""#.into())],
            &servers,
        );
        // The put is one word of the shell's `printf`, a Go string for etcdctl.
        let put = format!(r#"'put -- "{key}" "-a'\'' $(reboot) \"q\""'"#);
        assert!(script.contains(&put), "{script:#?}");
        // Every other key of the instance's is deleted, by ranges around
        // the key still wanted (etcd refuses a transaction that puts and
        // deletes one key) and the backends.
        let deletes: Vec<&String> = script.iter().filter(|l| l.starts_with("'del ")).collect();
        assert_eq!(
            deletes,
            [
                r#"'del -- "traefik/http/routers/blog-live-" "traefik/http/routers/blog-live-web/rule"'"#,
                r#"'del -- "traefik/http/routers/blog-live-web/rule\x00" "traefik/http/routers/blog-live."'"#,
                r#"'del -- "traefik/http/middlewares/blog-live-" "traefik/http/middlewares/blog-live."'"#,
                r#"'del -- "traefik/tls/certificates/blog-live-" "traefik/tls/certificates/blog-live."'"#,
                r#"'del -- "traefik/http/services/blog-live-" "traefik/http/services/blog-live-web/loadbalancer/servers/"'"#,
                r#"'del -- "traefik/http/services/blog-live-web/loadbalancer/servers0" "traefik/http/services/blog-live."');"#,
            ],
            "{script:#?}"
        );
        let txns = script
            .iter()
            .filter(|l| l.contains("| etcdctl txn"))
            .count();
        assert_eq!(
            txns, 2,
            "one transaction, and one per operation past etcd's limit"
        );
        assert!(!script.iter().any(|l| l.contains("etcdctl put")));
        // The stop spares the backends alone.
        let stop = remove_script("blog-live", &servers);
        assert_eq!(stop.len(), 6, "{stop:#?}");
        assert!(stop.iter().all(|l| !l.contains("/loadbalancer/servers/'")
            || l.ends_with(
                "'traefik/http/services/blog-live-web/loadbalancer/servers/' >/dev/null;"
            )));
    }

    /// A route with ACME in etcd names the certificate resolver of the
    /// host that applies it: the routes unit writes `unitgen-` and the
    /// machine ID systemd gives it; plan and status compare with it.
    #[test]
    fn the_hosts_resolver_is_written_with_its_machine_id() {
        let resolver = "traefik/http/routers/blog-live-web/tls/certresolver";
        let rule = "traefik/http/routers/blog-live-web/rule";
        let rendered = vec![
            (resolver.to_string(), "unitgen-%m".to_string()),
            (rule.to_string(), "unitgen-%m".to_string()),
        ];
        let script = write_script("blog-live", &rendered, &[]);
        let put = format!(r#"'put -- "{resolver}" "unitgen-'"${{UNITGEN_MACHINE_ID:?}}"'"'"#);
        assert!(script.contains(&put), "{script:#?}");
        // Only a resolver's key: any other value is written as it is.
        let other = format!(r#"'put -- "{rule}" "unitgen-%m"'"#);
        assert!(script.contains(&other), "{script:#?}");
        // The shell makes of it one word, the put etcdctl reads.
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", &format!("printf '%s' {put}")])
            .env("UNITGEN_MACHINE_ID", "3d12")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!(r#"put -- "{resolver}" "unitgen-3d12""#)
        );

        let mut pairs = rendered.clone();
        with_machine_id(&mut pairs, "3d12");
        assert_eq!(pairs[0].1, "unitgen-3d12");
        assert_eq!(pairs[1].1, "unitgen-%m");
        without_machine_id(&mut pairs, "3d12");
        assert_eq!(pairs, rendered);
        // Another host's resolver stays: it is not what this host wrote.
        let mut theirs = vec![(resolver.to_string(), "unitgen-77aa".to_string())];
        without_machine_id(&mut theirs, "3d12");
        assert_eq!(theirs[0].1, "unitgen-77aa");
    }

    #[test]
    fn the_stale_ranges_leave_exactly_the_kept_keys_and_spared_folders() {
        let kept = [
            "traefik/http/routers/a-b-x/rule",
            "traefik/http/routers/a-b-x/service",
            "traefik/http/services/a-b-x/loadbalancer/healthcheck/path",
        ];
        let spared = ["traefik/http/services/a-b-x/loadbalancer/servers".to_string()];
        let ranges = stale_ranges("a-b", &kept, &spared);
        let deleted = |key: &str| {
            (ranges.iter()).any(|(start, end)| key >= start.as_str() && key < end.as_str())
        };
        for key in kept {
            assert!(!deleted(key), "{key}");
        }
        for key in [
            "traefik/http/services/a-b-x/loadbalancer/servers/h1/url",
            // Another instance's, and Traefik's others.
            "traefik/http/routers/a-bc-x/rule",
            "traefik/http/routers/a-b",
            "traefik/http/routers/b-b-x/rule",
        ] {
            assert!(!deleted(key), "{key}");
        }
        for key in [
            "traefik/http/routers/a-b-x/rule\nx",
            "traefik/http/routers/a-b-x/rule2",
            "traefik/http/routers/a-b-\"x",
            "traefik/http/routers/a-b-x/servicf",
            "traefik/http/middlewares/a-b-y\n/z",
            "traefik/tls/certificates/a-b-0/certfile",
            "traefik/http/services/a-b-old/loadbalancer/servers/h1/url",
            "traefik/http/services/a-b-x/loadbalancer/servers",
            "traefik/http/services/a-b-x/loadbalancer/server",
        ] {
            assert!(deleted(key), "{key:?}");
        }
    }
}
