//! Tags: the ones ferry puts on everything it creates (rollback and cleanup find what a
//! run made by them, never by guessing) and the rules for tags a user asks for.

use crate::errors::FerryError;
use std::collections::BTreeMap;

pub const TAG_WORKFLOW: &str = "ferry:workflow";

pub const TAG_EXECUTION: &str = "ferry:execution";

pub const TAG_SOURCE_INSTANCE: &str = "ferry:source-instance";

/// Tag on a re-encrypted copy: the image it was copied from.
pub const TAG_SOURCE_IMAGE: &str = "ferry:source-image";

pub const TAG_SOURCE_ACCOUNT: &str = "ferry:source-account";

pub const TAG_SOURCE_REGION: &str = "ferry:source-region";

/// Most resources allow this many user tags (EC2 UG, "Tag restrictions").
pub const MAX_TAGS_PER_RESOURCE: usize = 50;

/// Tag keys with this prefix are reserved by AWS and cannot be set or copied.
pub const AWS_RESERVED_TAG_PREFIX: &str = "aws:";

/// `"true"` on the instance, image and snapshots a migration creates until its cut-over is
/// done: Finalize removes it. Rollback's role may terminate, deregister and delete only
/// what still carries it, so no rollback can touch an instance (or kept image) that an
/// earlier, finished migration created, even though it keeps its other ferry tags.
pub const TAG_IN_FLIGHT: &str = "ferry:in-flight";

/// Tag keys with this prefix are ferry's own bookkeeping.
pub const FERRY_TAG_PREFIX: &str = "ferry:";

/// The tags ferry puts on everything it creates; rollback and cleanup look for them.
pub fn ferry_tags(
    workflow: &str,
    execution_arn: &str,
    source_instance_id: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_WORKFLOW.to_string(), workflow.to_string()),
        (TAG_EXECUTION.to_string(), execution_arn.to_string()),
        (
            TAG_SOURCE_INSTANCE.to_string(),
            source_instance_id.to_string(),
        ),
    ])
}

/// Rule (EC2 User Guide, "Tag restrictions"): at most 50 tags per resource. `what` names
/// the resource in the refusal, `tags` is every tag it would end up with.
pub fn check_tag_count(what: &str, tags: &BTreeMap<String, String>) -> Result<(), String> {
    if tags.len() > MAX_TAGS_PER_RESOURCE {
        return Err(format!(
            "{what} would carry {} tags (the source's, the request's and ferry's own); EC2 allows {MAX_TAGS_PER_RESOURCE}",
            tags.len()
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::WORKFLOW_MIGRATE_INSTANCE;

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
    fn at_most_fifty_tags_per_resource() {
        let tags = |n: usize| (0..n).map(|i| (format!("k{i}"), "v".to_string())).collect();
        assert!(check_tag_count("the image", &tags(50)).is_ok());
        let err = check_tag_count("the image", &tags(51)).unwrap_err();
        assert!(err.contains("the image would carry 51 tags"), "{err}");
    }

    #[test]
    fn ferry_tags_name_workflow_execution_and_source() {
        let t = ferry_tags(WORKFLOW_MIGRATE_INSTANCE, "arn:x", "i-12345678");
        assert_eq!(t[TAG_WORKFLOW], "migrate-instance");
        assert_eq!(t[TAG_EXECUTION], "arn:x");
        assert_eq!(t[TAG_SOURCE_INSTANCE], "i-12345678");
    }
}
