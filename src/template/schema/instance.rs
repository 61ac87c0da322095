//! An instance entry (under `instances:`, and the app's `defaults:`): a
//! map whose keys are the instance's values, except a few reserved keys
//! that say something about the instance itself. Values may be scalars,
//! lists or maps; each part keeps where it was written.

use std::borrow::Cow;
use std::fmt;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::route::{RouteDecl, RouteDecls};
use super::{Name, Scalar};
use crate::template::spanned::Spanned;

/// Keys of an instance entry that are not values.
pub const RESERVED: [&str; 4] = ["extends", "services", "routes", "host"];

/// Names unitgen gives every instance's templates itself.
pub const BUILT_IN: [&str; 2] = ["app", "instance"];

/// One instance entry, or the app's `defaults:`.
#[derive(Debug, Default)]
pub struct InstanceDecl {
    /// The values template expressions use, in file order.
    pub values: IndexMap<Name, Spanned<Value>>,
    /// Another instance of the same app whose entry this one starts from.
    pub extends: Option<Name>,
    /// Per-service switches: `{worker: {enabled: false}}`.
    pub services: Option<Spanned<IndexMap<Name, Spanned<ServiceSwitch>>>>,
    /// The instance's domains: which host names (and paths) the host's
    /// router sends to which service.
    pub routes: Option<RouteDecls>,
    /// The host that runs the instance (site files only).
    pub host: Option<Name>,
}

/// `services: {worker: {enabled: false}}` in an instance entry.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServiceSwitch {
    /// `false` leaves the service out of this instance (default `true`).
    #[schemars(with = "Option<bool>")]
    pub enabled: Option<Spanned<bool>>,
}

/// An instance value as written: a scalar (kept as its text: `1.10` stays
/// `1.10`), a list or a map.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    List(Vec<Spanned<Value>>),
    Map(IndexMap<Name, Spanned<Value>>),
}

impl<'de> Deserialize<'de> for InstanceDecl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DeclVisitor;
        impl<'de> Visitor<'de> for DeclVisitor {
            type Value = InstanceDecl;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of the instance's values")
            }
            fn visit_unit<E: de::Error>(self) -> Result<InstanceDecl, E> {
                Ok(InstanceDecl::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<InstanceDecl, A::Error> {
                let mut decl = InstanceDecl::default();
                while let Some(key) = map.next_key::<Name>()? {
                    match key.value.as_str() {
                        "extends" => decl.extends = Some(map.next_value()?),
                        "services" => decl.services = Some(map.next_value()?),
                        "routes" => decl.routes = Some(map.next_value()?),
                        "host" => decl.host = Some(map.next_value()?),
                        _ => {
                            let value = map.next_value()?;
                            decl.values.insert(key, value);
                        }
                    }
                }
                Ok(decl)
            }
        }
        d.deserialize_any(DeclVisitor)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean, a list or a map")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Scalar(Scalar(v.to_string())))
            }
            // Typed scalars get their own text back from the file after
            // parsing (`template::keep_scalar_text`): `1.10` is not `1.1`.
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Scalar(Scalar(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Scalar(Scalar(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(Value::Scalar(Scalar(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Scalar(Scalar(v.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Value::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut entries = IndexMap::new();
                while let Some((key, value)) = map.next_entry()? {
                    entries.insert(key, value);
                }
                Ok(Value::Map(entries))
            }
        }
        d.deserialize_any(ValueVisitor)
    }
}

impl Value {
    /// Every scalar in the value, for giving typed ones their text back.
    pub fn scalars_mut(this: &mut Spanned<Value>, each: &mut impl FnMut(&mut Spanned<Value>)) {
        match &mut this.value {
            Value::Scalar(_) => each(this),
            Value::List(items) => items.iter_mut().for_each(|i| Value::scalars_mut(i, each)),
            Value::Map(entries) => entries
                .values_mut()
                .for_each(|v| Value::scalars_mut(v, each)),
        }
    }
}

impl InstanceDecl {
    /// Every value of the entry, mutably (for `keep_scalar_text`).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Spanned<Value>> {
        self.values.values_mut()
    }
}

impl JsonSchema for InstanceDecl {
    fn schema_name() -> Cow<'static, str> {
        "InstanceDecl".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "The instance's values (any key but the reserved ones), and the reserved keys.",
            "type": ["object", "null"],
            "properties": {
                "extends": {
                    "description": "Another instance of the same app this one starts from: its values are merged under this one's, key by key (maps deeply, lists replaced).",
                    "type": "string"
                },
                "services": {
                    "description": "Per-service switches: `{worker: {enabled: false}}` leaves a service out of this instance.",
                    "type": "object",
                    "additionalProperties": generator.subschema_for::<ServiceSwitch>()
                },
                "routes": {
                    "description": "The instance's domains: which host names (and paths) the host's router sends to which service.",
                    "type": "array",
                    "items": generator.subschema_for::<RouteDecl>()
                },
                "host": {
                    "description": "The host that runs the instance (site files only).",
                    "type": "string"
                }
            },
            "additionalProperties": generator.subschema_for::<Value>()
        })
    }
}

impl JsonSchema for Value {
    fn schema_name() -> Cow<'static, str> {
        "Value".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A string, number or boolean (kept as written), a list or a map of values.",
            "type": ["string", "number", "boolean", "array", "object"]
        })
    }
}
