//! CloudWatch reads of the bake: the target group's ELB metrics
//! (GetMetricData) and the watched alarms' states (DescribeAlarms), mapped
//! to `greenlight_core::bake` types.
//!
//! Metric names, statistics and dimensions follow "CloudWatch metrics for
//! your Application Load Balancer"
//! (<https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html>):
//! namespace `AWS/ApplicationELB`; the target-group metrics
//! `HTTPCode_Target_5XX_Count`, `RequestCount`, `TargetResponseTime` and
//! `UnHealthyHostCount` are published with the dimensions `TargetGroup`
//! (`targetgroup/<name>/<id>`, the end of the target group ARN) and
//! `LoadBalancer` (`app/<name>/<id>`, the end of the load balancer ARN);
//! a period with no requests has no `RequestCount` datapoint at all.

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StateValue};
use aws_sdk_cloudwatch::Client;
use aws_smithy_types::DateTime;
use greenlight_core::bake::{AlarmObservation, AlarmState, BakeMetric, MetricSample};
use greenlight_core::model::EpochMillis;

use crate::AwsError;

/// The ALB metric namespace.
pub const NAMESPACE: &str = "AWS/ApplicationELB";
/// At most this many GetMetricData pages are read per look.
pub const MAX_METRIC_PAGES: usize = 10;
/// DescribeAlarms takes at most 100 names per call.
pub const ALARM_NAMES_PER_CALL: usize = 100;

/// One target group behind one load balancer: the pair of dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricTarget {
    pub target_group_arn: String,
    pub load_balancer_arn: String,
}

/// The `TargetGroup` dimension of a target group ARN
/// (`arn:aws:elasticloadbalancing:r:a:targetgroup/name/id` →
/// `targetgroup/name/id`).
pub fn target_group_dimension(arn: &str) -> Option<&str> {
    arn.find(":targetgroup/").map(|i| &arn[i + 1..])
}

/// The `LoadBalancer` dimension of a load balancer ARN
/// (`arn:aws:elasticloadbalancing:r:a:loadbalancer/app/name/id` →
/// `app/name/id`).
pub fn load_balancer_dimension(arn: &str) -> Option<&str> {
    arn.find(":loadbalancer/")
        .map(|i| &arn[i + ":loadbalancer/".len()..])
}

/// The GetMetricData queries: every bake metric for every target, ids
/// `<metric>_<target index>`.
pub fn metric_queries(targets: &[MetricTarget], period_seconds: u32) -> Vec<MetricDataQuery> {
    let mut queries = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let (Some(tg), Some(lb)) = (
            target_group_dimension(&t.target_group_arn),
            load_balancer_dimension(&t.load_balancer_arn),
        ) else {
            continue;
        };
        for m in BakeMetric::ALL {
            let metric = Metric::builder()
                .namespace(NAMESPACE)
                .metric_name(m.metric_name())
                .dimensions(Dimension::builder().name("TargetGroup").value(tg).build())
                .dimensions(Dimension::builder().name("LoadBalancer").value(lb).build())
                .build();
            queries.push(
                MetricDataQuery::builder()
                    .id(format!("{}_{i}", m.query_id()))
                    .metric_stat(
                        MetricStat::builder()
                            .metric(metric)
                            .period(i32::try_from(period_seconds).unwrap_or(60))
                            .stat(m.statistic())
                            .build(),
                    )
                    .return_data(true)
                    .build(),
            );
        }
    }
    queries
}

fn metric_of_query_id(id: &str) -> Option<BakeMetric> {
    let (metric, _) = id.rsplit_once('_')?;
    BakeMetric::from_query_id(metric)
}

/// GetMetricData for the bake's metrics on `targets` between `start_ms` and
/// `end_ms` (every page, at most [`MAX_METRIC_PAGES`]). A target whose ARNs
/// are not ELBv2 ARNs is an error: the bake would otherwise watch nothing.
pub async fn target_group_metrics(
    client: &Client,
    targets: &[MetricTarget],
    start_ms: EpochMillis,
    end_ms: EpochMillis,
    period_seconds: u32,
) -> Result<Vec<MetricSample>, AwsError> {
    let resource = targets
        .iter()
        .map(|t| t.target_group_arn.as_str())
        .collect::<Vec<_>>()
        .join(",");
    if let Some(bad) = targets.iter().find(|t| {
        target_group_dimension(&t.target_group_arn).is_none()
            || load_balancer_dimension(&t.load_balancer_arn).is_none()
    }) {
        return Err(AwsError::unexpected(
            "GetMetricData",
            &resource,
            format!(
                "{} / {} are not an ELBv2 target group and load balancer ARN; the bake cannot name their metrics",
                bad.target_group_arn, bad.load_balancer_arn
            ),
        ));
    }
    let queries = metric_queries(targets, period_seconds);
    if queries.is_empty() {
        return Ok(Vec::new());
    }
    let mut samples = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_METRIC_PAGES {
        let out = client
            .get_metric_data()
            .set_metric_data_queries(Some(queries.clone()))
            .start_time(DateTime::from_millis(start_ms))
            .end_time(DateTime::from_millis(end_ms))
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetMetricData", &resource, &e))?;
        for result in out.metric_data_results() {
            let Some(metric) = result.id().and_then(metric_of_query_id) else {
                continue;
            };
            for (at, value) in result.timestamps().iter().zip(result.values()) {
                let Ok(at_ms) = at.to_millis() else {
                    continue;
                };
                samples.push(MetricSample {
                    metric,
                    at_ms,
                    value: *value,
                });
            }
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(samples)
}

/// What DescribeAlarms answered for the watched names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlarmStates {
    pub found: Vec<AlarmObservation>,
    /// Names asked for that DescribeAlarms did not return.
    pub missing: Vec<String>,
}

fn alarm_state(v: Option<&StateValue>) -> AlarmState {
    match v {
        Some(StateValue::Ok) => AlarmState::Ok,
        Some(StateValue::Alarm) => AlarmState::Alarm,
        // INSUFFICIENT_DATA, absent or a value this SDK does not know.
        _ => AlarmState::InsufficientData,
    }
}

/// DescribeAlarms by name (metric and composite alarms), 100 names a call.
pub async fn alarm_states(client: &Client, names: &[String]) -> Result<AlarmStates, AwsError> {
    let mut states = AlarmStates::default();
    for chunk in names.chunks(ALARM_NAMES_PER_CALL) {
        let resource = chunk.join(",");
        let mut token: Option<String> = None;
        loop {
            let out = client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("DescribeAlarms", &resource, &e))?;
            for a in out.metric_alarms() {
                states.found.push(AlarmObservation {
                    name: a.alarm_name().unwrap_or_default().to_string(),
                    state: alarm_state(a.state_value()),
                    since_ms: a.state_updated_timestamp().and_then(|t| t.to_millis().ok()),
                    reason: a.state_reason().unwrap_or_default().to_string(),
                });
            }
            for a in out.composite_alarms() {
                states.found.push(AlarmObservation {
                    name: a.alarm_name().unwrap_or_default().to_string(),
                    state: alarm_state(a.state_value()),
                    since_ms: a.state_updated_timestamp().and_then(|t| t.to_millis().ok()),
                    reason: a.state_reason().unwrap_or_default().to_string(),
                });
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    for name in names {
        if !states.found.iter().any(|a| &a.name == name) && !states.missing.contains(name) {
            states.missing.push(name.clone());
        }
    }
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::operation::get_metric_data::{GetMetricDataError, GetMetricDataOutput};
    use aws_sdk_cloudwatch::types::{CompositeAlarm, MetricAlarm, MetricDataResult};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;

    const TG: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-tg/6d0ecf831eec9f09";
    const LB: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop-alb/50dc6c495c0c9188";

    fn target() -> MetricTarget {
        MetricTarget {
            target_group_arn: TG.into(),
            load_balancer_arn: LB.into(),
        }
    }

    #[test]
    fn dimensions_are_the_ends_of_the_arns() {
        assert_eq!(
            target_group_dimension(TG),
            Some("targetgroup/shop-tg/6d0ecf831eec9f09")
        );
        assert_eq!(
            load_balancer_dimension(LB),
            Some("app/shop-alb/50dc6c495c0c9188")
        );
        assert_eq!(target_group_dimension("shop-tg"), None);
        assert_eq!(load_balancer_dimension(TG), None);
    }

    #[test]
    fn queries_name_each_metric_with_both_dimensions_and_the_right_statistic() {
        let q = metric_queries(&[target()], 60);
        assert_eq!(q.len(), 4);
        for query in &q {
            let stat = query.metric_stat().expect("stat");
            let metric = stat.metric().expect("metric");
            let m = query.id().and_then(metric_of_query_id).expect("known id");
            assert_eq!(metric.namespace(), Some(NAMESPACE));
            assert_eq!(metric.metric_name(), Some(m.metric_name()));
            assert_eq!(stat.stat(), Some(m.statistic()));
            assert_eq!(stat.period(), Some(60));
            let dims: Vec<_> = metric
                .dimensions()
                .iter()
                .map(|d| (d.name().unwrap_or(""), d.value().unwrap_or("")))
                .collect();
            assert_eq!(
                dims,
                [
                    ("TargetGroup", "targetgroup/shop-tg/6d0ecf831eec9f09"),
                    ("LoadBalancer", "app/shop-alb/50dc6c495c0c9188")
                ]
            );
        }
        assert_eq!(q[0].id(), Some("target5xx_0"));
    }

    #[tokio::test]
    async fn metric_data_pages_become_samples() {
        let first = mock!(Client::get_metric_data)
            .match_requests(|r| {
                r.next_token().is_none()
                    && r.start_time() == Some(&DateTime::from_millis(1_000_000))
                    && r.end_time() == Some(&DateTime::from_millis(2_000_000))
                    && r.metric_data_queries().len() == 4
            })
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(
                        MetricDataResult::builder()
                            .id("target5xx_0")
                            .timestamps(DateTime::from_millis(1_020_000))
                            .values(7.0)
                            .build(),
                    )
                    .next_token("page2")
                    .build()
            });
        let second = mock!(Client::get_metric_data)
            .match_requests(|r| r.next_token() == Some("page2"))
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(
                        MetricDataResult::builder()
                            .id("requests_0")
                            .timestamps(DateTime::from_millis(1_020_000))
                            .timestamps(DateTime::from_millis(1_080_000))
                            .values(70.0)
                            .values(80.0)
                            .build(),
                    )
                    .metric_data_results(
                        MetricDataResult::builder()
                            .id("unknown")
                            .values(1.0)
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second]);
        let samples = target_group_metrics(&client, &[target()], 1_000_000, 2_000_000, 60)
            .await
            .expect("read");
        assert_eq!(
            samples,
            vec![
                MetricSample {
                    metric: BakeMetric::Target5xxCount,
                    at_ms: 1_020_000,
                    value: 7.0
                },
                MetricSample {
                    metric: BakeMetric::RequestCount,
                    at_ms: 1_020_000,
                    value: 70.0
                },
                MetricSample {
                    metric: BakeMetric::RequestCount,
                    at_ms: 1_080_000,
                    value: 80.0
                },
            ]
        );
    }

    #[tokio::test]
    async fn throttled_metric_data_is_a_transient_aws_error() {
        let rule = mock!(Client::get_metric_data).then_error(|| {
            GetMetricDataError::generic(
                ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
        let err = target_group_metrics(&client, &[target()], 0, 60_000, 60)
            .await
            .expect_err("throttled");
        assert_eq!(err.operation, "GetMetricData");
        assert!(err.transient);
        assert_eq!(err.code.as_deref(), Some("Throttling"));
    }

    #[tokio::test]
    async fn a_target_that_is_not_an_elbv2_arn_is_refused_before_any_call() {
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, []);
        let err = target_group_metrics(
            &client,
            &[MetricTarget {
                target_group_arn: "shop-tg".into(),
                load_balancer_arn: LB.into(),
            }],
            0,
            60_000,
            60,
        )
        .await
        .expect_err("refused");
        assert!(!err.transient);
        assert!(err.message.contains("not an ELBv2"));
    }

    #[tokio::test]
    async fn alarms_found_and_missing() {
        let rule = mock!(Client::describe_alarms)
            .match_requests(|r| r.alarm_names() == ["shop-5xx", "shop-latency", "gone"])
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(
                        MetricAlarm::builder()
                            .alarm_name("shop-5xx")
                            .state_value(StateValue::Alarm)
                            .state_reason("Threshold Crossed")
                            .state_updated_timestamp(DateTime::from_millis(5_000))
                            .build(),
                    )
                    .composite_alarms(
                        CompositeAlarm::builder()
                            .alarm_name("shop-latency")
                            .state_value(StateValue::InsufficientData)
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
        let names = vec![
            "shop-5xx".to_string(),
            "shop-latency".to_string(),
            "gone".to_string(),
        ];
        let states = alarm_states(&client, &names).await.expect("read");
        assert_eq!(
            states,
            AlarmStates {
                found: vec![
                    AlarmObservation {
                        name: "shop-5xx".into(),
                        state: AlarmState::Alarm,
                        since_ms: Some(5_000),
                        reason: "Threshold Crossed".into(),
                    },
                    AlarmObservation {
                        name: "shop-latency".into(),
                        state: AlarmState::InsufficientData,
                        since_ms: None,
                        reason: String::new(),
                    },
                ],
                missing: vec!["gone".into()],
            }
        );
    }

    #[tokio::test]
    async fn no_alarm_names_means_no_call() {
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, []);
        assert_eq!(
            alarm_states(&client, &[]).await.expect("nothing to read"),
            AlarmStates::default()
        );
    }
}
