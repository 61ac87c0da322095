//! Instance values that scale: lists and maps usable in expressions, the
//! app's `defaults:`, `extends:` (merged key by key), services left out of
//! one instance, `render --values`; and each mistake in them located.

use std::path::Path;
use std::process::{Command, Output};

fn unitgen(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .current_dir(dir)
        .output()
        .expect("run unitgen")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn project(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("unitgen.yaml"), yaml).unwrap();
    dir
}

const SHOP: &str = r#"app: shop
services:
  web:
    image: "nginx:{{ version }}"
    environment:
      DOMAINS: "{{ domains | join(',') }}"
      DB: "{{ db.host }}:{{ db.port }}"
    depends_on: [db]
  db: "postgres:{{ db.version }}"
  worker: "busybox:{{ version }}"
defaults:
  version: 1.10
  db: {host: db, port: 5432, version: 16}
instances:
  live:
    domains: [shop.example.com, www.shop.example.com]
  staging:
    extends: live
    domains: [staging.shop.example.com]
    db: {host: db-staging}
    services: {worker: {enabled: false}}
"#;

/// A plain value is read as YAML reads it: it ends where the spaces and
/// tabs before the line's end begin, and any other space (no-break, ideographic)
/// is part of it (a compose default `${X:-;\u{a0}}` imported as one lost its
/// no-break space).
#[test]
fn a_plain_value_keeps_unicode_spaces_at_its_ends() {
    let dir = project(
        "app: shop\nservices:\n  web:\n    image: x\n    environment: {A: \"[{{ a }}]\", B: \"[{{ b }}]\"}\ninstances:\n  live:\n    a: ;\u{a0} \t\n    b: \u{3000}x\n",
    );
    let out = unitgen(dir.path(), &["render", "live"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let units = text(&out.stdout);
    assert!(units.contains("A=[;\u{a0}]"), "{units}");
    assert!(units.contains("B=[\u{3000}x]"), "{units}");
}

#[test]
fn lists_maps_defaults_and_extends_reach_the_units() {
    let dir = project(SHOP);
    let out = unitgen(dir.path(), &["render", "live"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let live = text(&out.stdout);
    assert!(
        live.contains("DOMAINS=shop.example.com,www.shop.example.com"),
        "{live}"
    );
    assert!(live.contains("--env DB=db:5432"), "{live}");
    // `1.10` is the text written, not the number 1.1.
    assert!(live.contains("nginx:1.10"), "{live}");
    assert!(
        live.contains("# ==> shop-live-worker.service <=="),
        "{live}"
    );

    let out = unitgen(dir.path(), &["render", "staging"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let staging = text(&out.stdout);
    // Its own list replaces live's; its map is merged into defaults' key by key.
    assert!(
        staging.contains("DOMAINS=staging.shop.example.com \\"),
        "{staging}"
    );
    assert!(staging.contains("--env DB=db-staging:5432"), "{staging}");
    assert!(staging.contains("postgres:16"), "{staging}");
    assert!(!staging.contains("worker"), "worker is left out: {staging}");
}

#[test]
fn render_values_prints_the_merged_entry() {
    let dir = project(SHOP);
    let out = unitgen(
        dir.path(),
        &["render", "staging", "--values", "--set", "version=1.11"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("values-staging", text(&out.stdout));
    });
}

#[test]
fn mistakes_in_instance_entries_are_located() {
    let dir = project(
        r#"app: shop
services:
  web:
    image: nginx:1
    depends_on: [db]
  db: postgres:16
defaults:
  region: eu
instances:
  a: {extends: b}
  b: {extends: a}
  c: {extends: live, host: one, instance: x}
  d:
    services: {db: {enabled: false}, wrker: {enabled: false, enbled: true}}
"#,
    );
    let out = unitgen(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(1));
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("values-errors", text(&out.stderr));
    });
    // `--set` cannot set a reserved key either.
    let out = unitgen(dir.path(), &["render", "d", "--set", "extends=a"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("`--set extends=…`: `extends` cannot be set"),
        "{}",
        text(&out.stderr)
    );
}

/// `--values` is YAML that reads back as the entry, and shows nothing a
/// terminal obeys: a bidirectional override or isolate in a value or a key
/// was printed as it is (serde-saphyr writes them raw), reordering what the
/// terminal showed; controls are escapes.
#[test]
fn render_values_shows_hostile_values_escaped_and_reads_back() {
    let dir = project(
        "app: shop\nservices:\n  web: \"nginx:{{ v }}\"\ninstances:\n  live:\n    v: \"1\"\n    \
         bidi: \"a\\u202eb\\u2066c\"\n    esc: \"\\e[2J\\u0085\\nFAKE: 1\"\n    \
         deep: {\"k\\u202e\": [\"x\\u200fy\", {n: 1, t: true, s: \"1.10\"}], e: {}, l: []}\n",
    );
    let out = unitgen(
        dir.path(),
        &["render", "live", "--values", "--set", "w=\u{202e}"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        !shown
            .chars()
            .any(|c| c != '\n' && (c.is_control() || ('\u{200e}'..='\u{2069}').contains(&c))),
        "{shown:?}"
    );
    let read: serde_json::Value = serde_saphyr::from_str(&shown).unwrap();
    assert_eq!(
        read,
        serde_json::json!({
            "v": 1,
            "bidi": "a\u{202e}b\u{2066}c",
            "esc": "\u{1b}[2J\u{85}\nFAKE: 1",
            "deep": {"k\u{202e}": ["x\u{200f}y", {"n": 1, "t": true, "s": "1.10"}], "e": {}, "l": []},
            "w": "\u{202e}",
        }),
        "{shown}"
    );
}

#[test]
fn files_without_the_new_keys_read_as_before() {
    let dir = project(
        "app: shop\nservices:\n  web: \"nginx:{{ v }}\"\ninstances:\n  live: {v: 1.27}\n  bare:\n",
    );
    let out = unitgen(dir.path(), &["render", "bare", "--set", "v=1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = unitgen(dir.path(), &["render", "live", "--values"]);
    assert_eq!(text(&out.stdout), "v: \"1.27\"\n");
}
