//! The copy-image request: the shared source, the target account, its role and key.

use crate::errors::FerryError;
use crate::rules::ids::{
    check_account_id, check_external_id, check_image_name, check_region, check_resource_id,
    check_role_arn_in_account,
};
use crate::rules::kms::check_target_kms_key;
use crate::share::dry_run::{parse_given_share, GivenShare};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    #[cfg_attr(feature = "schema", schemars(schema_with = "share_output_schema"))]
    share: Option<Value>,
    #[serde(default)]
    dry_run: Option<bool>,
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
    /// The share-image output record the revoke is taken from, if any; in a dry run also
    /// share-image's dry-run output (a share only planned: distribute-image's dry run).
    pub share: Option<Value>,
    /// Preflight only: end with the plan ([`crate::dry_run`]), change nothing.
    #[serde(default)]
    pub dry_run: bool,
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
            dry_run: raw.dry_run.unwrap_or(false),
        };
        request.validate()?;
        Ok(request)
    }

    fn validate(&self) -> Result<(), FerryError> {
        check_resource_id("sourceImageId", "ami", &self.source_image_id)?;
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
            let given = parse_given_share(share)?;
            if matches!(given, GivenShare::Planned(_)) && !self.dry_run {
                return Err(FerryError::invalid_input(
                    "share: a share-image dry run's output shares nothing: only a dry run (dryRun: true) takes it",
                ));
            }
            let (image, region) = given.image_and_region();
            if image != self.source_image_id || region != self.source_region {
                return Err(FerryError::invalid_input(format!(
                    "share: the record is for {image} in {region}, not {} in {}",
                    self.source_image_id, self.source_region
                )));
            }
        }
        Ok(())
    }
}

/// `share`: share-image's output (or its dry-run output), an object the parser reads.
#[cfg(feature = "schema")]
fn share_output_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": ["object", "null"],
        "description": "share-image's output (its `record` says exactly what was shared with this target and is what the revoke takes back)"
    })
}

/// The JSON Schema of copy-image's input, from the struct the Preflight parses into.
#[cfg(feature = "schema")]
pub fn input_schema() -> schemars::Schema {
    schemars::schema_for!(RawCopyRequest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::fixtures::*;
    use crate::errors::ErrorName;
    use serde_json::json;

    fn refused(v: Value) -> FerryError {
        let e = CopyRequest::parse(&v).unwrap_err();
        assert_eq!(e.name, ErrorName::InvalidInput, "{e}");
        e
    }

    #[test]
    fn defaults_are_applied() {
        let r = CopyRequest::parse(&minimal()).unwrap();
        assert!(r.copy_tags && r.revoke_after_copy);
        assert_eq!(r.target_region, "us-east-1");
        assert_eq!(r.name, None);
        assert_eq!(r.share, None);
        assert!(!r.dry_run);
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
    fn dry_run_is_a_strict_bool() {
        assert!(
            CopyRequest::parse(&with("dryRun", json!(true)))
                .unwrap()
                .dry_run
        );
        assert!(
            !CopyRequest::parse(&with("dryRun", json!(null)))
                .unwrap()
                .dry_run
        );
        refused(with("dryRun", json!("true")));
        refused(with("dryRun", json!(0)));
        let mut v = with("dryRun", json!(true));
        v["dry-run"] = json!(true);
        refused(v);
        let mut v = with("dryRun", json!(true));
        v["targetAccountId"] = json!("2222");
        refused(v);
    }

    /// distribute-image's dry run gives each copy share-image's dry-run output: only a dry
    /// run takes it, and it must be of the same image.
    #[test]
    fn a_planned_share_is_taken_only_by_a_dry_run() {
        let planned = json!({"dryRun": true, "workflow": "share-image", "warnings": [],
            "plan": {"imageId": "ami-0123456789abcdef0", "region": "us-east-1",
                     "ownerAccountId": "111122223333",
                     "targets": {"accountIds": [B], "organizationArns": [],
                                 "organizationalUnitArns": [], "public": false},
                     "reencrypt": null, "launchPermissions": [{"userId": B}],
                     "snapshotPermissions": [], "grants": [], "grantOperations": [],
                     "keyPolicyNeeded": null}});
        let mut v = with("share", planned.clone());
        v["dryRun"] = json!(true);
        CopyRequest::parse(&v).unwrap();
        let e = refused(with("share", planned.clone()));
        assert!(e.message.contains("dry run"), "{e}");
        let mut other = planned;
        other["plan"]["imageId"] = json!("ami-0fedcba9876543210");
        let mut v = with("share", other);
        v["dryRun"] = json!(true);
        refused(v);
    }
}
