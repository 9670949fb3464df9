//! The `copy-image` workflow's pure side: the request, its refusals, the plan (names,
//! token, tags, the revoke payload) and what each step takes and returns.
//!
//! copy-image runs as the target account (STS AssumeRole with an ExternalId): it checks
//! that the target sees the shared source image and may copy it (rules 3, 7), copies it
//! re-encrypted under the target's own key (rule 6), waits, and asks the hub to revoke
//! what the share granted to that target.

use crate::errors::{ErrorName, FerryError};
use crate::io::CaughtError;
use crate::names::{self, ExecutionContext, TAG_EXECUTION, TAG_WORKFLOW};
use crate::rules;
use crate::share::ShareRecord;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const WORKFLOW_COPY_IMAGE: &str = "copy-image";
pub const TAG_SOURCE_ACCOUNT: &str = "ferry:source-account";
pub use crate::share::TAG_SOURCE_IMAGE;
pub const TAG_SOURCE_REGION: &str = "ferry:source-region";

/// Purpose string of the CopyImage ClientToken (`names::client_token`).
pub const COPY_TOKEN_PURPOSE: &str = "copy-image";

// ---------------------------------------------------------------------------------------
// Rules on the request
// ---------------------------------------------------------------------------------------

pub use crate::share::check_account_id;

/// A region name like `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-5`.
pub fn check_region(field: &str, region: &str) -> Result<(), FerryError> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && {
            let n = parts[parts.len() - 1];
            !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit())
        };
    if ok {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "{field}: {region:?} is not a region name like us-east-1"
        )))
    }
}

/// `arn:<partition>:iam::<account>:role/<path/>name`, and the role must belong to the
/// target account: ferry never assumes a role of one account to act in another.
pub fn check_role_arn_in_account(field: &str, arn: &str, account: &str) -> Result<(), FerryError> {
    let bad = |why: &str| Err(FerryError::invalid_input(format!("{field}: {arn:?} {why}")));
    let Some(rest) = arn.strip_prefix("arn:") else {
        return bad("is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)");
    };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    if parts.len() != 5 || !parts[0].starts_with("aws") || parts[1] != "iam" || !parts[2].is_empty()
    {
        return bad("is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)");
    }
    let Some(name) = parts[4].strip_prefix("role/") else {
        return bad("is not a role ARN (the resource must be role/<name>)");
    };
    let role_name = name.rsplit('/').next().unwrap_or_default();
    let name_ok = !role_name.is_empty()
        && role_name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c));
    if !name_ok {
        return bad("has an invalid role name");
    }
    if parts[3] != account {
        return bad(&format!(
            "is in account {}, not the target account {account}",
            parts[3]
        ));
    }
    Ok(())
}

/// STS ExternalId: 2-1224 characters of `[\w+=,.@:/-]`.
pub fn check_external_id(id: &str) -> Result<(), FerryError> {
    let ok = (2..=1224).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(FerryError::invalid_input(
            "externalId: must be 2-1224 characters of letters, digits and _+=,.@:/-",
        ))
    }
}

/// The key the copy is encrypted under (rule 6: `Encrypted=true` + `KmsKeyId`): a key
/// ARN or alias ARN of the target account in the target region, a key id (`mrk-` or a
/// UUID) or an `alias/` name (resolved in the target account). `alias/aws/ebs` is
/// refused: a copy under the AWS managed key could never be shared on.
pub fn check_target_kms_key(key: &str, account: &str, region: &str) -> Result<(), FerryError> {
    let bad = |why: String| Err(FerryError::invalid_input(format!("targetKmsKeyId: {why}")));
    if let Some(rest) = key.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if parts.len() != 5 || !parts[0].starts_with("aws") || parts[1] != "kms" {
            return bad(format!("{key:?} is not a KMS key or alias ARN"));
        }
        if parts[2] != region {
            return bad(format!(
                "{key:?} is in {}, but the copy is made in {region} (KMS keys are regional)",
                parts[2]
            ));
        }
        if parts[3] != account {
            return bad(format!(
                "{key:?} belongs to account {}, not the target {account}",
                parts[3]
            ));
        }
        let resource = parts[4];
        let ok = match resource.split_once('/') {
            Some(("key", id)) => is_key_id(id),
            Some(("alias", name)) => is_alias_name(name),
            _ => false,
        };
        if !ok {
            return bad(format!("{key:?} names no key/<id> or alias/<name>"));
        }
        if resource == "alias/aws/ebs" {
            return bad("the AWS managed key aws/ebs cannot protect a shareable copy".into());
        }
        return Ok(());
    }
    if let Some(name) = key.strip_prefix("alias/") {
        if name == "aws/ebs" {
            return bad("the AWS managed key aws/ebs cannot protect a shareable copy".into());
        }
        if is_alias_name(name) {
            return Ok(());
        }
    } else if is_key_id(key) {
        return Ok(());
    }
    bad(format!(
        "{key:?} is not a key ARN, alias ARN, key id or alias/ name"
    ))
}

fn is_key_id(id: &str) -> bool {
    let id = id.strip_prefix("mrk-").unwrap_or(id);
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn is_alias_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 250
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c))
}

/// AMI names: 3-128 characters of letters, digits and `( ) [ ] . / - ' @ _` (and spaces).
pub fn check_image_name(field: &str, name: &str) -> Result<(), FerryError> {
    let ok = (3..=128).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "()[]./-'@_ ".contains(c));
    if ok {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "{field}: {name:?} is not a valid AMI name (3-128 of letters, digits, ()[]./-'@_ and spaces)"
        )))
    }
}

/// Rule 3 (visibility): the target must see the source image (shared with it, its
/// organization or OU, or public) in the source region.
pub fn image_not_visible(image_id: &str, region: &str, account: &str) -> FerryError {
    FerryError::new(
        ErrorName::ImageNotFound,
        format!(
            "{image_id} does not exist in {region} or is not shared with account {account}; share it first (share-image)"
        ),
    )
}

/// Rule 7: an AMI with a billing/Marketplace product code cannot be copied by another
/// account (workaround: launch it and CreateImage from the instance).
pub fn check_no_product_codes(image_id: &str, product_codes: &[String]) -> Result<(), FerryError> {
    if product_codes.is_empty() {
        Ok(())
    } else {
        Err(FerryError::new(
            ErrorName::ProductCodes,
            format!(
                "{image_id} carries product codes ({}); AWS does not let another account copy it (launch it and CreateImage instead)",
                product_codes.join(", ")
            ),
        ))
    }
}

/// Only `available` images can be copied.
pub fn check_source_available(image_id: &str, state: &str) -> Result<(), FerryError> {
    match state {
        "available" => Ok(()),
        "pending" => Err(FerryError::new(
            ErrorName::ImageNotReady,
            format!("source image {image_id} is still pending"),
        )),
        other => Err(FerryError::new(
            ErrorName::ImageNotFound,
            format!("source image {image_id} is {other}; only available images can be copied"),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// The request
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCopyRequest {
    source_image_id: String,
    source_region: String,
    target_account_id: String,
    target_role_arn: String,
    external_id: String,
    target_kms_key_id: String,
    #[serde(default)]
    target_region: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    copy_tags: Option<bool>,
    #[serde(default)]
    revoke_after_copy: Option<bool>,
    #[serde(default)]
    share: Option<Value>,
}

/// A validated copy-image request with every default applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyRequest {
    pub source_image_id: String,
    pub source_region: String,
    pub target_account_id: String,
    pub target_role_arn: String,
    pub external_id: String,
    pub target_kms_key_id: String,
    /// Where the copy is made (CopyImage runs in the destination region, rule 6);
    /// default: the source region.
    pub target_region: String,
    /// The copy's AMI name; `None`: derived from the source and the execution.
    pub name: Option<String>,
    pub copy_tags: bool,
    pub revoke_after_copy: bool,
    /// The share-image output record the revoke is taken from, if any.
    pub share: Option<Value>,
}

impl CopyRequest {
    /// Parses and validates a request before any AWS call: unknown fields, wrong types,
    /// malformed ids, ARNs, regions and names are `Ferry.InvalidInput`.
    pub fn parse(value: &Value) -> Result<CopyRequest, FerryError> {
        if !value.is_object() {
            return Err(FerryError::invalid_input(
                "the request must be a JSON object (sourceImageId, sourceRegion, targetAccountId, targetRoleArn, externalId, targetKmsKeyId)",
            ));
        }
        let raw: RawCopyRequest = serde_json::from_value(value.clone())
            .map_err(|e| FerryError::invalid_input(format!("request: {e}")))?;
        let target_region = raw
            .target_region
            .unwrap_or_else(|| raw.source_region.clone());
        let request = CopyRequest {
            source_image_id: raw.source_image_id,
            source_region: raw.source_region,
            target_account_id: raw.target_account_id,
            target_role_arn: raw.target_role_arn,
            external_id: raw.external_id,
            target_kms_key_id: raw.target_kms_key_id,
            target_region,
            name: raw.name,
            copy_tags: raw.copy_tags.unwrap_or(true),
            revoke_after_copy: raw.revoke_after_copy.unwrap_or(true),
            share: raw.share,
        };
        request.validate()?;
        Ok(request)
    }

    fn validate(&self) -> Result<(), FerryError> {
        rules::check_resource_id("sourceImageId", "ami", &self.source_image_id)?;
        check_region("sourceRegion", &self.source_region)?;
        check_region("targetRegion", &self.target_region)?;
        check_account_id("targetAccountId", &self.target_account_id)?;
        check_role_arn_in_account(
            "targetRoleArn",
            &self.target_role_arn,
            &self.target_account_id,
        )?;
        check_external_id(&self.external_id)?;
        check_target_kms_key(
            &self.target_kms_key_id,
            &self.target_account_id,
            &self.target_region,
        )?;
        if let Some(name) = &self.name {
            check_image_name("name", name)?;
        }
        if let Some(share) = &self.share {
            let record = parse_share_record(share)?;
            if record.image_id != self.source_image_id || record.region != self.source_region {
                return Err(FerryError::invalid_input(format!(
                    "share: the record is for {} in {}, not {} in {}",
                    record.image_id, record.region, self.source_image_id, self.source_region
                )));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Names, token, tags
// ---------------------------------------------------------------------------------------

/// The copy's AMI name: the requested one, else `ferry-copy-<source>-<execution>-<hash>`
/// (deterministic per execution, within AMI name rules).
pub fn copy_image_name(request: &CopyRequest, execution: &ExecutionContext) -> String {
    if let Some(name) = &request.name {
        return name.clone();
    }
    let readable = names::readable_execution_name(execution, 60);
    let digest = names::client_token(&execution.execution_arn, "copy-image-name");
    format!(
        "ferry-copy-{}-{readable}-{}",
        request.source_image_id,
        &digest["ferry-".len().."ferry-".len() + 10]
    )
}

/// RoleSessionName for the target (2-64 of `[\w+=,.@-]`): shows in the target's
/// CloudTrail which ferry execution acted there.
pub fn session_name(execution: &ExecutionContext) -> String {
    let token = names::client_token(&execution.execution_arn, "session");
    format!(
        "ferry-copy-image-{}",
        &token["ferry-".len().."ferry-".len() + 16]
    )
}

/// Provenance tags on the copy and its snapshots; rollback finds the copy by them.
pub fn copy_tags(
    request: &CopyRequest,
    execution_arn: &str,
    source_account: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_WORKFLOW.to_string(), WORKFLOW_COPY_IMAGE.to_string()),
        (TAG_EXECUTION.to_string(), execution_arn.to_string()),
        (TAG_SOURCE_ACCOUNT.to_string(), source_account.to_string()),
        (
            TAG_SOURCE_IMAGE.to_string(),
            request.source_image_id.clone(),
        ),
        (TAG_SOURCE_REGION.to_string(), request.source_region.clone()),
    ])
}

// ---------------------------------------------------------------------------------------
// The revoke payload for RevokeShareFunction
// ---------------------------------------------------------------------------------------

/// The share record copy-image was given: share-image's output (`{"record": ...,
/// "warnings": [...]}`) or the record itself.
pub fn parse_share_record(value: &Value) -> Result<ShareRecord, FerryError> {
    let record = match value.get("record") {
        Some(inner) => inner,
        None => value,
    };
    serde_json::from_value(record.clone())
        .map_err(|e| FerryError::invalid_input(format!("share: not a share-image record: {e}")))
}

/// What RevokeShareFunction is invoked with: what the share granted to the target only
/// (`ShareRecord::for_account`) when copy-image was given the record, else the image and
/// the target account (revoke-share then removes what ferry granted that account).
pub fn revoke_payload(request: &CopyRequest) -> Result<Value, FerryError> {
    match &request.share {
        Some(value) => {
            let record = parse_share_record(value)?.for_account(&request.target_account_id);
            Ok(serde_json::json!({ "record": record }))
        }
        None => Ok(serde_json::json!({
            "imageId": request.source_image_id,
            "accountIds": [request.target_account_id],
        })),
    }
}

// ---------------------------------------------------------------------------------------
// Plan and step I/O
// ---------------------------------------------------------------------------------------

/// Everything later steps need, decided once by the copy preflight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyPlan {
    pub workflow: String,
    pub execution: ExecutionContext,
    pub request: CopyRequest,
    /// The account that owns the source image (as the target sees it).
    pub source_account_id: String,
    pub copy_name: String,
    pub description: String,
    pub client_token: String,
    pub session_name: String,
    /// On the copy and its snapshots (TagSpecifications of CopyImage).
    pub tags: BTreeMap<String, String>,
    pub revoke_after_copy: bool,
    /// RevokeShareFunction's input (the Revoke state passes it through).
    pub revoke: Value,
}

/// The plan from a validated request and what the target saw of the source.
pub fn plan(
    request: CopyRequest,
    execution: ExecutionContext,
    source_account_id: &str,
) -> Result<CopyPlan, FerryError> {
    Ok(CopyPlan {
        workflow: WORKFLOW_COPY_IMAGE.to_string(),
        copy_name: copy_image_name(&request, &execution),
        description: format!(
            "Copy of {} ({}, account {source_account_id}) by ferry {}",
            request.source_image_id, request.source_region, execution.execution_name
        ),
        client_token: names::client_token(&execution.execution_arn, COPY_TOKEN_PURPOSE),
        session_name: session_name(&execution),
        tags: copy_tags(&request, &execution.execution_arn, source_account_id),
        revoke_after_copy: request.revoke_after_copy,
        revoke: revoke_payload(&request)?,
        source_account_id: source_account_id.to_string(),
        execution,
        request,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyPreflightInput {
    pub request: Value,
    pub context: ExecutionContext,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyPlanInput {
    pub plan: CopyPlan,
}

/// The copy in the target account, as copy-image, wait-copy and the output report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CopyRef {
    pub image_id: String,
    pub name: String,
    pub state: String,
    #[serde(default)]
    pub snapshot_ids: Vec<String>,
    /// The KMS key of the copy's snapshots (the target's key, rule 6).
    #[serde(default)]
    pub kms_key_ids: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyImageInput {
    pub plan: CopyPlan,
    pub copy: CopyRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyRollbackInput {
    pub plan: CopyPlan,
    #[serde(default)]
    pub copy: Option<CopyRef>,
    #[serde(default)]
    pub error: Option<CaughtError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyRollbackReport {
    pub deregistered: Vec<String>,
    pub deleted_snapshots: Vec<String>,
    pub original_error: Option<CaughtError>,
}

/// Rule 15 for a copy: what one poll of the copy means (`available` also needs the
/// snapshots to carry the key asked for).
pub fn copy_kms_matches(requested: &str, snapshot_keys: &[String]) -> bool {
    // The request may name the key by id, alias or ARN; EC2 reports the key ARN.
    !snapshot_keys.is_empty()
        && snapshot_keys.iter().all(|k| {
            k == requested
                || (!requested.starts_with("arn:")
                    && !requested.starts_with("alias/")
                    && k.ends_with(&format!("key/{requested}")))
                || requested.starts_with("alias/")
                || requested.contains(":alias/")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const B: &str = "222233334444";
    const KEY_B: &str =
        "arn:aws:kms:us-east-1:222233334444:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn minimal() -> Value {
        json!({
            "sourceImageId": "ami-0123456789abcdef0",
            "sourceRegion": "us-east-1",
            "targetAccountId": B,
            "targetRoleArn": "arn:aws:iam::222233334444:role/ferry/ferry-target",
            "externalId": "ferry-6c1d0a",
            "targetKmsKeyId": KEY_B,
        })
    }

    fn ctx(name: &str) -> ExecutionContext {
        ExecutionContext {
            execution_arn: format!(
                "arn:aws:states:us-east-1:111122223333:execution:ferry-copy-image:{name}"
            ),
            execution_name: name.to_string(),
            ..Default::default()
        }
    }

    fn refused(v: Value) -> FerryError {
        let e = CopyRequest::parse(&v).unwrap_err();
        assert_eq!(e.name, ErrorName::InvalidInput, "{e}");
        e
    }

    fn with(field: &str, value: Value) -> Value {
        let mut v = minimal();
        v[field] = value;
        v
    }

    #[test]
    fn defaults_are_applied() {
        let r = CopyRequest::parse(&minimal()).unwrap();
        assert!(r.copy_tags && r.revoke_after_copy);
        assert_eq!(r.target_region, "us-east-1");
        assert_eq!(r.name, None);
        assert_eq!(r.share, None);
        let r = CopyRequest::parse(&with("name", Value::Null)).unwrap();
        assert_eq!(r.name, None);
        let mut v = minimal();
        v["copyTags"] = json!(false);
        v["revokeAfterCopy"] = json!(false);
        v["name"] = json!("web (2026-11) [golden]");
        let r = CopyRequest::parse(&v).unwrap();
        assert!(!r.copy_tags && !r.revoke_after_copy);
        assert_eq!(r.name.as_deref(), Some("web (2026-11) [golden]"));
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused() {
        assert!(refused(with("targetAz", json!("x")))
            .message
            .contains("targetAz"));
        refused(with("copyTags", json!("yes")));
        refused(with("share", json!("rec-1")));
        refused(json!(["ami-0123456789abcdef0"]));
        let mut v = minimal();
        v.as_object_mut().unwrap().remove("externalId");
        assert!(refused(v).message.contains("externalId"));
    }

    #[test]
    fn account_ids_must_have_12_digits() {
        for bad in ["22223333444", "2222333344445", "22223333444a", ""] {
            refused(with("targetAccountId", json!(bad)));
        }
        assert!(check_account_id("x", "000000000000").is_ok());
    }

    #[test]
    fn the_role_must_be_a_role_of_the_target_account() {
        let e = refused(with(
            "targetRoleArn",
            json!("arn:aws:iam::999988887777:role/ferry/ferry-target"),
        ));
        assert!(e.message.contains("999988887777"), "{e}");
        for bad in [
            "arn:aws:iam::222233334444:user/ferry",
            "arn:aws:sts::222233334444:assumed-role/ferry/x",
            "ferry-target",
            "arn:aws:iam::222233334444:role/",
            "arn:aws:iam:us-east-1:222233334444:role/x",
        ] {
            refused(with("targetRoleArn", json!(bad)));
        }
        assert!(check_role_arn_in_account(
            "r",
            "arn:aws-us-gov:iam::222233334444:role/OrganizationAccountAccessRole",
            B
        )
        .is_ok());
    }

    #[test]
    fn ids_regions_and_names_are_checked() {
        refused(with("sourceImageId", json!("i-0123456789abcdef0")));
        refused(with("sourceImageId", json!("ami-XYZ")));
        for bad in ["us-east", "US-EAST-1", "useast1", "us-east-1a", "u-east-1"] {
            refused(with("sourceRegion", json!(bad)));
        }
        for ok in [
            "us-east-1",
            "us-gov-west-1",
            "ap-southeast-5",
            "eu-central-2",
        ] {
            assert!(check_region("r", ok).is_ok(), "{ok}");
        }
        refused(with("name", json!("ab")));
        refused(with("name", json!("web#1")));
        refused(with("externalId", json!("x")));
        refused(with("externalId", json!("has space")));
    }

    #[test]
    fn the_target_key_must_be_the_targets_in_the_target_region() {
        refused(with(
            "targetKmsKeyId",
            json!("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        ));
        let e = refused(with(
            "targetKmsKeyId",
            json!("arn:aws:kms:eu-west-1:222233334444:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        ));
        assert!(e.message.contains("regional"), "{e}");
        refused(with("targetKmsKeyId", json!("alias/aws/ebs")));
        refused(with(
            "targetKmsKeyId",
            json!("arn:aws:kms:us-east-1:222233334444:alias/aws/ebs"),
        ));
        refused(with("targetKmsKeyId", json!("not a key")));
        for ok in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "alias/ferry-copies",
            "arn:aws:kms:us-east-1:222233334444:alias/ferry-copies",
        ] {
            assert!(
                CopyRequest::parse(&with("targetKmsKeyId", json!(ok))).is_ok(),
                "{ok}"
            );
        }
        // targetRegion moves where the key must be.
        let mut v = with(
            "targetKmsKeyId",
            json!("arn:aws:kms:eu-west-1:222233334444:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        );
        v["targetRegion"] = json!("eu-west-1");
        assert_eq!(CopyRequest::parse(&v).unwrap().target_region, "eu-west-1");
    }

    #[test]
    fn product_codes_and_visibility() {
        assert!(check_no_product_codes("ami-1", &[]).is_ok());
        let e = check_no_product_codes("ami-1", &["abc123".into()]).unwrap_err();
        assert_eq!(e.name, ErrorName::ProductCodes);
        assert_eq!(
            image_not_visible("ami-1", "us-east-1", B).name,
            ErrorName::ImageNotFound
        );
        assert!(check_source_available("ami-1", "available").is_ok());
        assert_eq!(
            check_source_available("ami-1", "pending").unwrap_err().name,
            ErrorName::ImageNotReady
        );
        assert_eq!(
            check_source_available("ami-1", "deregistered")
                .unwrap_err()
                .name,
            ErrorName::ImageNotFound
        );
    }

    #[test]
    fn names_tokens_and_tags_derive_from_the_execution() {
        let r = CopyRequest::parse(&minimal()).unwrap();
        let p1 = plan(r.clone(), ctx("copy-1"), "111122223333").unwrap();
        let p1b = plan(r.clone(), ctx("copy-1"), "111122223333").unwrap();
        let p2 = plan(r.clone(), ctx("copy-2"), "111122223333").unwrap();
        assert_eq!(p1.copy_name, p1b.copy_name);
        assert_eq!(p1.client_token, p1b.client_token);
        assert_ne!(p1.copy_name, p2.copy_name);
        assert_ne!(p1.client_token, p2.client_token);
        assert!(p1.client_token.len() <= 64 && p1.client_token.is_ascii());
        assert_eq!(
            p1.client_token,
            names::client_token(&ctx("copy-1").execution_arn, COPY_TOKEN_PURPOSE)
        );
        check_image_name("copy", &p1.copy_name).unwrap();
        assert!(p1
            .copy_name
            .starts_with("ferry-copy-ami-0123456789abcdef0-copy-1-"));
        let long = plan(r.clone(), ctx(&"x".repeat(80)), "111122223333").unwrap();
        check_image_name("copy", &long.copy_name).unwrap();
        // session names: 2-64 of [\w+=,.@-]
        assert!((2..=64).contains(&p1.session_name.len()));
        assert_ne!(p1.session_name, p2.session_name);
        assert_eq!(p1.tags[TAG_WORKFLOW], "copy-image");
        assert_eq!(p1.tags[TAG_EXECUTION], ctx("copy-1").execution_arn);
        assert_eq!(p1.tags[TAG_SOURCE_ACCOUNT], "111122223333");
        assert_eq!(p1.tags[TAG_SOURCE_IMAGE], "ami-0123456789abcdef0");
        assert_eq!(p1.tags[TAG_SOURCE_REGION], "us-east-1");
        // a given name is used as is
        let mut v = minimal();
        v["name"] = json!("golden-web");
        let named = plan(CopyRequest::parse(&v).unwrap(), ctx("copy-1"), "1").unwrap();
        assert_eq!(named.copy_name, "golden-web");
    }

    #[test]
    fn revoke_without_a_record_names_image_and_target() {
        let r = CopyRequest::parse(&minimal()).unwrap();
        assert_eq!(
            revoke_payload(&r).unwrap(),
            json!({"imageId": "ami-0123456789abcdef0", "accountIds": [B]})
        );
    }

    fn record() -> Value {
        json!({
            "imageId": "ami-0123456789abcdef0",
            "region": "us-east-1",
            "ownerAccountId": "111122223333",
            "launchPermissions": [{"userId": B}, {"userId": "555566667777"},
                                  {"organizationArn": "arn:aws:organizations::111122223333:organization/o-abcdefghij"}],
            "snapshotPermissions": [{"snapshotId": "snap-0123456789abcdef0", "userId": B},
                                    {"snapshotId": "snap-0123456789abcdef0", "userId": "555566667777"}],
            "grants": [
                {"keyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                 "grantId": "g1", "granteeAccountId": B, "name": "ferry-share-1"},
                {"keyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                 "grantId": "g2", "granteeAccountId": "555566667777", "name": "ferry-share-2"}
            ]
        })
    }

    #[test]
    fn revoke_with_a_record_keeps_only_the_targets_part() {
        for share in [record(), json!({"record": record(), "warnings": []})] {
            let r = CopyRequest::parse(&with("share", share)).unwrap();
            let payload = revoke_payload(&r).unwrap();
            let f = &payload["record"];
            assert_eq!(f["imageId"], "ami-0123456789abcdef0");
            assert_eq!(f["ownerAccountId"], "111122223333");
            assert_eq!(f["launchPermissions"], json!([{"userId": B}]));
            assert_eq!(
                f["snapshotPermissions"],
                json!([{"snapshotId": "snap-0123456789abcdef0", "userId": B}])
            );
            assert_eq!(f["grants"].as_array().unwrap().len(), 1);
            assert_eq!(f["grants"][0]["grantId"], "g1");
            // what revoke-share accepts
            crate::share::RevokeRequest::parse(&payload).unwrap();
        }
    }

    #[test]
    fn a_record_for_another_image_or_garbage_is_refused() {
        let mut other = record();
        other["imageId"] = json!("ami-0fedcba9876543210");
        refused(with("share", other));
        let mut other = record();
        other["region"] = json!("eu-west-1");
        refused(with("share", other));
        refused(with("share", json!({"imageId": "ami-0123456789abcdef0"})));
    }

    #[test]
    fn copy_keys_match_the_request() {
        assert!(copy_kms_matches(KEY_B, &[KEY_B.to_string()]));
        assert!(!copy_kms_matches(
            KEY_B,
            &["arn:aws:kms:us-east-1:222233334444:key/other".into()]
        ));
        assert!(!copy_kms_matches(KEY_B, &[]));
        assert!(copy_kms_matches(
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            &[KEY_B.to_string()]
        ));
    }
}
