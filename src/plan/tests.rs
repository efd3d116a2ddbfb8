use std::collections::BTreeMap;

use lifeboat_provider::{Capacity, ErrorClass};

use super::*;
use crate::decide::decide;
use crate::model::{Cause, Condition};
use crate::testing::{Builder, placed, replicas, t};

mod props;

fn unreachable(provider: &str) -> Departure {
    Departure {
        provider: provider.into(),
        reason: "unreachable since earlier".into(),
        cause: Cause::Unreachable { since: t(0) },
        deadline: None,
    }
}

fn fenced(provider: &str) -> Departure {
    Departure {
        provider: provider.into(),
        reason: "fenced by drill".into(),
        cause: Cause::Fenced { by: "drill".into() },
        deadline: None,
    }
}

fn noticed(provider: &str, by: i64) -> Departure {
    Departure {
        provider: provider.into(),
        reason: "notice".into(),
        cause: Cause::Noticed {
            deadline: t(by + 1800),
        },
        deadline: Some(t(by)),
    }
}

fn moved<'a>(p: &'a Plan, workload: &str) -> &'a Move {
    p.moves
        .iter()
        .find(|m| m.workload == workload)
        .unwrap_or_else(|| panic!("{workload} not moved in {p:#?}"))
}

/// acme-eu and acme-us on account acme/prod, self-1 (2 replicas) and self-2 at vendor
/// `self` with no account.
fn estate() -> Builder {
    Builder::new()
        .provider("acme-eu", "acme", Some("prod"), Capacity::default())
        .provider("acme-us", "acme", Some("prod"), Capacity::default())
        .provider("self-1", "self", None, replicas(2))
        .provider("self-2", "self", None, Capacity::default())
}

#[test]
fn first_placement_takes_the_first_preference() {
    let c = estate().workload("web", &["acme-eu", "self-1"]).build();
    let p = plan(&c, &[], &[], t(0));
    let m = moved(&p, "web");
    assert_eq!(m.from, None);
    assert_eq!(m.targets, ["acme-eu", "self-1"]);
    assert_eq!(m.generation, Generation(1));
    assert_eq!(m.steps, Step::ALL);
    assert!(p.stranded.is_empty() && p.held.is_empty());
}

#[test]
fn a_move_skips_every_provider_of_a_lost_account_and_bumps_the_generation() {
    let c = estate()
        .workload("db", &["acme-eu", "acme-us", "self-2", "self-1"])
        .build();
    let placements = [
        placed("db", "acme-eu", 4, t(0)),
        placed("db", "self-9", 2, t(0)),
    ];
    // acme-us looks healthy, but its account is lost.
    let conds = BTreeMap::from([(
        "acme-eu".to_owned(),
        Condition::Suspended {
            reason: ErrorClass::AccountSuspended,
            since: t(5),
        },
    )]);
    let d = decide(&c, &conds, t(10));
    let p = plan(&c, &placements, &d.departures, t(10_000));
    let m = moved(&p, "db");
    assert_eq!(m.from.as_deref(), Some("acme-eu"));
    assert_eq!(m.targets, ["self-2", "self-1"]);
    assert_eq!(m.generation, Generation(5));
}

#[test]
fn failback_is_never_automatic() {
    let c = estate().workload("web", &["acme-eu", "self-1"]).build();
    let p = plan(&c, &[placed("web", "self-1", 2, t(0))], &[], t(100_000));
    assert_eq!(p, Plan::default());
}

#[test]
fn capacity_counts_what_is_placed_and_what_the_plan_adds() {
    let c = estate()
        .workload_with("a", &["acme-eu", "self-1", "self-2"], 1, 0, &[])
        .workload_with("b", &["acme-eu", "self-1", "self-2"], 1, 0, &[])
        .workload_with("c", &["self-1"], 1, 0, &[])
        .build();
    let placements = [
        placed("a", "acme-eu", 1, t(0)),
        placed("b", "acme-eu", 1, t(0)),
        placed("c", "self-1", 1, t(0)),
    ];
    let p = plan(&c, &placements, &[fenced("acme-eu")], t(10_000));
    // self-1 has room for one more: `a` takes it (name order), `b` falls to self-2.
    assert_eq!(moved(&p, "a").targets, ["self-1", "self-2"]);
    assert_eq!(moved(&p, "b").targets, ["self-2"]);
}

#[test]
fn cpu_and_memory_bound_too() {
    let cap = Capacity {
        replicas: None,
        cpu_millis: Some(1000),
        memory_mib: None,
    };
    let c = Builder::new()
        .provider("old", "acme", None, Capacity::default())
        .provider("small", "bolt", None, cap)
        .workload_with("big", &["old", "small"], 3, 400, &[])
        .build();
    let p = plan(
        &c,
        &[placed("big", "old", 1, t(0))],
        &[fenced("old")],
        t(10_000),
    );
    assert_eq!(
        p.stranded[0].reason,
        "old: being left (fenced by drill); small: full (0/1000 cpu_millis in use, 1200 needed)"
    );
}

#[test]
fn stranded_names_every_refusal() {
    let c = estate()
        .workload("x", &["self-1"])
        .workload("y", &["self-1"])
        .workload("z", &["acme-eu", "acme-us", "self-1", "nowhere", "acme-eu"])
        .build();
    let placements = [
        placed("x", "self-1", 1, t(0)),
        placed("y", "self-1", 1, t(0)),
        placed("z", "acme-eu", 1, t(0)),
    ];
    let conds = BTreeMap::from([(
        "acme-us".to_owned(),
        Condition::Suspended {
            reason: ErrorClass::AccountSuspended,
            since: t(5),
        },
    )]);
    let d = decide(&c, &conds, t(10));
    let p = plan(&c, &placements, &d.departures, t(10_000));
    assert!(p.moves.is_empty());
    assert_eq!(p.stranded.len(), 1);
    assert_eq!(p.stranded[0].from.as_deref(), Some("acme-eu"));
    assert_eq!(
        p.stranded[0].reason,
        "acme-eu: being left (account acme/prod lost: AccountSuspended on acme-us); \
         acme-us: being left (account acme/prod lost: AccountSuspended on acme-us); \
         self-1: full (2/2 replicas in use, 1 needed); nowhere: not a configured provider"
    );
}

#[test]
fn no_preferences_strands_with_a_reason() {
    let c = estate().workload("lost", &[]).build();
    let p = plan(&c, &[], &[], t(0));
    assert_eq!(p.stranded[0].reason, "no placement preferences");
}

#[test]
fn dependencies_cut_over_first() {
    let c = estate()
        .workload_with("web", &["acme-eu", "self-2"], 1, 0, &["api"])
        .workload_with("api", &["acme-eu", "self-2"], 1, 0, &["db"])
        .workload_with("db", &["acme-eu", "self-2"], 1, 0, &[])
        .workload_with("cache", &["acme-eu", "self-2"], 1, 0, &[])
        .build();
    let placements: Vec<Placement> = ["web", "api", "db", "cache"]
        .iter()
        .map(|w| placed(w, "acme-eu", 1, t(0)))
        .collect();
    let p = plan(&c, &placements, &[fenced("acme-eu")], t(10_000));
    let order: Vec<(&str, u32)> = p
        .moves
        .iter()
        .map(|m| (m.workload.as_str(), m.wave))
        .collect();
    assert_eq!(order, [("cache", 0), ("db", 0), ("api", 1), ("web", 2)]);

    // api stays (its provider is not left): web no longer waits for db.
    let mut placements = placements;
    placements[1] = placed("api", "self-2", 1, t(0));
    let p = plan(&c, &placements, &[fenced("acme-eu")], t(10_000));
    let order: Vec<(&str, u32)> = p
        .moves
        .iter()
        .map(|m| (m.workload.as_str(), m.wave))
        .collect();
    assert_eq!(order, [("cache", 0), ("db", 0), ("web", 0)]);
}

#[test]
fn a_stranded_dependency_leaves_no_gap_in_waves() {
    let c = estate()
        .workload_with("api", &["acme-eu", "self-2"], 1, 0, &["db"])
        .workload_with("db", &["acme-eu"], 1, 0, &[])
        .build();
    let placements = [
        placed("api", "acme-eu", 1, t(0)),
        placed("db", "acme-eu", 1, t(0)),
    ];
    let p = plan(&c, &placements, &[fenced("acme-eu")], t(10_000));
    assert_eq!(p.stranded[0].workload, "db");
    assert_eq!(moved(&p, "api").wave, 0);
}

#[test]
fn within_a_wave_the_earliest_deadline_goes_first() {
    let c = estate()
        .workload("a", &["acme-eu", "self-2"])
        .workload("b", &["acme-us", "self-2"])
        .workload("c", &["self-1", "self-2"])
        .build();
    let placements = [
        placed("a", "acme-eu", 1, t(0)),
        placed("b", "acme-us", 1, t(0)),
        placed("c", "self-1", 1, t(0)),
    ];
    let departures = [
        noticed("acme-eu", 9000),
        noticed("acme-us", 5000),
        unreachable("self-1"),
    ];
    let p = plan(&c, &placements, &departures, t(10_000));
    let order: Vec<&str> = p.moves.iter().map(|m| m.workload.as_str()).collect();
    assert_eq!(order, ["c", "b", "a"]);
    assert_eq!(moved(&p, "b").deadline, Some(t(5000)));
}

#[test]
fn a_flap_does_not_move_a_workload_twice_in_the_quiet_period() {
    let c = estate().workload("web", &["self-1", "self-2"]).build();
    // Moved to self-1 at 9700; quiet period 600 s.
    let placements = [placed("web", "self-1", 3, t(9700))];
    let p = plan(&c, &placements, &[unreachable("self-1")], t(10_000));
    assert!(p.moves.is_empty() && p.stranded.is_empty());
    assert_eq!(p.held[0].workload, "web");
    assert_eq!(p.held[0].until, t(10_300));

    // A verdict moves it regardless; so does the flap once the quiet period is over.
    let p = plan(&c, &placements, &[fenced("self-1")], t(10_000));
    assert_eq!(moved(&p, "web").targets, ["self-2"]);
    let p = plan(&c, &placements, &[unreachable("self-1")], t(10_300));
    assert_eq!(moved(&p, "web").targets, ["self-2"]);
}

#[test]
fn the_most_urgent_departure_of_a_provider_counts() {
    let c = estate().workload("web", &["self-1", "self-2"]).build();
    let placements = [placed("web", "self-1", 1, t(9900))];
    let p = plan(
        &c,
        &placements,
        &[unreachable("self-1"), fenced("self-1")],
        t(10_000),
    );
    assert_eq!(moved(&p, "web").targets, ["self-2"]);
}

#[test]
fn a_dependency_cycle_does_not_hang_or_panic() {
    let c = estate()
        .workload_with("a", &["self-2"], 1, 0, &["b"])
        .workload_with("b", &["self-2"], 1, 0, &["a"])
        .workload_with("c", &["self-2"], 1, 0, &[])
        .build();
    let p = plan(&c, &[], &[], t(0));
    assert_eq!(p.moves.len(), 3);
    assert_eq!(moved(&p, "c").wave, 0);
}

#[test]
fn the_quiet_period_comes_from_the_policy() {
    let policy = crate::config::PolicyConfig {
        quiet_period: std::time::Duration::from_secs(60),
        ..Default::default()
    };
    let c = estate()
        .workload("web", &["self-1", "self-2"])
        .policy(policy)
        .build();
    let placements = [placed("web", "self-1", 1, t(9900))];
    let p = plan(&c, &placements, &[unreachable("self-1")], t(9959));
    assert_eq!(p.held.len(), 1);
    let p = plan(&c, &placements, &[unreachable("self-1")], t(9960));
    assert_eq!(moved(&p, "web").targets, ["self-2"]);
}

#[test]
fn losing_a_vendor_from_the_command_line_excludes_all_of_it() {
    // What `lifeboat plan --lose acme` does: a fence on the scope, through the pipeline.
    let c = estate()
        .provider("acme-ap", "acme", Some("other"), Capacity::default())
        .workload("web", &["acme-eu", "acme-ap", "self-2"])
        .build();
    let scope = c.resolve_scope("acme").expect("a vendor");
    let fence = crate::model::Notice {
        scope,
        deadline: None,
        reason: "plan --lose acme".into(),
    };
    let conds = crate::conditions::conditions(&c, &BTreeMap::new(), &[fence], t(0));
    let d = decide(&c, &conds, t(0));
    assert_eq!(d.departures.len(), 3);
    let p = plan(
        &c,
        &[placed("web", "acme-eu", 1, t(0))],
        &d.departures,
        t(0),
    );
    assert_eq!(moved(&p, "web").targets, ["self-2"]);
}

#[test]
fn a_dead_copy_is_replaced_on_its_own_provider_first_even_when_it_is_full() {
    let c = estate()
        .workload_with("a", &["self-2", "self-1", "acme-eu"], 1, 0, &[])
        .workload_with("b", &["self-1"], 1, 0, &[])
        .workload_with("c", &["acme-eu", "self-2"], 1, 0, &[])
        .build();
    // self-1 holds two replicas and is full: `a`'s dead copy gives its room back.
    let placements = [
        placed("a", "self-1", 3, t(0)),
        placed("b", "self-1", 1, t(0)),
        placed("c", "acme-eu", 1, t(0)),
    ];
    let replace = BTreeSet::from(["a".to_owned(), "c".to_owned()]);
    let observed = Observed {
        replace,
        ..Observed::default()
    };
    let p = plan_observed(&c, &placements, &[fenced("acme-eu")], &observed, t(100));
    let a = moved(&p, "a");
    assert_eq!(a.from.as_deref(), Some("self-1"));
    assert_eq!(
        a.targets,
        ["self-1", "self-2"],
        "own provider first, then the placement"
    );
    assert_eq!(a.generation, Generation(4));
    // `c`'s provider is being left: it moves as any workload there does.
    assert_eq!(moved(&p, "c").targets, ["self-2"]);
    // `b` is fine and stays.
    assert!(p.moves.iter().all(|m| m.workload != "b"), "{p:#?}");
    // Nothing to replace: the plain plan.
    assert_eq!(
        plan_observed(&c, &placements, &[], &Observed::default(), t(100)),
        plan(&c, &placements, &[], t(100))
    );
}

#[test]
fn the_room_a_probe_reports_free_bounds_what_a_plan_sends_there() {
    // The configuration allows self-1 two replicas; its vendor says one is free.
    let c = estate()
        .workload_with("a", &["acme-eu", "self-1", "self-2"], 1, 0, &[])
        .workload_with("b", &["acme-eu", "self-1", "self-2"], 1, 0, &[])
        .build();
    let placements = [
        placed("a", "acme-eu", 1, t(0)),
        placed("b", "acme-eu", 1, t(0)),
    ];
    let observed = Observed {
        free: BTreeMap::from([(
            "self-1".to_owned(),
            Capacity {
                replicas: Some(1),
                ..Capacity::default()
            },
        )]),
        ..Observed::default()
    };
    let p = plan_observed(&c, &placements, &[fenced("acme-eu")], &observed, t(100));
    assert_eq!(moved(&p, "a").targets, ["self-1", "self-2"]);
    assert_eq!(
        moved(&p, "b").targets,
        ["self-2"],
        "the one free replica went to `a`"
    );
    // Without the probe's word, the configured capacity alone bounds it.
    let p = plan(&c, &placements, &[fenced("acme-eu")], t(100));
    assert_eq!(moved(&p, "b").targets, ["self-1", "self-2"]);
    // Nowhere else to go: the refusal says it was the probe.
    let c = estate()
        .workload_with("a", &["acme-eu", "self-1"], 1, 0, &[])
        .workload_with("b", &["acme-eu", "self-1"], 1, 0, &[])
        .build();
    let p = plan_observed(&c, &placements, &[fenced("acme-eu")], &observed, t(100));
    let stranded = &p.stranded[0];
    assert_eq!(stranded.workload, "b");
    assert!(
        stranded.reason.contains(
            "self-1: no room by its last probe (1 replicas free, 1 already planned there, 1 needed)"
        ),
        "{}",
        stranded.reason
    );
}

#[test]
fn a_workload_with_a_standby_moves_where_its_standby_is() {
    let c = estate()
        .workload_with("db", &["acme-eu", "self-1", "self-2"], 1, 0, &[])
        .build();
    let placements = [placed("db", "acme-eu", 1, t(0))];
    let observed = Observed {
        standbys: BTreeMap::from([("db".to_owned(), "self-2".to_owned())]),
        ..Observed::default()
    };
    let p = plan_observed(&c, &placements, &[fenced("acme-eu")], &observed, t(100));
    let db = moved(&p, "db");
    assert_eq!(db.targets, ["self-2", "self-1"], "the data is on self-2");
    assert_eq!(db.generation, Generation(2), "the standby's generation");
    // A standby on the provider being left is no help.
    let observed = Observed {
        standbys: BTreeMap::from([("db".to_owned(), "acme-eu".to_owned())]),
        ..Observed::default()
    };
    let p = plan_observed(&c, &placements, &[fenced("acme-eu")], &observed, t(100));
    assert_eq!(moved(&p, "db").targets, ["self-1", "self-2"]);
}
