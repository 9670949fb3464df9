//! The `ferry` binary without any AWS: usage, and input refused before anything starts
//! (exit 2, the field and the reason), with AWS pointed at a closed port so that a call
//! would fail differently (exit 3).

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn ferry(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferry");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn err(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_and_usage() {
    let out = ferry(&["--help"], None);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "migrate",
        "share",
        "copy",
        "distribute",
        "run",
        "plan",
        "watch",
        "status",
        "list",
    ] {
        assert!(text.contains(cmd), "{cmd} missing from --help: {text}");
    }
    // A missing required flag, an unknown workflow: usage errors.
    assert_eq!(
        ferry(&["migrate", "--instance", "i-0123456789abcdef0"], None)
            .status
            .code(),
        Some(2)
    );
    let out = ferry(&["run", "migrate-everything", "--input", "-"], Some("{}"));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_input_is_refused_before_any_aws_call() {
    // A malformed instance id, from flags.
    let out = ferry(
        &[
            "migrate",
            "--instance",
            "i-nope",
            "--subnet",
            "subnet-0123456789abcdef0",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(err(&out).contains("sourceInstanceId"), "{}", err(&out));
    // A tag without '='.
    let out = ferry(
        &[
            "migrate",
            "--instance",
            "i-0123456789abcdef0",
            "--subnet",
            "subnet-0123456789abcdef0",
            "--tag",
            "team",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("KEY=VALUE"), "{}", err(&out));
    // Not JSON on stdin; an unknown field; a public share of nothing.
    let out = ferry(&["run", "copy", "--input", "-"], Some("{not json"));
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("not JSON"), "{}", err(&out));
    let out = ferry(
        &["run", "share-image", "--input", "-"],
        Some(r#"{"imageId": "ami-0123456789abcdef0", "acountIds": ["111122223333"]}"#),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("acountIds"), "{}", err(&out));
    let out = ferry(
        &["distribute", "--input", "-"],
        Some(r#"{"share": {"imageId": "ami-0123456789abcdef0"}, "targets": []}"#),
    );
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
}

#[test]
fn good_input_reaches_aws_which_is_not_there() {
    // The input passes the checks; the (closed) endpoint makes it an AWS error: exit 3.
    let out = ferry(
        &[
            "--state-machine-arn",
            "arn:aws:states:eu-west-1:111122223333:stateMachine:ferry-migrate-instance",
            "migrate",
            "--instance",
            "i-0123456789abcdef0",
            "--subnet",
            "subnet-0123456789abcdef0",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", err(&out));
    assert!(err(&out).contains("StartExecution"), "{}", err(&out));
}

/// `ferry` with extra environment variables (FERRY_ASSUME_ROLE_ARN, FERRY_EXTERNAL_ID).
fn ferry_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(args)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("AWS_PROFILE")
        .env_remove("FERRY_ASSUME_ROLE_ARN")
        .env_remove("FERRY_EXTERNAL_ID");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ferry")
}

const INVOKER: &str = "arn:aws:iam::111122223333:role/ferry-InvokerRole-1AB2";
const MIGRATE: [&str; 7] = [
    "--state-machine-arn",
    "arn:aws:states:eu-west-1:111122223333:stateMachine:ferry-migrate-instance",
    "migrate",
    "--instance",
    "i-0123456789abcdef0",
    "--subnet",
    "subnet-0123456789abcdef0",
];

#[test]
fn the_invoker_role_is_assumed_before_any_other_call_from_flags_or_env() {
    // From the flags: the first call is STS AssumeRole (the closed endpoint: exit 3,
    // naming AssumeRole and the role, not StartExecution).
    let mut args = vec!["--assume-role-arn", INVOKER, "--external-id", "hub-secret"];
    args.extend(MIGRATE);
    let out = ferry_env(&args, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", err(&out));
    assert!(
        err(&out).contains("AssumeRole") && err(&out).contains(INVOKER),
        "{}",
        err(&out)
    );
    assert!(!err(&out).contains("StartExecution"), "{}", err(&out));
    // The same from the environment.
    let out = ferry_env(
        &MIGRATE,
        &[
            ("FERRY_ASSUME_ROLE_ARN", INVOKER),
            ("FERRY_EXTERNAL_ID", "hub-secret"),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", err(&out));
    assert!(
        err(&out).contains("AssumeRole") && err(&out).contains("with --external-id"),
        "{}",
        err(&out)
    );
    // Bad input is still refused first, before any call (exit 2).
    let out = ferry_env(
        &[
            "--assume-role-arn",
            INVOKER,
            "migrate",
            "--instance",
            "i-nope",
            "--subnet",
            "subnet-0123456789abcdef0",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
}

#[test]
fn an_external_id_without_a_role_is_a_usage_error() {
    let out = ferry_env(&MIGRATE, &[("FERRY_EXTERNAL_ID", "hub-secret")]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(err(&out).contains("--assume-role-arn"), "{}", err(&out));
    let mut args = vec!["--external-id", "hub-secret"];
    args.extend(MIGRATE);
    assert_eq!(ferry_env(&args, &[]).status.code(), Some(2));
}

#[test]
fn schema_prints_the_workflows_input_schema() {
    let out = ferry(&["schema", "copy"], None);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(schema["title"], "ferry copy-image input");
    assert_eq!(schema["additionalProperties"], false);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(required.contains(&"targetKmsKeyId"), "{required:?}");
}
