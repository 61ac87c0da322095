//! Unknown keys, all of them. The typed parse (`schema`) skips keys it does
//! not know; this pass over the same text reports each one where it was
//! written, with a suggestion, so that one misspelt key does not hide the
//! file's other problems. The valid keys are read from the schema's own
//! structs, so the two cannot disagree. The typed parse tells whether
//! there are any (`skipped`), so that a file without them is read once.

pub mod skipped;

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::schema::route::{AcmeDecl, RouteDecl, RouterDecl, TlsFiles};
use super::schema::site::{HostDecl, SiteDoc};
use super::schema::{
    DependsOnDetail, Document, EtcdDecl, FleetDecl, Healthcheck, Scalar, SecretDecl, ServiceDef,
    ServiceSwitch, VolumeDecl,
};
use crate::diagnostic::{Location, Problem, SourceFile, did_you_mean};
use crate::template::spanned::Spanned;

/// Every key of `text` that its place in the schema does not have. Nothing
/// when the text is not a map of maps the typed parse could read either
/// (that parse reports why).
pub fn find(text: &str, file: &SourceFile) -> Vec<Problem> {
    let Ok(root) = serde_saphyr::from_str_with_options::<Node>(text, super::yaml_options()) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    document(&root, &mut found);
    problems(found, file)
}

/// The same for a site file: its hosts, and each app's part (the keys of
/// a deployments file).
pub fn find_site(text: &str, file: &SourceFile) -> Vec<Problem> {
    let Ok(root) = serde_saphyr::from_str_with_options::<Node>(text, super::yaml_options()) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    if let Node::Map(entries) = &root {
        known::<SiteDoc>(entries, &mut found);
        for (key, value) in entries {
            match key.value.0.as_str() {
                "hosts" => each_map(value, &mut found, host),
                "apps" => each_map(value, &mut found, document),
                _ => {}
            }
        }
    }
    problems(found, file)
}

fn host(node: &Node, found: &mut Found) {
    let Node::Map(entries) = node else { return };
    known::<HostDecl>(entries, found);
    for (key, value) in entries {
        if key.value.0 == "etcd" {
            struct_of::<EtcdDecl>(value, found);
        }
    }
}

fn problems(found: Found, file: &SourceFile) -> Vec<Problem> {
    found
        .into_iter()
        .map(|(key, expected)| {
            let at = Location::from_yaml(file, &key.referenced);
            let help = did_you_mean(&key.value.0, expected.iter().copied())
                .unwrap_or_else(|| format!("valid keys: {}", expected.join(", ")));
            Problem::new(format!("unknown key `{}`", key.value.0))
                .at(&at)
                .label("unknown key")
                .help(help)
        })
        .collect()
}

type Found = Vec<(Spanned<Scalar>, &'static [&'static str])>;

fn document(node: &Node, found: &mut Found) {
    let Node::Map(entries) = node else { return };
    known::<Document>(entries, found);
    for (key, value) in entries {
        match key.value.0.as_str() {
            "services" => each_map(value, found, service),
            "volumes" => each_map(value, found, struct_of::<VolumeDecl>),
            "secrets" => each_map(value, found, struct_of::<SecretDecl>),
            "etcd" => struct_of::<EtcdDecl>(value, found),
            "fleet" => struct_of::<FleetDecl>(value, found),
            "instances" => each_map(value, found, instance),
            "defaults" => instance(value, found),
            "router" => router(value, found),
            _ => {}
        }
    }
}

/// An instance entry: its values are any keys; `services:` has switches.
fn instance(node: &Node, found: &mut Found) {
    let Node::Map(entries) = node else { return };
    for (key, value) in entries {
        match key.value.0.as_str() {
            "services" => each_map(value, found, struct_of::<ServiceSwitch>),
            "routes" => routes(value, found),
            _ => {}
        }
    }
}

fn service(node: &Node, found: &mut Found) {
    let Node::Map(entries) = node else { return };
    known::<ServiceDef>(entries, found);
    for (key, value) in entries {
        match key.value.0.as_str() {
            "healthcheck" => struct_of::<Healthcheck>(value, found),
            // The long form: `{db: {condition: service_healthy}}`.
            "depends_on" => each_map(value, found, struct_of::<DependsOnDetail>),
            _ => {}
        }
    }
}

fn router(node: &Node, found: &mut Found) {
    let Node::Map(entries) = node else { return };
    known::<RouterDecl>(entries, found);
    for (key, value) in entries {
        if key.value.0 == "acme" {
            struct_of::<AcmeDecl>(value, found);
        }
    }
}

/// The `routes:` of an instance entry: a list of routes.
fn routes(node: &Node, found: &mut Found) {
    let Node::Seq(items) = node else { return };
    for item in items {
        let Node::Map(route) = item else { continue };
        known::<RouteDecl>(route, found);
        for (key, value) in route {
            if key.value.0 == "tls" {
                struct_of::<TlsFiles>(value, found);
            }
        }
    }
}

/// `check` on every value of a map (a map of services, of volumes …).
fn each_map(node: &Node, found: &mut Found, check: impl Fn(&Node, &mut Found)) {
    if let Node::Map(entries) = node {
        for (_, value) in entries {
            check(value, found);
        }
    }
}

fn struct_of<'de, T: Deserialize<'de>>(node: &Node, found: &mut Found) {
    if let Node::Map(entries) = node {
        known::<T>(entries, found);
    }
}

/// Records the keys of `entries` that `T` has no field for.
fn known<'de, T: Deserialize<'de>>(entries: &[(Spanned<Scalar>, Node)], found: &mut Found) {
    let fields = fields_of::<T>();
    for (key, _) in entries {
        // `<<` merges a map in; its keys are checked where they land.
        if key.value.0 != "<<" && !fields.contains(&key.value.0.as_str()) {
            found.push((key.clone(), fields));
        }
    }
}

/// Any YAML value, keeping where its map keys were written.
enum Node {
    Map(Vec<(Spanned<Scalar>, Node)>),
    Seq(Vec<Node>),
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(NodeVisitor)
    }
}

/// The field names serde's derive gives `deserialize_struct` for `T`: the
/// keys `T` reads.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields = None;
    let _ = T::deserialize(FieldNames(&mut fields));
    fields.unwrap_or(&[])
}

/// A deserializer that only notes the fields it is asked for, then stops.
struct FieldNames<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("field names noted"))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_valid_keys_are_the_schemas_fields() {
        assert!(fields_of::<ServiceDef>().contains(&"environment"));
        assert!(fields_of::<ServiceDef>().contains(&"depends_on"));
        assert!(fields_of::<Document>().contains(&"services"));
        assert_eq!(
            fields_of::<DependsOnDetail>(),
            ["condition", "restart", "required"]
        );
    }

    #[test]
    fn every_unknown_key_is_found_at_every_level() {
        let text = "app: shop\nservies: {}\nservices:\n  web:\n    image: x\n    enviroment: {}\n    healthcheck: {tset: [NONE]}\n    depends_on: {db: {condtion: service_started}}\n  db: {image: y, prots: []}\nvolumes:\n  data: {extrnal: true}\n";
        let file: SourceFile =
            std::sync::Arc::new(miette::NamedSource::new("unitgen.yaml", text.to_string()));
        let found: Vec<String> = find(text, &file)
            .iter()
            .map(|p| p.message.clone())
            .collect();
        assert_eq!(
            found,
            [
                "unknown key `servies`",
                "unknown key `enviroment`",
                "unknown key `tset`",
                "unknown key `condtion`",
                "unknown key `prots`",
                "unknown key `extrnal`",
            ]
        );
    }
}
