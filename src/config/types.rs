//! The typed shape of `lifeboat.yaml`. Every struct rejects unknown fields, so a typo is
//! an error with its line and column rather than a silently ignored setting.
//!
//! These types are what serde reads; [`super::validate`] checks what serde cannot (every
//! reference resolves, no dependency cycle, unique names) and only then hands out a
//! [`super::Config`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use lifeboat_provider::{Capacity, HealthCheck, Resources};
use serde::{Deserialize, Serialize};

use super::duration;

/// The whole file, as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Companies that can cut us off.
    pub vendors: Vec<VendorConfig>,
    /// Places that run workloads.
    pub providers: Vec<ProviderConfig>,
    /// What we keep alive.
    pub workloads: Vec<WorkloadConfig>,
    /// When to leave a provider, and how fast to move.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// How traffic follows a move.
    #[serde(deserialize_with = "super::tagged::deserialize")]
    pub cutover: CutoverConfig,
    /// What `lifeboat drill` does without flags.
    #[serde(default)]
    pub drill: Option<DrillConfig>,
    /// Where the daemon keeps its state (default `.lifeboat` next to the config file).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Drills the daemon runs on a schedule (shadow drills: they never move traffic).
    #[serde(default)]
    pub drills: Vec<ScheduledDrillConfig>,
    /// This installation's id, written on every resource it makes (`lifeboat.dev/owner`)
    /// so that it acts only on its own; generated once and kept in the state folder
    /// when unset. Set it when two state folders must act as one installation, or to
    /// keep the id when the state folder moves.
    #[serde(default)]
    pub installation: Option<String>,
    /// The daemon's HTTP API and metrics.
    #[serde(default)]
    pub api: ApiConfig,
    /// Webhooks told what the daemon sees and does (condition changes, notices,
    /// evacuations, stranded workloads, deadlines at risk, drill results).
    #[serde(default)]
    pub notify: Vec<WebhookConfig>,
}

/// One webhook of `notify:`. The URL often carries a token (a Slack incoming webhook
/// is one), so it can live in a file or the environment instead of the config, and no
/// `Debug`, log line or error ever shows it: only the webhook's name.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Unique name, shown in logs and metrics in place of the URL.
    pub name: String,
    /// The URL, written in the config.
    #[serde(default)]
    pub url: Option<String>,
    /// A file holding the URL (relative paths are relative to the config file).
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// An environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// The body's shape.
    #[serde(default)]
    pub format: WebhookFormat,
    /// The events it is told about; empty (the default) means every event.
    #[serde(default)]
    pub events: Vec<crate::notify::EventKind>,
    /// How long one delivery attempt may take.
    #[serde(default = "default_webhook_timeout", with = "duration")]
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = match (&self.url, &self.url_file, &self.url_env) {
            (Some(_), _, _) => "<in the config, redacted>".to_owned(),
            (_, Some(file), _) => format!("<in {}>", file.display()),
            (_, _, Some(var)) => format!("<in ${var}>"),
            _ => "<unset>".to_owned(),
        };
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &url)
            .field("format", &self.format)
            .field("events", &self.events)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(5)
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The event as a JSON object (`event`, `installation`, `at`, `summary` and the
    /// event's own fields), for receivers that route on fields.
    #[default]
    Json,
    /// `{"text": "..."}`, what Slack's (and Mattermost's) incoming webhooks post.
    Slack,
}

/// `api:`: where `lifeboat run` serves `/healthz`, `/readyz`, `/metrics` and `/api/v1`,
/// and how callers prove who they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// The address to listen on (default `127.0.0.1:7480`: loopback only). Port 0 picks
    /// a free port; the daemon writes the one it got to `STATE_DIR/api.json`.
    pub listen: std::net::SocketAddr,
    /// A file holding the bearer token every `/api` call must present (default
    /// `STATE_DIR/api-token`, created with a random token, mode 0600, when missing).
    /// `LIFEBOAT_API_TOKEN` in the environment takes precedence over both.
    pub token_file: Option<PathBuf>,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 7480)),
            token_file: None,
            max_body_bytes: 64 * 1024,
            tls: None,
        }
    }
}

/// PEM files for the API's HTTPS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// The private key.
    pub key_file: PathBuf,
}

/// A vendor and its accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorConfig {
    /// Short name (`aws`, `hetzner`, `self`).
    pub name: String,
    /// Account names at this vendor; providers name one of them.
    #[serde(default)]
    pub accounts: Vec<String>,
}

/// One provider: where it belongs, how much it holds, and its adapter settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Unique name, referenced by workloads' `placement`.
    pub name: String,
    /// The vendor it belongs to.
    pub vendor: String,
    /// The account it uses, one of the vendor's `accounts`.
    #[serde(default)]
    pub account: Option<String>,
    /// How much it holds; unset dimensions are unbounded.
    #[serde(default)]
    pub capacity: Capacity,
    /// Free-form labels (region, tier, ...), for humans and placement rules.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The adapter kind and its settings.
    #[serde(deserialize_with = "super::tagged::deserialize")]
    pub adapter: AdapterConfig,
}

/// The adapter settings, one variant per kind (`kind: local`, ...). Heavy kinds sit
/// behind cargo features of the same name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
// Read once at start-up and held once per provider: the size of the largest variant
// costs nothing, and unboxed variants keep matching on them plain.
#[allow(clippy::large_enum_variant)]
pub enum AdapterConfig {
    /// Processes on this host.
    Local(lifeboat_provider_local::LocalConfig),
    /// The in-memory simulator.
    Sim(lifeboat_provider_sim::SimConfig),
    /// One AWS EC2 region of one account.
    #[cfg(feature = "aws-ec2")]
    AwsEc2(lifeboat_provider_aws_ec2::Ec2Config),
    /// Own servers over SSH, cold standby through Redfish.
    #[cfg(feature = "bare-metal")]
    BareMetal(lifeboat_provider_bare_metal::BareMetalConfig),
    /// A Kubernetes cluster (one namespace of it).
    #[cfg(feature = "kubernetes")]
    Kubernetes(lifeboat_provider_kubernetes::KubernetesConfig),
}

impl AdapterConfig {
    /// The `kind` as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            AdapterConfig::Local(_) => "local",
            AdapterConfig::Sim(_) => "sim",
            #[cfg(feature = "aws-ec2")]
            AdapterConfig::AwsEc2(_) => "aws-ec2",
            #[cfg(feature = "bare-metal")]
            AdapterConfig::BareMetal(_) => "bare-metal",
            #[cfg(feature = "kubernetes")]
            AdapterConfig::Kubernetes(_) => "kubernetes",
        }
    }
}

/// A workload: what to run and how to keep it alive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    /// Unique name (lower-case letters, digits and `-`).
    pub name: String,
    /// A container image. A workload needs an `image`, a non-empty `command`, or both.
    #[serde(default)]
    pub image: Option<String>,
    /// A command (argv form). With `image`, overrides its entrypoint. The word
    /// `lifeboat` as the program means this very binary (for the built-in demo server).
    #[serde(default)]
    pub command: Vec<String>,
    /// Environment for the workload.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The port it listens on.
    #[serde(default)]
    pub port: Option<u16>,
    /// Per-replica resources.
    #[serde(default)]
    pub resources: Resources,
    /// Number of replicas.
    #[serde(default = "one")]
    pub replicas: u32,
    /// How to tell a copy can serve.
    #[serde(default, deserialize_with = "super::tagged::option")]
    pub health: Option<HealthCheck>,
    /// Workloads that must be cut over before this one.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Providers in order of preference; the first is where it runs normally.
    pub placement: Vec<String>,
    /// Recovery time objective: a drill fails when the move takes longer.
    #[serde(default, with = "duration::option")]
    pub rto: Option<Duration>,
    /// Within a dependency wave, workloads of higher priority move first and get
    /// capacity first (default 0).
    #[serde(default)]
    pub priority: u32,
    /// The name clients use (a DNS name or the endpoints-file key).
    #[serde(default)]
    pub public_name: Option<String>,
    /// Commands run around the cutover.
    #[serde(default)]
    pub hooks: HooksConfig,
    /// The workload's data, kept as a warm standby at another vendor (see
    /// [`super::DataConfig`]).
    #[serde(default)]
    pub data: Option<super::DataConfig>,
    /// Raw adapter-specific extras (e.g. `manifests` for Kubernetes).
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn one() -> u32 {
    1
}

/// Commands run around a cutover, each in argv form. A non-zero exit fails the step.
#[cfg_attr(feature = "kubernetes", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// Run after the new copy is healthy, before traffic moves (e.g. promote a replica).
    #[serde(default)]
    pub before_cutover: Vec<Vec<String>>,
    /// Run after traffic moved.
    #[serde(default)]
    pub after_cutover: Vec<Vec<String>>,
}

/// How the daemon acts on what it sees.
#[cfg_attr(feature = "kubernetes", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Evacuate on its own.
    #[default]
    Auto,
    /// Plan, and wait for an operator to confirm.
    Confirm,
    /// Watch and report only.
    Observe,
}

/// The policy: DESIGN.md's defaults, all overridable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Time between probes of one provider (jittered by up to 10 %).
    #[serde(with = "duration")]
    pub probe_interval: Duration,
    /// A probe that takes longer counts as `Timeout`.
    #[serde(with = "duration")]
    pub probe_timeout: Duration,
    /// Consecutive account-loss probes needed to declare `Suspended`.
    pub confirmations: u32,
    /// How long `Unavailable`/`Timeout` may last before the provider is `Unreachable`
    /// and evacuated.
    #[serde(with = "duration")]
    pub unreachable_grace: Duration,
    /// How long a provider must stay clean to count as `Healthy` again.
    #[serde(with = "duration")]
    pub quiet_period: Duration,
    /// Evacuations after a notice finish this long before its deadline.
    #[serde(with = "duration")]
    pub notice_margin: Duration,
    /// Moves running at once, in all.
    pub parallelism: usize,
    /// Moves running at once against one provider.
    pub per_provider_parallelism: usize,
    /// Time limit of one step attempt.
    #[serde(with = "duration")]
    pub step_timeout: Duration,
    /// Attempts of one step before the target is given up.
    pub step_attempts: u32,
    /// Auto, confirm or observe.
    pub mode: Mode,
    /// A workload's live copy that fails its health check (or has died) this long is
    /// replaced: on its own provider first, elsewhere if that fails.
    #[serde(with = "duration")]
    pub replace_after: Duration,
    /// Replacements of one workload allowed within `replacement_window`; past it the
    /// copy is reported and left alone (no restart storm). `0` only watches.
    pub max_replacements: u32,
    /// The window `max_replacements` counts over.
    #[serde(with = "duration")]
    pub replacement_window: Duration,
}

impl PolicyConfig {
    /// How patient the workload watch is.
    pub fn patience(&self) -> crate::watch::Patience {
        crate::watch::Patience {
            replace_after: self.replace_after,
            limit: self.max_replacements,
            window: self.replacement_window,
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            probe_interval: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(5),
            confirmations: 2,
            unreachable_grace: Duration::from_secs(120),
            quiet_period: Duration::from_secs(600),
            notice_margin: Duration::from_secs(1800),
            parallelism: 8,
            per_provider_parallelism: 4,
            step_timeout: Duration::from_secs(120),
            step_attempts: 3,
            mode: Mode::Auto,
            replace_after: Duration::from_secs(30),
            max_replacements: 3,
            replacement_window: Duration::from_secs(3600),
        }
    }
}

/// The cutover backend, one variant per kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CutoverConfig {
    /// A JSON file mapping each public name to its current endpoint, replaced
    /// atomically. For local use and the quickstart.
    EndpointsFile {
        /// The file (relative paths are relative to the config file).
        path: PathBuf,
    },
    /// A command run for every cutover, with `LIFEBOAT_WORKLOAD`, `LIFEBOAT_PUBLIC_NAME`,
    /// `LIFEBOAT_OLD_ENDPOINT`, `LIFEBOAT_NEW_ENDPOINT` and `LIFEBOAT_GENERATION` in its
    /// environment.
    Exec {
        /// Program and arguments.
        command: Vec<String>,
        /// Killed and failed after this long (also bounds `resolve_command`).
        #[serde(default = "default_exec_timeout", with = "duration")]
        timeout: Duration,
        /// A command that prints where a public name points now (`host:port`, or
        /// nothing when it points nowhere), with `LIFEBOAT_PUBLIC_NAME` in its
        /// environment. Without it lifeboat cannot resolve names the way a client does,
        /// so a drill's prober cannot follow traffic.
        #[serde(default)]
        resolve_command: Option<Vec<String>>,
    },
    /// RFC 2136 dynamic DNS updates signed with TSIG (BIND, Knot, PowerDNS, ...): each
    /// workload's `public_name` is a record in one zone, switched by one atomic UPDATE.
    Dns(super::DnsConfig),
}

fn default_exec_timeout() -> Duration {
    Duration::from_secs(30)
}

/// What a drill fences, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillConfig {
    /// A vendor, `vendor/account`, or provider name.
    pub lose: String,
    /// The fault the fenced providers show.
    #[serde(default)]
    pub scenario: Scenario,
    /// `live` (cut over, then fail back) or `shadow` (verify copies, move no traffic).
    #[serde(default)]
    pub mode: DrillMode,
    /// Also stop the copies running at the lost providers when the fault starts, as a
    /// vendor that suspends an account does, so the prober measures a real outage.
    /// `false` drills a graceful evacuation (a notice with time to move).
    #[serde(default = "yes")]
    pub blackout: bool,
}

fn yes() -> bool {
    true
}

/// A drill that `lifeboat run` starts on a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledDrillConfig {
    /// A name for status and logs, unique among the scheduled drills.
    pub name: String,
    /// When, as a cron expression in UTC: five fields (minute hour day month weekday),
    /// or six with seconds first.
    pub schedule: String,
    /// The vendor, `vendor/account` or provider to lose.
    pub lose: String,
    /// The fault to inject.
    #[serde(default)]
    pub scenario: Scenario,
    /// Must be `shadow`: a live drill inside the daemon would be a second controller
    /// over the traffic the daemon itself moves.
    #[serde(default = "shadow")]
    pub mode: DrillMode,
}

fn shadow() -> DrillMode {
    DrillMode::Shadow
}

/// The fault a drill injects at the adapter boundary.
#[cfg_attr(feature = "kubernetes", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Every call answers `AccountSuspended`.
    #[default]
    AccountSuspended,
    /// Every call answers `CredentialsRejected`.
    CredentialsRevoked,
    /// Every call times out / cannot connect.
    Unreachable,
}

impl Scenario {
    /// The name as written in the config and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::AccountSuspended => "account-suspended",
            Scenario::CredentialsRevoked => "credentials-revoked",
            Scenario::Unreachable => "unreachable",
        }
    }
}

/// Whether a drill moves traffic.
#[cfg_attr(feature = "kubernetes", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrillMode {
    /// Cut over for real, then fail back at the end.
    #[default]
    Live,
    /// Deploy and verify copies at the targets; move no traffic; clean up.
    Shadow,
}

impl DrillMode {
    /// The name as written in the config and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            DrillMode::Live => "live",
            DrillMode::Shadow => "shadow",
        }
    }
}

#[cfg(all(test, feature = "kubernetes"))]
mod kubernetes_tests {
    use super::*;

    #[test]
    fn a_kubernetes_adapter_reads_from_yaml() {
        let yaml = r#"
kind: kubernetes
kubeconfig: /etc/lifeboat/cluster-b.kubeconfig
context: k3s-hetzner
namespace: lifeboat-workloads
service_type: LoadBalancer
labels: { team: sre }
"#;
        let adapter: AdapterConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(adapter.kind(), "kubernetes");
        let AdapterConfig::Kubernetes(k) = adapter else {
            panic!("not the kubernetes variant");
        };
        assert_eq!(k.namespace.as_deref(), Some("lifeboat-workloads"));
        let typo = "kind: kubernetes\nnamespce: x\n";
        assert!(serde_yaml::from_str::<AdapterConfig>(typo).is_err());
    }
}
