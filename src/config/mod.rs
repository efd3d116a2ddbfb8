//! `lifeboat.yaml`: reading, validating, and the validated [`Config`].
//!
//! All YAML handling lives in this module (serde_yaml today), so a maintained fork can
//! replace it in one place. Errors name the file, line, column and field path:
//! `quickstart.yaml:14:7: workloads[1].depends_on[0]: unknown workload "dbb"`.

mod dns;
pub mod duration;
mod types;

pub use dns::*;
pub use types::*;

use std::path::{Path, PathBuf};

use crate::model::Scope;

/// A validated configuration: every reference resolves, names are unique, the
/// dependency graph has no cycle. Only [`load`] and [`validate`] make one.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from (used to resolve relative paths).
    pub source: PathBuf,
    /// Vendors and their accounts.
    pub vendors: Vec<VendorConfig>,
    /// Providers.
    pub providers: Vec<ProviderConfig>,
    /// Workloads, in file order.
    pub workloads: Vec<WorkloadConfig>,
    /// The policy.
    pub policy: PolicyConfig,
    /// The cutover backend.
    pub cutover: CutoverConfig,
    /// The default drill.
    pub drill: Option<DrillConfig>,
    /// Where state lives, resolved against the config file's folder.
    pub state_dir: PathBuf,
}

impl Config {
    /// The provider called `name`.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The workload called `name`.
    pub fn workload(&self, name: &str) -> Option<&WorkloadConfig> {
        self.workloads.iter().find(|w| w.name == name)
    }

    /// `vendor/account` of a provider (`vendor/` when it names no account), the unit
    /// that shares the fate of one set of credentials.
    pub fn account_of(&self, provider: &ProviderConfig) -> String {
        format!(
            "{}/{}",
            provider.vendor,
            provider.account.as_deref().unwrap_or("")
        )
    }

    /// What a name given on the command line (`--lose NAME`) means: a vendor, a
    /// `vendor/account`, or a provider, checked in that order.
    pub fn resolve_scope(&self, name: &str) -> Option<Scope> {
        if self.vendors.iter().any(|v| v.name == name) {
            return Some(Scope::Vendor(name.to_owned()));
        }
        if let Some((vendor, account)) = name.split_once('/')
            && self
                .vendors
                .iter()
                .any(|v| v.name == vendor && v.accounts.iter().any(|a| a == account))
        {
            return Some(Scope::Account(name.to_owned()));
        }
        self.provider(name).map(|p| Scope::Provider(p.name.clone()))
    }

    /// The providers a scope covers, in config order.
    pub fn providers_in(&self, scope: &Scope) -> Vec<&ProviderConfig> {
        self.providers
            .iter()
            .filter(|p| match scope {
                Scope::Vendor(v) => &p.vendor == v,
                Scope::Account(a) => &self.account_of(p) == a,
                Scope::Provider(n) => &p.name == n,
            })
            .collect()
    }

    /// Resolves a path written in the config relative to the config file's folder.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.source.parent().unwrap_or(Path::new(".")).join(path)
        }
    }
}
