//! End-to-end runs of the real `share-image` and `revoke-share` state machines on the real
//! Lambdas in the local AWS world. Every test asserts on AWS state as each account sees it.

use aws_sdk_ec2::types as ec2t;
use ferry_e2e::accounts::*;
use ferry_e2e::*;
use serde_json::{json, Value};

const B: &str = "222233334444";
const C: &str = "555566667777";

async fn setup() -> (tokio::sync::MutexGuard<'static, ()>, World) {
    serial_world().await
}

async fn launch_permissions(world: &World, image_id: &str) -> Vec<ec2t::LaunchPermission> {
    world
        .ec2()
        .describe_image_attribute()
        .image_id(image_id)
        .attribute(ec2t::ImageAttributeName::LaunchPermission)
        .send()
        .await
        .expect("DescribeImageAttribute")
        .launch_permissions()
        .to_vec()
}

/// Grants on `key` (as its owner, the hub) whose grantee is `account`'s root.
async fn grants_for(world: &World, key: &str, account: &str) -> Vec<String> {
    grants(world, key)
        .await
        .iter()
        .filter(|g| g.grantee_principal() == Some(format!("arn:aws:iam::{account}:root").as_str()))
        .map(|g| g.grant_id().unwrap_or_default().to_string())
        .collect()
}

async fn share(world: &World, label: &str, input: Value) -> Execution {
    world.run("share-image", &run_name(label), &input).await
}

#[tokio::test(flavor = "multi_thread")]
async fn unencrypted_image_shared_with_b_is_launchable_by_b_only() {
    let (_guard, world) = setup().await;
    let hub = world.config.clone();
    let image = make_image(&world, &hub, &run_name("plain"), None).await;
    let (b, c) = (world.as_account(B).await, world.as_account(C).await);
    assert!(!sees(&b, &image).await);

    let out = share(
        &world,
        "share-plain",
        json!({"imageId": image, "accountIds": [B]}),
    )
    .await
    .assert_succeeded()
    .clone();
    let record = &out["record"];
    assert_eq!(record["imageId"], image);
    assert_eq!(record["launchPermissions"], json!([{"userId": B}]));
    assert_eq!(record["snapshotPermissions"].as_array().unwrap().len(), 1);
    assert_eq!(record["grants"], json!([]));

    let (state, _) = launch(&b, &image)
        .await
        .expect("B launches the shared image");
    assert_eq!(state, "running");
    assert!(!sees(&c, &image).await);
    assert_eq!(
        launch(&c, &image).await.unwrap_err(),
        "InvalidAMIID.NotFound"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn image_shared_with_an_ou_is_launchable_by_its_member_account() {
    let (_guard, world) = setup().await;
    // The hub is the organization's management account (once per world).
    let created = world.organizations("CreateOrganization", json!({"FeatureSet": "ALL"}));
    if created.get("error").is_some() {
        assert!(
            created.to_string().contains("AlreadyInOrganization"),
            "{created}"
        );
    }
    let org = world.organizations("DescribeOrganization", json!({}))["Organization"].clone();
    let root = world.organizations("ListRoots", json!({}))["Roots"][0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let label = run_name("ou");
    let ou = world.organizations(
        "CreateOrganizationalUnit",
        json!({"ParentId": root, "Name": label}),
    )["OrganizationalUnit"]
        .clone();
    let status = world.organizations(
        "CreateAccount",
        json!({"AccountName": label, "Email": format!("{label}@example.com")}),
    )["CreateAccountStatus"]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let member = world.organizations(
        "DescribeCreateAccountStatus",
        json!({"CreateAccountRequestId": status}),
    )["CreateAccountStatus"]["AccountId"]
        .as_str()
        .unwrap()
        .to_string();
    world.organizations(
        "MoveAccount",
        json!({"AccountId": member, "SourceParentId": root, "DestinationParentId": ou["Id"]}),
    );

    let image = make_image(&world, &world.config, &label, None).await;
    let member_config = world.as_account(&member).await;
    assert!(!sees(&member_config, &image).await);
    let out = share(
        &world,
        "share-ou",
        json!({"imageId": image, "organizationalUnitArns": [ou["Arn"]]}),
    )
    .await
    .assert_succeeded()
    .clone();
    assert_eq!(
        out["record"]["launchPermissions"],
        json!([{"organizationalUnitArn": ou["Arn"]}])
    );
    // Unencrypted: no key policy to change.
    assert!(out["record"].get("keyPolicyNeeded").is_none());
    assert!(org["Arn"].is_string());
    let (state, _) = launch(&member_config, &image)
        .await
        .expect("member launches");
    assert_eq!(state, "running");
    assert!(!sees(&world.as_account(C).await, &image).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn cmk_image_needs_ferrys_grant_and_revoke_share_takes_it_back() {
    let (_guard, world) = setup().await;
    let label = run_name("cmk");
    let key = create_key(&world.config, &format!("ferry e2e {label}"), None).await;
    let image = make_image(&world, &world.config, &label, Some(Some(&key))).await;
    let b = world.as_account(B).await;

    // Shared without key access: B sees it but can neither launch nor copy it.
    share(
        &world,
        "share-cmk-nokey",
        json!({"imageId": image, "accountIds": [B], "kmsAccess": "none"}),
    )
    .await
    .assert_succeeded();
    assert!(sees(&b, &image).await);
    let (state, reason) = launch(&b, &image).await.expect("RunInstances accepted");
    assert_eq!(
        (state.as_str(), reason.as_deref()),
        ("terminated", Some("Client.InternalError"))
    );
    let copy = aws_sdk_ec2::Client::new(&b)
        .copy_image()
        .source_image_id(&image)
        .source_region(&world.region)
        .name(format!("{label}-copy-by-b"))
        .send()
        .await
        .expect("CopyImage")
        .image_id()
        .unwrap()
        .to_string();
    wait_for_image(&b, &copy, "failed").await;
    assert!(grants_for(&world, &key, B).await.is_empty());

    // ferry's share grants B use of CMK-A: B launches.
    let out = share(
        &world,
        "share-cmk",
        json!({"imageId": image, "accountIds": [B]}),
    )
    .await
    .assert_succeeded()
    .clone();
    let grants = out["record"]["grants"].as_array().unwrap().clone();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0]["keyArn"], key);
    assert_eq!(grants[0]["granteeAccountId"], B);
    assert_eq!(
        grants_for(&world, &key, B).await,
        [grants[0]["grantId"].as_str().unwrap()]
    );
    let g = world
        .kms()
        .list_grants()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .grants()[0]
        .clone();
    let mut ops: Vec<&str> = g.operations().iter().map(|o| o.as_str()).collect();
    ops.sort();
    let mut want = ferry_core::share::grants::SHARE_GRANT_OPERATIONS.to_vec();
    want.sort();
    assert_eq!(ops, want);
    let (state, _) = launch(&b, &image).await.expect("B launches");
    assert_eq!(state, "running");

    // revoke-share by image and account: B no longer sees it, A's grants for B are gone.
    let revoked = world
        .run(
            "revoke-share",
            &run_name("revoke-cmk"),
            &json!({"imageId": image, "accountIds": [B]}),
        )
        .await
        .assert_succeeded()
        .clone();
    assert_eq!(
        revoked["removed"]["launchPermissions"],
        json!([{"userId": B}])
    );
    assert_eq!(revoked["removed"]["grants"].as_array().unwrap().len(), 1);
    assert_eq!(
        revoked["removed"]["snapshotPermissions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(!sees(&b, &image).await);
    assert!(grants_for(&world, &key, B).await.is_empty());
    assert!(launch_permissions(&world, &image).await.is_empty());

    // Idempotent: revoking again (by the record) removes nothing and succeeds.
    let again = world
        .run(
            "revoke-share",
            &run_name("revoke-cmk-again"),
            &json!({"record": out["record"]}),
        )
        .await
        .assert_succeeded()
        .clone();
    assert_eq!(again["removed"]["grants"], json!([]));
    assert_eq!(again["removed"]["launchPermissions"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_managed_key_image_is_refused_or_shared_as_a_reencrypted_copy() {
    let (_guard, world) = setup().await;
    let label = run_name("ebs");
    let image = make_image(&world, &world.config, &label, Some(None)).await;
    share(
        &world,
        "share-ebs",
        json!({"imageId": image, "accountIds": [B]}),
    )
    .await
    .assert_failed_with("Ferry.AwsManagedKey");

    let key = create_key(&world.config, &format!("ferry e2e {label}"), None).await;
    let out = share(
        &world,
        "share-ebs-copy",
        json!({"imageId": image, "accountIds": [B], "reencryptWith": key}),
    )
    .await
    .assert_succeeded()
    .clone();
    let record = &out["record"];
    let copy = record["imageId"].as_str().unwrap().to_string();
    assert_ne!(copy, image);
    assert_eq!(record["sourceImageId"], image);
    let ec2 = world.ec2();
    let described = ec2
        .describe_images()
        .image_ids(&copy)
        .send()
        .await
        .unwrap()
        .images()[0]
        .clone();
    assert_eq!(
        tag_map(described.tags())
            .get("ferry:source-image")
            .map(String::as_str),
        Some(image.as_str())
    );
    let snapshot_ids: Vec<String> = described
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
        .collect();
    assert!(!snapshot_ids.is_empty());
    for s in ec2
        .describe_snapshots()
        .set_snapshot_ids(Some(snapshot_ids))
        .send()
        .await
        .unwrap()
        .snapshots()
    {
        assert_eq!(
            s.kms_key_id(),
            Some(key.as_str()),
            "the copy's snapshot key"
        );
    }
    // The original is untouched: no launch permission, still under aws/ebs.
    assert!(launch_permissions(&world, &image).await.is_empty());
    let b = world.as_account(B).await;
    assert!(!sees(&b, &image).await);
    let (state, _) = launch(&b, &copy).await.expect("B launches the copy");
    assert_eq!(state, "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn public_sharing_rules() {
    let (_guard, world) = setup().await;
    let label = run_name("public");
    let key = create_key(&world.config, &format!("ferry e2e {label}"), None).await;
    let encrypted = make_image(
        &world,
        &world.config,
        &format!("{label}-enc"),
        Some(Some(&key)),
    )
    .await;
    share(
        &world,
        "public-enc",
        json!({"imageId": encrypted, "public": true}),
    )
    .await
    .assert_failed_with("Ferry.EncryptedImageCannotBePublic");

    let plain = make_image(&world, &world.config, &label, None).await;
    let ec2 = world.ec2();
    ec2.enable_image_block_public_access()
        .image_block_public_access_state(ec2t::ImageBlockPublicAccessEnabledState::BlockNewSharing)
        .send()
        .await
        .expect("EnableImageBlockPublicAccess");
    share(
        &world,
        "public-blocked",
        json!({"imageId": plain, "public": true}),
    )
    .await
    .assert_failed_with("Ferry.ImageBlockPublicAccess");
    assert!(launch_permissions(&world, &plain).await.is_empty());

    ec2.disable_image_block_public_access()
        .send()
        .await
        .expect("DisableImageBlockPublicAccess");
    let out = share(
        &world,
        "public-ok",
        json!({"imageId": plain, "public": true}),
    )
    .await;
    // Put the account back as it was before asserting.
    ec2.enable_image_block_public_access()
        .image_block_public_access_state(ec2t::ImageBlockPublicAccessEnabledState::BlockNewSharing)
        .send()
        .await
        .expect("EnableImageBlockPublicAccess");
    let out = out.assert_succeeded().clone();
    assert_eq!(
        out["record"]["launchPermissions"],
        json!([{"group": "all"}])
    );
    assert!(sees(&world.as_account(C).await, &plain).await);
    world
        .run(
            "revoke-share",
            &run_name("unpublic"),
            &json!({"record": out["record"]}),
        )
        .await
        .assert_succeeded();
    assert!(!sees(&world.as_account(C).await, &plain).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_reencrypted_copy_is_removed_and_the_original_error_kept() {
    let (_guard, world) = setup().await;
    let label = run_name("ebs-fail");
    let image = make_image(&world, &world.config, &label, Some(None)).await;
    // A key EBS may not re-encrypt to: the copy becomes `failed`.
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Owner", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{}:root", world.hub_account_id)},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "NoReEncryptTo", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:ReEncryptTo", "Resource": "*"}
    ]});
    let key = create_key(
        &world.config,
        "ferry e2e key without ReEncryptTo",
        Some(&policy),
    )
    .await;
    let execution = share(
        &world,
        "share-ebs-fail",
        json!({"imageId": image, "accountIds": [B], "reencryptWith": key}),
    )
    .await;
    execution.assert_failed_with("Ferry.ImageFailed");
    let (_, images, snapshots) = ferry_made(&world, &execution.arn).await;
    let live: Vec<_> = images
        .iter()
        .filter(|i| i.state().map(|s| s.as_str()) != Some("deregistered"))
        .collect();
    assert!(live.is_empty(), "copy left: {live:?}");
    assert!(snapshots.is_empty(), "copy snapshots left: {snapshots:?}");
    assert_eq!(
        image_state(&world.config, &image).await.as_deref(),
        Some("available")
    );
    assert!(launch_permissions(&world, &image).await.is_empty());
}

/// Issue 8, 2.8: Apply fails half-way (KMS refuses every CreateGrant after the launch
/// and snapshot permissions were added). The failed share takes back what it had applied:
/// B no longer sees the image and its snapshot is not shared with B; no grant is left.
#[tokio::test(flavor = "multi_thread")]
async fn a_share_that_fails_half_way_takes_back_what_it_applied() {
    let (_guard, world) = setup().await;
    let label = run_name("half-way");
    let key = create_key(&world.config, &format!("ferry e2e {label}"), None).await;
    let image = make_image(&world, &world.config, &label, Some(Some(&key))).await;
    let b = world.as_account(B).await;
    assert!(!sees(&b, &image).await);
    world.inject_fault("kms", "CreateGrant", 50, "KMSInternalException", 500);
    let execution = share(
        &world,
        "share-half-way",
        json!({"imageId": image, "accountIds": [B]}),
    )
    .await;
    world.clear_faults();
    assert_eq!(execution.status, "FAILED", "{:?}", execution.output);
    assert!(
        !sees(&b, &image).await,
        "B's launch permission was taken back"
    );
    let snap = world
        .ec2()
        .describe_images()
        .image_ids(&image)
        .send()
        .await
        .unwrap()
        .images()[0]
        .block_device_mappings()[0]
        .ebs()
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_string();
    let cvp = world
        .ec2()
        .describe_snapshot_attribute()
        .snapshot_id(&snap)
        .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .unwrap();
    assert!(
        cvp.create_volume_permissions().is_empty(),
        "the snapshot is shared with nobody: {cvp:?}"
    );
    assert!(grants_for(&world, &key, B).await.is_empty());
}
