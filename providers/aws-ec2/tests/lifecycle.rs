//! The adapter against moto's real EC2 API: deploy → inspect → list_managed → retire,
//! idempotent deploys, pagination, capacity, instances lost behind lifeboat's back, and
//! owners (drills, instances from before owners) kept apart.

mod common;

use anyhow::Result;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use common::{INSTALLATION, Moto, REGION, moto_provider, owner, request};
use lifeboat_provider::{
    DeployRequest, DeploymentState, ErrorClass, HealthCheck, Owner, Provider, labels,
};

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
        (labels::OWNER, INSTALLATION),
        ("lifeboat.dev/health", "http:/healthz"),
        ("lifeboat.dev/port", "8000"),
    ] {
        assert!(
            tags.contains(&(key.into(), value.into())),
            "{key} missing in {tags:?}"
        );
    }
    assert!(
        !tags.iter().any(|(k, _)| k == labels::DRILL),
        "a production copy has no drill tag: {tags:?}"
    );
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

    assert_eq!(dep.owner, Some(owner()));
    let managed = ec2.list_managed(Some(&owner())).await?;
    assert_eq!(managed, vec![dep.clone()]);
    assert!(ec2.list_managed(None).await?.is_empty(), "it has an owner");

    ec2.retire(&dep).await?;
    assert_eq!(ec2.inspect(&dep).await?, DeploymentState::Gone);
    assert!(ec2.list_managed(Some(&owner())).await?.is_empty());
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
        .list_managed(Some(&owner()))
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
        .list_managed(Some(&owner()))
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
    assert!(
        ec2.list_managed(Some(&owner())).await?.is_empty(),
        "nothing was launched"
    );
    // EC2's own refusal (a subnet that does not exist), classified from its code.
    let mut config = common::config(&moto.url());
    config.subnet_id = Some("subnet-nope".into());
    let misconfigured = common::provider(config, "AKIDTEST", "test-secret").await?;
    let err = misconfigured.deploy(&request("api", 1)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidRequest, "{err}");
    assert_eq!(err.code.as_deref(), Some("InvalidSubnetID.NotFound"));
    Ok(())
}

/// A drill's copy of (workload, generation) made first must not be what production's
/// deploy of the same (workload, generation) finds: EC2's filter on the owner tag also
/// matches the drill's instance, so this is the client-side drill check at work.
#[tokio::test]
async fn a_production_deploy_never_adopts_a_drills_copy() -> Result<()> {
    let (moto, ec2) = moto_provider().await?;
    let drill_owner = Owner::drill(INSTALLATION, "d1");
    let drill_req = DeployRequest {
        owner: drill_owner.clone(),
        ..request("api", 4)
    };
    let drill = ec2.deploy(&drill_req).await?;
    assert_eq!(drill.owner, Some(drill_owner.clone()));
    let tags = instance_tags(&outsider(&moto).await, &drill.handle).await?;
    for (key, value) in [(labels::OWNER, INSTALLATION), (labels::DRILL, "d1")] {
        assert!(
            tags.contains(&(key.into(), value.into())),
            "{key} missing in {tags:?}"
        );
    }

    let prod = ec2.deploy(&request("api", 4)).await?;
    assert_ne!(
        prod.handle, drill.handle,
        "production adopted the drill's copy"
    );
    assert_eq!(
        ec2.deploy(&drill_req).await?,
        drill,
        "the drill's deploy is idempotent"
    );
    assert_eq!(ec2.deploy(&request("api", 4)).await?, prod);
    assert_eq!(ec2.list_managed(Some(&owner())).await?, vec![prod.clone()]);
    assert_eq!(
        ec2.list_managed(Some(&drill_owner)).await?,
        vec![drill.clone()]
    );
    // Another installation on the same account sees neither.
    assert!(
        ec2.list_managed(Some(&Owner::installation("elsewhere")))
            .await?
            .is_empty()
    );

    // Production naming the drill's instance (and the other way round) neither sees nor
    // removes it.
    let forged = lifeboat_provider::DeploymentRef {
        owner: Some(owner()),
        ..drill.clone()
    };
    assert_eq!(ec2.inspect(&forged).await?, DeploymentState::Gone);
    ec2.retire(&forged).await?;
    assert!(matches!(
        ec2.inspect(&drill).await?,
        DeploymentState::Healthy { .. }
    ));
    assert!(
        !instance_tags(&outsider(&moto).await, &drill.handle)
            .await?
            .iter()
            .any(|(k, _)| k == lifeboat_provider_aws_ec2::tags::RETIRED),
        "a refused retire does not even mark the instance"
    );
    ec2.retire(&drill).await?;
    assert_eq!(ec2.inspect(&drill).await?, DeploymentState::Gone);
    assert!(matches!(
        ec2.inspect(&prod).await?,
        DeploymentState::Healthy { .. }
    ));
    Ok(())
}

/// An instance launched before owners existed (managed, but with no owner tag) is
/// listed only for `None`, never for an owner, and only a reference without an owner
/// acts on it.
#[tokio::test]
async fn instances_from_before_owners_are_listed_only_without_an_owner() -> Result<()> {
    let (moto, ec2) = moto_provider().await?;
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    let launched = outsider(&moto)
        .await
        .run_instances()
        .image_id(common::AMI)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(tag(labels::WORKLOAD, "legacy"))
                .tags(tag(labels::GENERATION, "2"))
                .tags(tag(labels::MANAGED, "true"))
                .build(),
        )
        .send()
        .await?;
    let handle = launched.instances()[0]
        .instance_id()
        .unwrap_or_default()
        .to_owned();

    let unowned = ec2.list_managed(None).await?;
    assert_eq!(
        unowned
            .iter()
            .map(|d| (d.handle.as_str(), d.workload.as_str(), d.generation.0))
            .collect::<Vec<_>>(),
        [(handle.as_str(), "legacy", 2)]
    );
    assert_eq!(unowned[0].owner, None);
    let legacy = unowned[0].clone();
    for owner in [owner(), Owner::drill(INSTALLATION, "d1")] {
        assert!(
            ec2.list_managed(Some(&owner)).await?.is_empty(),
            "{owner} lists an unowned instance"
        );
    }

    // An owner's deploy of the same (workload, generation) launches its own copy.
    let mine = ec2.deploy(&request("legacy", 2)).await?;
    assert_ne!(mine.handle, handle, "an owner adopted an unowned instance");
    assert_eq!(ec2.list_managed(None).await?, vec![legacy.clone()]);

    // Only a reference without an owner acts on it.
    let claimed = lifeboat_provider::DeploymentRef {
        owner: Some(owner()),
        ..legacy.clone()
    };
    assert_eq!(ec2.inspect(&claimed).await?, DeploymentState::Gone);
    ec2.retire(&claimed).await?;
    assert!(matches!(
        ec2.inspect(&legacy).await?,
        DeploymentState::Healthy { .. }
    ));
    ec2.retire(&legacy).await?;
    assert_eq!(ec2.inspect(&legacy).await?, DeploymentState::Gone);
    assert!(ec2.list_managed(None).await?.is_empty());
    assert_eq!(ec2.list_managed(Some(&owner())).await?, vec![mine]);
    Ok(())
}
