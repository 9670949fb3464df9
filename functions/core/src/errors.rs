//! Error names: the one place where ferry's `errorType`s are defined.
//!
//! A Lambda step that fails reports `errorType` = [`ErrorName::as_str`]; the state
//! machines' `Retry` and `Catch` blocks match these strings, so renaming one is a
//! breaking change for `statemachines/*.asl.json` (checked by a test in ferry-steps).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every error a ferry step can raise, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorName {
    // --- not ready: the state machine's Retry polls with one call per attempt (rule 16)
    /// The image is `pending`, or the source is still stopping before imaging.
    ImageNotReady,
    /// The new instance is `pending` or its status checks are still initializing.
    InstanceNotReady,
    /// The source's owner (this account) shares it with the target, which does not see it
    /// yet: sharing is eventually consistent (rule 19); copy-image's Preflight waits.
    ShareNotYetVisible,
    /// Not a failure: an event says the image a `.waitForTaskToken` wait polls for has
    /// changed, so the waiting Task is ended with this name and its Retry (1 s) polls at
    /// once. copy-image's `WaitCopy` in a target account: the event, forwarded from the
    /// target's bus, is only a hint; the poll, acting as the target, reads the copy.
    PollNow,
    // --- transient: retried with backoff and jitter
    /// The AWS API throttled the call (EC2 `RequestLimitExceeded`, KMS `ThrottlingException`).
    Throttled,
    /// A 5xx from AWS or a network failure.
    Transient,
    /// EC2 has no capacity for the instance type in the target AZ right now.
    InsufficientCapacity,
    // --- refusals: bad input or an unsupported source, raised before any mutating call
    InvalidInput,
    InstanceNotFound,
    SubnetNotFound,
    SecurityGroupNotFound,
    InvalidInstanceState,
    UnsupportedRootDevice,
    SameAvailabilityZone,
    InstanceTypeNotOffered,
    SecurityGroupVpcMismatch,
    SourceProtected,
    UnsupportedConfiguration,
    /// Another execution is migrating this source now (its image or new instance still
    /// carries `ferry:in-flight`): one migration per source instance at a time.
    MigrationInProgress,
    // --- refusals of the sharing and copying workflows
    /// The image does not exist, or is not visible to the account asking.
    ImageNotFound,
    /// The image carries product codes: another account cannot copy it (rule 7).
    ProductCodes,
    /// Encrypted images can never be public (rule 2).
    EncryptedImageCannotBePublic,
    /// Image block public access is on in this account and region (rule 3).
    ImageBlockPublicAccess,
    /// Snapshots under the AWS managed key `aws/ebs` cannot be shared (rule 1).
    AwsManagedKey,
    /// KMS refused a key operation (key policy or grant missing).
    KmsAccessDenied,
    /// The hub could not assume the target account's role (trust, ExternalId, missing role).
    TargetAccessDenied,
    // --- failures during the run
    /// The image became `failed`; the message carries its StateReason.
    ImageFailed,
    /// The new instance stopped, terminated or failed its status checks.
    InstanceFailed,
    /// A copy failed because EC2 could not use a KMS key for it. Right after a share the
    /// grant on the source key may not be in effect yet (rule 23): copy-image removes the
    /// failed copy and copies again a bounded number of times, then fails with this name.
    CopyKeyNotUsable,
    /// Rollback started the source but it did not come back (e.g. it went back to
    /// `stopped` with `Client.InternalError`: the volumes' KMS key could not be used).
    SourceNotRestored,
    /// Any other AWS error, not retried.
    AwsError,
}

impl ErrorName {
    pub const ALL: [ErrorName; 31] = [
        ErrorName::ImageNotReady,
        ErrorName::InstanceNotReady,
        ErrorName::ShareNotYetVisible,
        ErrorName::PollNow,
        ErrorName::Throttled,
        ErrorName::Transient,
        ErrorName::InsufficientCapacity,
        ErrorName::InvalidInput,
        ErrorName::InstanceNotFound,
        ErrorName::SubnetNotFound,
        ErrorName::SecurityGroupNotFound,
        ErrorName::InvalidInstanceState,
        ErrorName::UnsupportedRootDevice,
        ErrorName::SameAvailabilityZone,
        ErrorName::InstanceTypeNotOffered,
        ErrorName::SecurityGroupVpcMismatch,
        ErrorName::SourceProtected,
        ErrorName::UnsupportedConfiguration,
        ErrorName::MigrationInProgress,
        ErrorName::ImageNotFound,
        ErrorName::ProductCodes,
        ErrorName::EncryptedImageCannotBePublic,
        ErrorName::ImageBlockPublicAccess,
        ErrorName::AwsManagedKey,
        ErrorName::KmsAccessDenied,
        ErrorName::TargetAccessDenied,
        ErrorName::ImageFailed,
        ErrorName::InstanceFailed,
        ErrorName::CopyKeyNotUsable,
        ErrorName::SourceNotRestored,
        ErrorName::AwsError,
    ];

    /// The `errorType` string the ASL matches.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorName::ImageNotReady => "Ferry.ImageNotReady",
            ErrorName::InstanceNotReady => "Ferry.InstanceNotReady",
            ErrorName::ShareNotYetVisible => "Ferry.ShareNotYetVisible",
            ErrorName::PollNow => "Ferry.PollNow",
            ErrorName::Throttled => "Ferry.Throttled",
            ErrorName::Transient => "Ferry.Transient",
            ErrorName::InsufficientCapacity => "Ferry.InsufficientCapacity",
            ErrorName::InvalidInput => "Ferry.InvalidInput",
            ErrorName::InstanceNotFound => "Ferry.InstanceNotFound",
            ErrorName::SubnetNotFound => "Ferry.SubnetNotFound",
            ErrorName::SecurityGroupNotFound => "Ferry.SecurityGroupNotFound",
            ErrorName::InvalidInstanceState => "Ferry.InvalidInstanceState",
            ErrorName::UnsupportedRootDevice => "Ferry.UnsupportedRootDevice",
            ErrorName::SameAvailabilityZone => "Ferry.SameAvailabilityZone",
            ErrorName::InstanceTypeNotOffered => "Ferry.InstanceTypeNotOffered",
            ErrorName::SecurityGroupVpcMismatch => "Ferry.SecurityGroupVpcMismatch",
            ErrorName::SourceProtected => "Ferry.SourceProtected",
            ErrorName::UnsupportedConfiguration => "Ferry.UnsupportedConfiguration",
            ErrorName::MigrationInProgress => "Ferry.MigrationInProgress",
            ErrorName::ImageNotFound => "Ferry.ImageNotFound",
            ErrorName::ProductCodes => "Ferry.ProductCodes",
            ErrorName::EncryptedImageCannotBePublic => "Ferry.EncryptedImageCannotBePublic",
            ErrorName::ImageBlockPublicAccess => "Ferry.ImageBlockPublicAccess",
            ErrorName::AwsManagedKey => "Ferry.AwsManagedKey",
            ErrorName::KmsAccessDenied => "Ferry.KmsAccessDenied",
            ErrorName::TargetAccessDenied => "Ferry.TargetAccessDenied",
            ErrorName::ImageFailed => "Ferry.ImageFailed",
            ErrorName::InstanceFailed => "Ferry.InstanceFailed",
            ErrorName::CopyKeyNotUsable => "Ferry.CopyKeyNotUsable",
            ErrorName::SourceNotRestored => "Ferry.SourceNotRestored",
            ErrorName::AwsError => "Ferry.AwsError",
        }
    }

    /// Errors a state machine may retry: the step is idempotent and the cause passes.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorName::ImageNotReady
                | ErrorName::InstanceNotReady
                | ErrorName::ShareNotYetVisible
                | ErrorName::PollNow
                | ErrorName::Throttled
                | ErrorName::Transient
                | ErrorName::InsufficientCapacity
        )
    }
}

impl ErrorName {
    /// Refusals: a Preflight refused the request or the source before any mutating call
    /// (nothing was created, nothing to roll back). migrate-fleet reports such a
    /// migration as skipped by preflight, not as failed.
    pub const fn is_refusal(self) -> bool {
        matches!(
            self,
            ErrorName::InvalidInput
                | ErrorName::InstanceNotFound
                | ErrorName::SubnetNotFound
                | ErrorName::SecurityGroupNotFound
                | ErrorName::InvalidInstanceState
                | ErrorName::UnsupportedRootDevice
                | ErrorName::SameAvailabilityZone
                | ErrorName::InstanceTypeNotOffered
                | ErrorName::SecurityGroupVpcMismatch
                | ErrorName::SourceProtected
                | ErrorName::UnsupportedConfiguration
                | ErrorName::MigrationInProgress
        )
    }

    /// The name of an `errorType` string (`Ferry.SameAvailabilityZone`), if it is one.
    pub fn from_error_type(error_type: &str) -> Option<ErrorName> {
        ErrorName::ALL
            .into_iter()
            .find(|n| n.as_str() == error_type)
    }
}

impl fmt::Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named error with a human message: what a step returns to the runtime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct FerryError {
    pub name: ErrorName,
    pub message: String,
}

impl FerryError {
    pub fn new(name: ErrorName, message: impl Into<String>) -> Self {
        FerryError {
            name,
            message: message.into(),
        }
    }
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorName::InvalidInput, message)
    }
}

/// Maps an AWS error code to ferry's error name, for calls with no more specific meaning.
///
/// Codes from the EC2 API reference ("Error codes"), KMS and the SDKs' throttling list.
pub fn classify_aws_code(code: Option<&str>) -> ErrorName {
    match code.unwrap_or_default() {
        "RequestLimitExceeded"
        | "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "SlowDown"
        | "PriorRequestNotComplete"
        | "EC2ThrottledException"
        | "BandwidthLimitExceeded" => ErrorName::Throttled,
        "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "Unavailable"
        | "RequestTimeout"
        | "RequestTimeoutException"
        | "KMSInternalException"
        | "DependencyTimeoutException" => ErrorName::Transient,
        "InsufficientInstanceCapacity" | "InsufficientHostCapacity" | "InsufficientCapacity" => {
            ErrorName::InsufficientCapacity
        }
        _ => ErrorName::AwsError,
    }
}
