//! Cold standby through a real Redfish service (sushy-tools' emulator, TLS, basic auth)
//! in front of a real sshd host.

mod common;

use anyhow::Result;
use common::*;
use lifeboat_provider::{DeploymentState, ErrorClass, Provider};
use lifeboat_provider_bare_metal::{BareMetalProvider, Standby};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_powered_off_host_is_powered_on_to_deploy_and_off_again_after_retire() -> Result<()> {
    let emulator = Emulator::start("Off")?;
    // The host is off: its sshd comes up only once lifeboat has powered it on.
    let mut host = SshHost::prepare()?;
    let mut h = host.host_config("standby-1");
    h.bmc = Some(emulator.bmc_config());
    let p = BareMetalProvider::new("own-hardware", config(vec![h], Standby::PowerOff))?;

    // A probe sees the standby host as usable (it can be powered on) and leaves it off.
    let report = p.probe().await?;
    assert_eq!(report.degraded, None);
    assert_eq!(emulator.power_state().await?, "Off");

    let port = lifeboat_testkit::free_port();
    let p = std::sync::Arc::new(p);
    let deploying = tokio::spawn({
        let p = p.clone();
        async move { p.deploy(&http_workload("api", port, 1)).await }
    });
    // While deploy waits for the hardware, inspect says so.
    let owner = lifeboat_provider::Owner::installation(INSTALLATION);
    let expected = lifeboat_provider::DeploymentRef {
        workload: "api".into(),
        generation: lifeboat_provider::Generation(1),
        handle: format!("api-g1-{}@standby-1", owner.discriminator()),
        endpoint: None,
        owner: Some(owner),
    };
    let pending = loop {
        // Before the power-on starts, the host is off and the copy not there yet.
        if let Ok(DeploymentState::Pending { detail }) = p.inspect(&expected).await {
            break detail;
        }
        assert!(
            !deploying.is_finished(),
            "deploy ended before the host booted: {:?}",
            deploying.await
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(pending.contains("powering on host standby-1"), "{pending}");
    // The host "boots": deploy, which waits for SSH, goes on.
    host.launch()?;
    let dep = deploying.await??;
    assert_eq!(dep.handle, expected.handle);
    // deploy powered the host on and waited for it before starting the workload.
    assert_eq!(emulator.power_state().await?, "On");
    let waits = p.power_on_waits();
    eprintln!("power-on waits: {waits:?}");
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0].host, "standby-1");
    assert_eq!(waits[0].workload, "api");
    assert!(p.power_on_wait(&dep).is_some());
    // The controller sees the same wait through the contract.
    let timings = p.timings(&dep);
    assert_eq!(timings.len(), 1, "{timings:?}");
    assert_eq!(timings[0].phase, lifeboat_provider_bare_metal::POWER_ON);
    assert_eq!(Some(timings[0].duration), p.power_on_wait(&dep));
    assert!(host.state_dir.join(".powered-on-by-lifeboat").exists());
    wait_healthy(p.as_ref(), &dep).await?;

    // A second deploy of the same copy finds it: no second power-on, no second process.
    assert_eq!(p.deploy(&http_workload("api", port, 1)).await?, dep);
    assert_eq!(p.power_on_waits().len(), 1);
    assert_eq!(host.leftover_pids().len(), 1);

    p.retire(&dep).await?;
    assert!(host.leftover_pids().is_empty());
    emulator.wait_power("Off").await?;
    assert!(!host.state_dir.join(".powered-on-by-lifeboat").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_lifeboat_did_not_power_on_stay_on_after_retire() -> Result<()> {
    let emulator = Emulator::start("On")?;
    let host = SshHost::start()?;
    let mut h = host.host_config("always-on");
    h.bmc = Some(emulator.bmc_config());
    let p = BareMetalProvider::new("own-hardware", config(vec![h], Standby::PowerOff))?;

    let dep = p
        .deploy(&http_workload("api", lifeboat_testkit::free_port(), 1))
        .await?;
    assert!(p.power_on_waits().is_empty());
    assert!(p.timings(&dep).is_empty());
    wait_healthy(&p, &dep).await?;
    p.retire(&dep).await?;
    assert!(host.leftover_pids().is_empty());
    assert_eq!(emulator.power_state().await?, "On");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_bmc_password_is_credentials_rejected() -> Result<()> {
    let emulator = Emulator::start("Off")?;
    let host = SshHost::start()?;
    let wrong = host.files.path().join("wrong-password");
    std::fs::write(&wrong, "not-the-password\n")?;
    let mut bmc = emulator.bmc_config();
    bmc.credentials.password_file = Some(wrong);
    let mut h = host.host_config("standby-1");
    h.bmc = Some(bmc);
    let p = BareMetalProvider::new("own-hardware", config(vec![h], Standby::PowerOff))?;

    let e = p.probe().await.expect_err("the BMC refuses the login");
    assert_eq!(e.class, ErrorClass::CredentialsRejected, "{e}");
    assert_eq!(e.code.as_deref(), Some("HTTP 401"));
    assert!(
        !e.to_string().contains("not-the-password"),
        "no secret in errors: {e}"
    );
    let e = p
        .deploy(&http_workload("api", 8080, 1))
        .await
        .expect_err("cannot power on");
    assert_eq!(e.class, ErrorClass::CredentialsRejected, "{e}");
    assert_eq!(emulator.power_state().await?, "Off");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_bmc_certificate_is_refused_unless_insecure_is_explicit() -> Result<()> {
    let emulator = Emulator::start("On")?;
    let host = SshHost::start()?;
    let mut bmc = emulator.bmc_config();
    bmc.ca_file = None;
    let mut h = host.host_config("n1");
    h.bmc = Some(bmc.clone());
    let p = BareMetalProvider::new("own-hardware", config(vec![h.clone()], Standby::Keep))?;
    let e = p
        .probe()
        .await
        .expect_err("self-signed certificate, no CA given");
    assert!(e.class.is_unreachable(), "{e}");

    bmc.insecure = true;
    h.bmc = Some(bmc);
    let p = BareMetalProvider::new("own-hardware", config(vec![h], Standby::Keep))?;
    p.probe().await?;
    assert!(matches!(
        p.inspect(&lifeboat_provider::DeploymentRef {
            workload: "nothing".into(),
            generation: lifeboat_provider::Generation(1),
            handle: "n1".into(),
            endpoint: None,
            owner: Some(lifeboat_provider::Owner::installation(INSTALLATION)),
        })
        .await?,
        DeploymentState::Gone
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bmc_that_never_answers_is_a_timeout_and_one_that_refuses_is_unavailable() -> Result<()> {
    let emulator = Emulator::start("Off")?;
    let host = SshHost::start()?;
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let mut bmc = emulator.bmc_config();
    bmc.url = format!("https://{}", silent.local_addr()?);
    let mut h = host.host_config("standby-1");
    h.bmc = Some(bmc.clone());
    let mut c = config(vec![h.clone()], Standby::Keep);
    c.timeouts.connect = std::time::Duration::from_secs(1);
    let p = BareMetalProvider::new("own-hardware", c.clone())?;
    let e = p.probe().await.expect_err("the BMC never answers");
    assert_eq!(e.class, ErrorClass::Timeout, "{e}");

    drop(silent);
    bmc.url = format!("https://127.0.0.1:{}", lifeboat_testkit::free_port());
    c.hosts[0].bmc = Some(bmc);
    let p = BareMetalProvider::new("own-hardware", c)?;
    let e = p.probe().await.expect_err("nothing listens");
    assert_eq!(e.class, ErrorClass::Unavailable, "{e}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retiring_a_drills_copy_leaves_production_and_its_standby_host_running() -> Result<()> {
    let emulator = Emulator::start("Off")?;
    let host = PoweredHost::start(&emulator, SshHost::prepare()?)?;
    let mut h = host.host_config("standby-1");
    h.bmc = Some(emulator.bmc_config());
    let p = BareMetalProvider::new("own-hardware", config(vec![h], Standby::PowerOff))?;
    // Copies that bind nothing, so production's and the drill's share the host.
    let mut prod = http_workload("api", lifeboat_testkit::free_port(), 1);
    prod.workload.run = lifeboat_provider::Run::Command {
        command: vec!["sleep".into(), "600".into()],
    };
    prod.workload.port = None;
    prod.workload.health = None;
    let drill = lifeboat_provider::DeployRequest {
        owner: lifeboat_provider::Owner::drill(INSTALLATION, "d1"),
        ..prod.clone()
    };

    // Production's deploy wakes the host; the drill's finds it on.
    let prod_dep = p.deploy(&prod).await?;
    let drill_dep = p.deploy(&drill).await?;
    assert_ne!(prod_dep, drill_dep);
    assert_eq!(host.leftover_pids().len(), 2);
    assert_eq!(p.timings(&prod_dep).len(), 1);
    assert!(
        p.timings(&drill_dep).is_empty(),
        "the drill did not wait for the hardware: production's wait is not its"
    );

    p.retire(&drill_dep).await?;
    assert_eq!(p.inspect(&drill_dep).await?, DeploymentState::Gone);
    assert!(matches!(
        p.inspect(&prod_dep).await?,
        DeploymentState::Healthy { .. }
    ));
    assert_eq!(host.leftover_pids().len(), 1);
    assert_eq!(
        emulator.power_state().await?,
        "On",
        "the host still runs production's copy"
    );

    p.retire(&prod_dep).await?;
    emulator.wait_power("Off").await?;
    assert!(p.list_managed(Some(&prod.owner)).await?.is_empty());
    Ok(())
}
