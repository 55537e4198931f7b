//! greenlight's local cloud (see crates/local-cloud/README.md).

pub mod cli;
pub mod clock;
pub mod cloud;
pub mod codedeploy;
pub mod codepipeline;
pub mod emulated;
pub mod execution_events;
pub mod fault_cli;
pub mod faults;
pub mod fleet;
pub mod follow;
pub mod front;
pub mod lambda_host;
pub mod load_balancer;
pub mod loadgen;
pub mod moto;
pub mod provision;
pub mod relay;
pub mod revisions;
pub mod scale;
pub mod scenarios;
pub mod service;
pub mod statemachine;
