//! The adapter contract's conformance suite (`lifeboat_provider::conformance`) against
//! moto's real EC2 API: idempotent deploys, owners kept apart, exact listings, idempotent
//! retires and classified errors, checked by the same code as every other adapter.

mod common;

use anyhow::Result;
use common::{moto_provider, request};
use lifeboat_provider::conformance::{self, Fixture};
use lifeboat_provider::{Owner, Provider};

#[tokio::test]
async fn the_adapter_meets_the_contract_against_moto() -> Result<()> {
    let (_moto, ec2) = moto_provider().await?;
    let mut fixture = Fixture::new(request("conformance", 0).workload, "conformance");
    // moto's instances never run their user data: there is no workload to become
    // healthy, so `becomes-healthy` is not run (`healthy_within` stays `None`).
    // One deployment is one instance: the adapter refuses more replicas up front.
    let mut invalid = fixture.workload.clone();
    invalid.replicas = 2;
    fixture.invalid = Some(invalid);

    let report = conformance::run(&ec2, &fixture).await;
    println!("{report}");
    assert!(report.passed(), "conformance failed:\n{report}");
    // The suite cleans up after itself, so other tests can share a peer.
    let production = Owner::installation(&fixture.installation);
    assert!(ec2.list_managed(Some(&production)).await?.is_empty());
    Ok(())
}
