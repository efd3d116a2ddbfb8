//! Bounds on how much runs at once, and the wave gate that orders cutovers.
//!
//! A move holds one global permit and one permit of its current target provider while
//! it works. Before its cutover it waits at the [`WaveGate`] until every move of an
//! earlier wave is past its own cutover, and it gives its permits back while it waits:
//! otherwise moves of a later wave could hold every permit while the earlier wave
//! needs one, and nothing would progress.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// The semaphores of one executor, shared by every evacuation it runs.
#[derive(Debug)]
pub(crate) struct Limits {
    global: Arc<Semaphore>,
    per_provider: BTreeMap<String, Arc<Semaphore>>,
}

impl Limits {
    /// `global` moves at once in all, `per_provider` at once on one target provider
    /// (zero is read as one, so a bad setting cannot stall every move).
    pub fn new<'a>(
        providers: impl Iterator<Item = &'a String>,
        global: usize,
        per_provider: usize,
    ) -> Limits {
        Limits {
            global: Arc::new(Semaphore::new(global.max(1))),
            per_provider: providers
                .map(|name| (name.clone(), Arc::new(Semaphore::new(per_provider.max(1)))))
                .collect(),
        }
    }

    /// Waits for a global permit.
    pub async fn global(&self) -> OwnedSemaphorePermit {
        // The semaphores are never closed, so acquiring cannot fail.
        self.global
            .clone()
            .acquire_owned()
            .await
            .expect("executor semaphores are never closed")
    }

    /// Waits for a permit of `provider`; `None` for a provider the executor does not know
    /// (the move fails on that target before it would need one).
    pub async fn provider(&self, provider: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = self.per_provider.get(provider)?.clone();
        Some(
            semaphore
                .acquire_owned()
                .await
                .expect("executor semaphores are never closed"),
        )
    }
}

/// The permits a move holds right now.
#[derive(Debug, Default)]
pub(crate) struct Permits {
    pub global: Option<OwnedSemaphorePermit>,
    pub provider: Option<OwnedSemaphorePermit>,
}

/// Counts, per wave, the moves not yet past their cutover (or finished without one).
#[derive(Debug)]
pub(crate) struct WaveGate {
    remaining: watch::Sender<BTreeMap<u32, usize>>,
}

impl WaveGate {
    /// A gate for moves in the given waves (one item per move).
    pub fn new(waves: impl Iterator<Item = u32>) -> Arc<WaveGate> {
        let mut remaining = BTreeMap::new();
        for wave in waves {
            *remaining.entry(wave).or_insert(0) += 1;
        }
        Arc::new(WaveGate {
            remaining: watch::Sender::new(remaining),
        })
    }

    /// Returns once every move of every wave before `wave` has passed.
    pub async fn wait_for_earlier(&self, wave: u32) {
        let mut rx = self.remaining.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx
            .wait_for(|m| m.range(..wave).all(|(_, left)| *left == 0))
            .await;
    }

    fn pass(&self, wave: u32) {
        // Waiters are woken only when a wave is through: every move of the later waves
        // waits here, and waking all of them at each pass made a large evacuation
        // quadratic (2,000 passes × 8,000 waiters at 10,000 workloads).
        self.remaining.send_if_modified(|m| match m.get_mut(&wave) {
            Some(left) if *left > 0 => {
                *left -= 1;
                *left == 0
            }
            _ => false,
        });
    }
}

/// One move's place at the gate. Passing is explicit after a cutover; dropping the
/// ticket passes too, so a move that ends any other way (stranded, failed, cancelled)
/// never holds back the waves after it.
#[derive(Debug)]
pub(crate) struct Ticket {
    gate: Arc<WaveGate>,
    wave: u32,
    passed: bool,
}

impl Ticket {
    /// A ticket for a move of `wave`.
    pub fn new(gate: &Arc<WaveGate>, wave: u32) -> Ticket {
        Ticket {
            gate: gate.clone(),
            wave,
            passed: false,
        }
    }

    /// The move is past its cutover.
    pub fn pass(&mut self) {
        if !self.passed {
            self.passed = true;
            self.gate.pass(self.wave);
        }
    }

    /// Waits for earlier waves.
    pub async fn wait(&self) {
        self.gate.wait_for_earlier(self.wave).await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pass();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_later_wave_waits_until_every_earlier_move_passed() {
        let gate = WaveGate::new([0, 0, 1].into_iter());
        let mut a = Ticket::new(&gate, 0);
        let b = Ticket::new(&gate, 0);
        let c = Ticket::new(&gate, 1);
        c.wait_for_now_or_fail(false).await;
        a.pass();
        a.pass();
        c.wait_for_now_or_fail(false).await;
        drop(b);
        c.wait_for_now_or_fail(true).await;
        // The first wave never waits.
        Ticket::new(&gate, 0).wait_for_now_or_fail(true).await;
    }

    impl Ticket {
        async fn wait_for_now_or_fail(&self, expect_open: bool) {
            let open = tokio::time::timeout(std::time::Duration::from_secs(1), self.wait())
                .await
                .is_ok();
            assert_eq!(open, expect_open);
        }
    }

    #[tokio::test]
    async fn zero_limits_still_admit_one() {
        let names = ["p".to_owned()];
        let limits = Limits::new(names.iter(), 0, 0);
        let _g = limits.global().await;
        let _p = limits.provider("p").await.unwrap();
        assert!(limits.provider("unknown").await.is_none());
    }
}
