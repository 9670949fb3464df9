//! The `TargetFailed` state: a failed target's line in the distribute-image output.

use super::io::{TargetFailedInput, TargetResult};
use crate::errors::ErrorName;

/// The failed target's report: a nested execution that failed comes back as
/// `States.TaskFailed` whose Cause is the child's DescribeExecution as JSON; its own
/// Error and Cause (e.g. `Ferry.TargetAccessDenied`) are what the operator needs.
pub fn target_failed(input: &TargetFailedInput) -> TargetResult {
    let failure = input.error.clone().unwrap_or_default().nested();
    let (error, cause) = (failure.error, failure.cause);
    TargetResult {
        account_id: input.target.account_id.clone(),
        region: input.target.region.clone(),
        status: "FAILED".to_string(),
        execution_name: input.target.execution_name.clone(),
        error: Some(if error.is_empty() {
            ErrorName::AwsError.as_str().to_string()
        } else {
            error
        }),
        cause: Some(cause),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribute::fixtures::*;
    use crate::distribute::plan::DistributePlan;
    use crate::io::CaughtError;
    use serde_json::json;

    #[test]
    fn a_failed_child_reports_its_own_error() {
        let p = DistributePlan::parse(&request(vec![target("222233334444")]), &ctx("d-1")).unwrap();
        let child = json!({"ExecutionArn": "arn:...", "Status": "FAILED",
                           "Error": "Ferry.TargetAccessDenied", "Cause": "AssumeRole: AccessDenied: User: ..."});
        let r = target_failed(&TargetFailedInput {
            target: p.targets[0].clone(),
            error: Some(CaughtError {
                error: "States.TaskFailed".into(),
                cause: child.to_string(),
            }),
        });
        assert_eq!(r.status, "FAILED");
        assert_eq!(r.account_id, "222233334444");
        assert_eq!(r.error.as_deref(), Some("Ferry.TargetAccessDenied"));
        assert!(r.cause.unwrap().contains("AccessDenied"));
        // lowercase keys (some SDK renderings), and a non-JSON cause
        let r = target_failed(&TargetFailedInput {
            target: p.targets[0].clone(),
            error: Some(CaughtError {
                error: "States.TaskFailed".into(),
                cause: json!({"error": "Ferry.ImageFailed", "cause": "failed"}).to_string(),
            }),
        });
        assert_eq!(r.error.as_deref(), Some("Ferry.ImageFailed"));
        let r = target_failed(&TargetFailedInput {
            target: p.targets[0].clone(),
            error: Some(CaughtError {
                error: "StepFunctions.ExecutionLimitExceededException".into(),
                cause: "too many".into(),
            }),
        });
        assert_eq!(
            r.error.as_deref(),
            Some("StepFunctions.ExecutionLimitExceededException")
        );
        assert_eq!(r.cause.as_deref(), Some("too many"));
    }
}
