//! The `ferry` CLI (cli/, binary `ferry`) against the local AWS world, as a person or a
//! pipeline runs it: AWS_ENDPOINT_URL and AWS_REGION point it at the world, and it finds
//! the state machines from the stack's outputs (CloudFormation DescribeStacks of `ferry`,
//! which the world publishes as `sam deploy` would). Asserts on exit statuses, on what it
//! prints, and on the resulting AWS state.

use aws_sdk_ec2::types as ec2t;
use ferry_e2e::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Output;

/// Runs `ferry args...` as the hub's operator against the world.
fn ferry(world: &World, args: &[&str]) -> Output {
    run_ferry(world, ("testing", "testing", None), args)
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn setup(label: &str) -> (tokio::sync::MutexGuard<'static, ()>, World, WebServer) {
    let guard = SERIAL.lock().await;
    let world = World::connect().await;
    world.clear_faults();
    let source = web_server(&world, &run_name(label)).await;
    (guard, world, source)
}

/// Instances in `subnet` that the migrate-instance execution `arn` launched.
async fn launched_by(world: &World, arn: &str) -> Vec<ec2t::Instance> {
    world
        .ec2()
        .describe_instances()
        .filters(
            ec2t::Filter::builder()
                .name("tag:ferry:execution")
                .values(arn)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .reservations()
        .iter()
        .flat_map(|r| r.instances().to_vec())
        .filter(|i| state(i) != "terminated")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_with_wait_succeeds_and_prints_the_result() {
    let (_guard, world, source) = setup("cli-wait").await;
    let out = ferry(
        &world,
        &[
            "migrate",
            "--instance",
            &source.instance_id,
            "--subnet",
            &source.subnet_b,
            "--tag",
            "change=CHG-1",
            "--wait",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // stdout: the execution's output; stderr: the states as they ran, then the summary.
    let output = stdout_json(&out);
    let new_id = output["newInstanceId"].as_str().expect("newInstanceId");
    let err = stderr(&out);
    for state in [
        "Preflight",
        "CreateImage",
        "WaitImage",
        "LaunchInstance",
        "Finalize",
    ] {
        assert!(err.contains(&format!("] {state}")), "no {state} in {err}");
    }
    assert!(err.contains("SUCCEEDED in "), "{err}");
    let new = instance(&world, new_id).await;
    assert_eq!(state(&new), "running");
    assert_eq!(new.subnet_id(), Some(source.subnet_b.as_str()));
    assert_eq!(
        tag_map(new.tags()).get("change").map(String::as_str),
        Some("CHG-1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_run_exits_non_zero_with_the_error_name_and_json_parses() {
    let (_guard, world, source) = setup("cli-fail").await;
    // The target subnet is in the source's AZ: the Preflight refuses it.
    let out = ferry(
        &world,
        &[
            "migrate",
            "--instance",
            &source.instance_id,
            "--subnet",
            &source.subnet_a,
            "--wait",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("FAILED") && stderr(&out).contains("Ferry.SameAvailabilityZone"),
        "{}",
        stderr(&out)
    );
    let out = ferry(
        &world,
        &[
            "migrate",
            "--instance",
            &source.instance_id,
            "--subnet",
            &source.subnet_a,
            "--wait",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let result = stdout_json(&out);
    assert_eq!(result["status"], "FAILED");
    assert_eq!(result["error"], "Ferry.SameAvailabilityZone");
    assert!(result["executionArn"]
        .as_str()
        .unwrap()
        .contains(":execution:ferry-migrate-instance:"));
    // The source was not touched.
    assert_eq!(
        state(&instance(&world, &source.instance_id).await),
        "running"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_before_anything_starts() {
    let (_guard, world, source) = setup("cli-bad").await;
    let before = world.calls("stepfunctions", "StartExecution").len();
    let out = ferry(
        &world,
        &[
            "migrate",
            "--instance",
            "i-nope",
            "--subnet",
            &source.subnet_b,
            "--wait",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("Ferry.InvalidInput") && err.contains("sourceInstanceId"),
        "{err}"
    );
    let dir = tempdir("cli-bad");
    let file = dir.join("input.json");
    std::fs::write(&file, r#"{"sourceInstanceId": "i-0123456789abcdef0", "targetSubnetId": "subnet-0123456789abcdef0", "colour": "blue"}"#).unwrap();
    let out = ferry(
        &world,
        &["run", "migrate", "--input", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("colour"), "{}", stderr(&out));
    // A stack that does not exist: an AWS error, exit 3, nothing started.
    let out = ferry(
        &world,
        &[
            "--stack",
            "not-ferry",
            "migrate",
            "--instance",
            &source.instance_id,
            "--subnet",
            &source.subnet_b,
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("DescribeStacks"), "{}", stderr(&out));
    assert_eq!(
        world.calls("stepfunctions", "StartExecution").len(),
        before,
        "nothing started"
    );
}

fn tempdir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(run_name(label));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_starts_one_execution() {
    let (_guard, world, source) = setup("cli-key").await;
    let dir = tempdir("cli-key");
    let file = dir.join("input.json");
    let input = json!({"sourceInstanceId": source.instance_id, "targetSubnetId": source.subnet_b});
    std::fs::write(&file, input.to_string()).unwrap();
    let key = run_name("pipeline-run");
    let args = [
        "run",
        "migrate-instance",
        "--input",
        file.to_str().unwrap(),
        "--idempotency-key",
        &key,
        "--wait",
        "--json",
    ];
    let first = ferry(&world, &args);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let second = ferry(&world, &args);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let (a, b) = (stdout_json(&first), stdout_json(&second));
    assert_eq!(a["executionArn"], b["executionArn"]);
    assert_eq!(a["output"], b["output"]);
    assert!(
        stderr(&second).contains("already started"),
        "{}",
        stderr(&second)
    );
    let arn = a["executionArn"].as_str().unwrap();
    // One execution by that name, one new instance.
    let name = arn.rsplit(':').next().unwrap();
    let executions = world
        .sfn()
        .list_executions()
        .state_machine_arn(&world.state_machines["migrate-instance"])
        .send()
        .await
        .unwrap();
    assert_eq!(
        executions
            .executions()
            .iter()
            .filter(|e| e.name() == name)
            .count(),
        1
    );
    assert_eq!(launched_by(&world, arn).await.len(), 1);
    // The same key with another input: refused, with why.
    std::fs::write(
        &file,
        json!({"sourceInstanceId": source.instance_id, "targetSubnetId": source.subnet_b, "noReboot": true}).to_string(),
    )
    .unwrap();
    let other = ferry(&world, &args);
    assert_eq!(other.status.code(), Some(2));
    assert!(
        stderr(&other).contains("another input"),
        "{}",
        stderr(&other)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn start_then_watch_status_and_list() {
    let (_guard, world, source) = setup("cli-watch").await;
    let out = ferry(
        &world,
        &[
            "migrate",
            "--instance",
            &source.instance_id,
            "--subnet",
            &source.subnet_b,
            "--name",
            &run_name("cli-watch"),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let arn = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(arn.contains(":execution:ferry-migrate-instance:"), "{arn}");
    let watched = ferry(&world, &["watch", &arn, "--json"]);
    assert_eq!(watched.status.code(), Some(0));
    let result = stdout_json(&watched);
    assert_eq!(result["status"], "SUCCEEDED");
    let new_id = result["output"]["newInstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(state(&instance(&world, &new_id).await), "running");
    let status = ferry(&world, &["status", &arn, "--json"]);
    assert_eq!(
        stdout_json(&status)["output"]["newInstanceId"],
        new_id.as_str()
    );
    let listed = ferry(
        &world,
        &[
            "list",
            "--workflow",
            "migrate",
            "--status",
            "succeeded",
            "--json",
        ],
    );
    assert_eq!(listed.status.code(), Some(0));
    assert!(stdout_json(&listed)
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["executionArn"] == arn.as_str() && e["status"] == "SUCCEEDED"));
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_prints_the_plan_and_changes_nothing() {
    let (_guard, world, source) = setup("cli-plan").await;
    let dir = tempdir("cli-plan");
    let file = dir.join("input.json");
    std::fs::write(
        &file,
        json!({"sourceInstanceId": source.instance_id, "targetSubnetId": source.subnet_b,
               "sourceAction": "stop"})
        .to_string(),
    )
    .unwrap();
    let from = call_marker(&world).await;
    let out = ferry(
        &world,
        &["plan", "migrate", "--input", file.to_str().unwrap()],
    );
    let to = call_marker(&world).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = stdout_json(&out);
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["workflow"], "migrate-instance");
    assert_eq!(
        report["plan"]["instance"]["subnetId"],
        source.subnet_b.as_str()
    );
    assert_eq!(report["plan"]["source"]["sourceAction"], "stop");
    assert!(stderr(&out).contains("nothing changed"), "{}", stderr(&out));
    // The world saw the dry run (its reads), and no call that changes anything.
    let during = calls_between(&world, from, Some(to));
    assert!(
        during.iter().any(|c| c["action"] == "DescribeInstances"),
        "the plan read the source"
    );
    let mutating: Vec<&Value> = during.iter().filter(|c| is_mutating_call(c)).collect();
    assert!(mutating.is_empty(), "mutating calls: {mutating:#?}");
    // The source runs on, and nothing was launched in the target subnet.
    assert_eq!(
        state(&instance(&world, &source.instance_id).await),
        "running"
    );
    let in_b = world
        .ec2()
        .describe_instances()
        .filters(
            ec2t::Filter::builder()
                .name("subnet-id")
                .values(&source.subnet_b)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(in_b.reservations().iter().all(|r| r.instances().is_empty()));
}
