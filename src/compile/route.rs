//! The `routes:` of an instance and the deployments file's `router:` →
//! [`model::route`](crate::model::route). Route values are the instance's
//! own data and are taken literally (no template expressions): that keeps
//! every instance's claims readable without compiling it, so that two
//! instances claiming one host + path are found by either.

use std::path::{Path, PathBuf};

use super::ServiceCompiler;
use crate::diagnostic::{Location, Problem, did_you_mean};
use crate::escape::check_size;
use crate::model::route::{
    Acme, Backend, DEFAULT_ACME_CA_SERVER, DEFAULT_ROUTER_DIRECTORY, DEFAULT_ROUTER_IMAGE, Route,
    RouteFile, Router, Tls,
};
use crate::model::{Protocol, Service};
use crate::template::Loaded;
use crate::template::schema::Words;
use crate::template::schema::route::{RouteDecl, RouteDecls, RouterDecl, TlsDecl};
use crate::template::spanned::Spanned;

impl ServiceCompiler<'_> {
    /// The instance's routes, checked against its compiled services.
    /// `others` are the other instances' declared routes (by instance
    /// name): a host + path claimed twice is refused.
    pub(super) fn routes(
        &mut self,
        file: &Loaded,
        decls: &RouteDecls,
        services: &[Service],
        others: &[(&str, &RouteDecls)],
    ) -> Vec<Route> {
        let base = file_folder(file);
        let mut routes: Vec<Route> = Vec::new();
        let mut claimed: Vec<(Claim, Location)> = Vec::new();
        for decl in &decls.value {
            let item_at = file.at(&decl.referenced);
            let decl = &decl.value;
            let missing: Vec<&str> = [
                ("hosts", decl.hosts.is_none()),
                ("service", decl.service.is_none()),
                ("port", decl.port.is_none()),
            ]
            .into_iter()
            .filter_map(|(key, missing)| missing.then_some(key))
            .collect();
            let (Some(hosts_decl), Some(service_decl), Some(port)) =
                (&decl.hosts, &decl.service, &decl.port)
            else {
                self.problems.push(
                    Problem::new(format!("this route has no `{}`", missing.join("`, `")))
                        .at(&item_at)
                        .label("route")
                        .help("a route needs `hosts` (its names), `service` and `port` (the container port the service publishes)"),
                );
                continue;
            };
            let hosts = self.host_names(file, hosts_decl);
            let aliases: Vec<String> = (decl.aliases.iter().flatten())
                .filter(|alias| self.host_name(&alias.value, &file.at(&alias.referenced)))
                .map(|alias| alias.value.clone())
                .collect();
            let path = decl.path.as_ref().and_then(|p| {
                let at = file.at(&p.referenced);
                match check_route_path(&p.value) {
                    Ok(()) => Some(p.value.clone()),
                    Err((msg, help)) => {
                        self.problems
                            .push(Problem::new(msg).at(&at).label("path").help(help));
                        None
                    }
                }
            });
            let path_given = decl.path.as_ref().map(|p| &p.value);
            for (name, host_at) in named_places(file, decl) {
                let Some(claim) = claims(&[name], path_given).pop() else {
                    continue;
                };
                if let Some((_, first)) = claimed.iter().find(|(c, _)| *c == claim) {
                    self.problems.push(
                        Problem::new(format!("{claim} is routed twice in this instance"))
                            .at(&host_at)
                            .label("second route")
                            .help(format!(
                                "the first route for it is at {}; give one of them another host or path",
                                line_of(first)
                            )),
                    );
                    continue;
                }
                for (other, other_decls) in others {
                    let theirs = other_decls.value.iter().flat_map(|d| {
                        claims(
                            &decl_names(&d.value),
                            d.value.path.as_ref().map(|p| &p.value),
                        )
                    });
                    if theirs.into_iter().any(|c| c == claim) {
                        self.problems.push(
                            Problem::new(format!(
                                "{claim} is also routed by instance `{other}`"
                            ))
                            .at(&host_at)
                            .label("claimed twice")
                            .help("one router serves every instance of a host: each host name and path may go to one instance only"),
                        );
                    }
                }
                claimed.push((claim, host_at.clone()));
            }
            let service_at = file.at(&service_decl.referenced);
            let service = services.iter().find(|s| s.name == service_decl.value);
            let backend = match service {
                Some(service) => self.backend(service, port, &file.at(&port.referenced)),
                None => {
                    let mut problem = Problem::new(format!(
                        "no service `{}` in the app template",
                        service_decl.value
                    ))
                    .at(&service_at)
                    .label("unknown service");
                    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
                    problem = problem.help(
                        did_you_mean(&service_decl.value, names.iter().copied())
                            .unwrap_or_else(|| format!("the services: {}", names.join(", "))),
                    );
                    self.problems.push(problem);
                    None
                }
            };
            let tls = match &decl.tls {
                None => Tls::Acme,
                Some(tls) => match &tls.value {
                    TlsDecl::Mode(mode) if mode == "acme" => Tls::Acme,
                    TlsDecl::Mode(mode) if mode == "off" => Tls::Off,
                    TlsDecl::Mode(other) => {
                        self.problems.push(
                            Problem::new(format!("unknown tls `{other}`"))
                                .at(&file.at(&tls.referenced))
                                .help("use `acme` (a certificate from the router's ACME CA), `off`, or `{certificate: FILE, key: FILE}`"),
                        );
                        Tls::Off
                    }
                    TlsDecl::Files(files) => Tls::Files {
                        certificate: self.route_file(file, &base, &files.certificate, "crt"),
                        key: self.route_file(file, &base, &files.key, "key"),
                    },
                },
            };
            if matches!(tls, Tls::Acme) {
                self.no_acme_for_addresses(file, decl);
            }
            let https_redirect = match &decl.https_redirect {
                Some(redirect) if redirect.value && !tls.is_on() => {
                    self.problems.push(
                        Problem::new("`https_redirect` needs TLS, and this route has `tls: off`")
                            .at(&file.at(&redirect.referenced))
                            .help("turn TLS on (`tls: acme`), or leave `https_redirect` out"),
                    );
                    false
                }
                Some(redirect) => redirect.value,
                None => tls.is_on(),
            };
            let basic_auth = (decl.basic_auth.as_ref())
                .map(|path| self.route_file(file, &base, path, "htpasswd"));
            let (Some(backend), Some(service)) = (backend, service) else {
                continue;
            };
            if hosts.is_empty() {
                continue;
            }
            let name = route_name(&self.prefix, &service.name, &routes);
            let mut route = Route {
                name,
                hosts,
                aliases,
                path,
                service: service.name.clone(),
                port: port.value,
                backend,
                tls,
                https_redirect,
                basic_auth,
                health_path: service.health_path.clone(),
                at: Some(item_at.clone()),
            };
            // Files are named after the route, which is unique on the host.
            let route_name = route.name.clone();
            for file in route.files_mut() {
                file.name = format!("{route_name}.{}", file.name);
            }
            routes.push(route);
        }
        let cost: usize = routes.iter().map(line_cost).sum();
        if cost > ROUTES_LINE_BUDGET {
            self.problems.push(
                Problem::new(format!(
                    "these {} routes are too many for one routes unit: its command line would be about {} KiB, and systemd cannot load a unit with a line over 1 MiB",
                    routes.len(),
                    cost / 1024
                ))
                .at(&file.at(&decls.referenced))
                .label("routes")
                .help(format!(
                    "an instance's routes unit carries all its routes (about {} KiB each, more for long names): give some of the names to another instance, or serve several names through one route's `hosts` and `aliases`",
                    ROUTE_LINE_COST / 1024
                )),
            );
        }
        routes
    }

    /// The host names of `hosts:`, each checked.
    fn host_names(&mut self, file: &Loaded, hosts: &Spanned<Words>) -> Vec<String> {
        let at = file.at(&hosts.referenced);
        let names: Vec<(String, Location)> = match &hosts.value {
            Words::One(name) => vec![(name.clone(), at.clone())],
            Words::List(list) => list
                .iter()
                .map(|n| (n.value.0.clone(), file.at(&n.referenced)))
                .collect(),
        };
        if names.is_empty() {
            self.problems.push(
                Problem::new("a route needs at least one host name")
                    .at(&at)
                    .help("`hosts: blog.example.com`"),
            );
        }
        names
            .into_iter()
            .filter(|(name, at)| self.host_name(name, at))
            .map(|(name, _)| name)
            .collect()
    }

    /// An IPv4 address routed with `tls: acme` (said or by default) is
    /// refused. Traefik 3.7 does order a certificate for an address (it did
    /// from pebble), but Let's Encrypt issues one only with its 6-day
    /// `shortlived` profile, which the router does not ask for and which
    /// Traefik drops when it renews (traefik#12462): the route would serve a
    /// certificate no browser trusts, or none after six days.
    fn no_acme_for_addresses(&mut self, file: &Loaded, decl: &RouteDecl) {
        for (name, host_at) in named_places(file, decl) {
            if name.parse::<std::net::Ipv4Addr>().is_err() {
                continue;
            }
            let (at, label) = match &decl.tls {
                Some(tls) => (file.at(&tls.referenced), "tls: acme"),
                None => (host_at, "an address, with tls: acme by default"),
            };
            self.problems.push(
                Problem::new(format!(
                    "`{name}` is an IP address: the router gets ACME certificates for domains only"
                ))
                .at(&at)
                .label(label)
                .help("route a domain that points at the host, or give this route `tls: {certificate: FILE, key: FILE}` (a certificate for the address) or `tls: off`"),
            );
        }
    }

    /// Whether `name` is a host name a router can match and a CA can
    /// certify; says why not where it was written.
    fn host_name(&mut self, name: &str, at: &Location) -> bool {
        match check_host_name(name) {
            Ok(()) => true,
            Err((msg, help)) => {
                self.problems
                    .push(Problem::new(msg).at(at).label("host name").help(help));
                false
            }
        }
    }

    /// Where the router connects for a service's container port: the port
    /// must be published (TCP) with a fixed host port.
    fn backend(
        &mut self,
        service: &Service,
        port: &Spanned<u16>,
        at: &Location,
    ) -> Option<Backend> {
        let published = service
            .ports
            .iter()
            .find(|p| p.container_port == port.value && p.protocol == Protocol::Tcp);
        let Some(published) = published else {
            let listed: Vec<String> = (service.ports.iter())
                .filter(|p| p.protocol == Protocol::Tcp)
                .map(|p| p.container_port.to_string())
                .collect();
            let help = if listed.is_empty() {
                format!(
                    "the router reaches a service through a port it publishes: add `ports: [\"127.0.0.1:8001:{}\"]` to `{}`",
                    port.value, service.name
                )
            } else {
                format!("`{}` publishes {}", service.name, listed.join(", "))
            };
            self.problems.push(
                Problem::new(format!(
                    "service `{}` does not publish port {}",
                    service.name, port.value
                ))
                .at(at)
                .label("container port")
                .help(help),
            );
            return None;
        };
        let Some(host_port) = published.host_port else {
            self.problems.push(
                Problem::new(format!(
                    "port {} of `{}` is published on a host port Docker chooses, which the router cannot know",
                    port.value, service.name
                ))
                .at(at)
                .label("container port")
                .help(format!(
                    "publish it on a fixed host port: `127.0.0.1:8001:{}` (loopback: only the router reaches it)",
                    port.value
                )),
            );
            return None;
        };
        let address = match published.host_ip.as_deref() {
            None | Some("0.0.0.0") => "127.0.0.1",
            Some("::") => "::1",
            Some(ip) => ip,
        };
        Some(Backend {
            address: address.to_string(),
            port: host_port,
        })
    }

    /// A file of the user's the router reads, relative to the file that
    /// names it (or absolute); its name gets the route's name in front once
    /// that is known. A path that names no file (empty, a folder's, or with
    /// a control character) is refused here: apply would fail on it.
    fn route_file(
        &mut self,
        file: &Loaded,
        base: &Path,
        given: &Spanned<String>,
        extension: &str,
    ) -> RouteFile {
        let at = file.at(&given.referenced);
        let path = &given.value;
        if path.is_empty() || path.ends_with('/') || path.chars().any(char::is_control) {
            self.problems.push(
                Problem::new(format!("`{path}` is not a file's path"))
                    .at(&at)
                    .label("file")
                    .help("the file's path, relative to this file or absolute: `./site.crt`"),
            );
        }
        RouteFile {
            source: base.join(path),
            name: extension.to_string(),
            digest: None,
            at: Some(at),
        }
    }

    /// The host's router settings (`router:`), or the defaults.
    pub(super) fn router(&mut self, file: &Loaded) -> Router {
        let empty = RouterDecl::default();
        let decl = file.doc.router.as_ref().unwrap_or(&empty);
        let mut router = Router {
            image: DEFAULT_ROUTER_IMAGE.to_string(),
            http_port: 80,
            https_port: 443,
            address: None,
            directory: PathBuf::from(DEFAULT_ROUTER_DIRECTORY),
            acme: Acme {
                email: None,
                ca_server: DEFAULT_ACME_CA_SERVER.to_string(),
                ca_certificate: None,
            },
            // Set by `compile` once the deployment's etcd is known.
            etcd: None,
            declared_at: declared_at(file, decl),
        };
        if let Some(image) = &decl.image {
            let at = file.at(&image.referenced);
            match super::syntax::check_image(&image.value) {
                Ok(()) => router.image = image.value.clone(),
                Err(msg) => self.problems.push(Problem::new(msg).at(&at)),
            }
        }
        for (given, out) in [
            (&decl.http_port, &mut router.http_port),
            (&decl.https_port, &mut router.https_port),
        ] {
            if let Some(port) = given {
                if port.value == 0 {
                    self.problems
                        .push(Problem::new("port 0 is not a port").at(&file.at(&port.referenced)));
                } else {
                    *out = port.value;
                }
            }
        }
        if router.http_port == router.https_port {
            let at = decl.https_port.as_ref().or(decl.http_port.as_ref());
            let mut problem = Problem::new(format!(
                "the router's HTTP and HTTPS ports are both {}",
                router.http_port
            ))
            .help("give `http_port` and `https_port` different ports");
            if let Some(port) = at {
                problem = problem.at(&file.at(&port.referenced));
            }
            self.problems.push(problem);
        }
        if let Some(address) = &decl.address {
            match address.value.parse::<std::net::IpAddr>() {
                Ok(_) => router.address = Some(address.value.clone()),
                Err(_) => self.problems.push(
                    Problem::new(format!("`{}` is not an IP address", address.value))
                        .at(&file.at(&address.referenced))
                        .help("`127.0.0.1`, `::1`, or leave `address` out to listen on all"),
                ),
            }
        }
        // The router's unit writes each of these on a line of its own
        // command: systemd refuses a unit with a line over 1 MiB.
        let sized = |this: &mut Self, value: &Spanned<String>| match check_size(&value.value) {
            Ok(()) => true,
            Err(msg) => {
                this.problems
                    .push(Problem::new(msg).at(&file.at(&value.referenced)));
                false
            }
        };
        let absolute = |this: &mut Self, value: &Spanned<String>, what: &str| {
            if !sized(this, value) {
                return None;
            }
            let ok = value.value.starts_with('/') && plain_text(&value.value);
            if !ok {
                this.problems.push(
                    Problem::new(format!("`{}` is not an absolute path", value.value))
                        .at(&file.at(&value.referenced))
                        .help(format!("{what}: give its absolute path on the host")),
                );
            }
            ok.then(|| value.value.clone())
        };
        if let Some(dir) = &decl.directory
            && let Some(dir) = absolute(self, dir, "the router's folder")
        {
            router.directory = PathBuf::from(dir);
        }
        if let Some(acme) = &decl.acme {
            if let Some(email) = &acme.email
                && sized(self, email)
            {
                let ok = email.value.contains('@') && plain_text(&email.value);
                if ok {
                    router.acme.email = Some(email.value.clone());
                } else {
                    self.problems.push(
                        Problem::new(format!("`{}` is not an email address", email.value))
                            .at(&file.at(&email.referenced)),
                    );
                }
            }
            if let Some(server) = &acme.ca_server
                && sized(self, server)
            {
                let ok = server.value.starts_with("https://") && plain_text(&server.value);
                if ok {
                    router.acme.ca_server = server.value.clone();
                } else {
                    self.problems.push(
                        Problem::new(format!("`{}` is not an https:// URL", server.value))
                            .at(&file.at(&server.referenced))
                            .help("the CA's ACME directory URL, e.g. https://acme-staging-v02.api.letsencrypt.org/directory"),
                    );
                }
            }
            if let Some(ca) = &acme.ca_certificate {
                router.acme.ca_certificate = absolute(self, ca, "a PEM file the router mounts");
            }
        }
        router
    }
}

/// The most a routes unit's longest (joined) line may take: systemd
/// refuses to load a unit with a line over 1 MiB (`LONG_LINE_MAX`), and the
/// routes unit writes all of an instance's routes in one command line (the
/// Traefik file, or the etcd transaction, its largest).
const ROUTES_LINE_BUDGET: usize = 960 * 1024;

/// A bound on what one route costs on that line besides its names,
/// measured on the largest shapes (TLS files, an alias, a path, basic auth,
/// a health check; etcd's keys and the ranges that delete stale ones, about
/// 4.9 KiB), with room to spare.
const ROUTE_LINE_COST: usize = 6 * 1024;

/// How often a route's own name (`<app>-<instance>-<service>…`) appears on
/// that line, at most: in every etcd key of its routers, services and
/// middlewares, each written once and named again by the ranges that
/// delete the keys around it (about 220 times; in a Traefik file, 60).
const ROUTE_NAME_MENTIONS: usize = 240;

/// A bound on the bytes `route` adds to its routes unit's command line:
/// each of its host names appears in it up to six times (claims, rules,
/// the certificate's names, etcd keys), escaped; its own name in every key.
fn line_cost(route: &Route) -> usize {
    let names: usize = (route.hosts.iter().chain(&route.aliases))
        .map(|n| n.len() + 8)
        .sum();
    ROUTE_LINE_COST
        + ROUTE_NAME_MENTIONS * route.name.len()
        + 8 * (names + route.path.as_ref().map_or(0, String::len))
}

/// What a route claims on the router: one host name and a path prefix.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Claim {
    host: String,
    /// The prefix, without a trailing `/` (`""` is every path).
    path: String,
}

impl std::fmt::Display for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "`{}`", self.host)
        } else {
            write!(f, "`{}{}`", self.host, self.path)
        }
    }
}

/// Every claim of an instance's routes, each where its name is written
/// (for the site's check across apps).
pub(crate) fn claimed_places(file: &Loaded, decls: &RouteDecls) -> Vec<(Claim, Location)> {
    let mut claimed = Vec::new();
    for decl in &decls.value {
        let path = decl.value.path.as_ref().map(|p| &p.value);
        for (name, at) in named_places(file, &decl.value) {
            claimed.extend(claims(&[name], path).into_iter().map(|c| (c, at.clone())));
        }
    }
    claimed
}

/// Every name an instance's routes answer for (hosts and aliases), each
/// where it was written: for problems found past compiling (`dns`).
pub(crate) fn names_at(file: &Loaded, decls: &RouteDecls) -> Vec<(String, Location)> {
    (decls.value.iter())
        .flat_map(|decl| named_places(file, &decl.value))
        .collect()
}

/// Every name a route answers for, each where it was written.
fn named_places(file: &Loaded, decl: &RouteDecl) -> Vec<(String, Location)> {
    let mut names = match &decl.hosts {
        None => Vec::new(),
        Some(hosts) => match &hosts.value {
            Words::One(name) => vec![(name.clone(), file.at(&hosts.referenced))],
            Words::List(list) => list
                .iter()
                .map(|n| (n.value.0.clone(), file.at(&n.referenced)))
                .collect(),
        },
    };
    let aliases = decl.aliases.iter().flatten();
    names.extend(aliases.map(|a| (a.value.clone(), file.at(&a.referenced))));
    names
}

/// Every name a route answers for: its hosts and its aliases.
fn decl_names(decl: &RouteDecl) -> Vec<String> {
    let mut names = match decl.hosts.as_ref().map(|h| &h.value) {
        None => Vec::new(),
        Some(Words::One(name)) => vec![name.clone()],
        Some(Words::List(list)) => list.iter().map(|n| n.value.0.clone()).collect(),
    };
    names.extend(decl.aliases.iter().flatten().map(|a| a.value.clone()));
    names
}

fn claims(names: &[String], path: Option<&String>) -> Vec<Claim> {
    let path = path.map_or("", |p| p.trim_end_matches('/'));
    names
        .iter()
        .map(|host| Claim {
            host: host.to_ascii_lowercase(),
            path: path.to_string(),
        })
        .collect()
}

/// `line N` of a location, for pointing at a second place in a help.
fn line_of(at: &Location) -> String {
    let text = at.file.inner();
    let line = text[..at.span.offset().min(text.len())]
        .lines()
        .count()
        .max(1);
    format!("line {line}")
}

/// `<prefix>-<service>`, or `-2`, `-3`, … for more routes to one service.
fn route_name(prefix: &str, service: &str, earlier: &[Route]) -> String {
    let same = earlier.iter().filter(|r| r.service == service).count();
    match same {
        0 => format!("{prefix}-{service}"),
        n => format!("{prefix}-{service}-{}", n + 1),
    }
}

/// The folder of the file that declared something: relative paths start there.
fn file_folder(file: &Loaded) -> PathBuf {
    Path::new(file.file.name())
        .parent()
        .unwrap_or(Path::new(""))
        .to_path_buf()
}

/// Printable ASCII with no space, quote or backtick: safe in a Traefik
/// rule, a YAML scalar and a unit line alike.
fn plain_text(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'`' | b'"' | b'\'' | b'\\'))
}

/// A DNS name of lowercase labels: what Traefik's `Host()` matches and
/// what an ACME CA certifies.
fn check_host_name(name: &str) -> Result<(), (String, String)> {
    let help =
        "a host name like `blog.example.com`: lowercase letters, digits, `-` and dots".to_string();
    if name.starts_with("*.") {
        return Err((
            format!("`{name}` is a wildcard"),
            "routes match exact names (HTTP-01 cannot certify wildcards): list the names, or add them as aliases".into(),
        ));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err((
            format!("`{name}` has uppercase letters"),
            format!(
                "host names are matched in lowercase: write `{}`",
                name.to_ascii_lowercase()
            ),
        ));
    }
    let labels_ok = name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if !labels_ok {
        let help = if name.is_ascii() {
            help
        } else {
            "an internationalized name is written in its ASCII (punycode) form, as DNS, certificates and the router's `Host()` have it: `bücher.example` is `xn--bcher-kva.example` (`idn2 bücher.example` prints it)".into()
        };
        return Err((format!("`{name}` is not a host name"), help));
    }
    // A top-level label of digits only is no domain's: the name is an
    // IPv4 address (routed as it is, with no DNS record), or a typo.
    let numeric = |label: &str| label.bytes().all(|b| b.is_ascii_digit());
    if name.rsplit('.').next().is_some_and(numeric) && name.parse::<std::net::Ipv4Addr>().is_err() {
        return Err((
            format!("`{name}` is neither a domain nor an IPv4 address"),
            "a domain's last label is not all digits: `blog.example.com`".into(),
        ));
    }
    Ok(())
}

/// A route's path prefix: a path (see [`check_path`]) that Traefik can
/// match. Traefik 3.7 matches `PathPrefix` against the request's path
/// decoded and cleaned (tried): a prefix with an escape (`/caf%C3%A9`), an
/// empty segment (`//a`) or a `.`/`..` segment never matched a request, so
/// such a route would answer 404 forever.
fn check_route_path(path: &str) -> Result<(), (String, String)> {
    let help = "write the path as the service sees it: letters, digits and `/-_.~`, e.g. `/api/v1`";
    check_path(path).map_err(|msg| (msg, help.to_string()))?;
    if path.contains('%') {
        return Err((
            format!("the path `{path}` has a `%` escape, which no request matches"),
            "the router compares a path prefix with the request's decoded path (`%41` arrives as `A`): write the characters themselves, letters, digits and `/-_.~`".into(),
        ));
    }
    let inner = path[1..].strip_suffix('/').unwrap_or(&path[1..]);
    if path != "/" && inner.split('/').any(|s| matches!(s, "" | "." | "..")) {
        return Err((
            format!("the path `{path}` has an empty, `.` or `..` segment, which no request matches"),
            "the router cleans a request's path before it compares it (`/a/../b` arrives as `/b`, `//a` as `/a`): write the path as it arrives".into(),
        ));
    }
    Ok(())
}

/// A path: starts with `/`, plain characters only (a health path may hold
/// `%` escapes: it is sent as written).
pub(super) fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("the path `{path}` does not start with `/`"));
    }
    let ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~' | b'%'));
    if !ok {
        return Err(format!(
            "the path `{path}` has characters a path prefix cannot: use letters, digits and `/-_.~%`"
        ));
    }
    // A `%` starts an escape of two hex digits: Traefik parses the health
    // path as a URL, and no request path holds a lone `%`.
    let bytes = path.as_bytes();
    let escapes_ok = (bytes.iter().enumerate())
        .filter(|(_, b)| **b == b'%')
        .all(|(i, _)| {
            bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        });
    if escapes_ok {
        Ok(())
    } else {
        Err(format!(
            "the path `{path}` has a `%` that starts no escape: write `%` and two hex digits (`%20`)"
        ))
    }
}

/// The text of a `router:` block: from its first key's value to its last's.
fn declared_at(file: &Loaded, decl: &RouterDecl) -> Option<Location> {
    let acme = decl.acme.as_ref();
    let strings = [
        decl.image.as_ref(),
        decl.address.as_ref(),
        decl.directory.as_ref(),
        acme.and_then(|a| a.email.as_ref()),
        acme.and_then(|a| a.ca_server.as_ref()),
        acme.and_then(|a| a.ca_certificate.as_ref()),
    ];
    let ports = [decl.http_port.as_ref(), decl.https_port.as_ref()];
    let spans: Vec<Location> = (strings.iter().flatten())
        .map(|s| file.at(&s.referenced))
        .chain(ports.iter().flatten().map(|p| file.at(&p.referenced)))
        .collect();
    let start = spans.iter().map(|l| l.span.offset()).min()?;
    let end = (spans.iter())
        .map(|l| l.span.offset() + l.span.len())
        .max()?;
    Some(Location {
        file: spans[0].file.clone(),
        span: (start, end - start).into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert!(check_host_name("blog.example.com").is_ok());
        assert!(check_host_name("localhost").is_ok());
        assert!(check_host_name("Blog.example.com").is_err());
        assert!(check_host_name("*.example.com").is_err());
        assert!(check_host_name("a..b").is_err());
        assert!(check_host_name("-a.b").is_err());
        assert!(check_host_name("a b").is_err());
        assert!(check_host_name("a`b").is_err());
        assert!(check_host_name("203.0.113.10").is_ok());
        for not_an_address in ["1.2.3.999", "1.2.3", "a.123", "01.2.3.4"] {
            assert!(check_host_name(not_an_address).is_err(), "{not_an_address}");
        }
        let (_, help) = check_host_name("bücher.example").unwrap_err();
        assert!(help.contains("xn--bcher-kva.example"), "{help}");
    }

    #[test]
    fn paths() {
        assert!(check_path("/api").is_ok());
        assert!(check_path("/api/v1").is_ok());
        assert!(check_path("api").is_err());
        assert!(check_path("/a`)||Host(`x").is_err());
        assert!(check_path("/caf%C3%A9").is_ok());
        for lone in ["/100%", "/a%zz", "/a%2"] {
            assert!(check_path(lone).is_err(), "{lone}");
        }
    }

    /// `/caf%C3%A9`, `/x/../y` and `//z` were taken as route paths, and
    /// Traefik matched no request to them (it compares the decoded,
    /// cleaned path): the route answered 404 to every request.
    #[test]
    fn route_paths_the_router_cannot_match_are_refused() {
        for ok in [
            "/",
            "/api",
            "/api/",
            "/a.b/~c_d-e/",
            "/.well-known",
            "/a..b",
        ] {
            assert!(check_route_path(ok).is_ok(), "{ok}");
        }
        for never in [
            "/caf%C3%A9",
            "/a%2Fb",
            "//z",
            "/x/../y",
            "/w/./v",
            "/a//",
            "/..",
            "/./",
        ] {
            assert!(check_route_path(never).is_err(), "{never}");
        }
    }

    #[test]
    fn claims_ignore_a_trailing_slash() {
        let names = vec!["a.example".to_string()];
        assert_eq!(
            claims(&names, Some(&"/api/".to_string())),
            claims(&names, Some(&"/api".to_string()))
        );
        assert_eq!(claims(&names, Some(&"/".to_string())), claims(&names, None));
    }
}
