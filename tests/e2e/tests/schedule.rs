//! The scheduled path (issue 9): template.yaml's EventBridge Scheduler schedule
//! `<stack>-distribute-image` starts distribute-image with `ScheduleInput`, whose
//! `share.image` names "the newest available AMI this account owns whose name matches a
//! pattern"; the `ResolveImage` state picks it when the run starts.
//!
//! The world deploys the schedule as CloudFormation would and, when told that its time
//! came (`/ferry-world/schedules/fire`), does what EventBridge Scheduler does: nothing
//! for a DISABLED schedule; otherwise StartExecution as the schedule's role (trust and
//! identity policy evaluated) with the schedule's input. Assertions are on AWS state:
//! which image the target account got a copy of.
//!
//! Run: `FERRY_WORLD_JSON=<state dir>/world.json cargo test --workspace --test schedule --
//! --nocapture`.

use ferry_e2e::accounts::*;
use ferry_e2e::targets::*;
use ferry_e2e::*;
use serde_json::{json, Value};
use std::time::Duration;

fn account(n: u64) -> String {
    fresh_account_id(520_000_000_000, n)
}

fn target_json(t: &Target) -> Value {
    json!({"accountId": t.account_id, "roleArn": t.role_arn, "externalId": t.external_id,
           "kmsKeyId": t.key_arn})
}

/// template.yaml deployed into the hub with `parameters` (as `sam deploy
/// --parameter-overrides` would); returns the stack's outputs.
fn deploy_hub(world: &World, parameters: Value) -> Value {
    let answer = world.control(
        "POST",
        "/ferry-world/stacks",
        Some(&json!({
            "template": "template.yaml",
            "account": world.hub_account_id,
            "parameters": parameters,
        })),
    );
    answer["outputs"].clone()
}

/// GetSchedule (Scheduler's REST API) as the hub.
fn get_schedule(world: &World, name: &str) -> Value {
    let headers = [(
        "Authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{}/scheduler/aws4_request, SignedHeaders=host, Signature=0",
            world.region
        ),
    )];
    let (status, answer) = http::request(
        &world.endpoint,
        "GET",
        &format!("/schedules/{name}"),
        &headers,
        "",
    );
    assert_eq!(status, 200, "GetSchedule {name}: HTTP {status} {answer}");
    answer
}

/// The schedule's time came: what EventBridge Scheduler does then (the world's control
/// API). Returns the world's answer.
fn fire(world: &World, name: &str) -> Value {
    world.control(
        "POST",
        "/ferry-world/schedules/fire",
        Some(&json!({"accountId": world.hub_account_id, "region": world.region, "name": name})),
    )
}

async fn distribute_executions(world: &World) -> Vec<String> {
    world
        .sfn()
        .list_executions()
        .state_machine_arn(&world.state_machines["distribute-image"])
        .max_results(1000)
        .send()
        .await
        .expect("ListExecutions")
        .executions()
        .iter()
        .map(|e| e.execution_arn().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_distributes_the_newest_image_whose_name_matches() {
    let (_guard, world) = serial_world().await;
    let run = run_name("sched");
    let b = account(1);
    let key_a = create_key(&world.config, "ferry e2e schedule (CMK-A)", None).await;

    // Three images whose names match, made one after the other (CreationDate has whole
    // seconds: a second apart), then newer ones that must not be picked: another name,
    // and one of another account, shared with the hub, whose name matches.
    let mut golden = Vec::new();
    for n in 1..=3 {
        if n > 1 {
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        golden.push(
            make_image(
                &world,
                &world.config,
                &format!("{run}-golden-{n}"),
                Some(Some(&key_a)),
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let silver = make_image(&world, &world.config, &format!("{run}-silver"), None).await;
    let tb = target_account(&world, &b, "ferry-e2e-ext-sched", Some(&key_a)).await;
    let foreign = make_image(&world, &tb.config, &format!("{run}-golden-9"), None).await;
    aws_sdk_ec2::Client::new(&tb.config)
        .modify_image_attribute()
        .image_id(&foreign)
        .launch_permission(
            aws_sdk_ec2::types::LaunchPermissionModifications::builder()
                .add(
                    aws_sdk_ec2::types::LaunchPermission::builder()
                        .user_id(&world.hub_account_id)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("B shares its image with the hub");
    let newest = golden[2].clone();

    let input = json!({
        "share": {"image": {"namePattern": format!("ferry-e2e-{run}-golden-*")}},
        "targets": [target_json(&tb)],
    });
    // As deployed: DISABLED, the expression and input of the parameters.
    let outputs = deploy_hub(
        &world,
        json!({"ScheduleInput": input.to_string(), "ScheduleExpression": "cron(0 3 * * ? *)"}),
    );
    let name = outputs["DistributeImageScheduleName"]
        .as_str()
        .expect("DistributeImageScheduleName")
        .to_string();
    let schedule = get_schedule(&world, &name);
    assert_eq!(schedule["State"], "DISABLED", "{schedule:#}");
    assert_eq!(schedule["ScheduleExpression"], "cron(0 3 * * ? *)");
    assert_eq!(
        schedule["Target"]["Arn"],
        world.state_machines["distribute-image"].as_str()
    );
    let given: Value =
        serde_json::from_str(schedule["Target"]["Input"].as_str().expect("Input")).unwrap();
    assert_eq!(given, input);

    // Disabled: its time comes and nothing starts.
    let before = distribute_executions(&world).await;
    let answer = fire(&world, &name);
    assert!(answer["executionArn"].is_null(), "{answer}");
    assert_eq!(distribute_executions(&world).await, before);

    // The operator enables it (a redeploy with ScheduleState=ENABLED): it starts
    // distribute-image as its role, and the newest matching image is distributed.
    deploy_hub(
        &world,
        json!({"ScheduleInput": input.to_string(), "ScheduleState": "ENABLED"}),
    );
    assert_eq!(get_schedule(&world, &name)["State"], "ENABLED");
    let answer = fire(&world, &name);
    let arn = answer["executionArn"]
        .as_str()
        .unwrap_or_else(|| panic!("the schedule started nothing: {answer}"))
        .to_string();
    let execution = world.wait(&arn).await;
    let out = execution.assert_succeeded().clone();
    eprintln!("{out:#}");
    assert_eq!(out["imageId"], newest.as_str(), "{out:#}");
    assert_eq!(out["resolvedImage"]["imageId"], newest.as_str());
    assert_eq!(
        out["resolvedImage"]["name"],
        format!("ferry-e2e-{run}-golden-3")
    );
    assert_eq!(out["resolvedImage"]["matched"], 3, "{out:#}");
    let results = out["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{out:#}");
    assert_eq!(results[0]["status"], "SUCCEEDED", "{out:#}");

    // B owns a copy of the newest image, under its own key; of no other.
    let copy_id = results[0]["imageId"].as_str().expect("imageId");
    let copy = image_as(&tb.config, copy_id).await;
    assert_eq!(copy.owner_id(), Some(b.as_str()));
    let tags = tag_map(copy.tags());
    assert_eq!(tags["ferry:source-image"], newest);
    let copies_of: Vec<String> = aws_sdk_ec2::Client::new(&tb.config)
        .describe_images()
        .owners("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag-key")
                .values("ferry:source-image")
                .build(),
        )
        .send()
        .await
        .expect("DescribeImages (B's copies)")
        .images()
        .iter()
        .filter_map(|i| {
            tag_map(i.tags())
                .get("ferry:source-image")
                .cloned()
                .filter(|s| golden.contains(s) || *s == silver || *s == foreign)
        })
        .collect();
    assert_eq!(copies_of, vec![newest.clone()]);
    // Nothing shared any more: the copy's run revoked the share of the newest; the older
    // ones were never shared.
    for image in golden.iter().chain([&silver]) {
        assert!(!sees(&tb.config, image).await, "B still sees {image}");
    }

    // Back to the defaults (DISABLED, no input) for the tests after this one.
    deploy_hub(&world, json!({}));
    assert_eq!(get_schedule(&world, &name)["State"], "DISABLED");
}

/// A selector that matches nothing fails the scheduled run at ResolveImage, before
/// anything is shared, with Ferry.ImageNotFound naming the pattern.
#[tokio::test(flavor = "multi_thread")]
async fn a_selector_that_matches_nothing_fails_before_anything_is_shared() {
    let (_guard, world) = serial_world().await;
    let run = run_name("sched-none");
    let b = account(2);
    let tb = target_account(&world, &b, "ferry-e2e-ext-sched-none", None).await;
    let pattern = format!("ferry-e2e-{run}-nothing-*");
    let input =
        json!({"share": {"image": {"namePattern": pattern}}, "targets": [target_json(&tb)]});
    let marker = call_marker(&world).await;
    let execution = world
        .run("distribute-image", &run_name("sched-none"), &input)
        .await;
    assert_eq!(execution.status, "FAILED");
    assert_eq!(execution.error.as_deref(), Some("Ferry.ImageNotFound"));
    assert!(
        execution
            .cause
            .as_deref()
            .unwrap_or_default()
            .contains(&pattern),
        "{:?}",
        execution.cause
    );
    let mutating: Vec<Value> = calls_between(&world, marker, None)
        .into_iter()
        .filter(is_mutating_call)
        .collect();
    assert!(mutating.is_empty(), "mutating calls: {mutating:#?}");
}
