//! Event-driven waits: a wait state is a `.waitForTaskToken` Task, completed
//! by the `ImageEvent` function when EC2 emits "EC2 AMI State Change" for the image, and
//! by the wait function's own poll on each attempt (the Task's `Retry` on
//! `States.Timeout` is the slow fallback, because EventBridge events from EC2 are best
//! effort). This module holds the pure half: reading the event, and finding the waiting
//! task's token in the execution's history.
//!
//! Copies in target accounts (copy-image's `WaitCopy`): the copy's event happens on the
//! target account's default bus. target-account.yaml's rule forwards it to the hub's
//! image-event bus (EventBridge UG, "Sending and receiving events between AWS
//! accounts": the event keeps its `account`, the target's). The hub cannot read the copy
//! (it is the target's, not shared), so `ImageEvent` does not end such a wait with a
//! result: it finds the running copy-image execution that waits for that image id and
//! fails its Task with `Ferry.PollNow`, whose 1 s Retry polls at once as the target. The
//! event is a hint, never trusted for the copy's state.
//!
//! AWS documents: EC2 User Guide, "Monitor AMI events using Amazon EventBridge" (the
//! event's shape: `detail-type` "EC2 AMI State Change", `source` "aws.ec2",
//! `detail.{ImageId, State, ErrorMessage}`; states `available`, `failed`, `deregistered`,
//! `disabled`); Step Functions Developer Guide, "Wait for a Callback with Task Token"
//! (the token is `$$.Task.Token`, each attempt of a retried Task gets a new one, and the
//! Task ends on SendTaskSuccess / SendTaskFailure / its timeout); Step Functions API
//! Reference, GetExecutionHistory (`TaskScheduled` events carry the resolved
//! Parameters as a JSON string, `reverseOrder` lists the newest first).

use crate::errors::{ErrorName, FerryError};
use serde_json::Value;

/// The `detail-type` of EC2's AMI events.
pub const AMI_STATE_CHANGE: &str = "EC2 AMI State Change";

/// The `source` of every EC2 event.
pub const EC2_SOURCE: &str = "aws.ec2";

/// How long one wait attempt listens for the event before its timeout, in seconds (the
/// ASL's `TimeoutSeconds`). With events dropped, an image is noticed at most this long
/// (plus the Retry's 1 s) after it became available: under 10 % of a 20-minute image.
/// Each attempt is one state transition and one DescribeImages.
pub const IMAGE_WAIT_ATTEMPT_SECONDS: u64 = 100;

// Issue 10's goal, checked when this compiles: with events dropped, a 20-minute image is
// noticed within 10 % of its wait (worst case: one whole attempt plus the Retry's 1 s).
const _: () = assert!((IMAGE_WAIT_ATTEMPT_SECONDS + 1) * 10 <= 20 * 60);

/// One "EC2 AMI State Change" event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmiStateChange {
    /// The event's `account`: where the image is (a target account's, for an event
    /// forwarded from there). `None` when the event has none.
    pub account: Option<String>,
    pub image_id: String,
    pub state: String,
    pub error_message: Option<String>,
}

impl AmiStateChange {
    /// `available` or `failed`: a state a waiting task can end on. (`deregistered` and
    /// `disabled` are not: the next attempt's poll says what became of the image.)
    pub fn ends_a_wait(&self) -> bool {
        matches!(self.state.as_str(), "available" | "failed")
    }
}

/// Reads an EventBridge event. `Ok(None)` for an event of another kind (the rule's
/// pattern should not deliver one, but a function must not fail on it); an AMI event
/// without an image id or a state is `Ferry.InvalidInput`.
pub fn parse_ami_state_change(event: &Value) -> Result<Option<AmiStateChange>, FerryError> {
    if event.get("source").and_then(Value::as_str) != Some(EC2_SOURCE)
        || event.get("detail-type").and_then(Value::as_str) != Some(AMI_STATE_CHANGE)
    {
        return Ok(None);
    }
    let detail = event.get("detail").unwrap_or(&Value::Null);
    let field = |name: &str| {
        detail
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let image_id = field("ImageId").ok_or_else(|| {
        FerryError::invalid_input(format!("{AMI_STATE_CHANGE} event without detail.ImageId"))
    })?;
    if !crate::rules::ids::is_resource_id("ami", &image_id) {
        return Err(FerryError::invalid_input(format!(
            "{AMI_STATE_CHANGE} event for {image_id:?}, which is not an AMI id"
        )));
    }
    let state = field("State").ok_or_else(|| {
        FerryError::invalid_input(format!(
            "{AMI_STATE_CHANGE} event for {image_id} without detail.State"
        ))
    })?;
    let account = event
        .get("account")
        .and_then(Value::as_str)
        .filter(|a| crate::rules::ids::check_account_id("account", a).is_ok())
        .map(str::to_string);
    Ok(Some(AmiStateChange {
        account,
        image_id,
        state,
        error_message: field("ErrorMessage"),
    }))
}

impl AmiStateChange {
    /// Whether the image is another account's than `hub_account` (the event was forwarded
    /// from a target account's bus): its wait, if any, is a copy-image `WaitCopy` that
    /// only a poll as the target can end ([`Ferry.PollNow`](ErrorName::PollNow)). An
    /// event without an account is taken as the hub's own.
    pub fn is_from_another_account(&self, hub_account: &str) -> bool {
        self.account.as_deref().is_some_and(|a| a != hub_account)
    }
}

/// The environment variable with the ARN of the copy-image state machine, whose
/// executions `ImageEvent` searches for the wait of a target account's copy
/// (template.yaml sets it; the hub's account is read from it).
pub const COPY_MACHINE_ARN: &str = "FERRY_COPY_MACHINE_ARN";

/// The hub's account id and the copy-image machine's ARN from `FERRY_COPY_MACHINE_ARN`
/// (`arn:<partition>:states:<region>:<account>:stateMachine:<name>`); `None` when it is
/// unset or not such an ARN (events from other accounts are then ignored).
pub fn copy_machine(value: Option<&str>) -> Option<(String, String)> {
    let arn = value?.trim();
    let parts: Vec<&str> = arn.split(':').collect();
    (parts.len() == 7
        && parts[0] == "arn"
        && parts[2] == "states"
        && parts[5] == "stateMachine"
        && crate::rules::ids::check_account_id("account", parts[4]).is_ok()
        && !parts[6].is_empty())
    .then(|| (parts[4].to_string(), arn.to_string()))
}

/// How many running copy-image executions `ImageEvent` looks through for the wait of a
/// target account's copy (ListExecutions, newest first, one page): each costs one
/// GetExecutionHistory, so a burst of events cannot exhaust Step Functions' quota. A
/// copy whose execution is not among them is found by its next poll.
pub const MAX_COPY_EXECUTIONS_SEARCHED: i32 = 100;

/// The error that ends a copy wait woken by its forwarded event: not a failure, the
/// state's Retry on `Ferry.PollNow` polls again after 1 s.
pub fn poll_now(change: &AmiStateChange) -> FerryError {
    FerryError::new(
        ErrorName::PollNow,
        format!(
            "EC2 AMI State Change: {} is {} in account {}; polling it now",
            change.image_id,
            change.state,
            change.account.as_deref().unwrap_or("?")
        ),
    )
}

/// One event of an execution's history, as far as finding a token needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The event's `type` (`TaskScheduled`, `ExecutionSucceeded`...).
    pub kind: String,
    /// `taskScheduledEventDetails.parameters`, for a `TaskScheduled` event.
    pub parameters: Option<String>,
}

/// What the history says about a wait for `image_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiter {
    /// The newest wait task for this image, with its token.
    Token(String),
    /// The execution has ended: nobody waits.
    ExecutionEnded,
    /// No wait task for this image among the events read (not scheduled yet, or only
    /// tasks for other images): the next attempt's poll will see the image.
    NotWaiting,
}

/// Finds the token of the task that waits for `image_id`, reading `newest_first` (a
/// GetExecutionHistory page with `reverseOrder`). Only a `TaskScheduled` whose
/// parameters carry `Payload.taskToken` and name this very image in `Payload.image.imageId`
/// counts, so an image tagged with someone else's execution ARN cannot complete that
/// execution's wait for another image. A closed task's token is still returned (the
/// caller's SendTaskSuccess is then answered `TaskTimedOut`, which is harmless): the
/// history cannot tell a task closed by this very event from one that timed out.
pub fn find_waiter<'a>(
    newest_first: impl IntoIterator<Item = &'a HistoryEntry>,
    image_id: &str,
) -> Waiter {
    for entry in newest_first {
        match entry.kind.as_str() {
            "ExecutionSucceeded" | "ExecutionFailed" | "ExecutionAborted" | "ExecutionTimedOut" => {
                return Waiter::ExecutionEnded
            }
            "TaskScheduled" => {
                if let Some(token) = entry
                    .parameters
                    .as_deref()
                    .and_then(|p| token_for_image(p, image_id))
                {
                    return Waiter::Token(token);
                }
            }
            _ => {}
        }
    }
    Waiter::NotWaiting
}

/// Where a waiting Task's payload names the image it waits for: migrate-instance's
/// `WaitImage` (`image`), share-image's `WaitCopy` (`copy`, the re-encrypted copy) and
/// copy-image's `WaitCopy` (`copy`, the target's copy).
pub const WAITED_IMAGE_POINTERS: [&str; 2] = ["/image/imageId", "/copy/imageId"];

/// The task token in a `TaskScheduled` event's parameters (a lambda:invoke
/// `{"FunctionName", "Payload": {..., "taskToken", "image"|"copy": {"imageId"}}}`) when
/// the payload waits for `image_id`.
pub fn token_for_image(parameters: &str, image_id: &str) -> Option<String> {
    let value: Value = serde_json::from_str(parameters).ok()?;
    let payload = value.get("Payload")?;
    let waits_for = WAITED_IMAGE_POINTERS
        .iter()
        .find_map(|p| payload.pointer(p).and_then(Value::as_str))?;
    if waits_for != image_id {
        return None;
    }
    payload
        .get("taskToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// The execution ARN in an image's `ferry:execution` tag, if it is an execution of one of
/// `waiting_machines` (state machine names: the machines whose image waits are
/// event-driven, migrate-instance and share-image). Images that other workflows made are
/// not followed: the ImageEvent role may read only those machines' histories, and
/// nothing of the others waits on an event.
pub fn execution_arn_of(tag: Option<&str>, waiting_machines: &[&str]) -> Option<String> {
    let arn = tag?;
    let parts: Vec<&str> = arn.split(':').collect();
    (parts.len() == 8
        && parts[0] == "arn"
        && parts[2] == "states"
        && parts[5] == "execution"
        && waiting_machines.contains(&parts[6])
        && !parts[7].is_empty())
    .then(|| arn.to_string())
}

/// The machines named in `FERRY_WAITING_MACHINES` (comma-separated; template.yaml sets it
/// to the migrate-instance and share-image machines' names).
pub fn waiting_machines(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// SendTaskSuccess/SendTaskFailure codes that mean "this task no longer waits": the
/// attempt timed out (a Retry's next attempt polls the image itself) or already ended.
pub fn task_already_closed(code: Option<&str>) -> bool {
    matches!(code, Some("TaskTimedOut" | "TaskDoesNotExist"))
}

/// The error a failed image ends its wait with (the same name the poll raises).
pub fn image_failed(change: &AmiStateChange) -> FerryError {
    FerryError::new(
        ErrorName::ImageFailed,
        format!(
            "image {} is {}: {}",
            change.image_id,
            change.state,
            change
                .error_message
                .as_deref()
                .unwrap_or("no state reason given")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(state: &str) -> Value {
        json!({
            "version": "0",
            "id": "7e1a4f53-0000-0000-0000-000000000000",
            "detail-type": "EC2 AMI State Change",
            "source": "aws.ec2",
            "account": "111122223333",
            "time": "2026-12-02T10:00:00Z",
            "region": "eu-west-1",
            "resources": ["arn:aws:ec2:eu-west-1::image/ami-0123456789abcdef0"],
            "detail": {"RequestId": "r-1", "ImageId": "ami-0123456789abcdef0", "State": state, "ErrorMessage": ""}
        })
    }

    #[test]
    fn reads_the_documented_event() {
        let change = parse_ami_state_change(&event("available"))
            .unwrap()
            .unwrap();
        assert_eq!(change.image_id, "ami-0123456789abcdef0");
        assert_eq!(change.state, "available");
        assert_eq!(change.error_message, None, "an empty ErrorMessage is none");
        assert!(change.ends_a_wait());
        let mut failed = event("failed");
        failed["detail"]["ErrorMessage"] = json!("snapshot failed");
        let change = parse_ami_state_change(&failed).unwrap().unwrap();
        assert!(change.ends_a_wait());
        let err = image_failed(&change);
        assert_eq!(err.name, ErrorName::ImageFailed);
        assert!(err.message.contains("snapshot failed"), "{}", err.message);
        for state in ["pending", "deregistered", "disabled"] {
            let change = parse_ami_state_change(&event(state)).unwrap().unwrap();
            assert!(!change.ends_a_wait(), "{state}");
        }
    }

    #[test]
    fn other_events_are_ignored_and_broken_ones_refused() {
        let mut other = event("available");
        other["detail-type"] = json!("EC2 Instance State-change Notification");
        assert_eq!(parse_ami_state_change(&other).unwrap(), None);
        let mut forged = event("available");
        forged["source"] = json!("ferry.request");
        assert_eq!(parse_ami_state_change(&forged).unwrap(), None);
        let mut no_id = event("available");
        no_id["detail"].as_object_mut().unwrap().remove("ImageId");
        assert_eq!(
            parse_ami_state_change(&no_id).unwrap_err().name,
            ErrorName::InvalidInput
        );
        let mut bad_id = event("available");
        bad_id["detail"]["ImageId"] = json!("i-0123456789abcdef0");
        assert_eq!(
            parse_ami_state_change(&bad_id).unwrap_err().name,
            ErrorName::InvalidInput
        );
        let mut no_state = event("available");
        no_state["detail"]["State"] = json!("");
        assert_eq!(
            parse_ami_state_change(&no_state).unwrap_err().name,
            ErrorName::InvalidInput
        );
    }

    fn scheduled(image_id: &str, token: &str) -> HistoryEntry {
        HistoryEntry {
            kind: "TaskScheduled".into(),
            parameters: Some(
                json!({
                    "FunctionName": "arn:aws:lambda:eu-west-1:111122223333:function:wait-image",
                    "Payload": {"plan": {}, "image": {"imageId": image_id, "state": "pending"}, "taskToken": token}
                })
                .to_string(),
            ),
        }
    }

    fn other(kind: &str) -> HistoryEntry {
        HistoryEntry {
            kind: kind.into(),
            parameters: None,
        }
    }

    #[test]
    fn the_newest_wait_for_this_image_gives_the_token() {
        let history = [
            other("TaskSubmitted"),
            other("TaskStarted"),
            scheduled("ami-0123456789abcdef0", "token-2"),
            other("TaskStateEntered"),
            other("TaskTimedOut"),
            scheduled("ami-0123456789abcdef0", "token-1"),
        ];
        assert_eq!(
            find_waiter(&history, "ami-0123456789abcdef0"),
            Waiter::Token("token-2".into())
        );
    }

    #[test]
    fn a_wait_for_another_image_is_not_completed() {
        // An image tagged with this execution's ARN cannot end its wait for another image.
        let history = [scheduled("ami-0aaaaaaaaaaaaaaaa", "token-1")];
        assert_eq!(
            find_waiter(&history, "ami-0123456789abcdef0"),
            Waiter::NotWaiting
        );
        assert_eq!(
            token_for_image(
                r#"{"Payload": {"taskToken": "t"}}"#,
                "ami-0123456789abcdef0"
            ),
            None,
            "a payload naming no image"
        );
        assert_eq!(token_for_image("not json", "ami-0123456789abcdef0"), None);
        // share-image's WaitCopy names its copy under `copy`.
        let copy = json!({"FunctionName": "f", "Payload": {"plan": {}, "taskToken": "t-copy",
            "copy": {"imageId": "ami-0123456789abcdef0"}}});
        assert_eq!(
            token_for_image(&copy.to_string(), "ami-0123456789abcdef0"),
            Some("t-copy".into())
        );
        assert_eq!(
            token_for_image(&copy.to_string(), "ami-0aaaaaaaaaaaaaaaa"),
            None
        );
        let no_token = json!({"Payload": {"image": {"imageId": "ami-0123456789abcdef0"}}});
        assert_eq!(
            token_for_image(&no_token.to_string(), "ami-0123456789abcdef0"),
            None,
            "a plain (not .waitForTaskToken) invocation"
        );
    }

    #[test]
    fn an_ended_execution_has_no_waiter() {
        let history = [
            other("ExecutionFailed"),
            other("FailStateEntered"),
            scheduled("ami-0123456789abcdef0", "token-1"),
        ];
        assert_eq!(
            find_waiter(&history, "ami-0123456789abcdef0"),
            Waiter::ExecutionEnded
        );
        assert_eq!(
            find_waiter(&[], "ami-0123456789abcdef0"),
            Waiter::NotWaiting
        );
    }

    #[test]
    fn only_an_execution_of_a_waiting_machine_is_followed() {
        let machines = ["ferry-migrate-instance"];
        let arn = "arn:aws:states:eu-west-1:111122223333:execution:ferry-migrate-instance:run-1";
        assert_eq!(
            execution_arn_of(Some(arn), &machines),
            Some(arn.to_string())
        );
        for bad in [
            "",
            "run-1",
            "arn:aws:states:eu-west-1:111122223333:stateMachine:ferry-migrate-instance",
            "arn:aws:states:eu-west-1:111122223333:execution:ferry-migrate-instance:",
            "arn:aws:ec2:eu-west-1:111122223333:execution:x:y",
            // share-image's copies carry its execution ARN: nothing of it waits on events.
            "arn:aws:states:eu-west-1:111122223333:execution:ferry-share-image:run-1",
        ] {
            assert_eq!(execution_arn_of(Some(bad), &machines), None, "{bad}");
        }
        assert_eq!(execution_arn_of(None, &machines), None);
        assert_eq!(execution_arn_of(Some(arn), &[]), None);
        assert_eq!(
            waiting_machines(Some(" ferry-migrate-instance, other ,")),
            vec!["ferry-migrate-instance".to_string(), "other".to_string()]
        );
        assert!(waiting_machines(None).is_empty());
    }

    #[test]
    fn an_event_from_a_target_account_is_told_apart() {
        let hub = "111122223333";
        let own = parse_ami_state_change(&event("available"))
            .unwrap()
            .unwrap();
        assert_eq!(own.account.as_deref(), Some(hub));
        assert!(!own.is_from_another_account(hub));
        let mut forwarded = event("available");
        forwarded["account"] = json!("444455556666");
        let change = parse_ami_state_change(&forwarded).unwrap().unwrap();
        assert!(change.is_from_another_account(hub));
        let err = poll_now(&change);
        assert_eq!(err.name, ErrorName::PollNow);
        assert!(err.name.is_retryable());
        assert!(err.message.contains("444455556666"), "{}", err.message);
        // No (or no valid) account: taken as the hub's own, never searched for.
        for account in [json!(null), json!("not-an-account")] {
            let mut e = event("available");
            e["account"] = account;
            let change = parse_ami_state_change(&e).unwrap().unwrap();
            assert_eq!(change.account, None);
            assert!(!change.is_from_another_account(hub));
        }
    }

    #[test]
    fn the_copy_machine_and_the_hub_account_come_from_one_arn() {
        let arn = "arn:aws:states:eu-west-1:111122223333:stateMachine:ferry-copy-image";
        assert_eq!(
            copy_machine(Some(arn)),
            Some(("111122223333".to_string(), arn.to_string()))
        );
        for bad in [
            "",
            "ferry-copy-image",
            "arn:aws:states:eu-west-1:111122223333:execution:ferry-copy-image:run",
            "arn:aws:states:eu-west-1:1111:stateMachine:ferry-copy-image",
            "arn:aws:states:eu-west-1:111122223333:stateMachine:",
            "arn:aws:lambda:eu-west-1:111122223333:stateMachine:x",
        ] {
            assert_eq!(copy_machine(Some(bad)), None, "{bad}");
        }
        assert_eq!(copy_machine(None), None);
    }

    #[test]
    fn a_copy_image_wait_names_its_copy() {
        // copy-image's WaitCopy payload: {"plan", "copy": {"imageId", ...}, "taskToken"}.
        let copy = json!({"FunctionName": "copy-wait", "Payload": {"plan": {"request": {}},
            "copy": {"imageId": "ami-0123456789abcdef0", "state": "pending", "attempt": 1},
            "taskToken": "t-target"}});
        let history = [HistoryEntry {
            kind: "TaskScheduled".into(),
            parameters: Some(copy.to_string()),
        }];
        assert_eq!(
            find_waiter(&history, "ami-0123456789abcdef0"),
            Waiter::Token("t-target".into())
        );
    }

    #[test]
    fn a_closed_task_is_not_an_error() {
        assert!(task_already_closed(Some("TaskTimedOut")));
        assert!(task_already_closed(Some("TaskDoesNotExist")));
        assert!(!task_already_closed(Some("InvalidToken")));
        assert!(!task_already_closed(Some("AccessDeniedException")));
        assert!(!task_already_closed(None));
    }
}
