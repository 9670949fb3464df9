//! Dry runs in the state machines: in every machine a Choice `DryRun?` comes right after
//! the Preflight, its dry-run branch reaches the End state `Planned` and no Lambda Task
//! (nothing that could make a change) on the way, and the outputs `Planned` builds have
//! the shapes `ferry_core::*::dry_run` documents.

use ferry_core::distribute::dry_run::{DistributeDryRun, PlannedCopy};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

fn machine(name: &str) -> Value {
    let path = format!(
        "{}/../../statemachines/{name}.asl.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Each machine and the state its `DryRun?` follows: the Preflight, or in revoke-share
/// (one Lambda, no separate Preflight) `RevokeShare`, which parses, reads and, in a dry
/// run, removes nothing.
const MACHINES: [(&str, &str); 5] = [
    ("migrate-instance", "Preflight"),
    ("share-image", "Preflight"),
    ("revoke-share", "RevokeShare"),
    ("copy-image", "Preflight"),
    ("distribute-image", "Preflight"),
];

/// Every state of a machine by name, Map iterations included (names are unique across a
/// state machine).
fn all_states(states: &Value, out: &mut BTreeMap<String, Value>) {
    for (name, state) in states.as_object().unwrap() {
        assert!(
            out.insert(name.clone(), state.clone()).is_none(),
            "state name {name} is used twice"
        );
        for key in ["Iterator", "ItemProcessor"] {
            if let Some(inner) = state.get(key) {
                all_states(&inner["States"], out);
            }
        }
        for branch in state["Branches"].as_array().into_iter().flatten() {
            all_states(&branch["States"], out);
        }
    }
}

/// The states a state can go to next: Next, Default, each Choice, each Catch, and the
/// start of a Map's iteration.
fn successors(state: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in ["Next", "Default"] {
        if let Some(n) = state[key].as_str() {
            out.push(n.to_string());
        }
    }
    for list in ["Choices", "Catch"] {
        for c in state[list].as_array().into_iter().flatten() {
            out.push(c["Next"].as_str().unwrap().to_string());
        }
    }
    for key in ["Iterator", "ItemProcessor"] {
        if let Some(inner) = state.get(key) {
            out.push(inner["StartAt"].as_str().unwrap().to_string());
        }
    }
    out
}

/// Every state reachable from `start` (itself included).
fn reachable(states: &BTreeMap<String, Value>, start: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![start.to_string()];
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let state = states
            .get(&name)
            .unwrap_or_else(|| panic!("no state {name}"));
        todo.extend(successors(state));
    }
    seen
}

fn is_lambda_task(state: &Value) -> bool {
    state["Type"] == "Task"
        && state["Resource"]
            .as_str()
            .is_some_and(|r| r.ends_with("FunctionArn}"))
}

/// The `DryRun?` Choice: one choice, on the dryRun flag being true (with IsPresent where
/// the flag may be missing), to `Planned` or the first state of a dry-run path; the
/// Default is the run.
fn dry_run_branch(choice: &Value) -> (String, String) {
    assert_eq!(choice["Type"], "Choice");
    let choices = choice["Choices"].as_array().unwrap();
    assert_eq!(choices.len(), 1, "{choice}");
    let rule = &choices[0];
    let conditions: Vec<&Value> = match rule.get("And") {
        Some(all) => all.as_array().unwrap().iter().collect(),
        None => vec![rule],
    };
    assert!(
        conditions.iter().any(|c| c["Variable"]
            .as_str()
            .is_some_and(|v| v.ends_with(".dryRun"))
            && c["BooleanEquals"] == true),
        "DryRun? does not test dryRun == true: {choice}"
    );
    (
        rule["Next"].as_str().unwrap().to_string(),
        choice["Default"].as_str().unwrap().to_string(),
    )
}

#[test]
fn every_machine_chooses_dry_run_right_after_preflight_and_plans_without_a_lambda_task() {
    for (name, preflight) in MACHINES {
        let m = machine(name);
        let mut states = BTreeMap::new();
        all_states(&m["States"], &mut states);
        assert_eq!(
            states[preflight]["Next"], "DryRun?",
            "{name}: {preflight} is not followed by DryRun?"
        );
        assert!(
            states[preflight].get("End").is_none(),
            "{name}: {preflight} ends"
        );
        let (dry, run) = dry_run_branch(&states["DryRun?"]);
        assert_ne!(run, "Planned", "{name}: a run goes to Planned");
        // the dry-run branch: only Choices, Passes, Fails and nested dry runs, to Planned
        let path = reachable(&states, &dry);
        assert!(path.contains("Planned"), "{name}: Planned is not reached");
        let planned = &states["Planned"];
        assert_eq!(planned["Type"], "Pass", "{name}");
        assert_eq!(planned["End"], true, "{name}: Planned must end");
        assert!(successors(planned).is_empty(), "{name}: Planned goes on");
        for state in &path {
            let s = &states[state];
            assert!(
                !is_lambda_task(s),
                "{name}: the dry-run branch reaches the Lambda Task {state}"
            );
            if s["Type"] == "Task" {
                // Only distribute-image nests: each nested start is a dry run.
                assert_eq!(name, "distribute-image", "{state}");
                assert_eq!(
                    s["Resource"], "arn:aws:states:::states:startExecution.sync:2",
                    "{state}"
                );
                let input = &s["Parameters"];
                assert!(
                    input["Input"]["dryRun"] == true || input["Input.$"] == "$.share",
                    "{state}: a nested execution that is not a dry run: {input}"
                );
            }
            // and nothing of the run: no state the run path needs only
            assert!(
                !s.to_string().contains("\"Rollback\""),
                "{name}: {state} can reach Rollback"
            );
        }
        // the run does not reach Planned
        assert!(
            !reachable(&states, &run).contains("Planned"),
            "{name}: the run can end as a dry run"
        );
    }
}

#[test]
fn planned_returns_the_report_preflight_built() {
    for name in ["migrate-instance", "share-image", "copy-image"] {
        let m = machine(name);
        assert_eq!(m["States"]["Planned"]["OutputPath"], "$.report", "{name}");
        assert_eq!(
            m["States"]["DryRun?"]["Choices"][0]["Variable"],
            "$.plan.dryRun"
        );
    }
    // revoke-share: RevokeShare's dry-run output is the report itself; a run's has no
    // dryRun field, hence IsPresent first.
    let m = machine("revoke-share");
    let s = &m["States"];
    assert!(s["Planned"].get("OutputPath").is_none() && s["Planned"].get("Parameters").is_none());
    assert_eq!(s["DryRun?"]["Choices"][0]["And"][0]["IsPresent"], true);
    assert_eq!(s["Revoked"]["Type"], "Succeed");
}

/// The keys of a `Parameters` object, without the `.$` of paths.
fn keys(parameters: &Value) -> BTreeSet<String> {
    parameters
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.trim_end_matches(".$").to_string())
        .collect()
}

fn serialized_keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn distribute_image_builds_the_documented_report() {
    let m = machine("distribute-image");
    let mut states = BTreeMap::new();
    all_states(&m["States"], &mut states);
    let planned = &states["Planned"]["Parameters"];
    assert_eq!(
        keys(planned),
        ["dryRun", "workflow", "plan", "warnings"]
            .map(String::from)
            .into()
    );
    assert_eq!(planned["dryRun"], true);
    assert_eq!(planned["workflow"], "distribute-image");
    let plan = DistributeDryRun {
        image_id: String::new(),
        share_execution_arn: String::new(),
        share: ferry_core::dry_run::DryRunReport::new(
            "share-image",
            serde_json::from_value(json!({
                "imageId": "", "region": "", "ownerAccountId": "",
                "targets": {"accountIds": [], "organizationArns": [],
                            "organizationalUnitArns": [], "public": false},
                "reencrypt": null, "launchPermissions": [], "snapshotPermissions": [],
                "grants": [], "grantOperations": [], "keyPolicyNeeded": null}))
            .unwrap(),
            vec![],
        ),
        copies: vec![],
        kept_shared: vec![],
        resolved_image: None,
    };
    assert_eq!(
        keys(&planned["plan"]),
        serialized_keys(&serde_json::to_value(plan).unwrap())
    );
    // every line of a target has PlannedCopy's fields, whatever happened
    let line = serialized_keys(
        &serde_json::to_value(PlannedCopy {
            account_id: String::new(),
            region: String::new(),
            execution_name: String::new(),
            status: String::new(),
            copy_name: None,
            target_kms_key_arn: None,
            revoke_after_copy: None,
            warnings: vec![],
            error: None,
            cause: None,
        })
        .unwrap(),
    );
    for state in [
        "CopyPlanned",
        "CopyRefusedReported",
        "CopyRefusedUnnamed",
        "CopyNotPlanned",
    ] {
        let p = &states[state];
        assert_eq!(keys(&p["Parameters"]), line, "{state}");
        assert_eq!(p["End"], true, "{state}");
    }
    assert_eq!(states["CopyPlanned"]["Parameters"]["status"], "PLANNED");
    // the copies are dry runs given the share's dry-run output, at most 20 at a time
    let map = &states["PlanCopies"];
    assert_eq!(
        map["MaxConcurrency"],
        states["CopyToTargets"]["MaxConcurrency"]
    );
    assert_eq!(map["ItemSelector"]["share.$"], "$.shared.result");
    let copy = &states["PlanCopy"]["Parameters"]["Input"];
    assert_eq!(copy["dryRun"], true);
    assert_eq!(copy["share.$"], "$.share");
    // a refused share fails the dry run with share-image's own name, as a run
    assert_eq!(states["PlanShare"]["Catch"][0]["Next"], "ShareFailed");
    // the copy request the real Map builds, plus dryRun
    let real = keys(&states["CopyToTarget"]["Parameters"]["Input"]);
    let mut dry = keys(copy);
    dry.remove("dryRun");
    assert_eq!(real, dry);
}
