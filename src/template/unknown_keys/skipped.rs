//! Whether a typed parse skipped a map entry: the serde deserializer of the
//! YAML, wrapped so that every value a struct has no field for (serde asks
//! for those with `deserialize_ignored_any`) raises a flag. The typed parse
//! then tells, at no extra cost, whether the located pass of `unknown_keys`
//! has anything to find: a second read of the text costs as much as the
//! first, so only files with a mistake pay for it.

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// `T` read from `de`, and whether the read skipped any value.
pub fn deserialize<'de, D, T>(de: D) -> Result<(T, bool), D::Error>
where
    D: Deserializer<'de>,
    T: de::Deserialize<'de>,
{
    let seen = Seen::default();
    let value = T::deserialize(Watch {
        inner: de,
        seen: &seen,
    })?;
    Ok((value, seen.skipped.get()))
}

/// What the watch has seen so far.
#[derive(Default)]
struct Seen {
    /// A value was skipped.
    skipped: Cell<bool>,
    /// The key just read is the one serde-saphyr puts first in the map it
    /// hands `Spanned<T>`: a marker whose value `Spanned` skips, which is no
    /// key of the user's. (Should serde-saphyr rename it, every file takes
    /// the located pass: slower, never wrong.)
    span_marker: Cell<bool>,
}

/// serde-saphyr's name for that key.
const SPAN_MARKER: &str = "__serde_saphyr_private_spanned";

/// A deserializer, visitor, seed or access that passes `seen` on to
/// everything it hands out, so that no nested value escapes the watch.
struct Watch<'a, X> {
    inner: X,
    seen: &'a Seen,
}

impl<'a, X> Watch<'a, X> {
    fn wrap<Y>(&self, inner: Y) -> Watch<'a, Y> {
        Watch {
            inner,
            seen: self.seen,
        }
    }

    /// Notes whether a string just read is the span marker.
    fn note(&self, text: &str) {
        if text == SPAN_MARKER {
            self.seen.span_marker.set(true);
        }
    }
}

/// Forwards `deserialize_*` methods to the inner deserializer, with the
/// visitor watched.
macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let visitor = self.wrap(visitor);
            self.inner.$method($($arg,)* visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Watch<'_, D> {
    type Error = D::Error;

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.seen.skipped.set(true);
        self.inner.deserialize_ignored_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }

    forward_deserialize! {
        deserialize_any(), deserialize_bool(), deserialize_i8(), deserialize_i16(),
        deserialize_i32(), deserialize_i64(), deserialize_i128(), deserialize_u8(),
        deserialize_u16(), deserialize_u32(), deserialize_u64(), deserialize_u128(),
        deserialize_f32(), deserialize_f64(), deserialize_char(), deserialize_str(),
        deserialize_string(), deserialize_bytes(), deserialize_byte_buf(),
        deserialize_option(), deserialize_unit(), deserialize_seq(), deserialize_map(),
        deserialize_identifier(),
        deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str),
        deserialize_tuple(len: usize),
        deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_struct(name: &'static str, fields: &'static [&'static str]),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
    }
}

/// Forwards `visit_*` methods that take a plain value.
macro_rules! forward_visit {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Watch<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool), visit_i8(i8), visit_i16(i16), visit_i32(i32), visit_i64(i64),
        visit_i128(i128), visit_u8(u8), visit_u16(u16), visit_u32(u32), visit_u64(u64),
        visit_u128(u128), visit_f32(f32), visit_f64(f64), visit_char(char),
        visit_bytes(&[u8]), visit_borrowed_bytes(&'de [u8]), visit_byte_buf(Vec<u8>),
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        self.note(v);
        self.inner.visit_str(v)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        self.note(v);
        self.inner.visit_borrowed_str(v)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        self.note(&v);
        self.inner.visit_string(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        let d = self.wrap(d);
        self.inner.visit_some(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        let d = self.wrap(d);
        self.inner.visit_newtype_struct(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let seq = self.wrap(seq);
        self.inner.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let map = self.wrap(map);
        self.inner.visit_map(map)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        let data = self.wrap(data);
        self.inner.visit_enum(data)
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Watch<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        let d = self.wrap(d);
        self.inner.deserialize(d)
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Watch<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Watch<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        if self.seen.span_marker.replace(false) {
            return self.inner.next_value_seed(seed);
        }
        let seed = self.wrap(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'a, 'de, A: EnumAccess<'de>> EnumAccess<'de> for Watch<'a, A> {
    type Error = A::Error;
    type Variant = Watch<'a, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let seen = self.seen;
        let (value, inner) = self.inner.variant_seed(Watch { inner: seed, seen })?;
        Ok((value, Watch { inner, seen }))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Watch<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.struct_variant(fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use crate::template::schema::Document;

    fn skips(text: &str) -> bool {
        let options = crate::template::yaml_options();
        let (_, skipped) =
            serde_saphyr::with_deserializer_from_str_with_options(text, options, |yaml| {
                super::deserialize::<_, Document>(yaml)
            })
            .unwrap();
        skipped
    }

    #[test]
    fn a_key_skipped_at_any_level_is_noticed() {
        let base = "app: shop\nservices:\n  web:\n    image: x\n    healthcheck: {test: [NONE]}\n    depends_on: {db: {condition: service_started}}\n  db: {image: y}\nvolumes:\n  data: {}\ndefaults: {tag: \"0\"}\ninstances:\n  live: {tag: \"1\", services: {db: {enabled: false}}}\n";
        assert!(!skips(base), "a file without unknown keys");
        for (known, unknown) in [
            ("services:\n", "servies: {}\nservices:\n"),
            ("    image: x\n", "    image: x\n    enviroment: {}\n"),
            ("{test: [NONE]}", "{tset: [NONE]}"),
            (
                "{condition: service_started}",
                "{condtion: service_started}",
            ),
            ("{image: y}", "{image: y, prots: []}"),
            ("data: {}", "data: {extrnal: true}"),
            ("{enabled: false}", "{enabeld: false}"),
        ] {
            let text = base.replacen(known, unknown, 1);
            assert_ne!(text, base);
            assert!(skips(&text), "{unknown:?} is noticed");
        }
    }
}
