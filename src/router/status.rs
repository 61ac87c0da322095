//! An instance's routes as `status` shows them: read back from the routes
//! file the router serves (so they are what runs, not what the template
//! says now), each with its backend and, for HTTPS, when its certificate
//! expires.

use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{certificate, on_host};
use crate::render::route::etcd::ROOT_KEY;

#[derive(Debug, Serialize)]
pub struct RouteStatus {
    /// The route's name in the router (`<app>-<instance>-<service>`).
    pub name: String,
    /// Where it answers: `https://blog.example.com/api`.
    pub url: String,
    /// Where the router sends its requests.
    pub backends: Vec<String>,
    /// `acme`, `files` or `off`.
    pub tls: String,
    /// When the served certificate expires, once there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// With `acme` and no certificate yet: the router's last failure to
    /// get one for the route's names (from its log), if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme_failure: Option<AcmeFailure>,
    /// With `acme`: the router's certificate store (`acme.json`) is gone
    /// (deleted by hand): the router serves what it holds in memory, and
    /// orders every certificate again at its next start.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub acme_store_missing: bool,
}

/// The router's last failed ACME order for some names, as it logged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcmeFailure {
    /// When, as logged (RFC 3339).
    pub at: String,
    /// Why, in the CA's words (the router's `error=`).
    pub error: String,
    #[serde(skip)]
    domains: Vec<String>,
}

/// The routes in `routes_file` (a path on the host), for instance `prefix`.
/// With routes in etcd the file only says so, in comments: the routes are
/// then `in_etcd`'s, when given (the instance's keys, backends included).
pub fn read(
    root: Option<&Path>,
    routes_file: &Path,
    prefix: &str,
    in_etcd: Option<&[(String, String)]>,
) -> Result<Vec<RouteStatus>, String> {
    let path = on_host(root, routes_file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("reading {}: {e}", routes_file.display()))?;
    // (A comments-only file is no YAML document at all: status said
    // "routes: unknown: unexpected end of input" and exited 3 for every
    // instance with routes in etcd.)
    let dynamic = if (text.lines())
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
    {
        match in_etcd {
            Some(pairs) => from_etcd(pairs),
            None => return Ok(Vec::new()),
        }
    } else {
        serde_saphyr::from_str(&text)
            .map_err(|e| format!("reading {}: {e}", routes_file.display()))?
    };
    let router_dir = routes_file
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/"));
    let acme = std::fs::read_to_string(on_host(root, &router_dir.join("acme/acme.json")));
    let acme_store_missing = matches!(&acme, Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    let acme = (acme.ok()).and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
    let mut routes = Vec::new();
    // Each route's own router is named after its service; the others
    // (`-http`, `-alias`, …) redirect to it.
    for (name, router) in &dynamic.http.routers {
        let Some(service) = dynamic.http.services.get(name) else {
            continue;
        };
        let hosts = words_of(&router.rule, "Host(`");
        let path = words_of(&router.rule, "PathPrefix(`").into_iter().next();
        let secure = router.tls.is_some();
        let tls = match &router.tls {
            None => "off",
            Some(tls) if tls.cert_resolver.is_some() => "acme",
            Some(_) => "files",
        };
        let main = hosts.first().cloned().unwrap_or_default();
        let expires = match tls {
            "acme" => acme.as_ref().and_then(|a| acme_expiry(a, &main)),
            "files" => {
                let copy = router_dir
                    .join("files")
                    .join(prefix)
                    .join(format!("{name}.crt"));
                std::fs::read_to_string(on_host(root, &copy))
                    .ok()
                    .and_then(|pem| certificate::not_after(&pem))
            }
            _ => None,
        };
        routes.push(RouteStatus {
            name: name.clone(),
            url: format!(
                "{}://{main}{}",
                if secure { "https" } else { "http" },
                path.unwrap_or_else(|| "/".into())
            ),
            backends: service
                .load_balancer
                .servers
                .iter()
                .map(|s| s.url.clone())
                .collect(),
            tls: tls.to_string(),
            expires,
            acme_failure: None,
            acme_store_missing: tls == "acme" && acme_store_missing,
        });
    }
    // A certificate that never comes is the router's to say: it logs each
    // failed order (the names do not resolve to the host, port 80 is not
    // reached, the CA refuses). Read only when one is missing.
    if routes
        .iter()
        .any(|r| r.tls == "acme" && r.expires.is_none())
    {
        let failures = acme_failures(&router_log());
        for route in routes.iter_mut() {
            if route.tls != "acme" || route.expires.is_some() {
                continue;
            }
            let main = hosts_of(&route.url);
            route.acme_failure = (failures.iter().rev())
                .find(|f| f.domains.contains(&main))
                .cloned();
        }
    }
    Ok(routes)
}

/// The host name of a route's URL.
fn hosts_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or_default().to_string()
}

/// The router container's recent log (empty when it cannot be read: then
/// nothing is said of failures, as before).
fn router_log() -> String {
    let out = crate::docker::command()
        .args([
            "logs",
            "--tail",
            "2000",
            crate::model::route::router_container(),
        ])
        .output();
    match out {
        // Traefik logs to stdout; docker's own errors go to stderr.
        Ok(out) if out.status.success() => {
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr)
        }
        _ => String::new(),
    }
}

/// Traefik v3's lines `… ERR Unable to obtain ACME certificate for domains
/// error="…" … domains=["a","b"] …` (colored or not), in order.
fn acme_failures(log: &str) -> Vec<AcmeFailure> {
    log.lines()
        .map(strip_colors)
        .filter(|line| line.contains("Unable to obtain ACME certificate for domains"))
        .filter_map(|line| {
            let at = line.split_whitespace().next()?.to_string();
            let error = quoted_after(&line, "error=\"")?;
            let list = line.split_once("domains=[")?.1.split_once(']')?.0;
            let domains = (list.split(','))
                .map(|d| d.trim().trim_matches('"').to_string())
                .collect();
            Some(AcmeFailure { at, error, domains })
        })
        .collect()
}

/// The text after `start` up to the next unescaped `"`, unescaped.
fn quoted_after(line: &str, start: &str) -> Option<String> {
    let mut text = String::new();
    let mut chars = line.split_once(start)?.1.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?),
            '"' => return Some(text),
            c => text.push(c),
        }
    }
    None
}

/// A line without its terminal color codes (`ESC [ … m`).
fn strip_colors(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// When the certificate Traefik's ACME storage holds for `host` expires,
/// under whichever resolver ordered it (`unitgen`, or the host's for
/// routes in etcd, `unitgen-<machine ID>`; an upgrade from one to the
/// other leaves both): the latest, when there are several.
fn acme_expiry(storage: &serde_json::Value, host: &str) -> Option<String> {
    let resolvers = storage.as_object()?.values();
    let certificates = resolvers
        .filter_map(|resolver| resolver.get("Certificates")?.as_array())
        .flatten();
    (certificates)
        .filter(|c| {
            c.get("domain")
                .and_then(|d| d.get("main"))
                .and_then(|m| m.as_str())
                == Some(host)
        })
        .filter_map(|c| {
            let encoded = c.get("certificate")?.as_str()?;
            let pem = String::from_utf8(certificate::base64_decode(encoded)?).ok()?;
            certificate::not_after(&pem)
        })
        .max()
}

/// The backquoted arguments of every `Matcher(`…`)` in a rule.
fn words_of(rule: &str, matcher: &str) -> Vec<String> {
    rule.split(matcher)
        .skip(1)
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_string)
        .collect()
}

/// The routers and services of Traefik's KV layout (`traefik/http/routers/
/// NAME/rule`, `…/tls/certresolver`, `traefik/http/services/NAME/
/// loadbalancer/servers/N/url`: keys lower-cased, as the routes unit and
/// the sidekicks write them), as a routes file would have them. A route
/// whose service no sidekick announces yet has no backend.
fn from_etcd(pairs: &[(String, String)]) -> Dynamic {
    let mut http = Http {
        routers: IndexMap::new(),
        services: IndexMap::new(),
    };
    let routers = format!("{ROOT_KEY}/http/routers/");
    let services = format!("{ROOT_KEY}/http/services/");
    for (key, value) in pairs {
        if let Some((name, field)) = key.strip_prefix(&routers).and_then(|k| k.split_once('/')) {
            let router = (http.routers.entry(name.to_string())).or_insert_with(|| RouterEntry {
                rule: String::new(),
                tls: None,
            });
            match field {
                "rule" => router.rule = value.clone(),
                "service" => {
                    http.services.entry(value.clone()).or_default();
                }
                "tls/certresolver" => {
                    router.tls = Some(TlsEntry {
                        cert_resolver: Some(value.clone()),
                    })
                }
                // `tls` (on, no options) or any other TLS option.
                _ if field == "tls" || field.starts_with("tls/") => {
                    router.tls.get_or_insert_with(TlsEntry::default);
                }
                _ => {}
            }
        } else if let Some((name, field)) =
            key.strip_prefix(&services).and_then(|k| k.split_once('/'))
            && field.starts_with("loadbalancer/servers/")
            && field.ends_with("/url")
        {
            let service = http.services.entry(name.to_string()).or_default();
            service
                .load_balancer
                .servers
                .push(Server { url: value.clone() });
        }
    }
    Dynamic { http }
}

/// What status reads of a routes file.
#[derive(Deserialize)]
struct Dynamic {
    http: Http,
}

#[derive(Deserialize)]
struct Http {
    routers: IndexMap<String, RouterEntry>,
    services: IndexMap<String, ServiceEntry>,
}

#[derive(Deserialize)]
struct RouterEntry {
    rule: String,
    tls: Option<TlsEntry>,
}

#[derive(Deserialize, Default)]
struct TlsEntry {
    #[serde(rename = "certResolver")]
    cert_resolver: Option<String>,
}

#[derive(Deserialize, Default)]
struct ServiceEntry {
    #[serde(rename = "loadBalancer")]
    load_balancer: LoadBalancer,
}

#[derive(Deserialize, Default)]
struct LoadBalancer {
    servers: Vec<Server>,
}

#[derive(Deserialize)]
struct Server {
    url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line Traefik 3.7 logged when pebble could not validate a name
    /// (its DNS pointed elsewhere), colors and all.
    #[test]
    fn acme_failures_are_read_from_traefiks_log() {
        let line = "\u{1b}[90m2026-11-30T20:25:04Z\u{1b}[0m \u{1b}[31mERR\u{1b}[0m \u{1b}[1mUnable to obtain ACME certificate for domains\u{1b}[0m \u{1b}[36merror=\u{1b}[0m\u{1b}[31m\u{1b}[1m\"unable to generate a certificate for the domains [fail.test]: acme: error: 400 :: urn:ietf:params:acme:error:connection :: Get \\\"http://fail.test/.well-known/acme-challenge/x\\\": dial tcp 127.0.0.2:80: connect: connection refused]\"\u{1b}[0m\u{1b}[0m \u{1b}[36mACME CA=\u{1b}[0mhttps://127.0.0.1:34000/dir \u{1b}[36mdomains=\u{1b}[0m[\"fail.test\",\"www.fail.test\"] \u{1b}[36mproviderName=\u{1b}[0munitgen.acme";
        let log = format!("2026-11-30T20:24:00Z INF starting\n{line}\n");
        assert_eq!(
            acme_failures(&log),
            [AcmeFailure {
                at: "2026-11-30T20:25:04Z".into(),
                error: "unable to generate a certificate for the domains [fail.test]: acme: error: 400 :: urn:ietf:params:acme:error:connection :: Get \"http://fail.test/.well-known/acme-challenge/x\": dial tcp 127.0.0.2:80: connect: connection refused]".into(),
                domains: vec!["fail.test".into(), "www.fail.test".into()],
            }]
        );
        assert_eq!(hosts_of("https://fail.test/api"), "fail.test");
    }

    /// The keys as the routes unit and a sidekick write them: a route
    /// with ACME, its HTTP redirect (no service of its name), and a route
    /// no sidekick announces yet.
    #[test]
    fn routes_are_read_from_traefiks_kv_layout() {
        let pairs: Vec<(String, String)> = [
            (
                "traefik/http/routers/a-live-web-http/rule",
                "Host(`a.test`)",
            ),
            ("traefik/http/routers/a-live-web-http/service", "a-live-web"),
            (
                "traefik/http/routers/a-live-web/rule",
                "Host(`a.test`) && PathPrefix(`/api`)",
            ),
            ("traefik/http/routers/a-live-web/service", "a-live-web"),
            (
                "traefik/http/routers/a-live-web/tls/certresolver",
                "unitgen",
            ),
            ("traefik/http/routers/a-live-db/rule", "Host(`db.test`)"),
            ("traefik/http/routers/a-live-db/service", "a-live-db"),
            (
                "traefik/http/services/a-live-web/loadbalancer/servers/h1/url",
                "http://10.0.0.1:80",
            ),
            (
                "traefik/http/services/a-live-web/loadbalancer/servers/h2/url",
                "http://10.0.0.2:80",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let http = from_etcd(&pairs).http;
        let web = &http.routers["a-live-web"];
        assert_eq!(web.rule, "Host(`a.test`) && PathPrefix(`/api`)");
        let resolver = web.tls.as_ref().and_then(|t| t.cert_resolver.as_deref());
        assert_eq!(resolver, Some("unitgen"));
        assert!(http.routers["a-live-db"].tls.is_none());
        let urls: Vec<&str> = (http.services["a-live-web"].load_balancer.servers.iter())
            .map(|s| s.url.as_str())
            .collect();
        assert_eq!(urls, ["http://10.0.0.1:80", "http://10.0.0.2:80"]);
        assert!(http.services["a-live-db"].load_balancer.servers.is_empty());
        assert!(!http.services.contains_key("a-live-web-http"));
    }

    #[test]
    fn rule_words() {
        let rule = "(Host(`a.test`) || Host(`b.test`)) && PathPrefix(`/api`)";
        assert_eq!(words_of(rule, "Host(`"), ["a.test", "b.test"]);
        assert_eq!(words_of(rule, "PathPrefix(`"), ["/api"]);
    }
}
