//! State `VerifyInstance`: the new instance must be running in the target subnet with its
//! instance and system status checks `ok`. Not yet: `Ferry.InstanceNotReady` (retried);
//! stopped, terminated or impaired: `Ferry.InstanceFailed` with the reason. Each poll is
//! one DescribeInstanceStatus until the checks pass; the instance is described once then.

use super::describe;
use crate::aws::{aws_error, Clients};
use ferry_core::migrate::io::{InstanceInput, InstanceRef};
use ferry_core::rules::polls;
use ferry_core::{ErrorName, FerryError};

pub async fn handle(clients: Clients, input: InstanceInput) -> Result<InstanceRef, FerryError> {
    let ec2 = &clients.ec2;
    let id = &input.instance.instance_id;
    // One DescribeInstanceStatus per poll while the instance starts (its state and both
    // checks); DescribeInstances only once it is ready (placement, volumes, addresses) or
    // has failed (the state's reason). A fleet of many migrations polls this often.
    let Some(status) = instance_status(ec2, id).await? else {
        // Just launched and not yet visible (rule 19), for a bounded time.
        return Err(missing(&input));
    };
    let failed = match polls::instance_poll(
        id,
        &status.state,
        None,
        status.instance.as_deref(),
        status.system.as_deref(),
    ) {
        Ok(()) => None,
        // Stopped, terminated, ...: failed, for the reason DescribeInstances gives.
        Err(e) if e.name == ErrorName::InstanceFailed && status.state != "running" => Some(e),
        // Not ready yet, or running with a check impaired: nothing more to read.
        Err(e) => return Err(e),
    };
    // Ready (where it runs) or failed (why): described once.
    let Some(instance) = describe::instance(ec2, id).await? else {
        return Err(failed.unwrap_or_else(|| missing(&input)));
    };
    let state = describe::state_name(&instance);
    polls::instance_poll(
        id,
        &state,
        instance.state_reason().and_then(|r| r.message()),
        status.instance.as_deref(),
        status.system.as_deref(),
    )?;

    let plan = &input.plan;
    let az = instance
        .placement()
        .and_then(|p| p.availability_zone())
        .unwrap_or_default();
    let subnet = instance.subnet_id().unwrap_or_default();
    if az != plan.target.availability_zone || subnet != plan.target.subnet_id {
        return Err(FerryError::new(
            ErrorName::InstanceFailed,
            format!(
                "{id} runs in {subnet} ({az}), not in the planned {} ({})",
                plan.target.subnet_id, plan.target.availability_zone
            ),
        ));
    }
    let attached = instance.block_device_mappings().len();
    if attached < plan.launch.volumes.len() {
        return Err(FerryError::new(
            ErrorName::InstanceFailed,
            format!(
                "{id} has {attached} volumes attached, the source had {}",
                plan.launch.volumes.len()
            ),
        ));
    }
    Ok(InstanceRef {
        instance_id: id.clone(),
        state: Some(state),
        availability_zone: Some(az.to_string()),
        subnet_id: Some(subnet.to_string()),
        private_ip: instance.private_ip_address().map(str::to_string),
        public_ip: instance.public_ip_address().map(str::to_string),
        created_at: None,
    })
}

/// What DescribeInstanceStatus (IncludeAllInstances) tells of one instance.
struct Status {
    state: String,
    instance: Option<String>,
    system: Option<String>,
}

/// The instance's state and status checks, or `None` if EC2 does not know the id (yet).
async fn instance_status(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
) -> Result<Option<Status>, FerryError> {
    let out = match ec2
        .describe_instance_status()
        .instance_ids(id)
        .include_all_instances(true)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if crate::aws::error_code(&e) == Some("InvalidInstanceID.NotFound") => {
            return Ok(None)
        }
        Err(e) => return Err(aws_error("DescribeInstanceStatus", e)),
    };
    let summary = |s: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
        s.and_then(|s| s.status()).map(|s| s.as_str().to_string())
    };
    Ok(out
        .instance_statuses()
        .iter()
        .find(|s| s.instance_id() == Some(id))
        .map(|s| Status {
            state: s
                .instance_state()
                .and_then(|st| st.name())
                .map(|n| n.as_str().to_string())
                .unwrap_or_default(),
            instance: summary(s.instance_status()),
            system: summary(s.system_status()),
        }))
}

fn missing(input: &InstanceInput) -> FerryError {
    polls::missing_after_create(
        &format!("instance {}", input.instance.instance_id),
        input.instance.created_at,
        polls::epoch_seconds(),
        ErrorName::InstanceNotReady,
        ErrorName::InstanceFailed,
    )
}
