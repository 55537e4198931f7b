//! greenlight's functional core.
//!
//! Every decision the pipeline makes is a synchronous pure function here:
//! all inputs (including `now` and ids) are arguments, results are plain
//! enums and structs, and nothing here knows about the AWS SDK. The Lambda
//! crates under `functions/` read the world, call these, and act.

pub mod announce;
pub mod approval;
pub mod bake;
pub mod errors;
pub mod group_config;
pub mod group_resource;
pub mod hook;
pub mod metrics;
pub mod model;
pub mod options;
pub mod page;
pub mod plan;
pub mod probe;
pub mod runbook;
pub mod scaling;
pub mod standby_plan;
pub mod trigger;
pub mod tuning;
pub mod wake;
pub mod watch;

pub use model::*;
