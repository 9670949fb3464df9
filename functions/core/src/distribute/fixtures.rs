//! Test data shared by the distribute modules' tests.

use crate::names::ExecutionContext;
use serde_json::{json, Value};

pub fn ctx(name: &str) -> ExecutionContext {
    ExecutionContext {
        execution_arn: format!(
            "arn:aws:states:us-east-1:111122223333:execution:ferry-distribute-image:{name}"
        ),
        execution_name: name.to_string(),
        ..Default::default()
    }
}

pub fn target(account: &str) -> Value {
    json!({
        "accountId": account,
        "roleArn": format!("arn:aws:iam::{account}:role/ferry/ferry-target"),
        "externalId": "ferry-ext",
        "kmsKeyId": "alias/ferry-copies",
    })
}

pub fn request(targets: Vec<Value>) -> Value {
    json!({"share": {"imageId": "ami-0123456789abcdef0"}, "targets": targets})
}
