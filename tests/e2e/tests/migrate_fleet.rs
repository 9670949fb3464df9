//! End-to-end runs of the real `migrate-fleet` state machine in the local AWS world: a
//! fleet of five with one refusal and one injected launch failure, the `maxFailures`
//! stop, and a selector's dry run. Assertions are on the result table and on AWS state:
//! where each instance runs, and that nothing ferry made is left behind by the
//! migrations that did not happen.
//!
//! Run: `FERRY_WORLD_JSON=<state dir>/world.json cargo test --workspace --test
//! migrate_fleet -- --nocapture`.

use aws_sdk_ec2::types as ec2t;
use ferry_e2e::*;
use serde_json::{json, Value};

async fn setup(label: &str) -> (tokio::sync::MutexGuard<'static, ()>, World, WebServer) {
    let (guard, world) = serial_world().await;
    world.control("DELETE", "/ferry-world/calls", None);
    world.set_config(json!({"failImages": [], "instanceTypeOfferings": {}}));
    let source = web_server(&world, &run_name(label)).await;
    (guard, world, source)
}

/// A plain instance in `subnet` of the web server's VPC (its AMI and security group),
/// tagged `ferry-e2e-fleet = fleet`; running.
async fn member(world: &World, ws: &WebServer, subnet: &str, fleet: &str) -> String {
    let ec2 = world.ec2();
    let image = instance(world, &ws.instance_id)
        .await
        .image_id()
        .unwrap()
        .to_string();
    let run = ec2
        .run_instances()
        .image_id(image)
        .instance_type(ec2t::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet)
        .security_group_ids(&ws.security_group_id)
        .tag_specifications(
            ec2t::TagSpecification::builder()
                .resource_type(ec2t::ResourceType::Instance)
                .tags(
                    ec2t::Tag::builder()
                        .key("ferry-e2e-fleet")
                        .value(fleet)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("RunInstances (fleet member)");
    let id = run.instances()[0].instance_id().unwrap().to_string();
    accounts::wait_until(&format!("{id} visible"), || {
        let ec2 = ec2.clone();
        let id = id.clone();
        async move {
            ec2.describe_instances()
                .instance_ids(&id)
                .send()
                .await
                .is_ok()
        }
    })
    .await;
    wait_for_state(world, &id, "running").await;
    id
}

fn az_of(i: &ec2t::Instance) -> String {
    i.placement()
        .and_then(|p| p.availability_zone())
        .unwrap_or_default()
        .to_string()
}

/// Nothing the nested execution made is left: no instance alive, no image, no snapshot.
async fn nothing_left_by(world: &World, child_execution_arn: &str) {
    let (instances, images, snapshots) = ferry_made(world, child_execution_arn).await;
    let alive: Vec<String> = instances
        .iter()
        .filter(|i| !matches!(state(i).as_str(), "terminated" | "shutting-down"))
        .map(|i| i.instance_id().unwrap_or_default().to_string())
        .collect();
    assert!(
        alive.is_empty(),
        "{child_execution_arn}: instances left {alive:?}"
    );
    let live: Vec<String> = images
        .iter()
        .filter(|i| i.state().map(|s| s.as_str()) != Some("deregistered"))
        .map(|i| i.image_id().unwrap_or_default().to_string())
        .collect();
    assert!(
        live.is_empty(),
        "{child_execution_arn}: images left {live:?}"
    );
    assert!(
        snapshots.is_empty(),
        "{child_execution_arn}: {} snapshots left",
        snapshots.len()
    );
}

fn line<'a>(out: &'a Value, instance: &str) -> &'a Value {
    out["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["sourceInstanceId"] == instance)
        .unwrap_or_else(|| panic!("no line for {instance}: {out:#}"))
}

/// Five sources in AZ a: three move to AZ b; one is refused by migrate-instance's
/// Preflight (its target subnet is in its own AZ) and is reported SKIPPED; the first
/// launch of the wave fails (an injected UnauthorizedOperation on RunInstances) and that
/// migration is ROLLED_BACK with the error's name. The refused and the rolled-back
/// sources still run in AZ a and nothing of their runs is left.
#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_of_five_reports_each_instance_and_leaves_nothing_behind() {
    let (_guard, world, ws) = setup("fleet5").await;
    let fleet = run_name("fleet5");
    let mut sources = vec![ws.instance_id.clone()];
    for _ in 0..4 {
        sources.push(member(&world, &ws, &ws.subnet_a, &fleet).await);
    }
    let refused = sources[4].clone();
    let migrations: Vec<Value> = sources
        .iter()
        .map(|s| {
            let subnet = if *s == refused {
                &ws.subnet_a
            } else {
                &ws.subnet_b
            };
            json!({"sourceInstanceId": s, "targetSubnetId": subnet})
        })
        .collect();
    world.inject_fault("ec2", "RunInstances", 1, "UnauthorizedOperation", 403);
    let execution = world
        .run(
            "migrate-fleet",
            &run_name("fleet5"),
            &json!({"migrations": migrations, "maxConcurrency": 5}),
        )
        .await;
    world.clear_faults();
    let out = execution.assert_succeeded().clone();
    eprintln!("{out:#}");
    assert_eq!(out["results"].as_array().unwrap().len(), 5, "{out:#}");
    assert_eq!(
        out["summary"],
        json!({"SUCCEEDED": 3, "SKIPPED": 1, "ROLLED_BACK": 1}),
        "{out:#}"
    );
    assert_eq!(out["failures"], 1);
    assert_eq!(out["stoppedEarly"], false);

    let skipped = line(&out, &refused);
    assert_eq!(skipped["status"], "SKIPPED", "{skipped}");
    assert_eq!(skipped["error"], "Ferry.SameAvailabilityZone", "{skipped}");
    let rolled_back: Vec<&Value> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "ROLLED_BACK")
        .collect();
    let failed_source = rolled_back[0]["sourceInstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        rolled_back[0]["cause"]
            .as_str()
            .unwrap_or_default()
            .contains("UnauthorizedOperation"),
        "{}",
        rolled_back[0]
    );

    for s in &sources {
        let r = line(&out, s);
        let child = r["executionArn"].as_str().expect("the child's ARN");
        if *s == refused || *s == failed_source {
            // still where it was, running, and nothing of its run is left
            let i = instance(&world, s).await;
            assert_eq!(state(&i), "running", "{s}");
            assert_eq!(az_of(&i), world.az('a'), "{s}");
            nothing_left_by(&world, child).await;
        } else {
            assert_eq!(r["status"], "SUCCEEDED", "{r}");
            let new_id = r["newInstanceId"].as_str().expect("newInstanceId");
            let new = instance(&world, new_id).await;
            assert_eq!(state(&new), "running");
            assert_eq!(az_of(&new), world.az('b'));
            assert_eq!(r["targetAvailabilityZone"], world.az('b').as_str());
            // the intermediate image and its snapshots are gone (keepImage false)
            let (_, images, snapshots) = ferry_made(&world, child).await;
            assert!(
                images
                    .iter()
                    .all(|i| i.state().map(|s| s.as_str()) == Some("deregistered")),
                "{s}: image kept"
            );
            assert!(snapshots.is_empty(), "{s}: snapshots kept");
        }
    }
    // one migration per source: one child execution each, named after the fleet's
    let children: Vec<String> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["executionName"].as_str().unwrap().to_string())
        .collect();
    let distinct: std::collections::BTreeSet<&String> = children.iter().collect();
    assert_eq!(distinct.len(), 5);
}

/// maxFailures 0 with one migration at a time: the first fails (injected), so no other
/// starts; they are NOT_STARTED, and still where they were.
#[tokio::test(flavor = "multi_thread")]
async fn past_max_failures_no_further_migration_starts() {
    let (_guard, world, ws) = setup("fleet-stop").await;
    let fleet = run_name("fleet-stop");
    let mut sources = vec![ws.instance_id.clone()];
    for _ in 0..2 {
        sources.push(member(&world, &ws, &ws.subnet_a, &fleet).await);
    }
    let migrations: Vec<Value> = sources
        .iter()
        .map(|s| json!({"sourceInstanceId": s, "targetSubnetId": ws.subnet_b}))
        .collect();
    world.inject_fault("ec2", "RunInstances", 1, "UnauthorizedOperation", 403);
    let execution = world
        .run(
            "migrate-fleet",
            &run_name("fleet-stop"),
            &json!({"migrations": migrations, "maxConcurrency": 1, "maxFailures": 0}),
        )
        .await;
    world.clear_faults();
    let out = execution.assert_succeeded().clone();
    eprintln!("{out:#}");
    assert_eq!(out["stoppedEarly"], true, "{out:#}");
    assert_eq!(out["summary"], json!({"ROLLED_BACK": 1, "NOT_STARTED": 2}));
    assert_eq!(line(&out, &sources[0])["status"], "ROLLED_BACK");
    for s in &sources[1..] {
        assert_eq!(line(&out, s)["status"], "NOT_STARTED");
        let i = instance(&world, s).await;
        assert_eq!(
            (state(&i), az_of(&i)),
            ("running".to_string(), world.az('a'))
        );
    }
    // Only the first migration ran: the others' nested executions do not exist.
    let machine = &world.state_machines["migrate-instance"];
    let prefix = machine.replace(":stateMachine:", ":execution:");
    for s in &sources[1..] {
        let name = line(&out, s)["executionName"].as_str().unwrap().to_string();
        let found = world
            .sfn()
            .describe_execution()
            .execution_arn(format!("{prefix}:{name}"))
            .send()
            .await;
        assert!(found.is_err(), "{name} was started");
    }
}

/// A selector (a tag, AZ a) with one target subnet (AZ b), as a dry run: the tagged
/// instances of AZ a are PLANNED to AZ b, one tagged in AZ b has no target subnet outside
/// its AZ and is SKIPPED, an untagged one is not in the table; nothing changes.
#[tokio::test(flavor = "multi_thread")]
async fn a_selectors_dry_run_plans_each_tagged_instance_and_changes_nothing() {
    let (_guard, world, ws) = setup("fleet-sel").await;
    let fleet = run_name("fleet-sel");
    let a1 = member(&world, &ws, &ws.subnet_a, &fleet).await;
    let a2 = member(&world, &ws, &ws.subnet_a, &fleet).await;
    let b1 = member(&world, &ws, &ws.subnet_b, &fleet).await;
    let from = call_marker(&world).await;
    let execution = world
        .run(
            "migrate-fleet",
            &run_name("fleet-sel"),
            &json!({"selector": {"tags": {"ferry-e2e-fleet": fleet}},
                    "targetSubnetIds": [ws.subnet_b], "options": {"keepImage": true}, "dryRun": true}),
        )
        .await;
    let out = execution.assert_succeeded().clone();
    eprintln!("{out:#}");
    assert_eq!(out["dryRun"], true);
    assert_eq!(
        out["summary"],
        json!({"PLANNED": 2, "SKIPPED": 1}),
        "{out:#}"
    );
    for s in [&a1, &a2] {
        let r = line(&out, s);
        assert_eq!(r["status"], "PLANNED", "{r}");
        assert_eq!(r["targetAvailabilityZone"], world.az('b').as_str(), "{r}");
    }
    assert_eq!(line(&out, &b1)["status"], "SKIPPED");
    assert_eq!(line(&out, &b1)["error"], "Ferry.NoTargetSubnet");
    assert!(out["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["sourceInstanceId"] != ws.instance_id.as_str()));
    let mutating: Vec<Value> = calls_between(&world, from, None)
        .into_iter()
        .filter(is_mutating_call)
        .collect();
    assert!(mutating.is_empty(), "mutating calls: {mutating:#?}");
}

/// One migration per source at a time, across executions: while a migration of the web
/// server is under way (its image pending), a second migrate-instance of it is refused
/// by its Preflight (Ferry.MigrationInProgress, naming the first) and makes nothing, and
/// a fleet naming it reports it SKIPPED; the first then finishes.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_being_migrated_is_not_migrated_twice() {
    let (_guard, world, ws) = setup("fleet-lock").await;
    // The first migration's image stays pending for two simulated hours.
    world.set_config(json!({"imagePendingMinutes": 120}));
    let request = json!({"sourceInstanceId": ws.instance_id, "targetSubnetId": ws.subnet_b});
    let first = world
        .start("migrate-instance", &run_name("lock-first"), &request)
        .await;
    accounts::wait_until("the first migration's image exists", || {
        let world = &world;
        let first = first.clone();
        async move { !ferry_made(world, &first).await.1.is_empty() }
    })
    .await;

    let second = world
        .run("migrate-instance", &run_name("lock-second"), &request)
        .await;
    second.assert_failed_with("Ferry.MigrationInProgress");
    assert!(
        second.cause.as_deref().unwrap_or_default().contains(&first),
        "{:?}",
        second.cause
    );
    nothing_left_by(&world, &second.arn).await;

    let fleet = world
        .run(
            "migrate-fleet",
            &run_name("lock-fleet"),
            &json!({"migrations": [request]}),
        )
        .await;
    let out = fleet.assert_succeeded().clone();
    assert_eq!(line(&out, &ws.instance_id)["status"], "SKIPPED", "{out:#}");
    assert_eq!(
        line(&out, &ws.instance_id)["error"],
        "Ferry.MigrationInProgress"
    );

    world.set_config(json!({"imagePendingMinutes": 12}));
    let done = world.wait(&first).await;
    done.assert_succeeded();
}
