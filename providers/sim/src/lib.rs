//! The `sim` provider: in memory, with configurable latency, capacity and faults.

use serde::{Deserialize, Serialize};

/// Settings of a `kind: sim` provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {}
