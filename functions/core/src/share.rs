//! The `share-image` and `revoke-share` workflows' pure side: the requests, the facts the
//! steps read, the sharing rules (aws-rules.md 1-9) as named functions, the plan, the KMS
//! grant operations and names, and the [`ShareRecord`] that says exactly what was granted
//! so that it can be revoked.

use crate::errors::{ErrorName, FerryError};
use crate::names::{self, ExecutionContext};
use crate::rules;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

pub const WORKFLOW_SHARE_IMAGE: &str = "share-image";
/// Tag on a re-encrypted copy: the image it was copied from.
pub const TAG_SOURCE_IMAGE: &str = "ferry:source-image";

/// KMS operations ferry grants a target account on each customer-managed key of a shared
/// AMI (rule 5, EBS UG "Share the KMS key used to encrypt a shared Amazon EBS snapshot"):
/// enough to launch from the AMI (EBS creates grants and decrypts data keys) and to copy
/// it re-encrypted under the target's own key. Nothing more.
pub const SHARE_GRANT_OPERATIONS: [&str; 6] = [
    "Decrypt",
    "DescribeKey",
    "CreateGrant",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKeyWithoutPlaintext",
];

/// Every ferry share grant's name starts with this.
pub const SHARE_GRANT_PREFIX: &str = "ferry-share-";

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// How target accounts get use of the image's customer-managed keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KmsAccess {
    /// One KMS grant per key and target account.
    #[default]
    Grant,
    /// No KMS call: the key policy already lets the targets use the key.
    None,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawShareRequest {
    image_id: String,
    #[serde(default)]
    account_ids: Option<Vec<String>>,
    #[serde(default)]
    organization_arns: Option<Vec<String>>,
    #[serde(default)]
    organizational_unit_arns: Option<Vec<String>>,
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    share_snapshots: Option<bool>,
    #[serde(default)]
    kms_access: Option<KmsAccess>,
    #[serde(default)]
    reencrypt_with: Option<String>,
}

/// Who an image is shared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ShareTargets {
    pub account_ids: Vec<String>,
    pub organization_arns: Vec<String>,
    pub organizational_unit_arns: Vec<String>,
    pub public: bool,
}

impl ShareTargets {
    pub fn has_organizations(&self) -> bool {
        !self.organization_arns.is_empty() || !self.organizational_unit_arns.is_empty()
    }
    pub fn is_empty(&self) -> bool {
        self.account_ids.is_empty() && !self.has_organizations() && !self.public
    }
    /// The launch permissions these targets mean.
    pub fn launch_permissions(&self) -> Vec<LaunchPermission> {
        let mut out: Vec<LaunchPermission> = self
            .account_ids
            .iter()
            .map(|a| LaunchPermission::UserId(a.clone()))
            .collect();
        out.extend(
            self.organization_arns
                .iter()
                .map(|a| LaunchPermission::OrganizationArn(a.clone())),
        );
        out.extend(
            self.organizational_unit_arns
                .iter()
                .map(|a| LaunchPermission::OrganizationalUnitArn(a.clone())),
        );
        if self.public {
            out.push(LaunchPermission::Group("all".to_string()));
        }
        out
    }
}

/// A validated share-image request with every default applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareRequest {
    pub image_id: String,
    pub targets: ShareTargets,
    pub share_snapshots: bool,
    pub kms_access: KmsAccess,
    pub reencrypt_with: Option<String>,
}

impl ShareRequest {
    /// Parses and validates: unknown fields, wrong types, malformed ids/ARNs and a
    /// request with no target are refused with `Ferry.InvalidInput`.
    pub fn parse(value: &serde_json::Value) -> Result<ShareRequest, FerryError> {
        if !value.is_object() {
            return Err(FerryError::invalid_input(
                "the request must be a JSON object with imageId and accountIds, organizationArns, organizationalUnitArns or public",
            ));
        }
        let raw: RawShareRequest = serde_json::from_value(value.clone())
            .map_err(|e| FerryError::invalid_input(format!("request: {e}")))?;
        rules::check_resource_id("imageId", "ami", &raw.image_id)?;
        let targets = ShareTargets {
            account_ids: checked_list("accountIds", raw.account_ids, check_account_id)?,
            organization_arns: checked_list(
                "organizationArns",
                raw.organization_arns,
                check_organization_arn,
            )?,
            organizational_unit_arns: checked_list(
                "organizationalUnitArns",
                raw.organizational_unit_arns,
                check_organizational_unit_arn,
            )?,
            public: raw.public.unwrap_or(false),
        };
        if targets.is_empty() {
            return Err(FerryError::invalid_input(
                "give at least one target: accountIds, organizationArns, organizationalUnitArns or public: true",
            ));
        }
        if let Some(key) = &raw.reencrypt_with {
            check_customer_key_ref("reencryptWith", key)?;
        }
        Ok(ShareRequest {
            image_id: raw.image_id,
            targets,
            share_snapshots: raw.share_snapshots.unwrap_or(true),
            kms_access: raw.kms_access.unwrap_or_default(),
            reencrypt_with: raw.reencrypt_with,
        })
    }
}

fn checked_list(
    field: &str,
    values: Option<Vec<String>>,
    check: fn(&str, &str) -> Result<(), FerryError>,
) -> Result<Vec<String>, FerryError> {
    let mut out: Vec<String> = Vec::new();
    for v in values.unwrap_or_default() {
        check(field, &v)?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

/// An AWS account id: 12 digits.
pub fn check_account_id(field: &str, id: &str) -> Result<(), FerryError> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "{field}: {id:?} is not an AWS account id (12 digits)"
        )))
    }
}

fn is_lower_alnum(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `arn:<partition>:organizations::<12 digits>:` followed by the rest, if it is that.
fn organizations_arn_rest(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    if !partition.starts_with("aws") {
        return None;
    }
    let rest = rest.strip_prefix("organizations::")?;
    let (account, rest) = rest.split_once(':')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(rest)
}

/// `o-` and 10-32 lowercase letters or digits.
fn is_org_id(id: &str) -> bool {
    id.strip_prefix("o-")
        .is_some_and(|r| is_lower_alnum(r, 10, 32))
}

/// `arn:aws:organizations::<management account>:organization/o-<id>` (rule 9).
pub fn check_organization_arn(field: &str, arn: &str) -> Result<(), FerryError> {
    let ok = organizations_arn_rest(arn)
        .and_then(|r| r.strip_prefix("organization/"))
        .is_some_and(is_org_id);
    if ok {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "{field}: {arn:?} is not an organization ARN (arn:aws:organizations::<account>:organization/o-...)"
        )))
    }
}

/// `arn:aws:organizations::<management account>:ou/o-<id>/ou-<root>-<id>` (rule 9).
pub fn check_organizational_unit_arn(field: &str, arn: &str) -> Result<(), FerryError> {
    let ok = organizations_arn_rest(arn)
        .and_then(|r| r.strip_prefix("ou/"))
        .and_then(|r| r.split_once('/'))
        .is_some_and(|(org, ou)| {
            is_org_id(org)
                && ou.strip_prefix("ou-").is_some_and(|r| {
                    r.split_once('-').is_some_and(|(root, id)| {
                        is_lower_alnum(root, 4, 32) && is_lower_alnum(id, 8, 32)
                    })
                })
        });
    if ok {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "{field}: {arn:?} is not an OU ARN (arn:aws:organizations::<account>:ou/o-.../ou-...)"
        )))
    }
}

/// The organization id (`o-...`) in an organization or OU ARN.
pub fn organization_id_of(arn: &str) -> Option<String> {
    let rest = organizations_arn_rest(arn)?;
    let rest = rest
        .strip_prefix("organization/")
        .or_else(|| rest.strip_prefix("ou/"))?;
    Some(rest.split('/').next()?.to_string())
}

fn is_key_uuid(s: &str) -> bool {
    let s = s.strip_prefix("mrk-").unwrap_or(s);
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// A reference to a customer-managed KMS key: key id, key ARN, alias name or alias ARN,
/// but never an AWS managed key's alias (`alias/aws/...`).
pub fn check_customer_key_ref(field: &str, key: &str) -> Result<(), FerryError> {
    let alias_ok = |a: &str| {
        a.len() > 6
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
    };
    let ok = if let Some(rest) = key.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        parts.len() == 5
            && parts[0].starts_with("aws")
            && parts[1] == "kms"
            && !parts[2].is_empty()
            && parts[3].len() == 12
            && parts[3].bytes().all(|b| b.is_ascii_digit())
            && (parts[4].strip_prefix("key/").is_some_and(is_key_uuid)
                || (parts[4].starts_with("alias/") && alias_ok(parts[4])))
    } else if key.starts_with("alias/") {
        alias_ok(key)
    } else {
        is_key_uuid(key)
    };
    if !ok {
        return Err(FerryError::invalid_input(format!(
            "{field}: {key:?} is not a KMS key id, key ARN, alias or alias ARN"
        )));
    }
    if key.contains("alias/aws/") {
        return Err(FerryError::invalid_input(format!(
            "{field}: {key:?} is an AWS managed key; give a customer managed key"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// What the steps read
// ---------------------------------------------------------------------------------------

/// An EBS snapshot of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotFacts {
    pub snapshot_id: String,
    pub encrypted: bool,
    /// The key as EC2 reports it (an ARN); `None` for unencrypted snapshots.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Accounts that already have createVolumePermission (DescribeSnapshotAttribute).
    #[serde(default)]
    pub create_volume_user_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyManager {
    #[serde(rename = "AWS")]
    Aws,
    #[serde(rename = "CUSTOMER")]
    Customer,
}

/// A KMS key as DescribeKey reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyFacts {
    /// The key as the snapshot (or the request) refers to it.
    pub key_id: String,
    pub key_arn: String,
    pub key_manager: KeyManager,
    #[serde(default)]
    pub key_state: Option<String>,
}

/// The image to share as DescribeImages, DescribeSnapshots, DescribeImageAttribute and
/// DescribeKey report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImageFacts {
    pub image_id: String,
    pub name: String,
    pub owner_id: String,
    pub state: String,
    #[serde(default)]
    pub product_codes: Vec<String>,
    pub snapshots: Vec<SnapshotFacts>,
    /// Launch permissions the image has now.
    #[serde(default)]
    pub launch_permissions: Vec<LaunchPermission>,
}

impl ImageFacts {
    pub fn encrypted(&self) -> bool {
        self.snapshots.iter().any(|s| s.encrypted)
    }
    /// The distinct keys of the encrypted snapshots, in snapshot order.
    pub fn key_ids(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.snapshots {
            if let Some(k) = &s.kms_key_id {
                if s.encrypted && !out.contains(k) {
                    out.push(k.clone());
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// The rules (refusals before any mutating call)
// ---------------------------------------------------------------------------------------

/// The image must exist and be owned by the caller (only the owner shares it).
pub fn check_image_owned(
    image_id: &str,
    owner_id: Option<&str>,
    me: &str,
) -> Result<(), FerryError> {
    match owner_id {
        Some(owner) if owner == me => Ok(()),
        Some(owner) => Err(FerryError::new(
            ErrorName::ImageNotFound,
            format!("{image_id} belongs to account {owner}; only its owner can share it"),
        )),
        None => Err(FerryError::new(
            ErrorName::ImageNotFound,
            format!("{image_id} does not exist in this account and region"),
        )),
    }
}

/// Only an `available` image can be shared usefully (rule 15).
pub fn check_image_available(image: &ImageFacts) -> Result<(), FerryError> {
    if image.state == "available" {
        Ok(())
    } else {
        Err(FerryError::new(
            ErrorName::UnsupportedConfiguration,
            format!(
                "{} is {}; only an available image can be shared",
                image.image_id, image.state
            ),
        ))
    }
}

/// Rule 7: an image with product codes cannot be copied by another account, nor made
/// public; refused when the share is meant for copies (`shareSnapshots`) or public.
pub fn check_product_codes(
    image: &ImageFacts,
    share_snapshots: bool,
    public: bool,
) -> Result<(), FerryError> {
    if image.product_codes.is_empty() || !(share_snapshots || public) {
        return Ok(());
    }
    Err(FerryError::new(
        ErrorName::ProductCodes,
        format!(
            "{} carries product codes ({}): other accounts cannot copy it and it cannot be public; share it with shareSnapshots: false to let them launch it",
            image.image_id,
            image.product_codes.join(", ")
        ),
    ))
}

/// Rule 2: only unencrypted AMIs can be public.
pub fn check_public_unencrypted(image: &ImageFacts, public: bool) -> Result<(), FerryError> {
    if public && image.encrypted() {
        Err(FerryError::new(
            ErrorName::EncryptedImageCannotBePublic,
            format!(
                "{} has encrypted snapshots; only unencrypted images can be public",
                image.image_id
            ),
        ))
    } else {
        Ok(())
    }
}

/// Rule 3: while image block public access is on (`block-new-sharing`), no AMI can be
/// made public.
pub fn check_block_public_access(public: bool, state: Option<&str>) -> Result<(), FerryError> {
    match state {
        Some("unblocked") | None if public => Ok(()),
        Some(state) if public => Err(FerryError::new(
            ErrorName::ImageBlockPublicAccess,
            format!(
                "image block public access is {state} in this account and region; disable it (DisableImageBlockPublicAccess) to make images public"
            ),
        )),
        _ => Ok(()),
    }
}

/// Rule 1: snapshots under the AWS managed key `aws/ebs` cannot be shared; the remedy is
/// a copy re-encrypted under a customer-managed key (`reencryptWith`).
pub fn check_aws_managed_key(
    image: &ImageFacts,
    keys: &[KeyFacts],
    reencrypt_with: Option<&str>,
) -> Result<bool, FerryError> {
    let under_aws_managed = image.snapshots.iter().any(|s| {
        s.encrypted
            && match &s.kms_key_id {
                // Encrypted with no key id reported: the account's default, aws/ebs.
                None => true,
                Some(id) => find_key(keys, id).is_some_and(|k| k.key_manager == KeyManager::Aws),
            }
    });
    if !under_aws_managed {
        return Ok(false);
    }
    if reencrypt_with.is_some() {
        return Ok(true);
    }
    Err(FerryError::new(
        ErrorName::AwsManagedKey,
        format!(
            "{} is encrypted with the AWS managed key aws/ebs, which cannot be shared; give reencryptWith (a customer managed key) to share a copy re-encrypted under it",
            image.image_id
        ),
    ))
}

/// The described key a snapshot's key id (id or ARN) refers to.
pub fn find_key<'a>(keys: &'a [KeyFacts], id: &str) -> Option<&'a KeyFacts> {
    keys.iter().find(|k| k.key_id == id || k.key_arn == id)
}

/// The key to re-encrypt with must be a customer-managed, enabled key.
pub fn check_reencrypt_key(key: &KeyFacts) -> Result<(), FerryError> {
    if key.key_manager == KeyManager::Aws {
        return Err(FerryError::invalid_input(format!(
            "reencryptWith: {} is an AWS managed key; give a customer managed key",
            key.key_arn
        )));
    }
    match key.key_state.as_deref() {
        None | Some("Enabled") => Ok(()),
        Some(state) => Err(FerryError::invalid_input(format!(
            "reencryptWith: {} is {state}; it must be Enabled",
            key.key_arn
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

fn short_hash(input: &str) -> String {
    Sha256::digest(input.as_bytes())
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The KMS grant ferry makes for `account` on a key of `image_id` in one execution:
/// `ferry-share-<image>-<account>-<hash of execution>` (KMS grant names: 1-256 of
/// `[a-zA-Z0-9:/_-]`). CreateGrant with the same Name and parameters returns the same
/// grant, so a retried step creates no second one; revoke-share finds ferry's grants
/// for an image and account by the prefix [`share_grant_prefix`].
pub fn share_grant_name(image_id: &str, account: &str, execution_arn: &str) -> String {
    format!(
        "{}{}",
        share_grant_prefix(image_id, account),
        short_hash(execution_arn)
    )
}

pub fn share_grant_prefix(image_id: &str, account: &str) -> String {
    format!("{SHARE_GRANT_PREFIX}{image_id}-{account}-")
}

/// Is this grant one ferry made for `account` on a key of `image_id`?
pub fn is_share_grant(
    name: Option<&str>,
    grantee_principal: Option<&str>,
    image_id: &str,
    account: &str,
) -> bool {
    name.is_some_and(|n| n.starts_with(&share_grant_prefix(image_id, account)))
        && grantee_principal == Some(account_root_arn(account).as_str())
}

/// The account as a KMS grantee: `arn:aws:iam::<account>:root`.
pub fn account_root_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

/// The re-encrypted copy's name: readable, unique to the execution, within AMI name rules.
pub fn reencrypted_copy_name(image_id: &str, execution: &ExecutionContext) -> String {
    let readable = names::readable_execution_name(execution, 64);
    format!(
        "ferry-share-{image_id}-{readable}-{}",
        short_hash(&execution.execution_arn)
    )
}

// ---------------------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------------------

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
}

/// Everything preflight read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShareFacts {
    pub region: String,
    pub account_id: String,
    pub image: ImageFacts,
    pub keys: Vec<KeyFacts>,
    /// GetImageBlockPublicAccessState, read only when `public`.
    pub block_public_access: Option<String>,
    /// DescribeKey of `reencryptWith`, read only when given.
    pub reencrypt_key: Option<KeyFacts>,
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
        let mut tags = names::ferry_tags(WORKFLOW_SHARE_IMAGE, &execution.execution_arn, "");
        tags.remove(names::TAG_SOURCE_INSTANCE);
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

// ---------------------------------------------------------------------------------------
// What was granted
// ---------------------------------------------------------------------------------------

/// One launch permission entry (rule 9), as `{"userId": ...}`, `{"organizationArn": ...}`,
/// `{"organizationalUnitArn": ...}` or `{"group": "all"}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LaunchPermission {
    UserId(String),
    OrganizationArn(String),
    OrganizationalUnitArn(String),
    Group(String),
}

impl std::fmt::Display for LaunchPermission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LaunchPermission::UserId(v) => write!(f, "UserId={v}"),
            LaunchPermission::OrganizationArn(v) => write!(f, "OrganizationArn={v}"),
            LaunchPermission::OrganizationalUnitArn(v) => write!(f, "OrganizationalUnitArn={v}"),
            LaunchPermission::Group(v) => write!(f, "Group={v}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotPermission {
    pub snapshot_id: String,
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantRecord {
    pub key_arn: String,
    pub grant_id: String,
    pub grantee_account_id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPolicyNeeded {
    pub key_arns: Vec<String>,
    pub statements: Vec<serde_json::Value>,
    pub reason: String,
}

/// Exactly what a share granted: the input of revoke-share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShareRecord {
    /// The image shared (the re-encrypted copy when there is one).
    pub image_id: String,
    pub region: String,
    pub owner_account_id: String,
    /// The image asked for, when a re-encrypted copy was shared instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_image_id: Option<String>,
    #[serde(default)]
    pub launch_permissions: Vec<LaunchPermission>,
    #[serde(default)]
    pub snapshot_permissions: Vec<SnapshotPermission>,
    #[serde(default)]
    pub grants: Vec<GrantRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_policy_needed: Option<KeyPolicyNeeded>,
}

impl ShareRecord {
    /// What this share granted to one account only (its launch permission, snapshot
    /// permissions and grants); organization, OU and public entries are left out.
    pub fn for_account(&self, account: &str) -> ShareRecord {
        ShareRecord {
            image_id: self.image_id.clone(),
            region: self.region.clone(),
            owner_account_id: self.owner_account_id.clone(),
            source_image_id: self.source_image_id.clone(),
            launch_permissions: self
                .launch_permissions
                .iter()
                .filter(|lp| matches!(lp, LaunchPermission::UserId(a) if a == account))
                .cloned()
                .collect(),
            snapshot_permissions: self
                .snapshot_permissions
                .iter()
                .filter(|p| p.user_id == account)
                .cloned()
                .collect(),
            grants: self
                .grants
                .iter()
                .filter(|g| g.grantee_account_id == account)
                .cloned()
                .collect(),
            key_policy_needed: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.launch_permissions.is_empty()
            && self.snapshot_permissions.is_empty()
            && self.grants.is_empty()
    }
}

// ---------------------------------------------------------------------------------------
// Step inputs and outputs
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharePreflightInput {
    pub request: serde_json::Value,
    pub context: ExecutionContext,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharePlanInput {
    pub plan: SharePlan,
}

/// The image the apply step shares: the copy when there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareApplyInput {
    pub plan: SharePlan,
    #[serde(default)]
    pub copy: Option<crate::io::ImageRef>,
}

/// share-image's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareResult {
    pub record: ShareRecord,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareCleanupInput {
    pub plan: SharePlan,
    #[serde(default)]
    pub error: Option<crate::io::CaughtError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ShareCleanupOutput {
    pub deregistered_images: Vec<String>,
    pub deleted_snapshots: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// revoke-share
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRevokeByImage {
    image_id: String,
    account_ids: Vec<String>,
    #[serde(default)]
    organization_arns: Option<Vec<String>>,
    #[serde(default)]
    organizational_unit_arns: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRevokeByRecord {
    record: ShareRecord,
}

/// What to revoke: exactly a [`ShareRecord`], or everything ferry-made for some targets
/// of an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RevokeRequest {
    Record(ShareRecord),
    Image {
        image_id: String,
        targets: ShareTargets,
    },
}

impl RevokeRequest {
    /// `{"record": <ShareRecord>}` or `{"imageId", "accountIds", "organizationArns"?,
    /// "organizationalUnitArns"?}`; anything else is `Ferry.InvalidInput`.
    pub fn parse(value: &serde_json::Value) -> Result<RevokeRequest, FerryError> {
        let Some(object) = value.as_object() else {
            return Err(FerryError::invalid_input(
                "the request must be {\"record\": <ShareRecord>} or {\"imageId\", \"accountIds\"}",
            ));
        };
        if object.contains_key("record") {
            let raw: RawRevokeByRecord = serde_json::from_value(value.clone())
                .map_err(|e| FerryError::invalid_input(format!("request: {e}")))?;
            let r = &raw.record;
            rules::check_resource_id("record.imageId", "ami", &r.image_id)?;
            check_account_id("record.ownerAccountId", &r.owner_account_id)?;
            for lp in &r.launch_permissions {
                match lp {
                    LaunchPermission::UserId(a) => check_account_id("record.launchPermissions", a)?,
                    LaunchPermission::OrganizationArn(a) => {
                        check_organization_arn("record.launchPermissions", a)?
                    }
                    LaunchPermission::OrganizationalUnitArn(a) => {
                        check_organizational_unit_arn("record.launchPermissions", a)?
                    }
                    LaunchPermission::Group(g) if g == "all" => {}
                    LaunchPermission::Group(g) => {
                        return Err(FerryError::invalid_input(format!(
                            "record.launchPermissions: group {g:?} is not \"all\""
                        )))
                    }
                }
            }
            for p in &r.snapshot_permissions {
                rules::check_resource_id("record.snapshotPermissions", "snap", &p.snapshot_id)?;
                check_account_id("record.snapshotPermissions", &p.user_id)?;
            }
            for g in &r.grants {
                check_customer_key_ref("record.grants.keyArn", &g.key_arn)?;
                check_account_id("record.grants.granteeAccountId", &g.grantee_account_id)?;
                if g.grant_id.is_empty() {
                    return Err(FerryError::invalid_input("record.grants: empty grantId"));
                }
            }
            return Ok(RevokeRequest::Record(raw.record));
        }
        let raw: RawRevokeByImage = serde_json::from_value(value.clone())
            .map_err(|e| FerryError::invalid_input(format!("request: {e}")))?;
        rules::check_resource_id("imageId", "ami", &raw.image_id)?;
        let targets = ShareTargets {
            account_ids: checked_list("accountIds", Some(raw.account_ids), check_account_id)?,
            organization_arns: checked_list(
                "organizationArns",
                raw.organization_arns,
                check_organization_arn,
            )?,
            organizational_unit_arns: checked_list(
                "organizationalUnitArns",
                raw.organizational_unit_arns,
                check_organizational_unit_arn,
            )?,
            public: false,
        };
        if targets.is_empty() {
            return Err(FerryError::invalid_input(
                "give at least one target: accountIds, organizationArns or organizationalUnitArns",
            ));
        }
        Ok(RevokeRequest::Image {
            image_id: raw.image_id,
            targets,
        })
    }
}

/// revoke-share's output: what was removed (already-absent entries are not listed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokeResult {
    pub removed: ShareRecord,
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const IMAGE: &str = "ami-0123456789abcdef0";
    const B: &str = "222222222222";
    const C: &str = "333333333333";
    const ORG: &str = "arn:aws:organizations::111111111111:organization/o-abcdefghij";
    const OU: &str = "arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-cdefgh34";
    const CMK: &str = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const EBS: &str = "arn:aws:kms:us-east-1:111111111111:key/99999999-12ab-34cd-56ef-1234567890ab";

    fn ctx() -> ExecutionContext {
        ExecutionContext {
            execution_arn:
                "arn:aws:states:us-east-1:111111111111:execution:ferry-share-image:run-1".into(),
            execution_name: "run-1".into(),
            ..Default::default()
        }
    }

    fn refused(v: serde_json::Value) -> FerryError {
        let e = ShareRequest::parse(&v).unwrap_err();
        assert_eq!(e.name, ErrorName::InvalidInput, "{v}: {e}");
        e
    }

    #[test]
    fn share_request_defaults() {
        let r = ShareRequest::parse(&json!({"imageId": IMAGE, "accountIds": [B, B]})).unwrap();
        assert_eq!(r.targets.account_ids, [B]);
        assert!(r.share_snapshots && !r.targets.public);
        assert_eq!(r.kms_access, KmsAccess::Grant);
        assert_eq!(r.reencrypt_with, None);
        let r = ShareRequest::parse(
            &json!({"imageId": IMAGE, "public": true, "shareSnapshots": false,
            "kmsAccess": "none", "organizationArns": [ORG], "organizationalUnitArns": [OU],
            "reencryptWith": "alias/ferry-share"}),
        )
        .unwrap();
        assert!(r.targets.public && !r.share_snapshots);
        assert_eq!(r.kms_access, KmsAccess::None);
    }

    #[test]
    fn share_request_refusals() {
        refused(json!({"imageId": IMAGE}));
        refused(json!({"imageId": IMAGE, "accountIds": []}));
        refused(json!({"imageId": IMAGE, "accountIds": [B], "extra": 1}));
        refused(json!({"imageId": IMAGE, "accountIds": B}));
        refused(json!({"imageId": IMAGE, "accountIds": ["12345"]}));
        refused(json!({"imageId": "ami-xyz", "accountIds": [B]}));
        refused(json!({"imageId": IMAGE, "public": "yes"}));
        refused(json!({"imageId": IMAGE, "accountIds": [B], "kmsAccess": "policy"}));
        refused(json!({"imageId": IMAGE, "organizationArns": ["o-abcdefghij"]}));
        refused(json!({"imageId": IMAGE, "organizationalUnitArns": [ORG]}));
        refused(json!({"imageId": IMAGE, "accountIds": [B], "reencryptWith": "alias/aws/ebs"}));
        refused(json!({"imageId": IMAGE, "accountIds": [B], "reencryptWith": "not a key"}));
        refused(json!([IMAGE]));
    }

    #[test]
    fn key_refs() {
        for ok in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            CMK,
            "alias/ferry",
            "arn:aws:kms:us-east-1:111111111111:alias/ferry",
        ] {
            check_customer_key_ref("k", ok).unwrap();
        }
        for bad in [
            "",
            "alias/aws/ebs",
            "arn:aws:kms:us-east-1:111111111111:alias/aws/ebs",
            "arn:aws:s3:::bucket",
            "key/123",
        ] {
            assert!(check_customer_key_ref("k", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn organization_ids() {
        assert_eq!(organization_id_of(ORG).as_deref(), Some("o-abcdefghij"));
        assert_eq!(organization_id_of(OU).as_deref(), Some("o-abcdefghij"));
    }

    fn image(snapshots: Vec<SnapshotFacts>) -> ImageFacts {
        ImageFacts {
            image_id: IMAGE.into(),
            name: "web".into(),
            owner_id: "111111111111".into(),
            state: "available".into(),
            snapshots,
            ..Default::default()
        }
    }

    fn snap(id: &str, key: Option<&str>) -> SnapshotFacts {
        SnapshotFacts {
            snapshot_id: id.into(),
            encrypted: key.is_some(),
            kms_key_id: key.map(str::to_string),
            create_volume_user_ids: vec![],
        }
    }

    fn cmk() -> KeyFacts {
        KeyFacts {
            key_id: CMK.into(),
            key_arn: CMK.into(),
            key_manager: KeyManager::Customer,
            key_state: Some("Enabled".into()),
        }
    }
    fn ebs() -> KeyFacts {
        KeyFacts {
            key_id: EBS.into(),
            key_arn: EBS.into(),
            key_manager: KeyManager::Aws,
            key_state: Some("Enabled".into()),
        }
    }

    fn facts(image: ImageFacts, keys: Vec<KeyFacts>) -> ShareFacts {
        ShareFacts {
            region: "us-east-1".into(),
            account_id: "111111111111".into(),
            image,
            keys,
            block_public_access: None,
            reencrypt_key: None,
        }
    }

    fn plan(request: serde_json::Value, facts: &ShareFacts) -> Result<SharePlan, FerryError> {
        build_share_plan(&ctx(), &ShareRequest::parse(&request).unwrap(), facts)
    }

    #[test]
    fn image_not_found_or_not_owned() {
        assert_eq!(
            check_image_owned(IMAGE, None, "1").unwrap_err().name,
            ErrorName::ImageNotFound
        );
        assert_eq!(
            check_image_owned(IMAGE, Some("2"), "1").unwrap_err().name,
            ErrorName::ImageNotFound
        );
        check_image_owned(IMAGE, Some("1"), "1").unwrap();
    }

    #[test]
    fn refuses_product_codes_for_copies_and_public() {
        let mut img = image(vec![snap("snap-0123456789abcdef0", None)]);
        img.product_codes = vec!["abcdefg".into()];
        let f = facts(img, vec![]);
        let e = plan(json!({"imageId": IMAGE, "accountIds": [B]}), &f).unwrap_err();
        assert_eq!(e.name, ErrorName::ProductCodes);
        plan(
            json!({"imageId": IMAGE, "accountIds": [B], "shareSnapshots": false}),
            &f,
        )
        .unwrap();
    }

    #[test]
    fn refuses_public_encrypted() {
        let f = facts(
            image(vec![snap("snap-0123456789abcdef0", Some(CMK))]),
            vec![cmk()],
        );
        let e = plan(json!({"imageId": IMAGE, "public": true}), &f).unwrap_err();
        assert_eq!(e.name, ErrorName::EncryptedImageCannotBePublic);
    }

    #[test]
    fn refuses_public_while_blocked() {
        let mut f = facts(image(vec![snap("snap-0123456789abcdef0", None)]), vec![]);
        f.block_public_access = Some("block-new-sharing".into());
        let e = plan(json!({"imageId": IMAGE, "public": true}), &f).unwrap_err();
        assert_eq!(e.name, ErrorName::ImageBlockPublicAccess);
        f.block_public_access = Some("unblocked".into());
        let p = plan(json!({"imageId": IMAGE, "public": true}), &f).unwrap();
        assert_eq!(
            p.launch_permissions,
            [LaunchPermission::Group("all".into())]
        );
        check_block_public_access(false, Some("block-new-sharing")).unwrap();
    }

    #[test]
    fn refuses_aws_managed_key_without_reencrypt() {
        let f = facts(
            image(vec![snap("snap-0123456789abcdef0", Some(EBS))]),
            vec![ebs()],
        );
        let e = plan(json!({"imageId": IMAGE, "accountIds": [B]}), &f).unwrap_err();
        assert_eq!(e.name, ErrorName::AwsManagedKey);
    }

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
        assert_eq!(r.tags[names::TAG_WORKFLOW], WORKFLOW_SHARE_IMAGE);
        assert!(!r.tags.contains_key(names::TAG_SOURCE_INSTANCE));
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
    fn grant_operations_are_exactly_what_targets_need() {
        assert_eq!(
            SHARE_GRANT_OPERATIONS,
            [
                "Decrypt",
                "DescribeKey",
                "CreateGrant",
                "ReEncryptFrom",
                "ReEncryptTo",
                "GenerateDataKeyWithoutPlaintext"
            ]
        );
        // No Encrypt, no RetireGrant, no GenerateDataKey with plaintext.
        for op in ["Encrypt", "RetireGrant", "GenerateDataKey"] {
            assert!(!SHARE_GRANT_OPERATIONS.contains(&op));
        }
    }

    #[test]
    fn grant_names_are_deterministic_valid_and_recognisable() {
        let arn = &ctx().execution_arn;
        let n = share_grant_name(IMAGE, B, arn);
        assert_eq!(n, share_grant_name(IMAGE, B, arn));
        assert_ne!(n, share_grant_name(IMAGE, B, "arn:other"));
        assert_ne!(n, share_grant_name(IMAGE, C, arn));
        assert!(n.starts_with("ferry-share-ami-0123456789abcdef0-222222222222-"));
        assert!(
            n.len() <= 256
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b":/_-".contains(&b))
        );
        assert!(is_share_grant(
            Some(&n),
            Some("arn:aws:iam::222222222222:root"),
            IMAGE,
            B
        ));
        assert!(!is_share_grant(
            Some(&n),
            Some("arn:aws:iam::222222222222:root"),
            IMAGE,
            C
        ));
        assert!(!is_share_grant(
            Some(&n),
            Some("arn:aws:iam::222222222222:role/x"),
            IMAGE,
            B
        ));
        assert!(!is_share_grant(
            Some("other"),
            Some("arn:aws:iam::222222222222:root"),
            IMAGE,
            B
        ));
        assert!(!is_share_grant(None, None, IMAGE, B));
    }

    #[test]
    fn copy_names_follow_ami_rules() {
        let n = reencrypted_copy_name(IMAGE, &ctx());
        assert!((3..=128).contains(&n.len()));
        assert!(n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "()[]./-'@_".contains(c)));
    }

    fn record() -> ShareRecord {
        ShareRecord {
            image_id: IMAGE.into(),
            region: "us-east-1".into(),
            owner_account_id: "111111111111".into(),
            source_image_id: None,
            launch_permissions: vec![
                LaunchPermission::UserId(B.into()),
                LaunchPermission::UserId(C.into()),
                LaunchPermission::OrganizationArn(ORG.into()),
            ],
            snapshot_permissions: vec![
                SnapshotPermission {
                    snapshot_id: "snap-0123456789abcdef0".into(),
                    user_id: B.into(),
                },
                SnapshotPermission {
                    snapshot_id: "snap-0123456789abcdef0".into(),
                    user_id: C.into(),
                },
            ],
            grants: vec![
                GrantRecord {
                    key_arn: CMK.into(),
                    grant_id: "g-b".into(),
                    grantee_account_id: B.into(),
                    name: "n-b".into(),
                },
                GrantRecord {
                    key_arn: CMK.into(),
                    grant_id: "g-c".into(),
                    grantee_account_id: C.into(),
                    name: "n-c".into(),
                },
            ],
            key_policy_needed: None,
        }
    }

    #[test]
    fn share_record_for_account_keeps_only_that_account() {
        let r = record().for_account(B);
        assert_eq!(r.launch_permissions, [LaunchPermission::UserId(B.into())]);
        assert_eq!(r.snapshot_permissions.len(), 1);
        assert_eq!(r.snapshot_permissions[0].user_id, B);
        assert_eq!(r.grants.len(), 1);
        assert_eq!(r.grants[0].grant_id, "g-b");
        assert_eq!(r.image_id, IMAGE);
        assert!(record().for_account("444444444444").is_empty());
    }

    #[test]
    fn share_record_json_shape() {
        let v = serde_json::to_value(record()).unwrap();
        assert_eq!(v["launchPermissions"][0], json!({"userId": B}));
        assert_eq!(v["launchPermissions"][2], json!({"organizationArn": ORG}));
        assert_eq!(
            v["snapshotPermissions"][0],
            json!({"snapshotId": "snap-0123456789abcdef0", "userId": B})
        );
        assert_eq!(v["grants"][0]["granteeAccountId"], B);
        assert!(v.get("sourceImageId").is_none());
        let back: ShareRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, record());
    }

    #[test]
    fn revoke_requests() {
        let r = RevokeRequest::parse(&json!({"imageId": IMAGE, "accountIds": [B]})).unwrap();
        assert!(
            matches!(r, RevokeRequest::Image { ref targets, .. } if targets.account_ids == [B])
        );
        let r = RevokeRequest::parse(&json!({"record": record()})).unwrap();
        assert_eq!(r, RevokeRequest::Record(record()));
        for bad in [
            json!({"imageId": IMAGE, "accountIds": []}),
            json!({"imageId": IMAGE}),
            json!({"imageId": IMAGE, "accountIds": [B], "public": true}),
            json!({"record": record(), "imageId": IMAGE}),
            json!({"record": {"imageId": IMAGE}}),
            json!("ami-0123456789abcdef0"),
        ] {
            let e = RevokeRequest::parse(&bad).unwrap_err();
            assert_eq!(e.name, ErrorName::InvalidInput, "{bad}");
        }
        let mut bad = serde_json::to_value(record()).unwrap();
        bad["launchPermissions"][0] = json!({"userId": "x"});
        assert!(RevokeRequest::parse(&json!({"record": bad})).is_err());
    }
}
