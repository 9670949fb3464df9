//! Target accounts for copy-image / distribute-image: the ferry role made by deploying
//! the real `target-account.yaml` into the account (the world's `/ferry-world/stacks`
//! does what CloudFormation would: parameters, conditions, the role and its policy), and
//! the account's own KMS key. The world evaluates that role's identity policy on every
//! call the copy steps make as the target (rules/iam.py).

use crate::{create_key, World};

/// A target account as target-account.yaml sets it up: its own CMK and the ferry role
/// trusting the hub with `external_id`. Idempotent (the world outlives test runs).
#[derive(Debug, Clone)]
pub struct Target {
    pub account_id: String,
    pub role_arn: String,
    pub external_id: String,
    pub key_arn: String,
    pub config: aws_config::SdkConfig,
}

pub async fn target_account(
    world: &World,
    account: &str,
    external_id: &str,
    source_key_arn: Option<&str>,
) -> Target {
    let config = world.as_account(account).await;
    let key_arn = create_key(&config, &format!("ferry copies in {account} (CMK-B)"), None).await;
    let mut parameters = serde_json::json!({
        "HubAccountId": world.hub_account_id,
        "ExternalId": external_id,
        "TargetKmsKeyArn": key_arn,
    });
    if let Some(source) = source_key_arn {
        parameters["SourceKmsKeyArn"] = serde_json::json!(source);
    }
    let deployed = world.control(
        "POST",
        "/ferry-world/stacks",
        Some(&serde_json::json!({
            "template": "target-account.yaml",
            "account": account,
            "parameters": parameters,
        })),
    );
    let role_arn = deployed["outputs"]["RoleArn"]
        .as_str()
        .expect("target-account.yaml outputs RoleArn")
        .to_string();
    Target {
        account_id: account.to_string(),
        role_arn,
        external_id: external_id.to_string(),
        key_arn,
        config,
    }
}
