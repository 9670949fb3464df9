//! The `ferry` command line: starts ferry's state machines (migrate-instance,
//! share-image, revoke-share, copy-image, distribute-image) with inputs built from flags
//! or files, checked by the same parsers as the Preflight steps before anything starts;
//! follows executions through their history; reads status and lists.
//!
//! - [`args`]: the subcommands and flags (clap).
//! - [`input`]: inputs from flags and files, checked before a start.
//! - [`aws`]: SDK configuration, finding the state machines (stack outputs, flags, env),
//!   StartExecution with idempotency keys.
//! - [`watch`]: progress from the execution history, results and exit statuses.

pub mod args;
pub mod aws;
pub mod input;
pub mod watch;

use args::{Cli, Command, Global, StartOptions, Workflow};
use clap::Parser;
use serde_json::{json, Value};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::time::Duration;

/// An error of the CLI itself (not of an execution): its exit status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub exit: u8,
    pub message: String,
}

impl CliError {
    /// Bad input or usage: nothing was started (exit 2).
    pub fn input(message: impl Into<String>) -> Self {
        CliError {
            exit: 2,
            message: message.into(),
        }
    }
    /// AWS refused or could not be reached (exit 3).
    pub fn aws(message: impl Into<String>) -> Self {
        CliError {
            exit: 3,
            message: message.into(),
        }
    }
}

impl From<ferry_core::FerryError> for CliError {
    fn from(e: ferry_core::FerryError) -> Self {
        CliError::input(format!("input refused ({}): {}", e.name, e.message))
    }
}

/// Runs the command line `args` (program name first) and returns the exit status.
pub async fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferry: {}", e.message);
            e.exit
        }
    }
}

async fn dispatch(cli: Cli) -> Result<u8, CliError> {
    let g = &cli.global;
    match &cli.command {
        Command::Migrate(a) => {
            let input = input::migrate(a)?;
            start(g, Workflow::MigrateInstance, input, &a.start).await
        }
        Command::Share(a) => {
            let input = input::share(a)?;
            start(g, Workflow::ShareImage, input, &a.start).await
        }
        Command::Copy(a) => {
            // The source Region defaults to the one ferry runs in: known once configured.
            let config = aws::config(g).await?;
            let region = config.region().map(|r| r.to_string()).unwrap_or_default();
            let input = input::copy(a, &region)?;
            start_with(Some(config), g, Workflow::CopyImage, input, &a.start).await
        }
        Command::Distribute {
            input: path,
            start: s,
        } => start(g, Workflow::DistributeImage, input::read(path)?, s).await,
        Command::Run {
            workflow,
            input: path,
            start: s,
        } => start(g, *workflow, input::read(path)?, s).await,
        Command::Plan {
            workflow,
            input: path,
            json,
        } => plan(g, *workflow, input::read(path)?, *json).await,
        Command::Schema { workflow } => {
            let schema = ferry_core::schemas::input_schema(workflow.name())
                .ok_or_else(|| CliError::input(format!("no schema for {}", workflow.name())))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            Ok(0)
        }
        Command::Watch {
            execution_arn,
            json,
        } => {
            let sfn = aws_sdk_sfn::Client::new(&aws::config(g).await?);
            let outcome = watch::follow(&sfn, execution_arn, poll(g), live()).await?;
            Ok(watch::report(&outcome, *json))
        }
        Command::Status {
            execution_arn,
            json,
        } => {
            let sfn = aws_sdk_sfn::Client::new(&aws::config(g).await?);
            let outcome = watch::describe(&sfn, execution_arn).await?;
            Ok(watch::report(&outcome, *json))
        }
        Command::List {
            workflow,
            status,
            max,
            json,
        } => list(g, *workflow, status.as_deref(), *max, *json).await,
    }
}

fn poll(g: &Global) -> Duration {
    Duration::from_secs_f64(g.poll_seconds.clamp(0.05, 600.0))
}

/// A live progress line only on a terminal.
fn live() -> bool {
    std::io::stderr().is_terminal()
}

/// Checks the input, starts the execution (once per idempotency key) and, with --wait,
/// follows it to its end.
async fn start(
    g: &Global,
    workflow: Workflow,
    input: Value,
    opts: &StartOptions,
) -> Result<u8, CliError> {
    start_with(None, g, workflow, input, opts).await
}

/// [`start`] with the SDK configuration already loaded (`None`: load it after the input
/// is checked), so a role given with --assume-role-arn is assumed once.
async fn start_with(
    config: Option<aws_config::SdkConfig>,
    g: &Global,
    workflow: Workflow,
    input: Value,
    opts: &StartOptions,
) -> Result<u8, CliError> {
    input::check(workflow, &input)?;
    let name = match (&opts.idempotency_key, &opts.name) {
        (Some(key), _) => Some(ferry_core::names::execution_name_for_key(
            workflow.name(),
            key,
        )),
        (None, Some(name)) => Some(name.clone()),
        (None, None) => None,
    };
    let config = match config {
        Some(config) => config,
        None => aws::config(g).await?,
    };
    let machine = aws::state_machine(&config, g, workflow).await?;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let started = aws::start(&sfn, &machine, name.as_deref(), &input).await?;
    let arn = &started.execution_arn;
    if started.existing {
        eprintln!(
            "{} already started with this idempotency key: {arn}",
            workflow.name()
        );
    } else {
        eprintln!("started {}: {arn}", workflow.name());
    }
    if opts.wait {
        let outcome = watch::follow(&sfn, arn, poll(g), live()).await?;
        return Ok(watch::report(&outcome, opts.json));
    }
    if opts.json {
        let outcome = watch::describe(&sfn, arn).await?;
        println!("{}", outcome.to_json());
    } else {
        println!("{arn}");
    }
    Ok(0)
}

/// `ferry plan`: the workflow's dry run, followed to its end; prints the plan.
async fn plan(
    g: &Global,
    workflow: Workflow,
    input: Value,
    json_out: bool,
) -> Result<u8, CliError> {
    let input = input::dry_run(input)?;
    input::check(workflow, &input)?;
    let config = aws::config(g).await?;
    let machine = aws::state_machine(&config, g, workflow).await?;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let started = aws::start(&sfn, &machine, None, &input).await?;
    eprintln!("planning {}: {}", workflow.name(), started.execution_arn);
    let outcome = watch::follow(&sfn, &started.execution_arn, poll(g), live()).await?;
    if outcome.succeeded() && !json_out {
        let plan = outcome.output.clone().unwrap_or(Value::Null);
        println!(
            "{}",
            serde_json::to_string_pretty(&plan).unwrap_or_default()
        );
        eprintln!("planned, nothing changed: {}", outcome.execution_arn);
        return Ok(0);
    }
    Ok(watch::report(&outcome, json_out))
}

/// `ferry list`: recent executions of one workflow or each.
async fn list(
    g: &Global,
    workflow: Option<Workflow>,
    status: Option<&str>,
    max: i32,
    json_out: bool,
) -> Result<u8, CliError> {
    let status = match status {
        None => None,
        Some(s) => {
            let upper = s.to_ascii_uppercase();
            let parsed = aws_sdk_sfn::types::ExecutionStatus::from(upper.as_str());
            if !aws_sdk_sfn::types::ExecutionStatus::values().contains(&upper.as_str()) {
                return Err(CliError::input(format!(
                    "--status {s:?}: one of RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED"
                )));
            }
            Some(parsed)
        }
    };
    let config = aws::config(g).await?;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let workflows: Vec<Workflow> = workflow.map_or(Workflow::ALL.to_vec(), |w| vec![w]);
    let mut rows = Vec::new();
    for w in workflows {
        let machine = aws::state_machine(&config, g, w).await?;
        let out = sfn
            .list_executions()
            .state_machine_arn(&machine)
            .set_status_filter(status.clone())
            .max_results(max.clamp(1, 1000))
            .send()
            .await
            .map_err(|e| CliError::aws(aws::describe_error("ListExecutions", &e)))?;
        for e in out.executions() {
            rows.push(json!({
                "workflow": w.name(),
                "name": e.name(),
                "status": e.status().as_str(),
                "startDate": e.start_date().fmt(aws_smithy_types::date_time::Format::DateTime).ok(),
                "executionArn": e.execution_arn(),
            }));
        }
    }
    if json_out {
        println!("{}", Value::Array(rows));
    } else {
        for r in &rows {
            println!(
                "{:<17} {:<10} {:<25} {}",
                r["workflow"].as_str().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default(),
                r["startDate"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(0)
}
