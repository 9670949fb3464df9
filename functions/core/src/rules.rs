//! AWS rules ferry relies on, one named function each (see `shared/notes/aws-rules.md`).
//! The local AWS world enforces the same rules on its side.

use crate::errors::{ErrorName, FerryError};
use crate::request::SourceAction;

/// Most resources allow this many user tags (EC2 UG, "Tag restrictions").
pub const MAX_TAGS_PER_RESOURCE: usize = 50;
/// Tag keys with this prefix are reserved by AWS and cannot be set or copied.
pub const AWS_RESERVED_TAG_PREFIX: &str = "aws:";
/// Tag keys with this prefix are ferry's own bookkeeping.
pub const FERRY_TAG_PREFIX: &str = "ferry:";

/// EC2 ids are `<prefix>-` followed by 8 (older) or 17 lowercase hex digits.
pub fn is_resource_id(prefix: &str, id: &str) -> bool {
    let Some(rest) = id.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    (rest.len() == 8 || rest.len() == 17)
        && rest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn check_resource_id(field: &str, prefix: &str, id: &str) -> Result<(), FerryError> {
    if is_resource_id(prefix, id) {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "{field}: {id:?} is not a {prefix}- id ({prefix}- and 8 or 17 hex digits)"
        )))
    }
}

/// Instance type names are `family.size`, e.g. `m7i-flex.large`, `u-6tb1.metal`.
pub fn check_instance_type_name(name: &str) -> Result<(), FerryError> {
    let ok = match name.split_once('.') {
        Some((family, size)) => {
            let part_ok = |p: &str| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            };
            part_ok(family) && part_ok(size) && !size.contains('.')
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "instanceType: {name:?} is not an instance type name like m7i.large"
        )))
    }
}

/// `aws:` keys are reserved by AWS (cannot be set, so never copied from the source).
pub fn is_settable_tag_key(key: &str) -> bool {
    !key.to_ascii_lowercase()
        .starts_with(AWS_RESERVED_TAG_PREFIX)
}

/// A tag the user asks ferry to add: settable, not ferry's own, within EC2's lengths.
pub fn check_user_tag(key: &str, value: &str) -> Result<(), FerryError> {
    if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
        return Err(FerryError::invalid_input(format!(
            "tags: {key:?} must be 1-128 characters and its value at most 256"
        )));
    }
    if !is_settable_tag_key(key) || key.starts_with(FERRY_TAG_PREFIX) {
        return Err(FerryError::invalid_input(format!(
            "tags: {key:?} uses a reserved prefix (aws: or ferry:)"
        )));
    }
    Ok(())
}

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

/// What one image poll means (rule 15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImagePoll {
    Available,
    NotReady,
}

/// Rule 15: `pending` → poll again; `available` → go on; `failed` (or anything that is
/// not going to become available) → `Ferry.ImageFailed` with the StateReason.
pub fn image_poll(
    image_id: &str,
    state: &str,
    reason: Option<&str>,
) -> Result<ImagePoll, FerryError> {
    match state {
        "available" => Ok(ImagePoll::Available),
        "pending" => Ok(ImagePoll::NotReady),
        other => Err(FerryError::new(
            ErrorName::ImageFailed,
            format!(
                "image {image_id} is {other}: {}",
                reason.unwrap_or("no state reason given")
            ),
        )),
    }
}

/// The not-ready error the Retry of a wait state matches.
pub fn image_not_ready(image_id: &str, state: &str) -> FerryError {
    FerryError::new(
        ErrorName::ImageNotReady,
        format!("image {image_id} is {state}"),
    )
}

/// Readiness of the new instance: running with instance and system status checks `ok`.
pub fn instance_poll(
    instance_id: &str,
    state: &str,
    state_reason: Option<&str>,
    instance_status: Option<&str>,
    system_status: Option<&str>,
) -> Result<(), FerryError> {
    let not_ready = |what: String| Err(FerryError::new(ErrorName::InstanceNotReady, what));
    match state {
        "pending" => return not_ready(format!("{instance_id} is pending")),
        "running" => {}
        other => {
            return Err(FerryError::new(
                ErrorName::InstanceFailed,
                format!(
                    "{instance_id} is {other}: {}",
                    state_reason.unwrap_or("no state reason given")
                ),
            ))
        }
    }
    for (check, status) in [("instance", instance_status), ("system", system_status)] {
        match status.unwrap_or("initializing") {
            "ok" => {}
            "impaired" => {
                return Err(FerryError::new(
                    ErrorName::InstanceFailed,
                    format!("{instance_id}: {check} status check impaired"),
                ))
            }
            other => return not_ready(format!("{instance_id}: {check} status check {other}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids() {
        assert!(is_resource_id("i", "i-0123456789abcdef0"));
        assert!(is_resource_id("i", "i-12345678"));
        assert!(is_resource_id("subnet", "subnet-0fedcba9876543210"));
        assert!(!is_resource_id("i", "i-0123456789ABCDEF0"));
        assert!(!is_resource_id("i", "i-0123456789abcdef"));
        assert!(!is_resource_id("i", "instance-12345678"));
        assert!(!is_resource_id("sg", "sg12345678"));
        assert!(!is_resource_id("subnet", "i-12345678"));
    }

    #[test]
    fn instance_type_names() {
        for ok in [
            "t3.micro",
            "m7i-flex.large",
            "u-6tb1.metal",
            "c7gn.16xlarge",
        ] {
            assert!(check_instance_type_name(ok).is_ok(), "{ok}");
        }
        for bad in ["huge", "m5.", ".large", "M5.large", "m5.large.x", ""] {
            assert!(check_instance_type_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tag_keys() {
        assert!(!is_settable_tag_key("aws:autoscaling:groupName"));
        assert!(!is_settable_tag_key("AWS:x"));
        assert!(is_settable_tag_key("Name"));
        assert!(check_user_tag("team", "payments").is_ok());
        assert!(check_user_tag("ferry:x", "y").is_err());
        assert!(check_user_tag("", "y").is_err());
        assert!(check_user_tag(&"k".repeat(129), "y").is_err());
        assert!(check_user_tag("k", &"v".repeat(257)).is_err());
    }

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

    #[test]
    fn image_states() {
        assert_eq!(
            image_poll("ami-1", "available", None).unwrap(),
            ImagePoll::Available
        );
        assert_eq!(
            image_poll("ami-1", "pending", None).unwrap(),
            ImagePoll::NotReady
        );
        let e = image_poll("ami-1", "failed", Some("Client.InternalError")).unwrap_err();
        assert_eq!(e.name, ErrorName::ImageFailed);
        assert!(e.message.contains("Client.InternalError"));
        assert_eq!(
            image_poll("ami-1", "deregistered", None).unwrap_err().name,
            ErrorName::ImageFailed
        );
        assert_eq!(
            image_not_ready("ami-1", "pending").name,
            ErrorName::ImageNotReady
        );
    }

    #[test]
    fn instance_states() {
        let poll = |s, i, y| instance_poll("i-1", s, Some("Client.VolumeLimitExceeded"), i, y);
        assert_eq!(
            poll("pending", None, None).unwrap_err().name,
            ErrorName::InstanceNotReady
        );
        assert_eq!(
            poll("running", Some("initializing"), Some("ok"))
                .unwrap_err()
                .name,
            ErrorName::InstanceNotReady
        );
        assert_eq!(
            poll("running", None, None).unwrap_err().name,
            ErrorName::InstanceNotReady
        );
        assert!(poll("running", Some("ok"), Some("ok")).is_ok());
        assert_eq!(
            poll("running", Some("ok"), Some("impaired"))
                .unwrap_err()
                .name,
            ErrorName::InstanceFailed
        );
        let e = poll("terminated", None, None).unwrap_err();
        assert_eq!(e.name, ErrorName::InstanceFailed);
        assert!(e.message.contains("VolumeLimitExceeded"));
    }
}
