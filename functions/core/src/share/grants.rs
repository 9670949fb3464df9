//! The KMS grants ferry makes for a target account: their operations and names.

use crate::names::short_hash;

/// KMS operations ferry grants a target account on each customer-managed key of a shared
/// AMI (rule 5, EBS UG "Share the KMS key used to encrypt a shared Amazon EBS snapshot"):
/// enough to launch from the AMI (EBS creates grants and decrypts data keys) and to copy
/// it re-encrypted under the target's own key. Nothing more.
pub const SHARE_GRANT_OPERATIONS: [&str; 6] = [
    "Decrypt",
    "DescribeKey",
    "CreateGrant",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKeyWithoutPlaintext",
];

/// Every ferry share grant's name starts with this.
pub const SHARE_GRANT_PREFIX: &str = "ferry-share-";

/// The KMS grant ferry makes for `account` on a key of `image_id` in one execution:
/// `ferry-share-<image>-<account>-<hash of execution>` (KMS grant names: 1-256 of
/// `[a-zA-Z0-9:/_-]`). CreateGrant with the same Name and parameters returns the same
/// grant, so a retried step creates no second one; revoke-share finds ferry's grants
/// for an image and account by the prefix [`share_grant_prefix`].
pub fn share_grant_name(image_id: &str, account: &str, execution_arn: &str) -> String {
    format!(
        "{}{}",
        share_grant_prefix(image_id, account),
        short_hash(execution_arn)
    )
}

pub fn share_grant_prefix(image_id: &str, account: &str) -> String {
    format!("{SHARE_GRANT_PREFIX}{image_id}-{account}-")
}

/// Is this grant one ferry made for `account` on a key of `image_id`?
pub fn is_share_grant(
    name: Option<&str>,
    grantee_principal: Option<&str>,
    image_id: &str,
    account: &str,
) -> bool {
    name.is_some_and(|n| n.starts_with(&share_grant_prefix(image_id, account)))
        && grantee_principal == Some(account_root_arn(account).as_str())
}

/// The account as a KMS grantee: `arn:aws:iam::<account>:root`.
pub fn account_root_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::fixtures::*;

    #[test]
    fn grant_operations_are_exactly_what_targets_need() {
        assert_eq!(
            SHARE_GRANT_OPERATIONS,
            [
                "Decrypt",
                "DescribeKey",
                "CreateGrant",
                "ReEncryptFrom",
                "ReEncryptTo",
                "GenerateDataKeyWithoutPlaintext"
            ]
        );
        // No Encrypt, no RetireGrant, no GenerateDataKey with plaintext.
        for op in ["Encrypt", "RetireGrant", "GenerateDataKey"] {
            assert!(!SHARE_GRANT_OPERATIONS.contains(&op));
        }
    }

    #[test]
    fn grant_names_are_deterministic_valid_and_recognisable() {
        let arn = &ctx().execution_arn;
        let n = share_grant_name(IMAGE, B, arn);
        assert_eq!(n, share_grant_name(IMAGE, B, arn));
        assert_ne!(n, share_grant_name(IMAGE, B, "arn:other"));
        assert_ne!(n, share_grant_name(IMAGE, C, arn));
        assert!(n.starts_with("ferry-share-ami-0123456789abcdef0-222222222222-"));
        assert!(
            n.len() <= 256
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b":/_-".contains(&b))
        );
        assert!(is_share_grant(
            Some(&n),
            Some("arn:aws:iam::222222222222:root"),
            IMAGE,
            B
        ));
        assert!(!is_share_grant(
            Some(&n),
            Some("arn:aws:iam::222222222222:root"),
            IMAGE,
            C
        ));
        assert!(!is_share_grant(
            Some(&n),
            Some("arn:aws:iam::222222222222:role/x"),
            IMAGE,
            B
        ));
        assert!(!is_share_grant(
            Some("other"),
            Some("arn:aws:iam::222222222222:root"),
            IMAGE,
            B
        ));
        assert!(!is_share_grant(None, None, IMAGE, B));
    }
}
