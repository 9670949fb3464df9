//! Triggers (issue 9): the request bus. template.yaml's EventBridge bus
//! `<stack>-requests`, deployed into the world with `RequestBusAccountIds` = account B:
//! an event with source `ferry.requests` and detail-type = a workflow's name starts that
//! workflow (its rule's target role, `InputPath: $.detail`), whether the hub puts it or a
//! listed account puts it on the bus by ARN (the bus policy); an account not listed is
//! refused entry by entry (`FailedEntryCount` 1, `AccessDeniedException`) and nothing
//! starts. The requests are dry runs: nothing is shared.
//!
//! Run: `FERRY_WORLD_JSON=<state dir>/world.json cargo test --workspace --test triggers --
//! --nocapture`.

use aws_sdk_ec2::types as ec2t;
use ferry_e2e::accounts::*;
use ferry_e2e::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A fresh account id per run (see [`fresh_account_id`]).
fn account(n: u64) -> String {
    fresh_account_id(500_000_000_000, n)
}

/// EventBridge PutEvents (JSON protocol, AWSEvents.PutEvents) with `keys`' access key,
/// as an SDK would send it (the world does not check signatures; the access key names
/// the caller). Returns the answer: `{FailedEntryCount, Entries}`.
fn put_events(world: &World, keys: &AccountKeys, entries: Value) -> Value {
    let headers = [
        ("Content-Type", "application/x-amz-json-1.1".to_string()),
        ("X-Amz-Target", "AWSEvents.PutEvents".to_string()),
        ("X-Amz-Security-Token", keys.session_token.clone()),
        (
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/20260101/{}/events/aws4_request, SignedHeaders=host, Signature=0",
                keys.access_key_id, world.region
            ),
        ),
    ];
    let body = json!({ "Entries": entries }).to_string();
    let (status, answer) = http::request(&world.endpoint, "POST", "/", &headers, &body);
    assert_eq!(status, 200, "PutEvents: HTTP {status} {answer}");
    answer
}

fn request(bus: &str, workflow: &str, detail: &Value) -> Value {
    json!([{
        "Source": "ferry.requests",
        "DetailType": workflow,
        "Detail": detail.to_string(),
        "EventBusName": bus,
    }])
}

/// The executions of `machine` whose input is `input`.
async fn executions_with_input(world: &World, machine: &str, input: &Value) -> Vec<String> {
    let arn = &world.state_machines[machine];
    let listed = world
        .sfn()
        .list_executions()
        .state_machine_arn(arn)
        .max_results(1000)
        .send()
        .await
        .expect("ListExecutions");
    let mut out = Vec::new();
    for e in listed.executions() {
        let d = world
            .sfn()
            .describe_execution()
            .execution_arn(e.execution_arn())
            .send()
            .await
            .expect("DescribeExecution");
        let given: Value = d
            .input()
            .and_then(|i| serde_json::from_str(i).ok())
            .unwrap_or(Value::Null);
        if &given == input {
            out.push(e.execution_arn().to_string());
        }
    }
    out
}

/// The one execution the event started: waits (real time, at most 30 s) for it to
/// appear, then until it ends.
async fn started_by_event(world: &World, machine: &str, input: &Value) -> Execution {
    let t0 = Instant::now();
    loop {
        let found = executions_with_input(world, machine, input).await;
        assert!(found.len() <= 1, "one event, several executions: {found:?}");
        if let Some(arn) = found.first() {
            return world.wait(arn).await;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no {machine} execution with input {input} (world's deliveries: {})",
            world.control("GET", "/ferry-world/events/invocations", None)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn launch_permissions(world: &World, image: &str) -> Vec<ec2t::LaunchPermission> {
    world
        .ec2()
        .describe_image_attribute()
        .image_id(image)
        .attribute(ec2t::ImageAttributeName::LaunchPermission)
        .send()
        .await
        .expect("DescribeImageAttribute")
        .launch_permissions()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_on_the_bus_start_their_workflow_from_the_hub_and_listed_accounts_only() {
    let _guard = SERIAL.lock().await;
    let world = World::connect().await;
    world.clear_faults();
    let (b, c) = (account(1), account(2));
    // template.yaml with RequestBusAccountIds = B, as `sam deploy --parameter-overrides`
    // would deploy it.
    let outputs = world.control(
        "POST",
        "/ferry-world/stacks",
        Some(&json!({
            "template": "template.yaml",
            "account": world.hub_account_id,
            "parameters": {"RequestBusAccountIds": b},
        })),
    )["outputs"]
        .clone();
    let bus_name = outputs["RequestBusName"].as_str().expect("RequestBusName");
    let bus_arn = outputs["RequestBusArn"].as_str().expect("RequestBusArn");
    assert_eq!(
        bus_arn,
        format!(
            "arn:aws:events:{}:{}:event-bus/{bus_name}",
            world.region, world.hub_account_id
        )
    );
    let image = make_image(&world, &world.config, &run_name("trigger"), None).await;
    let hub = world.account_keys(&world.hub_account_id).await;
    let others = [
        "migrate-instance",
        "revoke-share",
        "copy-image",
        "distribute-image",
        "migrate-fleet",
    ];

    // 1. The hub puts a share-image request (a dry run) on its bus, by name.
    let from_hub = json!({"imageId": image, "accountIds": [b], "dryRun": true});
    let answer = put_events(&world, &hub, request(bus_name, "share-image", &from_hub));
    assert_eq!(answer["FailedEntryCount"], 0, "{answer}");
    assert!(answer["Entries"][0]["EventId"].is_string(), "{answer}");
    let run = started_by_event(&world, "share-image", &from_hub).await;
    let out = run.assert_succeeded();
    assert_eq!(out["dryRun"], true, "{out}");
    assert_eq!(out["workflow"], "share-image", "{out}");
    assert_eq!(out["plan"]["imageId"], image, "{out}");
    for other in others {
        assert!(
            executions_with_input(&world, other, &from_hub)
                .await
                .is_empty(),
            "{other} started by a share-image request"
        );
    }

    // 2. Account B (listed in RequestBusAccountIds) puts one on the hub's bus by ARN.
    let from_b = json!({"imageId": image, "accountIds": [b, c], "dryRun": true});
    let keys_b = world.account_keys(&b).await;
    let answer = put_events(&world, &keys_b, request(bus_arn, "share-image", &from_b));
    assert_eq!(answer["FailedEntryCount"], 0, "{answer}");
    let run = started_by_event(&world, "share-image", &from_b).await;
    let out = run.assert_succeeded();
    assert_eq!(out["dryRun"], true, "{out}");
    assert_eq!(out["plan"]["imageId"], image, "{out}");

    // 3. Account C (not listed) is refused: its entry fails, nothing starts.
    let from_c = json!({"imageId": image, "accountIds": [c], "dryRun": true});
    let keys_c = world.account_keys(&c).await;
    let answer = put_events(&world, &keys_c, request(bus_arn, "share-image", &from_c));
    assert_eq!(answer["FailedEntryCount"], 1, "{answer}");
    assert_eq!(
        answer["Entries"][0]["ErrorCode"], "AccessDeniedException",
        "{answer}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    for machine in world.state_machines.keys() {
        assert!(
            executions_with_input(&world, machine, &from_c)
                .await
                .is_empty(),
            "{machine} started by C's refused request"
        );
    }

    // Dry runs: the image is still shared with nobody.
    assert!(
        launch_permissions(&world, &image).await.is_empty(),
        "a dry run shared the image"
    );

    // 4. migrate-fleet has its rule too: a selector's dry run from the hub (no instance
    // carries the tag, so its table is empty), started with the event's detail as input.
    let vpc = create_vpc(&world, "10.77.0.0/16").await;
    let subnet = create_subnet(&world, &vpc, "10.77.2.0/24", &world.az('b')).await;
    let fleet = json!({"selector": {"tags": {"ferry-trigger": run_name("trigger-fleet")}},
                       "targetSubnetIds": [subnet], "dryRun": true});
    let answer = put_events(&world, &hub, request(bus_name, "migrate-fleet", &fleet));
    assert_eq!(answer["FailedEntryCount"], 0, "{answer}");
    let run = started_by_event(&world, "migrate-fleet", &fleet).await;
    let out = run.assert_succeeded();
    assert_eq!(out["dryRun"], true, "{out}");
    assert!(
        executions_with_input(&world, "share-image", &fleet)
            .await
            .is_empty(),
        "share-image started by a migrate-fleet request"
    );

    // The stack as `make local-up` deploys it (no account listed): B is refused again.
    world.control(
        "POST",
        "/ferry-world/stacks",
        Some(&json!({"template": "template.yaml", "account": world.hub_account_id, "parameters": {}})),
    );
    let answer = put_events(&world, &keys_b, request(bus_arn, "share-image", &from_c));
    assert_eq!(answer["FailedEntryCount"], 1, "{answer}");
}
