//! The bad-input corpus (`tests/e2e/corpus/<workflow>.json`): cases as data, read by the
//! corpus runner (tests/bad_input.rs, in the world) and by the schema tests
//! (tests/schemas.rs, without it).

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The five workflows, as their corpus files and state machines are named.
pub const WORKFLOWS: [&str; 5] = [
    "migrate-instance",
    "share-image",
    "revoke-share",
    "copy-image",
    "distribute-image",
];

/// One bad input: what it is, why it is bad, and the error it must be refused with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub why: String,
    pub input: Value,
    pub error: String,
    #[serde(default)]
    pub bug: Option<String>,
}

pub fn corpus_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// Every case of every workflow, in file order; panics on a malformed corpus file.
pub fn corpus() -> Vec<(&'static str, Case)> {
    let mut out = Vec::new();
    for workflow in WORKFLOWS {
        let path = corpus_dir().join(format!("{workflow}.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let cases: Vec<Case> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not an array of cases: {e}", path.display()));
        out.extend(cases.into_iter().map(|c| (workflow, c)));
    }
    out
}

/// The `${NAME}`s in a string.
pub fn placeholders_in(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push(rest[start + 2..start + len].to_string());
        rest = &rest[start + len + 1..];
    }
    out
}

/// Expands `{"$repeat": N, "item": ...}` (with `${INDEX}`) everywhere in `v`.
pub fn expand_repeats(v: &Value) -> Value {
    match v {
        Value::Object(o) if o.contains_key("$repeat") => {
            let n = o["$repeat"].as_u64().expect("$repeat: a count");
            let item = o.get("item").expect("$repeat: an item").to_string();
            Value::Array(
                (0..n)
                    .map(|i| {
                        let text = item.replace("${INDEX}", &format!("{i:03}"));
                        expand_repeats(&serde_json::from_str(&text).unwrap())
                    })
                    .collect(),
            )
        }
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), expand_repeats(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(expand_repeats).collect()),
        other => other.clone(),
    }
}

/// `input` with every `${NAME}` replaced by its fixture.
pub fn substitute(v: &Value, fixtures: &BTreeMap<String, String>) -> Value {
    let replace = |s: &str| {
        let mut s = s.to_string();
        for name in placeholders_in(&s.clone()) {
            let value = fixtures
                .get(&name)
                .unwrap_or_else(|| panic!("no fixture for ${{{name}}}"));
            s = s.replace(&format!("${{{name}}}"), value);
        }
        s
    };
    match v {
        Value::String(s) => Value::String(replace(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, fixtures)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (replace(k), substitute(x, fixtures)))
                .collect(),
        ),
        other => other.clone(),
    }
}
