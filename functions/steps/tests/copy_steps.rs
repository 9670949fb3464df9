//! SDK-shape tests of the copy-image steps with aws-smithy-mocks: the AssumeRole call
//! (role, ExternalId, session name), the EC2 calls each step makes as the target and
//! their parameters, and AWS errors mapped to ferry's names. A call no rule expects
//! panics, so "makes no call" is checked by absence.

use aws_sdk_ec2::operation::copy_image::{CopyImageError, CopyImageOutput};
use aws_sdk_ec2::operation::delete_snapshot::DeleteSnapshotOutput;
use aws_sdk_ec2::operation::deregister_image::DeregisterImageOutput;
use aws_sdk_ec2::operation::describe_images::{DescribeImagesError, DescribeImagesOutput};
use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
use aws_sdk_ec2::types::*;
use aws_sdk_sts::operation::assume_role::{AssumeRoleError, AssumeRoleOutput};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use ferry_core::copy::{io::*, plan::*, request::*, COPY_TOKEN_PURPOSE};
use ferry_core::names::ExecutionContext;
use ferry_core::{ErrorName, FerryError};
use ferry_steps::copy::*;
use ferry_steps::Clients;
use serde_json::json;

const SOURCE: &str = "ami-0a1b2c3d4e5f60718";
const COPY: &str = "ami-0c0c0c0c0c0c0c0c0";
const SNAP: &str = "snap-0111111111111111a";
const HUB: &str = "111122223333";
const B: &str = "222233334444";
const ROLE: &str = "arn:aws:iam::222233334444:role/ferry/ferry-target";
const KEY_B: &str = "arn:aws:kms:eu-west-1:222233334444:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const EXECUTION: &str =
    "arn:aws:states:eu-west-1:111122223333:execution:ferry-copy-image:copy-web-1";

fn meta(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message(format!("{code} (mocked)"))
        .build()
}

fn none() -> &'static [&'static Rule] {
    &[]
}

/// The target's key as DescribeKey answers it.
fn target_key(state: aws_sdk_kms::types::KeyState) -> Rule {
    mock!(aws_sdk_kms::Client::describe_key)
        .match_requests(|r| r.key_id() == Some(KEY_B))
        .then_output(move || {
            aws_sdk_kms::operation::describe_key::DescribeKeyOutput::builder()
                .key_metadata(
                    aws_sdk_kms::types::KeyMetadata::builder()
                        .key_id("1234abcd-12ab-34cd-56ef-1234567890ab")
                        .arn(KEY_B)
                        .key_manager(aws_sdk_kms::types::KeyManagerType::Customer)
                        .key_state(state.clone())
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

/// The hub's clients: STS answers `sts_rules`; EC2 and KMS must not be called (the copy
/// steps act only as the target). `assume` hands out the target's mocked EC2, and its
/// KMS, which knows the target key (enabled).
fn clients(sts_rules: &[&Rule], target_ec2_rules: &[&Rule]) -> Clients {
    clients_with_key(
        sts_rules,
        target_ec2_rules,
        &target_key(aws_sdk_kms::types::KeyState::Enabled),
    )
}

fn clients_with_key(sts_rules: &[&Rule], target_ec2_rules: &[&Rule], key: &Rule) -> Clients {
    clients_sharing_with(sts_rules, target_ec2_rules, key, "555566667777")
}

/// As [`clients_with_key`], the hub's source launchable by `shared_with` (its launch
/// permissions as the owner reads them, for a target that does not see it).
fn clients_sharing_with(
    sts_rules: &[&Rule],
    target_ec2_rules: &[&Rule],
    key: &Rule,
    shared_with: &'static str,
) -> Clients {
    let launch = mock!(aws_sdk_ec2::Client::describe_image_attribute)
        .match_requests(|r| {
            r.image_id() == Some(SOURCE)
                && r.attribute() == Some(&ImageAttributeName::LaunchPermission)
        })
        .then_output(move || {
            aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeOutput::builder(
            )
            .image_id(SOURCE)
            .launch_permissions(LaunchPermission::builder().user_id(shared_with).build())
            .build()
        });
    // The hub reads only its own source image's tags (copyTags).
    let own_source = mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|r| r.image_ids() == [SOURCE] && r.owners() == ["self"])
        .then_output(|| {
            DescribeImagesOutput::builder()
                .images(
                    Image::builder()
                        .image_id(SOURCE)
                        .owner_id(HUB)
                        .state(ImageState::Available)
                        .tags(Tag::builder().key("team").value("web").build())
                        .tags(Tag::builder().key("ferry:workflow").value("x").build())
                        .build(),
                )
                .build()
        });
    let hub_ec2: aws_sdk_ec2::Client =
        mock_client!(aws_sdk_ec2, RuleMode::MatchAny, &[&own_source, &launch]);
    let kms: aws_sdk_kms::Client = mock_client!(aws_sdk_kms, RuleMode::MatchAny, none());
    let sts: aws_sdk_sts::Client = mock_client!(aws_sdk_sts, RuleMode::MatchAny, sts_rules, |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
    let target_ec2: aws_sdk_ec2::Client =
        mock_client!(aws_sdk_ec2, RuleMode::MatchAny, target_ec2_rules, |c| c
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
    let target_kms: aws_sdk_kms::Client = mock_client!(aws_sdk_kms, RuleMode::MatchAny, &[key]);
    let target_sts: aws_sdk_sts::Client = mock_client!(aws_sdk_sts, RuleMode::MatchAny, none());
    Clients::from_parts(hub_ec2, kms, sts)
        .with_assumed(Clients::from_parts(target_ec2, target_kms, target_sts))
}

fn context() -> ExecutionContext {
    ExecutionContext {
        execution_arn: EXECUTION.to_string(),
        execution_name: "copy-web-1".to_string(),
        ..Default::default()
    }
}

fn request() -> serde_json::Value {
    json!({
        "sourceImageId": SOURCE, "sourceRegion": "eu-west-1", "targetAccountId": B,
        "targetRoleArn": ROLE, "externalId": "ferry-ext-1", "targetKmsKeyId": KEY_B,
    })
}

fn plan() -> CopyPlan {
    ferry_core::copy::plan::plan(CopyRequest::parse(&request()).unwrap(), context(), HUB).unwrap()
}

fn assume_ok() -> Rule {
    let session = plan().session_name;
    mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(move |r| {
            r.role_arn() == Some(ROLE)
                && r.external_id() == Some("ferry-ext-1")
                && r.role_session_name() == Some(session.as_str())
        })
        .then_output(|| {
            AssumeRoleOutput::builder()
                .credentials(
                    aws_sdk_sts::types::Credentials::builder()
                        .access_key_id("ASIATARGET")
                        .secret_access_key("secret")
                        .session_token("token")
                        .expiration(aws_smithy_types::DateTime::from_secs(0))
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

fn source_image(codes: &[&str]) -> Image {
    let mut b = Image::builder()
        .image_id(SOURCE)
        .owner_id(HUB)
        .state(ImageState::Available)
        .name("golden-web");
    for c in codes {
        b = b.product_codes(ProductCode::builder().product_code_id(*c).build());
    }
    b.build()
}

/// DescribeImages of `image_id` (the source, or the copy as the target) answering with
/// `image`.
fn describe_image(image_id: &'static str, image: Image) -> Rule {
    mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(move |r| r.image_ids() == [image_id])
        .then_output(move || {
            DescribeImagesOutput::builder()
                .images(image.clone())
                .build()
        })
}

fn own_images(images: Vec<Image>) -> Rule {
    mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|r| r.owners() == ["self"])
        .then_output(move || {
            DescribeImagesOutput::builder()
                .set_images(Some(images.clone()))
                .build()
        })
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

fn our_copy(state: ImageState) -> Image {
    Image::builder()
        .image_id(COPY)
        .owner_id(B)
        .name(plan().copy_name)
        .state(state)
        .tags(tag("ferry:execution", EXECUTION))
        .tags(tag("ferry:workflow", "copy-image"))
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(EbsBlockDevice::builder().snapshot_id(SNAP).build())
                .build(),
        )
        .build()
}

fn is(e: &FerryError, name: ErrorName) {
    assert_eq!(e.name, name, "{e}");
}

// --- Preflight -------------------------------------------------------------------------

#[tokio::test]
async fn preflight_refuses_bad_input_before_any_call() {
    let mut bad = request();
    bad["targetRoleArn"] = json!("arn:aws:iam::999988887777:role/ferry/ferry-target");
    let e = preflight::handle(
        clients(&[], &[]),
        CopyPreflightInput {
            request: bad,
            context: context(),
        },
    )
    .await
    .unwrap_err();
    is(&e, ErrorName::InvalidInput);
}

#[tokio::test]
async fn preflight_assumes_the_target_and_plans_the_copy() {
    let assume = assume_ok();
    let source = describe_image(SOURCE, source_image(&[]));
    let own = own_images(vec![]);
    let out = preflight::handle(
        clients(&[&assume], &[&source, &own]),
        CopyPreflightInput {
            request: request(),
            context: context(),
        },
    )
    .await
    .unwrap();
    assert_eq!(assume.num_calls(), 1);
    assert_eq!(source.num_calls(), 1);
    let p = out.plan;
    assert_eq!(p.source_account_id, HUB);
    assert_eq!(p.tags["ferry:source-account"], HUB);
    assert_eq!(p.tags["ferry:source-image"], SOURCE);
    assert_eq!(p.tags["ferry:source-region"], "eu-west-1");
    assert_eq!(p.tags["ferry:workflow"], "copy-image");
    // copyTags: the owner's own tags, read by the hub, put on the copy explicitly
    assert_eq!(p.tags["team"], "web");
    assert!(!p.copy_image_tags);
    assert_eq!(
        p.client_token,
        ferry_core::names::client_token(EXECUTION, COPY_TOKEN_PURPOSE)
    );
    assert_eq!(
        p.revoke,
        json!({"imageId": SOURCE, "accountIds": [B], "region": "eu-west-1"})
    );
}

#[tokio::test]
async fn preflight_maps_access_denied_to_target_access_denied() {
    let denied = mock!(aws_sdk_sts::Client::assume_role)
        .then_error(|| AssumeRoleError::generic(meta("AccessDenied")));
    let e = preflight::handle(
        clients(&[&denied], &[]),
        CopyPreflightInput {
            request: request(),
            context: context(),
        },
    )
    .await
    .unwrap_err();
    is(&e, ErrorName::TargetAccessDenied);
    assert!(e.message.contains("AssumeRole"), "{e}");
}

#[tokio::test]
async fn preflight_maps_an_invisible_image_to_image_not_found() {
    let assume = assume_ok();
    let missing = mock!(aws_sdk_ec2::Client::describe_images)
        .then_error(|| DescribeImagesError::generic(meta("InvalidAMIID.NotFound")));
    let e = preflight::handle(
        clients(&[&assume], &[&missing]),
        CopyPreflightInput {
            request: request(),
            context: context(),
        },
    )
    .await
    .unwrap_err();
    is(&e, ErrorName::ImageNotFound);
    assert!(e.message.contains(B), "{e}");
}

/// Issue 8 2.9 (rule 19): the hub owns the source and its launch permissions name the
/// target, which does not see it yet: the share has not reached it, a retryable
/// `Ferry.ShareNotYetVisible`, not a refusal.
#[tokio::test]
async fn preflight_waits_for_a_share_that_has_not_reached_the_target() {
    let assume = assume_ok();
    let missing = mock!(aws_sdk_ec2::Client::describe_images)
        .then_error(|| DescribeImagesError::generic(meta("InvalidAMIID.NotFound")));
    let e = preflight::handle(
        clients_sharing_with(
            &[&assume],
            &[&missing],
            &target_key(aws_sdk_kms::types::KeyState::Enabled),
            B,
        ),
        CopyPreflightInput {
            request: request(),
            context: context(),
        },
    )
    .await
    .unwrap_err();
    is(&e, ErrorName::ShareNotYetVisible);
    assert!(e.name.is_retryable());
}

/// The key the copy is to be encrypted under is checked as the target before any copy:
/// disabled or missing is bad input (found by the bad-input corpus: CopyImage used to run
/// and the failed copy was rolled back).
#[tokio::test]
async fn preflight_refuses_a_target_key_that_is_disabled_or_missing() {
    let assume = assume_ok();
    let source = describe_image(SOURCE, source_image(&[]));
    let own = own_images(vec![]);
    let disabled = target_key(aws_sdk_kms::types::KeyState::Disabled);
    let e = preflight::handle(
        clients_with_key(&[&assume], &[&source, &own], &disabled),
        CopyPreflightInput {
            request: request(),
            context: context(),
        },
    )
    .await
    .unwrap_err();
    is(&e, ErrorName::InvalidInput);
    assert!(
        e.message.contains("targetKmsKeyId") && e.message.contains("Disabled"),
        "{e}"
    );

    let assume = assume_ok();
    let source = describe_image(SOURCE, source_image(&[]));
    let missing = mock!(aws_sdk_kms::Client::describe_key).then_error(|| {
        aws_sdk_kms::operation::describe_key::DescribeKeyError::generic(
            ErrorMetadata::builder()
                .code("NotFoundException")
                .message("Key 'arn:...' does not exist")
                .build(),
        )
    });
    let e = preflight::handle(
        clients_with_key(&[&assume], &[&source], &missing),
        CopyPreflightInput {
            request: request(),
            context: context(),
        },
    )
    .await
    .unwrap_err();
    is(&e, ErrorName::InvalidInput);
    assert!(e.message.contains("does not exist"), "{e}");
}

#[tokio::test]
async fn preflight_refuses_product_codes_and_a_foreign_image_with_the_copy_name() {
    let assume = assume_ok();
    let source = describe_image(SOURCE, source_image(&["a1b2c3d4e5"]));
    let e = preflight::handle(
        clients(&[&assume], &[&source]),
        CopyPreflightInput {
            request: request(),
            context: context(),
        },
    )
    .await
    .unwrap_err();
    is(&e, ErrorName::ProductCodes);

    let assume = assume_ok();
    let source = describe_image(SOURCE, source_image(&[]));
    let foreign = Image::builder()
        .image_id(COPY)
        .owner_id(B)
        .name(plan().copy_name)
        .build();
    let own = own_images(vec![foreign]);
    let e = preflight::handle(
        clients(&[&assume], &[&source, &own]),
        CopyPreflightInput {
            request: request(),
            context: context(),
        },
    )
    .await
    .unwrap_err();
    is(&e, ErrorName::UnsupportedConfiguration);
}

// --- StartCopy -------------------------------------------------------------------------

#[tokio::test]
async fn start_copy_calls_copy_image_encrypted_tagged_with_the_token() {
    let assume = assume_ok();
    let own = own_images(vec![]);
    let p = plan();
    let token = p.client_token.clone();
    let name = p.copy_name.clone();
    let copy = mock!(aws_sdk_ec2::Client::copy_image)
        .match_requests(move |r| {
            let specs = r.tag_specifications();
            let types: Vec<_> = specs
                .iter()
                .filter_map(|s| s.resource_type().cloned())
                .collect();
            let tags = |t: &ResourceType| {
                specs
                    .iter()
                    .find(|s| s.resource_type() == Some(t))
                    .map(|s| s.tags().iter().filter_map(|t| t.key()).collect::<Vec<_>>())
                    .unwrap_or_default()
            };
            r.source_image_id() == Some(SOURCE)
                && r.source_region() == Some("eu-west-1")
                && r.encrypted() == Some(true)
                && r.kms_key_id() == Some(KEY_B)
                && r.copy_image_tags() == Some(true)
                && r.client_token() == Some(token.as_str())
                && r.name() == Some(name.as_str())
                && types == [ResourceType::Image, ResourceType::Snapshot]
                && tags(&ResourceType::Image).contains(&"ferry:source-account")
                && tags(&ResourceType::Snapshot).contains(&"ferry:execution")
        })
        .then_output(|| CopyImageOutput::builder().image_id(COPY).build());
    let out = start_copy::handle(
        clients(&[&assume], &[&own, &copy]),
        CopyPlanInput {
            plan: p,
            copy: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(copy.num_calls(), 1);
    assert_eq!(out.image_id, COPY);
    assert_eq!(out.state, "pending");
}

#[tokio::test]
async fn start_copy_finds_the_copy_an_earlier_attempt_made() {
    let assume = assume_ok();
    let own = own_images(vec![our_copy(ImageState::Pending)]);
    // no CopyImage rule: a call would panic
    let out = start_copy::handle(
        clients(&[&assume], &[&own]),
        CopyPlanInput {
            plan: plan(),
            copy: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(out.image_id, COPY);
}

/// Issue 8 2.9 (rule 23): entered again with the copy that failed on its key, StartCopy
/// removes that copy (this execution's, failed) with its snapshots and copies again with
/// the second copy's own ClientToken, numbering the copy and saying how long to wait
/// before a third.
#[tokio::test]
async fn start_copy_replaces_a_copy_that_failed_on_its_key() {
    let assume = assume_ok();
    let p = plan();
    let failed_image = our_copy(ImageState::Failed);
    let by_id = mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|r| r.image_ids() == [COPY])
        .then_output(move || {
            DescribeImagesOutput::builder()
                .images(failed_image.clone())
                .build()
        });
    let tagged_snaps = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .match_requests(|r| r.owner_ids() == ["self"])
        .then_output(|| {
            DescribeSnapshotsOutput::builder()
                .snapshots(Snapshot::builder().snapshot_id(SNAP).build())
                .build()
        });
    let deregister = mock!(aws_sdk_ec2::Client::deregister_image)
        .match_requests(|r| {
            r.image_id() == Some(COPY) && r.delete_associated_snapshots() == Some(true)
        })
        .then_output(|| {
            DeregisterImageOutput::builder()
                .delete_snapshot_results(
                    DeleteSnapshotReturnCode::builder()
                        .snapshot_id(SNAP)
                        .return_code(SnapshotReturnCodes::Success)
                        .build(),
                )
                .build()
        });
    let own = own_images(vec![]);
    let token = p.client_token_for(2);
    assert_ne!(token, p.client_token);
    let copy = mock!(aws_sdk_ec2::Client::copy_image)
        .match_requests(move |r| r.client_token() == Some(token.as_str()))
        .then_output(|| {
            CopyImageOutput::builder()
                .image_id("ami-0d0d0d0d0d0d0d0d0")
                .build()
        });
    let failed = CopyRef {
        attempt: 1,
        recopy_after_seconds: Some(60),
        state: "pending".into(),
        ..copy_ref()
    };
    let out = start_copy::handle(
        clients(
            &[&assume],
            &[&by_id, &tagged_snaps, &deregister, &own, &copy],
        ),
        CopyPlanInput {
            plan: p,
            copy: Some(failed),
        },
    )
    .await
    .unwrap();
    assert_eq!(deregister.num_calls(), 1);
    assert_eq!(copy.num_calls(), 1);
    assert_eq!(out.image_id, "ami-0d0d0d0d0d0d0d0d0");
    assert_eq!(out.attempt, 2);
    assert_eq!(out.recopy_after_seconds, Some(120));

    // A "failed" copy that is in fact available is never removed, nor copied again.
    let assume = assume_ok();
    let available = our_copy(ImageState::Available);
    let by_id = mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|r| r.image_ids() == [COPY])
        .then_output(move || {
            DescribeImagesOutput::builder()
                .images(available.clone())
                .build()
        });
    let no_snaps = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .then_output(|| DescribeSnapshotsOutput::builder().build());
    let e = start_copy::handle(
        clients(&[&assume], &[&by_id, &no_snaps]),
        CopyPlanInput {
            plan: plan(),
            copy: Some(CopyRef {
                attempt: 4,
                ..copy_ref()
            }),
        },
    )
    .await
    .unwrap_err();
    is(&e, ErrorName::AwsError);
}

#[tokio::test]
async fn start_copy_maps_errors() {
    for (code, name) in [
        ("InvalidAMIID.NotFound", ErrorName::ImageNotFound),
        ("RequestLimitExceeded", ErrorName::Throttled),
        ("InvalidRequest", ErrorName::AwsError),
    ] {
        let assume = assume_ok();
        let own = own_images(vec![]);
        let copy = mock!(aws_sdk_ec2::Client::copy_image)
            .then_error(move || CopyImageError::generic(meta(code)));
        let e = start_copy::handle(
            clients(&[&assume], &[&own, &copy]),
            CopyPlanInput {
                plan: plan(),
                copy: None,
            },
        )
        .await
        .unwrap_err();
        is(&e, name);
    }
}

// --- WaitCopy --------------------------------------------------------------------------

fn copy_ref() -> CopyRef {
    CopyRef {
        image_id: COPY.to_string(),
        name: plan().copy_name,
        state: "pending".to_string(),
        ..Default::default()
    }
}

#[tokio::test]
async fn wait_copy_polls_fails_and_reports_the_key() {
    let assume = assume_ok();
    let pending = describe_image(COPY, our_copy(ImageState::Pending));
    let e = wait_copy::handle(
        clients(&[&assume], &[&pending]),
        CopyImageInput {
            plan: plan(),
            copy: copy_ref(),
            task_token: None,
        },
    )
    .await
    .unwrap_err();
    is(&e, ErrorName::ImageNotReady);

    let assume = assume_ok();
    let mut failed = our_copy(ImageState::Failed);
    failed.state_reason = Some(
        StateReason::builder()
            .code("Client.InternalError")
            .message("Client.InternalError: Given key ID is not accessible")
            .build(),
    );
    let failed = describe_image(COPY, failed);
    let e = wait_copy::handle(
        clients(&[&assume], &[&failed]),
        CopyImageInput {
            plan: plan(),
            copy: copy_ref(),
            task_token: None,
        },
    )
    .await
    .unwrap_err();
    is(&e, ErrorName::CopyKeyNotUsable);
    assert!(e.message.contains("not accessible"), "{e}");

    let assume = assume_ok();
    let mut broken = our_copy(ImageState::Failed);
    broken.state_reason = Some(
        StateReason::builder()
            .code("Client.InternalError")
            .message("Client.InternalError: Snapshot creation failed")
            .build(),
    );
    let broken = describe_image(COPY, broken);
    let e = wait_copy::handle(
        clients(&[&assume], &[&broken]),
        CopyImageInput {
            plan: plan(),
            copy: copy_ref(),
            task_token: None,
        },
    )
    .await
    .unwrap_err();
    is(&e, ErrorName::ImageFailed);

    let assume = assume_ok();
    let available = describe_image(COPY, our_copy(ImageState::Available));
    let snaps = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .match_requests(|r| r.snapshot_ids() == [SNAP] && r.owner_ids() == ["self"])
        .then_output(|| {
            DescribeSnapshotsOutput::builder()
                .snapshots(
                    Snapshot::builder()
                        .snapshot_id(SNAP)
                        .kms_key_id(KEY_B)
                        .encrypted(true)
                        .build(),
                )
                .build()
        });
    let out = wait_copy::handle(
        clients(&[&assume], &[&available, &snaps]),
        CopyImageInput {
            plan: plan(),
            copy: copy_ref(),
            task_token: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(out.state, "available");
    assert_eq!(out.kms_key_ids, vec![KEY_B.to_string()]);
    assert_eq!(out.tags["ferry:workflow"], "copy-image");
}

/// Event-driven WaitCopy (a `.waitForTaskToken` Task, issue 10): the hub ends the wait
/// with SendTaskSuccess (the copy, its snapshots and the key, read as the target) when
/// the copy is available; pending leaves the Task waiting for the forwarded event or the
/// attempt's timeout (no Step Functions call); a copy EC2 could not encrypt fails the
/// Task by name (Ferry.CopyKeyNotUsable, for CopyAgain?).
#[tokio::test]
async fn wait_copy_with_a_token_ends_the_wait_from_the_hub_only_when_ready() {
    use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput;
    let snaps = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .match_requests(|r| r.snapshot_ids() == [SNAP])
        .then_output(|| {
            DescribeSnapshotsOutput::builder()
                .snapshots(
                    Snapshot::builder()
                        .snapshot_id(SNAP)
                        .kms_key_id(KEY_B)
                        .encrypted(true)
                        .build(),
                )
                .build()
        });
    let mut key_failed = our_copy(ImageState::Failed);
    key_failed.state_reason = Some(
        StateReason::builder()
            .code("Client.InternalError")
            .message("Client.InternalError: Given key ID is not accessible")
            .build(),
    );
    for (image, expect) in [
        (our_copy(ImageState::Available), Ok(("available", 1usize))),
        (our_copy(ImageState::Pending), Ok(("pending", 0))),
        (key_failed, Err(ErrorName::CopyKeyNotUsable)),
    ] {
        let assume = assume_ok();
        let describe = describe_image(COPY, image);
        let success = mock!(aws_sdk_sfn::Client::send_task_success)
            .match_requests(|r| {
                let output: serde_json::Value =
                    serde_json::from_str(r.output().unwrap_or("{}")).unwrap();
                r.task_token() == Some("token-copy")
                    && output["imageId"] == COPY
                    && output["state"] == "available"
                    && output["kmsKeyIds"] == json!([KEY_B])
            })
            .then_output(|| SendTaskSuccessOutput::builder().build());
        // The hub's Step Functions client: the token is the hub's execution's.
        let sfn: aws_sdk_sfn::Client =
            mock_client!(aws_sdk_sfn, RuleMode::MatchAny, &[&success], |c| c
                .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
        let got = wait_copy::handle(
            clients(&[&assume], &[&describe, &snaps]).with_sfn(sfn),
            CopyImageInput {
                plan: plan(),
                copy: copy_ref(),
                task_token: Some("token-copy".into()),
            },
        )
        .await;
        match (got, expect) {
            (Ok(copy), Ok((state, calls))) => {
                assert_eq!(copy.state, state);
                assert_eq!(success.num_calls(), calls, "{state}");
            }
            (Err(e), Err(name)) => {
                is(&e, name);
                assert_eq!(success.num_calls(), 0);
            }
            (got, expect) => panic!("{got:?} vs {expect:?}"),
        }
    }
}

// --- Rollback --------------------------------------------------------------------------

#[tokio::test]
async fn rollback_removes_only_this_executions_copy() {
    let assume = assume_ok();
    let theirs = Image::builder()
        .image_id("ami-0dddddddddddddddd")
        .owner_id(B)
        .tags(tag(
            "ferry:execution",
            "arn:aws:states:eu-west-1:1:execution:x:other",
        ))
        .build();
    let own = own_images(vec![our_copy(ImageState::Pending), theirs]);
    let deregister = mock!(aws_sdk_ec2::Client::deregister_image)
        .match_requests(|r| r.image_id() == Some(COPY))
        .then_output(|| DeregisterImageOutput::builder().build());
    let tagged = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .then_output(|| DescribeSnapshotsOutput::builder().build());
    let delete = mock!(aws_sdk_ec2::Client::delete_snapshot)
        .match_requests(|r| r.snapshot_id() == Some(SNAP))
        .then_output(|| DeleteSnapshotOutput::builder().build());
    let report = rollback::handle(
        clients(&[&assume], &[&own, &deregister, &tagged, &delete]),
        CopyRollbackInput {
            plan: plan(),
            copy: Some(copy_ref()),
            error: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(report.deregistered, vec![COPY.to_string()]);
    assert_eq!(report.deleted_snapshots, vec![SNAP.to_string()]);
    assert_eq!(deregister.num_calls(), 1);
}

// --- Dry runs --------------------------------------------------------------------------

/// share-image's dry-run output for an image of the hub shared with `accounts`, as
/// distribute-image's dry run gives it to each copy.
fn planned_share(accounts: &[&str]) -> serde_json::Value {
    json!({"dryRun": true, "workflow": "share-image", "warnings": [],
        "plan": {"imageId": SOURCE, "region": "eu-west-1", "ownerAccountId": HUB,
                 "targets": {"accountIds": accounts, "organizationArns": [],
                             "organizationalUnitArns": [], "public": false},
                 "reencrypt": null,
                 "launchPermissions": accounts.iter().map(|a| json!({"userId": a})).collect::<Vec<_>>(),
                 "snapshotPermissions": [], "grants": [], "grantOperations": [],
                 "keyPolicyNeeded": null}})
}

fn not_visible_to_the_target() -> Rule {
    mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|r| r.image_ids() == [SOURCE])
        .then_error(|| DescribeImagesError::generic(meta("InvalidAMIID.NotFound")))
}

/// A copy-image dry run: the same checks as the target (a call no rule expects panics:
/// no CopyImage, no CreateTags), and the report of the copy it would make.
#[tokio::test]
async fn preflight_of_a_dry_run_reports_the_copy() {
    let assume = assume_ok();
    let source = describe_image(SOURCE, source_image(&[]));
    let own = own_images(vec![]);
    let mut request = request();
    request["dryRun"] = json!(true);
    let out = preflight::handle(
        clients(&[&assume], &[&source, &own]),
        CopyPreflightInput {
            request,
            context: context(),
        },
    )
    .await
    .unwrap();
    assert!(out.plan.dry_run && out.copy.is_none());
    let report = out.report.expect("a dry run's report");
    assert_eq!(report.workflow, "copy-image");
    let p = report.plan;
    assert!(p.source_seen_by_target);
    assert_eq!(p.target_kms_key_arn.as_deref(), Some(KEY_B));
    assert_eq!(p.copy_name, plan().copy_name);
    assert_eq!(p.tags["team"], "web");
    assert_eq!(
        p.revoke,
        Some(json!({"imageId": SOURCE, "accountIds": [B], "region": "eu-west-1"}))
    );
    // the output keeps copy: null for StartCopy
    let v = serde_json::to_value(CopyPreflightOutput {
        report: None,
        ..preflight::handle(
            clients(&[&assume], &[&source, &own]),
            CopyPreflightInput {
                request: self::request(),
                context: context(),
            },
        )
        .await
        .unwrap()
    })
    .unwrap();
    assert!(v["copy"].is_null() && v.get("report").is_none());
}

/// distribute-image's dry run: the share is only planned, so the target cannot see the
/// image. When the planned share names the target, the image is checked as its owner and
/// the rest as the target (role, key, name); the report says what was not checked.
#[tokio::test]
async fn preflight_of_a_dry_run_before_the_share_checks_the_image_as_its_owner() {
    let assume = assume_ok();
    let missing = not_visible_to_the_target();
    let own = own_images(vec![]);
    let mut request = request();
    request["dryRun"] = json!(true);
    request["share"] = planned_share(&[B]);
    let out = preflight::handle(
        clients(&[&assume], &[&missing, &own]),
        CopyPreflightInput {
            request: request.clone(),
            context: context(),
        },
    )
    .await
    .unwrap();
    assert_eq!(missing.num_calls(), 1);
    let report = out.report.expect("a dry run's report");
    assert!(!report.plan.source_seen_by_target);
    assert_eq!(report.plan.source_account_id, HUB);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("not shared with")),
        "{:?}",
        report.warnings
    );
    // the revoke would be by image and account (the share's record does not exist yet)
    assert_eq!(
        report.plan.revoke,
        Some(json!({"imageId": SOURCE, "accountIds": [B], "region": "eu-west-1"}))
    );
    // a planned share that does not name the target: refused as a run would be
    request["share"] = planned_share(&["555566667777"]);
    let e = preflight::handle(
        clients(&[&assume], &[&missing, &own]),
        CopyPreflightInput {
            request: request.clone(),
            context: context(),
        },
    )
    .await
    .unwrap_err();
    is(&e, ErrorName::ImageNotFound);
    // and never outside a dry run
    request["share"] = planned_share(&[B]);
    request["dryRun"] = json!(false);
    let e = preflight::handle(
        clients(&[], &[]),
        CopyPreflightInput {
            request,
            context: context(),
        },
    )
    .await
    .unwrap_err();
    is(&e, ErrorName::InvalidInput);
}
