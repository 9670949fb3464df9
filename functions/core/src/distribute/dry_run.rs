//! What a distribute-image dry run reports, and what it checks.
//!
//! After Preflight, `DryRun?` sends a dry run to `PlanShare`, a nested share-image
//! execution with `dryRun: true` (nothing is shared), then to `PlanCopies`, one nested
//! copy-image dry run per target, given the share's dry-run output as `share`. The target
//! cannot see the image yet (it is not shared): copy-image's Preflight then checks the
//! image as its owner (available, no product codes) and, as the target, everything else
//! (AssumeRole with the ExternalId, the target key, the copy's name). What only a run can
//! tell: that the share reaches the target, and that EC2 can use the keys for the copy.
//! The state `Planned` puts the report together from the nested outputs:
//! [`DistributeDryRunReport`]. Nested dry runs make no mutating call.

use super::WORKFLOW_DISTRIBUTE_IMAGE;
use crate::dry_run::DryRunReport;
use crate::share::dry_run::ShareDryRunReport;
use serde::{Deserialize, Serialize};

/// A target whose copy-image dry run ended with a plan.
pub const STATUS_PLANNED: &str = "PLANNED";
/// A target whose copy-image dry run was refused (`error`, `cause`: its own).
pub const STATUS_REFUSED: &str = "REFUSED";

/// distribute-image's output in a dry run (built by its `Planned` state).
pub type DistributeDryRunReport = DryRunReport<DistributeDryRun>;

/// `plan` of a distribute-image dry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DistributeDryRun {
    pub image_id: String,
    /// The nested share-image dry run, and its output as is.
    pub share_execution_arn: String,
    pub share: ShareDryRunReport,
    /// One per target, in request order.
    pub copies: Vec<PlannedCopy>,
    /// Accounts whose share the copies would not revoke (targets in several regions).
    pub kept_shared: Vec<String>,
    /// The image `share.image` resolved to (null when the request named `share.imageId`).
    pub resolved_image: Option<super::resolve::ResolvedImage>,
}

/// One target's copy-image dry run, in short: the copy's name and key and whether the
/// share is revoked after it, or the refusal. The copy's full plan (tags, description,
/// revoke-share input) is the output of the nested execution `executionName`: repeating
/// it per target would not fit Step Functions' 256 KiB at [`super::MAX_TARGETS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlannedCopy {
    pub account_id: String,
    pub region: String,
    pub execution_name: String,
    /// [`STATUS_PLANNED`] or [`STATUS_REFUSED`].
    pub status: String,
    pub copy_name: Option<String>,
    pub target_kms_key_arn: Option<String>,
    pub revoke_after_copy: Option<bool>,
    pub warnings: Vec<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// The dry run's own warnings (the `warnings` of its report): what it checks and what it
/// cannot, and what the run would do differently.
pub fn warnings(fail_fast: bool, kept_shared: &[String]) -> Vec<String> {
    let mut out = vec![format!(
        "{WORKFLOW_DISTRIBUTE_IMAGE} dry run: the share was planned by a share-image dry run (nothing shared), then each target by a copy-image dry run before any share exists: checked as the target: its role (AssumeRole with its ExternalId), its key (exists, enabled, customer managed), that the copy's name is free; checked as the owner: the image is available without product codes. Not checked: that the share reaches the target and that EC2 can use the keys for the copy (a run waits for and retries both)"
    )];
    if fail_fast {
        out.push(
            "failFast: a dry run checks and reports every target; the run would stop at the first copy that fails".to_string(),
        );
    }
    for account in kept_shared {
        out.push(format!(
            "account {account} has targets in several regions: its copies would not revoke its share (revoke it with revoke-share once they are done)"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribute::fixtures::*;
    use crate::distribute::plan::DistributePlan;
    use serde_json::json;

    #[test]
    fn a_dry_run_plan_dry_runs_the_share_and_says_what_it_checks() {
        let mut v = request(vec![target("222233334444")]);
        v["dryRun"] = json!(true);
        v["failFast"] = json!(true);
        let p = DistributePlan::parse(&v, &ctx("d-1")).unwrap();
        assert!(p.dry_run);
        assert_eq!(
            p.share["dryRun"], true,
            "the nested share-image is a dry run"
        );
        assert!(p.warnings[0].contains("Not checked"), "{:?}", p.warnings);
        assert!(p.warnings.iter().any(|w| w.contains("failFast")));
        // every copy request stays one copy-image accepts (the Map adds dryRun: true)
        for t in &p.targets {
            let mut copy = t.copy.clone();
            copy["dryRun"] = json!(true);
            crate::copy::request::CopyRequest::parse(&copy).unwrap();
        }
        // not a dry run: the share is not one either, and no warnings
        let p = DistributePlan::parse(&request(vec![target("222233334444")]), &ctx("d-1")).unwrap();
        assert!(!p.dry_run && p.share.get("dryRun").is_none() && p.warnings.is_empty());
    }

    #[test]
    fn dry_run_is_a_strict_bool_and_belongs_to_distribute_not_its_share() {
        for bad in [json!("true"), json!(1)] {
            let mut v = request(vec![target("222233334444")]);
            v["dryRun"] = bad;
            let e = DistributePlan::parse(&v, &ctx("d-1")).unwrap_err();
            assert_eq!(e.name, crate::errors::ErrorName::InvalidInput);
        }
        for share_dry_run in [json!(true), json!(false)] {
            let mut v = request(vec![target("222233334444")]);
            v["share"]["dryRun"] = share_dry_run;
            let e = DistributePlan::parse(&v, &ctx("d-1")).unwrap_err();
            assert!(e.message.contains("share.dryRun"), "{e}");
        }
        let mut v = request(vec![target("222233334444")]);
        v["dryRun"] = json!(null);
        assert!(!DistributePlan::parse(&v, &ctx("d-1")).unwrap().dry_run);
    }

    #[test]
    fn accounts_that_keep_their_share_are_named() {
        let w = warnings(false, &["222233334444".to_string()]);
        assert_eq!(w.len(), 2);
        assert!(w[1].contains("222233334444"));
    }
}
