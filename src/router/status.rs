//! An instance's routes as `status` shows them: read back from the routes
//! file the router serves (so they are what runs, not what the template
//! says now), each with its backend and, for HTTPS, when its certificate
//! expires.

use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{certificate, on_host};
use crate::model::route::ACME_RESOLVER;

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
}

/// The routes in `routes_file` (a path on the host), for instance `prefix`.
pub fn read(
    root: Option<&Path>,
    routes_file: &Path,
    prefix: &str,
) -> Result<Vec<RouteStatus>, String> {
    let path = on_host(root, routes_file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("reading {}: {e}", routes_file.display()))?;
    // With routes in etcd, the file only says so, in comments: no YAML
    // document at all (status said "routes: unknown: unexpected end of
    // input" and exited 3 for every such instance).
    if (text.lines()).all(|line| line.trim().is_empty() || line.trim_start().starts_with('#')) {
        return Ok(Vec::new());
    }
    let dynamic: Dynamic = serde_saphyr::from_str(&text)
        .map_err(|e| format!("reading {}: {e}", routes_file.display()))?;
    let router_dir = routes_file
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/"));
    let acme = std::fs::read_to_string(on_host(root, &router_dir.join("acme/acme.json")))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
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
            "acme" => acme.as_ref().and_then(|a| acme_certificate(a, &main)),
            "files" => {
                let copy = router_dir
                    .join("files")
                    .join(prefix)
                    .join(format!("{name}.crt"));
                std::fs::read_to_string(on_host(root, &copy)).ok()
            }
            _ => None,
        }
        .and_then(|pem| certificate::not_after(&pem));
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
        });
    }
    Ok(routes)
}

/// The certificate (PEM) Traefik's ACME storage holds for `host`.
fn acme_certificate(storage: &serde_json::Value, host: &str) -> Option<String> {
    let certificates = storage
        .get(ACME_RESOLVER)?
        .get("Certificates")?
        .as_array()?;
    let found = certificates.iter().find(|c| {
        c.get("domain")
            .and_then(|d| d.get("main"))
            .and_then(|m| m.as_str())
            == Some(host)
    })?;
    let encoded = found.get("certificate")?.as_str()?;
    String::from_utf8(certificate::base64_decode(encoded)?).ok()
}

/// The backquoted arguments of every `Matcher(`…`)` in a rule.
fn words_of(rule: &str, matcher: &str) -> Vec<String> {
    rule.split(matcher)
        .skip(1)
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_string)
        .collect()
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

#[derive(Deserialize)]
struct TlsEntry {
    #[serde(rename = "certResolver")]
    cert_resolver: Option<String>,
}

#[derive(Deserialize)]
struct ServiceEntry {
    #[serde(rename = "loadBalancer")]
    load_balancer: LoadBalancer,
}

#[derive(Deserialize)]
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

    #[test]
    fn rule_words() {
        let rule = "(Host(`a.test`) || Host(`b.test`)) && PathPrefix(`/api`)";
        assert_eq!(words_of(rule, "Host(`"), ["a.test", "b.test"]);
        assert_eq!(words_of(rule, "PathPrefix(`"), ["/api"]);
    }
}
