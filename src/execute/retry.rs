//! Attempts of one step: a timeout on each, exponential backoff with jitter between
//! them for retryable classes, and a journal line before and after every attempt.

use std::future::Future;
use std::time::Duration;

use lifeboat_provider::{DeploymentRef, ErrorClass, ProviderError};
use rand::RngExt;

use super::MoveLog;
use crate::model::{Placement, Step};
use crate::store::Status;

/// Why one attempt of a step failed, in the contract's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepError {
    pub class: ErrorClass,
    pub message: String,
}

impl StepError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> StepError {
        StepError {
            class,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.class)
    }
}

/// A step that failed for a reason of its own (retried, then the target is given up),
/// or a failure of the controller itself (the store), which stops the whole execution:
/// acting without a journal would break the promise that a restart can resume.
#[derive(Debug)]
pub(crate) enum Failure {
    Step(StepError),
    Fatal(anyhow::Error),
}

impl From<ProviderError> for Failure {
    fn from(e: ProviderError) -> Failure {
        Failure::Step(StepError::new(e.class, e.to_string()))
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Fatal(e)
    }
}

/// What a successful attempt leaves in the journal besides `done`.
#[derive(Debug)]
pub(crate) struct Done<T> {
    pub value: T,
    /// The target's copy as now known (deployed, or with its endpoint filled in).
    pub deployment: Option<DeploymentRef>,
    /// Committed with the `done` line in one transaction (the cutover's new placement).
    pub placement: Option<Placement>,
}

impl<T> Done<T> {
    pub fn plain(value: T) -> Done<T> {
        Done {
            value,
            deployment: None,
            placement: None,
        }
    }
}

/// How retries are spaced and bounded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub attempts: u32,
    pub timeout: Duration,
    pub base: Duration,
    pub max: Duration,
}

/// The backoff before attempt `attempt + 1`: `base · 2^(attempt-1)`, capped at `max`.
pub(crate) fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    base.saturating_mul(factor).min(max)
}

/// `delay` jittered uniformly into `[delay/2, delay]`, so moves that failed together do
/// not retry in lockstep against a vendor that is already struggling.
pub(crate) fn jittered(delay: Duration) -> Duration {
    let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
    let half = nanos / 2;
    Duration::from_nanos(half + rand::rng().random_range(0..=nanos - half))
}

/// Runs `action` for `step` at `target` with the policy's timeout and retries,
/// journaling `started` before each attempt and `done`/`failed` after it.
pub(crate) async fn run_step<T, F, Fut>(
    log: &MoveLog,
    policy: RetryPolicy,
    step: Step,
    target: &str,
    mut action: F,
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Done<T>, Failure>>,
{
    let attempts = policy.attempts.max(1);
    let mut attempt = 1;
    loop {
        log.write(step, attempt, Status::Started, target, None, None)
            .await?;
        let error = match tokio::time::timeout(policy.timeout, action()).await {
            Ok(Ok(done)) => {
                log.finish(step, attempt, target, done.deployment, done.placement)
                    .await?;
                return Ok(done.value);
            }
            Ok(Err(Failure::Fatal(e))) => return Err(Failure::Fatal(e)),
            Ok(Err(Failure::Step(e))) => e,
            Err(_) => StepError::new(
                ErrorClass::Timeout,
                format!("no result within {:?}", policy.timeout),
            ),
        };
        let last = !error.class.is_retryable() || attempt >= attempts;
        log.write_failure(step, attempt, target, error.to_string(), last)
            .await?;
        if last {
            return Err(Failure::Step(error));
        }
        tokio::time::sleep(jittered(backoff(attempt, policy.base, policy.max))).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn backoff_doubles_from_the_base() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(30);
        let delays: Vec<_> = (1..=6).map(|a| backoff(a, base, max).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30]);
    }

    proptest! {
        #[test]
        fn backoff_grows_and_never_exceeds_the_cap(
            attempt in 1u32..200, base_ms in 1u64..10_000, max_ms in 1u64..1_000_000
        ) {
            let base = Duration::from_millis(base_ms);
            let max = Duration::from_millis(max_ms);
            let now = backoff(attempt, base, max);
            prop_assert!(now <= max);
            prop_assert!(backoff(attempt + 1, base, max) >= now);
        }

        #[test]
        fn jitter_stays_within_half_and_full(ms in 0u64..10_000_000) {
            let delay = Duration::from_millis(ms);
            let j = jittered(delay);
            prop_assert!(j <= delay && j >= delay / 2);
        }
    }
}
