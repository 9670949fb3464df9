//! End-to-end runs of the real `distribute-image` state machine in the local AWS world,
//! at its edges: one target account in two regions (issue 8, 2.6) and the largest
//! number of targets an execution takes (`MAX_TARGETS`, issue 8, 2.7). The hub (account
//! A) owns an AMI under its CMK-A; each target account has the ferry role of
//! target-account.yaml and its own CMK-B. Every assertion is on AWS state as each
//! account sees it, or on the execution's own history.

use aws_sdk_ec2::types as ec2t;
use ferry_core::distribute::{MAX_TARGETS, SFN_PAYLOAD_LIMIT};
use ferry_e2e::accounts::*;
use ferry_e2e::targets::*;
use ferry_e2e::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

async fn setup() -> (tokio::sync::MutexGuard<'static, ()>, World) {
    let (guard, world) = serial_world().await;
    world.control("DELETE", "/ferry-world/calls", None);
    (guard, world)
}

/// Fresh account ids per run (the world outlives test runs; accounts are global):
/// `count` consecutive ids in a block of 1000 of its own, starting at `base`.
fn fresh_accounts(base: u64, count: usize) -> Vec<String> {
    assert!(count <= 1000);
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    (0..count as u64)
        .map(|i| format!("{:012}", base + (micros % 1_000_000) * 1000 + i))
        .collect()
}

fn snapshot_ids(image: &ec2t::Image) -> Vec<String> {
    image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
        .collect()
}

/// The snapshots of an image as its owner sees them: (owner, KMS key or "unencrypted").
async fn snapshots_of(
    config: &aws_config::SdkConfig,
    image: &ec2t::Image,
) -> Vec<(String, String)> {
    let ids = snapshot_ids(image);
    assert!(!ids.is_empty(), "{image:?} has no snapshots");
    aws_sdk_ec2::Client::new(config)
        .describe_snapshots()
        .set_snapshot_ids(Some(ids))
        .send()
        .await
        .expect("DescribeSnapshots")
        .snapshots()
        .iter()
        .map(|s| {
            (
                s.owner_id().unwrap_or_default().to_string(),
                s.kms_key_id().unwrap_or("unencrypted").to_string(),
            )
        })
        .collect()
}

/// What the hub's image is shared with right now, seen by its owner: launch permissions
/// (user ids), createVolumePermission per snapshot (snapshot, user id), and the grants
/// on `key` (grant id, grantee account).
#[derive(Debug, PartialEq, Eq)]
struct ShareState {
    launch: BTreeSet<String>,
    volumes: BTreeSet<(String, String)>,
    grants: BTreeSet<(String, String)>,
}

async fn share_state(world: &World, image_id: &str, key: &str) -> ShareState {
    let ec2 = world.ec2();
    let launch = ec2
        .describe_image_attribute()
        .image_id(image_id)
        .attribute(ec2t::ImageAttributeName::LaunchPermission)
        .send()
        .await
        .expect("DescribeImageAttribute")
        .launch_permissions()
        .iter()
        .map(|p| {
            p.user_id()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{p:?}"))
        })
        .collect();
    let mut volumes = BTreeSet::new();
    for snap in snapshot_ids(&image_as(&world.config, image_id).await) {
        let cvp = ec2
            .describe_snapshot_attribute()
            .snapshot_id(&snap)
            .attribute(ec2t::SnapshotAttributeName::CreateVolumePermission)
            .send()
            .await
            .expect("DescribeSnapshotAttribute");
        for p in cvp.create_volume_permissions() {
            let who = p
                .user_id()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{p:?}"));
            volumes.insert((snap.clone(), who));
        }
    }
    // Every grant on the key, all pages (ListGrants answers 50 at a time by default).
    let mut grants = BTreeSet::new();
    let mut marker = None;
    loop {
        let page = world
            .kms()
            .list_grants()
            .key_id(key)
            .set_marker(marker)
            .send()
            .await
            .expect("ListGrants");
        for g in page.grants() {
            let grantee = g.grantee_principal().unwrap_or_default();
            let account = grantee.split(':').nth(4).unwrap_or(grantee).to_string();
            grants.insert((g.grant_id().unwrap_or_default().to_string(), account));
        }
        marker = page.next_marker().map(str::to_string);
        if !page.truncated() || marker.is_none() {
            break;
        }
    }
    ShareState {
        launch,
        volumes,
        grants,
    }
}

/// What a share-image record (its output's `record`) says it granted, to `accounts` only.
fn reported_share(record: &Value, accounts: &[String]) -> ShareState {
    let of = |a: &str| accounts.iter().any(|x| x == a);
    let list = |k: &str| record[k].as_array().cloned().unwrap_or_default();
    ShareState {
        launch: list("launchPermissions")
            .iter()
            .filter_map(|p| p["userId"].as_str())
            .filter(|a| of(a))
            .map(str::to_string)
            .collect(),
        volumes: list("snapshotPermissions")
            .iter()
            .filter(|p| of(p["userId"].as_str().unwrap_or_default()))
            .map(|p| {
                (
                    p["snapshotId"].as_str().unwrap_or_default().to_string(),
                    p["userId"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        grants: list("grants")
            .iter()
            .filter(|g| of(g["granteeAccountId"].as_str().unwrap_or_default()))
            .map(|g| {
                (
                    g["grantId"].as_str().unwrap_or_default().to_string(),
                    g["granteeAccountId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect(),
    }
}

fn target_json(t: &Target) -> Value {
    json!({"accountId": t.account_id, "roleArn": t.role_arn, "externalId": t.external_id,
           "kmsKeyId": t.key_arn})
}

/// Every state input/output, task parameter and result of an execution's history with
/// its size in bytes (UTF-8), as (size, event id, what).
async fn payload_sizes(world: &World, execution_arn: &str) -> Vec<(usize, i64, String)> {
    let mut out = Vec::new();
    for e in world.history(execution_arn).await {
        let id = e.id();
        let mut add = |what: &str, payload: Option<&str>| {
            if let Some(p) = payload {
                out.push((p.len(), id, what.to_string()));
            }
        };
        if let Some(d) = e.execution_started_event_details() {
            add("ExecutionStarted input", d.input());
        }
        if let Some(d) = e.execution_succeeded_event_details() {
            add("ExecutionSucceeded output", d.output());
        }
        if let Some(d) = e.state_entered_event_details() {
            add(&format!("{} input", d.name()), d.input());
        }
        if let Some(d) = e.state_exited_event_details() {
            add(&format!("{} output", d.name()), d.output());
        }
        if let Some(d) = e.task_scheduled_event_details() {
            add("TaskScheduled parameters", Some(d.parameters()));
        }
        if let Some(d) = e.task_submitted_event_details() {
            add("TaskSubmitted output", d.output());
        }
        if let Some(d) = e.task_succeeded_event_details() {
            add("TaskSucceeded output", d.output());
        }
        if let Some(d) = e.lambda_function_scheduled_event_details() {
            add("LambdaFunctionScheduled input", d.input());
        }
        if let Some(d) = e.lambda_function_succeeded_event_details() {
            add("LambdaFunctionSucceeded output", d.output());
        }
    }
    out
}

/// [`World::wait`] for a long execution: polls once a second (each DescribeExecution of
/// an execution this size costs the world's one Python process time the execution
/// itself needs), at most `FERRY_E2E_TIMEOUT` real seconds (default 900).
async fn wait_patiently(world: &World, execution_arn: &str) -> Execution {
    let limit = std::time::Duration::from_secs(
        std::env::var("FERRY_E2E_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(900),
    );
    let started = Instant::now();
    loop {
        let status = world
            .sfn()
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .expect("DescribeExecution")
            .status()
            .as_str()
            .to_string();
        if status != "RUNNING" {
            return world.wait(execution_arn).await;
        }
        assert!(
            started.elapsed() < limit,
            "{execution_arn} still RUNNING after {limit:?} of real time"
        );
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Issue 8, 2.6: one account B in two regions (the hub's and another), each with B's own
/// key there. Neither copy revokes B's share (the first to finish would take it from the
/// other): both copies are B's, each in its own region under that region's key; the
/// share is still in place afterwards, exactly as the output reports it (`keptShared`
/// and the share record), and revoke-share run with that record takes it all back
/// while both copies stay usable.
#[tokio::test(flavor = "multi_thread")]
async fn one_account_in_two_regions_keeps_its_share_until_both_copies_are_done() {
    let (_guard, world) = setup().await;
    let real = Instant::now(); // after the SERIAL lock: this test's own time
    let other = if world.region == "us-west-2" {
        "us-east-1"
    } else {
        "us-west-2"
    };
    let b = fresh_accounts(410_000_000_000, 1).remove(0);
    let key_a = create_key(&world.config, "ferry e2e two regions (CMK-A)", None).await;
    let image = make_image(
        &world,
        &world.config,
        &run_name("two-regions-src"),
        Some(Some(&key_a)),
    )
    .await;
    let (tb, more) =
        target_account_in_regions(&world, &b, "ferry-e2e-ext-2r", Some(&key_a), &[other]).await;
    let there = &more[0];
    // (region, B acting there, B's key there)
    let places = [
        (world.region.clone(), tb.config.clone(), tb.key_arn.clone()),
        (
            there.region.clone(),
            there.config.clone(),
            there.key_arn.clone(),
        ),
    ];
    let mut second = target_json(&tb);
    second["kmsKeyId"] = json!(there.key_arn);
    second["region"] = json!(other);
    let input = json!({"share": {"imageId": image}, "targets": [target_json(&tb), second]});
    assert!(!sees(&tb.config, &image).await, "not shared before the run");

    let execution = world
        .run("distribute-image", &run_name("two-regions"), &input)
        .await;
    let out = execution.assert_succeeded().clone();
    eprintln!(
        "distributed in {} simulated seconds\n{out:#}",
        execution.simulated_seconds
    );

    // The output: B kept its share, neither copy revoked it.
    assert_eq!(out["keptShared"], json!([b]), "{out:#}");
    let results = out["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{out:#}");
    let mut copies = Vec::new();
    for (region, config, key) in &places {
        let r = results
            .iter()
            .find(|r| r["region"] == region.as_str())
            .unwrap_or_else(|| panic!("no result for {region}: {out:#}"));
        assert_eq!(r["status"], "SUCCEEDED", "{r}");
        assert_eq!(r["accountId"], b.as_str(), "{r}");
        assert_eq!(r["revoked"], false, "{r}");
        assert_eq!(r["kmsKeyIds"], json!([key]), "{r}");
        let copy_id = r["imageId"].as_str().expect("imageId").to_string();

        // B owns the copy in that region, available, its snapshots B's under B's key there.
        let copy = image_as(config, &copy_id).await;
        assert_eq!(copy.owner_id(), Some(b.as_str()));
        assert_eq!(copy.state().map(|s| s.as_str()), Some("available"));
        assert_eq!(
            snapshots_of(config, &copy).await,
            vec![(b.clone(), key.clone())]
        );
        let tags = tag_map(copy.tags());
        assert_eq!(tags["ferry:workflow"], "copy-image");
        assert_eq!(tags["ferry:source-image"], image);
        assert_eq!(tags["ferry:source-region"], world.region);
        assert_eq!(tags["ferry:execution"], r["executionArn"].as_str().unwrap());
        copies.push((region.clone(), config.clone(), copy_id));
    }
    assert_ne!(copies[0].2, copies[1].2);
    // Each copy is in its own region only.
    for (region, _, copy_id) in &copies {
        for (elsewhere, config, _) in &places {
            if elsewhere != region {
                assert!(
                    !sees(config, copy_id).await,
                    "{copy_id} (made in {region}) is not in {elsewhere}"
                );
            }
        }
    }
    // B copied once in each region, and nothing else.
    let copy_calls: Vec<(String, String)> = world
        .calls("ec2", "CopyImage")
        .iter()
        .filter(|c| c["status"] == 200)
        .map(|c| {
            (
                c["account"].as_str().unwrap_or_default().to_string(),
                c["region"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut expected: Vec<(String, String)> = places
        .iter()
        .map(|(r, _, _)| (b.clone(), r.clone()))
        .collect();
    expected.sort();
    assert_eq!(copy_calls, expected);

    // No copy lost its share to the other's revoke: after both are done, B still sees
    // A's image, its snapshots are still B's to read, the grant on CMK-A is still there,
    // and that is exactly what the output reports as kept (nothing more, nothing less).
    assert!(sees(&tb.config, &image).await, "B still sees A's image");
    let record = &out["share"]["record"];
    assert_eq!(record["imageId"], image.as_str(), "{out:#}");
    let left = share_state(&world, &image, &key_a).await;
    assert_eq!(left.launch, BTreeSet::from([b.clone()]), "{left:?}");
    assert!(!left.volumes.is_empty() && left.volumes.iter().all(|(_, a)| *a == b));
    assert_eq!(left.grants.len(), 1, "{left:?}");
    assert_eq!(
        left,
        reported_share(record, std::slice::from_ref(&b)),
        "{out:#}"
    );
    // ... and no revoke ran at all: neither nested copy-image entered RevokeShare.
    for r in results {
        let arn = r["executionArn"].as_str().unwrap();
        let states: BTreeSet<String> = world
            .state_durations(arn)
            .await
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert!(
            states.contains("NotRevoked") && !states.contains("RevokeShare"),
            "{arn}: {states:?}"
        );
    }

    // What the output reports is enough to take the share back: revoke-share with the
    // record. Then nothing of it is left, and both of B's copies still launch (each
    // under B's own key in its region: nothing of A's needed).
    let revoked = world
        .run(
            "revoke-share",
            &run_name("two-regions-revoke"),
            &json!({"record": record}),
        )
        .await;
    revoked.assert_succeeded();
    assert_eq!(
        share_state(&world, &image, &key_a).await,
        ShareState {
            launch: BTreeSet::new(),
            volumes: BTreeSet::new(),
            grants: BTreeSet::new()
        }
    );
    assert!(!sees(&tb.config, &image).await, "the share was revoked");
    for (region, config, copy_id) in &copies {
        let (state, reason) = launch(config, copy_id).await.expect("RunInstances");
        assert_eq!(state, "running", "launch {copy_id} in {region}: {reason:?}");
    }
    eprintln!("real time: {:.1} s", real.elapsed().as_secs_f64());
}

/// Issue 8, 2.7: an execution at the limit, MAX_TARGETS distinct target accounts, each
/// with the ferry target stack and its own key. Every target gets its copy under its own
/// key, every share is revoked, and no state of the execution (or of its nested
/// executions) comes near Step Functions' 256 KiB per state input/output.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn distributes_to_the_largest_allowed_number_of_targets() {
    let (_guard, world) = setup().await;
    let real = Instant::now(); // after the SERIAL lock: this test's own time
    let world = Arc::new(world);
    let accounts = fresh_accounts(300_000_000_000, MAX_TARGETS);
    let key_a = create_key(&world.config, "ferry e2e at the limit (CMK-A)", None).await;
    let image = make_image(
        &world,
        &world.config,
        &run_name("limit-src"),
        Some(Some(&key_a)),
    )
    .await;

    // The target accounts, set up concurrently: each its key and target-account.yaml.
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (i, a) in accounts.iter().enumerate() {
        let (world, a, key_a) = (world.clone(), a.clone(), key_a.clone());
        set.spawn(async move {
            let t = target_account(
                &world,
                &a,
                &format!("ferry-e2e-ext-limit-{i}"),
                Some(&key_a),
            )
            .await;
            (i, t)
        });
    }
    let mut targets: Vec<Option<Target>> = vec![None; accounts.len()];
    while let Some(done) = set.join_next().await {
        let (i, t) = done.expect("target setup");
        targets[i] = Some(t);
    }
    let targets: Vec<Target> = targets.into_iter().map(Option::unwrap).collect();
    let setup_secs = t0.elapsed().as_secs_f64();

    let input = json!({"share": {"imageId": image},
                       "targets": targets.iter().map(target_json).collect::<Vec<_>>()});
    let t1 = Instant::now();
    let arn = world
        .start("distribute-image", &run_name("limit"), &input)
        .await;
    let execution = wait_patiently(&world, &arn).await;
    let run_secs = t1.elapsed().as_secs_f64();
    let out = execution.assert_succeeded().clone();

    let t2 = Instant::now();
    assert_eq!(out["keptShared"], json!([]), "one region per account");
    let results = out["results"].as_array().expect("results");
    assert_eq!(results.len(), MAX_TARGETS);
    let by_account: BTreeMap<&str, &Value> = results
        .iter()
        .map(|r| (r["accountId"].as_str().unwrap_or_default(), r))
        .collect();
    assert_eq!(
        by_account.keys().copied().collect::<BTreeSet<_>>(),
        accounts.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "one result per target"
    );
    let failed: Vec<&&Value> = by_account
        .values()
        .filter(|r| r["status"] != "SUCCEEDED")
        .collect();
    assert!(failed.is_empty(), "{} failed: {failed:#?}", failed.len());
    // Each target's copy, checked as the target (concurrently; a failed check fails
    // the test with its own message).
    let mut checks = tokio::task::JoinSet::new();
    for t in &targets {
        let (t, r) = (t.clone(), by_account[t.account_id.as_str()].clone());
        let region = world.region.clone();
        checks.spawn(async move {
            assert_eq!(r["region"], region.as_str(), "{r}");
            assert_eq!(r["revoked"], true, "{r}");
            let copy = image_as(&t.config, r["imageId"].as_str().expect("imageId")).await;
            assert_eq!(copy.owner_id(), Some(t.account_id.as_str()), "{r}");
            assert_eq!(copy.state().map(|s| s.as_str()), Some("available"), "{r}");
            assert_eq!(
                snapshots_of(&t.config, &copy).await,
                vec![(t.account_id.clone(), t.key_arn.clone())],
                "{r}"
            );
            assert_eq!(
                tag_map(copy.tags())["ferry:execution"],
                r["executionArn"].as_str().unwrap()
            );
        });
    }
    while let Some(done) = checks.join_next().await {
        if let Err(e) = done {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    // Every share revoked: nothing of it left with any target.
    assert_eq!(
        share_state(&world, &image, &key_a).await,
        ShareState {
            launch: BTreeSet::new(),
            volumes: BTreeSet::new(),
            grants: BTreeSet::new()
        }
    );
    let copy_calls: BTreeSet<String> = world
        .calls("ec2", "CopyImage")
        .iter()
        .filter(|c| c["status"] == 200)
        .map(|c| c["account"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(copy_calls.len(), MAX_TARGETS);

    // The payload quota: no state input/output of the execution, nor of its nested
    // share-image and copy-image executions, over 256 KiB (the world would have failed
    // it with States.DataLimitExceeded; this says by how much it did not).
    let mut largest = payload_sizes(&world, &execution.arn).await;
    largest.sort();
    let (size, event, what) = largest.last().cloned().expect("history has payloads");
    let share_arn = out["shareExecutionArn"]
        .as_str()
        .expect("shareExecutionArn");
    let mut children = vec![share_arn.to_string()];
    children.extend(
        results
            .iter()
            .map(|r| r["executionArn"].as_str().unwrap().to_string()),
    );
    let mut scans = tokio::task::JoinSet::new();
    for arn in children {
        let world = world.clone();
        scans.spawn(async move { (payload_sizes(&world, &arn).await, arn) });
    }
    let mut largest_child = (0, 0, String::new(), String::new());
    while let Some(done) = scans.join_next().await {
        let (sizes, arn) = done.expect("history of a nested execution");
        for (s, e, w) in sizes {
            if s > largest_child.0 {
                largest_child = (s, e, w, arn.clone());
            }
        }
    }
    eprintln!(
        "{MAX_TARGETS} targets: largest state {size} bytes ({what}, event {event}), {:.1}% of {SFN_PAYLOAD_LIMIT} ({} bytes to spare); \
         largest in a nested execution {} bytes ({}, event {}, {})",
        100.0 * size as f64 / SFN_PAYLOAD_LIMIT as f64,
        SFN_PAYLOAD_LIMIT - size,
        largest_child.0,
        largest_child.2,
        largest_child.1,
        largest_child.3
    );
    assert!(size <= SFN_PAYLOAD_LIMIT, "{what}: {size} bytes");
    assert!(largest_child.0 <= SFN_PAYLOAD_LIMIT, "{largest_child:?}");
    eprintln!(
        "real time: setup of {MAX_TARGETS} targets {setup_secs:.1} s, execution {run_secs:.1} s \
         ({} simulated s), checks {:.1} s, total {:.1} s",
        execution.simulated_seconds,
        t2.elapsed().as_secs_f64(),
        real.elapsed().as_secs_f64()
    );
}
