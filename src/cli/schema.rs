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
    let json = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    outln!("{json}")?;
    Ok(Outcome::Clean)
}
