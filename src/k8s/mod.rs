//! lifeboat inside Kubernetes: custom resources for its configuration and state, and
//! `lifeboat run --kubernetes`, the daemon that reads them.
//!
//! * [`resources`]: the CRD types (`Provider`, `Workload`, `Policy`, `Notice`, `Drill`,
//!   `Evacuation`); [`crds`] prints their definitions.
//! * [`cluster`]: the resources → a validated [`crate::config::Config`] (pure).
//! * [`conditions`]: status conditions in the usual Kubernetes shape (pure).
//! * [`watched`]: the resources as reflectors fed by watches.
//! * [`intents`]: the kill switch and approvals, as annotations on the Policy (pure).
//! * [`drills`]: which `Drill` resources the daemon runs, and their status (pure).
//! * [`sync`]: placements from `Workload` status and `Notice` resources into the store.
//! * [`daemon`]: leader election, the controller loop, status mirroring and Events.

pub mod cluster;
pub mod conditions;
pub mod crds;
pub mod daemon;
pub mod drills;
pub mod intents;
pub mod resources;
pub mod sync;
pub mod watched;
pub mod writer;
