//! The compose file as read: a YAML tree whose scalars keep the text the user
//! wrote (`1.10` stays `1.10`, `0x1F` stays `0x1F`) and whose nodes keep their
//! place, for warnings and errors that point at it.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use crate::diagnostic::{Problems, SourceFile};

#[derive(Clone)]
pub struct Node {
    pub at: Location,
    pub kind: Kind,
}

#[derive(Clone)]
pub enum Kind {
    Null,
    Bool(bool),
    /// A number, as written.
    Number(String),
    Text(String),
    List(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Clone)]
pub struct Key {
    pub name: String,
    pub at: Location,
}

/// Parses the compose file. YAML 1.2 booleans only, as compose reads them:
/// `yes` and `on` stay text.
pub fn read(file: &SourceFile) -> Result<Node, Problems> {
    let text = file.inner().as_str();
    let mut options = crate::template::yaml_options();
    options.strict_booleans = true;
    match serde_saphyr::from_str_with_options::<Spanned<Raw>>(text, options) {
        Ok(raw) => Ok(Node::from_raw(raw, text)),
        Err(err) => Err(crate::template::yaml_problem(&err, file).into()),
    }
}

impl Node {
    fn from_raw(raw: Spanned<Raw>, text: &str) -> Node {
        let kind = match raw.value {
            Raw::Null => Kind::Null,
            Raw::Bool(b) => Kind::Bool(b),
            // Serde hands numbers over parsed; their text is in the source.
            Raw::Number(parsed) => {
                let span = raw.defined.span();
                let written = span
                    .byte_offset()
                    .zip(span.byte_len())
                    .and_then(|(at, len)| text.get(at as usize..(at + len) as usize));
                Kind::Number(written.map_or(parsed, str::to_string))
            }
            Raw::Text(s) => Kind::Text(s),
            Raw::List(items) => {
                Kind::List(items.into_iter().map(|i| Node::from_raw(i, text)).collect())
            }
            Raw::Map(entries) => Kind::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let key = Key {
                            name: k.value,
                            at: k.referenced,
                        };
                        (key, Node::from_raw(v, text))
                    })
                    .collect(),
            ),
        };
        Node {
            at: raw.referenced,
            kind,
        }
    }

    /// A map's entries; null reads as an empty map (`deploy:` with nothing
    /// under it), as compose reads it.
    pub fn entries(&self) -> Option<&[(Key, Node)]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            Kind::Null => Some(&[]),
            _ => None,
        }
    }

    /// A list's items; null reads as an empty list.
    pub fn items(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::List(items) => Some(items),
            Kind::Null => Some(&[]),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    /// A scalar's text; `None` for null, lists and maps.
    pub fn scalar(&self) -> Option<String> {
        match &self.kind {
            Kind::Bool(b) => Some(b.to_string()),
            Kind::Number(s) | Kind::Text(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// `true`/`false`, also as text (`"true"`, `yes`), as compose accepts.
    pub fn boolean(&self) -> Option<bool> {
        match &self.kind {
            Kind::Bool(b) => Some(*b),
            Kind::Text(s) => parse_bool(s),
            _ => None,
        }
    }

    /// What this node is, for "expected a list, found a map".
    pub fn what(&self) -> &'static str {
        match self.kind {
            Kind::Null => "nothing",
            Kind::Bool(_) => "a boolean",
            Kind::Number(_) => "a number",
            Kind::Text(_) => "a string",
            Kind::List(_) => "a list",
            Kind::Map(_) => "a map",
        }
    }
}

/// A boolean written as text, in any spelling compose accepts.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(true),
        "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Any YAML node, as serde hands it over.
enum Raw {
    Null,
    Bool(bool),
    Number(String),
    Text(String),
    List(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<String>, Spanned<Raw>)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw::Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
                Ok(Raw::Number(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
                Ok(Raw::Number(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
                Ok(Raw::Number(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Raw::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Raw::Map(entries))
            }
        }
        d.deserialize_any(RawVisitor)
    }
}
