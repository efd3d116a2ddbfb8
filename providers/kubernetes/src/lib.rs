//! The `kubernetes` provider: workloads as Deployments and Services in any Kubernetes
//! cluster (EKS, GKE, AKS, a k3s on your own hardware), through `kube`.
//!
//! A tour:
//! - [`config`]: `KubernetesConfig` (kubeconfig + context, or in-cluster; namespace;
//!   capacity; labels) and how it becomes a kube client.
//! - `deploy`: one owner's copy of a workload at a generation becomes a Deployment and a
//!   Service named `<workload>-g<generation>-<owner discriminator>` (or the workload's
//!   raw manifests), applied server-side under the field manager `lifeboat` and
//!   labelled `lifeboat.dev/workload`, `lifeboat.dev/generation`,
//!   `lifeboat.dev/managed=true`, the owner's labels and
//!   `app.kubernetes.io/managed-by=lifeboat`. Two generations coexist, as
//!   make-before-break needs, and so do a drill's copy and production's; an object of
//!   the same name that another owner holds is refused, never applied over.
//! - `inspect`: rollout status (observed generation, available replicas, conditions,
//!   stuck pods), then the health check through the Service's API proxy; objects that
//!   carry another owner than the reference's count as gone.
//! - `retire`: foreground deletion of the deployment's objects, only while they carry
//!   the reference's generation and owner; already gone is success.
//! - `list`: every managed object of one owner in the namespace, grouped by workload
//!   and generation.
//! - `probe`: `/version`, an authenticated read, SelfSubjectAccessReviews for the verbs
//!   used, and the nodes' allocatable capacity.
//! - [`classify`]: `kube::Error` → [`ErrorClass`], pure and table-tested.
//! - `handle`: the deployment handle lists the objects, so no state is kept here.
//!
//! TLS: kube is built with rustls on aws-lc-rs, the provider the AWS SDK uses too. kube
//! installs it as the process default when none is set, so a binary holding both never
//! meets rustls' "several providers, none chosen" panic.

#![deny(missing_docs)]

pub mod classify;
pub mod config;
mod deploy;
mod handle;
mod inspect;
mod list;
mod objects;
mod probe;
mod quantity;
mod retire;

use async_trait::async_trait;
use lifeboat_provider::{
    DeployRequest, DeploymentRef, DeploymentState, Op, Owner, Probe, Provider, ProviderError,
};

pub use config::{KubernetesConfig, ServiceType};
pub use deploy::{COPY_LABEL, HEALTH_PATH_ANNOTATION, MANIFESTS_KEY};
pub use objects::FIELD_MANAGER;

/// One Kubernetes cluster and namespace as a lifeboat provider.
pub struct KubernetesProvider {
    name: String,
    client: kube::Client,
    namespace: String,
    config: KubernetesConfig,
    kinds: objects::Kinds,
}

/// Builds the provider from its config: reads the kubeconfig (or the in-cluster service
/// account) and makes a client. Touches no network, so a cluster that is down does not
/// keep lifeboat from starting; the first `probe` finds out.
///
/// Errors are `InvalidRequest` (the config or kubeconfig is wrong) or whatever class
/// building the client fails with (a broken client certificate, say).
pub async fn connect(
    name: &str,
    config: KubernetesConfig,
) -> Result<KubernetesProvider, ProviderError> {
    let kube_config = config.kube_config().await?;
    let namespace = kube_config.default_namespace.clone();
    let client = kube::Client::try_from(kube_config).map_err(|e| {
        classify::provider_error(
            Op::Probe,
            &format!("building the client of provider {name}"),
            e,
        )
    })?;
    Ok(KubernetesProvider::with_client(
        name, config, client, namespace,
    ))
}

impl KubernetesProvider {
    /// A provider over an existing client (shared with the in-cluster daemon, or a
    /// scripted one in tests). `namespace` is where workloads go.
    pub fn with_client(
        name: &str,
        config: KubernetesConfig,
        client: kube::Client,
        namespace: impl Into<String>,
    ) -> KubernetesProvider {
        KubernetesProvider {
            name: name.to_owned(),
            client,
            namespace: namespace.into(),
            config,
            kinds: objects::Kinds::new(),
        }
    }

    /// The provider's name, as in the config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace workloads go to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The client, for callers that need more of the cluster than the contract offers.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }
}

#[async_trait]
impl Provider for KubernetesProvider {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    async fn probe(&self) -> Probe {
        probe::probe(self).await
    }

    async fn deploy(&self, req: &DeployRequest) -> Result<DeploymentRef, ProviderError> {
        deploy::deploy(self, req).await
    }

    async fn inspect(&self, dep: &DeploymentRef) -> Result<DeploymentState, ProviderError> {
        inspect::inspect(self, dep).await
    }

    async fn retire(&self, dep: &DeploymentRef) -> Result<(), ProviderError> {
        retire::retire(self, dep).await
    }

    async fn list_managed(
        &self,
        owner: Option<&Owner>,
    ) -> Result<Vec<DeploymentRef>, ProviderError> {
        list::list_managed(self, owner).await
    }
}
