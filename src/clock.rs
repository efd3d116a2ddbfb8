//! The time the controller decides by. The daemon reads the system clock; a test (or a
//! what-if replay) hands the loop a [`Clock::manual`] one and moves it by hand, so a
//! day-long notice or an hour's grace period is crossed in a moment of real time
//! while everything else (probes, steps, the journal) runs for real.
//!
//! Only the wall-clock instants the decisions compare (conditions, grace periods,
//! quiet periods, deadlines, replacement windows, timestamps in the store) come from
//! here. How long a call may take (probe and step timeouts, the pause between rounds)
//! stays with tokio's timers: it bounds real work, not policy.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// A source of "now". Cheap to clone; clones of a manual clock share its time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<Timestamp>>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that shows `start` until [`Clock::advance`] or [`Clock::set`] moves it.
    pub fn manual(start: Timestamp) -> Clock {
        Clock {
            manual: Some(Arc::new(Mutex::new(start))),
        }
    }

    /// The time now.
    pub fn now(&self) -> Timestamp {
        match &self.manual {
            None => Timestamp::now(),
            Some(at) => *at.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }

    /// Moves a manual clock `by` forward (saturating); the system clock cannot be moved
    /// and is left alone.
    pub fn advance(&self, by: Duration) {
        if let Some(at) = &self.manual {
            let mut at = at.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
            *at = at.saturating_add(by).unwrap_or(Timestamp::MAX);
        }
    }

    /// Sets a manual clock to `to` (even backwards, as a system clock may jump); the
    /// system clock is left alone.
    pub fn set(&self, to: Timestamp) {
        if let Some(at) = &self.manual {
            *at.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = to;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_by_hand_and_its_clones_follow() {
        let start = Timestamp::from_second(1_800_000_000).unwrap();
        let clock = Clock::manual(start);
        let seen_by_the_loop = clock.clone();
        assert_eq!(seen_by_the_loop.now(), start);
        clock.advance(Duration::from_secs(86_400));
        assert_eq!(
            seen_by_the_loop.now(),
            start + SignedDuration::from_hours(24)
        );
        clock.advance(Duration::MAX);
        assert_eq!(seen_by_the_loop.now(), Timestamp::MAX);
        clock.set(start);
        assert_eq!(seen_by_the_loop.now(), start);
    }

    #[test]
    fn the_system_clock_cannot_be_moved() {
        let clock = Clock::system();
        let before = Timestamp::now();
        clock.advance(Duration::from_secs(86_400));
        clock.set(Timestamp::MIN);
        let now = clock.now();
        assert!(now >= before && now < before + SignedDuration::from_hours(1));
    }
}
