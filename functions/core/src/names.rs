//! Deterministic names, tokens and tags derived from the execution, so that a retried or
//! re-driven step finds what an earlier attempt created instead of creating it again.

use sha2::{Digest, Sha256};

/// The Step Functions context each workflow's first step receives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionContext {
    pub execution_arn: String,
    pub execution_name: String,
    #[serde(default)]
    pub state_machine_arn: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
}

fn sha256_hex(input: &str) -> String {
    Sha256::digest(input.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Ten hex digits of SHA-256: short, stable suffixes for names that must be unique per
/// execution (grant names, copy names).
pub fn short_hash(input: &str) -> String {
    Sha256::digest(input.as_bytes())
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A ClientToken (at most 64 ASCII characters) unique to one execution and one purpose.
pub fn client_token(execution_arn: &str, purpose: &str) -> String {
    let digest = sha256_hex(&format!("{execution_arn}|{purpose}"));
    format!("ferry-{}", &digest[..40])
}

/// The execution's name as far as AMI names allow it (letters, digits, `-`, `_`, `.`; any
/// other character becomes `-`), at most `max` characters.
pub fn readable_execution_name(execution: &ExecutionContext, max: usize) -> String {
    execution
        .execution_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(max)
        .collect()
}

/// The intermediate AMI's name: readable, unique to the execution, within AMI name rules
/// (3-128 characters of letters, digits, `( ) [ ] . / - ' @ _`).
pub fn migration_image_name(source_instance_id: &str, execution: &ExecutionContext) -> String {
    let readable = readable_execution_name(execution, 64);
    let digest = sha256_hex(&execution.execution_arn);
    format!("ferry-{source_instance_id}-{readable}-{}", &digest[..10])
}

/// The Step Functions execution name for an idempotency key (the `ferry` CLI's
/// `--idempotency-key`): the same key and workflow give the same name, so a pipeline that
/// retries its own step starts no second execution (StartExecution with a name already
/// used is idempotent for the same input while it runs, and refused otherwise). A
/// readable prefix of the key (letters, digits, `-`, `_`; at most 40) and 16 hex digits
/// of SHA-256 over workflow and key: at most 80 characters, as execution names allow.
pub fn execution_name_for_key(workflow: &str, key: &str) -> String {
    let readable: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let digest = sha256_hex(&format!("{workflow}|{key}"));
    let readable = readable.trim_matches('-');
    if readable.is_empty() {
        format!("ferry-{}", &digest[..16])
    } else {
        format!("{readable}-{}", &digest[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(name: &str) -> ExecutionContext {
        ExecutionContext {
            execution_arn: format!(
                "arn:aws:states:eu-west-1:111122223333:execution:ferry-migrate-instance:{name}"
            ),
            execution_name: name.to_string(),
            ..Default::default()
        }
    }

    #[test]
    fn tokens_are_deterministic_short_and_distinct() {
        let arn = &ctx("run-1").execution_arn;
        assert_eq!(client_token(arn, "launch"), client_token(arn, "launch"));
        assert_ne!(client_token(arn, "launch"), client_token(arn, "copy"));
        assert_ne!(
            client_token(arn, "launch"),
            client_token(&ctx("run-2").execution_arn, "launch")
        );
        let t = client_token(arn, "launch");
        assert!(t.len() <= 64 && t.is_ascii());
    }

    #[test]
    fn image_names_follow_ami_rules() {
        let long = "x".repeat(80);
        for name in ["run-1", "2026-11-29T05:41:00Z weekly move", long.as_str()] {
            let n = migration_image_name("i-0123456789abcdef0", &ctx(name));
            assert!((3..=128).contains(&n.len()), "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "()[]./-'@_".contains(c)),
                "{n}"
            );
            assert_eq!(n, migration_image_name("i-0123456789abcdef0", &ctx(name)));
        }
        assert_ne!(
            migration_image_name("i-0123456789abcdef0", &ctx("a")),
            migration_image_name("i-0123456789abcdef0", &ctx("b"))
        );
    }

    #[test]
    fn an_idempotency_key_names_one_execution_per_workflow() {
        let a = execution_name_for_key("migrate-instance", "deploy-42/web");
        assert_eq!(
            a,
            execution_name_for_key("migrate-instance", "deploy-42/web")
        );
        assert_ne!(a, execution_name_for_key("copy-image", "deploy-42/web"));
        assert_ne!(
            a,
            execution_name_for_key("migrate-instance", "deploy-43/web")
        );
        assert!(a.starts_with("deploy-42-web-"), "{a}");
        let long = execution_name_for_key("copy-image", &"k y".repeat(100));
        assert!(long.len() <= 80, "{long}");
        for name in [&a, &long, &execution_name_for_key("x", "   ")] {
            assert!(name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            assert!(!name.is_empty() && name.len() <= 80);
        }
    }
}
