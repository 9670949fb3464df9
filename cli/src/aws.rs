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
    Ok(config)
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
