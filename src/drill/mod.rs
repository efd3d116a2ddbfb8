//! Drills: the real detect → decide → plan → execute → cut over path run against a
//! synthetic fence, measured by an independent prober, reported.

mod assemble;
mod chart;
pub mod cleanup;
pub mod compare;
pub mod guard;
mod html;
pub mod measured;
pub mod prober;
pub mod report;
pub mod run;
pub mod scheduled;
pub mod through_daemon;
mod words;
pub mod writer;
