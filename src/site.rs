//! The site: every host and every deployed app in one file (`site.yaml`),
//! each app with its template, its instances and which host runs each.
//! An app of a site is read as a deployments file is (its part of the site
//! file names the template), so every command compiles it as it would one.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use miette::NamedSource;
use serde::Deserialize;

use crate::compile::route::Claim;
use crate::compile::values::Entries;
use crate::diagnostic::{Location, Problem, Problems, SourceFile, did_you_mean};
use crate::model::Instance;
use crate::template::schema::site::SiteDoc;
use crate::template::schema::{EtcdDecl, Words};
use crate::template::{self, Loaded, Template};

/// The file a site is read from when no `-f FILE` is given and there is
/// no `unitgen.yaml`.
pub const DEFAULT_FILE: &str = "site.yaml";

#[derive(Debug)]
pub struct Site {
    pub file: SourceFile,
    pub hosts: Vec<Host>,
    pub apps: Vec<App>,
}

#[derive(Debug)]
pub struct Host {
    pub name: String,
    /// Public addresses, IPv4 and/or IPv6, in file order.
    pub addresses: Vec<IpAddr>,
    /// The DNS name its domains are CNAMEs to, lower case, no final dot.
    pub cname: Option<String>,
}

#[derive(Debug)]
pub struct App {
    pub name: String,
    pub template: Template,
    /// Every declared instance, in file order, with the host that runs it.
    pub instances: Vec<Placed>,
}

/// An instance and the host the site assigns it to.
#[derive(Debug)]
pub struct Placed {
    pub instance: String,
    pub host: String,
    /// The `host:` that says so (in the site file).
    pub host_at: Location,
}

/// Whether `text` is a site file: a map with a top-level `apps:`.
pub fn is_site(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Peek {
        apps: Option<serde::de::IgnoredAny>,
    }
    // Reading the file to know costs as much as parsing a template: a text
    // that cannot spell the key `apps` (nor escape it, nor encode it) is
    // none.
    if !text.contains("apps") && !text.contains('\\') && !text.contains("binary") {
        return false;
    }
    serde_saphyr::from_str_with_options::<Peek>(text, template::yaml_options())
        .is_ok_and(|peek| peek.apps.is_some())
}

impl Site {
    /// Reads the site file at `path` and every app template it names.
    pub fn load(path: &Path) -> Result<Site, Problems> {
        Site::parse(path, template::read_text(path)?)
    }

    pub fn parse(path: &Path, text: String) -> Result<Site, Problems> {
        let parsed =
            serde_saphyr::from_str_with_options::<SiteDoc>(&text, template::yaml_options());
        let file: SourceFile = Arc::new(NamedSource::new(template::display_path(path), text));
        let doc = parsed.map_err(|err| Problems::from(template::yaml_problem(&err, &file)))?;
        let at = |loc: &template::spanned::At| Location::from_yaml(&file, loc);
        let mut problems = Problems(template::unknown_keys::find_site(file.inner(), &file));

        let mut hosts = Vec::new();
        for (name, decl) in doc.hosts.iter().flat_map(|h| &h.value) {
            if let Err(why) = check_host_key(&name.value) {
                problems.push(
                    Problem::new(format!(
                        "`{}` is not a host name: {why}",
                        crate::diagnostic::shown(&name.value)
                    ))
                        .at(&at(&name.referenced))
                        .label("host name")
                        .help("name a host as its machine is named (`hostname`, what `--host` matches): `web1`, `web1.example.net`"),
                );
            }
            let mut addresses = Vec::new();
            let cname = decl.value.cname.as_ref().and_then(|cname| {
                let name = cname.value.trim_end_matches('.').to_ascii_lowercase();
                match crate::dns::check_name(&name) {
                    Ok(()) => Some(name),
                    Err(why) => {
                        problems.push(
                            Problem::new(format!("`{}` is not a DNS name: {why}", cname.value))
                                .at(&at(&cname.referenced))
                                .label("not a DNS name"),
                        );
                        None
                    }
                }
            });
            let written: Vec<(String, Location)> = match &decl.value.address {
                Some(address) => match &address.value {
                    Words::One(one) => vec![(one.clone(), at(&address.referenced))],
                    Words::List(list) => (list.iter())
                        .map(|a| (a.value.0.clone(), at(&a.referenced)))
                        .collect(),
                },
                None if decl.value.cname.is_some() => Vec::new(),
                None => {
                    problems.push(
                        Problem::new(format!("host `{}` has no `address:`", name.value))
                            .at(&at(&name.referenced))
                            .help("add its public address: `address: 203.0.113.10` (IPv4, IPv6, or a list of both), or the DNS name it is known by: `cname: lb-1.provider.example`"),
                    );
                    continue;
                }
            };
            for (text, where_) in written {
                match text.parse::<IpAddr>() {
                    Ok(ip) => addresses.push(ip),
                    Err(_) => problems.push(
                        Problem::new(format!("`{text}` is not an IPv4 or IPv6 address"))
                            .at(&where_)
                            .label("not an address")
                            .help("a host's address is the public IP its domains point at: `203.0.113.10` or `2001:db8::10`"),
                    ),
                }
            }
            hosts.push(Host {
                name: name.value.clone(),
                addresses,
                cname,
            });
        }
        // Every host written, one refused above too: an instance assigned
        // to it is not also "assigned to a host that is not declared".
        let host_names: Vec<&str> = (doc.hosts.iter().flat_map(|h| &h.value))
            .map(|(name, _)| name.value.as_str())
            .collect();
        let host_etcd: IndexMap<String, EtcdDecl> = (doc.hosts.iter().flat_map(|h| &h.value))
            .filter_map(|(name, decl)| Some((name.value.clone(), decl.value.etcd.clone()?)))
            .collect();

        let mut apps = Vec::new();
        let dir = path.parent().unwrap_or(Path::new(""));
        let Some(declared) = doc.apps else {
            problems.push(
                Problem::new(format!("{} has no `apps:`", file.name()))
                    .help("a site file lists its apps: `apps: {blog: {template: blog/app.yaml, instances: {live: {host: web1}}}}`"),
            );
            return Err(problems);
        };
        for (name, entry) in declared.value {
            let name_at = at(&name.referenced);
            if let Err(msg) = crate::compile::syntax::check_app_or_instance_name(&name.value) {
                problems.push(Problem::new(msg).at(&name_at).label("app name"));
            }
            let mut doc = entry.value;
            for (key, written) in [
                ("app", doc.app.as_ref().map(|a| a.referenced)),
                (
                    "volumes",
                    (doc.volumes.as_ref().and_then(|v| v.keys().next())).map(|k| k.referenced),
                ),
            ] {
                // (`services:` beside `template:` is the deployments file's
                // own error.)
                if let Some(loc) = written {
                    problems.push(
                        Problem::new(format!(
                            "a site's app cannot have `{key}`: it belongs in the app template"
                        ))
                        .at(&at(&loc))
                        .help("the site says where and with which values an app runs; its template says what it is"),
                    );
                }
            }
            if doc.template.is_none() {
                problems.push(
                    Problem::new(format!("app `{}` has no `template:`", name.value))
                        .at(&name_at)
                        .help("name the app's template, relative to the site file: `template: blog/app.yaml`"),
                );
                continue;
            }
            template::keep_values_text(&mut doc, file.inner());
            let loaded = Loaded {
                file: file.clone(),
                doc,
                unknown_keys: Vec::new(),
                in_site: true,
                host_etcd: host_etcd.clone(),
            };
            let template = match Template::with_deployments(loaded, dir) {
                Ok(template) => template,
                Err(found) => {
                    problems.0.extend(found.0);
                    continue;
                }
            };
            match &template.app.doc.app {
                Some(app) if app.value != name.value => problems.push(
                    Problem::new(format!(
                        "app `{}` names a template whose app is `{}`",
                        name.value, app.value
                    ))
                    .at(&name_at)
                    .label("the app's name")
                    .help(format!(
                        "the site names each app as its template does: write `{}:` here (the name is in every unit, container and volume)",
                        app.value
                    )),
                ),
                _ => {}
            }
            let mut instances = Vec::new();
            let entries = Entries {
                file: template.instances_file(),
                site: true,
            };
            for (instance, _) in template.instances_file().doc.instances.iter().flatten() {
                // Problems of the values are the compiler's to report.
                let merged = entries.merge(&instance.value, &mut Problems::default());
                let Some(host) = merged.host else {
                    problems.push(
                        Problem::new(format!(
                            "instance `{}/{}` has no `host:`",
                            name.value, instance.value
                        ))
                        .at(&at(&instance.referenced))
                        .label("which host runs it?")
                        .help(format!(
                            "add `host: NAME` to it (or to the app's `defaults:`); hosts: {}",
                            host_names.join(", ")
                        )),
                    );
                    continue;
                };
                let host_at = at(&host.referenced);
                if !host_names.contains(&host.value.as_str()) {
                    let help = did_you_mean(&host.value, host_names.iter().copied())
                        .unwrap_or_else(|| {
                            format!(
                                "declare it under `hosts:` (declared: {})",
                                host_names.join(", ")
                            )
                        });
                    problems.push(
                        Problem::new(format!(
                            "instance `{}/{}` is assigned to host `{}`, which is not declared under `hosts:`",
                            name.value, instance.value, host.value
                        ))
                        .at(&host_at)
                        .label("unknown host")
                        .help(help),
                    );
                }
                instances.push(Placed {
                    instance: instance.value.clone(),
                    host: host.value,
                    host_at,
                });
            }
            apps.push(App {
                name: name.value,
                template,
                instances,
            });
        }
        problems.into_result(Site { file, hosts, apps })
    }

    pub fn app_names(&self) -> Vec<&str> {
        self.apps.iter().map(|a| a.name.as_str()).collect()
    }

    /// The app and instance `target` names: `APP/INSTANCE`, or `INSTANCE`
    /// when the site has one app.
    pub fn select(&self, target: &str) -> Result<(usize, String), Problem> {
        let (index, instance) = match target.split_once('/') {
            Some((app, instance)) => match self.apps.iter().position(|a| a.name == app) {
                Some(index) => (index, instance),
                None => {
                    let names = self.app_names();
                    let help = did_you_mean(app, names.iter().copied())
                        .unwrap_or_else(|| format!("apps: {}", names.join(", ")));
                    return Err(
                        Problem::new(format!("{} has no app `{app}`", self.file.name())).help(help),
                    );
                }
            },
            None if self.apps.len() == 1 => (0, target),
            None => {
                let having: Vec<String> = (self.apps.iter())
                    .filter(|a| a.instances.iter().any(|p| p.instance == target))
                    .map(|a| format!("{}/{target}", a.name))
                    .collect();
                let help = if having.is_empty() {
                    format!(
                        "name it APP/INSTANCE; apps: {}",
                        self.app_names().join(", ")
                    )
                } else {
                    format!("name it APP/INSTANCE: {}", having.join(" or "))
                };
                return Err(Problem::new(format!(
                    "{} has several apps: which one's `{target}`?",
                    self.file.name()
                ))
                .help(help));
            }
        };
        Ok((index, instance.to_string()))
    }

    /// The instances the site assigns to `host`, app by app in file order.
    pub fn on_host(&self, host: &str) -> Vec<(&App, &Placed)> {
        let all = self
            .apps
            .iter()
            .flat_map(|app| app.instances.iter().map(move |p| (app, p)));
        all.filter(|(_, placed)| placed.host == host).collect()
    }

    /// Where the site places `app`'s `instance`.
    pub fn placed(&self, app: &str, instance: &str) -> Option<&Placed> {
        let app = self.apps.iter().find(|a| a.name == app)?;
        app.instances.iter().find(|p| p.instance == instance)
    }
}

/// A host's name under `hosts:`: what `--host` and the machine's host
/// name are matched against, and what messages, `status` and the docs
/// print, so no character that would start markup or a new line.
fn check_host_key(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("a host name has 1 to 253 characters".into());
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(c) => Err(format!(
            "`{}` is not a letter, digit, `-`, `_` or `.`",
            crate::diagnostic::shown(c.encode_utf8(&mut [0; 4]))
        )),
        None => Ok(()),
    }
}

/// What no app alone can see: one host name and path routed by two apps,
/// two instances on one host publishing one port. `validate` reports them
/// all; `plan` and `apply` refuse, before anything changes, those that
/// involve an instance they act on.
pub struct Clash {
    pub problem: Problem,
    /// The two instances, as `APP/INSTANCE`.
    pub between: [String; 2],
}

/// Every clash of the site, `compiled` being its instances that compile.
pub fn clashes(site: &Site, compiled: &[Instance]) -> Vec<Clash> {
    let mut found = host_port_clashes(site, compiled);
    found.extend(route_clashes(site));
    found
}

/// One host name and path routed by instances of two apps: each app sees
/// only its own instances' routes. Located at the second claim, with the
/// first shown too (both in the site file).
fn route_clashes(site: &Site) -> Vec<Clash> {
    let mut clashes = Vec::new();
    let mut claimed: Vec<(Claim, String, Location)> = Vec::new();
    for app in &site.apps {
        let file = app.template.instances_file();
        let entries = Entries { file, site: true };
        let mut mine = Vec::new();
        for placed in &app.instances {
            // Problems of the entries are the compiler's to report.
            let merged = entries.merge(&placed.instance, &mut Problems::default());
            let Some(decls) = &merged.routes else {
                continue;
            };
            let label = format!("{}/{}", app.name, placed.instance);
            for (claim, at) in crate::compile::route::claimed_places(file, decls) {
                if let Some((_, other, first)) = claimed.iter().find(|(c, _, _)| *c == claim) {
                    clashes.push(Clash {
                        problem: Problem::new(format!("{claim} is routed by {other} and by {label}"))
                            .at(&at)
                            .label(format!("claimed by {label}"))
                            .also_at(first, format!("claimed by {other}"))
                            .help("a host name and path go to one instance of one app: give one of them another name or path"),
                        between: [other.clone(), label.clone()],
                    });
                }
                mine.push((claim, label.clone(), at));
            }
        }
        // Within an app the compiler says it (at each of its instances).
        claimed.extend(mine);
    }
    clashes
}

/// Two instances on one host that publish the same host port (on the same
/// address, or one of them on all), or one that publishes a port the
/// host's router listens on for another's routes: neither app alone can
/// see it. Each clash is located at the `host:` of the instance that came
/// second (the assignment to change), with the first's shown too.
fn host_port_clashes(site: &Site, compiled: &[Instance]) -> Vec<Clash> {
    /// Who publishes a host port, on which address (None: all).
    struct Publisher<'s> {
        who: String,
        instance: String,
        router: bool,
        ip: Option<&'s str>,
        placed: &'s Placed,
    }
    let overlap = crate::model::addresses_overlap;
    let mut clashes = Vec::new();
    let mut seen: BTreeMap<(&str, String), Vec<Publisher>> = BTreeMap::new();
    for instance in compiled {
        let Some(placed) = site.placed(&instance.app, &instance.instance) else {
            continue;
        };
        let name = format!("{}/{}", instance.app, instance.instance);
        let mut publishers = Vec::new();
        if let Some(router) = instance
            .router
            .as_ref()
            .filter(|_| !instance.routes.is_empty())
        {
            for (port, key) in [
                (router.http_port, "http_port"),
                (router.https_port, "https_port"),
            ] {
                publishers.push((
                    format!("{port}/tcp"),
                    Publisher {
                        who: format!("the host's router (`{key}` of {name}'s `router:`)"),
                        instance: name.clone(),
                        router: true,
                        ip: router.address.as_deref(),
                        placed,
                    },
                ));
            }
        }
        for service in &instance.services {
            for port in &service.ports {
                let Some(host_port) = port.host_port else {
                    continue;
                };
                publishers.push((
                    format!("{host_port}/{}", port.protocol.as_str()),
                    Publisher {
                        who: format!("{name} ({})", service.name),
                        instance: name.clone(),
                        router: false,
                        ip: port.host_ip.as_deref(),
                        placed,
                    },
                ));
            }
        }
        for (key, publisher) in publishers {
            let taken = seen.entry((placed.host.as_str(), key.clone())).or_default();
            // One router serves every instance of the host; an instance's
            // own services the compiler checks against each other.
            let first = taken.iter().find(|first| {
                overlap(first.ip, publisher.ip)
                    && !(first.router && publisher.router)
                    && (first.instance != publisher.instance || first.router != publisher.router)
            });
            if let Some(first) = first {
                clashes.push(Clash {
                    problem: Problem::new(format!(
                        "{} and {} both publish port {key} on host `{}`",
                        first.who, publisher.who, placed.host
                    ))
                    .at(&placed.host_at)
                    .label(format!("{name} assigned here"))
                    .also_at(&first.placed.host_at, format!("{} assigned here", first.instance))
                    .help("one host port serves one instance: assign one of them to another host, or change its port"),
                    between: [first.instance.clone(), name.clone()],
                });
            } else {
                taken.push(publisher);
            }
        }
    }
    clashes
}

#[cfg(test)]
mod tests {
    use super::is_site;

    #[test]
    fn a_site_is_told_by_its_top_level_apps_however_written() {
        for site in ["apps:\n  blog: {}\n", "{apps: {}}\n", "\"\\x61pps\": {}\n"] {
            assert!(is_site(site), "{site:?}");
        }
        for other in [
            "app: blog\nservices: {}\n",
            "app: apps\nx: {apps: 1}\n",
            "a\\b: [\n",
        ] {
            assert!(!is_site(other), "{other:?}");
        }
    }
}
