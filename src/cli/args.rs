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

    /// The daemon: probe, decide, evacuate, journal; stops cleanly on SIGTERM or Ctrl-C.
    #[command(after_help = "Examples:\n  lifeboat run -c lifeboat.yaml\n  \
        lifeboat run -c lifeboat.yaml --state /var/lib/lifeboat")]
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// The state folder (default: the config's `state_dir`).
        #[arg(long)]
        state: Option<PathBuf>,
    },

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

    /// The built-in demo workload the quickstart runs: a small HTTP service.
    #[command(hide = true)]
    Demo(crate::demo::DemoOptions),
}

/// `-c CONFIG`, shared by the subcommands that read a configuration.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The configuration file.
    #[arg(short = 'c', long = "config", value_name = "CONFIG")]
    pub path: PathBuf,
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
