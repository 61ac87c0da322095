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

/// Parses a compose file, the importer's file number `id`: each of its
/// YAML documents (`---` between them: webtop's `version: "2.1"`, then
/// `---` and its services), empty ones left out, which compose merges in
/// order (compose-go's loadYamlFile); an empty file is one null document.
/// YAML 1.2 booleans only, as compose reads them: `yes` and `on` stay text.
pub fn read(file: &SourceFile, id: usize) -> Result<Vec<Node>, Problems> {
    let text = file.inner().as_str();
    let mut options = crate::template::yaml_options();
    options.strict_booleans = true;
    let documents = serde_saphyr::from_str_multiple_with_options::<Spanned<Tagged<Raw>>, Vec<_>>(
        text,
        options.clone(),
    );
    let documents = match documents {
        Ok(documents) if documents.is_empty() => {
            serde_saphyr::from_str_with_options::<Spanned<Tagged<Raw>>>(text, options)
                .map(|d| vec![d])
        }
        other => other,
    };
    match documents {
        Ok(documents) => {
            let mut refused = Vec::new();
            let nodes = documents
                .into_iter()
                .map(|raw| Node::from_raw(raw, text, id, &mut refused))
                .collect();
            if refused.is_empty() {
                return Ok(nodes);
            }
            let problems = refused.into_iter().map(|(at, message)| {
                let location = crate::diagnostic::Location::from_yaml(file, &at.at);
                crate::diagnostic::Problem::new(message).at(&location)
            });
            Err(Problems(problems.collect()))
        }
        Err(err) => Err(crate::template::yaml_problem(&err, file).into()),
    }
}

/// A scalar's tag as compose's YAML reader (go-yaml v3) reads it: the
/// core types it resolves a scalar as; any other tag (`!custom`,
/// `!!python/str`, `!`, `!reset`) it ignores, and the scalar is the text
/// written, never a number, boolean or null.
enum ScalarTag {
    /// No tag, or `!!str`, `!!int`, `!!float`, `!!bool`, `!!timestamp`.
    Core,
    /// `!!null`: go-yaml refuses any text but a null's.
    Null,
    /// `!!binary`: go-yaml decodes base64.
    Binary,
    Unknown,
}

fn scalar_tag(tag: Option<&str>) -> ScalarTag {
    let Some(tag) = tag else {
        return ScalarTag::Core;
    };
    let short = tag
        .strip_prefix("tag:yaml.org,2002:")
        .map_or_else(|| tag.to_string(), |rest| format!("!!{rest}"));
    match short.as_str() {
        "!!str" | "!!int" | "!!float" | "!!bool" | "!!timestamp" => ScalarTag::Core,
        "!!null" => ScalarTag::Null,
        "!!binary" => ScalarTag::Binary,
        _ => ScalarTag::Unknown,
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

    /// `refused`: what compose's YAML reader refuses, where.
    fn from_raw(
        raw: Spanned<Tagged<Raw>>,
        text: &str,
        file: usize,
        refused: &mut Vec<(Place, String)>,
    ) -> Node {
        let place = |at: &serde_saphyr::Location| Place {
            file,
            at: At::from(at),
        };
        let Tagged(value, tag) = raw.value;
        let span = raw.defined.span();
        let written = span
            .byte_offset()
            .zip(span.byte_len())
            .and_then(|(at, len)| text.get(at as usize..(at + len) as usize))
            .map(str::trim_end);
        let scalar = matches!(
            value,
            Raw::Null | Raw::Bool(_) | Raw::Number(_) | Raw::Text(_)
        );
        let kind_of_tag = scalar_tag(tag.as_deref());
        let tag_name = tag.as_deref().unwrap_or_default().to_string();
        let tag = match tag.as_deref() {
            Some("!reset") => Some(Tag::Reset),
            Some("!override") => Some(Tag::Override),
            _ => None,
        };
        let kind = match (value, kind_of_tag) {
            // Read as written: `!custom ~` is the text `~`, `!custom 010`
            // the text `010`.
            (Raw::Text(s), ScalarTag::Unknown) => Kind::Text(s),
            (Raw::Null, ScalarTag::Unknown) => Kind::Text(
                written
                    .map(|w| w.trim_start_matches(tag_name.as_str()).trim())
                    .unwrap_or_default()
                    .to_string(),
            ),
            (Raw::Bool(b), ScalarTag::Unknown) => Kind::Text(b.to_string()),
            (Raw::Number(parsed), ScalarTag::Unknown) => {
                Kind::Text(written.map_or(parsed, unquoted_number))
            }
            (Raw::Null, ScalarTag::Null)
                if written.is_some_and(|w| {
                    !["", "~", "null", "Null", "NULL"]
                        .contains(&w.trim_start_matches(tag_name.as_str()).trim())
                }) =>
            {
                refused.push((
                    place(&raw.defined),
                    format!(
                        "`{}` is not a null, which its tag `!!null` says: compose refuses the file (\"cannot decode !!str as a !!null\")",
                        written.unwrap_or_default()
                    ),
                ));
                Kind::Null
            }
            (_, ScalarTag::Binary) if scalar => {
                refused.push((
                    place(&raw.defined),
                    "a `!!binary` value (base64, which compose decodes): import does not decode it; write the text itself".to_string(),
                ));
                Kind::Null
            }
            (Raw::Null, _) => Kind::Null,
            (Raw::Bool(b), _) => Kind::Bool(b),
            // Serde hands numbers over parsed; their text is in the source
            // (but a quoted one, `!!int "12"`, is the number).
            (Raw::Number(parsed), _) => Kind::Number(match written {
                Some(w) if !w.starts_with(['"', '\'']) => w.to_string(),
                _ => parsed,
            }),
            // What serde reads as text and go-yaml as a number (`0755`,
            // `1_000`, `+12`): a number, as compose reads it.
            (Raw::Text(_), _)
                if tag_name.is_empty()
                    && written.is_some_and(|w| {
                        !w.starts_with(['"', '\'', '|', '>'])
                            && super::yaml_number::compose_text(w).is_some()
                    }) =>
            {
                Kind::Number(written.unwrap_or_default().to_string())
            }
            (Raw::Text(s), _) => Kind::Text(s),
            (Raw::List(items), _) => Kind::List(
                items
                    .into_iter()
                    .map(|i| Node::from_raw(i, text, file, refused))
                    .collect(),
            ),
            (Raw::Map(entries), _) => Kind::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        // Where it is written: a key or value an alias or
                        // a `<<: *anchor` brings in is written at its anchor.
                        let key = Key {
                            name: k.value,
                            at: place(&k.defined),
                        };
                        (key, Node::from_raw(v, text, file, refused))
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

/// A number written with an unknown tag, as text: its quotes taken off.
fn unquoted_number(written: &str) -> String {
    let last = written.split_whitespace().last().unwrap_or(written);
    last.trim_matches(['"', '\'']).to_string()
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
