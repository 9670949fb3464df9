//! What preflight reads about the source instance and the target subnet, as plain data.
//! The SDK edge fills these from DescribeInstances, DescribeVolumes,
//! DescribeInstanceAttribute, DescribeInstanceCreditSpecifications and DescribeAddresses.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SourceInstance {
    pub instance_id: String,
    pub state: String,
    pub availability_zone: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub instance_type: String,
    /// `ebs` or `instance-store`.
    pub root_device_type: String,
    pub root_device_name: Option<String>,
    /// The AMI the source was launched from (for provenance only).
    pub image_id: Option<String>,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub security_group_ids: Vec<String>,
    pub iam_instance_profile_arn: Option<String>,
    pub key_name: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Every EBS mapping of the instance, root included.
    pub volumes: Vec<SourceVolume>,
    pub metadata_options: Option<MetadataOptions>,
    pub monitoring_enabled: bool,
    /// Base64, as DescribeInstanceAttribute returns it and RunInstances takes it.
    pub user_data: Option<String>,
    pub disable_api_termination: bool,
    pub disable_api_stop: bool,
    pub ebs_optimized: bool,
    /// `standard` or `unlimited`, for burstable types.
    pub cpu_credits: Option<String>,
    /// `default`, `dedicated` or `host`.
    pub tenancy: Option<String>,
    pub placement_group: Option<String>,
    /// The placement group's strategy (`cluster`, `spread`, `partition`), as
    /// DescribePlacementGroups reports it; `None` when not in a group or not read.
    #[serde(default)]
    pub placement_group_strategy: Option<String>,
    pub cpu_options: Option<CpuOptions>,
    /// The source type's CPU facts (read by preflight when the source reports CPU options
    /// and keeps its type); `None`: not read.
    #[serde(default)]
    pub type_cpu: Option<TypeCpu>,
    pub hibernation_configured: bool,
    /// `spot`, `scheduled`, `capacity-block`, or none for on-demand.
    pub instance_lifecycle: Option<String>,
    pub network_interface_count: usize,
    pub secondary_private_ip_count: usize,
    pub elastic_ips: Vec<ElasticIp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SourceVolume {
    pub device_name: String,
    pub volume_id: String,
    pub delete_on_termination: bool,
    pub volume_type: String,
    pub size_gib: i32,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MetadataOptions {
    pub http_tokens: Option<String>,
    pub http_put_response_hop_limit: Option<i32>,
    pub http_endpoint: Option<String>,
    pub http_protocol_ipv6: Option<String>,
    pub instance_metadata_tags: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CpuOptions {
    pub core_count: Option<i32>,
    pub threads_per_core: Option<i32>,
}

/// What DescribeInstanceTypes says of a type's CPUs (`VCpuInfo`, `BareMetal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TypeCpu {
    pub default_cores: Option<i32>,
    pub default_threads_per_core: Option<i32>,
    /// Empty for types whose CPU options cannot be specified (T2 and other older types).
    #[serde(default)]
    pub valid_cores: Vec<i32>,
    #[serde(default)]
    pub valid_threads_per_core: Vec<i32>,
    #[serde(default)]
    pub bare_metal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ElasticIp {
    pub allocation_id: String,
    pub public_ip: String,
    pub private_ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TargetSubnet {
    pub subnet_id: String,
    pub availability_zone: String,
    pub vpc_id: String,
}

/// A security group and the VPC it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupRef {
    pub group_id: String,
    pub vpc_id: String,
}
