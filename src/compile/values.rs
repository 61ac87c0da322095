//! An instance's entry as templates see it: the app's `defaults:`, then
//! the instance it `extends` (and what that one extends), then its own
//! entry. Maps are merged key by key, deeply; scalars and lists are
//! replaced. Every part keeps where it was written, so errors in values
//! point at the file and line they came from.

use std::collections::{BTreeMap, HashMap};

use indexmap::IndexMap;

use crate::diagnostic::{Location, Problem, Problems, did_you_mean};
use crate::template::Loaded;
use crate::template::schema::instance::{BUILT_IN, RESERVED};
use crate::template::schema::route::RouteDecls;
use crate::template::schema::{
    DependsOn, InstanceDecl, Name, Scalar, ServiceEntry, ServiceSwitch, Value,
};
use crate::template::spanned::Spanned;

type ServiceDefs = IndexMap<Name, Spanned<ServiceEntry>>;

/// The merged entry of one instance.
#[derive(Debug, Default)]
pub struct Merged {
    pub values: IndexMap<Name, Spanned<Value>>,
    pub services: IndexMap<Name, Spanned<ServiceSwitch>>,
    /// As written by the last entry of the chain that has `routes:`.
    pub routes: Option<RouteDecls>,
    pub host: Option<Name>,
}

/// Where the entries that make up an instance are: `file` holds
/// `instances:` and `defaults:` (a deployments file, or an app's part of
/// a site file, where `host:` is allowed).
pub struct Entries<'a> {
    pub file: &'a Loaded,
    pub site: bool,
}

impl Entries<'_> {
    /// The merged entry of `instance` (only `defaults:` when it is not
    /// declared), with every problem of the entries it is made of.
    pub fn merge(&self, instance: &str, problems: &mut Problems) -> Merged {
        let doc = &self.file.doc;
        let mut chain: Vec<&InstanceDecl> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        let mut next = Some(instance);
        while let Some(name) = next.take() {
            let Some((key, entry)) = self.entry(name) else {
                break;
            };
            seen.push(&key.value);
            chain.push(&entry.value);
            let Some(base) = &entry.value.extends else {
                continue;
            };
            let at = self.file.at(&base.referenced);
            if seen.contains(&base.value.as_str()) {
                let mut path: Vec<&str> = seen.clone();
                path.push(&base.value);
                problems.push(
                    Problem::new(format!(
                        "instance `{}` extends itself: {}",
                        key.value,
                        path.join(" → ")
                    ))
                    .at(&at)
                    .label("closes the cycle")
                    .help("an instance extends one that does not lead back to it"),
                );
            } else if self.entry(&base.value).is_none() {
                let names = self.names();
                let help = did_you_mean(&base.value, names.iter().copied())
                    .unwrap_or_else(|| format!("declared instances: {}", names.join(", ")));
                problems.push(
                    Problem::new(format!(
                        "instance `{}` extends `{}`, which is not declared under `instances:`",
                        key.value, base.value
                    ))
                    .at(&at)
                    .label("no such instance")
                    .help(help),
                );
            } else {
                next = Some(&base.value);
            }
        }
        let mut merged = Merged::default();
        let layers = doc.defaults.iter().map(|d| &d.value);
        for decl in layers.chain(chain.into_iter().rev()) {
            self.check(decl, problems);
            merge_maps(&mut merged.values, &decl.values);
            for (name, switch) in decl.services.iter().flat_map(|s| &s.value) {
                let known = merged.services.keys().position(|k| k.value == name.value);
                match known {
                    // `{worker: {}}` changes nothing of what it extends.
                    Some(_) if switch.value.enabled.is_none() => {}
                    Some(index) => {
                        merged.services.shift_remove_index(index);
                        merged
                            .services
                            .shift_insert(index, name.clone(), switch.clone());
                    }
                    None => {
                        merged.services.insert(name.clone(), switch.clone());
                    }
                }
            }
            if decl.routes.is_some() {
                merged.routes = decl.routes.clone();
            }
            if decl.host.is_some() {
                merged.host = decl.host.clone();
            }
        }
        merged
    }

    fn entry(&self, name: &str) -> Option<(&Name, &Spanned<InstanceDecl>)> {
        let instances = self.file.doc.instances.as_ref()?;
        instances.iter().find(|(key, _)| key.value == name)
    }

    fn names(&self) -> Vec<&str> {
        let instances = self.file.doc.instances.iter().flatten();
        instances.map(|(key, _)| key.value.as_str()).collect()
    }

    /// What a value cannot be named, and `host:` outside a site file.
    fn check(&self, decl: &InstanceDecl, problems: &mut Problems) {
        for key in decl.values.keys() {
            if BUILT_IN.contains(&key.value.as_str()) {
                problems.push(
                    Problem::new(format!(
                        "`{}` is not a value an instance can set: unitgen sets it (to the {} name)",
                        key.value, key.value
                    ))
                    .at(&self.file.at(&key.referenced))
                    .label("reserved name")
                    .help("templates use `{{ app }}` and `{{ instance }}` as they are; pick another name for this value"),
                );
            }
        }
        if let Some(host) = &decl.host
            && !self.site
        {
            problems.push(
                Problem::new("`host:` says which host runs an instance, in a site file only")
                    .at(&self.file.at(&host.referenced))
                    .label("not a value")
                    .help(format!(
                        "move the instance into a site file; `host` is a reserved key ({}), so no value can be named `host`",
                        RESERVED.join(", ")
                    )),
            );
        }
    }
}

impl Merged {
    /// The services this instance leaves out (`enabled: false`), each with
    /// where it says so. A switch for a service the app does not have, and
    /// leaving out one that a service kept depends on, are problems.
    pub fn left_out(
        &self,
        file: &Loaded,
        defs: Option<&ServiceDefs>,
        problems: &mut Problems,
    ) -> HashMap<String, Location> {
        let empty = IndexMap::new();
        let defs = defs.unwrap_or(&empty);
        let names: Vec<&str> = defs.keys().map(|k| k.value.as_str()).collect();
        let mut left_out = HashMap::new();
        for (name, switch) in &self.services {
            if !names.contains(&name.value.as_str()) {
                let help = did_you_mean(&name.value, names.iter().copied())
                    .unwrap_or_else(|| format!("services are: {}", names.join(", ")));
                problems.push(
                    Problem::new(format!("`{}` is not a service of the app", name.value))
                        .at(&file.at(&name.referenced))
                        .label("unknown service")
                        .help(help),
                );
            } else if let Some(enabled) = &switch.value.enabled
                && !enabled.value
            {
                left_out.insert(name.value.clone(), file.at(&enabled.referenced));
            }
        }
        for (name, entry) in defs {
            let ServiceEntry::Full(def) = &entry.value else {
                continue;
            };
            if left_out.contains_key(&name.value) {
                continue;
            }
            let targets: Vec<&str> = match def.depends_on.as_ref().map(|d| &d.value) {
                Some(DependsOn::List(list)) => list.iter().map(|n| n.value.as_str()).collect(),
                Some(DependsOn::Map(pairs)) => {
                    pairs.iter().map(|(n, _)| n.value.as_str()).collect()
                }
                None => Vec::new(),
            };
            for target in targets {
                if let Some(at) = left_out.get(target) {
                    problems.push(
                        Problem::new(format!(
                            "`{target}` cannot be left out: `{}` depends on it",
                            name.value
                        ))
                        .at(at)
                        .label(format!("needed by `{}`", name.value))
                        .help(format!(
                            "leave `{}` out too (`{}: {{enabled: false}}`), or keep `{target}`",
                            name.value, name.value
                        )),
                    );
                }
            }
        }
        left_out
    }
}

/// `--set KEY=VALUE` with a name that is not a value's.
pub fn set_refused(key: &str) -> Option<Problem> {
    let what = if BUILT_IN.contains(&key) {
        "unitgen sets it"
    } else if RESERVED.contains(&key) {
        "it is a reserved key of instance entries, not a value"
    } else {
        return None;
    };
    Some(
        Problem::new(format!("`--set {key}=…`: `{key}` cannot be set: {what}"))
            .help("`--set` sets instance values; write the reserved keys in the instance's entry"),
    )
}

/// `over` merged into `base`: maps key by key, anything else replaced.
/// (Keys are compared by name: a `Name` also holds its place.)
fn merge_maps(base: &mut IndexMap<Name, Spanned<Value>>, over: &IndexMap<Name, Spanned<Value>>) {
    for (key, value) in over {
        let Some(index) = base.keys().position(|k| k.value == key.value) else {
            base.insert(key.clone(), value.clone());
            continue;
        };
        if let (
            Some((
                _,
                Spanned {
                    value: Value::Map(inner),
                    ..
                },
            )),
            Value::Map(more),
        ) = (base.get_index_mut(index), &value.value)
        {
            merge_maps(inner, more);
            continue;
        }
        // Replaced where it was: the key's place is the winning value's.
        base.shift_remove_index(index);
        base.shift_insert(index, key.clone(), value.clone());
    }
}

/// A value as template expressions see it: `true`/`false` and whole
/// numbers become booleans and numbers (so `{% if debug %}` works),
/// anything else stays the text written (`1.10` is not `1.1`).
pub fn to_template(value: &Value) -> minijinja::Value {
    match value {
        Value::Scalar(scalar) => scalar_value(&scalar.0),
        Value::List(items) => items.iter().map(|i| to_template(&i.value)).collect(),
        Value::Map(entries) => minijinja::Value::from(
            entries
                .iter()
                .map(|(k, v)| (k.value.clone(), to_template(&v.value)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

/// A scalar as template expressions see it (see `to_template`).
pub fn scalar_value(text: &str) -> minijinja::Value {
    match text {
        "true" => minijinja::Value::from(true),
        "false" => minijinja::Value::from(false),
        _ => match text.parse::<i64>() {
            Ok(n) if n.to_string() == text => minijinja::Value::from(n),
            _ => minijinja::Value::from(text),
        },
    }
}

/// The merged entry as YAML, in file order, each scalar typed as templates
/// see it, then the services left out and the host (`unitgen render
/// --values`).
pub fn to_yaml(merged: &Merged, set: &[(String, String)]) -> String {
    let mut values: IndexMap<String, Shown> = merged
        .values
        .iter()
        .map(|(k, v)| (k.value.clone(), Shown::Value(&v.value)))
        .collect();
    for (key, value) in set {
        values.insert(key.clone(), Shown::Set(value));
    }
    let mut text = String::new();
    write_map(values.iter().map(|(k, v)| (k.as_str(), v)), 0, &mut text);
    let disabled: Vec<&str> = merged
        .services
        .iter()
        .filter(|(_, s)| s.value.enabled.as_ref().is_some_and(|e| !e.value))
        .map(|(name, _)| name.value.as_str())
        .collect();
    if !disabled.is_empty() {
        text.push_str("services:\n");
        for name in disabled {
            text.push_str(&format!("  {}:\n    enabled: false\n", yaml_text(name)));
        }
    }
    if let Some(host) = &merged.host {
        text.push_str(&format!("host: {}\n", yaml_text(&host.value)));
    }
    text
}

/// Text as a YAML scalar that reads back as itself, with every character
/// that acts on a terminal (a control, a bidirectional override) written
/// as an escape: `--values` is read on a terminal, where such a character
/// would redraw or reorder what it shows.
fn yaml_text(text: &str) -> String {
    crate::import::emit::quote(text, false)
}

/// A scalar as templates type it: `true`, `false` and whole numbers plain,
/// any other text as text (`"1.10"`).
fn yaml_scalar(text: &str) -> String {
    let value = scalar_value(text);
    match value.kind() {
        minijinja::value::ValueKind::Bool | minijinja::value::ValueKind::Number => {
            value.to_string().to_lowercase()
        }
        _ => yaml_text(text),
    }
}

fn write_map<'a>(
    entries: impl ExactSizeIterator<Item = (&'a str, &'a Shown<'a>)>,
    indent: usize,
    out: &mut String,
) {
    let pad = " ".repeat(indent);
    for (key, value) in entries {
        out.push_str(&format!("{pad}{}:", yaml_text(key)));
        write_value(value, indent, out);
    }
}

/// `value` after its key (or list dash) at `indent`: a scalar or an empty
/// collection on the same line, else its lines below.
fn write_value(value: &Shown, indent: usize, out: &mut String) {
    match value {
        Shown::Set(text) => out.push_str(&format!(" {}\n", yaml_scalar(text))),
        Shown::Value(Value::Scalar(Scalar(text))) => {
            out.push_str(&format!(" {}\n", yaml_scalar(text)));
        }
        Shown::Value(Value::List(items)) if items.is_empty() => out.push_str(" []\n"),
        Shown::Value(Value::Map(entries)) if entries.is_empty() => out.push_str(" {}\n"),
        Shown::Value(Value::List(items)) => {
            out.push('\n');
            let pad = " ".repeat(indent);
            for item in items {
                out.push_str(&format!("{pad}-"));
                write_value(&Shown::Value(&item.value), indent + 2, out);
            }
        }
        Shown::Value(Value::Map(entries)) => {
            out.push('\n');
            let shown: Vec<(&str, Shown)> = (entries.iter())
                .map(|(k, v)| (k.value.as_str(), Shown::Value(&v.value)))
                .collect();
            write_map(shown.iter().map(|(k, v)| (*k, v)), indent + 2, out);
        }
    }
}

/// A value shown by `--values`: from the files, or from `--set`.
enum Shown<'a> {
    Value(&'a Value),
    Set(&'a str),
}
