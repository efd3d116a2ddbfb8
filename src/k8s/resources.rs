//! The custom resources of the in-cluster daemon, group `lifeboat.dev`, version
//! `v1alpha1`. `lifeboat crds` prints their definitions, generated from these types.
//!
//! `Provider` and `Workload` carry the same model as `lifeboat.yaml` — the same field
//! names (snake_case, as in the file, so a block of `lifeboat.yaml` pastes into a `spec`
//! unchanged), less the `name`, which is the resource's own name. Their specs are
//! converted into [`crate::config::ProviderConfig`] / [`crate::config::WorkloadConfig`]
//! and checked by the same [`crate::config::validate`] as a file (see
//! [`super::cluster`]). The parts whose types live in other crates (an adapter's
//! settings, capacity, resources, the health check) are schemaless objects here and are
//! checked on that conversion: the adapter crates stay free of schema dependencies, a
//! new adapter field needs no CRD change, and the cluster and the file give the same
//! error for the same mistake.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{DrillMode, HooksConfig, Mode, Scenario};

/// An object the cluster stores as written and the conversion checks (see the module
/// documentation).
fn free_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Like [`free_object`], but optional.
fn optional_free_object(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = free_object(generator);
    schema.insert("nullable".into(), true.into());
    schema
}

/// An adapter's settings: a `kind` and whatever that kind reads.
fn adapter_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "required": ["kind"],
        "properties": { "kind": { "type": "string" } },
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// One place that runs workloads, as in `lifeboat.yaml`'s `providers`.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "Provider",
    namespaced,
    status = "ProviderStatus",
    shortname = "lbprovider",
    category = "lifeboat",
    printcolumn = r#"{"name":"Vendor","type":"string","jsonPath":".spec.vendor"}"#,
    printcolumn = r#"{"name":"Condition","type":"string","jsonPath":".status.condition"}"#
)]
pub struct ProviderSpec {
    /// The vendor it belongs to (`aws`, `hetzner`, `self`).
    pub vendor: String,
    /// The account at that vendor; providers on one account share its fate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// How much it holds (`replicas`, `cpu_millis`, `memory_mib`); unset is unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_free_object")]
    pub capacity: Option<serde_json::Value>,
    /// Free-form labels, for humans and placement rules.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The adapter `kind` and its settings, exactly as in `lifeboat.yaml`.
    #[schemars(schema_with = "adapter_object")]
    pub adapter: serde_json::Value,
}

/// What the daemon last saw of a provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    /// The derived condition in one line (`healthy`, `suspended (...) since ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// `Ready` (the provider can take workloads), in the usual Kubernetes shape. Spec
    /// problems are reported on the Policy's `Accepted` condition.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A workload, as in `lifeboat.yaml`'s `workloads`.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "Workload",
    namespaced,
    status = "WorkloadStatus",
    shortname = "lbworkload",
    category = "lifeboat",
    printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".status.placement.provider"}"#,
    printcolumn = r#"{"name":"Generation","type":"integer","jsonPath":".status.placement.generation"}"#
)]
pub struct WorkloadSpec {
    /// A container image; a workload needs an `image`, a `command`, or both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// A command in argv form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Environment of the workload.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The port it listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Per-replica resources (`cpu_millis`, `memory_mib`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_free_object")]
    pub resources: Option<serde_json::Value>,
    /// Number of replicas (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// How to tell a copy can serve (`type: http` with a `path`, or `type: tcp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_free_object")]
    pub health: Option<serde_json::Value>,
    /// Workloads that must be cut over before this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Providers in order of preference; the first is where it runs normally.
    pub placement: Vec<String>,
    /// Recovery time objective (`90s`, `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<String>,
    /// The name clients use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_name: Option<String>,
    /// Commands run around the cutover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<HooksConfig>,
    /// Its data, which makes it a dataset: the same block as a workload's `data:` in
    /// lifeboat.yaml (`method`, `rpo`, `synchronous`, `standby`, `credentials`, and for
    /// snapshots `every`, `snapshot`, `restore`), checked the same way. In a cluster the
    /// password comes from `password_env`, or a `password_file` with an absolute path
    /// (a mounted Secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_free_object")]
    pub data: Option<serde_json::Value>,
    /// Adapter-specific extras (e.g. `manifests` for Kubernetes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "free_object")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Where a workload runs now: the placement the daemon keeps, mirrored here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// The current placement; unset until first placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementStatus>,
    /// `Placed` (the workload runs where its status says), in the usual Kubernetes shape.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// One placement, as the store holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStatus {
    /// The provider running it.
    pub provider: String,
    /// The fencing token of the copy; only grows.
    pub generation: u64,
    /// The provider-side handle of the copy, once deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// Where it answers, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// When it last moved (RFC 3339).
    pub since: String,
}

/// When to leave a provider and how fast to move, plus the cutover backend: the
/// `policy` and `cutover` sections of `lifeboat.yaml`. The daemon reads the Policy
/// called `default` (or the only one); unset fields take the policy defaults.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "Policy",
    namespaced,
    status = "PolicyStatus",
    shortname = "lbpolicy",
    category = "lifeboat"
)]
pub struct PolicySpec {
    /// Time between probes of one provider (`10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_interval: Option<String>,
    /// A probe that takes longer counts as a timeout (`5s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_timeout: Option<String>,
    /// Consecutive account-loss probes needed to declare `Suspended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmations: Option<u32>,
    /// How long a provider may be unavailable before it is evacuated (`2m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_grace: Option<String>,
    /// How long a provider must stay clean to count as healthy again (`10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_period: Option<String>,
    /// Evacuations after a notice finish this long before its deadline (`30m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_margin: Option<String>,
    /// Moves running at once, in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    /// Moves running at once against one provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_provider_parallelism: Option<u32>,
    /// Time limit of one step attempt (`2m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_timeout: Option<String>,
    /// Attempts of one step before the target is given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_attempts: Option<u32>,
    /// `auto`, `confirm` or `observe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// A workload's live copy unhealthy this long is replaced (`30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_after: Option<String>,
    /// Replacements of one workload allowed within `replacement_window`; `0` only
    /// watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replacements: Option<u32>,
    /// The window `max_replacements` counts over (`1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_window: Option<String>,
    /// How traffic follows a move (`kind: dns`, `exec`, `endpoints-file`), as in
    /// `lifeboat.yaml`.
    #[schemars(schema_with = "adapter_object")]
    pub cutover: serde_json::Value,
}

/// Whether the daemon accepted the configuration it assembled, and the operator's
/// switches as the leader holds them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// `Accepted`: the resources together make a valid configuration; its message
    /// lists the problems when they do not.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The evacuation waiting for approval (`mode: confirm`): annotate this Policy
    /// with `lifeboat.dev/approve: ID` to start it, `lifeboat.dev/reject: ID` to drop it.
    /// Written as null when none waits, so a merge patch removes it.
    #[serde(default)]
    pub pending_evacuation: Option<String>,
    /// Why the kill switch is thrown, while it is (`lifeboat.dev/pause`).
    #[serde(default)]
    pub paused: Option<String>,
}

/// A vendor's notice: leave `scope` before `deadline`.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "Notice",
    namespaced,
    status = "NoticeStatus",
    shortname = "lbnotice",
    category = "lifeboat",
    printcolumn = r#"{"name":"Scope","type":"string","jsonPath":".spec.scope"}"#,
    printcolumn = r#"{"name":"Deadline","type":"date","jsonPath":".spec.deadline"}"#
)]
pub struct NoticeSpec {
    /// A vendor, `vendor/account` or provider name.
    pub scope: String,
    /// Finish the evacuation before this instant (RFC 3339); unset means now (a fence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub deadline: Option<jiff::Timestamp>,
    /// Who raised it and why.
    #[serde(default)]
    pub reason: String,
}

/// Whether the daemon took a notice into account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NoticeStatus {
    /// `Accepted` (the scope names something lifeboat knows).
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A drill the daemon runs: a shadow drill of losing `lose` (drill-owned copies at the
/// targets, verified healthy, measured and removed; production untouched), once as
/// soon as no evacuation runs, or on a cron `schedule`. A live drill is not run by the
/// daemon (it would move the traffic it guards); run `lifeboat drill` beside it.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "Drill",
    namespaced,
    status = "DrillStatus",
    shortname = "lbdrill",
    category = "lifeboat",
    printcolumn = r#"{"name":"Lose","type":"string","jsonPath":".spec.lose"}"#,
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Outcome","type":"string","jsonPath":".status.outcome"}"#,
    printcolumn = r#"{"name":"Last run","type":"date","jsonPath":".status.lastRun"}"#
)]
pub struct DrillSpec {
    /// A vendor, `vendor/account` or provider name.
    pub lose: String,
    /// The fault the fenced providers show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<Scenario>,
    /// Only `shadow` is run by the daemon (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DrillMode>,
    /// When to run it, as a cron expression in UTC (five fields, or six with seconds
    /// first); without one, the drill runs once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

/// The outcome of a drill's last run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrillStatus {
    /// `objectives met`, `objectives missed`, `cancelled: ...`, `failed: ...`, or why
    /// the daemon does not run it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// When the last run started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    /// The report summary of the last run that finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<DrillSummary>,
    /// `Complete` (the last run ended; `Refused` when the daemon does not run it) and
    /// `ObjectivesMet`, in the usual Kubernetes shape.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// The figures of a drill report that fit in a status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrillSummary {
    /// Seconds from the fault to the decision to leave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect_seconds: Option<f64>,
    /// The slowest workload's seconds from the fault to its cutover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<f64>,
    /// Seconds the independent prober saw the service down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_seconds: Option<f64>,
    /// Workloads moved, of all.
    pub moved: u32,
    /// Workloads stranded.
    pub stranded: u32,
    /// Every objective was met.
    pub objectives_met: bool,
}

/// One evacuation: its plan in `spec`, the progress of each step in `status` — the
/// in-cluster mirror of the journal. Written by the daemon, read by humans.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "Evacuation",
    namespaced,
    status = "EvacuationStatus",
    shortname = "lbevac",
    category = "lifeboat",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#
)]
pub struct EvacuationSpec {
    /// Why it started (the departures), for humans.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The moves of the plan, in execution order.
    pub moves: Vec<PlannedMove>,
    /// Workloads the plan could not place, with the reason.
    #[serde(default)]
    pub stranded: Vec<StrandedWorkload>,
}

/// One move of an evacuation plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedMove {
    /// The workload.
    pub workload: String,
    /// Where it runs now, if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Candidate targets, best first.
    pub targets: Vec<String>,
}

/// A workload with nowhere to go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StrandedWorkload {
    /// The workload.
    pub workload: String,
    /// Why, for humans.
    pub reason: String,
}

/// The progress of an evacuation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvacuationStatus {
    /// `Running`, `Succeeded` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The last transition of each (workload, step), in journal order.
    #[serde(default)]
    pub steps: Vec<StepProgress>,
    /// `Complete`, in the usual Kubernetes shape.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// Where one step of one move stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepProgress {
    /// The workload.
    pub workload: String,
    /// The step (`deploy`, `wait_healthy`, `cutover`, ...).
    pub step: String,
    /// `started`, `done`, `failed` or `abandoned`.
    pub status: String,
    /// The target provider.
    pub target: String,
    /// Attempt number at that target.
    pub attempt: u32,
    /// Error or note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}
