//! End-to-end runs of the real `copy-image` and `distribute-image` state machines on the
//! real Lambdas in the local AWS world. The hub (account A) owns an AMI under its CMK-A;
//! each target account has the ferry role of target-account.yaml and its own CMK-B.
//! Every test asserts on AWS state as each account sees it.

use aws_sdk_ec2::types as ec2t;
use ferry_e2e::accounts::*;
use ferry_e2e::targets::*;
use ferry_e2e::*;
use serde_json::{json, Value};

async fn setup() -> (tokio::sync::MutexGuard<'static, ()>, World) {
    let (guard, world) = serial_world().await;
    world.control("DELETE", "/ferry-world/calls", None);
    (guard, world)
}

/// A fresh account id per run (see [`fresh_account_id`]).
fn account(n: u64) -> String {
    fresh_account_id(200_000_000_000, n)
}

async fn hub_key(world: &World, label: &str) -> String {
    create_key(&world.config, &format!("ferry e2e {label} (CMK-A)"), None).await
}

/// The KMS keys of an image's snapshots, as the image's owner sees them.
async fn snapshot_keys(config: &aws_config::SdkConfig, image: &ec2t::Image) -> Vec<String> {
    let ids: Vec<String> = image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
        .collect();
    assert!(!ids.is_empty(), "{image:?} has no snapshots");
    aws_sdk_ec2::Client::new(config)
        .describe_snapshots()
        .set_snapshot_ids(Some(ids))
        .send()
        .await
        .expect("DescribeSnapshots")
        .snapshots()
        .iter()
        .map(|s| s.kms_key_id().unwrap_or("unencrypted").to_string())
        .collect()
}

/// Grants on the hub's `key` for `account` (grantee its root or one of its roles).
async fn grants_for(world: &World, key: &str, account: &str) -> usize {
    grants(world, key)
        .await
        .iter()
        .filter(|g| {
            g.grantee_principal()
                .is_some_and(|p| p.contains(&format!(":{account}:")))
        })
        .count()
}

/// Images `account` owns that the copy-image execution `arn` made.
async fn copies_by(config: &aws_config::SdkConfig, execution_arn: &str) -> Vec<ec2t::Image> {
    aws_sdk_ec2::Client::new(config)
        .describe_images()
        .owners("self")
        .filters(
            ec2t::Filter::builder()
                .name("tag:ferry:execution")
                .values(execution_arn)
                .build(),
        )
        .send()
        .await
        .expect("DescribeImages")
        .images()
        .to_vec()
}

fn copy_request(world: &World, image: &str, t: &Target, share: Option<&Value>) -> Value {
    let mut v = json!({
        "sourceImageId": image,
        "sourceRegion": world.region,
        "targetAccountId": t.account_id,
        "targetRoleArn": t.role_arn,
        "externalId": t.external_id,
        "targetKmsKeyId": t.key_arn,
    });
    if let Some(s) = share {
        v["share"] = s.clone();
    }
    v
}

/// (a) An AMI under CMK-A shared with B by share-image; copy-image gives B its own AMI
/// under CMK-B with provenance tags, revokes the share for B, and B's copy launches.
#[tokio::test(flavor = "multi_thread")]
async fn copies_a_shared_cmk_image_into_the_target_and_revokes_the_share() {
    let (_guard, world) = setup().await;
    let b = account(1);
    let key_a = hub_key(&world, "copy-a").await;
    let image = make_image(
        &world,
        &world.config,
        &run_name("copy-src"),
        Some(Some(&key_a)),
    )
    .await;
    let target = target_account(&world, &b, "ferry-e2e-ext-1", Some(&key_a)).await;
    // A tag the owner sets: CopyImageTags alone would not copy it across accounts (rule
    // 24); copyTags (the default) must.
    world
        .ec2()
        .create_tags()
        .resources(&image)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("team")
                .value("storefront")
                .build(),
        )
        .send()
        .await
        .unwrap();

    // B cannot see it before the share.
    assert!(!sees(&target.config, &image).await);
    let shared = world
        .run(
            "share-image",
            &run_name("share-for-copy"),
            &json!({"imageId": image, "accountIds": [b]}),
        )
        .await;
    let share_out = shared.assert_succeeded().clone();
    assert!(
        sees(&target.config, &image).await,
        "B sees A's image after the share"
    );
    assert_eq!(
        grants_for(&world, &key_a, &b).await,
        1,
        "share-image granted B on CMK-A"
    );

    let execution = world
        .run(
            "copy-image",
            &run_name("copy"),
            &copy_request(&world, &image, &target, Some(&share_out)),
        )
        .await;
    let out = execution.assert_succeeded().clone();
    eprintln!(
        "copied in {} simulated seconds: {:?}\n{out:#}",
        execution.simulated_seconds,
        world.state_durations(&execution.arn).await
    );
    let copy_id = out["imageId"].as_str().unwrap().to_string();
    assert_ne!(copy_id, image);
    assert_eq!(out["targetAccountId"], b);
    assert_eq!(out["kmsKeyIds"], json!([target.key_arn]));
    assert_eq!(out["revoked"], true);

    // As B: B owns the copy, under CMK-B, with its provenance.
    let copy = image_as(&target.config, &copy_id).await;
    assert_eq!(copy.owner_id(), Some(b.as_str()));
    assert_eq!(copy.state().map(|s| s.as_str()), Some("available"));
    assert_eq!(
        snapshot_keys(&target.config, &copy).await,
        vec![target.key_arn.clone()]
    );
    let tags = tag_map(copy.tags());
    assert_eq!(tags["ferry:workflow"], "copy-image");
    assert_eq!(tags["ferry:execution"], execution.arn);
    assert_eq!(tags["ferry:source-account"], world.hub_account_id);
    assert_eq!(tags["ferry:source-image"], image);
    assert_eq!(tags["ferry:source-region"], world.region);
    assert_eq!(
        tags.get("team").map(String::as_str),
        Some("storefront"),
        "the owner's tag is copied (copyTags)"
    );
    assert_eq!(copies_by(&target.config, &execution.arn).await.len(), 1);

    // After the revoke: B no longer sees A's image, A's grants for B are gone, the
    // snapshot is no longer shared with B; A's image itself is untouched.
    assert!(!sees(&target.config, &image).await, "the share was revoked");
    assert_eq!(
        grants_for(&world, &key_a, &b).await,
        0,
        "A's grants for B retired"
    );
    let src = image_as(&world.config, &image).await;
    let snap = src.block_device_mappings()[0]
        .ebs()
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_string();
    let cvp = world
        .ec2()
        .describe_snapshot_attribute()
        .snapshot_id(&snap)
        .attribute(ec2t::SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .expect("DescribeSnapshotAttribute");
    assert!(
        !cvp.create_volume_permissions()
            .iter()
            .any(|p| p.user_id() == Some(b.as_str())),
        "{cvp:?}"
    );
    assert_eq!(src.state().map(|s| s.as_str()), Some("available"));
    // A does not see B's copy (nobody shared it).
    assert!(!sees(&world.config, &copy_id).await);

    // B's copy still launches: under CMK-B, it needs nothing from A any more.
    let (state, reason) = launch(&target.config, &copy_id)
        .await
        .expect("RunInstances");
    assert_eq!(state, "running", "launch from the copy: {reason:?}");
}

/// Refusals: bad input before any call; no role or a wrong ExternalId is
/// Ferry.TargetAccessDenied; an image not shared with the target is Ferry.ImageNotFound.
#[tokio::test(flavor = "multi_thread")]
async fn refuses_bad_input_untrusted_callers_and_unshared_images() {
    let (_guard, world) = setup().await;
    let b = account(2);
    let key_a = hub_key(&world, "refusals").await;
    let image = make_image(
        &world,
        &world.config,
        &run_name("copy-refused"),
        Some(Some(&key_a)),
    )
    .await;
    let target = target_account(&world, &b, "ferry-e2e-ext-2", Some(&key_a)).await;

    world.control("DELETE", "/ferry-world/calls", None);
    let mut bad = copy_request(&world, &image, &target, None);
    bad["targetRoleArn"] = json!("arn:aws:iam::999988887777:role/ferry/ferry-target");
    world
        .run("copy-image", &run_name("bad-input"), &bad)
        .await
        .assert_failed_with("Ferry.InvalidInput");
    assert!(
        world.calls("sts", "AssumeRole").is_empty(),
        "refused before any call"
    );

    let mut wrong = copy_request(&world, &image, &target, None);
    wrong["externalId"] = json!("not-the-secret");
    let e = world
        .run("copy-image", &run_name("wrong-ext"), &wrong)
        .await;
    e.assert_failed_with("Ferry.TargetAccessDenied");
    assert!(e
        .cause
        .unwrap_or_default()
        .contains("not authorized to perform: sts:AssumeRole"));

    let unshared = world
        .run(
            "copy-image",
            &run_name("unshared"),
            &copy_request(&world, &image, &target, None),
        )
        .await;
    unshared.assert_failed_with("Ferry.ImageNotFound");
    assert!(world.calls("ec2", "CopyImage").is_empty(), "nothing copied");
}

/// An AMI of the hub under a new CMK-A, and target account `b` (ferry role, ExternalId
/// `ferry-e2e-ext-<n>`, its CMK-B) with whom share-image shared it: (image, target, share
/// output).
async fn shared_with(world: &World, b: &str, n: u64, label: &str) -> (String, Target, Value) {
    let key_a = hub_key(world, label).await;
    let image = make_image(
        world,
        &world.config,
        &run_name(&format!("{label}-src")),
        Some(Some(&key_a)),
    )
    .await;
    let target = target_account(world, b, &format!("ferry-e2e-ext-{n}"), Some(&key_a)).await;
    let shared = world
        .run(
            "share-image",
            &run_name(&format!("{label}-share")),
            &json!({"imageId": image, "accountIds": [b]}),
        )
        .await;
    (image, target, shared.assert_succeeded().clone())
}

/// (c) The same execution name twice, with CopyImage's answer lost once (the world
/// copies, the answer is lost, the SDK retries with the same ClientToken): one copy.
#[tokio::test(flavor = "multi_thread")]
async fn the_same_execution_name_twice_creates_one_copy() {
    let (_guard, world) = setup().await;
    let b = account(3);
    let (image, target, share_out) = shared_with(&world, &b, 3, "twice").await;

    world.control(
        "POST",
        "/ferry-world/faults",
        Some(
            &json!({"service": "ec2", "action": "CopyImage", "count": 1, "code": "InternalError",
                     "status": 500, "mode": "after", "account": b}),
        ),
    );
    let name = run_name("copy-twice");
    let input = copy_request(&world, &image, &target, Some(&share_out));
    let first = world.run("copy-image", &name, &input).await;
    world.clear_faults();
    let out = first.assert_succeeded().clone();
    let again = world
        .sfn()
        .start_execution()
        .state_machine_arn(&world.state_machines["copy-image"])
        .name(&name)
        .input(input.to_string())
        .send()
        .await;
    match again {
        Ok(o) => {
            assert_eq!(o.execution_arn(), first.arn);
            world.wait(&first.arn).await.assert_succeeded();
        }
        Err(e) => assert!(format!("{e:?}").contains("ExecutionAlreadyExists"), "{e:?}"),
    }
    let copies = copies_by(&target.config, &first.arn).await;
    assert_eq!(copies.len(), 1, "one copy: {copies:?}");
    assert_eq!(copies[0].image_id(), out["imageId"].as_str());
    // The lost answer really was retried: two CopyImage calls by B, one image.
    let calls = world.calls("ec2", "CopyImage");
    let by_b: Vec<_> = calls.iter().filter(|c| c["account"] == b).collect();
    assert!(by_b.len() >= 2, "CopyImage retried: {calls:?}");
    let all_b = aws_sdk_ec2::Client::new(&target.config)
        .describe_images()
        .owners("self")
        .send()
        .await
        .unwrap();
    assert_eq!(all_b.images().len(), 1, "B owns exactly one image");
}

/// Issue 8, 2.5: once the copy is available the target owns it; a revoke that fails
/// afterwards must not remove it. The execution succeeds with `revoked: false`, the
/// error, and what is still shared (revoke-share's input, to run again), and the share
/// is really still in place.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_revoke_keeps_the_finished_copy_and_says_what_is_still_shared() {
    let (_guard, world) = setup().await;
    let b = account(4);
    let (image, target, share_out) = shared_with(&world, &b, 4, "revoke-fails").await;

    // The hub's revoke cannot change the image's launch permissions.
    world.control(
        "POST",
        "/ferry-world/faults",
        Some(
            &json!({"service": "ec2", "action": "ModifyImageAttribute", "count": 20,
                     "code": "UnauthorizedOperation", "status": 403,
                     "account": world.hub_account_id}),
        ),
    );
    let execution = world
        .run(
            "copy-image",
            &run_name("copy-revoke-fails"),
            &copy_request(&world, &image, &target, Some(&share_out)),
        )
        .await;
    world.clear_faults();
    let out = execution.assert_succeeded().clone();
    assert_eq!(out["revoked"], false);
    assert_eq!(out["revokeRequested"], true);
    assert!(
        out["revokeError"]["Cause"]
            .as_str()
            .unwrap_or_default()
            .contains("UnauthorizedOperation"),
        "{out:#}"
    );
    assert_eq!(out["stillShared"]["record"]["imageId"], image.as_str());
    assert_eq!(
        out["stillShared"]["record"]["launchPermissions"],
        json!([{"userId": b}])
    );
    // B owns an available copy under CMK-B, and still sees A's image (the share stands).
    let copy_id = out["imageId"].as_str().unwrap();
    let copy = image_as(&target.config, copy_id).await;
    assert_eq!(copy.owner_id(), Some(b.as_str()));
    assert_eq!(copy.state().map(|s| s.as_str()), Some("available"));
    assert!(
        sees(&target.config, &image).await,
        "the share is still in place"
    );
    assert_eq!(copies_by(&target.config, &execution.arn).await.len(), 1);
}

/// (b) distribute-image to three targets, one without the ferry role: two copies, the
/// third reported failed (Ferry.TargetAccessDenied), the execution succeeds; at most 20
/// copies in flight.
#[tokio::test(flavor = "multi_thread")]
async fn distributes_to_three_targets_reporting_the_one_without_a_role() {
    let (_guard, world) = setup().await;
    let (b, c, d) = (account(4), account(5), account(6));
    let key_a = hub_key(&world, "distribute").await;
    let image = make_image(
        &world,
        &world.config,
        &run_name("dist-src"),
        Some(Some(&key_a)),
    )
    .await;
    let tb = target_account(&world, &b, "ferry-e2e-ext-b", Some(&key_a)).await;
    let tc = target_account(&world, &c, "ferry-e2e-ext-c", Some(&key_a)).await;
    // d has a key but never deployed target-account.yaml: no ferry role.
    let d_config = world.as_account(&d).await;
    let d_key = create_key(&d_config, "ferry e2e d (no ferry role)", None).await;
    let target = |t: &Target| json!({"accountId": t.account_id, "roleArn": t.role_arn, "externalId": t.external_id, "kmsKeyId": t.key_arn});
    let input = json!({
        "share": {"imageId": image},
        "targets": [target(&tb), target(&tc),
                    {"accountId": d, "roleArn": format!("arn:aws:iam::{d}:role/ferry/ferry-target"),
                     "externalId": "ferry-e2e-ext-d", "kmsKeyId": d_key}],
    });
    let execution = world
        .run("distribute-image", &run_name("distribute"), &input)
        .await;
    let out = execution.assert_succeeded().clone();
    eprintln!("{out:#}");
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let by = |a: &str| {
        results
            .iter()
            .find(|r| r["accountId"] == a)
            .unwrap()
            .clone()
    };
    for t in [&tb, &tc] {
        let r = by(&t.account_id);
        assert_eq!(r["status"], "SUCCEEDED", "{r}");
        let copy = image_as(&t.config, r["imageId"].as_str().unwrap()).await;
        assert_eq!(copy.owner_id(), Some(t.account_id.as_str()));
        assert_eq!(
            snapshot_keys(&t.config, &copy).await,
            vec![t.key_arn.clone()]
        );
        assert!(
            !sees(&t.config, &image).await,
            "share revoked for {}",
            t.account_id
        );
        assert_eq!(grants_for(&world, &key_a, &t.account_id).await, 0);
    }
    let failed = by(&d);
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["error"], "Ferry.TargetAccessDenied", "{failed}");
    assert!(
        failed["cause"].as_str().unwrap().contains("sts:AssumeRole"),
        "{failed}"
    );
    // d copied nothing; it was shared with (the report says so) and still sees it.
    let d_images = aws_sdk_ec2::Client::new(&d_config)
        .describe_images()
        .owners("self")
        .send()
        .await
        .unwrap();
    assert!(d_images.images().is_empty());

    // Rule 8: at most 20 copies in flight per destination region.
    let asl: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../statemachines/distribute-image.asl.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let max = asl["States"]["CopyToTargets"]["MaxConcurrency"]
        .as_u64()
        .unwrap();
    assert!((1..=20).contains(&max), "MaxConcurrency {max}");
    let copy_calls = world.calls("ec2", "CopyImage");
    let accounts: std::collections::BTreeSet<String> = copy_calls
        .iter()
        .map(|c| c["account"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        accounts,
        [b.clone(), c.clone()].into_iter().collect(),
        "{copy_calls:?}"
    );
    assert!(copy_calls.len() <= 20);
}

/// failFast: the first failed target fails the execution with its own error.
#[tokio::test(flavor = "multi_thread")]
async fn fail_fast_fails_the_execution_with_the_targets_error() {
    let (_guard, world) = setup().await;
    let d = account(7);
    let key_a = hub_key(&world, "failfast").await;
    let image = make_image(
        &world,
        &world.config,
        &run_name("ff-src"),
        Some(Some(&key_a)),
    )
    .await;
    let input = json!({
        "share": {"imageId": image},
        "failFast": true,
        "targets": [{"accountId": d, "roleArn": format!("arn:aws:iam::{d}:role/ferry/ferry-target"),
                     "externalId": "ferry-e2e-ext-d", "kmsKeyId": "alias/ferry-copies"}],
    });
    world
        .run("distribute-image", &run_name("failfast"), &input)
        .await
        .assert_failed_with("Ferry.TargetAccessDenied");
}

/// Issue 8, 2.5: the source image is in another region than the hub's (where
/// revoke-share runs). The revoke after the copy must act there: B no longer sees the
/// image, its snapshot is no longer shared with B, and `revoked` says so.
#[tokio::test(flavor = "multi_thread")]
async fn the_revoke_acts_in_the_source_images_region() {
    let (_guard, world) = setup().await;
    const OTHER: &str = "eu-west-1";
    assert_ne!(world.region, OTHER);
    let b = account(4);
    let in_other = |c: &aws_config::SdkConfig| {
        c.to_builder()
            .region(aws_config::Region::new(OTHER))
            .build()
    };
    let hub = in_other(&world.config);
    let image = make_image(&world, &hub, &run_name("copy-other-region"), None).await;
    // Shared with B there (by hand: share-image runs in the hub's region).
    let ec2 = aws_sdk_ec2::Client::new(&hub);
    ec2.modify_image_attribute()
        .image_id(&image)
        .launch_permission(
            ec2t::LaunchPermissionModifications::builder()
                .add(ec2t::LaunchPermission::builder().user_id(&b).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let snap = image_as(&hub, &image).await.block_device_mappings()[0]
        .ebs()
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_string();
    ec2.modify_snapshot_attribute()
        .snapshot_id(&snap)
        .attribute(ec2t::SnapshotAttributeName::CreateVolumePermission)
        .create_volume_permission(
            ec2t::CreateVolumePermissionModifications::builder()
                .add(ec2t::CreateVolumePermission::builder().user_id(&b).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    // B's key and ferry role for copies made in that region.
    let b_config = in_other(&world.as_account(&b).await);
    let key_b = create_key(&b_config, "ferry copies in eu-west-1 (CMK-B)", None).await;
    let role = world.control(
        "POST",
        "/ferry-world/stacks",
        Some(&json!({"template": "target-account.yaml", "account": b,
            "parameters": {"HubAccountId": world.hub_account_id,
                "ExternalId": "ferry-e2e-ext-region", "TargetKmsKeyArn": key_b}})),
    )["outputs"]["RoleArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(sees(&b_config, &image).await, "shared with B in {OTHER}");

    let execution = world
        .run(
            "copy-image",
            &run_name("copy-other-region"),
            &json!({"sourceImageId": image, "sourceRegion": OTHER, "targetRegion": OTHER,
                "targetAccountId": b, "targetRoleArn": role,
                "externalId": "ferry-e2e-ext-region", "targetKmsKeyId": key_b}),
        )
        .await;
    let out = execution.assert_succeeded().clone();
    assert_eq!(out["revoked"], true, "{out}");
    assert!(
        !sees(&b_config, &image).await,
        "the share was revoked in {OTHER}"
    );
    let cvp = ec2
        .describe_snapshot_attribute()
        .snapshot_id(&snap)
        .attribute(ec2t::SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .unwrap();
    assert!(
        !cvp.create_volume_permissions()
            .iter()
            .any(|p| p.user_id() == Some(b.as_str())),
        "the snapshot is no longer shared with B"
    );
    let copy = out["imageId"].as_str().unwrap();
    assert_eq!(image_as(&b_config, copy).await.owner_id(), Some(b.as_str()));
}

/// World settings changed for one test, put back when it ends (even if it panics).
struct Settings<'a> {
    world: &'a World,
    before: Value,
}

impl<'a> Settings<'a> {
    fn set(world: &'a World, values: Value) -> Self {
        let all = world.control("GET", "/ferry-world/config", None);
        let before: serde_json::Map<String, Value> = values
            .as_object()
            .unwrap()
            .keys()
            .map(|k| (k.clone(), all[k].clone()))
            .collect();
        world.set_config(values);
        Settings {
            world,
            before: Value::Object(before),
        }
    }
}

impl Drop for Settings<'_> {
    fn drop(&mut self) {
        self.world.set_config(self.before.clone());
    }
}

/// Issue 2.9 (aws-rules 19 and 23): distribute-image copies right after its share, when
/// neither the launch permission (shares reach B 15 simulated minutes after
/// ModifyImageAttribute) nor the KMS grant for CMK-A (25 minutes after CreateGrant) is in
/// effect yet. The copy's Preflight waits for the share instead of refusing the image as
/// not shared; a copy that failed because the grant was not in effect is removed and
/// made again after a wait. B ends with one copy under CMK-B and nothing else.
#[tokio::test(flavor = "multi_thread")]
async fn a_copy_right_after_its_share_waits_for_the_share_and_the_grant() {
    let (_guard, world) = setup().await;
    let b = account(8);
    let key_a = hub_key(&world, "propagation").await;
    let image = make_image(
        &world,
        &world.config,
        &run_name("propagation-src"),
        Some(Some(&key_a)),
    )
    .await;
    let tb = target_account(&world, &b, "ferry-e2e-ext-prop", Some(&key_a)).await;
    let _slow = Settings::set(
        &world,
        json!({"sharePropagationSeconds": 900, "kmsGrantDelaySeconds": 1500}),
    );
    let input = json!({
        "share": {"imageId": image},
        "targets": [{"accountId": tb.account_id, "roleArn": tb.role_arn,
                     "externalId": tb.external_id, "kmsKeyId": tb.key_arn}],
    });
    let execution = world
        .run("distribute-image", &run_name("propagation"), &input)
        .await;
    let out = execution.assert_succeeded().clone();
    let result = &out["results"][0];
    assert_eq!(result["status"], "SUCCEEDED", "{out:#}");
    let copy = image_as(&tb.config, result["imageId"].as_str().unwrap()).await;
    assert_eq!(copy.owner_id(), Some(b.as_str()));
    assert_eq!(copy.state().map(|s| s.as_str()), Some("available"));
    assert_eq!(
        snapshot_keys(&tb.config, &copy).await,
        vec![tb.key_arn.clone()]
    );
    // B copied twice (the first copy failed on CMK-A's grant) and kept only the second:
    // the failed copy and its snapshots are gone.
    let copy_calls: Vec<Value> = world
        .calls("ec2", "CopyImage")
        .into_iter()
        .filter(|c| c["account"] == b.as_str())
        .collect();
    assert_eq!(copy_calls.len(), 2, "{copy_calls:#?}");
    let owned = aws_sdk_ec2::Client::new(&tb.config)
        .describe_images()
        .owners("self")
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = owned.images().iter().filter_map(|i| i.image_id()).collect();
    assert_eq!(ids, vec![copy.image_id().unwrap()], "B owns only the copy");
    let snaps = aws_sdk_ec2::Client::new(&tb.config)
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .unwrap();
    let mut snap_ids: Vec<String> = snaps
        .snapshots()
        .iter()
        .filter_map(|s| s.snapshot_id().map(str::to_string))
        .collect();
    snap_ids.sort();
    let mut copy_snaps: Vec<String> = copy
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
        .collect();
    copy_snaps.sort();
    assert_eq!(snap_ids, copy_snaps, "B keeps only the copy's snapshots");
    // The share was revoked after the copy, its grant retired.
    assert!(!sees(&tb.config, &image).await);
    assert_eq!(grants_for(&world, &key_a, &b).await, 0);
}
