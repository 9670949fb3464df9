//! State `CreateImage`: stop the source first when asked (raising `Ferry.ImageNotReady`
//! until it is stopped), then CreateImage under the plan's deterministic name, tagging
//! the image and its snapshots. A retry finds the image instead of making a second one.

use super::describe;
use crate::aws::{aws_error, error_code, tag_spec, Clients};
use aws_sdk_ec2::types::ResourceType;
use aws_sdk_ec2::Client;
use ferry_core::io::ImageRef;
use ferry_core::migrate::io::PlanInput;
use ferry_core::migrate::plan::MigrationPlan;
use ferry_core::{ErrorName, FerryError};

pub async fn handle(clients: Clients, input: PlanInput) -> Result<ImageRef, FerryError> {
    let ec2 = &clients.ec2;
    let plan = &input.plan;
    if let Some(image) =
        describe::own_image_named(ec2, &plan.image.name, &plan.execution.execution_arn).await?
    {
        tracing::info!(image = ?image.image_id(), "image already created by an earlier attempt");
        return Ok(describe::image_ref(&image));
    }
    if plan.stops_source {
        ensure_source_stopped(ec2, plan).await?;
    }
    let created = ec2
        .create_image()
        .instance_id(&plan.source.instance_id)
        .name(&plan.image.name)
        .description(&plan.image.description)
        .no_reboot(plan.image.no_reboot)
        .tag_specifications(tag_spec(ResourceType::Image, &plan.image.tags))
        .tag_specifications(tag_spec(ResourceType::Snapshot, &plan.image.tags))
        .send()
        .await;
    match created {
        Ok(out) => Ok(ImageRef {
            image_id: out.image_id().unwrap_or_default().to_string(),
            name: plan.image.name.clone(),
            state: "pending".to_string(),
            snapshot_ids: Vec::new(),
            created_at: Some(ferry_core::rules::polls::epoch_seconds()),
        }),
        // A concurrent or timed-out earlier attempt won the race: use its image.
        Err(e) if error_code(&e) == Some("InvalidAMIName.Duplicate") => {
            describe::own_image_named(ec2, &plan.image.name, &plan.execution.execution_arn)
                .await?
                .map(|i| describe::image_ref(&i))
                .ok_or_else(|| aws_error("CreateImage", e))
        }
        Err(e) => Err(aws_error("CreateImage", e)),
    }
}

/// Stops a running source and reports `Ferry.ImageNotReady` until it is `stopped`.
async fn ensure_source_stopped(ec2: &Client, plan: &MigrationPlan) -> Result<(), FerryError> {
    let id = &plan.source.instance_id;
    let instance = describe::existing_instance(ec2, id, ErrorName::InstanceNotFound).await?;
    match describe::state_name(&instance).as_str() {
        "stopped" => Ok(()),
        "stopping" => Err(FerryError::new(
            ErrorName::ImageNotReady,
            format!("waiting for {id} to stop"),
        )),
        // EC2 refuses to stop an instance that never reached `running`.
        "pending" => Err(FerryError::new(
            ErrorName::ImageNotReady,
            format!("waiting for {id} to finish starting"),
        )),
        "running" => {
            ec2.stop_instances()
                .instance_ids(id)
                .send()
                .await
                .map_err(|e| aws_error("StopInstances", e))?;
            tracing::info!(instance = %id, "stopping the source before imaging");
            Err(FerryError::new(
                ErrorName::ImageNotReady,
                format!("stopping {id} before imaging"),
            ))
        }
        other => Err(FerryError::new(
            ErrorName::InvalidInstanceState,
            format!("{id} became {other} before it could be imaged"),
        )),
    }
}
