//! The JSON Schemas of the workflow inputs (schemas/<workflow>.input.json), without the
//! world: they are the ones generated from the structs each Preflight parses into
//! (ferry_core::schemas); good inputs pass both the schema and the parser; the bad-input
//! corpus is refused by the parser, and by the schema wherever its fault is one of shape
//! (an unknown or missing field, a wrong type), while inputs the parser accepts are never
//! refused by the schema.

use ferry_core::schemas::{input_schema, WORKFLOWS};
use ferry_e2e::corpus::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn schema_path(workflow: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas")
        .join(format!("{workflow}.input.json"))
}

fn validator(workflow: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&input_schema(workflow).unwrap()).expect("a valid JSON Schema")
}

/// The parser the workflow's Preflight runs first (before any AWS call).
fn parse(workflow: &str, input: &Value) -> Result<(), ferry_core::FerryError> {
    use ferry_core::{copy, distribute, migrate, share};
    match workflow {
        "migrate-instance" => migrate::request::MigrateRequest::parse(input).map(drop),
        "share-image" => share::request::ShareRequest::parse(input).map(drop),
        "revoke-share" => share::revoke::RevokeRequest::parse(input).map(drop),
        "copy-image" => copy::request::CopyRequest::parse(input).map(drop),
        "distribute-image" => {
            distribute::plan::DistributePlan::check_request(input, Some("111122223333"))
        }
        "migrate-fleet" => ferry_core::fleet::request::FleetRequest::parse(input).map(drop),
        other => panic!("no parser for {other}"),
    }
}

/// Well-formed stand-ins for the corpus's placeholders (the runner in the world puts
/// real resources there; here only their form matters).
fn fixtures() -> BTreeMap<String, String> {
    [
        ("REGION", "us-east-1"),
        ("HUB_ACCOUNT", "111122223333"),
        (
            "HUB_KEY",
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890aa",
        ),
        (
            "DISABLED_KEY",
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ),
        ("SOURCE_INSTANCE", "i-0123456789abcdef0"),
        ("SOURCE_SUBNET", "subnet-0123456789abcdef0"),
        ("TARGET_SUBNET", "subnet-0123456789abcdef1"),
        ("SOURCE_SG", "sg-0123456789abcdef0"),
        ("OTHER_VPC_SG", "sg-0123456789abcdef1"),
        ("STORE_INSTANCE", "i-0123456789abcdef1"),
        ("TERMINATED_INSTANCE", "i-0123456789abcdef2"),
        ("TWO_NIC_INSTANCE", "i-0123456789abcdef3"),
        ("MANY_TAGS_VOLUME_INSTANCE", "i-0123456789abcdef4"),
        ("IMAGE", "ami-0123456789abcdef0"),
        ("CMK_IMAGE", "ami-0123456789abcdef1"),
        ("EBS_IMAGE", "ami-0123456789abcdef2"),
        ("SHARED_IMAGE", "ami-0123456789abcdef3"),
        ("FOREIGN_IMAGE", "ami-0123456789abcdef4"),
        ("TARGET_ACCOUNT", "222233334444"),
        ("OTHER_ACCOUNT", "555566667777"),
        (
            "TARGET_ROLE",
            "arn:aws:iam::222233334444:role/ferry/ferry-target",
        ),
        ("EXTERNAL_ID", "ferry-ext-0123"),
        (
            "TARGET_KEY",
            "arn:aws:kms:us-east-1:222233334444:key/1234abcd-12ab-34cd-56ef-1234567890ac",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn the_schemas_in_the_repository_are_the_generated_ones() {
    for workflow in WORKFLOWS {
        let generated =
            serde_json::to_string_pretty(&input_schema(workflow).unwrap()).unwrap() + "\n";
        let path = schema_path(workflow);
        if std::env::var("FERRY_WRITE_SCHEMAS").is_ok() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
        }
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            kept,
            generated,
            "{} is not the schema the code generates: run FERRY_WRITE_SCHEMAS=1 cargo test --workspace --test schemas",
            path.display()
        );
        assert!(
            kept.contains("\"additionalProperties\": false"),
            "{workflow}: unknown fields are refused"
        );
    }
}

/// Inputs as the README and the tests write them: the schema and the parser accept each.
#[test]
fn good_inputs_pass_the_schema_and_the_parser() {
    let target = json!({"accountId": "222233334444", "roleArn": "arn:aws:iam::222233334444:role/ferry/ferry-target",
                        "externalId": "ferry-ext-0123", "kmsKeyId": "arn:aws:kms:us-east-1:222233334444:key/1234abcd-12ab-34cd-56ef-1234567890ac"});
    let good: Vec<(&str, Value)> = vec![
        (
            "migrate-instance",
            json!({"sourceInstanceId": "i-0123456789abcdef0", "targetSubnetId": "subnet-0123456789abcdef1"}),
        ),
        (
            "migrate-instance",
            json!({"sourceInstanceId": "i-0123456789abcdef0", "targetSubnetId": "subnet-0123456789abcdef1",
            "instanceType": "m6i.large", "securityGroupIds": ["sg-0123456789abcdef0"], "noReboot": false, "stopSource": true,
            "sourceAction": "stop", "keepImage": true, "moveElasticIp": true, "tags": {"change": "CHG-1"}, "dryRun": true}),
        ),
        (
            "share-image",
            json!({"imageId": "ami-0123456789abcdef0", "accountIds": ["222233334444"]}),
        ),
        (
            "share-image",
            json!({"imageId": "ami-0123456789abcdef0", "organizationArns": ["arn:aws:organizations::111122223333:organization/o-abcdefghij"],
            "kmsAccess": "none", "shareSnapshots": true, "dryRun": false}),
        ),
        (
            "revoke-share",
            json!({"imageId": "ami-0123456789abcdef0", "accountIds": ["222233334444"]}),
        ),
        (
            "revoke-share",
            json!({"record": {"imageId": "ami-0123456789abcdef0", "region": "us-east-1", "ownerAccountId": "111122223333",
            "launchPermissions": [{"userId": "222233334444"}], "snapshotPermissions": [{"snapshotId": "snap-0123456789abcdef0", "userId": "222233334444"}],
            "grants": [{"keyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890aa", "grantId": "g1",
                        "granteeAccountId": "222233334444", "name": "ferry-share-1"}]}}),
        ),
        (
            "copy-image",
            json!({"sourceImageId": "ami-0123456789abcdef0", "sourceRegion": "us-east-1", "targetAccountId": "222233334444",
            "targetRoleArn": "arn:aws:iam::222233334444:role/ferry/ferry-target", "externalId": "ferry-ext-0123",
            "targetKmsKeyId": "arn:aws:kms:us-east-1:222233334444:key/1234abcd-12ab-34cd-56ef-1234567890ac",
            "name": "golden-web", "copyTags": true, "revokeAfterCopy": false}),
        ),
        (
            "distribute-image",
            json!({"share": {"imageId": "ami-0123456789abcdef0"}, "targets": [target.clone()]}),
        ),
        (
            "distribute-image",
            json!({"share": {"imageId": "ami-0123456789abcdef0"}, "targets": [target.clone()], "failFast": true, "dryRun": true}),
        ),
        (
            "distribute-image",
            json!({"share": {"image": {"namePattern": "golden-al2023-*"}, "shareSnapshots": true}, "targets": [target.clone()]}),
        ),
        (
            "distribute-image",
            json!({"share": {"image": {"owner": "111122223333", "namePattern": "golden-?"}}, "targets": [target]}),
        ),
        (
            "migrate-fleet",
            json!({"migrations": [{"sourceInstanceId": "i-0123456789abcdef0", "targetSubnetId": "subnet-0123456789abcdef1", "sourceAction": "stop"},
                                  {"sourceInstanceId": "i-0123456789abcdef1", "targetSubnetId": "subnet-0123456789abcdef1"}],
                   "maxConcurrency": 5, "maxFailures": 1}),
        ),
        (
            "migrate-fleet",
            json!({"selector": {"tags": {"app": "web"}, "availabilityZone": "us-east-1a"}, "targetSubnetIds": ["subnet-0123456789abcdef1"],
                   "options": {"keepImage": true}, "maxFailures": null, "dryRun": true}),
        ),
    ];
    for (workflow, input) in good {
        let v = validator(workflow);
        let errors: Vec<String> = v.iter_errors(&input).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{workflow}: the schema refuses {input}: {errors:?}"
        );
        parse(workflow, &input)
            .unwrap_or_else(|e| panic!("{workflow}: the parser refuses {input}: {e}"));
    }
}

/// The parser's messages for a fault of shape (serde's): the schema must say the same.
fn is_shape_fault(message: &str) -> bool {
    [
        "unknown field",
        "missing field",
        "invalid type",
        "unknown variant",
        "must be a JSON object",
    ]
    .iter()
    .any(|m| message.contains(m))
}

#[test]
fn the_corpus_is_refused_by_the_parser_and_by_the_schema_where_it_is_shape() {
    let fixtures = fixtures();
    let (mut shape, mut by_schema, mut later) = (0, 0, 0);
    for (workflow, case) in corpus() {
        let input = substitute(&expand_repeats(&case.input), &fixtures);
        let id = format!("{workflow}/{}", case.name);
        let schema_ok = validator(workflow).is_valid(&input);
        let parsed = parse(workflow, &input);
        match parsed {
            Err(e) => {
                assert_eq!(
                    e.name.as_str(),
                    case.error,
                    "{id}: refused by the parser as {e}"
                );
                if is_shape_fault(&e.message) {
                    shape += 1;
                    assert!(
                        !schema_ok,
                        "{id}: a fault of shape ({}) that the schema lets through",
                        e.message
                    );
                }
            }
            // Refused later, by what AWS says (not found, protected, a disabled key...):
            // well-formed input, which the schema must not refuse.
            Ok(()) => {
                later += 1;
                assert!(
                    schema_ok,
                    "{id}: the schema refuses an input the parser accepts"
                );
            }
        }
        if !schema_ok {
            by_schema += 1;
        }
    }
    eprintln!("corpus: {shape} faults of shape (all refused by the schema), {by_schema} refused by a schema in all, {later} refused only by what AWS says");
    assert!(shape >= 10, "only {shape} faults of shape in the corpus");
}
