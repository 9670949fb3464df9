//! The bad-input corpus: every case in `tests/e2e/corpus/<workflow>.json` is run through
//! its real state machine on the real Lambdas in the local AWS world, and must fail with
//! exactly its named `Ferry.*` error, while no ferry Lambda makes a single mutating AWS
//! call, with its own credentials or a role it assumed (asserted on the world's call
//! records: see [`is_mutating`] and [`by_ferry`]).
//!
//! A case is `{"name", "why", "input", "error"}`, plus `"bug"` when ferry does not (yet)
//! refuse it as it should: `error` is then the name ferry *should* give, `bug` says what it
//! does instead, and the test lists such cases apart and fails until the bug is fixed and
//! the mark removed.
//!
//! In `input`, `${NAME}` is replaced by a fixture the runner builds once (see
//! [`PLACEHOLDERS`]), anywhere inside a string. `{"$repeat": N, "item": ...}` stands for an
//! array of N copies of `item` in which `${INDEX}` is the copy's index, 3 digits
//! (`000`..): a request too large to write out (more than `MAX_TARGETS` targets).
//!
//! Run: `FERRY_WORLD_JSON=<state dir>/world.json cargo test --workspace --test bad_input
//! -- --nocapture`; it prints `N bad inputs, N refused by name, 0 mutating calls`.

use aws_sdk_ec2::types as ec2t;
use ferry_core::ErrorName;
use ferry_e2e::accounts::*;
use ferry_e2e::corpus::*;
use ferry_e2e::targets::*;
use ferry_e2e::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// The corpus must hold at least this many cases in total.
const MIN_CASES: usize = 50;

/// Cases run at the same time (the world runs up to 8 sandboxes per function).
const CONCURRENCY: usize = 4;

/// Every placeholder a case may use, and what the runner puts there.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("REGION", "the world's region (the hub's)"),
    ("HUB_ACCOUNT", "the hub account id"),
    (
        "HUB_KEY",
        "an enabled customer-managed key of the hub (ARN)",
    ),
    (
        "DISABLED_KEY",
        "a disabled customer-managed key of the hub (ARN)",
    ),
    (
        "SOURCE_INSTANCE",
        "a running web server in AZ a, with termination protection and 2 tags",
    ),
    ("SOURCE_SUBNET", "the source's subnet (AZ a)"),
    ("TARGET_SUBNET", "a subnet of the source's VPC in AZ b"),
    ("SOURCE_SG", "the source's security group"),
    ("OTHER_VPC_SG", "a security group of another VPC"),
    (
        "STORE_INSTANCE",
        "a running instance with an instance-store root",
    ),
    ("TERMINATED_INSTANCE", "a terminated instance"),
    (
        "TWO_NIC_INSTANCE",
        "a running instance with two network interfaces",
    ),
    (
        "MANY_TAGS_VOLUME_INSTANCE",
        "a running instance whose root volume carries 48 tags",
    ),
    ("IMAGE", "an unencrypted AMI of the hub, shared with nobody"),
    ("CMK_IMAGE", "an AMI of the hub encrypted under HUB_KEY"),
    ("EBS_IMAGE", "an AMI of the hub encrypted under aws/ebs"),
    (
        "SHARED_IMAGE",
        "an unencrypted AMI of the hub shared with TARGET_ACCOUNT (launch and snapshot)",
    ),
    ("FOREIGN_IMAGE", "an AMI owned by TARGET_ACCOUNT"),
    (
        "TARGET_ACCOUNT",
        "a target account with target-account.yaml deployed",
    ),
    ("TARGET_ROLE", "its ferry role (ARN)"),
    ("EXTERNAL_ID", "the role's ExternalId"),
    ("TARGET_KEY", "the target's own customer-managed key (ARN)"),
];

/// `OTHER_ACCOUNT` (a valid account id where nothing is deployed) is a placeholder too.
const OTHER_ACCOUNT: &str = "OTHER_ACCOUNT";

fn known_placeholder(name: &str) -> bool {
    name == OTHER_ACCOUNT || PLACEHOLDERS.iter().any(|(p, _)| *p == name)
}

fn strings_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings_in(x, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push(k.clone());
            strings_in(x, out)
        }),
        _ => {}
    }
}

/// The corpus's shape, checked without the world: enough cases, every field filled in,
/// names unique and usable in an execution name, every error a ferry error name, every
/// placeholder one the runner builds.
#[test]
fn the_corpus_has_at_least_50_well_formed_cases() {
    let cases = corpus();
    assert!(
        cases.len() >= MIN_CASES,
        "the bad-input corpus has {} cases; it must have at least {MIN_CASES}",
        cases.len()
    );
    let names: Vec<&str> = ErrorName::ALL.iter().map(|e| e.as_str()).collect();
    let mut seen = std::collections::BTreeSet::new();
    for (workflow, case) in &cases {
        let id = format!("{workflow}/{}", case.name);
        assert!(seen.insert(id.clone()), "{id}: the name is used twice");
        assert!(
            !case.name.is_empty()
                && case.name.len() <= 40
                && case
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{id}: a case name is 1-40 of a-z, 0-9 and -"
        );
        assert!(!case.why.trim().is_empty(), "{id}: say why it is bad");
        assert!(
            names.contains(&case.error.as_str()),
            "{id}: {} is not one of ferry's error names (functions/core/src/errors.rs)",
            case.error
        );
        if let Some(bug) = &case.bug {
            assert!(!bug.trim().is_empty(), "{id}: describe the bug");
        }
        let mut strings = Vec::new();
        strings_in(&case.input, &mut strings);
        for s in strings {
            for p in placeholders_in(&s) {
                assert!(
                    p == "INDEX" || known_placeholder(&p),
                    "{id}: unknown placeholder ${{{p}}}"
                );
            }
        }
    }
    for workflow in WORKFLOWS {
        assert!(
            cases.iter().any(|(w, _)| *w == workflow),
            "no case for {workflow}"
        );
    }
}

/// A fresh account id per run (see [`fresh_account_id`]).
fn account(n: u64) -> String {
    fresh_account_id(300_000_000_000, n)
}

async fn launch(
    world: &World,
    request: aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder,
) -> String {
    let id = request
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("RunInstances (fixture)")
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    wait_for_state(world, &id, "running").await;
    id
}

/// What the cases run against, built once with the test's own clients.
struct Fixtures {
    /// Placeholder name -> value.
    values: BTreeMap<String, String>,
    /// The access keys of the test's own clients (the hub's, and the session it assumed
    /// in the target account): their calls are never ferry's.
    test_keys: Vec<String>,
}

async fn access_key(config: &aws_config::SdkConfig) -> String {
    use aws_sdk_sts::config::ProvideCredentials;
    config
        .credentials_provider()
        .expect("credentials")
        .provide_credentials()
        .await
        .expect("credentials")
        .access_key_id()
        .to_string()
}

/// Builds every fixture of [`PLACEHOLDERS`] once, with the test's own clients.
async fn fixtures(world: &World) -> Fixtures {
    let label = run_name("bad-input");
    let ec2 = world.ec2();
    let web = web_server(world, &label).await;

    let store = launch(
        world,
        ec2.run_instances()
            .image_id(INSTANCE_STORE_AMI)
            .instance_type(ec2t::InstanceType::M3Medium)
            .subnet_id(&web.subnet_a),
    )
    .await;
    let terminated = launch(
        world,
        ec2.run_instances()
            .image_id(EBS_AMI)
            .instance_type(ec2t::InstanceType::T3Micro)
            .subnet_id(&web.subnet_a),
    )
    .await;
    ec2.terminate_instances()
        .instance_ids(&terminated)
        .send()
        .await
        .expect("TerminateInstances (fixture)");
    wait_for_state(world, &terminated, "terminated").await;
    let nic = |index: i32| {
        ec2t::InstanceNetworkInterfaceSpecification::builder()
            .device_index(index)
            .subnet_id(&web.subnet_a)
            .groups(&web.security_group_id)
            .build()
    };
    let two_nics = launch(
        world,
        ec2.run_instances()
            .image_id(EBS_AMI)
            .instance_type(ec2t::InstanceType::T3Micro)
            .network_interfaces(nic(0))
            .network_interfaces(nic(1)),
    )
    .await;

    // 48 tags on the root volume: the new volume gets them and ferry's own (EC2: at
    // most 50 per resource).
    let volume_tags = (0..48).fold(
        ec2t::TagSpecification::builder().resource_type(ec2t::ResourceType::Volume),
        |spec, i| {
            spec.tags(
                ec2t::Tag::builder()
                    .key(format!("v{i:02}"))
                    .value("x")
                    .build(),
            )
        },
    );
    let many_tags_volume = launch(
        world,
        ec2.run_instances()
            .image_id(EBS_AMI)
            .instance_type(ec2t::InstanceType::T3Micro)
            .subnet_id(&web.subnet_a)
            .tag_specifications(volume_tags.build()),
    )
    .await;

    let hub = world.config.clone();
    let hub_key = create_key(&hub, &format!("ferry {label} (CMK-A)"), None).await;
    let disabled_key = create_key(&hub, &format!("ferry {label} (disabled)"), None).await;
    world
        .kms()
        .disable_key()
        // By key id: the world's DisableKey does not resolve a key ARN.
        .key_id(disabled_key.rsplit('/').next().unwrap())
        .send()
        .await
        .expect("DisableKey (fixture)");

    let b = account(1);
    let other = account(2);
    let target = target_account(world, &b, "ferry-bad-input-ext", None).await;

    let image = make_image(world, &hub, &format!("{label}-plain"), None).await;
    let cmk_image = make_image(world, &hub, &format!("{label}-cmk"), Some(Some(&hub_key))).await;
    let ebs_image = make_image(world, &hub, &format!("{label}-ebs"), Some(None)).await;
    let shared_image = make_image(world, &hub, &format!("{label}-shared"), None).await;
    ec2.modify_image_attribute()
        .image_id(&shared_image)
        .launch_permission(
            ec2t::LaunchPermissionModifications::builder()
                .add(ec2t::LaunchPermission::builder().user_id(&b).build())
                .build(),
        )
        .send()
        .await
        .expect("ModifyImageAttribute LaunchPermission (fixture)");
    let shared_snapshot = world
        .ec2()
        .describe_images()
        .image_ids(&shared_image)
        .send()
        .await
        .expect("DescribeImages (fixture)")
        .images()[0]
        .block_device_mappings()[0]
        .ebs()
        .and_then(|e| e.snapshot_id())
        .unwrap()
        .to_string();
    ec2.modify_snapshot_attribute()
        .snapshot_id(&shared_snapshot)
        .attribute(ec2t::SnapshotAttributeName::CreateVolumePermission)
        .operation_type(ec2t::OperationType::Add)
        .user_ids(&b)
        .send()
        .await
        .expect("ModifySnapshotAttribute (fixture)");
    let foreign_image = make_image(world, &target.config, &format!("{label}-foreign"), None).await;
    ec2.enable_image_block_public_access()
        .image_block_public_access_state(ec2t::ImageBlockPublicAccessEnabledState::BlockNewSharing)
        .send()
        .await
        .expect("EnableImageBlockPublicAccess (fixture)");

    let test_keys = vec![
        access_key(&world.config).await,
        access_key(&target.config).await,
    ];
    let values = BTreeMap::from(
        [
            ("REGION", world.region.clone()),
            ("HUB_ACCOUNT", world.hub_account_id.clone()),
            ("HUB_KEY", hub_key),
            ("DISABLED_KEY", disabled_key),
            ("SOURCE_INSTANCE", web.instance_id.clone()),
            ("SOURCE_SUBNET", web.subnet_a.clone()),
            ("TARGET_SUBNET", web.subnet_b.clone()),
            ("SOURCE_SG", web.security_group_id.clone()),
            ("OTHER_VPC_SG", web.other_vpc_security_group_id.clone()),
            ("STORE_INSTANCE", store),
            ("TERMINATED_INSTANCE", terminated),
            ("TWO_NIC_INSTANCE", two_nics),
            ("MANY_TAGS_VOLUME_INSTANCE", many_tags_volume),
            ("IMAGE", image),
            ("CMK_IMAGE", cmk_image),
            ("EBS_IMAGE", ebs_image),
            ("SHARED_IMAGE", shared_image),
            ("FOREIGN_IMAGE", foreign_image),
            ("TARGET_ACCOUNT", target.account_id.clone()),
            ("TARGET_ROLE", target.role_arn.clone()),
            ("EXTERNAL_ID", target.external_id.clone()),
            ("TARGET_KEY", target.key_arn.clone()),
            (OTHER_ACCOUNT, other),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    Fixtures { values, test_keys }
}

/// A call of a ferry Lambda: the world names the function (`ferry-...`) when it calls with
/// its own credentials; a call under a role it assumed (copy-image acts as the target)
/// carries the session's key and no caller, and is ferry's unless the key is one of the
/// test's own. The Step Functions interpreter (`stepfunctions`) is not ferry's code.
fn by_ferry(call: &Value, test_keys: &[String]) -> bool {
    match call["caller"].as_str() {
        Some(caller) => caller.starts_with("ferry-"),
        None => {
            let key = call["accessKey"].as_str().unwrap_or_default();
            !test_keys.iter().any(|k| k == key)
        }
    }
}

/// The world's latest call sequence number: a call of our own, then its record.
async fn current_seq(world: &World, sts: &aws_sdk_sts::Client, since: u64) -> u64 {
    sts.get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity (marker)");
    let v = world.control(
        "GET",
        &format!("/ferry-world/calls?service=sts&action=GetCallerIdentity&since={since}"),
        None,
    );
    v["calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["seq"].as_u64())
        .max()
        .expect("the marker call is recorded")
}

/// What one case did.
struct Outcome {
    workflow: &'static str,
    case: Case,
    status: String,
    error: Option<String>,
    cause: Option<String>,
    /// World call sequence numbers just before and after the run.
    window: (u64, u64),
    /// Run alone: every call in its window is its own.
    alone: bool,
}

impl Outcome {
    fn id(&self) -> String {
        format!("{}/{}", self.workflow, self.case.name)
    }
    fn refused_by_name(&self) -> bool {
        self.status == "FAILED" && self.error.as_deref() == Some(self.case.error.as_str())
    }
    fn during(&self, call: &Value) -> bool {
        let seq = call["seq"].as_u64().unwrap_or(0);
        self.window.0 < seq && seq < self.window.1
    }
    /// Status, error and (the start of) the cause.
    fn observed(&self) -> String {
        let cause: String = self
            .cause
            .as_deref()
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        format!(
            "{} {} ({cause})",
            self.status,
            self.error.as_deref().unwrap_or("-")
        )
    }
}

fn describe_call(call: &Value) -> String {
    format!(
        "{}:{} by {} in {} (seq {})",
        call["service"].as_str().unwrap_or("?"),
        call["action"].as_str().unwrap_or("?"),
        call["caller"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("a session {}", call["accessKey"].as_str().unwrap_or("?"))),
        call["account"].as_str().unwrap_or("?"),
        call["seq"]
    )
}

/// What every case runs with.
#[derive(Clone)]
struct Runner {
    world: Arc<World>,
    sts: aws_sdk_sts::Client,
    fixtures: Arc<Fixtures>,
    /// The world's call sequence number when the corpus started.
    since: u64,
}

impl Runner {
    /// Runs one case (input expanded and filled in) and notes the world's calls around it.
    async fn run(&self, index: usize, workflow: &'static str, case: Case, alone: bool) -> Outcome {
        let input = substitute(&expand_repeats(&case.input), &self.fixtures.values);
        let name = run_name(&format!("bad-{index:03}-{}", case.name));
        let from = current_seq(&self.world, &self.sts, self.since).await;
        let execution = self.world.run(workflow, &name, &input).await;
        let to = current_seq(&self.world, &self.sts, from).await;
        Outcome {
            workflow,
            case,
            status: execution.status,
            error: execution.error,
            cause: execution.cause,
            window: (from, to),
            alone,
        }
    }
}

/// Runs the corpus: the cases ferry is expected to refuse, [`CONCURRENCY`] at a time
/// (`FERRY_BAD_INPUT_CONCURRENCY` overrides it), then the cases marked `bug` one at a time,
/// so that what they do is theirs alone. Prints one line per workflow and the summary;
/// with `FERRY_BAD_INPUT_VERBOSE=1` also one line per case.
#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_is_refused_by_name_without_a_mutating_call() {
    let _guard = SERIAL.lock().await;
    let started = Instant::now();
    let world = Arc::new(World::connect().await);
    world.clear_faults();
    let cases = corpus();
    let fixtures = Arc::new(fixtures(&world).await);
    let fixtures_took = started.elapsed();
    let sts = aws_sdk_sts::Client::new(&world.config);
    let corpus_start = current_seq(&world, &sts, 0).await;
    let concurrency = std::env::var("FERRY_BAD_INPUT_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(CONCURRENCY);

    let runner = Runner {
        world: world.clone(),
        sts: sts.clone(),
        fixtures: fixtures.clone(),
        since: corpus_start,
    };
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut runs = tokio::task::JoinSet::new();
    let mut outcomes = Vec::new();
    for (i, (workflow, case)) in cases.iter().cloned().enumerate() {
        if case.bug.is_some() {
            continue;
        }
        let (runner, limit) = (runner.clone(), limit.clone());
        runs.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            runner.run(i, workflow, case, concurrency == 1).await
        });
    }
    while let Some(done) = runs.join_next().await {
        outcomes.push(done.expect("a case panicked"));
    }
    for (i, (workflow, case)) in cases.iter().cloned().enumerate() {
        if case.bug.is_some() {
            outcomes.push(runner.run(i, workflow, case, true).await);
        }
    }
    let corpus_end = current_seq(&world, &sts, corpus_start).await;
    let corpus_took = started.elapsed() - fixtures_took;
    // Put the hub back as it was for other tests in this world.
    world
        .ec2()
        .disable_image_block_public_access()
        .send()
        .await
        .expect("DisableImageBlockPublicAccess");
    outcomes.sort_by_key(|o| (o.workflow, o.case.name.clone()));

    let calls = world.control(
        "GET",
        &format!("/ferry-world/calls?since={corpus_start}"),
        None,
    );
    let mutating: Vec<Value> = calls["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            c["seq"].as_u64().unwrap_or(0) < corpus_end
                && is_mutating_call(c)
                && by_ferry(c, &fixtures.test_keys)
        })
        .collect();

    if std::env::var("FERRY_BAD_INPUT_VERBOSE").is_ok_and(|v| v == "1") {
        for o in &outcomes {
            println!("{}: {}", o.id(), o.observed());
        }
    }
    for workflow in WORKFLOWS {
        let of: Vec<&Outcome> = outcomes.iter().filter(|o| o.workflow == workflow).collect();
        println!(
            "{workflow}: {} cases, {} refused by name",
            of.len(),
            of.iter().filter(|o| o.refused_by_name()).count()
        );
    }
    let refused = outcomes.iter().filter(|o| o.refused_by_name()).count();
    println!(
        "{} bad inputs, {refused} refused by name, {} mutating calls",
        outcomes.len(),
        mutating.len()
    );
    println!(
        "(fixtures {:.1} s, corpus {:.1} s, {concurrency} at a time)",
        fixtures_took.as_secs_f64(),
        corpus_took.as_secs_f64()
    );

    let mut problems = Vec::new();
    let mut bugs = Vec::new();
    for o in &outcomes {
        let own_calls: Vec<String> = mutating
            .iter()
            .filter(|c| o.alone && o.during(c))
            .map(describe_call)
            .collect();
        let as_expected = o.refused_by_name() && own_calls.is_empty();
        let mut line = format!("  {}: expected FAILED {}", o.id(), o.case.error);
        if !o.refused_by_name() {
            line += &format!(", got {}", o.observed());
        }
        if !own_calls.is_empty() {
            line += &format!("; mutating calls: {}", own_calls.join(", "));
        }
        match &o.case.bug {
            Some(bug) if as_expected => bugs.push(format!(
                "  {}: now refused as expected: remove its \"bug\" mark (was: {bug})",
                o.id()
            )),
            Some(bug) => bugs.push(format!("{line}\n    bug: {bug}")),
            None if !as_expected => {
                problems.push(format!("{line}\n    why it is bad input: {}", o.case.why))
            }
            None => {}
        }
    }
    // Mutating calls no case run alone accounts for: name the cases running meanwhile.
    for call in &mutating {
        if outcomes.iter().any(|o| o.alone && o.during(call)) {
            continue;
        }
        let running: Vec<String> = outcomes
            .iter()
            .filter(|o| o.during(call))
            .map(Outcome::id)
            .collect();
        problems.push(format!(
            "  mutating call {} while running: {} (FERRY_BAD_INPUT_CONCURRENCY=1 tells which)",
            describe_call(call),
            running.join(", ")
        ));
    }
    if !bugs.is_empty() {
        println!(
            "known bugs (cases marked \"bug\", run one at a time): {}\n{}",
            bugs.len(),
            bugs.join("\n")
        );
    }
    assert!(
        problems.is_empty() && bugs.is_empty(),
        "bad inputs not refused as the corpus expects: {} problem(s), {} known bug(s)\n{}{}",
        problems.len(),
        bugs.len(),
        problems.join("\n"),
        if bugs.is_empty() {
            String::new()
        } else {
            format!("\nknown bugs:\n{}", bugs.join("\n"))
        }
    );
}
