//! Target accounts for copy-image / distribute-image: the ferry role that
//! `target-account.yaml` creates, made here through IAM calls as that account (via its
//! OrganizationAccountAccessRole), and the account's own KMS key.

use crate::{create_key, World};

/// The role's path: the hub's copy functions may assume only `role/ferry/*`.
pub const TARGET_ROLE_PATH: &str = "/ferry/";
pub const TARGET_ROLE_NAME: &str = "ferry-target";

/// What target-account.yaml gives the role (the world does not evaluate identity
/// policies, the trust policy it does: rules/trust.py).
pub fn target_role_policy(key_arn: &str, source_key_arn: Option<&str>) -> serde_json::Value {
    let mut statements = vec![
        serde_json::json!({"Sid": "CopySharedImages", "Effect": "Allow",
            "Action": ["ec2:CopyImage", "ec2:DescribeImages", "ec2:DescribeSnapshots"], "Resource": "*"}),
        serde_json::json!({"Sid": "TagCopiesWhileCreatingThem", "Effect": "Allow", "Action": "ec2:CreateTags",
            "Resource": ["arn:aws:ec2:*::image/*", "arn:aws:ec2:*::snapshot/*"],
            "Condition": {"StringEquals": {"ec2:CreateAction": "CopyImage"}}}),
        serde_json::json!({"Sid": "RemoveOnlyWhatCopyImageCreated", "Effect": "Allow",
            "Action": ["ec2:DeregisterImage", "ec2:DeleteSnapshot"], "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/ferry:workflow": "copy-image"}}}),
        serde_json::json!({"Sid": "UseTheTargetKeyThroughEc2", "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": key_arn}),
        serde_json::json!({"Sid": "GrantsOnTheTargetKeyOnlyForAwsResources", "Effect": "Allow",
            "Action": "kms:CreateGrant", "Resource": key_arn,
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}),
    ];
    if let Some(source) = source_key_arn {
        statements.push(
            serde_json::json!({"Sid": "ReadTheSourceKey", "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom"], "Resource": source}),
        );
        statements.push(
            serde_json::json!({"Sid": "GrantsOnTheSourceKeyOnlyForAwsResources", "Effect": "Allow",
            "Action": "kms:CreateGrant", "Resource": source,
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}),
        );
    }
    serde_json::json!({"Version": "2012-10-17", "Statement": statements})
}

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
    let iam = aws_sdk_iam::Client::new(&config);
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "OnlyTheHubWithTheExternalId", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:root", world.hub_account_id)},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": external_id}}}]});
    let role_arn = match iam
        .create_role()
        .role_name(TARGET_ROLE_NAME)
        .path(TARGET_ROLE_PATH)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
    {
        Ok(out) => out.role().map(|r| r.arn().to_string()).unwrap(),
        Err(_) => {
            iam.update_assume_role_policy()
                .role_name(TARGET_ROLE_NAME)
                .policy_document(trust.to_string())
                .send()
                .await
                .expect("UpdateAssumeRolePolicy");
            format!("arn:aws:iam::{account}:role{TARGET_ROLE_PATH}{TARGET_ROLE_NAME}")
        }
    };
    iam.put_role_policy()
        .role_name(TARGET_ROLE_NAME)
        .policy_name("ferry-copy-image")
        .policy_document(target_role_policy(&key_arn, source_key_arn).to_string())
        .send()
        .await
        .expect("PutRolePolicy");
    Target {
        account_id: account.to_string(),
        role_arn,
        external_id: external_id.to_string(),
        key_arn,
        config,
    }
}
