//! Dry runs (`"dryRun": true`) of the five real state machines on the real Lambdas in the
//! local AWS world: each one SUCCEEDS with its plan, the world's call records show no
//! mutating AWS call while it ran (by anyone: the hub's Lambdas, the sessions they assume
//! in target accounts, nested executions), and AWS looks afterwards as it did before (no
//! image, instance, launch or snapshot permission, grant or copy). A dry run with bad
//! input is still refused by name.
//!
//! Run: `FERRY_WORLD_JSON=<state dir>/world.json cargo test --workspace --test dry_run --
//! --nocapture`.

use aws_sdk_ec2::types as ec2t;
use ferry_e2e::accounts::*;
use ferry_e2e::targets::*;
use ferry_e2e::*;
use serde_json::{json, Value};
use std::time::Instant;

async fn setup() -> (tokio::sync::MutexGuard<'static, ()>, World) {
    serial_world().await
}

/// A fresh account id per run (see [`fresh_account_id`]).
fn account(n: u64) -> String {
    fresh_account_id(400_000_000_000, n)
}

fn describe_call(call: &Value) -> String {
    format!(
        "{}:{} by {} in {}",
        call["service"].as_str().unwrap_or("?"),
        call["action"].as_str().unwrap_or("?"),
        call["caller"]
            .as_str()
            .or(call["accessKey"].as_str())
            .unwrap_or("?"),
        call["account"].as_str().unwrap_or("?"),
    )
}

/// An execution and the mutating calls the world recorded while it ran.
struct Observed {
    execution: Execution,
    mutating: Vec<String>,
    /// Every call recorded meanwhile (to show the window saw the run).
    calls: usize,
    real_seconds: f64,
}

/// Runs `machine` and collects every call the world recorded between two markers around
/// the run (nothing else runs in this world meanwhile: the tests hold [`SERIAL`]).
async fn observe(world: &World, machine: &str, label: &str, input: &Value) -> Observed {
    let started = Instant::now();
    let from = call_marker(world).await;
    let execution = world.run(machine, &run_name(label), input).await;
    let to = call_marker(world).await;
    let during = calls_between(world, from, Some(to));
    Observed {
        mutating: during
            .iter()
            .filter(|c| is_mutating_call(c))
            .map(describe_call)
            .collect(),
        calls: during.len(),
        execution,
        real_seconds: started.elapsed().as_secs_f64(),
    }
}

/// A dry run: it succeeds, its output is a dry run's report of `workflow`, and no
/// mutating call was made while it ran (while it did read: the window is not empty).
async fn dry_run(world: &World, machine: &str, label: &str, input: Value) -> (Execution, Value) {
    let o = observe(world, machine, label, &input).await;
    let out = o.execution.assert_succeeded().clone();
    println!(
        "{machine} dry run: SUCCEEDED in {:.1} s real ({} s simulated), {} calls, {} mutating",
        o.real_seconds,
        o.execution.simulated_seconds,
        o.calls,
        o.mutating.len()
    );
    assert!(
        o.mutating.is_empty(),
        "{machine} dry run made mutating calls: {:?}",
        o.mutating
    );
    assert!(
        o.calls > 2,
        "{machine}: no AWS call recorded during the run"
    );
    assert_eq!(out["dryRun"], true, "{out}");
    assert_eq!(out["workflow"], machine, "{out}");
    assert!(out["warnings"].is_array(), "{out}");
    (o.execution, out)
}

/// The states an execution entered, in order.
async fn states_entered(world: &World, arn: &str) -> Vec<String> {
    world
        .history(arn)
        .await
        .iter()
        .filter_map(|e| e.state_entered_event_details())
        .map(|d| d.name().to_string())
        .collect()
}

async fn launch_permissions(config: &aws_config::SdkConfig, image: &str) -> Vec<String> {
    aws_sdk_ec2::Client::new(config)
        .describe_image_attribute()
        .image_id(image)
        .attribute(ec2t::ImageAttributeName::LaunchPermission)
        .send()
        .await
        .expect("DescribeImageAttribute")
        .launch_permissions()
        .iter()
        .map(|p| {
            p.user_id()
                .map(str::to_string)
                .or(p.group().map(|g| g.as_str().to_string()))
                .unwrap_or_default()
        })
        .collect()
}

async fn snapshot_of(world: &World, image: &str) -> String {
    world
        .ec2()
        .describe_images()
        .image_ids(image)
        .send()
        .await
        .expect("DescribeImages")
        .images()[0]
        .block_device_mappings()[0]
        .ebs()
        .and_then(|e| e.snapshot_id())
        .unwrap()
        .to_string()
}

async fn volume_permissions(world: &World, snapshot: &str) -> Vec<String> {
    world
        .ec2()
        .describe_snapshot_attribute()
        .snapshot_id(snapshot)
        .attribute(ec2t::SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .expect("DescribeSnapshotAttribute")
        .create_volume_permissions()
        .iter()
        .filter_map(|p| p.user_id().map(str::to_string))
        .collect()
}

/// The ids of the grants on the hub's `key`.
async fn grant_ids(world: &World, key: &str) -> Vec<String> {
    grants(world, key)
        .await
        .iter()
        .map(|g| g.grant_id().unwrap_or_default().to_string())
        .collect()
}

/// The images an account owns.
async fn own_images(config: &aws_config::SdkConfig) -> Vec<String> {
    aws_sdk_ec2::Client::new(config)
        .describe_images()
        .owners("self")
        .send()
        .await
        .expect("DescribeImages")
        .images()
        .iter()
        .filter_map(|i| i.image_id().map(str::to_string))
        .collect()
}

/// A real share-image run (the hub shares `image` with `accounts`): its output, and the
/// proof that the call records of [`observe`] do see a run's mutating calls.
async fn share_for_real(world: &World, image: &str, accounts: &[&str]) -> Value {
    let o = observe(
        world,
        "share-image",
        "dry-real-share",
        &json!({"imageId": image, "accountIds": accounts}),
    )
    .await;
    let out = o.execution.assert_succeeded().clone();
    assert!(
        o.mutating
            .iter()
            .any(|c| c.starts_with("ec2:ModifyImageAttribute")),
        "a run's ModifyImageAttribute is not in the call records: {:?}",
        o.mutating
    );
    out
}

// --- migrate-instance -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn migrate_instance_dry_run_plans_the_move_and_changes_nothing() {
    let (_guard, world) = setup().await;
    let web = web_server(&world, &run_name("dry-web")).await;
    let before = instance(&world, &web.instance_id).await;
    let (execution, out) = dry_run(
        &world,
        "migrate-instance",
        "dry-migrate",
        json!({
            "sourceInstanceId": web.instance_id,
            "targetSubnetId": web.subnet_b,
            "stopSource": true,
            "sourceAction": "stop",
            "tags": {"change": "CHG-4711"},
            "dryRun": true,
        }),
    )
    .await;
    let plan = &out["plan"];
    // the instance it would launch: subnet, AZ, type, groups, tags, volumes
    let i = &plan["instance"];
    assert_eq!(i["subnetId"], web.subnet_b);
    assert_eq!(i["availabilityZone"], world.az('b'));
    assert_eq!(i["instanceType"], "t3.micro");
    assert_eq!(i["securityGroupIds"], json!([web.security_group_id]));
    assert_eq!(i["iamInstanceProfileArn"], web.instance_profile_arn);
    assert_eq!(i["keyName"], web.key_name);
    assert_eq!(i["tags"]["team"], "storefront");
    assert_eq!(i["tags"]["change"], "CHG-4711");
    assert_eq!(i["tags"]["ferry:workflow"], "migrate-instance");
    assert_eq!(i["terminationProtection"], true);
    assert_eq!(i["volumes"].as_array().unwrap().len(), 2);
    assert_eq!(i["volumes"][0]["kmsKeyId"], web.key_arn);
    // the image it would create, and what would happen to the source
    let image_name = plan["image"]["name"].as_str().unwrap().to_string();
    assert!(image_name.contains(&web.instance_id), "{image_name}");
    assert_eq!(plan["image"]["kept"], false);
    assert_eq!(plan["source"]["instanceId"], web.instance_id);
    assert_eq!(plan["source"]["stoppedBeforeImaging"], true);
    assert_eq!(plan["source"]["sourceAction"], "stop");
    assert_eq!(plan["source"]["elasticIpsMoved"], json!([web.public_ip]));
    assert!(out["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("new private IP")));
    // only Preflight ran
    assert_eq!(
        states_entered(&world, &execution.arn).await,
        ["Preflight", "DryRun?", "Planned"]
    );
    // AWS: the source as it was, nothing made
    let after = instance(&world, &web.instance_id).await;
    assert_eq!(state(&after), "running");
    assert_eq!(after.subnet_id(), before.subnet_id());
    assert_eq!(
        after.public_ip_address(),
        Some(web.public_ip.as_str()),
        "the Elastic IP stays"
    );
    let (instances, images, snapshots) = ferry_made(&world, &execution.arn).await;
    assert!(instances.is_empty() && images.is_empty() && snapshots.is_empty());
    let named = world
        .ec2()
        .describe_images()
        .owners("self")
        .filters(
            ec2t::Filter::builder()
                .name("name")
                .values(&image_name)
                .build(),
        )
        .send()
        .await
        .expect("DescribeImages")
        .images()
        .len();
    assert_eq!(named, 0, "no image {image_name}");
    let in_b = world
        .ec2()
        .describe_instances()
        .filters(
            ec2t::Filter::builder()
                .name("subnet-id")
                .values(&web.subnet_b)
                .build(),
        )
        .send()
        .await
        .expect("DescribeInstances")
        .reservations()
        .len();
    assert_eq!(in_b, 0, "no instance in the target subnet");
}

// --- share-image ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn share_image_dry_run_plans_permissions_and_grants_and_shares_nothing() {
    let (_guard, world) = setup().await;
    let key = create_key(&world.config, "ferry e2e dry-run share (CMK-A)", None).await;
    let image = make_image(
        &world,
        &world.config,
        &run_name("dry-share"),
        Some(Some(&key)),
    )
    .await;
    let snapshot = snapshot_of(&world, &image).await;
    let (b, c) = (account(1), account(2));
    let (_, out) = dry_run(
        &world,
        "share-image",
        "dry-share",
        json!({"imageId": image, "accountIds": [b, c], "dryRun": true}),
    )
    .await;
    let plan = &out["plan"];
    assert_eq!(plan["imageId"], image);
    assert_eq!(plan["ownerAccountId"], world.hub_account_id);
    assert_eq!(
        plan["launchPermissions"],
        json!([{"userId": b}, {"userId": c}])
    );
    assert_eq!(
        plan["snapshotPermissions"],
        json!([{"snapshotId": snapshot, "userId": b}, {"snapshotId": snapshot, "userId": c}])
    );
    let grants: Vec<(String, String)> = plan["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            assert!(
                g["name"].as_str().unwrap().starts_with("ferry-share-"),
                "{g}"
            );
            (
                g["keyArn"].as_str().unwrap().to_string(),
                g["granteeAccountId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(grants, [(key.clone(), b.clone()), (key.clone(), c.clone())]);
    assert_eq!(plan["grantOperations"].as_array().unwrap().len(), 6);
    assert_eq!(plan["reencrypt"], Value::Null);
    // AWS: nothing shared
    assert!(launch_permissions(&world.config, &image).await.is_empty());
    assert!(volume_permissions(&world, &snapshot).await.is_empty());
    assert!(grant_ids(&world, &key).await.is_empty());
    assert!(!sees(&world.as_account(&b).await, &image).await);
}

// --- revoke-share -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn revoke_share_dry_run_lists_what_it_would_remove_and_removes_nothing() {
    let (_guard, world) = setup().await;
    let key = create_key(&world.config, "ferry e2e dry-run revoke (CMK-A)", None).await;
    let image = make_image(
        &world,
        &world.config,
        &run_name("dry-revoke"),
        Some(Some(&key)),
    )
    .await;
    let snapshot = snapshot_of(&world, &image).await;
    let b = account(3);
    let shared = share_for_real(&world, &image, &[&b]).await;
    let record = shared["record"].clone();
    let grant_id = record["grants"][0]["grantId"].as_str().unwrap().to_string();
    let check_nothing_removed = || async {
        assert_eq!(
            launch_permissions(&world.config, &image).await,
            [b.as_str()]
        );
        assert_eq!(volume_permissions(&world, &snapshot).await, [b.as_str()]);
        assert_eq!(grant_ids(&world, &key).await, [grant_id.as_str()]);
    };
    check_nothing_removed().await;

    // By record: exactly what the share granted, still there.
    let (execution, out) = dry_run(
        &world,
        "revoke-share",
        "dry-revoke-record",
        json!({"record": record, "dryRun": true}),
    )
    .await;
    let plan = &out["plan"];
    assert_eq!(plan["imageId"], image);
    assert_eq!(plan["launchPermissions"], json!([{"userId": b}]));
    assert_eq!(
        plan["snapshotPermissions"],
        json!([{"snapshotId": snapshot, "userId": b}])
    );
    assert_eq!(plan["grants"][0]["grantId"], grant_id);
    assert_eq!(
        states_entered(&world, &execution.arn).await,
        ["RevokeShare", "DryRun?", "Planned"]
    );
    check_nothing_removed().await;

    // By image and account: the same, found by reading.
    let (_, out) = dry_run(
        &world,
        "revoke-share",
        "dry-revoke-image",
        json!({"imageId": image, "accountIds": [b], "dryRun": true}),
    )
    .await;
    assert_eq!(out["plan"]["launchPermissions"], json!([{"userId": b}]));
    assert_eq!(out["plan"]["grants"][0]["grantId"], grant_id);
    check_nothing_removed().await;
    assert!(sees(&world.as_account(&b).await, &image).await);
}

// --- copy-image -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn copy_image_dry_run_plans_the_copy_and_neither_copies_nor_revokes() {
    let (_guard, world) = setup().await;
    let key_a = create_key(&world.config, "ferry e2e dry-run copy (CMK-A)", None).await;
    let image = make_image(
        &world,
        &world.config,
        &run_name("dry-copy"),
        Some(Some(&key_a)),
    )
    .await;
    let b = account(4);
    let target = target_account(&world, &b, "ferry-e2e-dry-ext", Some(&key_a)).await;
    let shared = share_for_real(&world, &image, &[&b]).await;
    let grants_before = grant_ids(&world, &key_a).await;
    assert_eq!(grants_before.len(), 1);
    let (execution, out) = dry_run(
        &world,
        "copy-image",
        "dry-copy",
        json!({
            "sourceImageId": image,
            "sourceRegion": world.region,
            "targetAccountId": b,
            "targetRoleArn": target.role_arn,
            "externalId": target.external_id,
            "targetKmsKeyId": target.key_arn,
            "name": "golden-web-dry",
            "share": shared,
            "dryRun": true,
        }),
    )
    .await;
    let plan = &out["plan"];
    assert_eq!(plan["copyName"], "golden-web-dry");
    assert_eq!(plan["targetAccountId"], b);
    assert_eq!(plan["targetRegion"], world.region);
    assert_eq!(plan["targetKmsKeyArn"], target.key_arn);
    assert_eq!(plan["sourceAccountId"], world.hub_account_id);
    assert_eq!(plan["sourceSeenByTarget"], true);
    assert_eq!(plan["tags"]["ferry:source-image"], image);
    assert_eq!(plan["tags"]["ferry:workflow"], "copy-image");
    assert_eq!(plan["revokeAfterCopy"], true);
    assert_eq!(
        plan["revoke"]["record"]["launchPermissions"],
        json!([{"userId": b}])
    );
    assert!(!states_entered(&world, &execution.arn)
        .await
        .iter()
        .any(|s| s == "StartCopy" || s == "RevokeShare"));
    // AWS: no copy in B, the share as it was
    assert!(
        own_images(&target.config).await.is_empty(),
        "B owns no image"
    );
    assert_eq!(
        launch_permissions(&world.config, &image).await,
        [b.as_str()]
    );
    assert_eq!(grant_ids(&world, &key_a).await, grants_before);
    assert!(sees(&target.config, &image).await);
}

// --- distribute-image -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn distribute_image_dry_run_plans_the_share_and_each_copy_and_changes_nothing() {
    let (_guard, world) = setup().await;
    let key_a = create_key(&world.config, "ferry e2e dry-run distribute (CMK-A)", None).await;
    let image = make_image(
        &world,
        &world.config,
        &run_name("dry-distribute"),
        Some(Some(&key_a)),
    )
    .await;
    let snapshot = snapshot_of(&world, &image).await;
    let (b, c, d) = (account(5), account(6), account(7));
    let tb = target_account(&world, &b, "ferry-e2e-dry-ext-b", Some(&key_a)).await;
    let tc = target_account(&world, &c, "ferry-e2e-dry-ext-c", Some(&key_a)).await;
    let target = |t: &Target, name: &str| {
        json!({"accountId": t.account_id, "roleArn": t.role_arn, "externalId": t.external_id,
               "kmsKeyId": t.key_arn, "name": name})
    };
    // D has no ferry role: its copy would be refused.
    let no_role = json!({
        "accountId": d,
        "roleArn": format!("arn:aws:iam::{d}:role/ferry/ferry-target"),
        "externalId": "ferry-e2e-dry-ext-d",
        "kmsKeyId": format!("arn:aws:kms:{}:{d}:key/1234abcd-12ab-34cd-56ef-1234567890ab", world.region),
    });
    let (execution, out) = dry_run(
        &world,
        "distribute-image",
        "dry-distribute",
        json!({
            "share": {"imageId": image},
            "targets": [target(&tb, "golden-b"), target(&tc, "golden-c"), no_role],
            "dryRun": true,
        }),
    )
    .await;
    let plan = &out["plan"];
    assert_eq!(plan["imageId"], image);
    // the share, as share-image's dry run plans it
    let share = &plan["share"];
    assert_eq!(share["dryRun"], true);
    assert_eq!(share["workflow"], "share-image");
    assert_eq!(
        share["plan"]["launchPermissions"],
        json!([{"userId": b}, {"userId": c}, {"userId": d}])
    );
    assert_eq!(share["plan"]["grants"].as_array().unwrap().len(), 3);
    // one line per target: B and C planned, D refused by name
    let copies = plan["copies"].as_array().unwrap();
    assert_eq!(copies.len(), 3);
    for (line, t, name) in [(&copies[0], &tb, "golden-b"), (&copies[1], &tc, "golden-c")] {
        assert_eq!(line["accountId"], t.account_id, "{line}");
        assert_eq!(line["status"], "PLANNED", "{line}");
        assert_eq!(line["copyName"], name);
        assert_eq!(line["targetKmsKeyArn"], t.key_arn);
        assert_eq!(line["revokeAfterCopy"], true);
        assert!(
            line["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w.as_str().unwrap().contains("not shared with")),
            "{line}"
        );
    }
    assert_eq!(copies[2]["accountId"], d);
    assert_eq!(copies[2]["status"], "REFUSED");
    assert_eq!(
        copies[2]["error"], "Ferry.TargetAccessDenied",
        "{}",
        copies[2]
    );
    assert!(out["warnings"][0].as_str().unwrap().contains("Not checked"));
    // B's nested copy-image dry run holds B's full copy plan
    let copy_machine = &world.state_machines["copy-image"];
    let nested = format!(
        "{}:{}",
        copy_machine.replace(":stateMachine:", ":execution:"),
        copies[0]["executionName"].as_str().unwrap()
    );
    let b_copy = world.wait(&nested).await;
    let b_plan = &b_copy.assert_succeeded()["plan"];
    assert_eq!(b_plan["sourceSeenByTarget"], false);
    assert_eq!(b_plan["tags"]["ferry:source-image"], image);
    let entered = states_entered(&world, &execution.arn).await;
    assert!(
        !entered.iter().any(|s| s == "Share" || s == "CopyToTarget"),
        "{entered:?}"
    );
    // AWS: nothing shared, granted or copied
    assert!(launch_permissions(&world.config, &image).await.is_empty());
    assert!(volume_permissions(&world, &snapshot).await.is_empty());
    assert!(grant_ids(&world, &key_a).await.is_empty());
    assert!(!sees(&tb.config, &image).await);
    assert!(own_images(&tb.config).await.is_empty());
    assert!(own_images(&tc.config).await.is_empty());
}

// --- bad input --------------------------------------------------------------------------

/// A dry run is refused as a run is: the same checks, the same names, and still no
/// mutating call.
#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_with_bad_input_is_still_refused_by_name() {
    let (_guard, world) = setup().await;
    let key = create_key(&world.config, "ferry e2e dry-run refusals (CMK-A)", None).await;
    let image = make_image(
        &world,
        &world.config,
        &run_name("dry-bad"),
        Some(Some(&key)),
    )
    .await;
    let b = account(8);
    let target = target_account(&world, &b, "ferry-e2e-dry-ext-bad", Some(&key)).await;
    let web = web_server(&world, &run_name("dry-bad-web")).await;
    let copy = json!({
        "sourceImageId": image, "sourceRegion": world.region, "targetAccountId": b,
        "targetRoleArn": target.role_arn, "externalId": target.external_id,
        "targetKmsKeyId": target.key_arn, "dryRun": true,
    });
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "migrate-instance",
            json!({"sourceInstanceId": "i-0123456789abcdef0", "targetSubnetId": web.subnet_b, "dryRun": true}),
            "Ferry.InstanceNotFound",
        ),
        (
            "migrate-instance",
            json!({"sourceInstanceId": web.instance_id, "targetSubnetId": web.subnet_a, "dryRun": true}),
            "Ferry.SameAvailabilityZone",
        ),
        (
            "migrate-instance",
            json!({"sourceInstanceId": web.instance_id, "targetSubnetId": web.subnet_b, "dryRun": "yes"}),
            "Ferry.InvalidInput",
        ),
        (
            "share-image",
            json!({"imageId": image, "public": true, "dryRun": true}),
            "Ferry.EncryptedImageCannotBePublic",
        ),
        (
            "revoke-share",
            json!({"imageId": image, "accountIds": [], "dryRun": true}),
            "Ferry.InvalidInput",
        ),
        // not shared with B: the target does not see it
        ("copy-image", copy.clone(), "Ferry.ImageNotFound"),
        (
            "distribute-image",
            json!({"share": {"imageId": image, "dryRun": true},
                   "targets": [{"accountId": b, "roleArn": target.role_arn,
                                "externalId": target.external_id, "kmsKeyId": target.key_arn}]}),
            "Ferry.InvalidInput",
        ),
        // the nested share-image dry run refuses: distribute-image fails with its name
        (
            "distribute-image",
            json!({"share": {"imageId": image, "public": true},
                   "targets": [{"accountId": b, "roleArn": target.role_arn,
                                "externalId": target.external_id, "kmsKeyId": target.key_arn}],
                   "dryRun": true}),
            "Ferry.EncryptedImageCannotBePublic",
        ),
    ];
    let mut problems = Vec::new();
    for (i, (machine, input, error)) in cases.iter().enumerate() {
        let o = observe(&world, machine, &format!("dry-bad-{i}"), input).await;
        println!(
            "{machine} dry run (bad input {i}): {} {} in {:.1} s, {} mutating calls",
            o.execution.status,
            o.execution.error.as_deref().unwrap_or("-"),
            o.real_seconds,
            o.mutating.len()
        );
        if o.execution.status != "FAILED" || o.execution.error.as_deref() != Some(error) {
            problems.push(format!(
                "{machine} {input}: expected {error}, got {} {:?} ({:?})",
                o.execution.status, o.execution.error, o.execution.cause
            ));
        }
        if !o.mutating.is_empty() {
            problems.push(format!(
                "{machine} {input}: mutating calls {:?}",
                o.mutating
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // AWS: nothing shared, the source as it was
    assert!(launch_permissions(&world.config, &image).await.is_empty());
    assert!(grant_ids(&world, &key).await.is_empty());
    assert_eq!(state(&instance(&world, &web.instance_id).await), "running");
}
