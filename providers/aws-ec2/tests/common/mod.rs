//! Real peers for the aws-ec2 tests: moto's EC2 server, and mitmproxy with
//! `tests/peers/faults.py` in front of it. Both bind 127.0.0.1 on ports picked here and
//! are killed when dropped.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use lifeboat_provider::{DeployRequest, Generation, Owner, Provider, Resources, Run, WorkloadSpec};
use lifeboat_provider_aws_ec2::{Ec2Config, Ec2Provider};

#[allow(unused_imports)]
pub use lifeboat_testkit::moto::{AMI, Moto, Proxy, REGION};

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

/// The installation the tests deploy as, unless a test picks another owner.
pub const INSTALLATION: &str = "test";

/// The production owner of [`INSTALLATION`].
pub fn owner() -> Owner {
    Owner::installation(INSTALLATION)
}

/// A deploy request for a small command workload, owned by [`owner`].
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
        owner: owner(),
    }
}
