//! Event-driven waits, the SDK half (the pure half is [`ferry_core::waits`]):
//! ending a `.waitForTaskToken` Task (SendTaskSuccess / SendTaskFailure), finding the
//! Task that waits for an image (GetExecutionHistory), and the `ImageEvent` function that
//! EventBridge invokes with "EC2 AMI State Change" (this account's, from the default bus,
//! and target accounts' copies', forwarded to the hub's image-event bus).

use crate::aws::{aws_error, error_code, tag_map};
use crate::migrate::describe;
use crate::Clients;
use ferry_core::rules::polls::{self, ImagePoll};
use ferry_core::tags::TAG_EXECUTION;
use ferry_core::waits::{self, HistoryEntry, Waiter};
use ferry_core::FerryError;
use serde::Serialize;

/// Ends the wait of `token` with `output` as the Task's result. A task that no longer
/// waits (timed out: the next attempt polls; or already ended) is not an error.
pub async fn complete<T: Serialize>(
    sfn: &aws_sdk_sfn::Client,
    token: &str,
    output: &T,
) -> Result<Ended, FerryError> {
    let output = serde_json::to_string(output)
        .map_err(|e| FerryError::new(ferry_core::ErrorName::AwsError, e.to_string()))?;
    match sfn
        .send_task_success()
        .task_token(token)
        .output(output)
        .send()
        .await
    {
        Ok(_) => Ok(Ended::Now),
        Err(e) if waits::task_already_closed(error_code(&e)) => Ok(Ended::Already),
        Err(e) => Err(aws_error("SendTaskSuccess", e)),
    }
}

/// Ends the wait of `token` with `error` (its name is the Task's error, which the
/// state's Catch matches as if the step had raised it).
pub async fn fail(
    sfn: &aws_sdk_sfn::Client,
    token: &str,
    error: &FerryError,
) -> Result<Ended, FerryError> {
    let cause: String = error.message.chars().take(32_768).collect();
    match sfn
        .send_task_failure()
        .task_token(token)
        .error(error.name.as_str())
        .cause(cause)
        .send()
        .await
    {
        Ok(_) => Ok(Ended::Now),
        Err(e) if waits::task_already_closed(error_code(&e)) => Ok(Ended::Already),
        Err(e) => Err(aws_error("SendTaskFailure", e)),
    }
}

/// The end of one attempt of a wait step (`WaitImage`, share-image's `WaitCopy`), given
/// its poll: without a token (a plain Lambda Task) the poll's result as it is (pending
/// is `Ferry.ImageNotReady`, for the state's Retry); with one, a ready image ends the
/// wait with SendTaskSuccess, pending returns `waiting` and leaves the wait to the
/// image's event or the next attempt, and any other error fails the Task by its name.
pub async fn end_of_attempt<T: Serialize>(
    sfn: &aws_sdk_sfn::Client,
    token: Option<&str>,
    polled: Result<T, FerryError>,
    waiting: T,
) -> Result<T, FerryError> {
    let Some(token) = token else {
        return polled;
    };
    match polled {
        Ok(image) => {
            complete(sfn, token, &image).await?;
            Ok(image)
        }
        Err(e) if e.name == ferry_core::ErrorName::ImageNotReady => Ok(waiting),
        Err(e) => Err(e),
    }
}

/// Whether a SendTask* call ended the wait or found it already over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Now,
    Already,
}

/// How many history pages (100 events each, newest first) the lookup reads: the waiting
/// Task is the execution's current state, so its TaskScheduled is among the newest few.
const HISTORY_PAGES: usize = 3;

/// The Task of `execution_arn` that waits for `image_id`, from its history.
pub async fn waiter(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
    image_id: &str,
) -> Result<Waiter, FerryError> {
    waiter_among(sfn, execution_arn, image_id, HISTORY_PAGES, 100).await
}

/// How many of the newest history events are read per running copy-image execution when
/// looking for the wait of a target account's copy: a waiting `WaitCopy` attempt's newest
/// events are its TaskSubmitted, TaskStarted and TaskScheduled (the last carries the
/// token), so one short page tells whether it waits for this copy.
const COPY_WAIT_HISTORY_EVENTS: i32 = 10;

/// [`waiter`], reading at most `pages` pages of `page_size` events.
async fn waiter_among(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
    image_id: &str,
    pages: usize,
    page_size: i32,
) -> Result<Waiter, FerryError> {
    let mut next: Option<String> = None;
    for _ in 0..pages {
        let page = sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .reverse_order(true)
            .include_execution_data(true)
            .max_results(page_size)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| aws_error("GetExecutionHistory", e))?;
        let entries: Vec<HistoryEntry> = page
            .events()
            .iter()
            .map(|event| HistoryEntry {
                kind: event.r#type().as_str().to_string(),
                parameters: event
                    .task_scheduled_event_details()
                    .map(|d| d.parameters().to_string()),
            })
            .collect();
        match waits::find_waiter(&entries, image_id) {
            Waiter::NotWaiting => {}
            found => return Ok(found),
        }
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    Ok(Waiter::NotWaiting)
}

/// The environment variable naming the state machines whose image waits are event-driven
/// (comma-separated names; template.yaml: `<stack>-migrate-instance,<stack>-share-image`).
pub const WAITING_MACHINES: &str = "FERRY_WAITING_MACHINES";

/// A target account's copy changed (its event was forwarded to the hub's bus): the
/// running copy-image execution whose `WaitCopy` waits for that copy (newest executions
/// first, at most [`waits::MAX_COPY_EXECUTIONS_SEARCHED`]) has its Task failed with
/// `Ferry.PollNow`, so that its Retry polls the copy as the target at once. The hub
/// cannot read the copy itself, and does not take the event's word for its state.
async fn wake_copy_wait(
    sfn: &aws_sdk_sfn::Client,
    machine_arn: &str,
    change: &waits::AmiStateChange,
) -> Result<EventOutcome, FerryError> {
    let id = change.image_id.as_str();
    let running = sfn
        .list_executions()
        .state_machine_arn(machine_arn)
        .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
        .max_results(waits::MAX_COPY_EXECUTIONS_SEARCHED)
        .send()
        .await
        .map_err(|e| aws_error("ListExecutions", e))?;
    for execution in running.executions() {
        let arn = execution.execution_arn();
        let found = waiter_among(sfn, arn, id, 1, COPY_WAIT_HISTORY_EVENTS).await?;
        let Waiter::Token(token) = found else {
            continue;
        };
        let action = match fail(sfn, &token, &waits::poll_now(change)).await? {
            Ended::Now => "pollNow",
            Ended::Already => "alreadyEnded",
        };
        tracing::info!(image_id = id, execution_arn = %arn, action, "target image event");
        return Ok(EventOutcome {
            action: action.into(),
            image_id: Some(id.to_string()),
            execution_arn: Some(arn.to_string()),
            reason: format!(
                "{} in account {}: the wait polls it now",
                change.state,
                change.account.as_deref().unwrap_or("?")
            ),
        });
    }
    Ok(ignored(
        Some(id),
        None,
        &format!(
            "an image of account {}: no running copy-image execution waits for it",
            change.account.as_deref().unwrap_or("?")
        ),
    ))
}

/// What the `ImageEvent` function did with one event (its result, for the logs and the
/// world's invocation records).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventOutcome {
    /// `completed`, `failed` (the wait ended with Ferry.ImageFailed), `pollNow` (a
    /// target's copy: the wait ended with Ferry.PollNow, its Retry polls), `alreadyEnded`
    /// or `ignored`.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    pub reason: String,
}

fn ignored(image_id: Option<&str>, execution_arn: Option<&str>, reason: &str) -> EventOutcome {
    EventOutcome {
        action: "ignored".into(),
        image_id: image_id.map(str::to_string),
        execution_arn: execution_arn.map(str::to_string),
        reason: reason.into(),
    }
}

/// The `ImageEvent` function: an "EC2 AMI State Change" to `available` or `failed` ends
/// the wait of the ferry execution that made the image (its `ferry:execution` tag). What
/// it reports is what DescribeImages says now, not what the event says: events can be
/// late or out of order, and an image the world cannot see yet is left to the next poll.
pub async fn image_event(
    clients: Clients,
    event: serde_json::Value,
) -> Result<EventOutcome, FerryError> {
    let Some(change) = waits::parse_ami_state_change(&event)? else {
        return Ok(ignored(None, None, "not an EC2 AMI State Change event"));
    };
    let id = change.image_id.as_str();
    if !change.ends_a_wait() {
        return Ok(ignored(Some(id), None, &format!("state {}", change.state)));
    }
    let copy_machine = waits::copy_machine(std::env::var(waits::COPY_MACHINE_ARN).ok().as_deref());
    if let Some((hub_account, machine_arn)) = &copy_machine {
        if change.is_from_another_account(hub_account) {
            return wake_copy_wait(&clients.sfn, machine_arn, &change).await;
        }
    }
    let Some(image) = describe::image(&clients.ec2, id).await? else {
        return Ok(ignored(
            Some(id),
            None,
            "DescribeImages does not see it (yet)",
        ));
    };
    let tags = tag_map(image.tags());
    let machines = waits::waiting_machines(std::env::var(WAITING_MACHINES).ok().as_deref());
    let machines: Vec<&str> = machines.iter().map(String::as_str).collect();
    let Some(arn) = waits::execution_arn_of(tags.get(TAG_EXECUTION).map(String::as_str), &machines)
    else {
        return Ok(ignored(
            Some(id),
            None,
            "not an image that a waiting ferry execution made",
        ));
    };
    let token = match waiter(&clients.sfn, &arn, id).await? {
        Waiter::Token(token) => token,
        Waiter::ExecutionEnded => {
            return Ok(ignored(Some(id), Some(&arn), "the execution has ended"))
        }
        Waiter::NotWaiting => {
            return Ok(ignored(
                Some(id),
                Some(&arn),
                "no task waits for this image",
            ))
        }
    };
    let state = describe::image_state(&image);
    let reason = image.state_reason().and_then(|r| r.message());
    let (ended, action, why) = match polls::image_poll(id, &state, reason) {
        Ok(ImagePoll::Available) => (
            complete(&clients.sfn, &token, &describe::image_ref(&image)).await?,
            "completed",
            "available".to_string(),
        ),
        Ok(ImagePoll::NotReady) => {
            return Ok(ignored(
                Some(id),
                Some(&arn),
                &format!(
                    "the event says {}, DescribeImages still {state}",
                    change.state
                ),
            ))
        }
        Err(e) => {
            let why = e.message.clone();
            (fail(&clients.sfn, &token, &e).await?, "failed", why)
        }
    };
    let action = match ended {
        Ended::Now => action,
        Ended::Already => "alreadyEnded",
    };
    tracing::info!(image_id = id, execution_arn = %arn, action, "image event");
    Ok(EventOutcome {
        action: action.into(),
        image_id: Some(id.to_string()),
        execution_arn: Some(arn),
        reason: why,
    })
}
