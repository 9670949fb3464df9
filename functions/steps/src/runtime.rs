//! What every step's `main` shares: logging, clients, JSON in and out, named errors out.

use crate::aws::Clients;
use ferry_core::FerryError;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::{de::DeserializeOwned, Serialize};
use std::future::Future;
use std::pin::Pin;

/// A step's failure as the Lambda runtime reports it: `errorType` is the ferry error
/// name that the state machine's Retry and Catch match.
#[derive(Debug)]
pub struct StepFailure(pub FerryError);

impl From<StepFailure> for Diagnostic {
    fn from(failure: StepFailure) -> Diagnostic {
        Diagnostic {
            error_type: failure.0.name.as_str().to_string(),
            error_message: failure.0.message,
        }
    }
}

/// Decodes the payload, runs the step, encodes its result. A payload of the wrong shape
/// is `Ferry.InvalidInput`, not the runtime's own deserialisation error.
pub async fn invoke<I, O, F, Fut>(
    clients: Clients,
    payload: serde_json::Value,
    step: F,
) -> Result<O, FerryError>
where
    I: DeserializeOwned,
    F: Fn(Clients, I) -> Fut,
    Fut: Future<Output = Result<O, FerryError>>,
{
    let input: I = serde_json::from_value(payload)
        .map_err(|e| FerryError::invalid_input(format!("step input: {e}")))?;
    step(clients, input).await
}

/// Runs one step as a Lambda function until the runtime shuts it down.
pub async fn serve<I, O, F, Fut>(step: F) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(Clients, I) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<O, FerryError>> + Send + 'static,
{
    init_tracing();
    let clients = Clients::from_env().await;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let clients = clients.clone();
        // Boxed: a step's future is deep, and the runtime's own layers nest it further.
        let run: Pin<Box<dyn Future<Output = Result<O, FerryError>> + Send>> =
            Box::pin(invoke(clients, event.payload, step));
        async move {
            run.await.map_err(|e| {
                tracing::warn!(error_type = e.name.as_str(), message = %e.message, "step failed");
                StepFailure(e)
            })
        }
    }))
    .await
}

/// JSON logs when Lambda asks for them (`AWS_LAMBDA_LOG_FORMAT=JSON`), text otherwise.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .without_time();
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").as_deref() == Ok("JSON") {
        builder.json().init();
    } else {
        builder.init();
    }
}
