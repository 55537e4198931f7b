//! The live page: `GET /_greenlight/` serves greenlight's timeline page
//! (`greenlight_core::page`, the same template `greenlight history --html`
//! writes) and `GET /_greenlight/state.json` what it shows: the group's
//! latest deployments read through greenlight's own readers (phases actual
//! vs predicted, each instance's lifecycle events and target health), the
//! load balancer's answered requests by version, and the last SNS
//! notifications published through the front server (recorded as they
//! pass, so the scenarios' own reading of the topic's queue is untouched).

use super::{sigv4, Services};
use greenlight_core::watch::Predictions;
use hyper::HeaderMap;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Mutex;

/// How many deployments and notifications the page shows.
const DEPLOYMENTS_SHOWN: usize = 5;
const NOTIFICATIONS_KEPT: usize = 10;

/// What the page reads besides the emulations.
pub struct PageSources {
    /// The local cloud's own SDK configuration (internal key: no fault applies).
    pub sdk: aws_config::SdkConfig,
    pub application: String,
    pub deployment_group: String,
    notifications: Mutex<VecDeque<Value>>,
}

impl PageSources {
    pub fn new(sdk: aws_config::SdkConfig, application: &str, deployment_group: &str) -> Self {
        Self {
            sdk,
            application: application.to_string(),
            deployment_group: deployment_group.to_string(),
            notifications: Mutex::new(VecDeque::new()),
        }
    }

    fn notifications(&self) -> Vec<Value> {
        self.notifications
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .cloned()
            .collect()
    }

    /// Records an SNS Publish passing through the front server.
    pub fn record_publish(&self, query: Option<&str>, body: &[u8], headers: &HeaderMap) {
        let params = sigv4::query_params(query, body, headers);
        if sigv4::action(&params) != Some("Publish") {
            return;
        }
        if let Some(n) = published_notification(&params) {
            let mut kept = self.notifications.lock().unwrap_or_else(|p| p.into_inner());
            kept.push_back(n);
            while kept.len() > NOTIFICATIONS_KEPT {
                kept.pop_front();
            }
        }
    }
}

/// A Publish request's form parameters as the page shows them: subject,
/// the `outcome` message attribute, and the human text (the `email` member
/// of a `MessageStructure=json` message, else the message itself).
pub fn published_notification(params: &[(String, String)]) -> Option<Value> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let message = get("Message")?;
    let text = if get("MessageStructure").as_deref() == Some("json") {
        serde_json::from_str::<Value>(&message)
            .ok()
            .and_then(|m| {
                m.get("email")
                    .or_else(|| m.get("default"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or(message)
    } else {
        message
    };
    // MessageAttributes.entry.N.Name / .Value.StringValue (query protocol).
    let outcome = params.iter().find_map(|(k, v)| {
        let n = k
            .strip_prefix("MessageAttributes.entry.")?
            .strip_suffix(".Name")?;
        (v == "outcome").then(|| get(&format!("MessageAttributes.entry.{n}.Value.StringValue")))?
    });
    Some(json!({
        "subject": get("Subject"),
        "outcome": outcome,
        "message": text,
    }))
}

/// The page's state (see `greenlight_core::page`).
pub async fn state(services: &Services, sources: &PageSources) -> Value {
    let now = greenlight_aws::now_ms();
    let codedeploy = aws_sdk_codedeploy::Client::new(&sources.sdk);
    let mut health = std::collections::BTreeMap::new();
    let mut targets = Vec::new();
    for arn in services.lb.target_group_arns() {
        for t in services.lb.target_health(&arn) {
            health.insert(t.instance_id.clone(), t.state.as_str().to_string());
            targets.push(json!({
                "instanceId": t.instance_id,
                "address": services.fleet.known_address(&t.instance_id).map(|a| format!("{a}:{}", t.port)),
                "health": t.state.as_str(),
            }));
        }
    }
    let mut deployments = Vec::new();
    let mut error = None;
    match greenlight_aws::deployment_list::recent_deployments(
        &codedeploy,
        &sources.application,
        &sources.deployment_group,
        now - 24 * 3600 * 1000,
        now + 60_000,
    )
    .await
    {
        Ok(mut recent) => {
            recent.sort_by_key(|d| std::cmp::Reverse(d.created_at_ms));
            for d in recent.into_iter().take(DEPLOYMENTS_SHOWN) {
                match greenlight_aws::deployment::read_deployment(&codedeploy, &d.deployment_id)
                    .await
                {
                    Ok(view) => deployments.push(greenlight_core::page::deployment_json(
                        &view,
                        &Predictions::default(),
                        now,
                        services.fleet.scale().factor(),
                        &|id: &str| health.get(id).cloned(),
                    )),
                    Err(e) => error = Some(format!("GetDeployment {}: {e}", d.deployment_id)),
                }
            }
        }
        Err(e) => error = Some(format!("ListDeployments: {e}")),
    }
    json!({
        "title": format!("greenlight local cloud: {}/{}", sources.application, sources.deployment_group),
        "live": true,
        "generatedAtMs": now,
        "error": error,
        "deployments": deployments,
        "traffic": services.lb.traffic_by_version().into_iter()
            .map(|(version, requests)| json!({"version": version, "requests": requests}))
            .collect::<Vec<_>>(),
        "targets": targets,
        "notifications": sources.notifications(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_structured_publish_shows_its_email_text_and_outcome() {
        let message =
            json!({"default": "{\"outcome\":\"deployed\"}", "email": "deployed d-1"}).to_string();
        let n = published_notification(&params(&[
            ("Action", "Publish"),
            ("Subject", "greenlight deployed: shop/bg d-1"),
            ("Message", &message),
            ("MessageStructure", "json"),
            ("MessageAttributes.entry.1.Name", "application"),
            ("MessageAttributes.entry.1.Value.StringValue", "shop"),
            ("MessageAttributes.entry.2.Name", "outcome"),
            ("MessageAttributes.entry.2.Value.DataType", "String"),
            ("MessageAttributes.entry.2.Value.StringValue", "deployed"),
        ]))
        .unwrap();
        assert_eq!(n["subject"], "greenlight deployed: shop/bg d-1");
        assert_eq!(n["outcome"], "deployed");
        assert_eq!(n["message"], "deployed d-1");
    }

    #[test]
    fn a_plain_publish_keeps_its_message_and_has_no_outcome() {
        let n = published_notification(&params(&[("Action", "Publish"), ("Message", "hello")]))
            .unwrap();
        assert_eq!(n["message"], "hello");
        assert_eq!(n["outcome"], Value::Null);
        assert!(published_notification(&params(&[("Action", "Publish")])).is_none());
    }
}
