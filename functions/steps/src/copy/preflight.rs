//! State `Preflight` of copy-image: parse the request strictly (refusals before any AWS
//! call), then, as the target account, check that it sees the source image (rule 3:
//! shared with it), that the image has no product codes (rule 7) and is available, and
//! that the copy's name is free. Outputs the plan: names, ClientToken, tags, revoke payload.
//!
//! In a dry run (`"dryRun": true`) the output also holds the report the execution ends
//! with (`ferry_core::copy::dry_run`). A distribute-image dry run gives it a share that is
//! only planned (share-image's dry-run output as `share`): the target cannot see the image
//! yet, so when the planned share would reach the target the image is checked as its
//! owner (this account) instead, and everything else as the target (its role, its key,
//! the copy's name); the report says so.

use super::target;
use crate::aws::{tag_map, Clients};
use aws_sdk_ec2::types::Image;
use ferry_core::copy::dry_run::{dry_run_report, planned_share_warnings};
use ferry_core::copy::io::{CopyPreflightInput, CopyPreflightOutput};
use ferry_core::copy::plan as copy_plan;
use ferry_core::copy::plan::CopyPlan;
use ferry_core::copy::refusals;
use ferry_core::copy::request::CopyRequest;
use ferry_core::share::dry_run::{parse_given_share, GivenShare, ShareDryRun};
use ferry_core::{ErrorName, FerryError};

pub async fn handle(
    clients: Clients,
    input: CopyPreflightInput,
) -> Result<CopyPreflightOutput, FerryError> {
    let request = CopyRequest::parse(&input.request)?;
    // A provisional plan: the session name and copy name do not depend on the owner.
    let provisional = copy_plan::plan(request.clone(), input.context.clone(), "")?;
    let source_side = target::assume(&clients, &provisional, &request.source_region).await?;

    let id = &request.source_image_id;
    let (image, seen_by_target, planned) = match target::image(&source_side.ec2, id).await? {
        Some(image) => (image, true, None),
        None => match planned_share_reaching_target(&request)? {
            // A distribute-image dry run: the share is only planned.
            Some(planned) => match own_image(&clients, &request).await? {
                Some(image) => (image, false, Some(planned)),
                None => {
                    return Err(refusals::image_not_visible(
                        id,
                        &request.source_region,
                        &request.target_account_id,
                        false,
                    ))
                }
            },
            None => {
                let shared = shared_by_this_account(&clients, &request, &input.context).await?;
                return Err(refusals::image_not_visible(
                    id,
                    &request.source_region,
                    &request.target_account_id,
                    shared,
                ));
            }
        },
    };
    let codes: Vec<String> = image
        .product_codes()
        .iter()
        .filter_map(|p| p.product_code_id().map(str::to_string))
        .collect();
    refusals::check_no_product_codes(id, &codes)?;
    refusals::check_source_available(id, &target::image_state(&image))?;
    let owner = image.owner_id().unwrap_or_default().to_string();
    if owner.is_empty() {
        return Err(FerryError::new(
            ErrorName::AwsError,
            format!("DescribeImages: {id} has no OwnerId"),
        ));
    }
    tracing::info!(image = %id, owner = %owner, seen_by_target, tags = ?tag_map(image.tags()), "source checked");

    let mut plan = copy_plan::plan(request, input.context, &owner)?;
    if let Some(planned) = &planned {
        let warnings = planned_share_warnings(&plan, planned);
        plan.warnings.extend(warnings);
    }
    if plan.request.copy_tags {
        source_tags(&clients, &mut plan, &owner).await?;
    }
    let target_side = if plan.request.target_region == plan.request.source_region {
        source_side
    } else {
        target::assume(&clients, &plan, &plan.request.target_region).await?
    };
    // The key the copy is encrypted under: it must exist and be enabled in the target
    // (else CopyImage would start and the copy fail later, rolled back).
    let key = crate::keys::requested_key(
        &target_side.kms,
        "targetKmsKeyId",
        &plan.request.target_kms_key_id,
    )
    .await?;
    ferry_core::rules::kms::check_requested_key_usable("targetKmsKeyId", &key)?;
    for existing in target::own_copies(&target_side.ec2, &plan).await? {
        if existing.name() == Some(plan.copy_name.as_str()) {
            target::ours_or_conflict(&existing, &plan)?;
        }
    }
    let report = plan
        .dry_run
        .then(|| dry_run_report(&plan, Some(&key.key_arn), seen_by_target));
    Ok(CopyPreflightOutput {
        plan,
        copy: None,
        report,
    })
}

/// The share given is only planned (a distribute-image dry run) and would let the target
/// launch the image: its launch permissions name the target, all, or an organization/OU
/// (membership is not known here).
fn planned_share_reaching_target(request: &CopyRequest) -> Result<Option<ShareDryRun>, FerryError> {
    let Some(share) = &request.share else {
        return Ok(None);
    };
    match parse_given_share(share)? {
        GivenShare::Planned(planned)
            if refusals::launch_permissions_may_reach(
                &planned.targets.launch_permissions(),
                &request.target_account_id,
            ) =>
        {
            Ok(Some(planned))
        }
        _ => Ok(None),
    }
}

/// The source as this account (its owner) sees it in the source region, if it owns it.
async fn own_image(clients: &Clients, request: &CopyRequest) -> Result<Option<Image>, FerryError> {
    let here = clients.in_region(&request.source_region);
    crate::images::image(
        &here.ec2,
        &request.source_image_id,
        crate::images::Owner::Caller,
    )
    .await
}

/// Issue 2.9 (rule 19): the target does not see the source. If this account owns it and
/// its launch permissions reach the target, the share has not reached the target yet
/// (the Preflight's Retry waits for it); otherwise it is not shared with the target.
async fn shared_by_this_account(
    clients: &Clients,
    request: &CopyRequest,
    context: &ferry_core::names::ExecutionContext,
) -> Result<bool, FerryError> {
    let here = clients.in_region(&request.source_region);
    let own = crate::images::image(
        &here.ec2,
        &request.source_image_id,
        crate::images::Owner::Caller,
    )
    .await?;
    if own.is_none() {
        tracing::info!(image = %request.source_image_id, hub = %hub_account(context), "not this account's image");
        return Ok(false);
    }
    let permissions =
        crate::share::read::launch_permissions(&here.ec2, &request.source_image_id).await?;
    Ok(refusals::launch_permissions_may_reach(
        &permissions,
        &request.target_account_id,
    ))
}

/// The account this execution runs in (the hub), from its execution ARN.
fn hub_account(context: &ferry_core::names::ExecutionContext) -> &str {
    context.execution_arn.split(':').nth(4).unwrap_or_default()
}

/// Issue 2.11 (rule 24): CopyImageTags copies only the tags the TARGET sees on a shared
/// AMI, not the owner's. When this account owns the source, read its tags here and put
/// them on the copy explicitly (then CopyImageTags is off); otherwise say so.
async fn source_tags(
    clients: &Clients,
    plan: &mut CopyPlan,
    owner: &str,
) -> Result<(), FerryError> {
    let hub = hub_account(&plan.execution);
    if owner != hub {
        plan.warnings.push(format!(
            "copyTags: the source belongs to account {owner}, not this one: only the tags the target itself sees are copied"
        ));
        return Ok(());
    }
    let r = &plan.request;
    let here = clients.in_region(&r.source_region);
    let own =
        crate::images::image(&here.ec2, &r.source_image_id, crate::images::Owner::Caller).await?;
    match own {
        Some(image) => {
            if let Some(w) = copy_plan::add_source_tags(&mut plan.tags, &tag_map(image.tags())) {
                plan.warnings.push(w);
            }
            plan.copy_image_tags = false;
        }
        None => plan.warnings.push(format!(
            "copyTags: {} could not be read in {} as its owner: its tags are not copied",
            r.source_image_id, r.source_region
        )),
    }
    Ok(())
}
