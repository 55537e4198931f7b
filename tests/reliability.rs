//! RELIABILITY.md sections written by test runs.
//!
//! Each test that reports figures owns one section of the project's
//! `RELIABILITY.md`, between `<!-- NAME:begin -->` and `<!-- NAME:end -->`,
//! and replaces only that section, so several suites (hostile input,
//! properties, fault scenarios, the emulation table, ...) share the file.
//! [`write_section`] is the one helper; call it once per run from one test.

use std::path::{Path, PathBuf};

/// The file's title when a run creates it.
const HEADER: &str = "# Reliability figures\n\nWritten by the test runs (`cargo test --workspace`); each section is replaced by the suite named in its markers. Do not edit between the markers by hand.\n";

/// `RELIABILITY.md` at the project root.
pub fn reliability_file() -> PathBuf {
    crate::project_root().join("RELIABILITY.md")
}

/// `text` with the section `name` replaced by `body` (appended when absent).
pub fn replace_section(text: &str, name: &str, body: &str) -> String {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let section = format!("{begin}\n{}\n{end}", body.trim_end());
    match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{section}{}", &text[..b], &text[e + end.len()..])
        }
        _ => {
            let mut out = if text.trim().is_empty() {
                HEADER.to_string()
            } else {
                text.to_string()
            };
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push('\n');
            out.push_str(&section);
            out.push('\n');
            out
        }
    }
}

/// Replaces section `name` of `path` with `body`, atomically (temp file + rename).
pub fn write_section_to(path: &Path, name: &str, body: &str) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let updated = replace_section(&text, name, body);
    let tmp = path.with_extension(format!("md.{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, updated)?;
    std::fs::rename(&tmp, path)
}

/// Replaces section `name` of the project's RELIABILITY.md with `body`.
pub fn write_section(name: &str, body: &str) -> std::io::Result<PathBuf> {
    let path = reliability_file();
    write_section_to(&path, name, body)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_in_place_and_others_kept() {
        let one = replace_section("", "a", "first");
        assert!(one.starts_with("# Reliability figures"));
        let two = replace_section(&one, "b", "bee");
        let three = replace_section(&two, "a", "second\n");
        assert!(
            three.contains("<!-- a:begin -->\nsecond\n<!-- a:end -->"),
            "{three}"
        );
        assert!(
            three.contains("<!-- b:begin -->\nbee\n<!-- b:end -->"),
            "{three}"
        );
        assert!(!three.contains("first"));
        assert_eq!(three.matches("<!-- a:begin -->").count(), 1);
    }
}
