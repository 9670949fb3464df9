//! The copy-image and distribute-image state machines against ferry-core's rules: the
//! copy is polled with production intervals, every state after the copy was requested
//! and before it is available rolls back (a finished copy never does), and distribute-image never runs more than 20 copies at a time (rule 8).

use ferry_core::distribute::MAX_CONCURRENT_COPIES;
use ferry_core::ErrorName;
use serde_json::Value;

fn machine(file: &str) -> Value {
    let path = format!("{}/../../statemachines/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn retrier<'a>(state: &'a Value, error: &str) -> Option<&'a Value> {
    state["Retry"].as_array()?.iter().find(|r| {
        r["ErrorEquals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == error)
    })
}

#[test]
fn copy_image_polls_for_hours_and_rolls_back_after_the_copy_was_requested() {
    let m = machine("copy-image.asl.json");
    let s = &m["States"];
    // The copy is waited for on its event (a .waitForTaskToken Task, issue 10; the
    // attempts and their timeout are checked for every callback wait in asl_contract.rs):
    // the target's forwarded event wakes it with Ferry.PollNow, retried at once, as the
    // poll (as the target) is what ends it.
    let wait = &s["WaitCopy"];
    assert_eq!(
        wait["Resource"],
        "arn:aws:states:::lambda:invoke.waitForTaskToken"
    );
    assert_eq!(wait["Parameters"]["FunctionName"], "${CopyWaitFunctionArn}");
    assert_eq!(wait["Parameters"]["Payload"]["copy.$"], "$.copy");
    assert_eq!(wait["Parameters"]["Payload"]["plan.$"], "$.plan");
    assert_eq!(
        wait["TimeoutSeconds"].as_u64(),
        Some(ferry_core::waits::IMAGE_WAIT_ATTEMPT_SECONDS)
    );
    assert!(retrier(wait, "States.Timeout").is_some());
    assert!(retrier(wait, ErrorName::ImageNotReady.as_str()).is_none());
    let woken = retrier(wait, ErrorName::PollNow.as_str()).expect("WaitCopy is woken");
    assert_eq!(woken["IntervalSeconds"], 1);
    assert_eq!(woken["BackoffRate"], 1);
    assert!(woken["MaxAttempts"].as_u64().unwrap() >= 2);
    for state in ["StartCopy", "WaitCopy"] {
        let last = s[state]["Catch"].as_array().unwrap().last().unwrap();
        assert_eq!(last["Next"], "Rollback", "{state}");
        assert_eq!(last["ErrorEquals"][0], "States.ALL", "{state}");
    }
    // Issue 8 2.9 (rule 23): a copy that failed on its KMS key is made again after a
    // wait, as long as StartCopy gave it a next one (recopyAfterSeconds), else rolled back.
    let key = &s["WaitCopy"]["Catch"][0];
    assert_eq!(key["ErrorEquals"][0], ErrorName::CopyKeyNotUsable.as_str());
    assert_eq!(key["Next"], "CopyAgain?");
    assert_eq!(key["ResultPath"], "$.error");
    let again = &s["CopyAgain?"];
    assert_eq!(again["Choices"][0]["Variable"], "$.copy.recopyAfterSeconds");
    assert_eq!(again["Choices"][0]["Next"], "WaitBeforeCopyAgain");
    assert_eq!(again["Default"], "Rollback");
    assert_eq!(
        s["WaitBeforeCopyAgain"]["SecondsPath"],
        "$.copy.recopyAfterSeconds"
    );
    assert_eq!(s["WaitBeforeCopyAgain"]["Next"], "StartCopy");
    assert_eq!(s["StartCopy"]["Parameters"]["copy.$"], "$.copy");
    assert!(retrier(&s["StartCopy"], ErrorName::ImageNotReady.as_str()).is_some());
    // Issue 8 2.9 (rule 19): a share that has not reached the target yet is waited for,
    // for a bounded time that covers minutes (no jitter: the total is what it says).
    let share = retrier(&s["Preflight"], ErrorName::ShareNotYetVisible.as_str())
        .expect("Preflight waits for a share to reach the target");
    assert_eq!(share["JitterStrategy"], "NONE");
    let (mut delay, mut total) = (share["IntervalSeconds"].as_f64().unwrap(), 0.0);
    for _ in 0..share["MaxAttempts"].as_u64().unwrap() {
        total += delay.min(share["MaxDelaySeconds"].as_f64().unwrap());
        delay *= share["BackoffRate"].as_f64().unwrap();
    }
    assert!((900.0..=3600.0).contains(&total), "waits {total} s in all");
    // Once the copy is available the target owns it: a failed revoke is reported, and
    // nothing after WaitCopy leads to Rollback.
    assert_eq!(s["RevokeShare"]["Catch"][0]["ErrorEquals"][0], "States.ALL");
    assert_eq!(s["RevokeShare"]["Catch"][0]["Next"], "RevokeFailed");
    assert_eq!(s["RevokeFailed"]["Next"], "Copied");
    for state in [
        "RevokeAfterCopy?",
        "RevokeShare",
        "RevokeFailed",
        "NotRevoked",
        "Copied",
    ] {
        let text = s[state].to_string();
        assert!(!text.contains("\"Rollback\""), "{state} can reach Rollback");
    }
    assert!(
        s["Preflight"].get("Catch").is_none(),
        "nothing to roll back at preflight"
    );
    assert_eq!(s["RevokeShare"]["Resource"], "${RevokeShareFunctionArn}");
    assert_eq!(s["CopyFailed"]["ErrorPath"], "$.error.Error");
    assert_eq!(s["CopyFailed"]["CausePath"], "$.error.Cause");
    assert!(retrier(&s["Rollback"], ErrorName::ImageNotReady.as_str()).is_some());
}

#[test]
fn distribute_image_runs_at_most_20_nested_copies_and_catches_each() {
    let m = machine("distribute-image.asl.json");
    let map = &m["States"]["CopyToTargets"];
    assert_eq!(map["Type"], "Map");
    let max = map["MaxConcurrency"].as_u64().unwrap();
    assert!((1..=20).contains(&max), "MaxConcurrency {max}");
    assert_eq!(max, u64::from(MAX_CONCURRENT_COPIES));
    let copy = &map["ItemProcessor"]["States"]["CopyToTarget"];
    assert_eq!(
        copy["Resource"],
        "arn:aws:states:::states:startExecution.sync:2"
    );
    assert_eq!(
        copy["Parameters"]["StateMachineArn"],
        "${CopyImageStateMachineArn}"
    );
    assert_eq!(copy["Catch"][0]["ErrorEquals"][0], "States.ALL");
    assert_eq!(copy["Catch"][0]["Next"], "TargetFailed");
    // A failed child must not be started again under the same name.
    assert!(retrier(copy, "States.TaskFailed").is_none());
    assert!(retrier(copy, "States.ALL").is_none());
    assert_eq!(
        m["States"]["Share"]["Resource"],
        "arn:aws:states:::states:startExecution.sync:2"
    );
}
