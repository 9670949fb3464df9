//! The share-image request: the image, who to share it with, and how.

use super::record::LaunchPermission;
use crate::errors::FerryError;
use crate::rules::ids::{
    check_account_id, check_organization_arn, check_organizational_unit_arn, check_resource_id,
};
use crate::rules::kms::check_customer_key_ref;
use serde::{Deserialize, Serialize};

/// How target accounts get use of the image's customer-managed keys.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KmsAccess {
    /// One KMS grant per key and target account.
    #[default]
    Grant,
    /// No KMS call: the key policy already lets the targets use the key.
    None,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    #[serde(default)]
    dry_run: Option<bool>,
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
    /// Targets from a request's lists, each entry checked (`Ferry.InvalidInput` names
    /// the field) and repeated entries dropped.
    pub fn checked(
        account_ids: Option<Vec<String>>,
        organization_arns: Option<Vec<String>>,
        organizational_unit_arns: Option<Vec<String>>,
        public: bool,
    ) -> Result<ShareTargets, FerryError> {
        Ok(ShareTargets {
            account_ids: checked_list("accountIds", account_ids, check_account_id)?,
            organization_arns: checked_list(
                "organizationArns",
                organization_arns,
                check_organization_arn,
            )?,
            organizational_unit_arns: checked_list(
                "organizationalUnitArns",
                organizational_unit_arns,
                check_organizational_unit_arn,
            )?,
            public,
        })
    }

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
    /// Preflight only: end with the plan ([`crate::dry_run`]), change nothing.
    #[serde(default)]
    pub dry_run: bool,
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
        check_resource_id("imageId", "ami", &raw.image_id)?;
        let targets = ShareTargets::checked(
            raw.account_ids,
            raw.organization_arns,
            raw.organizational_unit_arns,
            raw.public.unwrap_or(false),
        )?;
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
            dry_run: raw.dry_run.unwrap_or(false),
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

/// The JSON Schema of share-image's input, from the struct the Preflight parses into.
#[cfg(feature = "schema")]
pub fn input_schema() -> schemars::Schema {
    schemars::schema_for!(RawShareRequest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::ErrorName;
    use crate::share::fixtures::*;
    use serde_json::json;

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
        assert!(!r.dry_run);
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
    fn dry_run_is_a_strict_bool() {
        let r = ShareRequest::parse(&json!({"imageId": IMAGE, "accountIds": [B], "dryRun": true}))
            .unwrap();
        assert!(r.dry_run);
        let r = ShareRequest::parse(&json!({"imageId": IMAGE, "accountIds": [B], "dryRun": null}))
            .unwrap();
        assert!(!r.dry_run);
        refused(json!({"imageId": IMAGE, "accountIds": [B], "dryRun": "true"}));
        refused(json!({"imageId": IMAGE, "accountIds": [B], "dryRun": 1}));
        refused(json!({"imageId": IMAGE, "accountIds": [B], "dryRun": true, "dryrun": true}));
        // a dry run is no excuse for a request that is not one
        refused(json!({"imageId": IMAGE, "dryRun": true}));
    }
}
