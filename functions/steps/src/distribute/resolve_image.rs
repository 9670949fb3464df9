//! State `ResolveImage` of distribute-image (the scheduled path): a request naming
//! `share.image` (`{"owner": "self", "namePattern": "golden-*"}`) gets the newest
//! available, not deprecated image of this account whose name matches, as
//! `share.imageId`, and `resolvedImage` recording the choice. Read only
//! (ec2:DescribeImages, every page); the choice is `ferry_core::distribute::resolve`.

use crate::aws::{aws_error, Clients};
use aws_sdk_ec2::types::{Filter, Image};
use ferry_core::distribute::io::DistributePreflightInput;
use ferry_core::distribute::plan::execution_account;
use ferry_core::distribute::resolve::{self, Candidate};
use ferry_core::FerryError;
use serde_json::Value;

/// DescribeImages' largest page (MaxResults 5-1000).
const PAGE_SIZE: i32 = 1000;

pub async fn handle(
    clients: Clients,
    input: DistributePreflightInput,
) -> Result<Value, FerryError> {
    let hub = execution_account(&input.context.execution_arn).ok_or_else(|| {
        FerryError::invalid_input(format!(
            "context: {:?} is not an execution ARN",
            input.context.execution_arn
        ))
    })?;
    let Some(selector) = resolve::selector_of(&input.request, Some(&hub))? else {
        return Err(FerryError::invalid_input(
            "share.image: ResolveImage needs a request that names share.image",
        ));
    };
    // The execution's start: an image deprecated before the run started does not count.
    let now = input.context.start_time.clone().unwrap_or_default();
    let owner = if selector.owner == "self" {
        "self".to_string()
    } else {
        selector.owner.clone()
    };
    let mut pages = clients
        .ec2
        .describe_images()
        .owners(owner)
        .filters(
            Filter::builder()
                .name("name")
                .values(&selector.name_pattern)
                .build(),
        )
        .filters(Filter::builder().name("state").values("available").build())
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    let mut candidates = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("DescribeImages", e))?;
        candidates.extend(page.images().iter().filter_map(candidate));
    }
    let resolved = resolve::newest_available(&selector, &hub, &candidates, &now)?;
    tracing::info!(
        image_id = %resolved.image_id,
        name = %resolved.name,
        matched = resolved.matched,
        "resolved share.image"
    );
    Ok(resolve::resolved_request(&input.request, &resolved))
}

fn candidate(image: &Image) -> Option<Candidate> {
    Some(Candidate {
        image_id: image.image_id()?.to_string(),
        name: image.name().unwrap_or_default().to_string(),
        owner_id: image.owner_id().unwrap_or_default().to_string(),
        state: image
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        creation_date: image.creation_date().unwrap_or_default().to_string(),
        deprecation_time: image.deprecation_time().map(str::to_string),
    })
}
