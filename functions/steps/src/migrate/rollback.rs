//! State `Rollback` (the Catch of every step after Preflight): observe what this execution
//! left behind, let `ferry_core::migrate::rollback::decide_rollback` choose, and carry it out.
//! Only resources tagged with this execution are touched; if something must settle first
//! (the source still stopping, the image still pending) it does what it can and raises a
//! not-ready error so the state's Retry runs it again.

use super::describe;
use crate::aws::{aws_error, error_code, filter, tag_map, Clients};
use crate::cleanup::{self, SnapshotRemoval};
use aws_sdk_ec2::types::{
    AttributeBooleanValue, EbsInstanceBlockDeviceSpecification,
    InstanceBlockDeviceMappingSpecification,
};
use aws_sdk_ec2::Client;
use ferry_core::io::CaughtError;
use ferry_core::migrate::io::RollbackInput;
use ferry_core::migrate::rollback::{
    decide_rollback, ObservedImage, ObservedInstance, RollbackAction, RollbackObservation,
};
use ferry_core::rules::polls;
use ferry_core::tags::TAG_EXECUTION;
use ferry_core::{ErrorName, FerryError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackReport {
    pub done: Vec<RollbackAction>,
    pub kept: Vec<String>,
    pub original_error: Option<CaughtError>,
}

pub async fn handle(clients: Clients, input: RollbackInput) -> Result<RollbackReport, FerryError> {
    let ec2 = &clients.ec2;
    let seen = observe(ec2, &input).await?;
    let decision = decide_rollback(&input.plan, &seen);
    for action in &decision.actions {
        tracing::info!(?action, "rollback");
        apply(ec2, action).await?;
    }
    if let Some(why) = decision.source_not_restored {
        return Err(FerryError::new(ErrorName::SourceNotRestored, why));
    }
    if let Some(what) = decision.wait_for {
        let name = if what.contains("image") {
            ErrorName::ImageNotReady
        } else {
            ErrorName::InstanceNotReady
        };
        return Err(FerryError::new(name, format!("rollback waits for {what}")));
    }
    Ok(RollbackReport {
        done: decision.actions,
        kept: decision.kept,
        original_error: input.error,
    })
}

async fn observe(ec2: &Client, input: &RollbackInput) -> Result<RollbackObservation, FerryError> {
    let plan = &input.plan;
    let arn = &plan.execution.execution_arn;
    let ours = |tags: &[aws_sdk_ec2::types::Tag]| tag_map(tags).get(TAG_EXECUTION) == Some(arn);

    let source = describe::instance(ec2, &plan.source.instance_id).await?;
    let source_state = source.as_ref().map(describe::state_name);
    let source_state_reason = source.as_ref().and_then(|i| {
        i.state_reason()
            .and_then(|r| r.message().or(r.code()))
            .map(str::to_string)
    });

    let tagged = ec2
        .describe_instances()
        .filters(filter(&format!("tag:{TAG_EXECUTION}"), arn))
        .send()
        .await
        .map_err(|e| aws_error("DescribeInstances", e))?;
    let mut instances: Vec<aws_sdk_ec2::types::Instance> = tagged
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .cloned()
        .collect();
    if let Some(known) = &input.instance {
        if !instances
            .iter()
            .any(|i| i.instance_id() == Some(known.instance_id.as_str()))
        {
            match describe::instance(ec2, &known.instance_id).await? {
                Some(found) => instances.push(found),
                // Launched but not visible yet (rule 19): look again, for a bounded time.
                None => {
                    let e = polls::missing_after_create(
                        &format!("instance {}", known.instance_id),
                        known.created_at,
                        polls::epoch_seconds(),
                        ErrorName::InstanceNotReady,
                        ErrorName::InstanceFailed,
                    );
                    if e.name == ErrorName::InstanceNotReady {
                        return Err(e);
                    }
                }
            }
        }
    }
    let new_instances = instances
        .iter()
        .filter(|i| ours(i.tags()) && i.instance_id() != Some(plan.source.instance_id.as_str()))
        .map(|i| ObservedInstance {
            instance_id: i.instance_id().unwrap_or_default().to_string(),
            state: describe::state_name(i),
            device_names: i
                .block_device_mappings()
                .iter()
                .filter_map(|m| m.device_name().map(str::to_string))
                .collect(),
        })
        .collect();

    let mut images = Vec::new();
    let named = describe::own_image_named(ec2, &plan.image.name, arn).await?;
    let known = match &input.image {
        Some(image)
            if named.as_ref().and_then(|n| n.image_id()) != Some(image.image_id.as_str()) =>
        {
            // Not found: gone (rollback itself may have deregistered it on an earlier
            // attempt; a deregistered image soon stops being found). Not waited for.
            describe::image(ec2, &image.image_id).await?
        }
        _ => None,
    };
    for image in named.iter().chain(known.iter()).filter(|i| ours(i.tags())) {
        images.push(ObservedImage {
            image_id: image.image_id().unwrap_or_default().to_string(),
            state: describe::image_state(image),
            snapshot_ids: describe::image_snapshot_ids(image),
        });
    }

    let snapshot_ids = cleanup::own_snapshot_ids(ec2, arn).await?;

    let mut elastic_ip_owners = Vec::new();
    if !plan.source.elastic_ips.is_empty() {
        let ids: Vec<String> = plan
            .source
            .elastic_ips
            .iter()
            .map(|e| e.allocation_id.clone())
            .collect();
        let out = ec2
            .describe_addresses()
            .set_allocation_ids(Some(ids))
            .send()
            .await
            .map_err(|e| aws_error("DescribeAddresses", e))?;
        for address in out.addresses() {
            if let Some(allocation_id) = address.allocation_id() {
                elastic_ip_owners.push((
                    allocation_id.to_string(),
                    address.instance_id().map(str::to_string),
                ));
            }
        }
    }
    Ok(RollbackObservation {
        source_state,
        source_state_reason,
        new_instances,
        images,
        snapshot_ids,
        elastic_ip_owners,
    })
}

async fn apply(ec2: &Client, action: &RollbackAction) -> Result<(), FerryError> {
    match action {
        RollbackAction::ReassociateElasticIp {
            allocation_id,
            instance_id,
        } => {
            ec2.associate_address()
                .allocation_id(allocation_id)
                .instance_id(instance_id)
                .allow_reassociation(true)
                .send()
                .await
                .map_err(|e| aws_error("AssociateAddress", e))?;
        }
        RollbackAction::StartSource { instance_id } => {
            match ec2.start_instances().instance_ids(instance_id).send().await {
                Ok(_) => {}
                Err(e) if error_code(&e) == Some("IncorrectInstanceState") => {
                    return Err(FerryError::new(
                        ErrorName::InstanceNotReady,
                        format!("rollback waits for {instance_id} to be startable"),
                    ))
                }
                Err(e) => return Err(aws_error("StartInstances", e)),
            }
        }
        RollbackAction::TerminateInstance {
            instance_id,
            device_names,
        } => {
            // ferry launched it without protection, but clear it anyway: finalize may
            // have applied the source's before a later failure.
            let off = || AttributeBooleanValue::builder().value(false).build();
            ec2.modify_instance_attribute()
                .instance_id(instance_id)
                .disable_api_termination(off())
                .send()
                .await
                .map_err(|e| aws_error("ModifyInstanceAttribute(disableApiTermination)", e))?;
            ec2.modify_instance_attribute()
                .instance_id(instance_id)
                .disable_api_stop(off())
                .send()
                .await
                .map_err(|e| aws_error("ModifyInstanceAttribute(disableApiStop)", e))?;
            if !device_names.is_empty() {
                // Volumes this run created must not outlive the instance.
                let mappings = device_names
                    .iter()
                    .map(|d| {
                        InstanceBlockDeviceMappingSpecification::builder()
                            .device_name(d)
                            .ebs(
                                EbsInstanceBlockDeviceSpecification::builder()
                                    .delete_on_termination(true)
                                    .build(),
                            )
                            .build()
                    })
                    .collect();
                ec2.modify_instance_attribute()
                    .instance_id(instance_id)
                    .set_block_device_mappings(Some(mappings))
                    .send()
                    .await
                    .map_err(|e| aws_error("ModifyInstanceAttribute(blockDeviceMapping)", e))?;
            }
            ec2.terminate_instances()
                .instance_ids(instance_id)
                .send()
                .await
                .map_err(|e| aws_error("TerminateInstances", e))?;
        }
        RollbackAction::DeregisterImage { image_id } => {
            // With its snapshots (rule 20): the DeleteSnapshot actions after it then find
            // them gone instead of "in use".
            cleanup::deregister_image(ec2, image_id).await?;
        }
        RollbackAction::DeleteSnapshot { snapshot_id } => {
            if cleanup::delete_snapshot(ec2, snapshot_id).await? == SnapshotRemoval::InUse {
                tracing::warn!(snapshot = %snapshot_id, "rollback: snapshot still in use, left in place");
            }
        }
    }
    Ok(())
}
