use jiff::Timestamp;
use lifeboat_provider::ErrorClass;
use proptest::prelude::*;

use super::*;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

#[test]
fn conditions_read_as_they_always_have() {
    let cases = [
        (Condition::Healthy, "healthy"),
        (
            Condition::Degraded {
                reason: "permission denied (UnauthorizedOperation)".into(),
            },
            "degraded: permission denied (UnauthorizedOperation)",
        ),
        (
            Condition::Failing {
                since: at("2026-11-02T10:00:00Z"),
            },
            "failing since 2026-11-02T10:00:00Z",
        ),
        (
            Condition::Unreachable {
                since: at("2026-11-02T10:00:00.25Z"),
            },
            "unreachable since 2026-11-02T10:00:00.25Z",
        ),
        (
            Condition::Suspended {
                reason: ErrorClass::AccountSuspended,
                since: at("2026-11-02T10:00:00Z"),
            },
            "suspended (account-suspended) since 2026-11-02T10:00:00Z",
        ),
        (
            Condition::Noticed {
                deadline: at("2026-11-03T09:00:00Z"),
            },
            "noticed: leave before 2026-11-03T09:00:00Z",
        ),
        (
            Condition::Fenced {
                by: "operator:alice".into(),
            },
            "fenced by operator:alice",
        ),
    ];
    for (condition, text) in cases {
        assert_eq!(condition.to_string(), text);
        assert_eq!(text.parse::<Condition>(), Ok(condition.clone()), "{text}");
        assert!(text.starts_with(condition.kind()), "{text}");
        assert!(Condition::KINDS.contains(&condition.kind()));
    }
    for bad in [
        "",
        "Healthy",
        "failing since yesterday",
        "suspended (blocked) since 2026-11-02T10:00:00Z",
        "suspended (account-suspended)",
        "on fire",
    ] {
        assert!(bad.parse::<Condition>().is_err(), "{bad:?}");
    }
}

#[test]
fn accounts_are_vendor_slash_account() {
    let prod = Account::new("aws", Some("prod"));
    assert_eq!(prod.to_string(), "aws/prod");
    assert_eq!("aws/prod".parse::<Account>(), Ok(prod.clone()));
    assert_eq!(prod, "aws/prod");
    assert_ne!(prod, "aws/");
    assert_ne!(prod, "aws");
    let unnamed = Account::new("self", None::<String>);
    assert_eq!(unnamed.to_string(), "self/");
    assert_eq!("self/".parse::<Account>(), Ok(unnamed.clone()));
    assert!(unnamed.holds("self", None));
    assert!(!unnamed.holds("self", Some("prod")));
    for bad in ["aws", "", "/prod", "aws/prod/eu"] {
        assert!(bad.parse::<Account>().is_err(), "{bad:?}");
    }
}

#[test]
fn a_stored_account_notice_keeps_its_format() {
    // Notices are stored as JSON; an account scope has always been this text.
    let json = r#"{"scope":"account","name":"acme/prod"}"#;
    let scope: Scope = serde_json::from_str(json).unwrap();
    assert_eq!(scope, Scope::Account(Account::new("acme", Some("prod"))));
    assert_eq!(serde_json::to_string(&scope).unwrap(), json);
    assert!(serde_json::from_str::<Scope>(r#"{"scope":"account","name":"acme"}"#).is_err());
}

fn any_timestamp() -> impl Strategy<Value = Timestamp> {
    (-2_000_000_000i64..4_000_000_000, 0i32..1_000_000_000)
        .prop_map(|(secs, nanos)| Timestamp::new(secs, nanos).unwrap())
}

fn any_condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        Just(Condition::Healthy),
        any::<String>().prop_map(|reason| Condition::Degraded { reason }),
        any_timestamp().prop_map(|since| Condition::Failing { since }),
        any_timestamp().prop_map(|since| Condition::Unreachable { since }),
        (
            prop::sample::select(ErrorClass::ALL.to_vec()),
            any_timestamp()
        )
            .prop_map(|(reason, since)| Condition::Suspended { reason, since }),
        any_timestamp().prop_map(|deadline| Condition::Noticed { deadline }),
        any::<String>().prop_map(|by| Condition::Fenced { by }),
    ]
}

proptest! {
    #[test]
    fn conditions_round_trip_through_their_text(condition in any_condition()) {
        let text = condition.to_string();
        prop_assert!(text.starts_with(condition.kind()));
        prop_assert_eq!(text.parse::<Condition>(), Ok(condition));
    }

    #[test]
    fn accounts_round_trip_through_their_text_and_json(
        vendor in "[a-z][a-z0-9-]{0,12}",
        account in proptest::option::of("[a-z0-9][a-z0-9-]{0,12}"),
    ) {
        let account = Account::new(vendor, account);
        let text = account.to_string();
        prop_assert_eq!(text.parse::<Account>(), Ok(account.clone()));
        prop_assert!(account == text.as_str());
        let json = serde_json::to_string(&account).unwrap();
        prop_assert_eq!(json.clone(), format!("{text:?}"));
        prop_assert_eq!(serde_json::from_str::<Account>(&json).unwrap(), account);
    }
}
