//! What a copy-image dry run reports: the copy the target would get (name, account,
//! region, key, tags) and whether and how the share would then be revoked, from the plan
//! Preflight built.

use super::plan::CopyPlan;
use super::WORKFLOW_COPY_IMAGE;
use crate::dry_run::DryRunReport;
use crate::share::dry_run::ShareDryRun;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// copy-image's output in a dry run.
pub type CopyDryRunReport = DryRunReport<CopyDryRun>;

/// `plan` of a copy-image dry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyDryRun {
    pub source_image_id: String,
    pub source_region: String,
    pub source_account_id: String,
    /// The target saw the source image. `false` only in a distribute-image dry run, where
    /// the share is not made yet: the image was then checked as its owner (the warnings
    /// say so).
    pub source_seen_by_target: bool,
    pub target_account_id: String,
    pub target_region: String,
    pub target_role_arn: String,
    /// The key as given, and its ARN as the target's DescribeKey resolved it.
    pub target_kms_key_id: String,
    pub target_kms_key_arn: Option<String>,
    /// The copy's AMI name and description.
    pub copy_name: String,
    pub description: String,
    /// On the copy and its snapshots: ferry's provenance tags and (`copyTags`) the
    /// source's own.
    pub tags: BTreeMap<String, String>,
    /// CopyImage's own CopyImageTags (the tags the target sees) is used as well.
    pub copy_image_tags: bool,
    /// `revokeAfterCopy`: the share is revoked for this target once the copy is available.
    pub revoke_after_copy: bool,
    /// revoke-share's input for that revoke (`null` when the share is kept).
    pub revoke: Option<Value>,
}

/// The dry-run report of a copy plan. `target_kms_key_arn`: the target key as the
/// target's DescribeKey resolved it; `source_seen_by_target`: see
/// [`CopyDryRun::source_seen_by_target`].
pub fn dry_run_report(
    plan: &CopyPlan,
    target_kms_key_arn: Option<&str>,
    source_seen_by_target: bool,
) -> CopyDryRunReport {
    let r = &plan.request;
    DryRunReport::new(
        WORKFLOW_COPY_IMAGE,
        CopyDryRun {
            source_image_id: r.source_image_id.clone(),
            source_region: r.source_region.clone(),
            source_account_id: plan.source_account_id.clone(),
            source_seen_by_target,
            target_account_id: r.target_account_id.clone(),
            target_region: r.target_region.clone(),
            target_role_arn: r.target_role_arn.clone(),
            target_kms_key_id: r.target_kms_key_id.clone(),
            target_kms_key_arn: target_kms_key_arn.map(str::to_string),
            copy_name: plan.copy_name.clone(),
            description: plan.description.clone(),
            tags: plan.tags.clone(),
            copy_image_tags: plan.copy_image_tags,
            revoke_after_copy: plan.revoke_after_copy,
            revoke: plan.revoke_after_copy.then(|| plan.revoke.clone()),
        },
        plan.warnings.clone(),
    )
}

/// What a dry run given a share that is only planned (distribute-image's dry run) could
/// not check, and what it checked instead. Short: it is repeated for every target of a
/// distribute-image dry run (whose own warnings explain it in full).
pub fn planned_share_warnings(plan: &CopyPlan, planned: &ShareDryRun) -> Vec<String> {
    let r = &plan.request;
    let mut out = vec![format!(
        "not shared with {} yet: {} checked as its owner (available, no product codes); role, key and name as the target",
        r.target_account_id, r.source_image_id
    )];
    if let Some(copy) = &planned.reencrypt {
        out.push(format!(
            "{} is under aws/ebs: the copy would be of its re-encrypted copy {} (under {})",
            r.source_image_id, copy.name, copy.key_arn
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::fixtures::*;
    use crate::copy::plan::plan;
    use crate::copy::request::CopyRequest;
    use serde_json::json;

    #[test]
    fn the_report_names_the_copy_its_key_tags_and_the_revoke() {
        let mut v = with("dryRun", json!(true));
        v["name"] = json!("golden-web");
        let p = plan(
            CopyRequest::parse(&v).unwrap(),
            ctx("copy-1"),
            "111122223333",
        )
        .unwrap();
        assert!(p.dry_run);
        let r = dry_run_report(&p, Some(KEY_B), true);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["dryRun"], true);
        assert_eq!(v["workflow"], "copy-image");
        let p_out = &v["plan"];
        assert_eq!(p_out["copyName"], "golden-web");
        assert_eq!(p_out["targetAccountId"], B);
        assert_eq!(p_out["targetRegion"], "us-east-1");
        assert_eq!(p_out["targetKmsKeyArn"], KEY_B);
        assert_eq!(p_out["sourceAccountId"], "111122223333");
        assert_eq!(p_out["tags"]["ferry:workflow"], "copy-image");
        assert_eq!(p_out["tags"]["ferry:source-image"], "ami-0123456789abcdef0");
        assert_eq!(p_out["revokeAfterCopy"], true);
        assert_eq!(p_out["revoke"]["accountIds"], json!([B]));
        assert_eq!(p_out["sourceSeenByTarget"], true);
        let back: CopyDryRunReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        // the share kept: no revoke
        let mut v = with("dryRun", json!(true));
        v["revokeAfterCopy"] = json!(false);
        let p = plan(
            CopyRequest::parse(&v).unwrap(),
            ctx("copy-1"),
            "111122223333",
        )
        .unwrap();
        let r = dry_run_report(&p, None, false);
        assert!(!r.plan.revoke_after_copy && r.plan.revoke.is_none());
        // a record's revoke is the target's part of it
        let mut v = with("share", record());
        v["dryRun"] = json!(true);
        let p = plan(
            CopyRequest::parse(&v).unwrap(),
            ctx("copy-1"),
            "111122223333",
        )
        .unwrap();
        let r = dry_run_report(&p, None, true);
        assert_eq!(
            r.plan.revoke.unwrap()["record"]["launchPermissions"],
            json!([{"userId": B}])
        );
    }
}
