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
//! * [`conditions`], [`decide`], [`plan`] and [`deadline`] are the pure core: signals → each
//!   provider's condition → which providers to leave → which workload goes where. No
//!   I/O, no clock: `now` is a parameter.
//! * [`watch`] (pure too) follows each workload's live copy: unhealthy past its grace
//!   period, it is replaced, within a limit.
//! * [`probe`] turns providers' answers into signals; [`controller`] runs one round of
//!   probe → conditions → decide → plan → execute, which [`daemon`] repeats and
//!   [`drill`] measures.
//! * [`execute`] runs a plan's moves, make before break; [`hooks`] runs cutover hooks
//!   through [`command`], which the exec cutover shares.
//! * [`installation`] says who "we" are: the owner every managed resource carries.
//! * [`store`] keeps placements, the journal and conditions in SQLite.
//! * [`cutover`] moves traffic (endpoints file, exec hook, DNS).
//! * [`providers`] builds the adapters a config names; [`fault`] wraps them for drills.
//! * [`schedule`] reads the cron schedules of the daemon's drills.
//! * [`demo`] is the small HTTP service the quickstart runs as its workloads.
//! * [`k8s`] (feature `kubernetes`) is lifeboat inside a cluster: CRDs, and the daemon
//!   that reads them, elects a leader and mirrors state into their status.
//! * [`control`] is what an operator holds while the daemon runs (the kill switch,
//!   approvals); [`api`] serves it, the state and [`metrics`] over HTTP; [`notify`]
//!   tells people (webhooks) what happened.
//! * [`cli`] is the command line; [`logging`] how it writes to stderr (text or JSON).
//!
//! Provider adapters live in their own crates behind the `lifeboat-provider` contract.

pub mod api;
pub mod cli;
pub mod clock;
pub mod command;
pub mod conditions;
pub mod config;
pub mod control;
pub mod controller;
pub mod cutover;
pub mod daemon;
pub mod dataset;
pub mod deadline;
pub mod decide;
pub mod demo;
pub mod drill;
pub mod execute;
pub mod fault;
pub mod hooks;
pub mod installation;
#[cfg(feature = "kubernetes")]
pub mod k8s;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod plan;
pub mod postgres_copy;
pub mod probe;
pub mod providers;
pub mod schedule;
pub mod store;
pub(crate) mod table;
#[cfg(test)]
pub(crate) mod testing;
pub mod watch;
pub mod workload;
