//! The settings of a `kind: kubernetes` provider, and how they become a kube client.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use lifeboat_provider::{Capacity, ErrorClass, Op, ProviderError};
use serde::{Deserialize, Serialize};

/// Settings of a `kind: kubernetes` provider (one cluster, one namespace).
///
/// ```yaml
/// adapter:
///   kind: kubernetes
///   kubeconfig: /etc/lifeboat/cluster-b.kubeconfig   # or in_cluster: true
///   context: k3s-hetzner                              # default: the file's current context
///   namespace: lifeboat-workloads                     # default: the context's namespace
///   service_type: LoadBalancer                        # default: ClusterIP
///   capacity: { replicas: 40, cpu_millis: 16000 }     # default: the nodes' allocatable
///   labels: { team: sre }                             # added to every object
///   timeout_secs: 10
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// A kubeconfig file. Unset (and not `in_cluster`): the usual lookup, `$KUBECONFIG`
    /// then `~/.kube/config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use; unset means the file's current context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Use the service account of the pod lifeboat runs in. Excludes `kubeconfig` and
    /// `context`.
    #[serde(default)]
    pub in_cluster: bool,
    /// The namespace workloads go to; unset means the context's (or the pod's) namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// What the cluster can hold, as `probe` reports it. Unset: summed from the nodes'
    /// allocatable resources (which needs `list nodes`; without it, capacity is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    /// Extra labels put on every object lifeboat creates (owner, cost centre, ...). They
    /// cannot override lifeboat's own `lifeboat.dev/*` labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// How each workload's Service is exposed; `LoadBalancer` gives it an address outside
    /// the cluster, which a DNS cutover can point at.
    #[serde(default)]
    pub service_type: ServiceType,
    /// Connect and read timeout of each API call, in seconds (default 10). The
    /// controller's own per-step timeouts still apply on top.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    10
}

/// The Kubernetes Service type of a workload's Service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceType {
    /// Reachable inside the cluster only, at `<name>.<namespace>.svc`.
    #[default]
    ClusterIP,
    /// Reachable on every node's address at an allocated port.
    NodePort,
    /// Reachable at the address the cluster's load balancer assigns.
    LoadBalancer,
}

impl ServiceType {
    /// The name the Kubernetes API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

impl KubernetesConfig {
    /// A config for the cluster of one kubeconfig file, everything else default.
    pub fn from_kubeconfig(path: impl Into<PathBuf>) -> KubernetesConfig {
        KubernetesConfig {
            kubeconfig: Some(path.into()),
            context: None,
            in_cluster: false,
            namespace: None,
            capacity: None,
            labels: BTreeMap::new(),
            service_type: ServiceType::default(),
            timeout_secs: default_timeout_secs(),
        }
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    /// Reads the kubeconfig (or the in-cluster service account) into a kube config.
    /// Reads local files only; nothing goes over the network.
    pub(crate) async fn kube_config(&self) -> Result<kube::Config, ProviderError> {
        let invalid =
            |message: String| ProviderError::new(ErrorClass::InvalidRequest, Op::Probe, message);
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: None,
            user: None,
        };
        let mut config = if self.in_cluster {
            if self.kubeconfig.is_some() || self.context.is_some() {
                return Err(invalid(
                    "in_cluster excludes kubeconfig and context: choose one".into(),
                ));
            }
            kube::Config::incluster().map_err(|e| {
                invalid(format!("reading the in-cluster service account: {e}")).with_source(e)
            })?
        } else if let Some(path) = &self.kubeconfig {
            let file = Kubeconfig::read_from(path).map_err(|e| {
                invalid(format!("reading kubeconfig {}: {e}", path.display())).with_source(e)
            })?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| {
                    invalid(format!("using kubeconfig {}: {e}", path.display())).with_source(e)
                })?
        } else {
            kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| invalid(format!("finding a kubeconfig: {e}")).with_source(e))?
        };
        if let Some(namespace) = &self.namespace {
            config.default_namespace = namespace.clone();
        }
        config.connect_timeout = Some(self.timeout());
        config.read_timeout = Some(self.timeout());
        config.write_timeout = Some(self.timeout());
        // kube would quietly retry 429/503/504; the controller owns retries and backoff,
        // and the probe must see throttling and outages as they happen to classify them.
        config.default_retry = false;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_example() {
        let yaml = r#"
kubeconfig: /etc/lifeboat/cluster-b.kubeconfig
context: k3s-hetzner
namespace: lifeboat-workloads
service_type: LoadBalancer
capacity: { replicas: 40, cpu_millis: 16000 }
labels: { team: sre }
timeout_secs: 10
"#;
        let config: KubernetesConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(config.context.as_deref(), Some("k3s-hetzner"));
        assert_eq!(config.service_type, ServiceType::LoadBalancer);
        assert_eq!(config.capacity.unwrap().replicas, Some(40));
        assert_eq!(config.labels["team"], "sre");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<KubernetesConfig>(r#"{"namespce": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("namespce"), "{err}");
    }

    #[test]
    fn defaults_are_the_usual_lookup_and_cluster_ip() {
        let config: KubernetesConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config.kubeconfig, None);
        assert!(!config.in_cluster);
        assert_eq!(config.service_type, ServiceType::ClusterIP);
        assert_eq!(config.timeout(), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn in_cluster_with_a_kubeconfig_is_refused() {
        let mut config = KubernetesConfig::from_kubeconfig("/nonexistent");
        config.in_cluster = true;
        let err = config.kube_config().await.unwrap_err();
        assert_eq!(err.class, ErrorClass::InvalidRequest);
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_is_an_invalid_request_naming_the_file() {
        let config = KubernetesConfig::from_kubeconfig("/nonexistent/kubeconfig");
        let err = config.kube_config().await.unwrap_err();
        assert_eq!(err.class, ErrorClass::InvalidRequest);
        assert!(err.message.contains("/nonexistent/kubeconfig"), "{err}");
    }
}
