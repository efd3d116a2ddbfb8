//! Classification through a fault-injecting proxy (mitmproxy + tests/peers/faults.py)
//! in front of moto, and a genuine `AuthFailure` from moto's own IAM checks.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{Moto, Proxy, config, moto_provider, owner, provider, request};
use lifeboat_provider::{ErrorClass, Op, Provider, ProviderError};
use lifeboat_provider_aws_ec2::Ec2Provider;
use serde_json::json;

/// moto, the proxy in front of it, and a provider that talks through the proxy.
async fn through_proxy() -> Result<(Moto, Proxy, Ec2Provider)> {
    let (moto, _) = moto_provider().await?;
    let proxy = Proxy::start(moto.port)?;
    let ec2 = provider(config(&proxy.url()), "AKIDTEST", "test-secret").await?;
    ec2.probe().await?;
    Ok((moto, proxy, ec2))
}

async fn probe_error(ec2: &Ec2Provider) -> ProviderError {
    match ec2.probe().await {
        Ok(report) => panic!("expected a failed probe, got {report:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn ec2_error_codes_are_classified_from_both_body_shapes() -> Result<()> {
    let (_moto, proxy, ec2) = through_proxy().await?;
    let table = [
        ("Blocked", 403, ErrorClass::AccountSuspended),
        ("PendingVerification", 401, ErrorClass::AccountSuspended),
        ("OptInRequired", 401, ErrorClass::AccountSuspended),
        ("AuthFailure", 401, ErrorClass::CredentialsRejected),
        ("UnauthorizedOperation", 403, ErrorClass::PermissionDenied),
        ("InternalError", 500, ErrorClass::Unavailable),
    ];
    // `response` is real EC2's <Response><Errors>, `error-response` moto's
    // <ErrorResponse><Errors>: the SDK must read the code from both.
    for shape in ["response", "error-response"] {
        for (code, status, class) in table {
            proxy
                .set(json!({"mode": "ec2-error", "code": code, "status": status, "shape": shape}))
                .await?;
            let err = probe_error(&ec2).await;
            assert_eq!(
                (err.class, err.op),
                (class, Op::Probe),
                "{code} as {shape}: {err}"
            );
            assert_eq!(err.code.as_deref(), Some(code), "{shape}");
        }
    }
    // Deploys see the same classes, and capacity errors send the controller elsewhere.
    proxy
        .set(json!({"mode": "ec2-error", "code": "InsufficientInstanceCapacity", "status": 500}))
        .await?;
    let err = ec2.deploy(&request("api", 1)).await.unwrap_err();
    assert_eq!(
        (err.class, err.op),
        (ErrorClass::CapacityExhausted, Op::Deploy),
        "{err}"
    );

    proxy.set(json!({"mode": "none"})).await?;
    ec2.probe().await?;
    Ok(())
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_then_reported_throttled() -> Result<()> {
    let (_moto, proxy, ec2) = through_proxy().await?;
    proxy
        .set(json!({"mode": "ec2-error", "code": "RequestLimitExceeded", "status": 503}))
        .await?;
    let err = probe_error(&ec2).await;
    assert_eq!(err.class, ErrorClass::Throttled, "{err}");
    assert!(!err.class.is_account_loss());
    // A probe makes one attempt: the next probe is its retry.
    assert_eq!(proxy.hits().await?, 1);
    // Other calls: the SDK made exactly the configured attempts (2); the adapter none.
    proxy
        .set(json!({"mode": "ec2-error", "code": "RequestLimitExceeded", "status": 503}))
        .await?;
    let err = ec2.list_managed(Some(&owner())).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Throttled, "{err}");
    assert_eq!(proxy.hits().await?, 2);
    Ok(())
}

#[tokio::test]
async fn server_errors_and_resets_are_unavailable() -> Result<()> {
    let (_moto, proxy, ec2) = through_proxy().await?;
    // A 503 with no EC2 body at all (a load balancer's page).
    proxy
        .set(json!({"mode": "status", "status": 503, "body": "<html>Service Unavailable</html>", "ctype": "text/html"}))
        .await?;
    let err = probe_error(&ec2).await;
    assert_eq!(err.class, ErrorClass::Unavailable, "{err}");
    assert_eq!(err.code.as_deref(), Some("HTTP 503"));

    proxy.set(json!({"mode": "reset"})).await?;
    let err = probe_error(&ec2).await;
    assert_eq!(err.class, ErrorClass::Unavailable, "{err}");
    assert_eq!(proxy.hits().await?, 1, "a probe makes one attempt");
    proxy.set(json!({"mode": "reset"})).await?;
    let err = ec2.list_managed(Some(&owner())).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Unavailable, "{err}");
    assert_eq!(proxy.hits().await?, 2, "a reset is retried by the SDK");
    Ok(())
}

#[tokio::test]
async fn a_hang_is_a_timeout_and_a_short_delay_is_fine() -> Result<()> {
    let (_moto, proxy, ec2) = through_proxy().await?;
    proxy.set(json!({"mode": "delay", "ms": 200})).await?;
    ec2.probe().await?;

    // The provider's operation timeout is 6 s (common::config); the hang outlasts it.
    proxy.set(json!({"mode": "hang", "ms": 60_000})).await?;
    let err = probe_error(&ec2).await;
    assert_eq!(err.class, ErrorClass::Timeout, "{err}");
    proxy.set(json!({"mode": "none"})).await?;
    ec2.probe().await?;
    Ok(())
}

#[tokio::test]
async fn refused_connections_are_unavailable() -> Result<()> {
    // Nothing listens on a port that was just freed.
    let url = format!("http://127.0.0.1:{}", lifeboat_testkit::free_port());
    let ec2 = provider(config(&url), "AKIDTEST", "test-secret").await?;
    let err = probe_error(&ec2).await;
    assert_eq!(err.class, ErrorClass::Unavailable, "{err}");
    Ok(())
}

#[tokio::test]
async fn unknown_keys_get_a_genuine_auth_failure_from_moto() -> Result<()> {
    let (moto, ec2) = moto_provider().await?;
    let dep = ec2.deploy(&request("api", 1)).await?;
    moto.enforce_auth().await?;
    let mut short = config(&moto.url());
    short.operation_timeout = Some(Duration::from_secs(10));
    let ec2 = provider(short, "AKIDUNKNOWN", "unknown-secret").await?;
    let err = probe_error(&ec2).await;
    assert_eq!(err.class, ErrorClass::CredentialsRejected, "{err}");
    assert_eq!(err.code.as_deref(), Some("AuthFailure"));
    for err in [
        ec2.deploy(&request("api", 2)).await.unwrap_err(),
        ec2.inspect(&dep).await.unwrap_err(),
        ec2.list_managed(Some(&owner())).await.unwrap_err(),
        ec2.retire(&dep).await.unwrap_err(),
    ] {
        assert_eq!(err.class, ErrorClass::CredentialsRejected, "{err}");
    }
    Ok(())
}

#[tokio::test]
async fn https_endpoints_get_a_real_tls_client() -> Result<()> {
    use tokio::io::AsyncWriteExt;
    // A server that answers a TLS handshake with plain text: the SDK must get as far
    // as TLS (its HTTPS client is built in even without the SDK's default features)
    // and fail there as a transport error, not as a request it could not build.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.write_all(b"HTTP/1.1 400 Not TLS\r\n\r\n").await;
        }
    });
    let ec2 = provider(
        config(&format!("https://127.0.0.1:{port}")),
        "AKIDTEST",
        "test-secret",
    )
    .await?;
    let err = probe_error(&ec2).await;
    server.abort();
    assert_eq!(err.class, ErrorClass::Unavailable, "{err}");
    let chain = format!("{:?}", std::error::Error::source(&err));
    assert!(chain.contains("TlsConnectError"), "{chain}");
    Ok(())
}

/// A credentials source that has nothing (no env, no profile, IMDS down).
#[derive(Debug)]
struct NoCredentials;

impl aws_credential_types::provider::ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no source had credentials",
            ),
        ))
    }
}

#[tokio::test]
async fn credentials_that_cannot_be_loaded_are_not_an_account_loss() -> Result<()> {
    let (moto, _) = moto_provider().await?;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(common::REGION))
        .credentials_provider(NoCredentials)
        .load()
        .await;
    let ec2 = Ec2Provider::with_sdk_config("ec2-test", config(&moto.url()), &sdk)?;
    let err = probe_error(&ec2).await;
    // Lifeboat's own trouble: never mistaken for a lost account or an AWS outage.
    assert_eq!(err.class, ErrorClass::Internal, "{err}");
    assert_eq!(err.code.as_deref(), Some("CredentialsNotLoaded"));
    Ok(())
}
