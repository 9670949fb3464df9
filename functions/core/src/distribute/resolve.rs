//! `share.image`: distribute "the newest available AMI this account owns whose name
//! matches a pattern" instead of a fixed `share.imageId` (the scheduled path: every
//! night, copy the newest golden image to the team accounts).
//!
//! State → code: `statemachines/distribute-image.asl.json` state `ResolveImage` →
//! `functions/steps/src/bin/resolve-image.rs` → `ferry_steps::distribute::resolve_image`
//! (DescribeImages, paginated) → here: [`ImageSelector::parse`] checks the selector
//! before any call; [`newest_available`] picks the image from what DescribeImages
//! answered; [`resolved_request`] is the request Preflight then parses, with
//! `share.imageId` set and the choice recorded in `resolvedImage`.
//!
//! EC2 facts relied on (EC2 API Reference, DescribeImages):
//! - the `name` filter takes the wildcards `*` (any run of characters) and `?` (one
//!   character): [`name_matches`];
//! - "The order of the elements in the response ... might vary": the newest is chosen by
//!   `CreationDate`, ties by image id, never by position;
//! - recently deregistered images may still be listed for a while, and an owner sees its
//!   deprecated and (with IncludeDisabled) disabled images: only `available`,
//!   not-yet-deprecated images qualify ([`qualifies`]).

use crate::errors::{ErrorName, FerryError};
use crate::rules::ids::{check_account_id, check_resource_id};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// AMI names are 3 to 128 characters (EC2 API Reference, CreateImage `Name`); a
/// pattern is no longer than a name.
pub const MAX_NAME_PATTERN: usize = 128;

/// The selector as it appears in a request (`share.image`).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageSelector {
    /// Who owns the image: `self` (the default) or this account's id. distribute-image
    /// shares the image, which only its owner can do.
    #[serde(default = "default_owner")]
    pub owner: String,
    /// The image name, with `*` (any characters) and `?` (one character) as in EC2's
    /// `name` filter, e.g. `golden-al2023-*`. At least one character that is not a
    /// wildcard.
    pub name_pattern: String,
}

fn default_owner() -> String {
    "self".to_string()
}

/// What the ResolveImage step read of one image (from DescribeImages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub image_id: String,
    pub name: String,
    pub owner_id: String,
    pub state: String,
    /// `CreationDate`, e.g. `2026-12-01T03:00:00.000Z`.
    pub creation_date: String,
    #[serde(default)]
    pub deprecation_time: Option<String>,
}

/// The image a selector resolved to, recorded in the request and the output.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedImage {
    pub image_id: String,
    pub name: String,
    pub creation_date: String,
    pub owner_id: String,
    pub name_pattern: String,
    /// How many available, not deprecated images matched (the newest was taken).
    pub matched: usize,
}

impl ImageSelector {
    /// `share.image` of a request, checked: owner `self` or `hub_account` (any account
    /// id when the hub is not known, as in `ferry`'s check before a start), a pattern of
    /// 1-128 characters of AMI names and wildcards, not only wildcards.
    pub fn parse(value: &Value, hub_account: Option<&str>) -> Result<ImageSelector, FerryError> {
        let s: ImageSelector = serde_json::from_value(value.clone()).map_err(|e| {
            FerryError::invalid_input(format!(
                "share.image: {e} (expected {{\"owner\": \"self\", \"namePattern\": \"golden-*\"}})"
            ))
        })?;
        if s.owner != "self" {
            check_account_id("share.image.owner", &s.owner)?;
            if let Some(hub_account) = hub_account.filter(|h| *h != s.owner) {
                return Err(FerryError::invalid_input(format!(
                    "share.image.owner: {} is another account; distribute-image shares the image, which only its owner can: use \"self\" (this account, {hub_account})",
                    s.owner
                )));
            }
        }
        check_name_pattern(&s.name_pattern)?;
        Ok(s)
    }
}

/// A character an AMI name may hold (EC2 API Reference, CreateImage `Name`: letters,
/// digits, `( ) [ ] . / - ' @ _` and spaces).
fn is_ami_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c)
}

/// `namePattern`: 1-128 characters of AMI names plus `*` and `?`, and at least one
/// that is not a wildcard (`*` alone would pick whatever image was made last).
pub fn check_name_pattern(pattern: &str) -> Result<(), FerryError> {
    let field = "share.image.namePattern";
    if pattern.is_empty() || pattern.chars().count() > MAX_NAME_PATTERN {
        return Err(FerryError::invalid_input(format!(
            "{field}: 1 to {MAX_NAME_PATTERN} characters (got {})",
            pattern.chars().count()
        )));
    }
    if let Some(bad) = pattern
        .chars()
        .find(|&c| !(is_ami_name_char(c) || c == '*' || c == '?'))
    {
        return Err(FerryError::invalid_input(format!(
            "{field}: {bad:?} cannot be part of an AMI name (letters, digits, ( ) [ ] . / - ' @ _ and spaces; * and ? as wildcards)"
        )));
    }
    if pattern.chars().all(|c| c == '*' || c == '?') {
        return Err(FerryError::invalid_input(format!(
            "{field}: {pattern:?} matches any image; give part of the name (e.g. golden-*)"
        )));
    }
    Ok(())
}

/// Does `name` match `pattern` as EC2's `name` filter matches it: `*` any run of
/// characters (also none), `?` exactly one, everything else itself (case-sensitive).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// A UTC timestamp as EC2 writes it (`YYYY-MM-DDTHH:MM:SS[.fff]Z`, also `+00:00`),
/// as a string that sorts in time order (`YYYY-MM-DDTHH:MM:SS.fff`); None if it is not
/// one.
pub fn utc_sort_key(timestamp: &str) -> Option<String> {
    let t = timestamp
        .strip_suffix('Z')
        .or_else(|| timestamp.strip_suffix("+00:00"))?;
    let (whole, fraction) = match t.split_once('.') {
        Some((w, f)) => (w, f),
        None => (t, ""),
    };
    let b = whole.as_bytes();
    let shape_ok = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok || !fraction.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let millis: String = fraction.chars().chain("000".chars()).take(3).collect();
    Some(format!("{whole}.{millis}"))
}

/// Does `image` qualify for `selector` at `now`: its owner's, its name matching,
/// `available`, and not deprecated yet (an owner sees its deprecated images, and
/// recently deregistered ones may still be listed).
pub fn qualifies(
    selector: &ImageSelector,
    hub_account: &str,
    image: &Candidate,
    now: &str,
) -> bool {
    let owner = if selector.owner == "self" {
        hub_account
    } else {
        selector.owner.as_str()
    };
    let deprecated = match (&image.deprecation_time, utc_sort_key(now)) {
        (Some(t), Some(now)) => utc_sort_key(t).is_some_and(|t| t <= now),
        _ => false,
    };
    image.owner_id == owner
        && image.state == "available"
        && name_matches(&selector.name_pattern, &image.name)
        && utc_sort_key(&image.creation_date).is_some()
        && !deprecated
}

/// The newest qualifying image (by CreationDate, then image id, whatever order
/// DescribeImages answered in); `Ferry.ImageNotFound` when none qualifies.
pub fn newest_available(
    selector: &ImageSelector,
    hub_account: &str,
    images: &[Candidate],
    now: &str,
) -> Result<ResolvedImage, FerryError> {
    let matching: Vec<&Candidate> = images
        .iter()
        .filter(|i| qualifies(selector, hub_account, i, now))
        .collect();
    let newest = matching
        .iter()
        .max_by_key(|i| (utc_sort_key(&i.creation_date), i.image_id.clone()))
        .ok_or_else(|| {
            FerryError::new(
                ErrorName::ImageNotFound,
                format!(
                    "share.image: no available, not deprecated image owned by {} matches {:?} ({} image(s) listed)",
                    if selector.owner == "self" { hub_account } else { &selector.owner },
                    selector.name_pattern,
                    images.len()
                ),
            )
        })?;
    Ok(ResolvedImage {
        image_id: newest.image_id.clone(),
        name: newest.name.clone(),
        creation_date: newest.creation_date.clone(),
        owner_id: newest.owner_id.clone(),
        name_pattern: selector.name_pattern.clone(),
        matched: matching.len(),
    })
}

/// The selector of a distribute-image request: `Ok(None)` when it names
/// `share.imageId` instead; refused when it has both or neither.
pub fn selector_of(
    request: &Value,
    hub_account: Option<&str>,
) -> Result<Option<ImageSelector>, FerryError> {
    let Some(share) = request.get("share").and_then(Value::as_object) else {
        return Ok(None); // Preflight refuses a request without a share object
    };
    match (share.get("imageId"), share.get("image")) {
        (Some(_), Some(_)) => Err(FerryError::invalid_input(
            "share: give imageId or image (a selector), not both",
        )),
        (None, Some(image)) => ImageSelector::parse(image, hub_account).map(Some),
        _ => Ok(None),
    }
}

/// The request with the resolved image in place of the selector: `share.imageId` set,
/// `share.image` removed, and `resolvedImage` recording the choice (carried to the
/// output).
pub fn resolved_request(request: &Value, resolved: &ResolvedImage) -> Value {
    let mut out = request.clone();
    if let Some(share) = out.get_mut("share").and_then(Value::as_object_mut) {
        share.remove("image");
        share.insert("imageId".into(), json!(resolved.image_id));
    }
    if let Some(o) = out.as_object_mut() {
        o.insert("resolvedImage".into(), json!(resolved));
    }
    out
}

/// A request's `resolvedImage` must name the image `share.imageId` names (it is set by
/// ResolveImage; one given by hand that disagrees is refused).
pub fn check_resolved(resolved: &ResolvedImage, image_id: &str) -> Result<(), FerryError> {
    check_resource_id("resolvedImage.imageId", "ami", &resolved.image_id)?;
    if resolved.image_id != image_id {
        return Err(FerryError::invalid_input(format!(
            "resolvedImage.imageId: {} is not share.imageId {image_id}",
            resolved.image_id
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB: &str = "123456789012";
    const NOW: &str = "2026-12-02T03:00:00.000Z";

    fn sel(pattern: &str) -> ImageSelector {
        ImageSelector::parse(&json!({"namePattern": pattern}), Some(HUB)).unwrap()
    }

    fn img(id: &str, name: &str, created: &str) -> Candidate {
        Candidate {
            image_id: id.into(),
            name: name.into(),
            owner_id: HUB.into(),
            state: "available".into(),
            creation_date: created.into(),
            deprecation_time: None,
        }
    }

    #[test]
    fn name_patterns_match_as_the_ec2_name_filter() {
        assert!(name_matches("golden-*", "golden-2026-12-01"));
        assert!(name_matches("golden-*", "golden-"));
        assert!(!name_matches("golden-*", "Golden-1"), "case-sensitive");
        assert!(!name_matches("golden-*", "my-golden-1"));
        assert!(name_matches("*golden*", "my-golden-1"));
        assert!(name_matches("al2023-?", "al2023-a"));
        assert!(!name_matches("al2023-?", "al2023-ab"));
        assert!(!name_matches("al2023-?", "al2023-"));
        assert!(name_matches("a*b*c", "aXXbYYbc"));
        assert!(!name_matches("a*b*c", "aXXbYYb"));
        assert!(name_matches("exact", "exact"));
        assert!(!name_matches("exact", "exact2"));
        assert!(name_matches("**x**", "x"));
    }

    #[test]
    fn selectors_are_checked_before_any_call() {
        assert_eq!(sel("golden-*").owner, "self");
        let own =
            ImageSelector::parse(&json!({"owner": HUB, "namePattern": "g*"}), Some(HUB)).unwrap();
        assert_eq!(own.owner, HUB);
        for (v, says) in [
            (
                json!({"owner": "210987654321", "namePattern": "g*"}),
                "another account",
            ),
            (json!({"owner": "amazon", "namePattern": "g*"}), "12 digits"),
            (json!({"namePattern": "*"}), "matches any image"),
            (json!({"namePattern": "?*?"}), "matches any image"),
            (json!({"namePattern": ""}), "1 to 128"),
            (json!({"namePattern": "x".repeat(129)}), "1 to 128"),
            (
                json!({"namePattern": "golden,*"}),
                "cannot be part of an AMI name",
            ),
            (
                json!({"namePattern": "g*", "owners": ["self"]}),
                "unknown field",
            ),
            (json!({"owner": "self"}), "missing field `namePattern`"),
            (json!("golden-*"), "expected"),
        ] {
            let e = ImageSelector::parse(&v, Some(HUB)).unwrap_err();
            assert_eq!(e.name, ErrorName::InvalidInput);
            assert!(e.message.contains(says), "{v}: {}", e.message);
        }
        // Before a start (`ferry`), the hub account is not known: any account id passes.
        let other = json!({"owner": "210987654321", "namePattern": "g*"});
        assert!(ImageSelector::parse(&other, None).is_ok());
    }

    #[test]
    fn the_newest_available_matching_image_wins_whatever_the_order() {
        let images = vec![
            img(
                "ami-0000000000000000b",
                "golden-2",
                "2026-12-01T03:00:00.000Z",
            ),
            img(
                "ami-0000000000000000c",
                "golden-3",
                "2026-12-02T02:00:00.000Z",
            ),
            img(
                "ami-0000000000000000a",
                "golden-1",
                "2026-11-30T03:00:00.000Z",
            ),
            // newer, but not matching / not available / another owner / deprecated
            img(
                "ami-0000000000000000d",
                "silver-9",
                "2026-12-02T02:30:00.000Z",
            ),
            Candidate {
                state: "pending".into(),
                ..img(
                    "ami-0000000000000000e",
                    "golden-4",
                    "2026-12-02T02:40:00.000Z",
                )
            },
            Candidate {
                owner_id: "210987654321".into(),
                ..img(
                    "ami-0000000000000000f",
                    "golden-5",
                    "2026-12-02T02:50:00.000Z",
                )
            },
            Candidate {
                deprecation_time: Some("2026-12-02T02:59:00.000Z".into()),
                ..img(
                    "ami-00000000000000010",
                    "golden-6",
                    "2026-12-02T02:55:00.000Z",
                )
            },
        ];
        for rotation in 0..images.len() {
            let mut shuffled = images.clone();
            shuffled.rotate_left(rotation);
            let r = newest_available(&sel("golden-*"), HUB, &shuffled, NOW).unwrap();
            assert_eq!(r.image_id, "ami-0000000000000000c");
            assert_eq!(r.name, "golden-3");
            assert_eq!(r.matched, 3);
        }
        // A deprecation still in the future does not disqualify.
        let mut later = images.clone();
        later[6].deprecation_time = Some("2027-01-01T00:00:00Z".into());
        assert_eq!(
            newest_available(&sel("golden-*"), HUB, &later, NOW)
                .unwrap()
                .image_id,
            "ami-00000000000000010"
        );
    }

    #[test]
    fn creation_dates_compare_as_times_and_ties_by_id() {
        // 2026-12-01T10:00:00Z is newer than 2026-12-01T09:59:59.999Z, with or without
        // fractions; equal times: the larger id, so the choice is the same every run.
        let images = vec![
            img("ami-0000000000000000a", "g-1", "2026-12-01T09:59:59.999Z"),
            img("ami-0000000000000000b", "g-2", "2026-12-01T10:00:00Z"),
        ];
        assert_eq!(
            newest_available(&sel("g-*"), HUB, &images, NOW)
                .unwrap()
                .name,
            "g-2"
        );
        let tie = vec![
            img("ami-0000000000000000b", "g-1", "2026-12-01T10:00:00.000Z"),
            img("ami-0000000000000000a", "g-2", "2026-12-01T10:00:00+00:00"),
        ];
        assert_eq!(
            newest_available(&sel("g-*"), HUB, &tie, NOW)
                .unwrap()
                .image_id,
            "ami-0000000000000000b"
        );
        assert_eq!(
            utc_sort_key("2026-12-01T10:00:00.5Z").unwrap(),
            "2026-12-01T10:00:00.500"
        );
        assert!(utc_sort_key("yesterday").is_none());
        assert!(utc_sort_key("2026-12-01 10:00:00Z").is_none());
    }

    #[test]
    fn nothing_matching_is_image_not_found_naming_the_pattern() {
        let e = newest_available(
            &sel("golden-*"),
            HUB,
            &[img(
                "ami-0000000000000000a",
                "silver",
                "2026-12-01T00:00:00Z",
            )],
            NOW,
        )
        .unwrap_err();
        assert_eq!(e.name, ErrorName::ImageNotFound);
        assert!(
            e.message.contains("\"golden-*\"") && e.message.contains(HUB),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_request_names_an_image_id_or_a_selector_never_both() {
        let by_id = json!({"share": {"imageId": "ami-0123456789abcdef0"}, "targets": []});
        assert_eq!(selector_of(&by_id, Some(HUB)).unwrap(), None);
        let by_sel = json!({"share": {"image": {"namePattern": "golden-*"}}, "targets": []});
        assert_eq!(
            selector_of(&by_sel, Some(HUB))
                .unwrap()
                .unwrap()
                .name_pattern,
            "golden-*"
        );
        let both =
            json!({"share": {"imageId": "ami-0123456789abcdef0", "image": {"namePattern": "g*"}}});
        assert!(selector_of(&both, Some(HUB))
            .unwrap_err()
            .message
            .contains("not both"));
        let bad = json!({"share": {"image": {"namePattern": "*"}}});
        assert_eq!(
            selector_of(&bad, Some(HUB)).unwrap_err().name,
            ErrorName::InvalidInput
        );
    }

    #[test]
    fn the_resolved_request_carries_the_image_and_the_choice() {
        let request = json!({"share": {"image": {"namePattern": "golden-*"}, "tags": {"k": "v"}}, "targets": [1]});
        let r = ResolvedImage {
            image_id: "ami-0000000000000000c".into(),
            name: "golden-3".into(),
            creation_date: "2026-12-02T02:00:00.000Z".into(),
            owner_id: HUB.into(),
            name_pattern: "golden-*".into(),
            matched: 3,
        };
        let out = resolved_request(&request, &r);
        assert_eq!(
            out["share"],
            json!({"imageId": "ami-0000000000000000c", "tags": {"k": "v"}})
        );
        assert_eq!(out["targets"], json!([1]));
        assert_eq!(out["resolvedImage"]["name"], "golden-3");
        check_resolved(&r, "ami-0000000000000000c").unwrap();
        assert!(check_resolved(&r, "ami-0000000000000000a").is_err());
    }
}
