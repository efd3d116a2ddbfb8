//! Every write the in-cluster daemon makes to the cluster — status subresources,
//! Evacuation resources, Events — goes through [`Writer`], which checks leadership
//! first: a replica that lost the lease cannot write, even from a task that has not
//! noticed yet.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource};
use serde_json::json;
use tokio::sync::watch;

use super::conditions;
use super::resources::{
    Drill, DrillStatus, Evacuation, EvacuationSpec, EvacuationStatus, PlacementStatus, PlannedMove,
    Policy, Provider, ProviderStatus, StepProgress, StrandedWorkload, Workload, WorkloadStatus,
};
use crate::execute::ExecEvent;
use crate::model::{Condition, Placement};
use crate::store::Status;

/// How often a status write is computed again after a resourceVersion conflict.
const CONFLICT_ATTEMPTS: usize = 5;

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "lifeboat";

/// Writes to the cluster on behalf of the leader.
#[derive(Clone)]
pub struct Writer {
    client: Client,
    namespace: String,
    leader: watch::Receiver<bool>,
    recorder: Recorder,
}

impl Writer {
    /// A writer in `namespace` that writes only while `leader` says `true`. Events are
    /// reported by `lifeboat`, instance `identity`.
    pub fn new(
        client: Client,
        namespace: &str,
        leader: watch::Receiver<bool>,
        identity: &str,
    ) -> Writer {
        let reporter = Reporter {
            controller: "lifeboat".into(),
            instance: Some(identity.to_owned()),
        };
        Writer {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            namespace: namespace.to_owned(),
            leader,
        }
    }

    /// Fails unless this replica holds the lease now.
    pub fn ensure_leader(&self) -> anyhow::Result<()> {
        if !*self.leader.borrow() {
            bail!("not the leader any more: refusing to write");
        }
        Ok(())
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Mirrors a provider's condition into its status, and records an Event when it
    /// changed (`changed` is the old condition, if this is a change).
    pub async fn provider_condition(
        &self,
        provider: &Provider,
        condition: &Condition,
        changed: Option<Option<&Condition>>,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        self.ensure_leader()?;
        let (ready, reason) = conditions::ready(condition);
        let text = condition.to_string();
        self.write_status(provider, |provider: &Provider| {
            let mut status = provider.status.clone().unwrap_or_default();
            conditions::set(
                &mut status.conditions,
                "Ready",
                ready,
                reason,
                &text,
                provider.meta().generation,
                now,
            );
            let status = ProviderStatus {
                condition: Some(text.clone()),
                ..status
            };
            Some((json!(status), ()))
        })
        .await?;
        if let Some(old) = changed {
            let old = old
                .map(ToString::to_string)
                .unwrap_or_else(|| "unknown".into());
            let kind = if ready {
                EventType::Normal
            } else {
                EventType::Warning
            };
            self.event(
                &provider.object_ref(&()),
                kind,
                reason,
                "ConditionChanged",
                format!("{old} -> {text}"),
            )
            .await?;
        }
        Ok(())
    }

    /// Mirrors a workload's placement into its status, with an Event when it moved.
    pub async fn workload_placement(
        &self,
        workload: &Workload,
        placement: &Placement,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let new = PlacementStatus {
            provider: placement.provider.clone(),
            generation: placement.generation.0,
            handle: placement.deployment.as_ref().map(|d| d.handle.clone()),
            endpoint: (placement.deployment.as_ref())
                .and_then(|d| d.endpoint.as_ref())
                .map(ToString::to_string),
            since: placement.since.to_string(),
        };
        let message = format!("runs on {} at generation {}", new.provider, new.generation);
        self.ensure_leader()?;
        let Some(moved_from) = self
            .write_status(workload, |workload: &Workload| {
                let old = workload.status.as_ref().and_then(|s| s.placement.as_ref());
                if old == Some(&new) {
                    return None;
                }
                let moved_from = old.map(|o| o.provider.clone());
                let mut status = workload.status.clone().unwrap_or_default();
                conditions::set(
                    &mut status.conditions,
                    "Placed",
                    true,
                    "Placed",
                    &message,
                    workload.meta().generation,
                    now,
                );
                let status = WorkloadStatus {
                    placement: Some(new.clone()),
                    ..status
                };
                Some((json!(status), moved_from))
            })
            .await?
        else {
            return Ok(());
        };
        let (reason, note) = match moved_from {
            Some(from) if from != new.provider => (
                "Moved",
                format!(
                    "moved from {from} to {} (generation {})",
                    new.provider, new.generation
                ),
            ),
            _ => ("Placed", message),
        };
        self.event(
            &workload.object_ref(&()),
            EventType::Normal,
            reason,
            "Place",
            note,
        )
        .await
    }

    /// Records whether the cluster's resources made a valid configuration.
    pub async fn policy_accepted(
        &self,
        policy: &Policy,
        problems: Option<&str>,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        self.ensure_leader()?;
        let (ok, reason, message) = match problems {
            None => (true, "Valid", "the resources make a valid configuration"),
            Some(p) => (false, "Invalid", p),
        };
        self.write_status(policy, |policy: &Policy| {
            let mut status = policy.status.clone().unwrap_or_default();
            let before = status.conditions.clone();
            conditions::set(
                &mut status.conditions,
                "Accepted",
                ok,
                reason,
                message,
                policy.meta().generation,
                now,
            );
            (before != status.conditions).then(|| (json!(status), ()))
        })
        .await?;
        Ok(())
    }

    /// Shows the pending evacuation and the kill switch in the Policy's status.
    pub async fn policy_switches(
        &self,
        policy: &Policy,
        pending: Option<&str>,
        paused: Option<&str>,
    ) -> anyhow::Result<()> {
        self.ensure_leader()?;
        self.write_status(policy, |policy: &Policy| {
            let mut status = policy.status.clone().unwrap_or_default();
            let before = status.clone();
            status.pending_evacuation = pending.map(str::to_owned);
            status.paused = paused.map(str::to_owned);
            (before != status).then(|| (json!(status), ()))
        })
        .await?;
        Ok(())
    }

    /// Writes a Drill's status as `compute` makes it from the resource as the server
    /// holds it (`None`: nothing to write).
    pub async fn drill_status(
        &self,
        drill: &Drill,
        compute: impl Fn(&Drill) -> Option<DrillStatus>,
    ) -> anyhow::Result<()> {
        self.ensure_leader()?;
        self.write_status(drill, |current| {
            let status = compute(current)?;
            Some((serde_json::to_value(status).ok()?, ()))
        })
        .await?;
        Ok(())
    }

    /// Creates the Evacuation resource of an evacuation the executor just began.
    pub async fn begin_evacuation(
        &self,
        id: &str,
        evacuation: &crate::store::Evacuation,
        reasons: Vec<String>,
    ) -> anyhow::Result<()> {
        self.ensure_leader()?;
        let spec = EvacuationSpec {
            reasons,
            moves: (evacuation.plan.moves.iter())
                .map(|m| PlannedMove {
                    workload: m.workload.clone(),
                    from: m.from.clone(),
                    targets: m.targets.clone(),
                })
                .collect(),
            stranded: (evacuation.plan.stranded.iter())
                .map(|s| StrandedWorkload {
                    workload: s.workload.clone(),
                    reason: s.reason.clone(),
                })
                .collect(),
        };
        let resource = Evacuation::new(&resource_name(id), spec);
        match self
            .api::<Evacuation>()
            .create(&PostParams::default(), &resource)
            .await
        {
            Ok(_) => Ok(()),
            // A resumed evacuation already has its resource.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(e).with_context(|| format!("creating Evacuation/{id}")),
        }
    }

    /// Writes an evacuation's step progress and phase, with an Event for the step.
    pub async fn evacuation_step(
        &self,
        id: &str,
        steps: &BTreeMap<(String, String), StepProgress>,
        event: Option<&ExecEvent>,
        phase: &str,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        self.ensure_leader()?;
        let mut status = EvacuationStatus {
            phase: Some(phase.to_owned()),
            steps: steps.values().cloned().collect(),
            conditions: Vec::new(),
        };
        status.steps.sort_by(|a, b| a.at.cmp(&b.at));
        let complete = phase != "Running";
        conditions::set(
            &mut status.conditions,
            "Complete",
            complete,
            phase,
            "",
            None,
            now,
        );
        self.patch_status::<Evacuation>(&resource_name(id), json!({ "status": status }))
            .await?;
        if let Some(e) = event {
            let kind = match e.status {
                Status::Failed | Status::Abandoned => EventType::Warning,
                Status::Started | Status::Done => EventType::Normal,
            };
            let reference = ObjectReference {
                api_version: Some("lifeboat.dev/v1alpha1".into()),
                kind: Some("Evacuation".into()),
                name: Some(id.to_owned()),
                namespace: Some(self.namespace.clone()),
                ..Default::default()
            };
            let note = format!(
                "{} {:?} {:?} on {} (attempt {}){}",
                e.workload,
                e.step,
                e.status,
                e.target,
                e.attempt,
                e.detail
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            );
            self.event(&reference, kind, "Step", "Evacuate", note)
                .await?;
        }
        Ok(())
    }

    /// Writes a status computed from the object as the server holds it. The first
    /// attempt computes from `object` as the caller saw it (a watcher's cache, possibly a
    /// little behind) and sends its resourceVersion as a precondition; when the server
    /// answers 409 Conflict (the object changed since), the object is read again and the
    /// status computed anew, so a write never rests on a stale read. `compute` gives the
    /// status and a value for the caller, or `None` when nothing needs writing; the
    /// result is that value from the attempt that was written.
    async fn write_status<K, T>(
        &self,
        object: &K,
        compute: impl Fn(&K) -> Option<(serde_json::Value, T)>,
    ) -> anyhow::Result<Option<T>>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let kind = K::kind(&Default::default()).to_string();
        let name = object.meta().name.clone().unwrap_or_default();
        let mut current = object.clone();
        for _ in 0..CONFLICT_ATTEMPTS {
            let Some((status, value)) = compute(&current) else {
                return Ok(None);
            };
            let body = json!({
                "metadata": {"resourceVersion": current.meta().resource_version},
                "status": status,
            });
            match self
                .api::<K>()
                .patch_status(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER),
                    &Patch::Merge(&body),
                )
                .await
            {
                Ok(_) => return Ok(Some(value)),
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    tracing::debug!(%kind, %name, "status changed since it was read; reading it again");
                    current = self
                        .api::<K>()
                        .get_status(&name)
                        .await
                        .with_context(|| format!("reading {kind}/{name} again"))?;
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("writing the status of {kind}/{name}"));
                }
            }
        }
        bail!("the status of {kind}/{name} kept changing while being written; try again")
    }

    async fn patch_status<K>(&self, name: &str, body: serde_json::Value) -> anyhow::Result<()>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let kind = K::kind(&Default::default()).to_string();
        self.api::<K>()
            .patch_status(
                name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Merge(&body),
            )
            .await
            .with_context(|| format!("writing the status of {kind}/{name}"))?;
        Ok(())
    }

    async fn event(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) -> anyhow::Result<()> {
        self.ensure_leader()?;
        // The Events API caps a note at 1 kB.
        let note: String = note.chars().take(1000).collect();
        self.recorder
            .publish(
                &Event {
                    type_,
                    reason: reason.to_owned(),
                    note: Some(note),
                    action: action.to_owned(),
                    secondary: None,
                },
                reference,
            )
            .await
            .with_context(|| format!("recording a {reason} event"))
    }
}

/// The journal line of an executor event, as an Evacuation's status shows it.
pub fn progress(e: &ExecEvent) -> StepProgress {
    // Steps and statuses serialise as the journal writes them (`wait_healthy`, `done`).
    let text = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    StepProgress {
        workload: e.workload.clone(),
        step: text(serde_json::to_value(e.step)),
        status: text(serde_json::to_value(e.status)),
        target: e.target.clone(),
        attempt: e.attempt,
        detail: e.detail.clone(),
        at: e.wall.to_string(),
    }
}

/// The name of an evacuation's resource: its id, lower-cased, since ids journaled before
/// they were made of lower case only (`ev-20261202T075743.906Z-b6a6`) are no valid
/// Kubernetes names as they are.
fn resource_name(id: &str) -> String {
    id.to_ascii_lowercase()
}
