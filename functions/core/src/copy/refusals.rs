//! What the target must see of the source before it copies (rules 3, 7, 15), and what a
//! finished copy must be.

use crate::errors::{ErrorName, FerryError};
use crate::share::record::LaunchPermission;

/// Rule 3 (visibility): the target must see the source image (shared with it, its
/// organization or OU, or public) in the source region. `shared_by_owner`: this account
/// owns the source and its launch permissions reach the target
/// ([`launch_permissions_may_reach`]): the share is not visible to the target YET (rule
/// 19), `Ferry.ShareNotYetVisible`, which the Preflight's Retry waits out for a bounded
/// time; otherwise the image is not shared with it, `Ferry.ImageNotFound`, at once.
pub fn image_not_visible(
    image_id: &str,
    region: &str,
    account: &str,
    shared_by_owner: bool,
) -> FerryError {
    if shared_by_owner {
        FerryError::new(
            ErrorName::ShareNotYetVisible,
            format!(
                "{image_id} in {region} is shared with account {account} (its launch permissions say so) but the account does not see it yet; sharing takes a while to reach it"
            ),
        )
    } else {
        FerryError::new(
            ErrorName::ImageNotFound,
            format!(
                "{image_id} does not exist in {region} or is not shared with account {account}; share it first (share-image)"
            ),
        )
    }
}

/// Rule 1 seen by the owner: do these launch permissions reach `account`? Its account id
/// or `all` do; an organization or OU may (membership is not known here), so it counts:
/// the target is then given the bounded wait rather than refused at once.
pub fn launch_permissions_may_reach(permissions: &[LaunchPermission], account: &str) -> bool {
    permissions.iter().any(|p| match p {
        LaunchPermission::UserId(id) => id == account,
        LaunchPermission::Group(g) => g == "all",
        LaunchPermission::OrganizationArn(_) | LaunchPermission::OrganizationalUnitArn(_) => true,
    })
}

/// Rule 7: an AMI with a billing/Marketplace product code cannot be copied by another
/// account (workaround: launch it and CreateImage from the instance).
pub fn check_no_product_codes(image_id: &str, product_codes: &[String]) -> Result<(), FerryError> {
    if product_codes.is_empty() {
        Ok(())
    } else {
        Err(FerryError::new(
            ErrorName::ProductCodes,
            format!(
                "{image_id} carries product codes ({}); AWS does not let another account copy it (launch it and CreateImage instead)",
                product_codes.join(", ")
            ),
        ))
    }
}

/// Only `available` images can be copied.
pub fn check_source_available(image_id: &str, state: &str) -> Result<(), FerryError> {
    match state {
        "available" => Ok(()),
        "pending" => Err(FerryError::new(
            ErrorName::ImageNotReady,
            format!("source image {image_id} is still pending"),
        )),
        other => Err(FerryError::new(
            ErrorName::ImageNotFound,
            format!("source image {image_id} is {other}; only available images can be copied"),
        )),
    }
}

/// Rule 15 for a copy: what one poll of the copy means (`available` also needs the
/// snapshots to carry the key asked for).
pub fn copy_kms_matches(requested: &str, snapshot_keys: &[String]) -> bool {
    // The request may name the key by id, alias or ARN; EC2 reports the key ARN.
    !snapshot_keys.is_empty()
        && snapshot_keys.iter().all(|k| {
            k == requested
                || (!requested.starts_with("arn:")
                    && !requested.starts_with("alias/")
                    && k.ends_with(&format!("key/{requested}")))
                || requested.starts_with("alias/")
                || requested.contains(":alias/")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::fixtures::*;

    #[test]
    fn product_codes_and_visibility() {
        assert!(check_no_product_codes("ami-1", &[]).is_ok());
        let e = check_no_product_codes("ami-1", &["abc123".into()]).unwrap_err();
        assert_eq!(e.name, ErrorName::ProductCodes);
        assert_eq!(
            image_not_visible("ami-1", "us-east-1", B, false).name,
            ErrorName::ImageNotFound
        );
        let e = image_not_visible("ami-1", "us-east-1", B, true);
        assert_eq!(e.name, ErrorName::ShareNotYetVisible);
        assert!(e.name.is_retryable());
        assert!(check_source_available("ami-1", "available").is_ok());
        assert_eq!(
            check_source_available("ami-1", "pending").unwrap_err().name,
            ErrorName::ImageNotReady
        );
        assert_eq!(
            check_source_available("ami-1", "deregistered")
                .unwrap_err()
                .name,
            ErrorName::ImageNotFound
        );
    }

    #[test]
    fn copy_keys_match_the_request() {
        assert!(copy_kms_matches(KEY_B, &[KEY_B.to_string()]));
        assert!(!copy_kms_matches(
            KEY_B,
            &["arn:aws:kms:us-east-1:222233334444:key/other".into()]
        ));
        assert!(!copy_kms_matches(KEY_B, &[]));
        assert!(copy_kms_matches(
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            &[KEY_B.to_string()]
        ));
    }

    #[test]
    fn launch_permissions_reach_an_account_by_id_all_or_maybe_its_organization() {
        let user = |id: &str| LaunchPermission::UserId(id.to_string());
        assert!(launch_permissions_may_reach(&[user(B)], B));
        assert!(!launch_permissions_may_reach(&[user("555566667777")], B));
        assert!(!launch_permissions_may_reach(&[], B));
        assert!(launch_permissions_may_reach(
            &[LaunchPermission::Group("all".into())],
            B
        ));
        assert!(launch_permissions_may_reach(
            &[LaunchPermission::OrganizationArn(
                "arn:aws:organizations::111122223333:organization/o-abcdefghij".into()
            )],
            B
        ));
        assert!(launch_permissions_may_reach(
            &[LaunchPermission::OrganizationalUnitArn(
                "arn:aws:organizations::111122223333:ou/o-abcdefghij/ou-ab12-cdefghij".into()
            )],
            B
        ));
    }
}
