use super::*;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateWaiting, ContainerStatus, PodStatus,
};
use serde_json::json;

fn deployment(generation: i64, status: Value) -> Value {
    json!({"metadata": {"generation": generation}, "spec": {"replicas": 3}, "status": status})
}

#[test]
fn rollout_table() {
    let table = [
        (
            "not yet observed",
            deployment(
                2,
                json!({"observedGeneration": 1, "availableReplicas": 3, "updatedReplicas": 3}),
            ),
            "pending",
        ),
        (
            "no status at all",
            json!({"metadata": {"generation": 1}, "spec": {"replicas": 1}}),
            "pending",
        ),
        (
            "nothing available",
            deployment(1, json!({"observedGeneration": 1})),
            "pending",
        ),
        (
            "some available",
            deployment(
                1,
                json!({"observedGeneration": 1, "availableReplicas": 1, "updatedReplicas": 3}),
            ),
            "running",
        ),
        (
            "all available but an old ReplicaSet's",
            deployment(
                2,
                json!({"observedGeneration": 2, "availableReplicas": 3, "updatedReplicas": 1}),
            ),
            "running",
        ),
        (
            "complete",
            deployment(
                2,
                json!({"observedGeneration": 2, "availableReplicas": 3, "updatedReplicas": 3}),
            ),
            "ready",
        ),
        (
            "deadline exceeded",
            deployment(
                1,
                json!({"observedGeneration": 1, "conditions": [
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                 "message": "ReplicaSet \"api-g1-5d9\" has timed out progressing."}]}),
            ),
            "failed",
        ),
        (
            "replica failure (quota)",
            deployment(
                1,
                json!({"observedGeneration": 1, "conditions": [
                {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                 "message": "pods \"api-g1-x\" is forbidden: exceeded quota"}]}),
            ),
            "failed",
        ),
        (
            "progressing normally",
            deployment(
                1,
                json!({"observedGeneration": 1, "availableReplicas": 3, "updatedReplicas": 3,
                "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}),
            ),
            "ready",
        ),
        (
            "scaled to zero",
            json!({"metadata": {"generation": 1}, "spec": {"replicas": 0}, "status": {"observedGeneration": 1}}),
            "ready",
        ),
    ];
    for (case, object, want) in table {
        let got = match rollout("Deployment", &object) {
            Rollout::Pending(_) => "pending",
            Rollout::Running(_) => "running",
            Rollout::Ready => "ready",
            Rollout::Failed(_) => "failed",
        };
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn statefulsets_without_available_count_use_ready_and_daemonsets_their_own_fields() {
    let sts = json!({"metadata": {"generation": 1}, "spec": {"replicas": 2},
        "status": {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 2}});
    assert_eq!(rollout("StatefulSet", &sts), Rollout::Ready);
    let ds = json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1,
        "desiredNumberScheduled": 4, "updatedNumberScheduled": 4, "numberAvailable": 2}});
    assert!(matches!(rollout("DaemonSet", &ds), Rollout::Running(_)));
}

#[test]
fn the_worst_rollout_wins() {
    assert_eq!(combine([]), Rollout::Ready);
    assert_eq!(
        combine([
            Rollout::Ready,
            Rollout::Pending("p".into()),
            Rollout::Running("r".into())
        ]),
        Rollout::Pending("p".into())
    );
    assert_eq!(
        combine([Rollout::Failed("f".into()), Rollout::Pending("p".into())]),
        Rollout::Failed("f".into())
    );
}

fn pod(reason: &str) -> Pod {
    Pod {
        metadata: kube::api::ObjectMeta {
            name: Some("api-g1-abc".into()),
            ..Default::default()
        },
        status: Some(PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                name: "api".into(),
                state: Some(ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(reason.into()),
                        message: Some("back-off pulling image".into()),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn pods_that_cannot_pull_or_keep_crashing_are_stuck() {
    let reason = stuck_pod(&[pod("ContainerCreating"), pod("ImagePullBackOff")]).unwrap();
    assert!(
        reason.contains("api-g1-abc") && reason.contains("ImagePullBackOff"),
        "{reason}"
    );
    assert!(stuck_pod(&[pod("CrashLoopBackOff")]).is_some());
    assert_eq!(stuck_pod(&[pod("ContainerCreating")]), None);
    assert_eq!(stuck_pod(&[Pod::default()]), None);
}

#[test]
fn proxied_answers_tell_the_workload_from_the_api_server() {
    assert_eq!(proxied_health(200, b"ok"), Health::Passing);
    assert_eq!(
        proxied_health(500, b"database down"),
        Health::Failing("HTTP 500".into())
    );
    let no_endpoints = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"no endpoints available for service \"api-g1\"","reason":"ServiceUnavailable","code":503}"#;
    assert_eq!(proxied_health(503, no_endpoints), Health::Unchecked);
    assert_eq!(
        proxied_health(503, br#"{"error":"overloaded"}"#),
        Health::Failing("HTTP 503".into())
    );
}

fn dep(owner: Option<lifeboat_provider::Owner>) -> DeploymentRef {
    DeploymentRef {
        workload: "api".into(),
        generation: lifeboat_provider::Generation(1),
        handle: "apps/v1/Deployment/prod/api-g1".into(),
        endpoint: None,
        owner,
    }
}

#[test]
fn an_object_of_another_owner_does_not_belong_to_the_reference() {
    use lifeboat_provider::Owner;
    let object = |labels: Value| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api-g1", "labels": labels}}))
        .unwrap()
    };
    let prod = Owner::installation("prod-1");
    let drill = Owner::drill("prod-1", "d42");
    let of_prod = object(json!({"lifeboat.dev/generation": "1", "lifeboat.dev/owner": "prod-1"}));
    let unowned = object(json!({"lifeboat.dev/generation": "1"}));
    assert!(belongs(&of_prod, &dep(Some(prod.clone()))));
    assert!(!belongs(&of_prod, &dep(Some(drill))));
    assert!(!belongs(&of_prod, &dep(None)));
    assert!(belongs(&unowned, &dep(None)));
    assert!(!belongs(&unowned, &dep(Some(prod))));
}
