//! The AWS side: configuration, finding the state machines, starting executions.

use crate::args::{Global, Workflow};
use crate::CliError;
use aws_sdk_sfn::error::ProvideErrorMetadata;
use serde_json::Value;

/// The SDK configuration: the default chain (AWS_PROFILE / --profile, AWS_REGION /
/// --region, AWS_ENDPOINT_URL for the local world), one rustls HTTP client.
pub async fn config(global: &Global) -> Result<aws_config::SdkConfig, CliError> {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(profile) = &global.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &global.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(CliError::aws(
            "no AWS Region: set AWS_REGION, a profile's region, or --region",
        ));
    }
    match assume_role_request(global)? {
        Some((role_arn, external_id)) => {
            let sts = aws_sdk_sts::Client::new(&config);
            assume_role(config, sts, role_arn, external_id).await
        }
        None => Ok(config),
    }
}

/// The role to assume first (--assume-role-arn / FERRY_ASSUME_ROLE_ARN) and its
/// ExternalId (--external-id / FERRY_EXTERNAL_ID); an ExternalId without a role is a
/// usage error (it would silently do nothing).
pub fn assume_role_request(global: &Global) -> Result<Option<(&str, Option<&str>)>, CliError> {
    let role = global.assume_role_arn.as_deref().filter(|r| !r.is_empty());
    let external_id = global
        .assume_role_external_id
        .as_deref()
        .filter(|e| !e.is_empty());
    match (role, external_id) {
        (Some(role), external_id) => Ok(Some((role, external_id))),
        (None, Some(_)) => Err(CliError::input(
            "--external-id (FERRY_EXTERNAL_ID) is the ExternalId of --assume-role-arn \
             (FERRY_ASSUME_ROLE_ARN), which is not given",
        )),
        (None, None) => Ok(None),
    }
}

/// The session name the CLI gives the roles it assumes (the hub's CloudTrail shows it).
pub const ROLE_SESSION_NAME: &str = "ferry-cli";

/// The configuration `config` with the credentials of `role_arn`, assumed with `sts`
/// (made from `config`: its own credentials and Region) with `external_id`: AssumeRole
/// is called once now, so a refusal (a wrong ExternalId, an account the role does not
/// trust) is an AWS error (exit 3) before anything is started; the credentials are
/// assumed again when they expire (a long --wait outlives a one-hour session).
pub async fn assume_role(
    config: aws_config::SdkConfig,
    sts: aws_sdk_sts::Client,
    role_arn: &str,
    external_id: Option<&str>,
) -> Result<aws_config::SdkConfig, CliError> {
    let role = AssumedRole {
        sts,
        role_arn: role_arn.to_string(),
        external_id: external_id.map(str::to_string),
        first: std::sync::Mutex::new(None),
    };
    let first = role.assume().await.map_err(|e| {
        CliError::aws(format!(
            "{e} (--assume-role-arn {role_arn}{})",
            if external_id.is_some() {
                ", with --external-id"
            } else {
                ", without --external-id"
            }
        ))
    })?;
    *role.first.lock().unwrap_or_else(|p| p.into_inner()) = Some(first);
    Ok(config
        .to_builder()
        .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(role))
        .build())
}

/// Credentials of an assumed role: the ones AssumeRole gave up front, then a new
/// AssumeRole each time the SDK's identity cache finds them expired.
#[derive(Debug)]
struct AssumedRole {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    external_id: Option<String>,
    first: std::sync::Mutex<Option<aws_sdk_sts::config::Credentials>>,
}

impl AssumedRole {
    /// AssumeRole; an error is described as one line (the call, AWS's code and message).
    async fn assume(&self) -> Result<aws_sdk_sts::config::Credentials, String> {
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(ROLE_SESSION_NAME)
            .set_external_id(self.external_id.clone())
            .send()
            .await
            .map_err(|e| describe_error("AssumeRole", &e))?;
        let c = out
            .credentials()
            .ok_or("AssumeRole: STS answered no credentials")?;
        Ok(aws_sdk_sts::config::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            std::time::SystemTime::try_from(*c.expiration()).ok(),
            "ferry-assume-role",
        ))
    }
}

impl aws_sdk_sts::config::ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            let first = self.first.lock().unwrap_or_else(|p| p.into_inner()).take();
            match first {
                Some(credentials) => Ok(credentials),
                None => self.assume().await.map_err(
                    aws_credential_types::provider::error::CredentialsError::provider_error,
                ),
            }
        })
    }
}

/// An AWS error as one line: the call, AWS's code and message.
pub fn describe_error<E, R>(call: &str, e: &aws_sdk_sfn::error::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(s) => format!(
            "{call}: {}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or_default()
        ),
        None => format!(
            "{call}: {}",
            aws_smithy_types::error::display::DisplayErrorContext(e)
        ),
    }
}

/// The state machine of `workflow`: --state-machine-arn, else FERRY_<WORKFLOW>_ARN, else
/// the stack's output `<Workflow>StateMachineArn` (CloudFormation DescribeStacks).
pub async fn state_machine(
    config: &aws_config::SdkConfig,
    global: &Global,
    workflow: Workflow,
) -> Result<String, CliError> {
    if let Some(arn) = &global.state_machine_arn {
        return Ok(arn.clone());
    }
    if let Ok(arn) = std::env::var(workflow.env_var()) {
        if !arn.is_empty() {
            return Ok(arn);
        }
    }
    let cfn = aws_sdk_cloudformation::Client::new(config);
    let out = cfn
        .describe_stacks()
        .stack_name(&global.stack)
        .send()
        .await
        .map_err(|e| {
            CliError::aws(format!(
                "{} (the stack that deployed ferry; give --stack, --state-machine-arn or {})",
                describe_error("DescribeStacks", &e),
                workflow.env_var()
            ))
        })?;
    let key = workflow.stack_output();
    out.stacks()
        .iter()
        .flat_map(|s| s.outputs())
        .find(|o| o.output_key() == Some(key))
        .and_then(|o| o.output_value().map(str::to_string))
        .ok_or_else(|| {
            CliError::aws(format!(
                "stack {} has no output {key}: is ferry deployed there?",
                global.stack
            ))
        })
}

/// What StartExecution gave: the execution and whether an earlier start (same
/// idempotency key, same input) had already made it.
pub struct Started {
    pub execution_arn: String,
    pub existing: bool,
}

/// StartExecution. With a name that is already taken (an idempotency key used before),
/// AWS answers the running execution for the same input and refuses otherwise; a
/// finished execution with the same input is the same run: it is answered, not started
/// again. A different input under the same name is an error that says so.
pub async fn start(
    sfn: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    name: Option<&str>,
    input: &Value,
) -> Result<Started, CliError> {
    let text = input.to_string();
    let sent = sfn
        .start_execution()
        .state_machine_arn(state_machine_arn)
        .set_name(name.map(str::to_string))
        .input(&text)
        .send()
        .await;
    match sent {
        Ok(out) => Ok(Started {
            execution_arn: out.execution_arn().to_string(),
            existing: false,
        }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_execution_already_exists()) =>
        {
            let name = name.unwrap_or_default();
            let arn = execution_arn(state_machine_arn, name);
            let existing = sfn
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .map_err(|e| CliError::aws(describe_error("DescribeExecution", &e)))?;
            let same = existing
                .input()
                .and_then(|i| serde_json::from_str::<Value>(i).ok())
                .is_some_and(|i| &i == input);
            if same {
                Ok(Started {
                    execution_arn: arn,
                    existing: true,
                })
            } else {
                Err(CliError::input(format!(
                    "an execution named {name} ({arn}) already exists with another input: \
                     an idempotency key names one run of one input; use a new key for a new run"
                )))
            }
        }
        Err(e) => Err(CliError::aws(describe_error("StartExecution", &e))),
    }
}

/// `arn:...:stateMachine:<machine>` + name → `arn:...:execution:<machine>:<name>`.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sts::config::ProvideCredentials;
    use aws_sdk_sts::operation::assume_role::{AssumeRoleError, AssumeRoleOutput};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    const ROLE: &str = "arn:aws:iam::123456789012:role/ferry-InvokerRole-1AB2";

    fn global(role: Option<&str>, external_id: Option<&str>) -> Global {
        Global {
            stack: "ferry".into(),
            state_machine_arn: None,
            region: None,
            profile: None,
            poll_seconds: 5.0,
            assume_role_arn: role.map(str::to_string),
            assume_role_external_id: external_id.map(str::to_string),
        }
    }

    #[test]
    fn an_external_id_needs_a_role_to_assume() {
        assert_eq!(assume_role_request(&global(None, None)).unwrap(), None);
        assert_eq!(
            assume_role_request(&global(Some(ROLE), Some("ext"))).unwrap(),
            Some((ROLE, Some("ext")))
        );
        assert_eq!(
            assume_role_request(&global(Some(ROLE), Some(""))).unwrap(),
            Some((ROLE, None)),
            "an empty FERRY_EXTERNAL_ID is none"
        );
        let e = assume_role_request(&global(None, Some("ext"))).unwrap_err();
        assert_eq!(e.exit, 2, "{e:?}");
        assert!(e.message.contains("--assume-role-arn"), "{}", e.message);
    }

    fn credentials(key: &str) -> AssumeRoleOutput {
        AssumeRoleOutput::builder()
            .credentials(
                aws_sdk_sts::types::Credentials::builder()
                    .access_key_id(key)
                    .secret_access_key("secret")
                    .session_token("token")
                    .expiration(aws_smithy_types::DateTime::from_secs(4_000_000_000))
                    .build()
                    .unwrap(),
            )
            .build()
    }

    fn base() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("us-east-1"))
            .build()
    }

    #[tokio::test]
    async fn the_role_is_assumed_once_up_front_with_the_external_id_then_again_when_asked() {
        let assume = mock!(aws_sdk_sts::Client::assume_role)
            .match_requests(|r| {
                r.role_arn() == Some(ROLE)
                    && r.external_id() == Some("hub-secret")
                    && r.role_session_name() == Some(ROLE_SESSION_NAME)
            })
            .sequence()
            .output(|| credentials("ASIAFIRST"))
            .output(|| credentials("ASIASECOND"))
            .build();
        let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, &[&assume]);
        let config = assume_role(base(), sts, ROLE, Some("hub-secret"))
            .await
            .expect("assumed");
        assert_eq!(assume.num_calls(), 1, "AssumeRole before anything else");
        let provider = config
            .credentials_provider()
            .expect("the role's credentials");
        let first = provider.provide_credentials().await.unwrap();
        assert_eq!(first.access_key_id(), "ASIAFIRST");
        assert_eq!(first.session_token(), Some("token"));
        assert!(first.expiry().is_some(), "expires: the SDK asks again");
        assert_eq!(
            assume.num_calls(),
            1,
            "the first credentials are not assumed twice"
        );
        let again = provider.provide_credentials().await.unwrap();
        assert_eq!(again.access_key_id(), "ASIASECOND");
        assert_eq!(assume.num_calls(), 2);
    }

    #[tokio::test]
    async fn a_refused_assume_role_is_an_aws_error_naming_the_role() {
        let refused = mock!(aws_sdk_sts::Client::assume_role)
            .then_error(|| {
                AssumeRoleError::generic(
                    aws_smithy_types::error::ErrorMetadata::builder()
                        .code("AccessDenied")
                        .message("User: arn:aws:sts::222233334444:assumed-role/ci/x is not authorized to perform: sts:AssumeRole")
                        .build(),
                )
            });
        let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, &[&refused]);
        let e = assume_role(base(), sts, ROLE, None).await.unwrap_err();
        assert_eq!(e.exit, 3);
        assert!(
            e.message.starts_with("AssumeRole: AccessDenied: User: ")
                && e.message.contains(ROLE)
                && e.message.contains("without --external-id"),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_execution_arn_is_made_from_its_machine_and_name() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:eu-west-1:111122223333:stateMachine:ferry-copy-image",
                "deploy-42-0123456789abcdef"
            ),
            "arn:aws:states:eu-west-1:111122223333:execution:ferry-copy-image:deploy-42-0123456789abcdef"
        );
    }
}
