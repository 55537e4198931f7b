//! EventBridge → Lambda delivery, through SQS.
//!
//! moto's EventBridge cannot invoke a Lambda target, but it delivers to SQS
//! targets with the rule's event pattern applied (`moto/events/models.py`:
//! `Rule.send_to_targets` returns early unless `event_pattern.matches_event`,
//! then `_send_to_sqs_queue` writes the event JSON as the message body). So
//! each rule gets an SQS queue target and the relay plays Lambda's part: it
//! long-polls the queue, invokes the mapped hosted function with the event,
//! deletes the message when the handler returns, and on a handler error leaves
//! it for another try (visible again after a short delay) until it has been
//! received `max_receive_count` times; then it is dropped to the dead-letter
//! log, as an event source mapping with a redrive policy would.
//!
//! Before the handler sees an event, [`normalize_event`] turns moto's
//! EventBridge quirks into AWS's documented shape:
//! - S3 events (`moto/s3/notifications.py` `_send_event_bridge_message`):
//!   `detail.object.eTag` → `etag`; `"version-id": "null"` (the string moto's
//!   `FakeKey.version_id` gives in an unversioned bucket) or `null` removed,
//!   as AWS omits it for unversioned buckets; `reason` is moto's event-name part
//!   (`ObjectCreated`) where AWS names the API (`PutObject`); `id` is the same
//!   constant for every S3 event (the example id of AWS's documentation), so it
//!   is replaced by a UUID-shaped id derived from the event's content (bucket,
//!   key, etag, version, size, time): distinct uploads get distinct ids and a
//!   duplicate delivery of one event keeps its id, as on AWS.
//! - every event: `time` is a Unix number inside moto (`unix_time()`); its SQS
//!   path already formats it as `YYYY-MM-DDTHH:MM:SSZ`, a number is converted
//!   all the same; moto's internal `ingestion-time` field (PutEvents) is removed.
//!
//! - S3 events' `reason` names the API that wrote the object, as AWS's
//!   EventBridge S3 events do ("PutObject", "POST Object", "CopyObject",
//!   "CompleteMultipartUpload": S3 user guide, "EventBridge event message
//!   structure"). moto says `ObjectCreated` for all of them, so: an ETag of a
//!   multipart upload (`<hex>-<parts>`, S3 user guide, "Checking object
//!   integrity") gives `CompleteMultipartUpload`; an object recorded with
//!   [`S3EventState::record_copy`] (by whoever sees the CopyObject request)
//!   gives `CopyObject`; any other creation `PutObject`.
//! - S3 events' `sequencer` is moto's constant; AWS's is a hexadecimal value
//!   that grows with each event for the same key ("The sequencer key provides
//!   a way to determine the sequence of events ... for the same object key",
//!   S3 user guide, "Event message structure"): each new event gets one
//!   greater than the key's last, from a nanosecond clock, and a duplicate
//!   delivery of one event keeps its sequencer.
//!
//! A message given up on from a route with an `on_failure_queue` (the
//! trigger's: template.yaml's `EventInvokeConfig.DestinationConfig.OnFailure`
//! → RejectedUploads) is also sent there as the invocation record Lambda
//! writes to an asynchronous invocation's on-failure destination
//! ([`invocation_record`]; Lambda developer guide, "Capturing records of
//! Lambda asynchronous invocations": `requestContext.condition`
//! `RetriesExhausted`, `requestPayload` = the event, `responsePayload` = the
//! function's error). The relay's tries stand in for the invocation and its
//! `MaximumRetryAttempts` retries (`max_receive_count` = 1 + 2 retries).
//!
//! Not faithful: S3 events' `request-id` stays moto's constant; moto's
//! pattern matcher sees the raw event (a pattern on `detail.object.etag`
//! would not match there).

use crate::lambda_host::LambdaHost;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

/// The id moto gives every S3 EventBridge event (`moto/events/utils.py`).
pub const MOTO_CONSTANT_EVENT_ID: &str = "17793124-05d4-b198-2fde-7ededc63b103";

/// One queue and the function its events go to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelayRoute {
    pub queue_url: String,
    pub function_name: String,
    /// The function's on-failure destination (an SQS queue URL): an event
    /// given up on is sent there as an [`invocation_record`].
    pub on_failure_queue: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Receives before a failing message is dropped to the dead-letter log.
    pub max_receive_count: u32,
    /// ReceiveMessage long-poll wait (seconds, 0..=20).
    pub wait_time_seconds: i32,
    /// How long a message stays invisible while its handler runs (seconds).
    pub visibility_timeout_seconds: i32,
    /// Delay before a failed message is visible again (whole seconds, real time).
    pub retry_delay: Duration,
    /// Invocations in flight per queue.
    pub max_concurrency: usize,
    /// Dead letters are also appended here as JSON lines, when set.
    pub dead_letter_log: Option<PathBuf>,
    /// What S3 event normalization remembers; shared with the front server,
    /// which records the objects CopyObject writes ([`S3EventState::record_copy`]).
    pub s3_events: Arc<S3EventState>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            max_receive_count: 3,
            wait_time_seconds: 1,
            visibility_timeout_seconds: 900,
            retry_delay: Duration::from_secs(1),
            max_concurrency: 8,
            dead_letter_log: None,
            s3_events: Arc::new(S3EventState::default()),
        }
    }
}

/// A message given up on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub queue_url: String,
    pub function_name: String,
    pub message_id: String,
    pub receive_count: u32,
    pub error_type: String,
    pub error_message: String,
    pub body: String,
}

struct Inner {
    sqs: aws_sdk_sqs::Client,
    lambda: Arc<LambdaHost>,
    config: RelayConfig,
    dead: Mutex<Vec<DeadLetter>>,
    s3_events: Arc<S3EventState>,
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
}

/// The running relay; stops when dropped or on [`Relay::stop`].
pub struct Relay {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Relay {
    /// Starts one poller per route. `sqs` may point at the front server or at
    /// moto directly.
    pub fn start(
        sqs: aws_sdk_sqs::Client,
        lambda: Arc<LambdaHost>,
        routes: Vec<RelayRoute>,
        config: RelayConfig,
    ) -> Arc<Self> {
        let inner = Arc::new(Inner {
            sqs,
            lambda,
            s3_events: config.s3_events.clone(),
            config,
            dead: Mutex::new(Vec::new()),
            delivered: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
        });
        let (stop, stop_rx) = watch::channel(false);
        let tasks = routes
            .into_iter()
            .map(|route| tokio::spawn(poll_queue(inner.clone(), route, stop_rx.clone())))
            .collect();
        Arc::new(Self {
            inner,
            stop,
            tasks: Mutex::new(tasks),
        })
    }

    /// Events delivered (handler returned Ok).
    /// What S3 event normalization remembers; [`S3EventState::record_copy`]
    /// marks an object written by CopyObject.
    pub fn s3_events(&self) -> Arc<S3EventState> {
        self.inner.s3_events.clone()
    }

    pub fn delivered(&self) -> u64 {
        self.inner.delivered.load(Ordering::Relaxed)
    }

    /// Handler invocations that failed (each try counts).
    pub fn failed_attempts(&self) -> u64 {
        self.inner.failed_attempts.load(Ordering::Relaxed)
    }

    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.inner
            .dead
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    /// Stops polling (invocations in flight finish on their own).
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(25), task).await;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
    }
}

async fn poll_queue(inner: Arc<Inner>, route: RelayRoute, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(inner.config.max_concurrency.max(1)));
    let mut backoff = Duration::from_millis(200);
    loop {
        if *stop.borrow() {
            return;
        }
        let receive = inner
            .sqs
            .receive_message()
            .queue_url(&route.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(inner.config.wait_time_seconds)
            .visibility_timeout(inner.config.visibility_timeout_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send();
        let output = tokio::select! {
            out = receive => out,
            _ = stop.changed() => return,
        };
        let messages = match output {
            Ok(out) => {
                backoff = Duration::from_millis(200);
                out.messages.unwrap_or_default()
            }
            Err(e) => {
                tracing::warn!(queue = %route.queue_url, error = %greenlight_aws::describe_error(&e), "relay: ReceiveMessage failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {},
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        for message in messages {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let inner = inner.clone();
            let route = route.clone();
            tokio::spawn(async move {
                deliver(&inner, &route, message).await;
                drop(permit);
            });
        }
    }
}

async fn deliver(inner: &Inner, route: &RelayRoute, message: aws_sdk_sqs::types::Message) {
    let body = message.body().unwrap_or_default().to_string();
    let message_id = message.message_id().unwrap_or_default().to_string();
    let receive_count: u32 = message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let Some(handle) = message.receipt_handle() else {
        return;
    };
    let mut delivered_event = None;
    let outcome = match serde_json::from_str::<Value>(&body) {
        Ok(event) => {
            let event = normalize_event(event, &inner.s3_events);
            delivered_event = Some(event.clone());
            inner
                .lambda
                .invoke(&route.function_name, event)
                .await
                .map_err(|d| (d.error_type, d.error_message, false))
        }
        Err(e) => Err((
            "InvalidEventJson".to_string(),
            format!("the message body is not JSON: {e}"),
            true,
        )),
    };
    match outcome {
        Ok(_) => {
            inner.delivered.fetch_add(1, Ordering::Relaxed);
            delete(inner, route, handle).await;
        }
        Err((error_type, error_message, permanent)) => {
            inner.failed_attempts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(function = %route.function_name, %message_id, receive_count, %error_type, %error_message, "relay: handler failed");
            if permanent || receive_count >= inner.config.max_receive_count {
                let letter = DeadLetter {
                    queue_url: route.queue_url.clone(),
                    function_name: route.function_name.clone(),
                    message_id,
                    receive_count,
                    error_type,
                    error_message,
                    body,
                };
                if let Some(queue) = &route.on_failure_queue {
                    let payload =
                        delivered_event.unwrap_or_else(|| Value::String(letter.body.clone()));
                    let record = invocation_record(
                        &route.function_name,
                        payload,
                        &letter.error_type,
                        &letter.error_message,
                        receive_count,
                        &letter.message_id,
                    );
                    send_record(inner, queue, &record).await;
                }
                record_dead_letter(inner, letter);
                delete(inner, route, handle).await;
            } else {
                let delay = inner.config.retry_delay.as_secs().min(43_200) as i32;
                if let Err(e) = inner
                    .sqs
                    .change_message_visibility()
                    .queue_url(&route.queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(delay)
                    .send()
                    .await
                {
                    tracing::warn!(error = %greenlight_aws::describe_error(&e), "relay: ChangeMessageVisibility failed");
                }
            }
        }
    }
}

async fn delete(inner: &Inner, route: &RelayRoute, handle: &str) {
    if let Err(e) = inner
        .sqs
        .delete_message()
        .queue_url(&route.queue_url)
        .receipt_handle(handle)
        .send()
        .await
    {
        tracing::warn!(queue = %route.queue_url, error = %greenlight_aws::describe_error(&e), "relay: DeleteMessage failed");
    }
}

/// The record Lambda sends to an asynchronous invocation's on-failure
/// destination once its retries are exhausted (Lambda developer guide,
/// "Capturing records of Lambda asynchronous invocations", example invocation
/// record). `request_id` stands in for the invocation's request id.
pub fn invocation_record(
    function_name: &str,
    event: Value,
    error_type: &str,
    error_message: &str,
    invoke_count: u32,
    request_id: &str,
) -> Value {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "version": "1.0",
        "timestamp": timestamp,
        "requestContext": {
            "requestId": request_id,
            "functionArn": format!(
                "arn:aws:lambda:{}:{}:function:{function_name}:$LATEST",
                crate::provision::REGION,
                crate::provision::ACCOUNT_ID
            ),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": invoke_count
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled"
        },
        "responsePayload": {
            "errorType": error_type,
            "errorMessage": error_message
        }
    })
}

async fn send_record(inner: &Inner, queue_url: &str, record: &Value) {
    if let Err(e) = inner
        .sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(record.to_string())
        .send()
        .await
    {
        tracing::error!(queue = %queue_url, error = %greenlight_aws::describe_error(&e), "relay: the on-failure destination refused the invocation record");
    }
}

fn record_dead_letter(inner: &Inner, letter: DeadLetter) {
    tracing::error!(function = %letter.function_name, message_id = %letter.message_id, error_type = %letter.error_type, "relay: message dropped to the dead-letter log");
    if let Some(path) = &inner.config.dead_letter_log {
        use std::io::Write;
        if let Ok(line) = serde_json::to_string(&letter) {
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| writeln!(f, "{line}"));
        }
    }
    if let Ok(mut dead) = inner.dead.lock() {
        dead.push(letter);
    }
}

/// What normalizing S3 events remembers: sequencers per key and per event,
/// and objects written by CopyObject.
#[derive(Debug, Default)]
pub struct S3EventState {
    inner: Mutex<S3EventMemory>,
}

#[derive(Debug, Default)]
struct S3EventMemory {
    last_by_key: std::collections::HashMap<(String, String), u128>,
    by_event: std::collections::HashMap<String, String>,
    copies: std::collections::HashSet<(String, String)>,
}

impl S3EventState {
    /// The next object-created event for this key came from CopyObject.
    pub fn record_copy(&self, bucket: &str, key: &str) {
        if let Ok(mut m) = self.inner.lock() {
            m.copies.insert((bucket.to_string(), key.to_string()));
        }
    }

    /// Undoes [`Self::record_copy`] when the CopyObject request failed.
    pub fn forget_copy(&self, bucket: &str, key: &str) {
        let _ = self.take_copy(bucket, key);
    }

    fn take_copy(&self, bucket: &str, key: &str) -> bool {
        self.inner
            .lock()
            .map(|mut m| m.copies.remove(&(bucket.to_string(), key.to_string())))
            .unwrap_or(false)
    }

    /// The sequencer of one event: stable for the event id, increasing per key.
    fn sequencer(&self, event_id: &str, bucket: &str, key: &str) -> String {
        let Ok(mut m) = self.inner.lock() else {
            return "0".repeat(18);
        };
        if let Some(seq) = m.by_event.get(event_id) {
            return seq.clone();
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let slot = m
            .last_by_key
            .entry((bucket.to_string(), key.to_string()))
            .or_insert(0);
        let next = now.max(*slot + 1);
        *slot = next;
        let seq = format!("{next:018X}");
        m.by_event.insert(event_id.to_string(), seq.clone());
        seq
    }
}

/// `<32 hex>-<parts>`: the ETag S3 gives an object made by a multipart upload.
fn is_multipart_etag(etag: &str) -> bool {
    match etag.trim_matches('"').split_once('-') {
        Some((md5, parts)) => {
            md5.len() == 32
                && md5.chars().all(|c| c.is_ascii_hexdigit())
                && !parts.is_empty()
                && parts.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// moto's EventBridge event → AWS's shape (see the module docs).
pub fn normalize_event(mut event: Value, state: &S3EventState) -> Value {
    let Some(obj) = event.as_object_mut() else {
        return event;
    };
    obj.remove("ingestion-time");
    if let Some(t) = obj.get("time").and_then(Value::as_f64) {
        obj.insert("time".into(), json!(iso8601_seconds(t)));
    }
    let is_s3 = obj.get("source").and_then(Value::as_str) == Some("aws.s3");
    if is_s3 {
        if let Some(object) = obj
            .get_mut("detail")
            .and_then(|d| d.get_mut("object"))
            .and_then(Value::as_object_mut)
        {
            if let Some(etag) = object.remove("eTag") {
                object.entry("etag").or_insert(etag);
            }
            // moto: `"null"` (FakeKey.version_id of an unversioned bucket) or null.
            if object
                .get("version-id")
                .is_some_and(|v| v.is_null() || v.as_str() == Some("null"))
            {
                object.remove("version-id");
            }
        }
        let detail_type = obj
            .get("detail-type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(detail) = obj.get_mut("detail").and_then(Value::as_object_mut) {
            let bucket = detail["bucket"]["name"].as_str().unwrap_or("").to_string();
            let key = detail["object"]["key"].as_str().unwrap_or("").to_string();
            let multipart = detail["object"]["etag"]
                .as_str()
                .is_some_and(is_multipart_etag);
            let aws_reason = match detail.get("reason").and_then(Value::as_str) {
                Some("ObjectCreated") if multipart => Some("CompleteMultipartUpload"),
                Some("ObjectCreated") if state.take_copy(&bucket, &key) => Some("CopyObject"),
                Some("ObjectCreated") => Some("PutObject"),
                Some("ObjectRemoved") => Some("DeleteObject"),
                _ => None,
            };
            if let Some(reason) = aws_reason {
                detail.insert("reason".into(), json!(reason));
            }
            if detail_type == "Object Deleted" && !detail.contains_key("deletion-type") {
                detail.insert("deletion-type".into(), json!("Permanently Deleted"));
            }
        }
        if obj.get("id").and_then(Value::as_str) == Some(MOTO_CONSTANT_EVENT_ID) {
            let id = content_event_id(obj);
            obj.insert("id".into(), json!(id));
        }
        let event_id = obj
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(detail) = obj.get_mut("detail").and_then(Value::as_object_mut) {
            let bucket = detail["bucket"]["name"].as_str().unwrap_or("").to_string();
            if let Some(object) = detail.get_mut("object").and_then(Value::as_object_mut) {
                if object.contains_key("sequencer") {
                    let key = object["key"].as_str().unwrap_or("").to_string();
                    let seq = state.sequencer(&event_id, &bucket, &key);
                    object.insert("sequencer".into(), json!(seq));
                }
            }
        }
    }
    if !obj.get("id").is_some_and(Value::is_string) {
        obj.insert("id".into(), json!(uuid::Uuid::new_v4().to_string()));
    }
    event
}

/// A UUID-shaped id from an S3 event's content.
fn content_event_id(obj: &serde_json::Map<String, Value>) -> String {
    let detail = obj.get("detail").cloned().unwrap_or(Value::Null);
    let object = &detail["object"];
    let material = json!([
        obj.get("detail-type"),
        obj.get("time"),
        detail["bucket"]["name"],
        object["key"],
        object["etag"],
        object["version-id"],
        object["size"],
    ]);
    let digest = Sha256::digest(material.to_string().as_bytes());
    let h: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Unix seconds → `YYYY-MM-DDTHH:MM:SSZ` (EventBridge's `time` format).
fn iso8601_seconds(unix: f64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(unix.floor() as i64)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moto_s3_event() -> Value {
        // What moto 5.2.5 puts on an SQS rule target for a PutObject.
        json!({
            "version": "0",
            "id": MOTO_CONSTANT_EVENT_ID,
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "123456789012",
            "time": "2026-11-23T11:19:05Z",
            "region": "us-east-1",
            "resources": ["arn:aws:s3:::artifacts"],
            "detail": {
                "version": "0",
                "bucket": {"name": "artifacts"},
                "object": {"key": "artifacts/MyApp/v1.zip", "size": 120, "eTag": "0cc175b9c0f1b6a831c399e269772661", "version-id": "null", "sequencer": "617f08299329d189"},
                "request-id": "N4N7GDK58NMKJ12R",
                "requester": "123456789012",
                "source-ip-address": "1.2.3.4",
                "reason": "ObjectCreated"
            }
        })
    }

    #[test]
    fn s3_events_get_aws_shape() {
        let event = normalize_event(moto_s3_event(), &S3EventState::default());
        let object = &event["detail"]["object"];
        assert_eq!(object["etag"], "0cc175b9c0f1b6a831c399e269772661");
        assert!(object.get("eTag").is_none());
        assert!(object.get("version-id").is_none());
        assert_eq!(event["detail"]["reason"], "PutObject");
        assert_eq!(event["time"], "2026-11-23T11:19:05Z");
        let id = event["id"].as_str().unwrap();
        assert_ne!(id, MOTO_CONSTANT_EVENT_ID);
        assert_eq!(id.len(), 36);
        // The runtime's EventBridge event type reads it.
        let parsed: aws_lambda_events::event::eventbridge::EventBridgeEvent<Value> =
            serde_json::from_value(event.clone()).unwrap();
        assert_eq!(parsed.detail_type, "Object Created");
        assert_eq!(
            parsed.time.unwrap().to_rfc3339(),
            "2026-11-23T11:19:05+00:00"
        );
    }

    #[test]
    fn event_ids_follow_content() {
        let a = normalize_event(moto_s3_event(), &S3EventState::default());
        let again = normalize_event(moto_s3_event(), &S3EventState::default());
        assert_eq!(a["id"], again["id"], "a duplicate delivery keeps its id");
        let mut other = moto_s3_event();
        other["detail"]["object"]["key"] = json!("artifacts/MyApp/v2.zip");
        assert_ne!(
            a["id"],
            normalize_event(other, &S3EventState::default())["id"]
        );
        let mut null_version = moto_s3_event();
        null_version["detail"]["object"]["version-id"] = Value::Null;
        assert!(
            normalize_event(null_version, &S3EventState::default())["detail"]["object"]
                .get("version-id")
                .is_none()
        );
        let mut versioned = moto_s3_event();
        versioned["detail"]["object"]["version-id"] = json!("v-1");
        let v = normalize_event(versioned, &S3EventState::default());
        assert_eq!(v["detail"]["object"]["version-id"], "v-1");
    }

    #[test]
    fn numeric_times_and_moto_fields_are_fixed_everywhere() {
        let state = S3EventState::default();
        let event = normalize_event(
            json!({
                "version": "0", "id": "abc", "detail-type": "CodeDeploy Deployment State-change Notification",
                "source": "aws.codedeploy", "time": 1_795_000_000.25, "ingestion-time": 1_795_000_000.5,
                "detail": {"state": "FAILURE"}
            }),
            &state,
        );
        assert_eq!(event["time"], "2026-11-18T11:06:40Z");
        assert!(event.get("ingestion-time").is_none());
        assert_eq!(event["id"], "abc");
        assert_eq!(event["detail"]["state"], "FAILURE");
        assert_eq!(normalize_event(json!([1]), &state), json!([1]));
    }

    #[test]
    fn reasons_name_the_api_that_wrote_the_object() {
        let state = S3EventState::default();
        let mut multipart = moto_s3_event();
        multipart["detail"]["object"]["eTag"] = json!("d41d8cd98f00b204e9800998ecf8427e-3");
        assert_eq!(
            normalize_event(multipart, &state)["detail"]["reason"],
            "CompleteMultipartUpload"
        );
        state.record_copy("artifacts", "artifacts/MyApp/v1.zip");
        assert_eq!(
            normalize_event(moto_s3_event(), &state)["detail"]["reason"],
            "CopyObject"
        );
        // The copy was one event: the next write is a PutObject again.
        let mut put = moto_s3_event();
        put["time"] = json!("2026-11-23T11:19:06Z");
        assert_eq!(
            normalize_event(put, &state)["detail"]["reason"],
            "PutObject"
        );
        assert!(!is_multipart_etag("0cc175b9c0f1b6a831c399e269772661"));
        assert!(!is_multipart_etag("abc-1"));
    }

    #[test]
    fn sequencers_are_hex_increasing_per_key_and_stable_per_event() {
        let state = S3EventState::default();
        let first = normalize_event(moto_s3_event(), &state);
        let duplicate = normalize_event(moto_s3_event(), &state);
        let mut later = moto_s3_event();
        later["time"] = json!("2026-11-23T11:19:07Z");
        later["detail"]["object"]["eTag"] = json!("92eb5ffee6ae2fec3ad71c777531578f");
        let later = normalize_event(later, &state);
        let seq = |e: &Value| {
            e["detail"]["object"]["sequencer"]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        assert_ne!(seq(&first), "617f08299329d189", "not moto's constant");
        assert!(seq(&first).chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            seq(&first),
            seq(&duplicate),
            "a duplicate delivery keeps its sequencer"
        );
        // AWS's comparison: equal-length hex strings compare lexicographically.
        assert_eq!(seq(&first).len(), seq(&later).len());
        assert!(
            seq(&later) > seq(&first),
            "{} > {}",
            seq(&later),
            seq(&first)
        );
    }
}
