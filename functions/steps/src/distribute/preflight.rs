//! State `Preflight` of distribute-image: the request parsed into the plan, every target
//! checked as copy-image would check it, before anything is shared.

use crate::aws::Clients;
use ferry_core::distribute::io::DistributePreflightInput;
use ferry_core::distribute::plan::DistributePlan;
use ferry_core::FerryError;

pub async fn handle(
    _clients: Clients,
    input: DistributePreflightInput,
) -> Result<DistributePlan, FerryError> {
    DistributePlan::parse(&input.request, &input.context)
}
