//! What every fuzz target asks of the units it gets: systemd reads each one
//! (`tests/support/systemd_syntax.rs`, written from systemd's C code) as
//! unitgen's own parser does, every directive's value means something to
//! systemd, and the unit says it belongs to the app and instance it was
//! compiled for, once.

#[path = "../../tests/support/systemd_syntax.rs"]
#[allow(dead_code)]
mod systemd_syntax;

use unitgen::compile::{Overrides, compile};
use unitgen::render::{Flavour, Renderer};
use unitgen::template::Template;

pub const FLAVOURS: [Flavour; 3] = [Flavour::System, Flavour::User, Flavour::Fleet];

#[allow(dead_code)]
pub fn render_every_instance(template: &Template) {
    for instance in template.instance_names() {
        let Ok(model) = compile(template, &instance, &Overrides::default()) else {
            continue;
        };
        render_every_flavour(&model);
    }
    if let Ok(view) = unitgen::site_view::SiteView::from_template(template, &Overrides::default()) {
        check_docs(&view);
    }
}

/// A refusal as the user sees it (the report unitgen prints): no character
/// of it but line feeds and tabs (its layout) is one a terminal would obey
/// rather than show.
pub fn check_report(problems: &dyn miette::Diagnostic) {
    let mut shown = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .render_report(&mut shown, &unitgen::diagnostic::Printable::of(problems))
        .unwrap();
    assert!(!shown.chars().any(obeyed), "a raw character in:\n{shown:?}");
}

/// Text unitgen writes for people to read (an imported template): nothing
/// in it a terminal or a pull request's view would obey rather than show.
#[allow(dead_code)] // only the import target has such text
pub fn check_shown(text: &str) {
    assert!(!text.chars().any(obeyed), "a raw character in:\n{text:?}");
}

/// A character a terminal would obey rather than show (line feeds and
/// tabs, text's own layout, aside), or one drawn as nothing, which hides
/// in what a reviewer reads.
fn obeyed(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
        || matches!(c, '\u{ad}' | '\u{34f}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
            | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2065}'
            | '\u{206a}'..='\u{206f}' | '\u{3164}' | '\u{feff}' | '\u{ffa0}'
            | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e0fff}')
}

/// What a host may answer where docs --live shows a value it read: markup,
/// a line break, a carriage return, an override, a backtick and a pipe.
const HOSTILE_READ: &str = "web1\n| a | b |\r\u{202e}`x`";

/// The documentation `unitgen docs` writes of `view` (with the DNS records
/// it lists, as `unitgen docs` finds them), and with a `--live` section of a
/// host whose hostname file, systemd, Docker and backup record answer
/// [`HOSTILE_READ`] for every instance (or that has none installed).
pub fn check_docs(view: &unitgen::site_view::SiteView) {
    let records = match view.hosts.is_empty() {
        true => Vec::new(),
        // `docs` refuses a site whose records cannot be made, as `dns` does.
        false => match unitgen::dns::needs(view) {
            Ok(records) => records,
            Err(_) => return,
        },
    };
    use unitgen::docs::live::{Installed, InstanceLive, Live, ServiceLive};
    let installed = |deployed: &unitgen::site_view::Deployed| Installed {
        revision: Some((1, 0)),
        as_applied: false,
        services: (deployed.instance.services.iter())
            .map(|service| ServiceLive {
                service: service.name.clone(),
                state: HOSTILE_READ.into(),
                image: Some(HOSTILE_READ.into()),
                image_id: Some(HOSTILE_READ.into()),
            })
            .collect(),
        backup: Some(unitgen::backup::status::BackupStatus {
            schedule: HOSTILE_READ.into(),
            last_good: Some(unitgen::backup::LastBackup {
                time: 0,
                snapshot: HOSTILE_READ.into(),
                revision: HOSTILE_READ.into(),
            }),
            last_run: HOSTILE_READ.into(),
            last_run_time: Some(0),
            next: None,
            interval: None,
            overdue: true,
        }),
    };
    let live = |installed_here: bool| Live {
        host: HOSTILE_READ.into(),
        read_at: 0,
        instances: (view.apps.iter())
            .flat_map(|app| app.instances.iter().map(move |d| (app, d)))
            .map(|(app, deployed)| InstanceLive {
                app: app.name.clone(),
                instance: deployed.instance.instance.clone(),
                installed: installed_here.then(|| installed(deployed)),
                left_alone: installed_here,
            })
            .collect(),
    };
    for live in [None, Some(&live(false)), Some(&live(true))] {
        for page in unitgen::docs::pages(view, &records, live) {
            check_markdown(&page.text);
        }
    }
}

/// Every unit of `model`, for systemd, user systemd and fleet.
pub fn render_every_flavour(model: &unitgen::model::Instance) {
    for flavour in FLAVOURS {
        for unit in Renderer::new(flavour).render(model) {
            check_unit(&unit.text, &model.app, &model.instance);
        }
    }
}

fn check_unit(text: &str, app: &str, instance: &str) {
    // Units are read on terminals and in pull requests.
    assert!(!text.chars().any(obeyed), "a raw character in:\n{text:?}");
    let systemd = check_syntax(text);
    let owner = |key: &str| -> Vec<&str> {
        systemd
            .iter()
            .filter(|(s, k, _)| s.starts_with("X-Unitgen") && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    };
    assert_eq!(owner("App"), [app], "owner app:\n{text}");
    assert_eq!(owner("Instance"), [instance], "owner instance:\n{text}");
}

/// A unit of no one instance (the host's router): read alike by systemd
/// and unitgen, every value one systemd accepts.
pub fn check_syntax(text: &str) -> Vec<(String, String, String)> {
    let systemd: Vec<(String, String, String)> = systemd_syntax::parse(text)
        .unwrap_or_else(|e| panic!("systemd would not read this unit: {e}\n{text}"))
        .into_iter()
        .map(|d| (d.section, d.key, d.value))
        .collect();
    let ours: Vec<(String, String, String)> = unitgen::unit_file::parse(text)
        .unwrap_or_else(|e| panic!("unitgen would not read its own unit: {e}\n{text}"))
        .into_iter()
        .map(|o| (o.section, o.name, o.value))
        .collect();
    assert_eq!(
        systemd, ours,
        "systemd and unitgen read the unit differently:\n{text}"
    );
    for d in systemd_syntax::parse(text).unwrap() {
        if let Err(e) = systemd_syntax::meaning(&d) {
            panic!("{}={}: {e}\n{text}", d.key, d.value);
        }
    }
    systemd
}

/// Every table row has as many cells as its header, as GitHub splits
/// them (a `|` ends a cell unless a backslash escapes it, and a backslash
/// escapes a backslash too); no line outside the diagram's fence starts
/// a block the page did not mean.
fn check_markdown(page: &str) {
    // Pages are reviewed in pull requests and read on terminals.
    assert!(!page.chars().any(obeyed), "a raw character in:\n{page:?}");
    let mut columns = None;
    let mut in_fence = false;
    for line in page.lines() {
        if line.starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            assert!(
                line.starts_with("  ") || line == "flowchart LR",
                "a diagram line that is not the diagram's: {line:?}\n{page}"
            );
            continue;
        }
        if !line.starts_with('|') {
            columns = None;
            continue;
        }
        let cells = cells(line);
        match columns {
            None => columns = Some(cells),
            Some(n) => assert_eq!(
                cells, n,
                "a row of {cells} cells in a table of {n}: {line:?}\n{page}"
            ),
        }
    }
}

fn cells(line: &str) -> usize {
    let bytes = line.trim_end().as_bytes();
    let mut pipes = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 1 < bytes.len() && bytes[i + 1].is_ascii_punctuation() => i += 1,
            b'|' => pipes += 1,
            _ => {}
        }
        i += 1;
    }
    pipes - 1
}
