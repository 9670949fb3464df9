//! SDK-shape tests of the `ImageEvent` function (event-driven waits) with
//! aws-smithy-mocks: which events it acts on, the history it reads, the token it uses,
//! and that it never ends a wait for another image. A call no rule expects panics.

use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice, Image, ImageState, StateReason, Tag};
use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput;
use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput;
use aws_sdk_sfn::operation::send_task_success::{SendTaskSuccessError, SendTaskSuccessOutput};
use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType, TaskScheduledEventDetails};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::DateTime;
use ferry_steps::waits::image_event;
use ferry_steps::Clients;
use serde_json::json;

const IMAGE: &str = "ami-0feedfacefeedface";
const EXECUTION: &str =
    "arn:aws:states:eu-west-1:111122223333:execution:ferry-migrate-instance:move-web-1";

/// copy-image's machine in the hub (account 111122223333, as the events of `event`).
const COPY_MACHINE: &str = "arn:aws:states:eu-west-1:111122223333:stateMachine:ferry-copy-image";
const TARGET: &str = "444455556666";

fn clients(ec2_rules: &[&Rule], sfn_rules: &[&Rule]) -> Clients {
    // As template.yaml sets it for the function (every test of this file sets the same).
    std::env::set_var(
        ferry_steps::waits::WAITING_MACHINES,
        "ferry-migrate-instance",
    );
    std::env::set_var(ferry_core::waits::COPY_MACHINE_ARN, COPY_MACHINE);
    let ec2: aws_sdk_ec2::Client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, ec2_rules, |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
    let none: &[&Rule] = &[];
    let kms: aws_sdk_kms::Client = mock_client!(aws_sdk_kms, RuleMode::MatchAny, none);
    let sts: aws_sdk_sts::Client = mock_client!(aws_sdk_sts, RuleMode::MatchAny, none);
    let sfn: aws_sdk_sfn::Client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, sfn_rules, |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
    Clients::from_parts(ec2, kms, sts).with_sfn(sfn)
}

fn event(state: &str) -> serde_json::Value {
    json!({
        "version": "0",
        "id": "7e1a4f53-0000-0000-0000-000000000001",
        "detail-type": "EC2 AMI State Change",
        "source": "aws.ec2",
        "account": "111122223333",
        "time": "2026-12-02T10:00:00Z",
        "region": "eu-west-1",
        "resources": [format!("arn:aws:ec2:eu-west-1::image/{IMAGE}")],
        "detail": {"RequestId": "r-1", "ImageId": IMAGE, "State": state, "ErrorMessage": ""}
    })
}

fn image(state: ImageState, execution: Option<&str>) -> Image {
    let mut b = Image::builder()
        .image_id(IMAGE)
        .name("ferry-move-web-1")
        .state(state)
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    EbsBlockDevice::builder()
                        .snapshot_id("snap-0000000000000000a")
                        .build(),
                )
                .build(),
        );
    if let Some(arn) = execution {
        b = b.tags(Tag::builder().key("ferry:execution").value(arn).build());
    }
    b.build()
}

fn describe(image: Image) -> Rule {
    mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|r| r.image_ids() == [IMAGE])
        .then_output(move || {
            aws_sdk_ec2::operation::describe_images::DescribeImagesOutput::builder()
                .images(image.clone())
                .build()
        })
}

/// A `.waitForTaskToken` Lambda Task's TaskScheduled event with these Parameters.
fn task_scheduled(id: i64, parameters: serde_json::Value) -> HistoryEvent {
    HistoryEvent::builder()
        .id(id)
        .timestamp(DateTime::from_secs(1_800_000_000 + id))
        .r#type(HistoryEventType::TaskScheduled)
        .task_scheduled_event_details(
            TaskScheduledEventDetails::builder()
                .resource_type("lambda")
                .resource("invoke.waitForTaskToken")
                .region("eu-west-1")
                .parameters(parameters.to_string())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn scheduled(id: i64, image_id: &str, token: &str) -> HistoryEvent {
    task_scheduled(
        id,
        json!({
            "FunctionName": "arn:aws:lambda:eu-west-1:111122223333:function:ferry-wait-image",
            "Payload": {"plan": {}, "image": {"imageId": image_id, "state": "pending"}, "taskToken": token}
        }),
    )
}

fn plain(id: i64, kind: HistoryEventType) -> HistoryEvent {
    HistoryEvent::builder()
        .id(id)
        .timestamp(DateTime::from_secs(1_800_000_000 + id))
        .r#type(kind)
        .build()
        .unwrap()
}

fn history(events: Vec<HistoryEvent>) -> Rule {
    mock!(aws_sdk_sfn::Client::get_execution_history)
        .match_requests(|r| r.execution_arn() == Some(EXECUTION) && r.reverse_order() == Some(true))
        .then_output(move || {
            GetExecutionHistoryOutput::builder()
                .set_events(Some(events.clone()))
                .build()
                .unwrap()
        })
}

/// The newest attempt's token (a Retry gave the wait a second one) gets the image.
#[tokio::test]
async fn an_available_image_ends_the_newest_wait_for_it() {
    let describe = describe(image(ImageState::Available, Some(EXECUTION)));
    let history = history(vec![
        plain(9, HistoryEventType::TaskStarted),
        scheduled(8, IMAGE, "token-2"),
        plain(7, HistoryEventType::TaskTimedOut),
        scheduled(5, IMAGE, "token-1"),
    ]);
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| {
            let output: serde_json::Value = serde_json::from_str(r.output().unwrap()).unwrap();
            r.task_token() == Some("token-2")
                && output["imageId"] == IMAGE
                && output["state"] == "available"
                && output["snapshotIds"] == json!(["snap-0000000000000000a"])
        })
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let out = image_event(
        clients(&[&describe], &[&history, &success]),
        event("available"),
    )
    .await
    .unwrap();
    assert_eq!(out.action, "completed", "{out:?}");
    assert_eq!(out.execution_arn.as_deref(), Some(EXECUTION));
    assert_eq!(success.num_calls(), 1);
}

/// A failed image fails the wait with Ferry.ImageFailed and EC2's reason (the Catch
/// then rolls back); DescribeImages, not the event, says what happened.
#[tokio::test]
async fn a_failed_image_fails_the_wait_by_name() {
    let mut failed = image(ImageState::Failed, Some(EXECUTION));
    failed.state_reason = Some(
        StateReason::builder()
            .code("Client.InternalError")
            .message("snapshot failed")
            .build(),
    );
    let describe = describe(failed);
    let history = history(vec![scheduled(8, IMAGE, "token-1")]);
    let failure = mock!(aws_sdk_sfn::Client::send_task_failure)
        .match_requests(|r| {
            r.task_token() == Some("token-1")
                && r.error() == Some("Ferry.ImageFailed")
                && r.cause().unwrap_or_default().contains("snapshot failed")
        })
        .then_output(|| SendTaskFailureOutput::builder().build());
    let out = image_event(
        clients(&[&describe], &[&history, &failure]),
        event("failed"),
    )
    .await
    .unwrap();
    assert_eq!(out.action, "failed", "{out:?}");
    assert_eq!(failure.num_calls(), 1);
}

/// Nothing is ended for: an image no ferry execution made (no history read), a history
/// whose wait is for another image (an image tagged with someone else's execution ARN
/// cannot end that execution's wait), an execution that has ended, an event that says
/// available while DescribeImages still says pending, and events of other kinds or
/// states (no call at all). Each mock client has no SendTask* rule: a call would panic.
#[tokio::test]
async fn waits_it_does_not_own_are_left_alone() {
    let untagged = describe(image(ImageState::Available, None));
    let out = image_event(clients(&[&untagged], &[]), event("available"))
        .await
        .unwrap();
    assert_eq!(out.action, "ignored");
    assert!(
        out.reason
            .contains("not an image that a waiting ferry execution made"),
        "{out:?}"
    );

    // share-image's re-encrypted copy carries share-image's execution ARN: no history read.
    let shared = describe(image(
        ImageState::Available,
        Some("arn:aws:states:eu-west-1:111122223333:execution:ferry-share-image:share-1"),
    ));
    let out = image_event(clients(&[&shared], &[]), event("available"))
        .await
        .unwrap();
    assert_eq!(out.action, "ignored", "{out:?}");

    let foreign_tag = describe(image(ImageState::Available, Some("i-am-not-an-arn")));
    let out = image_event(clients(&[&foreign_tag], &[]), event("available"))
        .await
        .unwrap();
    assert_eq!(out.action, "ignored");

    let tagged = describe(image(ImageState::Available, Some(EXECUTION)));
    let other_image = history(vec![scheduled(8, "ami-0aaaaaaaaaaaaaaaa", "token-x")]);
    let out = image_event(clients(&[&tagged], &[&other_image]), event("available"))
        .await
        .unwrap();
    assert_eq!(out.action, "ignored");
    assert!(out.reason.contains("no task waits"), "{out:?}");

    let ended = history(vec![
        plain(12, HistoryEventType::ExecutionFailed),
        scheduled(8, IMAGE, "token-1"),
    ]);
    let out = image_event(clients(&[&tagged], &[&ended]), event("available"))
        .await
        .unwrap();
    assert_eq!(out.action, "ignored");
    assert!(out.reason.contains("ended"), "{out:?}");

    let still_pending = describe(image(ImageState::Pending, Some(EXECUTION)));
    let waiting = history(vec![scheduled(8, IMAGE, "token-1")]);
    let out = image_event(clients(&[&still_pending], &[&waiting]), event("available"))
        .await
        .unwrap();
    assert_eq!(out.action, "ignored");
    assert!(out.reason.contains("still pending"), "{out:?}");

    for e in [
        event("pending"),
        event("deregistered"),
        json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}}),
    ] {
        let out = image_event(clients(&[], &[]), e).await.unwrap();
        assert_eq!(out.action, "ignored", "{out:?}");
    }
}

/// A wait whose attempt timed out in the meantime answers TaskTimedOut: the next attempt
/// polls the image itself, so the function reports it and does not fail (a failed
/// invocation would only be retried by Lambda for nothing).
#[tokio::test]
async fn a_wait_that_already_ended_is_not_an_error() {
    let describe = describe(image(ImageState::Available, Some(EXECUTION)));
    let history = history(vec![scheduled(8, IMAGE, "token-1")]);
    let late = mock!(aws_sdk_sfn::Client::send_task_success).then_error(|| {
        SendTaskSuccessError::generic(
            ErrorMetadata::builder()
                .code("TaskTimedOut")
                .message("Task Timed Out")
                .build(),
        )
    });
    let out = image_event(
        clients(&[&describe], &[&history, &late]),
        event("available"),
    )
    .await
    .unwrap();
    assert_eq!(out.action, "alreadyEnded", "{out:?}");
}

/// An event forwarded from target account B (its `account` is B's).
fn target_event(state: &str) -> serde_json::Value {
    let mut e = event(state);
    e["account"] = json!(TARGET);
    e
}

fn copy_execution(name: &str) -> String {
    format!("arn:aws:states:eu-west-1:111122223333:execution:ferry-copy-image:{name}")
}

/// The running copy-image executions, newest first (as ListExecutions gives them).
fn running(names: &'static [&'static str]) -> Rule {
    use aws_sdk_sfn::types::{ExecutionListItem, ExecutionStatus};
    mock!(aws_sdk_sfn::Client::list_executions)
        .match_requests(|r| {
            r.state_machine_arn() == Some(COPY_MACHINE)
                && r.status_filter() == Some(&ExecutionStatus::Running)
                && r.max_results() == Some(ferry_core::waits::MAX_COPY_EXECUTIONS_SEARCHED)
        })
        .then_output(move || {
            aws_sdk_sfn::operation::list_executions::ListExecutionsOutput::builder()
                .set_executions(Some(
                    names
                        .iter()
                        .map(|n| {
                            ExecutionListItem::builder()
                                .execution_arn(copy_execution(n))
                                .state_machine_arn(COPY_MACHINE)
                                .name(*n)
                                .status(ExecutionStatus::Running)
                                .start_date(DateTime::from_secs(1_800_000_000))
                                .build()
                                .unwrap()
                        })
                        .collect(),
                ))
                .build()
                .unwrap()
        })
}

/// copy-image's WaitCopy attempt of execution `name`, waiting for `copy_id`: its newest
/// events (TaskSubmitted, TaskStarted, TaskScheduled with the token), read 10 at most.
fn copy_waiting(name: &'static str, copy_id: &'static str, token: &'static str) -> Rule {
    mock!(aws_sdk_sfn::Client::get_execution_history)
        .match_requests(move |r| {
            r.execution_arn() == Some(copy_execution(name).as_str())
                && r.reverse_order() == Some(true)
                && r.max_results() == Some(10)
        })
        .then_output(move || {
            let scheduled = task_scheduled(
                20,
                json!({"FunctionName": "ferry-copy-wait", "Payload": {
                    "plan": {"request": {"targetAccountId": TARGET}},
                    "copy": {"imageId": copy_id, "state": "pending"},
                    "taskToken": token}}),
            );
            GetExecutionHistoryOutput::builder()
                .events(plain(22, HistoryEventType::TaskSubmitted))
                .events(plain(21, HistoryEventType::TaskStarted))
                .events(scheduled)
                .build()
                .unwrap()
        })
}

/// A target's copy: the hub cannot read it (no DescribeImages: the EC2 mock has no rule),
/// so the running copy-image execution whose WaitCopy waits for that copy is woken with
/// Ferry.PollNow (its Retry polls as the target); never SendTaskSuccess.
#[tokio::test]
async fn a_target_accounts_copy_wakes_the_execution_waiting_for_it() {
    let list = running(&["copy-to-c", "copy-to-b"]);
    let other = copy_waiting("copy-to-c", "ami-0cccccccccccccccc", "token-c");
    let ours = copy_waiting("copy-to-b", IMAGE, "token-b");
    let wake = mock!(aws_sdk_sfn::Client::send_task_failure)
        .match_requests(|r| {
            r.task_token() == Some("token-b")
                && r.error() == Some("Ferry.PollNow")
                && r.cause().is_some_and(|c| c.contains(TARGET))
        })
        .then_output(|| SendTaskFailureOutput::builder().build());
    let sfn: [&Rule; 4] = [&list, &other, &ours, &wake];
    let out = image_event(clients(&[], &sfn), target_event("available"))
        .await
        .unwrap();
    assert_eq!(out.action, "pollNow", "{out:?}");
    assert_eq!(
        out.execution_arn.as_deref(),
        Some(copy_execution("copy-to-b").as_str())
    );
    assert_eq!(wake.num_calls(), 1);
    assert_eq!(
        other.num_calls(),
        1,
        "the newer execution was looked at first"
    );

    // A failed copy wakes it the same way: the poll reads the StateReason as the target.
    let out = image_event(clients(&[], &sfn), target_event("failed"))
        .await
        .unwrap();
    assert_eq!(out.action, "pollNow", "{out:?}");
}

/// A target's event that no running copy-image execution waits for (another team's
/// image in that account, or a copy whose wait already ended) is ignored: no SendTask*
/// rule exists, a call would panic.
#[tokio::test]
async fn a_target_accounts_image_nobody_waits_for_is_ignored() {
    let list = running(&["copy-to-c"]);
    let other = copy_waiting("copy-to-c", "ami-0cccccccccccccccc", "token-c");
    let out = image_event(clients(&[], &[&list, &other]), target_event("available"))
        .await
        .unwrap();
    assert_eq!(out.action, "ignored", "{out:?}");
    assert!(out.reason.contains(TARGET), "{out:?}");
    let none = running(&[]);
    let out = image_event(clients(&[], &[&none]), target_event("available"))
        .await
        .unwrap();
    assert_eq!(out.action, "ignored", "{out:?}");
    // A pending state is not even looked up.
    let out = image_event(clients(&[], &[]), target_event("pending"))
        .await
        .unwrap();
    assert_eq!(out.action, "ignored", "{out:?}");
}
