//! The `aws-ec2` provider: lifeboat workloads as EC2 instances, one instance per
//! (workload, generation), and the account's standing read from EC2's own error codes.
//!
//! A short tour:
//! - [`config`]: `Ec2Config`, the `kind: aws-ec2` settings. No credentials: those come
//!   from the standard AWS chain (environment, profile, web identity / IRSA, IMDS).
//! - [`classify`]: the pure mapping from EC2 error codes, HTTP statuses and transport
//!   failures to [`ErrorClass`]; account watching stands on it.
//! - `deploy` (`RunInstances` with tags and a `ClientToken`, cloud-init user data),
//!   `inspect` (`DescribeInstances` + `DescribeInstanceStatus` + the workload's health
//!   check, the contract's [`lifeboat_provider::health`]), `retire`
//!   (`TerminateInstances`), `list` (tag-filtered, paginated `DescribeInstances`),
//!   `probe` (`DescribeAccountAttributes`, capacity, lost instances).
//! - `instance`: what those read off an instance (tags, owner, address, endpoint),
//!   shared so no operation module reaches into another.
//!
//! Ownership: every instance carries its [`Owner`] in the tags of
//! [`lifeboat_provider::labels`]. Listings filter on them (the absent tags of production
//! and pre-owner instances are checked client-side: EC2 filters cannot ask for a
//! missing tag), and `inspect`/`retire` read them before acting on an instance id.
//!
//! Retries: the SDK retries each call in its adaptive mode (which also slows the client
//! down under throttling), a few attempts at most; the controller's step retries sit
//! above and are not duplicated here. Probes alone make one attempt per call (the next
//! probe is their retry), so sustained throttling reaches the controller as
//! `Throttled`, never as a timeout.

#![deny(missing_docs)]

pub mod classify;
pub mod config;
mod deploy;
mod inspect;
mod instance;
mod list;
mod probe;
mod retire;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use lifeboat_provider::{
    DeployRequest, DeploymentRef, DeploymentState, ErrorClass, Op, Owner, Probe, Provider,
    ProviderError,
};

pub use config::{AddressKind, Ec2Config};
pub use deploy::render_user_data;

/// Tags the adapter adds besides the common ones of [`lifeboat_provider::labels`].
pub mod tags {
    /// The workload's port, so `inspect` and `list_managed` can build its endpoint.
    pub const PORT: &str = "lifeboat.dev/port";
    /// The workload's health check in the contract's one-line form (`tcp` or
    /// `http:/path`, [`lifeboat_provider::HealthCheck`]'s `Display`), so `inspect` can
    /// run it.
    pub const HEALTH: &str = "lifeboat.dev/health";
    /// Set by `retire` before terminating: tells lifeboat's own terminations apart from
    /// the ones AWS or a human made.
    pub const RETIRED: &str = "lifeboat.dev/retired";
}

/// Backoff between the SDK's attempts (jittered, doubling). Short: the controller backs
/// off at its own level, and its probe timeout must not be spent waiting here.
const INITIAL_BACKOFF: std::time::Duration = std::time::Duration::from_millis(200);
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);

/// The largest page EC2's `DescribeInstances` hands out.
const MAX_PAGE: i32 = 1000;

/// One EC2 region of one account, as a lifeboat [`Provider`].
pub struct Ec2Provider {
    /// The provider's name in the config, for logs.
    name: String,
    config: Ec2Config,
    client: aws_sdk_ec2::Client,
    /// The client of `probe`: one attempt per call, without the adaptive mode's
    /// client-side rate limiter. Under sustained throttling that limiter makes every
    /// call wait for a send token, and retries of throttled calls add up, until the
    /// operation timeout cuts them off: probes would report `Timeout` (which evacuates
    /// after the grace period) instead of EC2's own `RequestLimitExceeded` (which never
    /// does). A probe must say what EC2 answered; the next probe is its retry.
    probe_client: aws_sdk_ec2::Client,
    /// `MaxResults` of tag listings.
    page_size: i32,
}

impl std::fmt::Debug for Ec2Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Provider")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Ec2Provider {
    /// Builds the provider with credentials from the standard AWS chain (environment,
    /// shared profile, web identity / IRSA, instance metadata).
    ///
    /// Makes no call to AWS: credentials are resolved on first use, so a lost account
    /// shows up in [`Provider::probe`], classified, not here. Fails with
    /// `InvalidRequest` (reported under [`Op::Probe`]) when the config is invalid.
    pub async fn connect(name: &str, config: Ec2Config) -> Result<Ec2Provider, ProviderError> {
        validate(&config)?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()));
        if let Some(url) = &config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let sdk = loader.load().await;
        Ec2Provider::with_sdk_config(name, config, &sdk)
    }

    /// Builds the provider from an SDK configuration made by the caller (its own
    /// credentials provider, HTTP client or interceptors), applying the region, endpoint,
    /// timeouts and retry settings of `config` on top.
    pub fn with_sdk_config(
        name: &str,
        config: Ec2Config,
        sdk: &SdkConfig,
    ) -> Result<Ec2Provider, ProviderError> {
        validate(&config)?;
        // Each attempt gets its share of the operation timeout, so a hang is retried
        // within it; the short backoff keeps a throttled call's retries inside it too,
        // so throttling is reported as `Throttled` rather than masked as `Timeout`.
        let attempts = config.max_attempts();
        let client_with = |retry: RetryConfig, attempts: u32| {
            let timeouts = TimeoutConfig::builder()
                .connect_timeout(config.connect_timeout())
                .operation_timeout(config.operation_timeout())
                .operation_attempt_timeout(config.operation_timeout() / attempts)
                .build();
            let mut builder = aws_sdk_ec2::config::Builder::from(sdk)
                .region(Region::new(config.region.clone()))
                .retry_config(
                    retry
                        .with_max_attempts(attempts)
                        .with_initial_backoff(INITIAL_BACKOFF)
                        .with_max_backoff(MAX_BACKOFF),
                )
                .timeout_config(timeouts);
            if let Some(url) = &config.endpoint_url {
                builder = builder.endpoint_url(url);
            }
            aws_sdk_ec2::Client::from_conf(builder.build())
        };
        let client = client_with(RetryConfig::adaptive(), attempts);
        // The probe cadence is the probe's retry: one attempt with the whole timeout,
        // so a slow throttled answer still arrives as `Throttled`.
        let probe_client = client_with(RetryConfig::standard(), 1);
        Ok(Ec2Provider {
            name: name.to_owned(),
            config,
            client,
            probe_client,
            page_size: MAX_PAGE,
        })
    }

    /// Lists managed instances `size` at a time (EC2 accepts 5 to 1000; default 1000).
    /// Smaller pages suit EC2-compatible APIs with low limits, and tests of pagination.
    pub fn with_page_size(mut self, size: i32) -> Ec2Provider {
        self.page_size = size.clamp(5, MAX_PAGE);
        self
    }

    /// The provider's name in the config.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn validate(config: &Ec2Config) -> Result<(), ProviderError> {
    config
        .validate()
        .map_err(|message| ProviderError::new(ErrorClass::InvalidRequest, Op::Probe, message))
}

#[async_trait]
impl Provider for Ec2Provider {
    fn kind(&self) -> &'static str {
        "aws-ec2"
    }

    /// `DescribeAccountAttributes` (`max-instances`), then the managed instances: free
    /// capacity is the limit (`max_instances`, else the account's) minus lifeboat's
    /// running instances, and `lost` lists those AWS stopped or terminated unasked.
    /// Both count every owner's instances (a probe is not asked for one owner): all of
    /// them use the account's limit, and each lost reference carries its owner.
    async fn probe(&self) -> Probe {
        probe::probe(self).await
    }

    /// One instance per (workload, generation, owner): an existing one of the request's
    /// owner is found by its tags, a new one is launched with the owner's tags and
    /// `ClientToken` = [`DeployRequest::idempotency_key`] (which names the owner too).
    /// Returns once EC2 accepted the launch. Workloads with more than one replica are
    /// refused (`InvalidRequest`).
    async fn deploy(&self, req: &DeployRequest) -> Result<DeploymentRef, ProviderError> {
        deploy::deploy(self, req).await
    }

    /// `pending` → Pending; `running` → Running, or Healthy once EC2's status checks
    /// pass and the workload's own check (if any) answers; `stopping`/`stopped` →
    /// Failed; `shutting-down`/`terminated`/unknown, or tagged with another owner than
    /// `dep.owner` → Gone.
    async fn inspect(&self, dep: &DeploymentRef) -> Result<DeploymentState, ProviderError> {
        inspect::inspect(self, dep).await
    }

    /// Tags the instance as retired, then terminates it; gone already is `Ok`, and so is
    /// an instance tagged with another owner than `dep.owner`, which is left alone.
    async fn retire(&self, dep: &DeploymentRef) -> Result<(), ProviderError> {
        retire::retire(self, dep).await
    }

    /// Pending, running, stopping and stopped instances tagged `lifeboat.dev/managed=true`
    /// and with exactly `owner`'s tags (`None`: with no owner tag at all).
    async fn list_managed(
        &self,
        owner: Option<&Owner>,
    ) -> Result<Vec<DeploymentRef>, ProviderError> {
        list::list_managed(self, owner).await
    }
}
