//! Helpers for the end-to-end tests: connect to the local AWS world started by
//! `make local-up` (its `.local/world.json`), build realistic sources, run a state machine
//! and read what AWS looks like afterwards.

pub mod accounts;
pub mod corpus;
pub mod http;
pub mod targets;

pub use http::http_json;

use aws_sdk_ec2::types as ec2t;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const EBS_AMI: &str = "ami-04681a1dbd79675a5"; // amzn2 hvm, EBS root /dev/xvda (moto's catalogue)
pub const INSTANCE_STORE_AMI: &str = "ami-04681a1dbd79675b6"; // instance-store root

/// The world's clock at another scale while this lives ([`World::time_scale`]).
pub struct TimeScale<'a> {
    world: &'a World,
    before: f64,
}

impl Drop for TimeScale<'_> {
    fn drop(&mut self) {
        self.world.control(
            "POST",
            "/ferry-world/clock/scale",
            Some(&serde_json::json!({ "scale": self.before })),
        );
    }
}

/// The running world: endpoint, hub account and the deployed state machines.
pub struct World {
    pub endpoint: String,
    pub region: String,
    pub hub_account_id: String,
    pub state_machines: BTreeMap<String, String>,
    /// Function logical id (template.yaml) -> its role ARN, as deployed.
    pub function_roles: BTreeMap<String, String>,
    /// Function logical id (template.yaml) -> its function name, as deployed (the world's
    /// call records name the calling function by it: `caller`).
    pub function_names: BTreeMap<String, String>,
    pub config: aws_config::SdkConfig,
}

fn world_json_path() -> std::path::PathBuf {
    match std::env::var("FERRY_WORLD_JSON") {
        Ok(p) => p.into(),
        Err(_) => {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.local/world.json")
        }
    }
}

impl World {
    /// Connects to the world; panics with the command to run if it is not up.
    pub async fn connect() -> World {
        let path = world_json_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            http::world_not_up("127.0.0.1", &format!("no {}: {e}", path.display()))
        });
        let json: Value = serde_json::from_str(&text).expect("world.json");
        let endpoint = json["endpoint"].as_str().expect("endpoint").to_string();
        // world.json outlives the world (`make local-down` keeps it): check it answers.
        let (status, _) = http::request(&endpoint, "GET", "/ferry-world/health", &[], "");
        if status != 200 {
            http::world_not_up(&endpoint, &format!("health check answered HTTP {status}"));
        }
        let region = json["region"].as_str().expect("region").to_string();
        let state_machines = json["stateMachines"]
            .as_object()
            .expect("stateMachines")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let function_roles = json["functions"]
            .as_object()
            .map(|fns| {
                fns.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v["role"].as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let function_names = json["functions"]
            .as_object()
            .map(|fns| {
                fns.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v["name"].as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let config = sdk_config(&endpoint, &region, "testing", "testing").await;
        World {
            function_roles,
            function_names,
            hub_account_id: json["hubAccountId"]
                .as_str()
                .expect("hubAccountId")
                .to_string(),
            endpoint,
            region,
            state_machines,
            config,
        }
    }

    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.config)
    }
    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.config)
    }
    pub fn kms(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.config)
    }
    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }

    /// Takes `actions` out of every inline policy of the role (a statement left with no
    /// action goes) and returns the policies as they were, for `restore_policies`.
    pub async fn remove_actions(&self, role_arn: &str, actions: &[&str]) -> Vec<(String, String)> {
        let iam = self.iam();
        let role = role_arn.rsplit('/').next().unwrap();
        let names = iam
            .list_role_policies()
            .role_name(role)
            .send()
            .await
            .expect("ListRolePolicies")
            .policy_names()
            .to_vec();
        let mut before = Vec::new();
        for name in names {
            let doc = iam
                .get_role_policy()
                .role_name(role)
                .policy_name(&name)
                .send()
                .await
                .expect("GetRolePolicy")
                .policy_document()
                .to_string();
            let doc = http::percent_decode(&doc);
            let mut policy: Value = serde_json::from_str(&doc).expect("policy JSON");
            let statements = policy["Statement"].as_array_mut().expect("Statement");
            for st in statements.iter_mut() {
                let kept: Vec<Value> = match &st["Action"] {
                    Value::String(a) => vec![Value::String(a.clone())],
                    Value::Array(a) => a.clone(),
                    _ => vec![],
                }
                .into_iter()
                .filter(|a| {
                    !actions
                        .iter()
                        .any(|x| a.as_str().unwrap_or("").eq_ignore_ascii_case(x))
                })
                .collect();
                st["Action"] = Value::Array(kept);
            }
            statements.retain(|st| st["Action"].as_array().is_some_and(|a| !a.is_empty()));
            iam.put_role_policy()
                .role_name(role)
                .policy_name(&name)
                .policy_document(policy.to_string())
                .send()
                .await
                .expect("PutRolePolicy");
            before.push((name, doc));
        }
        before
    }

    /// Puts back the policies `remove_action` returned.
    pub async fn restore_policies(&self, role_arn: &str, policies: Vec<(String, String)>) {
        let role = role_arn.rsplit('/').next().unwrap();
        for (name, doc) in policies {
            self.iam()
                .put_role_policy()
                .role_name(role)
                .policy_name(name)
                .policy_document(doc)
                .send()
                .await
                .expect("PutRolePolicy (restore)");
        }
    }

    pub fn az(&self, letter: char) -> String {
        format!("{}{letter}", self.region)
    }

    /// A call to the world's control endpoint (`/ferry-world/...`).
    pub fn control(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        http_json(&self.endpoint, method, path, body)
    }

    /// The next `count` calls of `service`/`action` fail with `code`.
    pub fn inject_fault(&self, service: &str, action: &str, count: u32, code: &str, status: u16) {
        self.control(
            "POST",
            "/ferry-world/faults",
            Some(&serde_json::json!({
                "service": service, "action": action, "count": count,
                "code": code, "status": status, "message": format!("{code} (injected by the e2e test)")
            })),
        );
    }

    pub fn clear_faults(&self) {
        self.control("DELETE", "/ferry-world/faults", None);
    }

    pub fn set_config(&self, values: Value) {
        self.control("POST", "/ferry-world/config", Some(&values));
    }

    /// Runs the world's clock at `scale` simulated seconds per real second until the
    /// guard is dropped (then back to the scale it had). For latencies that the real time
    /// of a Lambda invocation would distort at the default 600x.
    pub fn time_scale(&self, scale: f64) -> TimeScale<'_> {
        let before = self.control("GET", "/ferry-world/clock", None)["scale"]
            .as_f64()
            .expect("clock scale");
        self.control(
            "POST",
            "/ferry-world/clock/scale",
            Some(&serde_json::json!({ "scale": scale })),
        );
        TimeScale {
            world: self,
            before,
        }
    }

    /// Recorded AWS calls, optionally of one service/action.
    pub fn calls(&self, service: &str, action: &str) -> Vec<Value> {
        let v = self.control(
            "GET",
            &format!("/ferry-world/calls?service={service}&action={action}"),
            None,
        );
        v.get("calls")
            .unwrap_or(&v)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Starts `machine` with `name` and waits (in real time, at most `FERRY_E2E_TIMEOUT`
    /// seconds, default 300) until it is no longer RUNNING.
    pub async fn run(&self, machine: &str, name: &str, input: &Value) -> Execution {
        let arn = self.start(machine, name, input).await;
        self.wait(&arn).await
    }

    pub async fn start(&self, machine: &str, name: &str, input: &Value) -> String {
        let machine_arn = self
            .state_machines
            .get(machine)
            .unwrap_or_else(|| panic!("state machine {machine} is not deployed in the world"));
        self.sfn()
            .start_execution()
            .state_machine_arn(machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .expect("StartExecution")
            .execution_arn()
            .to_string()
    }

    pub async fn wait(&self, execution_arn: &str) -> Execution {
        let limit = Duration::from_secs(
            std::env::var("FERRY_E2E_TIMEOUT")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(300),
        );
        let started = Instant::now();
        loop {
            let d = self
                .sfn()
                .describe_execution()
                .execution_arn(execution_arn)
                .send()
                .await
                .expect("DescribeExecution");
            if d.status().as_str() != "RUNNING" {
                return Execution {
                    arn: execution_arn.to_string(),
                    status: d.status().as_str().to_string(),
                    output: d.output().and_then(|o| serde_json::from_str(o).ok()),
                    error: d.error().map(str::to_string),
                    cause: d.cause().map(str::to_string),
                    simulated_seconds: match (d.start_date(), d.stop_date()) {
                        (start, Some(stop)) => stop.secs() - start.secs(),
                        _ => 0,
                    },
                };
            }
            assert!(
                started.elapsed() < limit,
                "{execution_arn} still RUNNING after {limit:?} of real time"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The execution's history as (state entered, simulated seconds spent in it).
    pub async fn state_durations(&self, execution_arn: &str) -> Vec<(String, i64)> {
        let events = self.history(execution_arn).await;
        let mut out: Vec<(String, i64)> = Vec::new();
        let mut current: Option<(String, i64)> = None;
        for e in &events {
            if let Some(entered) = e.state_entered_event_details() {
                current = Some((entered.name().to_string(), e.timestamp().secs()));
            }
            if let Some(exited) = e.state_exited_event_details() {
                if let Some((name, t0)) = current.take() {
                    if name == exited.name() {
                        out.push((name, e.timestamp().secs() - t0));
                    }
                }
            }
        }
        out
    }
}

impl World {
    /// Every event of an execution's history, in order.
    pub async fn history(&self, execution_arn: &str) -> Vec<aws_sdk_sfn::types::HistoryEvent> {
        let mut events = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .sfn()
                .get_execution_history()
                .execution_arn(execution_arn)
                .set_next_token(token)
                .max_results(1000)
                .send()
                .await
                .expect("GetExecutionHistory");
            events.extend(page.events().iter().cloned());
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        events
    }

    /// The input the last time the execution entered `state` (JSON), if it did.
    pub async fn state_input(&self, execution_arn: &str, state: &str) -> Option<Value> {
        self.history(execution_arn)
            .await
            .iter()
            .rev()
            .filter_map(|e| e.state_entered_event_details())
            .find(|d| d.name() == state)
            .and_then(|d| d.input())
            .and_then(|i| serde_json::from_str(i).ok())
    }
}

/// A world call record (`/ferry-world/calls`) that changes AWS state: any EC2/KMS/STS/IAM
/// call but reading (Describe*, Get*, List*) or assuming a role. Shared by the bad-input
/// corpus (no such call allowed) and the fault matrix (the call sites it injects at).
pub fn is_mutating_call(call: &Value) -> bool {
    let service = call["service"].as_str().unwrap_or_default();
    let action = call["action"].as_str().unwrap_or_default();
    ["ec2", "kms", "sts", "iam"].contains(&service)
        && !["Describe", "Get", "List", "AssumeRole"]
            .iter()
            .any(|p| action.starts_with(p))
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct Execution {
    pub arn: String,
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// Start to stop, in the world's simulated time.
    pub simulated_seconds: i64,
}

impl Execution {
    pub fn assert_succeeded(&self) -> &Value {
        assert_eq!(
            self.status, "SUCCEEDED",
            "{}: {:?} {:?}",
            self.arn, self.error, self.cause
        );
        self.output.as_ref().expect("output")
    }
    pub fn assert_failed_with(&self, error: &str) {
        assert_eq!(
            self.status, "FAILED",
            "{}: expected {error}, got output {:?}",
            self.arn, self.output
        );
        assert_eq!(
            self.error.as_deref(),
            Some(error),
            "{}: cause {:?}",
            self.arn,
            self.cause
        );
    }
}

pub async fn sdk_config(
    endpoint: &str,
    region: &str,
    key: &str,
    secret: &str,
) -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_string()))
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            key,
            secret,
            None,
            None,
            "ferry-e2e",
        ))
        .load()
        .await
}

/// A realistic source in the hub account, as `make demo` builds it.
#[derive(Debug, Clone)]
pub struct WebServer {
    pub vpc_id: String,
    pub subnet_a: String,
    pub subnet_b: String,
    pub security_group_id: String,
    pub other_vpc_security_group_id: String,
    pub key_arn: String,
    pub instance_profile_arn: String,
    pub key_name: String,
    pub instance_id: String,
    pub allocation_id: String,
    pub public_ip: String,
    pub user_data: String,
}

pub const USER_DATA: &str = "IyEvYmluL2Jhc2gKc3lzdGVtY3RsIHN0YXJ0IG5naW54Cg=="; // #!/bin/bash\nsystemctl start nginx

/// A new VPC with `cidr`; its id.
pub async fn create_vpc(world: &World, cidr: &str) -> String {
    world
        .ec2()
        .create_vpc()
        .cidr_block(cidr)
        .send()
        .await
        .expect("CreateVpc")
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap()
        .to_string()
}

/// A new subnet of `vpc_id` with `cidr` in `az`; its id.
pub async fn create_subnet(world: &World, vpc_id: &str, cidr: &str, az: &str) -> String {
    world
        .ec2()
        .create_subnet()
        .vpc_id(vpc_id)
        .cidr_block(cidr)
        .availability_zone(az)
        .send()
        .await
        .expect("CreateSubnet")
        .subnet()
        .and_then(|s| s.subnet_id())
        .unwrap()
        .to_string()
}

/// Builds a web server: encrypted gp3 root and io2 data volume under a CMK, IMDSv2,
/// instance profile, key pair, detailed monitoring, unlimited credits, termination
/// protection, tags, user data, and an Elastic IP. `label` keeps tests apart.
pub async fn web_server(world: &World, label: &str) -> WebServer {
    let ec2 = world.ec2();
    let vpc_id = create_vpc(world, "10.20.0.0/16").await;
    let subnet_a = create_subnet(world, &vpc_id, "10.20.1.0/24", &world.az('a')).await;
    let subnet_b = create_subnet(world, &vpc_id, "10.20.2.0/24", &world.az('b')).await;
    let group = |name: String, description: &'static str, vpc: String| {
        let ec2 = ec2.clone();
        async move {
            ec2.create_security_group()
                .group_name(name)
                .description(description)
                .vpc_id(vpc)
                .send()
                .await
                .expect("CreateSecurityGroup")
                .group_id()
                .unwrap()
                .to_string()
        }
    };
    let security_group_id = group(format!("web-{label}"), "web servers", vpc_id.clone()).await;
    let other_vpc = create_vpc(world, "10.99.0.0/16").await;
    let other_vpc_security_group_id = group(
        format!("elsewhere-{label}"),
        "another VPC",
        other_vpc.clone(),
    )
    .await;

    let key_arn = create_key(&world.config, &format!("ferry e2e {label} volumes"), None).await;

    let iam = world.iam();
    let role = format!("web-{label}");
    iam.create_role()
        .role_name(&role)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("CreateRole");
    let instance_profile_arn = iam
        .create_instance_profile()
        .instance_profile_name(&role)
        .send()
        .await
        .expect("CreateInstanceProfile")
        .instance_profile()
        .map(|p| p.arn().to_string())
        .unwrap();
    iam.add_role_to_instance_profile()
        .instance_profile_name(&role)
        .role_name(&role)
        .send()
        .await
        .expect("AddRoleToInstanceProfile");

    let key_name = format!("ops-{label}");
    ec2.create_key_pair()
        .key_name(&key_name)
        .send()
        .await
        .expect("CreateKeyPair");

    let volume = |device: &str,
                  kind: ec2t::VolumeType,
                  size: i32,
                  iops: i32,
                  throughput: Option<i32>,
                  delete: bool| {
        ec2t::BlockDeviceMapping::builder()
            .device_name(device)
            .ebs(
                ec2t::EbsBlockDevice::builder()
                    .volume_type(kind)
                    .volume_size(size)
                    .iops(iops)
                    .set_throughput(throughput)
                    .encrypted(true)
                    .kms_key_id(&key_arn)
                    .delete_on_termination(delete)
                    .build(),
            )
            .build()
    };
    let tag = |k: &str, v: &str| ec2t::Tag::builder().key(k).value(v).build();
    let run = ec2
        .run_instances()
        .image_id(EBS_AMI)
        .instance_type(ec2t::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .subnet_id(&subnet_a)
        .security_group_ids(&security_group_id)
        .key_name(&key_name)
        .user_data(USER_DATA)
        .iam_instance_profile(
            ec2t::IamInstanceProfileSpecification::builder()
                .arn(&instance_profile_arn)
                .build(),
        )
        .metadata_options(
            ec2t::InstanceMetadataOptionsRequest::builder()
                .http_tokens(ec2t::HttpTokensState::Required)
                .http_put_response_hop_limit(2)
                .http_endpoint(ec2t::InstanceMetadataEndpointState::Enabled)
                .build(),
        )
        .monitoring(
            ec2t::RunInstancesMonitoringEnabled::builder()
                .enabled(true)
                .build(),
        )
        .ebs_optimized(true)
        .credit_specification(
            ec2t::CreditSpecificationRequest::builder()
                .cpu_credits("unlimited")
                .build(),
        )
        .disable_api_termination(true)
        .block_device_mappings(volume(
            "/dev/xvda",
            ec2t::VolumeType::Gp3,
            16,
            3000,
            Some(250),
            true,
        ))
        .block_device_mappings(volume(
            "/dev/sdf",
            ec2t::VolumeType::Io2,
            40,
            2000,
            None,
            false,
        ))
        .tag_specifications(
            ec2t::TagSpecification::builder()
                .resource_type(ec2t::ResourceType::Instance)
                .tags(tag("Name", &format!("web-{label}")))
                .tags(tag("team", "storefront"))
                .build(),
        )
        .send()
        .await
        .expect("RunInstances");
    let instance_id = run.instances()[0].instance_id().unwrap().to_string();
    wait_for_state(world, &instance_id, "running").await;

    let address = ec2
        .allocate_address()
        .domain(ec2t::DomainType::Vpc)
        .send()
        .await
        .expect("AllocateAddress");
    let allocation_id = address.allocation_id().unwrap().to_string();
    ec2.associate_address()
        .allocation_id(&allocation_id)
        .instance_id(&instance_id)
        .send()
        .await
        .expect("AssociateAddress");
    WebServer {
        vpc_id,
        subnet_a,
        subnet_b,
        security_group_id,
        other_vpc_security_group_id,
        key_arn,
        instance_profile_arn,
        key_name,
        instance_id,
        allocation_id,
        public_ip: address.public_ip().unwrap().to_string(),
        user_data: USER_DATA.to_string(),
    }
}

/// One instance as DescribeInstances shows it. An id RunInstances returned a moment ago
/// may not be found yet (EC2 is eventually consistent; the world's
/// `describeNotFoundAfterCreateSeconds`): that is retried for up to 10 s real.
pub async fn instance(world: &World, instance_id: &str) -> ec2t::Instance {
    let started = std::time::Instant::now();
    loop {
        match world
            .ec2()
            .describe_instances()
            .instance_ids(instance_id)
            .send()
            .await
        {
            Ok(out) => {
                return out
                    .reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .next()
                    .cloned()
                    .unwrap_or_else(|| panic!("{instance_id} not found"))
            }
            Err(e)
                if e.as_service_error().and_then(|s| s.meta().code())
                    == Some("InvalidInstanceID.NotFound")
                    && started.elapsed() < std::time::Duration::from_secs(10) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e) => panic!("DescribeInstances {instance_id}: {e:?}"),
        }
    }
}

pub fn state(i: &ec2t::Instance) -> String {
    i.state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default()
}

pub async fn wait_for_state(world: &World, instance_id: &str, wanted: &str) {
    let started = Instant::now();
    loop {
        if state(&instance(world, instance_id).await) == wanted {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{instance_id} never became {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Instances, images and snapshots carrying `ferry:execution = execution_arn`.
pub async fn ferry_made(
    world: &World,
    execution_arn: &str,
) -> (Vec<ec2t::Instance>, Vec<ec2t::Image>, Vec<ec2t::Snapshot>) {
    let ec2 = world.ec2();
    let f = || {
        ec2t::Filter::builder()
            .name(format!("tag:{}", ferry_core::tags::TAG_EXECUTION))
            .values(execution_arn)
            .build()
    };
    let instances = ec2
        .describe_instances()
        .filters(f())
        .send()
        .await
        .expect("DescribeInstances")
        .reservations()
        .iter()
        .flat_map(|r| r.instances().iter().cloned())
        .collect();
    let images = ec2
        .describe_images()
        .owners("self")
        .filters(f())
        .send()
        .await
        .expect("DescribeImages")
        .images()
        .to_vec();
    let snapshots = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(f())
        .send()
        .await
        .expect("DescribeSnapshots")
        .snapshots()
        .to_vec();
    (instances, images, snapshots)
}

/// A new customer-managed KMS key in the account of `config` (with `policy`, else KMS's
/// default key policy: the account may use it); returns its ARN.
pub async fn create_key(
    config: &aws_config::SdkConfig,
    description: &str,
    policy: Option<&Value>,
) -> String {
    aws_sdk_kms::Client::new(config)
        .create_key()
        .description(description)
        .set_policy(policy.map(Value::to_string))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateKey ({description}): {e:?}"))
        .key_metadata()
        .and_then(|m| m.arn())
        .expect("CreateKey returned no key ARN")
        .to_string()
}

/// Every grant on `key`, as its owner (the hub) lists them.
pub async fn grants(world: &World, key: &str) -> Vec<aws_sdk_kms::types::GrantListEntry> {
    world
        .kms()
        .list_grants()
        .key_id(key)
        .send()
        .await
        .expect("ListGrants")
        .grants()
        .to_vec()
}

pub fn tag_map(tags: &[ec2t::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// A unique execution name per test run (executions are never deleted in the world).
pub fn run_name(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}-{}", nanos % 1_000_000_000_000)
}

/// The e2e tests share one world (faults and settings are global): run them one at a time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Access keys acting as an account (an STS session of its OrganizationAccountAccessRole,
/// as [`World::as_account`] uses): what a pipeline of that account has in
/// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN.
#[derive(Debug, Clone)]
pub struct AccountKeys {
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

impl World {
    /// [`AccountKeys`] of `account`.
    pub async fn account_keys(&self, account: &str) -> AccountKeys {
        let out = aws_sdk_sts::Client::new(&self.config)
            .assume_role()
            .role_arn(format!(
                "arn:aws:iam::{account}:role/{}",
                accounts::ORGANIZATION_ACCESS_ROLE
            ))
            .role_session_name("pipeline")
            .send()
            .await
            .unwrap_or_else(|e| panic!("AssumeRole into {account}: {e:?}"));
        let c = out.credentials().expect("credentials");
        AccountKeys {
            account_id: account.to_string(),
            access_key_id: c.access_key_id().to_string(),
            secret_access_key: c.secret_access_key().to_string(),
            session_token: c.session_token().to_string(),
        }
    }

    /// Deploys template.yaml's invoker role into the hub (the world's
    /// `/ferry-world/stacks`, as a CloudFormation update of the `ferry` stack with these
    /// parameters would) and returns the stack's outputs (`InvokerRoleArn` when it exists).
    pub fn deploy_invoker(&self, parameters: Value) -> Value {
        let deployed = self.control(
            "POST",
            "/ferry-world/stacks",
            Some(&serde_json::json!({
                "template": "template.yaml",
                "account": self.hub_account_id,
                "parameters": parameters,
            })),
        );
        assert!(
            deployed.get("outputs").is_some(),
            "deploying template.yaml's invoker role: {deployed}"
        );
        deployed["outputs"].clone()
    }
}

/// The `ferry` binary (cli/) that `cargo test --workspace --no-run` built.
pub fn ferry_binary() -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target")
        });
    let bin = target.join("debug/ferry");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo test --workspace --no-run` (make bins)",
        bin.display()
    );
    bin
}

/// The world's latest call sequence number: a call of our own (not mutating), then its
/// record. Calls after it have a larger `seq`.
pub async fn call_marker(world: &World) -> u64 {
    aws_sdk_sts::Client::new(&world.config)
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity (marker)");
    world
        .calls("sts", "GetCallerIdentity")
        .iter()
        .filter_map(|c| c["seq"].as_u64())
        .max()
        .expect("the marker call is recorded")
}

/// Every call the world recorded after the marker `from` (and before `to`, if given).
pub fn calls_between(world: &World, from: u64, to: Option<u64>) -> Vec<Value> {
    let calls = world.control("GET", &format!("/ferry-world/calls?since={from}"), None);
    calls["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            c["seq"]
                .as_u64()
                .is_some_and(|s| from < s && to.is_none_or(|t| s < t))
        })
        .collect()
}

/// Runs the `ferry` binary against the world with these credentials (`(key id, secret,
/// session token)`), as a person or pipeline would: the world's endpoint and Region, no
/// profile, no ferry settings from the environment; prints what it did.
pub fn run_ferry(
    world: &World,
    credentials: (&str, &str, Option<&str>),
    args: &[&str],
) -> std::process::Output {
    let mut cmd = std::process::Command::new(ferry_binary());
    cmd.args(args)
        .env("AWS_ENDPOINT_URL", &world.endpoint)
        .env("AWS_REGION", &world.region)
        .env("AWS_ACCESS_KEY_ID", credentials.0)
        .env("AWS_SECRET_ACCESS_KEY", credentials.1)
        .env("FERRY_POLL_SECONDS", "0.1")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("FERRY_STACK")
        .env_remove("FERRY_ASSUME_ROLE_ARN")
        .env_remove("FERRY_EXTERNAL_ID");
    if let Some(token) = credentials.2 {
        cmd.env("AWS_SESSION_TOKEN", token);
    }
    for w in [
        "MIGRATE_INSTANCE",
        "SHARE_IMAGE",
        "REVOKE_SHARE",
        "COPY_IMAGE",
        "DISTRIBUTE_IMAGE",
    ] {
        cmd.env_remove(format!("FERRY_{w}_ARN"));
    }
    let out = cmd.output().expect("run ferry");
    eprintln!(
        "$ ferry {}\n-> {:?}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A fresh account id for this run (the world outlives test runs; accounts are global):
/// `base` keeps the test files apart, `n` the accounts of one test.
pub fn fresh_account_id(base: u64, n: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!("{:012}", base + (nanos / 1000 % 10_000_000) * 10 + n)
}

/// The world for one test at a time ([`SERIAL`]), with no fault armed.
pub async fn serial_world() -> (tokio::sync::MutexGuard<'static, ()>, World) {
    let guard = SERIAL.lock().await;
    let world = World::connect().await;
    world.clear_faults();
    (guard, world)
}

/// One image by id as the account of `config` sees it (panics when it does not).
pub async fn image_as(config: &aws_config::SdkConfig, image_id: &str) -> ec2t::Image {
    aws_sdk_ec2::Client::new(config)
        .describe_images()
        .image_ids(image_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeImages {image_id}: {e:?}"))
        .images()
        .first()
        .unwrap_or_else(|| panic!("{image_id} not found"))
        .clone()
}
