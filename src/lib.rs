//! lifeboat keeps a service alive when a hosting vendor drops it.
//!
//! The flow runs one way:
//!
//! ```text
//! config ─► probes ─► signals ─► conditions ─► decide ─► plan ─► execute ─► cutover
//!                                 (pure)       (pure)   (pure)   (async)
//!                                                                   │
//!                                                store (journal, placements, conditions)
//! ```
//!
//! * [`config`] reads and validates `lifeboat.yaml`.
//! * [`model`] is the plain data the pure core works on.
//! * [`conditions`], [`decide`] and [`plan`] are the pure core: signals → each
//!   provider's condition → which providers to leave → which workload goes where. No
//!   I/O, no clock: `now` is a parameter.
//! * [`cutover`] moves traffic (endpoints file, exec hook, DNS).
//! * [`providers`] builds the adapters a config names; [`fault`] wraps them for drills.
//! * [`demo`] is the small HTTP service the quickstart runs as its workloads.
//!
//! Provider adapters live in their own crates behind the `lifeboat-provider` contract.

pub mod conditions;
pub mod config;
pub mod cutover;
pub mod decide;
pub mod demo;
pub mod drill;
pub mod fault;
pub mod model;
pub mod plan;
pub mod probe;
pub mod providers;
#[cfg(test)]
pub(crate) mod testing;
