//! The quickstart's moving parts together, for real: the built `lifeboat demo` binary
//! run as workloads by the local provider, found through the endpoints-file cutover,
//! and a move of the upstream that its dependent follows without a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lifeboat::cutover::{Cutover, CutoverRequest, EndpointsFile};
use lifeboat::demo::{Answer, ENDPOINTS_ENV};
use lifeboat_provider::{
    DeployRequest, DeploymentRef, DeploymentState, Endpoint, Generation, HealthCheck, Provider,
    Resources, Run, WorkloadSpec,
};
use lifeboat_provider_local::{LocalConfig, LocalProvider, PortRange};

fn demo(name: &str, generation: u64, upstream: Option<&str>, endpoints: &Path) -> DeployRequest {
    let mut command = vec!["lifeboat", "demo", "--name", name, "--role", name];
    if let Some(up) = upstream {
        command.extend(["--upstream", up]);
    }
    DeployRequest {
        workload: WorkloadSpec {
            name: name.into(),
            run: Run::Command {
                command: command.into_iter().map(Into::into).collect(),
            },
            env: BTreeMap::from([(
                ENDPOINTS_ENV.to_owned(),
                endpoints.to_string_lossy().into_owned(),
            )]),
            port: None,
            resources: Resources::default(),
            replicas: 1,
            health: Some(HealthCheck::Http {
                path: "/healthz".into(),
            }),
            extra: BTreeMap::new(),
        },
        generation: Generation(generation),
        owner: lifeboat_provider::Owner::installation("test"),
    }
}

async fn healthy(p: &LocalProvider, dep: &DeploymentRef) -> Endpoint {
    let start = Instant::now();
    loop {
        match p.inspect(dep).await.unwrap() {
            DeploymentState::Healthy { endpoint } => return endpoint,
            DeploymentState::Failed { reason } => panic!("{} failed: {reason}", dep.handle),
            state => assert!(
                start.elapsed() < Duration::from_secs(60),
                "{} still {state:?} after a minute",
                dep.handle
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ask(endpoint: &Endpoint) -> Answer {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{endpoint}/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn switch(name: &str, old: Option<&Endpoint>, new: &Endpoint, generation: u64) -> CutoverRequest {
    CutoverRequest {
        workload: name.into(),
        public_name: format!("{name}.test"),
        old: old.cloned(),
        new: new.clone(),
        generation: Generation(generation),
    }
}

#[tokio::test]
async fn the_api_follows_its_database_across_a_cutover() {
    let dir = tempfile::tempdir().unwrap();
    let endpoints = dir.path().join("endpoints.json");
    let cutover = EndpointsFile::new(endpoints.clone());
    let first = lifeboat_testkit::free_port();
    let config = LocalConfig {
        ports: PortRange::new(first, first.saturating_add(20)).unwrap(),
        bind: [127, 0, 0, 1].into(),
        dir: None,
    };
    let local = LocalProvider::new("here", config, dir.path())
        .unwrap()
        .with_self_exe(PathBuf::from(env!("CARGO_BIN_EXE_lifeboat")));

    let db1 = local
        .deploy(&demo("db", 1, None, &endpoints))
        .await
        .unwrap();
    let api = local
        .deploy(&demo("api", 1, Some("db.test"), &endpoints))
        .await
        .unwrap();
    let db1_at = healthy(&local, &db1).await;
    let api_at = healthy(&local, &api).await;
    cutover
        .switch(&switch("db", None, &db1_at, 1))
        .await
        .unwrap();

    let answer = ask(&api_at).await;
    assert_eq!((answer.name.as_str(), answer.generation), ("api", Some(1)));
    let up = answer.upstream.unwrap();
    assert!(up.reachable, "{up:?}");
    assert_eq!(up.answered_by.as_deref(), Some("db g1"));

    // Move the database: a new copy, then traffic, then the old copy goes.
    let db2 = local
        .deploy(&demo("db", 2, None, &endpoints))
        .await
        .unwrap();
    let db2_at = healthy(&local, &db2).await;
    cutover
        .switch(&switch("db", Some(&db1_at), &db2_at, 2))
        .await
        .unwrap();
    local.retire(&db1).await.unwrap();
    let up = ask(&api_at).await.upstream.unwrap();
    assert_eq!(up.answered_by.as_deref(), Some("db g2"), "{up:?}");

    // With the database gone entirely, the api degrades but stays healthy.
    local.retire(&db2).await.unwrap();
    let up = ask(&api_at).await.upstream.unwrap();
    assert!(!up.reachable && up.error.is_some(), "{up:?}");
    assert!(matches!(
        local.inspect(&api).await.unwrap(),
        DeploymentState::Healthy { .. }
    ));
    local.retire(&api).await.unwrap();
    assert!(
        local
            .list_managed(Some(&lifeboat_provider::Owner::installation("test")))
            .await
            .unwrap()
            .is_empty()
    );
}
