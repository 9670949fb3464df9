//! The formats of the ids, ARNs, regions and names a request carries: every request is
//! checked against them before any AWS call, so a typo is `Ferry.InvalidInput`, never a
//! half-done run.

use crate::errors::FerryError;

/// EC2 ids are `<prefix>-` followed by 8 (older) or 17 lowercase hex digits.
pub fn is_resource_id(prefix: &str, id: &str) -> bool {
    let Some(rest) = id.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    (rest.len() == 8 || rest.len() == 17)
        && rest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn check_resource_id(field: &str, prefix: &str, id: &str) -> Result<(), FerryError> {
    if is_resource_id(prefix, id) {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "{field}: {id:?} is not a {prefix}- id ({prefix}- and 8 or 17 hex digits)"
        )))
    }
}

/// An AWS account id: 12 digits.
pub fn check_account_id(field: &str, id: &str) -> Result<(), FerryError> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "{field}: {id:?} is not an AWS account id (12 digits)"
        )))
    }
}

/// A region name like `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-5`.
pub fn check_region(field: &str, region: &str) -> Result<(), FerryError> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && {
            let n = parts[parts.len() - 1];
            !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit())
        };
    if ok {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "{field}: {region:?} is not a region name like us-east-1"
        )))
    }
}

/// `arn:<partition>:iam::<account>:role/<path/>name`, and the role must belong to the
/// target account: ferry never assumes a role of one account to act in another.
pub fn check_role_arn_in_account(field: &str, arn: &str, account: &str) -> Result<(), FerryError> {
    let bad = |why: &str| Err(FerryError::invalid_input(format!("{field}: {arn:?} {why}")));
    let Some(rest) = arn.strip_prefix("arn:") else {
        return bad("is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)");
    };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    if parts.len() != 5 || !parts[0].starts_with("aws") || parts[1] != "iam" || !parts[2].is_empty()
    {
        return bad("is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)");
    }
    let Some(name) = parts[4].strip_prefix("role/") else {
        return bad("is not a role ARN (the resource must be role/<name>)");
    };
    let role_name = name.rsplit('/').next().unwrap_or_default();
    let name_ok = !role_name.is_empty()
        && role_name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c));
    if !name_ok {
        return bad("has an invalid role name");
    }
    if parts[3] != account {
        return bad(&format!(
            "is in account {}, not the target account {account}",
            parts[3]
        ));
    }
    Ok(())
}

/// STS ExternalId: 2-1224 characters of `[\w+=,.@:/-]`.
pub fn check_external_id(id: &str) -> Result<(), FerryError> {
    let ok = (2..=1224).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(FerryError::invalid_input(
            "externalId: must be 2-1224 characters of letters, digits and _+=,.@:/-",
        ))
    }
}

fn is_lower_alnum(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `arn:<partition>:organizations::<12 digits>:` followed by the rest, if it is that.
fn organizations_arn_rest(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    if !partition.starts_with("aws") {
        return None;
    }
    let rest = rest.strip_prefix("organizations::")?;
    let (account, rest) = rest.split_once(':')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(rest)
}

/// `o-` and 10-32 lowercase letters or digits.
fn is_org_id(id: &str) -> bool {
    id.strip_prefix("o-")
        .is_some_and(|r| is_lower_alnum(r, 10, 32))
}

/// `arn:aws:organizations::<management account>:organization/o-<id>` (rule 9).
pub fn check_organization_arn(field: &str, arn: &str) -> Result<(), FerryError> {
    let ok = organizations_arn_rest(arn)
        .and_then(|r| r.strip_prefix("organization/"))
        .is_some_and(is_org_id);
    if ok {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "{field}: {arn:?} is not an organization ARN (arn:aws:organizations::<account>:organization/o-...)"
        )))
    }
}

/// `arn:aws:organizations::<management account>:ou/o-<id>/ou-<root>-<id>` (rule 9).
pub fn check_organizational_unit_arn(field: &str, arn: &str) -> Result<(), FerryError> {
    let ok = organizations_arn_rest(arn)
        .and_then(|r| r.strip_prefix("ou/"))
        .and_then(|r| r.split_once('/'))
        .is_some_and(|(org, ou)| {
            is_org_id(org)
                && ou.strip_prefix("ou-").is_some_and(|r| {
                    r.split_once('-').is_some_and(|(root, id)| {
                        is_lower_alnum(root, 4, 32) && is_lower_alnum(id, 8, 32)
                    })
                })
        });
    if ok {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "{field}: {arn:?} is not an OU ARN (arn:aws:organizations::<account>:ou/o-.../ou-...)"
        )))
    }
}

/// The organization id (`o-...`) in an organization or OU ARN.
pub fn organization_id_of(arn: &str) -> Option<String> {
    let rest = organizations_arn_rest(arn)?;
    let rest = rest
        .strip_prefix("organization/")
        .or_else(|| rest.strip_prefix("ou/"))?;
    Some(rest.split('/').next()?.to_string())
}

/// AMI names: 3-128 characters of letters, digits and `( ) [ ] . / - ' @ _` (and spaces).
pub fn check_image_name(field: &str, name: &str) -> Result<(), FerryError> {
    let ok = (3..=128).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "()[]./-'@_ ".contains(c));
    if ok {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "{field}: {name:?} is not a valid AMI name (3-128 of letters, digits, ()[]./-'@_ and spaces)"
        )))
    }
}

/// Instance type names are `family.size`, e.g. `m7i-flex.large`, `u-6tb1.metal`.
pub fn check_instance_type_name(name: &str) -> Result<(), FerryError> {
    let ok = match name.split_once('.') {
        Some((family, size)) => {
            let part_ok = |p: &str| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            };
            part_ok(family) && part_ok(size) && !size.contains('.')
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(FerryError::invalid_input(format!(
            "instanceType: {name:?} is not an instance type name like m7i.large"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "arn:aws:organizations::111111111111:organization/o-abcdefghij";
    const OU: &str = "arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-cdefgh34";

    #[test]
    fn resource_ids() {
        assert!(is_resource_id("i", "i-0123456789abcdef0"));
        assert!(is_resource_id("i", "i-12345678"));
        assert!(is_resource_id("subnet", "subnet-0fedcba9876543210"));
        assert!(!is_resource_id("i", "i-0123456789ABCDEF0"));
        assert!(!is_resource_id("i", "i-0123456789abcdef"));
        assert!(!is_resource_id("i", "instance-12345678"));
        assert!(!is_resource_id("sg", "sg12345678"));
        assert!(!is_resource_id("subnet", "i-12345678"));
    }

    #[test]
    fn instance_type_names() {
        for ok in [
            "t3.micro",
            "m7i-flex.large",
            "u-6tb1.metal",
            "c7gn.16xlarge",
        ] {
            assert!(check_instance_type_name(ok).is_ok(), "{ok}");
        }
        for bad in ["huge", "m5.", ".large", "M5.large", "m5.large.x", ""] {
            assert!(check_instance_type_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn organization_ids() {
        assert_eq!(organization_id_of(ORG).as_deref(), Some("o-abcdefghij"));
        assert_eq!(organization_id_of(OU).as_deref(), Some("o-abcdefghij"));
    }
}
