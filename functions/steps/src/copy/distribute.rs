//! The two steps of `distribute-image` that are not nested executions: `Preflight`
//! (parse and check every target before anything is shared) and `TargetFailed` (turn a
//! failed nested copy into the target's report line). Neither calls AWS.

use crate::aws::Clients;
use ferry_core::distribute::{
    self, DistributePlan, DistributePreflightInput, TargetFailedInput, TargetResult,
};
use ferry_core::FerryError;

pub async fn preflight(
    _clients: Clients,
    input: DistributePreflightInput,
) -> Result<DistributePlan, FerryError> {
    DistributePlan::parse(&input.request, &input.context)
}

pub async fn target_failed(
    _clients: Clients,
    input: TargetFailedInput,
) -> Result<TargetResult, FerryError> {
    let result = distribute::target_failed(&input);
    tracing::warn!(account = %result.account_id, region = %result.region, error = ?result.error, "copy to target failed");
    Ok(result)
}
