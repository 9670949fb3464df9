//! The workflow input: built from flags or read from a file, and checked with the same
//! parsers the Preflight steps use before anything is started.

use crate::args::{CopyArgs, MigrateArgs, ShareArgs, Workflow};
use ferry_core::FerryError;
use serde_json::{json, Map, Value};
use std::io::Read;
use std::path::Path;

/// Reads a JSON input from a file, or stdin for `-`.
pub fn read(path: &Path) -> Result<Value, FerryError> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| FerryError::invalid_input(format!("stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| FerryError::invalid_input(format!("{}: {e}", path.display())))?
    };
    serde_json::from_str(&text)
        .map_err(|e| FerryError::invalid_input(format!("{}: not JSON: {e}", path.display())))
}

/// Checks `input` as the workflow's Preflight will, before any AWS call: the same strict
/// parser (unknown fields, types, ids, limits), so a refusal names the field and reason.
pub fn check(workflow: Workflow, input: &Value) -> Result<(), FerryError> {
    use ferry_core::{copy, distribute, migrate, share};
    match workflow {
        Workflow::MigrateInstance => migrate::request::MigrateRequest::parse(input).map(drop),
        Workflow::ShareImage => share::request::ShareRequest::parse(input).map(drop),
        Workflow::RevokeShare => share::revoke::RevokeRequest::parse(input).map(drop),
        Workflow::CopyImage => copy::request::CopyRequest::parse(input).map(drop),
        // share.image (a selector) is checked as ResolveImage will; its owner against
        // the hub only when the run starts (the hub's account is not known here).
        Workflow::DistributeImage => distribute::plan::DistributePlan::check_request(input, None),
        Workflow::MigrateFleet => ferry_core::fleet::request::FleetRequest::parse(input).map(drop),
    }
}

/// The same input with `dryRun: true` (ferry plan).
pub fn dry_run(mut input: Value) -> Result<Value, FerryError> {
    match input.as_object_mut() {
        Some(o) => {
            o.insert("dryRun".into(), Value::Bool(true));
            Ok(input)
        }
        None => Err(FerryError::invalid_input("the input must be a JSON object")),
    }
}

fn put(o: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        o.insert(key.into(), v);
    }
}

fn tags(pairs: &[String]) -> Result<Option<Value>, FerryError> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut out = Map::new();
    for pair in pairs {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            FerryError::invalid_input(format!("--tag {pair:?}: expected KEY=VALUE"))
        })?;
        out.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(Some(Value::Object(out)))
}

fn list(values: &[String]) -> Option<Value> {
    (!values.is_empty()).then(|| json!(values))
}

fn flag(on: bool) -> Option<Value> {
    on.then_some(Value::Bool(true))
}

/// migrate-instance's input from `ferry migrate` flags (only what was given: the
/// workflow applies its own defaults).
pub fn migrate(a: &MigrateArgs) -> Result<Value, FerryError> {
    let mut o = Map::new();
    o.insert("sourceInstanceId".into(), json!(a.instance));
    o.insert("targetSubnetId".into(), json!(a.subnet));
    put(
        &mut o,
        "instanceType",
        a.instance_type.as_ref().map(|t| json!(t)),
    );
    put(&mut o, "securityGroupIds", list(&a.security_groups));
    put(
        &mut o,
        "sourceAction",
        a.source_action.as_ref().map(|t| json!(t)),
    );
    put(&mut o, "stopSource", flag(a.stop_source));
    put(&mut o, "noReboot", flag(a.no_reboot));
    put(&mut o, "keepImage", flag(a.keep_image));
    put(&mut o, "moveElasticIp", flag(a.move_elastic_ip));
    put(&mut o, "tags", tags(&a.tags)?);
    Ok(Value::Object(o))
}

/// share-image's input from `ferry share` flags.
pub fn share(a: &ShareArgs) -> Result<Value, FerryError> {
    let mut o = Map::new();
    o.insert("imageId".into(), json!(a.image));
    put(&mut o, "accountIds", list(&a.accounts));
    put(&mut o, "organizationArns", list(&a.organizations));
    put(&mut o, "organizationalUnitArns", list(&a.ous));
    put(&mut o, "public", flag(a.public));
    put(&mut o, "kmsAccess", a.kms_access.as_ref().map(|t| json!(t)));
    put(
        &mut o,
        "reencryptWith",
        a.reencrypt_with.as_ref().map(|t| json!(t)),
    );
    Ok(Value::Object(o))
}

/// copy-image's input from `ferry copy` flags; `region` is the Region ferry runs in (the
/// default source Region).
pub fn copy(a: &CopyArgs, region: &str) -> Result<Value, FerryError> {
    let mut o = Map::new();
    o.insert("sourceImageId".into(), json!(a.image));
    o.insert(
        "sourceRegion".into(),
        json!(a.source_region.as_deref().unwrap_or(region)),
    );
    o.insert("targetAccountId".into(), json!(a.target_account));
    o.insert("targetRoleArn".into(), json!(a.target_role_arn));
    o.insert("externalId".into(), json!(a.external_id));
    o.insert("targetKmsKeyId".into(), json!(a.kms_key));
    put(
        &mut o,
        "targetRegion",
        a.target_region.as_ref().map(|t| json!(t)),
    );
    put(&mut o, "name", a.copy_name.as_ref().map(|t| json!(t)));
    put(
        &mut o,
        "revokeAfterCopy",
        a.keep_share.then_some(json!(false)),
    );
    put(&mut o, "copyTags", a.no_copy_tags.then_some(json!(false)));
    Ok(Value::Object(o))
}
