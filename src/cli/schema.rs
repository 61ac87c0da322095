//! `unitgen schema`: the JSON Schema of unitgen's YAML files (app templates,
//! deployments files and site files), generated from the very types the parser reads
//! them into, so editors can complete and check them.

use clap::Args;
use miette::Result;

use super::Outcome;
use super::output::outln;
use crate::template::schema::Document;
use crate::template::schema::site::SiteDoc;

#[derive(Debug, Args)]
pub struct SchemaArgs {}

/// The files unitgen reads: one app's (template, deployments file, or
/// both in one), or a site's (hosts and apps).
#[derive(schemars::JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)] // only its schema is used
enum AnyFile {
    App(Box<Document>),
    Site(Box<SiteDoc>),
}

pub fn run(_: SchemaArgs) -> Result<Outcome> {
    let mut schema = schemars::schema_for!(AnyFile);
    schema.insert(
        "title".into(),
        "unitgen template, deployments file or site file".into(),
    );
    // (Edited in place: schemars writes its keys in a readable order.)
    (schema.as_object_mut().into_iter())
        .flat_map(|top| top.values_mut())
        .for_each(accept_scalars_as_text);
    let json = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    outln!("{json}")?;
    Ok(Outcome::Clean)
}

/// The parser reads any plain scalar into a text field: `docker_args:
/// [--cpus, 1]`, `stop_signal: 9`, `hostname: 5` are valid files (what the
/// text means is `validate`'s to check). A schema that says `"type":
/// "string"` there has editors mark valid files as wrong, so every struct
/// field typed as text, or a list of text, also takes numbers and booleans.
/// Only fields (`properties`): the short forms written by hand
/// (`ServiceEntry`'s `web: redis:7`, which refuses `web: 5`) keep their own
/// schema, and a field limited to some words (`enum`) keeps its words.
fn accept_scalars_as_text(node: &mut serde_json::Value) {
    use serde_json::Value;
    fn widen(field: &mut Value) {
        let Some(field) = field.as_object_mut() else {
            return;
        };
        if field.contains_key("enum") || field.contains_key("const") {
            return;
        }
        let widened = match field.get("type") {
            Some(Value::String(t)) if t == "string" => {
                serde_json::json!(["string", "number", "boolean"])
            }
            Some(Value::Array(types)) if types == &[Value::from("string"), Value::from("null")] => {
                serde_json::json!(["string", "number", "boolean", "null"])
            }
            _ => return,
        };
        field.insert("type".into(), widened);
    }
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get_mut("properties") {
                for field in properties.values_mut() {
                    widen(field);
                    if let Some(items) = field.get_mut("items") {
                        widen(items);
                    }
                }
            }
            map.values_mut().for_each(accept_scalars_as_text);
        }
        Value::Array(items) => items.iter_mut().for_each(accept_scalars_as_text),
        _ => {}
    }
}
