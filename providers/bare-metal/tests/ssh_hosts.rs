//! The bare-metal adapter against real sshd "hosts": deploy, reach, redeploy, retire,
//! spread, and the SSH failure classes.

mod common;

use std::net::TcpStream;

use anyhow::Result;
use common::*;
use lifeboat_provider::{DeploymentState, ErrorClass, Provider};
use lifeboat_provider_bare_metal::{BareMetalProvider, Standby};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_is_deployed_reached_kept_single_and_retired() -> Result<()> {
    let host = SshHost::start()?;
    let p = BareMetalProvider::new(
        "rack",
        config(vec![host.host_config("node-a")], Standby::Keep),
    )?;
    let port = lifeboat_testkit::free_port();
    let req = http_workload("web", port, 1);

    let dep = p.deploy(&req).await?;
    // The copy's folder (workload, generation, owner) at the hosts that run it.
    assert_eq!(
        dep.handle,
        format!("web-g1-{}@node-a", req.owner.discriminator())
    );
    assert_eq!(dep.endpoint.as_ref().map(|e| e.port), Some(port));
    let DeploymentState::Healthy { endpoint } = wait_healthy(&p, &dep).await? else {
        unreachable!()
    };

    // Reach it as a client would.
    let body = reqwest::get(format!("http://{endpoint}/"))
        .await?
        .error_for_status()?
        .text()
        .await?;
    assert!(body.contains("Directory listing"), "{body}");

    // A repeated deploy finds the running copy instead of starting another.
    let first = host.leftover_pids();
    assert_eq!(first.len(), 1);
    let again = p.deploy(&req).await?;
    assert_eq!(again, dep);
    assert_eq!(host.leftover_pids(), first);
    let managed = p.list_managed(Some(&req.owner)).await?;
    assert_eq!(managed, vec![dep.clone()]);
    assert_eq!(dep.owner.as_ref(), Some(&req.owner));

    // The generation and PORT reached the process.
    let environ = std::fs::read(format!("/proc/{}/environ", first[0]))?;
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("LIFEBOAT_GENERATION=1"), "{environ}");
    assert!(environ.contains(&format!("PORT={port}")));
    assert!(environ.contains("APP_MODE=test"));

    p.retire(&dep).await?;
    assert_eq!(p.inspect(&dep).await?, DeploymentState::Gone);
    assert!(host.leftover_pids().is_empty());
    assert!(!alive(first[0]), "the workload process is stopped");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing serves on the port any more"
    );
    assert!(p.list_managed(Some(&req.owner)).await?.is_empty());
    // Retiring again is fine.
    p.retire(&dep).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_spread_over_hosts_and_probe_reports_free_room() -> Result<()> {
    let a = SshHost::start()?;
    let b = SshHost::start()?;
    let p = BareMetalProvider::new(
        "rack",
        config(
            vec![a.host_config("node-a"), b.host_config("node-b")],
            Standby::Keep,
        ),
    )?;
    // Two copies on one port need two hosts; both "hosts" share 127.0.0.1 here, so the
    // copies use a command that does not bind.
    let mut req = http_workload("batch", lifeboat_testkit::free_port(), 2);
    req.workload.run = lifeboat_provider::Run::Command {
        command: vec!["sleep".into(), "600".into()],
    };
    req.workload.health = None;

    let dep = p.deploy(&req).await?;
    assert!(dep.handle.ends_with("@node-a,node-b"), "{}", dep.handle);
    assert_eq!(a.leftover_pids().len(), 1);
    assert_eq!(b.leftover_pids().len(), 1);
    // No health check of its own: live copies are healthy.
    assert!(matches!(
        p.inspect(&dep).await?,
        DeploymentState::Healthy { .. }
    ));

    let report = p.probe().await?;
    assert_eq!(report.degraded, None);
    let capacity = report.capacity.expect("hosts have slots");
    assert_eq!(
        capacity.replicas,
        Some(6),
        "4 slots per host, one used on each"
    );

    // A copy that dies on its own is reported lost and fails the deployment.
    let pid = a.leftover_pids()[0];
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()?;
    let mut report = p.probe().await?;
    for _ in 0..50 {
        if !report.lost.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        report = p.probe().await?;
    }
    assert_eq!(report.lost.len(), 1);
    assert!(matches!(
        p.inspect(&dep).await?,
        DeploymentState::Failed { .. }
    ));

    p.retire(&dep).await?;
    assert!(a.leftover_pids().is_empty() && b.leftover_pids().is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_ssh_key_is_credentials_rejected() -> Result<()> {
    let host = SshHost::start()?;
    let other = host.files.path().join("stranger");
    keygen(&other)?;
    let mut h = host.host_config("node-a");
    h.key_file = Some(other);
    let p = BareMetalProvider::new("rack", config(vec![h], Standby::Keep))?;

    let e = p.probe().await.expect_err("a key sshd does not know");
    assert_eq!(e.class, ErrorClass::CredentialsRejected, "{e}");
    assert_eq!(e.code.as_deref(), Some("ssh-auth-rejected"));
    let e = p
        .deploy(&http_workload("web", 8080, 1))
        .await
        .expect_err("cannot deploy");
    assert_eq!(e.class, ErrorClass::CredentialsRejected, "{e}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_host_key_is_refused_unless_trusted_on_first_use() -> Result<()> {
    let host = SshHost::start()?;
    let empty = host.files.path().join("empty_known_hosts");
    std::fs::write(&empty, "")?;
    let mut h = host.host_config("node-a");
    h.host_key.known_hosts = empty.clone();
    let strict = BareMetalProvider::new("rack", config(vec![h.clone()], Standby::Keep))?;
    let e = strict.probe().await.expect_err("unknown host key");
    assert_eq!(e.class, ErrorClass::PermissionDenied, "{e}");
    assert_eq!(e.code.as_deref(), Some("ssh-host-key-unknown"));

    h.host_key.trust_on_first_use = true;
    let tofu = BareMetalProvider::new("rack", config(vec![h.clone()], Standby::Keep))?;
    tofu.probe().await?;
    let learned = std::fs::read_to_string(&empty)?;
    assert!(
        learned.contains("ssh-ed25519"),
        "the key was recorded: {learned}"
    );
    // Once recorded, the strict policy accepts the host too.
    strict.probe().await?;

    // A different key for the same host is refused even with trust-on-first-use.
    let impostor = host.files.path().join("impostor");
    keygen(&impostor)?;
    let impostor_pub = std::fs::read_to_string(impostor.with_extension("pub"))?;
    let mut fields = impostor_pub.split_whitespace();
    let line = format!(
        "[127.0.0.1]:{} {} {}\n",
        host.port,
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default()
    );
    std::fs::write(&empty, line)?;
    let e = tofu.probe().await.expect_err("changed host key");
    assert_eq!(e.class, ErrorClass::PermissionDenied, "{e}");
    assert_eq!(e.code.as_deref(), Some("ssh-host-key-changed"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_refuses_connections_is_unavailable() -> Result<()> {
    let host = SshHost::start()?;
    let mut h = host.host_config("node-a");
    h.ssh = format!("127.0.0.1:{}", lifeboat_testkit::free_port());
    let p = BareMetalProvider::new("rack", config(vec![h], Standby::Keep))?;
    let e = p.probe().await.expect_err("nothing listens");
    assert_eq!(e.class, ErrorClass::Unavailable, "{e}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_never_answers_is_a_timeout() -> Result<()> {
    let host = SshHost::start()?;
    // The kernel completes the TCP handshake for the backlog, but nothing ever speaks.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let mut h = host.host_config("node-a");
    h.ssh = silent.local_addr()?.to_string();
    let mut c = config(vec![h], Standby::Keep);
    c.timeouts.connect = std::time::Duration::from_secs(1);
    let p = BareMetalProvider::new("rack", c)?;
    let e = p.probe().await.expect_err("no SSH banner");
    assert_eq!(e.class, ErrorClass::Timeout, "{e}");
    assert_eq!(e.code.as_deref(), Some("ssh-timeout"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_never_take_the_same_last_slot() -> Result<()> {
    let a = SshHost::start()?;
    let b = SshHost::start()?;
    let mut ha = a.host_config("node-a");
    let mut hb = b.host_config("node-b");
    ha.capacity.slots = Some(1);
    hb.capacity.slots = Some(1);
    let p = BareMetalProvider::new("rack", config(vec![ha, hb], Standby::Keep))?;
    let one = http_workload("one", lifeboat_testkit::free_port(), 1);
    let two = http_workload("two", lifeboat_testkit::free_port(), 1);

    // Both surveys would see two empty hosts; the second must count the first's choice.
    let (d1, d2) = tokio::join!(p.deploy(&one), p.deploy(&two));
    let mut hosts: Vec<String> = [d1?, d2?]
        .iter()
        .filter_map(|d| d.handle.split_once('@').map(|(_, h)| h.to_owned()))
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["node-a", "node-b"]);
    assert_eq!(a.leftover_pids().len(), 1);
    assert_eq!(b.leftover_pids().len(), 1);
    Ok(())
}
