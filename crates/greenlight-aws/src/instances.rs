//! EC2 instances: their private IPv4 addresses (DescribeInstances), which
//! the traffic validator probes. Addresses come only from AWS, never from an
//! event.

use std::collections::HashMap;

use crate::AwsError;

/// At most this many DescribeInstances pages are read (the validator asks
/// for a deployment's green fleet by id, so one page is the rule).
pub const MAX_INSTANCE_PAGES: usize = 20;

/// Private IPv4 address of each instance (EC2 DescribeInstances by id). An
/// instance EC2 does not return, or returns without an address, is absent
/// from the map.
pub async fn private_ips(
    client: &aws_sdk_ec2::Client,
    instance_ids: &[String],
) -> Result<HashMap<String, String>, AwsError> {
    let mut ips = HashMap::new();
    let mut next_token: Option<String> = None;
    for _ in 0..MAX_INSTANCE_PAGES {
        let page = client
            .describe_instances()
            .set_instance_ids(Some(instance_ids.to_vec()))
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeInstances", instance_ids.join(", "), &e))?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            if let (Some(id), Some(ip)) = (instance.instance_id(), instance.private_ip_address()) {
                if !ip.is_empty() {
                    ips.insert(id.to_string(), ip.to_string());
                }
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => next_token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::config::http::HttpResponse;
    use aws_sdk_ec2::config::retry::RetryConfig;
    use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
    use aws_sdk_ec2::types::{Instance, Reservation};
    use aws_sdk_ec2::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::body::SdkBody;

    /// An EC2 query-protocol error answer with `code`.
    fn http(status: u16, code: &str) -> HttpResponse {
        HttpResponse::new(
            status.try_into().expect("status"),
            SdkBody::from(format!(
                "<Response><Errors><Error><Code>{code}</Code><Message>m</Message></Error></Errors><RequestID>r</RequestID></Response>"
            )),
        )
    }

    fn instance(id: &str, ip: Option<&str>) -> Instance {
        Instance::builder()
            .instance_id(id)
            .set_private_ip_address(ip.map(str::to_string))
            .build()
    }

    #[tokio::test]
    async fn addresses_by_instance_across_pages() {
        let first = mock!(Client::describe_instances)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| {
                DescribeInstancesOutput::builder()
                    .reservations(
                        Reservation::builder()
                            .instances(instance("i-1", Some("127.0.0.2")))
                            .instances(instance("i-2", None))
                            .build(),
                    )
                    .next_token("t")
                    .build()
            });
        let second = mock!(Client::describe_instances)
            .match_requests(|r| r.next_token() == Some("t"))
            .then_output(|| {
                DescribeInstancesOutput::builder()
                    .reservations(
                        Reservation::builder()
                            .instances(instance("i-3", Some("127.0.0.3")))
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&first, &second]);
        let ids = ["i-1".to_string(), "i-2".to_string(), "i-3".to_string()];
        let ips = private_ips(&client, &ids).await.expect("read");
        assert_eq!(ips.len(), 2);
        assert_eq!(ips.get("i-1").map(String::as_str), Some("127.0.0.2"));
        assert_eq!(ips.get("i-3").map(String::as_str), Some("127.0.0.3"));
    }

    #[tokio::test]
    async fn throttling_is_transient_and_a_bad_id_permanent() {
        let throttled = mock!(Client::describe_instances)
            .then_http_response(|| http(503, "RequestLimitExceeded"));
        let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&throttled], |c| c
            .retry_config(RetryConfig::standard().with_max_attempts(1)));
        let e = private_ips(&client, &["i-1".to_string()])
            .await
            .unwrap_err();
        assert!(e.transient, "{e}");
        assert_eq!(e.code.as_deref(), Some("RequestLimitExceeded"));
        let bad = mock!(Client::describe_instances)
            .then_http_response(|| http(400, "InvalidInstanceID.NotFound"));
        let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&bad]);
        let e = private_ips(&client, &["i-1".to_string(), "i-2".to_string()])
            .await
            .unwrap_err();
        assert_eq!(
            (
                e.operation,
                e.resource.as_str(),
                e.code.as_deref(),
                e.transient
            ),
            (
                "DescribeInstances",
                "i-1, i-2",
                Some("InvalidInstanceID.NotFound"),
                false
            )
        );
    }
}
