//! The layout promise of the README, checked: from any Lambda state of any state machine,
//! its code is found in one step each. State `X` → its function in `template.yaml` → that
//! function's `Binary` → `src/bin/<binary>.rs`, whose `main` serves `<workflow>::<x>` →
//! `src/<workflow>/<x>.rs` (`x` = the state name in snake case) → the pure side in
//! `functions/core/src/<workflow>/`, a folder of the same name.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const WORKFLOWS: [&str; 5] = ["migrate", "share", "copy", "distribute", "fleet"];

fn steps_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn repo() -> PathBuf {
    steps_dir().join("../..")
}

/// `FunctionName` → `Binary` from template.yaml (`Metadata.BuildProperties.Binary`), read
/// line by line: a resource is a key at two spaces of indentation.
fn binaries() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    let mut out = BTreeMap::new();
    let mut resource = None;
    for line in text.lines() {
        if let Some(key) = line.strip_prefix("  ") {
            if !key.starts_with(' ') && key.ends_with(':') {
                resource = Some(key.trim_end_matches(':').to_string());
            }
        }
        if let (Some(binary), Some(r)) = (line.trim().strip_prefix("Binary: "), &resource) {
            out.insert(r.clone(), binary.trim().to_string());
        }
    }
    assert!(!out.is_empty(), "no Binary: in template.yaml");
    out
}

fn snake(state: &str) -> String {
    let mut out = String::new();
    for (i, c) in state.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Every Task state with a Lambda function of the template, in every nested state list.
fn lambda_states(states: &Value, out: &mut Vec<(String, String)>) {
    for (name, state) in states.as_object().unwrap() {
        if let Some(resource) = state["Resource"].as_str() {
            if let Some(function) = resource
                .strip_prefix("${")
                .and_then(|r| r.strip_suffix("Arn}"))
            {
                out.push((name.clone(), function.to_string()));
            }
        }
        for nested in ["Iterator", "ItemProcessor"] {
            if state[nested].is_object() {
                lambda_states(&state[nested]["States"], out);
            }
        }
        for branch in state["Branches"].as_array().into_iter().flatten() {
            lambda_states(&branch["States"], out);
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_lambda_state_leads_to_its_code_in_one_step_each() {
    let binaries = binaries();
    let mut checked = 0;
    for entry in std::fs::read_dir(repo().join("statemachines")).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".asl.json") {
            continue;
        }
        let machine: Value = serde_json::from_str(&read(&path)).unwrap();
        let mut states = Vec::new();
        lambda_states(&machine["States"], &mut states);
        for (state, function) in states {
            let at = format!("{} state {state}", path.display());
            let binary = binaries
                .get(&function)
                .unwrap_or_else(|| panic!("{at}: {function} has no Binary in template.yaml"));
            let main = read(&steps_dir().join(format!("src/bin/{binary}.rs")));
            let module = snake(&state);
            let workflow = WORKFLOWS
                .iter()
                .find(|w| main.contains(&format!("{w}::{module}")))
                .unwrap_or_else(|| {
                    panic!("{at}: src/bin/{binary}.rs serves no <workflow>::{module}")
                });
            let step = steps_dir().join(format!("src/{workflow}/{module}.rs"));
            assert!(step.is_file(), "{at}: {} is missing", step.display());
            let core = repo().join(format!("functions/core/src/{workflow}/mod.rs"));
            assert!(core.is_file(), "{at}: {} is missing", core.display());
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} Lambda states found");
}

#[test]
fn snake_case_of_state_names() {
    assert_eq!(snake("LaunchInstance"), "launch_instance");
    assert_eq!(snake("Preflight"), "preflight");
    assert_eq!(snake("WaitCopy"), "wait_copy");
}
