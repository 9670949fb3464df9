//! The command line: what each subcommand takes.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Start, plan and follow ferry's workflows (AWS Step Functions) from a terminal or a pipeline",
    long_about = "Start, plan and follow ferry's workflows (AWS Step Functions).\n\n\
        The state machines are found from the deployed stack's outputs (CloudFormation \
        DescribeStacks, --stack, default `ferry`), or from --state-machine-arn / \
        FERRY_<WORKFLOW>_ARN (e.g. FERRY_MIGRATE_INSTANCE_ARN). AWS_PROFILE, AWS_REGION \
        and AWS_ENDPOINT_URL are honoured.\n\n\
        From another account (a pipeline): `ferry --assume-role-arn <the hub's \
        InvokerRoleArn> --external-id <its ExternalId> ...` (or FERRY_ASSUME_ROLE_ARN / \
        FERRY_EXTERNAL_ID) assumes that role first and makes every call with it.\n\n\
        Exit status: 0 succeeded (or started / running), 1 the execution failed, timed out \
        or was aborted, 2 bad input or usage (nothing was started), 3 an AWS error \
        (credentials, access, the stack or the execution not found)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// The CloudFormation stack that deployed ferry: its outputs name the state machines.
    #[arg(long, env = "FERRY_STACK", default_value = "ferry", global = true)]
    pub stack: String,
    /// The state machine to start (instead of the stack's outputs).
    #[arg(long, global = true)]
    pub state_machine_arn: Option<String>,
    /// AWS Region (else AWS_REGION / the profile's).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Named profile (else AWS_PROFILE).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Seconds between two reads of the execution's history while waiting.
    #[arg(long, env = "FERRY_POLL_SECONDS", default_value_t = 5.0, global = true)]
    pub poll_seconds: f64,
    /// A role to assume first (STS AssumeRole with the credentials found as usual), e.g.
    /// the hub's invoker role for a pipeline in another account: every call is then made
    /// with its credentials, in the Region given (--region / AWS_REGION).
    #[arg(long, env = "FERRY_ASSUME_ROLE_ARN", value_name = "ARN", global = true)]
    pub assume_role_arn: Option<String>,
    /// The ExternalId for --assume-role-arn (the hub's InvokerExternalId). Give it before
    /// the subcommand: `ferry copy --external-id` is the target role's.
    #[arg(long = "external-id", env = "FERRY_EXTERNAL_ID", value_name = "ID")]
    pub assume_role_external_id: Option<String>,
}

/// The six workflows, by the names their state machines carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workflow {
    #[value(name = "migrate-instance", alias = "migrate")]
    MigrateInstance,
    #[value(name = "share-image", alias = "share")]
    ShareImage,
    #[value(name = "revoke-share", alias = "revoke")]
    RevokeShare,
    #[value(name = "copy-image", alias = "copy")]
    CopyImage,
    #[value(name = "distribute-image", alias = "distribute")]
    DistributeImage,
    #[value(name = "migrate-fleet", alias = "fleet")]
    MigrateFleet,
}

impl Workflow {
    pub const ALL: [Workflow; 6] = [
        Workflow::MigrateInstance,
        Workflow::ShareImage,
        Workflow::RevokeShare,
        Workflow::CopyImage,
        Workflow::DistributeImage,
        Workflow::MigrateFleet,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workflow::MigrateInstance => "migrate-instance",
            Workflow::ShareImage => "share-image",
            Workflow::RevokeShare => "revoke-share",
            Workflow::CopyImage => "copy-image",
            Workflow::DistributeImage => "distribute-image",
            Workflow::MigrateFleet => "migrate-fleet",
        }
    }

    /// The template's output that holds the state machine's ARN.
    pub fn stack_output(self) -> &'static str {
        match self {
            Workflow::MigrateInstance => "MigrateInstanceStateMachineArn",
            Workflow::ShareImage => "ShareImageStateMachineArn",
            Workflow::RevokeShare => "RevokeShareStateMachineArn",
            Workflow::CopyImage => "CopyImageStateMachineArn",
            Workflow::DistributeImage => "DistributeImageStateMachineArn",
            Workflow::MigrateFleet => "MigrateFleetStateMachineArn",
        }
    }

    /// The environment variable that may name the state machine's ARN.
    pub fn env_var(self) -> String {
        format!(
            "FERRY_{}_ARN",
            self.name().to_ascii_uppercase().replace('-', "_")
        )
    }
}

/// How a start is followed.
#[derive(Debug, Args, Clone, Default)]
pub struct StartOptions {
    /// Follow the execution until it ends; exit 0 on success, 1 on failure.
    #[arg(long)]
    pub wait: bool,
    /// Print one machine-readable JSON result on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Derive the execution name from this key: the same key starts one execution.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// The execution name (default: the idempotency key's, else one Step Functions picks).
    #[arg(long, conflicts_with = "idempotency_key")]
    pub name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate an instance to another Availability Zone (migrate-instance).
    Migrate(MigrateArgs),
    /// Share an AMI with accounts, Organizations or OUs (share-image).
    Share(ShareArgs),
    /// Copy an AMI shared with a target account into it (copy-image).
    Copy(CopyArgs),
    /// Share an AMI and copy it into many accounts (distribute-image) from an input file.
    Distribute {
        /// The input JSON (`-` for stdin).
        #[arg(long, short)]
        input: PathBuf,
        #[command(flatten)]
        start: StartOptions,
    },
    /// Start any workflow with an input file.
    Run {
        workflow: Workflow,
        /// The input JSON (`-` for stdin).
        #[arg(long, short)]
        input: PathBuf,
        #[command(flatten)]
        start: StartOptions,
    },
    /// Dry run: the workflow's Preflight and the plan of every change, nothing changed.
    Plan {
        workflow: Workflow,
        /// The input JSON (`-` for stdin); `dryRun: true` is added.
        #[arg(long, short)]
        input: PathBuf,
        /// Print the execution's whole output as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of a workflow's input (what its Preflight parses).
    Schema { workflow: Workflow },
    /// Follow an execution until it ends.
    Watch {
        execution_arn: String,
        #[arg(long)]
        json: bool,
    },
    /// An execution's status (and output or error once it ended).
    Status {
        execution_arn: String,
        #[arg(long)]
        json: bool,
    },
    /// Recent executions of one workflow or all of them.
    List {
        #[arg(long)]
        workflow: Option<Workflow>,
        /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED
        #[arg(long)]
        status: Option<String>,
        /// At most this many per workflow.
        #[arg(long, default_value_t = 20)]
        max: i32,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The instance to move (i-...).
    #[arg(long)]
    pub instance: String,
    /// A subnet in the target Availability Zone (subnet-...).
    #[arg(long)]
    pub subnet: String,
    #[arg(long)]
    pub instance_type: Option<String>,
    /// Security groups for the new instance (repeat); default: the source's.
    #[arg(long = "security-group", value_name = "SG")]
    pub security_groups: Vec<String>,
    /// What to do with the source once the new instance is verified: keep, stop, terminate.
    #[arg(long)]
    pub source_action: Option<String>,
    /// Stop the source before imaging (consistent disks, downtime).
    #[arg(long)]
    pub stop_source: bool,
    #[arg(long)]
    pub no_reboot: bool,
    #[arg(long)]
    pub keep_image: bool,
    #[arg(long)]
    pub move_elastic_ip: bool,
    /// Extra tags for the new instance (repeat KEY=VALUE).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub start: StartOptions,
}

#[derive(Debug, Args)]
pub struct ShareArgs {
    /// The AMI (ami-...).
    #[arg(long)]
    pub image: String,
    /// Account ids to share with (repeat).
    #[arg(long = "account", value_name = "ACCOUNT_ID")]
    pub accounts: Vec<String>,
    #[arg(long = "organization", value_name = "ARN")]
    pub organizations: Vec<String>,
    #[arg(long = "ou", value_name = "ARN")]
    pub ous: Vec<String>,
    /// Make the AMI public (unencrypted AMIs only).
    #[arg(long)]
    pub public: bool,
    /// KMS access for the targets: grant (default) or none (the key policy already allows them).
    #[arg(long)]
    pub kms_access: Option<String>,
    /// Share a copy re-encrypted under this key (needed for aws/ebs-encrypted AMIs).
    #[arg(long)]
    pub reencrypt_with: Option<String>,
    #[command(flatten)]
    pub start: StartOptions,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The shared AMI (ami-...).
    #[arg(long)]
    pub image: String,
    /// Where the AMI is (default: the Region ferry runs in).
    #[arg(long)]
    pub source_region: Option<String>,
    #[arg(long)]
    pub target_account: String,
    /// The role target-account.yaml created in the target (arn:aws:iam::<target>:role/ferry/...).
    #[arg(long)]
    pub target_role_arn: String,
    #[arg(long)]
    pub external_id: String,
    /// The target's KMS key for the copy.
    #[arg(long)]
    pub kms_key: String,
    #[arg(long)]
    pub target_region: Option<String>,
    #[arg(long)]
    pub copy_name: Option<String>,
    /// Leave the share in place after the copy.
    #[arg(long)]
    pub keep_share: bool,
    /// Do not copy the source's tags.
    #[arg(long)]
    pub no_copy_tags: bool,
    #[command(flatten)]
    pub start: StartOptions,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/ferry-InvokerRole-1AB2";
    const COPY: [&str; 11] = [
        "copy",
        "--image",
        "ami-0123456789abcdef0",
        "--target-account",
        "222233334444",
        "--target-role-arn",
        "arn:aws:iam::222233334444:role/ferry/ferry-target",
        "--external-id",
        "target-secret",
        "--kms-key",
        "arn:aws:kms:us-east-1:222233334444:key/1",
    ];

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ferry").chain(args.iter().copied()))
    }

    #[test]
    fn the_invoker_role_and_its_external_id_come_before_the_subcommand() {
        let mut args = vec!["--assume-role-arn", ROLE, "--external-id", "hub-secret"];
        args.extend(COPY);
        let cli = parse(&args).expect("parses");
        assert_eq!(cli.global.assume_role_arn.as_deref(), Some(ROLE));
        assert_eq!(
            cli.global.assume_role_external_id.as_deref(),
            Some("hub-secret")
        );
        // copy's own --external-id is the target role's, a different value.
        match cli.command {
            Command::Copy(c) => assert_eq!(c.external_id, "target-secret"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_role_may_also_follow_the_subcommand_and_is_optional() {
        let mut args = COPY.to_vec();
        args.extend(["--assume-role-arn", ROLE]);
        let cli = parse(&args).expect("parses");
        assert_eq!(cli.global.assume_role_arn.as_deref(), Some(ROLE));
        let cli = parse(&["status", "arn:aws:states:us-east-1:1:execution:m:e"]).unwrap();
        assert_eq!(cli.global.assume_role_arn, None);
        assert_eq!(cli.global.assume_role_external_id, None);
        // After a subcommand without an --external-id of its own, the flag is unknown
        // there (it names the role's ExternalId only before the subcommand).
        assert!(parse(&[
            "status",
            "arn:aws:states:us-east-1:1:execution:m:e",
            "--external-id",
            "x"
        ])
        .is_err());
        assert!(
            parse(&["--assume-role-arn"]).is_err(),
            "the flag takes an ARN"
        );
    }
}
