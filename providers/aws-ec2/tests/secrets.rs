//! Credentials never reach logs or errors: a whole run against moto, with credentials
//! from the standard AWS chain (environment variables) and every log line captured at
//! debug level, must not contain the secret key or the session token anywhere.
//!
//! This binary holds one test only: it sets process environment variables.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use common::{Moto, config, owner, request};
use lifeboat_provider::{ErrorClass, Provider};
use lifeboat_provider_aws_ec2::Ec2Provider;

const ACCESS_KEY: &str = "AKIDLIFEBOATLOGTEST";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYlifeboatSECRET";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzElifeboatSESSIONtoken0123456789";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

#[test]
fn credentials_never_appear_in_logs_or_errors() -> Result<()> {
    // SAFETY: the only test of this binary sets these before any thread is started.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
        std::env::set_var("AWS_SESSION_TOKEN", SESSION_TOKEN);
        // Keep the machine's own AWS files and instance metadata out of the chain.
        std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/lifeboat-test");
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/lifeboat-test");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    }
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let errors = runtime.block_on(run())?;

    let text = logs.text();
    assert!(
        text.contains("deploy: instance launched"),
        "the run was logged:\n{text}"
    );
    // The SDK's own debug lines (request orchestration, credentials, retries) are in.
    assert!(
        text.contains("aws_smithy_runtime"),
        "the SDK's debug lines were captured"
    );
    assert!(
        text.contains("aws_config"),
        "the credential chain's lines were captured"
    );
    for secret in [SECRET, SESSION_TOKEN] {
        assert!(!text.contains(secret), "a credential leaked into the logs");
        for error in &errors {
            assert!(
                !error.contains(secret),
                "a credential leaked into an error: {error}"
            );
        }
    }
    Ok(())
}

/// A full run through the standard chain; returns every error, rendered every way.
async fn run() -> Result<Vec<String>> {
    let moto = Moto::start()?;
    let mut settings = config(&moto.url());
    settings.operation_timeout = Some(std::time::Duration::from_secs(30));
    let ec2 = Ec2Provider::connect("ec2-secrets", settings).await?;
    ec2.probe().await?;
    let dep = ec2.deploy(&request("api", 1)).await?;
    ec2.inspect(&dep).await?;
    ec2.list_managed(Some(&owner())).await?;
    ec2.retire(&dep).await?;

    // Now the keys are unknown to moto: failures, with their full source chains.
    moto.enforce_auth().await?;
    let mut errors = Vec::new();
    let failures = [
        ec2.probe().await.unwrap_err(),
        ec2.deploy(&request("api", 2)).await.unwrap_err(),
    ];
    for err in failures {
        assert_eq!(err.class, ErrorClass::CredentialsRejected, "{err}");
        tracing::debug!(error = ?err, "captured failure");
        let mut chain = format!("{err} / {err:?}");
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            chain.push_str(&format!(" / {s} / {s:?}"));
            source = s.source();
        }
        errors.push(chain);
    }
    Ok(errors)
}
