//! Greenlight's SNS notifications: one per ended upload (failed, deployed,
//! superseded), as human text for e-mail, a JSON body for every other
//! protocol, and message attributes to filter on
//! ([`greenlight_core::announce`]).

use crate::AwsError;
use aws_sdk_sns::types::MessageAttributeValue;
use greenlight_core::announce::{sns_attributes, sns_message};
use greenlight_core::runbook::Notification;

/// Publish (`MessageStructure=json`, String message attributes `outcome`,
/// `application`, `deploymentGroup`); the message id SNS answered.
pub async fn publish(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    notification: &Notification,
) -> Result<Option<String>, AwsError> {
    let mut request = sns
        .publish()
        .topic_arn(topic_arn)
        .subject(&notification.subject)
        .message_structure("json")
        .message(sns_message(notification));
    for (name, value) in sns_attributes(notification) {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| AwsError {
                operation: "Publish",
                resource: topic_arn.to_string(),
                code: None,
                message: format!("message attribute {name}: {e}"),
                transient: false,
            })?;
        request = request.message_attributes(name, attribute);
    }
    request
        .send()
        .await
        .map(|out| out.message_id().map(str::to_string))
        .map_err(|e| AwsError::from_sdk("Publish", topic_arn, &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use greenlight_core::model::{PipelineInput, Revision, Source};

    const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:greenlight";

    fn input() -> PipelineInput {
        PipelineInput {
            application: "shop".into(),
            deployment_group: "shop-prod".into(),
            revision: Revision {
                bucket: "b".into(),
                key: "artifacts/shop/1.zip".into(),
                version: None,
                etag: None,
                label: "1".into(),
            },
            uploaded_at: "2024-01-01T12:00:00Z".into(),
            uploaded_at_ms: 0,
            source: Source::S3 { event_id: None },
            approval: None,
            bake_skip: None,
        }
    }

    #[tokio::test]
    async fn publishes_json_structure_with_filterable_attributes() {
        let n = greenlight_core::announce::deployed(&input(), "exec-1", "d-OK1", &[], None);
        let expected_message = sns_message(&n);
        let rule = mock!(aws_sdk_sns::Client::publish)
            .match_requests(move |r| {
                let attr = |name: &str| {
                    r.message_attributes()
                        .and_then(|a| a.get(name))
                        .filter(|v| v.data_type() == "String")
                        .and_then(|v| v.string_value())
                        .map(str::to_string)
                };
                r.topic_arn() == Some(TOPIC)
                    && r.message_structure() == Some("json")
                    && r.subject() == Some("greenlight deployed: shop/shop-prod d-OK1")
                    && r.message() == Some(expected_message.as_str())
                    && attr("outcome").as_deref() == Some("deployed")
                    && attr("application").as_deref() == Some("shop")
                    && attr("deploymentGroup").as_deref() == Some("shop-prod")
                    && r.message_attributes().map(|a| a.len()) == Some(3)
            })
            .then_output(|| PublishOutput::builder().message_id("m-1").build());
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]);
        let id = publish(&sns, TOPIC, &n).await.unwrap();
        assert_eq!(id.as_deref(), Some("m-1"));
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_refused_publish_is_an_aws_error_naming_the_topic() {
        let rule = mock!(aws_sdk_sns::Client::publish).then_error(|| {
            aws_sdk_sns::operation::publish::PublishError::AuthorizationErrorException(
                aws_sdk_sns::types::error::AuthorizationErrorException::builder()
                    .message("denied")
                    .build(),
            )
        });
        let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]);
        let n = greenlight_core::announce::superseded(&input(), "exec-1", "exec-2", "k");
        let err = publish(&sns, TOPIC, &n).await.unwrap_err();
        assert_eq!(err.operation, "Publish");
        assert_eq!(err.resource, TOPIC);
        assert!(!err.transient);
    }
}
