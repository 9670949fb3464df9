//! State `LaunchInstance`: RunInstances in the target subnet from the plan's launch spec,
//! with a ClientToken derived from the execution so a retry never launches twice.
//! Termination and stop protection are applied later, by finalize, after verification.

use crate::aws::{aws_error, tag_spec, Clients};
use aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, CpuOptionsRequest, CreditSpecificationRequest, EbsBlockDevice,
    HibernationOptionsRequest, HttpTokensState, IamInstanceProfileSpecification,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest, InstanceMetadataProtocolState,
    InstanceMetadataTagsState, InstanceNetworkInterfaceSpecification, InstanceType, Placement,
    ResourceType, RunInstancesMonitoringEnabled, Tenancy, VolumeType,
};
use aws_sdk_ec2::Client;
use ferry_core::migrate::io::{ImageInput, InstanceRef};
use ferry_core::migrate::plan::LaunchSpec;
use ferry_core::FerryError;

pub async fn handle(clients: Clients, input: ImageInput) -> Result<InstanceRef, FerryError> {
    let out = run_instances(&clients.ec2, &input.image.image_id, &input.plan.launch)
        .send()
        .await
        .map_err(|e| aws_error("RunInstances", e))?;
    let instance = out.instances().first().ok_or_else(|| {
        FerryError::new(
            ferry_core::ErrorName::AwsError,
            "RunInstances returned no instance",
        )
    })?;
    let instance_id = instance.instance_id().unwrap_or_default().to_string();
    tracing::info!(instance = %instance_id, subnet = %input.plan.launch.subnet_id, "launched");
    Ok(InstanceRef {
        instance_id,
        state: instance
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string()),
        availability_zone: instance
            .placement()
            .and_then(|p| p.availability_zone())
            .map(str::to_string),
        subnet_id: instance.subnet_id().map(str::to_string),
        private_ip: instance.private_ip_address().map(str::to_string),
        public_ip: instance.public_ip_address().map(str::to_string),
        created_at: Some(ferry_core::rules::polls::epoch_seconds()),
    })
}

/// The RunInstances request for a launch spec (rule 14), without sending it.
pub fn run_instances(ec2: &Client, image_id: &str, spec: &LaunchSpec) -> RunInstancesFluentBuilder {
    let mut req = ec2
        .run_instances()
        .image_id(image_id)
        .instance_type(InstanceType::from(spec.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .client_token(&spec.client_token)
        .ebs_optimized(spec.ebs_optimized)
        .monitoring(
            RunInstancesMonitoringEnabled::builder()
                .enabled(spec.monitoring_enabled)
                .build(),
        )
        .tag_specifications(tag_spec(ResourceType::Instance, &spec.instance_tags))
        .tag_specifications(tag_spec(ResourceType::Volume, &spec.volume_tags))
        .set_key_name(spec.key_name.clone())
        .set_user_data(spec.user_data.clone());
    req = if spec.associate_public_ip {
        // A public IP can only be requested on an explicit primary interface.
        req.network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .subnet_id(&spec.subnet_id)
                .set_groups(Some(spec.security_group_ids.clone()))
                .associate_public_ip_address(true)
                .delete_on_termination(true)
                .build(),
        )
    } else {
        req.subnet_id(&spec.subnet_id)
            .set_security_group_ids(Some(spec.security_group_ids.clone()))
    };
    if let Some(arn) = &spec.iam_instance_profile_arn {
        req = req.iam_instance_profile(IamInstanceProfileSpecification::builder().arn(arn).build());
    }
    for v in &spec.volumes {
        let ebs = EbsBlockDevice::builder()
            .volume_type(VolumeType::from(v.volume_type.as_str()))
            .volume_size(v.size_gib)
            .set_iops(v.iops)
            .set_throughput(v.throughput)
            .delete_on_termination(v.delete_on_termination)
            .set_encrypted(v.encrypted.then_some(true))
            .set_kms_key_id(v.kms_key_id.clone())
            .build();
        req = req.block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(&v.device_name)
                .ebs(ebs)
                .build(),
        );
    }
    if let Some(m) = &spec.metadata_options {
        req = req.metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .set_http_tokens(m.http_tokens.as_deref().map(HttpTokensState::from))
                .set_http_put_response_hop_limit(m.http_put_response_hop_limit)
                .set_http_endpoint(
                    m.http_endpoint
                        .as_deref()
                        .map(InstanceMetadataEndpointState::from),
                )
                .set_http_protocol_ipv6(
                    m.http_protocol_ipv6
                        .as_deref()
                        .map(InstanceMetadataProtocolState::from),
                )
                .set_instance_metadata_tags(
                    m.instance_metadata_tags
                        .as_deref()
                        .map(InstanceMetadataTagsState::from),
                )
                .build(),
        );
    }
    if let Some(credits) = &spec.cpu_credits {
        req = req.credit_specification(
            CreditSpecificationRequest::builder()
                .cpu_credits(credits)
                .build(),
        );
    }
    if spec.tenancy.is_some() || spec.placement_group.is_some() {
        req = req.placement(
            Placement::builder()
                .set_tenancy(spec.tenancy.as_deref().map(Tenancy::from))
                .set_group_name(spec.placement_group.clone())
                .build(),
        );
    }
    if let Some(cpu) = &spec.cpu_options {
        req = req.cpu_options(
            CpuOptionsRequest::builder()
                .set_core_count(cpu.core_count)
                .set_threads_per_core(cpu.threads_per_core)
                .build(),
        );
    }
    if spec.hibernation_configured {
        req = req.hibernation_options(
            HibernationOptionsRequest::builder()
                .configured(true)
                .build(),
        );
    }
    req
}
