//! Test-only builders for [`Config`] values and proptest strategies over whole worlds
//! (config, placements, conditions), shared by the pure core's tests.
//!
//! Providers and workloads are built through serde from small JSON objects, so fields
//! added to the config types later with a default do not break these builders.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::Timestamp;
use lifeboat_provider::{Capacity, ErrorClass, Generation};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::json;

use crate::config::{
    Config, CutoverConfig, PolicyConfig, ProviderConfig, VendorConfig, WorkloadConfig,
};
use crate::model::{Condition, Placement};

/// A fixed instant plus `secs`, so tests read in seconds from an origin.
pub(crate) fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("a valid instant")
}

/// Capacity in replicas only.
pub(crate) fn replicas(n: u64) -> Capacity {
    Capacity {
        replicas: Some(n),
        ..Capacity::default()
    }
}

/// A placement of `workload` on `provider`.
pub(crate) fn placed(
    workload: &str,
    provider: &str,
    generation: u64,
    since: Timestamp,
) -> Placement {
    Placement {
        workload: workload.to_owned(),
        provider: provider.to_owned(),
        generation: Generation(generation),
        deployment: None,
        since,
    }
}

/// Builds a [`Config`] without files or validation.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    vendors: Vec<VendorConfig>,
    providers: Vec<ProviderConfig>,
    workloads: Vec<WorkloadConfig>,
    policy: PolicyConfig,
}

impl Builder {
    pub(crate) fn new() -> Self {
        Builder::default()
    }

    /// Adds a provider (and its vendor/account when new).
    pub(crate) fn provider(
        mut self,
        name: &str,
        vendor: &str,
        account: Option<&str>,
        capacity: Capacity,
    ) -> Self {
        let v = match self.vendors.iter_mut().position(|v| v.name == vendor) {
            Some(i) => &mut self.vendors[i],
            None => {
                self.vendors.push(VendorConfig {
                    name: vendor.to_owned(),
                    accounts: vec![],
                });
                self.vendors.last_mut().expect("just pushed")
            }
        };
        if let Some(a) = account
            && !v.accounts.iter().any(|x| x == a)
        {
            v.accounts.push(a.to_owned());
        }
        let p = json!({
            "name": name, "vendor": vendor, "account": account,
            "capacity": capacity, "adapter": {"kind": "sim"},
        });
        self.providers
            .push(serde_json::from_value(p).expect("a provider"));
        self
    }

    /// Adds a workload of one replica with no resources stated.
    pub(crate) fn workload(self, name: &str, placement: &[&str]) -> Self {
        self.workload_with(name, placement, 1, 0, &[])
    }

    /// Adds a workload with replicas, CPU per replica and dependencies.
    pub(crate) fn workload_with(
        mut self,
        name: &str,
        placement: &[&str],
        replicas: u32,
        cpu_millis: u64,
        depends_on: &[&str],
    ) -> Self {
        let w = json!({
            "name": name, "command": ["lifeboat", "demo"], "placement": placement,
            "replicas": replicas, "resources": {"cpu_millis": cpu_millis},
            "depends_on": depends_on,
        });
        self.workloads
            .push(serde_json::from_value(w).expect("a workload"));
        self
    }

    /// Replaces the policy.
    pub(crate) fn policy(mut self, policy: PolicyConfig) -> Self {
        self.policy = policy;
        self
    }

    pub(crate) fn build(self) -> Config {
        Config::from_parts(
            PathBuf::from("test.yaml"),
            self.vendors,
            self.providers,
            self.workloads,
            self.policy,
            CutoverConfig::EndpointsFile {
                path: PathBuf::from("endpoints.json"),
            },
            None,
            PathBuf::from(".lifeboat"),
        )
    }
}

const VENDORS: [&str; 3] = ["acme", "bolt", "self"];
const ACCOUNTS: [&str; 2] = ["prod", "dr"];

/// Random valid configs: 1–6 providers over 3 vendors (with or without accounts), small
/// capacities, 0–8 workloads whose `depends_on` point only at earlier ones (no cycle).
pub(crate) fn arb_config() -> impl Strategy<Value = Config> {
    (1usize..=6)
        .prop_flat_map(|np| {
            let provider = (
                0usize..3,
                prop::option::of(0usize..2),
                prop::option::of(0u64..6),
                prop::option::of(0u64..3000),
            );
            let workload = (
                1u32..=3,
                0u64..1000,
                prop::collection::vec(0usize..np, 1..=np),
                prop::collection::vec(any::<Index>(), 0..3),
            );
            (
                prop::collection::vec(provider, np),
                prop::collection::vec(workload, 0..8),
            )
        })
        .prop_map(|(providers, workloads)| {
            let mut b = Builder::new();
            let names: Vec<String> = (0..providers.len()).map(|i| format!("p{i}")).collect();
            for (i, (v, a, r, cpu)) in providers.into_iter().enumerate() {
                let cap = Capacity {
                    replicas: r,
                    cpu_millis: cpu,
                    memory_mib: None,
                };
                b = b.provider(&names[i], VENDORS[v], a.map(|a| ACCOUNTS[a]), cap);
            }
            for (i, (replicas, cpu, prefs, deps)) in workloads.into_iter().enumerate() {
                let mut placement: Vec<&str> = Vec::new();
                for p in prefs {
                    if !placement.contains(&names[p].as_str()) {
                        placement.push(&names[p]);
                    }
                }
                let dep_names: Vec<String> = if i == 0 {
                    vec![]
                } else {
                    let mut d: Vec<String> =
                        deps.iter().map(|x| format!("w{}", x.index(i))).collect();
                    d.sort();
                    d.dedup();
                    d
                };
                let dep_refs: Vec<&str> = dep_names.iter().map(String::as_str).collect();
                b = b.workload_with(&format!("w{i}"), &placement, replicas, cpu, &dep_refs);
            }
            b.build()
        })
}

/// A config plus current placements (some workloads unplaced, some recently moved),
/// and a condition for every provider, all at `t(10_000)`.
pub(crate) fn arb_world()
-> impl Strategy<Value = (Config, Vec<Placement>, BTreeMap<String, Condition>)> {
    arb_config().prop_flat_map(|config| {
        let np = config.providers.len();
        let nw = config.workloads.len();
        let placement = prop::option::of((any::<Index>(), 1u64..5, 0i64..2000));
        let condition = arb_condition();
        (
            Just(config),
            prop::collection::vec(placement, nw),
            prop::collection::vec(condition, np),
        )
            .prop_map(|(config, ps, cs)| {
                let placements = config
                    .workloads
                    .iter()
                    .zip(ps)
                    .filter_map(|(w, p)| {
                        let (i, g, age) = p?;
                        let provider = w.placement.get(i.index(w.placement.len()))?;
                        Some(placed(&w.name, provider, g, t(10_000 - age)))
                    })
                    .collect();
                let conditions = config
                    .providers
                    .iter()
                    .zip(cs)
                    .map(|(p, c)| (p.name.clone(), c))
                    .collect();
                (config, placements, conditions)
            })
    })
}

/// Any condition, weighted towards the ones that make providers leave.
pub(crate) fn arb_condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        3 => Just(Condition::Healthy),
        1 => Just(Condition::Degraded { reason: "throttled".into() }),
        2 => (0i64..10_000).prop_map(|s| Condition::Unreachable { since: t(s) }),
        1 => (9_900i64..10_000).prop_map(|s| Condition::Failing { since: t(s) }),
        1 => prop::sample::select(vec![ErrorClass::AccountSuspended, ErrorClass::CredentialsRejected])
            .prop_map(|c| Condition::Suspended { reason: c, since: t(9_000) }),
        1 => (0i64..100_000).prop_map(|s| Condition::Noticed { deadline: t(s) }),
        1 => Just(Condition::Fenced { by: "drill".into() }),
    ]
}
