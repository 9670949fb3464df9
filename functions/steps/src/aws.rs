//! The SDK edge: client construction and the mapping of AWS errors to ferry's names.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use ferry_core::errors::classify_aws_code;
use ferry_core::{ErrorName, FerryError};
use std::collections::BTreeMap;

/// The AWS clients a step uses, for one account and region. Built once per cold start
/// for the function's own account; [`Clients::assume`] gives the clients of another
/// account (a copy's target) through STS AssumeRole.
#[derive(Clone, Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub kms: aws_sdk_kms::Client,
    pub sts: aws_sdk_sts::Client,
    /// Step Functions: SendTaskSuccess and GetExecutionHistory for event-driven waits.
    pub sfn: aws_sdk_sfn::Client,
    config: aws_config::SdkConfig,
    /// Tests only: what [`Clients::assume`] returns after its (mocked) AssumeRole call.
    assumed: Option<Box<Clients>>,
}

impl Clients {
    /// Clients for the function's own account and region, from the Lambda environment
    /// (`AWS_ENDPOINT_URL` is honoured, which is how the local AWS world is reached).
    pub async fn from_env() -> Clients {
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .load()
            .await;
        Clients::from_config(&config)
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Clients {
        Clients {
            ec2: aws_sdk_ec2::Client::new(config),
            kms: aws_sdk_kms::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            sfn: aws_sdk_sfn::Client::new(config),
            config: config.clone(),
            assumed: None,
        }
    }

    /// Clients made of given service clients: tests build them with aws-smithy-mocks.
    pub fn from_parts(
        ec2: aws_sdk_ec2::Client,
        kms: aws_sdk_kms::Client,
        sts: aws_sdk_sts::Client,
    ) -> Clients {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        Clients {
            ec2,
            kms,
            sts,
            sfn: aws_sdk_sfn::Client::new(&config),
            config,
            assumed: None,
        }
    }

    /// Tests: these clients with a given (aws-smithy-mocks) Step Functions client.
    pub fn with_sfn(mut self, sfn: aws_sdk_sfn::Client) -> Clients {
        self.sfn = sfn;
        self
    }

    /// Tests: the clients [`Clients::assume`] hands out (e.g. aws-smithy-mocks clients of
    /// the target account) once its AssumeRole call, mocked on `self.sts`, succeeded.
    pub fn with_assumed(mut self, target: Clients) -> Clients {
        self.assumed = Some(Box::new(target));
        self
    }

    /// The region these clients call.
    pub fn region(&self) -> Option<String> {
        self.config.region().map(|r| r.to_string())
    }

    /// The same identity's clients in `region` (these, when it is theirs).
    pub fn in_region(&self, region: &str) -> Clients {
        // (Clients made from parts, as in tests, have no region: they are used as they are.)
        if self.region().is_none() || self.region().as_deref() == Some(region) {
            return self.clone();
        }
        let config = self
            .config
            .to_builder()
            .region(aws_config::Region::new(region.to_string()))
            .build();
        Clients::from_config(&config)
    }

    /// Clients acting as `role_arn` (with `external_id`, as the target account's trust
    /// policy requires) in `region` (default: this one). A refusal is
    /// `Ferry.TargetAccessDenied`; the credentials last for the session (one step).
    pub async fn assume(
        &self,
        role_arn: &str,
        external_id: Option<&str>,
        session_name: &str,
        region: Option<&str>,
    ) -> Result<Clients, FerryError> {
        let out = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .set_external_id(external_id.map(str::to_string))
            .send()
            .await
            .map_err(|e| match error_code(&e) {
                Some(
                    "AccessDenied" | "NoSuchEntity" | "InvalidClientTokenId" | "ValidationError",
                ) => {
                    let mut err = aws_error("AssumeRole", e);
                    err.name = ErrorName::TargetAccessDenied;
                    err
                }
                _ => aws_error("AssumeRole", e),
            })?;
        let c = out.credentials().ok_or_else(|| {
            FerryError::new(
                ErrorName::TargetAccessDenied,
                format!("AssumeRole {role_arn}: no credentials"),
            )
        })?;
        if let Some(target) = &self.assumed {
            return Ok((**target).clone());
        }
        let credentials = aws_sdk_sts::config::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "ferry-assume-role",
        );
        let mut builder = self.config.to_builder().credentials_provider(
            aws_sdk_sts::config::SharedCredentialsProvider::new(credentials),
        );
        if let Some(region) = region {
            builder = builder.region(aws_config::Region::new(region.to_string()));
        }
        Ok(Clients::from_config(&builder.build()))
    }
}

/// The AWS error code of a failed call, if AWS answered with one.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// Maps a failed call to a named error: throttling and 5xx/network failures become
/// retryable names, everything else `Ferry.AwsError`, each with the call and AWS's message.
pub fn aws_error<E, R>(operation: &str, err: SdkError<E, R>) -> FerryError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let name = match &err {
        SdkError::ServiceError(_) => classify_aws_code(error_code(&err)),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ErrorName::Transient
        }
        _ => ErrorName::AwsError,
    };
    let detail = match &err {
        SdkError::ServiceError(service) => format!(
            "{}: {}",
            service.err().code().unwrap_or("Unknown"),
            service.err().message().unwrap_or("no message")
        ),
        other => format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(other)
        ),
    };
    FerryError::new(name, format!("{operation}: {detail}"))
}

/// Like [`aws_error`], but some AWS codes mean a specific ferry error for this call.
pub fn aws_error_with<E, R>(
    operation: &str,
    err: SdkError<E, R>,
    codes: &[(&str, ErrorName)],
) -> FerryError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let special =
        error_code(&err).and_then(|c| codes.iter().find(|(code, _)| *code == c).map(|(_, n)| *n));
    let mut e = aws_error(operation, err);
    if let Some(name) = special {
        e.name = name;
    }
    e
}

pub fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

pub fn ec2_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

pub fn tag_spec(resource: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(ec2_tags(tags)))
        .build()
}

pub fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}
