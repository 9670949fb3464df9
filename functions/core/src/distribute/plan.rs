//! The distribute-image request, checked target by target as copy-image would check it,
//! and the plan the Map runs.

use super::resolve::{self, ResolvedImage};
use super::{MAX_EXECUTION_NAME, MAX_TARGETS};
use crate::copy::request::CopyRequest;
use crate::errors::FerryError;
use crate::names::{self, ExecutionContext};
use crate::rules::ids::check_resource_id;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeSet;

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawTarget {
    account_id: String,
    role_arn: String,
    external_id: String,
    kms_key_id: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDistribute {
    #[cfg_attr(feature = "schema", schemars(schema_with = "share_request_schema"))]
    share: Value,
    targets: Vec<RawTarget>,
    #[serde(default)]
    fail_fast: Option<bool>,
    #[serde(default)]
    dry_run: Option<bool>,
    /// Set by the ResolveImage state when the request named `share.image`: the image it
    /// resolved to (carried to the output).
    #[serde(default)]
    resolved_image: Option<ResolvedImage>,
}

/// One target, ready for the Map: its nested execution's name and copy-image request
/// (every field present, `share` filled in by the state machine after the share).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetItem {
    pub account_id: String,
    pub region: String,
    pub execution_name: String,
    pub copy: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DistributePlan {
    pub image_id: String,
    pub hub_region: String,
    /// The share-image request, with `accountIds` filled from the targets when absent.
    pub share: Value,
    pub share_execution_name: String,
    pub fail_fast: bool,
    pub targets: Vec<TargetItem>,
    /// Accounts with targets in several regions (issue 8, 2.6): their copies do not
    /// revoke the share after copying (the first to finish would take it from the
    /// others); it stays, and the output says so (revoke it with revoke-share).
    #[serde(default)]
    pub kept_shared: Vec<String>,
    /// `dryRun` of the request: `DryRun?` sends the execution to the nested dry runs
    /// (share-image with `share.dryRun` set, copy-image per target) and ends at `Planned`.
    #[serde(default)]
    pub dry_run: bool,
    /// A dry run's warnings: what it checks and does not (see [`super::dry_run`]).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The image `share.image` resolved to (ResolveImage), when the request named one
    /// (always in the JSON, null otherwise: the Report state reads it).
    #[serde(default)]
    pub resolved_image: Option<ResolvedImage>,
}

/// The region of an execution ARN (`arn:aws:states:<region>:<account>:execution:...`).
pub fn execution_region(execution_arn: &str) -> Option<String> {
    let parts: Vec<&str> = execution_arn.split(':').collect();
    (parts.len() > 4 && !parts[3].is_empty()).then(|| parts[3].to_string())
}

/// A nested execution's name: `<parent, shortened>-<hash of the parent>-<suffix>`, within
/// 80 characters, deterministic (a retried StartExecution finds the running child).
pub fn child_execution_name(parent: &ExecutionContext, suffix: &str) -> String {
    let token = names::client_token(&parent.execution_arn, "child");
    let hash = &token["ferry-".len().."ferry-".len() + 8];
    let room = MAX_EXECUTION_NAME.saturating_sub(suffix.len() + hash.len() + 2);
    let prefix: String = parent.execution_name.chars().take(room).collect();
    format!("{prefix}-{hash}-{suffix}")
}

impl DistributePlan {
    /// Parses a distribute-image request: the share section, the targets (each checked
    /// as copy-image would check it, no account+region twice), `failFast`.
    pub fn parse(
        value: &Value,
        execution: &ExecutionContext,
    ) -> Result<DistributePlan, FerryError> {
        Self::parse_at_most(value, execution, MAX_TARGETS)
    }

    /// [`DistributePlan::parse`] with another bound on the number of targets.
    pub(crate) fn parse_at_most(
        value: &Value,
        execution: &ExecutionContext,
        max_targets: usize,
    ) -> Result<DistributePlan, FerryError> {
        if !value.is_object() {
            return Err(FerryError::invalid_input(
                "the request must be a JSON object with share and targets",
            ));
        }
        let raw: RawDistribute = serde_json::from_value(value.clone())
            .map_err(|e| FerryError::invalid_input(format!("request: {e}")))?;
        let hub_region = execution_region(&execution.execution_arn).ok_or_else(|| {
            FerryError::invalid_input(format!(
                "context: {:?} is not an execution ARN",
                execution.execution_arn
            ))
        })?;
        let Some(share) = raw.share.as_object() else {
            return Err(FerryError::invalid_input(
                "share: must be the share-image request (an object with imageId)",
            ));
        };
        if share.contains_key("image") {
            // ResolveImage runs before Preflight and replaces the selector by its image.
            resolve::selector_of(
                value,
                execution_account(&execution.execution_arn).as_deref(),
            )?;
            return Err(FerryError::invalid_input(
                "share.image: the selector is resolved by the ResolveImage state, which did not run",
            ));
        }
        let image_id = share
            .get("imageId")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                FerryError::invalid_input(
                    "share.imageId: required (or share.image, a selector of the newest image by name)",
                )
            })?
            .to_string();
        check_resource_id("share.imageId", "ami", &image_id)?;
        if let Some(resolved) = &raw.resolved_image {
            resolve::check_resolved(resolved, &image_id)?;
        }
        if raw.targets.is_empty() {
            return Err(FerryError::invalid_input(
                "targets: give at least one target",
            ));
        }
        if raw.targets.len() > max_targets {
            return Err(FerryError::invalid_input(format!(
                "targets: at most {max_targets} per execution (got {}); split them over several executions",
                raw.targets.len()
            )));
        }
        let mut seen = BTreeSet::new();
        let mut targets = Vec::new();
        for (i, t) in raw.targets.into_iter().enumerate() {
            let region = t.region.clone().unwrap_or_else(|| hub_region.clone());
            let copy = json!({
                "sourceImageId": image_id,
                "sourceRegion": hub_region,
                "targetAccountId": t.account_id,
                "targetRoleArn": t.role_arn,
                "externalId": t.external_id,
                "targetKmsKeyId": t.kms_key_id,
                "targetRegion": region,
                "name": t.name,
                "copyTags": true,
                "revokeAfterCopy": true,
                "share": null,
            });
            CopyRequest::parse(&copy)
                .map_err(|e| FerryError::invalid_input(format!("targets[{i}]: {}", e.message)))?;
            if !seen.insert((t.account_id.clone(), region.clone())) {
                return Err(FerryError::invalid_input(format!(
                    "targets[{i}]: account {} in {region} is listed twice",
                    t.account_id
                )));
            }
            targets.push(TargetItem {
                execution_name: child_execution_name(
                    execution,
                    &format!("copy-{}-{region}", t.account_id),
                ),
                account_id: t.account_id,
                region,
                copy,
            });
        }
        // One account in several regions: no copy may revoke the share another one still
        // needs.
        let mut kept_shared: Vec<String> = Vec::new();
        for t in &targets {
            let regions = targets
                .iter()
                .filter(|o| o.account_id == t.account_id)
                .count();
            if regions > 1 && !kept_shared.contains(&t.account_id) {
                kept_shared.push(t.account_id.clone());
            }
        }
        for t in targets.iter_mut() {
            if kept_shared.contains(&t.account_id) {
                t.copy["revokeAfterCopy"] = json!(false);
            }
        }
        let accounts: Vec<String> = {
            let mut a: Vec<String> = targets.iter().map(|t| t.account_id.clone()).collect();
            a.sort();
            a.dedup();
            a
        };
        let mut share = share.clone();
        if share.contains_key("dryRun") {
            return Err(FerryError::invalid_input(
                "share.dryRun: set dryRun on the distribute-image request itself (it dry-runs the share and every copy)",
            ));
        }
        let dry_run = raw.dry_run.unwrap_or(false);
        if dry_run {
            share.insert("dryRun".into(), json!(true));
        }
        match share.get("accountIds") {
            None | Some(Value::Null) => {
                share.insert("accountIds".into(), json!(accounts));
            }
            Some(Value::Array(given)) => {
                let missing: Vec<&String> = accounts
                    .iter()
                    .filter(|a| !given.iter().any(|g| g.as_str() == Some(a.as_str())))
                    .collect();
                if !missing.is_empty() {
                    return Err(FerryError::invalid_input(format!(
                        "share.accountIds: must include every target account (missing {missing:?}), or be left out"
                    )));
                }
            }
            Some(_) => {
                return Err(FerryError::invalid_input(
                    "share.accountIds: must be a list of account ids",
                ))
            }
        }
        let fail_fast = raw.fail_fast.unwrap_or(false);
        let warnings = if dry_run {
            super::dry_run::warnings(fail_fast, &kept_shared)
        } else {
            Vec::new()
        };
        Ok(DistributePlan {
            image_id,
            share_execution_name: child_execution_name(execution, "share"),
            hub_region,
            share: Value::Object(share),
            fail_fast,
            targets,
            kept_shared,
            dry_run,
            warnings,
            resolved_image: raw.resolved_image,
        })
    }

    /// A request checked before a start (`ferry`, the schema test), as Preflight will
    /// check it; a `share.image` selector as ResolveImage will (its owner against the hub
    /// only when `hub_account` is known), the rest with a stand-in for its image.
    pub fn check_request(value: &Value, hub_account: Option<&str>) -> Result<(), FerryError> {
        let account = hub_account.unwrap_or("000000000000");
        let context = ExecutionContext {
            execution_arn: format!(
                "arn:aws:states:us-east-1:{account}:execution:ferry-distribute-image:ferry-check"
            ),
            execution_name: "ferry-check".into(),
            ..Default::default()
        };
        match resolve::selector_of(value, hub_account)? {
            None => Self::parse(value, &context).map(drop),
            Some(selector) => {
                let stand_in = ResolvedImage {
                    image_id: "ami-00000000000000000".into(),
                    name: "stand-in".into(),
                    creation_date: "2026-01-01T00:00:00.000Z".into(),
                    owner_id: account.into(),
                    name_pattern: selector.name_pattern,
                    matched: 1,
                };
                Self::parse(&resolve::resolved_request(value, &stand_in), &context).map(drop)
            }
        }
    }
}

/// The account of an execution ARN (`arn:aws:states:<region>:<account>:execution:...`).
pub fn execution_account(execution_arn: &str) -> Option<String> {
    let parts: Vec<&str> = execution_arn.split(':').collect();
    (parts.len() > 5 && !parts[4].is_empty()).then(|| parts[4].to_string())
}

/// `share`: share-image's input (its schema, without the targets: distribute-image shares
/// with its targets' accounts).
#[cfg(feature = "schema")]
fn share_request_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let selector = generator.subschema_for::<super::resolve::ImageSelector>();
    schemars::json_schema!({
        "type": "object",
        "description": "what share-image is to do (its input; the accounts are the targets'), naming the image by imageId or by image, a selector of the newest available image this account owns whose name matches namePattern (resolved when the run starts)",
        "properties": {
            "imageId": {"type": "string", "pattern": "^ami-([0-9a-f]{8}|[0-9a-f]{17})$"},
            "image": selector
        },
        "oneOf": [
            {"required": ["imageId"], "not": {"required": ["image"]}},
            {"required": ["image"], "not": {"required": ["imageId"]}}
        ]
    })
}

/// The JSON Schema of distribute-image's input, from the structs the Preflight parses
/// into (`share` is share-image's input, checked as share-image checks it).
#[cfg(feature = "schema")]
pub fn input_schema() -> schemars::Schema {
    schemars::schema_for!(RawDistribute)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribute::fixtures::*;
    use crate::errors::ErrorName;

    fn refused(v: Value) -> FerryError {
        let e = DistributePlan::parse(&v, &ctx("d-1")).unwrap_err();
        assert_eq!(e.name, ErrorName::InvalidInput, "{e}");
        e
    }

    #[test]
    fn targets_become_copy_requests_with_defaults() {
        let mut t2 = target("555566667777");
        t2["region"] = json!("eu-west-1");
        t2["name"] = json!("golden");
        let p =
            DistributePlan::parse(&request(vec![target("222233334444"), t2]), &ctx("d-1")).unwrap();
        assert!(!p.fail_fast);
        assert_eq!(p.hub_region, "us-east-1");
        assert_eq!(p.image_id, "ami-0123456789abcdef0");
        assert_eq!(
            p.share["accountIds"],
            json!(["222233334444", "555566667777"])
        );
        assert_eq!(p.targets[0].region, "us-east-1");
        assert_eq!(p.targets[1].region, "eu-west-1");
        let c = &p.targets[1].copy;
        assert_eq!(c["sourceRegion"], "us-east-1");
        assert_eq!(c["targetRegion"], "eu-west-1");
        assert_eq!(c["name"], "golden");
        assert_eq!(p.targets[0].copy["name"], Value::Null);
        // every copy request is one copy-image accepts
        for t in &p.targets {
            CopyRequest::parse(&t.copy).unwrap();
            assert!(t.execution_name.len() <= MAX_EXECUTION_NAME);
        }
        assert_ne!(p.targets[0].execution_name, p.targets[1].execution_name);
        assert!(p.share_execution_name.ends_with("-share"));
    }

    /// Issue 8, 2.6: one account in two regions: neither copy revokes the account's share
    /// (the first to finish would take it from the other); the plan says it stays. An
    /// account with one target revokes after its copy as before.
    #[test]
    fn an_account_in_several_regions_keeps_its_share_until_every_copy_is_done() {
        let mut eu = target("222233334444");
        eu["region"] = json!("eu-west-1");
        let p = DistributePlan::parse(
            &request(vec![target("222233334444"), eu, target("555566667777")]),
            &ctx("d-1"),
        )
        .unwrap();
        assert_eq!(p.kept_shared, ["222233334444"]);
        let revokes: Vec<(String, String, Value)> = p
            .targets
            .iter()
            .map(|t| {
                (
                    t.account_id.clone(),
                    t.region.clone(),
                    t.copy["revokeAfterCopy"].clone(),
                )
            })
            .collect();
        assert_eq!(
            revokes,
            [
                ("222233334444".into(), "us-east-1".into(), json!(false)),
                ("222233334444".into(), "eu-west-1".into(), json!(false)),
                ("555566667777".into(), "us-east-1".into(), json!(true)),
            ]
        );
    }

    #[test]
    fn bad_targets_are_refused_before_anything_runs() {
        refused(request(vec![]));
        let e = refused(request(vec![target("2222")]));
        assert!(e.message.contains("targets[0]"), "{e}");
        let mut t = target("222233334444");
        t["roleArn"] = json!("arn:aws:iam::999988887777:role/x");
        refused(request(vec![t]));
        let mut t = target("222233334444");
        t["extra"] = json!(1);
        refused(request(vec![t]));
        let e = refused(request(vec![
            target("222233334444"),
            target("222233334444"),
        ]));
        assert!(e.message.contains("twice"), "{e}");
        refused(
            json!({"share": {"imageId": "i-0123456789abcdef0"}, "targets": [target("222233334444")]}),
        );
        refused(json!({"share": "ami-0123456789abcdef0", "targets": [target("222233334444")]}));
        refused(
            json!({"share": {"imageId": "ami-0123456789abcdef0", "accountIds": ["555566667777"]},
                       "targets": [target("222233334444")]}),
        );
        refused(json!({"targets": [target("222233334444")]}));
        let mut v = request(vec![target("222233334444")]);
        v["failFast"] = json!("yes");
        refused(v);
    }

    #[test]
    fn given_share_accounts_are_kept() {
        let v = json!({"share": {"imageId": "ami-0123456789abcdef0", "accountIds": ["222233334444", "999988887777"]},
                       "targets": [target("222233334444")], "failFast": true});
        let p = DistributePlan::parse(&v, &ctx("d-1")).unwrap();
        assert!(p.fail_fast);
        assert_eq!(
            p.share["accountIds"],
            json!(["222233334444", "999988887777"])
        );
    }

    #[test]
    fn child_names_fit_and_are_deterministic() {
        let long = ctx(&"n".repeat(80));
        let a = child_execution_name(&long, "copy-222233334444-ap-southeast-5");
        assert!(a.len() <= MAX_EXECUTION_NAME, "{a}");
        assert_eq!(
            a,
            child_execution_name(&long, "copy-222233334444-ap-southeast-5")
        );
        assert_ne!(
            child_execution_name(&ctx("a"), "share"),
            child_execution_name(&ctx("b"), "share")
        );
        assert!(child_execution_name(&ctx("d-1"), "share").starts_with("d-1-"));
    }

    #[test]
    fn execution_regions() {
        assert_eq!(
            execution_region(&ctx("x").execution_arn).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(execution_region("nope"), None);
    }

    /// The largest state of an execution at [`MAX_TARGETS`], built as the state machine
    /// builds it (statemachines/distribute-image.asl.json): the plan (Preflight's
    /// output), `shared` (share-image's output for every target account: launch
    /// permissions, a createVolumePermission per snapshot and account, a grant per key
    /// and account) and `results` (TargetCopied, one per target), with long but valid
    /// values. It must fit Step Functions' 256 KiB.
    fn largest_state(targets: usize) -> usize {
        use crate::distribute::{PAYLOAD_KEYS, PAYLOAD_SNAPSHOTS};
        let accounts: Vec<String> = (0..targets)
            .map(|i| format!("{:012}", 200_000_000_000u64 + i as u64))
            .collect();
        let raw: Vec<Value> = accounts
            .iter()
            .map(|a| {
                json!({"accountId": a,
                       "roleArn": format!("arn:aws:iam::{a}:role/ferry/ferry-target"),
                       "externalId": "ferry-ext-0123456789abcdef0123456789abcdef",
                       "kmsKeyId": format!("arn:aws:kms:eu-central-1:{a}:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
                       "region": "eu-central-1",
                       "name": "golden-web-2026-12-01-nightly"})
            })
            .collect();
        let plan = DistributePlan::parse_at_most(
            &request(raw),
            &ctx("nightly-golden-web-2026-12-01"),
            targets,
        )
        .unwrap();
        let image = "ami-0123456789abcdef0";
        let key = |k: usize| {
            format!("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-12345678900{k}")
        };
        let record = json!({
            "imageId": image, "region": "us-east-1", "ownerAccountId": "111122223333",
            "launchPermissions": accounts.iter().map(|a| json!({"userId": a})).collect::<Vec<_>>(),
            "snapshotPermissions": accounts.iter().flat_map(|a| (0..PAYLOAD_SNAPSHOTS).map(move |s|
                json!({"snapshotId": format!("snap-0123456789abcde{s:02}"), "userId": a}))).collect::<Vec<_>>(),
            "grants": accounts.iter().flat_map(|a| (0..PAYLOAD_KEYS).map(move |k| json!({
                "keyArn": key(k), "grantId": "0".repeat(64), "granteeAccountId": a,
                "name": crate::share::grants::share_grant_name(image, a, "arn:aws:states:us-east-1:111122223333:execution:x:y")}))).collect::<Vec<_>>(),
        });
        let results: Vec<Value> = plan.targets.iter().map(|t| json!({
            "accountId": t.account_id, "region": t.region, "status": "SUCCEEDED",
            "executionName": t.execution_name,
            "executionArn": format!("arn:aws:states:us-east-1:111122223333:execution:ferry-copy-image:{}", t.execution_name),
            "imageId": "ami-0fedcba9876543210",
            "kmsKeyIds": [t.copy["targetKmsKeyId"]], "revoked": true})).collect();
        let mut state = serde_json::to_value(&plan).unwrap();
        state["shared"] = json!({"executionArn": format!("arn:aws:states:us-east-1:111122223333:execution:ferry-share-image:{}", plan.share_execution_name),
                                 "result": {"record": record, "warnings": []}});
        state["results"] = json!(results);
        serde_json::to_string(&state).unwrap().len()
    }

    #[test]
    fn the_largest_state_at_max_targets_fits_the_step_functions_payload_limit() {
        use crate::distribute::SFN_PAYLOAD_LIMIT;
        let at_max = largest_state(MAX_TARGETS);
        assert!(
            at_max <= SFN_PAYLOAD_LIMIT,
            "{MAX_TARGETS} targets: {at_max} bytes"
        );
        // The old bound did not fit: the execution would have died in Preflight.
        assert!(largest_state(500) > SFN_PAYLOAD_LIMIT);
        eprintln!("largest state at {MAX_TARGETS} targets: {at_max} bytes");
    }

    /// The largest states of a dry run at `targets`, built as the state machine builds
    /// them (statemachines/distribute-image.asl.json, the dry-run path): (1) after
    /// `PlanCopies`: the plan, `shared` (the share-image dry run's output for every target
    /// account, built by ferry-core from an image of 8 snapshots under 2 keys) and
    /// `plannedCopies` (one entry per target, the copy's real warnings, a tenth of them
    /// refused with a long cause); (2) the output of `Planned`; (3) the state of a refused
    /// iteration once its Catch put the error there: the iteration's input (target and
    /// the share's output) and the Cause, the child's DescribeExecution with its input.
    fn largest_dry_run_states(targets: usize) -> (usize, usize, usize) {
        use crate::distribute::dry_run::{
            DistributeDryRun, DistributeDryRunReport, PlannedCopy, STATUS_PLANNED, STATUS_REFUSED,
        };
        use crate::distribute::{PAYLOAD_KEYS, PAYLOAD_SNAPSHOTS};
        use crate::share::facts::*;
        use crate::share::request::ShareRequest;
        let accounts: Vec<String> = (0..targets)
            .map(|i| format!("{:012}", 200_000_000_000u64 + i as u64))
            .collect();
        let raw: Vec<Value> = accounts
            .iter()
            .map(|a| {
                json!({"accountId": a,
                       "roleArn": format!("arn:aws:iam::{a}:role/ferry/ferry-target"),
                       "externalId": "ferry-ext-0123456789abcdef0123456789abcdef",
                       "kmsKeyId": format!("arn:aws:kms:eu-central-1:{a}:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
                       "region": "eu-central-1",
                       "name": "golden-web-2026-12-01-nightly"})
            })
            .collect();
        let mut request = request(raw);
        request["dryRun"] = json!(true);
        let execution = ctx("nightly-golden-web-2026-12-01");
        let plan = DistributePlan::parse_at_most(&request, &execution, targets).unwrap();
        // The nested share-image dry run, as its Preflight builds it.
        let image = "ami-0123456789abcdef0";
        let key = |k: usize| {
            format!("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-12345678900{k}")
        };
        let facts = ShareFacts {
            region: "us-east-1".into(),
            account_id: "111122223333".into(),
            image: ImageFacts {
                image_id: image.into(),
                name: "golden-web".into(),
                owner_id: "111122223333".into(),
                state: "available".into(),
                snapshots: (0..PAYLOAD_SNAPSHOTS)
                    .map(|s| SnapshotFacts {
                        snapshot_id: format!("snap-0123456789abcde{s:02}"),
                        encrypted: true,
                        kms_key_id: Some(key(s % PAYLOAD_KEYS)),
                        create_volume_user_ids: vec![],
                    })
                    .collect(),
                ..Default::default()
            },
            keys: (0..PAYLOAD_KEYS)
                .map(|k| KeyFacts {
                    key_id: key(k),
                    key_arn: key(k),
                    key_manager: KeyManager::Customer,
                    key_state: Some("Enabled".into()),
                })
                .collect(),
            ..Default::default()
        };
        let share_context = crate::names::ExecutionContext {
            execution_arn: format!(
                "arn:aws:states:us-east-1:111122223333:execution:ferry-share-image:{}",
                plan.share_execution_name
            ),
            execution_name: plan.share_execution_name.clone(),
            ..Default::default()
        };
        let share_plan = crate::share::plan::build_share_plan(
            &share_context,
            &ShareRequest::parse(&plan.share).unwrap(),
            &facts,
        )
        .unwrap();
        let share = crate::share::dry_run::dry_run_report(&share_plan);
        assert_eq!(share.plan.grants.len(), targets * PAYLOAD_KEYS);
        assert_eq!(
            share.plan.snapshot_permissions.len(),
            targets * PAYLOAD_SNAPSHOTS
        );
        // One copy-image dry run per target, with the warnings its Preflight gives.
        let copies: Vec<PlannedCopy> = plan
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut copy = t.copy.clone();
                copy["dryRun"] = json!(true);
                if i == 0 {
                    // What the Map gives each copy is one copy-image takes; the plan is
                    // the same without it (a planned share revokes by image and account).
                    let mut given = copy.clone();
                    given["share"] = serde_json::to_value(&share).unwrap();
                    crate::copy::request::CopyRequest::parse(&given).unwrap();
                }
                let copy_request = crate::copy::request::CopyRequest::parse(&copy).unwrap();
                let copy_context = crate::names::ExecutionContext {
                    execution_arn: format!(
                        "arn:aws:states:us-east-1:111122223333:execution:ferry-copy-image:{}",
                        t.execution_name
                    ),
                    execution_name: t.execution_name.clone(),
                    ..Default::default()
                };
                let mut copy_plan =
                    crate::copy::plan::plan(copy_request, copy_context, "111122223333").unwrap();
                copy_plan.warnings = crate::copy::dry_run::planned_share_warnings(
                    &copy_plan,
                    &share.plan,
                );
                let report = crate::copy::dry_run::dry_run_report(
                    &copy_plan,
                    t.copy["targetKmsKeyId"].as_str(),
                    false,
                );
                if i % 10 == 9 {
                    PlannedCopy {
                        account_id: t.account_id.clone(),
                        region: t.region.clone(),
                        execution_name: t.execution_name.clone(),
                        status: STATUS_REFUSED.into(),
                        copy_name: None,
                        target_kms_key_arn: None,
                        revoke_after_copy: None,
                        warnings: vec![],
                        error: Some("Ferry.TargetAccessDenied".into()),
                        cause: Some(format!("AssumeRole {}: AccessDenied: User: arn:aws:sts::111122223333:assumed-role/ferry-CopyPreflightFunctionRole-ABCDEFGHIJKL/ferry-CopyPreflightFunction-abcdefghijkl is not authorized to perform: sts:AssumeRole on resource: {}", t.copy["targetRoleArn"], t.copy["targetRoleArn"])),
                    }
                } else {
                    PlannedCopy {
                        account_id: t.account_id.clone(),
                        region: t.region.clone(),
                        execution_name: t.execution_name.clone(),
                        status: STATUS_PLANNED.into(),
                        copy_name: Some(report.plan.copy_name.clone()),
                        target_kms_key_arn: report.plan.target_kms_key_arn.clone(),
                        revoke_after_copy: Some(report.plan.revoke_after_copy),
                        warnings: report.warnings.clone(),
                        error: None,
                        cause: None,
                    }
                }
            })
            .collect();
        let share_execution_arn = format!(
            "arn:aws:states:us-east-1:111122223333:execution:ferry-share-image:{}",
            plan.share_execution_name
        );
        let mut state = serde_json::to_value(&plan).unwrap();
        state["shared"] = json!({"executionArn": share_execution_arn, "result": share});
        state["plannedCopies"] = json!(copies);
        let after_map = serde_json::to_string(&state).unwrap().len();
        let report = DistributeDryRunReport::new(
            super::super::WORKFLOW_DISTRIBUTE_IMAGE,
            DistributeDryRun {
                image_id: plan.image_id.clone(),
                share_execution_arn,
                share: share.clone(),
                copies,
                kept_shared: plan.kept_shared.clone(),
                resolved_image: plan.resolved_image.clone(),
            },
            plan.warnings.clone(),
        );
        let output = serde_json::to_string(&report).unwrap().len();
        // A refused iteration: its input, and the Cause of States.TaskFailed (the child's
        // DescribeExecution, whose input holds the share's output), as a JSON string.
        let t = &plan.targets[targets - 1];
        let mut child_input = t.copy.clone();
        child_input["dryRun"] = json!(true);
        child_input["share"] = serde_json::to_value(&share).unwrap();
        let cause = json!({
            "ExecutionArn": format!("arn:aws:states:us-east-1:111122223333:execution:ferry-copy-image:{}", t.execution_name),
            "StateMachineArn": "arn:aws:states:us-east-1:111122223333:stateMachine:ferry-copy-image",
            "Name": t.execution_name, "Status": "FAILED",
            "StartDate": 1.7e9, "StopDate": 1.7e9,
            "Input": child_input.to_string(),
            "InputDetails": {"Included": true},
            "Error": "Ferry.TargetAccessDenied",
            "Cause": "AssumeRole: AccessDenied: not authorized to perform sts:AssumeRole",
        });
        let iteration = json!({
            "target": t, "share": share,
            "error": {"Error": "States.TaskFailed", "Cause": cause.to_string()},
        });
        let refused = serde_json::to_string(&iteration).unwrap().len();
        (after_map, output, refused)
    }

    #[test]
    fn the_largest_dry_run_states_at_max_targets_fit_the_step_functions_payload_limit() {
        use crate::distribute::SFN_PAYLOAD_LIMIT;
        let (after_map, output, refused) = largest_dry_run_states(MAX_TARGETS);
        eprintln!(
            "dry run at {MAX_TARGETS} targets: after PlanCopies {after_map} bytes, output {output} bytes, a refused iteration {refused} bytes"
        );
        for (what, size) in [
            ("the state after PlanCopies", after_map),
            ("the output", output),
            ("a refused iteration", refused),
        ] {
            assert!(
                size <= SFN_PAYLOAD_LIMIT,
                "{MAX_TARGETS} targets: {what} is {size} bytes"
            );
        }
        // The measure can fail: twice the targets do not fit.
        assert!(largest_dry_run_states(2 * MAX_TARGETS).0 > SFN_PAYLOAD_LIMIT);
    }
}
