//! Real peers for the aws-ec2 tests: moto's EC2 server, and mitmproxy with
//! `tests/peers/faults.py` in front of it. Both bind 127.0.0.1 on ports picked here and
//! are killed when dropped.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use lifeboat_provider::{DeployRequest, Generation, Provider, Resources, Run, WorkloadSpec};
use lifeboat_provider_aws_ec2::{Ec2Config, Ec2Provider};
use lifeboat_testkit::{Peer, free_port, repo_root, venv_bin};

pub const REGION: &str = "us-east-1";
/// An AMI moto knows.
pub const AMI: &str = "ami-12c6146b";
const START: Duration = Duration::from_secs(60);

/// A blocking `GET path` on 127.0.0.1:port; true on any 2xx answer.
pub fn get_ok(port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && head[9] == b'2'
}

/// moto's server, one per test.
pub struct Moto {
    pub peer: Peer,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Result<Moto> {
        let port = free_port();
        let dir = Peer::prepare_dir()?;
        let mut command = Command::new(venv_bin("moto_server")?);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let mut peer = Peer::start("moto_server", dir, command)?;
        peer.wait_until(START, || get_ok(port, "/moto-api/"))?;
        Ok(Moto { peer, port })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Switches moto's IAM checks on: from now on unknown access keys get `AuthFailure`.
    pub async fn enforce_auth(&self) -> Result<()> {
        let response = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.url()))
            .header("Content-Type", "text/plain")
            .body("0")
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("moto reset-auth answered {}", response.status());
        }
        Ok(())
    }
}

/// mitmproxy in reverse mode in front of `upstream`, with the project's fault addon.
pub struct Proxy {
    pub peer: Peer,
    pub port: u16,
}

impl Proxy {
    pub fn start(upstream: u16) -> Result<Proxy> {
        let port = free_port();
        let dir = Peer::prepare_dir()?;
        let confdir = dir.path().join("mitm");
        let addon = repo_root().join("tests/peers/faults.py");
        let mut command = Command::new(venv_bin("mitmdump")?);
        command
            .args([
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                &port.to_string(),
            ])
            .args(["--mode", &format!("reverse:http://127.0.0.1:{upstream}")])
            .args(["--set", &format!("confdir={}", confdir.display())])
            .args(["--set", "keep_host_header=true"])
            .arg("-s")
            .arg(addon);
        let mut peer = Peer::start("mitmdump", dir, command)?;
        peer.wait_until(START, || get_ok(port, "/__fault"))?;
        Ok(Proxy { peer, port })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Switches the fault (`{"mode": "none"}` forwards untouched again).
    pub async fn set(&self, fault: serde_json::Value) -> Result<()> {
        reqwest::Client::new()
            .post(format!("{}/__fault", self.url()))
            .json(&fault)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// How many requests the current fault has touched.
    pub async fn hits(&self) -> Result<u64> {
        let state: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/__fault", self.url()))
            .send()
            .await?
            .json()
            .await?;
        state["hits"].as_u64().context("no hits in the fault state")
    }
}

/// A provider config for an endpoint, with short timeouts and few attempts so fault
/// tests end quickly; each of the 2 attempts still gets 3 s, room enough for moto behind
/// mitmproxy on a busy machine.
pub fn config(endpoint: &str) -> Ec2Config {
    let mut config = Ec2Config::new(REGION, AMI, "t3.micro");
    config.endpoint_url = Some(endpoint.to_owned());
    config.max_attempts = Some(2);
    config.operation_timeout = Some(Duration::from_secs(6));
    config.connect_timeout = Some(Duration::from_secs(2));
    config.health_timeout = Some(Duration::from_millis(300));
    config
}

/// A provider with fixed test credentials (moto accepts any until IAM is switched on).
pub async fn provider(config: Ec2Config, access_key: &str, secret: &str) -> Result<Ec2Provider> {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(access_key, secret, None, None, "tests"))
        .load()
        .await;
    Ok(Ec2Provider::with_sdk_config("ec2-test", config, &sdk)?)
}

/// A ready provider against a fresh moto, warmed up (moto's first EC2 call is slow).
pub async fn moto_provider() -> Result<(Moto, Ec2Provider)> {
    let moto = Moto::start()?;
    let mut config = config(&moto.url());
    // The first call loads moto's EC2 backend (~2 s): give it room once.
    config.operation_timeout = Some(Duration::from_secs(30));
    let warm = provider(config.clone(), "AKIDTEST", "test-secret").await?;
    warm.probe().await.context("warming moto up")?;
    config.operation_timeout = Some(Duration::from_secs(10));
    Ok((moto, provider(config, "AKIDTEST", "test-secret").await?))
}

/// A deploy request for a small command workload.
pub fn request(name: &str, generation: u64) -> DeployRequest {
    DeployRequest {
        workload: WorkloadSpec {
            name: name.into(),
            run: Run::Command {
                command: vec!["/usr/bin/python3".into(), "-m".into(), "http.server".into()],
            },
            env: BTreeMap::from([("MODE".into(), "test".into())]),
            port: Some(8000),
            resources: Resources::default(),
            replicas: 1,
            health: None,
            extra: BTreeMap::new(),
        },
        generation: Generation(generation),
    }
}
