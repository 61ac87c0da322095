//! A value of a template with the place it was written, for errors that
//! point at it. serde-saphyr has such a type, but reading it takes serde
//! some twenty calls per value (a marker key as a fresh string, then two
//! `Location` structs of four fields, each with a `Span` of three): for a
//! big template that was most of the time its quick reader (`plain_yaml`)
//! spent typing the document. This one takes the same protocol from
//! serde-saphyr's reader, and its places in one call from the quick reader
//! (see [`Spanned::deserialize`]).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

/// A value and where it was written: `referenced` is where the document
/// uses it, `defined` where it was written (they differ for an alias).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Spanned<T> {
    pub value: T,
    pub referenced: At,
    pub defined: At,
}

/// A place in a YAML text as serde-saphyr's `Location` says it: line and
/// column from 1 and the offset and length in characters; and the offset
/// and length in bytes, which a reader of a stream does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct At {
    line: u32,
    column: u32,
    offset: u32,
    len: u32,
    /// `NO_BYTES` when not known.
    byte_offset: u32,
    byte_len: u32,
}

const NO_BYTES: u32 = u32::MAX;

impl At {
    /// Nowhere: a value that was not read from a text.
    pub const UNKNOWN: At = At {
        line: 0,
        column: 0,
        offset: 0,
        len: 0,
        byte_offset: NO_BYTES,
        byte_len: NO_BYTES,
    };

    pub fn new(
        line: u32,
        column: u32,
        offset: u32,
        len: u32,
        byte_offset: u32,
        byte_len: u32,
    ) -> Self {
        At {
            line,
            column,
            offset,
            len,
            byte_offset,
            byte_len,
        }
    }

    pub fn line(&self) -> u32 {
        self.line
    }

    pub fn column(&self) -> u32 {
        self.column
    }

    /// The offset in bytes, when known.
    pub fn byte_offset(&self) -> Option<u32> {
        (self.byte_offset != NO_BYTES).then_some(self.byte_offset)
    }

    /// The length in bytes, when known.
    pub fn byte_len(&self) -> Option<u32> {
        (self.byte_len != NO_BYTES).then_some(self.byte_len)
    }
}

impl From<&serde_saphyr::Location> for At {
    fn from(location: &serde_saphyr::Location) -> Self {
        let span = location.span();
        let narrow = |n: u64| u32::try_from(n).unwrap_or(NO_BYTES);
        At {
            line: narrow(location.line()),
            column: narrow(location.column()),
            offset: narrow(span.offset()),
            len: narrow(span.len()),
            byte_offset: span.byte_offset().map_or(NO_BYTES, narrow),
            byte_len: span.byte_len().map_or(NO_BYTES, narrow),
        }
    }
}

/// The name serde-saphyr's reader knows a spanned value by.
pub(super) const NEWTYPE_NAME: &str = "__yaml_spanned";

/// The first key of the map serde-saphyr's reader gives a spanned value
/// (its `INTERNAL_SPANNED_MARKER`), before `value`, `referenced` and
/// `defined`.
pub(super) const MARKER: &str = "__serde_saphyr_private_spanned";

/// How the quick reader hands over a place in one call: the six numbers
/// of an [`At`], in its order, as bytes (see `plain_yaml::NodeDe`).
pub(super) fn at_bytes(at: &At) -> [u8; 24] {
    let mut bytes = [0; 24];
    let numbers = [
        at.line,
        at.column,
        at.offset,
        at.len,
        at.byte_offset,
        at.byte_len,
    ];
    for (chunk, number) in bytes.chunks_exact_mut(4).zip(numbers) {
        chunk.copy_from_slice(&number.to_le_bytes());
    }
    bytes
}

fn at_of_bytes(bytes: &[u8]) -> Option<At> {
    let mut numbers = bytes
        .chunks_exact(4)
        .map(|chunk| u32::from_le_bytes(chunk.try_into().expect("chunks of 4")));
    let at = At {
        line: numbers.next()?,
        column: numbers.next()?,
        offset: numbers.next()?,
        len: numbers.next()?,
        byte_offset: numbers.next()?,
        byte_len: numbers.next()?,
    };
    (bytes.len() == 24).then_some(at)
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    /// Asks for serde-saphyr's spanned newtype, so that its reader gives
    /// the value with its places as a map (marker, `value`, `referenced`,
    /// `defined`), as it does for its own `Spanned`. The quick reader
    /// gives a list instead: the value, then its place as 24 bytes
    /// (`referenced` and `defined` are one place there: it reads no
    /// aliases). Any other reader gives the plain value, placed nowhere.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(NEWTYPE_NAME, NewtypeVisitor(PhantomData))
    }
}

struct NewtypeVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for NewtypeVisitor<T> {
    type Value = Spanned<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value with its place")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
        inner.deserialize_any(ReprVisitor(PhantomData))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let value = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let at: AtBytes = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Ok(Spanned {
            value,
            referenced: at.0,
            defined: at.0,
        })
    }
}

/// An [`At`] as the quick reader gives it.
struct AtBytes(At);

impl<'de> Deserialize<'de> for AtBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl Visitor<'_> for BytesVisitor {
            type Value = AtBytes;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a place as 24 bytes")
            }

            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<AtBytes, E> {
                at_of_bytes(bytes)
                    .map(AtBytes)
                    .ok_or_else(|| E::invalid_length(bytes.len(), &self))
            }
        }
        deserializer.deserialize_bytes(BytesVisitor)
    }
}

/// serde-saphyr's map of a spanned value, or a plain value.
struct ReprVisitor<T>(PhantomData<T>);

macro_rules! plain {
    ($($method:ident: $type:ty),*) => {$(
        fn $method<E: de::Error>(self, v: $type) -> Result<Self::Value, E> {
            plain(T::deserialize(de::IntoDeserializer::<E>::into_deserializer(v)))
        }
    )*};
}

fn plain<T, E>(value: Result<T, E>) -> Result<Spanned<T>, E> {
    value.map(|value| Spanned {
        value,
        referenced: At::UNKNOWN,
        defined: At::UNKNOWN,
    })
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for ReprVisitor<T> {
    type Value = Spanned<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    plain!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_string: String);

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        plain(T::deserialize(de::value::StrDeserializer::<E>::new(v)))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        plain(T::deserialize(
            de::value::BorrowedStrDeserializer::<E>::new(v),
        ))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        plain(T::deserialize(de::value::UnitDeserializer::<E>::new()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        plain(T::deserialize(de::value::SeqAccessDeserializer::new(seq)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let first = map.next_key::<String>()?;
        if first.as_deref() != Some(MARKER) {
            // A map of the user's, not serde-saphyr's spanned map.
            return plain(T::deserialize(de::value::MapAccessDeserializer::new(
                PrependKey { first, rest: map },
            )));
        }
        map.next_value::<IgnoredAny>()?;
        let (mut value, mut referenced, mut defined) = (None, None, None);
        while let Some(field) = map.next_key::<String>()? {
            match field.as_str() {
                "value" => value = Some(map.next_value()?),
                "referenced" => {
                    referenced = Some(At::from(&map.next_value::<serde_saphyr::Location>()?))
                }
                "defined" => defined = Some(At::from(&map.next_value::<serde_saphyr::Location>()?)),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let value = value.ok_or_else(|| de::Error::missing_field("value"))?;
        let referenced = referenced.unwrap_or(At::UNKNOWN);
        Ok(Spanned {
            value,
            referenced,
            defined: defined.unwrap_or(referenced),
        })
    }
}

/// A map whose first key was already taken, to be read as a whole.
struct PrependKey<A> {
    first: Option<String>,
    rest: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for PrependKey<A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match self.first.take() {
            Some(key) => seed
                .deserialize(de::value::StringDeserializer::new(key))
                .map(Some),
            None => self.rest.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.rest.next_value_seed(seed)
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    /// The value only, as serde-saphyr's `Spanned` writes it.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Doc {
        name: Spanned<String>,
        ports: Vec<Spanned<u16>>,
        #[serde(default)]
        env: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    }

    #[derive(serde::Deserialize)]
    struct TheirDoc {
        name: serde_saphyr::Spanned<String>,
        ports: Vec<serde_saphyr::Spanned<u16>>,
        #[serde(default)]
        env: Option<serde_saphyr::Spanned<std::collections::BTreeMap<String, String>>>,
    }

    #[test]
    fn serde_saphyrs_reader_gives_the_places_its_own_spanned_gets() {
        let text = "name: web # é\nports: [80, 8080]\nenv: &e\n  A: b\n";
        let ours: Doc = serde_saphyr::from_str(text).unwrap();
        let theirs: TheirDoc = serde_saphyr::from_str(text).unwrap();
        assert_eq!(ours.name.value, "web");
        assert_eq!(ours.name.referenced, At::from(&theirs.name.referenced));
        assert_eq!(ours.name.defined, At::from(&theirs.name.defined));
        assert_eq!(ours.name.referenced.line(), 1);
        assert_eq!(ours.name.referenced.column(), 7);
        assert_eq!(ours.name.referenced.byte_offset(), Some(6));
        assert_eq!(ours.name.referenced.byte_len(), Some(3));
        for (ours, theirs) in ours.ports.iter().zip(&theirs.ports) {
            assert_eq!(ours.value, theirs.value);
            assert_eq!(ours.referenced, At::from(&theirs.referenced));
        }
        let (env, their_env) = (ours.env.unwrap(), theirs.env.unwrap());
        assert_eq!(env.value["A"], "b");
        assert_eq!(env.referenced, At::from(&their_env.referenced));
        assert_eq!(env.referenced.line(), 4);
    }

    #[test]
    fn other_readers_give_the_value_placed_nowhere() {
        let doc: Doc =
            serde_json::from_str(r#"{"name": "web", "ports": [80], "env": {"A": "b"}}"#).unwrap();
        assert_eq!(doc.name.value, "web");
        assert_eq!(doc.name.referenced, At::UNKNOWN);
        assert_eq!(doc.ports[0].value, 80);
        assert_eq!(doc.env.unwrap().value["A"], "b");
        assert_eq!(At::UNKNOWN.byte_offset(), None);
    }

    #[test]
    fn a_place_goes_through_its_bytes_unchanged() {
        let at = At::new(3, 7, 40, 5, 42, 6);
        assert_eq!(at_of_bytes(&at_bytes(&at)), Some(at));
        assert_eq!(at_of_bytes(&at_bytes(&At::UNKNOWN)), Some(At::UNKNOWN));
        assert_eq!(at_of_bytes(&[0; 23]), None);
    }
}
