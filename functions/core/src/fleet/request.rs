//! The migrate-fleet request: `migrations` (migrate-instance inputs, each checked by
//! [`MigrateRequest::parse`]) or `selector` + `targetSubnetIds` (+ `options`, the
//! migrate-instance fields every selected instance gets), and the loop's bounds.

use super::{DEFAULT_MAX_CONCURRENCY, MAX_FLEET};
use crate::errors::{ErrorName, FerryError};
use crate::migrate::request::MigrateRequest;
use crate::rules::ids::check_resource_id;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selector {
    /// Every tag must match (`tag:<key>` = value); at least one.
    pub tags: BTreeMap<String, String>,
    /// Only instances in this Availability Zone (default: any).
    #[serde(default)]
    pub availability_zone: Option<String>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawFleet {
    #[serde(default)]
    migrations: Option<Vec<Value>>,
    #[serde(default)]
    selector: Option<Selector>,
    #[serde(default)]
    target_subnet_ids: Option<Vec<String>>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
    #[serde(default)]
    max_concurrency: Option<usize>,
    #[serde(default)]
    max_failures: Option<u32>,
    #[serde(default)]
    dry_run: Option<bool>,
}

/// Which instances: given one by one, or found by tags.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The migrate-instance inputs, checked.
    Migrations(Vec<Value>),
    /// Found by the Preflight (DescribeInstances), each sent to a target subnet
    /// ([`assign_subnets`]) with `options`.
    Selector {
        selector: Selector,
        target_subnet_ids: Vec<String>,
        options: Map<String, Value>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FleetRequest {
    pub source: Source,
    pub max_concurrency: usize,
    pub max_failures: Option<u32>,
    pub dry_run: bool,
}

/// What the Preflight read of one selected instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceFact {
    pub instance_id: String,
    pub availability_zone: String,
    pub vpc_id: String,
}

/// What the Preflight read of one target subnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetFact {
    pub subnet_id: String,
    pub availability_zone: String,
    pub vpc_id: String,
}

/// (source instance, target subnet) for each selected instance that has one.
pub type Assigned = Vec<(String, String)>;

/// An instance the selector found that no migration is planned for, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unassigned {
    pub instance_id: String,
    pub reason: String,
}

fn check_az(field: &str, az: &str) -> Result<(), FerryError> {
    // us-east-1a, eu-central-2b, us-gov-west-1a, local zones like us-west-2-lax-1a
    let ok = az.len() >= 4
        && az.len() <= 64
        && az.chars().last().is_some_and(|c| c.is_ascii_lowercase())
        && az
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && az.chars().any(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "{field}: {az:?} is not an Availability Zone name (e.g. us-east-1a)"
        )))
    }
}

impl FleetRequest {
    pub fn parse(value: &Value) -> Result<FleetRequest, FerryError> {
        if !value.is_object() {
            return Err(FerryError::invalid_input(
                "the request must be a JSON object with migrations, or selector and targetSubnetIds",
            ));
        }
        let raw: RawFleet = serde_json::from_value(value.clone())
            .map_err(|e| FerryError::invalid_input(format!("request: {e}")))?;
        let dry_run = raw.dry_run.unwrap_or(false);
        let max_concurrency = raw.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY);
        if !(1..=MAX_FLEET).contains(&max_concurrency) {
            return Err(FerryError::invalid_input(format!(
                "maxConcurrency: 1 to {MAX_FLEET} (got {max_concurrency})"
            )));
        }
        let source = match (raw.migrations, raw.selector) {
            (Some(_), Some(_)) => {
                return Err(FerryError::invalid_input(
                    "give migrations or selector, not both",
                ))
            }
            (None, None) => {
                return Err(FerryError::invalid_input(
                    "give migrations (migrate-instance inputs) or selector and targetSubnetIds",
                ))
            }
            (Some(migrations), None) => {
                if raw.target_subnet_ids.is_some() || raw.options.is_some() {
                    return Err(FerryError::invalid_input(
                        "targetSubnetIds and options go with selector; each migration names its own targetSubnetId",
                    ));
                }
                Source::Migrations(check_migrations(migrations, dry_run)?)
            }
            (None, Some(selector)) => {
                if selector.tags.is_empty() {
                    return Err(FerryError::invalid_input(
                        "selector.tags: at least one tag (an empty selector would select every instance)",
                    ));
                }
                if let Some(az) = &selector.availability_zone {
                    check_az("selector.availabilityZone", az)?;
                }
                let target_subnet_ids = raw.target_subnet_ids.unwrap_or_default();
                if target_subnet_ids.is_empty() {
                    return Err(FerryError::invalid_input(
                        "targetSubnetIds: at least one subnet to move the selected instances to",
                    ));
                }
                let mut seen = BTreeSet::new();
                for (i, s) in target_subnet_ids.iter().enumerate() {
                    check_resource_id(&format!("targetSubnetIds[{i}]"), "subnet", s)?;
                    if !seen.insert(s) {
                        return Err(FerryError::invalid_input(format!(
                            "targetSubnetIds[{i}]: {s} is listed twice"
                        )));
                    }
                }
                let options = raw.options.unwrap_or_default();
                for key in ["sourceInstanceId", "targetSubnetId", "dryRun"] {
                    if options.contains_key(key) {
                        return Err(FerryError::invalid_input(format!(
                            "options.{key}: set per instance by the selector (dryRun: on the fleet request)"
                        )));
                    }
                }
                // The options as migrate-instance would check them, with stand-in ids.
                let mut probe = options.clone();
                probe.insert("sourceInstanceId".into(), json!("i-00000000000000000"));
                probe.insert("targetSubnetId".into(), json!("subnet-00000000000000000"));
                MigrateRequest::parse(&Value::Object(probe))
                    .map_err(|e| FerryError::invalid_input(format!("options: {}", e.message)))?;
                Source::Selector {
                    selector,
                    target_subnet_ids,
                    options,
                }
            }
        };
        Ok(FleetRequest {
            source,
            max_concurrency,
            max_failures: raw.max_failures,
            dry_run,
        })
    }
}

/// Each migration parsed as migrate-instance parses it (`dryRun` is the fleet's), 1 to
/// [`MAX_FLEET`] of them, no source instance twice: one migration per source at a time.
fn check_migrations(migrations: Vec<Value>, dry_run: bool) -> Result<Vec<Value>, FerryError> {
    if migrations.is_empty() || migrations.len() > MAX_FLEET {
        return Err(FerryError::invalid_input(format!(
            "migrations: 1 to {MAX_FLEET} per execution (got {}); split larger fleets over several executions",
            migrations.len()
        )));
    }
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for (i, m) in migrations.into_iter().enumerate() {
        if m.get("dryRun").is_some() {
            return Err(FerryError::invalid_input(format!(
                "migrations[{i}].dryRun: set dryRun on the migrate-fleet request itself"
            )));
        }
        let parsed = MigrateRequest::parse(&m)
            .map_err(|e| FerryError::invalid_input(format!("migrations[{i}]: {}", e.message)))?;
        if let Some(first) = seen.insert(parsed.source_instance_id.clone(), i) {
            return Err(FerryError::invalid_input(format!(
                "migrations[{i}]: {} is already migrated by migrations[{first}] (one migration per source instance at a time)",
                parsed.source_instance_id
            )));
        }
        let mut m = m;
        if dry_run {
            m["dryRun"] = json!(true);
        }
        out.push(m);
    }
    Ok(out)
}

/// The selector's instances, each to a target subnet: the first of `targetSubnetIds` in
/// the instance's VPC and in another Availability Zone. An instance without one is
/// reported, not migrated. Refused: a target subnet that does not exist
/// (`Ferry.SubnetNotFound`), two target subnets of one VPC in the same AZ (which one
/// would be meant?), more than [`MAX_FLEET`] instances.
pub fn assign_subnets(
    instances: &[InstanceFact],
    target_subnet_ids: &[String],
    subnets: &[SubnetFact],
) -> Result<(Assigned, Vec<Unassigned>), FerryError> {
    let mut ordered: Vec<&SubnetFact> = Vec::new();
    for id in target_subnet_ids {
        let s = subnets.iter().find(|s| &s.subnet_id == id).ok_or_else(|| {
            FerryError::new(
                ErrorName::SubnetNotFound,
                format!("targetSubnetIds: {id} does not exist in this account and Region"),
            )
        })?;
        if let Some(twin) = ordered
            .iter()
            .find(|o| o.vpc_id == s.vpc_id && o.availability_zone == s.availability_zone)
        {
            return Err(FerryError::invalid_input(format!(
                "targetSubnetIds: {} and {} are both in {} of {}: give one target subnet per Availability Zone",
                twin.subnet_id, s.subnet_id, s.availability_zone, s.vpc_id
            )));
        }
        ordered.push(s);
    }
    if instances.len() > MAX_FLEET {
        return Err(FerryError::invalid_input(format!(
            "selector: {} instances match, at most {MAX_FLEET} per execution; narrow the selector (e.g. availabilityZone) or add a tag",
            instances.len()
        )));
    }
    let mut assigned = Vec::new();
    let mut unassigned = Vec::new();
    let mut seen = BTreeSet::new();
    for i in instances {
        if !seen.insert(&i.instance_id) {
            continue; // DescribeInstances lists each once; be safe
        }
        match ordered
            .iter()
            .find(|s| s.vpc_id == i.vpc_id && s.availability_zone != i.availability_zone)
        {
            Some(s) => assigned.push((i.instance_id.clone(), s.subnet_id.clone())),
            None => unassigned.push(Unassigned {
                instance_id: i.instance_id.clone(),
                reason: format!(
                    "no target subnet in its VPC {} outside its Availability Zone {}",
                    i.vpc_id, i.availability_zone
                ),
            }),
        }
    }
    Ok((assigned, unassigned))
}

/// A selected instance's migrate-instance input: the options and its ids.
pub fn migration_for(
    instance_id: &str,
    subnet_id: &str,
    options: &Map<String, Value>,
    dry_run: bool,
) -> Value {
    let mut m = options.clone();
    m.insert("sourceInstanceId".into(), json!(instance_id));
    m.insert("targetSubnetId".into(), json!(subnet_id));
    if dry_run {
        m.insert("dryRun".into(), json!(true));
    }
    Value::Object(m)
}

/// The JSON Schema of migrate-fleet's input.
#[cfg(feature = "schema")]
pub fn input_schema() -> schemars::Schema {
    schemars::schema_for!(RawFleet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(i: &str) -> Value {
        json!({"sourceInstanceId": i, "targetSubnetId": "subnet-0123456789abcdef1"})
    }

    fn refused(v: Value, says: &str) {
        let e = FleetRequest::parse(&v).unwrap_err();
        assert_eq!(e.name, ErrorName::InvalidInput, "{v}");
        assert!(e.message.contains(says), "{v}: {}", e.message);
    }

    #[test]
    fn a_list_of_migrations_with_defaults() {
        let r = FleetRequest::parse(
            &json!({"migrations": [m("i-0123456789abcdef0"), m("i-0123456789abcdef1")]}),
        )
        .unwrap();
        assert_eq!(r.max_concurrency, DEFAULT_MAX_CONCURRENCY);
        assert_eq!(r.max_failures, None);
        assert!(!r.dry_run);
        let Source::Migrations(ms) = r.source else {
            panic!()
        };
        assert_eq!(ms.len(), 2);
        assert!(ms[0].get("dryRun").is_none());
        // the fleet's dryRun reaches every migration
        let r = FleetRequest::parse(&json!({"migrations": [m("i-0123456789abcdef0")], "dryRun": true, "maxConcurrency": 3, "maxFailures": 0})).unwrap();
        assert_eq!((r.max_concurrency, r.max_failures), (3, Some(0)));
        let Source::Migrations(ms) = r.source else {
            panic!()
        };
        assert_eq!(ms[0]["dryRun"], true);
    }

    #[test]
    fn bad_fleets_are_refused_by_name() {
        refused(json!([m("i-0123456789abcdef0")]), "JSON object");
        refused(json!({}), "give migrations");
        refused(json!({"migrations": []}), "1 to 100");
        refused(
            json!({"migrations": vec![m("i-0123456789abcdef0"); 101]}),
            "1 to 100",
        );
        refused(
            json!({"migrations": [m("i-0123456789abcdef0"), m("i-0123456789abcdef0")]}),
            "already migrated by migrations[0]",
        );
        refused(
            json!({"migrations": [{"sourceInstanceId": "i-1"}]}),
            "migrations[0]",
        );
        refused(
            json!({"migrations": [{"sourceInstanceId": "i-0123456789abcdef0", "targetSubnetId": "subnet-0123456789abcdef1", "dryRun": true}]}),
            "on the migrate-fleet request",
        );
        refused(
            json!({"migrations": [m("i-0123456789abcdef0")], "maxConcurrency": 0}),
            "maxConcurrency",
        );
        refused(
            json!({"migrations": [m("i-0123456789abcdef0")], "maxConcurrency": 101}),
            "maxConcurrency",
        );
        refused(
            json!({"migrations": [m("i-0123456789abcdef0")], "maxFailures": -1}),
            "request:",
        );
        refused(
            json!({"migrations": [m("i-0123456789abcdef0")], "targetSubnetIds": ["subnet-0123456789abcdef1"]}),
            "go with selector",
        );
        refused(
            json!({"migrations": [m("i-0123456789abcdef0")], "concurrency": 5}),
            "unknown field",
        );
        refused(
            json!({"migrations": [m("i-0123456789abcdef0")], "selector": {"tags": {"a": "b"}}}),
            "not both",
        );
        refused(
            json!({"selector": {"tags": {}}, "targetSubnetIds": ["subnet-0123456789abcdef1"]}),
            "at least one tag",
        );
        refused(
            json!({"selector": {"tags": {"a": "b"}}}),
            "targetSubnetIds: at least one",
        );
        refused(
            json!({"selector": {"tags": {"a": "b"}, "availabilityZone": "US-EAST"}, "targetSubnetIds": ["subnet-0123456789abcdef1"]}),
            "Availability Zone",
        );
        refused(
            json!({"selector": {"tags": {"a": "b"}}, "targetSubnetIds": ["subnet-0123456789abcdef1", "subnet-0123456789abcdef1"]}),
            "twice",
        );
        refused(
            json!({"selector": {"tags": {"a": "b"}}, "targetSubnetIds": ["sn-1"]}),
            "targetSubnetIds[0]",
        );
        refused(
            json!({"selector": {"tags": {"a": "b"}}, "targetSubnetIds": ["subnet-0123456789abcdef1"], "options": {"targetSubnetId": "subnet-0123456789abcdef1"}}),
            "options.targetSubnetId",
        );
        refused(
            json!({"selector": {"tags": {"a": "b"}}, "targetSubnetIds": ["subnet-0123456789abcdef1"], "options": {"sourceAction": "explode"}}),
            "options:",
        );
    }

    #[test]
    fn a_selector_with_options() {
        let r = FleetRequest::parse(&json!({"selector": {"tags": {"app": "web"}, "availabilityZone": "us-east-1a"},
            "targetSubnetIds": ["subnet-0123456789abcdef1"], "options": {"sourceAction": "stop", "keepImage": true}})).unwrap();
        let Source::Selector {
            selector,
            target_subnet_ids,
            options,
        } = r.source
        else {
            panic!()
        };
        assert_eq!(selector.availability_zone.as_deref(), Some("us-east-1a"));
        assert_eq!(target_subnet_ids, ["subnet-0123456789abcdef1"]);
        let one = migration_for(
            "i-0123456789abcdef0",
            "subnet-0123456789abcdef1",
            &options,
            true,
        );
        assert_eq!(one["sourceAction"], "stop");
        assert_eq!(one["dryRun"], true);
        MigrateRequest::parse(&one).unwrap();
    }

    fn inst(id: &str, az: &str, vpc: &str) -> InstanceFact {
        InstanceFact {
            instance_id: id.into(),
            availability_zone: az.into(),
            vpc_id: vpc.into(),
        }
    }
    fn sub(id: &str, az: &str, vpc: &str) -> SubnetFact {
        SubnetFact {
            subnet_id: id.into(),
            availability_zone: az.into(),
            vpc_id: vpc.into(),
        }
    }

    #[test]
    fn each_instance_goes_to_the_first_target_subnet_of_its_vpc_in_another_az() {
        let subnets = [
            sub("subnet-b", "us-east-1b", "vpc-1"),
            sub("subnet-c", "us-east-1c", "vpc-1"),
            sub("subnet-x", "us-east-1a", "vpc-2"),
        ];
        let ids: Vec<String> = subnets.iter().map(|s| s.subnet_id.clone()).collect();
        let (assigned, unassigned) = assign_subnets(
            &[
                inst("i-a", "us-east-1a", "vpc-1"),
                inst("i-b", "us-east-1b", "vpc-1"),
                inst("i-z", "us-east-1a", "vpc-2"),
                inst("i-q", "us-east-1a", "vpc-3"),
            ],
            &ids,
            &subnets,
        )
        .unwrap();
        assert_eq!(
            assigned,
            vec![
                ("i-a".into(), "subnet-b".into()),
                ("i-b".into(), "subnet-c".into())
            ]
        );
        let why: Vec<&str> = unassigned.iter().map(|u| u.instance_id.as_str()).collect();
        assert_eq!(why, ["i-z", "i-q"]);
        assert!(unassigned[0]
            .reason
            .contains("outside its Availability Zone us-east-1a"));
    }

    #[test]
    fn target_subnets_must_exist_and_be_one_per_az() {
        let e = assign_subnets(&[], &["subnet-b".into()], &[]).unwrap_err();
        assert_eq!(e.name, ErrorName::SubnetNotFound);
        let subnets = [
            sub("subnet-b", "us-east-1b", "vpc-1"),
            sub("subnet-b2", "us-east-1b", "vpc-1"),
        ];
        let e =
            assign_subnets(&[], &["subnet-b".into(), "subnet-b2".into()], &subnets).unwrap_err();
        assert!(
            e.message
                .contains("one target subnet per Availability Zone"),
            "{e}"
        );
        let many: Vec<InstanceFact> = (0..101)
            .map(|i| inst(&format!("i-{i}"), "us-east-1a", "vpc-1"))
            .collect();
        let e = assign_subnets(&many, &["subnet-b".into()], &subnets[..1]).unwrap_err();
        assert!(e.message.contains("at most 100"), "{e}");
    }
}
