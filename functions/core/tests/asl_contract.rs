//! The contract between the error names in `ferry_core::errors` and the state machines:
//! every name an ASL file matches exists, and every retryable name is retried where
//! a step raises it.

use ferry_core::ErrorName;
use serde_json::Value;
use std::path::PathBuf;

fn machines() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../statemachines");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("statemachines/") {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".asl.json") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&text).unwrap(),
            ));
        }
    }
    assert!(!out.is_empty());
    out
}

fn tasks(machine: &Value) -> Vec<(String, Value)> {
    fn walk(states: &Value, out: &mut Vec<(String, Value)>) {
        for (name, state) in states.as_object().unwrap() {
            if state["Type"] == "Task" {
                out.push((name.clone(), state.clone()));
            }
            for key in ["Iterator", "ItemProcessor"] {
                if let Some(inner) = state.get(key) {
                    walk(&inner["States"], out);
                }
            }
            if let Some(branches) = state.get("Branches").and_then(Value::as_array) {
                for b in branches {
                    walk(&b["States"], out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&machine["States"], &mut out);
    out
}

fn retried(task: &Value) -> Vec<String> {
    task["Retry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| {
            r["ErrorEquals"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn every_matched_ferry_name_is_defined() {
    let known: Vec<&str> = ErrorName::ALL.iter().map(|n| n.as_str()).collect();
    for (file, machine) in machines() {
        for (state, task) in tasks(&machine) {
            let caught = task["Catch"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| {
                    c["ErrorEquals"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e.as_str().unwrap().to_string())
                });
            for name in retried(&task).into_iter().chain(caught) {
                if name.starts_with("Ferry.") {
                    assert!(
                        known.contains(&name.as_str()),
                        "{file} {state}: {name} is not an ErrorName"
                    );
                }
            }
        }
    }
}

#[test]
fn every_task_retries_lambda_and_transient_errors() {
    for (file, machine) in machines() {
        for (state, task) in tasks(&machine) {
            let r = retried(&task);
            for name in [
                "Lambda.ServiceException",
                "Lambda.AWSLambdaException",
                "Lambda.SdkClientException",
                "Lambda.TooManyRequestsException",
                // Issue 8, 2.12: a step killed or timed out mid-way is run again (every
                // step is idempotent: ClientTokens, deterministic names and tags).
                "Lambda.ClientExecutionTimeoutException",
                "Lambda.Unknown",
                "Sandbox.Timedout",
                // a runtime killed mid-step ("Runtime exited with error: signal: killed")
                "Runtime.ExitError",
                ErrorName::Throttled.as_str(),
                ErrorName::Transient.as_str(),
            ] {
                assert!(
                    r.iter().any(|x| x == name),
                    "{file} {state} does not retry {name}"
                );
            }
            for retrier in task["Retry"].as_array().unwrap() {
                assert!(
                    retrier["ErrorEquals"] != serde_json::json!(["States.ALL"]),
                    "{file} {state}: blanket retry"
                );
            }
        }
    }
}

#[test]
fn not_ready_errors_are_polled_where_steps_raise_them() {
    let machine = machines()
        .into_iter()
        .find(|(f, _)| f == "migrate-instance.asl.json")
        .unwrap()
        .1;
    let by_name = |state: &str| {
        tasks(&machine)
            .into_iter()
            .find(|(n, _)| n == state)
            .unwrap()
            .1
    };
    for (state, names) in [
        ("CreateImage", vec![ErrorName::ImageNotReady]),
        ("LaunchInstance", vec![ErrorName::InsufficientCapacity]),
        ("VerifyInstance", vec![ErrorName::InstanceNotReady]),
        (
            "Rollback",
            vec![ErrorName::ImageNotReady, ErrorName::InstanceNotReady],
        ),
    ] {
        let r = retried(&by_name(state));
        for n in names {
            assert!(
                r.iter().any(|x| x == n.as_str()),
                "{state} does not retry {n}"
            );
        }
    }
    // Every step after Preflight rolls back; Preflight creates nothing and has no Catch.
    for state in [
        "CreateImage",
        "WaitImage",
        "LaunchInstance",
        "VerifyInstance",
        "Finalize",
    ] {
        assert_eq!(by_name(state)["Catch"][0]["Next"], "Rollback", "{state}");
    }
    assert!(by_name("Preflight").get("Catch").is_none());
    assert_eq!(
        machine["States"]["MigrationFailed"]["ErrorPath"],
        "$.error.Error"
    );
}

/// Event-driven waits (`ferry_core::waits`): every `.waitForTaskToken` Task passes its
/// token, times out (a callback Task without TimeoutSeconds waits for a year) and retries
/// `States.Timeout` as its fallback poll; migrate-instance's WaitImage is one, with the
/// attempt length the core documents and about 33 hours of attempts in all.
#[test]
fn callback_waits_pass_their_token_time_out_and_poll_again() {
    let mut seen = Vec::new();
    for (file, machine) in machines() {
        for (state, task) in tasks(&machine) {
            let resource = task["Resource"].as_str().unwrap_or_default();
            if !resource.ends_with(".waitForTaskToken") {
                continue;
            }
            seen.push(format!("{file} {state}"));
            assert_eq!(
                task["Parameters"]["Payload"]["taskToken.$"], "$$.Task.Token",
                "{file} {state}"
            );
            let timeout = task["TimeoutSeconds"].as_u64().expect("TimeoutSeconds");
            let fallback = task["Retry"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["ErrorEquals"] == serde_json::json!(["States.Timeout"]))
                .unwrap_or_else(|| panic!("{file} {state}: no Retry on States.Timeout"));
            let attempts = fallback["MaxAttempts"].as_u64().unwrap();
            let interval = fallback["IntervalSeconds"].as_u64().unwrap();
            assert_eq!(
                fallback["BackoffRate"], 1,
                "{file} {state}: attempts stay short"
            );
            assert!(
                (timeout + interval) * attempts >= 33 * 3600,
                "{file} {state}: waits only {}s",
                (timeout + interval) * attempts
            );
            if file == "migrate-instance.asl.json" && state == "WaitImage" {
                assert_eq!(timeout, ferry_core::waits::IMAGE_WAIT_ATTEMPT_SECONDS);
                assert_eq!(interval, 1);
            }
        }
    }
    assert!(
        seen.contains(&"migrate-instance.asl.json WaitImage".to_string()),
        "{seen:?}"
    );
}

#[test]
fn error_names_are_unique() {
    let mut names: Vec<&str> = ErrorName::ALL.iter().map(|n| n.as_str()).collect();
    let before = names.len();
    names.sort();
    names.dedup();
    assert_eq!(before, names.len());
}
