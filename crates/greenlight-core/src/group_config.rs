//! The per-group JSON settings (`APPROVAL_CONFIG`, `BAKE_CONFIG`): a list
//! with at most one entry per application/deployment group. Parsing and the
//! checks every such list shares live here once; each setting adds its own
//! checks and keeps its own error type (and messages) through
//! [`GroupConfigProblem`].

use serde::de::DeserializeOwned;

/// An entry of a per-group setting: which deployment group it is for.
pub trait GroupEntry {
    fn application(&self) -> &str;
    fn deployment_group(&self) -> &str;
}

/// Why a per-group setting cannot be used, before it becomes the setting's
/// own error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupConfigProblem {
    /// Not a JSON list of entries (serde's message).
    Json(String),
    /// Two entries name the same group.
    Duplicate { application: String, group: String },
    /// An entry's own check failed.
    Invalid {
        application: String,
        group: String,
        problem: String,
    },
}

/// Parses a per-group setting (empty text = no entry) and checks, entry by
/// entry in order: no group named twice, application and deploymentGroup not
/// empty, then `check` (the setting's own rules). The first problem wins.
pub fn parse_group_config<T, F>(text: &str, check: F) -> Result<Vec<T>, GroupConfigProblem>
where
    T: DeserializeOwned + GroupEntry,
    F: Fn(&T) -> Result<(), String>,
{
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let groups: Vec<T> =
        serde_json::from_str(text).map_err(|e| GroupConfigProblem::Json(e.to_string()))?;
    for (i, g) in groups.iter().enumerate() {
        if groups[..i].iter().any(|o| {
            o.application() == g.application() && o.deployment_group() == g.deployment_group()
        }) {
            return Err(GroupConfigProblem::Duplicate {
                application: g.application().to_string(),
                group: g.deployment_group().to_string(),
            });
        }
        let checked = if g.application().trim().is_empty() || g.deployment_group().trim().is_empty()
        {
            Err("application and deploymentGroup must not be empty".to_string())
        } else {
            check(g)
        };
        if let Err(problem) = checked {
            return Err(GroupConfigProblem::Invalid {
                application: g.application().to_string(),
                group: g.deployment_group().to_string(),
                problem,
            });
        }
    }
    Ok(groups)
}

/// The entry for one group, if any.
pub fn entry_for<'a, T: GroupEntry>(
    entries: &'a [T],
    application: &str,
    group: &str,
) -> Option<&'a T> {
    entries
        .iter()
        .find(|g| g.application() == application && g.deployment_group() == group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Entry {
        application: String,
        deployment_group: String,
        n: u32,
    }

    impl GroupEntry for Entry {
        fn application(&self) -> &str {
            &self.application
        }
        fn deployment_group(&self) -> &str {
            &self.deployment_group
        }
    }

    fn positive(e: &Entry) -> Result<(), String> {
        if e.n > 0 {
            Ok(())
        } else {
            Err("n must be positive".into())
        }
    }

    #[test]
    fn the_shared_checks_come_first_then_the_settings_own() {
        assert!(parse_group_config::<Entry, _>(" ", positive)
            .unwrap()
            .is_empty());
        let ok: Vec<Entry> = parse_group_config(
            r#"[{"application":"a","deploymentGroup":"g","n":1},{"application":"a","deploymentGroup":"h","n":2}]"#,
            positive,
        )
        .unwrap();
        assert_eq!(entry_for(&ok, "a", "h").map(|e| e.n), Some(2));
        assert!(entry_for(&ok, "b", "h").is_none());
        // A duplicate is named even when its own check would fail too.
        assert_eq!(
            parse_group_config::<Entry, _>(
                r#"[{"application":"a","deploymentGroup":"g","n":1},{"application":"a","deploymentGroup":"g","n":0}]"#,
                positive
            )
            .unwrap_err(),
            GroupConfigProblem::Duplicate {
                application: "a".into(),
                group: "g".into()
            }
        );
        // Empty names are refused before the setting's own check runs.
        assert_eq!(
            parse_group_config::<Entry, _>(
                r#"[{"application":"a","deploymentGroup":" ","n":0}]"#,
                positive
            )
            .unwrap_err(),
            GroupConfigProblem::Invalid {
                application: "a".into(),
                group: " ".into(),
                problem: "application and deploymentGroup must not be empty".into()
            }
        );
        assert!(matches!(
            parse_group_config::<Entry, _>(
                r#"[{"application":"a","deploymentGroup":"g","n":0}]"#,
                positive
            ),
            Err(GroupConfigProblem::Invalid { problem, .. }) if problem == "n must be positive"
        ));
        assert!(matches!(
            parse_group_config::<Entry, _>("{}", positive),
            Err(GroupConfigProblem::Json(_))
        ));
    }
}
