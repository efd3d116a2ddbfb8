//! The settings of the `dns` cutover backend: RFC 2136 dynamic updates signed with TSIG.
//!
//! ```yaml
//! cutover:
//!   kind: dns
//!   zone: example.com
//!   servers: ["192.0.2.53", "198.51.100.53:5353"]   # the primary first, then secondaries
//!   hosted_by: ns1-vendor                             # who runs these servers (audit)
//!   tsig:
//!     name: lifeboat
//!     algorithm: hmac-sha256
//!     secret_file: /etc/lifeboat/tsig.key             # or secret_env: LIFEBOAT_TSIG
//!   ttl: 60s
//!   records:
//!     api: { type: CNAME, ttl: 30s }                  # per-workload overrides
//! ```
//!
//! The secret is never written in the config itself: only a file or an environment
//! variable that holds it, so the config can be committed and shown in reports.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;

/// `cutover: {kind: dns, ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// The zone lifeboat updates (`example.com`); every public name must lie inside it.
    pub zone: String,
    /// Authoritative servers as `IP` or `IP:PORT` (port 53 by default). The first is the
    /// primary that receives the UPDATE; the others are secondaries lifeboat waits for.
    /// Addresses, not names: resolving the DNS servers through DNS would be circular.
    pub servers: Vec<ServerAddr>,
    /// The vendor that runs these servers (a vendor name from `vendors`, or any other
    /// name for a DNS host that runs no workloads). `lifeboat validate` warns when it
    /// also runs workloads, and when it is unset.
    #[serde(default)]
    pub hosted_by: Option<String>,
    /// The key that signs updates.
    pub tsig: TsigConfig,
    /// TTL of the records lifeboat writes (whole seconds). Clients may keep using the
    /// old address this long after a cutover, so drills add it to the RTO.
    #[serde(default = "default_ttl", with = "duration")]
    pub ttl: Duration,
    /// The record type written for every workload; `auto` picks A for an IPv4 address,
    /// AAAA for an IPv6 address and CNAME for a host name.
    #[serde(default, rename = "type")]
    pub record_type: RecordKind,
    /// Time limit of one query or update exchange with one server.
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    /// How long to wait, after the primary accepted the update, until every secondary
    /// answers the new value.
    #[serde(default = "default_propagation_timeout", with = "duration")]
    pub propagation_timeout: Duration,
    /// Per-workload overrides, keyed by workload name.
    #[serde(default)]
    pub records: BTreeMap<String, RecordOverride>,
}

fn default_ttl() -> Duration {
    Duration::from_secs(60)
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_propagation_timeout() -> Duration {
    Duration::from_secs(60)
}

/// What may differ for one workload's record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordOverride {
    /// Record type for this workload.
    #[serde(default, rename = "type")]
    pub record_type: Option<RecordKind>,
    /// TTL for this workload.
    #[serde(default, with = "duration::option")]
    pub ttl: Option<Duration>,
}

/// The type of record that carries a workload's address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordKind {
    /// A for IPv4 addresses, AAAA for IPv6, CNAME for host names.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// IPv4 address.
    A,
    /// IPv6 address.
    #[serde(rename = "AAAA")]
    Aaaa,
    /// Alias to a host name.
    #[serde(rename = "CNAME")]
    Cname,
}

/// A TSIG key, by reference: the secret itself lives in a file or the environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigConfig {
    /// The key's name, as the server knows it.
    pub name: String,
    /// The HMAC algorithm.
    pub algorithm: TsigAlgorithm,
    /// A file holding the base64 secret, or a BIND key file as `tsig-keygen` writes it
    /// (relative paths are relative to the config file).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// An environment variable holding the base64 secret.
    #[serde(default)]
    pub secret_env: Option<String>,
}

/// The TSIG algorithms lifeboat signs with (RFC 8945 recommends SHA-256 and up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TsigAlgorithm {
    /// HMAC-SHA256, the common default (`tsig-keygen`'s).
    HmacSha256,
    /// HMAC-SHA512.
    HmacSha512,
}

impl fmt::Display for TsigAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TsigAlgorithm::HmacSha256 => "hmac-sha256",
            TsigAlgorithm::HmacSha512 => "hmac-sha512",
        })
    }
}

/// A DNS server address: `IP`, `IP:PORT` or `[IPv6]:PORT`; the port defaults to 53.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerAddr(pub SocketAddr);

impl FromStr for ServerAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(ServerAddr(addr));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(ServerAddr(SocketAddr::new(ip, 53)));
        }
        Err(format!(
            "invalid DNS server {text:?}: expected an IP address with an optional port \
             (\"192.0.2.53\", \"192.0.2.53:5353\", \"[2001:db8::53]:53\")"
        ))
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for ServerAddr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ServerAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn server_addresses_default_to_port_53() {
        let cases = [
            ("192.0.2.53", "192.0.2.53:53"),
            ("192.0.2.53:5353", "192.0.2.53:5353"),
            ("2001:db8::53", "[2001:db8::53]:53"),
            ("[2001:db8::53]:5300", "[2001:db8::53]:5300"),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<ServerAddr>().unwrap().to_string(), want);
        }
        for bad in ["ns1.example.com", "192.0.2.53:99999", "", "1.2.3"] {
            assert!(
                bad.parse::<ServerAddr>().is_err(),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn full_config_reads_with_defaults() {
        let yaml = r#"
zone: example.com
servers: ["192.0.2.53", "198.51.100.53:5353"]
tsig: { name: lifeboat, algorithm: hmac-sha512, secret_env: TSIG }
records:
  api: { type: CNAME, ttl: 30s }
"#;
        let cfg: DnsConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(cfg.servers.len(), 2);
        assert_eq!(cfg.ttl, Duration::from_secs(60));
        assert_eq!(cfg.record_type, RecordKind::Auto);
        assert_eq!(cfg.tsig.algorithm, TsigAlgorithm::HmacSha512);
        assert_eq!(cfg.records["api"].record_type, Some(RecordKind::Cname));
        assert_eq!(cfg.records["api"].ttl, Some(Duration::from_secs(30)));
    }

    #[test]
    fn an_inline_secret_is_an_unknown_field() {
        let yaml = r#"
zone: example.com
servers: ["192.0.2.53"]
tsig: { name: k, algorithm: hmac-sha256, secret: c2VjcmV0 }
"#;
        let err = serde_yaml::from_str::<DnsConfig>(yaml).unwrap_err();
        assert!(err.to_string().contains("unknown field `secret`"), "{err}");
    }

    proptest! {
        #[test]
        fn any_socket_address_round_trips(ip in any::<IpAddr>(), port in any::<u16>()) {
            let addr = SocketAddr::new(ip, port);
            let parsed: ServerAddr = addr.to_string().parse().unwrap();
            prop_assert_eq!(parsed.0, addr);
        }

        #[test]
        fn parsing_never_panics(text in ".*") {
            let _ = text.parse::<ServerAddr>();
        }
    }
}
