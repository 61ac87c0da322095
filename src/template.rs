//! Reading the user's files: the app template and the instances that deploy
//! it, either in one file or split (`template: ./app.yaml` in a deployments
//! file, so that deployments live one level above the app).

mod parallel_parse;
mod plain_yaml;
pub mod schema;
pub mod spanned;
pub(crate) mod unknown_keys;

use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use miette::NamedSource;

use crate::diagnostic::{Location, Problem, Problems, SourceFile};
use schema::Document;

/// A parsed YAML file and the text it came from.
#[derive(Debug)]
pub struct Loaded {
    pub file: SourceFile,
    pub doc: Document,
    /// Keys the schema does not have: reported with every other problem
    /// that compiling finds, not instead of them.
    pub unknown_keys: Vec<Problem>,
    /// Whether this is an app's part of a site file (where an instance
    /// says which `host:` runs it).
    pub in_site: bool,
    /// In a site file: each host's `etcd:`, for the instances it runs
    /// when the app has none of its own.
    pub host_etcd: IndexMap<String, schema::EtcdDecl>,
}

impl Loaded {
    pub fn at(&self, spanned: &spanned::At) -> Location {
        Location::from_yaml(&self.file, spanned)
    }
}

/// The app template and, when split, the deployments file that names it.
#[derive(Debug)]
pub struct Template {
    /// The file holding `app` and `services`.
    pub app: Loaded,
    /// The file holding `instances`, when it is not the app file itself.
    pub deployments: Option<Loaded>,
}

impl Template {
    /// Reads `path` and, if it names one, the app template beside it.
    pub fn load(path: &Path) -> Result<Template, Problems> {
        let first = load_file(path)?;
        Template::with_deployments(first, path.parent().unwrap_or(Path::new("")))
    }

    /// `first`, and the app template it names (`template:`, relative to
    /// `dir`), if it names one.
    pub(crate) fn with_deployments(first: Loaded, dir: &Path) -> Result<Template, Problems> {
        let Some(template_ref) = &first.doc.template else {
            return Ok(Template {
                app: first,
                deployments: None,
            });
        };
        let mut problems = Problems::default();
        let at = first.at(&template_ref.referenced);
        if first.doc.services.is_some() {
            problems.push(
                Problem::new("a deployments file with `template:` cannot also define `services`")
                    .at(&at)
                    .help("keep the services in the template file it points to"),
            );
        }
        let app_path = dir.join(&template_ref.value);
        let read = template_path(dir, &template_ref.value).and_then(|()| {
            read_capped(&app_path).map_err(|e| {
                Problem::new(format!(
                    "cannot read template {}: {e}",
                    crate::diagnostic::shown_path(&app_path)
                ))
            })
        });
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(problem) => {
                problems.push(problem.at(&at).label("this file").help(
                    "the path is relative to the deployments file; unitgen reads the template only from that folder or below",
                ));
                return Err(problems);
            }
        };
        let app = match utf8(&app_path, bytes).and_then(|text| parse(&app_path, text)) {
            Ok(app) => app,
            // Say what is wrong inside the file only if it is a template:
            // any other file's text (`template: ../../etc/shadow`) stays
            // out of the message.
            Err(errors) if !looks_like_a_template(&app_path) => {
                drop(errors);
                problems.push(
                    Problem::new(format!(
                        "{} is not an app template",
                        crate::diagnostic::shown_path(&app_path)
                    ))
                    .at(&at)
                    .label("this file")
                    .help("an app template is a YAML file with `app:` and `services:`"),
                );
                return Err(problems);
            }
            Err(errors) => return Err(errors),
        };
        for (key, value) in [
            ("template", app.doc.template.as_ref().map(|t| &t.referenced)),
            (
                "instances",
                app.doc
                    .instances
                    .as_ref()
                    .and_then(|i| i.keys().next())
                    .map(|k| &k.referenced),
            ),
            ("defaults", app.doc.defaults.as_ref().map(|d| &d.referenced)),
            (
                "secrets",
                app.doc
                    .secrets
                    .as_ref()
                    .and_then(|s| s.keys().next())
                    .map(|k| &k.referenced),
            ),
            (
                "backup",
                app.doc.backup.as_ref().map(|b| &b.repository.referenced),
            ),
        ] {
            if let Some(loc) = value {
                problems.push(
                    Problem::new(format!(
                        "the app template cannot have `{key}`: it belongs in the deployments file"
                    ))
                    .at(&app.at(loc)),
                );
            }
        }
        if app.doc.router.is_some() {
            problems.push(Problem::new(format!(
                "the app template {} cannot have `router`: it belongs in the deployments file",
                app.file.name()
            )));
        }
        problems.into_result(Template {
            app,
            deployments: Some(first),
        })
    }

    /// Every unknown key of the files, each where it was written.
    pub fn unknown_keys(&self) -> Vec<Problem> {
        let files = std::iter::once(&self.app).chain(&self.deployments);
        files.flat_map(|f| f.unknown_keys.iter().cloned()).collect()
    }

    /// The file that declares instances.
    pub fn instances_file(&self) -> &Loaded {
        self.deployments.as_ref().unwrap_or(&self.app)
    }

    /// The entries instances are merged from (`compile::values`).
    pub fn entries(&self) -> crate::compile::values::Entries<'_> {
        crate::compile::values::Entries {
            file: self.instances_file(),
            site: self.instances_file().in_site,
        }
    }

    /// Every name `instance`'s routes answer for, each where it was
    /// written (problems of its entries are the compiler's to report).
    pub fn route_names_at(&self, instance: &str) -> Vec<(String, crate::diagnostic::Location)> {
        let merged = self
            .entries()
            .merge(instance, &mut crate::diagnostic::Problems::default());
        (merged.routes.as_ref())
            .map(|decls| crate::compile::route::names_at(self.instances_file(), decls))
            .unwrap_or_default()
    }

    /// The file the user passed, as typed: for messages only, never for
    /// unit text (units must not depend on where they were rendered from).
    pub fn source_name(&self) -> String {
        self.instances_file().file.name().to_string()
    }

    /// A digest of everything an instance is rendered from: the text of
    /// the files, the instance name and the command-line overrides.
    pub fn inputs_digest(&self, instance: &str, overrides: &crate::compile::Overrides) -> String {
        let mut all = String::new();
        for loaded in std::iter::once(&self.app).chain(&self.deployments) {
            all.push_str(loaded.file.inner());
            all.push('\0');
        }
        all.push_str(&format!("{instance}\0{overrides:?}"));
        crate::render::content_digest(all.as_bytes())
    }

    /// Names of the declared instances, in file order.
    pub fn instance_names(&self) -> Vec<String> {
        self.instances_file()
            .doc
            .instances
            .iter()
            .flat_map(|m| m.keys().map(|k| k.value.clone()))
            .collect()
    }
}

fn load_file(path: &Path) -> Result<Loaded, Problems> {
    parse(path, read_text(path)?)
}

/// The most unitgen reads of a file the user names (a template, site,
/// deployments or compose file, the files they name, a route's
/// certificate, key or htpasswd file): far above any
/// real one (the YAML readers stop at 250,000 values), and a bound on what
/// a device (`/dev/zero`), a pipe that never ends or a wrong path to a huge
/// file makes unitgen hold in memory: it stops reading there.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// A file the user named, up to [`MAX_FILE_BYTES`]: longer is an error.
pub fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    (std::fs::File::open(path)?)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "longer than {} MiB, the most unitgen reads of a file (a device, or a pipe that \
             does not end?)",
            MAX_FILE_BYTES >> 20
        )));
    }
    Ok(bytes)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_capped_text(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_capped(path)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

/// A file the user named, as UTF-8 text.
pub(crate) fn read_text(path: &Path) -> Result<String, Problems> {
    match read_capped(path) {
        Ok(bytes) => utf8(path, bytes),
        Err(e) => Err(Problem::new(format!(
            "cannot read {}: {e}",
            crate::diagnostic::shown_path(path)
        ))
        .help("run unitgen in the folder that holds unitgen.yaml (or site.yaml), or pass `-f FILE`")
        .into()),
    }
}

/// The file's text, or where its first byte that is not UTF-8 is.
pub(crate) fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String, Problems> {
    let err = match String::from_utf8(bytes) {
        Ok(text) => return Ok(text),
        Err(err) => err,
    };
    let offset = err.utf8_error().valid_up_to();
    let byte = err.as_bytes()[offset];
    // The text up to the bad byte is the file's own; the byte shows as `�`.
    let shown = String::from_utf8_lossy(err.as_bytes()).into_owned();
    let file: SourceFile = Arc::new(NamedSource::new(display_path(path), shown));
    let at = Location {
        file,
        span: (offset, '\u{fffd}'.len_utf8()).into(),
    };
    Err(Problem::new(format!(
        "{} is not UTF-8 text: byte 0x{byte:02X} is not part of a UTF-8 character",
        display_path(path)
    ))
    .at(&at)
    .label("not UTF-8")
    .help("unitgen reads templates as UTF-8: convert the file (e.g. `iconv -f latin1 -t utf-8 FILE`), or write the character as a YAML escape (`\"\\u00e9\"`)")
    .into())
}

/// Where a deployments file's `template:` may point: a relative path to a
/// file in the deployments file's folder or below (symbolic links
/// followed), so that a deployments file cannot make unitgen read, and
/// quote in its errors, files elsewhere on the machine.
fn template_path(dir: &Path, named: &str) -> Result<(), Problem> {
    if Path::new(named).is_absolute() {
        return Err(Problem::new(format!(
            "template {named} is an absolute path"
        )));
    }
    let cannot = |e: std::io::Error| Problem::new(format!("cannot read template {named}: {e}"));
    let base = dir
        .canonicalize()
        .or_else(|_| std::env::current_dir())
        .map_err(cannot)?;
    let target = dir.join(named).canonicalize().map_err(cannot)?;
    if !target.starts_with(&base) {
        return Err(Problem::new(format!(
            "template {named} is outside the deployments file's folder"
        )));
    }
    Ok(())
}

/// Whether the file has a top-level `app:` or `services:` line, i.e. is
/// meant as an app template (with some mistake in it, even in its syntax).
fn looks_like_a_template(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .lines()
        .any(|line| line.starts_with("app:") || line.starts_with("services:"))
}

/// Parses one file, turning serde-saphyr's error into a located problem.
pub fn parse(path: &Path, text: String) -> Result<Loaded, Problems> {
    let name = display_path(path);
    // The quick reader takes most templates; what it does not is read by
    // serde-saphyr (big ones on two cores), which also gives every error.
    let quick = plain_yaml::read(&text).or_else(|| parallel_parse::parse(&text));
    let result = match quick {
        Some(read) => Ok(read),
        None => {
            serde_saphyr::with_deserializer_from_str_with_options(&text, yaml_options(), |yaml| {
                unknown_keys::skipped::deserialize::<_, Document>(yaml)
            })
        }
    };
    let file = Arc::new(NamedSource::new(name, text));
    match result {
        Ok((mut doc, skipped_a_key)) => {
            keep_values_text(&mut doc, file.inner());
            Ok(Loaded {
                // Read again, for where each one is, only if there are any.
                unknown_keys: if skipped_a_key {
                    unknown_keys::find(file.inner(), &file)
                } else {
                    Vec::new()
                },
                file,
                doc,
                in_site: false,
                host_etcd: IndexMap::new(),
            })
        }
        Err(err) => Err(yaml_problem(&err, &file).into()),
    }
}

/// Every instance value of `doc` as written (see `keep_scalar_text`).
pub(crate) fn keep_values_text(doc: &mut Document, text: &str) {
    let entries = doc.instances.iter_mut().flat_map(|m| m.values_mut());
    for entry in entries.chain(doc.defaults.as_mut()) {
        keep_scalar_text(&mut entry.value, text);
    }
}

/// The YAML reader types plain scalars (`1.10` is read as the number 1.1,
/// `yes` as true); instance values keep the text the user wrote, as every
/// other scalar in a template does.
pub(crate) fn keep_scalar_text(decl: &mut schema::InstanceDecl, text: &str) {
    for value in decl.values_mut() {
        schema::Value::scalars_mut(value, &mut |scalar| {
            let at = &scalar.referenced;
            let (Some(offset), Some(len)) = (at.byte_offset(), at.byte_len()) else {
                return;
            };
            let Some(written) = text.get(offset as usize..(offset + len) as usize) else {
                return;
            };
            // Quoted, block, tagged and aliased scalars were read as strings
            // (or come from elsewhere): only plain one-line text is taken.
            let plain = !written.is_empty()
                && !written.starts_with(['"', '\'', '|', '>', '!', '&', '*'])
                && !written.contains('\n');
            // YAML trims spaces and tabs only: a no-break space or any other
            // Unicode space at either end belongs to the value.
            if plain && let schema::Value::Scalar(s) = &mut scalar.value {
                s.0 = written.trim_matches([' ', '\t']).to_string();
            }
        });
    }
}

/// How unitgen reads YAML (templates and compose files alike). Aliases are
/// bounded by the events they replay, not by how many there are per anchor:
/// real compose files use one anchor a hundred times (Sentry's
/// `*restart_policy`), which the alias/anchor ratio heuristic refused, while
/// a "billion laughs" bomb is stopped after 100,000 replayed events, before
/// it can take more than a few megabytes.
pub(crate) fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! { enforce_alias_anchor_ratio: false },
        alias_limits: serde_saphyr::alias_limits! { max_total_replayed_events: MAX_REPLAYED_EVENTS },
    }
}

/// Events aliases may replay in one file, in all.
const MAX_REPLAYED_EVENTS: usize = 100_000;

/// A YAML syntax or shape error as a problem pointing at its place.
pub(crate) fn yaml_problem(err: &serde_saphyr::Error, file: &SourceFile) -> Problem {
    let full = err.without_snippet().to_string();
    let message = strip_location_suffix(strip_location_prefix(&full)).to_string();
    let mut problem = match err.without_snippet() {
        serde_saphyr::Error::Budget { breach, .. } => budget_problem(breach),
        _ => Problem::new(short_message(&message)),
    };
    if let Some(loc) = err.location() {
        let mut at = Location::from_yaml(file, &spanned::At::from(&loc));
        if at.span.len() <= 1 {
            // Widen a one-character mark to the word it starts.
            let text = file.inner().as_str();
            let rest = &text[at.span.offset().min(text.len())..];
            let word = rest.find([':', '\n', ',', '}', ']']).unwrap_or(rest.len());
            at.span = (at.span.offset(), word.max(1)).into();
        }
        problem = problem.at(&at).label(label_for(&message));
    }
    problem
}

/// The YAML reader's limits (serde-saphyr's defaults, which guard against
/// alias bombs and runaway input), said in the user's words.
fn budget_problem(breach: &serde_saphyr::budget::BudgetBreach) -> Problem {
    use serde_saphyr::budget::BudgetBreach::*;
    let limit = serde_saphyr::Budget::default();
    let what = match breach {
        Nodes { .. } => format!("more than {} YAML values", limit.max_nodes),
        Events { .. } => format!("more than {} YAML events", limit.max_events),
        Aliases { .. } => format!("more than {} aliases (`*name`)", limit.max_aliases),
        Anchors { .. } => format!("more than {} anchors (`&name`)", limit.max_anchors),
        Depth { .. } => format!("lists and maps nested more than {} deep", limit.max_depth),
        Documents { .. } => format!("more than {} YAML documents", limit.max_documents),
        other => format!("a YAML limit ({other:?})"),
    };
    Problem::new(format!("the file is too big for unitgen: {what}"))
        .help("a template this size is a mistake or an attack (e.g. aliases that expand exponentially); split it, or generate less")
}

/// serde-saphyr prefixes "line N column M: "; miette shows the place itself.
fn strip_location_prefix(message: &str) -> &str {
    let Some(rest) = message.strip_prefix("line ") else {
        return message;
    };
    match rest.split_once(": ") {
        Some((place, msg)) if place.contains(" column ") => msg,
        _ => message,
    }
}

/// Some messages end with " at line N, column M" instead.
fn strip_location_suffix(message: &str) -> &str {
    match message.rsplit_once(" at line ") {
        Some((msg, place)) if place.contains(", column ") => msg,
        _ => message,
    }
}

/// Duplicate keys name serde-saphyr's option to allow them; unitgen never does.
/// (Unknown keys are not parse errors: see `unknown_keys`.)
fn short_message(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        return format!(
            "duplicate key `{}`",
            rest.split(", set ").next().unwrap_or(rest)
        );
    }
    match message {
        "expected string scalar" => "expected a string".into(),
        "expected sequence start" => "expected a list".into(),
        "expected mapping start" => "expected a map".into(),
        // serde-saphyr names the Rust type a number did not fit.
        // The reader's own guard, before the budget's depth limit (flow
        // lists, `[[[…]]]`): said as that limit is.
        "recursion limit exceeded" => {
            "the file is too big for unitgen: lists and maps nested too deep".into()
        }
        "invalid u8" => "expected a whole number from 0 to 255".into(),
        "invalid u16" => "expected a whole number from 0 to 65535".into(),
        "invalid u32" => "expected a whole number from 0 to 4294967295".into(),
        "invalid u64" => "expected a whole number from 0 to 18446744073709551615".into(),
        _ => message.to_string(),
    }
}

fn label_for(message: &str) -> String {
    if message.starts_with("duplicate") {
        "duplicate key".into()
    } else {
        "here".into()
    }
}

/// A path as shown in messages: as given, without a leading `./`.
pub(crate) fn display_path(path: &Path) -> String {
    let shown = path.strip_prefix("./").unwrap_or(path);
    shown.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_prefix_is_removed() {
        assert_eq!(
            strip_location_prefix("line 6 column 1: unknown field"),
            "unknown field"
        );
        assert_eq!(strip_location_prefix("line of sight"), "line of sight");
        assert_eq!(
            strip_location_suffix("unknown field `x` at line 5, column 5"),
            "unknown field `x`"
        );
        assert_eq!(
            short_message("duplicate mapping key: web, set DuplicateKeyPolicy"),
            "duplicate key `web`"
        );
    }
}
