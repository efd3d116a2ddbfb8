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
//! * [`cutover`] moves traffic (endpoints file, exec hook, DNS).
//! * [`execute`] runs a plan's moves, make before break; [`hooks`] runs cutover hooks.
//! * [`store`] keeps placements, the journal and conditions in SQLite.
//!
//! Provider adapters live in their own crates behind the `lifeboat-provider` contract.

pub mod config;
pub mod cutover;
pub mod execute;
pub mod hooks;
pub mod model;
pub mod store;
pub mod workload;
