//! State `Tally` of migrate-fleet: see `ferry_core::fleet::tally`. No AWS call.

use crate::aws::Clients;
use ferry_core::fleet::plan::FleetState;
use ferry_core::fleet::tally::{tally, TallyInput};
use ferry_core::FerryError;

pub async fn handle(_clients: Clients, input: TallyInput) -> Result<FleetState, FerryError> {
    Ok(tally(input))
}
