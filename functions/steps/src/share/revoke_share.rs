//! `revoke-share` (one state, also called as a Task by copy-image): remove what a share
//! granted. Input `{"record": <ShareRecord>}` removes exactly that record;
//! `{"imageId", "accountIds", "organizationArns"?, "organizationalUnitArns"?}` removes
//! those targets' launch permissions and snapshot createVolumePermissions, and the
//! ferry-made grants for those accounts found with ListGrants on each snapshot key.
//! Idempotent: what is already gone is fine and not listed in the output, which says
//! exactly what was removed.
//!
//! revoke-share has no separate Preflight: this one step parses strictly and reads what is
//! present before it removes anything. With `"dryRun": true` it makes only those reads
//! (ListGrants for a record's grants) and returns the report of what it would remove
//! (`ferry_core::share::dry_run::RevokeDryRunReport`), which the state machine's
//! `DryRun?` sends to `Planned`.

use super::read;
use crate::aws::{aws_error, error_code, Clients};
use aws_sdk_ec2::types::{
    CreateVolumePermission, CreateVolumePermissionModifications, LaunchPermissionModifications,
    SnapshotAttributeName,
};
use ferry_core::share::dry_run::revoke_dry_run_report;
use ferry_core::share::grants::is_share_grant;
use ferry_core::share::record::{GrantRecord, LaunchPermission, ShareRecord, SnapshotPermission};
use ferry_core::share::request::ShareTargets;
use ferry_core::share::revoke::{RevokeInput, RevokeOutput, RevokeRequest, RevokeResult};
use ferry_core::FerryError;

pub async fn handle(
    clients: Clients,
    input: serde_json::Value,
) -> Result<RevokeOutput, FerryError> {
    let RevokeInput { request, dry_run } = RevokeInput::parse(&input)?;
    let result = match request {
        RevokeRequest::Record(record) => revoke_record(&clients, record, dry_run).await?,
        // The share is undone where it was made (issue 8, 2.5): copy-image may run in
        // another region than the source image's.
        RevokeRequest::Image {
            image_id,
            targets,
            region,
        } => {
            let clients = match &region {
                Some(r) => clients.in_region(r),
                None => clients,
            };
            revoke_for_targets(&clients, &image_id, &targets, dry_run).await?
        }
    };
    tracing::info!(
        dry_run,
        launch_permissions = result.removed.launch_permissions.len(),
        snapshot_permissions = result.removed.snapshot_permissions.len(),
        grants = result.removed.grants.len(),
        "revoke"
    );
    Ok(if dry_run {
        RevokeOutput::Planned(revoke_dry_run_report(result.removed, result.warnings))
    } else {
        RevokeOutput::Revoked(result)
    })
}

/// `dry_run`: read what is present and return it as what would be removed, removing
/// nothing.
async fn revoke_record(
    clients: &Clients,
    record: ShareRecord,
    dry_run: bool,
) -> Result<RevokeResult, FerryError> {
    // Where the share was made, whatever region this function runs in.
    let here = clients.in_region(&record.region);
    let clients = &here;
    let ec2 = &clients.ec2;
    let mut warnings = Vec::new();
    let mut removed = empty_like(&record);
    match read::own_image(ec2, &record.image_id).await? {
        Some(_) => {
            let current = read::launch_permissions(ec2, &record.image_id).await?;
            let wanted: Vec<LaunchPermission> = record
                .launch_permissions
                .iter()
                .filter(|lp| current.contains(lp))
                .cloned()
                .collect();
            removed.launch_permissions =
                remove_launch_permissions(clients, &record.image_id, wanted, dry_run).await?;
        }
        None => warnings.push(format!(
            "{} no longer exists in this account: no launch permission to remove",
            record.image_id
        )),
    }
    let mut snapshot_ids: Vec<&str> = Vec::new();
    for p in &record.snapshot_permissions {
        if !snapshot_ids.contains(&p.snapshot_id.as_str()) {
            snapshot_ids.push(&p.snapshot_id);
        }
    }
    for snapshot_id in snapshot_ids {
        let users: Vec<String> = record
            .snapshot_permissions
            .iter()
            .filter(|p| p.snapshot_id == snapshot_id)
            .map(|p| p.user_id.clone())
            .collect();
        removed
            .snapshot_permissions
            .extend(remove_snapshot_permissions(clients, snapshot_id, &users, dry_run).await?);
    }
    for grant in &record.grants {
        let present = if dry_run {
            grant_exists(clients, &grant.key_arn, &grant.grant_id).await?
        } else {
            revoke_grant(clients, &grant.key_arn, &grant.grant_id).await?
        };
        if present {
            removed.grants.push(grant.clone());
        }
    }
    Ok(RevokeResult { removed, warnings })
}

async fn revoke_for_targets(
    clients: &Clients,
    image_id: &str,
    targets: &ShareTargets,
    dry_run: bool,
) -> Result<RevokeResult, FerryError> {
    let ec2 = &clients.ec2;
    let Some(image) = read::own_image(ec2, image_id).await? else {
        return Ok(RevokeResult {
            removed: ShareRecord {
                image_id: image_id.to_string(),
                region: clients.region().unwrap_or_default(),
                owner_account_id: String::new(),
                source_image_id: None,
                launch_permissions: vec![],
                snapshot_permissions: vec![],
                grants: vec![],
                key_policy_needed: None,
            },
            warnings: vec![format!(
                "{image_id} does not exist in this account: nothing to revoke"
            )],
        });
    };
    let mut removed = ShareRecord {
        image_id: image_id.to_string(),
        region: clients.region().unwrap_or_default(),
        owner_account_id: image.owner_id().unwrap_or_default().to_string(),
        source_image_id: None,
        launch_permissions: vec![],
        snapshot_permissions: vec![],
        grants: vec![],
        key_policy_needed: None,
    };
    let current = read::launch_permissions(ec2, image_id).await?;
    let wanted: Vec<LaunchPermission> = targets
        .launch_permissions()
        .into_iter()
        .filter(|lp| current.contains(lp))
        .collect();
    removed.launch_permissions =
        remove_launch_permissions(clients, image_id, wanted, dry_run).await?;

    let snapshots = read::snapshots(ec2, &read::image_snapshot_ids(&image)).await?;
    if !targets.account_ids.is_empty() {
        for s in &snapshots {
            removed.snapshot_permissions.extend(
                remove_snapshot_permissions(clients, &s.snapshot_id, &targets.account_ids, dry_run)
                    .await?,
            );
        }
    }
    let mut keys: Vec<String> = Vec::new();
    for s in snapshots.iter().filter(|s| s.encrypted) {
        if let Some(k) = &s.kms_key_id {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    for key in &keys {
        for grant in ferry_grants(clients, key, image_id, &targets.account_ids).await? {
            // Listed just now: present (a dry run stops there).
            if dry_run || revoke_grant(clients, &grant.key_arn, &grant.grant_id).await? {
                removed.grants.push(grant);
            }
        }
    }
    Ok(RevokeResult {
        removed,
        warnings: vec![],
    })
}

fn empty_like(record: &ShareRecord) -> ShareRecord {
    ShareRecord {
        launch_permissions: vec![],
        snapshot_permissions: vec![],
        grants: vec![],
        key_policy_needed: None,
        ..record.clone()
    }
}

/// ModifyImageAttribute Remove; a vanished image means nothing left to remove. `dry_run`:
/// no call, the (present) permissions are what would be removed.
async fn remove_launch_permissions(
    clients: &Clients,
    image_id: &str,
    permissions: Vec<LaunchPermission>,
    dry_run: bool,
) -> Result<Vec<LaunchPermission>, FerryError> {
    if permissions.is_empty() || dry_run {
        return Ok(permissions);
    }
    let mut remove = LaunchPermissionModifications::builder();
    for lp in &permissions {
        remove = remove.remove(read::to_sdk(lp));
    }
    match clients
        .ec2
        .modify_image_attribute()
        .image_id(image_id)
        .launch_permission(remove.build())
        .send()
        .await
    {
        Ok(_) => Ok(permissions),
        Err(e)
            if matches!(
                error_code(&e),
                Some("InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable")
            ) =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(aws_error("ModifyImageAttribute(launchPermission)", e)),
    }
}

/// Removes those of `users` that have createVolumePermission on the snapshot. `dry_run`:
/// only reads them (the present ones are what would be removed).
async fn remove_snapshot_permissions(
    clients: &Clients,
    snapshot_id: &str,
    users: &[String],
    dry_run: bool,
) -> Result<Vec<SnapshotPermission>, FerryError> {
    let Some(current) = read::create_volume_user_ids(&clients.ec2, snapshot_id).await? else {
        return Ok(Vec::new());
    };
    let present: Vec<&String> = users.iter().filter(|u| current.contains(u)).collect();
    if present.is_empty() {
        return Ok(Vec::new());
    }
    let as_permissions = |present: Vec<&String>| -> Vec<SnapshotPermission> {
        present
            .into_iter()
            .map(|u| SnapshotPermission {
                snapshot_id: snapshot_id.to_string(),
                user_id: u.clone(),
            })
            .collect()
    };
    if dry_run {
        return Ok(as_permissions(present));
    }
    let mut remove = CreateVolumePermissionModifications::builder();
    for u in &present {
        remove = remove.remove(CreateVolumePermission::builder().user_id(*u).build());
    }
    match clients
        .ec2
        .modify_snapshot_attribute()
        .snapshot_id(snapshot_id)
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .create_volume_permission(remove.build())
        .send()
        .await
    {
        Ok(_) => Ok(as_permissions(present)),
        Err(e) if error_code(&e) == Some("InvalidSnapshot.NotFound") => Ok(Vec::new()),
        Err(e) => Err(aws_error(
            "ModifySnapshotAttribute(createVolumePermission)",
            e,
        )),
    }
}

/// Undoes what share-image's Apply of ONE execution may have applied to `image_id` (issue
/// 8, 2.8: Apply failed half-way, its record never reached the state): the launch and
/// snapshot permissions its plan was to ADD (never ones that were there before), and the
/// grants named for this execution. Returns what was removed.
pub(crate) async fn undo_apply(
    clients: &Clients,
    image_id: &str,
    launch_permissions: Vec<LaunchPermission>,
    snapshot_permissions: &[SnapshotPermission],
    grant_key_arns: &[String],
    accounts: &[String],
    execution_arn: &str,
) -> Result<
    (
        Vec<LaunchPermission>,
        Vec<SnapshotPermission>,
        Vec<GrantRecord>,
    ),
    FerryError,
> {
    let launch = remove_launch_permissions(clients, image_id, launch_permissions, false).await?;
    let mut snapshots = Vec::new();
    let mut ids: Vec<&str> = snapshot_permissions
        .iter()
        .map(|p| p.snapshot_id.as_str())
        .collect();
    ids.dedup();
    for id in ids {
        let users: Vec<String> = snapshot_permissions
            .iter()
            .filter(|p| p.snapshot_id == id)
            .map(|p| p.user_id.clone())
            .collect();
        snapshots.extend(remove_snapshot_permissions(clients, id, &users, false).await?);
    }
    let mut grants = Vec::new();
    for key in grant_key_arns {
        for g in ferry_grants(clients, key, image_id, accounts).await? {
            let ours = ferry_core::share::grants::share_grant_name(
                image_id,
                &g.grantee_account_id,
                execution_arn,
            );
            if g.name == ours && revoke_grant(clients, &g.key_arn, &g.grant_id).await? {
                grants.push(g);
            }
        }
    }
    Ok((launch, snapshots, grants))
}

/// RevokeGrant as the key's owner: `true` if it was revoked, `false` if already gone.
async fn revoke_grant(
    clients: &Clients,
    key_arn: &str,
    grant_id: &str,
) -> Result<bool, FerryError> {
    match clients
        .kms
        .revoke_grant()
        .key_id(key_arn)
        .grant_id(grant_id)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if error_code(&e) == Some("NotFoundException") => Ok(false),
        Err(e) => Err(read::kms_error("RevokeGrant", e)),
    }
}

/// Does the grant still exist on the key (ListGrants, paged; a key that is gone has none)?
async fn grant_exists(
    clients: &Clients,
    key_arn: &str,
    grant_id: &str,
) -> Result<bool, FerryError> {
    let mut marker: Option<String> = None;
    loop {
        let page = match clients
            .kms
            .list_grants()
            .key_id(key_arn)
            .set_marker(marker.take())
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) if error_code(&e) == Some("NotFoundException") => return Ok(false),
            Err(e) => return Err(read::kms_error("ListGrants", e)),
        };
        if page.grants().iter().any(|g| g.grant_id() == Some(grant_id)) {
            return Ok(true);
        }
        match page.next_marker() {
            Some(m) if page.truncated() => marker = Some(m.to_string()),
            _ => return Ok(false),
        }
    }
}

/// The grants ferry made on `key` for `image_id` and one of `accounts` (ListGrants, paged).
async fn ferry_grants(
    clients: &Clients,
    key: &str,
    image_id: &str,
    accounts: &[String],
) -> Result<Vec<GrantRecord>, FerryError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = clients
            .kms
            .list_grants()
            .key_id(key)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| read::kms_error("ListGrants", e))?;
        for g in page.grants() {
            for account in accounts {
                if is_share_grant(g.name(), g.grantee_principal(), image_id, account) {
                    out.push(GrantRecord {
                        key_arn: key.to_string(),
                        grant_id: g.grant_id().unwrap_or_default().to_string(),
                        grantee_account_id: account.clone(),
                        name: g.name().unwrap_or_default().to_string(),
                    });
                }
            }
        }
        match page.next_marker() {
            Some(m) if page.truncated() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(out)
}
