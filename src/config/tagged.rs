//! `#[serde(deserialize_with)]` helpers for internally tagged enums (`kind: local`).
//!
//! serde reads an internally tagged enum by buffering the mapping and decoding the
//! variant after the YAML deserialiser has returned, so an error inside the variant
//! (an unknown field, a missing one) is stamped with the position and path of the
//! *enclosing* mapping: a bad `cutover:` setting would be reported at line 1 of the
//! file. These helpers decode the variant while the YAML deserialiser is still on the
//! tagged mapping, so such an error carries that mapping's position and path.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// Reads a tagged enum, reporting its errors at the tagged mapping.
pub fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    deserializer.deserialize_map(TaggedVisitor(PhantomData))
}

/// Reads an optional tagged enum (`null` or absent is `None`).
pub fn option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(Option::<Tagged<T>>::deserialize(deserializer)?.map(|t| t.0))
}

/// A tagged enum read through [`deserialize`].
struct Tagged<T>(T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Tagged<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer).map(Tagged)
    }
}

struct TaggedVisitor<T>(PhantomData<T>);

impl<'de, T: DeserializeOwned> Visitor<'de> for TaggedVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping with a `kind`")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        // Buffering into a JSON value keeps serde_yaml out of the types: the buffer is
        // plain data, and the variant's own `Deserialize` runs on it unchanged.
        let buffered = serde_json::Value::deserialize(MapAccessDeserializer::new(map))?;
        T::deserialize(buffered).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
    enum Shape {
        Square { side: u32 },
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Holder {
        #[serde(deserialize_with = "super::deserialize")]
        shape: Shape,
        #[serde(default, deserialize_with = "super::option")]
        spare: Option<Shape>,
    }

    #[test]
    fn reads_variants_and_options() {
        let h: Holder = serde_yaml::from_str("shape: {kind: square, side: 2}\n").unwrap();
        assert_eq!(h.shape, Shape::Square { side: 2 });
        assert_eq!(h.spare, None);
        let h: Holder = serde_yaml::from_str(
            "shape: {kind: square, side: 2}\nspare:\n  kind: square\n  side: 3\n",
        )
        .unwrap();
        assert_eq!(h.spare, Some(Shape::Square { side: 3 }));
    }

    #[test]
    fn errors_point_at_the_tagged_mapping() {
        let text = "a: 1\nshape:\n  kind: square\n  sid: 2\n";
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            a: u32,
            #[serde(deserialize_with = "super::deserialize")]
            shape: Shape,
        }
        let error = serde_yaml::from_str::<Outer>(text).unwrap_err();
        let location = error.location().unwrap();
        assert_eq!((location.line(), location.column()), (3, 3));
        assert!(
            error.to_string().starts_with("shape: unknown field `sid`"),
            "{error}"
        );
    }
}
