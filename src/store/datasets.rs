//! Each dataset as the last round saw it: what `lifeboat status` shows of the data.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::Store;
use super::keyed::Keyed;
use crate::dataset::DatasetState;

const DATASETS: Keyed = Keyed {
    table: "datasets",
    key: "workload",
    value: "state",
    what: "the datasets",
};

impl Store {
    /// Stores every dataset's state, in one transaction (one write a round); datasets
    /// not in `datasets` are forgotten.
    pub fn put_datasets(
        &self,
        datasets: &BTreeMap<String, DatasetState>,
        at: Timestamp,
    ) -> anyhow::Result<()> {
        self.put_keyed(DATASETS, datasets, at, true)
    }

    /// Every dataset's stored state.
    pub fn datasets(&self) -> anyhow::Result<BTreeMap<String, DatasetState>> {
        self.keyed(DATASETS)
    }
}
