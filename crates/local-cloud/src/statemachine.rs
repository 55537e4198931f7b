//! The state machine the local cloud runs is built from the same
//! `statemachine/pipeline.asl.json` and the same `DefinitionSubstitutions`
//! that `template.yaml` gives CloudFormation: each `!GetAtt <Function>.Arn`
//! becomes the local ARN of that function (named after its `CodeUri` folder),
//! each `!Ref <Parameter>` the local override or the parameter's default.

use serde_yaml::Value as Yaml;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(String),
    #[error("template.yaml has no state machine with DefinitionSubstitutions")]
    NoSubstitutions,
    #[error("DefinitionSubstitutions key {key}: {problem}")]
    Unsupported { key: String, problem: String },
    #[error(
        "the state machine definition uses ${{{0}}}, which DefinitionSubstitutions does not define"
    )]
    Undefined(String),
}

/// What the local cloud puts where AWS would put real values.
pub struct LocalValues<'a> {
    pub region: &'a str,
    pub account_id: &'a str,
    /// Parameter overrides (e.g. a shorter BusyRetryIntervalSeconds).
    pub parameters: BTreeMap<String, String>,
}

/// Local Lambda function name for a function crate folder, e.g.
/// `functions/deploy-trigger` → `greenlight-deploy-trigger`.
pub fn function_name(code_uri: &str) -> String {
    let folder = code_uri
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(code_uri);
    format!("greenlight-{folder}")
}

pub fn function_arn(region: &str, account_id: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{account_id}:function:{name}")
}

/// The substitution map CloudFormation would build, with local values.
pub fn substitutions(
    template_yaml: &str,
    local: &LocalValues<'_>,
) -> Result<BTreeMap<String, String>, RenderError> {
    let template: Yaml =
        serde_yaml::from_str(template_yaml).map_err(|e| RenderError::Yaml(e.to_string()))?;
    let resources = template
        .get("Resources")
        .and_then(Yaml::as_mapping)
        .ok_or(RenderError::NoSubstitutions)?;
    let subs = resources
        .values()
        .filter_map(|r| {
            r.get("Properties")?
                .get("DefinitionSubstitutions")?
                .as_mapping()
        })
        .next()
        .ok_or(RenderError::NoSubstitutions)?;
    let mut out = BTreeMap::new();
    for (key, value) in subs {
        let key = key.as_str().unwrap_or_default().to_string();
        let unsupported = |problem: &str| RenderError::Unsupported {
            key: key.clone(),
            problem: problem.to_string(),
        };
        let resolved = match value {
            Yaml::String(s) => s.clone(),
            Yaml::Number(n) => n.to_string(),
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let arg = tagged.value.as_str().unwrap_or_default();
                match tag.trim_start_matches('!') {
                    "GetAtt" => {
                        let (logical, attribute) = arg
                            .split_once('.')
                            .ok_or_else(|| unsupported("!GetAtt needs Resource.Attribute"))?;
                        if attribute != "Arn" {
                            return Err(unsupported("only !GetAtt <Function>.Arn is supported"));
                        }
                        let code_uri = resources
                            .get(logical)
                            .and_then(|r| r.get("Properties"))
                            .and_then(|p| p.get("CodeUri"))
                            .and_then(Yaml::as_str)
                            .ok_or_else(|| {
                                unsupported("the resource has no CodeUri (not a function)")
                            })?;
                        function_arn(local.region, local.account_id, &function_name(code_uri))
                    }
                    "Ref" => match local.parameters.get(arg) {
                        Some(v) => v.clone(),
                        None => template
                            .get("Parameters")
                            .and_then(|p| p.get(arg))
                            .and_then(|p| p.get("Default"))
                            .map(|d| match d {
                                Yaml::String(s) => s.clone(),
                                other => serde_yaml::to_string(other)
                                    .unwrap_or_default()
                                    .trim()
                                    .to_string(),
                            })
                            .ok_or_else(|| {
                                unsupported("the parameter has no Default and no local value")
                            })?,
                    },
                    other => {
                        return Err(unsupported(&format!(
                            "the intrinsic !{other} is not supported locally"
                        )))
                    }
                }
            }
            _ => return Err(unsupported("expected a string, !GetAtt or !Ref")),
        };
        out.insert(key, resolved);
    }
    Ok(out)
}

/// Lambda's default `Timeout` when neither the function nor `Globals` sets one
/// (AWS::Serverless::Function / AWS::Lambda::Function: 3 seconds).
pub const LAMBDA_DEFAULT_TIMEOUT_SECONDS: u64 = 3;

/// Each function's `Timeout` as CloudFormation would deploy it: the
/// function's own `Timeout`, else `Globals.Function.Timeout`, else Lambda's
/// default; keyed by the local function name ([`function_name`] of its
/// `CodeUri`), in AWS seconds.
pub fn function_timeouts(
    template_yaml: &str,
) -> Result<BTreeMap<String, std::time::Duration>, RenderError> {
    let template: Yaml =
        serde_yaml::from_str(template_yaml).map_err(|e| RenderError::Yaml(e.to_string()))?;
    let seconds = |v: Option<&Yaml>| -> Option<u64> {
        match v? {
            Yaml::Number(n) => n.as_u64(),
            Yaml::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let global = seconds(
        template
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Timeout")),
    )
    .unwrap_or(LAMBDA_DEFAULT_TIMEOUT_SECONDS);
    let mut out = BTreeMap::new();
    if let Some(resources) = template.get("Resources").and_then(Yaml::as_mapping) {
        for (logical, resource) in resources {
            let serverless =
                resource.get("Type").and_then(Yaml::as_str) == Some("AWS::Serverless::Function");
            let props = resource.get("Properties");
            let code_uri = props.and_then(|p| p.get("CodeUri")).and_then(Yaml::as_str);
            if let (true, Some(code_uri)) = (serverless, code_uri) {
                let timeout = seconds(props.and_then(|p| p.get("Timeout"))).unwrap_or(global);
                let timeout = std::time::Duration::from_secs(timeout);
                out.insert(function_name(code_uri), timeout);
                // A second resource on the same code (PipelineTriggerFunction).
                if let Some(logical) = logical.as_str() {
                    out.entry(logical_function_name(logical)).or_insert(timeout);
                }
            }
        }
    }
    Ok(out)
}

/// Local function name for a function resource's logical id, e.g.
/// `PipelineTriggerFunction` → `greenlight-pipeline-trigger` (two resources
/// may share one `CodeUri`, so asynchronous settings are keyed by this).
pub fn logical_function_name(logical_id: &str) -> String {
    let base = logical_id.strip_suffix("Function").unwrap_or(logical_id);
    let mut out = String::from("greenlight");
    for c in base.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// One function's `EventInvokeConfig` as template.yaml declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInvokeConfig {
    /// `MaximumRetryAttempts`, Lambda's default 2 when absent.
    pub max_retry_attempts: u32,
    /// The logical id of the `OnFailure` destination (`!GetAtt <Queue>.Arn`).
    pub on_failure: Option<String>,
}

/// Each `AWS::Serverless::Function`'s `EventInvokeConfig`, keyed by
/// [`logical_function_name`]; a function without one gets Lambda's defaults.
pub fn event_invoke_configs(
    template_yaml: &str,
) -> Result<BTreeMap<String, EventInvokeConfig>, RenderError> {
    let template: Yaml =
        serde_yaml::from_str(template_yaml).map_err(|e| RenderError::Yaml(e.to_string()))?;
    let mut out = BTreeMap::new();
    if let Some(resources) = template.get("Resources").and_then(Yaml::as_mapping) {
        for (logical, resource) in resources {
            if resource.get("Type").and_then(Yaml::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let Some(logical) = logical.as_str() else {
                continue;
            };
            let config = resource
                .get("Properties")
                .and_then(|p| p.get("EventInvokeConfig"));
            let max_retry_attempts = config
                .and_then(|c| c.get("MaximumRetryAttempts"))
                .and_then(|v| match v {
                    Yaml::Number(n) => n.as_u64(),
                    Yaml::String(s) => s.trim().parse().ok(),
                    _ => None,
                })
                .map(|n| n.min(2) as u32)
                .unwrap_or(2);
            let on_failure = config
                .and_then(|c| c.get("DestinationConfig"))
                .and_then(|d| d.get("OnFailure"))
                .and_then(|o| o.get("Destination"))
                .and_then(|d| match d {
                    Yaml::Tagged(t) => t
                        .value
                        .as_str()
                        .and_then(|a| a.strip_suffix(".Arn"))
                        .map(str::to_string),
                    _ => None,
                });
            out.insert(
                logical_function_name(logical),
                EventInvokeConfig {
                    max_retry_attempts,
                    on_failure,
                },
            );
        }
    }
    Ok(out)
}

/// Replaces every `${Name}` in the definition; an undefined name is an error.
pub fn render(asl: &str, substitutions: &BTreeMap<String, String>) -> Result<String, RenderError> {
    let mut out = String::with_capacity(asl.len());
    let mut rest = asl;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| RenderError::Undefined(after.to_string()))?;
        let name = &after[..end];
        let value = substitutions
            .get(name)
            .ok_or_else(|| RenderError::Undefined(name.to_string()))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The state the status loop waits in for a CodeDeploy event.
pub const AWAIT_EVENT_STATE: &str = greenlight_core::wake::AWAIT_EVENT_STATE;
/// The status loop's plain Wait (`$.status.waitSeconds`).
pub const POLLING_WAIT_STATE: &str = "WaitBeforeNextLook";

/// The polling-only variant of a rendered definition: every transition to
/// [`AWAIT_EVENT_STATE`] goes to [`POLLING_WAIT_STATE`] instead and the
/// event wait is removed (an unreachable state is invalid ASL). The status
/// loop then looks every `waitSeconds` whatever CodeDeploy's events say: the
/// transitions benchmark's baselines.
pub fn polling_only(definition: &str) -> Result<String, RenderError> {
    let invalid = |problem: String| RenderError::Unsupported {
        key: AWAIT_EVENT_STATE.to_string(),
        problem,
    };
    let mut asl: serde_json::Value =
        serde_json::from_str(definition).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let states = asl
        .get_mut("States")
        .and_then(serde_json::Value::as_object_mut)
        .ok_or_else(|| invalid("the definition has no States".into()))?;
    if !states.contains_key(POLLING_WAIT_STATE) {
        return Err(invalid(format!(
            "the definition has no {POLLING_WAIT_STATE}"
        )));
    }
    states.remove(AWAIT_EVENT_STATE);
    fn redirect(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if (key == "Next" || key == "Default") && v == AWAIT_EVENT_STATE {
                        *v = serde_json::Value::from(POLLING_WAIT_STATE);
                    } else {
                        redirect(v);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(redirect),
            _ => {}
        }
    }
    redirect(&mut asl);
    Ok(asl.to_string())
}

#[cfg(test)]
mod polling_only_tests {
    use super::*;

    #[test]
    fn the_polling_variant_of_the_pipeline_never_waits_for_an_event() {
        let asl = include_str!("../../../statemachine/pipeline.asl.json");
        let mut subs = BTreeMap::new();
        for name in [
            "BusyRetryIntervalSeconds",
            "BusyRetryMaxAttempts",
            "BusyRetryMaxDelaySeconds",
        ] {
            subs.insert(name.to_string(), "1".to_string());
        }
        let rendered = {
            // Every other placeholder is an ARN string.
            let mut out = String::new();
            let mut rest = asl;
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let end = after.find('}').expect("closed");
                let name = &after[..end];
                out.push_str(
                    subs.get(name)
                        .map_or("arn:aws:lambda:us-east-1:1:function:f", String::as_str),
                );
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            out
        };
        assert!(rendered.contains(&format!("\"Next\": \"{AWAIT_EVENT_STATE}\"")));
        let polling = polling_only(&rendered).expect("variant");
        let value: serde_json::Value = serde_json::from_str(&polling).expect("json");
        assert!(value["States"].get(AWAIT_EVENT_STATE).is_none());
        // No transition is left to it (comments may still name it).
        assert!(!polling.contains(&format!("\"Next\":\"{AWAIT_EVENT_STATE}\"")));
        assert!(!polling.contains(&format!("\"Default\":\"{AWAIT_EVENT_STATE}\"")));
        // Each former transition now goes to the plain Wait, which still loops to Status.
        assert_eq!(value["States"][POLLING_WAIT_STATE]["Next"], "Status");
        assert_eq!(value["States"]["Bake?"]["Default"], POLLING_WAIT_STATE);
        assert!(polling_only("{}").is_err());
    }
}

#[cfg(test)]
mod event_invoke_tests {
    use super::*;

    const PROJECT_TEMPLATE: &str = include_str!("../../../template.yaml");

    #[test]
    fn codepipeline_jobs_go_to_a_function_without_destination_or_retries() {
        let configs = event_invoke_configs(PROJECT_TEMPLATE).unwrap();
        assert_eq!(
            configs.get(crate::lambda_host::PIPELINE_TRIGGER),
            Some(&EventInvokeConfig {
                max_retry_attempts: 0,
                on_failure: None
            }),
            "{configs:?}"
        );
        // The S3 path keeps its rejected-uploads queue.
        assert_eq!(
            configs.get(crate::lambda_host::DEPLOY_TRIGGER),
            Some(&EventInvokeConfig {
                max_retry_attempts: 2,
                on_failure: Some("RejectedUploads".into())
            })
        );
        // Both run the trigger's code with the same timeout.
        let timeouts = function_timeouts(PROJECT_TEMPLATE).unwrap();
        assert_eq!(
            timeouts.get(crate::lambda_host::PIPELINE_TRIGGER),
            timeouts.get(crate::lambda_host::DEPLOY_TRIGGER)
        );
    }

    #[test]
    fn logical_names_match_the_code_uri_names_of_the_five_functions() {
        for (logical, folder) in [
            ("DeployTriggerFunction", "functions/deploy-trigger"),
            ("HealthCheckTunerFunction", "functions/health-check-tuner"),
            ("TrafficValidatorFunction", "functions/traffic-validator"),
            ("DeploymentWatcherFunction", "functions/deployment-watcher"),
            ("FailureHandlerFunction", "functions/failure-handler"),
        ] {
            assert_eq!(logical_function_name(logical), function_name(folder));
        }
        assert_eq!(
            logical_function_name("PipelineTriggerFunction"),
            crate::lambda_host::PIPELINE_TRIGGER
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  BusyRetryIntervalSeconds:
    Type: Number
    Default: 30
  Name:
    Type: String
    Default: demo
Resources:
  DeployTriggerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/deploy-trigger
  Pipeline:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: statemachine/pipeline.asl.json
      DefinitionSubstitutions:
        DeployTriggerFunctionArn: !GetAtt DeployTriggerFunction.Arn
        BusyRetryIntervalSeconds: !Ref BusyRetryIntervalSeconds
        GroupName: !Ref Name
"#;

    fn local(overrides: &[(&str, &str)]) -> LocalValues<'static> {
        LocalValues {
            region: "us-east-1",
            account_id: "123456789012",
            parameters: overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn resolves_getatt_and_ref_with_defaults_and_overrides() {
        let subs = substitutions(TEMPLATE, &local(&[("BusyRetryIntervalSeconds", "2")])).unwrap();
        assert_eq!(
            subs["DeployTriggerFunctionArn"],
            "arn:aws:lambda:us-east-1:123456789012:function:greenlight-deploy-trigger"
        );
        assert_eq!(subs["BusyRetryIntervalSeconds"], "2");
        assert_eq!(subs["GroupName"], "demo");
    }

    #[test]
    fn renders_and_rejects_unknown_placeholders() {
        let subs = substitutions(TEMPLATE, &local(&[])).unwrap();
        let asl = r#"{"Resource": "${DeployTriggerFunctionArn}", "IntervalSeconds": ${BusyRetryIntervalSeconds}}"#;
        let out = render(asl, &subs).unwrap();
        assert!(out.contains("function:greenlight-deploy-trigger"));
        assert!(out.contains("\"IntervalSeconds\": 30"));
        assert_eq!(
            render("${Nope}", &subs),
            Err(RenderError::Undefined("Nope".into()))
        );
    }

    #[test]
    fn function_timeouts_follow_the_function_then_globals_then_lambdas_default() {
        let with_globals = r#"
Globals:
  Function:
    Timeout: 60
Resources:
  A:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/a
      Timeout: 720
  B:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/b
  Q:
    Type: AWS::SQS::Queue
"#;
        let t = function_timeouts(with_globals).unwrap();
        assert_eq!(t["greenlight-a"].as_secs(), 720);
        assert_eq!(t["greenlight-b"].as_secs(), 60);
        assert_eq!(t.len(), 2);
        let bare = "Resources:\n  A:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: functions/a\n";
        assert_eq!(
            function_timeouts(bare).unwrap()["greenlight-a"].as_secs(),
            3
        );
        // The project's own template: the values the local cloud runs with.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let template = std::fs::read_to_string(root.join("template.yaml")).unwrap();
        let t = function_timeouts(&template).unwrap();
        // Six functions, deploy-trigger's code twice (PipelineTriggerFunction).
        assert_eq!(t.len(), 7, "{t:?}");
        assert_eq!(t["greenlight-deployment-group-resource"].as_secs(), 300);
        assert_eq!(t["greenlight-deploy-trigger"].as_secs(), 30);
        assert_eq!(t["greenlight-pipeline-trigger"].as_secs(), 30);
        assert_eq!(t["greenlight-traffic-validator"].as_secs(), 720);
        assert_eq!(t["greenlight-failure-handler"].as_secs(), 300);
        assert_eq!(t["greenlight-deployment-watcher"].as_secs(), 60);
    }

    #[test]
    fn the_projects_own_template_and_definition_render() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let template = std::fs::read_to_string(root.join("template.yaml")).unwrap();
        let asl = std::fs::read_to_string(root.join("statemachine/pipeline.asl.json")).unwrap();
        let subs = substitutions(&template, &local(&[])).unwrap();
        let rendered = render(&asl, &subs).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&rendered).unwrap();
        assert!(parsed["States"].is_object());
        assert!(!rendered.contains("${"));
    }
}
