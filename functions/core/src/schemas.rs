//! JSON Schemas of the six workflow inputs (feature `schema`), generated from the very
//! structs each Preflight deserializes the input into (serde's field names, required
//! fields, types, enums, `additionalProperties: false` from `deny_unknown_fields`). The
//! parsers then check what a schema cannot say (id formats, limits, combinations). The
//! repository keeps them in `schemas/<workflow>.input.json`; `ferry schema <workflow>`
//! prints them.

use serde_json::Value;

/// The workflows, as their state machines and schema files are named.
pub const WORKFLOWS: [&str; 6] = [
    "migrate-instance",
    "share-image",
    "revoke-share",
    "copy-image",
    "distribute-image",
    "migrate-fleet",
];

/// The input schema of `workflow`, with its `$id` and title; `None` for an unknown name.
pub fn input_schema(workflow: &str) -> Option<Value> {
    let schema = match workflow {
        "migrate-instance" => crate::migrate::request::input_schema(),
        "share-image" => crate::share::request::input_schema(),
        "revoke-share" => crate::share::revoke::input_schema(),
        "copy-image" => crate::copy::request::input_schema(),
        "distribute-image" => crate::distribute::plan::input_schema(),
        "migrate-fleet" => crate::fleet::request::input_schema(),
        _ => return None,
    };
    let mut value = serde_json::to_value(schema).ok()?;
    if let Some(o) = value.as_object_mut() {
        o.insert(
            "$id".into(),
            Value::String(format!("urn:ferry:schema:{workflow}:input")),
        );
        o.insert(
            "title".into(),
            Value::String(format!("ferry {workflow} input")),
        );
        o.insert(
            "description".into(),
            Value::String(format!(
                "The input of ferry's {workflow} state machine (Step Functions console, ferry run, a schedule or the request bus). Generated from the struct the workflow's Preflight parses the input into; the Preflight also checks id formats, limits and combinations."
            )),
        );
    }
    Some(value)
}
