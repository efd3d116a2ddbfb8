use std::collections::BTreeMap;

use lifeboat_provider::{Capacity, ErrorClass};
use proptest::prelude::*;

use super::*;
use crate::decide::decide;
use crate::model::Scope;
use crate::testing::{Builder, t};

fn policy() -> PolicyConfig {
    // Defaults: confirmations 2, grace 120 s, quiet 600 s.
    PolicyConfig::default()
}

fn ok(at: i64) -> Signal {
    sig(at, SignalKind::ProbeOk { degraded: None })
}

fn failed(at: i64, class: ErrorClass) -> Signal {
    sig(at, SignalKind::ProbeFailed { class, code: None })
}

fn sig(at: i64, kind: SignalKind) -> Signal {
    Signal {
        provider: "p".into(),
        at: t(at),
        kind,
    }
}

fn run(signals: &[Signal]) -> Health {
    observe_all(signals, &policy())
}

fn at(h: &Health, now: i64) -> Condition {
    condition(h, &[], t(now), &policy())
}

fn is_degraded(c: &Condition) -> bool {
    matches!(c, Condition::Degraded { .. })
}

#[test]
fn no_signal_is_healthy() {
    assert_eq!(at(&Health::default(), 0), Condition::Healthy);
}

/// Every class, repeated every 10 s for 190 s, judged at the last probe; then judged
/// again once clean probes have run for the quiet period.
#[test]
fn each_error_class_table() {
    use ErrorClass::*;
    let expected = |class: ErrorClass| -> &'static str {
        match class {
            AccountSuspended | CredentialsRejected => "suspended",
            Unavailable | Timeout => "unreachable",
            PermissionDenied | Throttled | CapacityExhausted | InvalidRequest | NotFound
            | Internal => "degraded",
        }
    };
    for class in ErrorClass::ALL {
        let signals: Vec<Signal> = (0..20).map(|i| failed(i * 10, class)).collect();
        let h = run(&signals);
        let got = match at(&h, 190) {
            Condition::Suspended { reason, since } => {
                assert_eq!((reason, since), (class, t(10)), "{class:?}");
                "suspended"
            }
            Condition::Unreachable { since } => {
                assert_eq!(since, t(0), "{class:?}");
                "unreachable"
            }
            Condition::Degraded { .. } => "degraded",
            other => panic!("{class:?}: unexpected {other:?}"),
        };
        assert_eq!(got, expected(class), "{class:?}");

        // Clean probes every 10 s after the last failure (at 190).
        let mut all = signals.clone();
        all.extend((20..=80).map(|i| ok(i * 10)));
        let h = run(&all);
        assert!(is_degraded(&at(&h, 789)), "{class:?} healthy too early");
        assert_eq!(at(&h, 790), Condition::Healthy, "{class:?}");
        assert_eq!(at(&h, 800), Condition::Healthy, "{class:?}");
    }
}

#[test]
fn account_loss_needs_the_configured_confirmations() {
    for confirmations in 0..5u32 {
        let policy = PolicyConfig {
            confirmations,
            ..policy()
        };
        let mut h = Health::default();
        for i in 0..6i64 {
            h = observe(&h, &failed(i, ErrorClass::AccountSuspended), &policy);
            let suspended = matches!(
                condition(&h, &[], t(i), &policy),
                Condition::Suspended { .. }
            );
            // Zero confirmations means one: evidence is always needed.
            let needed = i64::from(confirmations.max(1));
            assert_eq!(
                suspended,
                i + 1 >= needed,
                "confirmations {confirmations}, probe {i}"
            );
        }
    }
}

#[test]
fn transient_failures_neither_extend_nor_break_the_account_streak() {
    use ErrorClass::*;
    for between in [Throttled, Unavailable, Timeout] {
        let h = run(&[
            failed(0, AccountSuspended),
            failed(10, between),
            failed(20, AccountSuspended),
        ]);
        assert!(
            matches!(at(&h, 20), Condition::Suspended { .. }),
            "{between:?}"
        );
        let h = run(&[failed(0, AccountSuspended), failed(10, between)]);
        let c = at(&h, 10);
        assert!(
            is_degraded(&c) || c == Condition::Failing { since: t(10) },
            "{between:?}"
        );
    }
}

#[test]
fn an_answer_breaks_the_account_streak() {
    use ErrorClass::*;
    let breakers = [
        ok(10),
        sig(
            10,
            SignalKind::ProbeOk {
                degraded: Some("slow".into()),
            },
        ),
        failed(10, PermissionDenied),
        failed(10, NotFound),
        failed(10, Internal),
    ];
    for b in breakers {
        let h = run(&[
            failed(0, CredentialsRejected),
            b.clone(),
            failed(20, CredentialsRejected),
        ]);
        assert!(is_degraded(&at(&h, 20)), "{b:?}");
    }
}

#[test]
fn time_alone_makes_a_failing_provider_unreachable() {
    let h = run(&[failed(0, ErrorClass::Timeout)]);
    assert_eq!(at(&h, 119), Condition::Failing { since: t(0) });
    assert_eq!(at(&h, 120), Condition::Unreachable { since: t(0) });
    assert_eq!(at(&h, 5000), Condition::Unreachable { since: t(0) });
}

#[test]
fn any_answer_ends_a_run_of_failures() {
    use ErrorClass::*;
    for answer in [Throttled, PermissionDenied, Internal] {
        let h = run(&[
            failed(0, Timeout),
            failed(100, answer),
            failed(110, Unavailable),
        ]);
        // The new run started at 110, so the provider is not unreachable at 200.
        assert_eq!(
            at(&h, 200),
            Condition::Failing { since: t(110) },
            "{answer:?}"
        );
        assert_eq!(
            at(&h, 230),
            Condition::Unreachable { since: t(110) },
            "{answer:?}"
        );
    }
}

#[test]
fn suspension_sticks_until_a_quiet_period_of_clean_probes() {
    use ErrorClass::*;
    let mut signals = vec![failed(0, AccountSuspended), failed(10, AccountSuspended)];
    signals.extend((2..=60).map(|i| ok(i * 10)));
    let h = run(&signals);
    assert!(matches!(at(&h, 609), Condition::Suspended { .. }));
    assert_eq!(at(&h, 610), Condition::Healthy);
    signals.extend((61..70).map(|i| ok(i * 10)));

    // Recovered, then throttled: degraded, not suspended again.
    let mut later = signals.clone();
    later.push(failed(700, Throttled));
    let h = run(&later);
    assert!(h.suspended.is_none());
    assert!(is_degraded(&at(&h, 700)));

    // A bad signal inside the quiet period keeps the suspension.
    let mut bad = signals[..30].to_vec();
    bad.push(failed(300, Throttled));
    bad.extend((31..70).map(|i| ok(i * 10)));
    let h = run(&bad);
    assert!(matches!(at(&h, 690), Condition::Suspended { .. }));
    assert_eq!(at(&h, 900), Condition::Healthy);
}

#[test]
fn suspension_does_not_heal_without_a_clean_probe() {
    let h = run(&[
        failed(0, ErrorClass::AccountSuspended),
        failed(10, ErrorClass::AccountSuspended),
    ]);
    assert!(matches!(at(&h, 100_000), Condition::Suspended { .. }));
}

#[test]
fn late_signals_are_ignored() {
    let h = run(&[ok(100), failed(50, ErrorClass::Timeout)]);
    assert_eq!(h.failing_since, None);
    assert_eq!(h.last_seen, Some(t(100)));
}

fn notice(deadline: Option<i64>, reason: &str) -> Notice {
    Notice {
        scope: Scope::Provider("p".into()),
        deadline: deadline.map(t),
        reason: reason.into(),
    }
}

#[test]
fn notices_and_fences() {
    let p = policy();
    let h = Health::default();
    let two = [notice(Some(500), "later"), notice(Some(300), "sooner")];
    assert_eq!(
        condition(&h, &two, t(0), &p),
        Condition::Noticed { deadline: t(300) }
    );
    let fenced = [notice(Some(300), "n"), notice(None, "drill")];
    assert_eq!(
        condition(&h, &fenced, t(0), &p),
        Condition::Fenced { by: "drill".into() }
    );
}

/// Every combination of the five states that can coincide, against the documented
/// precedence: Suspended > Fenced > Unreachable > Noticed > Degraded > Healthy.
#[test]
fn precedence_table() {
    let p = policy();
    let now = t(1000);
    for bits in 0u8..32 {
        let [suspended, fenced, unreachable, noticed, degraded] =
            [0, 1, 2, 3, 4].map(|i| bits & (1 << i) != 0);
        let h = Health {
            suspended: suspended.then(|| Suspension {
                class: ErrorClass::AccountSuspended,
                since: t(0),
            }),
            failing_since: unreachable.then(|| t(0)),
            last_bad: degraded.then(|| BadSignal {
                at: t(900),
                reason: "throttled".into(),
            }),
            ..Health::default()
        };
        let mut notices = vec![];
        if fenced {
            notices.push(notice(None, "drill"));
        }
        if noticed {
            notices.push(notice(Some(5000), "vendor"));
        }
        let expected = if suspended {
            "suspended"
        } else if fenced {
            "fenced"
        } else if unreachable {
            "unreachable"
        } else if noticed {
            "noticed"
        } else if degraded {
            "degraded"
        } else {
            "healthy"
        };
        let got = match condition(&h, &notices, now, &p) {
            Condition::Suspended { .. } => "suspended",
            Condition::Fenced { .. } => "fenced",
            Condition::Unreachable { .. } => "unreachable",
            Condition::Noticed { .. } => "noticed",
            Condition::Failing { .. } => "failing",
            Condition::Degraded { .. } => "degraded",
            Condition::Healthy => "healthy",
        };
        assert_eq!(got, expected, "bits {bits:05b}");
    }
}

#[test]
fn failing_ranks_below_notices_and_above_degraded() {
    let p = policy();
    let h = Health {
        failing_since: Some(t(950)),
        last_bad: Some(BadSignal {
            at: t(990),
            reason: "timeout".into(),
        }),
        ..Health::default()
    };
    let now = t(1000);
    assert_eq!(
        condition(&h, &[], now, &p),
        Condition::Failing { since: t(950) }
    );
    let n = [notice(Some(5000), "vendor")];
    assert_eq!(
        condition(&h, &n, now, &p),
        Condition::Noticed { deadline: t(5000) }
    );
}

#[test]
fn notices_reach_every_provider_of_their_scope() {
    let c = Builder::new()
        .provider("a1", "acme", Some("prod"), Capacity::default())
        .provider("a2", "acme", Some("dr"), Capacity::default())
        .provider("b1", "bolt", None, Capacity::default())
        .build();
    let n = |scope: Scope| Notice {
        scope,
        deadline: None,
        reason: "r".into(),
    };
    let notices = [
        n(Scope::Vendor("acme".into())),
        n(Scope::Account("acme/dr".parse().unwrap())),
    ];
    assert_eq!(notices_for(&c, "a1", &notices).len(), 1);
    assert_eq!(notices_for(&c, "a2", &notices).len(), 2);
    assert!(notices_for(&c, "b1", &notices).is_empty());
    let all = conditions(&c, &BTreeMap::new(), &notices, t(0));
    assert_eq!(all.len(), 3);
    assert_eq!(all["b1"], Condition::Healthy);
    assert!(matches!(all["a1"], Condition::Fenced { .. }));
}

proptest! {
    /// `notices_for` and `conditions` test each provider against a scope directly; they
    /// must agree with `Config::providers_in`, whatever the scope names (a bare vendor
    /// as an account, a missing account, a prefix of a vendor, a provider).
    #[test]
    fn a_notice_reaches_exactly_the_providers_of_its_scope(
        config in crate::testing::arb_config(),
        pick in 0usize..16,
    ) {
        let names = ["acme", "bolt", "self", "acme/prod", "acme/dr", "acme/", "bolt/",
                     "self/prod", "acm/prod", "acme/prod/", "p0", "p1", "p5", "", "/", "acme/x"];
        let name = names[pick].to_owned();
        // An account scope exists only for names that are accounts at all.
        let account = name.parse().ok().map(Scope::Account);
        for scope in [Some(Scope::Vendor(name.clone())), account,
                      Some(Scope::Provider(name.clone()))].into_iter().flatten() {
            let notice = Notice { scope: scope.clone(), deadline: None, reason: "r".into() };
            let covered: Vec<&str> =
                config.providers_in(&scope).iter().map(|p| p.name.as_str()).collect();
            let all = conditions(&config, &BTreeMap::new(), std::slice::from_ref(&notice), t(0));
            for p in &config.providers {
                let expected = covered.contains(&p.name.as_str());
                let reached = notices_for(&config, &p.name, std::slice::from_ref(&notice));
                prop_assert_eq!(!reached.is_empty(), expected, "{:?} on {}", scope, p.name);
                prop_assert_eq!(
                    matches!(all[&p.name], Condition::Fenced { .. }), expected,
                    "{:?} on {}", scope, p.name
                );
            }
        }
    }
}

fn arb_kind(classes: Vec<ErrorClass>) -> impl Strategy<Value = SignalKind> {
    prop_oneof![
        1 => Just(SignalKind::ProbeOk { degraded: None }),
        3 => prop::sample::select(classes).prop_map(|class| SignalKind::ProbeFailed { class, code: None }),
    ]
}

fn to_signals(steps: Vec<(i64, SignalKind)>) -> Vec<Signal> {
    let mut now = 0;
    steps
        .into_iter()
        .map(|(gap, kind)| {
            now += gap;
            sig(now, kind)
        })
        .collect()
}

proptest! {
    /// Throttling (mixed with clean and permission-denied probes, at any pace over
    /// hours) never makes a provider leave-worthy, nor yields a departure.
    #[test]
    fn throttling_never_evacuates(
        steps in prop::collection::vec(
            (0i64..3600, arb_kind(vec![ErrorClass::Throttled, ErrorClass::PermissionDenied])),
            0..60),
        later in 0i64..100_000,
    ) {
        let signals = to_signals(steps);
        let c = Builder::new()
            .provider("p", "acme", None, Capacity::default())
            .provider("q", "bolt", None, Capacity::default())
            .build();
        let mut h = Health::default();
        for s in &signals {
            h = observe(&h, s, &c.policy);
            let cond = condition(&h, &[], s.at, &c.policy);
            let calm = matches!(cond, Condition::Healthy | Condition::Degraded { .. });
            // Throttling is an answer: never even `Failing`.
            prop_assert!(calm, "{:?}", cond);
        }
        let end = signals.last().map_or(t(0), |s| s.at);
        let now = end.checked_add(jiff::SignedDuration::from_secs(later)).unwrap();
        let healths = BTreeMap::from([("p".to_owned(), h)]);
        let conds = crate::conditions::conditions(&c, &healths, &[], now);
        prop_assert!(decide(&c, &conds, now).departures.is_empty());
    }

    /// Hysteresis: never Healthy within the quiet period after a bad signal, and never
    /// Suspended without the confirmations.
    #[test]
    fn hysteresis(
        steps in prop::collection::vec((0i64..400, arb_kind(ErrorClass::ALL.to_vec())), 0..60),
        after in 0i64..2000,
    ) {
        let p = policy();
        let signals = to_signals(steps);
        let mut h = Health::default();
        let mut streak_max = 0u32;
        for s in &signals {
            h = observe(&h, s, &p);
            streak_max = streak_max.max(h.consecutive_account_loss);
        }
        let end = signals.last().map_or(t(0), |s| s.at);
        let now = end.checked_add(jiff::SignedDuration::from_secs(after)).unwrap();
        let cond = condition(&h, &[], now, &p);
        let last_bad = signals.iter().rev().find(|s| s.kind != SignalKind::ProbeOk { degraded: None });
        if let Some(bad) = last_bad
            && !at_least(bad.at, now, p.quiet_period)
        {
            prop_assert_ne!(&cond, &Condition::Healthy);
        }
        if matches!(cond, Condition::Suspended { .. }) {
            prop_assert!(streak_max >= p.confirmations);
        }
    }
}
