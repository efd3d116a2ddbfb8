//! Drills: the real detect → decide → plan → execute → cut over path run against a
//! synthetic fence, measured by an independent prober, reported.

mod assemble;
pub mod cleanup;
pub mod guard;
pub mod prober;
pub mod report;
pub mod run;
