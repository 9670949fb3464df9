//! The share-image and revoke-share state machines: the copy's event-driven wait,
//! cleanup of the copy after any failure past Preflight, the original error at the end.

use serde_json::Value;
use std::path::PathBuf;

fn machine(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../statemachines")
        .join(format!("{name}.asl.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn retried(state: &Value) -> Vec<String> {
    state["Retry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["ErrorEquals"].as_array().unwrap().clone())
        .map(|e| e.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn share_image_polls_the_copy_and_cleans_up_after_failures() {
    let m = machine("share-image");
    let s = &m["States"];
    // The copy is waited for on its event (a .waitForTaskToken Task, issue 10): each
    // attempt polls once and times out; the Retry on States.Timeout is the slow poll.
    let wait = &s["WaitCopy"];
    assert_eq!(
        wait["Resource"],
        "arn:aws:states:::lambda:invoke.waitForTaskToken"
    );
    assert_eq!(
        wait["Parameters"]["FunctionName"],
        "${ShareWaitCopyFunctionArn}"
    );
    assert_eq!(wait["Parameters"]["Payload"]["copy.$"], "$.copy");
    assert!(retried(wait).contains(&"States.Timeout".to_string()));
    assert!(!retried(wait).contains(&"Ferry.ImageNotReady".to_string()));
    for state in ["CopyImage", "WaitCopy", "Apply"] {
        assert_eq!(s[state]["Catch"][0]["Next"], "Cleanup", "{state}");
        assert_eq!(s[state]["Catch"][0]["ResultPath"], "$.error", "{state}");
    }
    assert!(s["Preflight"].get("Catch").is_none());
    assert_eq!(
        s["Preflight"]["Parameters"]["context"]["executionArn.$"],
        "$$.Execution.Id"
    );
    assert_eq!(s["Cleanup"]["Next"], "ShareFailed");
    assert_eq!(s["Cleanup"]["Catch"][0]["Next"], "ShareFailed");
    assert_eq!(s["ShareFailed"]["ErrorPath"], "$.error.Error");
    assert_eq!(s["ShareFailed"]["CausePath"], "$.error.Cause");
}

#[test]
fn revoke_share_passes_the_request_through_unchanged() {
    // copy-image invokes RevokeShareFunction with the same input shape.
    let m = machine("revoke-share");
    let task = &m["States"]["RevokeShare"];
    assert!(task.get("Parameters").is_none() && task.get("InputPath").is_none());
    assert_eq!(task["Resource"], "${RevokeShareFunctionArn}");
}
