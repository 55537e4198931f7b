//! The one SNS notification of the failure path.

use crate::AwsError;
use greenlight_core::runbook::Notification;

/// Publish; the message id SNS answered.
pub async fn publish(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    notification: &Notification,
) -> Result<Option<String>, AwsError> {
    sns.publish()
        .topic_arn(topic_arn)
        .subject(&notification.subject)
        .message(&notification.message)
        .send()
        .await
        .map(|out| out.message_id().map(str::to_string))
        .map_err(|e| AwsError::from_sdk("Publish", topic_arn, &e))
}
