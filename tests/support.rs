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
    start_with(name, |_| {}).await
}

/// [`start`] with some options changed first (e.g. the watcher's deadlines,
/// as template.yaml's parameters would).
pub async fn start_with(name: &str, configure: impl FnOnce(&mut Options)) -> LocalCloud {
    let root = project_root();
    let work = root
        .join("target")
        .join("e2e")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let mut options = Options::new(&root, &work, TIME_SCALE);
    // One minute before blue is terminated (simulated), so a test takes seconds.
    options.settings.termination_wait_minutes = 1;
    configure(&mut options);
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

/// Replaces the text between `<!-- {marker}:begin -->` and `<!-- {marker}:end -->`
/// in `text` with `body` (pure). None when the markers are missing or out of order.
pub fn replace_marked_section(text: &str, marker: &str, body: &str) -> Option<String> {
    let begin = format!("<!-- {marker}:begin -->");
    let end = format!("<!-- {marker}:end -->");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    Some(format!(
        "{}\n{}\n{}",
        &text[..start],
        body.trim_end(),
        &text[stop..]
    ))
}

/// The rows of a markdown table keyed by their first cell, with `row`
/// replacing (or adding) the row whose first cell is `key`; sorted by key (pure).
pub fn upsert_table_row(section: &str, header: &str, key: &str, row: &str) -> String {
    let header_lines: Vec<&str> = header.lines().collect();
    let first_cell = |line: &str| {
        line.trim()
            .trim_start_matches('|')
            .split('|')
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let mut rows: Vec<String> = section
        .lines()
        .filter(|l| l.trim_start().starts_with('|') && !header_lines.contains(&l.trim()))
        .filter(|l| first_cell(l) != key)
        .map(str::to_string)
        .collect();
    rows.push(row.to_string());
    rows.sort_by_key(|l| first_cell(l));
    format!("{}\n{}\n", header.trim_end(), rows.join("\n"))
}

static FIGURES_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Writes one scenario's row into the table between the `marker` markers of
/// RELIABILITY.md at the project root (the tests of one binary run in
/// parallel, so writes are serialized).
pub fn record_figures(marker: &str, header: &str, key: &str, row: &str) {
    let _guard = FIGURES_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let path = project_root().join("RELIABILITY.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()));
    let begin = format!("<!-- {marker}:begin -->");
    let end = format!("<!-- {marker}:end -->");
    let current = text
        .find(&begin)
        .and_then(|s| {
            let s = s + begin.len();
            text[s..].find(&end).map(|e| &text[s..s + e])
        })
        .unwrap_or_else(|| panic!("{} has no {begin} ... {end} section", path.display()));
    let body = upsert_table_row(current, header, key, row);
    let updated = replace_marked_section(&text, marker, &body)
        .unwrap_or_else(|| panic!("{} has no {begin} ... {end} section", path.display()));
    std::fs::write(&path, updated)
        .unwrap_or_else(|e| panic!("{} cannot be written: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_section_is_replaced_and_the_rest_kept() {
        let text = "a\n<!-- x:begin -->\nold\n<!-- x:end -->\nb\n";
        assert_eq!(
            replace_marked_section(text, "x", "new").as_deref(),
            Some("a\n<!-- x:begin -->\nnew\n<!-- x:end -->\nb\n")
        );
        assert_eq!(replace_marked_section("no markers", "x", "new"), None);
    }

    #[test]
    fn table_row_is_replaced_by_key_and_others_kept() {
        let header = "| s | n |\n|---|---|";
        let section = "\n| s | n |\n|---|---|\n| b | 1 |\n| a | 2 |\n";
        assert_eq!(
            upsert_table_row(section, header, "b", "| b | 9 |"),
            "| s | n |\n|---|---|\n| a | 2 |\n| b | 9 |\n"
        );
        assert_eq!(
            upsert_table_row("", header, "c", "| c | 3 |"),
            "| s | n |\n|---|---|\n| c | 3 |\n"
        );
    }
}
