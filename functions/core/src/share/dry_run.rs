//! What a dry run of share-image reports (the permissions and grants it would add, from
//! the plan Preflight built), what a dry run of revoke-share reports (what it would
//! remove: a [`ShareRecord`]), and a share-image dry run's output read back, as
//! copy-image takes it in a distribute-image dry run ([`GivenShare`]).

use super::grants::{share_grant_name, SHARE_GRANT_OPERATIONS};
use super::plan::{snapshot_permissions_to_add, SharePlan};
use super::record::SnapshotPermission;
use super::record::{parse_share_record, KeyPolicyNeeded, LaunchPermission, ShareRecord};
use super::request::{KmsAccess, ShareTargets};
use super::WORKFLOW_SHARE_IMAGE;
use crate::dry_run::DryRunReport;
use crate::errors::FerryError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The workflow name revoke-share's dry run reports.
pub const WORKFLOW_REVOKE_SHARE: &str = "revoke-share";

/// share-image's output in a dry run.
pub type ShareDryRunReport = DryRunReport<ShareDryRun>;

/// revoke-share's output in a dry run: `plan` is what the revoke would remove, in the
/// shape of the `removed` record a run reports (entries already gone are left out).
pub type RevokeDryRunReport = DryRunReport<ShareRecord>;

/// `plan` of a share-image dry run: what Apply would add, as the share record of a run
/// would list it (grants without ids: they do not exist yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShareDryRun {
    /// The image asked for.
    pub image_id: String,
    pub region: String,
    pub owner_account_id: String,
    /// Everyone the image would be shared with (also those it is shared with already).
    pub targets: ShareTargets,
    /// The image is under `aws/ebs`: the copy re-encrypted under `reencryptWith` that would
    /// be made and shared instead.
    pub reencrypt: Option<CopyToShare>,
    /// Launch permissions to add (those the image does not have yet).
    pub launch_permissions: Vec<LaunchPermission>,
    /// createVolumePermission to add, per snapshot and account (`shareSnapshots`; empty for
    /// a re-encrypted copy, whose snapshots do not exist yet).
    pub snapshot_permissions: Vec<SnapshotPermission>,
    /// KMS grants to create (`kmsAccess: grant`), each for [`Self::grant_operations`].
    pub grants: Vec<GrantToCreate>,
    pub grant_operations: Vec<String>,
    /// Key policy statements an organization or OU would need (ferry does not add them).
    pub key_policy_needed: Option<KeyPolicyNeeded>,
}

/// The re-encrypted copy share-image would make of an image under `aws/ebs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CopyToShare {
    pub key_arn: String,
    pub name: String,
    pub description: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantToCreate {
    pub key_arn: String,
    pub grantee_account_id: String,
    /// `None` for the grants on a re-encrypted copy's key: the name carries the copy's
    /// image id, which does not exist yet.
    pub name: Option<String>,
}

/// The dry-run report of a share plan: what Apply would add.
pub fn dry_run_report(plan: &SharePlan) -> ShareDryRunReport {
    let mut warnings = plan.warnings.clone();
    let accounts = &plan.targets.account_ids;
    let snapshot_permissions = if plan.share_snapshots {
        snapshot_permissions_to_add(&plan.snapshots, accounts)
    } else {
        Vec::new()
    };
    let grants: Vec<GrantToCreate> = if plan.kms_access == KmsAccess::Grant {
        plan.grant_key_arns
            .iter()
            .flat_map(|key| {
                accounts.iter().map(move |account| GrantToCreate {
                    key_arn: key.clone(),
                    grantee_account_id: account.clone(),
                    name: plan.reencrypt.is_none().then(|| {
                        share_grant_name(&plan.image_id, account, &plan.execution.execution_arn)
                    }),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    if let Some(r) = &plan.reencrypt {
        warnings.push(format!(
            "{} is under aws/ebs: share-image would first copy it as {} under {} and share that copy (its snapshots' createVolumePermission and the grants' names are known once it exists)",
            plan.image_id, r.name, r.key_arn
        ));
    }
    DryRunReport::new(
        WORKFLOW_SHARE_IMAGE,
        ShareDryRun {
            image_id: plan.image_id.clone(),
            region: plan.region.clone(),
            owner_account_id: plan.owner_account_id.clone(),
            targets: plan.targets.clone(),
            reencrypt: plan.reencrypt.as_ref().map(|r| CopyToShare {
                key_arn: r.key_arn.clone(),
                name: r.name.clone(),
                description: r.description.clone(),
                tags: r.tags.clone(),
            }),
            launch_permissions: plan.launch_permissions.clone(),
            snapshot_permissions,
            grant_operations: if grants.is_empty() {
                Vec::new()
            } else {
                SHARE_GRANT_OPERATIONS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            },
            grants,
            key_policy_needed: plan.key_policy_needed.clone(),
        },
        warnings,
    )
}

/// revoke-share's dry-run report: `would_remove` is what the revoke found present.
pub fn revoke_dry_run_report(
    would_remove: ShareRecord,
    warnings: Vec<String>,
) -> RevokeDryRunReport {
    DryRunReport::new(WORKFLOW_REVOKE_SHARE, would_remove, warnings)
}

/// A share as another workflow is given it (copy-image's `share`): made (share-image's
/// output or its record) or only planned (share-image's dry-run output, in a
/// distribute-image dry run).
#[derive(Debug, Clone, PartialEq)]
pub enum GivenShare {
    Made(ShareRecord),
    Planned(ShareDryRun),
}

impl GivenShare {
    /// The image the share is of, and its region.
    pub fn image_and_region(&self) -> (&str, &str) {
        match self {
            GivenShare::Made(r) => (&r.image_id, &r.region),
            GivenShare::Planned(p) => (&p.image_id, &p.region),
        }
    }
}

/// Reads a given share: a share-image dry run's output (`"dryRun": true`) is a planned
/// share; anything else must be a share record ([`parse_share_record`]).
pub fn parse_given_share(value: &Value) -> Result<GivenShare, FerryError> {
    if value.get("dryRun").is_none() {
        return parse_share_record(value).map(GivenShare::Made);
    }
    let report: ShareDryRunReport = serde_json::from_value(value.clone()).map_err(|e| {
        FerryError::invalid_input(format!("share: not a share-image dry run's output: {e}"))
    })?;
    if !report.dry_run || report.workflow != WORKFLOW_SHARE_IMAGE {
        return Err(FerryError::invalid_input(format!(
            "share: a dry run's output must be share-image's with dryRun true (got {} with dryRun {})",
            report.workflow, report.dry_run
        )));
    }
    Ok(GivenShare::Planned(report.plan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::ErrorName;
    use crate::share::fixtures::*;
    use serde_json::json;

    #[test]
    fn a_cmk_share_plans_permissions_and_named_grants() {
        let mut img = image(vec![
            snap("snap-0123456789abcdef0", Some(CMK)),
            snap("snap-0123456789abcdef1", Some(CMK)),
        ]);
        img.launch_permissions = vec![LaunchPermission::UserId(C.into())];
        img.snapshots[0].create_volume_user_ids = vec![C.into()];
        let p = plan(
            json!({"imageId": IMAGE, "accountIds": [B, C], "dryRun": true}),
            &facts(img, vec![cmk()]),
        )
        .unwrap();
        assert!(p.dry_run);
        let r = dry_run_report(&p);
        assert!(r.dry_run);
        assert_eq!(r.workflow, "share-image");
        assert_eq!(r.plan.image_id, IMAGE);
        assert_eq!(r.plan.targets.account_ids, [B, C]);
        // C already had its launch permission: only B's is added (and a warning says so)
        assert_eq!(
            r.plan.launch_permissions,
            [LaunchPermission::UserId(B.into())]
        );
        assert!(r.warnings.iter().any(|w| w.contains("already had")));
        assert_eq!(r.plan.snapshot_permissions.len(), 3);
        assert_eq!(r.plan.grants.len(), 2);
        assert_eq!(
            r.plan.grants[0].name.as_deref(),
            Some(share_grant_name(IMAGE, B, &ctx().execution_arn).as_str())
        );
        assert_eq!(r.plan.grant_operations.len(), 6);
        assert!(r.plan.reencrypt.is_none());
        // kmsAccess none, shareSnapshots false: neither
        let p = plan(
            json!({"imageId": IMAGE, "accountIds": [B], "kmsAccess": "none", "shareSnapshots": false}),
            &facts(image(vec![snap("snap-0123456789abcdef0", Some(CMK))]), vec![cmk()]),
        )
        .unwrap();
        let r = dry_run_report(&p);
        assert!(r.plan.grants.is_empty() && r.plan.grant_operations.is_empty());
        assert!(r.plan.snapshot_permissions.is_empty());
    }

    #[test]
    fn an_aws_ebs_image_plans_its_copy_and_says_what_is_not_known_yet() {
        let mut f = facts(
            image(vec![snap("snap-0123456789abcdef0", Some(EBS))]),
            vec![ebs()],
        );
        f.reencrypt_key = Some(cmk());
        let p = plan(
            json!({"imageId": IMAGE, "accountIds": [B], "reencryptWith": "alias/share", "dryRun": true}),
            &f,
        )
        .unwrap();
        let r = dry_run_report(&p);
        let copy = r.plan.reencrypt.as_ref().unwrap();
        assert_eq!(copy.key_arn, CMK);
        assert!(r.plan.snapshot_permissions.is_empty());
        assert_eq!(r.plan.grants.len(), 1);
        assert_eq!(r.plan.grants[0].name, None);
        assert!(r.warnings.iter().any(|w| w.contains("aws/ebs")));
    }

    #[test]
    fn a_dry_runs_output_reads_back_as_a_planned_share_and_a_record_as_a_made_one() {
        let p = plan(
            json!({"imageId": IMAGE, "accountIds": [B], "dryRun": true}),
            &facts(
                image(vec![snap("snap-0123456789abcdef0", Some(CMK))]),
                vec![cmk()],
            ),
        )
        .unwrap();
        let out = serde_json::to_value(dry_run_report(&p)).unwrap();
        let GivenShare::Planned(planned) = parse_given_share(&out).unwrap() else {
            panic!("planned");
        };
        assert_eq!(planned.targets.account_ids, [B]);
        assert_eq!(
            GivenShare::Planned(planned).image_and_region(),
            (IMAGE, "us-east-1")
        );
        let made = parse_given_share(&json!({"record": record(), "warnings": []})).unwrap();
        assert_eq!(made, GivenShare::Made(record()));
        // another workflow's report, a report that is not a dry run, or extra fields
        for bad in [
            {
                let mut v = out.clone();
                v["workflow"] = json!("copy-image");
                v
            },
            {
                let mut v = out.clone();
                v["dryRun"] = json!(false);
                v
            },
            {
                let mut v = out.clone();
                v["plan"]["extra"] = json!(1);
                v
            },
            json!({"dryRun": true}),
        ] {
            let e = parse_given_share(&bad).unwrap_err();
            assert_eq!(e.name, ErrorName::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn revoke_dry_run_reports_what_would_be_removed() {
        let r = revoke_dry_run_report(record(), vec![]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["dryRun"], true);
        assert_eq!(v["workflow"], "revoke-share");
        assert_eq!(v["plan"]["launchPermissions"][0], json!({"userId": B}));
    }
}
