//! The DNS records a site needs: each routed domain points at the host (or
//! hosts) whose instances serve it. unitgen calls no provider: it prints the
//! records in formats DNS tools read as they are (`bind`, `octodns`), and
//! `check` asks a resolver whether the world already agrees.

pub mod bind;
pub mod check;
pub mod octodns;
pub mod resolve;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::diagnostic::{Location, Problem, Problems};
use crate::model::route::Tls;
use crate::site_view::SiteView;

/// What a domain must resolve to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A and AAAA records: the public addresses of every host serving it.
    Addresses(BTreeSet<IpAddr>),
    /// A CNAME to the name of the one host serving it.
    Alias(String),
}

/// One routed domain and where it must point.
#[derive(Debug, Clone)]
pub struct Need {
    /// Lower case, no trailing dot.
    pub domain: String,
    /// The hosts serving it, sorted.
    pub hosts: Vec<String>,
    /// `app/instance` of each instance routed from it, for messages.
    pub instances: Vec<String>,
    pub answer: Answer,
    /// Where the last instance routing it names it: a record that cannot
    /// be made is refused there.
    pub at: Option<Location>,
}

/// Every routed domain of the site and where it must point, sorted by
/// domain. Instances with routes but no host, hosts with no address, and
/// domains that cannot be CNAMEs are errors: each would be a record that
/// points nowhere, or the wrong way.
pub fn needs(site: &SiteView) -> Result<Vec<Need>, Problems> {
    let mut problems = Problems::default();
    // domain -> (hosts, instances, where named)
    type Served = (BTreeSet<String>, Vec<String>, Option<Location>);
    let mut served: BTreeMap<String, Served> = BTreeMap::new();
    // domain -> whether every route naming it is served by every host's
    // router (in etcd) with no certificate to get (`tls: off`)
    let mut any_router: BTreeMap<String, bool> = BTreeMap::new();
    for (app, deployed) in site.deployed() {
        let name = format!("{}/{}", app.name, deployed.instance.instance);
        let at = |domain: &str| {
            (deployed.names_at.iter())
                .find(|(named, _)| named.eq_ignore_ascii_case(domain))
                .map(|(_, at)| at.clone())
        };
        let in_etcd = deployed.instance.routes_in_etcd().is_some();
        for route in &deployed.instance.routes {
            for domain in route.hosts.iter().chain(&route.aliases) {
                let anywhere = in_etcd && route.tls == Tls::Off;
                *any_router
                    .entry(domain.to_ascii_lowercase())
                    .or_insert(true) &= anywhere;
            }
        }
        // Aliases too: the router answers them with a redirect.
        let domains =
            (deployed.instance.routes.iter()).flat_map(|r| r.hosts.iter().chain(&r.aliases));
        let Some(host) = &deployed.host else {
            if let Some(domain) = domains.into_iter().next() {
                problems.push(located(
                    Problem::new(format!(
                        "instance {name} routes {domain} but runs on no named host, so its address is unknown"
                    ))
                    .help("assign the instance to a host (with its public address) in the site file"),
                    at(domain),
                ));
            }
            continue;
        };
        for domain in domains {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            // A route for an address (`Host(`203.0.113.10`)`) needs no record.
            if domain.parse::<IpAddr>().is_ok() {
                continue;
            }
            if let Err(why) = check_name(&domain) {
                problems.push(located(
                    Problem::new(format!(
                        "instance {name} routes `{domain}`, which is not a DNS name: {why}"
                    )),
                    at(&domain),
                ));
                continue;
            }
            let named_at = at(&domain);
            let entry = served.entry(domain).or_default();
            entry.0.insert(host.clone());
            if !entry.1.contains(&name) {
                entry.1.push(name.clone());
            }
            entry.2 = named_at.or(entry.2.take());
        }
    }
    let mut needs = Vec::new();
    for (domain, (hosts, instances, at)) in served {
        let hosts: Vec<String> = hosts.into_iter().collect();
        if hosts.len() > 1 && !any_router.get(&domain).copied().unwrap_or(true) {
            problems.push(located(split_domain(&domain, &hosts, &instances), at));
            continue;
        }
        match answer(site, &domain, &hosts) {
            Ok(answer) => needs.push(Need {
                domain,
                hosts,
                instances,
                answer,
                at,
            }),
            Err(problem) => problems.push(located(problem, at)),
        }
    }
    problems.into_result(needs)
}

/// A domain routed (by path) to instances on several hosts, which DNS
/// sends each request to one of: the other hosts' routers must serve it
/// too. Only routers that read etcd know every host's routes, and only
/// without TLS can each serve them: a certificate's files are copied to
/// the applying host's router alone, and an ACME certificate is ordered by
/// the router of each host that applied one of the domain's routes (its
/// own certificate resolver), while the CA checks the HTTP-01 challenge on
/// one of the domain's addresses, so every other such router's order
/// fails.
fn split_domain(domain: &str, hosts: &[String], instances: &[String]) -> Problem {
    Problem::new(format!(
        "{domain} is routed to instances on several hosts ({}: {}), and DNS sends each request to one of them, whose router would answer 404 or fail its certificate",
        hosts.join(", "),
        instances.join(", ")
    ))
    .help("route the domain's paths to instances on one host; or, with routes in etcd (every host's router reads them), give its routes `tls: off`: each host's router orders the ACME certificate of its own routes and only the one DNS points at passes the CA's check, and certificate files are copied to one host")
}

/// `problem` at `at`, when known (a site made up in a test has no text).
fn located(problem: Problem, at: Option<Location>) -> Problem {
    match at {
        Some(at) => problem.at(&at).label("routed here"),
        None => problem,
    }
}

fn answer(site: &SiteView, domain: &str, hosts: &[String]) -> Result<Answer, Problem> {
    let mut addresses = BTreeSet::new();
    let mut aliases = Vec::new();
    for name in hosts {
        let Some(host) = site.host(name) else {
            return Err(Problem::new(format!(
                "{domain} is served by host `{name}`, which the site does not list"
            )));
        };
        match &host.cname {
            Some(alias) => aliases.push((name, alias)),
            None if host.addresses.is_empty() => {
                return Err(Problem::new(format!(
                    "{domain} is served by host `{name}`, which has no public address"
                ))
                .help("give the host its address (or a DNS name to alias) in the site file"));
            }
            None => addresses.extend(host.addresses.iter().copied()),
        }
    }
    match (aliases.as_slice(), hosts.len()) {
        ([], _) => Ok(Answer::Addresses(addresses)),
        ([(_, alias)], 1) => {
            let alias = alias.trim_end_matches('.').to_ascii_lowercase();
            check_name(&alias).map_err(|why| {
                Problem::new(format!(
                    "host `{}` is known as `{alias}`, which is not a DNS name: {why}",
                    hosts[0]
                ))
            })?;
            Ok(Answer::Alias(alias))
        }
        _ => Err(Problem::new(format!(
            "{domain} is served by hosts {}, and a domain that is a CNAME can point at one host only",
            hosts.join(", ")
        ))
        .help("give these hosts public addresses instead of DNS names, or serve the domain from one of them")),
    }
}

/// Host names as DNS has them (RFC 1123 labels, or `_` for service
/// names): everything else would break a zone file's line or be refused by
/// a provider.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("a name has 1 to 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label has 1 to 63 characters".into());
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("`{c}` is not a letter, digit, `-` or `_`"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label does not start or end with `-`".into());
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("its last label is all digits: it is an address, not a domain".into());
    }
    Ok(())
}

/// A record set in one zone: `name` is relative to the zone's origin
/// (empty at the apex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSet {
    pub name: String,
    pub kind: Kind,
    /// Sorted, at least one; a CNAME has exactly one.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    A,
    Aaaa,
    Cname,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::A => "A",
            Kind::Aaaa => "AAAA",
            Kind::Cname => "CNAME",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// No trailing dot.
    pub origin: String,
    pub records: Vec<RecordSet>,
}

/// The needs cut into zones. Each domain goes to the longest of `zones`
/// it is in (or is); with no `zones`, to its last two labels
/// (`blog.example.com` → `example.com`), which is wrong under a public
/// suffix of two labels (`example.co.uk`): name the zone there. Every
/// named zone is in the result, one without records too. Domains in none
/// of the named zones are returned apart, for the caller to report.
pub fn zones(needs: &[Need], zones: &[String]) -> Result<(Vec<Zone>, Vec<String>), Problems> {
    let mut problems = Problems::default();
    let named: Vec<String> = zones
        .iter()
        .map(|z| z.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    for zone in &named {
        if let Err(why) = check_name(zone) {
            problems.push(Problem::new(format!(
                "zone `{zone}` is not a DNS name: {why}"
            )));
        }
    }
    // Every zone named is printed, one no route needs a record in too: its
    // records are all gone (a domain removed), which its DNS must hear of.
    let mut by_zone: BTreeMap<String, Vec<RecordSet>> = named
        .iter()
        .map(|zone| (zone.clone(), Vec::new()))
        .collect();
    let mut outside = Vec::new();
    for need in needs {
        let origin = if named.is_empty() {
            let labels: Vec<&str> = need.domain.split('.').collect();
            labels[labels.len().saturating_sub(2)..].join(".")
        } else {
            match named
                .iter()
                .filter(|z| in_zone(&need.domain, z))
                .max_by_key(|z| z.len())
            {
                Some(zone) => zone.clone(),
                None => {
                    outside.push(need.domain.clone());
                    continue;
                }
            }
        };
        let name = relative(&need.domain, &origin);
        let sets = by_zone.entry(origin.clone()).or_default();
        match &need.answer {
            Answer::Alias(_) if name.is_empty() => problems.push(located(
                Problem::new(format!(
                    "{} is the apex of zone {origin}, which cannot be a CNAME (it holds the zone's SOA and NS records)",
                    need.domain
                ))
                .help("give the serving host a public address, or route a name below the apex"),
                need.at.clone(),
            )),
            Answer::Alias(alias) => sets.push(RecordSet {
                name,
                kind: Kind::Cname,
                values: vec![format!("{alias}.")],
            }),
            Answer::Addresses(addresses) => {
                for (kind, is_v4) in [(Kind::A, true), (Kind::Aaaa, false)] {
                    let values: Vec<String> = addresses
                        .iter()
                        .filter(|a| a.is_ipv4() == is_v4)
                        .map(IpAddr::to_string)
                        .collect();
                    if !values.is_empty() {
                        sets.push(RecordSet {
                            name: name.clone(),
                            kind,
                            values,
                        });
                    }
                }
            }
        }
    }
    let zones = by_zone
        .into_iter()
        .map(|(origin, mut records)| {
            records.sort_by(|a, b| {
                natural_key(&a.name)
                    .cmp(&natural_key(&b.name))
                    .then(a.kind.cmp(&b.kind))
            });
            Zone { origin, records }
        })
        .collect();
    problems.into_result((zones, outside))
}

fn in_zone(domain: &str, zone: &str) -> bool {
    domain == zone
        || domain
            .strip_suffix(zone)
            .is_some_and(|rest| rest.ends_with('.'))
}

fn relative(domain: &str, origin: &str) -> String {
    domain
        .strip_suffix(origin)
        .unwrap_or(domain)
        .trim_end_matches('.')
        .to_string()
}

/// One piece of a name for natural ordering: text, or a run of digits
/// compared as a number.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Piece<'a> {
    Text(&'a str),
    Number(u128, &'a str),
}

/// The order octoDNS checks its YAML keys in (Python's natsort): digit
/// runs compare as numbers (`app2` before `app10`), text as text. A name
/// that starts with a digit gets an empty text piece first, as natsort does,
/// so that pieces at the same place are always of the same kind.
fn natural_key(name: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = name;
    if rest.starts_with(|c: char| c.is_ascii_digit()) {
        pieces.push(Piece::Text(""));
    }
    while !rest.is_empty() {
        let digits = rest.starts_with(|c: char| c.is_ascii_digit());
        let end = rest
            .find(|c: char| c.is_ascii_digit() != digits)
            .unwrap_or(rest.len());
        let (piece, tail) = rest.split_at(end);
        pieces.push(if digits {
            // Digit runs longer than u128 holds compare by their text.
            Piece::Number(piece.parse().unwrap_or(u128::MAX), piece)
        } else {
            Piece::Text(piece)
        });
        rest = tail;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::route::{Backend, Route, Tls};
    use crate::site_view::{App, Deployed, Host};

    /// A route of `domains` to service web's port 80.
    pub(crate) fn route(domains: &[&str]) -> Route {
        Route {
            name: "blog-web".into(),
            hosts: domains.iter().map(|d| d.to_string()).collect(),
            aliases: Vec::new(),
            path: None,
            service: "web".into(),
            port: 80,
            backend: Backend {
                address: "127.0.0.1".into(),
                port: 8080,
            },
            tls: Tls::Acme,
            https_redirect: true,
            basic_auth: None,
            health_path: None,
            at: None,
        }
    }

    pub(crate) fn site() -> SiteView {
        let host = |name: &str, addresses: &[&str], cname: Option<&str>| Host {
            name: name.into(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            cname: cname.map(Into::into),
        };
        let deployed = |instance: &str, host: &str, domains: &[&str]| Deployed {
            instance: crate::model::Instance {
                app: "blog".into(),
                instance: instance.into(),
                services: Vec::new(),
                discovery: None,
                fleet: Default::default(),
                secrets: Vec::new(),
                backup: None,
                routes: vec![route(domains)],
                router: None,
            },
            host: Some(host.into()),
            names_at: Vec::new(),
        };
        let mut site = SiteView {
            source: "site.yaml".into(),
            hosts: vec![
                host("web1", &["203.0.113.10", "2001:db8::10"], None),
                host("web2", &["203.0.113.11"], None),
                host("edge", &[], Some("edge.provider.example.")),
            ],
            apps: vec![App {
                name: "blog".into(),
                instances: vec![
                    deployed("live", "web1", &["Example.com", "www.example.com"]),
                    deployed("mirror", "web2", &["example.com"]),
                    deployed("staging", "edge", &["staging.example.com"]),
                ],
            }],
        };
        // example.com, on two hosts, is routed by every host's router.
        for deployed in &mut site.apps[0].instances[..2] {
            across_hosts(&mut deployed.instance);
        }
        site
    }

    /// `instance`'s routes in etcd, where every host's router reads them,
    /// with no certificate to get.
    fn across_hosts(instance: &mut crate::model::Instance) {
        let endpoints = vec!["http://127.0.0.1:2379".to_string()];
        instance.router = Some(crate::model::route::Router {
            image: "traefik:v3.7".into(),
            http_port: 80,
            https_port: 443,
            address: None,
            directory: "/var/lib/unitgen/router".into(),
            acme: crate::model::route::Acme {
                email: None,
                ca_server: "https://ca.example/dir".into(),
                ca_certificate: None,
            },
            etcd: Some(endpoints.clone()),
            declared_at: None,
        });
        instance.discovery = Some(crate::model::Discovery {
            endpoints,
            api: crate::model::EtcdApi::V3,
            ttl_seconds: 30,
            prefix: "/services".into(),
            address: None,
            wait_seconds: 30,
        });
        for route in &mut instance.routes {
            route.tls = Tls::Off;
        }
    }

    /// blog.example.com/ on web1 and blog.example.com/beta on web2 got an
    /// A record for each host: DNS sent half the requests for / to web2,
    /// whose router (reading its own folder) answered 404.
    #[test]
    fn a_domain_split_across_hosts_needs_routers_that_know_every_route() {
        let mut files = site();
        files.apps[0].instances[1].instance.router = None;
        let mut acme = site();
        acme.apps[0].instances[1].instance.routes[0].tls = Tls::Acme;
        for site in [files, acme] {
            let err = needs(&site).unwrap_err();
            assert!(
                err.0[0].message.contains("several hosts (web1, web2"),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_domain_served_by_two_hosts_routing_it_gets_both_addresses() {
        let needs = needs(&site()).unwrap();
        let apex = needs.iter().find(|n| n.domain == "example.com").unwrap();
        assert_eq!(apex.hosts, ["web1", "web2"]);
        assert_eq!(apex.instances, ["blog/live", "blog/mirror"]);
        let Answer::Addresses(addresses) = &apex.answer else {
            panic!("{apex:?}")
        };
        let addresses: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
        assert_eq!(addresses, ["203.0.113.10", "203.0.113.11", "2001:db8::10"]);
    }

    /// A route for `1.2.3.4` (routes match the Host header, which may be
    /// an address) was given the record `1.2 300 IN A …` in a zone `3.4`.
    #[test]
    fn a_route_for_an_address_needs_no_record() {
        let mut site = site();
        site.apps[0].instances[0].instance.routes = vec![route(&["203.0.113.99"])];
        let needs = needs(&site).unwrap();
        let domains: Vec<&str> = needs.iter().map(|n| n.domain.as_str()).collect();
        assert_eq!(domains, ["example.com", "staging.example.com"]);
        assert!(check_name("a.example.123").is_err());
    }

    #[test]
    fn a_host_known_by_name_gets_a_cname() {
        let needs = needs(&site()).unwrap();
        let staging = needs
            .iter()
            .find(|n| n.domain.starts_with("staging"))
            .unwrap();
        assert_eq!(
            staging.answer,
            Answer::Alias("edge.provider.example".into())
        );
    }

    #[test]
    fn records_are_relative_to_the_zone_and_sorted() {
        let (zones, outside) = zones(&needs(&site()).unwrap(), &[]).unwrap();
        assert!(outside.is_empty());
        assert_eq!(zones.len(), 1);
        let lines: Vec<String> = zones[0]
            .records
            .iter()
            .map(|r| format!("{} {} {}", r.name, r.kind.as_str(), r.values.join(",")))
            .collect();
        assert_eq!(
            lines,
            [
                " A 203.0.113.10,203.0.113.11",
                " AAAA 2001:db8::10",
                "staging CNAME edge.provider.example.",
                "www A 203.0.113.10",
                "www AAAA 2001:db8::10",
            ]
        );
    }

    #[test]
    fn a_cname_at_the_apex_is_refused() {
        let err = zones(&needs(&site()).unwrap(), &["staging.example.com".into()]).unwrap_err();
        assert!(err.0[0].message.contains("apex"), "{err:?}");
    }

    #[test]
    fn domains_outside_the_named_zones_are_set_apart() {
        let (zones, outside) =
            zones(&needs(&site()).unwrap(), &["www.example.com".into()]).unwrap();
        assert_eq!(zones.len(), 1);
        assert_eq!(zones[0].origin, "www.example.com");
        assert_eq!(outside, ["example.com", "staging.example.com"]);
    }

    #[test]
    fn two_cname_hosts_for_one_domain_are_refused() {
        let mut site = site();
        site.hosts[1].cname = Some("other.provider.example".into());
        let err = needs(&site).unwrap_err();
        assert!(err.0[0].message.contains("one host only"), "{err:?}");
    }

    #[test]
    fn names_that_would_break_a_zone_file_are_refused() {
        let mut site = site();
        site.apps[0].instances[0].instance.routes[0].aliases =
            vec!["evil.example.com. IN A 1.2.3.4".into()];
        let err = needs(&site).unwrap_err();
        assert!(err.0[0].message.contains("not a DNS name"), "{err:?}");
    }

    #[test]
    fn routes_without_a_host_are_an_error() {
        let mut site = site();
        site.apps[0].instances[0].host = None;
        let err = needs(&site).unwrap_err();
        assert!(err.0[0].message.contains("no named host"), "{err:?}");
    }

    #[test]
    fn natural_order_is_natsorts() {
        let mut names = vec!["app10", "app2", "", "b", "1x", "a"];
        names.sort_by(|a, b| natural_key(a).cmp(&natural_key(b)));
        assert_eq!(names, ["", "1x", "a", "app2", "app10", "b"]);
    }
}
