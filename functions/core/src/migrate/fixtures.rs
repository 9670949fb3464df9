//! Test data shared by the migrate modules' tests: a realistic source and its plan.

use super::plan::{build_plan, MigrationPlan};
use super::request::MigrateRequest;
use super::source::*;
use crate::errors::FerryError;
use crate::names::ExecutionContext;
use serde_json::json;
use std::collections::BTreeMap;

pub const CMK: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

pub fn execution() -> ExecutionContext {
    ExecutionContext {
        execution_arn:
            "arn:aws:states:eu-west-1:111122223333:execution:ferry-migrate-instance:move-web-1"
                .into(),
        execution_name: "move-web-1".into(),
        state_machine_arn: Some(
            "arn:aws:states:eu-west-1:111122223333:stateMachine:ferry-migrate-instance".into(),
        ),
        start_time: Some("2026-11-29T05:41:00Z".into()),
    }
}

/// A web server as DescribeInstances & co. describe it: encrypted gp3 root under a CMK,
/// an io2 data volume, IMDSv2, an instance profile, an Elastic IP, a T3 credit spec.
pub fn web_server() -> SourceInstance {
    SourceInstance {
        instance_id: "i-0a1b2c3d4e5f60718".into(),
        state: "running".into(),
        availability_zone: "eu-west-1a".into(),
        subnet_id: "subnet-0aaa1111bbbb22223".into(),
        vpc_id: "vpc-0c0ffee0c0ffee000".into(),
        instance_type: "t3.large".into(),
        root_device_type: "ebs".into(),
        root_device_name: Some("/dev/xvda".into()),
        image_id: Some("ami-0abcdef1234567890".into()),
        private_ip: Some("10.0.1.23".into()),
        public_ip: Some("34.250.10.20".into()),
        security_group_ids: vec!["sg-0123456789abcdef0".into(), "sg-0fedcba9876543210".into()],
        iam_instance_profile_arn: Some("arn:aws:iam::111122223333:instance-profile/web".into()),
        key_name: Some("ops-2026".into()),
        tags: BTreeMap::from([
            ("Name".into(), "web-1".into()),
            ("team".into(), "storefront".into()),
            ("aws:cloudformation:stack-name".into(), "web".into()),
        ]),
        volumes: vec![
            SourceVolume {
                device_name: "/dev/xvda".into(),
                volume_id: "vol-0123456789abcdef0".into(),
                delete_on_termination: true,
                volume_type: "gp3".into(),
                size_gib: 30,
                iops: Some(4000),
                throughput: Some(250),
                encrypted: true,
                kms_key_id: Some(CMK.into()),
                tags: BTreeMap::from([("Name".into(), "web-1-root".into())]),
            },
            SourceVolume {
                device_name: "/dev/sdf".into(),
                volume_id: "vol-0fedcba9876543210".into(),
                delete_on_termination: false,
                volume_type: "io2".into(),
                size_gib: 200,
                iops: Some(10000),
                throughput: None,
                encrypted: true,
                kms_key_id: Some(CMK.into()),
                tags: BTreeMap::new(),
            },
        ],
        metadata_options: Some(MetadataOptions {
            http_tokens: Some("required".into()),
            http_put_response_hop_limit: Some(2),
            http_endpoint: Some("enabled".into()),
            http_protocol_ipv6: Some("disabled".into()),
            instance_metadata_tags: Some("enabled".into()),
        }),
        monitoring_enabled: true,
        user_data: Some("IyEvYmluL2Jhc2gKZWNobyBoZWxsbwo=".into()),
        disable_api_termination: true,
        disable_api_stop: false,
        ebs_optimized: true,
        cpu_credits: Some("unlimited".into()),
        tenancy: Some("default".into()),
        placement_group: None,
        placement_group_strategy: None,
        // SMT off: not t3.large's default (1 core x 2 threads), so it must be carried.
        cpu_options: Some(CpuOptions {
            core_count: Some(1),
            threads_per_core: Some(1),
        }),
        type_cpu: Some(TypeCpu {
            default_cores: Some(1),
            default_threads_per_core: Some(2),
            valid_cores: vec![1],
            valid_threads_per_core: vec![1, 2],
            bare_metal: false,
        }),
        hibernation_configured: false,
        instance_lifecycle: None,
        network_interface_count: 1,
        secondary_private_ip_count: 0,
        elastic_ips: vec![ElasticIp {
            allocation_id: "eipalloc-0123456789abcdef0".into(),
            public_ip: "34.250.10.20".into(),
            private_ip: Some("10.0.1.23".into()),
        }],
    }
}

pub fn target() -> TargetSubnet {
    TargetSubnet {
        subnet_id: "subnet-0bbb2222cccc33334".into(),
        availability_zone: "eu-west-1b".into(),
        vpc_id: "vpc-0c0ffee0c0ffee000".into(),
    }
}

pub fn groups(s: &SourceInstance) -> Vec<SecurityGroupRef> {
    s.security_group_ids
        .iter()
        .map(|g| SecurityGroupRef {
            group_id: g.clone(),
            vpc_id: s.vpc_id.clone(),
        })
        .collect()
}

pub fn request(extra: serde_json::Value) -> MigrateRequest {
    let mut v = json!({"sourceInstanceId": "i-0a1b2c3d4e5f60718", "targetSubnetId": "subnet-0bbb2222cccc33334"});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    MigrateRequest::parse(&v).unwrap()
}

pub fn offered() -> Vec<String> {
    vec!["t3.large".into(), "m7i.large".into()]
}

pub fn plan_for(req: &MigrateRequest, s: &SourceInstance) -> Result<MigrationPlan, FerryError> {
    build_plan(&execution(), req, s, &target(), &groups(s), &offered())
}
