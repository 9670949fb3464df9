//! What a share granted, exactly: revoke-share's input, and what copy-image revokes.

use crate::errors::FerryError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One launch permission entry (rule 9), as `{"userId": ...}`, `{"organizationArn": ...}`,
/// `{"organizationalUnitArn": ...}` or `{"group": "all"}`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotPermission {
    pub snapshot_id: String,
    pub user_id: String,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantRecord {
    pub key_arn: String,
    pub grant_id: String,
    pub grantee_account_id: String,
    pub name: String,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPolicyNeeded {
    pub key_arns: Vec<String>,
    pub statements: Vec<serde_json::Value>,
    pub reason: String,
}

/// Exactly what a share granted: the input of revoke-share.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

/// A share record as another workflow is given it (copy-image's `share`): share-image's output (`{"record": ...,
/// "warnings": [...]}`) or the record itself.
pub fn parse_share_record(value: &Value) -> Result<ShareRecord, FerryError> {
    let record = match value.get("record") {
        Some(inner) => inner,
        None => value,
    };
    serde_json::from_value(record.clone())
        .map_err(|e| FerryError::invalid_input(format!("share: not a share-image record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::fixtures::*;
    use serde_json::json;

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
}
