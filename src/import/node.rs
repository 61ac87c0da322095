//! The compose file as read: a YAML tree whose scalars keep the text the user
//! wrote (`1.10` stays `1.10`, `0x1F` stays `0x1F`) and whose nodes keep their
//! place, for warnings and errors that point at it.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Spanned, Tagged};

use crate::diagnostic::{Problems, SourceFile};
use crate::template::spanned::At;

/// Where a node was written: which of the files read (an index into the
/// importer's list: 0 is the compose file named first) and where in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub file: usize,
    pub at: At,
}

impl Place {
    pub fn line(&self) -> u64 {
        u64::from(self.at.line())
    }

    pub fn column(&self) -> u64 {
        u64::from(self.at.column())
    }
}

#[derive(Clone)]
pub struct Node {
    pub at: Place,
    pub kind: Kind,
    /// Compose's merge tags (2.18+), on a value of a later file.
    pub tag: Option<Tag>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tag {
    /// `!reset`: the key is removed, with what the files before said.
    Reset,
    /// `!override`: the value replaces what the files before said, unmerged.
    Override,
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
    pub at: Place,
}

/// Parses a compose file, the importer's file number `id`. YAML 1.2
/// booleans only, as compose reads them: `yes` and `on` stay text.
pub fn read(file: &SourceFile, id: usize) -> Result<Node, Problems> {
    let text = file.inner().as_str();
    let mut options = crate::template::yaml_options();
    options.strict_booleans = true;
    match serde_saphyr::from_str_with_options::<Spanned<Tagged<Raw>>>(text, options) {
        Ok(raw) => Ok(Node::from_raw(raw, text, id)),
        Err(err) => Err(crate::template::yaml_problem(&err, file).into()),
    }
}

impl Node {
    /// A node made by a merge, untagged.
    pub fn new(at: Place, kind: Kind) -> Node {
        Node {
            at,
            kind,
            tag: None,
        }
    }

    fn from_raw(raw: Spanned<Tagged<Raw>>, text: &str, file: usize) -> Node {
        let place = |at: &serde_saphyr::Location| Place {
            file,
            at: At::from(at),
        };
        let Tagged(value, tag) = raw.value;
        let tag = match tag.as_deref() {
            Some("!reset") => Some(Tag::Reset),
            Some("!override") => Some(Tag::Override),
            _ => None,
        };
        let kind = match value {
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
            Raw::List(items) => Kind::List(
                items
                    .into_iter()
                    .map(|i| Node::from_raw(i, text, file))
                    .collect(),
            ),
            Raw::Map(entries) => Kind::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        // Where it is written: a key or value an alias or
                        // a `<<: *anchor` brings in is written at its anchor.
                        let key = Key {
                            name: k.value,
                            at: place(&k.defined),
                        };
                        (key, Node::from_raw(v, text, file))
                    })
                    .collect(),
            ),
        };
        Node {
            at: place(&raw.defined),
            kind,
            tag,
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
    List(Vec<Spanned<Tagged<Raw>>>),
    Map(Vec<(Spanned<String>, Spanned<Tagged<Raw>>)>),
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
