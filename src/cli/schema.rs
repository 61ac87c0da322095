//! `unitgen schema`: the JSON Schema of unitgen's YAML files (app templates
//! and deployments files), generated from the very types the parser reads
//! them into, so editors can complete and check them.

use clap::Args;
use miette::Result;

use super::Outcome;
use super::output::outln;
use crate::template::schema::Document;

#[derive(Debug, Args)]
pub struct SchemaArgs {}

pub fn run(_: SchemaArgs) -> Result<Outcome> {
    let mut schema = schemars::schema_for!(Document);
    schema.insert(
        "title".into(),
        "unitgen template or deployments file".into(),
    );
    let json = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    outln!("{json}")?;
    Ok(Outcome::Clean)
}
