//! Any text as a site file, deploying small fixed app templates (the
//! example site's `blog.yaml` and `wiki.yaml`, and `shop.yaml` below): no
//! panic, a refusal's report shows what it quotes rather than obeys it,
//! and everything the site makes reaches its destination as meant:
//!
//! - every instance's units, for systemd, user systemd and fleet, and the
//!   host's router unit: read by systemd as intended (check.rs);
//! - the routes as Traefik's etcd keys: each key a path of plain names
//!   under `traefik/`, each value on one line;
//! - the DNS records (`unitgen dns`): each BIND line one record of the
//!   right shape, and the octoDNS file the same records;
//! - the documentation (`unitgen docs`): every table row has its header's
//!   number of cells, and the Mermaid diagram's labels stay quoted.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use unitgen::compile::Overrides;
use unitgen::render::Renderer;
use unitgen::site::Site;
use unitgen::site_view::SiteView;

mod check;

/// Its web service publishes a port for routes; both keep data a backup
/// saves (one by a dump).
const SHOP: &str = r#"app: shop
services:
  web:
    image: "busybox:1"
    command: [httpd, -f, -p, "80"]
    ports: ["127.0.0.1:8080:80"]
    volumes: ["uploads:/uploads"]
    health_path: /
  db:
    image: postgres:16
    volumes: ["data:/var/lib/postgresql/data"]
    backup:
      dump: pg_dump -U postgres shop
      restore: pg_restore --clean -U postgres -d shop
"#;

/// The folder the site file is read in, with the templates it may name.
fn folder() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("unitgen-fuzz-site-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in [
            ("shop.yaml", SHOP),
            ("blog.yaml", include_str!("../../examples/site/blog.yaml")),
            ("wiki.yaml", include_str!("../../examples/site/wiki.yaml")),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !unitgen::site::is_site(text) {
        return;
    }
    let site = match Site::parse(&folder().join("site.yaml"), text.to_string()) {
        Ok(site) => site,
        Err(problems) => return check::check_report(&problems),
    };
    let mut compiled = Vec::new();
    for app in &site.apps {
        for placed in &app.instances {
            let Ok(model) =
                unitgen::compile::compile(&app.template, &placed.instance, &Overrides::default())
            else {
                continue;
            };
            check::render_every_flavour(&model);
            if let Some(router) = &model.router {
                for flavour in check::FLAVOURS {
                    check::check_syntax(&Renderer::new(flavour).router_unit(router).text);
                }
            }
            if let Some(pairs) = unitgen::render::route::etcd_pairs(&model) {
                check_etcd(&pairs);
            }
            compiled.push(model);
        }
    }
    let _ = unitgen::site::clashes(&site, &compiled);
    let Ok(view) = SiteView::from_site(&site, &Overrides::default()) else {
        return;
    };
    if let Ok(needs) = unitgen::dns::needs(&view)
        && let Ok((zones, _)) = unitgen::dns::zones(&needs, &[])
    {
        for zone in &zones {
            check_bind(zone, &unitgen::dns::bind::zone(zone, 300));
            check_octodns(zone, &unitgen::dns::octodns::zone(zone, 300));
        }
    }
    check::check_docs(&view);
});

/// Traefik's KV layout: keys of plain path segments, values on one line
/// (the routes unit writes them through `etcdctl txn`, a line each).
fn check_etcd(pairs: &[(String, String)]) {
    for (key, value) in pairs {
        assert!(key.starts_with("traefik/"), "key {key:?}");
        for segment in key.split('/') {
            assert!(
                !segment.is_empty()
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b)),
                "key {key:?} has a segment {segment:?}"
            );
        }
        assert!(
            !value.is_empty() && !value.chars().any(char::is_control),
            "{key} = {value:?}"
        );
    }
}

/// Each line after the header is one record: NAME TTL IN TYPE VALUE, the
/// records of the zone, in its order.
fn check_bind(zone: &unitgen::dns::Zone, text: &str) {
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("; "), "{text}");
    assert_eq!(
        lines.next(),
        Some(format!("$ORIGIN {}.", zone.origin).as_str())
    );
    let expected: Vec<(String, &str, &str)> = (zone.records.iter())
        .flat_map(|set| {
            let name = if set.name.is_empty() {
                "@".to_string()
            } else {
                set.name.clone()
            };
            set.values
                .iter()
                .map(move |v| (name.clone(), set.kind.as_str(), v.as_str()))
        })
        .collect();
    let found: Vec<(String, &str, &str)> = lines
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, "300", "IN", kind, value] = fields.as_slice() else {
                panic!("not one record: {line:?}\n{text}");
            };
            (name.to_string(), *kind, *value)
        })
        .collect();
    assert_eq!(found, expected, "{text}");
}

/// The file is YAML whose names map to the zone's record sets.
fn check_octodns(zone: &unitgen::dns::Zone, text: &str) {
    #[derive(serde::Deserialize)]
    struct Set {
        #[serde(rename = "type")]
        kind: String,
        value: Option<String>,
        values: Option<Vec<String>>,
    }
    let read: indexmap::IndexMap<String, Vec<Set>> = serde_saphyr::from_str(text)
        .unwrap_or_else(|e| panic!("octoDNS would not read it: {e}\n{text}"));
    let mut found = Vec::new();
    for (name, sets) in &read {
        for set in sets {
            let values = set.values.clone().unwrap_or_default();
            found.push((
                name.clone(),
                set.kind.clone(),
                set.value.iter().cloned().chain(values).collect::<Vec<_>>(),
            ));
        }
    }
    let expected: Vec<(String, String, Vec<String>)> = (zone.records.iter())
        .map(|s| {
            (
                s.name.clone(),
                s.kind.as_str().to_string(),
                s.values.clone(),
            )
        })
        .collect();
    assert_eq!(found, expected, "{text}");
}
