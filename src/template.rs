//! Reading the user's files: the app template and the instances that deploy
//! it, either in one file or split (`template: ./app.yaml` in a deployments
//! file, so that deployments live one level above the app).

pub mod schema;

use std::path::Path;
use std::sync::Arc;

use miette::NamedSource;

use crate::diagnostic::{Location, Problem, Problems, SourceFile, did_you_mean};
use schema::Document;

/// A parsed YAML file and the text it came from.
#[derive(Debug)]
pub struct Loaded {
    pub file: SourceFile,
    pub doc: Document,
}

impl Loaded {
    pub fn at(&self, spanned: &serde_saphyr::Location) -> Location {
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
        let dir = path.parent().unwrap_or(Path::new(""));
        let app_path = dir.join(&template_ref.value);
        let app = match std::fs::read_to_string(&app_path) {
            Ok(text) => parse(&app_path, text)?,
            Err(e) => {
                problems.push(
                    Problem::new(format!("cannot read template {}: {e}", app_path.display()))
                        .at(&at)
                        .label("this file")
                        .help("the path is relative to the deployments file"),
                );
                return Err(problems);
            }
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
            (
                "secrets",
                app.doc
                    .secrets
                    .as_ref()
                    .and_then(|s| s.keys().next())
                    .map(|k| &k.referenced),
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
        problems.into_result(Template {
            app,
            deployments: Some(first),
        })
    }

    /// The file that declares instances.
    pub fn instances_file(&self) -> &Loaded {
        self.deployments.as_ref().unwrap_or(&self.app)
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
        crate::render::content_digest(&all)
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
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, text),
        Err(e) => Err(Problem::new(format!("cannot read {}: {e}", path.display()))
            .help("run unitgen in the folder that holds unitgen.yaml, or pass `-f FILE`")
            .into()),
    }
}

/// Parses one file, turning serde-saphyr's error into a located problem.
pub fn parse(path: &Path, text: String) -> Result<Loaded, Problems> {
    let name = display_path(path);
    let result = serde_saphyr::from_str_with_options::<Document>(&text, yaml_options());
    let file = Arc::new(NamedSource::new(name, text));
    match result {
        Ok(doc) => Ok(Loaded { file, doc }),
        Err(err) => Err(yaml_problem(&err, &file).into()),
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
    let mut problem = Problem::new(short_message(&message));
    if let Some(loc) = err.location() {
        let mut at = Location::from_yaml(file, &loc);
        if at.span.len() <= 1 {
            // Widen a one-character mark to the word it starts.
            let text = file.inner().as_str();
            let rest = &text[at.span.offset().min(text.len())..];
            let word = rest.find([':', '\n', ',', '}', ']']).unwrap_or(rest.len());
            at.span = (at.span.offset(), word.max(1)).into();
        }
        problem = problem.at(&at).label(label_for(&message));
    }
    if let Some(hint) = unknown_key_hint(&message) {
        problem = problem.help(hint);
    }
    problem
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

/// "unknown field `x`, expected one of …" is long; the list goes to the hint.
/// Duplicate keys name serde-saphyr's option to allow them; unitgen never does.
fn short_message(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return format!(
            "unknown key {}",
            rest.split(", expected").next().unwrap_or(rest)
        );
    }
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
        _ => message.to_string(),
    }
}

fn label_for(message: &str) -> String {
    if message.starts_with("unknown field") {
        "unknown key".into()
    } else if message.starts_with("duplicate") {
        "duplicate key".into()
    } else {
        "here".into()
    }
}

/// For "unknown field `enviroment`, expected one of a, b, …": the closest
/// expected key, or the list of valid keys.
fn unknown_key_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (wrong, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest
        .split_once("expected one of ")
        .or_else(|| rest.split_once("expected "))
        .map(|(_, list)| list.split(", ").map(|k| k.trim_matches('`')).collect())
        .unwrap_or_default();
    did_you_mean(wrong, expected.iter().copied())
        .or_else(|| (!expected.is_empty()).then(|| format!("valid keys: {}", expected.join(", "))))
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
            short_message("unknown field `x`, expected one of a, b"),
            "unknown key `x`"
        );
    }

    #[test]
    fn misspelt_key_gets_a_suggestion() {
        let hint = unknown_key_hint(
            "unknown field `enviroment`, expected one of image, environment, ports",
        );
        assert_eq!(hint.as_deref(), Some("did you mean `environment`?"));
    }
}
