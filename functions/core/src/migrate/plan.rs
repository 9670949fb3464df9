//! The migration plan: everything later steps need, decided once by preflight.

use super::refusals;
use super::request::MigrateRequest;
use super::source::{
    CpuOptions, ElasticIp, MetadataOptions, SecurityGroupRef, SourceInstance, TargetSubnet, TypeCpu,
};
use super::WORKFLOW_MIGRATE_INSTANCE;
use crate::errors::{ErrorName, FerryError};
use crate::names::{self, ExecutionContext};
use crate::tags;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationPlan {
    pub workflow: String,
    pub execution: ExecutionContext,
    pub request: MigrateRequest,
    pub source: SourceSummary,
    pub target: TargetSubnet,
    pub image: ImagePlan,
    pub launch: LaunchSpec,
    /// This run stops a running source before imaging (and rollback starts it again).
    pub stops_source: bool,
    /// Tags on everything this run creates; cleanup and rollback search by them.
    pub ferry_tags: BTreeMap<String, String>,
    /// What the operator should know: what changes and what cannot be guaranteed.
    pub warnings: Vec<String>,
    /// `dryRun` of the request: the state machine ends after Preflight with the plan
    /// (`DryRun?` reads this flag).
    #[serde(default)]
    pub dry_run: bool,
}

/// What later steps need to know about the source as it was at preflight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceSummary {
    pub instance_id: String,
    pub state: String,
    pub availability_zone: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub elastic_ips: Vec<ElasticIp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePlan {
    pub name: String,
    pub description: String,
    pub no_reboot: bool,
    /// Tags for the image and its snapshots.
    pub tags: BTreeMap<String, String>,
}

/// Everything RunInstances needs to recreate the source in the target subnet (rule 14).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchSpec {
    pub client_token: String,
    pub instance_type: String,
    pub subnet_id: String,
    pub security_group_ids: Vec<String>,
    /// The source had an auto-assigned public IP (not an Elastic IP): ask for one again.
    pub associate_public_ip: bool,
    pub iam_instance_profile_arn: Option<String>,
    pub key_name: Option<String>,
    pub volumes: Vec<LaunchVolume>,
    pub metadata_options: Option<MetadataOptions>,
    pub monitoring_enabled: bool,
    pub user_data: Option<String>,
    pub ebs_optimized: bool,
    pub cpu_credits: Option<String>,
    pub tenancy: Option<String>,
    pub placement_group: Option<String>,
    pub cpu_options: Option<CpuOptions>,
    pub hibernation_configured: bool,
    /// Applied by finalize after verification, so that rollback can always terminate.
    pub disable_api_termination: bool,
    pub disable_api_stop: bool,
    pub instance_tags: BTreeMap<String, String>,
    pub volume_tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchVolume {
    pub device_name: String,
    pub source_volume_id: String,
    pub volume_type: String,
    pub size_gib: i32,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub delete_on_termination: bool,
    /// The source volume's own tags, put on the new volume by finalize.
    pub tags: BTreeMap<String, String>,
}

/// Builds the plan, running every preflight refusal in a fixed order.
///
/// `security_groups` are the groups the new instance will use, with their VPCs;
/// `offered_types` is DescribeInstanceTypeOfferings for the chosen type in the target AZ.
pub fn build_plan(
    execution: &ExecutionContext,
    request: &MigrateRequest,
    source: &SourceInstance,
    target: &TargetSubnet,
    security_groups: &[SecurityGroupRef],
    offered_types: &[String],
) -> Result<MigrationPlan, FerryError> {
    let id = source.instance_id.as_str();
    refusals::check_source_state(id, &source.state)?;
    refusals::check_root_device_is_ebs(id, &source.root_device_type)?;
    refusals::check_target_az_differs(
        &source.availability_zone,
        &target.subnet_id,
        &target.availability_zone,
    )?;
    let groups: Vec<(String, String)> = security_groups
        .iter()
        .map(|g| (g.group_id.clone(), g.vpc_id.clone()))
        .collect();
    refusals::check_security_groups_in_vpc(&groups, &target.subnet_id, &target.vpc_id)?;
    refusals::check_supported_layout(source)?;
    let instance_type = request
        .instance_type
        .clone()
        .unwrap_or_else(|| source.instance_type.clone());
    refusals::check_type_offered(&instance_type, &target.availability_zone, offered_types)?;
    refusals::check_source_protection(
        id,
        request.stop_source,
        request.source_action,
        source.disable_api_termination,
        source.disable_api_stop,
    )?;

    let ferry_tags = tags::ferry_tags(WORKFLOW_MIGRATE_INSTANCE, &execution.execution_arn, id);
    let mut instance_tags: BTreeMap<String, String> = source
        .tags
        .iter()
        .filter(|(k, _)| tags::is_settable_tag_key(k) && !k.starts_with(tags::FERRY_TAG_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let in_flight = (tags::TAG_IN_FLIGHT.to_string(), "true".to_string());
    instance_tags.extend(request.tags.clone());
    instance_tags.extend(ferry_tags.clone());
    instance_tags.insert(in_flight.0.clone(), in_flight.1.clone());
    let too_many =
        |e: String| -> FerryError { FerryError::new(ErrorName::UnsupportedConfiguration, e) };
    tags::check_tag_count("the new instance", &instance_tags).map_err(too_many)?;
    let mut created_tags = request.tags.clone();
    created_tags.extend(ferry_tags.clone());
    let mut image_tags = created_tags.clone();
    image_tags.insert(in_flight.0, in_flight.1);
    tags::check_tag_count("the image and its snapshots", &image_tags).map_err(too_many)?;

    let stops_source = request.stop_source && source.state == "running";
    let type_changed = instance_type != source.instance_type;
    let has_eip_on_primary = source
        .elastic_ips
        .iter()
        .any(|e| e.private_ip == source.private_ip);
    let image_name = names::migration_image_name(id, execution);

    let mut warnings = vec![format!(
        "the new instance gets a new private IP in {} (was {})",
        target.subnet_id,
        source.private_ip.as_deref().unwrap_or("none")
    )];
    if request.no_reboot && source.state == "running" && !stops_source {
        warnings.push("noReboot: file system integrity on the image can't be guaranteed".into());
    }
    if source.state == "running" && !stops_source {
        // The image is a point in time of a running source: what the source writes after
        // CreateImage (or during a noReboot capture) is not on the new instance.
        warnings.push(format!(
            "{id} keeps running while it is imaged: data written to it after the image is taken is not on the new instance (stopSource: true avoids that)"
        ));
    }
    if source.public_ip.is_some() && !has_eip_on_primary {
        warnings.push(
            "the source's public IP is not an Elastic IP: the new instance gets a different one"
                .into(),
        );
    }
    if !source.elastic_ips.is_empty() && !request.move_elastic_ip {
        warnings.push("moveElasticIp is false: the Elastic IPs stay with the source".into());
    }
    if !type_changed && source.cpu_options.is_some() && source.type_cpu.is_none() {
        warnings.push(format!(
            "the CPU facts of {instance_type} were not read: the new instance gets its default CPU options"
        ));
    }
    if type_changed && (source.cpu_credits.is_some() || source.cpu_options.is_some()) {
        warnings.push(format!(
            "instanceType changes to {instance_type}: the source's CPU credit and CPU options are not carried"
        ));
    }

    let volumes: Vec<LaunchVolume> = source
        .volumes
        .iter()
        .map(|v| LaunchVolume {
            device_name: v.device_name.clone(),
            source_volume_id: v.volume_id.clone(),
            volume_type: v.volume_type.clone(),
            size_gib: v.size_gib,
            iops: v.iops.filter(|_| volume_type_takes_iops(&v.volume_type)),
            throughput: v.throughput.filter(|_| v.volume_type == "gp3"),
            encrypted: v.encrypted,
            kms_key_id: v.kms_key_id.clone().filter(|_| v.encrypted),
            delete_on_termination: v.delete_on_termination,
            tags: v
                .tags
                .iter()
                .filter(|(k, _)| {
                    tags::is_settable_tag_key(k) && !k.starts_with(tags::FERRY_TAG_PREFIX)
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
        .collect();

    for v in &volumes {
        let mut all = created_tags.clone();
        all.extend(v.tags.clone());
        tags::check_tag_count(&format!("the new volume at {}", v.device_name), &all)
            .map_err(too_many)?;
    }
    let launch = LaunchSpec {
        client_token: names::client_token(&execution.execution_arn, "run-instances"),
        instance_type: instance_type.clone(),
        subnet_id: target.subnet_id.clone(),
        security_group_ids: security_groups.iter().map(|g| g.group_id.clone()).collect(),
        associate_public_ip: source.public_ip.is_some() && !has_eip_on_primary,
        iam_instance_profile_arn: source.iam_instance_profile_arn.clone(),
        key_name: source.key_name.clone(),
        volumes,
        metadata_options: source.metadata_options.clone(),
        monitoring_enabled: source.monitoring_enabled,
        user_data: source.user_data.clone(),
        ebs_optimized: source.ebs_optimized,
        cpu_credits: source
            .cpu_credits
            .clone()
            .filter(|_| is_burstable_type(&instance_type)),
        tenancy: source.tenancy.clone().filter(|t| t != "default"),
        placement_group: source.placement_group.clone(),
        cpu_options: if type_changed {
            None
        } else {
            cpu_options_to_send(source.cpu_options.as_ref(), source.type_cpu.as_ref())
        },
        hibernation_configured: source.hibernation_configured,
        disable_api_termination: source.disable_api_termination,
        disable_api_stop: source.disable_api_stop,
        instance_tags,
        volume_tags: created_tags.clone(),
    };

    Ok(MigrationPlan {
        workflow: WORKFLOW_MIGRATE_INSTANCE.to_string(),
        execution: execution.clone(),
        request: request.clone(),
        source: SourceSummary {
            instance_id: id.to_string(),
            state: source.state.clone(),
            availability_zone: source.availability_zone.clone(),
            subnet_id: source.subnet_id.clone(),
            vpc_id: source.vpc_id.clone(),
            private_ip: source.private_ip.clone(),
            public_ip: source.public_ip.clone(),
            elastic_ips: source.elastic_ips.clone(),
        },
        target: target.clone(),
        image: ImagePlan {
            description: format!(
                "ferry migrate-instance of {id} from {} to {} ({})",
                source.availability_zone, target.availability_zone, execution.execution_name
            ),
            name: image_name,
            no_reboot: create_image_no_reboot(
                request.no_reboot,
                if stops_source {
                    "stopped"
                } else {
                    &source.state
                },
            ),
            tags: image_tags,
        },
        launch,
        stops_source,
        ferry_tags,
        warnings,
        dry_run: request.dry_run,
    })
}

/// Rule 22 (EC2 User Guide, "Rules for specifying CPU options" and "Supported CPU options
/// for Amazon EC2 instance types"): RunInstances takes `CpuOptions` only for a type that
/// lists valid core counts (not T2 and other older types, never bare metal:
/// `UnsupportedOperation` otherwise), and they matter only when they differ from the type's
/// default. So the source's CPU options are sent only then; otherwise the type's defaults,
/// which the source had, apply. Unknown type facts send nothing.
pub fn cpu_options_to_send(
    source: Option<&CpuOptions>,
    type_cpu: Option<&TypeCpu>,
) -> Option<CpuOptions> {
    let (source, cpu) = (source?, type_cpu?);
    if cpu.bare_metal || cpu.valid_cores.is_empty() {
        return None;
    }
    let default = CpuOptions {
        core_count: cpu.default_cores,
        threads_per_core: cpu.default_threads_per_core,
    };
    let same = source.core_count.or(default.core_count) == default.core_count
        && source.threads_per_core.or(default.threads_per_core) == default.threads_per_core;
    (!same).then(|| source.clone())
}

/// io1, io2 and gp3 take an explicit IOPS value; gp2's is derived from its size.
pub fn volume_type_takes_iops(volume_type: &str) -> bool {
    matches!(volume_type, "io1" | "io2" | "gp3")
}

/// Rule 10: CreateImage reboots unless `NoReboot`. A stopped source needs no reboot.
pub fn create_image_no_reboot(requested_no_reboot: bool, source_state: &str) -> bool {
    requested_no_reboot || source_state == "stopped"
}

/// Burstable (T) types carry a CPU credit specification (`standard`/`unlimited`).
pub fn is_burstable_type(instance_type: &str) -> bool {
    matches!(
        instance_type.split('.').next(),
        Some("t1" | "t2" | "t3" | "t3a" | "t4g")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::fixtures::*;
    use serde_json::json;

    #[test]
    fn plan_carries_every_attribute_of_the_source() {
        let s = web_server();
        let p = plan_for(&request(json!({"tags": {"change": "CHG-42"}})), &s).unwrap();
        let l = &p.launch;
        assert_eq!(l.instance_type, "t3.large");
        assert_eq!(l.subnet_id, "subnet-0bbb2222cccc33334");
        assert_eq!(l.security_group_ids, s.security_group_ids);
        assert_eq!(
            l.iam_instance_profile_arn.as_deref(),
            Some("arn:aws:iam::111122223333:instance-profile/web")
        );
        assert_eq!(l.key_name.as_deref(), Some("ops-2026"));
        assert_eq!(
            l.metadata_options.as_ref().unwrap().http_tokens.as_deref(),
            Some("required")
        );
        assert!(l.monitoring_enabled && l.ebs_optimized);
        assert_eq!(l.user_data, s.user_data);
        assert_eq!(l.cpu_credits.as_deref(), Some("unlimited"));
        assert_eq!(l.cpu_options, s.cpu_options);
        assert_eq!(l.tenancy, None, "default tenancy is not sent");
        assert!(l.disable_api_termination && !l.disable_api_stop);
        assert!(
            !l.associate_public_ip,
            "the public IP is an EIP: it is moved, not re-requested"
        );
        // volumes: type, size, iops, throughput, encryption and key, delete-on-termination
        let root = &l.volumes[0];
        assert_eq!(
            (
                root.device_name.as_str(),
                root.volume_type.as_str(),
                root.size_gib
            ),
            ("/dev/xvda", "gp3", 30)
        );
        assert_eq!((root.iops, root.throughput), (Some(4000), Some(250)));
        assert!(root.encrypted && root.delete_on_termination);
        assert_eq!(root.kms_key_id.as_deref(), Some(CMK));
        assert_eq!(root.tags["Name"], "web-1-root");
        let data = &l.volumes[1];
        assert_eq!(
            (
                data.volume_type.as_str(),
                data.size_gib,
                data.iops,
                data.throughput
            ),
            ("io2", 200, Some(10000), None)
        );
        assert!(!data.delete_on_termination);
        // tags: the source's settable tags, the request's, ferry's
        assert_eq!(l.instance_tags["Name"], "web-1");
        assert_eq!(l.instance_tags["change"], "CHG-42");
        assert_eq!(
            l.instance_tags["ferry:source-instance"],
            "i-0a1b2c3d4e5f60718"
        );
        assert!(!l
            .instance_tags
            .contains_key("aws:cloudformation:stack-name"));
        assert_eq!(l.volume_tags["ferry:workflow"], "migrate-instance");
        assert_eq!(p.image.tags["change"], "CHG-42");
        assert_eq!(p.image.tags["ferry:execution"], execution().execution_arn);
        // in flight until Finalize: the instance, image and snapshots, not the volumes
        assert_eq!(l.instance_tags["ferry:in-flight"], "true");
        assert_eq!(p.image.tags["ferry:in-flight"], "true");
        assert!(!l.volume_tags.contains_key("ferry:in-flight"));
        assert!(
            !p.image.no_reboot,
            "CreateImage reboots a running source by default"
        );
        assert_eq!(p.source.elastic_ips.len(), 1);
        assert!(!p.stops_source);
    }

    #[test]
    fn every_resource_ferry_tags_stays_within_fifty_tags() {
        let many = |n: usize| -> BTreeMap<String, String> {
            (0..n).map(|i| (format!("t{i}"), "v".to_string())).collect()
        };
        // The instance: the source's tags, the request's and ferry's 4, up to 50.
        let req = request(json!({"tags": {"change": "CHG-42"}}));
        let mut s = web_server();
        s.tags.clear();
        let base = plan_for(&req, &s).unwrap().launch.instance_tags.len();
        s.tags = many(50 - base);
        assert!(plan_for(&req, &s).is_ok());
        s.tags = many(51 - base);
        let e = plan_for(&req, &s).unwrap_err();
        assert!(
            e.message.contains("the new instance would carry 51 tags"),
            "{}",
            e.message
        );
        // A volume: its source volume's tags plus the request's and ferry's 3.
        let mut s = web_server();
        s.volumes[0].tags = many(47);
        let e = plan_for(&request(json!({"tags": {"change": "CHG-42"}})), &s).unwrap_err();
        assert!(e.message.contains("the new volume at"), "{}", e.message);
        // The image and snapshots carry the request's tags and ferry's 4, a subset of the
        // instance's: checked too, never the first to exceed.
        let p = plan_for(&req, &web_server()).unwrap();
        assert!(p
            .image
            .tags
            .iter()
            .all(|(k, v)| p.launch.instance_tags.get(k) == Some(v)));
    }

    #[test]
    fn plan_is_deterministic_per_execution() {
        let s = web_server();
        let a = plan_for(&request(json!({})), &s).unwrap();
        let b = plan_for(&request(json!({})), &s).unwrap();
        assert_eq!(a, b);
        assert!(a.launch.client_token.len() <= 64);
    }

    #[test]
    fn cpu_options_are_sent_only_where_the_type_takes_them_and_they_are_not_its_default() {
        let cpu = |cores, threads| CpuOptions {
            core_count: Some(cores),
            threads_per_core: Some(threads),
        };
        let t3 = TypeCpu {
            default_cores: Some(1),
            default_threads_per_core: Some(2),
            valid_cores: vec![1],
            valid_threads_per_core: vec![1, 2],
            bare_metal: false,
        };
        // t3 with SMT off: carried; t3 at its default: nothing to send.
        assert_eq!(
            cpu_options_to_send(Some(&cpu(1, 1)), Some(&t3)),
            Some(cpu(1, 1))
        );
        assert_eq!(cpu_options_to_send(Some(&cpu(1, 2)), Some(&t3)), None);
        // T2 lists no valid cores: CpuOptions would be UnsupportedOperation.
        let t2 = TypeCpu {
            default_cores: Some(1),
            default_threads_per_core: Some(1),
            ..Default::default()
        };
        assert_eq!(cpu_options_to_send(Some(&cpu(1, 1)), Some(&t2)), None);
        let metal = TypeCpu {
            bare_metal: true,
            ..t3.clone()
        };
        assert_eq!(cpu_options_to_send(Some(&cpu(1, 1)), Some(&metal)), None);
        // Nothing reported or nothing known: nothing sent.
        assert_eq!(cpu_options_to_send(None, Some(&t3)), None);
        assert_eq!(cpu_options_to_send(Some(&cpu(1, 1)), None), None);
    }

    #[test]
    fn a_source_without_type_facts_launches_with_defaults_and_says_so() {
        let mut s = web_server();
        s.type_cpu = None;
        let p = plan_for(&request(json!({})), &s).unwrap();
        assert_eq!(p.launch.cpu_options, None);
        assert!(
            p.warnings.iter().any(|w| w.contains("CPU facts")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn type_override_drops_credit_and_cpu_options() {
        let p = plan_for(
            &request(json!({"instanceType": "m7i.large"})),
            &web_server(),
        )
        .unwrap();
        assert_eq!(p.launch.instance_type, "m7i.large");
        assert_eq!(p.launch.cpu_credits, None);
        assert_eq!(p.launch.cpu_options, None);
        assert!(p.warnings.iter().any(|w| w.contains("m7i.large")));
    }

    #[test]
    fn stop_source_means_no_reboot_needed_and_rollback_restart() {
        let p = plan_for(&request(json!({"stopSource": true})), &web_server()).unwrap();
        assert!(p.stops_source && p.image.no_reboot);
        let mut stopped = web_server();
        stopped.state = "stopped".into();
        let p = plan_for(&request(json!({"stopSource": true})), &stopped).unwrap();
        assert!(
            !p.stops_source,
            "an already stopped source is not ours to restart"
        );
    }

    #[test]
    fn a_running_source_not_stopped_is_warned_about_writes_after_imaging() {
        let lost = |p: &MigrationPlan| {
            p.warnings
                .iter()
                .any(|w| w.contains("written to it after the image"))
        };
        assert!(lost(&plan_for(&request(json!({})), &web_server()).unwrap()));
        assert!(!lost(
            &plan_for(&request(json!({"stopSource": true})), &web_server()).unwrap()
        ));
        let mut stopped = web_server();
        stopped.state = "stopped".into();
        assert!(!lost(&plan_for(&request(json!({})), &stopped).unwrap()));
    }

    #[test]
    fn auto_assigned_public_ip_is_requested_again() {
        let mut s = web_server();
        s.elastic_ips.clear();
        let p = plan_for(&request(json!({})), &s).unwrap();
        assert!(p.launch.associate_public_ip);
        assert!(p.warnings.iter().any(|w| w.contains("public IP")));
    }

    #[test]
    fn gp2_and_unencrypted_volumes_send_no_iops_or_key() {
        let mut s = web_server();
        s.volumes[0].volume_type = "gp2".into();
        s.volumes[0].throughput = None;
        s.volumes[0].encrypted = false;
        let p = plan_for(&request(json!({})), &s).unwrap();
        let root = &p.launch.volumes[0];
        assert_eq!(
            (root.iops, root.throughput, root.kms_key_id.as_deref()),
            (None, None, None)
        );
    }

    #[test]
    fn plan_round_trips_through_json() {
        let p = plan_for(&request(json!({})), &web_server()).unwrap();
        let back: MigrationPlan =
            serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(p, back);
    }

    #[test]
    fn no_reboot() {
        assert!(!create_image_no_reboot(false, "running"));
        assert!(create_image_no_reboot(true, "running"));
        assert!(create_image_no_reboot(false, "stopped"));
    }

    #[test]
    fn burstable() {
        assert!(is_burstable_type("t3.micro"));
        assert!(is_burstable_type("t4g.nano"));
        assert!(!is_burstable_type("m5.large"));
        assert!(!is_burstable_type("trn1.2xlarge"));
    }
}
