//! Maps a field path (`workloads[1].depends_on[0]`) back to its line and column in the
//! YAML text.
//!
//! serde_yaml keeps no positions in the values it hands out, but it stamps the mark of
//! the node being deserialised on every error that has none yet. So we deserialise the
//! text again with a seed that walks the path, skips everything else, and fails on
//! purpose at the target node: the error's location is the node's position. Where the
//! path leaves the document (an optional field left out), the walk fails at the deepest
//! node that exists, which is the best place to point at.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path from the document root to one node, shown as `workloads[1].depends_on[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The root of the document.
    pub(crate) fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// This path extended by a mapping key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        FieldPath(segments)
    }

    /// This path extended by a sequence index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        FieldPath(segments)
    }

    /// Reads the written form back. Keys holding `.` or `[` cannot be told apart from
    /// nesting; they are read as nesting, which only makes a position less precise.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut segments = Vec::new();
        if text.is_empty() || text == "." {
            return Some(FieldPath(segments));
        }
        for part in text.split('.') {
            let (key, mut rest) = match part.find('[') {
                Some(at) => part.split_at(at),
                None => (part, ""),
            };
            if !key.is_empty() {
                segments.push(Segment::Key(key.to_owned()));
            } else if rest.is_empty() {
                return None;
            }
            while let Some(inner) = rest.strip_prefix('[') {
                let close = inner.find(']')?;
                segments.push(Segment::Index(inner[..close].parse().ok()?));
                rest = &inner[close + 1..];
            }
            if !rest.is_empty() {
                return None;
            }
        }
        Some(FieldPath(segments))
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if n == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Where a path points in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// False when the path leaves the document and this is its deepest existing node.
    pub exact: bool,
}

/// Which part of the target to point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aim {
    /// The node's value (`dbb` in `- dbb`, or the start of a mapping).
    Value,
    /// The key that holds it (`bogus` in `bogus: 1`); the last segment must be a key.
    Key,
    /// The second time that key appears in its mapping (a duplicate).
    SecondKey,
}

impl Aim {
    /// Whether the walk stops at the last key once it has seen it `seen` times before.
    fn stops_at_key(self, seen: usize) -> bool {
        match self {
            Aim::Value => false,
            Aim::Key => seen == 0,
            Aim::SecondKey => seen == 1,
        }
    }
}

const FOUND: &str = "\u{1}lifeboat:found";
const ABSENT: &str = "\u{1}lifeboat:absent";

/// The position of `path` in `text`. `None` only when the text does not parse far
/// enough to reach any node of the path (or has no position at all).
pub(crate) fn locate(text: &str, path: &FieldPath, aim: Aim) -> Option<Position> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    let walk = Walk { rest: &path.0, aim };
    let error = match walk.deserialize(deserializer) {
        // The walk always fails on purpose; success means the path was empty in a
        // document serde_yaml treated as empty.
        Ok(()) => return None,
        Err(error) => error,
    };
    let location = error.location()?;
    let message = error.to_string();
    Some(Position {
        line: location.line(),
        column: location.column(),
        exact: message.contains(FOUND),
    })
}

/// The part of the path still to walk.
struct Walk<'p> {
    rest: &'p [Segment],
    aim: Aim,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        match self.rest.first() {
            None => deserializer.deserialize_any(Target),
            Some(Segment::Key(_)) => deserializer.deserialize_map(self),
            Some(Segment::Index(_)) => deserializer.deserialize_seq(self),
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping or sequence on the path")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Segment::Key(wanted), rest)) = self.rest.split_first() else {
            return Err(de::Error::custom(ABSENT));
        };
        let last = rest.is_empty();
        let mut seen = 0;
        while let Some(matched) = map.next_key_seed(KeySeed {
            wanted,
            fail_on_match: last && self.aim.stops_at_key(seen),
        })? {
            if matched && !(last && self.aim == Aim::SecondKey) {
                return map.next_value_seed(Walk {
                    rest,
                    aim: self.aim,
                });
            }
            seen += usize::from(matched);
            map.next_value::<IgnoredAny>()?;
        }
        Err(de::Error::custom(ABSENT))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Segment::Index(wanted), rest)) = self.rest.split_first() else {
            return Err(de::Error::custom(ABSENT));
        };
        for _ in 0..*wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(de::Error::custom(ABSENT));
            }
        }
        match seq.next_element_seed(Walk {
            rest,
            aim: self.aim,
        })? {
            Some(()) => Ok(()),
            None => Err(de::Error::custom(ABSENT)),
        }
    }
}

/// Reads one mapping key: `true` when it is the wanted one. With `fail_on_match` it
/// fails right there instead, so the error carries the key's own position.
struct KeySeed<'a> {
    wanted: &'a str,
    fail_on_match: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        let matched = key == self.wanted;
        if matched && self.fail_on_match {
            return Err(E::custom(FOUND));
        }
        Ok(matched)
    }

    fn visit_bool<E: de::Error>(self, key: bool) -> Result<bool, E> {
        self.visit_str(&key.to_string())
    }

    fn visit_i64<E: de::Error>(self, key: i64) -> Result<bool, E> {
        self.visit_str(&key.to_string())
    }

    fn visit_u64<E: de::Error>(self, key: u64) -> Result<bool, E> {
        self.visit_str(&key.to_string())
    }

    fn visit_f64<E: de::Error>(self, key: f64) -> Result<bool, E> {
        self.visit_str(&key.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    // A complex key (a mapping or sequence used as a key) is never on a path; skip it.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

/// The node at the end of the path: whatever it is, fail, so its mark is reported.
struct Target;

impl<'de> Visitor<'de> for Target {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(FOUND)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
vendors:
  - name: acme
    accounts: [prod]
workloads:
  - name: db
  - name: api
    depends_on:
      - dbb
    env: {A: b}
";

    fn at(path: &str, aim: Aim) -> Option<(usize, usize, bool)> {
        locate(DOC, &FieldPath::parse(path).unwrap(), aim).map(|p| (p.line, p.column, p.exact))
    }

    #[test]
    fn path_round_trips_through_text() {
        for text in [
            "workloads[1].depends_on[0]",
            "a",
            "a[0][2].b",
            "policy.mode",
        ] {
            assert_eq!(FieldPath::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(FieldPath::parse(".").unwrap(), FieldPath::root());
        for bad in ["a[x]", "a[1", "a..b", "a[1]b"] {
            assert_eq!(FieldPath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn finds_values_in_block_and_flow_style() {
        assert_eq!(
            at("workloads[1].depends_on[0]", Aim::Value),
            Some((8, 9, true))
        );
        assert_eq!(
            at("vendors[0].accounts[0]", Aim::Value),
            Some((3, 16, true))
        );
        assert_eq!(at("workloads[1].env.A", Aim::Value), Some((9, 14, true)));
        assert_eq!(at("workloads[1]", Aim::Value), Some((6, 5, true)));
    }

    #[test]
    fn finds_keys() {
        assert_eq!(at("workloads[1].env", Aim::Key), Some((9, 5, true)));
        assert_eq!(at("workloads[1].env.A", Aim::Key), Some((9, 11, true)));
    }

    #[test]
    fn finds_the_second_of_a_duplicated_key() {
        let text = "a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n";
        let path = FieldPath::parse("b.c").unwrap();
        let second = locate(text, &path, Aim::SecondKey).unwrap();
        assert_eq!((second.line, second.column, second.exact), (5, 3, true));
        let only = locate(text, &FieldPath::parse("b.d").unwrap(), Aim::SecondKey).unwrap();
        assert!(!only.exact);
    }

    #[test]
    fn missing_parts_point_at_the_deepest_existing_node() {
        assert_eq!(
            at("workloads[1].placement", Aim::Value),
            Some((6, 5, false))
        );
        assert_eq!(at("workloads[7].name", Aim::Value), Some((5, 3, false)));
        assert_eq!(at("vendors[0].name[3]", Aim::Value), Some((2, 11, false)));
    }

    #[test]
    fn broken_text_gives_no_exact_position() {
        let path = FieldPath::parse("a.b").unwrap();
        assert!(locate("a: [", &path, Aim::Value).is_none_or(|p| !p.exact));
        assert!(locate("", &path, Aim::Value).is_none_or(|p| !p.exact));
    }
}
