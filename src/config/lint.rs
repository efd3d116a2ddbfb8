//! Warnings about a valid config: nothing is broken, but a vendor dropping us would
//! hurt more than it needs to.

use std::collections::BTreeSet;

use super::{Config, Diagnostic};

/// Findings that do not stop lifeboat from running the config but weaken it, in file
/// order, each pointing at the node it concerns:
///
/// * a workload whose placement names providers of only one vendor (it would be
///   stranded if that vendor dropped us);
/// * a provider no workload lists in its placement (it can never be used);
/// * a provider named like a vendor (`--lose NAME` would mean the vendor, never the
///   provider).
pub fn lint(config: &Config) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for (i, workload) in config.workloads.iter().enumerate() {
        let providers: Vec<_> = (workload.placement.iter())
            .filter_map(|name| config.provider(name))
            .collect();
        let vendors: BTreeSet<&str> = providers.iter().map(|p| p.vendor.as_str()).collect();
        let path = format!("workloads[{i}].placement");
        if let [vendor] = vendors.into_iter().collect::<Vec<_>>()[..] {
            found.push(config.diagnostic(
                &path,
                format!(
                    "every provider in the placement of {:?} is at vendor {vendor:?}: \
                     it would be stranded if vendor {vendor:?} drops us",
                    workload.name
                ),
            ));
        }
    }
    for (i, provider) in config.providers.iter().enumerate() {
        if !(config.workloads.iter()).any(|w| w.placement.contains(&provider.name)) {
            found.push(config.diagnostic(
                &format!("providers[{i}].name"),
                format!(
                    "no workload lists provider {:?} in its placement; it is never used",
                    provider.name
                ),
            ));
        }
        if config.vendors.iter().any(|v| v.name == provider.name) {
            found.push(config.diagnostic(
                &format!("providers[{i}].name"),
                format!(
                    "provider {:?} has the name of a vendor: `--lose {}` means the vendor, \
                     not this provider",
                    provider.name, provider.name
                ),
            ));
        }
    }
    found.sort_by_key(|d| (d.line, d.column));
    found
}
