//! The drill's writer: for every dataset, numbered rows committed at a steady pace at
//! whichever member the placement says is the primary, with the time each commit was
//! acknowledged. After the move, the rows found at the new primary say what the move
//! lost — the RPO measured, not claimed.

use std::sync::Arc;
use std::time::Duration;

use lifeboat_dataset::{Endpoint, Replication};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// How often the writer commits a row: fast enough that an RPO of tens of
/// milliseconds shows, slow enough to be no load.
pub const PACE: Duration = Duration::from_millis(10);

/// What one writer saw.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// The acknowledgement time of row `n` at index `n - 1`: rows are committed in
    /// order, each retried until acknowledged, so rows `1..=len` were all acknowledged.
    pub acked: Vec<Instant>,
    /// Commits that failed (and were tried again), e.g. while the primary moved.
    pub refused: u64,
}

impl Written {
    /// The last acknowledged row (0 before any).
    pub fn last(&self) -> u64 {
        self.acked.len() as u64
    }

    /// How much a member lost of what was acknowledged, when it has `present` of the
    /// acknowledged rows and rows `1..=prefix` without a gap: the rows, and the time
    /// between the last row kept before the gap and the last row lost (zero when it
    /// lost nothing). Rows written after the gap (at the new primary) are kept ones.
    pub fn lost(&self, prefix: u64, present: u64) -> (u64, Duration) {
        let lost = self.last().saturating_sub(present);
        if lost == 0 {
            return (0, Duration::ZERO);
        }
        let at = |row: u64| self.acked[usize::try_from(row.max(1) - 1).unwrap_or(0)];
        let last_lost = prefix.saturating_add(lost).min(self.last());
        // A member with none of the rows lost everything since the first.
        let kept = at(prefix.max(1));
        (lost, at(last_lost).saturating_duration_since(kept))
    }
}

/// Starts a writer for `workload` through `method`; it stops when `stop` is cancelled
/// and returns what it wrote.
pub fn spawn(
    workload: String,
    method: Arc<dyn Replication>,
    store: Arc<Store>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Written> {
    tokio::spawn(async move {
        let mut written = Written::default();
        let mut tick = tokio::time::interval(PACE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => return written,
            }
            let Some(primary) = primary_of(&store, &workload) else {
                continue;
            };
            let n = written.last() + 1;
            let write = tokio::time::timeout(Duration::from_secs(2), method.write_row(&primary, n));
            tokio::select! {
                outcome = write => match outcome {
                    Ok(Ok(())) => written.acked.push(Instant::now()),
                    _ => written.refused += 1,
                },
                // A commit cut short is not acknowledged: not counted, so not "lost".
                () = stop.cancelled() => return written,
            }
        }
    })
}

/// Where the placement says `workload`'s primary listens now.
pub fn primary_of(store: &Store, workload: &str) -> Option<Endpoint> {
    store
        .placement(workload)
        .ok()
        .flatten()
        .and_then(|p| p.deployment)
        .and_then(|d| d.endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_member_lost_is_the_acknowledged_rows_it_lacks_and_their_span() {
        let t0 = Instant::now();
        let written = Written {
            acked: (0..10)
                .map(|i| t0 + Duration::from_millis(i * 10))
                .collect(),
            refused: 0,
        };
        assert_eq!(written.lost(10, 10), (0, Duration::ZERO));
        assert_eq!(written.lost(7, 7), (3, Duration::from_millis(30)));
        // Rows 5 and 6 lost; 7 to 10 written at the new primary after the move.
        assert_eq!(written.lost(4, 8), (2, Duration::from_millis(20)));
        assert_eq!(written.lost(0, 0), (10, Duration::from_millis(90)));
        assert_eq!(Written::default().lost(0, 0), (0, Duration::ZERO));
    }
}
