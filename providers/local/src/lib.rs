//! The `local` provider: workloads as real processes on this host. The embedded default,
//! so a drill runs on one machine with nothing else installed.

use serde::{Deserialize, Serialize};

/// Settings of a `kind: local` provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// Ports this provider hands out to its workloads, `FIRST-LAST` (two local providers
    /// on one host must not overlap).
    pub ports: String,
}
