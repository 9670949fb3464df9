//! State `Finalize`, after the new instance is verified, in this order:
//! 1. give each new volume its source volume's tags;
//! 2. apply the source's termination and stop protection;
//! 3. move the Elastic IPs (if `moveElasticIp`);
//! 4. deregister the intermediate image and delete its snapshots (unless `keepImage`);
//! 5. the only irreversible step on the source: `sourceAction` stop or terminate;
//! 6. last, end the run's "in flight" tag on what stays (after it no rollback may touch it).

use super::describe;
use crate::aws::{aws_error, ec2_tags, Clients};
use crate::cleanup;
use aws_sdk_ec2::types::AttributeBooleanValue;
use ferry_core::migrate::io::{FinalizeInput, MigrationResult};
use ferry_core::migrate::request::SourceAction;
use ferry_core::{ErrorName, FerryError};

pub async fn handle(clients: Clients, input: FinalizeInput) -> Result<MigrationResult, FerryError> {
    let ec2 = &clients.ec2;
    let plan = &input.plan;
    let new_id = &input.instance.instance_id;
    let source_id = &plan.source.instance_id;
    let instance = describe::existing_instance(ec2, new_id, ErrorName::InstanceFailed).await?;

    for mapping in instance.block_device_mappings() {
        let (Some(device), Some(volume_id)) = (
            mapping.device_name(),
            mapping.ebs().and_then(|e| e.volume_id()),
        ) else {
            continue;
        };
        let Some(planned) = plan.launch.volumes.iter().find(|v| v.device_name == device) else {
            continue;
        };
        if !planned.tags.is_empty() {
            ec2.create_tags()
                .resources(volume_id)
                .set_tags(Some(ec2_tags(&planned.tags)))
                .send()
                .await
                .map_err(|e| aws_error("CreateTags(volume)", e))?;
        }
    }

    let protect = |on: bool| AttributeBooleanValue::builder().value(on).build();
    if plan.launch.disable_api_termination {
        ec2.modify_instance_attribute()
            .instance_id(new_id)
            .disable_api_termination(protect(true))
            .send()
            .await
            .map_err(|e| aws_error("ModifyInstanceAttribute(disableApiTermination)", e))?;
    }
    if plan.launch.disable_api_stop {
        ec2.modify_instance_attribute()
            .instance_id(new_id)
            .disable_api_stop(protect(true))
            .send()
            .await
            .map_err(|e| aws_error("ModifyInstanceAttribute(disableApiStop)", e))?;
    }

    let mut moved = Vec::new();
    if plan.request.move_elastic_ip {
        for eip in &plan.source.elastic_ips {
            ec2.associate_address()
                .allocation_id(&eip.allocation_id)
                .instance_id(new_id)
                .allow_reassociation(true)
                .send()
                .await
                .map_err(|e| aws_error("AssociateAddress", e))?;
            moved.push(eip.public_ip.clone());
        }
    }

    // After verification nothing may undo the cut-over: a removal that fails is reported
    // (warning + leftovers in the output), never an error that would roll back.
    let mut warnings = plan.warnings.clone();
    let mut leftovers = Vec::new();

    if !plan.request.keep_image {
        let image_id = &input.image.image_id;
        let mut snapshots = input.image.snapshot_ids.clone();
        let removed = async {
            snapshots.extend(cleanup::own_snapshot_ids(ec2, &plan.execution.execution_arn).await?);
            snapshots.sort();
            snapshots.dedup();
            cleanup::remove_image_and_snapshots(ec2, image_id, &snapshots).await
        }
        .await;
        match removed {
            Ok(left) if left.is_empty() => {}
            Ok(left) => {
                warnings.push(format!(
                    "snapshots of {image_id} still in use, not deleted: {}",
                    left.join(", ")
                ));
                leftovers = left;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not remove the intermediate image");
                warnings.push(format!(
                    "the intermediate image {image_id} and its snapshots could not be removed ({e}); remove them by hand"
                ));
                leftovers.push(image_id.clone());
                leftovers.extend(snapshots);
            }
        }
    }

    match plan.request.source_action {
        SourceAction::Keep => {}
        SourceAction::Stop => {
            ec2.stop_instances()
                .instance_ids(source_id)
                .send()
                .await
                .map_err(|e| aws_error("StopInstances", e))?;
        }
        SourceAction::Terminate => {
            ec2.terminate_instances()
                .instance_ids(source_id)
                .send()
                .await
                .map_err(|e| aws_error("TerminateInstances", e))?;
        }
    }

    // Last: the cut-over is done, what stays (the new instance; the image and its
    // snapshots when kept) is no longer in flight, out of every rollback's reach. Until
    // here a failure (or a killed step that exhausts its retries) is rolled back whole.
    let mut finished = vec![new_id.clone()];
    if plan.request.keep_image {
        finished.push(input.image.image_id.clone());
        finished.extend(input.image.snapshot_ids.iter().cloned());
    }
    if let Err(e) = cleanup::end_in_flight(ec2, &finished).await {
        warnings.push(format!(
            "could not remove the ferry:in-flight tag from {} ({e}); remove it by hand",
            finished.join(", ")
        ));
    }
    // Re-read only if an Elastic IP moved (the public IP is that one now); else what the
    // first describe said still holds (one EC2 call less per migration of a fleet).
    let after = if moved.is_empty() {
        instance
    } else {
        describe::existing_instance(ec2, new_id, ErrorName::InstanceFailed).await?
    };
    Ok(MigrationResult {
        source_instance_id: source_id.clone(),
        new_instance_id: new_id.clone(),
        source_availability_zone: plan.source.availability_zone.clone(),
        target_availability_zone: plan.target.availability_zone.clone(),
        target_subnet_id: plan.target.subnet_id.clone(),
        source_private_ip: plan.source.private_ip.clone(),
        new_private_ip: after.private_ip_address().map(str::to_string),
        new_public_ip: after.public_ip_address().map(str::to_string),
        image_id: input.image.image_id.clone(),
        image_kept: plan.request.keep_image,
        elastic_ips_moved: moved,
        source_action: plan.request.source_action,
        warnings,
        leftovers,
    })
}
