//! What a migrate-instance dry run reports: the image it would create, the instance it
//! would launch, and what would happen to the source, from the plan Preflight built.

use super::plan::MigrationPlan;
use super::request::SourceAction;
use super::source::MetadataOptions;
use super::WORKFLOW_MIGRATE_INSTANCE;
use crate::dry_run::DryRunReport;
use crate::tags::TAG_IN_FLIGHT;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The execution's output in a dry run.
pub type MigrationDryRunReport = DryRunReport<MigrationDryRun>;

/// `plan` of a migrate-instance dry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationDryRun {
    pub source: SourceFate,
    pub image: ImageToCreate,
    pub instance: InstanceToLaunch,
}

/// What would happen to the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceFate {
    pub instance_id: String,
    pub state: String,
    pub availability_zone: String,
    pub subnet_id: String,
    pub private_ip: Option<String>,
    /// `stopSource` on a running source: stopped before imaging (started again by a
    /// rollback).
    pub stopped_before_imaging: bool,
    /// CreateImage reboots it (a running source without `noReboot` or `stopSource`).
    pub rebooted_for_image: bool,
    /// Its Elastic IPs (public IPs) re-associated with the new instance.
    pub elastic_ips_moved: Vec<String>,
    /// Applied last, once the new instance is verified.
    pub source_action: SourceAction,
}

/// The intermediate AMI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageToCreate {
    pub name: String,
    pub description: String,
    pub no_reboot: bool,
    /// `keepImage`: kept; else deregistered with its snapshots at the end.
    pub kept: bool,
    /// On the image and its snapshots (ferry's own, and `tags` of the request).
    pub tags: BTreeMap<String, String>,
}

/// The new instance, as RunInstances would launch it and Finalize would leave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceToLaunch {
    pub subnet_id: String,
    pub availability_zone: String,
    pub vpc_id: String,
    pub instance_type: String,
    pub security_group_ids: Vec<String>,
    pub iam_instance_profile_arn: Option<String>,
    pub key_name: Option<String>,
    /// A new auto-assigned public IP (the source had one that was not an Elastic IP).
    pub associate_public_ip: bool,
    pub metadata_options: Option<MetadataOptions>,
    pub monitoring_enabled: bool,
    pub ebs_optimized: bool,
    pub cpu_credits: Option<String>,
    pub tenancy: Option<String>,
    pub placement_group: Option<String>,
    /// The source's user data is carried (not repeated here).
    pub user_data: bool,
    pub termination_protection: bool,
    pub stop_protection: bool,
    pub volumes: Vec<VolumeToCreate>,
    /// The tags it ends with: the source's, the request's and ferry's.
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeToCreate {
    pub device_name: String,
    pub volume_type: String,
    pub size_gib: i32,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub delete_on_termination: bool,
    /// The tags it ends with: ferry's, the request's and its source volume's.
    pub tags: BTreeMap<String, String>,
}

/// The dry-run report of a plan: what the run would create and change.
pub fn dry_run_report(plan: &MigrationPlan) -> MigrationDryRunReport {
    let without_in_flight = |tags: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        tags.iter()
            .filter(|(k, _)| k.as_str() != TAG_IN_FLIGHT)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let l = &plan.launch;
    let r = &plan.request;
    let source = SourceFate {
        instance_id: plan.source.instance_id.clone(),
        state: plan.source.state.clone(),
        availability_zone: plan.source.availability_zone.clone(),
        subnet_id: plan.source.subnet_id.clone(),
        private_ip: plan.source.private_ip.clone(),
        stopped_before_imaging: plan.stops_source,
        rebooted_for_image: !plan.image.no_reboot,
        elastic_ips_moved: if r.move_elastic_ip {
            plan.source
                .elastic_ips
                .iter()
                .map(|e| e.public_ip.clone())
                .collect()
        } else {
            Vec::new()
        },
        source_action: r.source_action,
    };
    let image = ImageToCreate {
        name: plan.image.name.clone(),
        description: plan.image.description.clone(),
        no_reboot: plan.image.no_reboot,
        kept: r.keep_image,
        tags: plan.image.tags.clone(),
    };
    let volumes = l
        .volumes
        .iter()
        .map(|v| {
            let mut tags = l.volume_tags.clone();
            tags.extend(v.tags.clone());
            VolumeToCreate {
                device_name: v.device_name.clone(),
                volume_type: v.volume_type.clone(),
                size_gib: v.size_gib,
                iops: v.iops,
                throughput: v.throughput,
                encrypted: v.encrypted,
                kms_key_id: v.kms_key_id.clone(),
                delete_on_termination: v.delete_on_termination,
                tags,
            }
        })
        .collect();
    let instance = InstanceToLaunch {
        subnet_id: l.subnet_id.clone(),
        availability_zone: plan.target.availability_zone.clone(),
        vpc_id: plan.target.vpc_id.clone(),
        instance_type: l.instance_type.clone(),
        security_group_ids: l.security_group_ids.clone(),
        iam_instance_profile_arn: l.iam_instance_profile_arn.clone(),
        key_name: l.key_name.clone(),
        associate_public_ip: l.associate_public_ip,
        metadata_options: l.metadata_options.clone(),
        monitoring_enabled: l.monitoring_enabled,
        ebs_optimized: l.ebs_optimized,
        cpu_credits: l.cpu_credits.clone(),
        tenancy: l.tenancy.clone(),
        placement_group: l.placement_group.clone(),
        user_data: l.user_data.is_some(),
        termination_protection: l.disable_api_termination,
        stop_protection: l.disable_api_stop,
        volumes,
        tags: without_in_flight(&l.instance_tags),
    };
    DryRunReport::new(
        WORKFLOW_MIGRATE_INSTANCE,
        MigrationDryRun {
            source,
            image,
            instance,
        },
        plan.warnings.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::fixtures::*;
    use serde_json::json;

    #[test]
    fn the_report_says_what_would_be_created_and_what_happens_to_the_source() {
        let s = web_server();
        let p = plan_for(
            &request(
                json!({"dryRun": true, "stopSource": true, "sourceAction": "stop",
                            "tags": {"change": "CHG-42"}}),
            ),
            &s,
        )
        .unwrap();
        assert!(p.dry_run);
        let r = dry_run_report(&p);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["dryRun"], true);
        assert_eq!(v["workflow"], "migrate-instance");
        assert_eq!(v["warnings"], json!(p.warnings));
        let plan = &v["plan"];
        // the source
        assert_eq!(plan["source"]["instanceId"], "i-0a1b2c3d4e5f60718");
        assert_eq!(plan["source"]["stoppedBeforeImaging"], true);
        assert_eq!(plan["source"]["rebootedForImage"], false);
        assert_eq!(plan["source"]["sourceAction"], "stop");
        assert_eq!(plan["source"]["elasticIpsMoved"], json!(["34.250.10.20"]));
        // the image
        assert_eq!(plan["image"]["name"], json!(p.image.name));
        assert_eq!(plan["image"]["kept"], false);
        assert_eq!(plan["image"]["tags"]["change"], "CHG-42");
        // the instance: subnet, AZ, type, groups, tags, volumes
        let i = &plan["instance"];
        assert_eq!(i["subnetId"], "subnet-0bbb2222cccc33334");
        assert_eq!(i["availabilityZone"], "eu-west-1b");
        assert_eq!(i["instanceType"], "t3.large");
        assert_eq!(i["securityGroupIds"], json!(s.security_group_ids));
        assert_eq!(i["tags"]["Name"], "web-1");
        assert_eq!(i["tags"]["change"], "CHG-42");
        assert_eq!(i["tags"]["ferry:workflow"], "migrate-instance");
        assert!(i["tags"].get("ferry:in-flight").is_none(), "{i}");
        assert_eq!(i["userData"], true);
        assert_eq!(i["terminationProtection"], true);
        assert_eq!(i["volumes"][0]["deviceName"], "/dev/xvda");
        assert_eq!(i["volumes"][0]["kmsKeyId"], CMK);
        assert_eq!(i["volumes"][0]["tags"]["Name"], "web-1-root");
        assert_eq!(i["volumes"][0]["tags"]["change"], "CHG-42");
        assert!(v.to_string().len() < 8 * 1024);
        // the report reads back (a CLI can parse it)
        let back: MigrationDryRunReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn elastic_ips_stay_and_the_image_is_kept_when_asked() {
        let p = plan_for(
            &request(json!({"dryRun": true, "moveElasticIp": false, "keepImage": true})),
            &web_server(),
        )
        .unwrap();
        let r = dry_run_report(&p);
        assert!(r.plan.source.elastic_ips_moved.is_empty());
        assert!(r.plan.image.kept);
        assert!(r.plan.source.rebooted_for_image);
        assert_eq!(r.plan.source.source_action, SourceAction::Keep);
        // a plan that is not a dry run says so
        assert!(
            !plan_for(&request(json!({})), &web_server())
                .unwrap()
                .dry_run
        );
    }
}
