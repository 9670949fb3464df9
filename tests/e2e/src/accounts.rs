//! Other accounts of the world and images to share, for the share-image / revoke-share
//! end-to-end tests. In the world, `sts:AssumeRole` on
//! `arn:aws:iam::<account>:role/OrganizationAccountAccessRole` gives that account's keys.

use crate::{http, World};
use aws_sdk_ec2::types as ec2t;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The role every account of the world has (as AWS Organizations creates it).
pub const ORGANIZATION_ACCESS_ROLE: &str = "OrganizationAccountAccessRole";

impl World {
    /// An SDK config acting as `account` (through STS AssumeRole on its
    /// OrganizationAccountAccessRole); the hub's own config for the hub.
    pub async fn as_account(&self, account: &str) -> aws_config::SdkConfig {
        if account == self.hub_account_id {
            return self.config.clone();
        }
        let out = aws_sdk_sts::Client::new(&self.config)
            .assume_role()
            .role_arn(format!(
                "arn:aws:iam::{account}:role/{ORGANIZATION_ACCESS_ROLE}"
            ))
            .role_session_name("ferry-e2e")
            .send()
            .await
            .unwrap_or_else(|e| panic!("AssumeRole into {account}: {e:?}"));
        let c = out.credentials().expect("credentials");
        self.config
            .to_builder()
            .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(
                aws_sdk_sts::config::Credentials::new(
                    c.access_key_id(),
                    c.secret_access_key(),
                    Some(c.session_token().to_string()),
                    None,
                    "ferry-e2e-assumed",
                ),
            ))
            .build()
    }

    /// A JSON-protocol call (e.g. Organizations) as the hub: `target` is the
    /// X-Amz-Target, `signing_name` the service's SigV4 name. The world does not check
    /// signatures; the access key `testing` is the hub account.
    pub fn json_call(&self, signing_name: &str, target: &str, body: &Value) -> Value {
        let headers = [
            ("Content-Type", "application/x-amz-json-1.1".to_string()),
            ("X-Amz-Target", target.to_string()),
            (
                "Authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=testing/20260101/{}/{signing_name}/aws4_request, SignedHeaders=host, Signature=0",
                    self.region
                ),
            ),
        ];
        let (status, v) = http::request(&self.endpoint, "POST", "/", &headers, &body.to_string());
        if (200..300).contains(&status) {
            v
        } else {
            serde_json::json!({"error": v, "status": status})
        }
    }

    /// Organizations call as the hub (the management account).
    pub fn organizations(&self, action: &str, body: Value) -> Value {
        self.json_call(
            "organizations",
            &format!("AWSOrganizationsV20161128.{action}"),
            &body,
        )
    }
}

/// An image in the account of `config`, registered from fresh snapshots: `encryption`
/// `None` = unencrypted, `Some(None)` = the account's default key (aws/ebs),
/// `Some(Some(key))` = that key. Waits until it is available.
pub async fn make_image(
    world: &World,
    config: &aws_config::SdkConfig,
    label: &str,
    encryption: Option<Option<&str>>,
) -> String {
    let ec2 = aws_sdk_ec2::Client::new(config);
    // In the config's region (the hub's by default).
    let az = match config.region() {
        Some(r) if r.as_ref() != world.region => format!("{}a", r.as_ref()),
        _ => world.az('a'),
    };
    let volume = ec2
        .create_volume()
        .size(8)
        .availability_zone(az)
        .set_encrypted(encryption.map(|_| true))
        .set_kms_key_id(encryption.flatten().map(str::to_string))
        .send()
        .await
        .expect("CreateVolume")
        .volume_id()
        .unwrap()
        .to_string();
    let snapshot = ec2
        .create_snapshot()
        .volume_id(&volume)
        .send()
        .await
        .expect("CreateSnapshot")
        .snapshot_id()
        .unwrap()
        .to_string();
    wait_until(&format!("{snapshot} completed"), || {
        let ec2 = ec2.clone();
        let snapshot = snapshot.clone();
        async move {
            ec2.describe_snapshots()
                .snapshot_ids(&snapshot)
                .send()
                .await
                .ok()
                .and_then(|o| o.snapshots().first().and_then(|s| s.state().cloned()))
                == Some(ec2t::SnapshotState::Completed)
        }
    })
    .await;
    let image = ec2
        .register_image()
        .name(format!("ferry-e2e-{label}"))
        .root_device_name("/dev/xvda")
        .architecture(ec2t::ArchitectureValues::X8664)
        .virtualization_type("hvm")
        .block_device_mappings(
            ec2t::BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    ec2t::EbsBlockDevice::builder()
                        .snapshot_id(&snapshot)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("RegisterImage")
        .image_id()
        .unwrap()
        .to_string();
    wait_for_image(config, &image, "available").await;
    image
}

/// Can the account of `config` see the image? `InvalidAMIID.NotFound` means no.
pub async fn sees(config: &aws_config::SdkConfig, image_id: &str) -> bool {
    match aws_sdk_ec2::Client::new(config)
        .describe_images()
        .image_ids(image_id)
        .send()
        .await
    {
        Ok(out) => !out.images().is_empty(),
        Err(e) => {
            use aws_sdk_ec2::error::ProvideErrorMetadata;
            assert_eq!(e.code(), Some("InvalidAMIID.NotFound"), "{e:?}");
            false
        }
    }
}

pub async fn image_state(config: &aws_config::SdkConfig, image_id: &str) -> Option<String> {
    aws_sdk_ec2::Client::new(config)
        .describe_images()
        .image_ids(image_id)
        .send()
        .await
        .ok()
        .and_then(|o| {
            o.images()
                .first()
                .and_then(|i| i.state().map(|s| s.as_str().to_string()))
        })
}

pub async fn wait_for_image(config: &aws_config::SdkConfig, image_id: &str, wanted: &str) {
    wait_until(&format!("{image_id} {wanted}"), || async {
        image_state(config, image_id).await.as_deref() == Some(wanted)
    })
    .await;
}

/// Waits (real time, 60 s at most) until `check` holds.
pub async fn wait_until<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(60), "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Launches `image_id` as the account of `config` and returns the instance's final
/// state and StateReason code once it is no longer pending; `Err(code)` when
/// RunInstances itself is refused.
pub async fn launch(
    config: &aws_config::SdkConfig,
    image_id: &str,
) -> Result<(String, Option<String>), String> {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let run = ec2
        .run_instances()
        .image_id(image_id)
        .instance_type(ec2t::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_ec2::error::ProvideErrorMetadata;
            e.code().unwrap_or("unknown").to_string()
        })?;
    let id = run.instances()[0].instance_id().unwrap().to_string();
    let started = Instant::now();
    loop {
        // A just-launched id may be unknown for a while (EC2 eventual consistency,
        // the world's describeNotFoundAfterCreateSeconds): that is still "pending".
        let d = match ec2.describe_instances().instance_ids(&id).send().await {
            Ok(d) => Some(d),
            Err(e) => {
                use aws_sdk_ec2::error::ProvideErrorMetadata;
                assert_eq!(
                    e.code(),
                    Some("InvalidInstanceID.NotFound"),
                    "DescribeInstances: {e:?}"
                );
                None
            }
        };
        let i = d.map(|d| d.reservations()[0].instances()[0].clone());
        let state = i
            .as_ref()
            .map(crate::state)
            .unwrap_or_else(|| "pending".into());
        if let (Some(i), false) = (i, state == "pending") {
            let _ = ec2.terminate_instances().instance_ids(&id).send().await;
            return Ok((
                state,
                i.state_reason().and_then(|r| r.code()).map(str::to_string),
            ));
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{id} stays pending"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
