//! Properties of the whole pure pipeline over random worlds: conditions → decide → plan.

use std::collections::{BTreeMap, BTreeSet};

use jiff::SignedDuration;
use proptest::prelude::*;

use super::super::*;
use crate::conditions::{Health, Suspension, condition, conditions, notices_for, observe};
use crate::decide::decide;
use crate::model::{Account, Cause, Condition, Notice, Signal, SignalKind};
use crate::testing::{arb_config, arb_world, t};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn plans_respect_every_rule(
        (config, placements, mut conds) in arb_world(),
        fence in prop::option::of(prop::sample::select(vec!["acme", "bolt", "self", "acme/prod", "bolt/dr"])),
    ) {
        let now = t(10_000);
        // A vendor- or account-wide fence, through the real scope expansion.
        let fenced_scope = fence.and_then(|name| config.resolve_scope(name));
        if let Some(scope) = &fenced_scope {
            let notices = [Notice { scope: scope.clone(), deadline: None, reason: "drill".into() }];
            for p in &config.providers {
                let covering = notices_for(&config, &p.name, &notices);
                let base = conds.get(&p.name).cloned().unwrap_or(Condition::Healthy);
                let mut h = Health::default();
                if let Condition::Suspended { reason, since } = base {
                    h.suspended = Some(Suspension { class: reason, since });
                }
                let c = condition(&h, &covering, now, &config.policy);
                if c != Condition::Healthy {
                    conds.insert(p.name.clone(), c);
                }
            }
        }
        let decision = decide(&config, &conds, now);
        let plan = plan(&config, &placements, &decision.departures, now);

        let leaving: BTreeSet<&str> =
            decision.departures.iter().map(|d| d.provider.as_str()).collect();
        let lost_accounts: BTreeSet<&Account> = decision
            .departures
            .iter()
            .filter_map(|d| match &d.cause {
                Cause::AccountLost { account, .. } => account.as_ref(),
                _ => None,
            })
            .collect();

        // Targets: never a provider being left, never at a lost account; distinct, from
        // the workload's own preferences.
        for m in &plan.moves {
            prop_assert!(!m.targets.is_empty());
            let w = config.workload(&m.workload).unwrap();
            let distinct: BTreeSet<&String> = m.targets.iter().collect();
            prop_assert_eq!(distinct.len(), m.targets.len());
            for target in &m.targets {
                prop_assert!(!leaving.contains(target.as_str()), "{} onto {}", m.workload, target);
                let p = config.provider(target).unwrap();
                prop_assert!(!lost_accounts.contains(&config.account_of(p)));
                if let Some(scope) = &fenced_scope {
                    let inside = config.providers_in(scope).iter().any(|q| q.name == *target);
                    prop_assert!(!inside, "{} onto {} inside fenced {:?}", m.workload, target, scope);
                }
                prop_assert!(w.placement.contains(target));
            }
            // The generation is above every one the workload ever had.
            for p in placements.iter().filter(|p| p.workload == m.workload) {
                prop_assert!(m.generation > p.generation);
            }
        }

        // Capacity: wherever the plan adds, the total stays within every bound.
        let mut total: BTreeMap<&str, Usage> = BTreeMap::new();
        for p in &placements {
            let w = config.workload(&p.workload).unwrap();
            let slot = total.entry(p.provider.as_str()).or_default();
            *slot = slot.plus(Usage::of(w));
        }
        let mut receiving = BTreeSet::new();
        for m in &plan.moves {
            let w = config.workload(&m.workload).unwrap();
            let slot = total.entry(m.targets[0].as_str()).or_default();
            *slot = slot.plus(Usage::of(w));
            receiving.insert(m.targets[0].as_str());
        }
        for name in receiving {
            let cap = config.provider(name).unwrap().capacity;
            let used = total[name];
            prop_assert!(cap.replicas.is_none_or(|c| used.replicas <= c), "{} over replicas", name);
            prop_assert!(cap.cpu_millis.is_none_or(|c| used.cpu_millis <= c), "{} over cpu", name);
        }

        // Dependencies that move go in a strictly earlier wave.
        let wave: BTreeMap<&str, u32> =
            plan.moves.iter().map(|m| (m.workload.as_str(), m.wave)).collect();
        for m in &plan.moves {
            for dep in &config.workload(&m.workload).unwrap().depends_on {
                if let Some(dw) = wave.get(dep.as_str()) {
                    prop_assert!(*dw < m.wave, "{} (wave {}) before {} (wave {})", dep, dw, m.workload, m.wave);
                }
            }
        }

        // Sorted by wave, deadline, name.
        let keys: Vec<_> = plan.moves.iter().map(|m| (m.wave, m.deadline, &m.workload)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        prop_assert_eq!(keys, sorted);

        // Every affected workload appears exactly once; nothing else appears.
        let placed_on: BTreeMap<&str, &str> = config
            .workloads
            .iter()
            .filter_map(|w| {
                placements
                    .iter()
                    .filter(|p| p.workload == w.name)
                    .max_by_key(|p| (p.generation, p.since))
                    .map(|p| (w.name.as_str(), p.provider.as_str()))
            })
            .collect();
        let affected: BTreeSet<&str> = config
            .workloads
            .iter()
            .map(|w| w.name.as_str())
            .filter(|w| placed_on.get(w).is_none_or(|p| leaving.contains(p)))
            .collect();
        let mut seen: Vec<&str> = plan.moves.iter().map(|m| m.workload.as_str()).collect();
        seen.extend(plan.stranded.iter().map(|s| s.workload.as_str()));
        seen.extend(plan.held.iter().map(|h| h.workload.as_str()));
        let unique: BTreeSet<&str> = seen.iter().copied().collect();
        prop_assert_eq!(unique.len(), seen.len(), "a workload listed twice");
        prop_assert_eq!(unique, affected);

        // Only a flap holds a workload.
        for h in &plan.held {
            let d = decision.departures.iter().find(|d| d.provider == h.from).unwrap();
            prop_assert!(d.cause.is_transient());
        }
    }

    /// Providers flap between timeouts and clean probes for hours; the whole loop runs
    /// at every step and applies its moves. No workload moves twice within the quiet
    /// period, and a move happens only once the grace period has been outlasted.
    #[test]
    fn a_flapping_provider_moves_nothing_twice_in_the_quiet_period(
        config in arb_config(),
        steps in prop::collection::vec((1i64..400, any::<u8>()), 1..60),
    ) {
        let quiet = SignedDuration::try_from(config.policy.quiet_period).unwrap();
        let mut healths: BTreeMap<String, Health> = BTreeMap::new();
        let mut placements: Vec<Placement> = Vec::new();
        let mut now = t(0);
        for (gap, down) in steps {
            now = now.checked_add(SignedDuration::from_secs(gap)).unwrap();
            for (i, p) in config.providers.iter().enumerate() {
                let kind = if down & (1 << i) != 0 {
                    SignalKind::ProbeFailed { class: lifeboat_provider::ErrorClass::Timeout, code: None }
                } else {
                    SignalKind::ProbeOk { degraded: None }
                };
                let s = Signal { provider: p.name.clone(), at: now, kind };
                let h = healths.entry(p.name.clone()).or_default();
                *h = observe(h, &s, &config.policy);
            }
            let conds = conditions(&config, &healths, &[], now);
            let decision = decide(&config, &conds, now);
            for d in &decision.departures {
                prop_assert!(d.cause.is_transient());
            }
            let plan = plan(&config, &placements, &decision.departures, now);
            for m in &plan.moves {
                let current = placements.iter().find(|p| p.workload == m.workload);
                if let (Some(from), Some(current)) = (&m.from, current) {
                    prop_assert_eq!(from, &current.provider);
                    prop_assert!(
                        now.duration_since(current.since) >= quiet,
                        "{} moved at {} and again at {}", m.workload, current.since, now
                    );
                }
                placements.retain(|p| p.workload != m.workload);
                placements.push(Placement {
                    workload: m.workload.clone(),
                    provider: m.targets[0].clone(),
                    generation: m.generation,
                    deployment: None,
                    since: now,
                });
            }
        }
    }
}
