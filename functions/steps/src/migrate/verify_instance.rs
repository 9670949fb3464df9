//! State `VerifyInstance`: the new instance must be running in the target subnet with its
//! instance and system status checks `ok`. Not yet: `Ferry.InstanceNotReady` (retried);
//! stopped, terminated or impaired: `Ferry.InstanceFailed` with the reason.

use super::describe;
use crate::aws::{aws_error, Clients};
use ferry_core::migrate::io::{InstanceInput, InstanceRef};
use ferry_core::rules::polls;
use ferry_core::{ErrorName, FerryError};

pub async fn handle(clients: Clients, input: InstanceInput) -> Result<InstanceRef, FerryError> {
    let ec2 = &clients.ec2;
    let id = &input.instance.instance_id;
    let Some(instance) = describe::instance(ec2, id).await? else {
        // Just launched and not yet visible (rule 19), for a bounded time.
        return Err(polls::missing_after_create(
            &format!("instance {id}"),
            input.instance.created_at,
            polls::epoch_seconds(),
            ErrorName::InstanceNotReady,
            ErrorName::InstanceFailed,
        ));
    };
    let state = describe::state_name(&instance);
    let reason = instance.state_reason().and_then(|r| r.message());
    let (mut instance_status, mut system_status) = (None, None);
    if state == "running" {
        let out = ec2
            .describe_instance_status()
            .instance_ids(id)
            .include_all_instances(true)
            .send()
            .await
            .map_err(|e| aws_error("DescribeInstanceStatus", e))?;
        if let Some(status) = out.instance_statuses().first() {
            instance_status = status
                .instance_status()
                .and_then(|s| s.status())
                .map(|s| s.as_str().to_string());
            system_status = status
                .system_status()
                .and_then(|s| s.status())
                .map(|s| s.as_str().to_string());
        }
    }
    polls::instance_poll(
        id,
        &state,
        reason,
        instance_status.as_deref(),
        system_status.as_deref(),
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
