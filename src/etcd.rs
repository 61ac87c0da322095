//! Reading announcements (for `status`) and routes (for `apply`'s claim
//! check) back from etcd, through the same `etcdctl` the sidekicks use, so
//! unitgen needs no etcd client of its own.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use crate::model::EtcdApi;
use crate::render::discovery::api_number;
use crate::render::route::etcd as route_etcd;

/// Every host's announcement under `key` (a service's key folder): host →
/// address. Empty when nothing is announced; an error when etcd cannot be
/// read.
pub fn announcements(
    api: EtcdApi,
    endpoints: &str,
    key: &str,
) -> Result<BTreeMap<String, String>, String> {
    let folder = format!("{}/", key.trim_end_matches('/'));
    let host_of = |k: &str| k.strip_prefix(&folder).map(str::to_owned);
    let mut found = BTreeMap::new();
    match api {
        EtcdApi::V3 => {
            for (k, v) in get_prefix(endpoints, &folder)? {
                if let Some(host) = host_of(&k) {
                    found.insert(host, v);
                }
            }
        }
        EtcdApi::V2 => {
            let out = match etcdctl(api, endpoints, &["ls", key]) {
                Ok(out) => out,
                // The v2 API has no empty folder: nothing announced yet.
                Err(e) if e.contains("Key not found") => return Ok(found),
                Err(e) => return Err(e),
            };
            for k in String::from_utf8_lossy(&out.stdout).lines() {
                let Some(host) = host_of(k) else { continue };
                match etcdctl(api, endpoints, &["get", k]) {
                    Ok(out) => {
                        let value = String::from_utf8_lossy(&out.stdout);
                        found.insert(host, value.trim_end().to_string());
                    }
                    // Expired between ls and get.
                    Err(e) if e.contains("Key not found") => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(found)
}

/// What the routers in etcd (Traefik's KV, `render::route::etcd`) route,
/// except those whose name starts with `skip` (an instance's own):
/// (`host/path`, router name) for each name of each rule, as
/// `router::claims` says them. Only the v3 API holds routes.
pub fn route_claims(endpoints: &str, skip: &str) -> Result<Vec<(String, String)>, String> {
    let folder = format!("{}/http/routers/", route_etcd::ROOT_KEY);
    let mut claims = Vec::new();
    for (key, rule) in get_prefix(endpoints, &folder)? {
        if let Some(name) = key
            .strip_prefix(&folder)
            .and_then(|k| k.strip_suffix("/rule"))
            && !name.starts_with(skip)
        {
            claims.extend(
                rule_claims(&rule)
                    .into_iter()
                    .map(|c| (c, name.to_string())),
            );
        }
    }
    Ok(claims)
}

/// The keys the routes unit of the instance `prefix` writes in etcd (see
/// `render::route::etcd`), as they are now: everything under its prefixes
/// but the sidekicks' backends.
pub fn instance_routes(endpoints: &str, prefix: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = instance_route_keys(endpoints, prefix)?;
    pairs.retain(|(key, _)| !route_etcd::is_server_key(key));
    Ok(pairs)
}

/// [`instance_routes`] with the sidekicks' backends: every key of the
/// instance's routes in etcd, sorted.
pub fn instance_route_keys(endpoints: &str, prefix: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for owned in route_etcd::owned_prefixes(prefix) {
        pairs.extend(get_prefix(endpoints, &owned)?);
    }
    pairs.sort();
    Ok(pairs)
}

/// Every key under `prefix` with its value (v3 API). Read as JSON, where
/// etcd gives each key and value in base64: etcdctl's plain output puts
/// them on alternate lines, so a value holding a line feed (anyone who can
/// write to etcd can put one) shifted every pair after it, and its lines
/// read as keys and values of their own: a host announced at an address
/// it never wrote, a route claimed by a router that has no such rule.
fn get_prefix(endpoints: &str, prefix: &str) -> Result<Vec<(String, String)>, String> {
    let out = etcdctl(
        EtcdApi::V3,
        endpoints,
        &["get", "--prefix", "--write-out=json", prefix],
    )?;
    kvs_of(&out.stdout)
}

/// The keys and values of `etcdctl get -w json`'s answer.
fn kvs_of(json: &[u8]) -> Result<Vec<(String, String)>, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        // Absent when nothing is under the prefix.
        #[serde(default)]
        kvs: Vec<Kv>,
    }
    #[derive(serde::Deserialize)]
    struct Kv {
        key: String,
        // Absent for an empty value.
        #[serde(default)]
        value: String,
    }
    let answer: Answer = serde_json::from_slice(json)
        .map_err(|e| format!("etcdctl's answer is not what it writes with -w json: {e}"))?;
    let text = |base64: &str| -> Result<String, String> {
        crate::router::certificate::base64_decode(base64)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .ok_or_else(|| format!("etcdctl's answer holds `{base64}`, which is not base64"))
    };
    (answer.kvs.iter())
        .map(|kv| Ok((text(&kv.key)?, text(&kv.value)?)))
        .collect()
}

/// `host/path` for each ``Host(`…`)`` of a rule unitgen wrote (its names
/// or'ed, and'ed with at most one ``PathPrefix(`…`)``).
fn rule_claims(rule: &str) -> Vec<String> {
    let quoted = |after: &str| -> Vec<String> {
        (rule.split(after).skip(1))
            .filter_map(|rest| rest.split('`').next())
            .map(str::to_owned)
            .collect()
    };
    let path = quoted("PathPrefix(`").pop().unwrap_or_default();
    let path = path.trim_end_matches('/');
    (quoted("Host(`").into_iter())
        .map(|host| format!("{host}{path}"))
        .collect()
}

/// Runs etcdctl with short timeouts: `status` must not hang on a dead etcd.
/// Settings go in the environment, which replaces the caller's: v3
/// etcdctl refuses a flag that an `ETCDCTL_*` variable also sets.
fn etcdctl(api: EtcdApi, endpoints: &str, args: &[&str]) -> Result<Output, String> {
    let mut command = Command::new("etcdctl");
    command
        .env("ETCDCTL_API", api_number(api))
        .env("ETCDCTL_ENDPOINTS", endpoints);
    match api {
        EtcdApi::V3 => command
            .env("ETCDCTL_DIAL_TIMEOUT", "2s")
            .env("ETCDCTL_COMMAND_TIMEOUT", "5s"),
        EtcdApi::V2 => command.args(["--timeout=2s", "--total-timeout=5s"]),
    };
    let out = command
        .args(args)
        .output()
        .map_err(|e| format!("running etcdctl: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(crate::diagnostic::quoted_output(&String::from_utf8_lossy(
            &out.stderr,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::{kvs_of, rule_claims};

    /// A value with line feeds is one value (etcdctl's plain output gave
    /// its lines as keys and values of their own).
    #[test]
    fn a_value_with_line_feeds_is_one_value() {
        // `etcdctl get --prefix a/ -w json` after `put a/b $'v1\nkey2'`
        // and `put a/c x`, as etcd 3.4 answers.
        let json = br#"{"header":{"cluster_id":1,"member_id":2,"revision":3,"raft_term":2},"kvs":[{"key":"YS9i","create_revision":2,"mod_revision":2,"version":1,"value":"djEKa2V5Mg=="},{"key":"YS9j","create_revision":3,"mod_revision":3,"version":1,"value":"eA=="}],"count":2}"#;
        assert_eq!(
            kvs_of(json).unwrap(),
            [
                ("a/b".to_string(), "v1\nkey2".to_string()),
                ("a/c".to_string(), "x".to_string())
            ]
        );
        let nothing = br#"{"header":{"cluster_id":1,"member_id":2,"revision":3,"raft_term":2}}"#;
        assert_eq!(kvs_of(nothing).unwrap(), []);
        assert!(kvs_of(b"a/b\nv1").is_err());
    }

    #[test]
    fn a_rule_claims_each_of_its_names_with_its_path() {
        assert_eq!(rule_claims("Host(`a.test`)"), ["a.test"]);
        assert_eq!(
            rule_claims("(Host(`a.test`) || Host(`b.test`)) && PathPrefix(`/api/`)"),
            ["a.test/api", "b.test/api"]
        );
    }
}
