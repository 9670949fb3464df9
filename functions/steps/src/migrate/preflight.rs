//! State `Preflight`: read the source, the target subnet and the offerings, refuse what
//! cannot be moved, and output the plan. Makes no mutating call. In a dry run
//! (`"dryRun": true`) the output also holds the report the execution ends with
//! (`ferry_core::migrate::dry_run`).

use super::describe;
use crate::aws::{aws_error, aws_error_with, filter, tag_map, Clients};
use aws_sdk_ec2::types::{Instance, InstanceAttributeName, InstanceType, LocationType};
use aws_sdk_ec2::Client;
use ferry_core::migrate::dry_run::dry_run_report;
use ferry_core::migrate::io::{PreflightInput, PreflightOutput};
use ferry_core::migrate::plan::build_plan;
use ferry_core::migrate::refusals::{check_no_other_migration, InFlight};
use ferry_core::migrate::request::MigrateRequest;
use ferry_core::migrate::source::{
    CpuOptions, ElasticIp, MetadataOptions, SecurityGroupRef, SourceInstance, SourceVolume,
    TargetSubnet, TypeCpu,
};
use ferry_core::migrate::{plan, refusals};
use ferry_core::tags;
use ferry_core::{ErrorName, FerryError};

pub async fn handle(
    clients: Clients,
    input: PreflightInput,
) -> Result<PreflightOutput, FerryError> {
    let request = MigrateRequest::parse(&input.request)?;
    let ec2 = &clients.ec2;
    let mut source = describe_source(ec2, &request.source_instance_id).await?;
    // One migration per source at a time (the source exists: nothing to plan if so).
    let in_flight = describe_in_flight(ec2, &request.source_instance_id).await?;
    check_no_other_migration(
        &request.source_instance_id,
        &input.context.execution_arn,
        &in_flight,
    )?;
    // Rule 22: whether the source's CPU options can (and need to) be sent depends on its
    // type; read only when they would be carried (same type, options reported).
    if request.instance_type.is_none() && source.cpu_options.is_some() {
        source.type_cpu = describe_type_cpu(ec2, &source.instance_type).await?;
    }
    if let Some(group) = &source.placement_group {
        source.placement_group_strategy = describe_placement_strategy(ec2, group).await?;
    }
    let target = describe_subnet(ec2, &request.target_subnet_id).await?;
    let groups = match &request.security_group_ids {
        Some(ids) => describe_security_groups(ec2, ids).await?,
        None => source
            .security_group_ids
            .iter()
            .map(|g| SecurityGroupRef {
                group_id: g.clone(),
                vpc_id: source.vpc_id.clone(),
            })
            .collect(),
    };
    let instance_type = request
        .instance_type
        .as_deref()
        .unwrap_or(&source.instance_type);
    let offered = offered_types(ec2, instance_type, &target.availability_zone).await?;
    let plan = build_plan(
        &input.context,
        &request,
        &source,
        &target,
        &groups,
        &offered,
    )?;
    tracing::info!(
        source = %plan.source.instance_id,
        from = %plan.source.availability_zone,
        to = %plan.target.availability_zone,
        image = %plan.image.name,
        dry_run = plan.dry_run,
        "plan ready"
    );
    let report = plan.dry_run.then(|| dry_run_report(&plan));
    Ok(PreflightOutput { plan, report })
}

/// Images (this account's) and instances (not terminated) ferry made for a migration
/// of `source_instance_id` that is not finished: tagged with the source and
/// `ferry:in-flight=true`, with the execution that made each.
pub async fn describe_in_flight(
    ec2: &Client,
    source_instance_id: &str,
) -> Result<Vec<InFlight>, FerryError> {
    use aws_sdk_ec2::types::Filter;
    let filters = || {
        vec![
            Filter::builder()
                .name(format!("tag:{}", tags::TAG_SOURCE_INSTANCE))
                .values(source_instance_id)
                .build(),
            Filter::builder()
                .name(format!("tag:{}", tags::TAG_IN_FLIGHT))
                .values("true")
                .build(),
        ]
    };
    let execution_of = |t: &[aws_sdk_ec2::types::Tag]| {
        t.iter()
            .find(|t| t.key() == Some(tags::TAG_EXECUTION))
            .and_then(|t| t.value())
            .unwrap_or_default()
            .to_string()
    };
    let mut found = Vec::new();
    let images = ec2
        .describe_images()
        .owners("self")
        .set_filters(Some(filters()))
        .send()
        .await
        .map_err(|e| aws_error("DescribeImages", e))?;
    for i in images.images() {
        if matches!(i.state().map(|s| s.as_str()), Some("pending" | "available")) {
            found.push(InFlight {
                resource_id: i.image_id().unwrap_or_default().to_string(),
                execution_arn: execution_of(i.tags()),
            });
        }
    }
    let mut filters = filters();
    filters.push(
        Filter::builder()
            .name("instance-state-name")
            .values("pending")
            .values("running")
            .values("stopping")
            .values("stopped")
            .build(),
    );
    let instances = ec2
        .describe_instances()
        .set_filters(Some(filters))
        .send()
        .await
        .map_err(|e| aws_error("DescribeInstances", e))?;
    for i in instances.reservations().iter().flat_map(|r| r.instances()) {
        found.push(InFlight {
            resource_id: i.instance_id().unwrap_or_default().to_string(),
            execution_arn: execution_of(i.tags()),
        });
    }
    Ok(found)
}

/// DescribePlacementGroups of the source's group: its strategy (a cluster group cannot
/// follow the instance into another AZ).
pub async fn describe_placement_strategy(
    ec2: &Client,
    group: &str,
) -> Result<Option<String>, FerryError> {
    let out = ec2
        .describe_placement_groups()
        .group_names(group)
        .send()
        .await
        .map_err(|e| aws_error("DescribePlacementGroups", e))?;
    Ok(out
        .placement_groups()
        .first()
        .and_then(|g| g.strategy())
        .map(|s| s.as_str().to_string()))
}

/// DescribeInstanceTypes of one type: its CPU facts (`VCpuInfo`, `BareMetal`).
pub async fn describe_type_cpu(
    ec2: &Client,
    instance_type: &str,
) -> Result<Option<TypeCpu>, FerryError> {
    let out = ec2
        .describe_instance_types()
        .instance_types(InstanceType::from(instance_type))
        .send()
        .await
        .map_err(|e| aws_error("DescribeInstanceTypes", e))?;
    Ok(out.instance_types().first().map(|t| {
        let v = t.v_cpu_info();
        TypeCpu {
            default_cores: v.and_then(|v| v.default_cores()),
            default_threads_per_core: v.and_then(|v| v.default_threads_per_core()),
            valid_cores: v.map(|v| v.valid_cores().to_vec()).unwrap_or_default(),
            valid_threads_per_core: v
                .map(|v| v.valid_threads_per_core().to_vec())
                .unwrap_or_default(),
            bare_metal: t.bare_metal().unwrap_or(false),
        }
    }))
}

/// DescribeInstances and the calls that complete the picture rule 14 asks for.
pub async fn describe_source(
    ec2: &Client,
    instance_id: &str,
) -> Result<SourceInstance, FerryError> {
    let instance =
        describe::existing_instance(ec2, instance_id, ErrorName::InstanceNotFound).await?;
    let mut source = source_from_instance(&instance);
    // Refuse early what no further read can fix.
    refusals::check_source_state(instance_id, &source.state)?;
    refusals::check_root_device_is_ebs(instance_id, &source.root_device_type)?;

    let volume_ids: Vec<String> = source.volumes.iter().map(|v| v.volume_id.clone()).collect();
    if !volume_ids.is_empty() {
        let out = ec2
            .describe_volumes()
            .set_volume_ids(Some(volume_ids))
            .send()
            .await
            .map_err(|e| aws_error("DescribeVolumes", e))?;
        for volume in out.volumes() {
            if let Some(v) = source
                .volumes
                .iter_mut()
                .find(|v| Some(v.volume_id.as_str()) == volume.volume_id())
            {
                v.volume_type = volume
                    .volume_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default();
                v.size_gib = volume.size().unwrap_or_default();
                v.iops = volume.iops();
                v.throughput = volume.throughput();
                v.encrypted = volume.encrypted().unwrap_or(false);
                v.kms_key_id = volume.kms_key_id().map(str::to_string);
                v.tags = tag_map(volume.tags());
            }
        }
    }

    let attribute = |name: InstanceAttributeName| {
        ec2.describe_instance_attribute()
            .instance_id(instance_id)
            .attribute(name)
            .send()
    };
    let user_data = attribute(InstanceAttributeName::UserData)
        .await
        .map_err(|e| aws_error("DescribeInstanceAttribute(userData)", e))?;
    source.user_data = user_data
        .user_data()
        .and_then(|v| v.value())
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let termination = attribute(InstanceAttributeName::DisableApiTermination)
        .await
        .map_err(|e| aws_error("DescribeInstanceAttribute(disableApiTermination)", e))?;
    source.disable_api_termination = termination
        .disable_api_termination()
        .and_then(|v| v.value())
        .unwrap_or(false);
    let stop = attribute(InstanceAttributeName::DisableApiStop)
        .await
        .map_err(|e| aws_error("DescribeInstanceAttribute(disableApiStop)", e))?;
    source.disable_api_stop = stop
        .disable_api_stop()
        .and_then(|v| v.value())
        .unwrap_or(false);

    if plan::is_burstable_type(&source.instance_type) {
        let out = ec2
            .describe_instance_credit_specifications()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| aws_error("DescribeInstanceCreditSpecifications", e))?;
        source.cpu_credits = out
            .instance_credit_specifications()
            .first()
            .and_then(|c| c.cpu_credits())
            .map(str::to_string);
    }

    let addresses = ec2
        .describe_addresses()
        .filters(filter("instance-id", instance_id))
        .send()
        .await
        .map_err(|e| aws_error("DescribeAddresses", e))?;
    source.elastic_ips = addresses
        .addresses()
        .iter()
        .filter_map(|a| {
            Some(ElasticIp {
                allocation_id: a.allocation_id()?.to_string(),
                public_ip: a.public_ip().unwrap_or_default().to_string(),
                private_ip: a.private_ip_address().map(str::to_string),
            })
        })
        .collect();
    Ok(source)
}

/// The parts of DescribeInstances' answer that ferry keeps.
pub fn source_from_instance(i: &Instance) -> SourceInstance {
    let s = |v: Option<&str>| v.unwrap_or_default().to_string();
    let placement = i.placement();
    let interfaces = i.network_interfaces();
    SourceInstance {
        instance_id: s(i.instance_id()),
        state: describe::state_name(i),
        availability_zone: s(placement.and_then(|p| p.availability_zone())),
        subnet_id: s(i.subnet_id()),
        vpc_id: s(i.vpc_id()),
        instance_type: i
            .instance_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        root_device_type: i
            .root_device_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        root_device_name: i.root_device_name().map(str::to_string),
        image_id: i.image_id().map(str::to_string),
        private_ip: i.private_ip_address().map(str::to_string),
        public_ip: i.public_ip_address().map(str::to_string),
        security_group_ids: i
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_string))
            .collect(),
        iam_instance_profile_arn: i
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .map(str::to_string),
        key_name: i.key_name().map(str::to_string),
        tags: tag_map(i.tags()),
        volumes: i
            .block_device_mappings()
            .iter()
            .filter_map(|m| {
                let ebs = m.ebs()?;
                Some(SourceVolume {
                    device_name: m.device_name()?.to_string(),
                    volume_id: ebs.volume_id()?.to_string(),
                    delete_on_termination: ebs.delete_on_termination().unwrap_or(false),
                    ..Default::default()
                })
            })
            .collect(),
        metadata_options: i.metadata_options().map(|m| MetadataOptions {
            http_tokens: m.http_tokens().map(|v| v.as_str().to_string()),
            http_put_response_hop_limit: m.http_put_response_hop_limit(),
            http_endpoint: m.http_endpoint().map(|v| v.as_str().to_string()),
            http_protocol_ipv6: m.http_protocol_ipv6().map(|v| v.as_str().to_string()),
            instance_metadata_tags: m.instance_metadata_tags().map(|v| v.as_str().to_string()),
        }),
        monitoring_enabled: i
            .monitoring()
            .and_then(|m| m.state())
            .is_some_and(|s| matches!(s.as_str(), "enabled" | "pending")),
        user_data: None,
        disable_api_termination: false,
        disable_api_stop: false,
        ebs_optimized: i.ebs_optimized().unwrap_or(false),
        cpu_credits: None,
        tenancy: placement
            .and_then(|p| p.tenancy())
            .map(|t| t.as_str().to_string()),
        placement_group: placement
            .and_then(|p| p.group_name())
            .filter(|g| !g.is_empty())
            .map(str::to_string),
        placement_group_strategy: None,
        cpu_options: i.cpu_options().map(|c| CpuOptions {
            core_count: c.core_count(),
            threads_per_core: c.threads_per_core(),
        }),
        type_cpu: None,
        hibernation_configured: i
            .hibernation_options()
            .and_then(|h| h.configured())
            .unwrap_or(false),
        instance_lifecycle: i.instance_lifecycle().map(|l| l.as_str().to_string()),
        network_interface_count: interfaces.len(),
        secondary_private_ip_count: interfaces
            .iter()
            .map(|n| {
                n.private_ip_addresses()
                    .iter()
                    .filter(|a| a.primary() != Some(true))
                    .count()
            })
            .sum(),
        elastic_ips: Vec::new(),
    }
}

pub async fn describe_subnet(ec2: &Client, subnet_id: &str) -> Result<TargetSubnet, FerryError> {
    let not_found = || {
        FerryError::new(
            ErrorName::SubnetNotFound,
            format!("subnet {subnet_id} does not exist"),
        )
    };
    let out = ec2
        .describe_subnets()
        .subnet_ids(subnet_id)
        .send()
        .await
        .map_err(|e| {
            aws_error_with(
                "DescribeSubnets",
                e,
                &[
                    ("InvalidSubnetID.NotFound", ErrorName::SubnetNotFound),
                    ("InvalidSubnetID.Malformed", ErrorName::SubnetNotFound),
                ],
            )
        })?;
    let subnet = out.subnets().first().ok_or_else(not_found)?;
    Ok(TargetSubnet {
        subnet_id: subnet_id.to_string(),
        availability_zone: subnet.availability_zone().unwrap_or_default().to_string(),
        vpc_id: subnet.vpc_id().unwrap_or_default().to_string(),
    })
}

pub async fn describe_security_groups(
    ec2: &Client,
    ids: &[String],
) -> Result<Vec<SecurityGroupRef>, FerryError> {
    let out = ec2
        .describe_security_groups()
        .set_group_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| {
            aws_error_with(
                "DescribeSecurityGroups",
                e,
                &[
                    ("InvalidGroup.NotFound", ErrorName::SecurityGroupNotFound),
                    ("InvalidGroupId.Malformed", ErrorName::SecurityGroupNotFound),
                ],
            )
        })?;
    let found: Vec<SecurityGroupRef> = out
        .security_groups()
        .iter()
        .filter_map(|g| {
            Some(SecurityGroupRef {
                group_id: g.group_id()?.to_string(),
                vpc_id: g.vpc_id().unwrap_or_default().to_string(),
            })
        })
        .collect();
    if let Some(missing) = ids
        .iter()
        .find(|id| !found.iter().any(|g| &g.group_id == *id))
    {
        return Err(FerryError::new(
            ErrorName::SecurityGroupNotFound,
            format!("security group {missing} does not exist"),
        ));
    }
    Ok(ids
        .iter()
        .filter_map(|id| found.iter().find(|g| &g.group_id == id).cloned())
        .collect())
}

/// Rule 12: DescribeInstanceTypeOfferings for one type in one AZ.
pub async fn offered_types(
    ec2: &Client,
    instance_type: &str,
    az: &str,
) -> Result<Vec<String>, FerryError> {
    let out = ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZone)
        .filters(filter("location", az))
        .filters(filter("instance-type", instance_type))
        .send()
        .await
        .map_err(|e| aws_error("DescribeInstanceTypeOfferings", e))?;
    Ok(out
        .instance_type_offerings()
        .iter()
        .filter_map(|o| o.instance_type().map(|t| t.as_str().to_string()))
        .collect())
}
