//! The `migrate-instance` request: what the console, a schedule or a pipeline sends.

use crate::errors::FerryError;
use crate::rules::ids::{check_instance_type_name, check_resource_id};
use crate::tags::check_user_tag;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What to do with the source instance once the new one is verified.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SourceAction {
    /// Leave the source as it is (stopped, if `stopSource` stopped it).
    #[default]
    Keep,
    Stop,
    Terminate,
}

/// The raw request. `null` means "use the default"; unknown fields are refused.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawMigrateRequest {
    source_instance_id: String,
    target_subnet_id: String,
    #[serde(default)]
    instance_type: Option<String>,
    #[serde(default)]
    security_group_ids: Option<Vec<String>>,
    #[serde(default)]
    no_reboot: Option<bool>,
    #[serde(default)]
    stop_source: Option<bool>,
    #[serde(default)]
    source_action: Option<SourceAction>,
    #[serde(default)]
    keep_image: Option<bool>,
    #[serde(default)]
    move_elastic_ip: Option<bool>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    dry_run: Option<bool>,
}

/// A validated request with every default applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrateRequest {
    pub source_instance_id: String,
    pub target_subnet_id: String,
    /// `None`: keep the source's type.
    pub instance_type: Option<String>,
    /// `None`: keep the source's security groups (then the target subnet must share its VPC).
    pub security_group_ids: Option<Vec<String>>,
    pub no_reboot: bool,
    pub stop_source: bool,
    pub source_action: SourceAction,
    pub keep_image: bool,
    pub move_elastic_ip: bool,
    pub tags: BTreeMap<String, String>,
    /// Preflight only: end with the plan ([`crate::dry_run`]), change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

impl MigrateRequest {
    /// Parses and validates a request: unknown fields, wrong types, malformed ids and
    /// reserved tag keys are refused with `Ferry.InvalidInput`.
    pub fn parse(value: &serde_json::Value) -> Result<MigrateRequest, FerryError> {
        if !value.is_object() {
            return Err(FerryError::invalid_input(
                "the request must be a JSON object with sourceInstanceId and targetSubnetId",
            ));
        }
        let raw: RawMigrateRequest = serde_json::from_value(value.clone())
            .map_err(|e| FerryError::invalid_input(format!("request: {e}")))?;
        let request = MigrateRequest {
            source_instance_id: raw.source_instance_id,
            target_subnet_id: raw.target_subnet_id,
            instance_type: raw.instance_type,
            security_group_ids: raw.security_group_ids,
            no_reboot: raw.no_reboot.unwrap_or(false),
            stop_source: raw.stop_source.unwrap_or(false),
            source_action: raw.source_action.unwrap_or_default(),
            keep_image: raw.keep_image.unwrap_or(false),
            move_elastic_ip: raw.move_elastic_ip.unwrap_or(true),
            tags: raw.tags.unwrap_or_default(),
            dry_run: raw.dry_run.unwrap_or(false),
        };
        request.validate()?;
        Ok(request)
    }

    fn validate(&self) -> Result<(), FerryError> {
        check_resource_id("sourceInstanceId", "i", &self.source_instance_id)?;
        check_resource_id("targetSubnetId", "subnet", &self.target_subnet_id)?;
        if let Some(groups) = &self.security_group_ids {
            if groups.is_empty() {
                return Err(FerryError::invalid_input(
                    "securityGroupIds: give at least one id, or null to keep the source's",
                ));
            }
            for group in groups {
                check_resource_id("securityGroupIds", "sg", group)?;
            }
        }
        if let Some(instance_type) = &self.instance_type {
            check_instance_type_name(instance_type)?;
        }
        for (key, value) in &self.tags {
            check_user_tag(key, value)?;
        }
        Ok(())
    }
}

/// The JSON Schema of migrate-instance's input: generated from the very struct the
/// Preflight parses the input into (`schemas/migrate-instance.input.json`).
#[cfg(feature = "schema")]
pub fn input_schema() -> schemars::Schema {
    schemars::schema_for!(RawMigrateRequest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::ErrorName;
    use serde_json::json;

    fn minimal() -> serde_json::Value {
        json!({"sourceInstanceId": "i-0123456789abcdef0", "targetSubnetId": "subnet-0fedcba9876543210"})
    }

    #[test]
    fn defaults_are_applied() {
        let r = MigrateRequest::parse(&minimal()).unwrap();
        assert_eq!(r.instance_type, None);
        assert_eq!(r.security_group_ids, None);
        assert!(!r.no_reboot && !r.stop_source && !r.keep_image);
        assert!(r.move_elastic_ip);
        assert_eq!(r.source_action, SourceAction::Keep);
        assert!(r.tags.is_empty());
        assert!(!r.dry_run);
    }

    #[test]
    fn dry_run_is_a_strict_bool_and_unknown_fields_stay_refused() {
        let mut v = minimal();
        v["dryRun"] = json!(true);
        assert!(MigrateRequest::parse(&v).unwrap().dry_run);
        v["dryRun"] = json!(null);
        assert!(!MigrateRequest::parse(&v).unwrap().dry_run);
        v["dryRun"] = json!(false);
        assert!(!MigrateRequest::parse(&v).unwrap().dry_run);
        for bad in [json!("true"), json!(1), json!({}), json!([true])] {
            let mut v = minimal();
            v["dryRun"] = bad;
            refused(v);
        }
        let mut v = minimal();
        v["dryRun"] = json!(true);
        v["dry_run"] = json!(true);
        assert!(refused(v).message.contains("dry_run"));
        let mut v = minimal();
        v["dryRun"] = json!(true);
        v["sourceInstanceId"] = json!("i-xyz");
        refused(v);
    }

    #[test]
    fn nulls_mean_defaults_and_values_are_kept() {
        let r = MigrateRequest::parse(&json!({
            "sourceInstanceId": "i-0123456789abcdef0", "targetSubnetId": "subnet-0fedcba9876543210",
            "instanceType": null, "securityGroupIds": null, "noReboot": true, "stopSource": null,
            "sourceAction": "terminate", "keepImage": true, "moveElasticIp": false,
            "tags": {"team": "payments"}
        }))
        .unwrap();
        assert!(r.no_reboot && r.keep_image && !r.move_elastic_ip && !r.stop_source);
        assert_eq!(r.source_action, SourceAction::Terminate);
        assert_eq!(r.tags["team"], "payments");
    }

    fn refused(v: serde_json::Value) -> FerryError {
        let e = MigrateRequest::parse(&v).unwrap_err();
        assert_eq!(e.name, ErrorName::InvalidInput, "{e}");
        e
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = minimal();
        v["targetAz"] = json!("us-east-1b");
        assert!(refused(v).message.contains("targetAz"));
    }

    #[test]
    fn wrong_types_are_refused() {
        let mut v = minimal();
        v["noReboot"] = json!("yes");
        refused(v);
        let mut v = minimal();
        v["securityGroupIds"] = json!("sg-0123456789abcdef0");
        refused(v);
        let mut v = minimal();
        v["sourceAction"] = json!("delete");
        refused(v);
        refused(json!(["i-0123456789abcdef0"]));
    }

    #[test]
    fn missing_required_fields_are_refused() {
        assert!(refused(json!({"sourceInstanceId": "i-0123456789abcdef0"}))
            .message
            .contains("targetSubnetId"));
    }

    #[test]
    fn malformed_ids_are_refused() {
        let mut v = minimal();
        v["sourceInstanceId"] = json!("i-xyz");
        assert!(refused(v).message.contains("sourceInstanceId"));
        let mut v = minimal();
        v["targetSubnetId"] = json!("vpc-0fedcba9876543210");
        refused(v);
        let mut v = minimal();
        v["securityGroupIds"] = json!(["sg-0123456789abcdef0", "default"]);
        refused(v);
        let mut v = minimal();
        v["securityGroupIds"] = json!([]);
        refused(v);
        let mut v = minimal();
        v["instanceType"] = json!("huge");
        refused(v);
    }

    #[test]
    fn reserved_tag_keys_are_refused() {
        let mut v = minimal();
        v["tags"] = json!({"aws:cloudformation:stack-name": "x"});
        refused(v);
        let mut v = minimal();
        v["tags"] = json!({"ferry:execution": "mine"});
        refused(v);
    }
}
