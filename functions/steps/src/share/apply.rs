//! State `Apply` of share-image: add the planned launch permissions, createVolumePermission
//! for each target account on every snapshot (when `shareSnapshots`), and one KMS grant per
//! customer-managed key and target account with [`SHARE_GRANT_OPERATIONS`]; output the
//! [`ShareRecord`] of exactly what was granted. Every call is idempotent (adding a present
//! permission changes nothing; CreateGrant with the same Name and parameters returns the
//! same grant), so a retry grants nothing twice.

use super::read;
use crate::aws::{aws_error, Clients};
use aws_sdk_ec2::types::{
    CreateVolumePermission, CreateVolumePermissionModifications, LaunchPermissionModifications,
    SnapshotAttributeName,
};
use aws_sdk_kms::types::GrantOperation;
use ferry_core::share::facts::SnapshotFacts;
use ferry_core::share::grants::{account_root_arn, share_grant_name, SHARE_GRANT_OPERATIONS};
use ferry_core::share::io::{ShareApplyInput, ShareResult};
use ferry_core::share::plan::snapshot_permissions_to_add;
use ferry_core::share::record::{GrantRecord, ShareRecord};
use ferry_core::share::request::KmsAccess;
use ferry_core::FerryError;

pub async fn handle(clients: Clients, input: ShareApplyInput) -> Result<ShareResult, FerryError> {
    let plan = &input.plan;
    let ec2 = &clients.ec2;
    // The copy when there is one (new: every snapshot is under the copy's key).
    let (image_id, snapshots) = match (&plan.reencrypt, &input.copy) {
        (Some(r), Some(copy)) => (
            copy.image_id.clone(),
            copy.snapshot_ids
                .iter()
                .map(|id| SnapshotFacts {
                    snapshot_id: id.clone(),
                    encrypted: true,
                    kms_key_id: Some(r.key_arn.clone()),
                    create_volume_user_ids: Vec::new(),
                })
                .collect(),
        ),
        (Some(_), None) => {
            return Err(FerryError::invalid_input(
                "Apply: the plan re-encrypts but no copy was given",
            ))
        }
        (None, _) => (plan.image_id.clone(), plan.snapshots.clone()),
    };

    if !plan.launch_permissions.is_empty() {
        let mut add = LaunchPermissionModifications::builder();
        for lp in &plan.launch_permissions {
            add = add.add(read::to_sdk(lp));
        }
        ec2.modify_image_attribute()
            .image_id(&image_id)
            .launch_permission(add.build())
            .send()
            .await
            .map_err(|e| aws_error("ModifyImageAttribute(launchPermission)", e))?;
    }

    let snapshot_permissions = if plan.share_snapshots {
        snapshot_permissions_to_add(&snapshots, &plan.targets.account_ids)
    } else {
        Vec::new()
    };
    for s in &snapshots {
        let users: Vec<&str> = snapshot_permissions
            .iter()
            .filter(|p| p.snapshot_id == s.snapshot_id)
            .map(|p| p.user_id.as_str())
            .collect();
        if users.is_empty() {
            continue;
        }
        let mut add = CreateVolumePermissionModifications::builder();
        for u in users {
            add = add.add(CreateVolumePermission::builder().user_id(u).build());
        }
        ec2.modify_snapshot_attribute()
            .snapshot_id(&s.snapshot_id)
            .attribute(SnapshotAttributeName::CreateVolumePermission)
            .create_volume_permission(add.build())
            .send()
            .await
            .map_err(|e| aws_error("ModifySnapshotAttribute(createVolumePermission)", e))?;
    }

    let mut grants = Vec::new();
    if plan.kms_access == KmsAccess::Grant {
        for key_arn in &plan.grant_key_arns {
            for account in &plan.targets.account_ids {
                let name = share_grant_name(&image_id, account, &plan.execution.execution_arn);
                let out = clients
                    .kms
                    .create_grant()
                    .key_id(key_arn)
                    .grantee_principal(account_root_arn(account))
                    .set_operations(Some(
                        SHARE_GRANT_OPERATIONS
                            .iter()
                            .map(|op| GrantOperation::from(*op))
                            .collect(),
                    ))
                    .name(&name)
                    .send()
                    .await
                    .map_err(|e| read::kms_error("CreateGrant", e))?;
                grants.push(GrantRecord {
                    key_arn: key_arn.clone(),
                    grant_id: out.grant_id().unwrap_or_default().to_string(),
                    grantee_account_id: account.clone(),
                    name,
                });
            }
        }
    }

    let record = ShareRecord {
        image_id: image_id.clone(),
        region: plan.region.clone(),
        owner_account_id: plan.owner_account_id.clone(),
        source_image_id: plan.reencrypt.as_ref().map(|_| plan.image_id.clone()),
        launch_permissions: plan.launch_permissions.clone(),
        snapshot_permissions,
        grants,
        key_policy_needed: plan.key_policy_needed.clone(),
    };
    tracing::info!(
        image = %image_id,
        launch_permissions = record.launch_permissions.len(),
        snapshot_permissions = record.snapshot_permissions.len(),
        grants = record.grants.len(),
        "shared"
    );
    Ok(ShareResult {
        record,
        warnings: plan.warnings.clone(),
    })
}
