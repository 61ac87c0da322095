//! The YAML shapes a user writes, as parsed: every value keeps where it was
//! written (`Spanned`) so that later checks can point at it. Key names follow
//! docker-compose wherever compose has the concept. Keys a struct does not
//! have are skipped here and reported, all of them, by `unknown_keys`.

use std::borrow::Cow;
use std::fmt;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::template::spanned::Spanned;

pub mod backup;
pub mod instance;
pub mod route;
pub mod site;

pub use instance::{InstanceDecl, ServiceSwitch, Value};

/// A name as written, with its place (map keys: services, instances, …).
pub type Name = Spanned<String>;

/// One YAML file: an app template, a deployments file, or both in one.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Document {
    /// The app's name: the first part of every unit, container and network.
    #[schemars(with = "Option<String>")]
    pub app: Option<Name>,
    /// Path of the app template, when this file only declares instances.
    #[schemars(with = "Option<String>")]
    pub template: Option<Spanned<String>>,
    #[schemars(with = "Option<IndexMap<String, ServiceEntry>>")]
    pub services: Option<Spanned<IndexMap<Name, Spanned<ServiceEntry>>>>,
    #[schemars(with = "Option<IndexMap<String, VolumeDecl>>")]
    pub volumes: Option<IndexMap<Name, VolumeDecl>>,
    /// The app's instances, each with its values (see `InstanceDecl`).
    #[schemars(with = "Option<IndexMap<String, InstanceDecl>>")]
    pub instances: Option<IndexMap<Name, Spanned<InstanceDecl>>>,
    /// Values (and service switches) every instance starts from.
    #[schemars(with = "Option<InstanceDecl>")]
    pub defaults: Option<Spanned<InstanceDecl>>,
    /// Service discovery across hosts: where sidekicks announce services.
    pub etcd: Option<EtcdDecl>,
    /// Options for the fleet target.
    pub fleet: Option<FleetDecl>,
    /// Backups of each instance's data: repository, schedule, retention.
    pub backup: Option<backup::BackupDecl>,
    /// The host's router (Traefik), which serves the instances' `routes:`.
    pub router: Option<route::RouterDecl>,
    /// Where secret values come from, by name (services say which they get).
    #[schemars(with = "Option<IndexMap<String, SecretDecl>>")]
    pub secrets: Option<IndexMap<Name, Spanned<SecretDecl>>>,
}

/// One secret's source: exactly one of a file, a variable of unitgen's own
/// environment, or a command's output (a password manager).
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SecretDecl {
    /// A file on the machine running unitgen; relative to the file that
    /// declares the secret.
    #[schemars(with = "Option<String>")]
    pub file: Option<Spanned<String>>,
    /// The name of an environment variable of `unitgen apply` itself.
    #[schemars(with = "Option<String>")]
    pub environment: Option<Spanned<String>>,
    /// A command whose standard output is the value: `pass show blog/db`.
    #[schemars(with = "Option<Words>")]
    pub command: Option<Spanned<Words>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EtcdDecl {
    /// One URL or a list: `http://10.0.0.1:2379`.
    #[schemars(with = "Words")]
    pub endpoints: Spanned<Words>,
    /// `v3` (default: leases with keep-alive) or `v2` (keys with a TTL).
    #[schemars(with = "Option<String>")]
    pub api: Option<Spanned<String>>,
    /// How long an announcement outlives a sidekick that died (default 30s).
    #[schemars(with = "Option<String>")]
    pub ttl: Option<Spanned<String>>,
    /// Root of unitgen's keys (default `/unitgen`).
    #[schemars(with = "Option<String>")]
    pub prefix: Option<Spanned<String>>,
    /// The address to announce for ports published on all interfaces
    /// (default: the host's first address, `hostname -I`).
    #[schemars(with = "Option<String>")]
    pub address: Option<Spanned<String>>,
    /// How long a consumer waits at start, in all, for its dependencies to
    /// be announced (default 60s).
    #[schemars(with = "Option<String>")]
    pub wait: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FleetDecl {
    /// Machine metadata every unit requires: `{region: eu}`.
    #[schemars(with = "Option<IndexMap<String, Scalar>>")]
    pub metadata: Option<IndexMap<Name, Spanned<Scalar>>>,
    /// Services that run one copy on every machine.
    #[schemars(with = "Option<Vec<String>>")]
    pub global: Option<Vec<Name>>,
    /// Copies of each service, numbered 1 to N: apply starts missing ones and destroys ones beyond (default 1, at most 1000).
    #[schemars(with = "Option<u32>", range(min = 1, max = 1000))]
    pub copies: Option<Spanned<u32>>,
    /// fleet's API for the instance: `http://10.0.0.1:49153` or a
    /// `unix://` socket; may use the instance's values (`{{ fleet }}`).
    /// `--endpoint` overrides it (default: `unix:///var/run/fleet.sock`).
    #[schemars(with = "Option<String>")]
    pub endpoint: Option<Spanned<String>>,
}

/// `cache: redis:7` (just an image) or a full service definition.
#[derive(Debug)]
pub enum ServiceEntry {
    Image(String),
    Full(Box<ServiceDef>),
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServiceDef {
    #[schemars(with = "Option<String>")]
    pub image: Option<Spanned<String>>,
    #[schemars(with = "Option<Words>")]
    pub command: Option<Spanned<Words>>,
    #[schemars(with = "Option<Words>")]
    pub entrypoint: Option<Spanned<Words>>,
    #[schemars(with = "Option<KeyValues>")]
    pub environment: Option<Spanned<KeyValues>>,
    /// Environment variables whose values are secrets: `{POSTGRES_PASSWORD: db_password}`.
    #[schemars(with = "Option<KeyValues>")]
    pub secrets: Option<Spanned<KeyValues>>,
    #[schemars(with = "Option<Words>")]
    pub env_file: Option<Spanned<Words>>,
    #[schemars(with = "Option<Vec<Scalar>>")]
    pub ports: Option<Vec<Spanned<Scalar>>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub volumes: Option<Vec<Spanned<String>>>,
    #[schemars(with = "Option<Scalar>")]
    pub user: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<String>")]
    pub working_dir: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub hostname: Option<Spanned<String>>,
    /// Another network than the instance's: `host`, `none`, `bridge`,
    /// `service:NAME` (another service's, as localhost) or
    /// `container:NAME` (a container outside the instance).
    #[schemars(with = "Option<String>")]
    pub network_mode: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub restart: Option<Spanned<String>>,
    pub healthcheck: Option<Healthcheck>,
    /// The path the router polls on the service's routed port (`/healthz`):
    /// a backend that does not answer 2xx or 3xx gets no requests.
    #[schemars(with = "Option<String>")]
    pub health_path: Option<Spanned<String>>,
    #[schemars(with = "Option<KeyValues>")]
    pub labels: Option<Spanned<KeyValues>>,
    #[schemars(with = "Option<Scalar>")]
    pub mem_limit: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<Scalar>")]
    pub cpus: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub cap_add: Option<Vec<Spanned<String>>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub cap_drop: Option<Vec<Spanned<String>>>,
    pub read_only: Option<bool>,
    #[schemars(with = "Option<Words>")]
    pub tmpfs: Option<Spanned<Words>>,
    #[schemars(with = "Option<DependsOn>")]
    pub depends_on: Option<Spanned<DependsOn>>,
    /// Runs to completion once per start of the instance (an init job).
    pub oneshot: Option<bool>,
    #[schemars(with = "Option<String>")]
    pub stop_grace_period: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub stop_signal: Option<Spanned<String>>,
    pub init: Option<bool>,
    #[schemars(with = "Option<Vec<String>>")]
    pub docker_args: Option<Vec<Spanned<String>>>,
    /// Extra unit keys per section: `{Service: {TimeoutStartSec: 300}}`.
    #[schemars(with = "Option<IndexMap<String, IndexMap<String, Words>>>")]
    pub systemd: Option<IndexMap<Name, IndexMap<Name, Spanned<Words>>>>,
    /// What of this service is backed up, and how.
    pub backup: Option<backup::ServiceBackupDecl>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Healthcheck {
    #[schemars(with = "Option<Words>")]
    pub test: Option<Spanned<Words>>,
    #[schemars(with = "Option<String>")]
    pub interval: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    #[schemars(with = "Option<u32>")]
    pub retries: Option<Spanned<u32>>,
    #[schemars(with = "Option<String>")]
    pub start_period: Option<Spanned<String>>,
    #[serde(default)]
    pub disable: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct VolumeDecl {
    /// Use the volume by this exact name, shared with whatever else uses it,
    /// instead of one scoped to the instance.
    #[serde(default)]
    pub external: bool,
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
}

/// Any YAML scalar, kept as the text the user wrote (`1.10` stays `1.10`).
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar(pub String);

/// One word or a list of words: `command: npm start` or `command: [npm, start]`.
#[derive(Debug, Clone)]
pub enum Words {
    One(String),
    List(Vec<Spanned<Scalar>>),
}

/// A map (`{KEY: value}`) or a list of `KEY=value` strings, as compose allows
/// for `environment` and `labels`. A map value may be null (`KEY:`).
#[derive(Debug)]
pub enum KeyValues {
    Map(Vec<(Name, Option<Spanned<Scalar>>)>),
    List(Vec<Spanned<String>>),
}

/// `depends_on: [db]` or compose's long form `depends_on: {db: {condition: …}}`.
#[derive(Debug)]
pub enum DependsOn {
    List(Vec<Name>),
    Map(Vec<(Name, DependsOnDetail)>),
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DependsOnDetail {
    #[schemars(with = "Option<String>")]
    pub condition: Option<Spanned<String>>,
    pub restart: Option<bool>,
    pub required: Option<bool>,
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        // Asking for a string keeps the scalar's own text.
        d.deserialize_string(ScalarVisitor)
    }
}

impl<'de> Deserialize<'de> for ServiceEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = ServiceEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an image (`redis:7`) or a service definition (a map)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ServiceEntry, E> {
                Ok(ServiceEntry::Image(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ServiceEntry, E> {
                Ok(ServiceEntry::Full(Box::default()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ServiceEntry, A::Error> {
                ServiceDef::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|def| ServiceEntry::Full(Box::new(def)))
            }
        }
        d.deserialize_any(EntryVisitor)
    }
}

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct WordsVisitor;
        impl<'de> Visitor<'de> for WordsVisitor {
            type Value = Words;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Words, E> {
                Ok(Words::One(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Words, E> {
                Ok(Words::One(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Words, E> {
                Ok(Words::One(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Words, E> {
                Ok(Words::One(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Words, E> {
                Ok(Words::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Words, A::Error> {
                let mut words = Vec::new();
                while let Some(word) = seq.next_element()? {
                    words.push(word);
                }
                Ok(Words::List(words))
            }
        }
        d.deserialize_any(WordsVisitor)
    }
}

impl<'de> Deserialize<'de> for KeyValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyValuesVisitor;
        impl<'de> Visitor<'de> for KeyValuesVisitor {
            type Value = KeyValues;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of names to values, or a list of `NAME=value` strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyValues, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(KeyValues::Map(pairs))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyValues, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(KeyValues::List(items))
            }
        }
        d.deserialize_any(KeyValuesVisitor)
    }
}

impl<'de> Deserialize<'de> for DependsOn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DependsVisitor;
        impl<'de> Visitor<'de> for DependsVisitor {
            type Value = DependsOn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of service names, or a map of service names to conditions")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DependsOn, A::Error> {
                let mut pairs = Vec::new();
                while let Some((name, detail)) =
                    map.next_entry::<Name, Option<DependsOnDetail>>()?
                {
                    pairs.push((name, detail.unwrap_or_default()));
                }
                Ok(DependsOn::Map(pairs))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DependsOn, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element()? {
                    names.push(name);
                }
                Ok(DependsOn::List(names))
            }
        }
        d.deserialize_any(DependsVisitor)
    }
}

// JSON Schemas of the shapes read by the hand-written deserializers above
// (`unitgen schema`): they must accept exactly what those accept.

impl JsonSchema for Scalar {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A string, number or boolean, kept as written.",
            "type": ["string", "number", "boolean"]
        })
    }
}

impl JsonSchema for ServiceEntry {
    fn schema_name() -> Cow<'static, str> {
        "ServiceEntry".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An image (`redis:7`) or a service definition.",
            "anyOf": [
                {"type": "string"},
                {"type": "null"},
                generator.subschema_for::<ServiceDef>()
            ]
        })
    }
}

impl JsonSchema for Words {
    fn schema_name() -> Cow<'static, str> {
        "Words".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "One string (split like a shell would) or a list of words.",
            "anyOf": [
                {"type": ["string", "number", "boolean"]},
                {"type": "array", "items": generator.subschema_for::<Scalar>()}
            ]
        })
    }
}

impl JsonSchema for KeyValues {
    fn schema_name() -> Cow<'static, str> {
        "KeyValues".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A map of names to values, or a list of `NAME=value` strings.",
            "anyOf": [
                {
                    "type": "object",
                    "additionalProperties": {"type": ["string", "number", "boolean", "null"]}
                },
                {"type": "array", "items": {"type": "string"}}
            ]
        })
    }
}

impl JsonSchema for DependsOn {
    fn schema_name() -> Cow<'static, str> {
        "DependsOn".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A list of service names, or a map of service names to conditions.",
            "anyOf": [
                // A name is read as written, `5` as `5`: a service may be
                // named so.
                {"type": "array", "items": generator.subschema_for::<Scalar>()},
                {
                    "type": "object",
                    "additionalProperties": {
                        "anyOf": [{"type": "null"}, generator.subschema_for::<DependsOnDetail>()]
                    }
                }
            ]
        })
    }
}
