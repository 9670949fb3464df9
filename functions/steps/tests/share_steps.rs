//! SDK-shape tests of the share-image and revoke-share steps with aws-smithy-mocks: the
//! calls each step makes, their parameters, and AWS errors mapped to ferry's names.
//! A call no rule expects panics, so "makes no mutating call" is checked by absence.

use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
use aws_sdk_ec2::operation::modify_image_attribute::ModifyImageAttributeError;
use aws_sdk_ec2::types::*;
use aws_sdk_ec2::Client;
use aws_sdk_kms::operation::create_grant::{CreateGrantError, CreateGrantOutput};
use aws_sdk_kms::operation::describe_key::{DescribeKeyError, DescribeKeyOutput};
use aws_sdk_kms::operation::list_grants::ListGrantsOutput;
use aws_sdk_kms::operation::revoke_grant::{RevokeGrantError, RevokeGrantOutput};
use aws_sdk_kms::types::{GrantListEntry, GrantOperation, KeyManagerType, KeyMetadata, KeyState};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use ferry_core::io::ImageRef;
use ferry_core::names::ExecutionContext;
use ferry_core::share::record::LaunchPermission as Lp;
use ferry_core::share::{facts::*, grants::*, io::*, plan::*, record::*, request::*};
use ferry_core::tags::TAG_SOURCE_IMAGE;
use ferry_core::{ErrorName, FerryError};
use ferry_steps::share::*;
use ferry_steps::Clients;
use serde_json::json;

const IMAGE: &str = "ami-0a1b2c3d4e5f60718";
const COPY: &str = "ami-0c0c0c0c0c0c0c0c0";
const SNAP1: &str = "snap-0111111111111111a";
const SNAP2: &str = "snap-0222222222222222b";
const OWNER: &str = "111122223333";
const B: &str = "222222222222";
const C: &str = "333333333333";
const CMK: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const EBS: &str = "arn:aws:kms:eu-west-1:111122223333:key/99999999-12ab-34cd-56ef-1234567890ab";
const EXECUTION: &str =
    "arn:aws:states:eu-west-1:111122223333:execution:ferry-share-image:share-web-1";

fn clients(ec2_rules: &[&Rule], kms_rules: &[&Rule]) -> Clients {
    let ec2: Client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, ec2_rules, |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
    let kms: aws_sdk_kms::Client = mock_client!(aws_sdk_kms, RuleMode::MatchAny, kms_rules, |c| c
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
    let none: &[&Rule] = &[];
    let sts: aws_sdk_sts::Client = mock_client!(aws_sdk_sts, RuleMode::MatchAny, none);
    Clients::from_parts(ec2, kms, sts)
}

fn refs(rules: &[Rule]) -> Vec<&Rule> {
    rules.iter().collect()
}

fn meta(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message(format!("{code} (mocked)"))
        .build()
}

fn context() -> ExecutionContext {
    ExecutionContext {
        execution_arn: EXECUTION.into(),
        execution_name: "share-web-1".into(),
        ..Default::default()
    }
}

fn image(state: ImageState, product_codes: bool) -> Image {
    let mut b = Image::builder()
        .image_id(IMAGE)
        .name("web-golden")
        .owner_id(OWNER)
        .state(state)
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(EbsBlockDevice::builder().snapshot_id(SNAP1).build())
                .build(),
        )
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/sdf")
                .ebs(EbsBlockDevice::builder().snapshot_id(SNAP2).build())
                .build(),
        );
    if product_codes {
        b = b.product_codes(
            ProductCode::builder()
                .product_code_id("abcdefghij0123456789")
                .product_code_type(ProductCodeValues::Marketplace)
                .build(),
        );
    }
    b.build()
}

fn images(image: Option<Image>) -> DescribeImagesOutput {
    DescribeImagesOutput::builder()
        .set_images(Some(image.into_iter().collect()))
        .build()
}

fn snapshots(key: Option<&'static str>) -> DescribeSnapshotsOutput {
    let s = |id: &str| {
        Snapshot::builder()
            .snapshot_id(id)
            .owner_id(OWNER)
            .encrypted(key.is_some())
            .set_kms_key_id(key.map(str::to_string))
            .build()
    };
    DescribeSnapshotsOutput::builder()
        .snapshots(s(SNAP1))
        .snapshots(s(SNAP2))
        .build()
}

fn key(arn: &'static str, manager: KeyManagerType) -> DescribeKeyOutput {
    DescribeKeyOutput::builder()
        .key_metadata(
            KeyMetadata::builder()
                .key_id(arn.rsplit('/').next().unwrap())
                .arn(arn)
                .key_manager(manager)
                .key_state(KeyState::Enabled)
                .build()
                .unwrap(),
        )
        .build()
}

/// The reads preflight makes of an image whose snapshots are under `key` (or none).
fn image_reads(key_arn: Option<&'static str>, product_codes: bool) -> Vec<Rule> {
    vec![
        mock!(Client::describe_images)
            .match_requests(|r| r.owners() == ["self"] && r.image_ids() == [IMAGE])
            .then_output(move || images(Some(image(ImageState::Available, product_codes)))),
        mock!(Client::describe_snapshots)
            .match_requests(|r| r.snapshot_ids() == [SNAP1, SNAP2])
            .then_output(move || snapshots(key_arn)),
        mock!(Client::describe_image_attribute)
            .match_requests(|r| {
                r.image_id() == Some(IMAGE)
                    && r.attribute() == Some(&ImageAttributeName::LaunchPermission)
            })
            .then_output(|| {
                aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeOutput::builder()
                    .launch_permissions(aws_sdk_ec2::types::LaunchPermission::builder().user_id(C).build())
                    .build()
            }),
        mock!(Client::describe_snapshot_attribute).then_output(|| {
            aws_sdk_ec2::operation::describe_snapshot_attribute::DescribeSnapshotAttributeOutput::builder()
                .create_volume_permissions(CreateVolumePermission::builder().user_id(C).build())
                .build()
        }),
    ]
}

async fn preflight(
    ec2: &[Rule],
    kms: &[Rule],
    request: serde_json::Value,
) -> Result<SharePlan, FerryError> {
    preflight::handle(
        clients(&refs(ec2), &refs(kms)),
        SharePreflightInput {
            request,
            context: context(),
        },
    )
    .await
    .map(|o| o.plan)
}

#[tokio::test]
async fn preflight_refuses_bad_input_before_any_call() {
    for request in [
        json!({"imageId": IMAGE}),
        json!({"imageId": IMAGE, "accountIds": ["2222"]}),
        json!({"imageId": IMAGE, "accountIds": [B], "copy": true}),
        json!({"imageId": "ami-1", "accountIds": [B]}),
        json!({"imageId": IMAGE, "organizationArns": ["o-abcdefghij"]}),
        json!({"imageId": IMAGE, "accountIds": [B], "reencryptWith": "alias/aws/ebs"}),
    ] {
        let e = preflight(&[], &[], request.clone()).await.unwrap_err();
        assert_eq!(e.name, ErrorName::InvalidInput, "{request}: {e}");
    }
}

#[tokio::test]
async fn preflight_refuses_an_image_not_found_or_not_owned() {
    let empty = [mock!(Client::describe_images).then_output(|| images(None))];
    let e = preflight(&empty, &[], json!({"imageId": IMAGE, "accountIds": [B]}))
        .await
        .unwrap_err();
    assert_eq!(e.name, ErrorName::ImageNotFound);
    let missing = [mock!(Client::describe_images).then_error(|| {
        aws_sdk_ec2::operation::describe_images::DescribeImagesError::generic(meta(
            "InvalidAMIID.NotFound",
        ))
    })];
    let e = preflight(&missing, &[], json!({"imageId": IMAGE, "accountIds": [B]}))
        .await
        .unwrap_err();
    assert_eq!(e.name, ErrorName::ImageNotFound);
}

#[tokio::test]
async fn preflight_plans_grants_for_a_cmk_image_and_skips_what_exists() {
    let describe_key = mock!(aws_sdk_kms::Client::describe_key)
        .match_requests(|r| r.key_id() == Some(CMK))
        .then_output(|| key(CMK, KeyManagerType::Customer));
    let plan = preflight(
        &image_reads(Some(CMK), false),
        &[describe_key],
        json!({"imageId": IMAGE, "accountIds": [B, C]}),
    )
    .await
    .unwrap();
    assert_eq!(plan.image_id, IMAGE);
    assert_eq!(plan.owner_account_id, OWNER);
    assert_eq!(plan.region, "eu-west-1");
    assert_eq!(plan.grant_key_arns, [CMK]);
    // C already had a launch permission: not added again, not recorded.
    assert_eq!(plan.launch_permissions, [Lp::UserId(B.into())]);
    assert_eq!(plan.snapshots.len(), 2);
    assert_eq!(plan.snapshots[0].create_volume_user_ids, [C]);
    assert!(plan.reencrypt.is_none());
}

#[tokio::test]
async fn preflight_refuses_aws_managed_key_without_reencrypt() {
    let describe_key =
        mock!(aws_sdk_kms::Client::describe_key).then_output(|| key(EBS, KeyManagerType::Aws));
    let e = preflight(
        &image_reads(Some(EBS), false),
        &[describe_key],
        json!({"imageId": IMAGE, "accountIds": [B]}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name, ErrorName::AwsManagedKey);
}

#[tokio::test]
async fn preflight_plans_a_reencrypted_copy_under_the_given_key() {
    let kms = [
        mock!(aws_sdk_kms::Client::describe_key)
            .match_requests(|r| r.key_id() == Some(EBS))
            .then_output(|| key(EBS, KeyManagerType::Aws)),
        mock!(aws_sdk_kms::Client::describe_key)
            .match_requests(|r| r.key_id() == Some("alias/share"))
            .then_output(|| key(CMK, KeyManagerType::Customer)),
    ];
    let plan = preflight(
        &image_reads(Some(EBS), false),
        &kms,
        json!({"imageId": IMAGE, "accountIds": [B], "reencryptWith": "alias/share"}),
    )
    .await
    .unwrap();
    let copy = plan.reencrypt.unwrap();
    assert_eq!(copy.key_arn, CMK);
    assert_eq!(plan.grant_key_arns, [CMK]);
    assert_eq!(copy.tags[TAG_SOURCE_IMAGE], IMAGE);
}

#[tokio::test]
async fn preflight_refuses_public_encrypted_blocked_and_product_codes() {
    let kms = || {
        [mock!(aws_sdk_kms::Client::describe_key)
            .then_output(|| key(CMK, KeyManagerType::Customer))]
    };
    let bpa = |state: &'static str| {
        mock!(Client::get_image_block_public_access_state).then_output(move || {
            aws_sdk_ec2::operation::get_image_block_public_access_state::GetImageBlockPublicAccessStateOutput::builder()
                .image_block_public_access_state(state)
                .build()
        })
    };
    let mut ec2 = image_reads(Some(CMK), false);
    ec2.push(bpa("unblocked"));
    let e = preflight(&ec2, &kms(), json!({"imageId": IMAGE, "public": true}))
        .await
        .unwrap_err();
    assert_eq!(e.name, ErrorName::EncryptedImageCannotBePublic);

    let mut ec2 = image_reads(None, false);
    ec2.push(bpa("block-new-sharing"));
    let e = preflight(&ec2, &[], json!({"imageId": IMAGE, "public": true}))
        .await
        .unwrap_err();
    assert_eq!(e.name, ErrorName::ImageBlockPublicAccess);

    let e = preflight(
        &image_reads(None, true),
        &[],
        json!({"imageId": IMAGE, "accountIds": [B]}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name, ErrorName::ProductCodes);
}

#[tokio::test]
async fn preflight_maps_kms_access_denied() {
    let kms = [mock!(aws_sdk_kms::Client::describe_key)
        .then_error(|| DescribeKeyError::generic(meta("AccessDeniedException")))];
    let e = preflight(
        &image_reads(Some(CMK), false),
        &kms,
        json!({"imageId": IMAGE, "accountIds": [B]}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name, ErrorName::KmsAccessDenied);
}

fn cmk_plan(accounts: &[&str]) -> SharePlan {
    SharePlan {
        execution: context(),
        region: "eu-west-1".into(),
        owner_account_id: OWNER.into(),
        image_id: IMAGE.into(),
        targets: ShareTargets {
            account_ids: accounts.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        },
        share_snapshots: true,
        kms_access: KmsAccess::Grant,
        launch_permissions: accounts.iter().map(|a| Lp::UserId(a.to_string())).collect(),
        snapshots: [SNAP1, SNAP2]
            .iter()
            .map(|s| SnapshotFacts {
                snapshot_id: s.to_string(),
                encrypted: true,
                kms_key_id: Some(CMK.into()),
                create_volume_user_ids: vec![],
            })
            .collect(),
        grant_key_arns: vec![CMK.into()],
        reencrypt: None,
        key_policy_needed: None,
        warnings: vec![],
        dry_run: false,
    }
}

#[tokio::test]
async fn apply_adds_permissions_and_one_grant_per_key_and_account() {
    let ec2 = [
        mock!(Client::modify_image_attribute)
            .match_requests(|r| {
                let lp = r.launch_permission().unwrap();
                r.image_id() == Some(IMAGE)
                    && lp.add().iter().filter_map(|p| p.user_id()).collect::<Vec<_>>() == [B, C]
                    && lp.remove().is_empty()
            })
            .then_output(|| {
                aws_sdk_ec2::operation::modify_image_attribute::ModifyImageAttributeOutput::builder()
                    .build()
            }),
        mock!(Client::modify_snapshot_attribute)
            .match_requests(|r| {
                r.attribute() == Some(&SnapshotAttributeName::CreateVolumePermission)
                    && r.create_volume_permission()
                        .unwrap()
                        .add()
                        .iter()
                        .filter_map(|p| p.user_id())
                        .collect::<Vec<_>>()
                        == [B, C]
            })
            .then_output(|| {
                aws_sdk_ec2::operation::modify_snapshot_attribute::ModifySnapshotAttributeOutput::builder()
                    .build()
            }),
    ];
    let grant = mock!(aws_sdk_kms::Client::create_grant)
        .match_requests(|r| {
            let ops: Vec<&str> = r.operations().iter().map(|o| o.as_str()).collect();
            r.key_id() == Some(CMK)
                && ops == SHARE_GRANT_OPERATIONS
                && r.grantee_principal().is_some_and(|p| {
                    p == "arn:aws:iam::222222222222:root" || p == "arn:aws:iam::333333333333:root"
                })
                && r.name().is_some_and(|n| {
                    let account = &r.grantee_principal().unwrap()[13..25];
                    n == share_grant_name(IMAGE, account, EXECUTION)
                })
                && r.retiring_principal().is_none()
        })
        .then_output(|| {
            CreateGrantOutput::builder()
                .grant_id("grant-1")
                .grant_token("t")
                .build()
        });
    let c = clients(&refs(&ec2), &[&grant]);
    let out = apply::handle(
        c,
        ShareApplyInput {
            plan: cmk_plan(&[B, C]),
            copy: None,
            task_token: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(ec2[0].num_calls(), 1);
    assert_eq!(ec2[1].num_calls(), 2);
    assert_eq!(grant.num_calls(), 2);
    let r = out.record;
    assert_eq!(r.image_id, IMAGE);
    assert_eq!(r.snapshot_permissions.len(), 4);
    assert_eq!(r.grants.len(), 2);
    assert_eq!(r.grants[0].grantee_account_id, B);
    assert_eq!(r.grants[0].key_arn, CMK);
    assert_eq!(r.grants[0].grant_id, "grant-1");
    assert_eq!(r.source_image_id, None);
}

#[tokio::test]
async fn apply_shares_the_copy_when_there_is_one() {
    let mut plan = cmk_plan(&[B]);
    plan.snapshots = vec![];
    plan.reencrypt = Some(ReencryptPlan {
        key_arn: CMK.into(),
        name: "copy".into(),
        description: "d".into(),
        client_token: "t".into(),
        tags: Default::default(),
    });
    let ec2 = [
        mock!(Client::modify_image_attribute)
            .match_requests(|r| r.image_id() == Some(COPY))
            .then_output(|| {
                aws_sdk_ec2::operation::modify_image_attribute::ModifyImageAttributeOutput::builder()
                    .build()
            }),
        mock!(Client::modify_snapshot_attribute)
            .match_requests(|r| r.snapshot_id() == Some("snap-0c0c0c0c0c0c0c0c0"))
            .then_output(|| {
                aws_sdk_ec2::operation::modify_snapshot_attribute::ModifySnapshotAttributeOutput::builder()
                    .build()
            }),
    ];
    let grant = mock!(aws_sdk_kms::Client::create_grant)
        .match_requests(|r| r.name() == Some(share_grant_name(COPY, B, EXECUTION).as_str()))
        .then_output(|| CreateGrantOutput::builder().grant_id("grant-2").build());
    let out = apply::handle(
        clients(&refs(&ec2), &[&grant]),
        ShareApplyInput {
            plan,
            copy: Some(ImageRef {
                image_id: COPY.into(),
                name: "copy".into(),
                state: "available".into(),
                snapshot_ids: vec!["snap-0c0c0c0c0c0c0c0c0".into()],
                created_at: None,
            }),
            task_token: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(out.record.image_id, COPY);
    assert_eq!(out.record.source_image_id.as_deref(), Some(IMAGE));
    assert_eq!(out.record.grants[0].grant_id, "grant-2");
}

#[tokio::test]
async fn apply_maps_kms_and_ec2_errors() {
    let ok_ec2 = || {
        [
            mock!(Client::modify_image_attribute).then_output(|| {
                aws_sdk_ec2::operation::modify_image_attribute::ModifyImageAttributeOutput::builder()
                    .build()
            }),
            mock!(Client::modify_snapshot_attribute).then_output(|| {
                aws_sdk_ec2::operation::modify_snapshot_attribute::ModifySnapshotAttributeOutput::builder()
                    .build()
            }),
        ]
    };
    for (code, name) in [
        ("AccessDeniedException", ErrorName::KmsAccessDenied),
        ("ThrottlingException", ErrorName::Throttled),
        ("KMSInternalException", ErrorName::Transient),
    ] {
        let ec2 = ok_ec2();
        let grant = mock!(aws_sdk_kms::Client::create_grant)
            .then_error(move || CreateGrantError::generic(meta(code)));
        let e = apply::handle(
            clients(&refs(&ec2), &[&grant]),
            ShareApplyInput {
                plan: cmk_plan(&[B]),
                copy: None,
                task_token: None,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.name, name, "{code}");
    }
    for (code, name) in [
        ("InvalidParameter", ErrorName::AwsError),
        ("RequestLimitExceeded", ErrorName::Throttled),
    ] {
        let ec2 = [mock!(Client::modify_image_attribute)
            .then_error(move || ModifyImageAttributeError::generic(meta(code)))];
        let e = apply::handle(
            clients(&refs(&ec2), &[]),
            ShareApplyInput {
                plan: cmk_plan(&[B]),
                copy: None,
                task_token: None,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.name, name, "{code}");
        assert!(e.message.contains("ModifyImageAttribute"));
    }
}

fn copy_plan() -> SharePlan {
    let request =
        ShareRequest::parse(&json!({"imageId": IMAGE, "accountIds": [B], "reencryptWith": CMK}))
            .unwrap();
    let facts = ShareFacts {
        region: "eu-west-1".into(),
        account_id: OWNER.into(),
        image: ImageFacts {
            image_id: IMAGE.into(),
            name: "web".into(),
            owner_id: OWNER.into(),
            state: "available".into(),
            snapshots: vec![SnapshotFacts {
                snapshot_id: SNAP1.into(),
                encrypted: true,
                kms_key_id: Some(EBS.into()),
                create_volume_user_ids: vec![],
            }],
            ..Default::default()
        },
        keys: vec![KeyFacts {
            key_id: EBS.into(),
            key_arn: EBS.into(),
            key_manager: KeyManager::Aws,
            key_state: None,
        }],
        block_public_access: None,
        reencrypt_key: Some(KeyFacts {
            key_id: CMK.into(),
            key_arn: CMK.into(),
            key_manager: KeyManager::Customer,
            key_state: Some("Enabled".into()),
        }),
    };
    build_share_plan(&context(), &request, &facts).unwrap()
}

#[tokio::test]
async fn copy_image_reencrypts_under_the_key_with_token_name_and_tags() {
    let plan = copy_plan();
    let r = plan.reencrypt.clone().unwrap();
    let expected = r.clone();
    let copy = mock!(Client::copy_image)
        .match_requests(move |q| {
            let tagged = |t: ResourceType| {
                q.tag_specifications().iter().any(|s| {
                    s.resource_type() == Some(&t)
                        && s.tags()
                            .iter()
                            .any(|t| t.key() == Some(TAG_SOURCE_IMAGE) && t.value() == Some(IMAGE))
                        && s.tags().iter().any(|t| {
                            t.key() == Some("ferry:execution") && t.value() == Some(EXECUTION)
                        })
                })
            };
            q.source_image_id() == Some(IMAGE)
                && q.source_region() == Some("eu-west-1")
                && q.encrypted() == Some(true)
                && q.kms_key_id() == Some(CMK)
                && q.client_token() == Some(expected.client_token.as_str())
                && q.name() == Some(expected.name.as_str())
                && tagged(ResourceType::Image)
                && tagged(ResourceType::Snapshot)
        })
        .then_output(|| {
            aws_sdk_ec2::operation::copy_image::CopyImageOutput::builder()
                .image_id(COPY)
                .build()
        });
    let out = copy_image::handle(clients(&[&copy], &[]), SharePlanInput { plan })
        .await
        .unwrap();
    assert_eq!(out.image_id, COPY);
    assert_eq!(out.name, r.name);
    assert_eq!(out.state, "pending");
}

fn pending_copy(task_token: Option<&str>) -> ShareApplyInput {
    ShareApplyInput {
        plan: copy_plan(),
        copy: Some(ImageRef {
            image_id: COPY.into(),
            name: "copy".into(),
            state: "pending".into(),
            snapshot_ids: vec![],
            created_at: None,
        }),
        task_token: task_token.map(str::to_string),
    }
}

/// DescribeImages of the copy (owner self) answering `state`.
fn describe_copy(state: ImageState) -> Rule {
    mock!(Client::describe_images)
        .match_requests(|r| r.image_ids() == [COPY] && r.owners() == ["self"])
        .then_output(move || {
            images(Some(
                Image::builder()
                    .image_id(COPY)
                    .name("copy")
                    .owner_id(OWNER)
                    .state(state.clone())
                    .state_reason(
                        StateReason::builder()
                            .code("Client.InternalError")
                            .message("Client.InternalError: Given key ID is not accessible")
                            .build(),
                    )
                    .block_device_mappings(
                        BlockDeviceMapping::builder()
                            .device_name("/dev/xvda")
                            .ebs(EbsBlockDevice::builder().snapshot_id(SNAP2).build())
                            .build(),
                    )
                    .build(),
            ))
        })
}

#[tokio::test]
async fn wait_copy_polls_fails_and_returns_the_snapshots() {
    let describe = describe_copy;
    let e = wait_copy::handle(
        clients(&[&describe(ImageState::Pending)], &[]),
        pending_copy(None),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name, ErrorName::ImageNotReady);
    let e = wait_copy::handle(
        clients(&[&describe(ImageState::Failed)], &[]),
        pending_copy(None),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name, ErrorName::ImageFailed);
    assert!(e.message.contains("not accessible"));
    let ok = wait_copy::handle(
        clients(&[&describe(ImageState::Available)], &[]),
        pending_copy(None),
    )
    .await
    .unwrap();
    assert_eq!(ok.snapshot_ids, [SNAP2]);
}

/// Event-driven WaitCopy (a `.waitForTaskToken` Task, issue 10): an attempt that finds
/// the copy available ends the wait itself with SendTaskSuccess (the copy and its
/// snapshots as the Task's result); pending leaves it to the copy's event or the next
/// attempt (no Step Functions call); failed fails the Task by name; a task that timed
/// out meanwhile is not an error.
#[tokio::test]
async fn wait_copy_with_a_token_ends_the_wait_only_when_the_copy_is_ready() {
    use aws_sdk_sfn::operation::send_task_success::{SendTaskSuccessError, SendTaskSuccessOutput};
    for (state, answer, expect) in [
        (ImageState::Available, None, Ok(1usize)),
        (ImageState::Available, Some("TaskTimedOut"), Ok(1)),
        (
            ImageState::Available,
            Some("ThrottlingException"),
            Err(ErrorName::Throttled),
        ),
        (ImageState::Pending, None, Ok(0)),
        (ImageState::Failed, None, Err(ErrorName::ImageFailed)),
    ] {
        let describe = describe_copy(state.clone());
        let success = match answer {
            None => mock!(aws_sdk_sfn::Client::send_task_success)
                .match_requests(|r| {
                    let output: serde_json::Value =
                        serde_json::from_str(r.output().unwrap()).unwrap();
                    r.task_token() == Some("token-c")
                        && output["imageId"] == COPY
                        && output["state"] == "available"
                        && output["snapshotIds"] == json!([SNAP2])
                })
                .then_output(|| SendTaskSuccessOutput::builder().build()),
            Some(code) => mock!(aws_sdk_sfn::Client::send_task_success).then_error(move || {
                SendTaskSuccessError::generic(ErrorMetadata::builder().code(code).build())
            }),
        };
        let sfn: aws_sdk_sfn::Client =
            mock_client!(aws_sdk_sfn, RuleMode::MatchAny, &[&success], |c| c
                .retry_config(aws_smithy_types::retry::RetryConfig::disabled()));
        let got = wait_copy::handle(
            clients(&[&describe], &[]).with_sfn(sfn),
            pending_copy(Some("token-c")),
        )
        .await;
        assert_eq!(describe.num_calls(), 1, "{state:?}");
        match (got, expect) {
            (Ok(copy), Ok(calls)) => {
                assert_eq!(success.num_calls(), calls, "{state:?} {answer:?}");
                let expected_state = if calls == 1 { "available" } else { "pending" };
                assert_eq!(copy.state, expected_state);
            }
            (Err(e), Err(name)) => assert_eq!(e.name, name, "{state:?} {answer:?}: {e}"),
            (got, expect) => panic!("{state:?} {answer:?}: {got:?} vs {expect:?}"),
        }
    }
}

#[tokio::test]
async fn cleanup_removes_only_this_executions_copy() {
    // No copy planned: Apply may have failed half-way on the image itself, so what its
    // plan was to add is taken back (issue 8, 2.8): B's launch permission, B's
    // createVolumePermission on SNAP1, and this execution's grant only.
    let ec2 = revoke_reads();
    let ours = share_grant_name(IMAGE, B, EXECUTION);
    let theirs = share_grant_name(
        IMAGE,
        B,
        "arn:aws:states:eu-west-1:111122223333:execution:ferry-share-image:other",
    );
    let kms = [
        mock!(aws_sdk_kms::Client::list_grants).then_output(move || {
            ListGrantsOutput::builder()
                .grants(grant_entry(&ours, &account_root_arn(B), "g-ours"))
                .grants(grant_entry(&theirs, &account_root_arn(B), "g-other"))
                .build()
        }),
        mock!(aws_sdk_kms::Client::revoke_grant)
            .match_requests(|r| r.grant_id() == Some("g-ours"))
            .then_output(|| RevokeGrantOutput::builder().build()),
    ];
    let out = cleanup::handle(
        clients(&refs(&ec2), &refs(&kms)),
        ShareCleanupInput {
            plan: cmk_plan(&[B]),
            error: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (
            out.unshared_launch_permissions,
            out.unshared_snapshot_permissions,
            out.revoked_grants.clone()
        ),
        (1, 1, vec!["g-ours".to_string()]),
        "{out:?}"
    );
    assert!(out.deregistered_images.is_empty());

    let mine = |filters: &[Filter]| {
        filters
            .iter()
            .any(|f| f.name() == Some("tag:ferry:execution") && f.values() == [EXECUTION])
            && filters
                .iter()
                .any(|f| f.name() == Some("tag:ferry:workflow") && f.values() == ["share-image"])
    };
    let ec2 = [
        mock!(Client::describe_images)
            .match_requests(move |r| r.owners() == ["self"] && mine(r.filters()))
            .then_output(|| {
                images(Some(
                    Image::builder().image_id(COPY).owner_id(OWNER).build(),
                ))
            }),
        mock!(Client::deregister_image)
            .match_requests(|r| r.image_id() == Some(COPY))
            .then_output(|| {
                aws_sdk_ec2::operation::deregister_image::DeregisterImageOutput::builder().build()
            }),
        mock!(Client::describe_snapshots)
            .match_requests(move |r| r.owner_ids() == ["self"] && mine(r.filters()))
            .then_output(|| {
                DescribeSnapshotsOutput::builder()
                    .snapshots(Snapshot::builder().snapshot_id(SNAP2).build())
                    .build()
            }),
        mock!(Client::delete_snapshot)
            .match_requests(|r| r.snapshot_id() == Some(SNAP2))
            .then_output(|| {
                aws_sdk_ec2::operation::delete_snapshot::DeleteSnapshotOutput::builder().build()
            }),
    ];
    let no_grants =
        mock!(aws_sdk_kms::Client::list_grants).then_output(|| ListGrantsOutput::builder().build());
    let out = cleanup::handle(
        clients(&refs(&ec2), &[&no_grants]),
        ShareCleanupInput {
            plan: copy_plan(),
            error: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(out.deregistered_images, [COPY]);
    assert_eq!(out.deleted_snapshots, [SNAP2]);
}

fn grant_entry(name: &str, grantee: &str, id: &str) -> GrantListEntry {
    GrantListEntry::builder()
        .key_id(CMK)
        .grant_id(id)
        .name(name)
        .grantee_principal(grantee)
        .operations(GrantOperation::Decrypt)
        .build()
}

/// Reads revoke-share makes by image: B has a launch permission and createVolumePermission.
fn revoke_reads() -> Vec<Rule> {
    vec![
        mock!(Client::describe_images)
            .then_output(|| images(Some(image(ImageState::Available, false)))),
        mock!(Client::describe_image_attribute).then_output(|| {
            aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeOutput::builder()
                .launch_permissions(aws_sdk_ec2::types::LaunchPermission::builder().user_id(B).build())
                .launch_permissions(aws_sdk_ec2::types::LaunchPermission::builder().user_id(C).build())
                .build()
        }),
        mock!(Client::describe_snapshots).then_output(|| snapshots(Some(CMK))),
        mock!(Client::describe_snapshot_attribute)
            .match_requests(|r| r.snapshot_id() == Some(SNAP1))
            .then_output(|| {
                aws_sdk_ec2::operation::describe_snapshot_attribute::DescribeSnapshotAttributeOutput::builder()
                    .create_volume_permissions(CreateVolumePermission::builder().user_id(B).build())
                    .build()
            }),
        mock!(Client::describe_snapshot_attribute)
            .match_requests(|r| r.snapshot_id() == Some(SNAP2))
            .then_output(|| {
                aws_sdk_ec2::operation::describe_snapshot_attribute::DescribeSnapshotAttributeOutput::builder()
                    .build()
            }),
        mock!(Client::modify_image_attribute)
            .match_requests(|r| {
                let lp = r.launch_permission().unwrap();
                lp.add().is_empty()
                    && lp.remove().iter().filter_map(|p| p.user_id()).collect::<Vec<_>>() == [B]
            })
            .then_output(|| {
                aws_sdk_ec2::operation::modify_image_attribute::ModifyImageAttributeOutput::builder()
                    .build()
            }),
        mock!(Client::modify_snapshot_attribute)
            .match_requests(|r| {
                r.snapshot_id() == Some(SNAP1)
                    && r.create_volume_permission()
                        .unwrap()
                        .remove()
                        .iter()
                        .filter_map(|p| p.user_id())
                        .collect::<Vec<_>>()
                        == [B]
            })
            .then_output(|| {
                aws_sdk_ec2::operation::modify_snapshot_attribute::ModifySnapshotAttributeOutput::builder()
                    .build()
            }),
    ]
}

#[tokio::test]
async fn revoke_by_image_removes_only_ferry_grants_for_those_accounts() {
    let ec2 = revoke_reads();
    let b_grant = share_grant_name(IMAGE, B, EXECUTION);
    let c_grant = share_grant_name(IMAGE, C, EXECUTION);
    let other_image = share_grant_name("ami-0ffffffffffffffff", B, EXECUTION);
    let kms = [
        mock!(aws_sdk_kms::Client::list_grants)
            .match_requests(|r| r.key_id() == Some(CMK))
            .then_output(move || {
                ListGrantsOutput::builder()
                    .grants(grant_entry(
                        &b_grant,
                        "arn:aws:iam::222222222222:root",
                        "g-b",
                    ))
                    .grants(grant_entry(
                        &c_grant,
                        "arn:aws:iam::333333333333:root",
                        "g-c",
                    ))
                    .grants(grant_entry(
                        &other_image,
                        "arn:aws:iam::222222222222:root",
                        "g-o",
                    ))
                    .grants(grant_entry(
                        "someone-elses",
                        "arn:aws:iam::222222222222:root",
                        "g-x",
                    ))
                    .truncated(false)
                    .build()
            }),
        mock!(aws_sdk_kms::Client::revoke_grant)
            .match_requests(|r| r.key_id() == Some(CMK) && r.grant_id() == Some("g-b"))
            .then_output(|| RevokeGrantOutput::builder().build()),
    ];
    let out = revoke_share::handle(
        clients(&refs(&ec2), &refs(&kms)),
        json!({"imageId": IMAGE, "accountIds": [B]}),
    )
    .await
    .unwrap()
    .revoked()
    .expect("a run, not a dry run");
    let r = out.removed;
    assert_eq!(r.launch_permissions, [Lp::UserId(B.into())]);
    assert_eq!(
        r.snapshot_permissions,
        [SnapshotPermission {
            snapshot_id: SNAP1.into(),
            user_id: B.into()
        }]
    );
    assert_eq!(r.grants.len(), 1);
    assert_eq!(r.grants[0].grant_id, "g-b");
    assert_eq!(kms[1].num_calls(), 1);
}

#[tokio::test]
async fn revoke_by_record_is_idempotent() {
    let record = ShareRecord {
        image_id: IMAGE.into(),
        region: "eu-west-1".into(),
        owner_account_id: OWNER.into(),
        source_image_id: None,
        launch_permissions: vec![Lp::UserId(B.into())],
        snapshot_permissions: vec![SnapshotPermission {
            snapshot_id: SNAP1.into(),
            user_id: B.into(),
        }],
        grants: vec![GrantRecord {
            key_arn: CMK.into(),
            grant_id: "g-b".into(),
            grantee_account_id: B.into(),
            name: share_grant_name(IMAGE, B, EXECUTION),
        }],
        key_policy_needed: None,
    };
    // Everything already gone: the image, the snapshot and the grant.
    let ec2 = [
        mock!(Client::describe_images).then_output(|| images(None)),
        mock!(Client::describe_snapshot_attribute).then_error(|| {
            aws_sdk_ec2::operation::describe_snapshot_attribute::DescribeSnapshotAttributeError::generic(
                meta("InvalidSnapshot.NotFound"),
            )
        }),
    ];
    let kms = [mock!(aws_sdk_kms::Client::revoke_grant)
        .then_error(|| RevokeGrantError::generic(meta("NotFoundException")))];
    let out = revoke_share::handle(
        clients(&refs(&ec2), &refs(&kms)),
        json!({ "record": record }),
    )
    .await
    .unwrap()
    .revoked()
    .expect("a run, not a dry run");
    assert!(out.removed.is_empty());
    assert_eq!(out.warnings.len(), 1);

    // KMS refusing is named.
    let kms = [mock!(aws_sdk_kms::Client::revoke_grant)
        .then_error(|| RevokeGrantError::generic(meta("AccessDeniedException")))];
    let e = revoke_share::handle(
        clients(&refs(&ec2), &refs(&kms)),
        json!({ "record": record }),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name, ErrorName::KmsAccessDenied);
}

#[tokio::test]
async fn revoke_refuses_bad_input_before_any_call() {
    for request in [
        json!({"imageId": IMAGE}),
        json!({"imageId": IMAGE, "accountIds": [B], "public": true}),
        json!({"record": {"imageId": IMAGE}}),
        json!([IMAGE]),
    ] {
        let e = revoke_share::handle(clients(&[], &[]), request.clone())
            .await
            .unwrap_err();
        assert_eq!(e.name, ErrorName::InvalidInput, "{request}: {e}");
    }
}

/// A dry run of share-image: the same reads as a run's Preflight (and nothing else: a
/// call no rule expects panics), and the report of what Apply would add.
#[tokio::test]
async fn preflight_of_a_dry_run_reports_what_apply_would_add() {
    let describe_key = mock!(aws_sdk_kms::Client::describe_key)
        .match_requests(|r| r.key_id() == Some(CMK))
        .then_output(|| key(CMK, KeyManagerType::Customer));
    let ec2 = image_reads(Some(CMK), false);
    let out = preflight::handle(
        clients(&refs(&ec2), &[&describe_key]),
        SharePreflightInput {
            request: json!({"imageId": IMAGE, "accountIds": [B, C], "dryRun": true}),
            context: context(),
        },
    )
    .await
    .unwrap();
    assert!(out.plan.dry_run);
    let report = out.report.expect("a dry run's report");
    assert!(report.dry_run);
    assert_eq!(report.workflow, "share-image");
    assert_eq!(report.plan.launch_permissions, [Lp::UserId(B.into())]);
    // C already has createVolumePermission on both snapshots: B's are added
    assert_eq!(
        report.plan.snapshot_permissions,
        [SNAP1, SNAP2].map(|s| SnapshotPermission {
            snapshot_id: s.into(),
            user_id: B.into()
        })
    );
    assert_eq!(report.plan.grants.len(), 2);
    assert_eq!(
        report.plan.grants[0].name.as_deref(),
        Some(share_grant_name(IMAGE, B, EXECUTION).as_str())
    );
    // not a dry run: no report
    let ec2 = image_reads(Some(CMK), false);
    let describe_key =
        mock!(aws_sdk_kms::Client::describe_key).then_output(|| key(CMK, KeyManagerType::Customer));
    let out = preflight::handle(
        clients(&refs(&ec2), &[&describe_key]),
        SharePreflightInput {
            request: json!({"imageId": IMAGE, "accountIds": [B]}),
            context: context(),
        },
    )
    .await
    .unwrap();
    assert!(out.report.is_none() && !out.plan.dry_run);
    assert!(serde_json::to_value(&out).unwrap().get("report").is_none());
}

/// revoke-share's dry run by image: only the reads (no Modify*, no RevokeGrant rule: a
/// call would panic), and what would be removed: B's launch permission, its
/// createVolumePermission and the ferry grant for B.
#[tokio::test]
async fn revoke_dry_run_by_image_reads_and_reports_what_it_would_remove() {
    let ec2: Vec<Rule> = revoke_reads().into_iter().take(5).collect();
    let b_grant = share_grant_name(IMAGE, B, EXECUTION);
    let list = mock!(aws_sdk_kms::Client::list_grants)
        .match_requests(|r| r.key_id() == Some(CMK))
        .then_output(move || {
            ListGrantsOutput::builder()
                .grants(grant_entry(
                    &b_grant,
                    "arn:aws:iam::222222222222:root",
                    "g-b",
                ))
                .truncated(false)
                .build()
        });
    let out = revoke_share::handle(
        clients(&refs(&ec2), &[&list]),
        json!({"imageId": IMAGE, "accountIds": [B], "dryRun": true}),
    )
    .await
    .unwrap();
    let report = out.planned().expect("a dry run's report");
    assert!(report.dry_run);
    assert_eq!(report.workflow, "revoke-share");
    let r = report.plan;
    assert_eq!(r.launch_permissions, [Lp::UserId(B.into())]);
    assert_eq!(
        r.snapshot_permissions,
        [SnapshotPermission {
            snapshot_id: SNAP1.into(),
            user_id: B.into()
        }]
    );
    assert_eq!(r.grants.len(), 1);
    assert_eq!(r.grants[0].grant_id, "g-b");
    assert_eq!(list.num_calls(), 1);
}

/// revoke-share's dry run of a record: a grant still there is listed, one already gone is
/// not (ListGrants instead of RevokeGrant).
#[tokio::test]
async fn revoke_dry_run_by_record_lists_only_what_is_still_there() {
    let grant = |id: &str| GrantRecord {
        key_arn: CMK.into(),
        grant_id: id.into(),
        grantee_account_id: B.into(),
        name: share_grant_name(IMAGE, B, EXECUTION),
    };
    let record = ShareRecord {
        image_id: IMAGE.into(),
        region: "eu-west-1".into(),
        owner_account_id: OWNER.into(),
        source_image_id: None,
        launch_permissions: vec![Lp::UserId(B.into())],
        snapshot_permissions: vec![SnapshotPermission {
            snapshot_id: SNAP2.into(),
            user_id: B.into(),
        }],
        grants: vec![grant("g-b"), grant("g-gone")],
        key_policy_needed: None,
    };
    let ec2: Vec<Rule> = revoke_reads().into_iter().take(5).collect();
    let b_grant = share_grant_name(IMAGE, B, EXECUTION);
    let list = mock!(aws_sdk_kms::Client::list_grants).then_output(move || {
        ListGrantsOutput::builder()
            .grants(grant_entry(
                &b_grant,
                "arn:aws:iam::222222222222:root",
                "g-b",
            ))
            .truncated(false)
            .build()
    });
    let report = revoke_share::handle(
        clients(&refs(&ec2), &[&list]),
        json!({"record": record, "dryRun": true}),
    )
    .await
    .unwrap()
    .planned()
    .expect("a dry run's report");
    // B's launch permission is there; SNAP2 has no createVolumePermission for B.
    assert_eq!(report.plan.launch_permissions, [Lp::UserId(B.into())]);
    assert!(report.plan.snapshot_permissions.is_empty());
    assert_eq!(report.plan.grants, [grant("g-b")]);
    // and as JSON, the documented shape
    let v = serde_json::to_value(
        revoke_share::handle(
            clients(&refs(&ec2), &[&list]),
            json!({"record": record, "dryRun": true}),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(v["dryRun"], true);
    assert_eq!(v["workflow"], "revoke-share");
    assert!(v["plan"]["grants"].is_array() && v["warnings"].is_array());
}
