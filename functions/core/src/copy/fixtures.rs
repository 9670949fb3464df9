//! Test data shared by the copy modules' tests.

use crate::names::ExecutionContext;
use serde_json::{json, Value};

pub const B: &str = "222233334444";

pub const KEY_B: &str =
    "arn:aws:kms:us-east-1:222233334444:key/1234abcd-12ab-34cd-56ef-1234567890ab";

pub fn minimal() -> Value {
    json!({
        "sourceImageId": "ami-0123456789abcdef0",
        "sourceRegion": "us-east-1",
        "targetAccountId": B,
        "targetRoleArn": "arn:aws:iam::222233334444:role/ferry/ferry-target",
        "externalId": "ferry-6c1d0a",
        "targetKmsKeyId": KEY_B,
    })
}

pub fn ctx(name: &str) -> ExecutionContext {
    ExecutionContext {
        execution_arn: format!(
            "arn:aws:states:us-east-1:111122223333:execution:ferry-copy-image:{name}"
        ),
        execution_name: name.to_string(),
        ..Default::default()
    }
}

pub fn record() -> Value {
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

/// [`minimal`] with one field set.
pub fn with(field: &str, value: Value) -> Value {
    let mut v = minimal();
    v[field] = value;
    v
}
