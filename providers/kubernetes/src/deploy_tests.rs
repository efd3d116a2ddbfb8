use super::*;
use lifeboat_provider::Resources;
use serde_json::json;

fn spec() -> WorkloadSpec {
    WorkloadSpec {
        name: "api".into(),
        run: Run::Image {
            image: "ghcr.io/acme/api:1.4".into(),
            command: vec!["/api".into(), "--serve".into()],
        },
        env: BTreeMap::from([("MODE".into(), "prod".into())]),
        port: Some(8080),
        resources: Resources {
            cpu_millis: 250,
            memory_mib: 128,
        },
        replicas: 3,
        health: Some(HealthCheck::Http {
            path: "/healthz".into(),
        }),
        extra: BTreeMap::new(),
    }
}

fn owner() -> Owner {
    Owner::installation("prod-1")
}

fn config() -> KubernetesConfig {
    let mut c = KubernetesConfig::from_kubeconfig("/dev/null");
    c.labels.insert("team".into(), "sre".into());
    // An extra label cannot take over lifeboat's own, nor pass a copy off as another
    // owner's.
    c.labels.insert(labels::MANAGED.into(), "false".into());
    c.labels.insert(labels::OWNER.into(), "someone-else".into());
    c.labels.insert(labels::DRILL.into(), "d1".into());
    c
}

#[test]
fn a_workload_becomes_a_deployment_and_a_service_named_by_generation_and_owner() {
    let built = build(&spec(), Generation(7), &owner(), "prod", &config()).unwrap();
    let keys: Vec<String> = built.objects.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(
        keys,
        [
            "apps/v1/Deployment/prod/api-g7-700c1b9e",
            "v1/Service/prod/api-g7-700c1b9e"
        ]
    );
    assert_eq!(
        built.endpoint,
        Some(Endpoint {
            host: "api-g7-700c1b9e.prod.svc".into(),
            port: 8080
        })
    );

    let d = &built.objects[0].1;
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["metadata"]["labels"]["lifeboat.dev/workload"], "api");
    assert_eq!(d["metadata"]["labels"]["lifeboat.dev/generation"], "7");
    assert_eq!(d["metadata"]["labels"]["lifeboat.dev/managed"], "true");
    assert_eq!(d["metadata"]["labels"]["lifeboat.dev/owner"], "prod-1");
    assert!(d["metadata"]["labels"].get("lifeboat.dev/drill").is_none());
    assert_eq!(
        d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "lifeboat"
    );
    assert_eq!(d["metadata"]["labels"]["team"], "sre");
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["spec"]["selector"]["matchLabels"],
        json!({"lifeboat.dev/workload": "api", "lifeboat.dev/generation": "7",
               "lifeboat.dev/copy": "api-g7-700c1b9e"})
    );
    // The pods carry the owner too, so that inspect can find this copy's pods only.
    let pod_labels = &d["spec"]["template"]["metadata"]["labels"];
    assert_eq!(pod_labels["lifeboat.dev/owner"], "prod-1");
    assert_eq!(pod_labels["lifeboat.dev/copy"], "api-g7-700c1b9e");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "ghcr.io/acme/api:1.4");
    assert_eq!(c["command"], json!(["/api", "--serve"]));
    assert_eq!(
        c["env"],
        json!([{"name": "LIFEBOAT_GENERATION", "value": "7"}, {"name": "MODE", "value": "prod"}])
    );
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "250m", "memory": "128Mi"})
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], 8080);

    let s = &built.objects[1].1;
    assert_eq!(s["spec"]["type"], "ClusterIP");
    assert_eq!(s["spec"]["ports"][0]["port"], 8080);
    assert_eq!(s["spec"]["selector"], d["spec"]["selector"]["matchLabels"]);
    assert_eq!(
        s["metadata"]["annotations"][HEALTH_PATH_ANNOTATION],
        "/healthz"
    );
    assert_eq!(s["metadata"]["labels"], d["metadata"]["labels"]);
}

#[test]
fn a_drills_copy_is_named_and_selected_apart_from_production() {
    let drill = Owner::drill("prod-1", "d42");
    let prod = build(&spec(), Generation(7), &owner(), "prod", &config()).unwrap();
    let of_drill = build(&spec(), Generation(7), &drill, "prod", &config()).unwrap();
    assert_eq!(of_drill.objects[0].0.name, "api-g7-03f629c3");
    assert_ne!(prod.objects[0].0, of_drill.objects[0].0);
    let d = &of_drill.objects[0].1;
    assert_eq!(d["metadata"]["labels"]["lifeboat.dev/owner"], "prod-1");
    assert_eq!(d["metadata"]["labels"]["lifeboat.dev/drill"], "d42");
    // Production's Service must not select the drill's pods, nor the other way round.
    let selector = |b: &Built| b.objects[1].1["spec"]["selector"].clone();
    assert_ne!(selector(&prod), selector(&of_drill));
    let prod_selector = selector(&prod);
    let drill_pods = &d["spec"]["template"]["metadata"]["labels"];
    let selects_drill_pods = prod_selector
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| &drill_pods[k] == v);
    assert!(!selects_drill_pods, "{prod_selector} selects {drill_pods}");
}

#[test]
fn owners_whose_ids_are_no_label_values_are_refused() {
    for bad in [
        Owner::installation("Prod_1"),
        Owner::drill("prod-1", "a,b"),
        Owner::installation(""),
    ] {
        let err = build(&spec(), Generation(1), &bad, "prod", &config()).unwrap_err();
        assert!(err.contains("owner"), "{err}");
    }
}

fn existing(labels: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "shared", "namespace": "prod", "labels": labels},
    }))
    .unwrap()
}

#[test]
fn only_the_owner_applies_over_an_object_and_an_installation_adopts_unowned_ones() {
    let prod = owner();
    let drill = Owner::drill("prod-1", "d42");
    let other = Owner::installation("prod-2");
    let of_prod = existing(json!({"lifeboat.dev/managed": "true", "lifeboat.dev/owner": "prod-1"}));
    let of_drill = existing(
        json!({"lifeboat.dev/managed": "true", "lifeboat.dev/owner": "prod-1", "lifeboat.dev/drill": "d42"}),
    );
    let unowned = existing(json!({"lifeboat.dev/managed": "true"}));
    let unlabelled = existing(serde_json::Value::Null);

    assert_eq!(foreign(&of_prod, &prod), None);
    assert_eq!(foreign(&of_drill, &drill), None);
    assert!(foreign(&of_prod, &drill).unwrap().contains("prod-1"));
    assert!(foreign(&of_drill, &prod).unwrap().contains("d42"));
    assert!(foreign(&of_prod, &other).is_some());
    assert_eq!(foreign(&unowned, &prod), None);
    assert_eq!(foreign(&unlabelled, &prod), None);
    assert!(foreign(&unowned, &drill).is_some());
    assert!(foreign(&unlabelled, &drill).is_some());
}

#[test]
fn a_tcp_check_is_a_tcp_readiness_probe_and_no_port_means_no_service() {
    let mut s = spec();
    s.health = Some(HealthCheck::Tcp);
    let built = build(&s, Generation(1), &owner(), "prod", &config()).unwrap();
    let c = &built.objects[0].1["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["readinessProbe"]["tcpSocket"]["port"], 8080);

    s.port = None;
    let built = build(&s, Generation(1), &owner(), "prod", &config()).unwrap();
    assert_eq!(built.objects.len(), 1);
    assert_eq!(built.endpoint, None);
    let c = &built.objects[0].1["spec"]["template"]["spec"]["containers"][0];
    assert!(c.get("readinessProbe").is_none());
}

#[test]
fn the_generation_in_env_cannot_be_overridden() {
    let mut s = spec();
    s.env.insert("LIFEBOAT_GENERATION".into(), "1".into());
    let built = build(&s, Generation(9), &owner(), "prod", &config()).unwrap();
    let env = &built.objects[0].1["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env[0], json!({"name": "LIFEBOAT_GENERATION", "value": "9"}));
}

#[test]
fn host_commands_and_bad_names_are_refused() {
    let mut s = spec();
    s.run = Run::Command {
        command: vec!["sleep".into()],
    };
    assert!(
        build(&s, Generation(1), &owner(), "prod", &config())
            .unwrap_err()
            .contains("container images")
    );
    let mut s = spec();
    s.name = "API".into();
    assert!(build(&s, Generation(1), &owner(), "prod", &config()).is_err());
}

#[test]
fn raw_manifests_are_applied_as_given_with_labels_and_the_generation() {
    let mut s = spec();
    s.extra.insert(
        MANIFESTS_KEY.into(),
        json!([
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "db-conf"}, "data": {"a": "b"}},
            {"apiVersion": "apps/v1", "kind": "StatefulSet",
             "metadata": {"name": "db", "namespace": "data", "labels": {"app": "db"}},
             "spec": {"template": {"spec": {"containers": [
                 {"name": "pg", "image": "postgres:17", "env": [{"name": "LIFEBOAT_GENERATION", "value": "0"}]}
             ]}}}}
        ]),
    );
    let built = build(&s, Generation(4), &owner(), "prod", &config()).unwrap();
    let keys: Vec<String> = built.objects.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(
        keys,
        ["v1/ConfigMap/prod/db-conf", "apps/v1/StatefulSet/data/db"]
    );
    let cm = &built.objects[0].1;
    assert_eq!(cm["data"], json!({"a": "b"}));
    assert_eq!(cm["metadata"]["labels"]["lifeboat.dev/generation"], "4");
    let sts = &built.objects[1].1;
    assert_eq!(sts["metadata"]["labels"]["app"], "db");
    assert_eq!(sts["metadata"]["labels"]["lifeboat.dev/managed"], "true");
    assert_eq!(sts["metadata"]["labels"]["lifeboat.dev/owner"], "prod-1");
    assert_eq!(
        sts["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "lifeboat"
    );
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "LIFEBOAT_GENERATION", "value": "4"}])
    );
    assert_eq!(built.endpoint, None);
}

#[test]
fn malformed_manifests_are_invalid_requests() {
    for bad in [
        json!([]),
        json!({"kind": "ConfigMap"}),
        json!([{"kind": "ConfigMap", "metadata": {"name": "x"}}]),
        json!([{"apiVersion": "v1", "kind": "ConfigMap"}]),
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": "x"}]),
        json!(["not an object"]),
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a/b"}}]),
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "x,y"}}]),
    ] {
        let mut s = spec();
        s.extra.insert(MANIFESTS_KEY.into(), bad.clone());
        assert!(
            build(&s, Generation(1), &owner(), "prod", &config()).is_err(),
            "{bad}"
        );
    }
}
