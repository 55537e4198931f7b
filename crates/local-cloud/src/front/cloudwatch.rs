//! CloudWatch for the AWS SDK for Rust: Smithy RPC v2 CBOR in front of
//! moto's JSON 1.0 CloudWatch.
//!
//! The SDK (aws-sdk-cloudwatch ≥ 1.100) speaks only `smithy-rpc-v2-cbor`
//! (`POST /service/GraniteServiceVersion20100801/operation/<Op>`, header
//! `smithy-protocol: rpc-v2-cbor`, body CBOR). CloudWatch's service model
//! (botocore `cloudwatch/2010-08-01`, `"protocols": ["smithy-rpc-v2-cbor",
//! "json", "query"]`) also offers JSON 1.0, which moto 5.2 serves; moto has
//! no CBOR. So the front translates: CBOR request → JSON with `X-Amz-Target:
//! GraniteServiceVersion20100801.<Op>` → moto → its JSON answer → CBOR,
//! status kept. Wire rules from the Smithy RPC v2 CBOR protocol
//! specification (<https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html>):
//! timestamps are tag 1 (epoch seconds), `double` members are CBOR floats,
//! errors carry `__type` in the body, responses carry `smithy-protocol:
//! rpc-v2-cbor`. JSON 1.0 carries timestamps as epoch-second numbers.
//!
//! Which members are timestamps or doubles is read from their names (the
//! CloudWatch model's timestamp members all end in `Timestamp`/`Timestamps`
//! or are `StartTime`/`EndTime`/`StartDate`/`EndDate`; its double members are
//! listed in [`DOUBLE_MEMBERS`]), not from the whole model: enough for every
//! operation greenlight and its tests call (GetMetricData, DescribeAlarms,
//! PutMetricAlarm, SetAlarmState, PutMetricData), checked by the round-trip
//! tests with the real SDK.

use ciborium::value::Value as Cbor;
use hyper::header::HeaderMap;
use serde_json::{Map, Number, Value};

/// CloudWatch's Smithy service shape name (`targetPrefix`).
pub const SERVICE: &str = "GraniteServiceVersion20100801";

/// Members of type `double` (or lists of doubles) in CloudWatch's model.
pub const DOUBLE_MEMBERS: &[&str] = &[
    "Values",
    "Value",
    "Counts",
    "Threshold",
    "SampleCount",
    "Sum",
    "Minimum",
    "Maximum",
    "Average",
];

/// The operation of a CBOR CloudWatch request, when it is one.
pub fn cbor_operation<'a>(path: &'a str, headers: &HeaderMap) -> Option<&'a str> {
    let is_cbor = headers
        .get("smithy-protocol")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("rpc-v2-cbor"));
    if !is_cbor {
        return None;
    }
    let rest = path.strip_prefix("/service/")?;
    let (service, op) = rest.split_once("/operation/")?;
    (service == SERVICE && !op.is_empty() && !op.contains('/')).then_some(op)
}

fn is_timestamp_member(key: &str) -> bool {
    key.ends_with("Timestamp")
        || key.ends_with("Timestamps")
        || matches!(key, "StartTime" | "EndTime" | "StartDate" | "EndDate")
}

/// A CBOR request body as JSON (tag-1 timestamps become epoch seconds).
pub fn cbor_to_json(bytes: &[u8]) -> Result<Value, String> {
    if bytes.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let value: Cbor =
        ciborium::de::from_reader(bytes).map_err(|e| format!("the body is not CBOR: {e}"))?;
    to_json(&value)
}

fn to_json(v: &Cbor) -> Result<Value, String> {
    Ok(match v {
        Cbor::Null => Value::Null,
        Cbor::Bool(b) => Value::Bool(*b),
        Cbor::Integer(i) => {
            let i: i128 = (*i).into();
            if let Ok(u) = u64::try_from(i) {
                Value::Number(u.into())
            } else {
                Value::Number(i64::try_from(i).map_err(|_| "integer out of range")?.into())
            }
        }
        Cbor::Float(f) => Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Cbor::Text(s) => Value::String(s.clone()),
        Cbor::Bytes(_) => return Err("blob members are not translated".into()),
        Cbor::Tag(1, inner) => to_json(inner)?,
        Cbor::Tag(tag, _) => return Err(format!("CBOR tag {tag} is not translated")),
        Cbor::Array(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Cbor::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let Cbor::Text(key) = k else {
                    return Err("a map key is not text".into());
                };
                map.insert(key.clone(), to_json(v)?);
            }
            Value::Object(map)
        }
        _ => return Err("unsupported CBOR value".into()),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Timestamp,
    Double,
}

/// A JSON answer as CBOR, members typed by their names (see module docs).
pub fn json_to_cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = ciborium::ser::into_writer(&to_cbor(value, Kind::Plain), &mut out);
    out
}

fn number(n: &Number, kind: Kind) -> Cbor {
    match kind {
        Kind::Timestamp => Cbor::Tag(1, Box::new(Cbor::Float(n.as_f64().unwrap_or(0.0)))),
        Kind::Double => Cbor::Float(n.as_f64().unwrap_or(0.0)),
        Kind::Plain => {
            if let Some(u) = n.as_u64() {
                Cbor::Integer(u.into())
            } else if let Some(i) = n.as_i64() {
                Cbor::Integer(i.into())
            } else {
                Cbor::Float(n.as_f64().unwrap_or(0.0))
            }
        }
    }
}

fn to_cbor(v: &Value, kind: Kind) -> Cbor {
    match v {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Number(n) => number(n, kind),
        Value::String(s) if kind == Kind::Timestamp => {
            match time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
                Ok(t) => Cbor::Tag(
                    1,
                    Box::new(Cbor::Float(t.unix_timestamp_nanos() as f64 / 1e9)),
                ),
                Err(_) => Cbor::Text(s.clone()),
            }
        }
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(items) => Cbor::Array(items.iter().map(|i| to_cbor(i, kind)).collect()),
        Value::Object(map) => Cbor::Map(
            map.iter()
                .map(|(k, v)| {
                    let kind = if is_timestamp_member(k) {
                        Kind::Timestamp
                    } else if DOUBLE_MEMBERS.contains(&k.as_str()) {
                        Kind::Double
                    } else {
                        Kind::Plain
                    };
                    (Cbor::Text(k.clone()), to_cbor(v, kind))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn only_cbor_cloudwatch_requests_are_translated() {
        let mut h = HeaderMap::new();
        let path = "/service/GraniteServiceVersion20100801/operation/GetMetricData";
        assert_eq!(cbor_operation(path, &h), None);
        h.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
        assert_eq!(cbor_operation(path, &h), Some("GetMetricData"));
        assert_eq!(cbor_operation("/service/Other/operation/X", &h), None);
        assert_eq!(cbor_operation("/", &h), None);
    }

    #[test]
    fn timestamps_and_doubles_get_their_cbor_types() {
        let json = serde_json::json!({
            "MetricDataResults": [{"Id": "a_0", "Timestamps": [1700000040.0, 1700000100], "Values": [3, 4.5], "StatusCode": "Complete"}],
            "MetricAlarms": [{"AlarmName": "x", "Threshold": 1, "EvaluationPeriods": 2, "StateUpdatedTimestamp": "2026-12-02T01:00:00Z"}]
        });
        let cbor: Cbor = ciborium::de::from_reader(&json_to_cbor(&json)[..]).expect("cbor");
        let back = to_json(&cbor).expect("json");
        assert_eq!(back["MetricDataResults"][0]["Values"][0], 3.0);
        assert_eq!(back["MetricAlarms"][0]["EvaluationPeriods"], 2);
        // 2026-12-02T01:00:00Z in epoch seconds (`date -ud @1796173200`).
        assert_eq!(
            back["MetricAlarms"][0]["StateUpdatedTimestamp"],
            1_796_173_200.0
        );
        let Cbor::Map(top) = &cbor else { panic!("map") };
        let Cbor::Array(results) = &top[0].1 else {
            panic!("array")
        };
        let Cbor::Map(result) = &results[0] else {
            panic!("map")
        };
        let ts = &result
            .iter()
            .find(|(k, _)| k == &Cbor::Text("Timestamps".into()))
            .expect("ts")
            .1;
        assert!(
            matches!(ts, Cbor::Array(a) if matches!(&a[1], Cbor::Tag(1, b) if matches!(**b, Cbor::Float(f) if f == 1_700_000_100.0)))
        );
        let values = &result
            .iter()
            .find(|(k, _)| k == &Cbor::Text("Values".into()))
            .expect("values")
            .1;
        assert!(matches!(values, Cbor::Array(a) if matches!(a[0], Cbor::Float(f) if f == 3.0)));
    }

    #[test]
    fn requests_decode_with_tagged_timestamps() {
        let request = Cbor::Map(vec![
            (
                Cbor::Text("StartTime".into()),
                Cbor::Tag(1, Box::new(Cbor::Integer(1_700_000_000.into()))),
            ),
            (Cbor::Text("MaxDatapoints".into()), Cbor::Integer(10.into())),
        ]);
        let mut bytes = Vec::new();
        ciborium::ser::into_writer(&request, &mut bytes).expect("encode");
        assert_eq!(
            cbor_to_json(&bytes).expect("decoded"),
            serde_json::json!({"StartTime": 1_700_000_000u64, "MaxDatapoints": 10})
        );
        assert_eq!(cbor_to_json(&[]).expect("empty"), serde_json::json!({}));
        assert!(cbor_to_json(b"\xff\xff").is_err());
    }
}
