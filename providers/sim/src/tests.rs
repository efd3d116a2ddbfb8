use std::collections::BTreeMap;
use std::time::Duration;

use lifeboat_provider::{
    DeployRequest, DeploymentState, ErrorClass, Generation, Op, Owner, Provider, Resources, Run,
    WorkloadSpec,
};

use crate::{FaultSpec, SimConfig, SimProvider};

fn request(name: &str, generation: u64, replicas: u32) -> DeployRequest {
    DeployRequest {
        workload: WorkloadSpec {
            name: name.into(),
            run: Run::Command {
                command: vec!["serve".into()],
            },
            env: BTreeMap::new(),
            port: Some(8080),
            resources: Resources::default(),
            replicas,
            health: None,
            extra: BTreeMap::new(),
        },
        generation: Generation(generation),
        owner: owner(),
    }
}

fn owner() -> Owner {
    Owner::installation("test")
}

#[tokio::test(start_paused = true)]
async fn deploy_is_idempotent_on_workload_and_generation() {
    let sim = SimProvider::new("p", SimConfig::default());
    let a = sim.deploy(&request("api", 1, 1)).await.unwrap();
    let b = sim.deploy(&request("api", 1, 1)).await.unwrap();
    assert_eq!(a, b);
    let c = sim.deploy(&request("api", 2, 1)).await.unwrap();
    assert_ne!(a.handle, c.handle);
    assert_eq!(sim.list_managed(Some(&owner())).await.unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn becomes_healthy_after_the_configured_time_and_gone_after_retire() {
    let config = SimConfig {
        healthy_after: Duration::from_secs(2),
        ..SimConfig::default()
    };
    let sim = SimProvider::new("p", config);
    let dep = sim.deploy(&request("api", 1, 1)).await.unwrap();
    assert!(matches!(
        sim.inspect(&dep).await.unwrap(),
        DeploymentState::Pending { .. }
    ));
    tokio::time::advance(Duration::from_secs(2)).await;
    let DeploymentState::Healthy { endpoint } = sim.inspect(&dep).await.unwrap() else {
        panic!("expected healthy");
    };
    assert_eq!(endpoint.port, 8080);
    sim.retire(&dep).await.unwrap();
    sim.retire(&dep).await.unwrap();
    assert_eq!(sim.inspect(&dep).await.unwrap(), DeploymentState::Gone);
    assert!(sim.list_managed(Some(&owner())).await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn refuses_what_does_not_fit() {
    let config = SimConfig {
        capacity: Some(3),
        ..SimConfig::default()
    };
    let sim = SimProvider::new("p", config);
    let a = sim.deploy(&request("a", 1, 2)).await.unwrap();
    let err = sim.deploy(&request("b", 1, 2)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CapacityExhausted);
    let probe = sim.probe().await.unwrap();
    assert_eq!(probe.capacity.unwrap().replicas, Some(1));
    sim.retire(&a).await.unwrap();
    sim.deploy(&request("b", 1, 2)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn scheduled_faults_follow_their_window() {
    let config = SimConfig {
        faults: vec![FaultSpec {
            from: Duration::from_secs(5),
            until: Some(Duration::from_secs(20)),
            class: ErrorClass::AccountSuspended,
            ops: vec![Op::Probe, Op::Deploy],
        }],
        ..SimConfig::default()
    };
    let sim = SimProvider::new("p", config);
    assert!(sim.probe().await.is_ok());
    tokio::time::advance(Duration::from_secs(5)).await;
    let err = sim.probe().await.unwrap_err();
    assert_eq!(
        (err.class, err.op),
        (ErrorClass::AccountSuspended, Op::Probe)
    );
    assert!(sim.deploy(&request("a", 1, 1)).await.is_err());
    assert!(
        sim.list_managed(Some(&owner())).await.is_ok(),
        "list-managed is not affected"
    );
    tokio::time::advance(Duration::from_secs(15)).await;
    assert!(sim.probe().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn the_handle_switches_faults_at_run_time() {
    let sim = SimProvider::new("p", SimConfig::default());
    let handle = sim.handle();
    handle.set_fault(ErrorClass::CredentialsRejected, &[]);
    assert_eq!(
        sim.probe().await.unwrap_err().class,
        ErrorClass::CredentialsRejected
    );
    handle.clear_faults();
    assert!(sim.probe().await.is_ok());

    handle.fail_next(Op::Deploy, ErrorClass::Throttled, 2);
    for _ in 0..2 {
        let err = sim.deploy(&request("a", 1, 1)).await.unwrap_err();
        assert_eq!(err.class, ErrorClass::Throttled);
    }
    sim.deploy(&request("a", 1, 1)).await.unwrap();
    assert_eq!(handle.calls(Op::Deploy), 3);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_fault_hangs_until_the_caller_gives_up() {
    let sim = SimProvider::new("p", SimConfig::default());
    sim.handle().set_fault(ErrorClass::Timeout, &[Op::Probe]);
    let outcome = tokio::time::timeout(Duration::from_secs(5), sim.probe()).await;
    assert!(outcome.is_err(), "the probe must not answer");
}

#[tokio::test(start_paused = true)]
async fn killed_copies_are_gone_and_reported_lost_once() {
    let sim = SimProvider::new("p", SimConfig::default());
    let handle = sim.handle();
    let dep = sim.deploy(&request("a", 1, 1)).await.unwrap();
    assert!(handle.kill(&dep.handle));
    assert_eq!(sim.inspect(&dep).await.unwrap(), DeploymentState::Gone);
    assert_eq!(sim.probe().await.unwrap().lost, vec![dep.clone()]);
    assert!(sim.probe().await.unwrap().lost.is_empty());

    let crashed = sim.deploy(&request("b", 1, 1)).await.unwrap();
    assert!(handle.fail(&crashed.handle, "segfault"));
    assert!(matches!(
        sim.inspect(&crashed).await.unwrap(),
        DeploymentState::Failed { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn latency_and_jitter_delay_every_call_and_deploys_are_counted_in_flight() {
    let config = SimConfig {
        latency: Duration::from_millis(100),
        jitter: Duration::from_millis(50),
        seed: Some(7),
        ..SimConfig::default()
    };
    let sim = std::sync::Arc::new(SimProvider::new("p", config));
    let start = tokio::time::Instant::now();
    sim.probe().await.unwrap();
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(100) && took <= Duration::from_millis(150));

    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let sim = sim.clone();
            tokio::spawn(async move { sim.deploy(&request(&format!("w{i}"), 1, 1)).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(sim.handle().max_concurrent_deploys(), 4);
}

#[tokio::test]
async fn conformance() {
    let sim = SimProvider::new("p", SimConfig::default());
    let fixture = lifeboat_provider::conformance::Fixture {
        healthy_within: Some(Duration::from_secs(1)),
        invalid: None,
        ..lifeboat_provider::conformance::Fixture::new(request("api", 1, 1).workload, "test")
    };
    let report = lifeboat_provider::conformance::run(&sim, &fixture).await;
    assert!(report.passed(), "{report}");
}
