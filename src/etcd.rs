//! Reading announcements back from etcd (for `status`), through the same
//! `etcdctl` the sidekicks use, so unitgen needs no etcd client of its own.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use crate::model::EtcdApi;
use crate::render::discovery::api_number;

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
            let out = etcdctl(api, endpoints, &["get", "--prefix", &folder])?;
            // Key and value on alternate lines; an address holds no newline.
            let text = String::from_utf8_lossy(&out.stdout);
            let lines: Vec<&str> = text.lines().collect();
            for pair in lines.chunks(2) {
                if let [k, v] = pair
                    && let Some(host) = host_of(k)
                {
                    found.insert(host, v.to_string());
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
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
