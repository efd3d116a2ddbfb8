//! Durations in the config are human-friendly strings: `10s`, `2m`, `1h 30m`, `500ms`.
//! Parsing happens during deserialisation, so a bad duration is reported by serde_yaml
//! with its line and column.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serializer};

/// Parses a friendly duration (`10s`, `2m`, `1h30m`, `250ms`); negative values are refused.
pub fn parse(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text.trim().parse().map_err(|_| {
        format!("invalid duration {text:?} (expected e.g. \"10s\", \"2m\", \"1h 30m\")")
    })?;
    Duration::try_from(signed).map_err(|_| format!("duration {text:?} must not be negative"))
}

/// Formats a duration the way [`parse`] reads it.
pub fn format(duration: Duration) -> String {
    let signed = jiff::SignedDuration::try_from(duration).unwrap_or(jiff::SignedDuration::MAX);
    format!("{signed:#}")
}

/// `#[serde(with = "duration")]` for `Duration` fields.
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*duration))
}

/// `#[serde(with = "duration")]` for `Duration` fields.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_str(FriendlyVisitor)
}

/// Parses inside the deserialiser's `visit_str`, so a bad duration is reported at the
/// duration's own line and column rather than at the mapping around it.
struct FriendlyVisitor;

impl Visitor<'_> for FriendlyVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"10s\", \"2m\" or \"1h 30m\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text).map_err(E::custom)
    }
}

/// A duration read through [`FriendlyVisitor`], for the optional form.
struct Friendly(Duration);

impl<'de> Deserialize<'de> for Friendly {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer).map(Friendly)
    }
}

/// `#[serde(with = "duration::option")]` for `Option<Duration>` fields.
pub mod option {
    use super::*;

    /// Serialises `Some` as a friendly string and `None` as null.
    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => super::serialize(d, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads an optional friendly duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<Friendly>::deserialize(deserializer)?.map(|f| f.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_operators_write() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn rejects_garbage_and_negatives() {
        assert!(parse("soon").is_err());
        assert!(parse("-5s").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn format_round_trips() {
        for d in [
            Duration::from_secs(10),
            Duration::from_millis(1500),
            Duration::from_secs(5400),
        ] {
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
