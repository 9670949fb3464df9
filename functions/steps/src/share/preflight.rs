//! State `Preflight` of share-image: parse the request, read the image, its snapshots,
//! their keys (DescribeKey), its launch permissions, the snapshots' createVolumePermission,
//! image block public access (when `public`) and the `reencryptWith` key, refuse what the
//! sharing rules forbid, and output the plan. Makes no mutating call. In a dry run
//! (`"dryRun": true`) the output also holds the report the execution ends with
//! (`ferry_core::share::dry_run`).

use super::read;
use crate::aws::{aws_error, Clients};
use ferry_core::share::dry_run::dry_run_report;
use ferry_core::share::facts::{ImageFacts, ShareFacts};
use ferry_core::share::io::{SharePreflightInput, SharePreflightOutput};
use ferry_core::share::plan::build_share_plan;
use ferry_core::share::refusals::check_image_owned;
use ferry_core::share::request::ShareRequest;
use ferry_core::FerryError;

pub async fn handle(
    clients: Clients,
    input: SharePreflightInput,
) -> Result<SharePreflightOutput, FerryError> {
    let request = ShareRequest::parse(&input.request)?;
    let ec2 = &clients.ec2;
    let id = &request.image_id;
    // Owners=self: another account's image, even shared with this one, is not found.
    let image = read::own_image(ec2, id)
        .await?
        .ok_or_else(|| check_image_owned(id, None, "").unwrap_err())?;
    let mut snapshots = read::snapshots(ec2, &read::image_snapshot_ids(&image)).await?;
    let mut facts = ShareFacts {
        region: clients
            .region()
            .or_else(|| read::arn_region(&input.context.execution_arn))
            .unwrap_or_default(),
        account_id: image.owner_id().unwrap_or_default().to_string(),
        ..Default::default()
    };
    let mut key_ids: Vec<String> = Vec::new();
    for s in &snapshots {
        if let Some(k) = s.kms_key_id.as_ref().filter(|_| s.encrypted) {
            if !key_ids.contains(k) {
                key_ids.push(k.clone());
            }
        }
    }
    for key in &key_ids {
        facts
            .keys
            .push(read::describe_key(&clients.kms, key).await?);
    }
    if request.targets.public {
        let out = ec2
            .get_image_block_public_access_state()
            .send()
            .await
            .map_err(|e| aws_error("GetImageBlockPublicAccessState", e))?;
        facts.block_public_access = out.image_block_public_access_state().map(str::to_string);
    }
    if let Some(key) = &request.reencrypt_with {
        facts.reencrypt_key = Some(read::requested_key(&clients.kms, "reencryptWith", key).await?);
    }
    let launch_permissions = read::launch_permissions(ec2, id).await?;
    if request.share_snapshots && !request.targets.account_ids.is_empty() {
        for s in snapshots.iter_mut() {
            s.create_volume_user_ids = read::create_volume_user_ids(ec2, &s.snapshot_id)
                .await?
                .unwrap_or_default();
        }
    }
    facts.image = ImageFacts {
        image_id: id.clone(),
        name: image.name().unwrap_or_default().to_string(),
        owner_id: facts.account_id.clone(),
        state: image
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        product_codes: image
            .product_codes()
            .iter()
            .filter_map(|p| p.product_code_id().map(str::to_string))
            .collect(),
        snapshots,
        launch_permissions,
    };
    let plan = build_share_plan(&input.context, &request, &facts)?;
    tracing::info!(
        image = %plan.image_id,
        copy = plan.reencrypt.is_some(),
        launch_permissions = plan.launch_permissions.len(),
        keys = plan.grant_key_arns.len(),
        dry_run = plan.dry_run,
        "share plan ready"
    );
    let report = plan.dry_run.then(|| dry_run_report(&plan));
    Ok(SharePreflightOutput { plan, report })
}
