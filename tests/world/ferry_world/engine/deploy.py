"""Deploys ferry's SAM template into the local AWS world (the hub account).

    python -m ferry_world.deploy --template template.yaml [--binaries DIR] \
        --out .local/world.json [--endpoint http://127.0.0.1:4566]

``--binaries`` defaults to $FERRY_WORLD_BINARIES, else ``$CARGO_TARGET_DIR/debug`` (a
relative CARGO_TARGET_DIR is taken from the repository root, where make runs cargo), else
``target/debug`` of the repository: where ``make bins`` (``cargo test --workspace
--no-run``) puts the Lambda binaries.

For every ``AWS::Serverless::Function`` with ``Metadata.BuildProperties.Binary``: an IAM
role (trust lambda.amazonaws.com, the function's Policies inline) and a Lambda function
(Runtime/Handler/Architectures/MemorySize/Timeout/Environment/Tracing/LoggingConfig from
Globals and Properties) whose zip holds a ``bootstrap`` that execs
``<binaries>/<Binary>``: the world's Lambda runner runs that bootstrap for real.
For every ``AWS::Serverless::StateMachine``: its DefinitionUri with DefinitionSubstitutions
resolved (``!GetAtt X.Arn`` -> the function's ARN), an IAM role, and the state machine
``ferry-<name>`` (MigrateInstanceStateMachine -> ferry-migrate-instance).
``AWS::Logs::LogGroup`` resources become log groups. The template's other resources (its
plain IAM roles, EventBridge buses and rules, EventBridge Scheduler schedules) are deployed
by ``deploy_stack`` (buses.py, schedules.py); the stack's outputs are published for
DescribeStacks.

Idempotent: re-running updates functions (code and configuration), roles and state
machines in place. Builds nothing: a missing binary is an error naming the build to run.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import time
import zipfile
from pathlib import Path

import yaml

HUB_ACCOUNT_ID = "123456789012"
REPO_ROOT = Path(__file__).resolve().parents[4]
BUILD_HINT = "build them with `make bins` (or `cargo test --workspace --no-run`)"


def default_binaries_dir() -> Path:
    """Where cargo put the Lambda binaries: $FERRY_WORLD_BINARIES, else
    $CARGO_TARGET_DIR/debug (relative to the repository root), else target/debug."""
    explicit = os.environ.get("FERRY_WORLD_BINARIES")
    if explicit:
        return Path(explicit)
    return REPO_ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "debug"

# ---------------------------------------------------------------------------------------
# Template parsing: CloudFormation short-form tags -> long form
# ---------------------------------------------------------------------------------------

_SHORT_TAGS = {
    "Ref": "Ref",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "If": "Fn::If",
    "Join": "Fn::Join",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "FindInMap": "Fn::FindInMap",
    "Base64": "Fn::Base64",
    "Cidr": "Fn::Cidr",
    "ImportValue": "Fn::ImportValue",
    "GetAZs": "Fn::GetAZs",
    "Condition": "Condition",
    "Transform": "Fn::Transform",
    "ToJsonString": "Fn::ToJsonString",
    "Length": "Fn::Length",
}


class _TemplateLoader(yaml.SafeLoader):
    pass


def _make_constructor(long_name: str):
    def construct(loader, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if long_name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {long_name: value}

    return construct


for _short, _long in _SHORT_TAGS.items():
    _TemplateLoader.add_constructor(f"!{_short}", _make_constructor(_long))


def load_template(path: Path) -> dict:
    with open(path) as f:
        return yaml.load(f, Loader=_TemplateLoader)


_NO_VALUE = object()  # !Ref AWS::NoValue: the property / list item is removed


class Resolver:
    """Evaluates the intrinsic functions the template uses, given what is deployed."""

    def __init__(self, template: dict, params: dict):
        self.template = template
        self.params = params  # "AWS::Region", ..., "<LogicalId>" -> Ref, "<LogicalId>.<Attr>" -> GetAtt
        self.conditions = {}
        for name, cond in (template.get("Conditions") or {}).items():
            self.conditions[name] = cond

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def resolve(self, value):
        out = self._resolve(value)
        return None if out is _NO_VALUE else out

    def _resolve(self, value):
        if isinstance(value, list):
            return [r for r in (self._resolve(v) for v in value) if r is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                ref = f"{logical}.{attr}"
                if ref not in self.params:
                    raise KeyError(f"!GetAtt {ref}: not deployed in the world")
                return self.params[ref]
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    text, extra = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
                else:
                    text, extra = arg, {}
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self._sub_var(m.group(1), extra)), text)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(x) for x in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                sep, text = arg
                return self.resolve(text).split(sep)
            if key == "Fn::If":
                name, yes, no = arg
                return self._resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = self.resolve(arg)
                return a == b
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(arg))
            if key == "Fn::Or":
                return any(self.resolve(arg))
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::FindInMap":
                m, k1, k2 = self.resolve(arg)
                return self.template["Mappings"][m][k1][k2]
            if key == "Fn::GetAZs":
                region = self.resolve(arg) or self.params["AWS::Region"]
                return [f"{region}{s}" for s in "abcdef"]
            if key == "Fn::Base64":
                import base64

                return base64.b64encode(str(self.resolve(arg)).encode()).decode()
            if key == "Fn::ToJsonString":
                return json.dumps(self.resolve(arg))
            # Rule-specific functions (CloudFormation UG, "Rule functions"), for Rules.
            if key == "Fn::Contains":
                items, value = self.resolve(arg)
                return value in (items or [])
            if key == "Fn::EachMemberEquals":
                items, value = self.resolve(arg)
                return all(item == value for item in items or [])
            if key == "Fn::EachMemberIn":
                items, allowed = self.resolve(arg)
                return all(item in (allowed or []) for item in items or [])
        resolved = {k: self._resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _ref(self, name: str):
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.params:
            return self.params[name]
        parameters = self.template.get("Parameters") or {}
        if name in parameters:
            return parameters[name].get("Default")
        raise KeyError(f"!Ref {name}: not deployed in the world")

    def _sub_var(self, name: str, extra: dict):
        if name in extra:
            return extra[name]
        if "." in name:
            return self.resolve({"Fn::GetAtt": name.split(".", 1)})
        return self._ref(name)


def kebab(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()


# ---------------------------------------------------------------------------------------
# Deploying
# ---------------------------------------------------------------------------------------


def _merge(globals_: dict, props: dict) -> dict:
    merged = dict(globals_)
    for k, v in props.items():
        if k == "Environment" and isinstance(v, dict) and isinstance(merged.get(k), dict):
            env = dict(merged[k].get("Variables") or {})
            env.update(v.get("Variables") or {})
            merged[k] = {"Variables": env}
        elif isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = {**merged[k], **v}
        else:
            merged[k] = v
    return merged


def _bootstrap_zip(binary: Path) -> bytes:
    # The binary's size and mtime are part of the code, so a rebuilt binary is new code
    # (new CodeSha256): the runner retires the warm sandboxes of the old one.
    st = binary.stat()
    script = (
        "#!/bin/sh\n"
        "# ferry world: the function's code is the cargo-built binary below.\n"
        f"# binary size {st.st_size}, mtime_ns {st.st_mtime_ns}\n"
        f"exec '{binary}' \"$@\"\n"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16
        zf.writestr(info, script)
    return buf.getvalue()


def sam_transform(template: dict, params: dict) -> dict:
    """The template as SAM deploys it: aws-sam-translator (SAM's own transform) turns
    every AWS::Serverless::* resource into CloudFormation, expanding each function's
    and state machine's `Policies` (inline statements, policy templates such as
    LambdaInvokePolicy, managed policy names) into its AWS::IAM::Role. Code and
    definition locations are replaced by placeholders (the transform wants S3 URIs;
    the world deploys the local binaries and ASL files itself)."""
    import copy

    from samtranslator.translator.transform import transform

    fragment = copy.deepcopy(template)
    for logical, res in (fragment.get("Resources") or {}).items():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = f"s3://ferry-world/{logical}.zip"
        if res.get("Type") == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            props["DefinitionUri"] = {"Bucket": "ferry-world", "Key": f"{logical}.asl.json"}

    class _NoManagedPolicies:
        # Managed policy NAMES in Policies would be looked up in IAM; ferry's template
        # uses none (a name would fail the transform here, as it would in sam build).
        def load(self):
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", params["AWS::Region"])
    return transform(fragment, dict(params), _NoManagedPolicies())


def function_event_resources(template: dict, params: dict) -> dict:
    """The AWS::Events::Rule and AWS::Lambda::Permission resources SAM's transform makes
    of the template's functions' `Events` of Type EventBridgeRule (logical ids as SAM
    names them, e.g. ImageEventFunctionAmiStateChange and ...Permission). {} when no
    function has such an event (target-account.yaml has no SAM at all)."""
    resources = template.get("Resources") or {}
    if not any(
        res.get("Type") == "AWS::Serverless::Function"
        and any((e or {}).get("Type") == "EventBridgeRule"
                for e in ((res.get("Properties") or {}).get("Events") or {}).values())
        for res in resources.values()
    ):
        return {}
    cfn = sam_transform(template, params)
    return {
        logical: res for logical, res in (cfn.get("Resources") or {}).items()
        if logical not in resources and res.get("Type") in ("AWS::Events::Rule", "AWS::Lambda::Permission")
    }


def translated_roles(cfn: dict, resolver: "Resolver") -> dict:
    """Resource logical id (function / state machine) -> its role as SAM made it:
    {"logical", "trust", "policies": [(name, document)], "managed": [ARN]}."""
    resources = cfn.get("Resources") or {}
    roles = {}
    for logical, res in resources.items():
        if res.get("Type") != "AWS::IAM::Role":
            continue
        props = res.get("Properties") or {}
        roles[logical] = {
            "logical": logical,
            "trust": resolver.resolve(props.get("AssumeRolePolicyDocument")),
            "policies": [
                (p["PolicyName"], resolver.resolve(p["PolicyDocument"])) for p in props.get("Policies") or []
            ],
            "managed": [resolver.resolve(a) for a in props.get("ManagedPolicyArns") or []],
            "path": props.get("Path", "/"),
        }
    owners = {}
    for logical, res in resources.items():
        props = res.get("Properties") or {}
        ref = props.get("Role") if res.get("Type") == "AWS::Lambda::Function" else (
            props.get("RoleArn") if res.get("Type") == "AWS::StepFunctions::StateMachine" else None
        )
        if isinstance(ref, dict) and "Fn::GetAtt" in ref:
            role_logical = ref["Fn::GetAtt"][0]
            if role_logical in roles:
                owners[logical] = roles[role_logical]
    return owners


def ensure_role(iam, name: str, trust: dict, policies: list, managed: list, path: str = "/") -> str:
    """Create or update a role with exactly these inline policies; attach the managed
    policies the world knows (AWS managed policies such as AWSLambdaBasicExecutionRole
    grant only CloudWatch Logs / X-Ray, which no step calls, and are skipped when the
    world does not have them)."""
    try:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Path=path)["Role"]["Arn"]
    existing = set(iam.list_role_policies(RoleName=name)["PolicyNames"])
    wanted = set()
    for policy_name, doc in policies:
        wanted.add(policy_name)
        if "Version" not in doc:
            # SAM's policy templates (LambdaInvokePolicy...) have no Version. IAM takes
            # that as 2008-10-17 (IAM User Guide, "IAM JSON policy elements: Version");
            # moto refuses it. Same statements, no policy variables: 2012-10-17.
            doc = {"Version": "2012-10-17", **doc}
        iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(doc))
    for stale in existing - wanted:
        iam.delete_role_policy(RoleName=name, PolicyName=stale)
    for policy_arn in managed:
        try:
            iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
        except (iam.exceptions.NoSuchEntityException, iam.exceptions.InvalidInputException):
            pass
    return arn


def role_name(stack: str, role_logical: str) -> str:
    """CloudFormation names a role <stack>-<logical id>-<random suffix>; the world
    leaves the suffix out (at most 64 characters)."""
    return f"{stack}-{role_logical}"[:64]


def name_resources(template: dict, params: dict, resolver: "Resolver") -> tuple[dict, dict]:
    """The names deploy() gives what it creates, put into `params` (so !Ref / !GetAtt /
    !Sub of them resolve): each function with a Binary (`<stack>-<kebab name>`: its name
    and `.Arn`), log group (name, `.Arn`) and state machine (`ferry-<short>`: its ARN,
    `.Arn`, `.Name`). Needs AWS::StackName, AWS::Region and AWS::AccountId in `params`.
    Returns (functions, machines) by logical id: {"name", "arn", "binaryName"} and
    {"name", "arn", "short"}."""
    stack, region, account = params["AWS::StackName"], params["AWS::Region"], params["AWS::AccountId"]
    partition = params.get("AWS::Partition", "aws")
    resources = template.get("Resources") or {}
    functions = {}
    for logical, res in resources.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        binary = ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
        if not binary:
            continue
        props = res.get("Properties") or {}
        name = props.get("FunctionName") or f"{stack}-{kebab(re.sub(r'Function$', '', logical))}"
        arn = f"arn:{partition}:lambda:{region}:{account}:function:{name}"
        functions[logical] = {"name": name, "arn": arn, "binaryName": binary}
        params[logical] = name
        params[f"{logical}.Arn"] = arn
    for logical, res in resources.items():
        if res.get("Type") == "AWS::Logs::LogGroup":
            props = res.get("Properties") or {}
            group = resolver.resolve(props.get("LogGroupName")) or f"{stack}-{logical}"
            params[logical] = group
            params[f"{logical}.Arn"] = f"arn:{partition}:logs:{region}:{account}:log-group:{group}:*"
    machines = {}
    for logical, res in resources.items():
        if res.get("Type") != "AWS::Serverless::StateMachine":
            continue
        props = res.get("Properties") or {}
        short = kebab(re.sub(r"StateMachine$", "", logical))
        # A Name the template gives (e.g. !Sub ${AWS::StackName}-migrate-instance) as
        # CloudFormation resolves it; otherwise the world's own `<stack>-<short>`.
        name = (resolver.resolve(props["Name"]) if props.get("Name") else None) or f"{stack}-{short}"
        arn = f"arn:{partition}:states:{region}:{account}:stateMachine:{name}"
        machines[logical] = {"name": name, "arn": arn, "short": short}
        params[logical] = arn
        params[f"{logical}.Arn"] = arn
        params[f"{logical}.Name"] = name
    return functions, machines


def pseudo_parameters(region: str, account: str, stack: str, partition: str = "aws") -> dict:
    """CloudFormation's pseudo parameters for a stack (AWS::Partition as the Region's
    partition would give it: aws, aws-cn, aws-us-gov)."""
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return {
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::StackName": stack,
        "AWS::Partition": partition,
        "AWS::URLSuffix": suffix,
        "AWS::StackId": f"arn:{partition}:cloudformation:{region}:{account}:stack/{stack}/ferry-world",
    }


def template_roles(template_path: Path, region: str, account: str, stack: str, partition: str = "aws") -> dict:
    """The IAM role of every function and state machine of a SAM template, as SAM's
    transform makes it and CloudFormation resolves it (the same path deploy() takes),
    by the owner's logical id: {"logical", "name", "trust", "policies", "managed",
    "path"}. Nothing is created."""
    template = load_template(template_path)
    params = pseudo_parameters(region, account, stack, partition)
    resolver = Resolver(template, params)
    cfn = sam_transform(template, params)
    name_resources(template, params, resolver)
    return {
        owner: {**role, "name": role_name(stack, role["logical"])}
        for owner, role in translated_roles(cfn, resolver).items()
    }


def deploy(template_path: Path, binaries: Path, endpoint: str, region: str, stack: str) -> dict:
    import boto3
    from botocore.config import Config

    template = load_template(template_path)
    resources = template.get("Resources") or {}
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )
    cfg = Config(retries={"mode": "standard", "max_attempts": 3})
    client = lambda name: session.client(name, endpoint_url=endpoint, config=cfg)  # noqa: E731
    iam, lam, sfn, logs = client("iam"), client("lambda"), client("stepfunctions"), client("logs")
    account = client("sts").get_caller_identity()["Account"]
    if account != HUB_ACCOUNT_ID:
        raise SystemExit(f"deploy: the world answered account {account}, expected the hub {HUB_ACCOUNT_ID}")

    params = pseudo_parameters(region, account, stack)
    resolver = Resolver(template, params)
    cfn = sam_transform(template, params)

    # Names first, so every !Ref / !GetAtt resolves whatever the order.
    functions, machines = name_resources(template, params, resolver)
    for fn in functions.values():
        fn["binary"] = str((binaries / fn.pop("binaryName")).resolve())

    roles = translated_roles(cfn, resolver)
    missing = [f["binary"] for f in functions.values() if not os.access(f["binary"], os.X_OK)]
    if missing:
        raise SystemExit(
            f"deploy: missing binaries in {binaries} ({BUILD_HINT}; with CARGO_TARGET_DIR set they "
            "are in $CARGO_TARGET_DIR/debug, or name the directory with --binaries / "
            "FERRY_WORLD_BINARIES):\n  " + "\n  ".join(missing)
        )

    # Log groups.
    for logical, res in resources.items():
        if res.get("Type") != "AWS::Logs::LogGroup":
            continue
        group = params[logical]
        try:
            logs.create_log_group(logGroupName=group)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        retention = (res.get("Properties") or {}).get("RetentionInDays")
        if retention:
            logs.put_retention_policy(logGroupName=group, retentionInDays=int(retention))

    # Functions.
    for logical, fn in functions.items():
        props = _merge(globals_fn, resources[logical].get("Properties") or {})
        role = roles[logical]
        role_arn = ensure_role(
            iam, role_name(stack, role["logical"]), role["trust"], role["policies"], role["managed"], role["path"]
        )
        fn["role"] = role_arn
        env = {k: str(v) for k, v in (resolver.resolve(props.get("Environment") or {}).get("Variables") or {}).items()}
        config = {
            "FunctionName": fn["name"],
            "Role": role_arn,
            "Runtime": props.get("Runtime", "provided.al2023"),
            "Handler": props.get("Handler", "bootstrap"),
            "Description": resolver.resolve(props.get("Description", "")) or "",
            "Timeout": int(props.get("Timeout", 3)),
            "MemorySize": int(props.get("MemorySize", 128)),
            "Environment": {"Variables": env},
            "TracingConfig": {"Mode": "Active" if props.get("Tracing") == "Active" else "PassThrough"},
        }
        if props.get("LoggingConfig"):
            config["LoggingConfig"] = resolver.resolve(props["LoggingConfig"])
        code = _bootstrap_zip(Path(fn["binary"]))
        try:
            lam.get_function(FunctionName=fn["name"])
            exists = True
        except lam.exceptions.ResourceNotFoundException:
            exists = False
        if exists:
            lam.update_function_code(FunctionName=fn["name"], ZipFile=code)
            lam.update_function_configuration(**config)
        else:
            lam.create_function(
                **config,
                Code={"ZipFile": code},
                Architectures=list(resolver.resolve(props.get("Architectures")) or ["x86_64"]),
                Tags={"lambda:createdBy": "SAM", "ferry-world:binary": Path(fn["binary"]).name},
            )

    # State machines.
    existing = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    base = template_path.parent
    for logical, sm in machines.items():
        props = resources[logical].get("Properties") or {}
        if "DefinitionUri" in props:
            text = (base / props["DefinitionUri"]).read_text()
        elif "Definition" in props:
            text = json.dumps(resolver.resolve(props["Definition"]))
        else:
            raise SystemExit(f"deploy: {logical} has neither DefinitionUri nor Definition")
        subs = {k: resolver.resolve(v) for k, v in (props.get("DefinitionSubstitutions") or {}).items()}

        def substitute(m, subs=subs, logical=logical):
            if m.group(1) not in subs:
                raise SystemExit(f"deploy: {logical}: no DefinitionSubstitutions for ${{{m.group(1)}}}")
            return str(subs[m.group(1)])

        definition = re.sub(r"\$\{([A-Za-z0-9_]+)\}", substitute, text)
        json.loads(definition)  # fail here, clearly, rather than in the world
        role = roles[logical]
        role_arn = ensure_role(
            iam, role_name(stack, role["logical"]), role["trust"], role["policies"], role["managed"], role["path"]
        )
        kwargs = {"definition": definition, "roleArn": role_arn}
        tracing = props.get("Tracing") or {}
        if tracing:
            kwargs["tracingConfiguration"] = {"enabled": bool(tracing.get("Enabled"))}
        if sm["name"] in existing:
            sm["arn"] = existing[sm["name"]]
            sfn.update_state_machine(stateMachineArn=sm["arn"], **kwargs)
        else:
            sm["arn"] = sfn.create_state_machine(
                name=sm["name"], type=props.get("Type", "STANDARD"), **kwargs
            )["stateMachineArn"]

    # The template's plain resources (AWS::IAM::Role, the request bus and its rules, the
    # schedule), as a CloudFormation deployment with the parameters' defaults makes them
    # (deploy_stack).
    deployed: dict = {}
    outputs = deploy_stack(template_path, endpoint, account, region, {}, stack, report=deployed,
                           function_events=True)

    # The stack's outputs, as CloudFormation shows them (DescribeStacks): the ferry CLI
    # finds the state machines there (`<StateMachine>Arn`, as template.yaml names them).
    # The world deploys the resources itself; this stack only carries the outputs.
    publish_stack_outputs(endpoint, region, stack, {
        **{k: v for k, v in outputs.items() if isinstance(v, str)},
        **{f"{logical}Arn": sm["arn"] for logical, sm in machines.items()},
    })

    scale = None
    try:
        import urllib.request

        with urllib.request.urlopen(f"{endpoint}/ferry-world/clock", timeout=5) as r:
            scale = json.load(r)["scale"]
    except Exception:  # noqa: BLE001 - plain moto without the world's control API
        pass

    return {
        "endpoint": endpoint,
        "hubAccountId": account,
        "region": region,
        "stack": stack,
        "stateMachines": {sm["short"]: sm["arn"] for sm in machines.values()},
        # EventBridge Scheduler schedules by logical id: {"name", "group", "arn"} (fire one
        # with POST /ferry-world/schedules/fire, rules/scheduler.py).
        "schedules": deployed.get("schedules", {}),
        "functions": {
            logical: {"name": fn["name"], "arn": fn["arn"], "binary": fn["binary"], "role": fn["role"]}
            for logical, fn in functions.items()
        },
        "timeScale": scale,
        "logs": str(Path(os.environ.get("FERRY_WORLD_STATE_DIR", REPO_ROOT / ".local")) / "logs"),
        "deployedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def publish_stack_outputs(endpoint: str, region: str, stack: str, outputs: dict) -> None:
    """A CloudFormation stack named `stack` whose Outputs are `outputs` (replaced when it
    exists), so DescribeStacks answers what a `sam deploy` of template.yaml would."""
    import boto3

    cfn = boto3.client("cloudformation", endpoint_url=endpoint, region_name=region,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    body = json.dumps({
        "Resources": {"WorldDeployed": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {k: {"Value": v} for k, v in sorted(outputs.items())},
    })
    try:
        cfn.describe_stacks(StackName=stack)
        cfn.delete_stack(StackName=stack)
    except cfn.exceptions.ClientError:
        pass
    cfn.create_stack(StackName=stack, TemplateBody=body)


def deploy_stack(template_path: Path, endpoint: str, account: str, region: str, parameters: dict,
                 stack: str = "ferry-target", report: dict | None = None,
                 function_events: bool = False) -> dict:
    """Deploys a template's plain IAM roles (`AWS::IAM::Role`: target-account.yaml's, or
    template.yaml's invoker role), its EventBridge buses and rules (buses.py) and its
    EventBridge Scheduler schedules (schedules.py) into `account`, as CloudFormation
    would: parameters
    (defaults, AllowedPattern checked, for a CommaDelimitedList on each item), the
    template's Rules (an assertion that fails refuses the deployment with its
    AssertDescription), conditions (a resource or output whose Condition is false is not
    created, and a role it removes is deleted), !If / AWS::NoValue, !Sub with
    AWS::Partition, and !Ref / !GetAtt of what deploy() created for the same `stack`
    (functions, log groups, state machines: they must be deployed). Acts as the account
    through its OrganizationAccountAccessRole. Returns the stack's Outputs (and puts
    {"schedules": {logical: {"name", "group", "arn"}}} into `report` when given).
    Idempotent."""
    import boto3

    template = load_template(template_path)
    declared = template.get("Parameters") or {}
    values = {}
    for name, spec in declared.items():
        value = parameters.get(name, spec.get("Default"))
        if value is None:
            raise ValueError(f"{template_path.name}: parameter {name} is required")
        pattern = spec.get("AllowedPattern")
        if spec.get("Type") == "CommaDelimitedList":
            items = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
            for item in items or [""]:
                # CloudFormation UG, "Parameters": for a CommaDelimitedList the pattern
                # must match each value in the list.
                if pattern and not re.fullmatch(pattern, str(item)):
                    raise ValueError(f"{template_path.name}: parameter {name} item {item!r} does not match {pattern}")
            values[name] = [v for v in items if v != ""]
            continue
        if pattern and not re.fullmatch(pattern, str(value)):
            raise ValueError(f"{template_path.name}: parameter {name}={value!r} does not match {pattern}")
        values[name] = str(value)
    unknown = set(parameters) - set(declared)
    if unknown:
        raise ValueError(f"{template_path.name}: unknown parameters {sorted(unknown)}")
    params = {
        "AWS::Region": region, "AWS::AccountId": account, "AWS::StackName": stack,
        "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", **values,
    }
    resolver = Resolver(template, params)
    # CloudFormation UG, "Rules": when a rule's RuleCondition holds (or it has none), every
    # assertion must hold, else nothing is deployed and the AssertDescription is the error.
    for rule_name, rule in (template.get("Rules") or {}).items():
        if "RuleCondition" in rule and not resolver.resolve(rule["RuleCondition"]):
            continue
        for assertion in rule.get("Assertions") or []:
            if not resolver.resolve(assertion["Assert"]):
                raise ValueError(
                    f"{template_path.name}: rule {rule_name}: "
                    f"{assertion.get('AssertDescription') or 'an assertion failed'}")
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=region,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="ferry-world-deploy"
    )["Credentials"]
    as_account = {
        "endpoint_url": endpoint, "region_name": region, "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"], "aws_session_token": creds["SessionToken"],
    }
    iam = boto3.client("iam", **as_account)
    resources = template.get("Resources") or {}
    # What deploy() made for this stack (template.yaml): its names, which must exist.
    _functions, machines = name_resources(template, params, resolver)
    if machines:
        sfn = boto3.client("stepfunctions", **as_account)
        deployed = {m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
        missing = sorted(m["arn"] for m in machines.values() if m["arn"] not in deployed)
        if missing:
            raise ValueError(
                f"{template_path.name}: stack {stack!r} refers to state machines that are not deployed in "
                f"{account} ({', '.join(missing)}): deploy the template first (make local-up)")

    def created(res: dict) -> bool:
        return "Condition" not in res or resolver.condition(res["Condition"])

    roles = {logical: res for logical, res in resources.items() if res.get("Type") == "AWS::IAM::Role"}
    for logical, res in roles.items():
        props = res.get("Properties") or {}
        name = resolver.resolve(props.get("RoleName")) or role_name(stack, logical)
        path = resolver.resolve(props.get("Path")) or "/"
        params[logical] = name
        params[f"{logical}.Arn"] = f"arn:aws:iam::{account}:role{path}{name}"
    for logical, res in roles.items():
        if not created(res):
            remove_role(iam, params[logical])
            continue
        props = resolver.resolve(res.get("Properties") or {})
        ensure_role(
            iam, params[logical], props["AssumeRolePolicyDocument"],
            [(p["PolicyName"], p["PolicyDocument"]) for p in props.get("Policies") or []],
            props.get("ManagedPolicyArns") or [], props.get("Path") or "/",
        )
    # EventBridge buses, bus policies and rules (template.yaml's request bus): buses.py.
    # A function's `Events` (Type: EventBridgeRule, e.g. ImageEvent's "EC2 AMI State
    # Change" rule) become an AWS::Events::Rule and an AWS::Lambda::Permission only in
    # SAM's transform: they are taken from there, as `sam deploy` would create them, when
    # deploy() made the functions (`function_events`; a test that deploys only the plain
    # resources beside stand-in machines has no functions to point them at).
    from .buses import deploy_event_resources

    extra = function_event_resources(template, params) if function_events else {}
    deploy_event_resources({**resources, **extra}, resolver, params, created, as_account)
    # EventBridge Scheduler schedules (template.yaml's scheduled distribute-image): schedules.py.
    from .schedules import deploy_schedules

    schedules = deploy_schedules(resources, resolver, params, created, as_account)
    if report is not None:
        report["schedules"] = schedules
    return {
        k: resolver.resolve(v.get("Value"))
        for k, v in (template.get("Outputs") or {}).items()
        if created(v)
    }


def remove_role(iam, name: str) -> None:
    """Deletes a role a stack update no longer creates (its inline and attached policies
    first, as CloudFormation does); nothing when it does not exist."""
    try:
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        pass


def main(argv=None) -> int:
    port = os.environ.get("FERRY_WORLD_PORT", "4566")
    parser = argparse.ArgumentParser(prog="python -m ferry_world.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", default=str(REPO_ROOT / "template.yaml"))
    parser.add_argument("--binaries", default=str(default_binaries_dir()))
    parser.add_argument("--out", default=str(REPO_ROOT / ".local" / "world.json"))
    parser.add_argument("--endpoint", default=os.environ.get("FERRY_WORLD_ENDPOINT", f"http://127.0.0.1:{port}"))
    parser.add_argument("--region", default=os.environ.get("FERRY_WORLD_REGION", "us-east-1"))
    parser.add_argument("--stack", default=os.environ.get("FERRY_WORLD_STACK", "ferry"))
    args = parser.parse_args(argv)

    world = deploy(Path(args.template).resolve(), Path(args.binaries).resolve(), args.endpoint, args.region, args.stack)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(world, indent=2) + "\n")
    tmp.replace(out)
    print(json.dumps(world, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
