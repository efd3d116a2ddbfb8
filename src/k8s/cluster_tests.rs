use std::path::Path;

use serde_json::json;

use super::*;
use crate::k8s::resources::{PolicySpec, ProviderSpec, WorkloadSpec};

fn provider(name: &str, vendor: &str, account: Option<&str>) -> Provider {
    Provider::new(
        name,
        ProviderSpec {
            vendor: vendor.into(),
            account: account.map(Into::into),
            capacity: Some(json!({"replicas": 4})),
            labels: Default::default(),
            adapter: json!({"kind": "sim"}),
        },
    )
}

fn workload(name: &str, placement: &[&str], depends_on: &[&str]) -> Workload {
    Workload::new(
        name,
        WorkloadSpec {
            image: None,
            command: vec!["sleep".into(), "1000".into()],
            env: Default::default(),
            port: Some(8080),
            resources: None,
            replicas: None,
            health: None,
            depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
            placement: placement.iter().map(|s| s.to_string()).collect(),
            rto: Some("90s".into()),
            public_name: None,
            hooks: None,
            data: None,
            extra: Default::default(),
        },
    )
}

fn policy(name: &str) -> Policy {
    Policy::new(
        name,
        PolicySpec {
            probe_interval: Some("2s".into()),
            probe_timeout: Some("1s".into()),
            confirmations: Some(1),
            cutover: json!({"kind": "endpoints-file", "path": "endpoints.json"}),
            ..Default::default()
        },
    )
}

#[test]
fn resources_become_the_same_config_as_a_file() {
    let state = Path::new("/var/lib/lifeboat");
    let assembled = assemble(
        &[
            provider("b", "hetzner", None),
            provider("a", "aws", Some("prod")),
        ],
        &[
            workload("api", &["a", "b"], &["db"]),
            workload("db", &["a", "b"], &[]),
        ],
        &[policy("default")],
        state,
    )
    .unwrap();
    let config = assembled.config;
    assert_eq!(
        config
            .providers
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(config.account_of(config.provider("a").unwrap()), "aws/prod");
    assert_eq!(config.vendors.len(), 2);
    assert_eq!(config.workload("api").unwrap().depends_on, ["db"]);
    assert_eq!(config.workload("api").unwrap().replicas, 1);
    assert_eq!(
        config.policy.probe_interval,
        std::time::Duration::from_secs(2)
    );
    assert_eq!(config.policy.confirmations, 1);
    assert_eq!(config.state_dir, state);
    // Relative paths are anchored at the state folder, as in a file next to it.
    assert_eq!(
        config.resolve_path(Path::new("endpoints.json")),
        state.join("endpoints.json")
    );
}

#[test]
fn findings_name_the_resource_they_concern() {
    let error = assemble(
        &[provider("a", "aws", None)],
        &[workload("api", &["a"], &["nope"])],
        &[policy("default")],
        Path::new("/tmp/state"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("Workload/api: spec.depends_on[0]"),
        "{error}"
    );

    let mut bad = provider("a", "aws", None);
    bad.spec.adapter = json!({"kind": "sim", "no_such_setting": 1});
    let error = assemble(&[bad], &[], &[policy("default")], Path::new("/tmp/state"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("Provider/a"), "{error}");
    assert!(error.contains("no_such_setting"), "{error}");
}

#[test]
fn a_workloads_data_is_a_dataset_checked_as_in_a_file() {
    let providers = [provider("a", "aws", None), provider("b", "hetzner", None)];
    let mut db = workload("db", &["a", "b"], &[]);
    db.spec.data = Some(json!({
        "method": "postgres-streaming",
        "rpo": "5s",
        "credentials": {"user": "postgres", "password_env": "PGPASSWORD"},
    }));
    let state = Path::new("/tmp/state");
    let assembled = assemble(&providers, &[db.clone()], &[policy("default")], state).unwrap();
    let data = assembled.config.workloads[0].data.as_ref().unwrap();
    assert_eq!(data.rpo, std::time::Duration::from_secs(5));
    assert_eq!(
        crate::config::standby_candidates(&assembled.config, &assembled.config.workloads[0]),
        ["b"]
    );

    db.spec.data = Some(json!({"method": "postgres-streaming", "rpo": "0s",
        "credentials": {"user": "postgres"}}));
    let error = assemble(&providers, &[db], &[policy("default")], state)
        .unwrap_err()
        .to_string();
    assert!(error.contains("Workload/db: spec.data.rpo"), "{error}");
    assert!(error.contains("synchronous: true"), "{error}");
}

#[test]
fn the_policy_is_the_default_one_or_the_only_one() {
    let state = Path::new("/tmp/state");
    assert!(
        assemble(&[], &[], &[], state)
            .unwrap_err()
            .to_string()
            .contains("no Policy")
    );
    assert!(assemble(&[], &[], &[policy("x"), policy("y")], state).is_err());
    let mut other = policy("x");
    other.spec.probe_interval = Some("7s".into());
    let chosen = assemble(&[], &[], &[other, policy("default")], state).unwrap();
    assert_eq!(
        chosen.config.policy.probe_interval,
        std::time::Duration::from_secs(2)
    );
}
