//! What an operator controls while the daemon runs: the kill switch and approvals.
//!
//! [`Approvals`] is the pure part, the rule of `policy.mode`: `auto` acts on a plan,
//! `observe` only reports it, `confirm` turns it into a pending evacuation that acts once
//! an operator approves it. An approval is for the plan the operator saw: when the plan
//! changes (a condition changed, a target filled up) the pending evacuation is replaced
//! by a new one with a new id, and the old approval means nothing. A rejected plan is not
//! offered again until it changes.
//!
//! [`Control`] is the shared handle the loop, the executor and the API hold: the kill
//! switch (stored, so a restart stays paused) and the pending evacuation, plus a wake-up
//! so an operator's action is taken now rather than at the next probe interval.

use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::config::Mode;
use crate::deadline::Schedule;
use crate::model::{Move, Plan};
use crate::store::{Pause, Store};

/// A plan waiting for an operator (`policy.mode: confirm`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Pending {
    /// Its id (`pe-...`), what `lifeboat evacuations approve` takes.
    pub id: String,
    /// What would run.
    pub plan: Plan,
    /// When it was first planned.
    pub since: Timestamp,
    /// Approved, to start on the loop's next turn.
    pub approved: bool,
}

/// What the loop does with this round's plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing to move.
    Idle,
    /// Execute it.
    Act,
    /// `observe`: report it only.
    Observe,
    /// `confirm`: it waits for an approval under this id; `new` the first time it is
    /// offered, so it is announced once.
    Wait {
        /// The pending evacuation's id.
        id: String,
        /// Whether this round made it.
        new: bool,
    },
    /// An operator rejected this very plan.
    Rejected,
}

/// Why an approval or rejection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    /// Nothing waits under that id (it was replaced by a newer plan, or never existed).
    #[error("no evacuation {id} is waiting for approval{}", current.as_ref().map(|c| format!(" (the one waiting is {c})")).unwrap_or_default())]
    NotPending {
        /// The id asked for.
        id: String,
        /// The id that does wait, if any.
        current: Option<String>,
    },
}

/// The pending evacuation and the last rejected plan: the `confirm` rule, pure.
#[derive(Debug, Default, Clone)]
pub struct Approvals {
    pending: Option<Pending>,
    rejected: Option<Vec<Move>>,
}

impl Approvals {
    /// Offers this round's plan under `mode`. In `confirm` mode an approved pending
    /// evacuation whose plan is still this one is taken (and so acted on once).
    pub fn offer(&mut self, mode: Mode, plan: &Plan, now: Timestamp) -> Verdict {
        if plan.moves.is_empty() {
            self.pending = None;
            self.rejected = None;
            return Verdict::Idle;
        }
        match mode {
            Mode::Auto => Verdict::Act,
            Mode::Observe => Verdict::Observe,
            Mode::Confirm => {
                if self.rejected.as_ref() == Some(&plan.moves) {
                    return Verdict::Rejected;
                }
                self.rejected = None;
                match &self.pending {
                    Some(p) if p.plan.moves == plan.moves && p.approved => {
                        self.pending = None;
                        Verdict::Act
                    }
                    Some(p) if p.plan.moves == plan.moves => Verdict::Wait {
                        id: p.id.clone(),
                        new: false,
                    },
                    _ => {
                        let id = format!(
                            "pe-{}-{:04x}",
                            now.strftime("%Y%m%d-%H%M%S"),
                            rand::random::<u16>()
                        );
                        self.pending = Some(Pending {
                            id: id.clone(),
                            plan: plan.clone(),
                            since: now,
                            approved: false,
                        });
                        Verdict::Wait { id, new: true }
                    }
                }
            }
        }
    }

    /// Approves the pending evacuation `id`.
    pub fn approve(&mut self, id: &str) -> Result<Pending, ApprovalError> {
        let pending = self.find(id)?;
        pending.approved = true;
        Ok(pending.clone())
    }

    /// Drops the pending evacuation `id`; its plan is not offered again until it changes.
    pub fn reject(&mut self, id: &str) -> Result<Pending, ApprovalError> {
        self.find(id)?;
        let pending = self.pending.take().expect("found above");
        self.rejected = Some(pending.plan.moves.clone());
        Ok(pending)
    }

    /// The pending evacuation, if one waits.
    pub fn pending(&self) -> Option<&Pending> {
        self.pending.as_ref()
    }

    fn find(&mut self, id: &str) -> Result<&mut Pending, ApprovalError> {
        let current = self.pending.as_ref().map(|p| p.id.clone());
        match &mut self.pending {
            Some(p) if p.id == id => Ok(p),
            _ => Err(ApprovalError::NotPending {
                id: id.to_owned(),
                current,
            }),
        }
    }
}

/// The operator's handle on a running daemon. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    paused: watch::Sender<Option<Pause>>,
    approvals: Mutex<Approvals>,
    schedules: Mutex<Vec<Schedule>>,
    wake: Notify,
}

impl Control {
    /// A handle over `store`, starting paused when the stored kill switch is thrown.
    pub fn new(store: Arc<Store>) -> anyhow::Result<Control> {
        let paused = store.paused()?;
        Ok(Control {
            inner: Arc::new(Inner {
                store,
                paused: watch::Sender::new(paused),
                approvals: Mutex::new(Approvals::default()),
                schedules: Mutex::default(),
                wake: Notify::new(),
            }),
        })
    }

    /// Throws the kill switch: steps not started yet wait; steps running finish or time
    /// out. Returns the pause in force (the first, when already paused).
    pub fn pause(&self, reason: &str, now: Timestamp) -> anyhow::Result<Pause> {
        let pause = self.inner.store.pause(&Pause {
            reason: reason.to_owned(),
            since: now,
        })?;
        self.inner.paused.send_replace(Some(pause.clone()));
        self.wake();
        Ok(pause)
    }

    /// Releases the kill switch; `true` when it was thrown.
    pub fn resume(&self) -> anyhow::Result<bool> {
        let was = self.inner.store.resume()?;
        self.inner.paused.send_replace(None);
        self.wake();
        Ok(was)
    }

    /// The kill switch, when it is thrown.
    pub fn paused(&self) -> Option<Pause> {
        self.inner.paused.borrow().clone()
    }

    /// What the executor waits on before each step.
    pub fn switch(&self) -> PauseSwitch {
        PauseSwitch(Some(self.inner.paused.subscribe()))
    }

    /// The `confirm` rule's state.
    pub fn approvals(&self) -> MutexGuard<'_, Approvals> {
        self.inner
            .approvals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Approves `id` and wakes the loop to start it.
    pub fn approve(&self, id: &str) -> Result<Pending, ApprovalError> {
        let approved = self.approvals().approve(id)?;
        self.wake();
        Ok(approved)
    }

    /// Rejects `id`.
    pub fn reject(&self, id: &str) -> Result<Pending, ApprovalError> {
        self.approvals().reject(id)
    }

    /// Records when the evacuations with a deadline start, for the API.
    pub fn set_schedules(&self, schedules: Vec<Schedule>) {
        *self
            .inner
            .schedules
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = schedules;
    }

    /// When the evacuations with a deadline start (see [`crate::deadline`]).
    pub fn schedules(&self) -> Vec<Schedule> {
        self.inner
            .schedules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes the loop start its next round now (a notice was raised, a plan approved).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Resolves when [`Control::wake`] was called (at once if it was called since the
    /// last wait).
    pub async fn woken(&self) {
        self.inner.wake.notified().await
    }
}

/// The executor's view of the kill switch. The default is never paused (drills, tests).
#[derive(Debug, Clone, Default)]
pub struct PauseSwitch(Option<watch::Receiver<Option<Pause>>>);

impl PauseSwitch {
    /// Whether the switch is thrown now.
    pub fn is_paused(&self) -> bool {
        self.0.as_ref().is_some_and(|r| r.borrow().is_some())
    }

    /// Returns at once when not paused, else when the switch is released.
    pub async fn wait_resumed(&self) {
        if let Some(receiver) = &self.0 {
            let mut receiver = receiver.clone();
            // A dropped sender means the daemon is going away: nothing to wait for.
            let _ = receiver.wait_for(Option::is_none).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Step;
    use lifeboat_provider::Generation;

    fn plan(targets: &[&str]) -> Plan {
        Plan {
            moves: vec![Move {
                workload: "api".into(),
                from: Some("acme-eu".into()),
                targets: targets.iter().map(|t| t.to_string()).collect(),
                generation: Generation(2),
                wave: 0,
                deadline: None,
                priority: 0,
                steps: Step::ALL.to_vec(),
            }],
            stranded: vec![],
            held: vec![],
        }
    }

    fn now() -> Timestamp {
        "2026-12-02T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn auto_acts_observe_reports_and_nothing_to_move_is_idle() {
        let mut a = Approvals::default();
        assert_eq!(a.offer(Mode::Auto, &plan(&["metal"]), now()), Verdict::Act);
        assert_eq!(
            a.offer(Mode::Observe, &plan(&["metal"]), now()),
            Verdict::Observe
        );
        assert_eq!(
            a.offer(Mode::Confirm, &Plan::default(), now()),
            Verdict::Idle
        );
        assert!(a.pending().is_none());
    }

    #[test]
    fn confirm_waits_under_one_id_until_approved_then_acts_once() {
        let mut a = Approvals::default();
        let Verdict::Wait { id, new: true } = a.offer(Mode::Confirm, &plan(&["metal"]), now())
        else {
            panic!("a new pending evacuation");
        };
        assert_eq!(
            a.offer(Mode::Confirm, &plan(&["metal"]), now()),
            Verdict::Wait {
                id: id.clone(),
                new: false
            }
        );
        assert!(a.approve(&id).unwrap().approved);
        assert_eq!(
            a.offer(Mode::Confirm, &plan(&["metal"]), now()),
            Verdict::Act
        );
        assert!(a.pending().is_none(), "an approval is used once");
    }

    #[test]
    fn a_changed_plan_voids_the_approval_of_the_old_one() {
        let mut a = Approvals::default();
        let Verdict::Wait { id, .. } = a.offer(Mode::Confirm, &plan(&["metal"]), now()) else {
            panic!()
        };
        a.approve(&id).unwrap();
        let Verdict::Wait { id: newer, new } = a.offer(Mode::Confirm, &plan(&["cloud"]), now())
        else {
            panic!("the changed plan waits again");
        };
        assert!(new);
        assert_ne!(newer, id);
        assert_eq!(
            a.approve(&id),
            Err(ApprovalError::NotPending {
                id: id.clone(),
                current: Some(newer)
            })
        );
    }

    #[test]
    fn a_rejected_plan_is_not_offered_again_until_it_changes() {
        let mut a = Approvals::default();
        let Verdict::Wait { id, .. } = a.offer(Mode::Confirm, &plan(&["metal"]), now()) else {
            panic!()
        };
        a.reject(&id).unwrap();
        assert_eq!(
            a.offer(Mode::Confirm, &plan(&["metal"]), now()),
            Verdict::Rejected
        );
        assert!(matches!(
            a.offer(Mode::Confirm, &plan(&["cloud"]), now()),
            Verdict::Wait { new: true, .. }
        ));
        assert!(a.reject("pe-unknown").is_err());
    }

    #[tokio::test]
    async fn the_switch_holds_steps_until_resumed_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let control = Control::new(store.clone()).unwrap();
        let switch = control.switch();
        assert!(!switch.is_paused());
        switch.wait_resumed().await;
        control.pause("maintenance", now()).unwrap();
        assert!(switch.is_paused());
        let waiting = tokio::spawn({
            let switch = switch.clone();
            async move { switch.wait_resumed().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        // A second handle on the same store (the restarted daemon) starts paused.
        assert_eq!(
            Control::new(store).unwrap().paused().map(|p| p.reason),
            Some("maintenance".into())
        );
        assert!(control.resume().unwrap());
        waiting.await.unwrap();
    }
}
