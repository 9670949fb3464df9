//! Test data shared by the share modules' tests.

use super::facts::*;
use super::plan::{build_share_plan, SharePlan};
use super::record::*;
use super::request::ShareRequest;
use crate::errors::FerryError;
use crate::names::ExecutionContext;

pub const IMAGE: &str = "ami-0123456789abcdef0";

pub const B: &str = "222222222222";

pub const C: &str = "333333333333";

pub const ORG: &str = "arn:aws:organizations::111111111111:organization/o-abcdefghij";

pub const OU: &str = "arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-cdefgh34";

pub const CMK: &str = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";

pub const EBS: &str = "arn:aws:kms:us-east-1:111111111111:key/99999999-12ab-34cd-56ef-1234567890ab";

pub fn ctx() -> ExecutionContext {
    ExecutionContext {
        execution_arn: "arn:aws:states:us-east-1:111111111111:execution:ferry-share-image:run-1"
            .into(),
        execution_name: "run-1".into(),
        ..Default::default()
    }
}

pub fn image(snapshots: Vec<SnapshotFacts>) -> ImageFacts {
    ImageFacts {
        image_id: IMAGE.into(),
        name: "web".into(),
        owner_id: "111111111111".into(),
        state: "available".into(),
        snapshots,
        ..Default::default()
    }
}

pub fn snap(id: &str, key: Option<&str>) -> SnapshotFacts {
    SnapshotFacts {
        snapshot_id: id.into(),
        encrypted: key.is_some(),
        kms_key_id: key.map(str::to_string),
        create_volume_user_ids: vec![],
    }
}

pub fn cmk() -> KeyFacts {
    KeyFacts {
        key_id: CMK.into(),
        key_arn: CMK.into(),
        key_manager: KeyManager::Customer,
        key_state: Some("Enabled".into()),
    }
}

pub fn ebs() -> KeyFacts {
    KeyFacts {
        key_id: EBS.into(),
        key_arn: EBS.into(),
        key_manager: KeyManager::Aws,
        key_state: Some("Enabled".into()),
    }
}

pub fn facts(image: ImageFacts, keys: Vec<KeyFacts>) -> ShareFacts {
    ShareFacts {
        region: "us-east-1".into(),
        account_id: "111111111111".into(),
        image,
        keys,
        block_public_access: None,
        reencrypt_key: None,
    }
}

pub fn plan(request: serde_json::Value, facts: &ShareFacts) -> Result<SharePlan, FerryError> {
    build_share_plan(&ctx(), &ShareRequest::parse(&request).unwrap(), facts)
}

pub fn record() -> ShareRecord {
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
