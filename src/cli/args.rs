//! The command line, declared with clap. Every subcommand carries examples in its help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{DrillMode, Scenario};

/// lifeboat keeps a service alive when a hosting vendor drops it: it watches every
/// provider's health and account standing, moves workloads off a provider or vendor
/// that is lost, and cuts traffic over.
#[derive(Debug, Parser)]
#[command(name = "lifeboat", version, propagate_version = true)]
pub struct Cli {
    /// Log filter (tracing's env-filter syntax), e.g. `info`, `lifeboat=debug`. Default:
    /// `info` for `run`, `warn` for the others (whose output is their own).
    #[arg(long, global = true, env = "LIFEBOAT_LOG")]
    pub log: Option<String>,
    /// How log lines are written to stderr: `text` for people (coloured only on a
    /// terminal, never with `NO_COLOR` set), `json` for log shippers (one object a line;
    /// the daemon's own messages too).
    #[arg(
        long,
        global = true,
        env = "LIFEBOAT_LOG_FORMAT",
        value_enum,
        default_value_t = crate::logging::LogFormat::Text
    )]
    pub log_format: crate::logging::LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a configuration file; print every error as `file:line:col: field: message`.
    #[command(
        after_help = "Examples:\n  lifeboat validate examples/quickstart.yaml\n\n\
        Exit status: 0 when valid (warnings are printed), 2 when invalid."
    )]
    Validate {
        /// The configuration file.
        config: PathBuf,
    },

    /// Dry run: what would move where if NAME (a vendor, `vendor/account` or provider)
    /// dropped us now, and what would be stranded.
    #[command(
        after_help = "Examples:\n  lifeboat plan -c examples/quickstart.yaml --lose acme-cloud\n  \
        lifeboat plan -c lifeboat.yaml --lose aws/prod --json\n\n\
        Exit status: 0 when every workload has somewhere to go, 1 when some would be stranded."
    )]
    Plan {
        #[command(flatten)]
        config: ConfigArg,
        /// The vendor, `vendor/account` or provider to lose.
        #[arg(long)]
        lose: String,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Run a failover drill: place the workloads, fence NAME synthetically, let the real
    /// loop detect, plan, move and cut over, measure, report, clean up.
    #[command(
        after_help = "Examples:\n  lifeboat drill -c examples/quickstart.yaml\n  \
        lifeboat drill -c lifeboat.yaml --lose aws --scenario credentials-revoked --report out/\n  \
        lifeboat drill -c lifeboat.yaml --mode shadow\n\n\
        Writes DIR/report.json, report.xml (JUnit) and report.html when --report is given.\n\
        Exit status: 0 when every objective was met, 1 when one was missed."
    )]
    Drill(DrillArgs),

    /// Re-render a drill's report.html and report.xml from its report.json (e.g. after
    /// upgrading lifeboat); with `--compare`, show how every figure changed since an
    /// earlier drill.
    #[command(after_help = "Examples:\n  lifeboat report out/\n  \
        lifeboat report out/ --compare last-week/\n\n\
        DIR is a folder that `lifeboat drill --report DIR` wrote. The comparison is printed \
        and added to DIR/report.html.\n\
        Exit status: 0 when the report was rendered, 2 when a report.json is missing or unreadable.")]
    Report {
        /// The drill's report folder (holding report.json).
        dir: PathBuf,
        /// An earlier drill's report folder to compare with.
        #[arg(long, value_name = "OLD_DIR")]
        compare: Option<PathBuf>,
    },

    /// The daemon: probe, decide, evacuate, journal; stops cleanly on SIGTERM or Ctrl-C.
    #[command(after_help = "Examples:\n  lifeboat run -c lifeboat.yaml\n  \
        lifeboat run -c lifeboat.yaml --state /var/lib/lifeboat\n  \
        lifeboat run --kubernetes --namespace lifeboat          (in a pod)\n  \
        lifeboat run --kubernetes --kubeconfig ~/.kube/cluster-b --namespace lifeboat")]
    Run {
        /// The configuration file (not with `--kubernetes`, which reads the cluster's
        /// resources instead).
        #[arg(short = 'c', long = "config", value_name = "CONFIG")]
        #[cfg_attr(feature = "kubernetes", arg(required_unless_present = "kubernetes"))]
        #[cfg_attr(not(feature = "kubernetes"), arg(required = true))]
        config: Option<PathBuf>,
        /// The state folder (default: the config's `state_dir`; with `--kubernetes`,
        /// `/var/lib/lifeboat`).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Serve the API and metrics here instead of the config's `api.listen`
        /// (`127.0.0.1:0` picks a free port, written to `STATE_DIR/api.json`).
        #[arg(long, value_name = "ADDR", env = "LIFEBOAT_API_LISTEN")]
        api_listen: Option<std::net::SocketAddr>,
        /// In-cluster mode.
        #[cfg(feature = "kubernetes")]
        #[command(flatten)]
        kubernetes: KubernetesArgs,
    },

    /// Print lifeboat's CustomResourceDefinitions as YAML (what `manifests/crds.yaml` holds).
    #[cfg(feature = "kubernetes")]
    #[command(after_help = "Examples:\n  lifeboat crds > manifests/crds.yaml\n  \
        lifeboat crds | kubectl apply -f -")]
    Crds,

    /// Providers with their conditions, workloads with their placement and generation,
    /// in-flight steps. Reads the state while the daemon runs.
    #[command(after_help = "Examples:\n  lifeboat status -c lifeboat.yaml\n  \
        lifeboat status --state /var/lib/lifeboat --json")]
    Status {
        /// The configuration file (to find its state folder).
        #[arg(short, long, required_unless_present = "state")]
        config: Option<PathBuf>,
        /// The state folder.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },

    /// A vendor's notice: everything on TARGET must be cut over before the deadline.
    /// Without a deadline it is a fence: TARGET is left now.
    #[command(after_help = "Examples:\n  \
        lifeboat notice raise -c lifeboat.yaml --target acme --deadline 2026-12-03T18:00:00Z --reason 'acme: account closes in 24h'\n  \
        lifeboat notice list -c lifeboat.yaml\n  \
        lifeboat notice clear -c lifeboat.yaml 3\n\n\
        Talks to the running daemon's API (from STATE_DIR/api.json, or --api); writes the state \
        folder itself when no daemon runs.")]
    Notice {
        /// What to do.
        #[command(subcommand)]
        action: NoticeAction,
    },

    /// Throw the kill switch: the daemon keeps probing, deciding and planning but starts
    /// no step; steps running finish or time out. Stays paused across restarts.
    #[command(
        after_help = "Examples:\n  lifeboat pause -c lifeboat.yaml --reason 'vendor call at 14:00'"
    )]
    Pause {
        /// How to reach the daemon.
        #[command(flatten)]
        daemon: DaemonArgs,
        /// Why, shown on every surface while paused.
        #[arg(long, default_value = "paused from the command line")]
        reason: String,
    },

    /// Release the kill switch.
    Resume {
        /// How to reach the daemon.
        #[command(flatten)]
        daemon: DaemonArgs,
    },

    /// Evacuations: the one waiting for approval (`policy.mode: confirm`) and those run.
    #[command(after_help = "Examples:\n  lifeboat evacuations -c lifeboat.yaml\n  \
        lifeboat evacuations -c lifeboat.yaml approve pe-20261203-101500-1a2b\n  \
        lifeboat evacuations -c lifeboat.yaml reject pe-20261203-101500-1a2b")]
    Evacuations {
        /// How to reach the daemon.
        #[command(flatten)]
        daemon: DaemonArgs,
        /// Approve or reject the pending one (default: list).
        #[command(subcommand)]
        action: Option<EvacuationAction>,
    },

    /// Evacuate TARGET now, through the same planning as a lost vendor: a fence that
    /// stays until `lifeboat notice clear`.
    #[command(
        after_help = "Examples:\n  lifeboat evacuate -c lifeboat.yaml --target acme-eu --reason 'disk errors'"
    )]
    Evacuate {
        /// How to reach the daemon.
        #[command(flatten)]
        daemon: DaemonArgs,
        /// A vendor, `vendor/account` or provider.
        #[arg(long)]
        target: String,
        /// Why.
        #[arg(long, default_value = "manual evacuation")]
        reason: String,
    },

    /// The built-in demo workload the quickstart runs: a small HTTP service.
    #[command(hide = true)]
    Demo(crate::demo::DemoOptions),

    /// One member of a PostgreSQL dataset (primary, or a standby streaming from
    /// `LIFEBOAT_PRIMARY`), run as a workload copy.
    #[command(hide = true)]
    Postgres(crate::postgres_copy::PostgresOptions),
}

/// How the operator commands reach the daemon: its API when one runs, else its state
/// folder.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The configuration file.
    #[arg(short = 'c', long = "config", value_name = "CONFIG")]
    pub config: PathBuf,
    /// The state folder (default: the config's `state_dir`).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The daemon's API (default: what `STATE_DIR/api.json` says). The token comes from
    /// `LIFEBOAT_API_TOKEN` or the daemon's token file.
    #[arg(long, value_name = "URL", env = "LIFEBOAT_API")]
    pub api: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `lifeboat notice ...`.
#[derive(Debug, Subcommand)]
pub enum NoticeAction {
    /// Raise a notice.
    Raise {
        /// How to reach the daemon.
        #[command(flatten)]
        daemon: DaemonArgs,
        /// A vendor, `vendor/account` or provider.
        #[arg(long)]
        target: String,
        /// RFC 3339 (`2026-12-03T18:00:00Z`); without it, TARGET is left now.
        #[arg(long)]
        deadline: Option<String>,
        /// Who gave notice and why.
        #[arg(long)]
        reason: String,
    },
    /// The notices in force.
    List {
        /// How to reach the daemon.
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Lift a notice.
    Clear {
        /// How to reach the daemon.
        #[command(flatten)]
        daemon: DaemonArgs,
        /// Its id (from `notice list`).
        id: i64,
    },
}

/// `lifeboat evacuations approve|reject ID`.
#[derive(Debug, Subcommand)]
pub enum EvacuationAction {
    /// Start the pending evacuation ID.
    Approve {
        /// Its id (`pe-...`).
        id: String,
    },
    /// Drop the pending evacuation ID; the same plan is not offered again until it
    /// changes.
    Reject {
        /// Its id (`pe-...`).
        id: String,
    },
}

/// `-c CONFIG`, shared by the subcommands that read a configuration.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The configuration file.
    #[arg(short = 'c', long = "config", value_name = "CONFIG")]
    pub path: PathBuf,
}

/// The flags of `lifeboat run --kubernetes`.
#[cfg(feature = "kubernetes")]
#[derive(Debug, Args)]
pub struct KubernetesArgs {
    /// Read Provider, Workload, Policy and Notice resources from a cluster instead of a
    /// file; keep placements and evacuations in their status; elect one leader among
    /// the replicas with a Lease.
    #[arg(long)]
    pub kubernetes: bool,
    /// The kubeconfig (default: the pod's service account, then `$KUBECONFIG`, then
    /// `~/.kube/config`).
    #[arg(long, requires = "kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    /// The namespace of lifeboat's resources (default: the kubeconfig's or the pod's).
    #[arg(long, requires = "kubernetes")]
    pub namespace: Option<String>,
    /// This replica's identity in the Lease (default: `$POD_NAME`, else the host name
    /// and process id).
    #[arg(long, env = "POD_NAME", requires = "kubernetes")]
    pub identity: Option<String>,
    /// The Lease's name.
    #[arg(long, default_value = "lifeboat", requires = "kubernetes")]
    pub lease_name: String,
    /// Seconds a lease lasts without renewal: a dead leader is replaced after this.
    #[arg(long, default_value_t = 15, requires = "kubernetes")]
    pub lease_duration: u64,
}

/// Arguments of `lifeboat drill`.
#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The vendor, `vendor/account` or provider to lose (default: the config's `drill.lose`).
    #[arg(long)]
    pub lose: Option<String>,
    /// The fault to inject (default: the config's `drill.scenario`).
    #[arg(long, value_enum)]
    pub scenario: Option<ScenarioArg>,
    /// `live` cuts over and fails back; `shadow` verifies copies and moves no traffic.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Keep the workloads at the lost providers running when the fault starts (a
    /// graceful evacuation) instead of stopping them as a suspended vendor would.
    #[arg(long)]
    pub no_blackout: bool,
    /// Write report.json, report.xml and report.html into this folder.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Run no drill: remove what drills of this config that died (killed, a machine
    /// lost) left behind — exactly the copies they recorded, nothing else — and exit.
    #[arg(long, conflicts_with_all = ["lose", "scenario", "mode", "no_blackout", "report"])]
    pub cleanup: bool,
    /// Allow a live drill whose cutover moves real traffic: providers other than
    /// `local` and `sim`, or a DNS/exec cutover. Without it such a live drill refuses to
    /// start; a shadow drill never needs it.
    #[arg(long)]
    pub move_production_traffic: bool,
}

/// `--scenario` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScenarioArg {
    /// The vendor suspends the account.
    AccountSuspended,
    /// The vendor rejects the credentials.
    CredentialsRevoked,
    /// The provider stops answering.
    Unreachable,
}

impl From<ScenarioArg> for Scenario {
    fn from(value: ScenarioArg) -> Self {
        match value {
            ScenarioArg::AccountSuspended => Scenario::AccountSuspended,
            ScenarioArg::CredentialsRevoked => Scenario::CredentialsRevoked,
            ScenarioArg::Unreachable => Scenario::Unreachable,
        }
    }
}

/// `--mode` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// Cut over, then fail back.
    Live,
    /// Deploy and verify copies only.
    Shadow,
}

impl From<ModeArg> for DrillMode {
    fn from(value: ModeArg) -> Self {
        match value {
            ModeArg::Live => DrillMode::Live,
            ModeArg::Shadow => DrillMode::Shadow,
        }
    }
}
