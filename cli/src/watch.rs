//! Following an execution: its history as progress on stderr (a live line on a terminal,
//! plain lines otherwise), and its result.

use crate::aws::describe_error;
use crate::CliError;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

/// An execution as it is now, or as it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub execution_arn: String,
    pub status: String,
    pub start_date: Option<String>,
    pub stop_date: Option<String>,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status == "SUCCEEDED"
    }

    pub fn ended(&self) -> bool {
        self.status != "RUNNING" && self.status != "PENDING_REDRIVE"
    }

    /// The one machine-readable result (`--json`).
    pub fn to_json(&self) -> Value {
        json!({
            "executionArn": self.execution_arn,
            "status": self.status,
            "startDate": self.start_date,
            "stopDate": self.stop_date,
            "output": self.output,
            "error": self.error,
            "cause": self.cause,
        })
    }

    /// The error's message: a ferry step's cause is `{"errorType", "errorMessage"}`.
    pub fn message(&self) -> Option<String> {
        let cause = self.cause.as_deref()?;
        match serde_json::from_str::<Value>(cause) {
            Ok(v) => v["errorMessage"]
                .as_str()
                .map(str::to_string)
                .or(Some(cause.to_string())),
            Err(_) => Some(cause.to_string()),
        }
    }
}

fn date(d: Option<&DateTime>) -> Option<String> {
    d.and_then(|d| d.fmt(Format::DateTime).ok())
}

/// DescribeExecution as an [`Outcome`].
pub async fn describe(sfn: &aws_sdk_sfn::Client, arn: &str) -> Result<Outcome, CliError> {
    let d = sfn
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .map_err(|e| CliError::aws(describe_error("DescribeExecution", &e)))?;
    Ok(Outcome {
        execution_arn: arn.to_string(),
        status: d.status().as_str().to_string(),
        start_date: date(Some(d.start_date())),
        stop_date: date(d.stop_date()),
        output: d
            .output()
            .map(|o| serde_json::from_str(o).unwrap_or(json!(o))),
        error: d.error().map(str::to_string),
        cause: d.cause().map(str::to_string),
    })
}

/// Minutes and seconds (hours when there are some).
pub fn elapsed(seconds: i64) -> String {
    let s = seconds.max(0);
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s % 3600 / 60, s % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// What the history says so far, and how to show it.
pub struct Progress {
    live: bool,
    last_id: i64,
    start: Option<i64>,
    state: Option<String>,
    attempts: u32,
    last_error: Option<String>,
    latest: i64,
}

impl Progress {
    /// `live`: a terminal (rewrite one status line); else plain lines only.
    pub fn new(live: bool) -> Self {
        Progress {
            live,
            last_id: 0,
            start: None,
            state: None,
            attempts: 0,
            last_error: None,
            latest: 0,
        }
    }

    fn since_start(&self, at: i64) -> String {
        elapsed(at - self.start.unwrap_or(at))
    }

    /// The lines one event adds (none for most), updating what is known.
    pub fn lines_for(&mut self, e: &HistoryEvent) -> Vec<String> {
        let at = e.timestamp().secs();
        self.latest = self.latest.max(at);
        if self.start.is_none() {
            self.start = Some(at);
        }
        let t = self.since_start(at);
        let mut out = Vec::new();
        if let Some(entered) = e.state_entered_event_details() {
            self.state = Some(entered.name().to_string());
            self.attempts = 0;
            self.last_error = None;
            out.push(format!("[{t}] {}", entered.name()));
            return out;
        }
        match e.r#type() {
            HistoryEventType::LambdaFunctionScheduled | HistoryEventType::TaskScheduled => {
                self.attempts += 1;
                if self.attempts > 1 && !self.live {
                    out.push(format!(
                        "[{t}]   {} attempt {} (after {})",
                        self.state.as_deref().unwrap_or("?"),
                        self.attempts,
                        self.last_error.as_deref().unwrap_or("an error")
                    ));
                }
            }
            HistoryEventType::LambdaFunctionFailed => {
                self.last_error = e
                    .lambda_function_failed_event_details()
                    .and_then(|d| d.error().map(str::to_string));
            }
            HistoryEventType::TaskFailed => {
                self.last_error = e
                    .task_failed_event_details()
                    .and_then(|d| d.error().map(str::to_string));
            }
            HistoryEventType::LambdaFunctionTimedOut | HistoryEventType::TaskTimedOut => {
                self.last_error = Some("States.Timeout".into());
            }
            _ => {}
        }
        out
    }

    /// The live line: current state, elapsed (by the history's clock) and retries.
    pub fn status_line(&self) -> String {
        let retries = if self.attempts > 1 {
            format!(
                " · attempt {} ({})",
                self.attempts,
                self.last_error.as_deref().unwrap_or("retrying")
            )
        } else {
            String::new()
        };
        format!(
            "  … {} · {}{retries}",
            self.state.as_deref().unwrap_or("starting"),
            self.since_start(self.latest),
        )
    }
}

/// The events after `last_id`, oldest first: read newest first (reverseOrder) until a
/// seen one; a service that answers oldest first anyway is read to the end.
async fn new_events(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    last_id: i64,
) -> Result<Vec<HistoryEvent>, CliError> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    'pages: loop {
        let page = sfn
            .get_execution_history()
            .execution_arn(arn)
            .reverse_order(true)
            .include_execution_data(false)
            .max_results(200)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| CliError::aws(describe_error("GetExecutionHistory", &e)))?;
        let page_events = page.events();
        let newest_first = page_events.len() < 2 || page_events[0].id() > page_events[1].id();
        for e in page_events {
            if e.id() <= last_id {
                if newest_first {
                    break 'pages;
                }
                continue;
            }
            events.push(e.clone());
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    events.sort_by_key(|e| e.id());
    Ok(events)
}

/// An event that ends the execution (succeeded, failed, timed out, aborted).
fn is_execution_end(e: &HistoryEvent) -> bool {
    matches!(
        e.r#type(),
        HistoryEventType::ExecutionSucceeded
            | HistoryEventType::ExecutionFailed
            | HistoryEventType::ExecutionTimedOut
            | HistoryEventType::ExecutionAborted
    )
}

/// Follows the execution until it ends, showing its progress on stderr; returns how it
/// ended.
pub async fn follow(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    poll: Duration,
    live: bool,
) -> Result<Outcome, CliError> {
    let mut progress = Progress::new(live);
    let mut err = std::io::stderr();
    loop {
        let events = new_events(sfn, arn, progress.last_id).await?;
        let mut lines = Vec::new();
        for e in &events {
            progress.last_id = progress.last_id.max(e.id());
            lines.extend(progress.lines_for(e));
        }
        if live {
            let _ = write!(err, "\r\x1b[2K");
        }
        for line in lines {
            let _ = writeln!(err, "{line}");
        }
        // The history says when the execution ended; only then is it described (one
        // call per poll while it runs, not two).
        if events.iter().any(is_execution_end) {
            return describe(sfn, arn).await;
        }
        if live {
            let _ = write!(err, "{}", progress.status_line());
            let _ = err.flush();
        }
        tokio::time::sleep(poll).await;
    }
}

/// How an outcome is shown: `--json` prints one JSON object on stdout; otherwise the
/// output (pretty JSON) on stdout and a summary line on stderr. The exit status: 0 when
/// it succeeded or still runs, 1 when it failed, timed out or was aborted.
pub fn report(outcome: &Outcome, json_out: bool) -> u8 {
    if json_out {
        println!("{}", outcome.to_json());
    } else {
        let took = match (&outcome.start_date, &outcome.stop_date) {
            (Some(a), Some(b)) => match (
                DateTime::from_str(a, Format::DateTime),
                DateTime::from_str(b, Format::DateTime),
            ) {
                (Ok(a), Ok(b)) => format!(" in {}", elapsed(b.secs() - a.secs())),
                _ => String::new(),
            },
            _ => String::new(),
        };
        if outcome.succeeded() {
            if let Some(output) = &outcome.output {
                println!(
                    "{}",
                    serde_json::to_string_pretty(output).unwrap_or_default()
                );
            }
            eprintln!("SUCCEEDED{took}: {}", outcome.execution_arn);
        } else if !outcome.ended() {
            eprintln!("{}: {}", outcome.status, outcome.execution_arn);
        } else {
            eprintln!(
                "{}{took}: {}: {}\n  {}",
                outcome.status,
                outcome.error.as_deref().unwrap_or("(no error name)"),
                outcome.message().unwrap_or_default(),
                outcome.execution_arn
            );
        }
    }
    match ExecutionStatus::from(outcome.status.as_str()) {
        ExecutionStatus::Succeeded | ExecutionStatus::Running => 0,
        _ if !outcome.ended() => 0,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::types::{LambdaFunctionFailedEventDetails, StateEnteredEventDetails};

    fn event(
        id: i64,
        secs: i64,
        kind: HistoryEventType,
    ) -> aws_sdk_sfn::types::builders::HistoryEventBuilder {
        HistoryEvent::builder()
            .id(id)
            .timestamp(DateTime::from_secs(secs))
            .r#type(kind)
    }

    #[test]
    fn progress_shows_states_and_retries_with_the_errors_before_them() {
        let entered = |id, secs, name: &str| {
            event(id, secs, HistoryEventType::TaskStateEntered)
                .state_entered_event_details(
                    StateEnteredEventDetails::builder()
                        .name(name)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        };
        let scheduled = |id, secs| {
            event(id, secs, HistoryEventType::LambdaFunctionScheduled)
                .build()
                .unwrap()
        };
        let failed = |id, secs| {
            event(id, secs, HistoryEventType::LambdaFunctionFailed)
                .lambda_function_failed_event_details(
                    LambdaFunctionFailedEventDetails::builder()
                        .error("Ferry.ImageNotReady")
                        .build(),
                )
                .build()
                .unwrap()
        };
        let mut plain = Progress::new(false);
        let mut lines = Vec::new();
        for e in [
            event(1, 1000, HistoryEventType::ExecutionStarted)
                .build()
                .unwrap(),
            entered(2, 1000, "Preflight"),
            scheduled(3, 1001),
            entered(5, 1003, "WaitImage"),
            scheduled(6, 1004),
            failed(7, 1005),
            scheduled(8, 1065),
        ] {
            lines.extend(plain.lines_for(&e));
        }
        assert_eq!(
            lines,
            vec![
                "[0m00s] Preflight",
                "[0m03s] WaitImage",
                "[1m05s]   WaitImage attempt 2 (after Ferry.ImageNotReady)",
            ]
        );
        assert_eq!(
            plain.status_line(),
            "  … WaitImage · 1m05s · attempt 2 (Ferry.ImageNotReady)"
        );
        // On a terminal the retries are on the live line only.
        let mut live = Progress::new(true);
        let n: usize = [
            entered(2, 0, "WaitImage"),
            scheduled(3, 1),
            failed(4, 2),
            scheduled(5, 3),
        ]
        .iter()
        .map(|e| live.lines_for(e).len())
        .sum();
        assert_eq!(n, 1);
    }

    #[test]
    fn outcomes_exit_by_status_and_show_the_steps_message() {
        let failed = Outcome {
            execution_arn: "arn:x".into(),
            status: "FAILED".into(),
            start_date: None,
            stop_date: None,
            output: None,
            error: Some("Ferry.SameAvailabilityZone".into()),
            cause: Some(
                r#"{"errorType":"Ferry.SameAvailabilityZone","errorMessage":"subnet-1 is in us-east-1a"}"#
                    .into(),
            ),
        };
        assert_eq!(
            failed.message().as_deref(),
            Some("subnet-1 is in us-east-1a")
        );
        assert_eq!(report(&failed, true), 1);
        let ok = Outcome {
            status: "SUCCEEDED".into(),
            error: None,
            cause: None,
            ..failed.clone()
        };
        assert_eq!(report(&ok, true), 0);
        let running = Outcome {
            status: "RUNNING".into(),
            ..ok.clone()
        };
        assert!(!running.ended());
        assert_eq!(report(&running, true), 0);
        assert_eq!(elapsed(3725), "1h02m05s");
        assert_eq!(elapsed(65), "1m05s");
    }
}
