//! The standby's record on the deployment's own target group, so every path
//! that ends a deployment's execution can put the listener back, not only
//! the one that holds `$.bake.standby`.
//!
//! Why: an execution that dies after the standby was armed or switched
//! (timeout, abort, a Lambda that keeps failing) never reaches the failure
//! handler's pipeline-state path; its execution-end path and the CodeDeploy
//! event path have only the deployment group to go on. They already find
//! the group's target group (the `greenlight:snapshot` tag is restored that
//! way), so the standby's state is recorded there too, in tags, before the
//! first listener change, rewritten before a switch, and removed once put
//! back. (The standby target group's name is only in the traffic
//! validator's `BakeConfig`; the failure handler does not have it.)
//!
//! ELB tag limits (<https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_Tag.html>:
//! value at most 256 characters of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`; the ALB
//! guide, <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-tags.html>,
//! says 255 and 50 tags per resource: the harsher numbers are used). The
//! state is JSON, which those characters cannot carry, so it is stored as
//! standard base64 (alphabet `A-Z a-z 0-9 + /`, padding `=`: all allowed)
//! split into parts of at most 255 characters: `greenlight:standby:0`,
//! `greenlight:standby:1`, ..., and a header `greenlight:standby` =
//! `v1 parts=N` written in the same AddTags call, so a stale longer record's
//! extra parts are never read. At most [`MAX_RECORD_PARTS`] parts: a state
//! that needs more is not armed ([`encode_record`] answers why), because a
//! listener change only the execution's state knows of could not be put
//! back by the other paths.

use super::standby::{StandbyState, Weights};

/// The header tag's key.
pub const RECORD_TAG_KEY: &str = "greenlight:standby";
/// Each part's key is this prefix and the part's index.
pub const RECORD_PART_PREFIX: &str = "greenlight:standby:";
/// The harsher of the two documented maxima of an ELB tag value.
pub const MAX_TAG_VALUE_CHARS: usize = 255;
/// Parts greenlight allows itself on a target group (of the 50 tags a
/// resource may have; the user's own tags and `greenlight:snapshot` need
/// the rest).
pub const MAX_RECORD_PARTS: usize = 16;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "{} base64 characters, not a multiple of 4",
            bytes.len()
        ));
    }
    let value = |c: u8| -> Result<u32, String> {
        ALPHABET
            .iter()
            .position(|&a| a == c)
            .map(|p| p as u32)
            .ok_or_else(|| format!("{:?} is not a base64 character", char::from(c)))
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let quads = bytes.len() / 4;
    for (q, quad) in bytes.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && q + 1 != quads) {
            return Err("padding in the middle of the base64 text".to_string());
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Ok(out)
}

/// The tags that record `state` (header first, then the parts), or why it
/// cannot be recorded: then the standby is not armed.
pub fn encode_record(state: &StandbyState) -> Result<Vec<(String, String)>, String> {
    let json = serde_json::to_string(state)
        .map_err(|e| format!("the standby's state could not be written as JSON ({e})"))?;
    let text = base64_encode(json.as_bytes());
    let parts: Vec<&str> = text
        .as_bytes()
        .chunks(MAX_TAG_VALUE_CHARS)
        // base64 is ASCII: every chunk is valid UTF-8.
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    if parts.len() > MAX_RECORD_PARTS {
        return Err(format!(
            "the standby's record ({} route(s), {} blue target(s)) needs {} tags of {MAX_TAG_VALUE_CHARS} characters on the target group, more than the {MAX_RECORD_PARTS} greenlight allows itself (50 tags per target group in all): the standby is not armed, because a listener change that only the execution's state knows of could not be put back if the execution died",
            state.routes.len(),
            state.blue_targets.len(),
            parts.len()
        ));
    }
    let mut tags = Vec::with_capacity(parts.len() + 1);
    tags.push((
        RECORD_TAG_KEY.to_string(),
        format!("v1 parts={}", parts.len()),
    ));
    for (i, part) in parts.iter().enumerate() {
        tags.push((format!("{RECORD_PART_PREFIX}{i}"), (*part).to_string()));
    }
    Ok(tags)
}

/// What a target group's tags say about a standby.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRead {
    /// No standby record: none armed, or it was put back.
    Absent,
    Found(Box<StandbyState>),
    /// Record tags that do not decode: nothing is changed from them; the
    /// report says so.
    Corrupt {
        reason: String,
    },
}

/// Decodes the record from all of a target group's tags (key, value).
pub fn decode_record(tags: &[(String, String)]) -> RecordRead {
    let corrupt = |reason: String| RecordRead::Corrupt { reason };
    let Some((_, header)) = tags.iter().find(|(k, _)| k == RECORD_TAG_KEY) else {
        return if tags.iter().any(|(k, _)| k.starts_with(RECORD_PART_PREFIX)) {
            corrupt(format!(
                "{RECORD_PART_PREFIX}N tags without their header {RECORD_TAG_KEY}"
            ))
        } else {
            RecordRead::Absent
        };
    };
    let Some(parts) = header
        .strip_prefix("v1 parts=")
        .and_then(|n| n.trim().parse::<usize>().ok())
        .filter(|&n| (1..=MAX_RECORD_PARTS).contains(&n))
    else {
        return corrupt(format!(
            "header {RECORD_TAG_KEY}={header:?} is not \"v1 parts=N\" with N from 1 to {MAX_RECORD_PARTS}"
        ));
    };
    let mut text = String::new();
    for i in 0..parts {
        let key = format!("{RECORD_PART_PREFIX}{i}");
        match tags.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => text.push_str(v),
            None => return corrupt(format!("part {key} of {parts} is missing")),
        }
    }
    let bytes = match base64_decode(&text) {
        Ok(b) => b,
        Err(e) => return corrupt(format!("the parts are not base64: {e}")),
    };
    match serde_json::from_slice::<StandbyState>(&bytes) {
        Ok(state) => RecordRead::Found(Box::new(state)),
        Err(e) => corrupt(format!("the record is not a standby state: {e}")),
    }
}

/// Every record key among a target group's tags (to remove them all,
/// stale parts included).
pub fn record_keys(tags: &[(String, String)]) -> Vec<String> {
    tags.iter()
        .filter(|(k, _)| k == RECORD_TAG_KEY || k.starts_with(RECORD_PART_PREFIX))
        .map(|(k, _)| k.clone())
        .collect()
}

/// What a path that ends an execution does with a record it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedDecision {
    /// This deployment's standby: put it back ([`super::standby::decide_restore`]
    /// then decides how far).
    PutBack,
    /// Not this deployment's (another deployment of the group armed it, or
    /// the deployment is unknown here), or recorded for another target
    /// group: nothing is touched; the report says so with the commands.
    LeaveAlone { reason: String },
}

/// Acts on a record only when it was recorded for the target group it was
/// found on and for the deployment this path handles (never on a listener
/// of another deployment or application).
pub fn decide_recorded(
    record: &StandbyState,
    found_on: &str,
    deployment_id: Option<&str>,
) -> RecordedDecision {
    if record.main_target_group_arn != found_on {
        return RecordedDecision::LeaveAlone {
            reason: format!(
                "the standby record on {found_on} names another target group ({})",
                record.main_target_group_arn
            ),
        };
    }
    match deployment_id {
        Some(id) if !id.is_empty() && id == record.deployment_id => RecordedDecision::PutBack,
        Some(id) => RecordedDecision::LeaveAlone {
            reason: format!(
                "the standby record on {found_on} belongs to deployment {:?}, not {id}",
                record.deployment_id
            ),
        },
        None => RecordedDecision::LeaveAlone {
            reason: format!(
                "the standby record on {found_on} belongs to deployment {:?}, and this path could not tell which deployment it handles",
                record.deployment_id
            ),
        },
    }
}

/// How long to wait between putting the routes back and taking blue out of
/// the standby.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Deregister at once: the routes gave the standby weight 0, so no
    /// request was ever routed to it.
    Now,
    /// Wait this long (a listener change reaches the load balancer's nodes
    /// after an undocumented "short time"), then deregister.
    Wait { seconds: u32 },
    /// Do not deregister: the wait does not fit the invocation's time left.
    /// Blue stays registered in a target group no listener forwards to any
    /// more (ALB routes nothing to, and does not health-check, a target
    /// group without a listener: its targets are `unused`), which cannot
    /// fail a request; the deregistration is left to a human (the report
    /// gives the command).
    Leave { reason: String },
}

/// Time kept back for what follows the put back in the same invocation
/// (target-group restore, notification, report).
pub const SETTLE_RESERVE_MS: i64 = 30_000;

/// Decides the settle. `weights` = what the routes forwarded with before
/// the put back; `remaining_ms` = the invocation's time left (Lambda
/// context deadline − now), `None` for a caller without a deadline.
pub fn settle_plan(weights: Weights, settle_seconds: u32, remaining_ms: Option<i64>) -> Settle {
    match weights {
        Weights::Armed => Settle::Now,
        Weights::Switched => match remaining_ms {
            None => Settle::Wait {
                seconds: settle_seconds,
            },
            Some(left) if i64::from(settle_seconds) * 1_000 + SETTLE_RESERVE_MS <= left => {
                Settle::Wait {
                    seconds: settle_seconds,
                }
            }
            Some(left) => Settle::Leave {
                reason: format!(
                    "the {settle_seconds} s settle does not fit the {} s this invocation has left ({} s kept for the report)",
                    left.max(0) / 1_000,
                    SETTLE_RESERVE_MS / 1_000
                ),
            },
        },
    }
}

#[cfg(test)]
#[path = "standby_record_tests.rs"]
mod tests;
