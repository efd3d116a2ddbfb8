//! Building the providers a config names: one adapter per `providers:` entry, keyed by
//! provider name, optionally wrapped for a drill's fault injection.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use lifeboat_provider::Provider;
use lifeboat_provider_local::LocalProvider;

use crate::config::{AdapterConfig, Config, ProviderConfig};
use crate::fault::{FaultSwitch, Faulty};

/// Choices about how adapters are built that are not part of the config file.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// What the program name `lifeboat` in a local workload's command means. By default
    /// the running executable; a test that drives the library in-process points it at
    /// the built binary (`env!("CARGO_BIN_EXE_lifeboat")`).
    pub self_exe: Option<PathBuf>,
}

/// Every provider of `config`, keyed by name, with default [`BuildOptions`].
pub async fn build_all(config: &Config) -> Result<BTreeMap<String, Arc<dyn Provider>>> {
    build_all_with(config, &BuildOptions::default()).await
}

/// Every provider of `config`, keyed by name. Local providers keep their records under
/// `STATE_DIR/local/NAME/` (or their own `dir`, relative to the config file), so a
/// restarted controller finds the copies it started.
pub async fn build_all_with(
    config: &Config,
    options: &BuildOptions,
) -> Result<BTreeMap<String, Arc<dyn Provider>>> {
    let mut out = BTreeMap::new();
    for provider in &config.providers {
        let built = build_one(
            provider,
            &config.state_dir,
            |p| config.resolve_path(p),
            options,
        )
        .await?;
        out.insert(provider.name.clone(), built);
    }
    Ok(out)
}

/// The adapter of one provider entry. `resolve` turns paths written in the config into
/// usable ones.
pub async fn build_one(
    provider: &ProviderConfig,
    state_dir: &Path,
    resolve: impl Fn(&Path) -> PathBuf,
    options: &BuildOptions,
) -> Result<Arc<dyn Provider>> {
    let name = &provider.name;
    match &provider.adapter {
        AdapterConfig::Local(local) => {
            let mut local = local.clone();
            local.dir = local.dir.as_deref().map(&resolve);
            let mut built = LocalProvider::new(name, local, &state_dir.join("local"))
                .with_context(|| format!("provider {name} (kind: local)"))?;
            if let Some(exe) = &options.self_exe {
                built = built.with_self_exe(exe.clone());
            }
            Ok(Arc::new(built))
        }
        AdapterConfig::Sim(sim) => Ok(Arc::new(lifeboat_provider_sim::SimProvider::new(
            name.clone(),
            sim.clone(),
        ))),
        #[cfg(feature = "aws-ec2")]
        AdapterConfig::AwsEc2(ec2) => Ok(Arc::new(
            lifeboat_provider_aws_ec2::Ec2Provider::connect(name, ec2.clone())
                .await
                .with_context(|| format!("provider {name} (kind: aws-ec2)"))?,
        )),
        #[cfg(feature = "kubernetes")]
        AdapterConfig::Kubernetes(k8s) => Ok(Arc::new(
            lifeboat_provider_kubernetes::connect(name, k8s.clone())
                .await
                .with_context(|| format!("provider {name} (kind: kubernetes)"))?,
        )),
        #[cfg(feature = "bare-metal")]
        AdapterConfig::BareMetal(bare_metal) => Ok(Arc::new(
            lifeboat_provider_bare_metal::BareMetalProvider::new(name, bare_metal.clone())
                .with_context(|| format!("provider {name} (kind: bare-metal)"))?,
        )),
    }
}

/// Wraps every provider in a [`Faulty`] and returns the wrapped set with one
/// [`FaultSwitch`] per provider. A drill sets the switches of the providers it fences;
/// the others pass every call through untouched. `hang` is how long an `unreachable`
/// call hangs before failing (give it the probe timeout, so detection sees timeouts).
pub fn with_fault_switches(
    providers: BTreeMap<String, Arc<dyn Provider>>,
    hang: Duration,
) -> (
    BTreeMap<String, Arc<dyn Provider>>,
    BTreeMap<String, FaultSwitch>,
) {
    let mut wrapped = BTreeMap::new();
    let mut switches = BTreeMap::new();
    for (name, provider) in providers {
        let switch = FaultSwitch::new();
        let faulty: Arc<dyn Provider> = Arc::new(Faulty::new(provider, switch.clone(), hang));
        wrapped.insert(name.clone(), faulty);
        switches.insert(name, switch);
    }
    (wrapped, switches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Scenario;
    use lifeboat_provider::ErrorClass;

    fn provider(yaml: &str) -> ProviderConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[tokio::test]
    async fn builds_local_providers_with_their_folders() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_owned();
        let resolve = |p: &Path| base.join(p);
        let state = base.join("state");
        let options = BuildOptions::default();

        let plain =
            provider("{name: here, vendor: self, adapter: {kind: local, ports: 20000-20009}}");
        let built = build_one(&plain, &state, resolve, &options).await.unwrap();
        assert_eq!(built.kind(), "local");
        built.probe().await.unwrap();
        assert!(state.join("local/here").is_dir());

        let own = provider(
            "{name: there, vendor: self, adapter: {kind: local, ports: 20010-20019, dir: files}}",
        );
        build_one(&own, &state, resolve, &options).await.unwrap();
        assert!(base.join("files").is_dir());

        let sim = provider("{name: s, vendor: self, adapter: {kind: sim}}");
        let built = build_one(&sim, &state, resolve, &options).await.unwrap();
        assert_eq!(built.kind(), "sim");
    }

    #[tokio::test]
    async fn fault_switches_act_on_their_own_provider_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = BTreeMap::new();
        for (name, ports) in [("a", "20100-20109"), ("b", "20110-20119")] {
            let p = provider(&format!(
                "{{name: {name}, vendor: self, adapter: {{kind: local, ports: {ports}}}}}"
            ));
            let built = build_one(&p, dir.path(), |p| p.to_owned(), &BuildOptions::default()).await;
            set.insert(name.to_owned(), built.unwrap());
        }
        let (wrapped, switches) = with_fault_switches(set, Duration::ZERO);
        switches["a"].set(Scenario::CredentialsRevoked);
        let e = wrapped["a"].probe().await.unwrap_err();
        assert_eq!(e.class, ErrorClass::CredentialsRejected);
        wrapped["b"].probe().await.unwrap();
        switches["a"].clear();
        wrapped["a"].probe().await.unwrap();
    }
}
