//! The sharing rules (aws-rules.md 1-9) that refuse a share before any change.

use super::facts::{find_key, ImageFacts, KeyFacts, KeyManager};
use crate::errors::{ErrorName, FerryError};

/// The image must exist and be owned by the caller (only the owner shares it).
pub fn check_image_owned(
    image_id: &str,
    owner_id: Option<&str>,
    me: &str,
) -> Result<(), FerryError> {
    match owner_id {
        Some(owner) if owner == me => Ok(()),
        Some(owner) => Err(FerryError::new(
            ErrorName::ImageNotFound,
            format!("{image_id} belongs to account {owner}; only its owner can share it"),
        )),
        None => Err(FerryError::new(
            ErrorName::ImageNotFound,
            format!("{image_id} does not exist in this account and region"),
        )),
    }
}

/// Only an `available` image can be shared usefully (rule 15).
pub fn check_image_available(image: &ImageFacts) -> Result<(), FerryError> {
    if image.state == "available" {
        Ok(())
    } else {
        Err(FerryError::new(
            ErrorName::UnsupportedConfiguration,
            format!(
                "{} is {}; only an available image can be shared",
                image.image_id, image.state
            ),
        ))
    }
}

/// Rule 7: an image with product codes cannot be copied by another account, nor made
/// public; refused when the share is meant for copies (`shareSnapshots`) or public.
pub fn check_product_codes(
    image: &ImageFacts,
    share_snapshots: bool,
    public: bool,
) -> Result<(), FerryError> {
    if image.product_codes.is_empty() || !(share_snapshots || public) {
        return Ok(());
    }
    Err(FerryError::new(
        ErrorName::ProductCodes,
        format!(
            "{} carries product codes ({}): other accounts cannot copy it and it cannot be public; share it with shareSnapshots: false to let them launch it",
            image.image_id,
            image.product_codes.join(", ")
        ),
    ))
}

/// Rule 2: only unencrypted AMIs can be public.
pub fn check_public_unencrypted(image: &ImageFacts, public: bool) -> Result<(), FerryError> {
    if public && image.encrypted() {
        Err(FerryError::new(
            ErrorName::EncryptedImageCannotBePublic,
            format!(
                "{} has encrypted snapshots; only unencrypted images can be public",
                image.image_id
            ),
        ))
    } else {
        Ok(())
    }
}

/// Rule 3: while image block public access is on (`block-new-sharing`), no AMI can be
/// made public.
pub fn check_block_public_access(public: bool, state: Option<&str>) -> Result<(), FerryError> {
    match state {
        Some("unblocked") | None if public => Ok(()),
        Some(state) if public => Err(FerryError::new(
            ErrorName::ImageBlockPublicAccess,
            format!(
                "image block public access is {state} in this account and region; disable it (DisableImageBlockPublicAccess) to make images public"
            ),
        )),
        _ => Ok(()),
    }
}

/// Rule 1: snapshots under the AWS managed key `aws/ebs` cannot be shared; the remedy is
/// a copy re-encrypted under a customer-managed key (`reencryptWith`).
pub fn check_aws_managed_key(
    image: &ImageFacts,
    keys: &[KeyFacts],
    reencrypt_with: Option<&str>,
) -> Result<bool, FerryError> {
    let under_aws_managed = image.snapshots.iter().any(|s| {
        s.encrypted
            && match &s.kms_key_id {
                // Encrypted with no key id reported: the account's default, aws/ebs.
                None => true,
                Some(id) => find_key(keys, id).is_some_and(|k| k.key_manager == KeyManager::Aws),
            }
    });
    if !under_aws_managed {
        return Ok(false);
    }
    if reencrypt_with.is_some() {
        return Ok(true);
    }
    Err(FerryError::new(
        ErrorName::AwsManagedKey,
        format!(
            "{} is encrypted with the AWS managed key aws/ebs, which cannot be shared; give reencryptWith (a customer managed key) to share a copy re-encrypted under it",
            image.image_id
        ),
    ))
}

/// The key to re-encrypt with must be a customer-managed, enabled key.
pub fn check_reencrypt_key(key: &KeyFacts) -> Result<(), FerryError> {
    crate::rules::kms::check_requested_key_usable("reencryptWith", key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::fixtures::*;
    use crate::share::record::LaunchPermission;
    use serde_json::json;

    #[test]
    fn image_not_found_or_not_owned() {
        assert_eq!(
            check_image_owned(IMAGE, None, "1").unwrap_err().name,
            ErrorName::ImageNotFound
        );
        assert_eq!(
            check_image_owned(IMAGE, Some("2"), "1").unwrap_err().name,
            ErrorName::ImageNotFound
        );
        check_image_owned(IMAGE, Some("1"), "1").unwrap();
    }

    #[test]
    fn refuses_product_codes_for_copies_and_public() {
        let mut img = image(vec![snap("snap-0123456789abcdef0", None)]);
        img.product_codes = vec!["abcdefg".into()];
        let f = facts(img, vec![]);
        let e = plan(json!({"imageId": IMAGE, "accountIds": [B]}), &f).unwrap_err();
        assert_eq!(e.name, ErrorName::ProductCodes);
        plan(
            json!({"imageId": IMAGE, "accountIds": [B], "shareSnapshots": false}),
            &f,
        )
        .unwrap();
    }

    #[test]
    fn refuses_public_encrypted() {
        let f = facts(
            image(vec![snap("snap-0123456789abcdef0", Some(CMK))]),
            vec![cmk()],
        );
        let e = plan(json!({"imageId": IMAGE, "public": true}), &f).unwrap_err();
        assert_eq!(e.name, ErrorName::EncryptedImageCannotBePublic);
    }

    #[test]
    fn refuses_public_while_blocked() {
        let mut f = facts(image(vec![snap("snap-0123456789abcdef0", None)]), vec![]);
        f.block_public_access = Some("block-new-sharing".into());
        let e = plan(json!({"imageId": IMAGE, "public": true}), &f).unwrap_err();
        assert_eq!(e.name, ErrorName::ImageBlockPublicAccess);
        f.block_public_access = Some("unblocked".into());
        let p = plan(json!({"imageId": IMAGE, "public": true}), &f).unwrap();
        assert_eq!(
            p.launch_permissions,
            [LaunchPermission::Group("all".into())]
        );
        check_block_public_access(false, Some("block-new-sharing")).unwrap();
    }

    #[test]
    fn refuses_aws_managed_key_without_reencrypt() {
        let f = facts(
            image(vec![snap("snap-0123456789abcdef0", Some(EBS))]),
            vec![ebs()],
        );
        let e = plan(json!({"imageId": IMAGE, "accountIds": [B]}), &f).unwrap_err();
        assert_eq!(e.name, ErrorName::AwsManagedKey);
    }
}
