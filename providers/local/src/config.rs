//! The settings of a `kind: local` provider and the port range they name.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Settings of a `kind: local` provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// Ports this provider hands out to its workloads, `FIRST-LAST` (two local providers
    /// on one host must not overlap). Each copy gets one as `PORT`.
    pub ports: PortRange,
    /// The address workloads are reached at and that a port must be free on
    /// (default `127.0.0.1`). Passed to the workload as `LIFEBOAT_BIND`.
    #[serde(default = "default_bind")]
    pub bind: IpAddr,
    /// Where this provider keeps its state files and logs. By default a folder named
    /// after the provider inside the controller's state folder. A relative path is
    /// taken as given; the controller resolves it against the config file first. Must
    /// not be shared with another provider: every record in it counts as this
    /// provider's copy.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

fn default_bind() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// An inclusive range of TCP ports, written `FIRST-LAST` (or a single `PORT`).
///
/// Parsing guarantees `1 <= first <= last`, so the range is never empty and never
/// contains port 0 (which would mean "any port" to the OS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    first: u16,
    last: u16,
}

/// Why a port range did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port range {input:?}: {reason} (expected FIRST-LAST, e.g. 20000-20099)")]
pub struct PortRangeError {
    input: String,
    reason: &'static str,
}

impl PortRange {
    /// A range from its bounds, checked like a parsed one.
    pub fn new(first: u16, last: u16) -> Result<Self, PortRangeError> {
        let err = |reason| PortRangeError {
            input: format!("{first}-{last}"),
            reason,
        };
        if first == 0 {
            return Err(err("port 0 is not a port"));
        }
        if first > last {
            return Err(err("the first port is above the last"));
        }
        Ok(PortRange { first, last })
    }

    /// The first port.
    pub fn first(self) -> u16 {
        self.first
    }

    /// The last port (inclusive).
    pub fn last(self) -> u16 {
        self.last
    }

    /// How many ports the range holds (at least 1).
    pub fn len(self) -> usize {
        usize::from(self.last - self.first) + 1
    }

    /// Always false: a parsed range holds at least one port. Present because clippy
    /// expects it next to `len`.
    pub fn is_empty(self) -> bool {
        false
    }

    /// Whether `port` lies in the range.
    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// Every port of the range, lowest first.
    pub fn iter(self) -> impl Iterator<Item = u16> {
        self.first..=self.last
    }
}

impl FromStr for PortRange {
    type Err = PortRangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| PortRangeError {
            input: s.to_owned(),
            reason,
        };
        let (first, last) = match s.trim().split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (s.trim(), s.trim()),
        };
        let parse = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| err("each bound must be a number from 1 to 65535"))
        };
        let (first, last) = (parse(first)?, parse(last)?);
        PortRange::new(first, last).map_err(|e| err(e.reason))
    }
}

impl TryFrom<String> for PortRange {
    type Error = PortRangeError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PortRange> for String {
    fn from(r: PortRange) -> String {
        r.to_string()
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_ranges_and_single_ports() {
        let r: PortRange = "20000-20009".parse().unwrap();
        assert_eq!((r.first(), r.last(), r.len()), (20000, 20009, 10));
        let one: PortRange = " 8080 ".parse().unwrap();
        assert_eq!((one.first(), one.last(), one.len()), (8080, 8080, 1));
    }

    #[test]
    fn rejects_bad_ranges_with_a_clear_message() {
        for (input, reason) in [
            ("", "number"),
            ("abc", "number"),
            ("10-", "number"),
            ("-10", "number"),
            ("1-70000", "number"),
            ("0-10", "port 0"),
            ("20-10", "above the last"),
            ("1-2-3", "number"),
        ] {
            let e = input.parse::<PortRange>().unwrap_err().to_string();
            assert!(e.contains(reason), "{input:?}: {e}");
            assert!(e.contains("FIRST-LAST"), "{input:?}: {e}");
        }
    }

    #[test]
    fn config_reads_from_json_with_defaults_and_rejects_unknown_fields() {
        let c: LocalConfig = serde_json::from_str(r#"{"ports":"100-199"}"#).unwrap();
        assert_eq!(c.ports.len(), 100);
        assert_eq!(c.bind, default_bind());
        assert_eq!(c.dir, None);
        assert!(serde_json::from_str::<LocalConfig>(r#"{"ports":"1-2","port":3}"#).is_err());
        let bad = serde_json::from_str::<LocalConfig>(r#"{"ports":"9-1"}"#).unwrap_err();
        assert!(bad.to_string().contains("invalid port range"), "{bad}");
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_display_round_trips(s in ".{0,16}", a: u16, b: u16) {
            let _ = s.parse::<PortRange>();
            if let Ok(r) = PortRange::new(a, b) {
                prop_assert_eq!(r.to_string().parse::<PortRange>().unwrap(), r);
                prop_assert_eq!(r.iter().count(), r.len());
                prop_assert!(r.contains(a) && r.contains(b));
            }
        }
    }
}
