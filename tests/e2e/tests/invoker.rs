//! Issue 9: a pipeline in ANOTHER account runs ferry in the hub through template.yaml's
//! invoker role. The role is deployed into the world's hub from template.yaml as
//! CloudFormation would (`InvokerAccountIds`, `InvokerExternalId`; its policy names the
//! deployed state machines), the `ferry` binary gets account B's keys (as a pipeline
//! there has them) and `--assume-role-arn` / `--external-id`, and the world evaluates
//! every call it makes with the role: STS AssumeRole against the role's trust policy,
//! Step Functions and CloudFormation against its identity policy (rules/trust.py,
//! rules/iam.py). Asserts on exit statuses, on what ferry prints and on AWS state (the
//! copy B owns; no execution started where the role is refused).

use aws_sdk_ec2::types as ec2t;
use ferry_e2e::accounts::*;
use ferry_e2e::targets::*;
use ferry_e2e::*;
use serde_json::{json, Value};
use std::process::Output;

/// The hub's ExternalId for the invoker role (the pipelines' shared secret).
const HUB_EXTERNAL_ID: &str = "ferry-e2e-invoker-9";

/// A fresh account id per run (see [`fresh_account_id`]).
fn account(n: u64) -> String {
    fresh_account_id(600_000_000_000, n)
}

async fn setup() -> (tokio::sync::MutexGuard<'static, ()>, World) {
    serial_world().await
}

/// Runs `ferry args...` as a pipeline of the account whose `keys` it has: the world's
/// endpoint and Region, nothing of the hub's.
fn ferry_as(world: &World, keys: &AccountKeys, args: &[&str]) -> Output {
    eprintln!("[as {}]", keys.account_id);
    run_ferry(
        world,
        (
            &keys.access_key_id,
            &keys.secret_access_key,
            Some(&keys.session_token),
        ),
        args,
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The invoker role deployed for `accounts` with the hub's ExternalId: its ARN.
fn deploy_invoker(world: &World, accounts: &[&str]) -> String {
    let outputs = world.deploy_invoker(json!({
        "InvokerAccountIds": accounts.join(","),
        "InvokerExternalId": HUB_EXTERNAL_ID,
    }));
    let arn = outputs["InvokerRoleArn"]
        .as_str()
        .unwrap_or_else(|| panic!("no InvokerRoleArn in {outputs}"))
        .to_string();
    assert!(
        arn.starts_with(&format!("arn:aws:iam::{}:role/", world.hub_account_id)),
        "{arn}"
    );
    arn
}

/// How many calls the world evaluated with `role_arn`'s identity policy, and how many
/// it denied (`/ferry-world/iam/usage`).
fn evaluated(world: &World, role_arn: &str) -> (u64, u64) {
    let usage = world.control("GET", "/ferry-world/iam/usage", None);
    let calls = &usage["roles"][role_arn]["calls"];
    (
        calls["evaluated"].as_u64().unwrap_or(0),
        calls["denied"].as_u64().unwrap_or(0),
    )
}

/// Executions of the state machine `arn`, as the hub lists them.
async fn executions_of(world: &World, arn: &str) -> Vec<String> {
    world
        .sfn()
        .list_executions()
        .state_machine_arn(arn)
        .send()
        .await
        .expect("ListExecutions")
        .executions()
        .iter()
        .map(|e| e.execution_arn().to_string())
        .collect()
}

/// An AMI of the hub under its CMK-A, shared with `b` by share-image, and `b` set up as a
/// copy target (target-account.yaml's role, its CMK-B): (image, target).
async fn shared_image_for(world: &World, b: &str, label: &str) -> (String, Target) {
    let key_a = create_key(&world.config, &format!("ferry e2e {label} (CMK-A)"), None).await;
    let image = make_image(
        world,
        &world.config,
        &run_name(&format!("{label}-src")),
        Some(Some(&key_a)),
    )
    .await;
    let target = target_account(world, b, &format!("ferry-e2e-target-{label}"), Some(&key_a)).await;
    world
        .run(
            "share-image",
            &run_name(&format!("{label}-share")),
            &json!({"imageId": image, "accountIds": [b]}),
        )
        .await
        .assert_succeeded();
    (image, target)
}

fn copy_args<'a>(image: &'a str, target: &'a Target) -> Vec<&'a str> {
    vec![
        "copy",
        "--image",
        image,
        "--target-account",
        &target.account_id,
        "--target-role-arn",
        &target.role_arn,
        "--external-id",
        &target.external_id,
        "--kms-key",
        &target.key_arn,
    ]
}

/// A pipeline in B, listed by the hub, copies the hub's AMI into B through the invoker
/// role: `ferry --assume-role-arn <invoker> --external-id <id> copy ... --wait --json`
/// exits 0 with the result, and B owns the copy under its own key. The same command
/// without the ExternalId, with a wrong one, or from an account the hub did not list
/// (C), is refused by STS (exit 3, AccessDenied) and starts nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_in_a_listed_account_copies_through_the_invoker_role_and_others_are_refused() {
    let (_guard, world) = setup().await;
    let (b, c) = (account(1), account(2));
    let invoker = deploy_invoker(&world, &[&b]);
    let (image, target) = shared_image_for(&world, &b, "invoker-copy").await;
    let copy_machine = world.state_machines["copy-image"].clone();
    let (b_keys, c_keys) = (world.account_keys(&b).await, world.account_keys(&c).await);

    // Refused first: nothing may start.
    let executions_before = executions_of(&world, &copy_machine).await;
    let starts_before = world.calls("states", "StartExecution").len();
    let refusals: [(&AccountKeys, Option<&str>); 3] = [
        (&b_keys, None),
        (&b_keys, Some("not-the-secret")),
        (&c_keys, Some(HUB_EXTERNAL_ID)),
    ];
    for (keys, external_id) in refusals {
        let mut args = vec!["--assume-role-arn", invoker.as_str()];
        if let Some(id) = external_id {
            args.extend(["--external-id", id]);
        }
        args.extend(copy_args(&image, &target));
        args.push("--wait");
        let out = ferry_as(&world, keys, &args);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("AssumeRole: AccessDenied")
                && err.contains(&format!(
                    "is not authorized to perform: sts:AssumeRole on resource: {invoker}"
                )),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "nothing printed on stdout");
    }
    assert_eq!(
        world.calls("states", "StartExecution").len(),
        starts_before,
        "no StartExecution was even tried"
    );
    assert_eq!(
        executions_of(&world, &copy_machine).await,
        executions_before
    );
    assert!(
        copies_owned_by(&target.config).await.is_empty(),
        "B has no copy yet"
    );

    // B's pipeline, with the ExternalId: the copy runs and its result is printed.
    let (evaluated_before, denied_before) = evaluated(&world, &invoker);
    let mut args = vec![
        "--assume-role-arn",
        invoker.as_str(),
        "--external-id",
        HUB_EXTERNAL_ID,
    ];
    args.extend(copy_args(&image, &target));
    args.extend(["--wait", "--json"]);
    let out = ferry_as(&world, &b_keys, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let result = stdout_json(&out);
    assert_eq!(result["status"], "SUCCEEDED", "{result}");
    let execution = result["executionArn"].as_str().expect("executionArn");
    assert!(
        execution.starts_with(&format!(
            "{}:",
            copy_machine.replacen(":stateMachine:", ":execution:", 1)
        )),
        "{execution}"
    );
    let copy_id = result["output"]["imageId"].as_str().expect("imageId");
    assert_eq!(result["output"]["targetAccountId"], b.as_str());

    // The copy exists in B, owned by B, under B's key, made by that execution.
    let copies = copies_owned_by(&target.config).await;
    assert_eq!(copies.len(), 1, "{copies:?}");
    let copy = &copies[0];
    assert_eq!(copy.image_id(), Some(copy_id));
    assert_eq!(copy.owner_id(), Some(b.as_str()));
    assert_eq!(copy.state().map(|s| s.as_str()), Some("available"));
    assert_eq!(
        tag_map(copy.tags())
            .get("ferry:execution")
            .map(String::as_str),
        Some(execution)
    );
    let snapshot = copy.block_device_mappings()[0]
        .ebs()
        .and_then(|e| e.snapshot_id())
        .expect("the copy's snapshot");
    let snapshots = aws_sdk_ec2::Client::new(&target.config)
        .describe_snapshots()
        .snapshot_ids(snapshot)
        .send()
        .await
        .expect("DescribeSnapshots");
    assert_eq!(
        snapshots.snapshots()[0].kms_key_id(),
        Some(target.key_arn.as_str())
    );

    // Every call ferry made was evaluated with the invoker role's policy, none denied:
    // DescribeStacks, StartExecution and the history/describe polls of --wait at least.
    let (evaluated_after, denied_after) = evaluated(&world, &invoker);
    assert!(
        evaluated_after >= evaluated_before + 3,
        "{evaluated_before} -> {evaluated_after}"
    );
    assert_eq!(
        denied_after, denied_before,
        "no call of the pipeline denied"
    );
    let started: Vec<Value> = world
        .calls("states", "StartExecution")
        .into_iter()
        .skip(starts_before)
        .filter(|c| c["account"] == world.hub_account_id.as_str())
        .collect();
    assert_eq!(started.len(), 1, "one start: {started:?}");
    assert_ne!(
        started[0]["accessKey"], "testing",
        "started with the role's session, not the hub's keys"
    );
    assert_ne!(started[0]["accessKey"], b_keys.access_key_id.as_str());

    // The pipeline also lists and reads its runs through the role.
    let listed = ferry_as(
        &world,
        &b_keys,
        &[
            "--assume-role-arn",
            &invoker,
            "--external-id",
            HUB_EXTERNAL_ID,
            "list",
            "--workflow",
            "copy",
            "--json",
        ],
    );
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    assert!(stdout_json(&listed)
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["executionArn"] == execution && e["status"] == "SUCCEEDED"));
    let status = ferry_as(
        &world,
        &b_keys,
        &[
            "--assume-role-arn",
            &invoker,
            "--external-id",
            HUB_EXTERNAL_ID,
            "status",
            execution,
            "--json",
        ],
    );
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    assert_eq!(stdout_json(&status)["output"]["imageId"], copy_id);
}

/// Images B owns that copy-image made.
async fn copies_owned_by(config: &aws_config::SdkConfig) -> Vec<ec2t::Image> {
    aws_sdk_ec2::Client::new(config)
        .describe_images()
        .owners("self")
        .filters(
            ec2t::Filter::builder()
                .name("tag:ferry:workflow")
                .values("copy-image")
                .build(),
        )
        .send()
        .await
        .expect("DescribeImages")
        .images()
        .to_vec()
}

/// The invoker role starts ferry's state machines only: another state machine of the
/// hub (`--state-machine-arn`) is AccessDeniedException and has no execution afterwards;
/// its executions cannot be read; another stack's outputs cannot be read.
#[tokio::test(flavor = "multi_thread")]
async fn the_invoker_role_cannot_start_or_read_anything_but_ferrys_machines() {
    let (_guard, world) = setup().await;
    let b = account(3);
    let invoker = deploy_invoker(&world, &[&b]);
    let keys = world.account_keys(&b).await;

    // Another state machine of the hub (not ferry's), with one execution of its own.
    let sfn = world.sfn();
    let other = sfn
        .create_state_machine()
        .name(run_name("payroll"))
        .definition(r#"{"StartAt":"Pay","States":{"Pay":{"Type":"Pass","End":true}}}"#)
        .role_arn(format!(
            "arn:aws:iam::{}:role/payroll-states",
            world.hub_account_id
        ))
        .send()
        .await
        .expect("CreateStateMachine")
        .state_machine_arn()
        .to_string();
    let theirs = sfn
        .start_execution()
        .state_machine_arn(&other)
        .name(run_name("payday"))
        .send()
        .await
        .expect("StartExecution")
        .execution_arn()
        .to_string();

    let dir = std::env::temp_dir().join(run_name("invoker"));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input.json");
    // A well-formed input (the CLI checks it as copy-image's Preflight would).
    std::fs::write(
        &input,
        json!({
            "sourceImageId": "ami-0123456789abcdef0",
            "sourceRegion": world.region,
            "targetAccountId": b,
            "targetRoleArn": format!("arn:aws:iam::{b}:role/ferry/ferry-target"),
            "externalId": "ferry-e2e-target",
            "targetKmsKeyId": format!("arn:aws:kms:{}:{b}:key/1234abcd-12ab-34cd-56ef-1234567890ab", world.region),
        })
        .to_string(),
    )
    .unwrap();
    let with_role = |args: &[&str]| -> Output {
        let mut all = vec![
            "--assume-role-arn",
            invoker.as_str(),
            "--external-id",
            HUB_EXTERNAL_ID,
        ];
        all.extend(args);
        ferry_as(&world, &keys, &all)
    };
    let (_, denied_before) = evaluated(&world, &invoker);

    let out = with_role(&[
        "--state-machine-arn",
        &other,
        "run",
        "copy-image",
        "--input",
        input.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("StartExecution: AccessDeniedException")
            && err.contains(&format!(
                "is not authorized to perform: states:StartExecution on resource: {other} "
            )),
        "{err}"
    );
    assert_eq!(
        executions_of(&world, &other).await,
        vec![theirs.clone()],
        "nothing started on the other state machine"
    );

    let out = with_role(&["status", &theirs]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("AccessDeniedException")
            && stderr(&out).contains("states:DescribeExecution"),
        "{}",
        stderr(&out)
    );

    let out = with_role(&["--stack", "payroll", "list", "--workflow", "copy"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("DescribeStacks: AccessDenied")
            && stderr(&out)
                .contains("cloudformation:DescribeStacks on resource: arn:aws:cloudformation:"),
        "{}",
        stderr(&out)
    );

    let (_, denied_after) = evaluated(&world, &invoker);
    assert_eq!(denied_after, denied_before + 3, "three calls denied");
}
