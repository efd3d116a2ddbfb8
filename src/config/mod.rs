//! `lifeboat.yaml`: reading, validating, and the validated [`Config`].
//!
//! All YAML handling lives in this module (serde_yaml today), so a maintained fork can
//! replace it in one place. Errors name the file, line, column and field path:
//! `quickstart.yaml:14:7: workloads[1].depends_on[0]: unknown workload "dbb"`.

mod data;
mod diagnostic;
mod dns;
pub mod duration;
mod lint;
mod locate;
mod tagged;
mod types;
mod validate;

#[cfg(test)]
mod tests;

pub use data::{DataConfig, DataCredentials, DataMethod, standby_candidates};
pub use diagnostic::{ConfigError, Diagnostic};
pub use dns::*;
pub use lint::lint;
pub use types::*;

use std::path::{Path, PathBuf};

use crate::model::{Account, Scope};
use locate::{Aim, FieldPath};

/// Reads and validates the config file at `path`. A file that cannot be read or is not
/// UTF-8 is refused with a finding naming the file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let bytes = std::fs::read(path).map_err(|error| {
        ConfigError::new(vec![Diagnostic::whole_file(
            path,
            format!("cannot read the config file: {error}"),
        )])
    })?;
    let text = String::from_utf8(bytes).map_err(|error| {
        // Point at the first bad byte, so an editor can find it.
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
        let column = 1 + valid.iter().rev().take_while(|&&b| b != b'\n').count();
        ConfigError::new(vec![Diagnostic {
            file: path.to_owned(),
            line,
            column,
            path: String::new(),
            message: "the config file is not UTF-8 text".into(),
        }])
    })?;
    parse(&text, path)
}

/// Parses and validates config text; `source` names the file in findings and anchors
/// relative paths (`state_dir`, the endpoints file). Never panics, whatever the text.
pub fn parse(text: &str, source: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig = serde_yaml::from_str(text)
        .map_err(|error| ConfigError::new(vec![Diagnostic::from_yaml(source, text, &error)]))?;
    validate(raw, text, source)
}

/// Checks what serde cannot (unique names, references, cycles, ranges) and builds the
/// [`Config`]. Every problem is reported, each at its position in `text`, which must be
/// the text `raw` was read from.
pub fn validate(raw: RawConfig, text: &str, source: &Path) -> Result<Config, ConfigError> {
    let folder = source.parent().unwrap_or(Path::new("."));
    let state_dir = folder.join(raw.state_dir.as_deref().unwrap_or(Path::new(".lifeboat")));
    let config = Config {
        source: source.to_owned(),
        vendors: raw.vendors,
        providers: raw.providers,
        workloads: raw.workloads,
        policy: raw.policy,
        cutover: raw.cutover,
        drill: raw.drill,
        state_dir,
        installation: raw.installation,
        drills: raw.drills,
        api: raw.api,
        notify: raw.notify,
        text: text.to_owned(),
    };
    let problems = validate::check(&config);
    if problems.is_empty() {
        return Ok(config);
    }
    Err(ConfigError::new(
        (problems.into_iter())
            .map(|(path, message)| Diagnostic::at(source, text, &path, Aim::Value, message))
            .collect(),
    ))
}

/// A validated configuration: every reference resolves, names are unique, the
/// dependency graph has no cycle. Only [`load`], [`parse`] and [`validate`] make one;
/// tests elsewhere build theirs with [`parse`] on a YAML snippet.
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
    /// The installation id the file sets, if it does (see [`crate::installation`]).
    pub installation: Option<String>,
    /// Drills the daemon runs on a schedule.
    pub drills: Vec<ScheduledDrillConfig>,
    /// The daemon's HTTP API.
    pub api: ApiConfig,
    /// Webhooks the daemon notifies.
    pub notify: Vec<WebhookConfig>,
    /// The text it was read from, to point findings at lines. Private, which also keeps
    /// a `Config` from being built without validation.
    text: String,
}

impl Config {
    /// A config assembled from parts without validation, for unit tests of the pure core
    /// that generate thousands of configs. Its `locate` finds nothing (no source text).
    #[cfg(test)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        source: PathBuf,
        vendors: Vec<VendorConfig>,
        providers: Vec<ProviderConfig>,
        workloads: Vec<WorkloadConfig>,
        policy: PolicyConfig,
        cutover: CutoverConfig,
        drill: Option<DrillConfig>,
        state_dir: PathBuf,
    ) -> Config {
        Config {
            source,
            vendors,
            providers,
            workloads,
            policy,
            cutover,
            drill,
            state_dir,
            installation: None,
            drills: Vec::new(),
            api: ApiConfig::default(),
            notify: Vec::new(),
            text: String::new(),
        }
    }

    /// The 1-based line and column of a field path such as `workloads[1].placement[0]`,
    /// so later checks can point at the line they concern. A path that leaves the
    /// document (an optional field left out) gives its deepest node that is written.
    pub fn locate(&self, path: &str) -> Option<(usize, usize)> {
        let path = FieldPath::parse(path)?;
        locate::locate(&self.text, &path, Aim::Value).map(|p| (p.line, p.column))
    }

    /// A finding about the node at `path`, positioned in this config's file: how later
    /// checks (lints, `lifeboat audit`) report what they find.
    pub fn diagnostic(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        let (line, column) = self.locate(path).unwrap_or((0, 0));
        Diagnostic {
            file: self.source.clone(),
            line,
            column,
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// The provider called `name`.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The workload called `name`.
    pub fn workload(&self, name: &str) -> Option<&WorkloadConfig> {
        self.workloads.iter().find(|w| w.name == name)
    }

    /// The account a provider is on, the unit that shares the fate of one set of
    /// credentials.
    pub fn account_of(&self, provider: &ProviderConfig) -> Account {
        Account::new(provider.vendor.clone(), provider.account.clone())
    }

    /// What a name given on the command line (`--lose NAME`) means: a vendor, a
    /// `vendor/account` of one of the vendors' listed accounts, or a provider, checked
    /// in that order.
    pub fn resolve_scope(&self, name: &str) -> Option<Scope> {
        if self.vendors.iter().any(|v| v.name == name) {
            return Some(Scope::Vendor(name.to_owned()));
        }
        if let Ok(account) = name.parse::<Account>()
            && let Some(listed) = &account.account
            && self
                .vendors
                .iter()
                .any(|v| v.name == account.vendor && v.accounts.contains(listed))
        {
            return Some(Scope::Account(account));
        }
        self.provider(name).map(|p| Scope::Provider(p.name.clone()))
    }

    /// The providers a scope covers, in config order.
    pub fn providers_in(&self, scope: &Scope) -> Vec<&ProviderConfig> {
        self.providers.iter().filter(|p| p.is_in(scope)).collect()
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

impl ProviderConfig {
    /// Whether this provider is on `account`: field by field, no text built, since
    /// conditions and decisions ask it for every provider and notice.
    pub fn is_on(&self, account: &Account) -> bool {
        account.holds(&self.vendor, self.account.as_deref())
    }

    /// Whether `scope` covers this provider: the test of [`Config::providers_in`], for
    /// one provider.
    pub fn is_in(&self, scope: &Scope) -> bool {
        match scope {
            Scope::Vendor(v) => &self.vendor == v,
            Scope::Account(a) => self.is_on(a),
            Scope::Provider(n) => &self.name == n,
        }
    }
}
