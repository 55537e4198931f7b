//! Shared set-up for the end-to-end tests: one local cloud per test, on free
//! loopback ports, with a time scale that keeps a deployment to seconds.

pub mod reliability;

use local_cloud::cloud::{LocalCloud, Options};
use std::path::PathBuf;

/// Real seconds per simulated second in the tests (10× faster than AWS).
pub const TIME_SCALE: f64 = 0.1;

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Starts a local cloud for one test, its files under target/e2e/<name>.
pub async fn start(name: &str) -> LocalCloud {
    let root = project_root();
    let work = root
        .join("target")
        .join("e2e")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let mut options = Options::new(&root, &work, TIME_SCALE);
    // One minute before blue is terminated (simulated), so a test takes seconds.
    options.settings.termination_wait_minutes = 1;
    match LocalCloud::start(options).await {
        Ok(cloud) => cloud,
        Err(e) => panic!("the local cloud did not start for {name}: {e}"),
    }
}

/// Progress printer for `--nocapture` runs.
pub fn print_progress(p: local_cloud::follow::Progress) {
    if p != local_cloud::follow::Progress::Tick {
        println!("  progress: {p:?}");
    }
}

/// Starts a local cloud and runs one upload scenario under load.
pub async fn upload_scenario(
    name: &str,
    kind: local_cloud::revisions::RevisionKind,
    build: &str,
) -> (LocalCloud, local_cloud::scenarios::DeploymentReport) {
    let cloud = start(name).await;
    let label = local_cloud::scenarios::new_label(build);
    let report =
        local_cloud::scenarios::upload_and_follow(&cloud, kind, &label, true, &mut print_progress)
            .await
            .unwrap_or_else(|e| panic!("scenario {name} did not run: {e}"));
    (cloud, report)
}

/// The deployment's green instance ids, sorted.
pub fn green_instances(deployment: &greenlight_core::DeploymentView) -> Vec<String> {
    let mut ids: Vec<String> = deployment
        .targets
        .iter()
        .filter(|t| t.label == Some(greenlight_core::FleetLabel::Green))
        .map(|t| t.instance_id.clone())
        .collect();
    ids.sort();
    ids
}
