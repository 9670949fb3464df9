//! What one poll of an image or an instance means (rule 15): ready, not ready yet (the
//! wait state's Retry polls again), or failed for good.

use crate::errors::{ErrorName, FerryError};

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

/// Rule 19 (EC2 API Reference, "Eventual consistency in the Amazon EC2 API"): an id a
/// create call just returned may not be found by Describe* for a while. How long ferry
/// takes "not found" as "not visible yet" after the create call, in seconds; after that
/// the resource is gone.
pub const NOT_VISIBLE_GRACE_SECONDS: u64 = 300;

/// What a wait step makes of a resource it created that Describe* does not find: within
/// [`NOT_VISIBLE_GRACE_SECONDS`] of `created_at` (epoch seconds, when the create call
/// answered) it is `not_ready` (the state's Retry polls again); later, or when the
/// creation time is unknown, `gone`.
pub fn missing_after_create(
    what: &str,
    created_at: Option<u64>,
    now: u64,
    not_ready: ErrorName,
    gone: ErrorName,
) -> FerryError {
    match created_at {
        Some(t) if now.saturating_sub(t) < NOT_VISIBLE_GRACE_SECONDS => FerryError::new(
            not_ready,
            format!(
                "{what} is not visible yet ({}s after it was created; EC2 is eventually consistent)",
                now.saturating_sub(t)
            ),
        ),
        Some(t) => FerryError::new(
            gone,
            format!("{what} no longer exists ({}s after it was created)", now.saturating_sub(t)),
        ),
        None => FerryError::new(gone, format!("{what} no longer exists")),
    }
}

/// Seconds since the Unix epoch, now (the edge's clock for [`missing_after_create`]).
pub fn epoch_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
    fn not_found_right_after_create_is_not_ready_then_gone() {
        let e = missing_after_create(
            "image ami-1",
            Some(1000),
            1000 + NOT_VISIBLE_GRACE_SECONDS - 1,
            ErrorName::ImageNotReady,
            ErrorName::ImageFailed,
        );
        assert_eq!(e.name, ErrorName::ImageNotReady);
        assert!(e.message.contains("not visible yet"), "{}", e.message);
        let e = missing_after_create(
            "image ami-1",
            Some(1000),
            1000 + NOT_VISIBLE_GRACE_SECONDS,
            ErrorName::ImageNotReady,
            ErrorName::ImageFailed,
        );
        assert_eq!(e.name, ErrorName::ImageFailed);
        let e = missing_after_create(
            "image ami-1",
            None,
            5,
            ErrorName::ImageNotReady,
            ErrorName::ImageFailed,
        );
        assert_eq!(e.name, ErrorName::ImageFailed);
        // a clock behind the creation time is still "just created"
        let e = missing_after_create(
            "i-1",
            Some(1000),
            900,
            ErrorName::InstanceNotReady,
            ErrorName::InstanceFailed,
        );
        assert_eq!(e.name, ErrorName::InstanceNotReady);
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
