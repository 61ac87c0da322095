//! An instance's routes → its Traefik dynamic configuration file (the file
//! provider reads every file of the router's `dynamic/` folder). Each route
//! becomes:
//!
//! - `<route>`: the route itself, on the HTTPS entry point with TLS (an ACME
//!   certificate for its names, or the copied certificate files), or on the
//!   HTTP one with `tls: off`;
//! - `<route>-http`: with TLS, the same rule on the HTTP entry point,
//!   redirecting to HTTPS (or serving, with `https_redirect: false`);
//! - `<route>-alias`, `<route>-alias-http`: the aliases, redirected to the
//!   main name, path kept;
//! - the service `<route>`: the backend's URL, health-checked on the
//!   service's `health_path`.
//!
//! The header lists what the file claims (`# claim: host/path`), so that an
//! apply of another app can refuse a host + path this one routes.

pub mod etcd;

use std::path::Path;

use indexmap::IndexMap;
use serde::Serialize;

use super::docker::DOCKER;
use crate::escape::{sh_quote, systemd_arg, systemd_arg_after_specifiers, systemd_command};
use crate::model::Instance;
use crate::model::route::{
    ACME_RESOLVER, CONTAINER_ACME_DIR, CONTAINER_CA_CERTIFICATE, CONTAINER_DYNAMIC_DIR,
    CONTAINER_FILES_DIR, HTTP_ENTRY_POINT, HTTPS_ENTRY_POINT, MACHINE_ID_SPECIFIER, Route,
    RouteFile, Router, Tls, host_resolver, router_container,
};

/// How often the router polls a backend's health path, and how long it
/// waits. Traefik takes a server out at its first failed check (it has no
/// count of failures, as Docker's and Kubernetes' checks do), so the wait
/// is long: an answer slowed by a busy host took the only server out and
/// answered every request 503 until the next check (seen with 1s).
const HEALTH_INTERVAL: &str = "5s";
const HEALTH_TIMEOUT: &str = "4s";

/// How every routes file unitgen writes begins.
pub const ROUTES_HEADER: &str = "# unitgen: the routes of ";

/// The start of a header line naming one host + path the file routes.
pub const CLAIM: &str = "# claim: ";

/// The router's flag that has it read etcd too (see [`etcd`]).
pub const ETCD_PROVIDER: &str = "--providers.etcd.endpoints=";

/// The dynamic configuration file of `instance`'s routes; None when it has
/// none. With routes in etcd, it holds only its header: the claims, which
/// an apply of another app on this host checks.
pub fn dynamic_file(instance: &Instance) -> Option<String> {
    let dynamic = dynamic(instance)?;
    if instance.routes_in_etcd().is_some() {
        return Some(format!(
            "{}# The routes are in etcd, under {}/.\n",
            header(instance),
            etcd::ROOT_KEY
        ));
    }
    let body = serde_saphyr::to_string(&dynamic).expect("the dynamic configuration serializes");
    let text = format!("{}{MARK_COMMENT}{body}", header(instance));
    let name = Router::dynamic_file_name(&instance.prefix());
    Some(marked(&text, &name).unwrap_or(text))
}

/// The `Host` of a routes file's mark (see [`marked`]): `.invalid` is no
/// one's name.
pub const MARK_HOST: &str = "mark.unitgen.invalid";

/// What Traefik's `noop@internal`, the mark's service, answers to anything.
pub const MARK_STATUS: u16 = 418;

/// The name of a mark's router: then the routes file's name in hex.
const MARK_ROUTER: &str = "unitgen-mark-";

/// Where [`marked`] puts the mark: first of the file's routers.
const ROUTERS: &str = "\nhttp:\n  routers:\n";

const MARK_COMMENT: &str = "# Its router unitgen-mark-* answers (418) once the router serves this \
file as written: unitgen asks it.\n";

/// The path of the mark of the routes file `file_name` whose text, mark
/// aside, is `unmarked`: the name in hex, then the start of a digest of
/// the text. Hex only: safe in any rule.
pub fn mark_path(file_name: &str, unmarked: &str) -> String {
    let digest = crate::render::content_digest(written(unmarked).as_bytes());
    let digest = digest.trim_start_matches("sha256:");
    format!("/{}/{}", hex(file_name.as_bytes()), &digest[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mark_rule(path: &str) -> String {
    format!("rule: Host(`{MARK_HOST}`) && Path(`{path}`)")
}

/// `text`, a routes file as unitgen writes it, with its mark (any it had
/// replaced): a router of its own, for [`MARK_HOST`] and [`mark_path`],
/// on Traefik's `noop@internal`, which answers 418. Traefik takes a whole
/// file or none of it: while the router answers the mark 418, it serves
/// the file as written; a file it cannot take (another file in its folder
/// broken) leaves it serving the one before, whose mark differs. None when
/// `text` is not in unitgen's layout (changed by hand).
pub fn marked(text: &str, file_name: &str) -> Option<String> {
    let text = unmarked(text);
    let at = text.find(ROUTERS)? + ROUTERS.len();
    let router = format!("{MARK_ROUTER}{}", hex(file_name.as_bytes()));
    let mark = format!(
        "    {router}:\n      entryPoints:\n      - {HTTP_ENTRY_POINT}\n      {}\n      priority: 1000000000\n      service: noop@internal\n",
        mark_rule(&mark_path(file_name, &text))
    );
    let out = format!("{}{mark}{}", &text[..at], &text[at..]);
    // Still the same routes, plus one router.
    let routers = |text: &str| -> Option<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct File {
            http: Http,
        }
        #[derive(serde::Deserialize)]
        struct Http {
            routers: IndexMap<String, serde::de::IgnoredAny>,
        }
        let file: File = serde_saphyr::from_str(text).ok()?;
        Some(file.http.routers.into_keys().collect())
    };
    let mut before = routers(&text)?;
    before.insert(0, router);
    (routers(&out)? == before).then_some(out)
}

/// `text` without the mark [`marked`] gave it, if any.
pub fn unmarked(text: &str) -> String {
    let mark_at = |text: &str| {
        let at = text.find(ROUTERS)? + ROUTERS.len();
        text[at..]
            .starts_with(&format!("    {MARK_ROUTER}"))
            .then_some(at)
    };
    let end = "      service: noop@internal\n";
    match mark_at(text).and_then(|at| Some((at, at + text[at..].find(end)? + end.len()))) {
        Some((at, after)) => format!("{}{}", &text[..at], &text[after..]),
        None => text.to_string(),
    }
}

/// The path of the mark `text` (a routes file named `file_name`) carries,
/// when it is its own (of its text as it is); None for a file without one
/// (written by an older unitgen, or with routes in etcd) or
/// changed by hand since.
pub fn mark_of(text: &str, file_name: &str) -> Option<String> {
    let path = mark_path(file_name, &unmarked(text));
    text.contains(&mark_rule(&path)).then_some(path)
}

/// `instance`'s routes as etcd keys and values (see [`etcd`]); None when it
/// has none.
pub fn etcd_pairs(instance: &Instance) -> Option<Vec<(String, String)>> {
    Some(etcd::pairs(&dynamic(instance)?, &instance.prefix()))
}

/// A digest of routes' etcd keys and values, in any order: what a routes
/// unit wrote, compared by `status` with what etcd holds.
pub fn etcd_digest(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort();
    let mut bytes = Vec::new();
    for (key, value) in sorted {
        // NUL is in no key or value: the pairs cannot run into each other.
        bytes.extend_from_slice(key.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
    }
    crate::render::content_digest(&bytes)
}

/// Traefik's dynamic configuration of `instance`'s routes.
fn dynamic(instance: &Instance) -> Option<Dynamic> {
    let router = instance.router.as_ref()?;
    if instance.routes.is_empty() {
        return None;
    }
    let prefix = instance.prefix();
    let mut http = Http::default();
    let mut certificates = Vec::new();
    let to_https = format!("{prefix}-to-https");
    let names = certificate_names(instance);
    // Routes in etcd are read by every host's router: only the router of
    // the host that applies them (whose machine ID the routes unit writes)
    // orders their certificates.
    let resolver = match instance.routes_in_etcd() {
        Some(_) => host_resolver(MACHINE_ID_SPECIFIER),
        None => ACME_RESOLVER.to_string(),
    };
    let acme = Acme {
        resolver: &resolver,
        names: &names,
    };
    for route in &instance.routes {
        add_route(&mut http, route, &prefix, &to_https, router, &acme);
        if let Tls::Files { certificate, key } = &route.tls {
            certificates.push(Certificate {
                cert_file: container_path(&prefix, certificate),
                key_file: container_path(&prefix, key),
            });
        }
    }
    if instance.routes.iter().any(|r| r.https_redirect) {
        http.middlewares.insert(
            to_https,
            Middleware {
                redirect_scheme: Some(RedirectScheme {
                    scheme: "https",
                    port: port_text(router.https_port, 443),
                    permanent: true,
                }),
                ..Middleware::default()
            },
        );
    }
    Some(Dynamic {
        http,
        tls: (!certificates.is_empty()).then_some(TlsStore { certificates }),
    })
}

/// `mkdir` of the router's folders (the ACME one private), one command
/// line each.
pub fn make_folders_commands(router: &Router) -> [String; 2] {
    let path = |p: std::path::PathBuf| p.display().to_string();
    let (dynamic, files) = (path(router.dynamic_dir()), path(router.files_dir()));
    let acme = path(router.acme_dir());
    [
        systemd_command(&["/bin/mkdir", "-p", &dynamic, &files]),
        systemd_command(&["/bin/mkdir", "-p", "-m", "0700", &acme]),
    ]
}

/// The router's `docker run`: Traefik's static configuration as flags.
/// Its certificate resolvers: [`ACME_RESOLVER`] for the routes in its
/// folder and, when it reads etcd, the host's own ([`host_resolver`], the
/// machine ID's specifier expanded by systemd) for the routes this host's
/// instances write there. Both keep their certificates in the one
/// `acme.json`, each under its name.
pub fn docker_run(router: &Router) -> String {
    let dir = |p: std::path::PathBuf| p.display().to_string();
    let listen = router.address.as_deref().map_or(String::new(), |a| {
        if a.contains(':') {
            format!("[{a}]")
        } else {
            a.to_string()
        }
    });
    let mut groups: Vec<Vec<String>> = vec![
        vec![DOCKER.into(), "run".into(), "--rm".into()],
        vec!["--name".into(), router_container().into()],
        vec!["--network".into(), "host".into()],
        vec!["--label".into(), "unitgen.role=router".into()],
        vec![
            "--volume".into(),
            format!("{}:{CONTAINER_DYNAMIC_DIR}:ro", dir(router.dynamic_dir())),
        ],
        vec![
            "--volume".into(),
            format!("{}:{CONTAINER_FILES_DIR}:ro", dir(router.files_dir())),
        ],
        vec![
            "--volume".into(),
            format!("{}:{CONTAINER_ACME_DIR}", dir(router.acme_dir())),
        ],
    ];
    if let Some(ca) = &router.acme.ca_certificate {
        groups.push(vec![
            "--volume".into(),
            format!("{ca}:{CONTAINER_CA_CERTIFICATE}:ro"),
        ]);
        // lego (Traefik's ACME client) trusts these for the CA's HTTPS.
        groups.push(vec![
            "--env".into(),
            format!("LEGO_CA_CERTIFICATES={CONTAINER_CA_CERTIFICATE}"),
        ]);
    }
    // `traefik FLAGS…`: the official image's entrypoint runs it as given.
    groups.push(vec![router.image.clone(), "traefik".into()]);
    let mut flags: Vec<String> = [
        "--global.checkNewVersion=false".to_string(),
        "--global.sendAnonymousUsage=false".into(),
        format!(
            "--entryPoints.{HTTP_ENTRY_POINT}.address={listen}:{}",
            router.http_port
        ),
        format!(
            "--entryPoints.{HTTPS_ENTRY_POINT}.address={listen}:{}",
            router.https_port
        ),
        format!("--providers.file.directory={CONTAINER_DYNAMIC_DIR}"),
        "--providers.file.watch=true".into(),
    ]
    .iter()
    .map(|flag| systemd_arg(flag))
    .collect();
    let mut resolvers = vec![ACME_RESOLVER.to_string()];
    if router.etcd.is_some() {
        resolvers.push(host_resolver(MACHINE_ID_SPECIFIER));
    }
    let mut settings = vec![
        ("storage", format!("{CONTAINER_ACME_DIR}/acme.json")),
        ("caServer", router.acme.ca_server.clone()),
        ("httpChallenge.entryPoint", HTTP_ENTRY_POINT.to_string()),
    ];
    if let Some(email) = &router.acme.email {
        settings.push(("email", email.clone()));
    }
    for resolver in &resolvers {
        for (key, value) in &settings {
            // The resolver's name is unitgen's (its specifier systemd's),
            // the value may be the user's.
            let own = format!("--certificatesResolvers.{resolver}.acme.{key}=");
            flags.push(systemd_arg_after_specifiers(&own, value));
        }
    }
    if let Some(endpoints) = &router.etcd {
        // Traefik's etcd client takes `host:port`; compile admits only
        // plain URLs.
        let endpoints: Vec<&str> = (endpoints.iter())
            .map(|e| e.strip_prefix("http://").unwrap_or(e).trim_end_matches('/'))
            .collect();
        flags.push(systemd_arg(&format!(
            "{ETCD_PROVIDER}{}",
            endpoints.join(",")
        )));
        flags.push(systemd_arg(&format!(
            "--providers.etcd.rootkey={}",
            etcd::ROOT_KEY
        )));
    }
    (groups.iter())
        .map(|group| {
            let words: Vec<&str> = group.iter().map(String::as_str).collect();
            systemd_command(&words)
        })
        .chain(flags)
        .collect::<Vec<_>>()
        .join(" \\\n    ")
}

/// What [`write_script`] writes: `yaml`, each line ended by a line break.
pub fn written(yaml: &str) -> String {
    yaml.lines().map(|line| format!("{line}\n")).collect()
}

/// The shell script that writes `yaml` to `file` in `dir` atomically:
/// every line of the file is one quoted word of a `printf` (see
/// [`written`]). The temporary file is in `staging`, the router's own
/// folder, not in `dir`, which Traefik watches: one change there, applied
/// at once (see `unit_dir::write_atomic_watched`).
pub fn write_script(dir: &str, staging: &str, file: &str, yaml: &str) -> Vec<String> {
    let name = Path::new(file).file_name().map_or_else(
        || file.to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let tmp = format!("{staging}/.{name}.tmp");
    let mut script = vec![
        format!("mkdir -p {} &&", sh_quote(dir)),
        "printf '%s\\n'".to_string(),
    ];
    script.extend(yaml.lines().map(sh_quote));
    script.push(format!(
        "> {tmp} && mv -f {tmp} {}",
        sh_quote(file),
        tmp = sh_quote(&tmp)
    ));
    script
}

/// What the file is and what it claims, as YAML comments.
fn header(instance: &Instance) -> String {
    let mut out = format!(
        "{ROUTES_HEADER}{} {}, written by `unitgen apply` (edits are overwritten).\n",
        instance.app, instance.instance
    );
    for route in &instance.routes {
        for host in route.hosts.iter().chain(&route.aliases) {
            out.push_str(&format!(
                "{CLAIM}{host}{}\n",
                route.path.as_deref().unwrap_or("")
            ));
        }
    }
    for route in &instance.routes {
        for file in route.files() {
            // A changed certificate changes this file: Traefik reloads it.
            if let Some(digest) = &file.digest {
                out.push_str(&format!("# file: {} {digest}\n", file.name));
            }
        }
    }
    out
}

/// Where the router container reads a copied file.
fn container_path(prefix: &str, file: &RouteFile) -> String {
    format!("{CONTAINER_FILES_DIR}/{prefix}/{}", file.name)
}

/// `":8443"`-style port for redirects, none for the scheme's default.
fn port_text(port: u16, default: u16) -> Option<String> {
    (port != default).then(|| port.to_string())
}

/// For each main host of an ACME route, every name the instance's ACME
/// routes with that main host answer for: the routes share one
/// certificate (a route for `/api` of the same name orders no second one).
fn certificate_names(instance: &Instance) -> IndexMap<&str, Vec<String>> {
    let mut names: IndexMap<&str, Vec<String>> = IndexMap::new();
    for route in instance.routes.iter().filter(|r| r.tls == Tls::Acme) {
        let all = names.entry(&route.hosts[0]).or_default();
        for name in route.hosts.iter().chain(&route.aliases) {
            if !all.contains(name) {
                all.push(name.clone());
            }
        }
    }
    names
}

/// How the routes with `tls: acme` get their certificates.
struct Acme<'a> {
    /// The certificate resolver they name.
    resolver: &'a str,
    /// The names of each certificate, by main host ([`certificate_names`]).
    names: &'a IndexMap<&'a str, Vec<String>>,
}

fn add_route(
    http: &mut Http,
    route: &Route,
    prefix: &str,
    to_https: &str,
    router: &Router,
    acme: &Acme,
) {
    let name = &route.name;
    let hosts_rule = |hosts: &[String]| {
        let any = hosts
            .iter()
            .map(|h| format!("Host(`{h}`)"))
            .collect::<Vec<_>>()
            .join(" || ");
        let any = if hosts.len() > 1 {
            format!("({any})")
        } else {
            any
        };
        match &route.path {
            Some(path) => format!("{any} && PathPrefix(`{path}`)"),
            None => any,
        }
    };
    let rule = hosts_rule(&route.hosts);
    // Traefik tries the routers of a request in order of priority, by
    // default the rule's length: a route with more or longer host names
    // took the requests of another's longer path prefix (`/api/v1` went
    // to the route for `/api` of `a.example` and `long-name.example`).
    // The longest path prefix goes first; no two routes claim one host +
    // path, so routers of one name never tie.
    let priority = 1 + route
        .path
        .as_ref()
        .map_or(0, |p| p.trim_end_matches('/').len());
    let mut middlewares = Vec::new();
    if let Some(file) = &route.basic_auth {
        let auth = format!("{name}-auth");
        http.middlewares.insert(
            auth.clone(),
            Middleware {
                basic_auth: Some(BasicAuth {
                    users_file: container_path(prefix, file),
                }),
                ..Middleware::default()
            },
        );
        middlewares.push(auth);
    }
    let tls = match &route.tls {
        Tls::Off => None,
        Tls::Acme => {
            let main = &route.hosts[0];
            let all = acme.names.get(main.as_str());
            Some(RouterTls {
                cert_resolver: Some(acme.resolver.to_string()),
                domains: vec![Domain {
                    main: main.clone(),
                    sans: all.into_iter().flatten().skip(1).cloned().collect(),
                }],
            })
        }
        Tls::Files { .. } => Some(RouterTls::default()),
    };
    let serve = |entry_point: &'static str, tls: Option<RouterTls>| RouterConfig {
        entry_points: vec![entry_point],
        rule: rule.clone(),
        priority,
        service: name.clone(),
        middlewares: middlewares.clone(),
        tls,
    };
    match &tls {
        None => {
            http.routers
                .insert(name.clone(), serve(HTTP_ENTRY_POINT, None));
        }
        Some(tls) => {
            http.routers
                .insert(name.clone(), serve(HTTPS_ENTRY_POINT, Some(tls.clone())));
            let plain = if route.https_redirect {
                RouterConfig {
                    middlewares: vec![to_https.to_string()],
                    ..serve(HTTP_ENTRY_POINT, None)
                }
            } else {
                serve(HTTP_ENTRY_POINT, None)
            };
            http.routers.insert(format!("{name}-http"), plain);
        }
    }
    if !route.aliases.is_empty() {
        let to_main = format!("{name}-to-main");
        let (scheme, port) = match &tls {
            Some(_) => ("https", port_text(router.https_port, 443)),
            None => ("http", port_text(router.http_port, 80)),
        };
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        http.middlewares.insert(
            to_main.clone(),
            Middleware {
                redirect_regex: Some(RedirectRegex {
                    regex: r"^https?://[^/]+/(.*)$".into(),
                    replacement: format!("{scheme}://{}{port}/${{1}}", route.hosts[0]),
                    permanent: true,
                }),
                ..Middleware::default()
            },
        );
        let alias = |entry_point: &'static str, tls: Option<RouterTls>| RouterConfig {
            entry_points: vec![entry_point],
            rule: hosts_rule(&route.aliases),
            priority,
            service: name.clone(),
            middlewares: vec![to_main.clone()],
            tls,
        };
        http.routers
            .insert(format!("{name}-alias-http"), alias(HTTP_ENTRY_POINT, None));
        if let Some(tls) = &tls {
            http.routers.insert(
                format!("{name}-alias"),
                alias(HTTPS_ENTRY_POINT, Some(tls.clone())),
            );
        }
    }
    http.services.insert(
        name.clone(),
        ServiceConfig {
            load_balancer: LoadBalancer {
                servers: vec![Server {
                    url: route.backend.url(),
                }],
                health_check: route.health_path.as_ref().map(|path| HealthCheck {
                    path: path.clone(),
                    interval: HEALTH_INTERVAL,
                    timeout: HEALTH_TIMEOUT,
                }),
            },
        },
    );
}

// Traefik's dynamic configuration, as much of it as unitgen writes.

#[derive(Serialize)]
pub struct Dynamic {
    http: Http,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsStore>,
}

#[derive(Default, Serialize)]
struct Http {
    routers: IndexMap<String, RouterConfig>,
    services: IndexMap<String, ServiceConfig>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    middlewares: IndexMap<String, Middleware>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RouterConfig {
    entry_points: Vec<&'static str>,
    rule: String,
    priority: usize,
    service: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    middlewares: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<RouterTls>,
}

#[derive(Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct RouterTls {
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_resolver: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    domains: Vec<Domain>,
}

#[derive(Clone, Serialize)]
struct Domain {
    main: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sans: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceConfig {
    load_balancer: LoadBalancer,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoadBalancer {
    servers: Vec<Server>,
    #[serde(skip_serializing_if = "Option::is_none")]
    health_check: Option<HealthCheck>,
}

#[derive(Serialize)]
struct Server {
    url: String,
}

#[derive(Serialize)]
struct HealthCheck {
    path: String,
    interval: &'static str,
    timeout: &'static str,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Middleware {
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_scheme: Option<RedirectScheme>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_regex: Option<RedirectRegex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    basic_auth: Option<BasicAuth>,
}

#[derive(Serialize)]
struct RedirectScheme {
    scheme: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<String>,
    permanent: bool,
}

#[derive(Serialize)]
struct RedirectRegex {
    regex: String,
    replacement: String,
    permanent: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BasicAuth {
    users_file: String,
}

#[derive(Serialize)]
struct TlsStore {
    certificates: Vec<Certificate>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Certificate {
    cert_file: String,
    key_file: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::route::Acme as AcmeSettings;

    const ROUTES: &str = concat!(
        "# unitgen: the routes of blog live\n",
        "http:\n",
        "  routers:\n",
        "    blog-live-web:\n",
        "      rule: Host(`blog.example.test`)\n",
        "      service: blog-live-web\n",
        "  services:\n",
        "    blog-live-web:\n",
        "      loadBalancer:\n",
        "        servers:\n",
        "        - url: http://127.0.0.1:18090\n",
    );

    /// The mark tells one content from another: it changes with any byte
    /// of the file, never with the mark itself, and is hex (safe in a rule).
    #[test]
    fn a_routes_files_mark_names_its_content() {
        let name = "blog-live.yaml";
        let marked_once = marked(ROUTES, name).unwrap();
        let mark = mark_of(&marked_once, name).unwrap();
        assert!(marked_once.contains(&format!(
            "    unitgen-mark-626c6f672d6c6976652e79616d6c:\n      entryPoints:\n      - web\n      rule: Host(`mark.unitgen.invalid`) && Path(`{mark}`)\n      priority: 1000000000\n      service: noop@internal\n    blog-live-web:\n"
        )));
        let (hex_name, digest) = mark[1..].split_once('/').unwrap();
        assert_eq!(hex_name, "626c6f672d6c6976652e79616d6c");
        assert!(digest.len() == 16 && digest.bytes().all(|b| b.is_ascii_hexdigit()));
        // Stable: marking again (a marked file) gives the same file.
        assert_eq!(marked(&marked_once, name).unwrap(), marked_once);
        assert_eq!(unmarked(&marked_once), ROUTES);
        // Another content, another mark; another file, another mark.
        let other = marked(&ROUTES.replace("18090", "18091"), name).unwrap();
        assert_ne!(mark_of(&other, name), Some(mark.clone()));
        assert_ne!(mark_path("blog-staging.yaml", ROUTES), mark);
        // A marked file changed since (by hand) carries no mark of its own.
        assert_eq!(mark_of(&marked_once.replace("18090", "18091"), name), None);
        // Unmarked (an older unitgen's) or not unitgen's layout: none.
        assert_eq!(mark_of(ROUTES, name), None);
        assert_eq!(marked("http:\n  services: {}\n", name), None);
        assert_eq!(marked("not: [yaml", name), None);
    }

    /// The routes unit's script, run as systemd runs it (`sh -c`), writes
    /// the file whole, and the folder Traefik watches sees that file only:
    /// a temporary file there first held the change back 2 s.
    #[test]
    fn the_routes_script_changes_only_its_file_in_the_watched_folder() {
        let router = tempfile::tempdir().unwrap();
        let staging = router.path().display().to_string();
        let watched = router.path().join("dynamic");
        let file = watched.join("blog-live.yaml");
        let run = |yaml: &str| {
            let script = write_script(
                &watched.display().to_string(),
                &staging,
                &file.display().to_string(),
                yaml,
            );
            let out = std::process::Command::new("sh")
                .args(["-c", &script.join(" ")])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        };
        run("http: {}\n");
        let yaml = "# it's\nhttp:\n  routers: {}\n";
        let seen = crate::unit_dir::tests::changes_seen(&watched, || run(yaml));
        assert!(!seen.is_empty());
        assert!(seen.iter().all(|name| name == "blog-live.yaml"), "{seen:?}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), yaml);
        let left: Vec<_> = (std::fs::read_dir(router.path()).unwrap())
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(left, ["dynamic"]);
    }

    fn router(etcd: Option<Vec<String>>) -> Router {
        Router {
            image: "traefik:v3.7".into(),
            http_port: 80,
            https_port: 443,
            address: None,
            directory: "/var/lib/unitgen/router".into(),
            acme: AcmeSettings {
                email: Some("ops@example.com".into()),
                ca_server: "https://ca.example/dir".into(),
                ca_certificate: None,
            },
            etcd,
            declared_at: None,
        }
    }

    /// A router that reads etcd has the host's own resolver beside
    /// `unitgen`, named with systemd's `%m` as it is (not `%%m`, which
    /// would reach Traefik as the text `%m`); one that does not, only
    /// `unitgen`.
    #[test]
    fn a_router_that_reads_etcd_has_the_hosts_resolver_too() {
        let with_etcd = docker_run(&router(Some(vec!["http://10.0.0.1:2379".into()])));
        let without = docker_run(&router(None));
        for key in [
            "storage=/etc/unitgen-router/acme/acme.json",
            "caServer=https://ca.example/dir",
            "httpChallenge.entryPoint=web",
            "email=ops@example.com",
        ] {
            let own = format!("--certificatesResolvers.unitgen-%m.acme.{key}");
            let shared = format!("--certificatesResolvers.unitgen.acme.{key}");
            assert!(with_etcd.contains(&own), "{with_etcd}");
            assert!(with_etcd.contains(&shared), "{with_etcd}");
            assert!(without.contains(&shared), "{without}");
        }
        assert!(!without.contains("unitgen-%"), "{without}");
    }
}
