//! SDK-shape tests of distribute-image's `ResolveImage` with aws-smithy-mocks: the
//! DescribeImages request (owner, name and state filters, page size), every page read,
//! the newest image of all pages chosen, and AWS errors mapped to ferry's names.

use aws_sdk_ec2::operation::describe_images::{DescribeImagesError, DescribeImagesOutput};
use aws_sdk_ec2::types::{Image, ImageState};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use ferry_core::distribute::io::DistributePreflightInput;
use ferry_core::names::ExecutionContext;
use ferry_core::ErrorName;
use ferry_steps::distribute::resolve_image;
use ferry_steps::Clients;
use serde_json::{json, Value};

const HUB: &str = "111122223333";
const EXECUTION: &str =
    "arn:aws:states:eu-west-1:111122223333:execution:ferry-distribute-image:nightly-1";

fn clients(ec2_rules: &[&Rule]) -> Clients {
    Clients::from_parts(
        mock_client!(aws_sdk_ec2, RuleMode::MatchAny, ec2_rules),
        mock_client!(aws_sdk_kms, RuleMode::MatchAny, &[]),
        mock_client!(aws_sdk_sts, RuleMode::MatchAny, &[]),
    )
}

fn input(request: Value) -> DistributePreflightInput {
    DistributePreflightInput {
        request,
        context: ExecutionContext {
            execution_arn: EXECUTION.into(),
            execution_name: "nightly-1".into(),
            start_time: Some("2026-12-02T03:00:00.000Z".into()),
            ..Default::default()
        },
    }
}

fn image(id: &str, name: &str, created: &str) -> Image {
    Image::builder()
        .image_id(id)
        .name(name)
        .owner_id(HUB)
        .state(ImageState::Available)
        .creation_date(created)
        .build()
}

fn filter_values(
    r: &aws_sdk_ec2::operation::describe_images::DescribeImagesInput,
    name: &str,
) -> Vec<String> {
    r.filters()
        .iter()
        .filter(|f| f.name() == Some(name))
        .flat_map(|f| f.values().iter().cloned())
        .collect()
}

#[tokio::test]
async fn reads_every_page_and_takes_the_newest_match() {
    let first = mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|r| {
            r.owners() == ["self"]
                && filter_values(r, "name") == ["golden-*"]
                && filter_values(r, "state") == ["available"]
                && r.max_results() == Some(1000)
                && r.next_token().is_none()
        })
        .then_output(|| {
            DescribeImagesOutput::builder()
                .images(image(
                    "ami-0000000000000000a",
                    "golden-1",
                    "2026-11-30T03:00:00.000Z",
                ))
                .images(image(
                    "ami-0000000000000000b",
                    "golden-2",
                    "2026-12-01T03:00:00.000Z",
                ))
                .next_token("page-2")
                .build()
        });
    let second = mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            DescribeImagesOutput::builder()
                .images(image(
                    "ami-0000000000000000c",
                    "golden-3",
                    "2026-12-02T01:00:00.000Z",
                ))
                .build()
        });
    let request = json!({"share": {"image": {"namePattern": "golden-*"}}, "targets": []});
    let out = resolve_image::handle(clients(&[&first, &second]), input(request))
        .await
        .unwrap();
    assert_eq!(first.num_calls(), 1);
    assert_eq!(second.num_calls(), 1);
    assert_eq!(out["share"], json!({"imageId": "ami-0000000000000000c"}));
    assert_eq!(out["resolvedImage"]["name"], "golden-3");
    assert_eq!(out["resolvedImage"]["matched"], 3);
    assert_eq!(out["targets"], json!([]));
}

#[tokio::test]
async fn nothing_matching_is_image_not_found_and_errors_keep_their_names() {
    let empty = mock!(aws_sdk_ec2::Client::describe_images)
        .then_output(|| DescribeImagesOutput::builder().build());
    let request = json!({"share": {"image": {"namePattern": "golden-*"}}, "targets": []});
    let e = resolve_image::handle(clients(&[&empty]), input(request.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.name, ErrorName::ImageNotFound, "{e}");

    let throttled = mock!(aws_sdk_ec2::Client::describe_images).then_error(|| {
        DescribeImagesError::generic(
            ErrorMetadata::builder()
                .code("RequestLimitExceeded")
                .message("slow down (mocked)")
                .build(),
        )
    });
    let e = resolve_image::handle(clients(&[&throttled]), input(request))
        .await
        .unwrap_err();
    assert_eq!(e.name, ErrorName::Throttled, "{e}");
}

#[tokio::test]
async fn a_bad_selector_is_refused_before_any_call() {
    // No rule: any EC2 call would panic.
    for request in [
        json!({"share": {"image": {"namePattern": "*"}}}),
        json!({"share": {"image": {"owner": "222233334444", "namePattern": "g*"}}}),
        json!({"share": {"imageId": "ami-0000000000000000a", "image": {"namePattern": "g*"}}}),
        json!({"share": {"imageId": "ami-0000000000000000a"}}),
    ] {
        let e = resolve_image::handle(clients(&[]), input(request.clone()))
            .await
            .unwrap_err();
        assert_eq!(e.name, ErrorName::InvalidInput, "{request}: {e}");
    }
}
