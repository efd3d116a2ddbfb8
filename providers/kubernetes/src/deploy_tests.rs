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

fn config() -> KubernetesConfig {
    let mut c = KubernetesConfig::from_kubeconfig("/dev/null");
    c.labels.insert("team".into(), "sre".into());
    // An extra label cannot take over lifeboat's own.
    c.labels.insert(labels::MANAGED.into(), "false".into());
    c
}

#[test]
fn a_workload_becomes_a_deployment_and_a_service_named_by_generation() {
    let built = build(&spec(), Generation(7), "prod", &config()).unwrap();
    let keys: Vec<String> = built.objects.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(
        keys,
        ["apps/v1/Deployment/prod/api-g7", "v1/Service/prod/api-g7"]
    );
    assert_eq!(
        built.endpoint,
        Some(Endpoint {
            host: "api-g7.prod.svc".into(),
            port: 8080
        })
    );

    let d = &built.objects[0].1;
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["metadata"]["labels"]["lifeboat.dev/workload"], "api");
    assert_eq!(d["metadata"]["labels"]["lifeboat.dev/generation"], "7");
    assert_eq!(d["metadata"]["labels"]["lifeboat.dev/managed"], "true");
    assert_eq!(d["metadata"]["labels"]["team"], "sre");
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["spec"]["selector"]["matchLabels"],
        json!({"lifeboat.dev/workload": "api", "lifeboat.dev/generation": "7"})
    );
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
}

#[test]
fn a_tcp_check_is_a_tcp_readiness_probe_and_no_port_means_no_service() {
    let mut s = spec();
    s.health = Some(HealthCheck::Tcp);
    let built = build(&s, Generation(1), "prod", &config()).unwrap();
    let c = &built.objects[0].1["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["readinessProbe"]["tcpSocket"]["port"], 8080);

    s.port = None;
    let built = build(&s, Generation(1), "prod", &config()).unwrap();
    assert_eq!(built.objects.len(), 1);
    assert_eq!(built.endpoint, None);
    let c = &built.objects[0].1["spec"]["template"]["spec"]["containers"][0];
    assert!(c.get("readinessProbe").is_none());
}

#[test]
fn the_generation_in_env_cannot_be_overridden() {
    let mut s = spec();
    s.env.insert("LIFEBOAT_GENERATION".into(), "1".into());
    let built = build(&s, Generation(9), "prod", &config()).unwrap();
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
        build(&s, Generation(1), "prod", &config())
            .unwrap_err()
            .contains("container images")
    );
    let mut s = spec();
    s.name = "API".into();
    assert!(build(&s, Generation(1), "prod", &config()).is_err());
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
    let built = build(&s, Generation(4), "prod", &config()).unwrap();
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
            build(&s, Generation(1), "prod", &config()).is_err(),
            "{bad}"
        );
    }
}
