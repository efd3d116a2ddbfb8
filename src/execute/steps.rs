//! The steps of one move at one target, in make-before-break order.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use lifeboat_provider::{
    DeployRequest, DeploymentRef, DeploymentState, Endpoint, ErrorClass, Generation, Provider,
    Timing,
};
use tokio::time::Instant;

use super::concurrency::{Permits, Ticket};
use super::retry::{Done, Failure, RetryPolicy, StepError, run_step};
use super::{Inner, MoveLog};
use crate::config::WorkloadConfig;
use crate::cutover::CutoverRequest;
use crate::dataset::Shipping;
use crate::hooks::{HookEnv, run_hook};
use crate::model::{Move, Placement, Step};
use crate::store::{Orphan, Outcome};
use crate::workload;

/// How the work at one target ended.
pub(crate) enum TargetResult {
    /// The move ended here (moved, verified, or fenced by a newer placement).
    Finished {
        outcome: Outcome,
        healthy_after: Option<Duration>,
        cutover_after: Option<Duration>,
        /// The adapter's own timings of the deploy (see [`Provider::timings`]).
        phases: Vec<Timing>,
    },
    /// A step before the cutover failed for good: give this target up.
    Failed {
        step: Step,
        error: StepError,
        copy: Option<DeploymentRef>,
    },
}

/// Everything one move needs at one target.
pub(crate) struct TargetRun<'a> {
    pub inner: &'a Arc<Inner>,
    pub log: &'a MoveLog,
    pub mv: &'a Move,
    pub workload: &'a WorkloadConfig,
    pub source: Option<&'a Placement>,
    pub target: &'a str,
    pub provider: &'a Arc<dyn Provider>,
    /// Steps the journal says are done at this target already.
    pub done: BTreeSet<Step>,
    /// The copy the journal knows at this target.
    pub deployment: Option<DeploymentRef>,
    pub start: Instant,
    pub ticket: &'a mut Ticket,
    pub permits: &'a mut Permits,
}

/// The steps a move runs: the plan's, in make-before-break order (all of them when the
/// plan lists none). Shadow mode stops after the health check and then retires the new
/// copy itself (under the `RetireSource` step).
pub(crate) fn steps_for(mv: &Move, shadow: bool) -> Vec<Step> {
    if shadow {
        return vec![Step::Deploy, Step::WaitHealthy, Step::RetireSource];
    }
    Step::ALL
        .into_iter()
        .filter(|s| mv.steps.is_empty() || mv.steps.contains(s))
        .collect()
}

impl TargetRun<'_> {
    fn policy(&self) -> RetryPolicy {
        let p = &self.inner.policy;
        RetryPolicy {
            attempts: p.step_attempts,
            timeout: p.step_timeout,
            base: self.inner.options.backoff_base,
            max: self.inner.options.backoff_max,
        }
    }

    /// Runs the remaining steps. `Err` only for a failure of the controller itself.
    pub async fn run(mut self) -> anyhow::Result<TargetResult> {
        let shadow = self.inner.options.shadow;
        let mut copy = self.deployment.clone();
        let mut healthy_after = None;
        let mut cutover_after = None;
        let mut phases = Vec::new();
        let mut warnings = Vec::new();
        for step in steps_for(self.mv, shadow) {
            if self.done.contains(&step) {
                if step == Step::Cutover {
                    self.ticket.pass();
                }
                continue;
            }
            let before_cutover = matches!(
                step,
                Step::Deploy | Step::WaitHealthy | Step::BeforeCutover | Step::Cutover
            );
            if before_cutover && !shadow && self.inner.is_departing(self.target) {
                let error = self.being_left();
                return Ok(TargetResult::Failed { step, error, copy });
            }
            let pause = &self.inner.options.pause;
            if pause.is_paused() {
                tracing::info!(workload = %self.mv.workload, target = %self.target, ?step, "paused: the step waits for resume");
                pause.wait_resumed().await;
            }
            let result = match step {
                Step::Deploy => self
                    .unless_departed(self.deploy())
                    .await
                    .map(|d| copy = Some(d)),
                Step::WaitHealthy => match &copy {
                    Some(dep) => self.unless_departed(self.wait_healthy(dep)).await.map(|d| {
                        healthy_after = Some(self.start.elapsed());
                        // Deploy has returned, so the adapter's figures are complete.
                        phases = self.provider.timings(&d);
                        copy = Some(d);
                    }),
                    None => Err(no_copy()),
                },
                Step::BeforeCutover => match &copy {
                    Some(dep) => match self.promote(dep).await {
                        Ok(()) => self.hooks(step, dep).await,
                        Err(e) => Err(e),
                    },
                    None => Err(no_copy()),
                },
                Step::Cutover => {
                    let Some(dep) = copy.clone() else {
                        let error = fatal_or(no_copy())?;
                        return Ok(TargetResult::Failed { step, error, copy });
                    };
                    if let Some(by) = self.superseded_by()? {
                        return Ok(TargetResult::Finished {
                            outcome: Outcome::Superseded { by },
                            healthy_after,
                            cutover_after,
                            phases,
                        });
                    }
                    self.wait_for_earlier_waves().await;
                    let mut result = self.cutover(&dep).await;
                    if result.is_err() && self.took_effect(&dep).await? {
                        result = Ok(());
                    }
                    if result.is_ok() {
                        self.ticket.pass();
                        cutover_after = Some(self.start.elapsed());
                    }
                    result
                }
                Step::AfterCutover => {
                    if let Some(dep) = &copy
                        && let Err(e) = self.hooks(step, dep).await
                    {
                        warnings.push(format!("after_cutover: {}", fatal_or(e)?));
                    }
                    Ok(())
                }
                Step::RetireSource => {
                    let doomed = if shadow {
                        copy.clone().map(|d| (self.target.to_owned(), d))
                    } else {
                        self.source
                            .and_then(|s| s.deployment.clone().map(|d| (s.provider.clone(), d)))
                    };
                    if let Some((provider, dep)) = doomed
                        && let Some(warning) = self.retire(&provider, &dep).await?
                    {
                        warnings.push(warning);
                    }
                    Ok(())
                }
            };
            if let Err(failure) = result {
                let error = fatal_or(failure)?;
                return Ok(TargetResult::Failed { step, error, copy });
            }
        }
        let outcome = if shadow {
            Outcome::Verified {
                on: self.target.to_owned(),
            }
        } else {
            Outcome::Moved {
                to: self.target.to_owned(),
                warnings,
            }
        };
        Ok(TargetResult::Finished {
            outcome,
            healthy_after,
            cutover_after,
            phases,
        })
    }

    /// `step`, cut short when the controller decides to leave this target meanwhile
    /// (a second vendor lost mid-evacuation): the move falls through to its next
    /// candidate instead of waiting on a provider it is leaving. Shadow moves go on:
    /// they verify, they never serve.
    async fn unless_departed<T>(
        &self,
        step: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        if self.inner.options.shadow {
            return step.await;
        }
        tokio::select! {
            result = step => result,
            () = self.inner.departed(self.target) => Err(Failure::Step(self.being_left())),
        }
    }

    fn being_left(&self) -> StepError {
        StepError::new(
            ErrorClass::Unavailable,
            format!("{} is being left now", self.target),
        )
    }

    async fn deploy(&self) -> Result<DeploymentRef, Failure> {
        let mut spec = workload::spec(self.workload);
        // A dataset's new member starts as a standby of the primary it replaces (the
        // standby kept for this generation already is one, and is found as it is).
        if self.workload.data.is_some() {
            crate::dataset::name_member(&mut spec, self.mv.generation, &self.inner.owner);
            // A snapshot dataset's new member starts empty and is restored instead.
            let streams = self
                .inner
                .options
                .datasets
                .method(&self.mv.workload)
                .is_some();
            if let (true, Some(primary)) = (streams, self.source_endpoint()) {
                crate::dataset::as_standby_of(&mut spec, &primary, self.mv.generation);
            }
        }
        let req = DeployRequest {
            workload: spec,
            generation: self.mv.generation,
            owner: self.inner.owner.clone(),
        };
        let (req, provider) = (&req, self.provider);
        run_step(
            self.log,
            self.policy(),
            Step::Deploy,
            self.target,
            move || async move {
                let dep = provider.deploy(req).await?;
                Ok(Done {
                    deployment: Some(dep.clone()),
                    value: dep,
                    placement: None,
                })
            },
        )
        .await
    }

    /// Polls `inspect` until the copy is healthy; returns the copy with its endpoint.
    async fn wait_healthy(&self, dep: &DeploymentRef) -> Result<DeploymentRef, Failure> {
        let (provider, poll) = (self.provider, self.inner.options.health_poll);
        run_step(
            self.log,
            self.policy(),
            Step::WaitHealthy,
            self.target,
            move || async move {
                loop {
                    match provider.inspect(dep).await {
                        Ok(DeploymentState::Healthy { endpoint }) => {
                            let dep = DeploymentRef {
                                endpoint: Some(endpoint),
                                ..dep.clone()
                            };
                            return Ok(Done {
                                deployment: Some(dep.clone()),
                                value: dep,
                                placement: None,
                            });
                        }
                        Ok(DeploymentState::Pending { .. } | DeploymentState::Running { .. }) => {}
                        Ok(DeploymentState::Failed { reason }) => {
                            let msg = format!("the new copy failed: {reason}");
                            return Err(Failure::Step(StepError::new(
                                ErrorClass::InvalidRequest,
                                msg,
                            )));
                        }
                        Ok(DeploymentState::Gone) => {
                            let msg = "the new copy disappeared before becoming healthy";
                            return Err(Failure::Step(StepError::new(ErrorClass::NotFound, msg)));
                        }
                        // A passing hiccup of the vendor's API: keep polling until the
                        // attempt's timeout decides.
                        Err(e) if e.class.is_retryable() => {}
                        Err(e) => return Err(e.into()),
                    }
                    tokio::time::sleep(poll).await;
                }
            },
        )
        .await
    }

    /// A dataset's move: the old primary stops taking writes (if it still answers),
    /// the new member catches up with what it had, is promoted, and the old primary is
    /// fenced for good. An old primary that does not answer is fenced by generation
    /// when its provider returns (its copy is retired as stale) and by the cutover,
    /// which never points at it again. Every part is idempotent, so the step repeats
    /// safely after a crash.
    async fn promote(&self, dep: &DeploymentRef) -> Result<(), Failure> {
        if let Some(shipping) = self.inner.options.datasets.shipping(&self.mv.workload) {
            return self.restore(shipping, dep).await;
        }
        let Some(method) = self.inner.options.datasets.method(&self.mv.workload) else {
            return Ok(());
        };
        let new = dep.endpoint.clone().ok_or_else(no_endpoint)?;
        let old = self.source_endpoint().filter(|old| *old != new);
        let (method, timeout) = (method.clone(), self.inner.policy.step_timeout);
        let (old, new) = (&old, &new);
        let workload = &self.mv.workload;
        run_step(
            self.log,
            self.policy(),
            Step::BeforeCutover,
            self.target,
            move || {
                let method = method.clone();
                async move {
                    let stopped = match old {
                        Some(old) => match within(timeout, method.stop_writes(old)).await {
                            Ok(()) => true,
                            Err(why) => {
                                tracing::warn!(%workload, %old, %why, "the old primary could not be stopped: promoting what the standby has");
                                false
                            }
                        },
                        None => false,
                    };
                    if let (true, Some(old)) = (stopped, old) {
                        catch_up(method.as_ref(), old, new, timeout).await;
                    }
                    let promoted = method.promote(new).await.map_err(dataset_failure)?;
                    tracing::info!(%workload, member = %new, ?promoted, "new primary");
                    if let Some(old) = old
                        && let Err(why) = within(timeout, method.fence(old)).await
                    {
                        tracing::warn!(%workload, %old, %why, "the old primary is not fenced yet: its copy is retired as stale when its provider answers");
                    }
                    Ok(Done::plain(()))
                }
            },
        )
        .await
    }

    /// A snapshot dataset's move: the new copy is restored from a snapshot before any
    /// traffic reaches it. When the old primary still answers, a last snapshot of it is
    /// taken first (a planned move loses nothing committed before it); otherwise the
    /// last one shipped is restored, and the data since is what the move loses. With
    /// no snapshot at all the step fails: an empty copy is not the service's data. A
    /// first placement restores nothing: the data starts there.
    async fn restore(&self, shipping: &Arc<Shipping>, dep: &DeploymentRef) -> Result<(), Failure> {
        // A first placement is where the data starts: there is nothing to restore yet.
        if self.source.is_none() {
            return Ok(());
        }
        let new = dep.endpoint.clone().ok_or_else(no_endpoint)?;
        let old = (self.source)
            .and_then(|s| Some((s.deployment.as_ref()?.endpoint.clone()?, s.generation)))
            .filter(|(old, _)| *old != new);
        let timeout = self.inner.policy.step_timeout;
        let (workload, generation, store) =
            (&self.mv.workload, self.mv.generation, &self.inner.store);
        let clock = &self.inner.options.clock;
        let (old, new) = (&old, &new);
        run_step(
            self.log,
            self.policy(),
            Step::BeforeCutover,
            self.target,
            move || async move {
                let last = match old {
                    Some((old, g)) => match shipping.take_now(workload, old, *g, timeout).await {
                        Ok(s) => Some(s),
                        Err(why) => {
                            tracing::warn!(%workload, %old, %why, "no last snapshot of the old primary: restoring the last one shipped");
                            None
                        }
                    },
                    None => None,
                };
                let snapshot = match last {
                    Some(s) => s,
                    None => (store.datasets().map_err(Failure::Fatal)?)
                        .remove(workload.as_str())
                        .and_then(|d| d.snapshot)
                        .ok_or_else(|| {
                            Failure::Step(StepError::new(
                                ErrorClass::NotFound,
                                format!("no snapshot of {workload} was shipped: there is nothing to restore its new copy from"),
                            ))
                        })?,
                };
                shipping
                    .restore(workload, &snapshot, new, generation, timeout)
                    .await
                    .map_err(|e| {
                        let class = e.class();
                        Failure::Step(StepError::new(class, format!("restoring snapshot {}: {:#}", snapshot.id, anyhow::Error::new(e))))
                    })?;
                tracing::info!(%workload, member = %new, id = %snapshot.id, taken_at = %snapshot.taken_at, "restored");
                store.record_snapshot(workload, &snapshot, clock.now()).map_err(Failure::Fatal)?;
                Ok(Done::plain(()))
            },
        )
        .await
    }

    fn hook_env(&self, dep: &DeploymentRef) -> Result<HookEnv, Failure> {
        Ok(HookEnv {
            workload: self.mv.workload.clone(),
            generation: self.mv.generation,
            old_endpoint: self.source_endpoint(),
            new_endpoint: dep.endpoint.clone().ok_or_else(no_endpoint)?,
        })
    }

    async fn hooks(&self, step: Step, dep: &DeploymentRef) -> Result<(), Failure> {
        let hooks = match step {
            Step::BeforeCutover => &self.workload.hooks.before_cutover,
            _ => &self.workload.hooks.after_cutover,
        };
        let env = self.hook_env(dep)?;
        let (env, timeout) = (&env, self.inner.policy.step_timeout);
        run_step(
            self.log,
            self.policy(),
            step,
            self.target,
            move || async move {
                for argv in hooks {
                    run_hook(argv, env, timeout).await.map_err(|e| {
                        // The whole chain: a spawn failure's reason is its source.
                        let class = e.class();
                        Failure::Step(StepError::new(
                            class,
                            format!("{:#}", anyhow::Error::new(e)),
                        ))
                    })?;
                }
                Ok(Done::plain(()))
            },
        )
        .await
    }

    fn source_endpoint(&self) -> Option<Endpoint> {
        self.source
            .and_then(|s| s.deployment.as_ref())
            .and_then(|d| d.endpoint.clone())
    }

    /// Fencing: a newer placement of the workload than this move's generation wins.
    fn superseded_by(&self) -> anyhow::Result<Option<Generation>> {
        let current = self.inner.store.placement(&self.mv.workload)?;
        Ok(current
            .filter(|p| p.generation >= self.mv.generation)
            .filter(|p| !(p.generation == self.mv.generation && p.provider == self.target))
            .map(|p| p.generation))
    }

    /// Gives the permits back while earlier waves finish their cutovers, then takes
    /// them again (see [`super::concurrency`] for why).
    async fn wait_for_earlier_waves(&mut self) {
        self.permits.provider = None;
        self.permits.global = None;
        self.ticket.wait().await;
        self.permits.global = Some(self.inner.limits.global().await);
        self.permits.provider = self.inner.limits.provider(self.target).await;
    }

    fn new_placement(&self, dep: &DeploymentRef) -> Placement {
        Placement {
            workload: self.mv.workload.clone(),
            provider: self.target.to_owned(),
            generation: self.mv.generation,
            deployment: Some(dep.clone()),
            since: self.inner.options.clock.now(),
        }
    }

    /// After a failed cutover: whether the switch happened anyway (it timed out after
    /// taking effect). Then the cutover is committed instead of falling through, which
    /// would retire the copy that now receives the traffic.
    async fn took_effect(&self, dep: &DeploymentRef) -> anyhow::Result<bool> {
        let name = workload::public_name(self.workload);
        let resolved = tokio::time::timeout(
            self.inner.policy.step_timeout,
            self.inner.cutover.resolve(name),
        )
        .await;
        let current = match resolved {
            Ok(Ok(r)) => r.endpoint,
            _ => return Ok(false),
        };
        if current.is_none() || current != dep.endpoint {
            return Ok(false);
        }
        let detail = "the switch took effect although the backend reported a failure";
        tracing::warn!(workload = %self.mv.workload, "{detail}");
        self.log
            .finish(
                Step::Cutover,
                0,
                self.target,
                Some(dep.clone()),
                Some(self.new_placement(dep)),
            )
            .await?;
        Ok(true)
    }

    async fn cutover(&self, dep: &DeploymentRef) -> Result<(), Failure> {
        if dep.generation != self.mv.generation {
            let msg = format!(
                "refusing to cut over to generation {} (the move's is {})",
                dep.generation, self.mv.generation
            );
            return Err(Failure::Step(StepError::new(
                ErrorClass::InvalidRequest,
                msg,
            )));
        }
        let new = dep.endpoint.clone().ok_or_else(no_endpoint)?;
        let placement = self.new_placement(dep);
        let public_name = workload::public_name(self.workload).to_owned();
        let old = self.source_endpoint();
        let (cutover, old) = (&self.inner.cutover, &old);
        let (new, public_name, placement) = (&new, &public_name, &placement);
        run_step(
            self.log,
            self.policy(),
            Step::Cutover,
            self.target,
            move || async move {
                // Check the state first: after a crash the switch may already have happened,
                // and a backend refuses a switch whose `old` no longer matches.
                let current = cutover
                    .resolve(public_name)
                    .await
                    .ok()
                    .and_then(|r| r.endpoint);
                if current.as_ref() != Some(new) {
                    let req = CutoverRequest {
                        workload: placement.workload.clone(),
                        public_name: public_name.clone(),
                        old: old.clone().or(current),
                        new: new.clone(),
                        generation: placement.generation,
                    };
                    cutover
                        .switch(&req)
                        .await
                        .map_err(|e| Failure::Step(StepError::new(e.class, e.message)))?;
                }
                Ok(Done {
                    value: (),
                    deployment: Some(dep.clone()),
                    placement: Some(placement.clone()),
                })
            },
        )
        .await
    }

    /// Retires a copy on `provider` with retries; records it as an orphan when that
    /// fails. Returns a warning for the report in that case.
    async fn retire(&self, provider: &str, dep: &DeploymentRef) -> anyhow::Result<Option<String>> {
        let Some(p) = self.inner.providers.get(provider) else {
            return orphan(self.inner, provider, dep, "provider not configured").map(Some);
        };
        let result = run_step(
            self.log,
            self.policy(),
            Step::RetireSource,
            self.target,
            || async {
                p.retire(dep).await?;
                Ok(Done::plain(()))
            },
        )
        .await;
        match result {
            Ok(()) => Ok(None),
            Err(failure) => {
                let reason = fatal_or(failure)?.to_string();
                orphan(self.inner, provider, dep, &reason).map(Some)
            }
        }
    }
}

/// Records a copy that could not be retired; returns the report's warning.
pub(crate) fn orphan(
    inner: &Inner,
    provider: &str,
    dep: &DeploymentRef,
    reason: &str,
) -> anyhow::Result<String> {
    inner.store.record_orphan(&Orphan {
        provider: provider.to_owned(),
        deployment: dep.clone(),
        reason: reason.to_owned(),
        at: inner.options.clock.now(),
    })?;
    Ok(format!(
        "copy {} on {provider} could not be retired ({reason}); recorded as an orphan",
        dep.handle
    ))
}

/// The step error, or the controller's own failure as `Err`.
fn fatal_or(failure: Failure) -> anyhow::Result<StepError> {
    match failure {
        Failure::Step(e) => Ok(e),
        Failure::Fatal(e) => Err(e),
    }
}

/// Waits (within `timeout`) until the member at `new` has replayed everything the
/// stopped primary at `old` wrote: a switchover that loses nothing.
async fn catch_up(
    method: &dyn lifeboat_dataset::Replication,
    old: &Endpoint,
    new: &Endpoint,
    timeout: Duration,
) {
    let Ok(Ok(written)) = tokio::time::timeout(timeout, method.position(old)).await else {
        return;
    };
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match method.position(new).await {
            Ok(at) if at >= written => return,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    tracing::warn!(%new, "the new primary had not caught up with the old one in time");
}

/// A call to a member that may not answer: its error, or that it did not answer in
/// `timeout`, for a warning (the step goes on without it).
async fn within(
    timeout: Duration,
    call: impl Future<Output = Result<(), lifeboat_dataset::DatasetError>>,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

fn dataset_failure(e: lifeboat_dataset::DatasetError) -> Failure {
    Failure::Step(StepError::new(e.class, e.message))
}

fn no_copy() -> Failure {
    Failure::Step(StepError::new(
        ErrorClass::Internal,
        "no copy at the target (deploy has not run)",
    ))
}

fn no_endpoint() -> Failure {
    Failure::Step(StepError::new(
        ErrorClass::Internal,
        "the new copy has no endpoint yet",
    ))
}
