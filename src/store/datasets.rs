//! Each dataset as the last round saw it: what `lifeboat status` shows of the data.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::Store;
use super::keyed::Keyed;
use crate::dataset::{DatasetState, Snapshot};

const DATASETS: Keyed = Keyed {
    table: "datasets",
    key: "workload",
    value: "state",
    what: "the datasets",
};

impl Store {
    /// Stores every dataset's state, in one transaction (one write a round); datasets
    /// not in `datasets` are forgotten, except those of `moving`, left as they are: a
    /// move writes what it did to them (see [`Store::record_snapshot`]).
    pub fn put_datasets(
        &self,
        datasets: &BTreeMap<String, DatasetState>,
        moving: &BTreeSet<String>,
        at: Timestamp,
    ) -> anyhow::Result<()> {
        self.put_keyed(DATASETS, datasets, moving, at, true)
    }

    /// Records that `workload`'s data is in `snapshot` now (a move took it, or restored
    /// from it): its age is the dataset's recovery point from here on.
    pub fn record_snapshot(
        &self,
        workload: &str,
        snapshot: &Snapshot,
        at: Timestamp,
    ) -> anyhow::Result<()> {
        self.update_keyed(DATASETS, workload, at, |state: Option<DatasetState>| {
            let mut state = state?;
            state.snapshot = Some(snapshot.clone());
            Some(state)
        })
    }

    /// Every dataset's stored state.
    pub fn datasets(&self) -> anyhow::Result<BTreeMap<String, DatasetState>> {
        self.keyed(DATASETS)
    }
}
