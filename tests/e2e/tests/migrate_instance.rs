//! End-to-end runs of the real `migrate-instance` state machine on the real Lambdas in the
//! local AWS world. Every test asserts on the AWS state it leaves, seen through the SDK.

use ferry_e2e::*;
use serde_json::{json, Value};

async fn setup(label: &str) -> (tokio::sync::MutexGuard<'static, ()>, World, WebServer) {
    let guard = SERIAL.lock().await;
    let world = World::connect().await;
    baseline(&world);
    let source = web_server(&world, &run_name(label)).await;
    (guard, world, source)
}

/// Faults cleared and world settings at their defaults.
fn baseline(world: &World) {
    world.clear_faults();
    world.control("DELETE", "/ferry-world/calls", None);
    world.set_config(json!({"failImages": [], "instanceTypeOfferings": {}}));
}

fn request(source: &WebServer, extra: Value) -> Value {
    let mut v = json!({"sourceInstanceId": source.instance_id, "targetSubnetId": source.subnet_b});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// The source as it was built: running in AZ a with its Elastic IP, nothing ferry-made.
async fn assert_source_untouched(world: &World, source: &WebServer, execution_arn: &str) {
    wait_for_state(world, &source.instance_id, "running").await;
    let eip = world
        .ec2()
        .describe_addresses()
        .allocation_ids(&source.allocation_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        eip.addresses()[0].instance_id(),
        Some(source.instance_id.as_str()),
        "EIP left the source"
    );
    let (instances, images, snapshots) = ferry_made(world, execution_arn).await;
    let alive: Vec<_> = instances
        .iter()
        .filter(|i| !matches!(state(i).as_str(), "terminated" | "shutting-down"))
        .map(|i| i.instance_id().unwrap_or_default().to_string())
        .collect();
    assert!(alive.is_empty(), "instances left running: {alive:?}");
    let live_images: Vec<_> = images
        .iter()
        .filter(|i| i.state().map(|s| s.as_str()) != Some("deregistered"))
        .map(|i| i.image_id().unwrap_or_default().to_string())
        .collect();
    assert!(live_images.is_empty(), "images left: {live_images:?}");
    assert!(snapshots.is_empty(), "snapshots left: {}", snapshots.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn migrates_a_web_server_preserving_every_attribute() {
    let (_guard, world, source) = setup("happy").await;
    let ec2 = world.ec2();
    let name = run_name("happy");
    let execution = world
        .run(
            "migrate-instance",
            &name,
            &request(
                &source,
                json!({"stopSource": true, "sourceAction": "stop", "tags": {"change": "CHG-4711"}}),
            ),
        )
        .await;
    let output = execution.assert_succeeded().clone();
    let new_id = output["newInstanceId"].as_str().unwrap().to_string();
    assert_ne!(new_id, source.instance_id);
    assert_eq!(output["targetAvailabilityZone"], world.az('b'));
    assert_eq!(output["elasticIpsMoved"], json!([source.public_ip]));
    assert_eq!(output["imageKept"], false);
    eprintln!(
        "migrated {} -> {new_id} in {} simulated seconds: {:?}",
        source.instance_id,
        execution.simulated_seconds,
        world.state_durations(&execution.arn).await
    );

    // The new instance: where it runs and everything carried over (rule 14).
    let new = instance(&world, &new_id).await;
    assert_eq!(state(&new), "running");
    assert_eq!(
        new.placement().and_then(|p| p.availability_zone()),
        Some(world.az('b').as_str())
    );
    assert_eq!(new.subnet_id(), Some(source.subnet_b.as_str()));
    assert_eq!(new.instance_type().map(|t| t.as_str()), Some("t3.micro"));
    let groups: Vec<_> = new
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id())
        .collect();
    assert_eq!(groups, [source.security_group_id.as_str()]);
    assert_eq!(
        new.iam_instance_profile().and_then(|p| p.arn()),
        Some(source.instance_profile_arn.as_str())
    );
    assert_eq!(new.key_name(), Some(source.key_name.as_str()));
    let imds = new.metadata_options().expect("metadata options");
    assert_eq!(imds.http_tokens().map(|t| t.as_str()), Some("required"));
    assert_eq!(imds.http_put_response_hop_limit(), Some(2));
    assert_eq!(
        new.monitoring().and_then(|m| m.state()).map(|s| s.as_str()),
        Some("enabled")
    );
    assert_eq!(new.ebs_optimized(), Some(true));
    let attribute = |name: aws_sdk_ec2::types::InstanceAttributeName| {
        ec2.describe_instance_attribute()
            .instance_id(&new_id)
            .attribute(name)
            .send()
    };
    let user_data = attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .await
        .unwrap();
    assert_eq!(
        user_data.user_data().and_then(|v| v.value()),
        Some(source.user_data.as_str())
    );
    let protection = attribute(aws_sdk_ec2::types::InstanceAttributeName::DisableApiTermination)
        .await
        .unwrap();
    assert_eq!(
        protection.disable_api_termination().and_then(|v| v.value()),
        Some(true)
    );
    let credits = ec2
        .describe_instance_credit_specifications()
        .instance_ids(&new_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        credits.instance_credit_specifications()[0].cpu_credits(),
        Some("unlimited")
    );

    // Volumes: type, size, IOPS, throughput, encryption under the same CMK, delete-on-termination.
    let mut volumes = Vec::new();
    for m in new.block_device_mappings() {
        let ebs = m.ebs().unwrap();
        let v = ec2
            .describe_volumes()
            .volume_ids(ebs.volume_id().unwrap())
            .send()
            .await
            .unwrap()
            .volumes()[0]
            .clone();
        volumes.push((
            m.device_name().unwrap().to_string(),
            ebs.delete_on_termination(),
            v,
        ));
    }
    volumes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(volumes.len(), 2, "{volumes:?}");
    let (root_dev, root_dot, root) = &volumes[1];
    let (data_dev, data_dot, data) = &volumes[0];
    assert_eq!(
        (root_dev.as_str(), data_dev.as_str()),
        ("/dev/xvda", "/dev/sdf")
    );
    assert_eq!(
        (
            root.volume_type().map(|t| t.as_str()),
            root.size(),
            root.iops(),
            root.throughput()
        ),
        (Some("gp3"), Some(16), Some(3000), Some(250))
    );
    assert_eq!(
        (
            data.volume_type().map(|t| t.as_str()),
            data.size(),
            data.iops()
        ),
        (Some("io2"), Some(40), Some(2000))
    );
    for v in [root, data] {
        assert_eq!(v.encrypted(), Some(true));
        assert_eq!(v.kms_key_id(), Some(source.key_arn.as_str()), "volume key");
        assert_eq!(v.availability_zone(), Some(world.az('b').as_str()));
    }
    assert_eq!((*root_dot, *data_dot), (Some(true), Some(false)));

    // Tags: the source's, the request's, ferry's.
    let tags = tag_map(new.tags());
    assert!(
        tags.get("Name").is_some_and(|n| n.starts_with("web-happy")),
        "{tags:?}"
    );
    assert_eq!(tags.get("team").map(String::as_str), Some("storefront"));
    assert_eq!(tags.get("change").map(String::as_str), Some("CHG-4711"));
    assert_eq!(tags.get("ferry:source-instance"), Some(&source.instance_id));
    assert_eq!(tags.get("ferry:execution"), Some(&execution.arn));

    // The Elastic IP moved; the source is stopped (sourceAction), not terminated.
    let eip = ec2
        .describe_addresses()
        .allocation_ids(&source.allocation_id)
        .send()
        .await
        .unwrap();
    assert_eq!(eip.addresses()[0].instance_id(), Some(new_id.as_str()));
    let old = instance(&world, &source.instance_id).await;
    assert!(
        matches!(state(&old).as_str(), "stopping" | "stopped"),
        "source is {}",
        state(&old)
    );

    // The intermediate image and its snapshots are gone (keepImage false).
    let (instances, images, snapshots) = ferry_made(&world, &execution.arn).await;
    assert_eq!(instances.len(), 1);
    assert!(
        images
            .iter()
            .all(|i| i.state().map(|s| s.as_str()) == Some("deregistered")),
        "{images:?}"
    );
    assert!(snapshots.is_empty(), "{snapshots:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_refuses_with_named_errors_and_creates_nothing() {
    let (_guard, world, source) = setup("refusals").await;
    let ec2 = world.ec2();
    let same_az_subnet = ec2
        .create_subnet()
        .vpc_id(&source.vpc_id)
        .cidr_block("10.20.3.0/24")
        .availability_zone(world.az('a'))
        .send()
        .await
        .unwrap()
        .subnet()
        .and_then(|s| s.subnet_id())
        .unwrap()
        .to_string();
    let store = ec2
        .run_instances()
        .image_id(INSTANCE_STORE_AMI)
        .instance_type(aws_sdk_ec2::types::InstanceType::M3Medium)
        .min_count(1)
        .max_count(1)
        .subnet_id(&source.subnet_a)
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    wait_for_state(&world, &store, "running").await;
    // A source in a cluster placement group: the group cannot follow it to another AZ.
    let group = format!("hpc-{}", run_name("pg"));
    ec2.create_placement_group()
        .group_name(&group)
        .strategy(aws_sdk_ec2::types::PlacementStrategy::Cluster)
        .send()
        .await
        .unwrap();
    let clustered = ec2
        .run_instances()
        .image_id(EBS_AMI)
        .instance_type(aws_sdk_ec2::types::InstanceType::C5Large)
        .min_count(1)
        .max_count(1)
        .subnet_id(&source.subnet_a)
        .placement(
            aws_sdk_ec2::types::Placement::builder()
                .group_name(&group)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    wait_for_state(&world, &clustered, "running").await;

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "cluster-placement-group",
            json!({"sourceInstanceId": clustered, "targetSubnetId": source.subnet_b}),
            "Ferry.UnsupportedConfiguration",
        ),
        (
            "unknown-field",
            request(&source, json!({"targetAz": "b"})),
            "Ferry.InvalidInput",
        ),
        (
            "malformed-id",
            json!({"sourceInstanceId": "i-xyz", "targetSubnetId": source.subnet_b}),
            "Ferry.InvalidInput",
        ),
        (
            "wrong-type",
            request(&source, json!({"keepImage": "yes"})),
            "Ferry.InvalidInput",
        ),
        (
            "unknown-instance",
            json!({"sourceInstanceId": "i-0123456789abcdef0", "targetSubnetId": source.subnet_b}),
            "Ferry.InstanceNotFound",
        ),
        (
            "instance-store",
            json!({"sourceInstanceId": store, "targetSubnetId": source.subnet_b}),
            "Ferry.UnsupportedRootDevice",
        ),
        (
            "same-az",
            request(&source, json!({"targetSubnetId": same_az_subnet})),
            "Ferry.SameAvailabilityZone",
        ),
        (
            "foreign-sg",
            request(
                &source,
                json!({"securityGroupIds": [source.other_vpc_security_group_id]}),
            ),
            "Ferry.SecurityGroupVpcMismatch",
        ),
        (
            "protected",
            request(&source, json!({"sourceAction": "terminate"})),
            "Ferry.SourceProtected",
        ),
    ];
    for (label, input, error) in cases {
        let execution = world
            .run("migrate-instance", &run_name(label), &input)
            .await;
        execution.assert_failed_with(error);
        assert_source_untouched(&world, &source, &execution.arn).await;
    }

    // Rule 12: the type must be offered in the target AZ.
    world.set_config(json!({"instanceTypeOfferings": {world.az('b'): ["m5.large"]}}));
    let execution = world
        .run(
            "migrate-instance",
            &run_name("not-offered"),
            &request(&source, json!({})),
        )
        .await;
    world.set_config(json!({"instanceTypeOfferings": {}}));
    execution.assert_failed_with("Ferry.InstanceTypeNotOffered");
    assert!(execution
        .cause
        .as_deref()
        .unwrap_or_default()
        .contains("t3.micro"));
    assert_source_untouched(&world, &source, &execution.arn).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_image_rolls_back_and_restarts_the_source() {
    let (_guard, world, source) = setup("image-failed").await;
    world.set_config(json!({"failImages": ["ferry-*"]}));
    let execution = world
        .run(
            "migrate-instance",
            &run_name("image-failed"),
            &request(&source, json!({"stopSource": true})),
        )
        .await;
    world.set_config(json!({"failImages": []}));
    execution.assert_failed_with("Ferry.ImageFailed");
    assert!(execution
        .cause
        .as_deref()
        .unwrap_or_default()
        .contains("Client.InternalError"));
    let durations = world.state_durations(&execution.arn).await;
    assert!(
        durations.iter().any(|(s, _)| s == "Rollback"),
        "{durations:?}"
    );
    assert!(
        !durations.iter().any(|(s, _)| s == "LaunchInstance"),
        "{durations:?}"
    );
    // The source was stopped for imaging; rollback started it again.
    assert_source_untouched(&world, &source, &execution.arn).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn insufficient_capacity_at_launch_rolls_back_leaving_the_source_untouched() {
    let (_guard, world, source) = setup("ice").await;
    world.inject_fault(
        "ec2",
        "RunInstances",
        20,
        "InsufficientInstanceCapacity",
        500,
    );
    let execution = world
        .run(
            "migrate-instance",
            &run_name("ice"),
            &request(&source, json!({})),
        )
        .await;
    world.clear_faults();
    execution.assert_failed_with("Ferry.InsufficientCapacity");
    let launches = world
        .state_durations(&execution.arn)
        .await
        .iter()
        .filter(|(s, _)| s == "LaunchInstance")
        .count();
    assert_eq!(
        launches, 1,
        "one LaunchInstance state, its attempts retried inside it"
    );
    assert_source_untouched(&world, &source, &execution.arn).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_absorbed_by_retries() {
    let (_guard, world, source) = setup("throttled").await;
    world.inject_fault("ec2", "DescribeImages", 6, "RequestLimitExceeded", 503);
    world.inject_fault("ec2", "DescribeInstances", 3, "RequestLimitExceeded", 503);
    let execution = world
        .run(
            "migrate-instance",
            &run_name("throttled"),
            &request(&source, json!({})),
        )
        .await;
    let remaining = world.control("GET", "/ferry-world/faults", None);
    world.clear_faults();
    execution.assert_succeeded();
    assert!(
        remaining.to_string().contains("\"remaining\":0")
            || remaining == json!([])
            || remaining == json!({"faults": []}),
        "every injected fault was hit: {remaining}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_execution_name_twice_creates_one_image_and_one_instance() {
    let (_guard, world, source) = setup("twice").await;
    let name = run_name("twice");
    let input = request(&source, json!({"keepImage": true}));
    // Each mutating call succeeds in EC2 but its answer is lost once: the SDK retries it,
    // so the steps must rely on ClientToken / the deterministic image name.
    world.control(
        "POST",
        "/ferry-world/faults",
        Some(&json!({"service": "ec2", "action": "RunInstances", "count": 1, "code": "InternalError", "status": 500, "mode": "after"})),
    );
    world.control(
        "POST",
        "/ferry-world/faults",
        Some(&json!({"service": "ec2", "action": "CreateImage", "count": 1, "code": "InternalError", "status": 500, "mode": "after"})),
    );
    let first = world.run("migrate-instance", &name, &input).await;
    world.clear_faults();
    first.assert_succeeded();
    // The same name again: Step Functions answers with the same execution or refuses it.
    let again = world
        .sfn()
        .start_execution()
        .state_machine_arn(&world.state_machines["migrate-instance"])
        .name(&name)
        .input(input.to_string())
        .send()
        .await;
    match again {
        Ok(out) => {
            assert_eq!(out.execution_arn(), first.arn);
            world.wait(&first.arn).await.assert_succeeded();
        }
        Err(e) => assert!(format!("{e:?}").contains("ExecutionAlreadyExists"), "{e:?}"),
    }
    let (instances, images, _) = ferry_made(&world, &first.arn).await;
    assert_eq!(instances.len(), 1, "one instance: {instances:?}");
    assert_eq!(images.len(), 1, "one image: {images:?}");
    // The lost answers really were retried: the source's launch in setup, then two
    // RunInstances calls from the step; and two CreateImage calls.
    assert!(world.calls("ec2", "RunInstances").len() >= 3);
    assert!(world.calls("ec2", "CreateImage").len() >= 2);
}

/// Rule 22: a T2 reports CPU options (1 core, 1 thread) but RunInstances refuses any for
/// it (`UnsupportedOperation`), so the move must launch without them; a T3 with SMT off
/// keeps that setting.
#[tokio::test(flavor = "multi_thread")]
async fn cpu_options_are_sent_only_where_the_type_takes_them() {
    let (_guard, world, source) = setup("cpu").await;
    let ec2 = world.ec2();
    let launch = |instance_type: aws_sdk_ec2::types::InstanceType, cpu: Option<(i32, i32)>| {
        let ec2 = ec2.clone();
        let subnet = source.subnet_a.clone();
        let group = source.security_group_id.clone();
        async move {
            ec2.run_instances()
                .image_id(EBS_AMI)
                .instance_type(instance_type)
                .min_count(1)
                .max_count(1)
                .subnet_id(subnet)
                .security_group_ids(group)
                .set_cpu_options(cpu.map(|(cores, threads)| {
                    aws_sdk_ec2::types::CpuOptionsRequest::builder()
                        .core_count(cores)
                        .threads_per_core(threads)
                        .build()
                }))
                .send()
                .await
                .expect("RunInstances")
                .instances()[0]
                .instance_id()
                .unwrap()
                .to_string()
        }
    };
    let t2 = launch(aws_sdk_ec2::types::InstanceType::T2Micro, None).await;
    let t3 = launch(aws_sdk_ec2::types::InstanceType::T3Large, Some((1, 1))).await;
    for (label, id, threads) in [("cpu-t2", &t2, 1), ("cpu-t3-smt-off", &t3, 1)] {
        wait_for_state(&world, id, "running").await;
        let input = json!({"sourceInstanceId": id, "targetSubnetId": source.subnet_b});
        let execution = world
            .run("migrate-instance", &run_name(label), &input)
            .await;
        let out = execution.assert_succeeded();
        let new = instance(&world, out["newInstanceId"].as_str().unwrap()).await;
        assert_eq!(
            new.placement().and_then(|p| p.availability_zone()),
            Some(world.az('b').as_str())
        );
        let cpu = new.cpu_options().expect("CpuOptions");
        assert_eq!(
            (cpu.core_count(), cpu.threads_per_core()),
            (Some(1), Some(threads)),
            "{label}"
        );
    }
    assert_eq!(
        instance(&world, &t2)
            .await
            .instance_type()
            .map(|t| t.as_str()),
        Some("t2.micro")
    );
}

/// IAM is evaluated in the world: LaunchInstance's role without ec2:RunInstances makes
/// the launch fail with EC2's own UnauthorizedOperation, and the run rolls back.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_without_run_instances_fails_the_launch_and_rolls_back() {
    let (_guard, world, source) = setup("iam").await;
    let role = world.function_roles["LaunchInstanceFunction"].clone();
    let before = world.remove_actions(&role, &["ec2:RunInstances"]).await;
    let execution = world
        .run(
            "migrate-instance",
            &run_name("iam"),
            &request(&source, json!({})),
        )
        .await;
    world.restore_policies(&role, before).await;
    execution.assert_failed_with("Ferry.AwsError");
    let cause = execution.cause.clone().unwrap_or_default();
    assert!(
        cause.contains("UnauthorizedOperation") && cause.contains("ec2:RunInstances"),
        "the launch failed for IAM: {cause}"
    );
    assert_source_untouched(&world, &source, &execution.arn).await;
}

/// Issue 8, 2.1 (rule 21): the source's volumes are under a customer-managed key whose
/// policy leaves use to IAM. A failed launch rolls back and restarts the stopped source:
/// with the rollback role's KMS permissions it comes back `running`; without them (the
/// role as it was before) it goes back to `stopped` with Client.InternalError and the
/// rollback says so by name instead of retrying for hours.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_restarts_a_cmk_encrypted_source_or_says_it_could_not() {
    let (_guard, world, source) = setup("cmk-restart").await;
    let input = request(&source, json!({"stopSource": true}));
    world.inject_fault(
        "ec2",
        "RunInstances",
        20,
        "InsufficientInstanceCapacity",
        500,
    );
    let execution = world
        .run("migrate-instance", &run_name("cmk-restart"), &input)
        .await;
    world.clear_faults();
    execution.assert_failed_with("Ferry.InsufficientCapacity");
    assert_source_untouched(&world, &source, &execution.arn).await;

    // The rollback role without its KMS statements.
    let role = world.function_roles["RollbackFunction"].clone();
    let removed = world
        .remove_actions(&role, &["kms:CreateGrant", "kms:Decrypt"])
        .await;
    world.inject_fault(
        "ec2",
        "RunInstances",
        20,
        "InsufficientInstanceCapacity",
        500,
    );
    let execution = world
        .run("migrate-instance", &run_name("cmk-restart-denied"), &input)
        .await;
    world.clear_faults();
    world.restore_policies(&role, removed).await;
    execution.assert_failed_with("Ferry.InsufficientCapacity");
    let failed = world
        .state_input(&execution.arn, "MigrationFailed")
        .await
        .expect("MigrationFailed entered");
    assert_eq!(
        failed["rollbackError"]["Error"], "Ferry.SourceNotRestored",
        "{failed}"
    );
    let cause = failed["rollbackError"]["Cause"]
        .as_str()
        .unwrap_or_default();
    assert!(cause.contains("Client.InternalError"), "{cause}");
    let i = instance(&world, &source.instance_id).await;
    assert_eq!(state(&i), "stopped", "the source could not be started");
    // Put it back for the next tests' sake.
    world
        .ec2()
        .start_instances()
        .instance_ids(&source.instance_id)
        .send()
        .await
        .unwrap();
}
