//! Auto Scaling honours suspended processes (issue 10, scaling held still).
//!
//! moto stores SuspendProcesses/ResumeProcesses (DescribeAutoScalingGroups
//! lists them) but its SetDesiredCapacity launches or terminates at once
//! whatever is suspended. AWS does not: "If you suspend Launch ... your Auto
//! Scaling group can't initiate scale-out activities", and likewise for
//! Terminate and scale-in (EC2 Auto Scaling user guide, "How suspended
//! processes affect other processes"); the desired capacity itself is still
//! set by SetDesiredCapacity / UpdateAutoScalingGroup, and once the process is
//! resumed the group moves to it ("When you resume the Launch process, Amazon
//! EC2 Auto Scaling immediately replaces any instances ..." in the same
//! guide; the desired-capacity reconciliation is the group's ordinary
//! behaviour, "Set the capacity limits / desired capacity" pages).
//!
//! So the front server, for a group whose Launch (growing) or Terminate
//! (shrinking) is suspended:
//! - SetDesiredCapacity: validated against MinSize/MaxSize like AWS (a
//!   `ValidationError` outside them), then recorded here and answered without
//!   reaching moto (moto would launch);
//! - UpdateAutoScalingGroup with DesiredCapacity: forwarded without it (the
//!   other settings apply), then the desired capacity recorded here;
//! - DescribeAutoScalingGroups: the recorded desired capacity is shown (AWS
//!   shows the new desired capacity at once, with fewer instances);
//! - ResumeProcesses: forwarded; when the process that held the change is
//!   running again, the recorded desired capacity is applied to moto
//!   (SetDesiredCapacity), which launches or terminates then;
//! - DeleteAutoScalingGroup: forgets the record.
//!
//! Not documented by AWS: whether a min/max change that forces the desired
//! capacity (MinSize above it) launches while Launch is suspended. Harsher
//! reading, and what moto does anyway: those requests reach moto unchanged.

use super::{bytes_response, full, set_header, Body, Proxy};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Request, Response};
use std::collections::HashMap;
use std::sync::Mutex;

/// Actions this module answers or adjusts (the rest of Auto Scaling goes to moto).
pub const ACTIONS: &[&str] = &[
    "SetDesiredCapacity",
    "UpdateAutoScalingGroup",
    "ResumeProcesses",
    "DescribeAutoScalingGroups",
    "DeleteAutoScalingGroup",
];

/// Desired capacities set while the process that would act on them was
/// suspended, by group name.
#[derive(Debug, Default)]
pub struct HeldCapacity {
    deferred: Mutex<HashMap<String, i32>>,
}

impl HeldCapacity {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i32>> {
        self.deferred
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The desired capacity recorded for `group`, if any.
    pub fn deferred(&self, group: &str) -> Option<i32> {
        self.lock().get(group).copied()
    }
}

/// What DescribeAutoScalingGroups says about one group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupState {
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    pub instances: i32,
    pub suspended: Vec<String>,
}

/// The first `<tag>value</tag>` in `xml` after `from`.
fn element<'a>(xml: &'a str, tag: &str, from: usize) -> Option<(usize, &'a str)> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.get(from..)?.find(&open)? + from + open.len();
    let end = xml.get(start..)?.find(&close)? + start;
    Some((start, xml.get(start..end)?))
}

/// Reads one group's state from a DescribeAutoScalingGroups answer for that
/// group alone; `None` when the group is not in it.
pub fn group_state(xml: &str, group: &str) -> Option<GroupState> {
    let name = format!("<AutoScalingGroupName>{group}</AutoScalingGroupName>");
    let at = xml.find(&name)? + name.len();
    // This group's part of the answer: up to the next group's name.
    let end = xml
        .get(at..)?
        .find("<AutoScalingGroupName>")
        .map_or(xml.len(), |p| p + at);
    let section = xml.get(at..end)?;
    let number = |tag: &str| {
        element(section, tag, 0)
            .and_then(|(_, v)| v.trim().parse::<i32>().ok())
            .unwrap_or_default()
    };
    let mut suspended = Vec::new();
    if let Some((_, processes)) = element(section, "SuspendedProcesses", 0) {
        let mut from = 0;
        while let Some((pos, value)) = element(processes, "ProcessName", from) {
            suspended.push(value.to_string());
            from = pos;
        }
    }
    Some(GroupState {
        min: number("MinSize"),
        max: number("MaxSize"),
        desired: number("DesiredCapacity"),
        instances: i32::try_from(section.matches("<InstanceId>").count()).unwrap_or(i32::MAX),
        suspended,
    })
}

/// Whether moving `state` to `desired` needs a process that is suspended.
pub fn held(state: &GroupState, desired: i32) -> bool {
    let suspended = |p: &str| state.suspended.iter().any(|s| s == p);
    (desired > state.instances && suspended("Launch"))
        || (desired < state.instances && suspended("Terminate"))
}

/// Shows `desired` as `group`'s DesiredCapacity in a DescribeAutoScalingGroups
/// answer (the first DesiredCapacity after the group's name and before the
/// next group's name: the AutoScalingGroup shape lists the name first).
pub fn show_desired(xml: &str, group: &str, desired: i32) -> String {
    let name = format!("<AutoScalingGroupName>{group}</AutoScalingGroupName>");
    let Some(at) = xml.find(&name) else {
        return xml.to_string();
    };
    let after = at + name.len();
    let next_group = xml
        .get(after..)
        .and_then(|rest| rest.find("<AutoScalingGroupName>"))
        .map_or(xml.len(), |p| p + after);
    match element(xml, "DesiredCapacity", after) {
        Some((start, value)) if start < next_group => {
            let end = start + value.len();
            format!("{}{desired}{}", &xml[..start], &xml[end..])
        }
        _ => xml.to_string(),
    }
}

fn form(params: &[(String, String)]) -> Bytes {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    Bytes::from(s.finish())
}

/// A copy of `parts` (method, URI, headers) for another request to moto.
fn copy_parts(parts: &Parts) -> Option<Parts> {
    let mut builder = Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.clone());
    if let Some(headers) = builder.headers_mut() {
        for (name, value) in parts.headers.iter() {
            if name != CONTENT_LENGTH {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    builder.body(()).ok().map(|r| r.into_parts().0)
}

async fn body_text(response: Response<Body>) -> (Parts2, String) {
    let (parts, body) = response.into_parts();
    let text = match body.collect().await {
        Ok(c) => String::from_utf8_lossy(&c.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    (parts, text)
}

type Parts2 = hyper::http::response::Parts;

fn rebuild(mut parts: Parts2, text: String) -> Response<Body> {
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    let len = text.len();
    let mut response = Response::from_parts(parts, full(Bytes::from(text)));
    set_header(&mut response, CONTENT_LENGTH, &len.to_string());
    response
}

/// One group's state, read from moto with the caller's own headers.
async fn describe(proxy: &Proxy, parts: &Parts, group: &str) -> Option<GroupState> {
    let request = copy_parts(parts)?;
    let body = form(&[
        ("Action".into(), "DescribeAutoScalingGroups".into()),
        ("Version".into(), "2011-01-01".into()),
        ("AutoScalingGroupNames.member.1".into(), group.into()),
    ]);
    let response = proxy.forward(request, body).await;
    if !response.status().is_success() {
        return None;
    }
    let (_, text) = body_text(response).await;
    group_state(&text, group)
}

fn xml_answer(status: u16, text: String) -> Response<Body> {
    let mut response = bytes_response(status, Bytes::from(text));
    set_header(&mut response, CONTENT_TYPE, "text/xml");
    response
}

/// AWS's empty answer for `action`.
fn empty_result(action: &str) -> Response<Body> {
    xml_answer(
        200,
        format!(
            "<{action}Response xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
            crate::lambda_host::new_request_id()
        ),
    )
}

fn validation_error(message: &str) -> Response<Body> {
    xml_answer(
        400,
        format!(
            "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            crate::lambda_host::new_request_id()
        ),
    )
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Answers one Auto Scaling request of [`ACTIONS`].
pub(super) async fn handle(
    held_capacity: &HeldCapacity,
    proxy: &Proxy,
    parts: Parts,
    body: Bytes,
    params: Vec<(String, String)>,
    action: &str,
) -> Response<Body> {
    let group = param(&params, "AutoScalingGroupName")
        .unwrap_or_default()
        .to_string();
    match action {
        "SetDesiredCapacity" => {
            let Some(desired) =
                param(&params, "DesiredCapacity").and_then(|d| d.parse::<i32>().ok())
            else {
                return proxy.forward(parts, body).await;
            };
            let Some(state) = describe(proxy, &parts, &group).await else {
                return proxy.forward(parts, body).await;
            };
            if desired > state.max {
                return validation_error(&format!(
                    "New SetDesiredCapacity value {desired} is above max value {} for the AutoScalingGroup.",
                    state.max
                ));
            }
            if desired < state.min {
                return validation_error(&format!(
                    "New SetDesiredCapacity value {desired} is below min value {} for the AutoScalingGroup.",
                    state.min
                ));
            }
            if held(&state, desired) {
                tracing::info!(%group, desired, suspended = ?state.suspended, "SetDesiredCapacity held: the process it needs is suspended");
                held_capacity.lock().insert(group, desired);
                return empty_result(action);
            }
            held_capacity.lock().remove(&group);
            proxy.forward(parts, body).await
        }
        "UpdateAutoScalingGroup" => {
            let desired = param(&params, "DesiredCapacity").and_then(|d| d.parse::<i32>().ok());
            let state = match desired {
                Some(_) => describe(proxy, &parts, &group).await,
                None => None,
            };
            match (desired, state) {
                (Some(desired), Some(state)) if held(&state, desired) => {
                    let without: Vec<(String, String)> = params
                        .into_iter()
                        .filter(|(k, _)| k != "DesiredCapacity")
                        .collect();
                    let response = proxy.forward(parts, form(&without)).await;
                    if response.status().is_success() {
                        tracing::info!(%group, desired, "UpdateAutoScalingGroup DesiredCapacity held: the process it needs is suspended");
                        held_capacity.lock().insert(group, desired);
                    }
                    response
                }
                _ => proxy.forward(parts, body).await,
            }
        }
        "ResumeProcesses" => {
            let copy = copy_parts(&parts);
            let response = proxy.forward(parts, body).await;
            let deferred = held_capacity.deferred(&group);
            if let (true, Some(desired), Some(copy)) =
                (response.status().is_success(), deferred, copy)
            {
                if let Some(state) = describe(proxy, &copy, &group).await {
                    if !held(&state, desired) {
                        let apply = form(&[
                            ("Action".into(), "SetDesiredCapacity".into()),
                            ("Version".into(), "2011-01-01".into()),
                            ("AutoScalingGroupName".into(), group.clone()),
                            ("DesiredCapacity".into(), desired.to_string()),
                        ]);
                        let applied = proxy.forward(copy, apply).await;
                        if applied.status().is_success() {
                            tracing::info!(%group, desired, "held desired capacity applied after ResumeProcesses");
                            held_capacity.lock().remove(&group);
                        } else {
                            tracing::warn!(%group, desired, status = %applied.status(), "applying the held desired capacity failed");
                        }
                    }
                }
            }
            response
        }
        "DescribeAutoScalingGroups" => {
            let response = proxy.forward(parts, body).await;
            let deferred: Vec<(String, i32)> = held_capacity
                .lock()
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            if deferred.is_empty() || !response.status().is_success() {
                return response;
            }
            let (parts, mut text) = body_text(response).await;
            for (group, desired) in deferred {
                text = show_desired(&text, &group, desired);
            }
            rebuild(parts, text)
        }
        "DeleteAutoScalingGroup" => {
            let response = proxy.forward(parts, body).await;
            if response.status().is_success() {
                held_capacity.lock().remove(&group);
            }
            response
        }
        _ => proxy.forward(parts, body).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups>\
<member><AutoScalingGroupName>blue</AutoScalingGroupName><MinSize>2</MinSize><MaxSize>3</MaxSize><DesiredCapacity>2</DesiredCapacity>\
<Instances><member><InstanceId>i-1</InstanceId></member><member><InstanceId>i-2</InstanceId></member></Instances>\
<SuspendedProcesses><member><ProcessName>Launch</ProcessName><SuspensionReason>User suspended</SuspensionReason></member><member><ProcessName>Terminate</ProcessName></member></SuspendedProcesses></member>\
<member><AutoScalingGroupName>green</AutoScalingGroupName><MinSize>1</MinSize><MaxSize>4</MaxSize><DesiredCapacity>1</DesiredCapacity><Instances/></member>\
</AutoScalingGroups></DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>";

    #[test]
    fn reads_one_groups_state() {
        let state = group_state(XML, "blue").unwrap();
        assert_eq!(
            state,
            GroupState {
                min: 2,
                max: 3,
                desired: 2,
                instances: 2,
                suspended: vec!["Launch".into(), "Terminate".into()],
            }
        );
        assert_eq!(group_state(XML, "missing"), None);
    }

    #[test]
    fn growing_needs_launch_and_shrinking_needs_terminate() {
        let mut state = group_state(XML, "blue").unwrap();
        assert!(held(&state, 3));
        assert!(held(&state, 1));
        assert!(!held(&state, 2));
        state.suspended = vec!["Terminate".into()];
        assert!(!held(&state, 3));
        assert!(held(&state, 1));
        state.suspended = vec!["AZRebalance".into()];
        assert!(!held(&state, 3) && !held(&state, 1));
    }

    #[test]
    fn the_held_desired_capacity_is_shown_for_that_group_only() {
        let shown = show_desired(XML, "blue", 3);
        assert_eq!(group_state(&shown, "blue").unwrap().desired, 3);
        assert_eq!(group_state(&shown, "green").unwrap().desired, 1);
        let green = show_desired(XML, "green", 4);
        assert_eq!(group_state(&green, "green").unwrap().desired, 4);
        assert_eq!(group_state(&green, "blue").unwrap().desired, 2);
        assert_eq!(show_desired(XML, "missing", 9), XML);
    }
}
