//! The plain data that flows through lifeboat's pure core: signals in, conditions,
//! decisions and plans out. No I/O and no async here; everything is serde-serialisable so
//! it can be journaled, reported and shown by `lifeboat status --json`.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use lifeboat_provider::{DeploymentRef, ErrorClass, Generation, ParseError};
use serde::{Deserialize, Serialize};

/// One observation about a provider, at a point in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    /// The provider it concerns.
    pub provider: String,
    /// When it was observed (wall clock, passed in by the caller).
    pub at: Timestamp,
    /// What was observed.
    pub kind: SignalKind,
}

/// What a [`Signal`] says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SignalKind {
    /// A probe succeeded. `degraded` carries the adapter's reason when it works but not
    /// fully.
    ProbeOk {
        /// Why the provider is degraded, if it is.
        degraded: Option<String>,
    },
    /// A probe failed with a classified error.
    ProbeFailed {
        /// The class the adapter gave the failure.
        class: ErrorClass,
        /// The vendor's own code, for reports.
        code: Option<String>,
    },
}

/// A provider's derived state: what the controller believes about it right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "condition", rename_all = "snake_case")]
pub enum Condition {
    /// Probes pass.
    Healthy,
    /// It works, but something needs a human (permission denied, a degraded probe,
    /// throttling). Never evacuated for this alone.
    Degraded {
        /// Why.
        reason: String,
    },
    /// Transient failures (`Unavailable`, `Timeout`) since `since`, for less than the
    /// policy's grace period: not left yet. Kept apart from `Degraded` because it means
    /// "not answering": the fail safe in `decide` needs to tell that from a provider that
    /// answers, badly.
    Failing {
        /// First failure of the current run of failures.
        since: Timestamp,
    },
    /// Transient failures have lasted since `since`, longer than the policy's grace
    /// period: the provider is left.
    Unreachable {
        /// First failure of the current run of failures.
        since: Timestamp,
    },
    /// The account is lost (suspended, or credentials rejected), confirmed.
    Suspended {
        /// The class that confirmed it.
        reason: ErrorClass,
        /// When it was confirmed.
        since: Timestamp,
    },
    /// The vendor gave notice: everything must be gone before `deadline`.
    Noticed {
        /// The vendor's deadline.
        deadline: Timestamp,
    },
    /// Fenced by an operator or a drill: treated as lost.
    Fenced {
        /// Who fenced it (`drill`, `operator:alice`, ...).
        by: String,
    },
}

impl Condition {
    /// The kind of every condition, as [`Condition::kind`] names it and its text begins.
    pub const KINDS: [&'static str; 7] = [
        "healthy",
        "degraded",
        "failing",
        "unreachable",
        "suspended",
        "noticed",
        "fenced",
    ];

    /// The condition's kind without its details (`suspended`), for labels, metrics and
    /// reports that group by it.
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::Healthy => "healthy",
            Condition::Degraded { .. } => "degraded",
            Condition::Failing { .. } => "failing",
            Condition::Unreachable { .. } => "unreachable",
            Condition::Suspended { .. } => "suspended",
            Condition::Noticed { .. } => "noticed",
            Condition::Fenced { .. } => "fenced",
        }
    }
}

/// The one-line description of a condition for logs, the status table, drill timelines
/// and resource status (`suspended (account-suspended) since 2026-11-02T10:00:00Z`). It
/// starts with [`Condition::kind`], and [`FromStr`] reads it back whole.
impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Healthy => f.write_str("healthy"),
            Condition::Degraded { reason } => write!(f, "degraded: {reason}"),
            Condition::Failing { since } => write!(f, "failing since {since}"),
            Condition::Unreachable { since } => write!(f, "unreachable since {since}"),
            Condition::Suspended { reason, since } => {
                write!(f, "suspended ({reason}) since {since}")
            }
            Condition::Noticed { deadline } => write!(f, "noticed: leave before {deadline}"),
            Condition::Fenced { by } => write!(f, "fenced by {by}"),
        }
    }
}

impl FromStr for Condition {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::new(s, "a condition (`healthy`, `fenced by NAME`, ...)");
        let time = |t: &str| t.parse::<Timestamp>().map_err(|_| bad());
        if s == "healthy" {
            return Ok(Condition::Healthy);
        }
        if let Some(reason) = s.strip_prefix("degraded: ") {
            return Ok(Condition::Degraded {
                reason: reason.to_owned(),
            });
        }
        if let Some(since) = s.strip_prefix("failing since ") {
            return Ok(Condition::Failing {
                since: time(since)?,
            });
        }
        if let Some(since) = s.strip_prefix("unreachable since ") {
            return Ok(Condition::Unreachable {
                since: time(since)?,
            });
        }
        if let Some(rest) = s.strip_prefix("suspended (") {
            // No class name holds a parenthesis, so the first `) since ` ends it.
            let (class, since) = rest.split_once(") since ").ok_or_else(bad)?;
            return Ok(Condition::Suspended {
                reason: class.parse().map_err(|_| bad())?,
                since: time(since)?,
            });
        }
        if let Some(deadline) = s.strip_prefix("noticed: leave before ") {
            return Ok(Condition::Noticed {
                deadline: time(deadline)?,
            });
        }
        if let Some(by) = s.strip_prefix("fenced by ") {
            return Ok(Condition::Fenced { by: by.to_owned() });
        }
        Err(bad())
    }
}

/// One set of credentials at a vendor: the unit that shares the fate of a suspension.
/// Spelt `vendor/account` everywhere a human reads or writes one (`--lose aws/prod`, a
/// notice's target, a departure's reason), and `vendor/` for a vendor that lists no
/// accounts; built from a provider's config by [`crate::config::Config::account_of`].
/// Serialised as that text, so stored notices keep their format.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Account {
    /// The vendor (`aws`).
    pub vendor: String,
    /// The account at the vendor (`prod`); `None` at a vendor that names none.
    pub account: Option<String>,
}

impl Account {
    /// The account `account` at `vendor` (`None`: the vendor's only, unnamed one).
    pub fn new(vendor: impl Into<String>, account: Option<impl Into<String>>) -> Account {
        Account {
            vendor: vendor.into(),
            account: account.map(Into::into),
        }
    }

    /// Whether a provider of `vendor` with `account` is on this account, compared field
    /// by field (no text is built, since `conditions` asks this per provider and notice).
    pub fn holds(&self, vendor: &str, account: Option<&str>) -> bool {
        self.vendor == vendor && self.account.as_deref() == account
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.vendor,
            self.account.as_deref().unwrap_or_default()
        )
    }
}

/// Reads `vendor/account` (or `vendor/`). Vendor and account names never hold a `/`
/// (the config refuses them), so anything else is not an account.
impl FromStr for Account {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::new(s, "an account (`vendor/account`)");
        let (vendor, account) = s.split_once('/').ok_or_else(bad)?;
        if vendor.is_empty() || account.contains('/') {
            return Err(bad());
        }
        Ok(Account::new(
            vendor,
            (!account.is_empty()).then_some(account),
        ))
    }
}

/// So a test or a caller can write `account == "aws/prod"`.
impl PartialEq<str> for Account {
    fn eq(&self, other: &str) -> bool {
        other.split_once('/').is_some_and(|(vendor, account)| {
            self.holds(vendor, (!account.is_empty()).then_some(account))
        })
    }
}

impl PartialEq<&str> for Account {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl Serialize for Account {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// An account is written `vendor/account` (or `vendor` at a vendor that names none).
impl schemars::JsonSchema for Account {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Account".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "`vendor/account`, or `vendor` at a vendor that names no accounts",
            "examples": ["aws/prod", "hetzner"],
        })
    }
}

impl<'de> Deserialize<'de> for Account {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a [`Notice`] or fence applies to. Deplatforming acts on a vendor or an account;
/// a single provider is the narrow case (a drill, an operator's fence).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "scope", content = "name", rename_all = "snake_case")]
pub enum Scope {
    /// Every provider of the vendor.
    Vendor(String),
    /// Every provider on the account.
    Account(Account),
    /// One provider.
    Provider(String),
}

/// The name a scope was given by: a vendor, `vendor/account`, or a provider (what
/// [`crate::config::Config::resolve_scope`] reads back).
impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Vendor(name) | Scope::Provider(name) => f.write_str(name),
            Scope::Account(account) => account.fmt(f),
        }
    }
}

/// A vendor's notice (or an operator's fence) with an optional deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Notice {
    /// What it applies to.
    pub scope: Scope,
    /// Finish the evacuation before this; `None` means "now" (a fence).
    pub deadline: Option<Timestamp>,
    /// Who raised it and why, for humans.
    pub reason: String,
}

/// The decision to leave one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Departure {
    /// The provider being left.
    pub provider: String,
    /// Why, for humans (`account acme/prod lost: AccountSuspended on acme-eu`).
    pub reason: String,
    /// Why, for the planner: whether this is a flap (see [`Cause::is_transient`]).
    pub cause: Cause,
    /// Everything must be moved before this; `None` means as soon as possible.
    pub deadline: Option<Timestamp>,
}

/// What made lifeboat leave a provider. The planner treats a transient cause
/// (unreachable) differently from a verdict (account lost, notice, fence): a workload that
/// just moved is not moved again for a flap, but always for a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Cause {
    /// A provider of the account was confirmed `Suspended`: the whole account is left.
    AccountLost {
        /// The account lost; `None` when the provider that confirmed it is not in the
        /// config (it is then left alone, for itself).
        account: Option<Account>,
        /// The provider whose probes confirmed it.
        seen_on: String,
        /// The class that confirmed it.
        class: ErrorClass,
    },
    /// An operator or a drill fenced it: leave now.
    Fenced {
        /// Who fenced it.
        by: String,
    },
    /// The vendor gave notice with a deadline.
    Noticed {
        /// The vendor's own deadline (the departure's deadline is this minus the margin).
        deadline: Timestamp,
    },
    /// Transient failures outlasted the grace period.
    Unreachable {
        /// First failure of the run.
        since: Timestamp,
    },
}

impl Cause {
    /// True for a cause that may heal on its own (a flap). Only these are subject to the
    /// no-move-twice-in-one-flap rule.
    pub fn is_transient(&self) -> bool {
        matches!(self, Cause::Unreachable { .. })
    }
}

/// Where one workload runs now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Placement {
    /// The workload.
    pub workload: String,
    /// The provider running it.
    pub provider: String,
    /// The fencing token of this copy; only grows across placements of one workload.
    pub generation: Generation,
    /// The provider-side handle, once deployed.
    pub deployment: Option<DeploymentRef>,
    /// When the workload last moved (for the no-move-twice-in-a-flap rule).
    pub since: Timestamp,
}

/// One step of a move, in execution order (make before break).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Start the copy on the target at the new generation.
    Deploy,
    /// Poll the target until the copy passes its health check.
    WaitHealthy,
    /// Run the workload's `before_cutover` hooks (e.g. promote a replica).
    BeforeCutover,
    /// Point traffic at the new copy.
    Cutover,
    /// Run the workload's `after_cutover` hooks.
    AfterCutover,
    /// Retire the old copy if its provider still answers, else record it as orphaned.
    RetireSource,
}

impl Step {
    /// All steps of a move, in order.
    pub const ALL: [Step; 6] = [
        Step::Deploy,
        Step::WaitHealthy,
        Step::BeforeCutover,
        Step::Cutover,
        Step::AfterCutover,
        Step::RetireSource,
    ];

    /// The step's name as the journal, logs and metrics write it (`wait_healthy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Deploy => "deploy",
            Step::WaitHealthy => "wait_healthy",
            Step::BeforeCutover => "before_cutover",
            Step::Cutover => "cutover",
            Step::AfterCutover => "after_cutover",
            Step::RetireSource => "retire_source",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Moving one workload off a provider being left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Move {
    /// The workload.
    pub workload: String,
    /// Where it runs now (`None` for a first placement).
    pub from: Option<String>,
    /// Target providers in order: the first is reserved within capacity, the rest are
    /// fall-through candidates if the first fails.
    pub targets: Vec<String>,
    /// The generation the new copy gets.
    pub generation: Generation,
    /// Dependency wave: every move of wave `n` is cut over before any of wave `n + 1`.
    pub wave: u32,
    /// The deadline of the departure that caused it, if any.
    pub deadline: Option<Timestamp>,
    /// The workload's `priority`: within a wave, higher goes first.
    #[serde(default)]
    pub priority: u32,
    /// The steps to run, in order.
    pub steps: Vec<Step>,
}

/// A workload that has to move but has nowhere to go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Stranded {
    /// The workload.
    pub workload: String,
    /// Where it runs now.
    pub from: Option<String>,
    /// Why no target fits (every candidate excluded, full, ...), for humans.
    pub reason: String,
}

/// A workload on a provider being left that is deliberately not moved yet: it moved
/// within the quiet period and the departure is only a flap (see [`Cause::is_transient`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Held {
    /// The workload.
    pub workload: String,
    /// Where it runs now (the provider being left).
    pub from: String,
    /// When it may be moved for a flap again (its last move plus the quiet period).
    pub until: Timestamp,
    /// Why it stays, for humans.
    pub reason: String,
}

/// The outcome of planning: moves in execution order, and what cannot move. Every
/// workload the plan concerns appears exactly once, in `moves`, `stranded` or `held`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Plan {
    /// Moves sorted by wave, then by deadline (`None`, meaning now, first), then by
    /// workload name.
    pub moves: Vec<Move>,
    /// Workloads that must move but have no target. Never silently dropped.
    pub stranded: Vec<Stranded>,
    /// Workloads on a flapping provider that moved too recently to move again.
    pub held: Vec<Held>,
}

#[cfg(test)]
mod tests;
