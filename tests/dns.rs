//! `unitgen dns` output read by the DNS tools it is for: BIND's
//! `named-checkzone` and octoDNS's `octodns-validate`; and `dns --check`
//! against a real resolver (dnsmasq on loopback) that answers right for
//! some domains and wrong for others.

#[path = "support/lib.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::tools;
use unitgen::compile::Overrides;
use unitgen::dns::{self, bind, check, octodns};
use unitgen::site::Site;
use unitgen::site_view::{Route, SiteView, Tls};

/// The example site (its hosts: web1 by address, web2 by a provider's
/// name), each instance routed from the domains its values name.
fn site() -> SiteView {
    let site = Site::load(Path::new("examples/site/site.yaml")).unwrap();
    let mut site = SiteView::from_site(&site, &Overrides::default()).unwrap();
    let route = |service: &str, domains: &[&str]| Route {
        domains: domains.iter().map(|d| d.to_string()).collect(),
        path: None,
        service: service.into(),
        port: 3000,
        tls: Tls::Acme,
    };
    for app in &mut site.apps {
        for deployed in &mut app.instances {
            let domains: &[&str] = match (app.name.as_str(), deployed.instance.instance.as_str()) {
                ("blog", "live") => &["blog.example.com", "www.blog.example.com", "example.com"],
                ("blog", "staging") => &[
                    "staging.blog.example.com",
                    "app2.example.com",
                    "app10.example.com",
                ],
                ("wiki", "acme") => &["wiki.acme.example"],
                ("wiki", "globex") => &["docs.globex.example"],
                other => panic!("{other:?} is not in the example"),
            };
            deployed.routes = vec![route("web", domains)];
        }
    }
    site
}

fn zones() -> Vec<dns::Zone> {
    dns::zones(&dns::needs(&site()).unwrap(), &[]).unwrap().0
}

#[test]
fn bind_lines_pass_named_checkzone() {
    let dir = support::tempdir("dns-bind");
    let zones = zones();
    assert_eq!(zones.len(), 3);
    for zone in &zones {
        // The lines go inside a zone file that has its own SOA and NS.
        let file = dir.path().join(bind::file_name(zone));
        let text = format!(
            "$TTL 3600\n@ IN SOA ns1.{o}. hostmaster.{o}. 1 7200 3600 1209600 300\n@ IN NS ns1.{o}.\nns1 IN A 192.0.2.53\n{}",
            bind::zone(zone, 300),
            o = zone.origin
        );
        std::fs::write(&file, &text).unwrap();
        let out = Command::new(tools::system("named-checkzone"))
            .args(["-k", "fail", "-n", "fail", "-i", "full"])
            .arg(&zone.origin)
            .arg(&file)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains("OK"),
            "{text}\n{said}"
        );
    }
    // What the zone file then serves, as BIND itself reads it back.
    let acme = zones.iter().find(|z| z.origin == "example.com").unwrap();
    let file = dir.path().join(bind::file_name(acme));
    let out = Command::new(tools::system("named-checkzone"))
        .args(["-D", "-o", "-"])
        .arg(&acme.origin)
        .arg(&file)
        .output()
        .unwrap();
    let canonical = String::from_utf8_lossy(&out.stdout);
    for line in [
        "example.com. 300 IN A 203.0.113.10",
        "www.blog.example.com. 300 IN A 203.0.113.10",
    ] {
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            canonical.lines().any(|l| words(l) == words(line)),
            "{line:?} not in\n{canonical}"
        );
    }
}

#[test]
fn octodns_files_pass_octodns_validate() {
    let dir = support::tempdir("dns-octodns");
    let zones_dir = dir.path().join("zones");
    std::fs::create_dir(&zones_dir).unwrap();
    let zones = zones();
    let mut config = format!(
        "providers:\n  config:\n    class: octodns.provider.yaml.YamlProvider\n    directory: {}\n  dump:\n    class: octodns.provider.yaml.YamlProvider\n    directory: {}\nzones:\n",
        zones_dir.display(),
        dir.path().join("dump").display()
    );
    for zone in &zones {
        std::fs::write(
            zones_dir.join(octodns::file_name(zone)),
            octodns::zone(zone, 300),
        )
        .unwrap();
        config.push_str(&format!(
            "  {}.:\n    sources: [config]\n    targets: [dump]\n",
            zone.origin
        ));
    }
    let config_file = dir.path().join("config.yaml");
    std::fs::write(&config_file, config).unwrap();
    let out = Command::new(tools::path("octodns/bin/octodns-validate"))
        .arg("--config-file")
        .arg(&config_file)
        .output()
        .unwrap();
    let files: Vec<String> = zones.iter().map(|z| octodns::zone(z, 300)).collect();
    assert!(
        out.status.success(),
        "{}\n{}",
        files.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    // octoDNS read the records, not an empty zone: a dry-run sync plans
    // to create each of them in the target.
    let out = Command::new(tools::path("octodns/bin/octodns-sync"))
        .arg("--config-file")
        .arg(&config_file)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    for record in ["app10.example.com.", "docs.globex.example."] {
        assert!(
            said.lines()
                .any(|l| l.contains("Create <") && l.contains(record)),
            "{record} not planned:\n{said}"
        );
    }
}

/// dnsmasq on a loopback port, answering only from its command line.
struct Resolver {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dnsmasq(records: &[&str]) -> Resolver {
    let port = support::net::free_port();
    let child = Command::new(tools::system("dnsmasq"))
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--user=root",
            "--pid-file",
        ])
        .arg(format!("--port={port}"))
        .args(records)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let resolver = Resolver { child, addr };
    // Ready once it answers anything.
    let up = support::wait_for(Duration::from_secs(10), || {
        dns::resolve::query(addr, "ready.test", dns::Kind::A, Duration::from_millis(200)).ok()
    });
    assert!(up.is_some(), "dnsmasq did not answer on {addr}");
    resolver
}

#[test]
fn check_reports_the_domains_that_do_not_point_at_their_host() {
    let resolver = dnsmasq(&[
        // Authoritative for these: a name or type it has no record for is
        // NXDOMAIN or empty, not forwarded (there is nowhere to forward to).
        "--local=/com/",
        "--local=/example/",
        "--local=/net/",
        // Right: web1's address.
        "--host-record=blog.example.com,203.0.113.10",
        "--host-record=app2.example.com,203.0.113.10",
        "--host-record=app10.example.com,203.0.113.10",
        // Wrong: an old address.
        "--host-record=www.blog.example.com,198.51.100.7",
        // Wrong: an IPv6 address web1 does not have.
        "--host-record=example.com,203.0.113.10,2001:db8::99",
        // staging.blog.example.com: not there at all.
        // Right: a CNAME to web2's name.
        "--host-record=lb-7.hosting.example.net,203.0.113.20",
        "--cname=wiki.acme.example,lb-7.hosting.example.net",
        // Wrong: a CNAME to another name.
        "--host-record=old-lb.hosting.example.net,192.0.2.70",
        "--cname=docs.globex.example,old-lb.hosting.example.net",
    ]);
    let needs = dns::needs(&site()).unwrap();
    let wrong = check::check(&needs, resolver.addr, Duration::from_secs(2));
    let found: Vec<(&str, &str)> = wrong
        .iter()
        .map(|w| (w.domain.as_str(), w.why.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "docs.globex.example",
                "is a CNAME to old-lb.hosting.example.net, not to lb-7.hosting.example.net (web2)"
            ),
            (
                "example.com",
                "resolves to 203.0.113.10, 2001:db8::99, not to 203.0.113.10 (web1)"
            ),
            ("staging.blog.example.com", "does not exist (NXDOMAIN)"),
            (
                "www.blog.example.com",
                "resolves to 198.51.100.7, not to 203.0.113.10 (web1)"
            ),
        ]
    );
}
