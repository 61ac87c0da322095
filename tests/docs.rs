//! `unitgen docs` as a user runs it: the pages of the examples (as
//! reviewed snapshots), their Mermaid diagrams read by Mermaid's own
//! parser, and the `--check` workflow for CI.

#[path = "support/lib.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{tools, unitgen};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The examples documented, by the file a user passes.
const EXAMPLES: [(&str, &str); 2] = [
    ("site", "examples/site/site.yaml"),
    ("wiki", "examples/wiki/deployments.yaml"),
];

/// Runs `unitgen docs` into `dir`; every page, sorted by name.
fn docs(file: &str, dir: &Path) -> Vec<(String, String)> {
    let out = unitgen(&["docs", "-f", file, "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    support::files_in(dir)
}

#[test]
fn docs_of_the_examples_are_as_reviewed() {
    for (example, file) in EXAMPLES {
        let dir = support::tempdir("docs");
        let pages = docs(file, dir.path());
        let all: Vec<String> = pages
            .iter()
            .map(|(name, text)| format!("# ==> {name} <==\n{text}"))
            .collect();
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(format!("docs-{example}"), all.join("\n"));
        });
    }
}

/// The ```mermaid blocks of a Markdown page.
fn mermaid_blocks(page: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        match (&mut current, line) {
            (None, "```mermaid") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed mermaid block");
    blocks
}

#[test]
fn every_diagram_parses_with_mermaid() {
    let dir = support::tempdir("docs-mermaid");
    let mut files = Vec::new();
    for (example, file) in EXAMPLES {
        let out = dir.path().join(example);
        for (name, page) in docs(file, &out) {
            for (i, block) in mermaid_blocks(&page).into_iter().enumerate() {
                let path = dir.path().join(format!("{example}-{name}-{i}.mmd"));
                std::fs::write(&path, block).unwrap();
                files.push(path);
            }
        }
    }
    assert!(
        files.len() >= EXAMPLES.len(),
        "every app page has a diagram"
    );
    // A broken diagram (a label whose quote is not closed), so that this
    // test is seen to fail on one.
    let broken = dir.path().join("broken.mmd");
    std::fs::write(&broken, "flowchart LR\n  s0[\"web --> s1\n").unwrap();
    let out = Command::new(tools::system("node"))
        .arg("tests/support/mermaid-parse.mjs")
        .args(&files)
        .arg(&broken)
        .env("MERMAID_DIR", tools::path("mermaid"))
        .output()
        .unwrap();
    let said = stdout(&out);
    for file in &files {
        assert!(
            said.contains(&format!("ok {}\n", file.display())),
            "{} does not parse:\n{said}{}\n{}",
            file.display(),
            stderr(&out),
            std::fs::read_to_string(file).unwrap()
        );
    }
    assert!(
        said.contains(&format!("error {}: Parse error", broken.display())),
        "the broken diagram was not refused:\n{said}{}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn check_says_when_the_docs_are_out_of_date() {
    let dir = support::tempdir("docs-check");
    let out_dir = dir.path().join("docs");
    let file = "examples/wiki/deployments.yaml";
    let check = |expect: i32| {
        let out = unitgen(&[
            "docs",
            "-f",
            file,
            "--out",
            out_dir.to_str().unwrap(),
            "--check",
        ]);
        assert_eq!(
            out.status.code(),
            Some(expect),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    };
    // Nothing written yet: every page is missing, and --check writes none.
    assert!(check(2).contains("out of date: "));
    assert!(!out_dir.exists());
    let pages = docs(file, &out_dir);
    assert_eq!(
        pages.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["README.md", "wiki.md"]
    );
    check(0);
    // A page edited by hand, a page of an app no longer there, and a file
    // of the user's.
    let stale = pages[1].1.replace("App `wiki`", "App `old`");
    std::fs::write(out_dir.join("old.md"), stale).unwrap();
    std::fs::write(out_dir.join("notes.md"), "# Notes\nkept\n").unwrap();
    std::fs::write(
        out_dir.join("wiki.md"),
        pages[1].1.replace("postgres:16", "postgres:15"),
    )
    .unwrap();
    let said = check(2);
    assert!(
        said.contains("out of date: ") && said.contains("wiki.md"),
        "{said}"
    );
    assert!(
        said.contains("stale: ") && said.contains("old.md"),
        "{said}"
    );
    assert!(!said.contains("notes.md"), "{said}");
    docs(file, &out_dir);
    check(0);
    assert!(!out_dir.join("old.md").exists());
    assert_eq!(
        std::fs::read_to_string(out_dir.join("notes.md")).unwrap(),
        "# Notes\nkept\n"
    );
    // A page unitgen did not write is never overwritten.
    std::fs::write(out_dir.join("wiki.md"), "# My own wiki page\n").unwrap();
    let out = unitgen(&["docs", "-f", file, "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let said = stderr(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        said.contains("wiki.md was not written by `unitgen docs`"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("wiki.md")).unwrap(),
        "# My own wiki page\n"
    );
}

/// `docs --live` on a sandboxed host of a site: an applied and backed-up
/// instance with its revision, states, images and image ids, and its last
/// backup, as the host reports them; an instance not applied said to be
/// absent; instances of another host left out.
#[test]
fn live_docs_say_what_the_host_runs() {
    use std::os::unix::fs::PermissionsExt as _;
    use support::world::World;

    const IMAGE: &str = "unitgen-test/busybox:1";
    let world = World::new("ugdocs");
    std::fs::write(
        world.dir().join("app.yaml"),
        format!(
            r#"app: ugdocs
services:
  web:
    image: {IMAGE}
    command: [httpd, -f, -p, "80", -h, /bin]
    init: true
    depends_on: [db]
  db:
    image: {IMAGE}
    command: [sh, -c, 'mkdir -p /db && exec httpd -f -p 80 -h /db']
    init: true
    volumes: ["dbdata:/db"]
    backup:
      dump: tar -c -C /db .
      restore: tar -x -C /db
"#
        ),
    )
    .unwrap();
    // A site: live (applied) and staging (not) on this host, remote on
    // another.
    world.write(&format!(
        r#"hosts:
  here: {{address: 192.0.2.1}}
  there: {{address: 192.0.2.2}}
apps:
  ugdocs:
    template: app.yaml
    backup:
      repository: /var/backups/ugdocs-{{{{ instance }}}}
      password_file: /etc/ugdocs/restic-password
      helper_image: {IMAGE}
      keep: {{daily: 7}}
    defaults: {{host: here}}
    instances:
      live: {{}}
      staging: {{}}
      remote: {{host: there}}
"#
    ));
    let password = world.sandbox.root().join("etc/ugdocs/restic-password");
    std::fs::create_dir_all(password.parent().unwrap()).unwrap();
    std::fs::write(&password, "ugdocs-password").unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    world.apply_ok("live");
    let backup = world.unitgen(&["backup", "live"]);
    assert!(backup.status.success(), "{}", stderr(&backup));

    let out_dir = world.dir().join("docs");
    let out = world.unitgen(&[
        "docs",
        "--out",
        out_dir.to_str().unwrap(),
        "--live",
        "--host",
        "here",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(out_dir.join("ugdocs.md")).unwrap();
    let overview = std::fs::read_to_string(out_dir.join("README.md")).unwrap();
    let live = &page[page.find("## Live on").expect("a live section")..];
    assert!(live.contains("revision 1, applied 20"), "{live}");
    for service in ["web", "db"] {
        let container = world.container("live", service);
        let json = support::docker::inspect_container(&container).expect("it runs");
        let image_id = support::docker::text_at(&json, "/Image");
        assert!(image_id.starts_with("sha256:"), "{image_id}");
        let row = format!("| `{service}` | active (running) | `{IMAGE}` | `{image_id}` |");
        assert!(live.contains(&row), "{row} not in\n{live}");
    }
    // The last backup is the snapshot `backup` just took.
    let snapshots = world.unitgen(&["backups", "live", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&snapshots.stdout).unwrap();
    let id = listed[0]["short_id"].as_str().unwrap();
    assert!(
        live.contains("last backup: 20") && live.contains(id),
        "{id} not in\n{live}"
    );
    assert!(
        live.contains("### `staging`\n\nNot installed on this host."),
        "{live}"
    );
    assert!(
        overview.contains("| `ugdocs/live` | revision 1, applied 20"),
        "{overview}"
    );
    assert!(overview.contains("| 2 of 2 |"), "{overview}");
    // Only what the site assigns to this host is read.
    assert!(live.contains("## Live on `here`"), "{live}");
    assert!(!live.contains("remote"), "{live}");
    let out = world.unitgen(&[
        "docs",
        "--out",
        out_dir.to_str().unwrap(),
        "--live",
        "--host",
        "nowhere",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`nowhere` is not a host of"),
        "{}",
        stderr(&out)
    );

    // Taken out of the site, live keeps running here (apply leaves it
    // alone): the live docs said nothing of it, as if the host ran only
    // what the file gives it.
    let site = std::fs::read_to_string(world.file()).unwrap();
    world.write(&site.replace("      live: {}\n", ""));
    let out = world.unitgen(&[
        "docs",
        "--out",
        out_dir.to_str().unwrap(),
        "--live",
        "--host",
        "here",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(out_dir.join("ugdocs.md")).unwrap();
    let overview = std::fs::read_to_string(out_dir.join("README.md")).unwrap();
    assert!(
        overview.contains(
            "| `ugdocs/live` (left alone: installed here, not given to this host by the file \
             (`unitgen destroy` removes it)) | revision 1, applied 20"
        ),
        "{overview}"
    );
    assert!(
        page.contains("### `live`\n\nLeft alone: installed here, not given to this host"),
        "{page}"
    );

    // Without --live, the pages say nothing of the host.
    let out = world.unitgen(&["docs", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(out_dir.join("ugdocs.md")).unwrap();
    assert!(!page.contains("Live on"), "{page}");
}

/// A template's values reached the pages as they were: a volume's host
/// path with a bidirectional override (U+202E) reordered the table a
/// reviewer reads in a pull request, and an escape sequence in a label of
/// the diagram or a heading redrew the terminal of whoever ran `cat`.
/// Every such character is written as an escape now, in cells, code spans,
/// headings and diagram labels.
#[test]
fn template_values_reach_the_pages_visible_never_obeyed() {
    let dir = support::tempdir("docs");
    // As YAML escapes: U+202E, U+2066, ESC, U+0085.
    std::fs::write(
        dir.path().join("shop.yaml"),
        r#"app: shop
services:
  web:
    image: busybox:1
    ports: ["127.0.0.1:8001:80"]
    volumes: ["/srv/a\u202eb\u2066c\e[2J\x85:/data"]
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("site.yaml"),
        "hosts:\n  web1: {address: 203.0.113.10}\napps:\n  shop:\n    template: shop.yaml\n    \
         instances:\n      live:\n        host: web1\n        domains: [shop.example.com]\n",
    )
    .unwrap();
    let out = dir.path().join("docs");
    let pages = docs(dir.path().join("site.yaml").to_str().unwrap(), &out);
    let shop = &pages.iter().find(|(name, _)| name == "shop.md").unwrap().1;
    assert!(
        shop.contains("/srv/a\\u{202e}b\\u{2066}c\\u{1b}[2J\\u{85}:/data"),
        "{shop}"
    );
    for (name, text) in &pages {
        let obeyed: Vec<char> = (text.chars())
            .filter(|&c| {
                (c.is_control() && c != '\n')
                    || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            })
            .collect();
        assert!(obeyed.is_empty(), "{name}: {obeyed:?}\n{text}");
    }
}

/// The overview listed every domain but not the records DNS needs for
/// them, which the site is meant to say: each record `unitgen dns` prints
/// is now a row of its "DNS records", and no other.
#[test]
fn the_overview_lists_the_records_dns_prints() {
    let dir = support::tempdir("docs-dns");
    let pages = docs(EXAMPLES[0].1, dir.path());
    let overview = &pages.iter().find(|(n, _)| n == "README.md").unwrap().1;
    let out = unitgen(&["dns", "-f", EXAMPLES[0].1]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut origin = String::new();
    let mut records = 0;
    for line in stdout(&out).lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["$ORIGIN", name] => origin = name.to_string(),
            [name, _ttl, "IN", kind, value] => {
                let name = match *name {
                    "@" => origin.clone(),
                    name => format!("{name}.{origin}"),
                };
                let row = format!("| `{name}` | {kind} | `{value}` |");
                assert!(overview.contains(&row), "{row} not in:\n{overview}");
                records += 1;
            }
            _ => {}
        }
    }
    assert!(records > 0);
    let section = overview.split("## DNS records").nth(1).unwrap();
    let rows = section.lines().filter(|l| l.starts_with("| `")).count();
    assert_eq!(rows, records, "{section}");
}

/// The alias of a route for `/admin` was listed as the whole name
/// redirected, but its router redirects `/admin` only (its rule has the
/// route's path): the overview names the path now, as for the route.
#[test]
fn an_alias_of_a_paths_route_is_listed_with_the_path() {
    let dir = support::tempdir("docs-alias");
    std::fs::write(
        dir.path().join("shop.yaml"),
        "app: shop\nservices:\n  web:\n    image: busybox:1\n    ports: [\"127.0.0.1:8001:80\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("site.yaml"),
        "hosts:\n  web1: {address: 203.0.113.10}\napps:\n  shop:\n    template: shop.yaml\n    \
         instances:\n      live:\n        host: web1\n        routes:\n          - {hosts: shop.example.com, \
         path: /admin, aliases: [old.example.com], service: web, port: 80}\n",
    )
    .unwrap();
    let pages = docs(
        dir.path().join("site.yaml").to_str().unwrap(),
        &dir.path().join("docs"),
    );
    let overview = &pages.iter().find(|(n, _)| n == "README.md").unwrap().1;
    assert!(
        overview.contains(
            "| `old.example.com/admin` | [shop/live](shop.md) | redirect to `shop.example.com` |"
        ),
        "{overview}"
    );
}

/// Found in hostile values round 6: the first line of every page, an HTML
/// comment, named the site's file as it was: a file named `a --> <img
/// src=x onerror=…>` ended the comment there and put its markup on every
/// page; a line feed in the name ended the line. The name is shown on the
/// comment's one line, with no `>`.
#[test]
fn the_site_files_name_cannot_end_the_pages_first_comment() {
    let dir = support::tempdir("docs-name");
    for file in ["site.yaml", "blog.yaml", "wiki.yaml"] {
        let to = match file {
            "site.yaml" => {
                "s --> <img src=x onerror=alert(1)>\n# Owned --!> \u{202e}.yaml".to_string()
            }
            other => other.to_string(),
        };
        std::fs::copy(format!("examples/site/{file}"), dir.path().join(to)).unwrap();
    }
    let site = dir
        .path()
        .join("s --> <img src=x onerror=alert(1)>\n# Owned --!> \u{202e}.yaml");
    let out = dir.path().join("docs");
    let pages = docs(site.to_str().unwrap(), &out);
    assert!(!pages.is_empty());
    for (name, text) in &pages {
        let first = text.lines().next().unwrap();
        assert!(
            first.starts_with("<!-- Generated by `unitgen docs`"),
            "{name}: {first}"
        );
        let inside = first
            .strip_suffix(" -->")
            .expect("the comment ends its line");
        assert!(
            !inside.contains("-->") && !inside.contains("--!>") && !inside.contains('\u{202e}'),
            "{name}: {first}"
        );
        // Elsewhere only in a code span, shown as text.
        for line in text.lines().skip(1).filter(|line| line.contains("<img")) {
            assert!(
                line.starts_with("# Site `s --> <img") && line.ends_with(".yaml`"),
                "{name}: {line}"
            );
        }
        assert!(
            !text.lines().any(|line| line.starts_with("# Owned")),
            "{name}: {text}"
        );
    }
}
