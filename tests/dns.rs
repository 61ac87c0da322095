//! `unitgen dns` on the example site, read by the tools its output is for:
//! BIND's `named-checkzone` and octoDNS's `octodns-validate`; and `dns
//! --check` against a real resolver (dnsmasq on loopback) that answers
//! right for some domains and wrong for others.

#[path = "support/lib.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{tools, unitgen};

const SITE: &str = "examples/site/site.yaml";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `unitgen dns -f SITE --format FORMAT --out DIR`: the files, by name.
fn zone_files(format: &str, dir: &Path) -> Vec<(String, String)> {
    let out = unitgen(&[
        "dns",
        "-f",
        SITE,
        "--format",
        format,
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    support::files_in(dir)
}

#[test]
fn bind_lines_pass_named_checkzone() {
    let dir = support::tempdir("dns-bind");
    let files = zone_files("bind", &dir.path().join("out"));
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "acme.example.zone",
            "example.com.zone",
            "globex.example.zone"
        ]
    );
    // What stdout prints is what --out writes.
    let out = unitgen(&["dns", "-f", SITE]);
    let texts: Vec<&str> = files.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(text(&out.stdout), texts.join("\n"));
    for (name, lines) in &files {
        let origin = name.trim_end_matches(".zone");
        // The lines go inside a zone file that has its own SOA and NS.
        let zone = dir.path().join(format!("db.{origin}"));
        let whole = format!(
            "$TTL 3600\n@ IN SOA ns1.{origin}. hostmaster.{origin}. 1 7200 3600 1209600 300\n@ IN NS ns1.{origin}.\nns1 IN A 192.0.2.53\n{lines}"
        );
        std::fs::write(&zone, &whole).unwrap();
        let out = Command::new(tools::system("named-checkzone"))
            .args(["-k", "fail", "-n", "fail", "-i", "full", "-D", "-o", "-"])
            .arg(origin)
            .arg(&zone)
            .output()
            .unwrap();
        let said = text(&out.stdout);
        assert!(out.status.success(), "{whole}\n{said}{}", text(&out.stderr));
        // What BIND serves from it, as it reads it back.
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let served: Vec<String> = said.lines().map(words).collect();
        let expected: &[&str] = match origin {
            "example.com" => &[
                "blog.example.com. 300 IN A 203.0.113.10",
                "staging.blog.example.com. 300 IN A 203.0.113.10",
                "www.blog.example.com. 300 IN A 203.0.113.10",
            ],
            "acme.example" => &["wiki.acme.example. 300 IN CNAME lb-7.hosting.example.net."],
            _ => &["docs.globex.example. 300 IN CNAME lb-7.hosting.example.net."],
        };
        for record in expected {
            assert!(
                served.iter().any(|l| l == record),
                "{record:?} not in\n{said}"
            );
        }
    }
}

#[test]
fn octodns_files_pass_octodns_validate() {
    let dir = support::tempdir("dns-octodns");
    let zones_dir = dir.path().join("zones");
    let files = zone_files("octodns", &zones_dir);
    let mut config = format!(
        "providers:\n  config:\n    class: octodns.provider.yaml.YamlProvider\n    directory: {}\n  dump:\n    class: octodns.provider.yaml.YamlProvider\n    directory: {}\nzones:\n",
        zones_dir.display(),
        dir.path().join("dump").display()
    );
    for (name, _) in &files {
        let zone = name.trim_end_matches("yaml");
        config.push_str(&format!(
            "  {zone}:\n    sources: [config]\n    targets: [dump]\n"
        ));
    }
    let config_file = dir.path().join("config.yaml");
    std::fs::write(&config_file, config).unwrap();
    let all: Vec<String> = files.iter().map(|(n, t)| format!("{n}:\n{t}")).collect();
    let out = Command::new(tools::path("octodns/bin/octodns-validate"))
        .arg("--config-file")
        .arg(&config_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        all.join("\n"),
        text(&out.stderr)
    );
    // octoDNS read the records, not empty zones: a dry-run sync plans to
    // create each of them in the target.
    let out = Command::new(tools::path("octodns/bin/octodns-sync"))
        .arg("--config-file")
        .arg(&config_file)
        .output()
        .unwrap();
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{said}");
    for record in [
        "blog.example.com.",
        "www.blog.example.com.",
        "staging.blog.example.com.",
        "wiki.acme.example.",
        "docs.globex.example.",
    ] {
        assert!(
            said.lines()
                .any(|l| l.contains("Create <") && l.contains(&format!(" {record},"))),
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
            // Authoritative for these: a name or type it has no record for
            // is NXDOMAIN or empty, not forwarded (there is nowhere to).
            "--local=/com/",
            "--local=/example/",
            "--local=/net/",
        ])
        .arg(format!("--port={port}"))
        .args(records)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let resolver = Resolver { child, addr };
    let up = support::wait_for(Duration::from_secs(30), || {
        unitgen::dns::resolve::query(
            addr,
            "ready.example",
            unitgen::dns::Kind::A,
            Duration::from_millis(200),
        )
        .ok()
    });
    assert!(up.is_some(), "dnsmasq did not answer on {addr}");
    resolver
}

#[test]
fn check_reports_the_domains_that_do_not_point_at_their_host() {
    let wrong = dnsmasq(&[
        // Right: web1's address.
        "--host-record=blog.example.com,203.0.113.10",
        // Wrong: an old address, and an IPv6 address web1 does not have.
        "--host-record=www.blog.example.com,198.51.100.7,2001:db8::99",
        // staging.blog.example.com: not there at all.
        // Right: a CNAME to web2's name.
        "--host-record=lb-7.hosting.example.net,203.0.113.20",
        "--cname=wiki.acme.example,lb-7.hosting.example.net",
        // Wrong: a CNAME to another name.
        "--host-record=old-lb.hosting.example.net,192.0.2.70",
        "--cname=docs.globex.example,old-lb.hosting.example.net",
    ]);
    let resolver = wrong.addr.to_string();
    let out = unitgen(&[
        "dns",
        "-f",
        SITE,
        "--check",
        "--resolver",
        &resolver,
        "--timeout",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "ok     blog.example.com (web1)\n\
         wrong  docs.globex.example is a CNAME to old-lb.hosting.example.net, not to lb-7.hosting.example.net (web2)\n\
         wrong  staging.blog.example.com does not exist (NXDOMAIN)\n\
         ok     wiki.acme.example (web2)\n\
         wrong  www.blog.example.com resolves to 198.51.100.7, 2001:db8::99, not to 203.0.113.10 (web1)\n"
    );
    let said = text(&out.stderr)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        said.contains("3 of 5 domains do not point at their host"),
        "{said}"
    );

    // Once DNS has the records `unitgen dns` printed, the check passes.
    let right = dnsmasq(&[
        "--host-record=blog.example.com,203.0.113.10",
        "--host-record=www.blog.example.com,203.0.113.10",
        "--host-record=staging.blog.example.com,203.0.113.10",
        "--host-record=lb-7.hosting.example.net,203.0.113.20",
        "--cname=wiki.acme.example,lb-7.hosting.example.net",
        "--cname=docs.globex.example,lb-7.hosting.example.net",
    ]);
    let resolver = right.addr.to_string();
    let out = unitgen(&["dns", "-f", SITE, "--check", "--resolver", &resolver]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("5 domains point at their hosts"));
}

/// `plan` of a routed instance of a site warns about its domains that do
/// not point at its host (and only its own), without failing; a single
/// app's file (no hosts) is not checked.
#[test]
fn plan_warns_about_domains_that_do_not_point_at_the_host() {
    let dns = dnsmasq(&[
        "--host-record=blog.example.com,203.0.113.10",
        "--host-record=www.blog.example.com,198.51.100.7",
    ]);
    let dir = support::tempdir("dns-plan");
    let unit_dir = dir.path().join("units");
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&unit_dir).unwrap();
    let plan = |file: &str, instance: &str| {
        Command::new(env!("CARGO_BIN_EXE_unitgen"))
            .args(["plan", instance, "-f", file, "--unit-dir"])
            .arg(&unit_dir)
            .arg("--state-dir")
            .arg(&state_dir)
            .env("NO_COLOR", "1")
            .env("UNITGEN_DNS_RESOLVER", dns.addr.to_string())
            .output()
            .unwrap()
    };
    // Nothing installed: the plan differs (2), whatever DNS says.
    let out = plan(SITE, "blog/live");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let warnings: Vec<String> = text(&out.stderr)
        .lines()
        .filter(|l| l.contains("dns"))
        .map(String::from)
        .collect();
    assert_eq!(
        warnings,
        [format!(
            "warning: dns: www.blog.example.com resolves to 198.51.100.7, not to 203.0.113.10 (web1) (asked {}; `unitgen dns` prints the records)",
            dns.addr
        )]
    );
    // A single app's file names no host: nothing to check, nothing said.
    let single = dir.path().join("unitgen.yaml");
    std::fs::write(
        &single,
        "app: blog\nservices:\n  web:\n    image: unitgen-test/busybox:1\n    ports: [\"127.0.0.1:18080:80\"]\ninstances:\n  live:\n    routes: [{hosts: blog.example.com, service: web, port: 80}]\n",
    )
    .unwrap();
    let out = plan(single.to_str().unwrap(), "live");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("dns"), "{}", text(&out.stderr));
}

/// A domain removed from the site leaves DNS: `--out` into the folder an
/// earlier run wrote gives the zone of the removed domain (its last one) a
/// file with no record, rather than leaving its old file, which octoDNS
/// would keep syncing and a zone file would keep `$INCLUDE`-ing. Before,
/// `dns --out` wrote only the zones that still had records, and said "no
/// record is needed" (writing nothing) once no domain was left.
#[test]
fn a_removed_domain_leaves_the_files_out_writes() {
    let dir = support::tempdir("dns-removed");
    for file in ["blog.yaml", "wiki.yaml"] {
        std::fs::copy(format!("examples/site/{file}"), dir.path().join(file)).unwrap();
    }
    let site = dir.path().join("site.yaml");
    let full = std::fs::read_to_string(SITE).unwrap();
    let globex =
        "        routes:\n          - {hosts: docs.globex.example, service: outline, port: 3000}\n";
    assert!(full.contains(globex));
    let (octo, bind) = (dir.path().join("zones"), dir.path().join("bind"));
    let write = |yaml: &str| {
        std::fs::write(&site, yaml).unwrap();
        for (format, out) in [("octodns", &octo), ("bind", &bind)] {
            let args = ["dns", "-f", site.to_str().unwrap(), "--format", format];
            let done = unitgen(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
            assert!(done.status.success(), "{}", text(&done.stderr));
        }
    };

    // octoDNS syncs the folder into a YAML "DNS host" (its dump folder).
    let dns_host = dir.path().join("dns-host");
    let config = dir.path().join("config.yaml");
    let mut yaml = format!(
        "providers:\n  config:\n    class: octodns.provider.yaml.YamlProvider\n    directory: {}\n  dns_host:\n    class: octodns.provider.yaml.YamlProvider\n    directory: {}\nzones:\n",
        octo.display(),
        dns_host.display()
    );
    for zone in ["acme.example.", "example.com.", "globex.example."] {
        yaml.push_str(&format!(
            "  {zone}:\n    sources: [config]\n    targets: [dns_host]\n"
        ));
    }
    std::fs::write(&config, yaml).unwrap();
    let sync = || {
        for tool in ["octodns-validate", "octodns-sync"] {
            let out = Command::new(tools::path(&format!("octodns/bin/{tool}")))
                .arg("--config-file")
                .arg(&config)
                .args((tool == "octodns-sync").then_some("--doit"))
                .output()
                .unwrap();
            assert!(out.status.success(), "{tool}: {}", text(&out.stderr));
        }
        std::fs::read_to_string(dns_host.join("globex.example.yaml")).unwrap_or_default()
    };
    write(&full);
    assert!(sync().contains("docs"), "the record was never synced");

    // globex's only domain goes: its zone has no record any more.
    write(&full.replace(globex, ""));
    let served = sync();
    assert!(!served.contains("docs"), "{served}");
    let lines = std::fs::read_to_string(bind.join("globex.example.zone")).unwrap();
    assert!(!lines.contains("docs"), "{lines}");
    // The zone that $INCLUDEs the file still loads.
    let zone = dir.path().join("db.globex.example");
    std::fs::write(
        &zone,
        format!(
            "$TTL 3600\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.53\n$INCLUDE {}\n",
            bind.join("globex.example.zone").display()
        ),
    )
    .unwrap();
    let out = Command::new(tools::system("named-checkzone"))
        .args(["-k", "fail", "-n", "fail", "globex.example"])
        .arg(&zone)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));

    // Every domain gone: none of the files keeps a record.
    let mut none = full.replace(globex, "");
    for routes in [
        "          - hosts: blog.example.com\n            aliases: [www.blog.example.com]\n            service: web\n            port: 8000\n",
        "          - {hosts: staging.blog.example.com, service: web, port: 8000}\n",
        "          - {hosts: wiki.acme.example, service: outline, port: 3000}\n",
    ] {
        assert!(none.contains(routes));
        none = none.replace(&format!("        routes:\n{routes}"), "");
    }
    assert!(!none.contains("routes:"), "{none}");
    write(&none);
    let served = sync();
    assert!(!served.contains("docs"), "{served}");
    for (name, lines) in support::files_in(&bind) {
        assert!(!lines.contains(" IN "), "{name}:\n{lines}");
    }
}

/// An app taken out of the site file keeps running where it is installed
/// (plan and apply name it, left alone), but `dns --out` rewrote its
/// zone without its records and said nothing: octoDNS then deleted them
/// at the DNS host, and the still running instance lost its names
/// unannounced. `--out` now says each name whose records it drops.
#[test]
fn an_app_taken_out_of_the_site_is_told_whose_records_go() {
    let dir = support::tempdir("dns-app-gone");
    for file in ["blog.yaml", "wiki.yaml"] {
        std::fs::copy(format!("examples/site/{file}"), dir.path().join(file)).unwrap();
    }
    let site = dir.path().join("site.yaml");
    let full = std::fs::read_to_string(SITE).unwrap();
    let (blog, wiki) = (
        full.find("  blog:\n").unwrap(),
        full.find("  wiki:\n").unwrap(),
    );
    let without_blog = format!("{}{}", &full[..blog], &full[wiki..]);
    for format in ["bind", "octodns"] {
        let out = dir.path().join(format);
        let dns = |yaml: &str| {
            std::fs::write(&site, yaml).unwrap();
            let args = [
                "dns",
                "-f",
                site.to_str().unwrap(),
                "--format",
                format,
                "--out",
            ];
            let done = unitgen(&[&args[..], &[out.to_str().unwrap()]].concat());
            assert!(done.status.success(), "{}", text(&done.stderr));
            text(&done.stderr)
        };
        assert_eq!(dns(&full), "", "{format}");
        let said = dns(&without_blog);
        assert!(
            said.contains(
                "zone example.com: drops the records of blog.example.com, staging.blog.example.com, \
                 www.blog.example.com: no route of "
            ) && said.contains("site.yaml names them any more"),
            "{format}: {said}"
        );
        assert!(!said.contains("acme.example"), "{format}: {said}");
        // Once gone, nothing more to say of them.
        let again = dns(&without_blog);
        assert!(!again.contains("drops"), "{format}: {again}");
    }
}

/// A TTL DNS cannot carry is refused: RFC 2181 makes one above 2^31 - 1
/// read as 0 (BIND loaded `--ttl 2147483648` records with TTL 0, saying
/// so only in a warning).
#[test]
fn a_ttl_above_what_dns_keeps_is_refused() {
    let out = unitgen(&["dns", "-f", SITE, "--ttl", "2147483648"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("2147483648 is not in 0..=2147483647"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let out = unitgen(&["dns", "-f", SITE, "--ttl", "2147483647"]);
    assert!(text(&out.stdout).contains(" 2147483647 IN A "));
}

/// Records no DNS can hold were refused with no place to look: a domain
/// sent to two hosts known by name (a name has one CNAME), and a CNAME at
/// a zone's apex (BIND refuses it beside the SOA and NS records). Each is
/// now refused at the route that names it in the site file, by `dns` with
/// nothing written, and the first by `validate` too.
#[test]
fn records_no_dns_can_hold_are_refused_where_they_are_routed() {
    let dir = support::tempdir("dns-refused");
    std::fs::write(
        dir.path().join("shop.yaml"),
        "app: shop\nservices:\n  web:\n    image: nginx:1\n    ports: [\"127.0.0.1:{{ port }}:80\"]\n",
    )
    .unwrap();
    let site = dir.path().join("site.yaml");
    let write = |routes: [&str; 2]| {
        let text = format!(
            "hosts:\n  edge1: {{cname: lb-1.provider.example}}\n  edge2: {{cname: lb-2.provider.example}}\n\
             apps:\n  shop:\n    template: shop.yaml\n    etcd: {{endpoints: \"http://127.0.0.1:2379\"}}\n    instances:\n\
             \x20     live:\n        host: edge1\n        port: 8080\n        routes:\n          - {}\n\
             \x20     staging:\n        host: edge2\n        port: 8081\n        routes:\n          - {}\n",
            routes[0], routes[1]
        );
        std::fs::write(&site, text).unwrap();
    };
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-f", site.to_str().unwrap()]);
        let out = unitgen(&all);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        text(&out.stderr)
    };
    let out_dir = dir.path().join("zones");
    let out = out_dir.to_str().unwrap();

    // (Line 13 is live's route, 18 staging's.) Every host's router serves
    // both routes (in etcd, no certificate to get), and yet a name has
    // one CNAME.
    write([
        "{hosts: shop.example.com, service: web, port: 80, tls: off}",
        "{hosts: shop.example.com, path: /beta, service: web, port: 80, tls: off}",
    ]);
    for args in [&["dns", "--out", out][..], &["validate"]] {
        let err = run(args);
        assert!(err.contains("can point at one host only"), "{err}");
        assert!(err.contains("site.yaml:18:21"), "{args:?}: {err}");
    }
    write([
        "{hosts: example.com, service: web, port: 80}",
        "{hosts: beta.example.com, service: web, port: 80}",
    ]);
    let err = run(&["dns", "--format", "octodns", "--out", out]);
    assert!(
        err.contains("example.com is the apex of zone example.com"),
        "{err}"
    );
    assert!(err.contains("site.yaml:13:21"), "{err}");
    assert!(!out_dir.exists(), "nothing written");
}

/// shop.example.com/ on web1 and shop.example.com/beta on web2 got an A
/// record for each host, and DNS sent half the requests for / to web2,
/// whose router (reading its own folder) answered 404. Refused where the
/// second host's route names it; taken when every host's router serves
/// both routes (in etcd) with no certificate to get.
#[test]
fn a_domain_split_across_hosts_is_refused_unless_every_router_serves_it() {
    let dir = support::tempdir("dns-split");
    std::fs::write(
        dir.path().join("shop.yaml"),
        "app: shop\nservices:\n  web:\n    image: nginx:1\n    ports: [\"{{ port }}:80\"]\n",
    )
    .unwrap();
    let site = dir.path().join("site.yaml");
    let write = |etcd: &str, tls: &str| {
        let text = format!(
            "hosts:\n  web1: {{address: 192.0.2.1}}\n  web2: {{address: 192.0.2.2}}\n\
             apps:\n  shop:\n    template: shop.yaml\n{etcd}    instances:\n\
             \x20     live:\n        host: web1\n        port: 8080\n        routes:\n          - {{hosts: shop.example.com, service: web, port: 80{tls}}}\n\
             \x20     staging:\n        host: web2\n        port: 8081\n        routes:\n          - {{hosts: shop.example.com, path: /beta, service: web, port: 80{tls}}}\n"
        );
        std::fs::write(&site, text).unwrap();
    };
    let dns = || unitgen(&["dns", "-f", site.to_str().unwrap()]);
    let etcd = "    etcd: {endpoints: \"http://127.0.0.1:2379\"}\n";
    for (etcd, tls, line) in [("", "", 17), ("", ", tls: off", 17), (etcd, "", 18)] {
        write(etcd, tls);
        let out = dns();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{etcd}{tls}: {err}");
        assert!(
            err.contains("routed to instances on several hosts (web1, web2"),
            "{err}"
        );
        assert!(
            err.contains(&format!("site.yaml:{line}:21")),
            "{etcd}{tls}: {err}"
        );
    }
    write(etcd, ", tls: off");
    let out = dns();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    for address in ["192.0.2.1", "192.0.2.2"] {
        assert!(
            said.contains(&format!("shop 300 IN A     {address}\n")),
            "{said}"
        );
    }
}

/// Found in hostile values round 6: `dns --out DIR` took the zone of every
/// file in DIR whose first line was its header, by the file's name, and
/// wrote that name into the zone's lines: a file `x.example $INCLUDE
/// secret.zone` (a name no zone has, put there by anyone who can
/// write the folder) became `$ORIGIN x.example $INCLUDE secret.`, a
/// directive BIND obeys. A file whose name is no DNS name is left alone.
#[test]
fn a_file_in_the_out_folder_named_like_zone_syntax_is_left_alone() {
    let dir = support::tempdir("dns-hostile-name");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    for (format, file, header) in [
        (
            "bind",
            "x.example $INCLUDE secret.zone",
            "; the records unitgen's routes need in zone x.example $INCLUDE secret",
        ),
        (
            "octodns",
            "x.example': {evil.yaml",
            "# the records unitgen's routes need in zone x.example': {evil.",
        ),
    ] {
        let path = out.join(file);
        std::fs::write(&path, format!("{header}\nkept\n")).unwrap();
        let done = unitgen(&[
            "dns",
            "-f",
            SITE,
            "--format",
            format,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(done.status.success(), "{}", text(&done.stderr));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{header}\nkept\n"),
            "{format}: the file was rewritten"
        );
        for (name, written) in support::files_in(&out)
            .into_iter()
            .filter(|(n, _)| n != file)
        {
            assert!(
                !written.contains("$INCLUDE") && !written.contains("evil"),
                "{name}: {written}"
            );
        }
        std::fs::remove_file(&path).unwrap();
    }
}
