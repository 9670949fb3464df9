//! State `TargetFailed` of distribute-image (the Map's Catch): a failed nested copy-image
//! execution becomes that target's report line, with the child's own error and cause.

use crate::aws::Clients;
use ferry_core::distribute::io::{TargetFailedInput, TargetResult};
use ferry_core::distribute::target_failed::target_failed;
use ferry_core::FerryError;

pub async fn handle(
    _clients: Clients,
    input: TargetFailedInput,
) -> Result<TargetResult, FerryError> {
    let result = target_failed(&input);
    tracing::warn!(account = %result.account_id, region = %result.region, error = ?result.error, "copy to target failed");
    Ok(result)
}
