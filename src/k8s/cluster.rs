//! From custom resources to a [`Config`]: the cluster's `Provider`, `Workload` and
//! `Policy` resources are assembled into the text of a `lifeboat.yaml` and read by
//! [`config::parse`], so the cluster gets exactly the checks a file gets (unknown
//! fields, adapter settings, references, cycles) and the controller one kind of config.
//!
//! Pure: resources in, config (or findings naming the resources) out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use kube::ResourceExt;
use serde_json::{Map, Value, json};

use super::resources::{Policy, Provider, Workload};
use crate::config::{self, Config};

/// The name of the Policy the daemon reads when there are several.
pub const DEFAULT_POLICY: &str = "default";

/// What the cluster's resources say, ready for the controller, plus the text it was
/// read from (written next to the state so an operator can `lifeboat validate` it).
#[derive(Debug, Clone)]
pub struct Assembled {
    /// The validated configuration.
    pub config: Config,
    /// The `lifeboat.yaml` it was read from.
    pub text: String,
}

/// Assembles and validates the configuration in `state_dir` (the daemon's state
/// folder, which also anchors relative paths such as an endpoints file). Resources are
/// taken in name order, so the same cluster always gives the same config. Errors list
/// every problem, each naming its resource (`Workload/api: depends_on[0]: ...`).
pub fn assemble(
    providers: &[Provider],
    workloads: &[Workload],
    policies: &[Policy],
    state_dir: &Path,
) -> anyhow::Result<Assembled> {
    let policy = pick_policy(policies)?;
    let mut providers: Vec<&Provider> = providers.iter().collect();
    providers.sort_by_key(|p| p.name_any());
    let mut workloads: Vec<&Workload> = workloads.iter().collect();
    workloads.sort_by_key(|w| w.name_any());

    // A vendor and its accounts are implied by the providers that name them.
    let mut vendors: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for p in &providers {
        let accounts = vendors.entry(p.spec.vendor.as_str()).or_default();
        if let Some(account) = &p.spec.account {
            accounts.insert(account);
        }
    }
    let vendors: Vec<Value> = vendors
        .iter()
        .map(|(name, accounts)| json!({ "name": name, "accounts": accounts }))
        .collect();

    let providers_json = providers
        .iter()
        .map(|p| named(p.name_any(), serde_json::to_value(&p.spec)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let workloads_json = workloads
        .iter()
        .map(|w| named(w.name_any(), serde_json::to_value(&w.spec)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut policy_json = serde_json::to_value(&policy.spec).context("reading the Policy")?;
    let cutover = policy_json
        .as_object_mut()
        .and_then(|o| o.remove("cutover"))
        .unwrap_or(Value::Null);

    let raw = json!({
        "vendors": vendors,
        "providers": providers_json,
        "workloads": workloads_json,
        "policy": policy_json,
        "cutover": cutover,
        "state_dir": state_dir,
    });
    let text = format!(
        "# Assembled by `lifeboat run --kubernetes` from the cluster's resources.\n{}",
        serde_yaml::to_string(&raw).context("writing the assembled configuration")?
    );
    let source = state_dir.join("cluster.yaml");
    match config::parse(&text, &source) {
        Ok(config) => Ok(Assembled { config, text }),
        Err(errors) => {
            let names = ResourceNames {
                providers: providers.iter().map(|p| p.name_any()).collect(),
                workloads: workloads.iter().map(|w| w.name_any()).collect(),
                policy: policy.name_any(),
            };
            let findings: Vec<String> = errors
                .diagnostics
                .iter()
                .map(|d| names.describe(&d.path, &d.message))
                .collect();
            anyhow::bail!("{}", findings.join("\n"))
        }
    }
}

/// The Policy the daemon reads, if the choice is clear (see [`assemble`]).
pub fn chosen_policy(policies: &[Policy]) -> Option<&Policy> {
    pick_policy(policies).ok()
}

/// The Policy to read: the one called `default`, else the only one.
fn pick_policy(policies: &[Policy]) -> anyhow::Result<&Policy> {
    if let Some(p) = policies.iter().find(|p| p.name_any() == DEFAULT_POLICY) {
        return Ok(p);
    }
    match policies {
        [only] => Ok(only),
        [] => anyhow::bail!(
            "no Policy resource: lifeboat needs one (called `{DEFAULT_POLICY}`) for its cutover"
        ),
        _ => anyhow::bail!(
            "{} Policy resources and none called `{DEFAULT_POLICY}`: which one applies is unclear",
            policies.len()
        ),
    }
}

/// A spec as a `lifeboat.yaml` entry: the resource's name first, then its spec.
fn named(name: String, spec: serde_json::Result<Value>) -> anyhow::Result<Value> {
    let spec = spec.with_context(|| format!("reading the spec of {name}"))?;
    let mut entry = Map::new();
    entry.insert("name".into(), Value::String(name));
    if let Value::Object(fields) = spec {
        entry.extend(fields);
    }
    Ok(Value::Object(entry))
}

/// Maps the field paths of the assembled file back to the resources they came from.
struct ResourceNames {
    providers: Vec<String>,
    workloads: Vec<String>,
    policy: String,
}

impl ResourceNames {
    fn describe(&self, path: &str, message: &str) -> String {
        let indexed = |prefix: &str, names: &[String], kind: &str| -> Option<String> {
            let rest = path.strip_prefix(prefix)?;
            let (index, rest) = rest.split_once(']')?;
            let name = names.get(index.parse::<usize>().ok()?)?;
            let field = rest.trim_start_matches('.');
            Some(if field.is_empty() {
                format!("{kind}/{name}: {message}")
            } else {
                format!("{kind}/{name}: spec.{field}: {message}")
            })
        };
        indexed("providers[", &self.providers, "Provider")
            .or_else(|| indexed("workloads[", &self.workloads, "Workload"))
            .or_else(|| {
                let field = path
                    .strip_prefix("policy")
                    .or_else(|| path.strip_prefix("cutover").map(|_| path))?;
                let field = field.trim_start_matches('.');
                Some(format!("Policy/{}: spec.{field}: {message}", self.policy))
            })
            .unwrap_or_else(|| {
                if path.is_empty() {
                    message.to_owned()
                } else {
                    format!("{path}: {message}")
                }
            })
    }
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
