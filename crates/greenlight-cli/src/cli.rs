//! The command line (clap derive).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use crate::outcome::EXIT_CODES_HELP;

/// greenlight: deploy a bundle through greenlight's blue/green pipeline and
/// follow it, on AWS or on the local cloud.
#[derive(Debug, Parser)]
#[command(name = "greenlight", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Print JSON (one document) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// AWS profile (standard credential chain otherwise).
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// AWS region.
    #[arg(long, global = true, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Endpoint of every service, e.g. the local cloud's `http://127.0.0.1:PORT`.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// The artifact bucket (the stack's `ArtifactBucketName` output).
    #[arg(long, global = true, env = "GREENLIGHT_BUCKET")]
    pub bucket: Option<String>,
    /// Key prefix of uploads (`ArtifactPrefix`).
    #[arg(
        long,
        global = true,
        env = "GREENLIGHT_PREFIX",
        default_value = "artifacts/"
    )]
    pub prefix: String,
    /// The pipeline state machine's ARN (the stack's state machine output).
    #[arg(long, global = true, env = "GREENLIGHT_STATE_MACHINE_ARN")]
    pub state_machine_arn: Option<String>,
    /// The failure reports' bucket (`ReportBucket`).
    #[arg(long, global = true, env = "GREENLIGHT_REPORT_BUCKET")]
    pub report_bucket: Option<String>,
    /// Key prefix of failure reports (`REPORT_PREFIX`).
    #[arg(
        long,
        global = true,
        env = "GREENLIGHT_REPORT_PREFIX",
        default_value = "greenlight-reports/"
    )]
    pub report_prefix: String,
    /// Real seconds per AWS second of the endpoint: the local cloud's time
    /// scale (0.1 by default there), so phase durations read in AWS seconds
    /// like their predictions. 1 on AWS.
    #[arg(
        long,
        global = true,
        env = "GREENLIGHT_TIME_SCALE",
        default_value_t = 1.0
    )]
    pub time_scale: f64,
    /// Seconds between two looks while following.
    #[arg(long, global = true, default_value_t = 3)]
    pub interval: u64,
}

/// An application and deployment group.
#[derive(Debug, Clone, Args)]
pub struct GroupArgs {
    /// CodeDeploy application.
    #[arg(long)]
    pub app: String,
    /// CodeDeploy deployment group.
    #[arg(long)]
    pub group: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload a bundle under greenlight's key convention
    /// (`<prefix><app>/<file>.zip`) and follow the execution it starts.
    Deploy {
        /// The revision bundle (.zip, appspec.yml at its root); its file name
        /// without .zip is the revision label.
        bundle: PathBuf,
        #[command(flatten)]
        group: GroupArgs,
        /// Upload under this prefix instead (a `KEY_MAPPING` prefix for a group
        /// other than the trigger's default).
        #[arg(long)]
        key_prefix: Option<String>,
        /// Wait for the outcome (exit code from it).
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds (exit 7; the deployment goes on).
        #[arg(long)]
        timeout: Option<u64>,
        /// Seconds to wait for the trigger to start the execution before
        /// calling the upload rejected.
        #[arg(long, default_value_t = 120)]
        start_timeout: u64,
    },
    /// The state of a deployment or execution (default: the group's latest).
    Status {
        /// A deployment id (d-...), an execution ARN or name.
        subject: Option<String>,
        #[arg(long, requires = "group")]
        app: Option<String>,
        #[arg(long, requires = "app")]
        group: Option<String>,
    },
    /// Wait until a deployment or execution ends; the exit code is its outcome.
    Wait {
        /// A deployment id (d-...), an execution ARN or name.
        subject: Option<String>,
        #[arg(long, requires = "group")]
        app: Option<String>,
        #[arg(long, requires = "app")]
        group: Option<String>,
        /// Give up after this many seconds (exit 7; the deployment goes on). No limit by default.
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Follow a deployment live: phases against their predictions, each
    /// instance's lifecycle event, the diagnosis on failure. Ctrl-C stops
    /// watching, never the deployment.
    Watch {
        /// A deployment id (d-...), an execution ARN or name.
        subject: Option<String>,
        #[arg(long, requires = "group")]
        app: Option<String>,
        #[arg(long, requires = "app")]
        group: Option<String>,
    },
    /// Past deployments of a group: revision, result, per-phase actual vs predicted.
    History {
        #[command(flatten)]
        group: GroupArgs,
        /// How many deployments, newest first.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// How far back, in days.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Also write the timeline (phases actual vs predicted, instances) to
        /// this file as a self-contained HTML page (no network needed to view it).
        #[arg(long, value_name = "FILE")]
        html: Option<std::path::PathBuf>,
    },
    /// The failure report the failure handler stored for a deployment.
    Logs {
        /// The deployment id (d-...).
        deployment: String,
    },
    /// Approve an execution's pending approval (SendTaskSuccess) if it waits
    /// for one; else let a deployment waiting at the gate (Ready) move
    /// traffic (ContinueDeployment READY_WAIT).
    Promote {
        /// The deployment id (d-...), or an execution ARN or name.
        subject: String,
    },
    /// Reject an execution's pending approval (SendTaskFailure) if it waits
    /// for one; else stop the deployment and roll it back (StopDeployment
    /// with rollback).
    Abort {
        /// The deployment id (d-...), or an execution ARN or name.
        subject: String,
    },
    /// Read-only: check a deployment group's prerequisites (each failure with
    /// its exact fix) and predict each phase with the target group's current
    /// settings and with greenlight's profile. Exit 3 when a check fails.
    Plan {
        #[command(flatten)]
        group: GroupArgs,
        /// Instances in the fleet, for the predictions.
        #[arg(long, default_value_t = 2)]
        instances: u32,
        /// The pipeline's DeploymentTimeoutSeconds (the Ready wait must fit in it).
        #[arg(long, default_value_t = 3600)]
        deployment_timeout_seconds: u32,
        /// The pipeline's PostRerouteTimeoutSeconds (the termination wait must fit in it).
        #[arg(long, default_value_t = 10800)]
        post_reroute_timeout_seconds: u32,
        /// The group's approval deadline (`deadlineSeconds` of its
        /// ApprovalConfig entry): the Ready wait must exceed it by 300 s.
        /// Without it, the default deadline (1800 s) is checked and a
        /// mismatch is reported as unknown, not failed.
        #[arg(long, value_name = "SECONDS")]
        approval_deadline: Option<u32>,
        /// The `standbyTargetGroup` of the group's BakeConfig entry: check
        /// that it exists and matches the deployment's target group
        /// (protocol, port, VPC, target type, health check), is tagged for
        /// the application and that nothing forwards to it yet.
        #[arg(long, value_name = "NAME")]
        standby_target_group: Option<String>,
    },
    /// Redeploy the group's last good revision through the same pipeline
    /// (a copy of it under a new key).
    Rollback {
        #[command(flatten)]
        group: GroupArgs,
        /// Wait for the outcome.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds.
        #[arg(long)]
        timeout: Option<u64>,
        /// How far back to look for the last good revision, in days.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
}
