//! revoke-share: its request (a share record, or an image and accounts) and its result.

use super::record::{LaunchPermission, ShareRecord};
use super::request::ShareTargets;
use crate::errors::FerryError;
use crate::rules::ids::{
    check_account_id, check_organization_arn, check_organizational_unit_arn, check_resource_id,
};
use crate::rules::kms::check_customer_key_ref;
use serde::{Deserialize, Serialize};

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
        /// The image's region, when not the function's own.
        region: Option<String>,
    },
}

impl RevokeRequest {
    /// `{"record": <ShareRecord>}` (revoked in the record's region) or `{"imageId",
    /// "accountIds", "organizationArns"?, "organizationalUnitArns"?, "region"?}`; anything
    /// else is `Ferry.InvalidInput`.
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
}
