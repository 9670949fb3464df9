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
    target_account_in_regions(world, account, external_id, source_key_arn, &[])
        .await
        .0
}

/// A key of a target account in one more region than the hub's.
#[derive(Debug, Clone)]
pub struct RegionalKey {
    pub region: String,
    pub key_arn: String,
    /// The account (as in [`Target::config`]) acting in `region`.
    pub config: aws_config::SdkConfig,
}

/// [`target_account`] for an account that copies land in in several regions (issue 8,
/// 2.6): besides its key in the hub's region (`Target::key_arn`), a CMK of its own in
/// each of `other_regions`, which its ferry role may also use (target-account.yaml's
/// `AdditionalTargetKmsKeyArns`, one stack for all of them). Returns the target and one
/// [`RegionalKey`] per other region, in order.
pub async fn target_account_in_regions(
    world: &World,
    account: &str,
    external_id: &str,
    source_key_arn: Option<&str>,
    other_regions: &[&str],
) -> (Target, Vec<RegionalKey>) {
    target_account_with(
        world,
        account,
        external_id,
        source_key_arn,
        other_regions,
        None,
    )
    .await
}

/// Deploys template.yaml into the hub with `TargetAccountIds` = `accounts` (the
/// image-event bus's policy), as `sam deploy --parameter-overrides` would, and returns
/// the image-event bus's ARN (output ImageEventBusArn).
pub fn hub_image_event_bus(world: &World, accounts: &[&str]) -> String {
    let outputs = world.control(
        "POST",
        "/ferry-world/stacks",
        Some(&serde_json::json!({
            "template": "template.yaml",
            "account": world.hub_account_id,
            "parameters": {"TargetAccountIds": accounts.join(",")},
        })),
    )["outputs"]
        .clone();
    outputs["ImageEventBusArn"]
        .as_str()
        .expect("template.yaml outputs ImageEventBusArn")
        .to_string()
}

/// [`target_account`] whose stack forwards its AMI events to the hub's bus `bus_arn`
/// (target-account.yaml's `HubEventBusArn`).
pub async fn target_account_forwarding_to(
    world: &World,
    account: &str,
    external_id: &str,
    source_key_arn: Option<&str>,
    bus_arn: &str,
) -> Target {
    target_account_with(
        world,
        account,
        external_id,
        source_key_arn,
        &[],
        Some(bus_arn),
    )
    .await
    .0
}

async fn target_account_with(
    world: &World,
    account: &str,
    external_id: &str,
    source_key_arn: Option<&str>,
    other_regions: &[&str],
    hub_event_bus_arn: Option<&str>,
) -> (Target, Vec<RegionalKey>) {
    let config = world.as_account(account).await;
    let key_arn = create_key(&config, &format!("ferry copies in {account} (CMK-B)"), None).await;
    let mut others = Vec::new();
    for region in other_regions {
        let there = config
            .to_builder()
            .region(aws_config::Region::new(region.to_string()))
            .build();
        let key = create_key(
            &there,
            &format!("ferry copies in {account}, {region} (CMK-B)"),
            None,
        )
        .await;
        assert!(
            key.starts_with(&format!("arn:aws:kms:{region}:{account}:key/")),
            "the key is made in {region}: {key}"
        );
        others.push(RegionalKey {
            region: region.to_string(),
            key_arn: key,
            config: there,
        });
    }
    let mut parameters = serde_json::json!({
        "HubAccountId": world.hub_account_id,
        "ExternalId": external_id,
        "TargetKmsKeyArn": key_arn,
    });
    if !others.is_empty() {
        parameters["AdditionalTargetKmsKeyArns"] = serde_json::json!(others
            .iter()
            .map(|k| k.key_arn.as_str())
            .collect::<Vec<_>>()
            .join(","));
    }
    if let Some(source) = source_key_arn {
        parameters["SourceKmsKeyArn"] = serde_json::json!(source);
    }
    if let Some(bus) = hub_event_bus_arn {
        parameters["HubEventBusArn"] = serde_json::json!(bus);
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
    (
        Target {
            account_id: account.to_string(),
            role_arn,
            external_id: external_id.to_string(),
            key_arn,
            config,
        },
        others,
    )
}
