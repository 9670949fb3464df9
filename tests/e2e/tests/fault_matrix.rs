//! The fault matrix (issue 8, part 3): every mutating AWS call of every workflow, failed
//! in every way the world can fail it, one end-to-end run per cell, each judged on the
//! world's resulting state.
//!
//! `tests/e2e/faults/matrix.json` holds the data: the fault `kinds` (throttling, an
//! InternalError whose call took effect, a Lambda killed mid-step), the `scenarios` (a
//! workflow, its fixture, and for a rollback path the `trigger` that sends it there), the
//! `whole`-workflow cells (a failed image, InsufficientInstanceCapacity, the same execution
//! started twice, ...), and `bugs`: cells that reveal a real ferry bug, each with what
//! goes wrong. The cells are generated: each scenario first runs once without a fault (its
//! *calibration*), the mutating calls ferry made in it are read from the world's call
//! records (which function, which call, in the hub or as the target), and each call of the
//! scenario's `cellsFor` functions gets one cell per kind, named
//! `<workflow>/<scenario>/<state>/<call>/<kind>` (whole-workflow cells `<workflow>/<name>`,
//! calibration runs `<workflow>/<scenario>/clean`). distribute-image runs share-image and
//! copy-image as nested executions: their calls are the cells of those two; its own cells
//! are whole-workflow ones.
//!
//! A cell arms its fault on exactly that call (the world's fault scoped to the calling
//! function, or to the cell's own target account for a call made as the target), runs the
//! workflow on a fixture of its own, and checks the world afterwards: the execution ended
//! (SUCCEEDED, or FAILED after a rollback that did not fail itself; a transient fault must
//! not change the outcome), the source is intact (the instance running or stopped as it
//! should be, its Elastic IP where it should be, its volumes attached; the shared image
//! still there), and nothing of the execution is left (instances, images, snapshots,
//! volumes tagged with it; launch permissions, createVolumePermissions, KMS grants for its
//! target) beyond what its output reports (`leftovers`, `imageKept`, the share `record`,
//! `stillShared`). A revoke that failed is judged by whether running it again removes the
//! rest. The hub's resources tagged with an execution are searched once, after the last
//! cell (a tag search scans every resource of the world). Cells run `FERRY_FAULT_MATRIX_CONCURRENCY` (default 4) at a time: the world's
//! faults are global, so a cell that faults a hub function runs alone among the cells
//! whose runs call that function (one read-write lock per function).
//!
//! Run: `FERRY_WORLD_JSON=<state dir>/world.json cargo test --workspace --test
//! fault_matrix -- --nocapture`; it prints `N faults, N survived, 0 leaked`.
//! `FERRY_FAULT_MATRIX_VERBOSE=1` prints every cell, `FERRY_FAULT_MATRIX_ONLY=<text>` runs
//! only the cells whose id contains it.

use aws_sdk_ec2::types as ec2t;
use ferry_e2e::accounts::*;
use ferry_e2e::targets::*;
use ferry_e2e::*;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORKFLOWS: [&str; 5] = [
    "migrate-instance",
    "share-image",
    "revoke-share",
    "copy-image",
    "distribute-image",
];

/// Cells run at the same time unless FERRY_FAULT_MATRIX_CONCURRENCY says otherwise.
const CONCURRENCY: usize = 4;

/// Fixtures built at the same time.
const FIXTURE_CONCURRENCY: usize = 4;

/// Real seconds an execution may run before the cell gives up on it.
const EXECUTION_LIMIT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------
// The data
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Matrix {
    kinds: Vec<Kind>,
    scenarios: Vec<Scenario>,
    whole: Vec<Whole>,
    bugs: Vec<Bug>,
}

/// A way to fail a call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kind {
    name: String,
    why: String,
    /// The world's fault mode: before, after or kill.
    mode: String,
    count: u32,
    /// The error per service (none for kill: any call of a Lambda can be killed).
    codes: BTreeMap<String, Code>,
    /// Within the Retry budget: the execution must end as it does without the fault.
    absorbed: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Code {
    code: String,
    status: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Scenario {
    workflow: String,
    name: String,
    why: String,
    fixture: String,
    /// The functions (template logical ids) whose calls get cells; null: every function.
    cells_for: Option<Vec<String>>,
    trigger: Option<Trigger>,
}

/// What sends a run down a path (a scenario's trigger) or what a whole-workflow cell does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Trigger {
    #[serde(default)]
    fault: Option<FaultSpec>,
    /// The run's images (the intermediate AMI, the re-encrypted copy, the target's copy)
    /// become `failed`: world setting failImages, a pattern with the execution's name.
    #[serde(default)]
    fail_image: bool,
    #[serde(default)]
    same_name_twice: bool,
}

/// A world fault: `function` (a template logical id) scopes it to the calls of that
/// function; `account` is `hub`, `target` (the cell's first target account) or an id.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultSpec {
    service: String,
    action: String,
    #[serde(default)]
    function: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Whole {
    workflow: String,
    name: String,
    scenario: String,
    why: String,
    what: Trigger,
    /// Leaves faults armed (its count is an upper bound): runs alone, after the others.
    #[serde(default)]
    exclusive: bool,
    /// SUCCEEDED, or the error name the execution must fail with.
    expect: String,
    /// Fields that replace those of the scenario's input.
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bug {
    cell: String,
    bug: String,
}

fn matrix() -> Matrix {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("faults/matrix.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The ASL of a workflow.
fn asl(workflow: &str) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../statemachines/{workflow}.asl.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Function logical id -> the (first) Task state that runs it, in a workflow's ASL.
fn states_of(workflow: &str) -> BTreeMap<String, String> {
    fn walk(states: &Value, out: &mut BTreeMap<String, String>) {
        for (name, state) in states.as_object().into_iter().flatten() {
            if let Some(r) = state["Resource"].as_str() {
                if let Some(id) = r.strip_prefix("${").and_then(|r| r.strip_suffix("Arn}")) {
                    out.entry(id.to_string()).or_insert_with(|| name.clone());
                }
            }
            for inner in [
                &state["ItemProcessor"]["States"],
                &state["Iterator"]["States"],
            ] {
                walk(inner, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&asl(workflow)["States"], &mut out);
    out
}

const FIXTURES: [&str; 6] = [
    "web-server",
    "cmk-image",
    "ebs-image",
    "shared-cmk-image",
    "shared-with-target",
    "two-targets",
];

/// The data's shape, checked without the world: kinds, scenarios and whole cells name
/// what exists (workflows, fixtures, functions of that workflow's ASL), and every bug
/// mark names a cell the matrix can generate and says what goes wrong.
#[test]
fn the_fault_matrix_data_is_well_formed() {
    let m = matrix();
    let mut names = BTreeSet::new();
    for k in &m.kinds {
        assert!(names.insert(k.name.clone()), "kind {} twice", k.name);
        assert!(!k.why.trim().is_empty(), "kind {}: why", k.name);
        assert!(
            ["before", "after", "kill"].contains(&k.mode.as_str()),
            "kind {}: mode",
            k.name
        );
        assert!(k.count >= 1, "kind {}: count", k.name);
        assert!(
            k.mode == "kill" || !k.codes.is_empty(),
            "kind {}: which error, per service",
            k.name
        );
    }
    let mut scenarios = BTreeSet::new();
    for s in &m.scenarios {
        let id = format!("{}/{}", s.workflow, s.name);
        assert!(WORKFLOWS.contains(&s.workflow.as_str()), "{id}: workflow");
        assert!(scenarios.insert(id.clone()), "{id} twice");
        assert!(!s.why.trim().is_empty(), "{id}: why");
        assert!(FIXTURES.contains(&s.fixture.as_str()), "{id}: fixture");
        let states = states_of(&s.workflow);
        for f in s.cells_for.iter().flatten() {
            assert!(
                states.contains_key(f),
                "{id}: {f} is no function of its ASL"
            );
        }
        if let Some(f) = s.trigger.as_ref().and_then(|t| t.fault.as_ref()) {
            if let Some(function) = &f.function {
                assert!(states.contains_key(function), "{id}: trigger {function}");
            }
        }
    }
    for w in &m.whole {
        let id = format!("{}/{}", w.workflow, w.name);
        assert!(
            scenarios.contains(&format!("{}/{}", w.workflow, w.scenario)),
            "{id}: scenario"
        );
        assert!(!w.why.trim().is_empty(), "{id}: why");
        assert!(
            w.what.fault.is_some() || w.what.fail_image || w.what.same_name_twice,
            "{id}: what does it do"
        );
        assert!(
            w.expect == "SUCCEEDED" || w.expect.starts_with("Ferry."),
            "{id}: expect"
        );
    }
    for b in &m.bugs {
        assert!(!b.bug.trim().is_empty(), "{}: describe the bug", b.cell);
        let parts: Vec<&str> = b.cell.split('/').collect();
        let known = match parts.as_slice() {
            [wf, scenario, "clean"] => scenarios.contains(&format!("{wf}/{scenario}")),
            [wf, name] => m.whole.iter().any(|w| w.workflow == *wf && w.name == *name),
            [wf, scenario, state, _action, kind] => {
                scenarios.contains(&format!("{wf}/{scenario}"))
                    && states_of(wf).values().any(|s| s == state)
                    && names.contains(*kind)
            }
            _ => false,
        };
        assert!(known, "bug mark for an unknown cell {}", b.cell);
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures: what each run works on, its own
// ---------------------------------------------------------------------------------------

static ACCOUNTS: AtomicU64 = AtomicU64::new(0);

/// A fresh account id (the world outlives test runs; accounts are global).
fn fresh_account() -> String {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        400_000_000_000 + (millis % 100_000_000) * 1000
    });
    format!("{:012}", base + ACCOUNTS.fetch_add(1, Ordering::SeqCst))
}

#[derive(Clone, Debug, Default)]
struct Fixture {
    web: Option<WebServer>,
    /// The source instance's volumes (migrate-instance).
    source_volumes: Vec<String>,
    /// The hub's image to share or copy, and its snapshots.
    image: Option<String>,
    snapshots: Vec<String>,
    /// The hub keys whose grants for the target account are checked.
    keys: Vec<String>,
    /// share-image's reencryptWith.
    reencrypt: Option<String>,
    /// Plain target account ids (share-image, revoke-share).
    accounts: Vec<String>,
    /// Target accounts with the ferry role (copy-image, distribute-image).
    targets: Vec<Target>,
    /// revoke-share: share-image's record; copy-image: share-image's output.
    share: Option<Value>,
}

impl Fixture {
    fn target_account(&self) -> Option<String> {
        self.targets
            .first()
            .map(|t| t.account_id.clone())
            .or_else(|| self.accounts.first().cloned())
    }

    fn input(&self, world: &World, scenario: &Scenario) -> Value {
        match scenario.workflow.as_str() {
            "migrate-instance" => {
                let web = self.web.as_ref().unwrap();
                json!({"sourceInstanceId": web.instance_id, "targetSubnetId": web.subnet_b,
                       "stopSource": true, "sourceAction": "stop",
                       "tags": {"change": "fault-matrix"}})
            }
            "share-image" => {
                let mut v = json!({"imageId": self.image, "accountIds": self.accounts});
                if let Some(key) = &self.reencrypt {
                    v["reencryptWith"] = json!(key);
                }
                v
            }
            "revoke-share" => json!({"record": self.share.as_ref().unwrap()["record"]}),
            "copy-image" => {
                let t = &self.targets[0];
                json!({"sourceImageId": self.image, "sourceRegion": world.region,
                       "targetAccountId": t.account_id, "targetRoleArn": t.role_arn,
                       "externalId": t.external_id, "targetKmsKeyId": t.key_arn,
                       "share": self.share})
            }
            "distribute-image" => json!({
                "share": {"imageId": self.image},
                "targets": self.targets.iter().map(|t| json!({"accountId": t.account_id,
                    "roleArn": t.role_arn, "externalId": t.external_id, "kmsKeyId": t.key_arn}))
                    .collect::<Vec<_>>(),
            }),
            other => panic!("no input for {other}"),
        }
    }
}

async fn image_snapshot_ids(config: &aws_config::SdkConfig, image: &str) -> Vec<String> {
    aws_sdk_ec2::Client::new(config)
        .describe_images()
        .image_ids(image)
        .send()
        .await
        .ok()
        .and_then(|o| o.images().first().cloned())
        .map(|i| {
            i.block_device_mappings()
                .iter()
                .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn build_fixture(world: &World, kind: &str, label: &str) -> Fixture {
    let mut fx = Fixture::default();
    match kind {
        "web-server" => {
            let web = web_server(world, label).await;
            fx.source_volumes = instance(world, &web.instance_id)
                .await
                .block_device_mappings()
                .iter()
                .filter_map(|m| m.ebs().and_then(|e| e.volume_id()).map(str::to_string))
                .collect();
            fx.web = Some(web);
        }
        "cmk-image" | "shared-cmk-image" | "shared-with-target" | "two-targets" => {
            let key = create_key(&world.config, &format!("fault matrix {label}"), None).await;
            let image = make_image(world, &world.config, label, Some(Some(&key))).await;
            fx.snapshots = image_snapshot_ids(&world.config, &image).await;
            fx.keys = vec![key.clone()];
            fx.image = Some(image.clone());
            match kind {
                "cmk-image" => fx.accounts = vec![fresh_account()],
                "shared-cmk-image" => {
                    let account = fresh_account();
                    let shared = world
                        .run(
                            "share-image",
                            &run_name(&format!("{label}-sh")),
                            &json!({"imageId": image, "accountIds": [account]}),
                        )
                        .await;
                    fx.share = Some(shared.assert_succeeded().clone());
                    fx.accounts = vec![account];
                }
                "shared-with-target" => {
                    let account = fresh_account();
                    let target =
                        target_account(world, &account, &format!("ext-{label}"), Some(&key)).await;
                    let shared = world
                        .run(
                            "share-image",
                            &run_name(&format!("{label}-sh")),
                            &json!({"imageId": image, "accountIds": [account]}),
                        )
                        .await;
                    fx.share = Some(shared.assert_succeeded().clone());
                    fx.targets = vec![target];
                }
                _ => {
                    for n in 0..2 {
                        let account = fresh_account();
                        fx.targets.push(
                            target_account(
                                world,
                                &account,
                                &format!("ext-{label}-{n}"),
                                Some(&key),
                            )
                            .await,
                        );
                    }
                }
            }
        }
        "ebs-image" => {
            let image = make_image(world, &world.config, label, Some(None)).await;
            fx.snapshots = image_snapshot_ids(&world.config, &image).await;
            let key = create_key(&world.config, &format!("fault matrix {label} copy"), None).await;
            fx.keys = vec![key.clone()];
            fx.reencrypt = Some(key);
            fx.image = Some(image);
            fx.accounts = vec![fresh_account()];
        }
        other => panic!("unknown fixture {other}"),
    }
    fx
}

// ---------------------------------------------------------------------------------------
// The world's call records
// ---------------------------------------------------------------------------------------

/// The highest call sequence number `current_seq` has seen (markers only grow).
static LAST_SEQ: AtomicU64 = AtomicU64::new(0);

/// The world's latest call sequence number (at least): a call of our own, then its record.
/// With cells running at the same time it may be another cell's later marker, which is
/// still after everything before our own call.
async fn current_seq(world: &World, sts: &aws_sdk_sts::Client) -> u64 {
    let since = LAST_SEQ.load(Ordering::SeqCst);
    sts.get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity (marker)");
    let v = world.control(
        "GET",
        &format!("/ferry-world/calls?service=sts&action=GetCallerIdentity&since={since}"),
        None,
    );
    v["calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["seq"].as_u64())
        .max()
        .inspect(|seq| {
            LAST_SEQ.fetch_max(*seq, Ordering::SeqCst);
        })
        .expect("the marker call is recorded")
}

/// One mutating call a scenario makes: by which function, in which state, where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CallSite {
    function: String,
    state: String,
    service: String,
    action: String,
    /// `hub`, or `target` (made with a role assumed in the target account).
    account: String,
}

struct Calibration {
    outcome: Outcome,
    calls: Vec<CallSite>,
    /// Names of the functions that called AWS in the run.
    functions: BTreeSet<String>,
}

/// The mutating calls the functions of `workflow` made in a window of the call records
/// (other lanes' calls are in it too, by other functions). A call under a role a function
/// assumed carries no caller: when it is made in the scenario's `target` account, it is
/// the workflow's function whose call came last (one run of the lane at a time).
fn call_sites(
    world: &World,
    workflow: &str,
    target: Option<&str>,
    calls: &[Value],
) -> (Vec<CallSite>, BTreeSet<String>) {
    let states = states_of(workflow);
    let ours: BTreeMap<&str, &str> = world
        .function_names
        .iter()
        .filter(|(id, _)| states.contains_key(*id))
        .map(|(id, name)| (name.as_str(), id.as_str()))
        .collect();
    let mut sites = Vec::new();
    let mut functions = BTreeSet::new();
    let mut last: Option<&str> = None;
    for c in calls {
        let function = match c["caller"].as_str() {
            Some(caller) if ours.contains_key(caller) => {
                functions.insert(caller.to_string());
                last = Some(ours[caller]);
                last
            }
            None if target.is_some() && c["account"].as_str() == target => last,
            _ => None,
        };
        let Some(function) = function else { continue };
        if !is_mutating_call(c) {
            continue;
        }
        let account = if c["account"].as_str() == Some(world.hub_account_id.as_str()) {
            "hub"
        } else {
            "target"
        };
        sites.push(CallSite {
            function: function.to_string(),
            state: states[function].clone(),
            service: c["service"].as_str().unwrap_or_default().to_string(),
            action: c["action"].as_str().unwrap_or_default().to_string(),
            account: account.to_string(),
        });
    }
    (sites, functions)
}

// ---------------------------------------------------------------------------------------
// Cells
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Expect {
    /// As the scenario ends without a fault (status, error).
    Like(String, Option<String>),
    /// SUCCEEDED or FAILED, either.
    Ended,
    /// SUCCEEDED, or FAILED with this error.
    Exactly(String),
}

#[derive(Debug, Clone)]
struct Cell {
    id: String,
    workflow: String,
    /// The fault kind's name, or `whole` / `clean`.
    kind: String,
    scenario: Scenario,
    /// The cell's own fault, on top of the scenario's trigger.
    fault: Option<FaultSpec>,
    fail_image: bool,
    same_name_twice: bool,
    exclusive: bool,
    expect: Expect,
    /// Functions (names) whose calls the cell faults, and those its runs call.
    writes: BTreeSet<String>,
    reads: BTreeSet<String>,
    name: String,
    bug: Option<String>,
    /// Fields that replace the fixture's input (a whole-workflow cell's `input`).
    input: Option<Value>,
}

impl Cell {
    fn trigger(&self) -> Trigger {
        self.scenario.trigger.clone().unwrap_or_default()
    }
    fn fails_images(&self) -> bool {
        self.fail_image || self.trigger().fail_image
    }
}

fn fail_pattern(name: &str) -> String {
    format!("*-{name}-*")
}

/// The world fault of `spec`, with `id`, scoped as it says.
fn fault_json(world: &World, spec: &FaultSpec, id: &str, target: Option<&str>) -> Value {
    let mut v = json!({
        "id": id, "service": spec.service, "action": spec.action, "count": spec.count,
        "mode": spec.mode.clone().unwrap_or_else(|| "before".to_string()),
        "message": format!("{} (injected by the fault matrix)", spec.code.clone().unwrap_or_else(|| "kill".into())),
    });
    if let Some(code) = &spec.code {
        v["code"] = json!(code);
    }
    if let Some(status) = spec.status {
        v["status"] = json!(status);
    }
    if let Some(function) = &spec.function {
        v["caller"] = json!(world.function_names[function]);
    }
    match spec.account.as_deref() {
        Some("hub") => v["account"] = json!(world.hub_account_id),
        Some("target") => v["account"] = json!(target.expect("a target account")),
        Some(other) => v["account"] = json!(other),
        None => {}
    }
    v
}

/// Every cell: one per call site of each scenario's `cellsFor` functions and fault kind
/// (a kind with no error for the call's service is skipped), then the whole-workflow cells.
fn generate(world: &World, m: &Matrix, calibrations: &BTreeMap<String, Calibration>) -> Vec<Cell> {
    let all_functions: BTreeSet<String> = world.function_names.values().cloned().collect();
    let revoke = world.function_names["RevokeShareFunction"].clone();
    let reads_of = |s: &Scenario| -> BTreeSet<String> {
        if s.workflow == "distribute-image" {
            return all_functions.clone();
        }
        let mut r = calibrations[&format!("{}/{}", s.workflow, s.name)]
            .functions
            .clone();
        if ["revoke-share", "copy-image"].contains(&s.workflow.as_str()) {
            r.insert(revoke.clone()); // a recovery run of revoke-share
        }
        r
    };
    let writes_of = |trigger: &Option<Trigger>, fault: &Option<FaultSpec>| -> BTreeSet<String> {
        trigger
            .iter()
            .filter_map(|t| t.fault.as_ref())
            .chain(fault.iter())
            .filter_map(|f| f.function.as_ref())
            .map(|f| world.function_names[f].clone())
            .collect()
    };
    let bug = |id: &str| m.bugs.iter().find(|b| b.cell == id).map(|b| b.bug.clone());
    let mut cells = Vec::new();
    for s in &m.scenarios {
        let Some(cal) = calibrations.get(&format!("{}/{}", s.workflow, s.name)) else {
            continue;
        };
        let mut seen = BTreeSet::new();
        for site in &cal.calls {
            if let Some(only) = &s.cells_for {
                if !only.contains(&site.function) {
                    continue;
                }
            }
            if !seen.insert(site.clone()) {
                continue;
            }
            for kind in &m.kinds {
                let code = kind.codes.get(&site.service);
                if kind.mode != "kill" && code.is_none() {
                    continue;
                }
                let fault = Some(FaultSpec {
                    service: site.service.clone(),
                    action: site.action.clone(),
                    function: (site.account == "hub").then(|| site.function.clone()),
                    account: Some(site.account.clone()),
                    code: code.map(|c| c.code.clone()),
                    status: code.map(|c| c.status),
                    mode: Some(kind.mode.clone()),
                    count: kind.count,
                });
                let id = format!(
                    "{}/{}/{}/{}/{}",
                    s.workflow, s.name, site.state, site.action, kind.name
                );
                cells.push(Cell {
                    writes: writes_of(&s.trigger, &fault),
                    reads: reads_of(s),
                    expect: if kind.absorbed {
                        Expect::Like(cal.outcome.status.clone(), cal.outcome.error.clone())
                    } else {
                        Expect::Ended
                    },
                    bug: bug(&id),
                    name: run_name(&format!("fm{:03}", cells.len())),
                    id,
                    workflow: s.workflow.clone(),
                    kind: kind.name.clone(),
                    scenario: s.clone(),
                    fault,
                    fail_image: false,
                    same_name_twice: false,
                    exclusive: false,
                    input: None,
                });
            }
        }
    }
    for w in &m.whole {
        let s = m
            .scenarios
            .iter()
            .find(|s| s.workflow == w.workflow && s.name == w.scenario)
            .unwrap();
        let id = format!("{}/{}", w.workflow, w.name);
        cells.push(Cell {
            writes: writes_of(&s.trigger, &w.what.fault),
            reads: reads_of(s),
            expect: Expect::Exactly(w.expect.clone()),
            bug: bug(&id),
            name: run_name(&format!("fm{:03}", cells.len())),
            id,
            workflow: w.workflow.clone(),
            kind: "whole".to_string(),
            scenario: s.clone(),
            fault: w.what.fault.clone(),
            fail_image: w.what.fail_image,
            same_name_twice: w.what.same_name_twice,
            exclusive: w.exclusive,
            input: w.input.clone(),
        });
    }
    cells
}

// ---------------------------------------------------------------------------------------
// Running a cell
// ---------------------------------------------------------------------------------------

/// What a cell found.
#[derive(Debug, Clone, Default)]
struct Outcome {
    id: String,
    workflow: String,
    kind: String,
    status: String,
    error: Option<String>,
    cause: Option<String>,
    /// Why the run did not survive (the source harmed, a rollback that failed, an outcome
    /// a transient fault changed, a fault that never fired...).
    wrong: Vec<String>,
    /// What the execution left behind beyond what its output reports.
    leaks: Vec<String>,
    notes: Vec<String>,
    seconds: f64,
    bug: Option<String>,
    /// What the final sweep checks (execution ARN, rule).
    sweep: Option<(String, Sweep)>,
}

impl Outcome {
    fn survived(&self) -> bool {
        self.wrong.is_empty()
    }
    fn leaked(&self) -> bool {
        !self.leaks.is_empty()
    }
    fn passed(&self) -> bool {
        self.survived() && !self.leaked()
    }
    fn describe(&self) -> String {
        let cause: String = self
            .cause
            .as_deref()
            .unwrap_or_default()
            .chars()
            .take(240)
            .collect();
        let mut s = format!(
            "{}: {} {} ({:.1} s)",
            self.id,
            self.status,
            self.error.as_deref().unwrap_or("-"),
            self.seconds
        );
        if !self.passed() && !cause.is_empty() {
            s += &format!("\n      cause: {cause}");
        }
        for w in &self.wrong {
            s += &format!("\n      not survived: {w}");
        }
        for l in &self.leaks {
            s += &format!("\n      leaked: {l}");
        }
        for n in &self.notes {
            s += &format!("\n      note: {n}");
        }
        s
    }
}

/// One read-write lock per function (by name): the world's faults are global, so a cell
/// that faults a function's calls must be the only one running that function.
struct Lanes {
    locks: BTreeMap<String, Arc<tokio::sync::RwLock<()>>>,
}

type Held = (
    Vec<tokio::sync::OwnedRwLockReadGuard<()>>,
    Vec<tokio::sync::OwnedRwLockWriteGuard<()>>,
);

impl Lanes {
    /// Read locks on the functions the cell's runs call, write locks on those it faults,
    /// taken in one global order (the names', ascending).
    async fn lock(&self, cell: &Cell) -> Held {
        let mut held: Held = (Vec::new(), Vec::new());
        for name in cell.reads.union(&cell.writes) {
            let Some(lock) = self.locks.get(name) else {
                continue;
            };
            if cell.writes.contains(name) {
                held.1.push(lock.clone().write_owned().await);
            } else {
                held.0.push(lock.clone().read_owned().await);
            }
        }
        held
    }
}

/// Waits (real time, at most `limit`) until the execution is no longer RUNNING.
async fn finish(world: &World, arn: &str, limit: Duration) -> Result<Execution, String> {
    let started = Instant::now();
    loop {
        let d = world
            .sfn()
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .map_err(|e| format!("DescribeExecution: {e:?}"))?;
        if d.status().as_str() != "RUNNING" {
            return Ok(Execution {
                arn: arn.to_string(),
                status: d.status().as_str().to_string(),
                output: d.output().and_then(|o| serde_json::from_str(o).ok()),
                error: d.error().map(str::to_string),
                cause: d.cause().map(str::to_string),
                simulated_seconds: 0,
            });
        }
        if started.elapsed() > limit {
            return Err(format!("still RUNNING after {limit:?} of real time"));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn start(world: &World, machine: &str, name: &str, input: &Value) -> Result<String, String> {
    world
        .sfn()
        .start_execution()
        .state_machine_arn(&world.state_machines[machine])
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .map(|o| o.execution_arn().to_string())
        .map_err(|e| format!("{e:?}"))
}

/// Runs one cell on its fixture and judges what the world looks like afterwards.
async fn run_cell(
    world: &World,
    sts: &aws_sdk_sts::Client,
    cell: &Cell,
    fx: &Fixture,
    fault_id: &str,
) -> Outcome {
    let started = Instant::now();
    let mut out = Outcome {
        id: cell.id.clone(),
        workflow: cell.workflow.clone(),
        kind: cell.kind.clone(),
        bug: cell.bug.clone(),
        ..Outcome::default()
    };
    let target = fx.target_account();
    let since = current_seq(world, sts).await;
    let mut armed = Vec::new();
    if let Some(t) = cell.trigger().fault {
        let id = format!("{fault_id}-trigger");
        world.control(
            "POST",
            "/ferry-world/faults",
            Some(&fault_json(world, &t, &id, target.as_deref())),
        );
    }
    if let Some(f) = &cell.fault {
        world.control(
            "POST",
            "/ferry-world/faults",
            Some(&fault_json(world, f, fault_id, target.as_deref())),
        );
        armed.push((f.clone(), fault_id.to_string()));
    }
    let mut input = fx.input(world, &cell.scenario);
    for (k, v) in cell.input.iter().flat_map(|i| i.as_object()).flatten() {
        input[k] = v.clone();
    }
    let machine = cell.workflow.as_str();
    let arn = match start(world, machine, &cell.name, &input).await {
        Ok(arn) => arn,
        Err(e) => {
            out.status = "NOT STARTED".into();
            out.wrong.push(format!("StartExecution: {e}"));
            return out;
        }
    };
    if cell.same_name_twice {
        match start(world, machine, &cell.name, &input).await {
            Ok(again) if again == arn => out
                .notes
                .push("the second StartExecution answered the same execution".into()),
            Ok(again) => out.wrong.push(format!(
                "the second StartExecution started another execution {again}"
            )),
            Err(e) if e.contains("ExecutionAlreadyExists") => out
                .notes
                .push("the second StartExecution was refused: ExecutionAlreadyExists".into()),
            Err(e) => out.wrong.push(format!("the second StartExecution: {e}")),
        }
    }
    let execution = match finish(world, &arn, EXECUTION_LIMIT).await {
        Ok(e) => e,
        Err(e) => {
            out.status = "RUNNING".into();
            out.wrong.push(e);
            return out;
        }
    };
    if cell.same_name_twice {
        match start(world, machine, &cell.name, &input).await {
            Ok(again) if again == arn => out
                .notes
                .push("a StartExecution after the end answered the same execution".into()),
            Ok(again) => out.wrong.push(format!(
                "a StartExecution after the end started another execution {again}"
            )),
            Err(e) if e.contains("ExecutionAlreadyExists") => out
                .notes
                .push("a StartExecution after the end was refused: ExecutionAlreadyExists".into()),
            Err(e) => out
                .wrong
                .push(format!("a StartExecution after the end: {e}")),
        }
        if let Ok(e) = finish(world, &arn, EXECUTION_LIMIT).await {
            if e.status != execution.status {
                out.wrong
                    .push(format!("the execution is {} on a second look", e.status));
            }
        }
    }
    out.status = execution.status.clone();
    out.error = execution.error.clone();
    out.cause = execution.cause.clone();

    // Did the cell's fault fire on its call?
    for (spec, id) in &armed {
        let calls = world.control(
            "GET",
            &format!(
                "/ferry-world/calls?service={}&action={}&since={since}",
                spec.service, spec.action
            ),
            None,
        );
        let fired: Vec<&Value> = calls["calls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["fault"].as_str() == Some(id.as_str()))
            .collect();
        if fired.is_empty() {
            out.wrong.push(format!(
                "the fault never fired on {}:{}",
                spec.service, spec.action
            ));
        } else if let Some(k) = fired.iter().find_map(|c| c.get("killed")) {
            out.notes.push(format!(
                "killed {} (pid {}) during {}",
                k["function"].as_str().unwrap_or("?"),
                k["pid"],
                spec.action
            ));
        }
    }

    match &cell.expect {
        Expect::Like(status, error) => {
            if &execution.status != status || &execution.error != error {
                out.wrong.push(format!(
                    "a transient fault changed the outcome: {} {}, without it {status} {}",
                    execution.status,
                    execution.error.as_deref().unwrap_or("-"),
                    error.as_deref().unwrap_or("-")
                ));
            }
        }
        Expect::Ended => {
            if !["SUCCEEDED", "FAILED"].contains(&execution.status.as_str()) {
                out.wrong
                    .push(format!("the execution is {}", execution.status));
            }
        }
        Expect::Exactly(want) => {
            let got = if execution.status == "SUCCEEDED" {
                "SUCCEEDED".to_string()
            } else {
                execution.error.clone().unwrap_or_default()
            };
            if &got != want {
                out.wrong.push(format!("expected {want}, got {got}"));
            }
        }
    }
    let mut f = Findings::default();
    match cell.workflow.as_str() {
        "migrate-instance" => check_migrate(world, fx, &execution, &input, &mut f).await,
        "share-image" => check_share(world, fx, &execution, &mut f).await,
        "revoke-share" => check_revoke(world, fx, &execution, &input, &mut f).await,
        "copy-image" => check_copy(world, fx, &execution, &mut f).await,
        "distribute-image" => check_distribute(world, fx, &execution, &mut f).await,
        other => panic!("no checks for {other}"),
    }
    out.wrong.extend(f.wrong);
    out.leaks.extend(f.leaks);
    out.notes.extend(f.notes);
    out.sweep = f.sweep.map(|s| (execution.arn.clone(), s));
    out.seconds = started.elapsed().as_secs_f64();
    out
}

// ---------------------------------------------------------------------------------------
// Checks on the world's state
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Findings {
    wrong: Vec<String>,
    leaks: Vec<String>,
    notes: Vec<String>,
    sweep: Option<Sweep>,
}

fn tag_filter(key: &str, value: &str) -> ec2t::Filter {
    ec2t::Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// Images the account of `config` owns with the tag, not deregistered.
async fn live_images(config: &aws_config::SdkConfig, key: &str, value: &str) -> Vec<ec2t::Image> {
    aws_sdk_ec2::Client::new(config)
        .describe_images()
        .owners("self")
        .filters(tag_filter(key, value))
        .send()
        .await
        .expect("DescribeImages")
        .images()
        .iter()
        .filter(|i| i.state().map(|s| s.as_str()) != Some("deregistered"))
        .cloned()
        .collect()
}

async fn tagged_snapshots(config: &aws_config::SdkConfig, key: &str, value: &str) -> Vec<String> {
    aws_sdk_ec2::Client::new(config)
        .describe_snapshots()
        .owner_ids("self")
        .filters(tag_filter(key, value))
        .send()
        .await
        .expect("DescribeSnapshots")
        .snapshots()
        .iter()
        .filter_map(|s| s.snapshot_id().map(str::to_string))
        .collect()
}

fn ids(images: &[ec2t::Image]) -> Vec<String> {
    images
        .iter()
        .filter_map(|i| i.image_id().map(str::to_string))
        .collect()
}

/// Accounts with a launch permission on the image (as its owner, the hub, sees it).
async fn launch_users(world: &World, image: &str) -> Vec<String> {
    match world
        .ec2()
        .describe_image_attribute()
        .image_id(image)
        .attribute(ec2t::ImageAttributeName::LaunchPermission)
        .send()
        .await
    {
        Ok(o) => o
            .launch_permissions()
            .iter()
            .filter_map(|p| p.user_id().map(str::to_string))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Accounts with createVolumePermission on the snapshot.
async fn volume_users(world: &World, snapshot: &str) -> Vec<String> {
    match world
        .ec2()
        .describe_snapshot_attribute()
        .snapshot_id(snapshot)
        .attribute(ec2t::SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
    {
        Ok(o) => o
            .create_volume_permissions()
            .iter()
            .filter_map(|p| p.user_id().map(str::to_string))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// (grant id, name) of the grants on the hub's `key` whose grantee is in `account`.
async fn grants_for(world: &World, key: &str, account: &str) -> Vec<(String, String)> {
    grants(world, key)
        .await
        .iter()
        .filter(|g| {
            g.grantee_principal()
                .is_some_and(|p| p.contains(&format!(":{account}:")))
        })
        .map(|g| {
            (
                g.grant_id().unwrap_or_default().to_string(),
                g.name().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Everything the hub shares with `account` on `image`, its `snapshots` and `keys`:
/// ("launch" | "volume" | "grant", id).
async fn shared_with(
    world: &World,
    image: &str,
    snapshots: &[String],
    keys: &[String],
    account: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if launch_users(world, image)
        .await
        .iter()
        .any(|u| u == account)
    {
        out.push(("launch".to_string(), image.to_string()));
    }
    for s in snapshots {
        if volume_users(world, s).await.iter().any(|u| u == account) {
            out.push(("volume".to_string(), s.clone()));
        }
    }
    for k in keys {
        for (id, name) in grants_for(world, k, account).await {
            out.push(("grant".to_string(), format!("{id} ({name}) on {k}")));
        }
    }
    out
}

/// The same, as a record (share-image's output.record) lists it.
fn in_record(record: &Value, account: &str, what: &(String, String)) -> bool {
    let list = |k: &str| record[k].as_array().cloned().unwrap_or_default();
    match what.0.as_str() {
        "launch" => {
            record["imageId"] == what.1.as_str()
                && list("launchPermissions")
                    .iter()
                    .any(|p| p["userId"] == account)
        }
        "volume" => list("snapshotPermissions")
            .iter()
            .any(|p| p["snapshotId"] == what.1.as_str() && p["userId"] == account),
        _ => list("grants").iter().any(|g| {
            g["granteeAccountId"] == account
                && g["grantId"]
                    .as_str()
                    .is_some_and(|id| what.1.starts_with(&format!("{id} ")))
        }),
    }
}

/// The error a rollback/cleanup raised, from the input of the workflow's Fail state.
async fn rollback_error(world: &World, arn: &str, fail_state: &str, key: &str) -> Option<Value> {
    world
        .state_input(arn, fail_state)
        .await
        .and_then(|i| i.get(key).cloned())
        .filter(|v| !v.is_null())
}

async fn wait_source(world: &World, id: &str, wanted: &[&str]) -> String {
    let started = Instant::now();
    loop {
        let s = state(&instance(world, id).await);
        if wanted.contains(&s.as_str()) || started.elapsed() > Duration::from_secs(20) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the final sweep checks for one execution: the hub's instances, images, snapshots
/// and volumes tagged with it (one search for all cells at the end: a tag search scans
/// every resource of the world, and the world is one process).
#[derive(Debug, Clone)]
enum Sweep {
    /// migrate-instance: `new_instance` (SUCCEEDED) is the one instance that may run and
    /// own volumes; images and snapshots only if in `allowed` (leftovers, a kept image).
    Migrate {
        new_instance: Option<String>,
        allowed: BTreeSet<String>,
    },
    /// share-image: the re-encrypted copy the record shares and its snapshots (SUCCEEDED).
    Share { allowed: BTreeSet<String> },
}

/// The hub's resources tagged `ferry:execution`, by execution ARN.
#[derive(Default)]
struct Found {
    /// (instance id, state)
    instances: BTreeMap<String, Vec<(String, String)>>,
    images: BTreeMap<String, Vec<String>>,
    snapshots: BTreeMap<String, Vec<String>>,
    /// (volume id, attached to)
    volumes: BTreeMap<String, Vec<(String, Option<String>)>>,
}

fn execution_tag(tags: &[ec2t::Tag]) -> Option<String> {
    tags.iter()
        .find(|t| t.key() == Some(ferry_core::tags::TAG_EXECUTION))
        .and_then(|t| t.value().map(str::to_string))
}

async fn find_tagged(world: &World) -> Found {
    let ec2 = world.ec2();
    let tagged = || {
        ec2t::Filter::builder()
            .name("tag-key")
            .values(ferry_core::tags::TAG_EXECUTION)
            .build()
    };
    let mut found = Found::default();
    let reservations = ec2
        .describe_instances()
        .filters(tagged())
        .send()
        .await
        .expect("DescribeInstances (sweep)");
    for i in reservations
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
    {
        if let Some(arn) = execution_tag(i.tags()) {
            found
                .instances
                .entry(arn)
                .or_default()
                .push((i.instance_id().unwrap_or_default().to_string(), state(i)));
        }
    }
    let images = ec2
        .describe_images()
        .owners("self")
        .filters(tagged())
        .send()
        .await
        .expect("DescribeImages (sweep)");
    for i in images.images() {
        if i.state().map(|s| s.as_str()) == Some("deregistered") {
            continue;
        }
        if let Some(arn) = execution_tag(i.tags()) {
            found
                .images
                .entry(arn)
                .or_default()
                .push(i.image_id().unwrap_or_default().to_string());
        }
    }
    let snapshots = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(tagged())
        .send()
        .await
        .expect("DescribeSnapshots (sweep)");
    for sn in snapshots.snapshots() {
        if let Some(arn) = execution_tag(sn.tags()) {
            found
                .snapshots
                .entry(arn)
                .or_default()
                .push(sn.snapshot_id().unwrap_or_default().to_string());
        }
    }
    let volumes = ec2
        .describe_volumes()
        .filters(tagged())
        .send()
        .await
        .expect("DescribeVolumes (sweep)");
    for v in volumes.volumes() {
        if matches!(v.state().map(|s| s.as_str()), Some("deleted" | "deleting")) {
            continue;
        }
        if let Some(arn) = execution_tag(v.tags()) {
            found.volumes.entry(arn).or_default().push((
                v.volume_id().unwrap_or_default().to_string(),
                v.attachments()
                    .first()
                    .and_then(|a| a.instance_id())
                    .map(str::to_string),
            ));
        }
    }
    found
}

/// What the sweep found of one execution beyond what it may leave.
fn swept(found: &Found, arn: &str, sweep: &Sweep) -> Vec<String> {
    let mut leaks = Vec::new();
    let none = Vec::new();
    let (new_instance, allowed) = match sweep {
        Sweep::Migrate {
            new_instance,
            allowed,
        } => (new_instance.as_deref(), allowed),
        Sweep::Share { allowed } => (None, allowed),
    };
    let alive: Vec<&String> = found
        .instances
        .get(arn)
        .unwrap_or(&none)
        .iter()
        .filter(|(id, s)| {
            !matches!(s.as_str(), "terminated" | "shutting-down")
                && Some(id.as_str()) != new_instance
        })
        .map(|(id, _)| id)
        .collect();
    if !alive.is_empty() {
        leaks.push(format!("instances left running: {alive:?}"));
    }
    let images: Vec<&String> = found
        .images
        .get(arn)
        .into_iter()
        .flatten()
        .filter(|i| !allowed.contains(*i))
        .collect();
    if !images.is_empty() {
        leaks.push(format!("images left (not in the output): {images:?}"));
    }
    let snapshots: Vec<&String> = found
        .snapshots
        .get(arn)
        .into_iter()
        .flatten()
        .filter(|i| !allowed.contains(*i))
        .collect();
    if !snapshots.is_empty() {
        leaks.push(format!("snapshots left (not in the output): {snapshots:?}"));
    }
    let volumes: Vec<&(String, Option<String>)> = found
        .volumes
        .get(arn)
        .into_iter()
        .flatten()
        .filter(|(_, on)| on.is_none() || on.as_deref() != new_instance)
        .collect();
    if !volumes.is_empty() {
        leaks.push(format!("volumes left (id, attached to): {volumes:?}"));
    }
    leaks
}

async fn check_migrate(
    world: &World,
    fx: &Fixture,
    ex: &Execution,
    input: &Value,
    f: &mut Findings,
) {
    let web = fx.web.as_ref().unwrap();
    let ec2 = world.ec2();
    let eip_owner = || async {
        ec2.describe_addresses()
            .allocation_ids(&web.allocation_id)
            .send()
            .await
            .ok()
            .and_then(|o| {
                o.addresses()
                    .first()
                    .and_then(|a| a.instance_id().map(str::to_string))
            })
    };
    // The source's volumes: still there, attached to the source.
    for v in &fx.source_volumes {
        let attached = ec2
            .describe_volumes()
            .volume_ids(v)
            .send()
            .await
            .ok()
            .and_then(|o| o.volumes().first().cloned())
            .and_then(|v| {
                v.attachments()
                    .first()
                    .and_then(|a| a.instance_id().map(str::to_string))
            });
        if attached.as_deref() != Some(web.instance_id.as_str()) {
            f.wrong.push(format!(
                "the source's volume {v} is attached to {attached:?}, not the source"
            ));
        }
    }
    match ex.status.as_str() {
        "SUCCEEDED" => {
            let out = ex.output.clone().unwrap_or_default();
            let new_id = out["newInstanceId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mut allowed: BTreeSet<String> = out["leftovers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            if !allowed.is_empty() {
                f.notes.push(format!("leftovers reported: {allowed:?}"));
            }
            if out["imageKept"] == true {
                if let Some(image) = out["imageId"].as_str() {
                    allowed.insert(image.to_string());
                    allowed.extend(image_snapshot_ids(&world.config, image).await);
                }
            }
            let new = state(&instance(world, &new_id).await);
            if new != "running" {
                f.wrong.push(format!("the new instance {new_id} is {new}"));
            }
            let moved = out["elasticIpsMoved"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            let owner = eip_owner().await;
            if moved && owner.as_deref() != Some(new_id.as_str()) {
                f.wrong.push(format!(
                    "the Elastic IP is on {owner:?}, not the new instance"
                ));
            }
            // As the request left it: stopped by sourceAction stop, or by stopSource.
            let stopped = input["sourceAction"] == "stop" || input["stopSource"] == true;
            let wanted = if stopped { "stopped" } else { "running" };
            let s = wait_source(world, &web.instance_id, &[wanted]).await;
            if s != wanted && !(stopped && s == "stopping") {
                f.wrong
                    .push(format!("the source is {s}, the request leaves it {wanted}"));
            }
            f.sweep = Some(Sweep::Migrate {
                new_instance: Some(new_id),
                allowed,
            });
        }
        _ => {
            if let Some(e) =
                rollback_error(world, &ex.arn, "MigrationFailed", "rollbackError").await
            {
                f.wrong.push(format!("the rollback failed: {e}"));
            }
            let s = wait_source(world, &web.instance_id, &["running"]).await;
            if s != "running" {
                f.wrong
                    .push(format!("the source is {s}, it was running before"));
            }
            let owner = eip_owner().await;
            if owner.as_deref() != Some(web.instance_id.as_str()) {
                f.wrong
                    .push(format!("the Elastic IP is on {owner:?}, not the source"));
            }
            f.sweep = Some(Sweep::Migrate {
                new_instance: None,
                allowed: BTreeSet::new(),
            });
        }
    }
}

async fn source_image_intact(world: &World, fx: &Fixture, f: &mut Findings) {
    let image = fx.image.as_deref().unwrap();
    let s = image_state(&world.config, image).await;
    if s.as_deref() != Some("available") {
        f.wrong
            .push(format!("the source image {image} is {s:?}, not available"));
    }
}

async fn check_share(world: &World, fx: &Fixture, ex: &Execution, f: &mut Findings) {
    source_image_intact(world, fx, f).await;
    let image = fx.image.as_deref().unwrap();
    let account = &fx.accounts[0];
    let on_source = shared_with(world, image, &fx.snapshots, &fx.keys, account).await;
    match ex.status.as_str() {
        "SUCCEEDED" => {
            let record = ex.output.clone().unwrap_or_default()["record"].clone();
            let shared = record["imageId"].as_str().unwrap_or_default().to_string();
            let mut allowed = BTreeSet::new();
            if fx.reencrypt.is_some() {
                let kept = image_snapshot_ids(&world.config, &shared).await;
                for what in &on_source {
                    if what.0 != "grant" {
                        f.leaks.push(format!(
                            "the original {image} is shared ({} {}) though the copy was",
                            what.0, what.1
                        ));
                    }
                }
                for what in shared_with(world, &shared, &kept, &fx.keys, account)
                    .await
                    .iter()
                    .filter(|w| !in_record(&record, account, w))
                {
                    f.leaks
                        .push(format!("shared beyond the record: {} {}", what.0, what.1));
                }
                allowed.insert(shared);
                allowed.extend(kept);
            } else {
                for what in on_source.iter().filter(|w| !in_record(&record, account, w)) {
                    f.leaks
                        .push(format!("shared beyond the record: {} {}", what.0, what.1));
                }
            }
            f.sweep = Some(Sweep::Share { allowed });
        }
        _ => {
            if let Some(e) = rollback_error(world, &ex.arn, "ShareFailed", "cleanupError").await {
                f.wrong.push(format!("the cleanup failed: {e}"));
            }
            for what in &on_source {
                f.leaks.push(format!(
                    "still shared with {account} after the failure: {} {}",
                    what.0, what.1
                ));
            }
            f.sweep = Some(Sweep::Share {
                allowed: BTreeSet::new(),
            });
        }
    }
}

/// Runs revoke-share with `input` once more; what is then still shared.
async fn revoke_again(world: &World, input: &Value, label: &str) -> Result<(), String> {
    let arn = start(world, "revoke-share", &run_name(label), input).await?;
    let e = finish(world, &arn, EXECUTION_LIMIT).await?;
    if e.status == "SUCCEEDED" {
        Ok(())
    } else {
        Err(format!("{} {:?}", e.status, e.error))
    }
}

async fn check_revoke(
    world: &World,
    fx: &Fixture,
    ex: &Execution,
    input: &Value,
    f: &mut Findings,
) {
    source_image_intact(world, fx, f).await;
    let image = fx.image.as_deref().unwrap();
    let account = &fx.accounts[0];
    if ex.status != "SUCCEEDED" {
        match revoke_again(world, input, "fm-again").await {
            Ok(()) => f.notes.push(format!(
                "{} {}: a second revoke-share with the same input succeeded",
                ex.status,
                ex.error.as_deref().unwrap_or("-")
            )),
            Err(e) => f.wrong.push(format!(
                "the revoke failed, and so did running it again: {e}"
            )),
        }
    }
    for what in shared_with(world, image, &fx.snapshots, &fx.keys, account).await {
        f.leaks.push(format!(
            "still shared with {account} after the revoke: {} {}",
            what.0, what.1
        ));
    }
}

async fn check_copy(world: &World, fx: &Fixture, ex: &Execution, f: &mut Findings) {
    source_image_intact(world, fx, f).await;
    let image = fx.image.as_deref().unwrap();
    let t = &fx.targets[0];
    let copies = live_images(&t.config, ferry_core::tags::TAG_EXECUTION, &ex.arn).await;
    let snapshots = tagged_snapshots(&t.config, ferry_core::tags::TAG_EXECUTION, &ex.arn).await;
    match ex.status.as_str() {
        "SUCCEEDED" => {
            let out = ex.output.clone().unwrap_or_default();
            let copy = out["imageId"].as_str().unwrap_or_default().to_string();
            for id in ids(&copies).iter().filter(|i| **i != copy) {
                f.leaks.push(format!(
                    "copy {id} in {} besides the output's",
                    t.account_id
                ));
            }
            let state = image_state(&t.config, &copy).await;
            if state.as_deref() != Some("available") {
                f.wrong.push(format!("the copy {copy} is {state:?}"));
            }
            let kept = image_snapshot_ids(&t.config, &copy).await;
            for s in snapshots.iter().filter(|s| !kept.contains(s)) {
                f.leaks
                    .push(format!("snapshot {s} in the target not of the copy"));
            }
            let shared = shared_with(world, image, &fx.snapshots, &fx.keys, &t.account_id).await;
            if out["revoked"] == true {
                for what in &shared {
                    f.leaks.push(format!(
                        "still shared though revoked: {} {}",
                        what.0, what.1
                    ));
                }
            } else if out["revokeRequested"] == false {
                f.notes.push("no revoke asked".into());
            } else {
                let still = &out["stillShared"];
                for what in shared
                    .iter()
                    .filter(|w| !in_record(&still["record"], &t.account_id, w))
                {
                    f.leaks
                        .push(format!("shared beyond stillShared: {} {}", what.0, what.1));
                }
                f.notes.push(format!(
                    "revoked false ({}), stillShared reported",
                    out["revokeError"]["Error"].as_str().unwrap_or("?")
                ));
                if let Err(e) = revoke_again(world, still, "fm-still").await {
                    f.wrong
                        .push(format!("revoke-share of stillShared failed: {e}"));
                } else {
                    for what in
                        shared_with(world, image, &fx.snapshots, &fx.keys, &t.account_id).await
                    {
                        f.wrong.push(format!(
                            "revoke-share of stillShared left: {} {}",
                            what.0, what.1
                        ));
                    }
                }
            }
        }
        _ => {
            if let Some(e) = rollback_error(world, &ex.arn, "CopyFailed", "rollbackError").await {
                f.wrong.push(format!("the rollback failed: {e}"));
            }
            if !copies.is_empty() {
                f.leaks.push(format!(
                    "copies left in {}: {:?}",
                    t.account_id,
                    ids(&copies)
                ));
            }
            if !snapshots.is_empty() {
                f.leaks
                    .push(format!("snapshots left in {}: {snapshots:?}", t.account_id));
            }
        }
    }
}

async fn check_distribute(world: &World, fx: &Fixture, ex: &Execution, f: &mut Findings) {
    source_image_intact(world, fx, f).await;
    let out = ex.output.clone().unwrap_or_default();
    let results = out["results"].as_array().cloned().unwrap_or_default();
    for t in &fx.targets {
        let copies = live_images(&t.config, ferry_core::tags::TAG_WORKFLOW, "copy-image").await;
        let snapshots =
            tagged_snapshots(&t.config, ferry_core::tags::TAG_WORKFLOW, "copy-image").await;
        let result = results
            .iter()
            .find(|r| r["accountId"] == t.account_id.as_str());
        match result.map(|r| (r["status"].as_str().unwrap_or_default(), r)) {
            Some(("SUCCEEDED", r)) => {
                let copy = r["imageId"].as_str().unwrap_or_default();
                for id in ids(&copies).iter().filter(|i| *i != copy) {
                    f.leaks.push(format!(
                        "copy {id} in {} besides the reported one",
                        t.account_id
                    ));
                }
                let kept = image_snapshot_ids(&t.config, copy).await;
                for s in snapshots.iter().filter(|s| !kept.contains(s)) {
                    f.leaks
                        .push(format!("snapshot {s} in {} not of the copy", t.account_id));
                }
            }
            other => {
                f.notes.push(format!(
                    "target {} reported {}",
                    t.account_id,
                    other
                        .map(|(s, r)| format!("{s} {}", r["error"].as_str().unwrap_or("-")))
                        .unwrap_or_else(|| "nothing".into())
                ));
                if !copies.is_empty() {
                    f.leaks.push(format!(
                        "copies left in failed target {}: {:?}",
                        t.account_id,
                        ids(&copies)
                    ));
                }
                if !snapshots.is_empty() {
                    f.leaks.push(format!(
                        "snapshots left in failed target {}: {snapshots:?}",
                        t.account_id
                    ));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------------------

async fn run_limited<T, F, Fut>(items: Vec<T>, n: usize, f: F) -> Vec<Fut::Output>
where
    T: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let limit = Arc::new(tokio::sync::Semaphore::new(n));
    let mut set = tokio::task::JoinSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let fut = f(item);
        let limit = limit.clone();
        set.spawn(async move {
            let _p = limit.acquire_owned().await.unwrap();
            (i, fut.await)
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("a task panicked"));
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, o)| o).collect()
}

fn armed_faults(world: &World) -> Vec<Value> {
    world.control("GET", "/ferry-world/faults", None)["faults"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Puts the world back (no fault armed, no image made to fail) however the test ends.
struct Restore(Arc<World>);

impl Drop for Restore {
    fn drop(&mut self) {
        self.0.clear_faults();
        self.0.set_config(json!({"failImages": []}));
    }
}

/// The workflows whose runs share functions run in one lane of the calibration: copy-image
/// runs revoke-share's function.
fn lane(workflow: &str) -> &str {
    match workflow {
        "copy-image" => "revoke-share",
        w => w,
    }
}

/// Runs `cell` (a scenario without a fault of the matrix) and reads the mutating calls
/// ferry made in it from the call records.
async fn calibrate(
    world: &World,
    sts: &aws_sdk_sts::Client,
    cell: &Cell,
    fx: &Fixture,
) -> Calibration {
    let from = current_seq(world, sts).await;
    let id = format!("cal-{}-{}", cell.workflow, cell.scenario.name);
    let outcome = run_cell(world, sts, cell, fx, &id).await;
    let to = current_seq(world, sts).await;
    let calls: Vec<Value> = world.control("GET", &format!("/ferry-world/calls?since={from}"), None)
        ["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["seq"].as_u64().unwrap_or(0) < to)
        .collect();
    let target = fx.target_account();
    let (calls, functions) = call_sites(world, &cell.workflow, target.as_deref(), &calls);
    Calibration {
        outcome,
        calls,
        functions,
    }
}

fn calibration_cell(m: &Matrix, s: &Scenario) -> Cell {
    let id = format!("{}/{}/clean", s.workflow, s.name);
    Cell {
        bug: m.bugs.iter().find(|b| b.cell == id).map(|b| b.bug.clone()),
        id,
        workflow: s.workflow.clone(),
        kind: "clean".into(),
        scenario: s.clone(),
        fault: None,
        fail_image: false,
        same_name_twice: false,
        exclusive: false,
        expect: Expect::Ended,
        writes: BTreeSet::new(),
        reads: BTreeSet::new(),
        name: run_name("fm-cal"),
        input: None,
    }
}

/// Runs every cell of the matrix; prints one line per workflow and the summary
/// `N faults, N survived, N leaked`; fails naming every cell that did not survive or
/// leaked, and every cell marked `bug` (listed apart).
///
/// Order: the scenarios' calibration runs (one lane per workflow, lanes at the same time);
/// then the migrate-instance cells, whose fixtures need no ferry run, start at once, in
/// their own lane, while the fixtures of the other cells are built (share-image runs
/// among them: no cell faults share-image's functions yet); then the other cells; last,
/// one at a time, the cells that leave faults armed.
#[tokio::test(flavor = "multi_thread")]
async fn every_fault_is_survived_without_a_leak() {
    let _guard = SERIAL.lock().await;
    let started = Instant::now();
    let m = matrix();
    let world = Arc::new(World::connect().await);
    world.clear_faults();
    world.set_config(json!({"failImages": [], "instanceTypeOfferings": {}}));
    let _restore = Restore(world.clone());
    let sts = aws_sdk_sts::Client::new(&world.config);
    let only = std::env::var("FERRY_FAULT_MATRIX_ONLY").ok();
    let verbose = std::env::var("FERRY_FAULT_MATRIX_VERBOSE").is_ok_and(|v| v == "1");
    let concurrency = std::env::var("FERRY_FAULT_MATRIX_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(CONCURRENCY);
    let mut problems = Vec::new();

    // 1. Calibration: each scenario that has cells, once, without a fault of the matrix.
    let scenarios: Vec<Scenario> = m
        .scenarios
        .iter()
        .filter(|s| s.cells_for.as_ref().is_none_or(|f| !f.is_empty()))
        .cloned()
        .collect();
    let fixtures: Vec<Fixture> = run_limited(
        scenarios.iter().map(|s| s.fixture.clone()).collect(),
        FIXTURE_CONCURRENCY,
        |kind| {
            let world = world.clone();
            async move { build_fixture(&world, &kind, &run_name("fm-cal")).await }
        },
    )
    .await;
    let cal_cells: Vec<Cell> = scenarios.iter().map(|s| calibration_cell(&m, s)).collect();
    world.set_config(
        json!({"failImages": cal_cells.iter().filter(|c| c.fails_images())
        .map(|c| fail_pattern(&c.name)).collect::<Vec<_>>()}),
    );
    let mut lanes: BTreeMap<String, Vec<(Cell, Fixture)>> = BTreeMap::new();
    for (cell, fx) in cal_cells.into_iter().zip(fixtures) {
        lanes
            .entry(lane(&cell.workflow).to_string())
            .or_default()
            .push((cell, fx));
    }
    let mut set = tokio::task::JoinSet::new();
    for (_, runs) in lanes {
        let (world, sts) = (world.clone(), sts.clone());
        set.spawn(async move {
            let mut out = Vec::new();
            for (cell, fx) in runs {
                let c = calibrate(&world, &sts, &cell, &fx).await;
                out.push((cell, c));
            }
            out
        });
    }
    let mut calibrations = BTreeMap::new();
    let mut cal_outcomes = Vec::new();
    while let Some(done) = set.join_next().await {
        for (cell, c) in done.expect("a calibration lane panicked") {
            let s = &cell.scenario;
            let id = format!("{}/{}", s.workflow, s.name);
            if verbose || !c.outcome.passed() || c.outcome.status != "SUCCEEDED" {
                println!(
                    "calibration {} {}",
                    c.outcome.describe(),
                    c.outcome.cause.as_deref().unwrap_or_default()
                );
            }
            println!(
                "{id}: {} {} without a fault; mutating calls: {}",
                c.outcome.status,
                c.outcome.error.as_deref().unwrap_or(""),
                c.calls
                    .iter()
                    .map(|c| format!(
                        "{}:{}{}",
                        c.state,
                        c.action,
                        if c.account == "hub" { "" } else { "@target" }
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut o = c.outcome.clone();
            o.bug = cell.bug.clone();
            cal_outcomes.push(o);
            if !c.calls.iter().any(|site| {
                s.cells_for
                    .as_ref()
                    .is_none_or(|only| only.contains(&site.function))
            }) {
                problems.push(format!(
                    "  {id}: its calibration run made no mutating call of {:?}: no cells",
                    s.cells_for
                ));
            }
            calibrations.insert(id, c);
        }
    }
    world.set_config(json!({"failImages": []}));
    let left = armed_faults(&world);
    if !left.is_empty() {
        problems.push(format!("  calibration: a trigger never fired: {left:?}"));
        world.clear_faults();
    }
    let calibrated = started.elapsed();

    // 2. The cells, each with a fixture of its own.
    let mut cells = generate(&world, &m, &calibrations);
    if let Some(only) = &only {
        cells.retain(|c| c.id.contains(only.as_str()));
    }
    world.set_config(
        json!({"failImages": cells.iter().filter(|c| c.fails_images())
        .map(|c| fail_pattern(&c.name)).collect::<Vec<_>>()}),
    );
    let lanes = Arc::new(Lanes {
        locks: world
            .function_names
            .values()
            .map(|n| (n.clone(), Arc::new(tokio::sync::RwLock::new(()))))
            .collect(),
    });
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let web_servers = Arc::new(tokio::sync::Semaphore::new(1));
    let spawn =
        |set: &mut tokio::task::JoinSet<Outcome>, i: usize, cell: &Cell, fx: Option<Fixture>| {
            let (world, sts, lanes, permits, web_servers) = (
                world.clone(),
                sts.clone(),
                lanes.clone(),
                permits.clone(),
                web_servers.clone(),
            );
            let cell = cell.clone();
            set.spawn(async move {
                let fx = match fx {
                    Some(fx) => fx,
                    None => {
                        let _one = web_servers.acquire_owned().await.unwrap();
                        let label = run_name(&format!("fm{i:03}"));
                        build_fixture(&world, &cell.scenario.fixture, &label).await
                    }
                };
                let _locks = lanes.lock(&cell).await;
                let _permit = permits.acquire_owned().await.unwrap();
                run_cell(&world, &sts, &cell, &fx, &format!("fm-{i:03}")).await
            })
        };
    let migrate = |c: &Cell| c.workflow == "migrate-instance";
    let mut set = tokio::task::JoinSet::new();
    for (i, cell) in cells.iter().enumerate() {
        if migrate(cell) && !cell.exclusive {
            spawn(&mut set, i, cell, None);
        }
    }
    // Meanwhile, the fixtures of the others (share-image runs for revoke and copy cells).
    let others: Vec<usize> = (0..cells.len()).filter(|i| !migrate(&cells[*i])).collect();
    let built: Vec<Fixture> = run_limited(
        others
            .iter()
            .map(|i| (*i, cells[*i].scenario.fixture.clone()))
            .collect(),
        FIXTURE_CONCURRENCY,
        |(i, kind)| {
            let world = world.clone();
            async move { build_fixture(&world, &kind, &run_name(&format!("fm{i:03}"))).await }
        },
    )
    .await;
    let fixtures_took = started.elapsed() - calibrated;
    let mut prebuilt: BTreeMap<usize, Fixture> = others.into_iter().zip(built).collect();
    for (i, cell) in cells.iter().enumerate() {
        if !migrate(cell) && !cell.exclusive {
            spawn(&mut set, i, cell, prebuilt.remove(&i));
        }
    }
    let mut outcomes = Vec::new();
    while let Some(done) = set.join_next().await {
        match done {
            Ok(o) => outcomes.push(o),
            Err(e) => problems.push(format!("  a cell panicked: {e}")),
        }
    }
    let left = armed_faults(&world);
    if !left.is_empty() {
        problems.push(format!(
            "  faults left armed after the cells (never fired): {}",
            left.iter()
                .map(|f| format!("{} {}:{}", f["id"], f["service"], f["action"]))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        world.clear_faults();
    }

    // 3. The cells that leave faults armed: alone, one after the other.
    for (i, cell) in cells.iter().enumerate() {
        if !cell.exclusive {
            continue;
        }
        let fx = match prebuilt.remove(&i) {
            Some(fx) => fx,
            None => {
                build_fixture(
                    &world,
                    &cell.scenario.fixture,
                    &run_name(&format!("fm{i:03}")),
                )
                .await
            }
        };
        outcomes.push(run_cell(&world, &sts, cell, &fx, &format!("fm-{i:03}")).await);
        world.clear_faults();
    }
    world.set_config(json!({"failImages": []}));

    // 4. What the executions left in the hub, found in one search.
    let found = find_tagged(&world).await;
    for o in outcomes.iter_mut().chain(cal_outcomes.iter_mut()) {
        if let Some((arn, sweep)) = &o.sweep {
            let leaks = swept(&found, arn, sweep);
            o.leaks.extend(leaks);
        }
    }
    for o in &cal_outcomes {
        if !o.passed() && o.bug.is_none() {
            problems.push(format!("  calibration {}", o.describe()));
        }
    }
    let cells_took = started.elapsed() - calibrated;

    // 5. The report.
    outcomes.sort_by(|a, b| a.id.cmp(&b.id));
    if verbose {
        for o in &outcomes {
            println!("{}", o.describe());
        }
    }
    for workflow in WORKFLOWS {
        let of: Vec<&Outcome> = outcomes.iter().filter(|o| o.workflow == workflow).collect();
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for o in &of {
            *kinds.entry(o.kind.as_str()).or_default() += 1;
        }
        println!(
            "{workflow}: {} cells ({}), {} survived, {} leaked",
            of.len(),
            kinds
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            of.iter().filter(|o| o.survived()).count(),
            of.iter().filter(|o| o.leaked()).count()
        );
    }
    println!(
        "{} faults, {} survived, {} leaked",
        outcomes.len(),
        outcomes.iter().filter(|o| o.survived()).count(),
        outcomes.iter().filter(|o| o.leaked()).count()
    );
    println!(
        "(calibration {:.1} s, other fixtures {:.1} s while the first cells ran, cells {:.1} s, total {:.1} s; {concurrency} at a time)",
        calibrated.as_secs_f64(),
        fixtures_took.as_secs_f64(),
        cells_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    let mut bugs = Vec::new();
    for o in &outcomes {
        match (&o.bug, o.passed()) {
            (Some(bug), true) => bugs.push(format!(
                "  {}: now survives without a leak: remove its \"bug\" mark (was: {bug})",
                o.id
            )),
            (Some(bug), false) => bugs.push(format!("  {}\n    bug: {bug}", o.describe())),
            (None, false) => problems.push(format!("  {}", o.describe())),
            (None, true) => {}
        }
    }
    if !bugs.is_empty() {
        println!(
            "known bugs (cells marked \"bug\" in faults/matrix.json): {}\n{}",
            bugs.len(),
            bugs.join("\n")
        );
    }
    if !problems.is_empty() {
        println!(
            "cells that did not survive or leaked: {}\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    assert!(
        problems.is_empty() && bugs.is_empty(),
        "fault matrix: {} cell(s) did not survive or leaked, {} known bug(s)\n{}{}",
        problems.len(),
        bugs.len(),
        problems.join("\n"),
        if bugs.is_empty() {
            String::new()
        } else {
            format!("\nknown bugs:\n{}", bugs.join("\n"))
        }
    );
}
