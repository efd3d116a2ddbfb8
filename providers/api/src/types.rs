//! Plain request and response types of the contract. All are serde-serialisable so the
//! controller can journal them and out-of-process adapters can exchange them as JSON.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Owner;

/// The fencing token of a placement: it only grows. A copy of a workload whose generation
/// is lower than the workload's current one is stale and must never receive traffic.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Generation(pub u64);

impl Generation {
    /// The generation after this one.
    pub fn next(self) -> Generation {
        Generation(self.0 + 1)
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What to run: a container image (with an optional command override) or a plain command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Run {
    /// A container image; `command` overrides the image's entrypoint when not empty.
    Image {
        /// Image reference, e.g. `ghcr.io/acme/api:1.4`.
        image: String,
        /// Optional command and arguments.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        command: Vec<String>,
    },
    /// A command run directly on the host (argv form, no shell).
    Command {
        /// Program and arguments.
        command: Vec<String>,
    },
}

/// How the controller and adapters tell a running copy is able to serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HealthCheck {
    /// An HTTP GET on the workload's port that must answer with a 2xx status.
    Http {
        /// Request path, e.g. `/healthz`.
        path: String,
    },
    /// A TCP connect to the workload's port.
    Tcp,
}

/// The one-line form adapters write into tags and labels (EC2's `lifeboat.dev/health`
/// tag, a bare-metal copy's metadata) so `inspect` can run the check later without the
/// workload spec: `tcp`, or `http:` followed by the path exactly as given. [`FromStr`]
/// reads it back, so resources written by earlier versions still parse.
///
/// [`FromStr`]: std::str::FromStr
impl fmt::Display for HealthCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealthCheck::Tcp => f.write_str("tcp"),
            HealthCheck::Http { path } => write!(f, "http:{path}"),
        }
    }
}

impl std::str::FromStr for HealthCheck {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(HealthCheck::Tcp),
            other => other
                .strip_prefix("http:")
                .map(|path| HealthCheck::Http {
                    path: path.to_owned(),
                })
                .ok_or_else(|| ParseError::new(s, "a health check (`tcp` or `http:PATH`)")),
        }
    }
}

/// A text that is not the one-line form of a type (here [`HealthCheck`] and
/// [`crate::ErrorClass`]; the controller's own such types reuse it): what was given and
/// what was expected, so a tag edited by hand is reported, not guessed at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not {expected}")]
pub struct ParseError {
    /// The text that did not parse.
    pub input: String,
    /// What it should have been, for humans.
    pub expected: &'static str,
}

impl ParseError {
    /// `input` is not `expected`.
    pub fn new(input: &str, expected: &'static str) -> ParseError {
        ParseError {
            input: input.to_owned(),
            expected,
        }
    }
}

/// Resources one replica needs. Zero means "not stated" for that dimension. Unknown
/// fields are refused, so a typo in a config (`cpu_milis`) is an error, not a default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU in millicores.
    #[serde(default)]
    pub cpu_millis: u64,
    /// Memory in MiB.
    #[serde(default)]
    pub memory_mib: u64,
}

/// How much a provider can hold. `None` in a dimension means "unbounded / unknown".
/// Unknown fields are refused, so `capacity: {replica: 8}` is an error, not "unbounded".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// Replicas (of any workload) it can run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u64>,
    /// CPU in millicores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_millis: Option<u64>,
    /// Memory in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
}

/// Everything an adapter needs to know about a workload to run it; placement rules,
/// dependencies and objectives stay with the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadSpec {
    /// Unique workload name (DNS-label-like).
    pub name: String,
    /// What to run.
    pub run: Run,
    /// Environment for the workload, besides `LIFEBOAT_GENERATION` which the adapter adds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The port the workload listens on, when it serves anything. An adapter that must
    /// choose the port itself (several copies on one host) passes the chosen one as the
    /// `PORT` environment variable and reports it in [`DeploymentRef::endpoint`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Per-replica resources.
    #[serde(default)]
    pub resources: Resources,
    /// Number of replicas.
    pub replicas: u32,
    /// How to tell that a copy can serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthCheck>,
    /// Adapter-specific extras, passed through untouched (for example raw Kubernetes
    /// manifests under the key `manifests`). Adapters ignore keys they do not know.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A request to run one workload at one generation for one owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRequest {
    /// What to run.
    pub workload: WorkloadSpec,
    /// The fencing token for this copy.
    pub generation: Generation,
    /// Who the copy belongs to; the adapter labels every resource it creates with it.
    pub owner: Owner,
}

impl DeployRequest {
    /// A deterministic key for (workload, generation, owner), at most 64 ASCII
    /// characters, for APIs with an idempotency token (EC2's `ClientToken`) or for
    /// naming resources so a repeated deploy finds the earlier one, and only its own
    /// owner's.
    pub fn idempotency_key(&self) -> String {
        let owner = self.owner.discriminator();
        let mut key = format!(
            "lifeboat-{}-g{}-{owner}",
            self.workload.name, self.generation
        );
        if key.len() > 64 {
            // Keep it unique when a long name is cut: the generation, the owner and a
            // hash of the full name stay at the end.
            let hash = fnv1a(self.workload.name.as_bytes());
            let tail = format!("-{hash:016x}-g{}-{owner}", self.generation);
            key.truncate(64 - tail.len());
            key.push_str(&tail);
        }
        key
    }
}

pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Where a copy can be reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Endpoint {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The provider-side handle of one deployment, as returned by [`crate::Provider::deploy`]
/// and [`crate::Provider::list_managed`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct DeploymentRef {
    /// The workload name.
    pub workload: String,
    /// The generation this copy was started with.
    pub generation: Generation,
    /// The adapter's own identifier (instance id, process group, Deployment name, ...).
    /// Opaque to the controller.
    pub handle: String,
    /// Where the copy serves, once known. May be `None` right after deploy and filled in
    /// by a later [`crate::Provider::inspect`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
    /// Who made the copy, as its labels say; `None` for a copy made before owners
    /// existed (and for records written then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

/// The state of one deployment, as seen by [`crate::Provider::inspect`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeploymentState {
    /// Accepted, not running yet (booting, pulling, powering on).
    Pending {
        /// What it is waiting for, for humans.
        detail: String,
    },
    /// Running, health not (yet) confirmed.
    Running {
        /// Where it serves, if known by now.
        endpoint: Option<Endpoint>,
    },
    /// Running and its health check passes.
    Healthy {
        /// Where it serves.
        endpoint: Endpoint,
    },
    /// It will not become healthy without intervention (crashed, image missing, ...).
    Failed {
        /// Why, for humans.
        reason: String,
    },
    /// It no longer exists.
    Gone,
}

/// One phase of a deployment that the adapter timed itself, such as waiting for a
/// cold-standby server to power on. The controller cannot see inside `deploy`; these
/// figures let a report show where the time to healthy went (hardware, not the
/// workload's own start-up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// The phase, lower-case with dashes (`power-on`), the same for every deployment so
    /// reports can line phases up.
    pub phase: String,
    /// How long it took (for several hosts, the sum: they are handled one after another).
    pub duration: std::time::Duration,
}

/// What a successful probe learned about the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Set when the provider works but something is wrong (a BMC reporting `Critical`,
    /// some hosts unreachable): the provider is `Degraded`, not to be evacuated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// Free capacity, when the provider can tell: the room left beside everything that
    /// runs there now, in the vendor's own count. The controller sends no more there in
    /// one plan than this (nor than the configured capacity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    /// Managed deployments the vendor stopped or removed without lifeboat asking (an
    /// instance terminated by the vendor, a process that died). A signal, not an error:
    /// the controller replaces a lost live copy at once, without the grace period it
    /// gives a copy that runs but fails its check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<DeploymentRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, generation: u64) -> DeployRequest {
        DeployRequest {
            workload: WorkloadSpec {
                name: name.into(),
                run: Run::Command {
                    command: vec!["true".into()],
                },
                env: BTreeMap::new(),
                port: None,
                resources: Resources::default(),
                replicas: 1,
                health: None,
                extra: BTreeMap::new(),
            },
            generation: Generation(generation),
            owner: Owner::installation("prod"),
        }
    }

    #[test]
    fn capacity_and_resources_refuse_unknown_fields() {
        assert!(serde_json::from_str::<Capacity>(r#"{"replica": 8}"#).is_err());
        assert!(serde_json::from_str::<Resources>(r#"{"cpu_milis": 8}"#).is_err());
        let capacity: Capacity = serde_json::from_str(r#"{"replicas": 8}"#).unwrap();
        assert_eq!(capacity.replicas, Some(8));
    }

    #[test]
    fn idempotency_key_is_stable_and_names_the_generation_and_owner() {
        let prod = request("api", 7);
        assert_eq!(
            prod.idempotency_key(),
            format!("lifeboat-api-g7-{}", prod.owner.discriminator())
        );
        assert_ne!(prod.idempotency_key(), request("api", 8).idempotency_key());
        let drill = DeployRequest {
            owner: Owner::drill("prod", "d1"),
            ..request("api", 7)
        };
        assert_ne!(prod.idempotency_key(), drill.idempotency_key());
    }

    #[test]
    fn long_names_stay_within_64_chars_and_distinct() {
        let a = request(&"a".repeat(80), u64::MAX).idempotency_key();
        let b = request(&format!("{}b", "a".repeat(79)), u64::MAX).idempotency_key();
        assert!(a.len() <= 64 && b.len() <= 64, "{a} / {b}");
        assert_ne!(a, b);
        assert!(a.contains(&format!("-g{}-", u64::MAX)));
    }

    #[test]
    fn health_checks_read_what_earlier_versions_wrote() {
        // The forms the EC2 tag and the bare-metal metadata have always held.
        assert_eq!("tcp".parse(), Ok(HealthCheck::Tcp));
        assert_eq!(
            "http:/healthz?full=1".parse(),
            Ok(HealthCheck::Http {
                path: "/healthz?full=1".into()
            })
        );
        assert_eq!(HealthCheck::Tcp.to_string(), "tcp");
        for unknown in ["grpc", "", "TCP", "https:/x"] {
            assert!(unknown.parse::<HealthCheck>().is_err(), "{unknown:?}");
        }
    }

    fn any_health_check() -> impl proptest::strategy::Strategy<Value = HealthCheck> {
        use proptest::prelude::*;
        prop_oneof![
            Just(HealthCheck::Tcp),
            any::<String>().prop_map(|path| HealthCheck::Http { path }),
        ]
    }

    proptest::proptest! {
        #[test]
        fn health_checks_round_trip_through_their_text(check in any_health_check()) {
            proptest::prop_assert_eq!(check.to_string().parse::<HealthCheck>(), Ok(check));
        }
    }
}
