//! The `Tally` state: one wave's outcomes into the result table, and whether the next
//! wave starts (`maxFailures`).

use super::plan::{FleetItem, FleetResult, FleetState, Outcome};
use crate::errors::ErrorName;
use crate::io::CaughtError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A nested migrate-instance execution that ended (`StartExecution.sync:2`'s result).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finished {
    pub execution_arn: String,
    /// migrate-instance's output (its MigrationResult, or a dry run's report).
    pub output: Value,
}

/// A nested execution that ran and failed: its own Error and Cause, as the iteration's
/// `ChildFailed` state picks them out of `States.TaskFailed`'s Cause (the child's
/// DescribeExecution, whose input is left behind so a wave's results stay small).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildFailure {
    #[serde(rename = "ExecutionArn", default)]
    pub execution_arn: Option<String>,
    #[serde(rename = "Error", default)]
    pub error: Option<String>,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

/// One Map iteration's outcome: the item and its finished child, or the child's failure,
/// or the Catch of a start that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaveOutcome {
    pub item: FleetItem,
    #[serde(default)]
    pub ok: Option<Finished>,
    #[serde(default)]
    pub child: Option<ChildFailure>,
    #[serde(default)]
    pub error: Option<CaughtError>,
}

/// Tally's input: the loop's state and the wave's outcomes (the Map's result).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TallyInput {
    #[serde(flatten)]
    pub state: FleetState,
    pub wave_results: Vec<WaveOutcome>,
}

/// A result line keeps at most this many characters of a cause (a child's Cause may be
/// up to 32 KB; a hundred of them would not fit the loop's state).
pub const MAX_CAUSE_CHARS: usize = 500;

/// A Lambda step's Cause is its error as JSON (`{"errorType", "errorMessage"}`): the
/// message is what the table shows.
fn readable(cause: String) -> String {
    match serde_json::from_str::<Value>(&cause) {
        Ok(Value::Object(o)) => match o.get("errorMessage").and_then(Value::as_str) {
            Some(m) => m.to_string(),
            None => cause,
        },
        _ => cause,
    }
}

fn shortened(cause: String) -> String {
    if cause.chars().count() <= MAX_CAUSE_CHARS {
        cause
    } else {
        let mut s: String = cause.chars().take(MAX_CAUSE_CHARS).collect();
        s.push_str("… (shortened; the whole cause is in the nested execution)");
        s
    }
}

/// One outcome as a line of the table: succeeded (or planned, in a dry run); skipped
/// when migrate-instance's Preflight refused it (nothing made); rolled back when it
/// failed later (its rollback removed what it made); failed when the nested execution
/// could not even start.
pub fn result_of(outcome: &WaveOutcome) -> FleetResult {
    let item = &outcome.item;
    let mut r = FleetResult {
        source_instance_id: item.source_instance_id.clone(),
        status: Outcome::Succeeded,
        execution_name: Some(item.execution_name.clone()),
        execution_arn: None,
        new_instance_id: None,
        target_availability_zone: None,
        error: None,
        cause: None,
    };
    match (&outcome.ok, &outcome.error) {
        (Some(done), _) => {
            r.execution_arn = Some(done.execution_arn.clone());
            if done.output.get("dryRun") == Some(&Value::Bool(true)) {
                r.status = Outcome::Planned;
                r.target_availability_zone = done.output["plan"]["instance"]["availabilityZone"]
                    .as_str()
                    .map(str::to_string);
            } else {
                r.new_instance_id = done.output["newInstanceId"].as_str().map(str::to_string);
                r.target_availability_zone = done.output["targetAvailabilityZone"]
                    .as_str()
                    .map(str::to_string);
            }
        }
        (None, caught) => {
            let failure = match &outcome.child {
                Some(child) => crate::io::NestedFailure {
                    error: child.error.clone().unwrap_or_default(),
                    cause: child.cause.clone().unwrap_or_default(),
                    execution_arn: child.execution_arn.clone(),
                    from_child: true,
                },
                None => caught.clone().unwrap_or_default().nested(),
            };
            let refused =
                ErrorName::from_error_type(&failure.error).is_some_and(ErrorName::is_refusal);
            r.status = match (failure.from_child, refused) {
                (true, true) => Outcome::Skipped,
                (true, false) => Outcome::RolledBack,
                (false, _) => Outcome::Failed,
            };
            r.execution_arn = failure.execution_arn;
            r.error = Some(if failure.error.is_empty() {
                ErrorName::AwsError.as_str().to_string()
            } else {
                failure.error
            });
            r.cause = Some(shortened(readable(failure.cause)));
        }
    }
    r
}

/// Counts against `maxFailures`: a migration that failed (rolled back, or could not
/// start). A refusal made nothing and does not count.
pub fn is_failure(status: Outcome) -> bool {
    matches!(status, Outcome::RolledBack | Outcome::Failed)
}

/// The state after a wave: its results added (in the wave's order), failures counted,
/// and the next wave made current, unless `maxFailures` was exceeded: then every
/// migration not started yet is reported NOT_STARTED and the loop ends.
pub fn tally(input: TallyInput) -> FleetState {
    let mut state = input.state;
    for outcome in &input.wave_results {
        let r = result_of(outcome);
        if is_failure(r.status) {
            state.failures += 1;
        }
        state.results.push(r);
    }
    let exceeded = state.max_failures.is_some_and(|max| state.failures > max);
    if exceeded && !state.pending.is_empty() {
        state.stopped_early = true;
        for item in state.pending.drain(..).flatten() {
            state.results.push(FleetResult {
                source_instance_id: item.source_instance_id,
                status: Outcome::NotStarted,
                execution_name: Some(item.execution_name),
                execution_arn: None,
                new_instance_id: None,
                target_availability_zone: None,
                error: None,
                cause: Some(format!(
                    "not started: {} migration(s) failed, more than maxFailures {}",
                    state.failures,
                    state.max_failures.unwrap_or_default()
                )),
            });
        }
    }
    state.current = if state.pending.is_empty() {
        Vec::new()
    } else {
        state.pending.remove(0)
    };
    state.more = !state.current.is_empty();
    state.summarize();
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::request::FleetRequest;
    use crate::names::ExecutionContext;
    use serde_json::json;

    fn ctx() -> ExecutionContext {
        ExecutionContext {
            execution_arn: "arn:aws:states:us-east-1:111122223333:execution:ferry-migrate-fleet:f"
                .into(),
            execution_name: "f".into(),
            ..Default::default()
        }
    }

    fn state(n: usize, max_concurrency: usize, max_failures: Option<u32>) -> FleetState {
        let migrations: Vec<Value> = (0..n)
            .map(|i| json!({"sourceInstanceId": format!("i-{:017x}", i), "targetSubnetId": "subnet-0123456789abcdef1"}))
            .collect();
        let r = FleetRequest::parse(&json!({"migrations": migrations, "maxConcurrency": max_concurrency, "maxFailures": max_failures})).unwrap();
        FleetState::new(
            &r,
            crate::fleet::plan::listed_migrations(&r).unwrap(),
            vec![],
            &ctx(),
        )
        .unwrap()
    }

    fn ok(item: &FleetItem) -> WaveOutcome {
        WaveOutcome {
            item: item.clone(),
            ok: Some(Finished {
                execution_arn: format!(
                    "arn:aws:states:us-east-1:111122223333:execution:ferry-migrate-instance:{}",
                    item.execution_name
                ),
                output: json!({"newInstanceId": "i-0ffffffffffffffff", "targetAvailabilityZone": "us-east-1b"}),
            }),
            child: None,
            error: None,
        }
    }

    fn child_failed(item: &FleetItem, error: &str) -> WaveOutcome {
        WaveOutcome {
            item: item.clone(),
            ok: None,
            child: None,
            error: Some(CaughtError {
                error: "States.TaskFailed".into(),
                cause: json!({"ExecutionArn": "arn:aws:states:us-east-1:111122223333:execution:ferry-migrate-instance:x",
                              "Status": "FAILED", "Error": error, "Cause": format!("{error} (test)")}).to_string(),
            }),
        }
    }

    #[test]
    fn each_outcome_gets_its_line() {
        let s = state(4, 4, None);
        let wave: Vec<WaveOutcome> = vec![
            ok(&s.current[0]),
            child_failed(&s.current[1], "Ferry.SameAvailabilityZone"),
            child_failed(&s.current[2], "Ferry.AwsError"),
            WaveOutcome {
                item: s.current[3].clone(),
                ok: None,
                child: None,
                error: Some(CaughtError {
                    error: "StepFunctions.ExecutionLimitExceededException".into(),
                    cause: "too many".into(),
                }),
            },
        ];
        let after = tally(TallyInput {
            state: s,
            wave_results: wave.clone(),
        });
        // as the ASL hands a child's failure over (ChildFailed): the same line
        let picked = WaveOutcome {
            item: wave[2].item.clone(),
            ok: None,
            child: Some(ChildFailure {
                execution_arn: Some(
                    "arn:aws:states:us-east-1:111122223333:execution:ferry-migrate-instance:x"
                        .into(),
                ),
                error: Some("Ferry.AwsError".into()),
                cause: Some("Ferry.AwsError (test)".into()),
            }),
            error: None,
        };
        assert_eq!(result_of(&picked), result_of(&wave[2]));
        let statuses: Vec<Outcome> = after.results.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [
                Outcome::Succeeded,
                Outcome::Skipped,
                Outcome::RolledBack,
                Outcome::Failed
            ]
        );
        assert_eq!(
            after.results[0].new_instance_id.as_deref(),
            Some("i-0ffffffffffffffff")
        );
        assert_eq!(
            after.results[1].error.as_deref(),
            Some("Ferry.SameAvailabilityZone")
        );
        assert!(after.results[2].execution_arn.is_some());
        assert_eq!(
            after.results[3].error.as_deref(),
            Some("StepFunctions.ExecutionLimitExceededException")
        );
        assert_eq!(after.failures, 2, "a refusal does not count");
        assert!(!after.more && !after.stopped_early);
        assert_eq!(after.summary["SUCCEEDED"], 1);
        assert_eq!(after.summary["ROLLED_BACK"], 1);
    }

    #[test]
    fn past_max_failures_no_further_wave_starts() {
        let s = state(5, 2, Some(0));
        let wave = vec![
            ok(&s.current[0]),
            child_failed(&s.current[1], "Ferry.InstanceFailed"),
        ];
        let after = tally(TallyInput {
            state: s,
            wave_results: wave,
        });
        assert!(after.stopped_early);
        assert!(!after.more);
        assert!(after.current.is_empty() && after.pending.is_empty());
        let not_started: Vec<&FleetResult> = after
            .results
            .iter()
            .filter(|r| r.status == Outcome::NotStarted)
            .collect();
        assert_eq!(not_started.len(), 3);
        assert!(not_started[0]
            .cause
            .as_deref()
            .unwrap()
            .contains("maxFailures 0"));
    }

    #[test]
    fn within_max_failures_the_next_wave_starts() {
        let s = state(5, 2, Some(1));
        let next = s.pending[0].clone();
        let wave = vec![
            ok(&s.current[0]),
            child_failed(&s.current[1], "Ferry.InstanceFailed"),
        ];
        let after = tally(TallyInput {
            state: s,
            wave_results: wave,
        });
        assert!(after.more && !after.stopped_early);
        assert_eq!(after.current, next);
        assert_eq!(after.pending.len(), 1);
        // without maxFailures, every wave runs whatever fails
        let s = state(3, 1, None);
        let wave = vec![child_failed(&s.current[0], "Ferry.InstanceFailed")];
        let after = tally(TallyInput {
            state: s,
            wave_results: wave,
        });
        assert!(after.more);
    }

    #[test]
    fn a_dry_run_line_is_planned() {
        let s = state(1, 1, None);
        let mut o = ok(&s.current[0]);
        o.ok.as_mut().unwrap().output = json!({"dryRun": true, "workflow": "migrate-instance", "plan": {"instance": {"availabilityZone": "us-east-1b"}}});
        let after = tally(TallyInput {
            state: s,
            wave_results: vec![o],
        });
        assert_eq!(after.results[0].status, Outcome::Planned);
        assert_eq!(
            after.results[0].target_availability_zone.as_deref(),
            Some("us-east-1b")
        );
    }

    /// At MAX_FLEET migrations, the largest payload, Tally's input at the last wave (90
    /// results, every cause shortened from 32 KB, and the last wave's 10 items with their
    /// children's failures, as ChildFailed hands them over: Error and a Cause of 2 KB),
    /// stays well under Step Functions' 256 KiB.
    #[test]
    fn the_largest_state_fits_the_payload_limit() {
        let n = crate::fleet::MAX_FLEET;
        let mut s = state(n, 10, None);
        let tags: serde_json::Map<String, Value> = (0..20)
            .map(|i| {
                (
                    format!("tag-key-{i:02}-xxxxxxxxxxxx"),
                    json!("v".repeat(64)),
                )
            })
            .collect();
        for item in s.current.iter_mut().chain(s.pending.iter_mut().flatten()) {
            item.input["tags"] = Value::Object(tags.clone());
            item.input["securityGroupIds"] = json!([
                "sg-0123456789abcdef0",
                "sg-0123456789abcdef1",
                "sg-0123456789abcdef2"
            ]);
        }
        let failed = |item: &FleetItem, cause_len: usize| WaveOutcome {
            item: item.clone(),
            ok: None,
            child: Some(ChildFailure {
                execution_arn: Some(format!(
                    "arn:aws:states:us-east-1:111122223333:execution:ferry-migrate-instance:{}",
                    item.execution_name
                )),
                error: Some("Ferry.InstanceFailed".into()),
                cause: Some("c".repeat(cause_len)),
            }),
            error: None,
        };
        while !s.pending.is_empty() {
            let wave: Vec<WaveOutcome> = s.current.iter().map(|i| failed(i, 32_000)).collect();
            s = tally(TallyInput {
                state: s,
                wave_results: wave,
            });
        }
        assert_eq!(s.results.len(), n - 10);
        let last: Vec<WaveOutcome> = s.current.iter().map(|i| failed(i, 2_000)).collect();
        let input = TallyInput {
            state: s.clone(),
            wave_results: last.clone(),
        };
        let size = serde_json::to_string(&input).unwrap().len();
        assert!(
            size < crate::distribute::SFN_PAYLOAD_LIMIT * 3 / 4,
            "{size} B"
        );
        let after = tally(input);
        let out = serde_json::to_string(&after).unwrap().len();
        assert!(out < crate::distribute::SFN_PAYLOAD_LIMIT / 2, "{out} B");
    }
}
