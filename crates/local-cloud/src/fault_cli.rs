//! `greenlight-local fault ...`: the fault injector of a running local cloud
//! (started with `greenlight-local up`; found through its state file, as
//! `status` finds it), over its `/_greenlight/faults` endpoints.

use crate::service::{read_state, ServicePaths};
use serde_json::{json, Map, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

pub const USAGE: &str = "usage:
  greenlight-local fault list [--json]
  greenlight-local fault add <kind> [--service S] [--operation OP] [--resource R]
                             [--count N | --percent P] [--seed N] [--status 500|503] [--hang-seconds S]
      kinds: throttle, error5xx, hang (service required; count or percent required),
             crash_once, timeout_once, unknown_once, oversize_once (resource = function name; operation = a task action, e.g. create),
             kill_instance, hang_health (resource = instance id),
             fail_rollback, lose_event (resource = application/group, or any group)
  greenlight-local fault clear [ID]
  greenlight-local fault rate-limits off|aws";

/// Parses `fault add` options into the JSON body of `POST /_greenlight/faults` (pure).
pub fn add_body(args: &[String]) -> Result<Value, String> {
    let mut it = args.iter();
    let kind = it
        .next()
        .filter(|k| !k.starts_with("--"))
        .ok_or_else(|| format!("fault add needs a kind\n\n{USAGE}"))?;
    let mut body = Map::new();
    body.insert("kind".into(), json!(kind));
    while let Some(option) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{option} needs a value\n\n{USAGE}"))?;
        let number = |what: &str| -> Result<Value, String> {
            value
                .parse::<f64>()
                .ok()
                .and_then(|n| {
                    if n.fract() == 0.0 && what != "hangSeconds" && what != "percent" {
                        Some(json!(n as u64))
                    } else {
                        serde_json::Number::from_f64(n).map(Value::Number)
                    }
                })
                .ok_or_else(|| format!("{option} {value}: give a number"))
        };
        let (key, v) = match option.as_str() {
            "--service" => ("service", json!(value)),
            "--operation" => ("operation", json!(value)),
            "--resource" => ("resource", json!(value)),
            "--count" => ("count", number("count")?),
            "--percent" => ("percent", number("percent")?),
            "--seed" => ("seed", number("seed")?),
            "--status" => ("status", number("status")?),
            "--hang-seconds" => ("hangSeconds", number("hangSeconds")?),
            other => return Err(format!("unknown option {other}\n\n{USAGE}")),
        };
        body.insert(key.into(), v);
    }
    Ok(Value::Object(body))
}

/// One HTTP/1.1 request to the loopback endpoint; (status, body).
fn request(
    endpoint: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, String), String> {
    let host_port = endpoint
        .strip_prefix("http://")
        .map(|h| h.trim_end_matches('/'))
        .ok_or_else(|| format!("endpoint {endpoint} is not http://"))?;
    let addr: SocketAddr = host_port
        .parse()
        .map_err(|e| format!("endpoint {endpoint}: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("endpoint {endpoint} is not on loopback"));
    }
    let payload = body.map(Value::to_string).unwrap_or_default();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )
    .map_err(|e| format!("{endpoint}: {e}"))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{endpoint} answered something that is not HTTP"))?;
    Ok((status, body.to_string()))
}

/// Runs `greenlight-local fault <args>`.
pub fn run(project_root: &Path, args: &[String]) -> Result<bool, String> {
    let paths = ServicePaths::new(project_root);
    let state = read_state(&paths)?.ok_or_else(|| {
        format!(
            "the local cloud is not running (no {}); start it with `greenlight-local up`",
            paths.state_file.display()
        )
    })?;
    let endpoint = state.endpoint_url.as_str();
    let (method, path, body) = match args.first().map(String::as_str) {
        Some("list") | None => ("GET", "/_greenlight/faults".to_string(), None),
        Some("add") => (
            "POST",
            "/_greenlight/faults".to_string(),
            Some(add_body(&args[1..])?),
        ),
        Some("clear") => match args.get(1) {
            Some(id) => ("DELETE", format!("/_greenlight/faults/{id}"), None),
            None => ("DELETE", "/_greenlight/faults".to_string(), None),
        },
        Some("rate-limits") => {
            let mode = args
                .get(1)
                .ok_or_else(|| format!("rate-limits needs off or aws\n\n{USAGE}"))?;
            (
                "PUT",
                "/_greenlight/faults/rate-limits".to_string(),
                Some(json!({ "mode": mode })),
            )
        }
        Some(other) => return Err(format!("unknown fault command {other}\n\n{USAGE}")),
    };
    let (status, text) = request(endpoint, method, &path, body.as_ref())?;
    let pretty = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(text);
    println!("{pretty}");
    Ok((200..300).contains(&status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn add_options_become_the_fault_json() {
        let body = add_body(&strings(&[
            "throttle",
            "--service",
            "codedeploy",
            "--operation",
            "GetDeployment",
            "--count",
            "3",
        ]))
        .unwrap();
        assert_eq!(
            body,
            json!({"kind": "throttle", "service": "codedeploy", "operation": "GetDeployment", "count": 3})
        );
        let body = add_body(&strings(&[
            "hang",
            "--service",
            "s3",
            "--percent",
            "12.5",
            "--hang-seconds",
            "5",
        ]))
        .unwrap();
        assert_eq!(body["percent"], json!(12.5));
        assert_eq!(body["hangSeconds"], json!(5.0));
        assert!(add_body(&strings(&[]))
            .unwrap_err()
            .contains("needs a kind"));
        assert!(add_body(&strings(&["throttle", "--count"]))
            .unwrap_err()
            .contains("needs a value"));
        assert!(add_body(&strings(&["throttle", "--count", "x"]))
            .unwrap_err()
            .contains("give a number"));
        assert!(add_body(&strings(&["throttle", "--bogus", "1"]))
            .unwrap_err()
            .contains("unknown option"));
    }
}
