//! The copy plan: names, token, tags and the revoke payload, decided once by preflight.

use super::request::CopyRequest;
use super::{COPY_TOKEN_PURPOSE, WORKFLOW_COPY_IMAGE};
use crate::errors::FerryError;
use crate::names::{self, ExecutionContext};
use crate::share::dry_run::{parse_given_share, GivenShare};
use crate::tags::{
    TAG_EXECUTION, TAG_SOURCE_ACCOUNT, TAG_SOURCE_IMAGE, TAG_SOURCE_REGION, TAG_WORKFLOW,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The copy's AMI name: the requested one, else `ferry-copy-<source>-<execution>-<hash>`
/// (deterministic per execution, within AMI name rules).
pub fn copy_image_name(request: &CopyRequest, execution: &ExecutionContext) -> String {
    if let Some(name) = &request.name {
        return name.clone();
    }
    let readable = names::readable_execution_name(execution, 60);
    let digest = names::client_token(&execution.execution_arn, "copy-image-name");
    format!(
        "ferry-copy-{}-{readable}-{}",
        request.source_image_id,
        &digest["ferry-".len().."ferry-".len() + 10]
    )
}

/// RoleSessionName for the target (2-64 of `[\w+=,.@-]`): shows in the target's
/// CloudTrail which ferry execution acted there.
pub fn session_name(execution: &ExecutionContext) -> String {
    let token = names::client_token(&execution.execution_arn, "session");
    format!(
        "ferry-copy-image-{}",
        &token["ferry-".len().."ferry-".len() + 16]
    )
}

/// Provenance tags on the copy and its snapshots; rollback finds the copy by them.
pub fn copy_tags(
    request: &CopyRequest,
    execution_arn: &str,
    source_account: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_WORKFLOW.to_string(), WORKFLOW_COPY_IMAGE.to_string()),
        (TAG_EXECUTION.to_string(), execution_arn.to_string()),
        (TAG_SOURCE_ACCOUNT.to_string(), source_account.to_string()),
        (
            TAG_SOURCE_IMAGE.to_string(),
            request.source_image_id.clone(),
        ),
        (TAG_SOURCE_REGION.to_string(), request.source_region.clone()),
    ])
}

/// Rule 24 / issue 2.11 (EC2 API Reference, CopyImage `CopyImageTags`: "user-defined tags
/// that are attached by other AWS accounts" to a shared AMI are not copied): with
/// `copyTags`, the source owner's own tags (read by the hub when it owns the source) are
/// put on the copy explicitly. Only settable, non-ferry keys; ferry's provenance tags win;
/// at most 50 tags in all (the rest are named in the returned warning).
pub fn add_source_tags(
    tags: &mut BTreeMap<String, String>,
    source_tags: &BTreeMap<String, String>,
) -> Option<String> {
    let mut dropped = Vec::new();
    for (k, v) in source_tags {
        if !crate::tags::is_settable_tag_key(k)
            || k.starts_with(crate::tags::FERRY_TAG_PREFIX)
            || tags.contains_key(k)
        {
            continue;
        }
        if tags.len() >= crate::tags::MAX_TAGS_PER_RESOURCE {
            dropped.push(k.clone());
            continue;
        }
        tags.insert(k.clone(), v.clone());
    }
    (!dropped.is_empty()).then(|| {
        format!(
            "copyTags: {} source tags not copied (EC2 allows {} per resource): {}",
            dropped.len(),
            crate::tags::MAX_TAGS_PER_RESOURCE,
            dropped.join(", ")
        )
    })
}

/// What RevokeShareFunction is invoked with: what the share granted to the target only
/// (`ShareRecord::for_account`) when copy-image was given the record, else (no share
/// given, or one only planned by a dry run) the image and the target account
/// (revoke-share then removes what ferry granted that account).
pub fn revoke_payload(request: &CopyRequest) -> Result<Value, FerryError> {
    let given = request.share.as_ref().map(parse_given_share).transpose()?;
    match given {
        Some(GivenShare::Made(record)) => {
            let record = record.for_account(&request.target_account_id);
            Ok(serde_json::json!({ "record": record }))
        }
        Some(GivenShare::Planned(_)) | None => Ok(serde_json::json!({
            "imageId": request.source_image_id,
            "accountIds": [request.target_account_id],
            "region": request.source_region,
        })),
    }
}

/// Everything later steps need, decided once by the copy preflight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyPlan {
    pub workflow: String,
    pub execution: ExecutionContext,
    pub request: CopyRequest,
    /// The account that owns the source image (as the target sees it).
    pub source_account_id: String,
    pub copy_name: String,
    pub description: String,
    pub client_token: String,
    pub session_name: String,
    /// On the copy and its snapshots (TagSpecifications of CopyImage).
    pub tags: BTreeMap<String, String>,
    /// CopyImage's own CopyImageTags: only when `copyTags` and the source's tags could
    /// not be read by the hub (then the copy gets what the target itself sees).
    #[serde(default)]
    pub copy_image_tags: bool,
    /// What the plan could not do as asked (e.g. source tags not readable or dropped).
    #[serde(default)]
    pub warnings: Vec<String>,
    pub revoke_after_copy: bool,
    /// RevokeShareFunction's input (the Revoke state passes it through).
    pub revoke: Value,
    /// `dryRun` of the request: the state machine ends after Preflight with the plan.
    #[serde(default)]
    pub dry_run: bool,
}

/// How many times copy-image makes its copy when EC2 cannot use a KMS key for it (rule 23:
/// a grant made by the share just before may take minutes to be in effect): the first
/// copy and up to four more.
pub const COPY_KEY_ATTEMPTS: u32 = 5;

/// How long to wait before copy number `attempt + 1` after copy number `attempt` (1-based)
/// failed on its key: 60, 120, 240, 480 s (15 minutes in all, three times the "usually
/// less than five minutes" of KMS grant consistency); `None` when it was the last.
pub fn recopy_after_seconds(attempt: u32) -> Option<u64> {
    (1..COPY_KEY_ATTEMPTS)
        .contains(&attempt)
        .then(|| 60u64 << (attempt - 1))
}

impl CopyPlan {
    /// The CopyImage ClientToken of copy number `attempt` (1-based): the plan's token for
    /// the first, one of its own for each later copy (the failed copy keeps its token:
    /// reusing it would answer the failed copy again).
    pub fn client_token_for(&self, attempt: u32) -> String {
        if attempt <= 1 {
            self.client_token.clone()
        } else {
            names::client_token(
                &self.execution.execution_arn,
                &format!("{COPY_TOKEN_PURPOSE}-{attempt}"),
            )
        }
    }
}

/// The plan from a validated request and what the target saw of the source.
pub fn plan(
    request: CopyRequest,
    execution: ExecutionContext,
    source_account_id: &str,
) -> Result<CopyPlan, FerryError> {
    Ok(CopyPlan {
        workflow: WORKFLOW_COPY_IMAGE.to_string(),
        copy_name: copy_image_name(&request, &execution),
        description: format!(
            "Copy of {} ({}, account {source_account_id}) by ferry {}",
            request.source_image_id, request.source_region, execution.execution_name
        ),
        client_token: names::client_token(&execution.execution_arn, COPY_TOKEN_PURPOSE),
        session_name: session_name(&execution),
        tags: copy_tags(&request, &execution.execution_arn, source_account_id),
        copy_image_tags: request.copy_tags,
        warnings: Vec::new(),
        revoke_after_copy: request.revoke_after_copy,
        revoke: revoke_payload(&request)?,
        dry_run: request.dry_run,
        source_account_id: source_account_id.to_string(),
        execution,
        request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::fixtures::*;
    use crate::rules::ids::check_image_name;
    use serde_json::json;

    #[test]
    fn source_tags_are_added_below_ferrys_and_within_fifty() {
        let r = CopyRequest::parse(&minimal()).unwrap();
        let mut tags = plan(r, ctx("copy-1"), "111122223333").unwrap().tags;
        let ferry = tags.len();
        let source = BTreeMap::from([
            ("team".to_string(), "web".to_string()),
            ("aws:cloudformation:stack-name".to_string(), "x".to_string()),
            ("ferry:workflow".to_string(), "not this".to_string()),
        ]);
        assert_eq!(add_source_tags(&mut tags, &source), None);
        assert_eq!(tags["team"], "web");
        assert_eq!(tags["ferry:workflow"], "copy-image", "ferry's own tag wins");
        assert!(!tags.contains_key("aws:cloudformation:stack-name"));
        assert_eq!(tags.len(), ferry + 1);
        let many: BTreeMap<String, String> = (0..60)
            .map(|i| (format!("k{i:02}"), "v".to_string()))
            .collect();
        let warning = add_source_tags(&mut tags, &many).unwrap();
        assert_eq!(tags.len(), 50);
        assert!(warning.contains("source tags not copied"), "{warning}");
    }

    #[test]
    fn names_tokens_and_tags_derive_from_the_execution() {
        let r = CopyRequest::parse(&minimal()).unwrap();
        let p1 = plan(r.clone(), ctx("copy-1"), "111122223333").unwrap();
        let p1b = plan(r.clone(), ctx("copy-1"), "111122223333").unwrap();
        let p2 = plan(r.clone(), ctx("copy-2"), "111122223333").unwrap();
        assert_eq!(p1.copy_name, p1b.copy_name);
        assert_eq!(p1.client_token, p1b.client_token);
        assert_ne!(p1.copy_name, p2.copy_name);
        assert_ne!(p1.client_token, p2.client_token);
        assert!(p1.client_token.len() <= 64 && p1.client_token.is_ascii());
        assert_eq!(
            p1.client_token,
            names::client_token(&ctx("copy-1").execution_arn, COPY_TOKEN_PURPOSE)
        );
        check_image_name("copy", &p1.copy_name).unwrap();
        assert!(p1
            .copy_name
            .starts_with("ferry-copy-ami-0123456789abcdef0-copy-1-"));
        let long = plan(r.clone(), ctx(&"x".repeat(80)), "111122223333").unwrap();
        check_image_name("copy", &long.copy_name).unwrap();
        // session names: 2-64 of [\w+=,.@-]
        assert!((2..=64).contains(&p1.session_name.len()));
        assert_ne!(p1.session_name, p2.session_name);
        assert_eq!(p1.tags[TAG_WORKFLOW], "copy-image");
        assert_eq!(p1.tags[TAG_EXECUTION], ctx("copy-1").execution_arn);
        assert_eq!(p1.tags[TAG_SOURCE_ACCOUNT], "111122223333");
        assert_eq!(p1.tags[TAG_SOURCE_IMAGE], "ami-0123456789abcdef0");
        assert_eq!(p1.tags[TAG_SOURCE_REGION], "us-east-1");
        // a given name is used as is
        let mut v = minimal();
        v["name"] = json!("golden-web");
        let named = plan(CopyRequest::parse(&v).unwrap(), ctx("copy-1"), "1").unwrap();
        assert_eq!(named.copy_name, "golden-web");
    }

    #[test]
    fn revoke_without_a_record_names_image_target_and_the_image_region() {
        // The revoke runs where the share is, not where revoke-share runs (issue 8, 2.5).
        let r = CopyRequest::parse(&minimal()).unwrap();
        assert_eq!(
            revoke_payload(&r).unwrap(),
            json!({"imageId": "ami-0123456789abcdef0", "accountIds": [B], "region": r.source_region})
        );
        let parsed =
            crate::share::revoke::RevokeRequest::parse(&revoke_payload(&r).unwrap()).unwrap();
        assert!(matches!(
            parsed,
            crate::share::revoke::RevokeRequest::Image { region: Some(ref x), .. } if *x == r.source_region
        ));
    }

    #[test]
    fn revoke_with_a_record_keeps_only_the_targets_part() {
        for share in [record(), json!({"record": record(), "warnings": []})] {
            let r = CopyRequest::parse(&with("share", share)).unwrap();
            let payload = revoke_payload(&r).unwrap();
            let f = &payload["record"];
            assert_eq!(f["imageId"], "ami-0123456789abcdef0");
            assert_eq!(f["ownerAccountId"], "111122223333");
            assert_eq!(f["launchPermissions"], json!([{"userId": B}]));
            assert_eq!(
                f["snapshotPermissions"],
                json!([{"snapshotId": "snap-0123456789abcdef0", "userId": B}])
            );
            assert_eq!(f["grants"].as_array().unwrap().len(), 1);
            assert_eq!(f["grants"][0]["grantId"], "g1");
            // what revoke-share accepts
            crate::share::revoke::RevokeRequest::parse(&payload).unwrap();
        }
    }

    #[test]
    fn a_copy_that_failed_on_its_key_is_made_again_a_bounded_number_of_times() {
        let waits: Vec<Option<u64>> = (1..=COPY_KEY_ATTEMPTS).map(recopy_after_seconds).collect();
        assert_eq!(waits, vec![Some(60), Some(120), Some(240), Some(480), None]);
        assert_eq!(recopy_after_seconds(0), None);
        assert_eq!(recopy_after_seconds(99), None);
        let p = plan(
            CopyRequest::parse(&minimal()).unwrap(),
            ctx("copy-1"),
            "111122223333",
        )
        .unwrap();
        assert_eq!(p.client_token_for(1), p.client_token);
        assert_eq!(p.client_token_for(0), p.client_token);
        let tokens: std::collections::BTreeSet<String> = (1..=COPY_KEY_ATTEMPTS)
            .map(|n| p.client_token_for(n))
            .collect();
        assert_eq!(
            tokens.len(),
            COPY_KEY_ATTEMPTS as usize,
            "one token per copy"
        );
        assert!(tokens.iter().all(|t| t.len() <= 64 && t.is_ascii()));
        assert_eq!(p.client_token_for(3), p.client_token_for(3));
    }
}
