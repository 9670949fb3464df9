//! KMS key reads every workflow shares: DescribeKey, and a key a request names.

use crate::aws::aws_error_with;
use ferry_core::share::facts::{KeyFacts, KeyManager};
use ferry_core::{ErrorName, FerryError};

/// KMS errors: access denied has its own name (the key policy or a grant is missing).
pub fn kms_error<E, R>(operation: &str, err: aws_sdk_kms::error::SdkError<E, R>) -> FerryError
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    aws_error_with(
        operation,
        err,
        &[("AccessDeniedException", ErrorName::KmsAccessDenied)],
    )
}

/// DescribeKey of a key the REQUEST names (`field`): a key that does not exist (or is
/// not visible to the caller) is bad input, `Ferry.InvalidInput`, before any change.
pub async fn requested_key(
    kms: &aws_sdk_kms::Client,
    field: &str,
    key_id: &str,
) -> Result<KeyFacts, FerryError> {
    match describe_key(kms, key_id).await {
        Err(e) if e.message.contains("NotFoundException") => Err(FerryError::invalid_input(
            format!("{field}: the KMS key {key_id} does not exist in this account and region"),
        )),
        other => other,
    }
}

/// DescribeKey: the key's ARN, manager and state.
pub async fn describe_key(kms: &aws_sdk_kms::Client, key_id: &str) -> Result<KeyFacts, FerryError> {
    let out = kms
        .describe_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| kms_error("DescribeKey", e))?;
    let m = out.key_metadata().ok_or_else(|| {
        FerryError::new(
            ErrorName::AwsError,
            format!("DescribeKey {key_id}: no key metadata"),
        )
    })?;
    Ok(KeyFacts {
        key_id: key_id.to_string(),
        key_arn: m.arn().unwrap_or(key_id).to_string(),
        key_manager: match m.key_manager() {
            Some(aws_sdk_kms::types::KeyManagerType::Aws) => KeyManager::Aws,
            _ => KeyManager::Customer,
        },
        key_state: m.key_state().map(|s| s.as_str().to_string()),
    })
}
