//! The contract's conformance suite against real peers: an sshd "host", and a
//! cold-standby host behind sushy-tools' Redfish emulator (where every check's deploy
//! powers the host on and every emptying retire powers it off again); plus copies made
//! before owners existed, which only the unowned listing may show.

mod common;

use std::os::unix::process::CommandExt as _;
use std::time::Duration;

use anyhow::Result;
use common::*;
use lifeboat_provider::conformance::{self, Fixture};
use lifeboat_provider::{
    DeploymentRef, DeploymentState, Generation, Owner, Provider, Run, WorkloadSpec,
};
use lifeboat_provider_bare_metal::{BareMetalProvider, Standby};

/// The suite's fixture for these peers: the HTTP workload, health really checked over
/// SSH and HTTP, and an image (which the `process` runtime cannot run) as the request
/// to refuse.
///
/// The workload has a fixed port and the peers are one host: where the suite runs two
/// copies at once (a drill's beside production's, two generations), the second one
/// cannot bind and fails. The suite only lists and retires those, so that is fine; the
/// health check runs on a copy of its own.
fn fixture(installation: &str) -> Fixture {
    let workload = http_workload("conf", lifeboat_testkit::free_port(), 1).workload;
    let mut fixture = Fixture::new(workload.clone(), installation);
    fixture.healthy_within = Some(PATIENCE);
    // The hosts are the inventory: a listing shows a change at once.
    fixture.settle = Duration::from_secs(2);
    fixture.invalid = Some(WorkloadSpec {
        run: Run::Image {
            image: "ghcr.io/acme/api:1.4".into(),
            command: vec![],
        },
        ..workload
    });
    fixture
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_conforms_against_sshd() -> Result<()> {
    let host = SshHost::start()?;
    let p = BareMetalProvider::new(
        "rack",
        config(vec![host.host_config("node-a")], Standby::Keep),
    )?;
    let report = conformance::run(&p, &fixture("conformance-sshd")).await;
    eprintln!("{report}");
    assert!(report.passed(), "conformance failed:\n{report}");
    assert!(
        host.leftover_pids().is_empty(),
        "the suite retired everything it made"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_conforms_with_a_cold_standby_host_behind_redfish() -> Result<()> {
    let emulator = Emulator::start("Off")?;
    let host = PoweredHost::start(&emulator, SshHost::prepare()?)?;
    let mut h = host.host_config("standby-1");
    h.bmc = Some(emulator.bmc_config());
    let p = BareMetalProvider::new("own-hardware", config(vec![h], Standby::PowerOff))?;

    let report = conformance::run(&p, &fixture("conformance-redfish")).await;
    eprintln!("{report}");
    eprintln!("power-on waits: {:?}", p.power_on_waits());
    assert!(report.passed(), "conformance failed:\n{report}");
    // Retiring the last copy of every check handed the host back to standby; the
    // impossible request never woke it.
    emulator.wait_power("Off").await?;
    assert!(
        !p.power_on_waits().is_empty(),
        "the checks' deploys woke the host"
    );
    assert!(
        p.power_on_waits().iter().all(|w| w.generation.0 != 907),
        "the refused request powered the host on: {:?}",
        p.power_on_waits()
    );
    Ok(())
}

/// Writes a copy the way lifeboat did before owners existed: folder `<workload>-g<N>`,
/// a `meta` line without label fields, and a live process group whose pid is recorded.
fn write_unowned_copy(
    host: &SshHost,
    workload: &str,
    generation: u64,
) -> Result<std::process::Child> {
    let dir = host.state_dir.join(format!("{workload}-g{generation}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("meta"),
        format!("{workload}\t{generation}\t0\t0\t-\t-\n"),
    )?;
    let child = std::process::Command::new("sleep")
        .arg("600")
        .process_group(0)
        .spawn()?;
    std::fs::write(dir.join("pid"), format!("{}\n", child.id()))?;
    Ok(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_made_before_owners_existed_is_listed_only_as_unowned() -> Result<()> {
    let host = SshHost::start()?;
    let p = BareMetalProvider::new(
        "rack",
        config(vec![host.host_config("node-a")], Standby::Keep),
    )?;
    let mut old = write_unowned_copy(&host, "old", 7)?;
    let pid = old.id() as i32;
    let prod = Owner::installation(INSTALLATION);
    let drill = Owner::drill(INSTALLATION, "d1");

    let unowned = p.list_managed(None).await?;
    let legacy = DeploymentRef {
        workload: "old".into(),
        generation: Generation(7),
        handle: "old-g7@node-a".into(),
        endpoint: None,
        owner: None,
    };
    assert_eq!(unowned, vec![legacy.clone()]);
    assert!(p.list_managed(Some(&prod)).await?.is_empty());
    assert!(p.list_managed(Some(&drill)).await?.is_empty());
    // An unowned record (written before owners existed) still reaches it.
    assert!(matches!(
        p.inspect(&legacy).await?,
        DeploymentState::Healthy { .. }
    ));

    // Production's deploy of the same (workload, generation) makes its own copy beside
    // it instead of adopting it.
    let mut req = http_workload("old", lifeboat_testkit::free_port(), 1);
    req.generation = Generation(7);
    req.workload.run = Run::Command {
        command: vec!["sleep".into(), "600".into()],
    };
    req.workload.port = None;
    req.workload.health = None;
    let owned = p.deploy(&req).await?;
    assert_eq!(owned.owner, Some(prod.clone()));
    assert_eq!(p.list_managed(Some(&prod)).await?, vec![owned.clone()]);
    assert_eq!(p.list_managed(None).await?, vec![legacy.clone()]);
    assert_eq!(host.leftover_pids().len(), 2);

    // A reference with an owner does not retire the unowned copy: neither the drill's
    // (which has no copy here) nor production's (which retires only its own).
    p.retire(&DeploymentRef {
        owner: Some(drill.clone()),
        ..legacy.clone()
    })
    .await?;
    assert_eq!(host.leftover_pids().len(), 2);
    p.retire(&owned).await?;
    assert!(alive(pid), "the unowned copy survived an owned retire");
    assert_eq!(host.leftover_pids(), vec![pid]);
    assert!(matches!(p.inspect(&owned).await?, DeploymentState::Gone));
    assert_eq!(p.list_managed(None).await?, vec![legacy.clone()]);

    // The installation adopts it by its unowned reference, and retires it so.
    p.retire(&legacy).await?;
    let _ = old.wait();
    assert!(!alive(pid));
    assert!(p.list_managed(None).await?.is_empty());
    assert_eq!(p.inspect(&legacy).await?, DeploymentState::Gone);
    assert!(host.leftover_pids().is_empty());
    Ok(())
}
