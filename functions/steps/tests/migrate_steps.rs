//! SDK-shape tests of every migrate-instance step with aws-smithy-mocks: the calls each
//! step makes, their parameters, and each AWS error mapped to the right ferry name.
//! A call that no rule expects panics, so "makes no mutating call" is checked by absence.

use aws_sdk_ec2::operation::create_image::{CreateImageError, CreateImageOutput};
use aws_sdk_ec2::operation::delete_snapshot::DeleteSnapshotError;
use aws_sdk_ec2::operation::deregister_image::{DeregisterImageError, DeregisterImageOutput};
use aws_sdk_ec2::operation::describe_images::DescribeImagesError;
use aws_sdk_ec2::operation::describe_instances::{DescribeInstancesError, DescribeInstancesOutput};
use aws_sdk_ec2::operation::run_instances::{RunInstancesError, RunInstancesOutput};
use aws_sdk_ec2::types::*;
use aws_sdk_ec2::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use ferry_core::io::*;
use ferry_core::migrate::io::*;
use ferry_core::migrate::plan::MigrationPlan;
use ferry_core::names::ExecutionContext;
use ferry_core::{ErrorName, FerryError};
use ferry_steps::migrate::*;
use ferry_steps::Clients;
use serde_json::json;

const SOURCE: &str = "i-0a1b2c3d4e5f60718";
const TARGET_SUBNET: &str = "subnet-0bbb2222cccc33334";
const VPC: &str = "vpc-0c0ffee0c0ffee000";
const CMK: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const EXECUTION: &str =
    "arn:aws:states:eu-west-1:111122223333:execution:ferry-migrate-instance:move-web-1";

fn clients(rules: &[&Rule]) -> Clients {
    let ec2: Client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, rules, |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
    // migrate-instance calls EC2 only: KMS and STS answer nothing.
    let none: &[&Rule] = &[];
    let kms: aws_sdk_kms::Client = mock_client!(aws_sdk_kms, RuleMode::MatchAny, none);
    let sts: aws_sdk_sts::Client = mock_client!(aws_sdk_sts, RuleMode::MatchAny, none);
    Clients::from_parts(ec2, kms, sts)
}

fn meta(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message(format!("{code} (mocked)"))
        .build()
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

/// The source as DescribeInstances returns it: t3.large web server with an encrypted
/// gp3 root and an io2 data volume, IMDSv2, instance profile, key pair, an EIP.
fn source_instance(state: InstanceStateName, root: DeviceType) -> Instance {
    Instance::builder()
        .instance_id(SOURCE)
        .image_id("ami-0abcdef1234567890")
        .instance_type(InstanceType::T3Large)
        .state(InstanceState::builder().name(state).code(16).build())
        .placement(
            Placement::builder()
                .availability_zone("eu-west-1a")
                .tenancy(Tenancy::Default)
                .group_name("")
                .build(),
        )
        .subnet_id("subnet-0aaa1111bbbb22223")
        .vpc_id(VPC)
        .private_ip_address("10.0.1.23")
        .public_ip_address("34.250.10.20")
        .root_device_type(root)
        .root_device_name("/dev/xvda")
        .key_name("ops-2026")
        .ebs_optimized(true)
        .iam_instance_profile(
            IamInstanceProfile::builder()
                .arn("arn:aws:iam::111122223333:instance-profile/web")
                .id("AIPAEXAMPLE")
                .build(),
        )
        .security_groups(
            GroupIdentifier::builder()
                .group_id("sg-0123456789abcdef0")
                .group_name("web")
                .build(),
        )
        .tags(tag("Name", "web-1"))
        .tags(tag("aws:cloudformation:stack-name", "web"))
        .block_device_mappings(
            InstanceBlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    EbsInstanceBlockDevice::builder()
                        .volume_id("vol-0123456789abcdef0")
                        .delete_on_termination(true)
                        .status(AttachmentStatus::Attached)
                        .build(),
                )
                .build(),
        )
        .block_device_mappings(
            InstanceBlockDeviceMapping::builder()
                .device_name("/dev/sdf")
                .ebs(
                    EbsInstanceBlockDevice::builder()
                        .volume_id("vol-0fedcba9876543210")
                        .delete_on_termination(false)
                        .build(),
                )
                .build(),
        )
        .metadata_options(
            InstanceMetadataOptionsResponse::builder()
                .http_tokens(HttpTokensState::Required)
                .http_put_response_hop_limit(2)
                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                .instance_metadata_tags(InstanceMetadataTagsState::Enabled)
                .build(),
        )
        .monitoring(
            Monitoring::builder()
                .state(MonitoringState::Enabled)
                .build(),
        )
        // SMT off: not t3.large's default, so preflight reads the type and carries it.
        .cpu_options(
            CpuOptions::builder()
                .core_count(1)
                .threads_per_core(1)
                .build(),
        )
        .network_interfaces(
            InstanceNetworkInterface::builder()
                .network_interface_id("eni-0123456789abcdef0")
                .private_ip_addresses(
                    InstancePrivateIpAddress::builder()
                        .private_ip_address("10.0.1.23")
                        .primary(true)
                        .build(),
                )
                .build(),
        )
        .build()
}

fn reservation(instance: Instance) -> DescribeInstancesOutput {
    DescribeInstancesOutput::builder()
        .reservations(Reservation::builder().instances(instance).build())
        .build()
}

/// The filters of Preflight's look for another migration of the source in flight.
fn in_flight_filters(filters: &[Filter]) -> bool {
    let has = |name: &str, value: &str| {
        filters
            .iter()
            .any(|f| f.name() == Some(name) && f.values() == [value])
    };
    has("tag:ferry:source-instance", SOURCE) && has("tag:ferry:in-flight", "true")
}

/// Every read preflight makes about the running source, and the subnet `target_az`.
fn preflight_reads(
    source: Instance,
    target_az: &'static str,
    offered: &'static [&'static str],
) -> Vec<Rule> {
    let attr = |name: InstanceAttributeName| {
        mock!(Client::describe_instance_attribute)
            .match_requests(move |r| r.attribute() == Some(&name))
    };
    vec![
        mock!(Client::describe_instances)
            .match_requests(|r| r.instance_ids() == [SOURCE])
            .then_output(move || reservation(source.clone())),
        mock!(Client::describe_volumes).then_output(|| {
            aws_sdk_ec2::operation::describe_volumes::DescribeVolumesOutput::builder()
                .volumes(
                    Volume::builder()
                        .volume_id("vol-0123456789abcdef0")
                        .volume_type(VolumeType::Gp3)
                        .size(30)
                        .iops(4000)
                        .throughput(250)
                        .encrypted(true)
                        .kms_key_id(CMK)
                        .tags(tag("Name", "web-1-root"))
                        .build(),
                )
                .volumes(
                    Volume::builder()
                        .volume_id("vol-0fedcba9876543210")
                        .volume_type(VolumeType::Io2)
                        .size(200)
                        .iops(10000)
                        .encrypted(true)
                        .kms_key_id(CMK)
                        .build(),
                )
                .build()
        }),
        attr(InstanceAttributeName::UserData).then_output(|| {
            aws_sdk_ec2::operation::describe_instance_attribute::DescribeInstanceAttributeOutput::builder()
                .user_data(AttributeValue::builder().value("IyEvYmluL2Jhc2gKZWNobyBoZWxsbwo=").build())
                .build()
        }),
        attr(InstanceAttributeName::DisableApiTermination).then_output(|| {
            aws_sdk_ec2::operation::describe_instance_attribute::DescribeInstanceAttributeOutput::builder()
                .disable_api_termination(AttributeBooleanValue::builder().value(true).build())
                .build()
        }),
        attr(InstanceAttributeName::DisableApiStop).then_output(|| {
            aws_sdk_ec2::operation::describe_instance_attribute::DescribeInstanceAttributeOutput::builder()
                .disable_api_stop(AttributeBooleanValue::builder().value(false).build())
                .build()
        }),
        mock!(Client::describe_instance_credit_specifications).then_output(|| {
            aws_sdk_ec2::operation::describe_instance_credit_specifications::DescribeInstanceCreditSpecificationsOutput::builder()
                .instance_credit_specifications(
                    InstanceCreditSpecification::builder().instance_id(SOURCE).cpu_credits("unlimited").build(),
                )
                .build()
        }),
        mock!(Client::describe_addresses)
            .match_requests(|r| {
                r.filters().iter().any(|f| f.name() == Some("instance-id") && f.values() == [SOURCE])
            })
            .then_output(|| {
                aws_sdk_ec2::operation::describe_addresses::DescribeAddressesOutput::builder()
                    .addresses(
                        Address::builder()
                            .allocation_id("eipalloc-0123456789abcdef0")
                            .public_ip("34.250.10.20")
                            .private_ip_address("10.0.1.23")
                            .instance_id(SOURCE)
                            .domain(DomainType::Vpc)
                            .build(),
                    )
                    .build()
            }),
        mock!(Client::describe_subnets)
            .match_requests(|r| r.subnet_ids() == [TARGET_SUBNET])
            .then_output(move || {
                aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput::builder()
                    .subnets(
                        Subnet::builder()
                            .subnet_id(TARGET_SUBNET)
                            .availability_zone(target_az)
                            .vpc_id(VPC)
                            .build(),
                    )
                    .build()
            }),
        mock!(Client::describe_instance_types)
            .match_requests(|r| r.instance_types() == [InstanceType::T3Large])
            .then_output(|| {
                aws_sdk_ec2::operation::describe_instance_types::DescribeInstanceTypesOutput::builder()
                    .instance_types(
                        InstanceTypeInfo::builder()
                            .instance_type(InstanceType::T3Large)
                            .bare_metal(false)
                            .v_cpu_info(
                                VCpuInfo::builder()
                                    .default_cores(1)
                                    .default_threads_per_core(2)
                                    .valid_cores(1)
                                    .valid_threads_per_core(1)
                                    .valid_threads_per_core(2)
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            }),
        mock!(Client::describe_instance_type_offerings)
            .match_requests(move |r| {
                r.location_type() == Some(&LocationType::AvailabilityZone)
                    && r.filters().iter().any(|f| f.name() == Some("location") && f.values() == [target_az])
            })
            .then_output(move || {
                let mut out = aws_sdk_ec2::operation::describe_instance_type_offerings::DescribeInstanceTypeOfferingsOutput::builder();
                for t in offered {
                    out = out.instance_type_offerings(
                        InstanceTypeOffering::builder()
                            .instance_type(InstanceType::from(*t))
                            .location_type(LocationType::AvailabilityZone)
                            .location(target_az)
                            .build(),
                    );
                }
                out.build()
            }),
        // (last: tests replace rules by index) no other migration of the source in flight
        mock!(Client::describe_instances)
            .match_requests(|r| r.instance_ids().is_empty() && in_flight_filters(r.filters()))
            .then_output(|| aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput::builder().build()),
        mock!(Client::describe_images)
            .match_requests(|r| r.owners() == ["self"] && in_flight_filters(r.filters()))
            .then_output(|| images_output(vec![])),
    ]
}

fn context() -> ExecutionContext {
    ExecutionContext {
        execution_arn: EXECUTION.into(),
        execution_name: "move-web-1".into(),
        state_machine_arn: None,
        start_time: None,
    }
}

fn preflight_input(request: serde_json::Value) -> PreflightInput {
    PreflightInput {
        request,
        context: context(),
    }
}

fn basic_request() -> serde_json::Value {
    json!({"sourceInstanceId": SOURCE, "targetSubnetId": TARGET_SUBNET})
}

async fn run_preflight(
    rules: &[Rule],
    request: serde_json::Value,
) -> Result<MigrationPlan, FerryError> {
    let refs: Vec<&Rule> = rules.iter().collect();
    preflight::handle(clients(&refs), preflight_input(request))
        .await
        .map(|o| o.plan)
}

async fn good_plan(request: serde_json::Value) -> MigrationPlan {
    let rules = preflight_reads(
        source_instance(InstanceStateName::Running, DeviceType::Ebs),
        "eu-west-1b",
        &["t3.large"],
    );
    run_preflight(&rules, request).await.unwrap()
}

#[tokio::test]
async fn preflight_captures_the_launch_spec_from_describe_calls() {
    let plan = good_plan(basic_request()).await;
    let l = &plan.launch;
    assert_eq!(plan.source.availability_zone, "eu-west-1a");
    assert_eq!(plan.target.availability_zone, "eu-west-1b");
    assert_eq!(l.instance_type, "t3.large");
    assert_eq!(l.security_group_ids, ["sg-0123456789abcdef0"]);
    assert_eq!(
        l.iam_instance_profile_arn.as_deref(),
        Some("arn:aws:iam::111122223333:instance-profile/web")
    );
    assert_eq!(l.key_name.as_deref(), Some("ops-2026"));
    assert_eq!(
        l.user_data.as_deref(),
        Some("IyEvYmluL2Jhc2gKZWNobyBoZWxsbwo=")
    );
    assert!(
        l.disable_api_termination && !l.disable_api_stop && l.ebs_optimized && l.monitoring_enabled
    );
    assert_eq!(l.cpu_credits.as_deref(), Some("unlimited"));
    // Rule 22: t3.large takes CPU options and SMT off is not its default: carried.
    assert_eq!(
        l.cpu_options,
        Some(ferry_core::migrate::source::CpuOptions {
            core_count: Some(1),
            threads_per_core: Some(1)
        })
    );
    assert_eq!(
        l.metadata_options.as_ref().unwrap().http_tokens.as_deref(),
        Some("required")
    );
    assert_eq!(l.volumes.len(), 2);
    assert_eq!(
        (
            l.volumes[0].volume_type.as_str(),
            l.volumes[0].size_gib,
            l.volumes[0].iops,
            l.volumes[0].throughput
        ),
        ("gp3", 30, Some(4000), Some(250))
    );
    assert_eq!(l.volumes[0].kms_key_id.as_deref(), Some(CMK));
    assert_eq!(
        (
            l.volumes[1].volume_type.as_str(),
            l.volumes[1].delete_on_termination
        ),
        ("io2", false)
    );
    assert_eq!(l.instance_tags["Name"], "web-1");
    assert!(!l
        .instance_tags
        .contains_key("aws:cloudformation:stack-name"));
    assert_eq!(
        plan.source.elastic_ips[0].allocation_id,
        "eipalloc-0123456789abcdef0"
    );
    assert!(!l.associate_public_ip);
}

#[tokio::test]
async fn preflight_refuses_bad_input_before_any_call() {
    for request in [
        json!({"sourceInstanceId": SOURCE, "targetSubnetId": TARGET_SUBNET, "sourceAz": "eu-west-1a"}),
        json!({"sourceInstanceId": "i-123", "targetSubnetId": TARGET_SUBNET}),
        json!({"sourceInstanceId": SOURCE, "targetSubnetId": "sg-0123456789abcdef0"}),
        json!({"sourceInstanceId": SOURCE, "targetSubnetId": TARGET_SUBNET, "keepImage": "no"}),
        json!("i-0a1b2c3d4e5f60718"),
    ] {
        // No rules at all: any AWS call would panic.
        let e = run_preflight(&[], request.clone()).await.unwrap_err();
        assert_eq!(e.name, ErrorName::InvalidInput, "{request}: {e}");
    }
}

#[tokio::test]
async fn preflight_refuses_an_unknown_instance() {
    let rules = vec![mock!(Client::describe_instances)
        .then_error(|| DescribeInstancesError::generic(meta("InvalidInstanceID.NotFound")))];
    let e = run_preflight(&rules, basic_request()).await.unwrap_err();
    assert_eq!(e.name, ErrorName::InstanceNotFound);
    assert!(e.message.contains(SOURCE));
}

#[tokio::test]
async fn preflight_refuses_an_instance_store_root() {
    let rules = vec![mock!(Client::describe_instances).then_output(|| {
        reservation(source_instance(
            InstanceStateName::Running,
            DeviceType::InstanceStore,
        ))
    })];
    let e = run_preflight(&rules, basic_request()).await.unwrap_err();
    assert_eq!(e.name, ErrorName::UnsupportedRootDevice);
}

#[tokio::test]
async fn preflight_refuses_a_target_in_the_same_az() {
    let rules = preflight_reads(
        source_instance(InstanceStateName::Running, DeviceType::Ebs),
        "eu-west-1a",
        &["t3.large"],
    );
    assert_eq!(
        run_preflight(&rules, basic_request())
            .await
            .unwrap_err()
            .name,
        ErrorName::SameAvailabilityZone
    );
}

#[tokio::test]
async fn preflight_refuses_a_type_not_offered_in_the_target_az() {
    let rules = preflight_reads(
        source_instance(InstanceStateName::Running, DeviceType::Ebs),
        "eu-west-1b",
        &[],
    );
    let e = run_preflight(&rules, basic_request()).await.unwrap_err();
    assert_eq!(e.name, ErrorName::InstanceTypeNotOffered);
    assert!(e.message.contains("t3.large") && e.message.contains("eu-west-1b"));
}

#[tokio::test]
async fn preflight_refuses_security_groups_of_another_vpc() {
    let mut rules = preflight_reads(
        source_instance(InstanceStateName::Running, DeviceType::Ebs),
        "eu-west-1b",
        &["t3.large"],
    );
    rules.push(mock!(Client::describe_security_groups).then_output(|| {
        aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput::builder()
            .security_groups(
                SecurityGroup::builder()
                    .group_id("sg-0999999999999999a")
                    .vpc_id("vpc-0other000000000000")
                    .build(),
            )
            .build()
    }));
    let mut request = basic_request();
    request["securityGroupIds"] = json!(["sg-0999999999999999a"]);
    let e = run_preflight(&rules, request).await.unwrap_err();
    assert_eq!(e.name, ErrorName::SecurityGroupVpcMismatch);
    assert!(e.message.contains("sg-0999999999999999a"));
}

#[tokio::test]
async fn preflight_refuses_terminate_of_a_protected_source() {
    let rules = preflight_reads(
        source_instance(InstanceStateName::Running, DeviceType::Ebs),
        "eu-west-1b",
        &["t3.large"],
    );
    let mut request = basic_request();
    request["sourceAction"] = json!("terminate");
    assert_eq!(
        run_preflight(&rules, request).await.unwrap_err().name,
        ErrorName::SourceProtected
    );
}

#[tokio::test]
async fn preflight_maps_throttling_to_a_retryable_name() {
    let rules = vec![mock!(Client::describe_instances)
        .then_error(|| DescribeInstancesError::generic(meta("RequestLimitExceeded")))];
    let e = run_preflight(&rules, basic_request()).await.unwrap_err();
    assert_eq!(e.name, ErrorName::Throttled);
    assert!(e.name.is_retryable());
}

fn no_images() -> Rule {
    mock!(Client::describe_images).then_output(|| {
        aws_sdk_ec2::operation::describe_images::DescribeImagesOutput::builder().build()
    })
}

#[tokio::test]
async fn create_image_names_and_tags_image_and_snapshots() {
    let plan = good_plan(basic_request()).await;
    let name = plan.image.name.clone();
    let create = mock!(Client::create_image)
        .match_requests(move |r| {
            let specs = r.tag_specifications();
            let tagged = |rt: ResourceType| {
                specs.iter().any(|s| {
                    s.resource_type() == Some(&rt)
                        && s.tags().iter().any(|t| {
                            t.key() == Some("ferry:execution") && t.value() == Some(EXECUTION)
                        })
                        && s.tags().iter().any(|t| {
                            t.key() == Some("ferry:source-instance") && t.value() == Some(SOURCE)
                        })
                })
            };
            r.instance_id() == Some(SOURCE)
                && r.name() == Some(name.as_str())
                && r.no_reboot() == Some(false)
                && tagged(ResourceType::Image)
                && tagged(ResourceType::Snapshot)
        })
        .then_output(|| {
            CreateImageOutput::builder()
                .image_id("ami-0feedfacefeedface")
                .build()
        });
    let lookup = no_images();
    let image = create_image::handle(clients(&[&lookup, &create]), PlanInput { plan })
        .await
        .unwrap();
    assert_eq!(
        (image.image_id.as_str(), image.state.as_str()),
        ("ami-0feedfacefeedface", "pending")
    );
    assert_eq!(create.num_calls(), 1);
}

fn own_image(plan: &MigrationPlan, state: ImageState) -> Image {
    Image::builder()
        .image_id("ami-0feedfacefeedface")
        .name(&plan.image.name)
        .state(state)
        .tags(tag("ferry:execution", EXECUTION))
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    EbsBlockDevice::builder()
                        .snapshot_id("snap-0000000000000000a")
                        .build(),
                )
                .build(),
        )
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/sdf")
                .ebs(
                    EbsBlockDevice::builder()
                        .snapshot_id("snap-0000000000000000b")
                        .build(),
                )
                .build(),
        )
        .build()
}

fn images_output(
    images: Vec<Image>,
) -> aws_sdk_ec2::operation::describe_images::DescribeImagesOutput {
    aws_sdk_ec2::operation::describe_images::DescribeImagesOutput::builder()
        .set_images(Some(images))
        .build()
}

#[tokio::test]
async fn create_image_retried_finds_its_image_and_creates_none() {
    let plan = good_plan(basic_request()).await;
    let image = own_image(&plan, ImageState::Pending);
    let lookup =
        mock!(Client::describe_images).then_output(move || images_output(vec![image.clone()]));
    // No CreateImage rule: a second image would panic the test.
    let got = create_image::handle(clients(&[&lookup]), PlanInput { plan })
        .await
        .unwrap();
    assert_eq!(got.image_id, "ami-0feedfacefeedface");
}

#[tokio::test]
async fn create_image_refuses_to_adopt_a_foreign_image_of_the_same_name() {
    let plan = good_plan(basic_request()).await;
    let mut image = own_image(&plan, ImageState::Available);
    image.tags = Some(vec![tag("ferry:execution", "arn:someone-else")]);
    let lookup =
        mock!(Client::describe_images).then_output(move || images_output(vec![image.clone()]));
    let e = create_image::handle(clients(&[&lookup]), PlanInput { plan })
        .await
        .unwrap_err();
    assert_eq!(e.name, ErrorName::UnsupportedConfiguration);
}

#[tokio::test]
async fn create_image_stops_the_source_first_when_asked() {
    let mut request = basic_request();
    request["stopSource"] = json!(true);
    let plan = good_plan(request).await;
    let lookup = no_images();
    let running = mock!(Client::describe_instances)
        .then_output(|| reservation(source_instance(InstanceStateName::Running, DeviceType::Ebs)));
    let stop = mock!(Client::stop_instances)
        .match_requests(|r| r.instance_ids() == [SOURCE])
        .then_output(|| {
            aws_sdk_ec2::operation::stop_instances::StopInstancesOutput::builder().build()
        });
    let e = create_image::handle(
        clients(&[&lookup, &running, &stop]),
        PlanInput { plan: plan.clone() },
    )
    .await
    .unwrap_err();
    assert_eq!(e.name, ErrorName::ImageNotReady);
    assert_eq!(stop.num_calls(), 1);

    // Once stopped: CreateImage, and no reboot is needed.
    let lookup = no_images();
    let stopped = mock!(Client::describe_instances)
        .then_output(|| reservation(source_instance(InstanceStateName::Stopped, DeviceType::Ebs)));
    let create = mock!(Client::create_image)
        .match_requests(|r| r.no_reboot() == Some(true))
        .then_output(|| {
            CreateImageOutput::builder()
                .image_id("ami-0feedfacefeedface")
                .build()
        });
    create_image::handle(clients(&[&lookup, &stopped, &create]), PlanInput { plan })
        .await
        .unwrap();
    assert_eq!(create.num_calls(), 1);
}

#[tokio::test]
async fn create_image_duplicate_name_race_uses_the_existing_image() {
    let plan = good_plan(basic_request()).await;
    let image = own_image(&plan, ImageState::Pending);
    let lookups = mock!(Client::describe_images)
        .sequence()
        .output(|| images_output(vec![]))
        .output(move || images_output(vec![image.clone()]))
        .build();
    let create = mock!(Client::create_image)
        .then_error(|| CreateImageError::generic(meta("InvalidAMIName.Duplicate")));
    let got = create_image::handle(clients(&[&lookups, &create]), PlanInput { plan })
        .await
        .unwrap();
    assert_eq!(got.image_id, "ami-0feedfacefeedface");
}

fn image_ref(state: &str) -> ImageRef {
    ImageRef {
        image_id: "ami-0feedfacefeedface".into(),
        name: "n".into(),
        state: state.into(),
        snapshot_ids: vec![],
        created_at: None,
    }
}

#[tokio::test]
async fn wait_image_polls_once_per_attempt() {
    let plan = good_plan(basic_request()).await;
    for (state, reason, expect) in [
        (ImageState::Pending, None, Err(ErrorName::ImageNotReady)),
        (
            ImageState::Failed,
            Some("Client.InternalError: snapshot failed"),
            Err(ErrorName::ImageFailed),
        ),
        (ImageState::Available, None, Ok(2usize)),
    ] {
        let mut image = own_image(&plan, state);
        if let Some(r) = reason {
            image.state_reason = Some(
                StateReason::builder()
                    .code("Client.InternalError")
                    .message(r)
                    .build(),
            );
        }
        let describe = mock!(Client::describe_images)
            .match_requests(|r| r.image_ids() == ["ami-0feedfacefeedface"])
            .then_output(move || images_output(vec![image.clone()]));
        let got = wait_image::handle(
            clients(&[&describe]),
            ImageInput {
                plan: plan.clone(),
                image: image_ref("pending"),
                task_token: None,
            },
        )
        .await;
        assert_eq!(describe.num_calls(), 1);
        match (got, expect) {
            (Ok(image), Ok(snapshots)) => assert_eq!(image.snapshot_ids.len(), snapshots),
            (Err(e), Err(name)) => {
                assert_eq!(e.name, name);
                if let Some(r) = reason {
                    assert!(e.message.contains(r), "{e}");
                }
            }
            (got, expect) => panic!("{got:?} vs {expect:?}"),
        }
    }
}

/// Rule 19: an image CreateImage just returned that DescribeImages does not find yet is
/// "not ready" for a bounded time after the create call, then gone.
#[tokio::test]
async fn wait_image_takes_not_found_right_after_create_as_not_ready() {
    let plan = good_plan(basic_request()).await;
    let now = ferry_core::rules::polls::epoch_seconds();
    for (created_at, expect) in [
        (Some(now), ErrorName::ImageNotReady),
        (
            Some(now - ferry_core::rules::polls::NOT_VISIBLE_GRACE_SECONDS - 1),
            ErrorName::ImageFailed,
        ),
        (None, ErrorName::ImageFailed),
    ] {
        let describe = mock!(Client::describe_images)
            .then_error(|| DescribeImagesError::generic(meta("InvalidAMIID.NotFound")));
        let mut image = image_ref("pending");
        image.created_at = created_at;
        let e = wait_image::handle(
            clients(&[&describe]),
            ImageInput {
                plan: plan.clone(),
                image,
                task_token: None,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.name, expect, "{e}");
    }
}

#[tokio::test]
async fn launch_instance_sends_the_whole_spec_with_a_client_token() {
    let plan = good_plan(json!({"sourceInstanceId": SOURCE, "targetSubnetId": TARGET_SUBNET, "tags": {"change": "CHG-42"}})).await;
    let token = plan.launch.client_token.clone();
    let run = mock!(Client::run_instances)
        .match_requests(move |r| {
            let bdm = r.block_device_mappings();
            let root = bdm
                .iter()
                .find(|m| m.device_name() == Some("/dev/xvda"))
                .and_then(|m| m.ebs());
            let data = bdm
                .iter()
                .find(|m| m.device_name() == Some("/dev/sdf"))
                .and_then(|m| m.ebs());
            let instance_tags = r
                .tag_specifications()
                .iter()
                .find(|s| s.resource_type() == Some(&ResourceType::Instance))
                .map(|s| s.tags().to_vec())
                .unwrap_or_default();
            let has = |k: &str, v: &str| {
                instance_tags
                    .iter()
                    .any(|t| t.key() == Some(k) && t.value() == Some(v))
            };
            r.client_token() == Some(token.as_str())
                && r.image_id() == Some("ami-0feedfacefeedface")
                && r.subnet_id() == Some(TARGET_SUBNET)
                && r.security_group_ids() == ["sg-0123456789abcdef0"]
                && r.instance_type() == Some(&InstanceType::T3Large)
                && r.min_count() == Some(1)
                && r.max_count() == Some(1)
                && r.key_name() == Some("ops-2026")
                && r.iam_instance_profile().and_then(|p| p.arn())
                    == Some("arn:aws:iam::111122223333:instance-profile/web")
                && r.metadata_options().and_then(|m| m.http_tokens())
                    == Some(&HttpTokensState::Required)
                && r.monitoring().and_then(|m| m.enabled()) == Some(true)
                && r.ebs_optimized() == Some(true)
                && r.user_data() == Some("IyEvYmluL2Jhc2gKZWNobyBoZWxsbwo=")
                && r.credit_specification().and_then(|c| c.cpu_credits()) == Some("unlimited")
                && r.disable_api_termination().is_none()
                && root.is_some_and(|e| {
                    e.volume_type() == Some(&VolumeType::Gp3)
                        && e.volume_size() == Some(30)
                        && e.iops() == Some(4000)
                        && e.throughput() == Some(250)
                        && e.encrypted() == Some(true)
                        && e.kms_key_id() == Some(CMK)
                        && e.delete_on_termination() == Some(true)
                })
                && data.is_some_and(|e| {
                    e.volume_type() == Some(&VolumeType::Io2)
                        && e.iops() == Some(10000)
                        && e.delete_on_termination() == Some(false)
                })
                && has("Name", "web-1")
                && has("change", "CHG-42")
                && has("ferry:workflow", "migrate-instance")
        })
        .then_output(|| {
            RunInstancesOutput::builder()
                .instances(
                    Instance::builder()
                        .instance_id("i-0new0000000000001")
                        .state(
                            InstanceState::builder()
                                .name(InstanceStateName::Pending)
                                .build(),
                        )
                        .subnet_id(TARGET_SUBNET)
                        .build(),
                )
                .build()
        });
    let out = launch_instance::handle(
        clients(&[&run]),
        ImageInput {
            plan,
            image: image_ref("available"),
            task_token: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(out.instance_id, "i-0new0000000000001");
    assert_eq!(run.num_calls(), 1);
}

#[tokio::test]
async fn launch_instance_maps_capacity_throttling_and_state_errors() {
    let plan = good_plan(basic_request()).await;
    for (code, name) in [
        (
            "InsufficientInstanceCapacity",
            ErrorName::InsufficientCapacity,
        ),
        ("RequestLimitExceeded", ErrorName::Throttled),
        ("InternalError", ErrorName::Transient),
        ("IncorrectState", ErrorName::AwsError),
        ("InvalidParameterCombination", ErrorName::AwsError),
    ] {
        let run =
            mock!(Client::run_instances).then_error(move || RunInstancesError::generic(meta(code)));
        let e = launch_instance::handle(
            clients(&[&run]),
            ImageInput {
                plan: plan.clone(),
                image: image_ref("available"),
                task_token: None,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.name, name, "{code}");
        assert!(e.message.contains(code));
    }
}

fn new_instance(state: InstanceStateName, az: &str) -> Instance {
    Instance::builder()
        .instance_id("i-0new0000000000001")
        .state(InstanceState::builder().name(state).build())
        .state_reason(
            StateReason::builder()
                .code("Client.InternalError")
                .message("Client.InternalError: Client error on launch")
                .build(),
        )
        .placement(Placement::builder().availability_zone(az).build())
        .subnet_id(TARGET_SUBNET)
        .private_ip_address("10.0.2.57")
        .tags(tag("ferry:execution", EXECUTION))
        .block_device_mappings(
            InstanceBlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    EbsInstanceBlockDevice::builder()
                        .volume_id("vol-0new000000000000a")
                        .build(),
                )
                .build(),
        )
        .block_device_mappings(
            InstanceBlockDeviceMapping::builder()
                .device_name("/dev/sdf")
                .ebs(
                    EbsInstanceBlockDevice::builder()
                        .volume_id("vol-0new000000000000b")
                        .build(),
                )
                .build(),
        )
        .build()
}

/// DescribeInstanceStatus (IncludeAllInstances) of the new instance: its state and checks.
fn status(
    state: InstanceStateName,
    instance: &str,
    system: &str,
) -> aws_sdk_ec2::operation::describe_instance_status::DescribeInstanceStatusOutput {
    aws_sdk_ec2::operation::describe_instance_status::DescribeInstanceStatusOutput::builder()
        .instance_statuses(
            InstanceStatus::builder()
                .instance_id("i-0new0000000000001")
                .instance_state(InstanceState::builder().name(state).build())
                .instance_status(
                    InstanceStatusSummary::builder()
                        .status(SummaryStatus::from(instance))
                        .build(),
                )
                .system_status(
                    InstanceStatusSummary::builder()
                        .status(SummaryStatus::from(system))
                        .build(),
                )
                .build(),
        )
        .build()
}

async fn verify_input(created_at: Option<u64>) -> InstanceInput {
    InstanceInput {
        plan: good_plan(basic_request()).await,
        instance: InstanceRef {
            instance_id: "i-0new0000000000001".into(),
            created_at,
            ..Default::default()
        },
    }
}

/// VerifyInstance against these answers: (its result, DescribeInstanceStatus calls,
/// DescribeInstances calls). `described`: what DescribeInstances says (else running in
/// eu-west-1b, the planned zone).
async fn verify_with(
    state: InstanceStateName,
    checks: (&'static str, &'static str),
    described: Option<(InstanceStateName, &'static str)>,
) -> (Result<InstanceRef, FerryError>, usize, usize) {
    let input = verify_input(None).await;
    let status_rule = mock!(Client::describe_instance_status)
        .match_requests(|r| {
            r.include_all_instances() == Some(true) && r.instance_ids() == ["i-0new0000000000001"]
        })
        .then_output(move || status(state.clone(), checks.0, checks.1));
    let (later, az) = described.unwrap_or((InstanceStateName::Running, "eu-west-1b"));
    let instance_rule = mock!(Client::describe_instances)
        .then_output(move || reservation(new_instance(later.clone(), az)));
    let got = verify_instance::handle(clients(&[&status_rule, &instance_rule]), input).await;
    (got, status_rule.num_calls(), instance_rule.num_calls())
}

#[tokio::test]
async fn verify_instance_polls_its_status_and_describes_it_once_ready() {
    use InstanceStateName as S;
    // Not ready: one DescribeInstanceStatus per poll, nothing else.
    for (state, checks) in [
        (S::Pending, ("not-applicable", "not-applicable")),
        (S::Running, ("initializing", "ok")),
        (S::Running, ("ok", "initializing")),
    ] {
        let (got, statuses, described) = verify_with(state.clone(), checks, None).await;
        assert_eq!(
            got.unwrap_err().name,
            ErrorName::InstanceNotReady,
            "{state:?} {checks:?}"
        );
        assert_eq!((statuses, described), (1, 0), "{state:?} {checks:?}");
    }

    // Ready: described once, for where it runs.
    let (got, statuses, described) = verify_with(S::Running, ("ok", "ok"), None).await;
    let got = got.unwrap();
    assert_eq!((statuses, described), (1, 1));
    assert_eq!(got.availability_zone.as_deref(), Some("eu-west-1b"));
    assert_eq!(got.subnet_id.as_deref(), Some(TARGET_SUBNET));
    assert_eq!(got.private_ip.as_deref(), Some("10.0.2.57"));

    // Impaired: failed, without describing.
    let (got, statuses, described) = verify_with(S::Running, ("ok", "impaired"), None).await;
    let e = got.unwrap_err();
    assert_eq!(e.name, ErrorName::InstanceFailed);
    assert!(e.message.contains("system status check impaired"), "{e}");
    assert_eq!((statuses, described), (1, 0));

    // Terminated: failed, with the state reason DescribeInstances gives.
    let (got, _, described) = verify_with(
        S::Terminated,
        ("not-applicable", "not-applicable"),
        Some((S::Terminated, "eu-west-1b")),
    )
    .await;
    let e = got.unwrap_err();
    assert_eq!(e.name, ErrorName::InstanceFailed);
    assert!(e.message.contains("Client error on launch"), "{e}");
    assert_eq!(described, 1);

    // Running in another zone than planned: failed.
    let (got, _, _) = verify_with(S::Running, ("ok", "ok"), Some((S::Running, "eu-west-1c"))).await;
    assert_eq!(got.unwrap_err().name, ErrorName::InstanceFailed);
}

#[tokio::test]
async fn verify_instance_of_an_id_not_yet_visible_is_not_ready() {
    use aws_sdk_ec2::operation::describe_instance_status::DescribeInstanceStatusError;
    let young = mock!(Client::describe_instance_status)
        .then_error(|| DescribeInstanceStatusError::generic(meta("InvalidInstanceID.NotFound")));
    let input = verify_input(Some(ferry_core::rules::polls::epoch_seconds())).await;
    let e = verify_instance::handle(clients(&[&young]), input)
        .await
        .unwrap_err();
    assert_eq!(e.name, ErrorName::InstanceNotReady, "{e}");
}

/// An empty successful answer of an EC2 operation.
/// DescribeInstances of the new instance: running in eu-west-1b.
fn new_instance_described() -> Rule {
    mock!(Client::describe_instances)
        .match_requests(|r| r.instance_ids() == ["i-0new0000000000001"])
        .sequence()
        .output(|| reservation(new_instance(InstanceStateName::Running, "eu-west-1b")))
        .repeatedly()
        .build()
}

/// DeleteTags of ferry:in-flight (and nothing else) on exactly these resources.
fn end_in_flight(resources: &'static [&'static str]) -> Rule {
    mock!(Client::delete_tags)
        .match_requests(move |r| {
            r.resources() == resources
                && r.tags().len() == 1
                && r.tags()[0].key() == Some("ferry:in-flight")
                && r.tags()[0].value().is_none()
        })
        .then_output(|| aws_sdk_ec2::operation::delete_tags::DeleteTagsOutput::builder().build())
}

/// Finalize with these mocks; its result must be a success.
async fn finalize_with(rules: &[&Rule], input: FinalizeInput) -> MigrationResult {
    finalize::handle(clients(rules), input).await.unwrap()
}

macro_rules! ok {
    ($op:ident, $out:ident) => {
        || aws_sdk_ec2::operation::$op::$out::builder().build()
    };
}

#[tokio::test]
async fn finalize_moves_the_eip_removes_the_image_and_applies_the_source_action_last() {
    let mut plan = good_plan(basic_request()).await;
    plan.request.source_action = ferry_core::migrate::request::SourceAction::Terminate;
    let describe_new = new_instance_described();
    let volume_tags = mock!(Client::create_tags)
        .match_requests(|r| {
            r.resources() == ["vol-0new000000000000a"]
                && r.tags()
                    .iter()
                    .any(|t| t.key() == Some("Name") && t.value() == Some("web-1-root"))
        })
        .then_output(ok!(create_tags, CreateTagsOutput));
    let protect = mock!(Client::modify_instance_attribute)
        .match_requests(|r| {
            r.instance_id() == Some("i-0new0000000000001")
                && r.disable_api_termination().and_then(|v| v.value()) == Some(true)
        })
        .then_output(ok!(
            modify_instance_attribute,
            ModifyInstanceAttributeOutput
        ));
    let eip = mock!(Client::associate_address)
        .match_requests(|r| {
            r.allocation_id() == Some("eipalloc-0123456789abcdef0")
                && r.instance_id() == Some("i-0new0000000000001")
                && r.allow_reassociation() == Some(true)
        })
        .then_output(ok!(associate_address, AssociateAddressOutput));
    let snapshots = mock!(Client::describe_snapshots)
        .match_requests(|r| {
            r.owner_ids() == ["self"]
                && r.filters()
                    .iter()
                    .any(|f| f.name() == Some("tag:ferry:execution") && f.values() == [EXECUTION])
        })
        .then_output(|| {
            aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput::builder()
                .snapshots(
                    Snapshot::builder()
                        .snapshot_id("snap-0000000000000000b")
                        .build(),
                )
                .build()
        });
    let deregister = mock!(Client::deregister_image)
        .match_requests(|r| r.image_id() == Some("ami-0feedfacefeedface"))
        .then_output(ok!(deregister_image, DeregisterImageOutput));
    let delete = mock!(Client::delete_snapshot)
        .match_requests(|r| {
            r.snapshot_id()
                .is_some_and(|s| s.starts_with("snap-000000000000000"))
        })
        .sequence()
        .output(ok!(delete_snapshot, DeleteSnapshotOutput))
        .times(2)
        .build();
    let terminate = mock!(Client::terminate_instances)
        .match_requests(|r| r.instance_ids() == [SOURCE])
        .then_output(ok!(terminate_instances, TerminateInstancesOutput));
    let image = ImageRef {
        snapshot_ids: vec!["snap-0000000000000000a".into()],
        ..image_ref("available")
    };
    let instance = InstanceRef {
        instance_id: "i-0new0000000000001".into(),
        ..Default::default()
    };
    let in_flight = end_in_flight(&["i-0new0000000000001"]);
    let result = finalize_with(
        &[
            &describe_new,
            &volume_tags,
            &protect,
            &eip,
            &in_flight,
            &snapshots,
            &deregister,
            &delete,
            &terminate,
        ],
        FinalizeInput {
            plan,
            image,
            instance,
        },
    )
    .await;
    assert_eq!(
        (
            volume_tags.num_calls(),
            protect.num_calls(),
            eip.num_calls()
        ),
        (1, 1, 1)
    );
    assert_eq!(
        (
            deregister.num_calls(),
            delete.num_calls(),
            terminate.num_calls()
        ),
        (1, 2, 1)
    );
    assert_eq!(
        in_flight.num_calls(),
        1,
        "the new instance is no longer in flight"
    );
    assert_eq!(result.elastic_ips_moved, ["34.250.10.20"]);
    assert_eq!(result.new_instance_id, "i-0new0000000000001");
    assert!(!result.image_kept);
    // The Elastic IP moved: described again for the public IP it has now.
    assert_eq!(describe_new.num_calls(), 2);
}

/// Rule 20 and "cleanup never undoes a verified cut-over": the image goes with its
/// snapshots (DeleteAssociatedSnapshots); a snapshot still in use, or a removal that fails
/// outright, is a warning with the leftovers in the output, never an error (Finalize's
/// Catch would roll back the verified move).
#[tokio::test]
async fn finalize_reports_what_it_could_not_remove_instead_of_failing() {
    let plan = good_plan(basic_request()).await;
    let describe_new = new_instance_described();
    let tags = mock!(Client::create_tags).then_output(ok!(create_tags, CreateTagsOutput));
    let protect = mock!(Client::modify_instance_attribute).then_output(ok!(
        modify_instance_attribute,
        ModifyInstanceAttributeOutput
    ));
    let eip = mock!(Client::associate_address)
        .then_output(ok!(associate_address, AssociateAddressOutput));
    let tagged = mock!(Client::describe_snapshots).then_output(|| {
        aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput::builder()
            .snapshots(
                Snapshot::builder()
                    .snapshot_id("snap-0000000000000000b")
                    .build(),
            )
            .build()
    });
    let image = ImageRef {
        snapshot_ids: vec!["snap-0000000000000000a".into()],
        ..image_ref("available")
    };
    let instance = InstanceRef {
        instance_id: "i-0new0000000000001".into(),
        ..Default::default()
    };

    // The image's own snapshot goes with it; the other one is still in use.
    let deregister = mock!(Client::deregister_image)
        .match_requests(|r| {
            r.image_id() == Some("ami-0feedfacefeedface")
                && r.delete_associated_snapshots() == Some(true)
        })
        .then_output(|| {
            DeregisterImageOutput::builder()
                .delete_snapshot_results(
                    DeleteSnapshotReturnCode::builder()
                        .snapshot_id("snap-0000000000000000a")
                        .return_code(SnapshotReturnCodes::Success)
                        .build(),
                )
                .build()
        });
    let in_use = mock!(Client::delete_snapshot)
        .match_requests(|r| r.snapshot_id() == Some("snap-0000000000000000b"))
        .then_error(|| {
            DeleteSnapshotError::generic(
                ErrorMetadata::builder()
                    .code("InvalidSnapshot.InUse")
                    .message("The snapshot snap-0000000000000000b is currently in use by ami-0feedfacefeedface")
                    .build(),
            )
        });
    let in_flight = end_in_flight(&["i-0new0000000000001"]);
    let result = finalize_with(
        &[
            &describe_new,
            &tags,
            &protect,
            &eip,
            &in_flight,
            &tagged,
            &deregister,
            &in_use,
        ],
        FinalizeInput {
            plan: plan.clone(),
            image: image.clone(),
            instance: instance.clone(),
        },
    )
    .await;
    assert_eq!((deregister.num_calls(), in_use.num_calls()), (1, 1));
    assert_eq!(result.leftovers, ["snap-0000000000000000b"]);
    assert!(
        result.warnings.iter().any(|w| w.contains("still in use")),
        "{:?}",
        result.warnings
    );

    // DeregisterImage refused outright: still a result, with everything left listed.
    let denied = mock!(Client::deregister_image).then_error(|| {
        DeregisterImageError::generic(
            ErrorMetadata::builder()
                .code("UnauthorizedOperation")
                .message("You are not authorized to perform this operation.")
                .build(),
        )
    });
    // ... and the in-flight tag that would not come off is a warning too.
    let untag_denied = mock!(Client::delete_tags).then_error(|| {
        aws_sdk_ec2::operation::delete_tags::DeleteTagsError::generic(meta("UnauthorizedOperation"))
    });
    let result = finalize_with(
        &[
            &describe_new,
            &tags,
            &protect,
            &eip,
            &untag_denied,
            &tagged,
            &denied,
        ],
        FinalizeInput {
            plan,
            image,
            instance,
        },
    )
    .await;
    assert_eq!(
        result.leftovers,
        [
            "ami-0feedfacefeedface",
            "snap-0000000000000000a",
            "snap-0000000000000000b"
        ]
    );
    assert!(
        result
            .warnings
            .iter()
            .any(|w| w.contains("could not be removed")),
        "{:?}",
        result.warnings
    );
    assert!(
        result
            .warnings
            .iter()
            .any(|w| w.contains("ferry:in-flight")),
        "{:?}",
        result.warnings
    );
}

#[tokio::test]
async fn finalize_with_keep_image_and_keep_source_touches_neither() {
    let mut request = basic_request();
    request["keepImage"] = json!(true);
    request["moveElasticIp"] = json!(false);
    let mut plan = good_plan(request).await;
    plan.launch.disable_api_termination = false;
    let describe_new = mock!(Client::describe_instances)
        .sequence()
        .output(|| reservation(new_instance(InstanceStateName::Running, "eu-west-1b")))
        .repeatedly()
        .build();
    let volume_tags = mock!(Client::create_tags).then_output(ok!(create_tags, CreateTagsOutput));
    // The kept image and its snapshot are out of flight with the instance.
    let in_flight = end_in_flight(&[
        "i-0new0000000000001",
        "ami-0feedfacefeedface",
        "snap-0000000000000000a",
    ]);
    // No DeregisterImage, DeleteSnapshot, AssociateAddress, Stop or Terminate rule.
    let result = finalize_with(
        &[&describe_new, &volume_tags, &in_flight],
        FinalizeInput {
            plan,
            image: ImageRef {
                snapshot_ids: vec!["snap-0000000000000000a".into()],
                ..image_ref("available")
            },
            instance: InstanceRef {
                instance_id: "i-0new0000000000001".into(),
                ..Default::default()
            },
        },
    )
    .await;
    assert!(result.image_kept && result.elastic_ips_moved.is_empty());
    assert_eq!(in_flight.num_calls(), 1);
    // No Elastic IP moved: the first describe's addresses stand, no second describe.
    assert_eq!(describe_new.num_calls(), 1);
    assert_eq!(result.new_private_ip.as_deref(), Some("10.0.2.57"));
}

#[tokio::test]
async fn rollback_removes_only_what_this_execution_made() {
    let mut request = basic_request();
    request["stopSource"] = json!(true);
    let plan = good_plan(request).await;
    let describe_source = mock!(Client::describe_instances)
        .match_requests(|r| r.instance_ids() == [SOURCE])
        .then_output(|| reservation(source_instance(InstanceStateName::Stopped, DeviceType::Ebs)));
    let describe_tagged = mock!(Client::describe_instances)
        .match_requests(|r| {
            r.filters()
                .iter()
                .any(|f| f.name() == Some("tag:ferry:execution") && f.values() == [EXECUTION])
        })
        .then_output(|| reservation(new_instance(InstanceStateName::Running, "eu-west-1b")));
    let image = own_image(&plan, ImageState::Available);
    let images =
        mock!(Client::describe_images).then_output(move || images_output(vec![image.clone()]));
    let snapshots = mock!(Client::describe_snapshots).then_output(|| {
        aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput::builder().build()
    });
    let addresses = mock!(Client::describe_addresses).then_output(|| {
        aws_sdk_ec2::operation::describe_addresses::DescribeAddressesOutput::builder()
            .addresses(
                Address::builder()
                    .allocation_id("eipalloc-0123456789abcdef0")
                    .instance_id("i-0new0000000000001")
                    .build(),
            )
            .build()
    });
    let reassociate = mock!(Client::associate_address)
        .match_requests(|r| {
            r.instance_id() == Some(SOURCE) && r.allow_reassociation() == Some(true)
        })
        .then_output(ok!(associate_address, AssociateAddressOutput));
    let start = mock!(Client::start_instances)
        .match_requests(|r| r.instance_ids() == [SOURCE])
        .then_output(ok!(start_instances, StartInstancesOutput));
    let unprotect = mock!(Client::modify_instance_attribute)
        .match_requests(|r| r.instance_id() == Some("i-0new0000000000001"))
        .sequence()
        .output(ok!(
            modify_instance_attribute,
            ModifyInstanceAttributeOutput
        ))
        .times(3)
        .build();
    let terminate = mock!(Client::terminate_instances)
        .match_requests(|r| r.instance_ids() == ["i-0new0000000000001"])
        .then_output(ok!(terminate_instances, TerminateInstancesOutput));
    let deregister =
        mock!(Client::deregister_image).then_output(ok!(deregister_image, DeregisterImageOutput));
    let delete = mock!(Client::delete_snapshot)
        .sequence()
        .output(ok!(delete_snapshot, DeleteSnapshotOutput))
        .times(2)
        .build();
    let input = RollbackInput {
        plan,
        image: None,
        instance: None,
        error: Some(CaughtError {
            error: "Ferry.InstanceFailed".into(),
            cause: "{}".into(),
        }),
    };
    // Everything is undone in one attempt; having started the source, the step asks to
    // be retried to see it running (issue 8, 2.1).
    let waits = rollback::handle(
        clients(&[
            &describe_source,
            &describe_tagged,
            &images,
            &snapshots,
            &addresses,
            &reassociate,
            &start,
            &unprotect,
            &terminate,
            &deregister,
            &delete,
        ]),
        input,
    )
    .await
    .unwrap_err();
    assert_eq!(waits.name, ErrorName::InstanceNotReady, "{waits}");
    assert!(waits.message.contains("running again"), "{waits}");
    assert_eq!(
        (
            reassociate.num_calls(),
            start.num_calls(),
            unprotect.num_calls(),
            terminate.num_calls()
        ),
        (1, 1, 3, 1)
    );
    assert_eq!((deregister.num_calls(), delete.num_calls()), (1, 2));
}

#[tokio::test]
async fn rollback_after_the_source_was_terminated_keeps_everything() {
    let mut request = basic_request();
    request["sourceAction"] = json!("terminate");
    let mut plan = good_plan_unprotected(request).await;
    plan.request.keep_image = false;
    let describe_source = mock!(Client::describe_instances)
        .match_requests(|r| r.instance_ids() == [SOURCE])
        .then_output(|| {
            reservation(source_instance(
                InstanceStateName::Terminated,
                DeviceType::Ebs,
            ))
        });
    let describe_tagged = mock!(Client::describe_instances)
        .then_output(|| reservation(new_instance(InstanceStateName::Running, "eu-west-1b")));
    let image = own_image(&plan, ImageState::Available);
    let images =
        mock!(Client::describe_images).then_output(move || images_output(vec![image.clone()]));
    let snapshots = mock!(Client::describe_snapshots).then_output(|| {
        aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput::builder().build()
    });
    let addresses = mock!(Client::describe_addresses).then_output(|| {
        aws_sdk_ec2::operation::describe_addresses::DescribeAddressesOutput::builder().build()
    });
    // No mutating rule at all.
    let report = rollback::handle(
        clients(&[
            &describe_source,
            &describe_tagged,
            &images,
            &snapshots,
            &addresses,
        ]),
        RollbackInput {
            plan,
            image: None,
            instance: None,
            error: None,
        },
    )
    .await
    .unwrap();
    assert!(report.done.is_empty());
    assert!(report.kept[0].contains("only copy"));
}

async fn good_plan_unprotected(request: serde_json::Value) -> MigrationPlan {
    let mut rules = preflight_reads(
        source_instance(InstanceStateName::Running, DeviceType::Ebs),
        "eu-west-1b",
        &["t3.large"],
    );
    rules[3] = mock!(Client::describe_instance_attribute)
        .match_requests(|r| r.attribute() == Some(&InstanceAttributeName::DisableApiTermination))
        .then_output(|| {
            aws_sdk_ec2::operation::describe_instance_attribute::DescribeInstanceAttributeOutput::builder()
                .disable_api_termination(AttributeBooleanValue::builder().value(false).build())
                .build()
        });
    run_preflight(&rules, request).await.unwrap()
}

#[test]
fn step_failures_report_the_ferry_error_name_as_error_type() {
    let d: lambda_runtime::Diagnostic = ferry_steps::runtime::StepFailure(FerryError::new(
        ErrorName::ImageNotReady,
        "image ami-1 is pending",
    ))
    .into();
    assert_eq!(d.error_type, "Ferry.ImageNotReady");
    assert_eq!(d.error_message, "image ami-1 is pending");
}

#[tokio::test]
async fn a_payload_of_the_wrong_shape_is_invalid_input() {
    let e = ferry_steps::runtime::invoke(clients(&[]), json!({"plan": 3}), wait_image::handle)
        .await
        .unwrap_err();
    assert_eq!(e.name, ErrorName::InvalidInput);
}

/// A dry run's Preflight makes the same reads (a call no rule expects panics: no
/// CreateImage, StopInstances or RunInstances) and adds the report the execution ends
/// with; a run's output has no report.
#[tokio::test]
async fn preflight_of_a_dry_run_reports_the_plan() {
    let rules = preflight_reads(
        source_instance(InstanceStateName::Running, DeviceType::Ebs),
        "eu-west-1b",
        &["t3.large"],
    );
    let refs: Vec<&Rule> = rules.iter().collect();
    let mut request = basic_request();
    request["dryRun"] = json!(true);
    request["stopSource"] = json!(true);
    let out = preflight::handle(clients(&refs), preflight_input(request))
        .await
        .unwrap();
    assert!(out.plan.dry_run);
    let report = out.report.expect("a dry run's report");
    assert_eq!(report.workflow, "migrate-instance");
    assert_eq!(report.plan.instance.subnet_id, TARGET_SUBNET);
    assert_eq!(report.plan.instance.availability_zone, "eu-west-1b");
    assert_eq!(report.plan.instance.instance_type, "t3.large");
    assert!(report.plan.source.stopped_before_imaging);
    assert_eq!(report.plan.image.name, out.plan.image.name);
    let out = preflight::handle(clients(&refs), preflight_input(basic_request()))
        .await
        .unwrap();
    assert!(!out.plan.dry_run && out.report.is_none());
}

/// One migration per source at a time: another execution's in-flight image of the source
/// refuses this one (Ferry.MigrationInProgress, naming it); this execution's own (a
/// retried Preflight) does not.
#[tokio::test]
async fn another_executions_migration_in_flight_refuses_the_preflight() {
    let in_flight_image = |execution: &'static str| {
        mock!(Client::describe_images)
            .match_requests(|r| r.owners() == ["self"] && in_flight_filters(r.filters()))
            .then_output(move || {
                images_output(vec![Image::builder()
                    .image_id("ami-0a0a0a0a0a0a0a0a0")
                    .state(ImageState::Pending)
                    .tags(tag("ferry:execution", execution))
                    .tags(tag("ferry:source-instance", SOURCE))
                    .tags(tag("ferry:in-flight", "true"))
                    .build()])
            })
    };
    let other = "arn:aws:states:eu-west-1:111122223333:execution:ferry-migrate-instance:other";
    let mut rules = preflight_reads(
        source_instance(InstanceStateName::Running, DeviceType::Ebs),
        "eu-west-1b",
        &["t3.large"],
    );
    let last = rules.len() - 1;
    rules[last] = in_flight_image(other);
    let e = run_preflight(&rules, basic_request()).await.unwrap_err();
    assert_eq!(e.name, ErrorName::MigrationInProgress, "{e}");
    assert!(
        e.message.contains("ami-0a0a0a0a0a0a0a0a0") && e.message.contains(other),
        "{e}"
    );

    rules[last] = in_flight_image(EXECUTION);
    run_preflight(&rules, basic_request()).await.unwrap();
}

fn sfn_client(rules: &[&Rule]) -> aws_sdk_sfn::Client {
    mock_client!(aws_sdk_sfn, RuleMode::MatchAny, rules, |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled()))
}

/// Event-driven WaitImage (a `.waitForTaskToken` Task): an attempt that finds the image
/// available ends the wait itself with SendTaskSuccess (the image as the Task's result);
/// pending leaves it to the event or the next attempt (no Step Functions call at all);
/// failed fails the Task by name; a task that timed out meanwhile is not an error.
#[tokio::test]
async fn wait_image_with_a_token_ends_the_wait_only_when_the_image_is_ready() {
    use aws_sdk_sfn::operation::send_task_success::{SendTaskSuccessError, SendTaskSuccessOutput};
    let plan = good_plan(basic_request()).await;
    for (state, answer, expect) in [
        (ImageState::Available, None, Ok(1usize)),
        (ImageState::Available, Some("TaskTimedOut"), Ok(1)),
        (
            ImageState::Available,
            Some("ThrottlingException"),
            Err(ErrorName::Throttled),
        ),
        (ImageState::Pending, None, Ok(0)),
        (ImageState::Failed, None, Err(ErrorName::ImageFailed)),
    ] {
        let image = own_image(&plan, state.clone());
        let describe =
            mock!(Client::describe_images).then_output(move || images_output(vec![image.clone()]));
        let success = match answer {
            None => mock!(aws_sdk_sfn::Client::send_task_success)
                .match_requests(|r| {
                    let output: serde_json::Value =
                        serde_json::from_str(r.output().unwrap()).unwrap();
                    r.task_token() == Some("token-7")
                        && output["imageId"] == "ami-0feedfacefeedface"
                        && output["state"] == "available"
                        && output["snapshotIds"]
                            == json!(["snap-0000000000000000a", "snap-0000000000000000b"])
                })
                .then_output(|| SendTaskSuccessOutput::builder().build()),
            Some(code) => mock!(aws_sdk_sfn::Client::send_task_success)
                .then_error(move || SendTaskSuccessError::generic(meta(code))),
        };
        let got = wait_image::handle(
            clients(&[&describe]).with_sfn(sfn_client(&[&success])),
            ImageInput {
                plan: plan.clone(),
                image: image_ref("pending"),
                task_token: Some("token-7".into()),
            },
        )
        .await;
        assert_eq!(describe.num_calls(), 1, "{state:?}");
        match (got, expect) {
            (Ok(image), Ok(calls)) => {
                assert_eq!(success.num_calls(), calls, "{state:?} {answer:?}");
                let expected_state = if calls == 1 { "available" } else { "pending" };
                assert_eq!(image.state, expected_state);
            }
            (Err(e), Err(name)) => assert_eq!(e.name, name, "{state:?} {answer:?}: {e}"),
            (got, expect) => panic!("{state:?} {answer:?}: {got:?} vs {expect:?}"),
        }
    }
}
