use std::collections::BTreeMap;

use lifeboat_provider::{Capacity, ErrorClass};

use super::*;
use crate::testing::{Builder, t};

/// acme/prod holds a1 and a2, acme/dr holds a3, bolt (no account) holds b1.
fn config() -> Config {
    Builder::new()
        .provider("a1", "acme", Some("prod"), Capacity::default())
        .provider("a2", "acme", Some("prod"), Capacity::default())
        .provider("a3", "acme", Some("dr"), Capacity::default())
        .provider("b1", "bolt", None, Capacity::default())
        .build()
}

fn conds(pairs: &[(&str, Condition)]) -> BTreeMap<String, Condition> {
    pairs
        .iter()
        .map(|(n, c)| ((*n).to_owned(), c.clone()))
        .collect()
}

fn suspended() -> Condition {
    Condition::Suspended {
        reason: ErrorClass::AccountSuspended,
        since: t(0),
    }
}

fn left(d: &Decision) -> Vec<&str> {
    d.departures.iter().map(|d| d.provider.as_str()).collect()
}

#[test]
fn suspension_leaves_the_whole_account_now() {
    let d = decide(&config(), &conds(&[("a2", suspended())]), t(5));
    assert_eq!(left(&d), ["a1", "a2"]);
    for dep in &d.departures {
        assert_eq!(dep.deadline, None);
        assert!(!dep.cause.is_transient());
        assert!(
            matches!(&dep.cause, Cause::AccountLost { account, seen_on, .. }
            if account.as_ref().is_some_and(|a| *a == "acme/prod") && seen_on == "a2")
        );
        assert!(dep.reason.contains("acme/prod"), "{}", dep.reason);
    }
}

#[test]
fn fence_and_unreachable_leave_only_that_provider() {
    let c = config();
    let d = decide(
        &c,
        &conds(&[("a1", Condition::Fenced { by: "drill".into() })]),
        t(5),
    );
    assert_eq!(left(&d), ["a1"]);
    assert_eq!(d.departures[0].deadline, None);

    let d = decide(
        &c,
        &conds(&[("a3", Condition::Unreachable { since: t(1) })]),
        t(5),
    );
    assert_eq!(left(&d), ["a3"]);
    assert!(d.departures[0].cause.is_transient());
    assert!(d.held_back.is_empty());
}

#[test]
fn notice_deadline_keeps_the_margin() {
    let c = config();
    let deadline = t(100_000);
    let d = decide(&c, &conds(&[("b1", Condition::Noticed { deadline })]), t(0));
    assert_eq!(left(&d), ["b1"]);
    // Default margin: 30 min.
    assert_eq!(d.departures[0].deadline, Some(t(100_000 - 1800)));
}

#[test]
fn healthy_and_degraded_stay_and_degraded_alerts() {
    let d = decide(
        &config(),
        &conds(&[
            ("a1", Condition::Healthy),
            (
                "a2",
                Condition::Degraded {
                    reason: "permission denied".into(),
                },
            ),
        ]),
        t(0),
    );
    assert!(d.departures.is_empty());
    assert_eq!(d.alerts.len(), 1);
    assert!(d.alerts[0].contains("a2"));
}

#[test]
fn everything_unreachable_is_held_back() {
    let c = config();
    let all: Vec<(&str, Condition)> = ["a1", "a2", "a3", "b1"]
        .into_iter()
        .map(|n| (n, Condition::Unreachable { since: t(0) }))
        .collect();
    let d = decide(&c, &conds(&all), t(500));
    assert!(d.departures.is_empty());
    assert_eq!(d.held_back, ["a1", "a2", "a3", "b1"]);
    assert!(d.alerts.iter().any(|a| a.contains("our own network")));

    // Providers cross the grace period one after the other: one still within it
    // (Failing) does not count as answering.
    let mut staggered = all.clone();
    staggered[2].1 = Condition::Failing { since: t(450) };
    let d = decide(&c, &conds(&staggered), t(500));
    assert!(d.departures.is_empty());
    assert_eq!(d.held_back, ["a1", "a2", "b1"]);

    // One provider still answering means the network works.
    let mut some = all.clone();
    some[3].1 = Condition::Healthy;
    let d = decide(&c, &conds(&some), t(500));
    assert_eq!(left(&d), ["a1", "a2", "a3"]);
    assert!(d.held_back.is_empty());
}

#[test]
fn a_name_the_config_does_not_know_is_left_alone_for_itself() {
    let d = decide(&config(), &conds(&[("gone", suspended())]), t(0));
    assert_eq!(left(&d), ["gone"]);
}

/// Every combination of conditions over a1, a2 (one account) and b1 (another vendor),
/// against the rules written out plainly.
#[test]
fn exhaustive_table() {
    let c = Builder::new()
        .provider("a1", "acme", Some("prod"), Capacity::default())
        .provider("a2", "acme", Some("prod"), Capacity::default())
        .provider("b1", "bolt", None, Capacity::default())
        .build();
    let now = t(10_000);
    let options = [
        Condition::Healthy,
        Condition::Degraded { reason: "x".into() },
        Condition::Unreachable { since: t(1) },
        suspended(),
        Condition::Noticed {
            deadline: t(50_000),
        },
        Condition::Fenced { by: "op".into() },
        Condition::Failing { since: t(9_990) },
    ];
    let names = ["a1", "a2", "b1"];
    let n = options.len();
    for i in 0..n.pow(3) {
        let pick = [i % n, (i / n) % n, (i / (n * n)) % n].map(|k| options[k].clone());
        let map: BTreeMap<String, Condition> = names
            .iter()
            .zip(pick.iter())
            .map(|(n, c)| ((*n).to_owned(), c.clone()))
            .collect();
        let d = decide(&c, &map, now);
        let silent = pick
            .iter()
            .all(|c| matches!(c, Condition::Unreachable { .. } | Condition::Failing { .. }));
        let acme_lost = pick[..2]
            .iter()
            .any(|c| matches!(c, Condition::Suspended { .. }));
        for (k, name) in names.iter().enumerate() {
            let account_lost = k < 2 && acme_lost;
            let own = &pick[k];
            // (leaves?, deadline, transient)
            let expected = if account_lost || matches!(own, Condition::Suspended { .. }) {
                Some((None, false))
            } else {
                match own {
                    Condition::Fenced { .. } => Some((None, false)),
                    Condition::Noticed { .. } => Some((Some(t(50_000 - 1800)), false)),
                    Condition::Unreachable { .. } if !silent => Some((None, true)),
                    _ => None,
                }
            };
            let got = d
                .departures
                .iter()
                .find(|dep| dep.provider == *name)
                .map(|dep| (dep.deadline, dep.cause.is_transient()));
            assert_eq!(got, expected, "{name} in {pick:?}");
            let held = d.held_back.iter().any(|h| h == name);
            let own_unreachable = matches!(own, Condition::Unreachable { .. });
            assert_eq!(held, silent && own_unreachable, "{name} in {pick:?}");
        }
        assert_eq!(
            d.departures.len(),
            d.departures
                .iter()
                .map(|d| &d.provider)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        );
    }
}
