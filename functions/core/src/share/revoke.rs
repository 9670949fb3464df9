//! revoke-share: its request (a share record, or an image and accounts) and its result.

use super::record::{LaunchPermission, ShareRecord};
use super::request::ShareTargets;
use crate::errors::FerryError;
use crate::rules::ids::{
    check_account_id, check_organization_arn, check_organizational_unit_arn, check_resource_id,
};
use crate::rules::kms::check_customer_key_ref;
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRevokeByImage {
    image_id: String,
    account_ids: Vec<String>,
    #[serde(default)]
    organization_arns: Option<Vec<String>>,
    #[serde(default)]
    organizational_unit_arns: Option<Vec<String>>,
    /// Where the image is (default: where revoke-share runs).
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRevokeByRecord {
    record: ShareRecord,
    #[serde(default)]
    dry_run: Option<bool>,
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
        /// The image's region, when not the function's own.
        region: Option<String>,
    },
}

/// A revoke-share request and its `dryRun` flag (default false): a dry run reads what
/// is present and reports what it would remove ([`super::dry_run::RevokeDryRunReport`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RevokeInput {
    pub request: RevokeRequest,
    pub dry_run: bool,
}

impl RevokeInput {
    /// [`RevokeRequest::parse`], with `"dryRun"` (a bool or null) allowed in either form.
    pub fn parse(value: &serde_json::Value) -> Result<RevokeInput, FerryError> {
        let dry_run = match value.get("dryRun") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(other) => {
                return Err(FerryError::invalid_input(format!(
                    "dryRun: must be true or false, not {other}"
                )))
            }
        };
        Ok(RevokeInput {
            request: RevokeRequest::parse(value)?,
            dry_run,
        })
    }
}

impl RevokeRequest {
    /// `{"record": <ShareRecord>}` (revoked in the record's region) or `{"imageId",
    /// "accountIds", "organizationArns"?, "organizationalUnitArns"?, "region"?}`, each
    /// with an optional `"dryRun"` ([`RevokeInput`] reads it); anything else is
    /// `Ferry.InvalidInput`.
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
            check_resource_id("record.imageId", "ami", &r.image_id)?;
            crate::rules::ids::check_region("record.region", &r.region)?;
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
                check_resource_id("record.snapshotPermissions", "snap", &p.snapshot_id)?;
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
        check_resource_id("imageId", "ami", &raw.image_id)?;
        if let Some(region) = &raw.region {
            crate::rules::ids::check_region("region", region)?;
        }
        let targets = ShareTargets::checked(
            Some(raw.account_ids),
            raw.organization_arns,
            raw.organizational_unit_arns,
            false,
        )?;
        if targets.is_empty() {
            return Err(FerryError::invalid_input(
                "give at least one target: accountIds, organizationArns or organizationalUnitArns",
            ));
        }
        Ok(RevokeRequest::Image {
            image_id: raw.image_id,
            targets,
            region: raw.region,
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

/// What revoke-share's function returns: a run's result, or a dry run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RevokeOutput {
    Planned(super::dry_run::RevokeDryRunReport),
    Revoked(RevokeResult),
}

impl RevokeOutput {
    /// The result of a run (`None` for a dry run).
    pub fn revoked(self) -> Option<RevokeResult> {
        match self {
            RevokeOutput::Revoked(r) => Some(r),
            RevokeOutput::Planned(_) => None,
        }
    }
    /// The report of a dry run (`None` for a run).
    pub fn planned(self) -> Option<super::dry_run::RevokeDryRunReport> {
        match self {
            RevokeOutput::Planned(r) => Some(r),
            RevokeOutput::Revoked(_) => None,
        }
    }
}

/// revoke-share's input takes one of two forms.
#[cfg(feature = "schema")]
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum RawRevoke {
    ByImage(RawRevokeByImage),
    ByRecord(RawRevokeByRecord),
}

/// The JSON Schema of revoke-share's input (by image and targets, or by share record),
/// from the structs the step parses into.
#[cfg(feature = "schema")]
pub fn input_schema() -> schemars::Schema {
    schemars::schema_for!(RawRevoke)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::ErrorName;
    use crate::share::fixtures::*;
    use serde_json::json;

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

    #[test]
    fn dry_run_in_either_form_is_a_strict_bool() {
        for (v, dry) in [
            (json!({"imageId": IMAGE, "accountIds": [B]}), false),
            (
                json!({"imageId": IMAGE, "accountIds": [B], "dryRun": true}),
                true,
            ),
            (
                json!({"imageId": IMAGE, "accountIds": [B], "dryRun": null}),
                false,
            ),
            (json!({"record": record(), "dryRun": true}), true),
            (json!({"record": record(), "dryRun": false}), false),
        ] {
            let input = RevokeInput::parse(&v).unwrap();
            assert_eq!(input.dry_run, dry, "{v}");
            assert_eq!(input.request, RevokeRequest::parse(&v).unwrap());
        }
        for bad in [
            json!({"imageId": IMAGE, "accountIds": [B], "dryRun": "yes"}),
            json!({"record": record(), "dryRun": 1}),
            json!({"record": record(), "dryRun": true, "dryrun": true}),
            json!({"imageId": IMAGE, "dryRun": true}),
        ] {
            let e = RevokeInput::parse(&bad).unwrap_err();
            assert_eq!(e.name, ErrorName::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn the_output_of_a_run_and_of_a_dry_run_read_back_as_what_they_are() {
        let run = serde_json::to_value(RevokeResult {
            removed: record(),
            warnings: vec![],
        })
        .unwrap();
        let back: RevokeOutput = serde_json::from_value(run).unwrap();
        assert!(back.revoked().is_some());
        let dry = serde_json::to_value(crate::share::dry_run::revoke_dry_run_report(
            record(),
            vec![],
        ))
        .unwrap();
        let back: RevokeOutput = serde_json::from_value(dry).unwrap();
        assert!(back.planned().is_some());
    }
}
