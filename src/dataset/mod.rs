//! Datasets, the controller's side: which provider keeps a stateful workload's warm
//! standby, what a member is told when it starts, and each dataset's state as the last
//! round saw it (`status`, the API and the metrics show it).
//!
//! The standby is a copy of the workload at the generation its next move will have (the
//! primary's plus one), so the move's idempotent deploy finds it already seeded and
//! streaming, and the move is a promotion rather than a base backup; generation fencing
//! leaves it alone (it is newer than the placement, not older). What a method does with
//! the members is the [`Replication`] contract of `datasets/api`; the keeping is
//! [`keeper`], the pure choices are here.

pub mod keeper;
pub mod shipping;
mod state;

pub use shipping::{Shipping, Snapshot};
pub use state::{DatasetState, LagReading, Member, StandbyCopy};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lifeboat_dataset::{MEMBER_ENV, PRIMARY_ENV, Replication, STANDBY_NAME_ENV};
use lifeboat_dataset_postgres::PostgresStreaming;
use lifeboat_provider::{Endpoint, Generation, Owner, WorkloadSpec};

use crate::config::{Config, DataCredentials, DataMethod, WorkloadConfig};

/// The replication method of every workload that has data, ready to call: a
/// [`Replication`] for a streaming method, the [`Shipping`] hooks for snapshots.
#[derive(Clone, Default)]
pub struct Datasets {
    methods: BTreeMap<String, Arc<dyn Replication>>,
    shipping: BTreeMap<String, Arc<Shipping>>,
}

/// Names the workloads only: a method holds credentials.
impl std::fmt::Debug for Datasets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (f.debug_set().entries(self.methods.keys()))
            .entries(self.shipping.keys())
            .finish()
    }
}

impl Datasets {
    /// The methods of `config`'s workloads, each logging in with its credentials (read
    /// now, so a missing password file fails at start-up, not at failover) and giving
    /// every call `timeout`.
    pub fn build(config: &Config, timeout: Duration) -> anyhow::Result<Datasets> {
        let mut datasets = Datasets::default();
        for w in &config.workloads {
            let Some(data) = &w.data else { continue };
            match data.method {
                DataMethod::PostgresStreaming => {
                    let context = || format!("the credentials of workload {}'s data", w.name);
                    let creds = data.credentials.clone().unwrap_or_default();
                    let password = password(config, &creds).with_context(context)?;
                    let method = PostgresStreaming::new(creds.user, password, "postgres", timeout);
                    datasets.methods.insert(w.name.clone(), Arc::new(method));
                }
                DataMethod::Snapshot => {
                    let shipping = Shipping::new(config, data).with_context(|| {
                        format!("workload {}'s snapshot dataset has no `every`", w.name)
                    })?;
                    datasets.shipping.insert(w.name.clone(), shipping);
                }
            }
        }
        Ok(datasets)
    }

    /// The streaming method of `workload`, when its data has one.
    pub fn method(&self, workload: &str) -> Option<&Arc<dyn Replication>> {
        self.methods.get(workload)
    }

    /// The snapshot hooks of `workload`, when its data is shipped as snapshots.
    pub fn shipping(&self, workload: &str) -> Option<&Arc<Shipping>> {
        self.shipping.get(workload)
    }

    /// Whether no workload has data.
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty() && self.shipping.is_empty()
    }
}

fn password(config: &Config, creds: &DataCredentials) -> anyhow::Result<Option<String>> {
    if let Some(file) = &creds.password_file {
        let path = config.resolve_path(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the password file {}", path.display()))?;
        return Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()));
    }
    if let Some(var) = &creds.password_env {
        let value = std::env::var(var)
            .with_context(|| format!("the environment variable {var} (password_env)"))?;
        return Ok(Some(value));
    }
    Ok(None)
}

/// The name the member of `workload` at `generation` streams under, as a standby: the
/// same name its data folder has, so logs and `pg_stat_replication` agree.
pub fn standby_name(workload: &str, generation: Generation) -> String {
    format!("{workload}-{generation}")
}

/// Where `workload`'s standby goes while its primary runs on `primary`: the first of
/// its standby candidates (its `data.standby`, else its placement) at another vendor
/// than the primary's that is not being left. `None` when there is none: the dataset
/// is unprotected, and says so.
pub fn standby_target<'a>(
    config: &'a Config,
    workload: &'a WorkloadConfig,
    primary: &str,
    leaving: &BTreeSet<String>,
) -> Option<&'a str> {
    let data = workload.data.as_ref()?;
    let vendor = |name: &str| config.provider(name).map(|p| p.vendor.as_str());
    let primary_vendor = vendor(primary);
    let candidates = if data.standby.is_empty() {
        &workload.placement
    } else {
        &data.standby
    };
    candidates
        .iter()
        .map(String::as_str)
        .filter(|name| !leaving.contains(*name))
        .find(|name| vendor(name).is_some_and(|v| Some(v) != primary_vendor))
}

/// Names a new member of a dataset (see [`MEMBER_ENV`]): every member gets it, the
/// first primary too.
pub fn name_member(spec: &mut WorkloadSpec, generation: Generation, owner: &Owner) {
    let member = format!("{}-{generation}-{}", spec.name, owner.discriminator());
    spec.env.insert(MEMBER_ENV.into(), member);
}

/// Tells a new member of a dataset to start as a standby of `primary`, streaming under
/// the name of its `generation`.
pub fn as_standby_of(spec: &mut WorkloadSpec, primary: &Endpoint, generation: Generation) {
    spec.env.insert(PRIMARY_ENV.into(), primary.to_string());
    spec.env.insert(
        STANDBY_NAME_ENV.into(),
        standby_name(&spec.name, generation),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(standby: &str) -> Config {
        let yaml = format!(
            "vendors: [{{name: a}}, {{name: b}}, {{name: c}}]
providers:
  - {{name: a1, vendor: a, adapter: {{kind: sim}}}}
  - {{name: a2, vendor: a, adapter: {{kind: sim}}}}
  - {{name: b1, vendor: b, adapter: {{kind: sim}}}}
  - {{name: c1, vendor: c, adapter: {{kind: sim}}}}
workloads:
  - name: db
    command: [x]
    placement: [a1, a2, b1, c1]
    data: {{method: postgres-streaming, rpo: 5s, credentials: {{user: u}}{standby}}}
cutover: {{kind: endpoints-file, path: e.json}}
"
        );
        crate::config::parse(&yaml, "lifeboat.yaml".as_ref()).unwrap()
    }

    fn leaving(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn the_standby_goes_to_the_first_candidate_at_another_vendor_than_the_primary() {
        let c = config("");
        let w = &c.workloads[0];
        assert_eq!(standby_target(&c, w, "a1", &leaving(&[])), Some("b1"));
        // After a move to b1, the primary's vendor is b: the standby goes back to a.
        assert_eq!(standby_target(&c, w, "b1", &leaving(&[])), Some("a1"));
        assert_eq!(standby_target(&c, w, "b1", &leaving(&["a1"])), Some("a2"));
        assert_eq!(standby_target(&c, w, "a1", &leaving(&["b1"])), Some("c1"));
        assert_eq!(
            standby_target(&c, w, "b1", &leaving(&["a1", "a2", "c1"])),
            None
        );
    }

    #[test]
    fn a_listed_standby_is_kept_to_its_list() {
        let c = config(", standby: [c1]");
        let w = &c.workloads[0];
        assert_eq!(standby_target(&c, w, "a1", &leaving(&[])), Some("c1"));
        assert_eq!(standby_target(&c, w, "c1", &leaving(&[])), None);
    }

    #[test]
    fn a_standby_member_learns_its_primary_and_its_stream() {
        let w = &config("").workloads[0];
        let mut spec = crate::workload::spec(w);
        let primary = Endpoint {
            host: "127.0.0.1".into(),
            port: 5432,
        };
        as_standby_of(&mut spec, &primary, Generation(3));
        assert_eq!(spec.env[PRIMARY_ENV], "127.0.0.1:5432");
        assert_eq!(spec.env[STANDBY_NAME_ENV], "db-3");
    }
}
