//! The adapter against moto's real EC2 API: deploy → inspect → list_managed → retire,
//! idempotent deploys, pagination, capacity and instances lost behind lifeboat's back.

mod common;

use anyhow::Result;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use common::{Moto, REGION, moto_provider, request};
use lifeboat_provider::{DeploymentState, ErrorClass, HealthCheck, Provider, labels};

/// A plain SDK client on moto, playing AWS (or a human) acting without lifeboat.
async fn outsider(moto: &Moto) -> aws_sdk_ec2::Client {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(moto.url())
        .credentials_provider(Credentials::new("AKIDOTHER", "other", None, None, "tests"))
        .load()
        .await;
    aws_sdk_ec2::Client::new(&sdk)
}

async fn instance_tags(client: &aws_sdk_ec2::Client, id: &str) -> Result<Vec<(String, String)>> {
    let out = client.describe_instances().instance_ids(id).send().await?;
    let instance = &out.reservations()[0].instances()[0];
    Ok(instance
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

#[tokio::test]
async fn deploy_inspect_list_retire() -> Result<()> {
    let (moto, ec2) = moto_provider().await?;
    let mut req = request("api", 3);
    req.workload.health = Some(HealthCheck::Http {
        path: "/healthz".into(),
    });

    let dep = ec2.deploy(&req).await?;
    assert_eq!((dep.workload.as_str(), dep.generation.0), ("api", 3));
    assert!(dep.handle.starts_with("i-"), "{}", dep.handle);
    let endpoint = dep
        .endpoint
        .clone()
        .expect("moto gives instances a private address");
    assert_eq!(endpoint.port, 8000);

    // Tags and user data are what EC2 really stored.
    let tags = instance_tags(&outsider(&moto).await, &dep.handle).await?;
    for (key, value) in [
        (labels::WORKLOAD, "api"),
        (labels::GENERATION, "3"),
        (labels::MANAGED, "true"),
        ("lifeboat.dev/health", "http:/healthz"),
        ("lifeboat.dev/port", "8000"),
    ] {
        assert!(
            tags.contains(&(key.into(), value.into())),
            "{key} missing in {tags:?}"
        );
    }
    let attribute = outsider(&moto)
        .await
        .describe_instance_attribute()
        .instance_id(&dep.handle)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await?;
    let encoded = attribute
        .user_data()
        .and_then(|u| u.value())
        .unwrap_or_default();
    let user_data = String::from_utf8(aws_smithy_types::base64::decode(encoded)?)?;
    assert!(user_data.contains("LIFEBOAT_GENERATION=3"), "{user_data}");
    assert!(user_data.contains("'http.server'"), "{user_data}");

    // moto's instances run at once, but their address is not reachable from here, so
    // the workload's own check keeps them at Running.
    let state = ec2.inspect(&dep).await?;
    assert_eq!(
        state,
        DeploymentState::Running {
            endpoint: Some(endpoint.clone())
        }
    );

    let managed = ec2.list_managed().await?;
    assert_eq!(managed, vec![dep.clone()]);

    ec2.retire(&dep).await?;
    assert_eq!(ec2.inspect(&dep).await?, DeploymentState::Gone);
    assert!(ec2.list_managed().await?.is_empty());
    // Retiring again, or something EC2 never knew, is still success.
    ec2.retire(&dep).await?;
    let mut unknown = dep.clone();
    unknown.handle = "i-0123456789abcdef0".into();
    ec2.retire(&unknown).await?;
    assert_eq!(ec2.inspect(&unknown).await?, DeploymentState::Gone);
    // Our own retirement is not reported as lost.
    assert!(ec2.probe().await?.lost.is_empty());
    Ok(())
}

#[tokio::test]
async fn without_a_health_check_ec2_status_checks_make_it_healthy() -> Result<()> {
    let (_moto, ec2) = moto_provider().await?;
    let dep = ec2.deploy(&request("worker", 1)).await?;
    match ec2.inspect(&dep).await? {
        DeploymentState::Healthy { endpoint } => assert_eq!(Some(endpoint), dep.endpoint),
        other => panic!("expected healthy, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn repeated_deploys_of_one_generation_leave_one_instance() -> Result<()> {
    let (_moto, ec2) = moto_provider().await?;
    let first = ec2.deploy(&request("api", 5)).await?;
    let again = ec2.deploy(&request("api", 5)).await?;
    assert_eq!(first, again);
    // Two racing calls converge inside EC2 through the ClientToken; moto ignores
    // ClientToken, so only sequential repeats (the tag lookup) are provable here.
    // A new generation is a new instance.
    let next = ec2.deploy(&request("api", 6)).await?;
    assert_ne!(next.handle, first.handle);
    let mut generations: Vec<u64> = ec2
        .list_managed()
        .await?
        .iter()
        .map(|d| d.generation.0)
        .collect();
    generations.sort();
    assert_eq!(generations, [5, 6]);
    Ok(())
}

#[tokio::test]
async fn listing_follows_every_page() -> Result<()> {
    let (moto, ec2) = moto_provider().await?;
    let ec2 = ec2.with_page_size(5);
    let mut handles = Vec::new();
    for generation in 1..=12 {
        handles.push(ec2.deploy(&request("many", generation)).await?.handle);
    }
    // Instances lifeboat does not manage are not listed.
    outsider(&moto)
        .await
        .run_instances()
        .image_id(common::AMI)
        .min_count(3)
        .max_count(3)
        .send()
        .await?;
    let mut listed: Vec<String> = ec2
        .list_managed()
        .await?
        .into_iter()
        .map(|d| d.handle)
        .collect();
    listed.sort();
    handles.sort();
    assert_eq!(listed, handles);
    Ok(())
}

#[tokio::test]
async fn probe_reports_capacity_and_instances_lost_behind_our_back() -> Result<()> {
    let (moto, ec2) = moto_provider().await?;
    let report = ec2.probe().await?;
    // moto's account allows 20 instances.
    assert_eq!(report.capacity.and_then(|c| c.replicas), Some(20));

    let kept = ec2.deploy(&request("kept", 1)).await?;
    let terminated = ec2.deploy(&request("terminated", 1)).await?;
    let stopped = ec2.deploy(&request("stopped", 1)).await?;
    let retired = ec2.deploy(&request("retired", 1)).await?;
    ec2.retire(&retired).await?;
    let aws = outsider(&moto).await;
    aws.terminate_instances()
        .instance_ids(&terminated.handle)
        .send()
        .await?;
    aws.stop_instances()
        .instance_ids(&stopped.handle)
        .send()
        .await?;

    let report = ec2.probe().await?;
    let mut lost: Vec<&str> = report.lost.iter().map(|d| d.workload.as_str()).collect();
    lost.sort();
    assert_eq!(lost, ["stopped", "terminated"]);
    assert_eq!(
        report.capacity.and_then(|c| c.replicas),
        Some(19),
        "only `kept` runs"
    );
    assert!(matches!(
        ec2.inspect(&stopped).await?,
        DeploymentState::Failed { .. }
    ));
    assert!(matches!(
        ec2.inspect(&kept).await?,
        DeploymentState::Healthy { .. }
    ));

    // A configured limit wins over the account's.
    let mut config = common::config(&moto.url());
    config.max_instances = Some(4);
    let limited = common::provider(config, "AKIDTEST", "test-secret").await?;
    assert_eq!(
        limited.probe().await?.capacity.and_then(|c| c.replicas),
        Some(3)
    );
    Ok(())
}

#[tokio::test]
async fn unrunnable_workloads_are_invalid_requests() -> Result<()> {
    let (moto, ec2) = moto_provider().await?;
    let mut req = request("api", 1);
    req.workload.replicas = 2;
    assert_eq!(
        ec2.deploy(&req).await.unwrap_err().class,
        ErrorClass::InvalidRequest
    );
    let mut req = request("api", 1);
    req.workload.env.insert("BAD-NAME".into(), "x".into());
    assert_eq!(
        ec2.deploy(&req).await.unwrap_err().class,
        ErrorClass::InvalidRequest
    );
    assert!(ec2.list_managed().await?.is_empty(), "nothing was launched");
    // EC2's own refusal (a subnet that does not exist), classified from its code.
    let mut config = common::config(&moto.url());
    config.subnet_id = Some("subnet-nope".into());
    let misconfigured = common::provider(config, "AKIDTEST", "test-secret").await?;
    let err = misconfigured.deploy(&request("api", 1)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidRequest, "{err}");
    assert_eq!(err.code.as_deref(), Some("InvalidSubnetID.NotFound"));
    Ok(())
}
