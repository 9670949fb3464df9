//! The AWS rules that refuse a migration before any change: the source's state, root
//! device, protection and layout, the target subnet's AZ and VPC, the type's offering.

use super::request::SourceAction;
use super::source::SourceInstance;
use crate::errors::{ErrorName, FerryError};

/// Only a `running` or `stopped` instance can be imaged and moved.
pub fn check_source_state(instance_id: &str, state: &str) -> Result<(), FerryError> {
    match state {
        "running" | "stopped" => Ok(()),
        other => Err(FerryError::new(
            ErrorName::InvalidInstanceState,
            format!("{instance_id} is {other}; it must be running or stopped"),
        )),
    }
}

/// Rule 11: instance-store volumes are not captured in an AMI; the root must be EBS.
pub fn check_root_device_is_ebs(
    instance_id: &str,
    root_device_type: &str,
) -> Result<(), FerryError> {
    if root_device_type == "ebs" {
        Ok(())
    } else {
        Err(FerryError::new(
            ErrorName::UnsupportedRootDevice,
            format!(
                "{instance_id} has an {root_device_type} root device; only EBS-backed instances can be imaged and moved"
            ),
        ))
    }
}

/// The point of the move: the target subnet must be in another AZ.
pub fn check_target_az_differs(
    source_az: &str,
    subnet_id: &str,
    target_az: &str,
) -> Result<(), FerryError> {
    if source_az != target_az {
        Ok(())
    } else {
        Err(FerryError::new(
            ErrorName::SameAvailabilityZone,
            format!(
                "{subnet_id} is in {target_az}, the source's own AZ; choose a subnet in another AZ"
            ),
        ))
    }
}

/// Security groups belong to a VPC: the new instance's groups must be in the subnet's VPC.
pub fn check_security_groups_in_vpc(
    groups: &[(String, String)],
    subnet_id: &str,
    subnet_vpc: &str,
) -> Result<(), FerryError> {
    let foreign: Vec<String> = groups
        .iter()
        .filter(|(_, vpc)| vpc != subnet_vpc)
        .map(|(id, vpc)| format!("{id} ({vpc})"))
        .collect();
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(FerryError::new(
            ErrorName::SecurityGroupVpcMismatch,
            format!(
                "{subnet_id} is in {subnet_vpc} but security groups {} are not; pass securityGroupIds from {subnet_vpc}",
                foreign.join(", ")
            ),
        ))
    }
}

/// Rule 12: the type must be offered in the target AZ (`DescribeInstanceTypeOfferings`).
pub fn check_type_offered(
    instance_type: &str,
    target_az: &str,
    offered: &[String],
) -> Result<(), FerryError> {
    if offered.iter().any(|t| t == instance_type) {
        Ok(())
    } else {
        Err(FerryError::new(
            ErrorName::InstanceTypeNotOffered,
            format!("{instance_type} is not offered in {target_az}"),
        ))
    }
}

/// A protected source would make the requested stop or terminate fail after the new
/// instance is already running: refuse up front instead.
pub fn check_source_protection(
    instance_id: &str,
    stop_source: bool,
    action: SourceAction,
    disable_api_termination: bool,
    disable_api_stop: bool,
) -> Result<(), FerryError> {
    if action == SourceAction::Terminate && disable_api_termination {
        return Err(FerryError::new(
            ErrorName::SourceProtected,
            format!("{instance_id} has termination protection; sourceAction terminate would fail"),
        ));
    }
    let stops = stop_source || action == SourceAction::Stop;
    if stops && disable_api_stop {
        return Err(FerryError::new(
            ErrorName::SourceProtected,
            format!(
                "{instance_id} has stop protection; stopSource or sourceAction stop would fail"
            ),
        ));
    }
    Ok(())
}

/// Layouts ferry cannot recreate faithfully are refused rather than silently changed.
pub fn check_supported_layout(source: &SourceInstance) -> Result<(), FerryError> {
    let id = &source.instance_id;
    let refuse = |why: String| Err(FerryError::new(ErrorName::UnsupportedConfiguration, why));
    if source.network_interface_count > 1 {
        return refuse(format!(
            "{id} has {} network interfaces; ferry moves single-interface instances only",
            source.network_interface_count
        ));
    }
    if source.secondary_private_ip_count > 0 {
        return refuse(format!(
            "{id} has secondary private IPs, which a new subnet cannot keep"
        ));
    }
    if let Some(lifecycle) = &source.instance_lifecycle {
        return refuse(format!(
            "{id} is a {lifecycle} instance; ferry moves on-demand instances only"
        ));
    }
    if source.tenancy.as_deref() == Some("host") {
        return refuse(format!(
            "{id} runs on a Dedicated Host (tenancy host), which is bound to its AZ"
        ));
    }
    if source.volumes.is_empty() {
        return refuse(format!("{id} has no EBS volumes to image"));
    }
    check_placement_group(source)
}

/// Rule (EC2 User Guide, "Placement groups": "A cluster placement group can't span
/// multiple Availability Zones"): the new instance cannot join the source's cluster group
/// in another AZ (RunInstances would fail after the image is made), so it is refused
/// before anything is created. Spread and partition groups span AZs and are carried.
pub fn check_placement_group(source: &SourceInstance) -> Result<(), FerryError> {
    match (&source.placement_group, source.placement_group_strategy.as_deref()) {
        (Some(group), Some("cluster")) => Err(FerryError::new(
            ErrorName::UnsupportedConfiguration,
            format!(
                "{} is in the cluster placement group {group}, which cannot span Availability Zones; take it out of the group (or move the whole group) first",
                source.instance_id
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod placement_tests {
    use super::*;
    use crate::migrate::fixtures::web_server;

    #[test]
    fn a_cluster_placement_group_is_refused_spread_and_partition_carried() {
        let mut s = web_server();
        s.placement_group = Some("hpc".into());
        s.placement_group_strategy = Some("cluster".into());
        let e = check_supported_layout(&s).unwrap_err();
        assert_eq!(e.name, ErrorName::UnsupportedConfiguration);
        assert!(e.message.contains("cluster placement group hpc"), "{e}");
        for strategy in ["spread", "partition"] {
            s.placement_group_strategy = Some(strategy.into());
            assert!(check_supported_layout(&s).is_ok());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::ErrorName;
    use crate::migrate::fixtures::*;
    use crate::migrate::plan::build_plan;
    use crate::migrate::request::MigrateRequest;
    use crate::migrate::source::{SecurityGroupRef, TargetSubnet};
    use serde_json::json;

    #[test]
    fn source_states() {
        assert!(check_source_state("i-1", "running").is_ok());
        assert!(check_source_state("i-1", "stopped").is_ok());
        for s in ["pending", "stopping", "shutting-down", "terminated"] {
            assert_eq!(
                check_source_state("i-1", s).unwrap_err().name,
                ErrorName::InvalidInstanceState
            );
        }
    }

    #[test]
    fn root_device_must_be_ebs() {
        assert!(check_root_device_is_ebs("i-1", "ebs").is_ok());
        let e = check_root_device_is_ebs("i-1", "instance-store").unwrap_err();
        assert_eq!(e.name, ErrorName::UnsupportedRootDevice);
    }

    #[test]
    fn target_az_must_differ() {
        assert!(check_target_az_differs("eu-west-1a", "subnet-1", "eu-west-1b").is_ok());
        let e = check_target_az_differs("eu-west-1a", "subnet-1", "eu-west-1a").unwrap_err();
        assert_eq!(e.name, ErrorName::SameAvailabilityZone);
    }

    #[test]
    fn security_groups_must_share_the_subnet_vpc() {
        let groups = vec![
            ("sg-1".to_string(), "vpc-a".to_string()),
            ("sg-2".to_string(), "vpc-b".to_string()),
        ];
        let e = check_security_groups_in_vpc(&groups, "subnet-1", "vpc-a").unwrap_err();
        assert_eq!(e.name, ErrorName::SecurityGroupVpcMismatch);
        assert!(e.message.contains("sg-2") && !e.message.contains("sg-1 "));
        assert!(check_security_groups_in_vpc(&groups[..1], "subnet-1", "vpc-a").is_ok());
    }

    #[test]
    fn instance_type_must_be_offered() {
        let offered = vec!["m5.large".to_string(), "t3.micro".to_string()];
        assert!(check_type_offered("t3.micro", "us-east-1e", &offered).is_ok());
        let e = check_type_offered("p5.48xlarge", "us-east-1e", &offered).unwrap_err();
        assert_eq!(e.name, ErrorName::InstanceTypeNotOffered);
    }

    #[test]
    fn protection_conflicts() {
        use SourceAction::*;
        assert_eq!(
            check_source_protection("i-1", false, Terminate, true, false)
                .unwrap_err()
                .name,
            ErrorName::SourceProtected
        );
        assert!(check_source_protection("i-1", false, Stop, true, false).is_ok());
        assert!(check_source_protection("i-1", true, Keep, false, true).is_err());
        assert!(check_source_protection("i-1", false, Stop, false, true).is_err());
        assert!(check_source_protection("i-1", false, Keep, true, true).is_ok());
    }

    fn refusal(
        req: MigrateRequest,
        s: SourceInstance,
        t: TargetSubnet,
        g: Vec<SecurityGroupRef>,
    ) -> ErrorName {
        build_plan(&execution(), &req, &s, &t, &g, &offered())
            .unwrap_err()
            .name
    }

    #[test]
    fn refusals_are_named() {
        let s = web_server();
        let g = groups(&s);
        let mut store = web_server();
        store.root_device_type = "instance-store".into();
        assert_eq!(
            refusal(request(json!({})), store, target(), g.clone()),
            ErrorName::UnsupportedRootDevice
        );
        let mut same = target();
        same.availability_zone = "eu-west-1a".into();
        assert_eq!(
            refusal(request(json!({})), s.clone(), same, g.clone()),
            ErrorName::SameAvailabilityZone
        );
        let mut other_vpc = target();
        other_vpc.vpc_id = "vpc-0dddddddddddddddd".into();
        assert_eq!(
            refusal(request(json!({})), s.clone(), other_vpc, g.clone()),
            ErrorName::SecurityGroupVpcMismatch
        );
        assert_eq!(
            refusal(
                request(json!({"instanceType": "p5.48xlarge"})),
                s.clone(),
                target(),
                g.clone()
            ),
            ErrorName::InstanceTypeNotOffered
        );
        assert_eq!(
            refusal(
                request(json!({"sourceAction": "terminate"})),
                s.clone(),
                target(),
                g.clone()
            ),
            ErrorName::SourceProtected
        );
        let mut stopping = web_server();
        stopping.state = "stopping".into();
        assert_eq!(
            refusal(request(json!({})), stopping, target(), g.clone()),
            ErrorName::InvalidInstanceState
        );
        let mut spot = web_server();
        spot.instance_lifecycle = Some("spot".into());
        assert_eq!(
            refusal(request(json!({})), spot, target(), g.clone()),
            ErrorName::UnsupportedConfiguration
        );
        let mut multi = web_server();
        multi.network_interface_count = 2;
        assert_eq!(
            refusal(request(json!({})), multi, target(), g.clone()),
            ErrorName::UnsupportedConfiguration
        );
        let mut host = web_server();
        host.tenancy = Some("host".into());
        assert_eq!(
            refusal(request(json!({})), host, target(), g.clone()),
            ErrorName::UnsupportedConfiguration
        );
        let mut tagged = web_server();
        for i in 0..48 {
            tagged.tags.insert(format!("k{i}"), "v".into());
        }
        assert_eq!(
            refusal(request(json!({})), tagged, target(), g),
            ErrorName::UnsupportedConfiguration
        );
    }

    #[test]
    fn terminate_is_allowed_without_protection() {
        let mut s = web_server();
        s.disable_api_termination = false;
        let p = plan_for(&request(json!({"sourceAction": "terminate"})), &s).unwrap();
        assert_eq!(p.request.source_action, SourceAction::Terminate);
    }
}

/// A resource ferry made for a migration of the same source that is not finished: an
/// image or instance tagged `ferry:source-instance` = the source and `ferry:in-flight`
/// (finalize removes that tag from what stays, rollback removes the resources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub resource_id: String,
    pub execution_arn: String,
}

/// One migration per source instance at a time: refused when another execution's
/// in-flight image or instance exists (`Ferry.MigrationInProgress`, naming them). This
/// execution's own (a retried or re-driven Preflight) do not count. Leftovers of an
/// execution that was stopped without its rollback also refuse: the message says which
/// to remove once that execution is known to have ended.
pub fn check_no_other_migration(
    source_instance_id: &str,
    own_execution_arn: &str,
    found: &[InFlight],
) -> Result<(), FerryError> {
    let others: Vec<&InFlight> = found
        .iter()
        .filter(|f| f.execution_arn != own_execution_arn)
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = others
        .iter()
        .map(|f| format!("{} (by {})", f.resource_id, f.execution_arn))
        .collect();
    Err(FerryError::new(
        ErrorName::MigrationInProgress,
        format!(
            "{source_instance_id} is being migrated by another execution: {} carry ferry:in-flight; wait for it to end (if it was stopped, remove what it left, or its ferry:in-flight tag)",
            listed.join(", ")
        ),
    ))
}

#[cfg(test)]
mod in_flight_tests {
    use super::*;

    #[test]
    fn another_executions_in_flight_resources_refuse_the_migration() {
        let own = "arn:aws:states:us-east-1:111122223333:execution:ferry-migrate-instance:me";
        let other = "arn:aws:states:us-east-1:111122223333:execution:ferry-migrate-instance:other";
        check_no_other_migration("i-1", own, &[]).unwrap();
        let mine = InFlight {
            resource_id: "ami-1".into(),
            execution_arn: own.into(),
        };
        check_no_other_migration("i-1", own, std::slice::from_ref(&mine)).unwrap();
        let theirs = InFlight {
            resource_id: "ami-2".into(),
            execution_arn: other.into(),
        };
        let e = check_no_other_migration("i-1", own, &[mine, theirs]).unwrap_err();
        assert_eq!(e.name, ErrorName::MigrationInProgress);
        assert!(e.name.is_refusal());
        assert!(
            e.message.contains("ami-2 (by ") && e.message.contains(":other"),
            "{}",
            e.message
        );
    }
}
