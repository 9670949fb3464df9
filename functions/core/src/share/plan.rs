//! The share plan: every rule applied to what preflight read, and what the run will add.

use super::facts::{find_key, KeyManager, ShareFacts, SnapshotFacts};
use super::record::{KeyPolicyNeeded, LaunchPermission, SnapshotPermission};
use super::refusals::*;
use super::request::{KmsAccess, ShareRequest, ShareTargets};
use super::WORKFLOW_SHARE_IMAGE;
use crate::errors::{ErrorName, FerryError};
use crate::names::{self, short_hash, ExecutionContext};
use crate::rules::ids::organization_id_of;
use crate::tags::{self, TAG_SOURCE_IMAGE};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The re-encrypted copy's name: readable, unique to the execution, within AMI name rules.
pub fn reencrypted_copy_name(image_id: &str, execution: &ExecutionContext) -> String {
    let readable = names::readable_execution_name(execution, 64);
    format!(
        "ferry-share-{image_id}-{readable}-{}",
        short_hash(&execution.execution_arn)
    )
}

/// The copy re-encrypted under a customer-managed key, made when the image is under
/// `aws/ebs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReencryptPlan {
    pub key_arn: String,
    pub name: String,
    pub description: String,
    pub client_token: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharePlan {
    pub execution: ExecutionContext,
    pub region: String,
    pub owner_account_id: String,
    /// The image as asked for.
    pub image_id: String,
    pub targets: ShareTargets,
    pub share_snapshots: bool,
    pub kms_access: KmsAccess,
    /// Launch permissions to add (those the image does not have yet).
    pub launch_permissions: Vec<LaunchPermission>,
    /// The image's snapshots (empty when a copy is shared: the copy's are used).
    pub snapshots: Vec<SnapshotFacts>,
    /// Customer-managed keys to grant on (the copy's key when re-encrypting).
    pub grant_key_arns: Vec<String>,
    #[serde(default)]
    pub reencrypt: Option<ReencryptPlan>,
    #[serde(default)]
    pub key_policy_needed: Option<KeyPolicyNeeded>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// `dryRun` of the request: the state machine ends after Preflight with the plan.
    #[serde(default)]
    pub dry_run: bool,
}

/// Applies every rule to what preflight read and builds the plan.
pub fn build_share_plan(
    execution: &ExecutionContext,
    request: &ShareRequest,
    facts: &ShareFacts,
) -> Result<SharePlan, FerryError> {
    let image = &facts.image;
    let targets = &request.targets;
    check_image_available(image)?;
    check_product_codes(image, request.share_snapshots, targets.public)?;
    let needs_copy = check_aws_managed_key(image, &facts.keys, request.reencrypt_with.as_deref())?;
    check_public_unencrypted(image, targets.public)?;
    if needs_copy && targets.public {
        return Err(FerryError::new(
            ErrorName::EncryptedImageCannotBePublic,
            format!(
                "{} is encrypted (and a re-encrypted copy would be too); only unencrypted images can be public",
                image.image_id
            ),
        ));
    }
    check_block_public_access(targets.public, facts.block_public_access.as_deref())?;

    let mut warnings = Vec::new();
    let reencrypt = if needs_copy {
        let key = facts
            .reencrypt_key
            .as_ref()
            .ok_or_else(|| FerryError::invalid_input("reencryptWith: the key was not described"))?;
        check_reencrypt_key(key)?;
        let mut tags = tags::ferry_tags(WORKFLOW_SHARE_IMAGE, &execution.execution_arn, "");
        tags.remove(tags::TAG_SOURCE_INSTANCE);
        tags.insert(TAG_SOURCE_IMAGE.to_string(), image.image_id.clone());
        Some(ReencryptPlan {
            key_arn: key.key_arn.clone(),
            name: reencrypted_copy_name(&image.image_id, execution),
            description: format!(
                "ferry: {} re-encrypted under a customer managed key for sharing",
                image.image_id
            ),
            client_token: names::client_token(&execution.execution_arn, "share-copy"),
            tags,
        })
    } else {
        if request.reencrypt_with.is_some() {
            warnings.push(format!(
                "reencryptWith ignored: {} is not under the AWS managed key; the image itself is shared",
                image.image_id
            ));
        }
        None
    };

    let (launch_permissions, snapshots, grant_key_arns) = match &reencrypt {
        // A new image: nothing is granted on it yet; its snapshots are known once made.
        Some(r) => (
            targets.launch_permissions(),
            Vec::new(),
            vec![r.key_arn.clone()],
        ),
        None => {
            let mut add = Vec::new();
            for lp in targets.launch_permissions() {
                if image.launch_permissions.contains(&lp) {
                    warnings.push(format!(
                        "{} already had launch permission {lp}: left as it was and not recorded",
                        image.image_id
                    ));
                } else {
                    add.push(lp);
                }
            }
            let customer: Vec<String> = image
                .key_ids()
                .into_iter()
                .filter_map(|id| {
                    find_key(&facts.keys, &id)
                        .filter(|k| k.key_manager == KeyManager::Customer)
                        .map(|k| k.key_arn.clone())
                })
                .collect();
            (add, image.snapshots.clone(), customer)
        }
    };
    let encrypted = reencrypt.is_some() || image.encrypted();
    let key_policy_needed = if encrypted && targets.has_organizations() {
        Some(key_policy_needed(&grant_key_arns, targets))
    } else {
        None
    };
    if let Some(k) = &key_policy_needed {
        warnings.push(k.reason.clone());
    }
    if encrypted && request.kms_access == KmsAccess::None && !targets.account_ids.is_empty() {
        warnings.push(
            "kmsAccess none: no KMS grant made; the target accounts can use the image only if the key policy lets them use the key".to_string(),
        );
    }
    Ok(SharePlan {
        execution: execution.clone(),
        region: facts.region.clone(),
        owner_account_id: facts.account_id.clone(),
        image_id: image.image_id.clone(),
        targets: targets.clone(),
        share_snapshots: request.share_snapshots,
        kms_access: request.kms_access,
        launch_permissions,
        snapshots,
        grant_key_arns,
        reencrypt,
        key_policy_needed,
        warnings,
        dry_run: request.dry_run,
    })
}

/// The createVolumePermissions to add on `snapshots` for `accounts`: those missing.
pub fn snapshot_permissions_to_add(
    snapshots: &[SnapshotFacts],
    accounts: &[String],
) -> Vec<SnapshotPermission> {
    let mut out = Vec::new();
    for s in snapshots {
        for a in accounts {
            if !s.create_volume_user_ids.contains(a) {
                out.push(SnapshotPermission {
                    snapshot_id: s.snapshot_id.clone(),
                    user_id: a.clone(),
                });
            }
        }
    }
    out
}

/// The key policy statements an organization's or OU's accounts need on the image's
/// keys: KMS grants name principals, never organizations (rule 5), so ferry says what
/// to add to the key policy instead of editing it.
pub fn key_policy_needed(key_arns: &[String], targets: &ShareTargets) -> KeyPolicyNeeded {
    let use_actions = [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:ReEncrypt*",
        "kms:GenerateDataKeyWithoutPlaintext",
    ];
    let mut conditions = Vec::new();
    if !targets.organization_arns.is_empty() {
        let ids: BTreeSet<String> = targets
            .organization_arns
            .iter()
            .filter_map(|a| organization_id_of(a))
            .collect();
        conditions.push(serde_json::json!({"StringEquals": {"aws:PrincipalOrgID": ids}}));
    }
    if !targets.organizational_unit_arns.is_empty() {
        let paths: Vec<String> = targets
            .organizational_unit_arns
            .iter()
            .filter_map(|a| {
                let org = organization_id_of(a)?;
                let ou = a.rsplit('/').next()?;
                Some(format!("{org}/*/{ou}/*"))
            })
            .collect();
        conditions
            .push(serde_json::json!({"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": paths}}));
    }
    let mut statements = Vec::new();
    for (i, condition) in conditions.into_iter().enumerate() {
        let sid = if i == 0 && !targets.organization_arns.is_empty() {
            "FerryShareWithOrganization"
        } else {
            "FerryShareWithOrganizationalUnits"
        };
        statements.push(serde_json::json!({
            "Sid": format!("{sid}Use"),
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": use_actions,
            "Resource": "*",
            "Condition": condition,
        }));
        let mut grant_condition = condition.clone();
        grant_condition["Bool"] = serde_json::json!({"kms:GrantIsForAWSResource": "true"});
        statements.push(serde_json::json!({
            "Sid": format!("{sid}Grants"),
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": grant_condition,
        }));
    }
    KeyPolicyNeeded {
        key_arns: key_arns.to_vec(),
        statements,
        reason: format!(
            "KMS grants cannot name organizations or OUs: add these statements to the key policy of {} so their accounts can use the image (ferry does not edit key policies)",
            key_arns.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::fixtures::*;
    use serde_json::json;

    #[test]
    fn aws_managed_key_with_reencrypt_plans_a_copy() {
        let mut f = facts(
            image(vec![snap("snap-0123456789abcdef0", Some(EBS))]),
            vec![ebs()],
        );
        f.reencrypt_key = Some(cmk());
        let p = plan(
            json!({"imageId": IMAGE, "accountIds": [B], "reencryptWith": "alias/share"}),
            &f,
        )
        .unwrap();
        let r = p.reencrypt.as_ref().unwrap();
        assert_eq!(r.key_arn, CMK);
        assert_eq!(r.tags[TAG_SOURCE_IMAGE], IMAGE);
        assert_eq!(r.tags[tags::TAG_WORKFLOW], WORKFLOW_SHARE_IMAGE);
        assert!(!r.tags.contains_key(tags::TAG_SOURCE_INSTANCE));
        assert_eq!(p.grant_key_arns, [CMK]);
        assert!(p.snapshots.is_empty());
        assert!(r.name.len() <= 128);
        // An AWS managed key is no key to re-encrypt with.
        f.reencrypt_key = Some(ebs());
        let e = plan(
            json!({"imageId": IMAGE, "accountIds": [B], "reencryptWith": "alias/share"}),
            &f,
        )
        .unwrap_err();
        assert_eq!(e.name, ErrorName::InvalidInput);
    }

    #[test]
    fn cmk_image_plans_grants_and_skips_existing_permissions() {
        let mut img = image(vec![
            snap("snap-0123456789abcdef0", Some(CMK)),
            snap("snap-0123456789abcdef1", Some(CMK)),
        ]);
        img.launch_permissions = vec![LaunchPermission::UserId(C.into())];
        img.snapshots[0].create_volume_user_ids = vec![C.into()];
        let f = facts(img, vec![cmk()]);
        let p = plan(
            json!({"imageId": IMAGE, "accountIds": [B, C], "reencryptWith": CMK}),
            &f,
        )
        .unwrap();
        assert_eq!(p.launch_permissions, [LaunchPermission::UserId(B.into())]);
        assert_eq!(p.grant_key_arns, [CMK]);
        assert!(p.reencrypt.is_none());
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
        let adds = snapshot_permissions_to_add(&p.snapshots, &p.targets.account_ids);
        assert_eq!(adds.len(), 3);
        assert!(!adds.contains(&SnapshotPermission {
            snapshot_id: "snap-0123456789abcdef0".into(),
            user_id: C.into()
        }));
        assert!(p.key_policy_needed.is_none());
    }

    #[test]
    fn organizations_of_an_encrypted_image_need_a_key_policy() {
        let f = facts(
            image(vec![snap("snap-0123456789abcdef0", Some(CMK))]),
            vec![cmk()],
        );
        let p = plan(
            json!({"imageId": IMAGE, "organizationArns": [ORG], "organizationalUnitArns": [OU]}),
            &f,
        )
        .unwrap();
        let k = p.key_policy_needed.unwrap();
        assert_eq!(k.key_arns, [CMK]);
        let text = serde_json::to_string(&k.statements).unwrap();
        assert!(text.contains("aws:PrincipalOrgID") && text.contains("o-abcdefghij"));
        assert!(
            text.contains("aws:PrincipalOrgPaths")
                && text.contains("o-abcdefghij/*/ou-ab12-cdefgh34/*")
        );
        assert!(text.contains("kms:GrantIsForAWSResource"));
        // Unencrypted: nothing to say.
        let f = facts(image(vec![snap("snap-0123456789abcdef0", None)]), vec![]);
        let p = plan(json!({"imageId": IMAGE, "organizationArns": [ORG]}), &f).unwrap();
        assert!(p.key_policy_needed.is_none());
    }

    #[test]
    fn copy_names_follow_ami_rules() {
        let n = reencrypted_copy_name(IMAGE, &ctx());
        assert!((3..=128).contains(&n.len()));
        assert!(n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "()[]./-'@_".contains(c)));
    }
}
