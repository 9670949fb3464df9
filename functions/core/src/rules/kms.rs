//! KMS key references: which forms a request may use for a key, and which keys ferry
//! refuses (the AWS managed `aws/ebs` key cannot be shared, rule 1).

use crate::errors::FerryError;
use crate::share::facts::{KeyFacts, KeyManager};

fn is_key_id(id: &str) -> bool {
    let id = id.strip_prefix("mrk-").unwrap_or(id);
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn is_alias_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 250
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c))
}

/// A reference to a customer-managed KMS key: key id, key ARN, alias name or alias ARN,
/// but never an AWS managed key's alias (`alias/aws/...`).
pub fn check_customer_key_ref(field: &str, key: &str) -> Result<(), FerryError> {
    let alias_ok = |a: &str| {
        a.len() > 6
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
    };
    let ok = if let Some(rest) = key.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        parts.len() == 5
            && parts[0].starts_with("aws")
            && parts[1] == "kms"
            && !parts[2].is_empty()
            && parts[3].len() == 12
            && parts[3].bytes().all(|b| b.is_ascii_digit())
            && (parts[4].strip_prefix("key/").is_some_and(is_key_id)
                || (parts[4].starts_with("alias/") && alias_ok(parts[4])))
    } else if key.starts_with("alias/") {
        alias_ok(key)
    } else {
        is_key_id(key)
    };
    if !ok {
        return Err(FerryError::invalid_input(format!(
            "{field}: {key:?} is not a KMS key id, key ARN, alias or alias ARN"
        )));
    }
    if key.contains("alias/aws/") {
        return Err(FerryError::invalid_input(format!(
            "{field}: {key:?} is an AWS managed key; give a customer managed key"
        )));
    }
    Ok(())
}

/// The key the copy is encrypted under (rule 6: `Encrypted=true` + `KmsKeyId`): a key
/// ARN or alias ARN of the target account in the target region, a key id (`mrk-` or a
/// UUID) or an `alias/` name (resolved in the target account). `alias/aws/ebs` is
/// refused: a copy under the AWS managed key could never be shared on.
/// A key a request names to encrypt under (share's `reencryptWith`, copy's
/// `targetKmsKeyId`) must be customer managed (an AWS managed key's copies could never be
/// shared on, rule 1) and `Enabled` (EBS cannot use a disabled or pending-deletion key).
pub fn check_requested_key_usable(field: &str, key: &KeyFacts) -> Result<(), FerryError> {
    if key.key_manager == KeyManager::Aws {
        return Err(FerryError::invalid_input(format!(
            "{field}: {} is an AWS managed key; give a customer managed key",
            key.key_arn
        )));
    }
    match key.key_state.as_deref() {
        None | Some("Enabled") => Ok(()),
        Some(state) => Err(FerryError::invalid_input(format!(
            "{field}: {} is {state}; it must be Enabled",
            key.key_arn
        ))),
    }
}

pub fn check_target_kms_key(key: &str, account: &str, region: &str) -> Result<(), FerryError> {
    let bad = |why: String| Err(FerryError::invalid_input(format!("targetKmsKeyId: {why}")));
    if let Some(rest) = key.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if parts.len() != 5 || !parts[0].starts_with("aws") || parts[1] != "kms" {
            return bad(format!("{key:?} is not a KMS key or alias ARN"));
        }
        if parts[2] != region {
            return bad(format!(
                "{key:?} is in {}, but the copy is made in {region} (KMS keys are regional)",
                parts[2]
            ));
        }
        if parts[3] != account {
            return bad(format!(
                "{key:?} belongs to account {}, not the target {account}",
                parts[3]
            ));
        }
        let resource = parts[4];
        let ok = match resource.split_once('/') {
            Some(("key", id)) => is_key_id(id),
            Some(("alias", name)) => is_alias_name(name),
            _ => false,
        };
        if !ok {
            return bad(format!("{key:?} names no key/<id> or alias/<name>"));
        }
        if resource == "alias/aws/ebs" {
            return bad("the AWS managed key aws/ebs cannot protect a shareable copy".into());
        }
        return Ok(());
    }
    if let Some(name) = key.strip_prefix("alias/") {
        if name == "aws/ebs" {
            return bad("the AWS managed key aws/ebs cannot protect a shareable copy".into());
        }
        if is_alias_name(name) {
            return Ok(());
        }
    } else if is_key_id(key) {
        return Ok(());
    }
    bad(format!(
        "{key:?} is not a key ARN, alias ARN, key id or alias/ name"
    ))
}

/// Rule 23 (and 4): did an image copy fail because EC2 could not use a KMS key for it,
/// in a way waiting can cure? EC2 reports it in the copy's StateReason as
/// `Client.InternalError` naming the key ("Given key ID is not accessible") or as a KMS
/// access error: a grant made moments ago (by the share) may not be in effect yet. A key
/// that is disabled or pending deletion (`Client.InvalidKMSKey.InvalidState`) does not
/// come back by waiting, nor does a failure that names no key.
pub fn copy_failed_on_key(code: Option<&str>, message: Option<&str>) -> bool {
    let text = format!(
        "{} {}",
        code.unwrap_or_default(),
        message.unwrap_or_default()
    );
    let lower = text.to_ascii_lowercase();
    if lower.contains("invalidstate") || lower.contains("pendingdeletion") {
        return false;
    }
    lower.contains("key id is not accessible")
        || lower.contains("kms")
        || (lower.contains("client.internalerror") && lower.contains(" key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_key_must_be_customer_managed_and_enabled() {
        let key = |manager, state: &str| KeyFacts {
            key_id: "k".into(),
            key_arn: "arn:aws:kms:us-east-1:111111111111:key/k".into(),
            key_manager: manager,
            key_state: Some(state.into()),
        };
        assert!(check_requested_key_usable(
            "targetKmsKeyId",
            &key(KeyManager::Customer, "Enabled")
        )
        .is_ok());
        let e =
            check_requested_key_usable("targetKmsKeyId", &key(KeyManager::Customer, "Disabled"))
                .unwrap_err();
        assert!(
            e.message.starts_with("targetKmsKeyId:") && e.message.contains("Disabled"),
            "{e}"
        );
        let e = check_requested_key_usable("reencryptWith", &key(KeyManager::Aws, "Enabled"))
            .unwrap_err();
        assert!(e.message.contains("AWS managed"), "{e}");
    }

    const CMK: &str = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn key_refs() {
        for ok in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            CMK,
            "alias/ferry",
            "arn:aws:kms:us-east-1:111111111111:alias/ferry",
        ] {
            check_customer_key_ref("k", ok).unwrap();
        }
        for bad in [
            "",
            "alias/aws/ebs",
            "arn:aws:kms:us-east-1:111111111111:alias/aws/ebs",
            "arn:aws:s3:::bucket",
            "key/123",
        ] {
            assert!(check_customer_key_ref("k", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_copy_failed_on_a_key_it_may_use_later_but_not_on_a_disabled_key() {
        assert!(copy_failed_on_key(
            Some("Client.InternalError"),
            Some("Client.InternalError: Given key ID is not accessible")
        ));
        assert!(copy_failed_on_key(
            None,
            Some("AccessDeniedException: not authorized to perform kms:CreateGrant")
        ));
        assert!(!copy_failed_on_key(
            Some("Client.InvalidKMSKey.InvalidState"),
            Some(
                "Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state"
            )
        ));
        assert!(!copy_failed_on_key(
            Some("Client.InternalError"),
            Some("Client.InternalError: Snapshot creation failed")
        ));
        assert!(!copy_failed_on_key(None, None));
    }
}
