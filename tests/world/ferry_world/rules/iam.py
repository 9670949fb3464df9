"""IAM identity policies, evaluated on every call a role makes, on top of moto 5.2.5.

Stock moto authorizes nothing (its access-control hook, ``_authenticate_and_authorize_
normal_action``, runs only after INITIAL_NO_AUTH_ACTION_COUNT calls and then matches
actions against a single resource "*", without conditions). A Lambda whose role lacks
an action, or whose statement's condition never holds, would pass here and fail on AWS.

Rule (IAM User Guide, "Policy evaluation logic" and "Determining whether a request is
allowed or denied within an account"; Service Authorization Reference, "Actions,
resources, and condition keys for Amazon EC2 / AWS KMS / AWS STS / IAM"): a request made
with an IAM role's credentials is allowed only when one of the role's identity policies
(inline or attached) has an Allow statement whose Action, Resource and every Condition
match the request, for EVERY authorization the request needs (RunInstances authorizes
the instance, its volumes and network interface, the image, subnet and security groups,
and tag-on-create authorizes ec2:CreateTags with ec2:CreateAction), and no statement
Denies it. An explicit Deny wins. Otherwise the service answers with its own error:
EC2 `UnauthorizedOperation` ("You are not authorized to perform this operation. User:
<session ARN> is not authorized to perform: <action> on resource: <ARN> because no
identity-based policy allows the <action> action"), KMS and Step Functions
`AccessDeniedException` (HTTP 400 for Step Functions), STS, IAM and CloudFormation
`AccessDenied` (HTTP 403).

Who is evaluated: credentials of an assumed IAM role (the Lambdas run with their
function role's credentials, engine/lambda_runner.py; the copy steps assume the role
target-account.yaml creates), and the state machines' execution roles for the calls Step
Functions makes with them (section "State machines' execution roles" below: invoking
Lambda functions, starting nested executions, the EventBridge rule of .sync nested
executions at CreateStateMachine/UpdateStateMachine). Not evaluated, all-powerful: the
account root / test keys, IAM users, roles the world does not have, and the world's
stand-in admin role `OrganizationAccountAccessRole` (rules/trust.py).

KMS keys: the decision on a key combines the key policy and grants with this module
(kms.py ``kms_key_allows``, via ``identity_allows``): a key policy that names the role
itself allows it in its own account; one that allows only the account root (the default
"Enable IAM policies" statement), and every cross-account use, also needs the role's
identity policy; a grant needs none. So KMS actions on a key are decided there, with
kms:ViaService / kms:GrantIsForAWSResource / kms:GrantOperations / kms:GranteePrincipal
in the context, not by the request hook below.

Condition keys the world sets: aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalOrgID,
aws:RequestedRegion, aws:ResourceTag/* (and ec2:ResourceTag/*) of existing resources,
aws:RequestTag/* and aws:TagKeys of the tags being set, ec2:CreateAction on tag-on-create,
ec2:InstanceType, ec2:Region, iam:PassedToService, sts:ExternalId, and the kms: keys
above. A condition on any other key finds it absent (strict: only ...IfExists, Null and
negated operators then hold); Numeric/Date/IP operators fail.

Step Functions and CloudFormation calls (a pipeline of another account acting through
template.yaml's invoker role): each states action on the state machine or execution its
request names (STATES_AUTHORIZATIONS; SendTaskSuccess/SendTaskFailure/SendTaskHeartbeat
on the state machine whose execution issued the task token, TASK_RESPONSE_ACTIONS), DescribeStacks and the other stack actions on the
stack (cloudformation_stack_resource).

Not modelled: permissions boundaries, session policies, SCPs/RCPs, resource policies
other than key policies and trust policies, and the full resource list of every EC2
action (the actions ferry calls are modelled in EC2_AUTHORIZATIONS; any other action is
authorized on "*").

Least privilege: every Allow that decided a call is recorded (role, policy, statement,
action); ``usage_report()`` lists, per role, the allowed actions no call used.
"""
from __future__ import annotations

import json
import re
import threading

from .common import partition
from .iam_policy import EVERY_KEY, action_matches, as_list, conditions_hold, resource_applies

ORGANIZATION_ACCESS_ROLE = "OrganizationAccountAccessRole"

_lock = threading.Lock()
# role ARN -> {(policy name, statement index, action pattern)} that allowed a call
_USED: dict[str, set] = {}
# role ARN -> number of calls evaluated / denied
_CALLS: dict[str, dict] = {}

_ROLE_ARN = re.compile(r"^arn:(aws[\w-]*):iam::(\d{12}):role/(?:(.*)/)?([^/]+)$")


# =================================================================================
# The caller
# =================================================================================
class Caller:
    """An evaluated principal: an assumed IAM role (its moto Role and session)."""

    def __init__(self, account: str, region: str, role, session_name: str):
        self.account = account
        self.region = region
        self.role = role
        self.session_name = session_name

    @property
    def role_arn(self) -> str:
        return self.role.arn

    @property
    def session_arn(self) -> str:
        part = partition(self.region)
        return f"arn:{part}:sts::{self.account}:assumed-role/{self.role.name}/{self.session_name}"


def _role_by_arn(role_arn: str):
    m = _ROLE_ARN.match(role_arn or "")
    if not m:
        return None
    from moto.iam.models import iam_backends

    part, account = m.group(1), m.group(2)
    if account not in list(iam_backends.keys()):
        return None
    backend = iam_backends[account][part]
    for role in list(backend.roles.values()):
        if role.arn == role_arn:
            return role
    return None


def caller_for(account: str, access_key: str | None, region: str | None) -> Caller | None:
    """The evaluated caller behind an access key, or None when the key is not an assumed
    role's (root/test keys, users) or is the stand-in admin role's."""
    if not access_key:
        return None
    region = region or "us-east-1"
    part = partition(region)
    try:
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends

        if account not in list(iam_backends.keys()):
            return None
        key = iam_backends[account][part].access_keys.get(access_key)
        role_arn = getattr(key, "role_arn", None) if key is not None else None
        if not role_arn:
            return None
        role = _role_by_arn(role_arn)
        if role is None or role.name == ORGANIZATION_ACCESS_ROLE:
            return None
        session = "session"
        if account in list(sts_backends.keys()):
            found = sts_backends[account][part].get_assumed_role_from_access_key(access_key)
            if found is not None:
                session = found.session_name
        return Caller(account, region, role, session)
    except Exception:  # pragma: no cover - defensive: never break a request here
        return None


def caller_for_principal(account: str, principal: str, region: str | None) -> Caller | None:
    """The evaluated caller for a principal ARN (a role ARN from common.caller_of), or
    None (root, users, the stand-in admin role)."""
    role = _role_by_arn(principal)
    if role is None or role.name == ORGANIZATION_ACCESS_ROLE:
        return None
    return Caller(account, region or "us-east-1", role, "session")


def role_policies(role) -> list[tuple[str, dict]]:
    """(name, document) of every identity policy of a role: inline, then attached."""
    out = []
    for name, doc in list(role.policies.items()):
        out.append((name, _doc(doc)))
    for arn, policy in list(role.managed_policies.items()):
        doc = getattr(policy, "document", None)
        if doc is None:
            for v in getattr(policy, "versions", []):
                if getattr(v, "is_default", False):
                    doc = v.document
        out.append((arn, _doc(doc)))
    return out


def _doc(doc) -> dict:
    if isinstance(doc, dict):
        return doc
    try:
        return json.loads(doc or "{}")
    except ValueError:
        from urllib.parse import unquote

        return json.loads(unquote(doc))


# =================================================================================
# Evaluation
# =================================================================================
def base_context(caller: Caller) -> dict:
    from .organizations import org_id_of

    ctx = {
        "aws:principalarn": caller.role_arn,
        "aws:principalaccount": caller.account,
        "aws:principaltype": "AssumedRole",
        "aws:requestedregion": caller.region,
    }
    org = org_id_of(caller.account)
    if org:
        ctx["aws:principalorgid"] = org
    return ctx


def identity_decision(caller: Caller, action: str, resource: str, context: dict) -> str | None:
    """IAM User Guide, "Policy evaluation logic", identity policies only: "Deny" when a
    Deny statement applies, "Allow" when an Allow statement applies, else None
    (implicitly denied). Records the Allow statements used."""
    ctx = {**base_context(caller), **{k.lower(): v for k, v in context.items()}}
    used = []
    for name, doc in role_policies(caller.role):
        for i, st in enumerate(as_list(doc.get("Statement"))):
            if not isinstance(st, dict):
                continue
            if "NotAction" in st:
                if action_matches(st["NotAction"], action):
                    continue
                pattern = "NotAction"
            else:
                patterns = [p for p in as_list(st.get("Action")) if action_matches(p, action)]
                if not patterns:
                    continue
                pattern = str(patterns[0])
            if not resource_applies(st, resource):
                continue
            if not conditions_hold(st.get("Condition"), ctx, EVERY_KEY, strict=True):
                continue
            if str(st.get("Effect", "")).lower() == "deny":
                _count(caller, denied=True)
                return "Deny"
            used.append((name, i, pattern))
    _count(caller, denied=not used)
    if used:
        with _lock:
            _USED.setdefault(caller.role_arn, set()).update(used)
        return "Allow"
    return None


def _count(caller: Caller, denied: bool) -> None:
    with _lock:
        c = _CALLS.setdefault(caller.role_arn, {"evaluated": 0, "denied": 0})
        c["evaluated"] += 1
        if denied:
            c["denied"] += 1


def identity_allows(account: str, principal: str, action: str, resource: str, context: dict,
                    region: str | None = None) -> bool:
    """For rules that decide a call themselves (kms.py): does the principal's identity
    policy allow this? True for principals the world does not evaluate."""
    caller = caller_for_principal(account, principal, region) if _installed() else None
    if caller is None:
        return True
    return identity_decision(caller, action, resource, context) == "Allow"


def identity_is_evaluated(account: str, principal: str) -> bool:
    """Is this principal's identity policy evaluated (the "iam" rule group installed,
    and an assumed role other than the stand-in admin role)?"""
    return _installed() and caller_for_principal(account, principal, None) is not None


def _installed() -> bool:
    from .common import INSTALLED_GROUPS

    return "iam" in INSTALLED_GROUPS


def denied_message(caller: Caller, action: str, resource: str, decision: str | None) -> str:
    why = (
        f"with an explicit deny in an identity-based policy"
        if decision == "Deny"
        else f"because no identity-based policy allows the {action} action"
    )
    return (
        f"User: {caller.session_arn} is not authorized to perform: {action} on resource: {resource} {why}"
    )


# =================================================================================
# What each call authorizes (Service Authorization Reference)
# =================================================================================
def _ec2_arn(region: str, account: str, kind: str, rid: str) -> str:
    part = partition(region)
    if kind in ("image", "snapshot"):  # owned by no account in their ARN
        return f"arn:{part}:ec2:{region}::{kind}/{rid}"
    return f"arn:{part}:ec2:{region}:{account}:{kind}/{rid}"


_EC2_PREFIX = {
    "i": "instance", "ami": "image", "snap": "snapshot", "vol": "volume", "eni": "network-interface",
    "sg": "security-group", "subnet": "subnet", "vpc": "vpc", "eipalloc": "elastic-ip",
    "lt": "launch-template", "pg": "placement-group", "key": "key-pair",
}


def _kind_of(rid: str) -> str:
    return _EC2_PREFIX.get(rid.split("-", 1)[0], "resource")


def _resource_tags(backend, rid: str) -> dict:
    """The tags of an existing EC2 resource, as its owner set them."""
    from .common import region_ec2_backends

    for b in [backend] + [x for x in region_ec2_backends(backend.region_name) if x is not backend]:
        try:
            tags = b.describe_tags(filters={"resource-id": [rid]})
        except Exception:  # noqa: BLE001 - an unknown id has no tags
            tags = []
        if tags:
            return {t["key"]: t["value"] for t in tags}
    return {}


def _tag_context(tags: dict, prefix: str) -> dict:
    ctx = {}
    for k, v in (tags or {}).items():
        ctx[f"{prefix}/{k}".lower()] = v
    return ctx


def _existing(response, rid: str, extra: dict | None = None) -> tuple:
    backend = response.ec2_backend
    tags = _resource_tags(backend, rid)
    ctx = {**_tag_context(tags, "aws:ResourceTag"), **_tag_context(tags, "ec2:ResourceTag")}
    ctx.update(extra or {})
    return (_ec2_arn(response.region, response.current_account, _kind_of(rid), rid), ctx)


def _new(response, kind: str, request_tags: dict, extra: dict | None = None) -> tuple:
    ctx = _tag_context(request_tags, "aws:RequestTag")
    if request_tags:
        ctx["aws:tagkeys"] = list(request_tags)
    ctx.update(extra or {})
    return (_ec2_arn(response.region, response.current_account, kind, "*"), ctx)


def _tag_specs(response) -> dict:
    """{resource type: {key: value}} of the request's TagSpecifications."""
    try:
        return response._parse_tag_specification() or {}
    except Exception:  # noqa: BLE001 - a malformed spec is the action's own error
        return {}


def _ids(response, name: str) -> list:
    """A list parameter by its API member name (moto parses requests by the service
    model: InstanceIds, Resources, SecurityGroupIds...)."""
    value = response._get_param(name) or []
    return [str(x) for x in (value if isinstance(value, list) else [value])]


def _tag_on_create(response, create_action: str, specs: dict) -> list:
    """Tag-on-create (EC2 UG, "Grant permission to tag Amazon EC2 resources during
    creation"): ec2:CreateTags on each new tagged resource, with ec2:CreateAction."""
    out = []
    for kind, tags in specs.items():
        arn, ctx = _new(response, kind, tags, {"ec2:createaction": create_action})
        out.append(("ec2:CreateTags", arn, ctx))
    return out


def _run_instances(response) -> list:
    specs = _tag_specs(response)
    itype = response._get_param("InstanceType")
    out = [
        ("ec2:RunInstances", *_new(response, "instance", specs.get("instance", {}), {"ec2:instancetype": itype})),
        ("ec2:RunInstances", *_new(response, "volume", specs.get("volume", {}))),
        ("ec2:RunInstances", *_new(response, "network-interface", specs.get("network-interface", {}))),
    ]
    image = response._get_param("ImageId")
    if image:
        out.append(("ec2:RunInstances", *_existing(response, image)))
    subnet = response._get_param("SubnetId")
    if subnet:
        out.append(("ec2:RunInstances", *_existing(response, subnet)))
    for sg in _ids(response, "SecurityGroupIds"):
        out.append(("ec2:RunInstances", *_existing(response, sg)))
    key_name = response._get_param("KeyName")
    if key_name:
        out.append(("ec2:RunInstances", _ec2_arn(response.region, response.current_account, "key-pair", key_name), {}))
    out += _tag_on_create(response, "RunInstances", specs)
    role_arn = _instance_profile_role(response)
    if role_arn:
        out.append(("iam:PassRole", role_arn, {"iam:passedtoservice": "ec2.amazonaws.com"}))
    return out


def _instance_profile_role(response) -> str | None:
    """IAM UG, "Using an IAM role to grant permissions to applications running on Amazon
    EC2 instances": launching with an instance profile needs iam:PassRole on its role."""
    arn = response._get_param("IamInstanceProfile.Arn")
    name = response._get_param("IamInstanceProfile.Name")
    if not arn and not name:
        return None
    try:
        from moto.iam.models import iam_backends

        iam = iam_backends[response.current_account][partition(response.region)]
        profile = iam.get_instance_profile_by_arn(arn) if arn else iam.get_instance_profile(name)
        roles = list(profile.roles)
        return roles[0].arn if roles else None
    except Exception:  # noqa: BLE001 - an unknown profile is RunInstances' own error
        return None


def _create_image(response) -> list:
    specs = _tag_specs(response)
    out = [
        ("ec2:CreateImage", *_existing(response, response._get_param("InstanceId") or "")),
        ("ec2:CreateImage", *_new(response, "image", specs.get("image", {}))),
        ("ec2:CreateImage", *_new(response, "snapshot", specs.get("snapshot", {}))),
    ]
    return out + _tag_on_create(response, "CreateImage", specs)


def _copy_image(response) -> list:
    specs = _tag_specs(response)
    source = response._get_param("SourceImageId") or ""
    region = response._get_param("SourceRegion") or response.region
    part = partition(region)
    out = [
        ("ec2:CopyImage", *_new(response, "image", specs.get("image", {}))),
        # Since 2024-10-28 CopyImage also authorizes the source image (EC2 UG "Grant
        # permissions to copy Amazon EC2 AMIs").
        ("ec2:CopyImage", f"arn:{part}:ec2:{region}::image/{source}", {}),
    ]
    return out + _tag_on_create(response, "CopyImage", specs)


def _create_tags(response, action: str) -> list:
    tags = {t.get("Key"): t.get("Value", "") for t in (response._get_param("Tags") or [])}
    out = []
    for rid in _ids(response, "Resources"):
        arn, ctx = _existing(response, rid)
        ctx.update(_tag_context(tags, "aws:RequestTag"))
        ctx["aws:tagkeys"] = list(tags)
        out.append((action, arn, ctx))
    return out


def _on_ids(action: str, param: str):
    def checks(response) -> list:
        return [(action, *_existing(response, rid)) for rid in _ids(response, param)]

    return checks


def _on_id(action: str, param: str):
    def checks(response) -> list:
        rid = response._get_param(param) or ""
        return [(action, *_existing(response, rid))]

    return checks


def _deregister_image(response) -> list:
    """DeregisterImage on the image; with DeleteAssociatedSnapshots, the world also asks
    ec2:DeleteSnapshot on each of its snapshots (the stricter reading: the API reference
    does not say which permission deleting them takes; ferry's roles allow both)."""
    image_id = response._get_param("ImageId") or ""
    out = [("ec2:DeregisterImage", *_existing(response, image_id))]
    if str(response._get_param("DeleteAssociatedSnapshots") or "").lower() == "true":
        from .create_image import image_snapshot_ids

        image = response.ec2_backend.amis.get(image_id)
        for snap_id in image_snapshot_ids(image) if image is not None else []:
            out.append(("ec2:DeleteSnapshot", *_existing(response, snap_id)))
    return out


def _associate_address(response) -> list:
    out = []
    alloc = response._get_param("AllocationId")
    if alloc:
        out.append(("ec2:AssociateAddress", *_existing(response, alloc)))
    inst = response._get_param("InstanceId")
    if inst:
        out.append(("ec2:AssociateAddress", *_existing(response, inst)))
    eni = response._get_param("NetworkInterfaceId")
    if eni:
        out.append(("ec2:AssociateAddress", *_existing(response, eni)))
    return out or [("ec2:AssociateAddress", "*", {})]


# EC2 API action -> the authorizations it needs; any other EC2 action is ec2:<Action>
# on "*" (Describe* and the other actions without resource-level permissions).
EC2_AUTHORIZATIONS = {
    "RunInstances": _run_instances,
    "CreateImage": _create_image,
    "CopyImage": _copy_image,
    "CreateTags": lambda r: _create_tags(r, "ec2:CreateTags"),
    "DeleteTags": lambda r: _create_tags(r, "ec2:DeleteTags"),
    "StartInstances": _on_ids("ec2:StartInstances", "InstanceIds"),
    "StopInstances": _on_ids("ec2:StopInstances", "InstanceIds"),
    "TerminateInstances": _on_ids("ec2:TerminateInstances", "InstanceIds"),
    "ModifyInstanceAttribute": _on_id("ec2:ModifyInstanceAttribute", "InstanceId"),
    "DescribeInstanceAttribute": _on_id("ec2:DescribeInstanceAttribute", "InstanceId"),
    "DeregisterImage": _deregister_image,
    "ModifyImageAttribute": _on_id("ec2:ModifyImageAttribute", "ImageId"),
    "DescribeImageAttribute": _on_id("ec2:DescribeImageAttribute", "ImageId"),
    "DeleteSnapshot": _on_id("ec2:DeleteSnapshot", "SnapshotId"),
    "ModifySnapshotAttribute": _on_id("ec2:ModifySnapshotAttribute", "SnapshotId"),
    "DescribeSnapshotAttribute": _on_id("ec2:DescribeSnapshotAttribute", "SnapshotId"),
    "AssociateAddress": _associate_address,
}

# Step Functions API action -> the request parameter naming the resource it is authorized
# on (Step Functions DG, "Creating granular permissions for non-admin users in Step
# Functions": state machine-level permissions, e.g. StartExecution, ListExecutions,
# DescribeStateMachine, act on the state machine's ARN; execution-level permissions, e.g.
# DescribeExecution, GetExecutionHistory, StopExecution, on the execution's ARN
# arn:aws:states:<region>:<account>:execution:<machine name>:<execution name>; Service
# Authorization Reference, "Actions, resources, and condition keys for AWS Step
# Functions": resource types stateMachine and execution). Any other states action is
# authorized on "*" (ListStateMachines and the other service-level actions).
STATES_AUTHORIZATIONS = {
    "StartExecution": ("stateMachineArn",),
    "StartSyncExecution": ("stateMachineArn",),
    "DescribeStateMachine": ("stateMachineArn",),
    "ListExecutions": ("stateMachineArn", "mapRunArn"),
    "DescribeExecution": ("executionArn",),
    "GetExecutionHistory": ("executionArn",),
    "StopExecution": ("executionArn",),
    "RedriveExecution": ("executionArn",),
    "DescribeStateMachineForExecution": ("executionArn",),
}


# The callback pattern's answers (Service Authorization Reference, "Actions, resources,
# and condition keys for AWS Step Functions": SendTaskSuccess, SendTaskFailure and
# SendTaskHeartbeat; AWS CDK's StateMachine.grantTaskResponse grants exactly these three
# on the state machine's ARN): authorized on the ARN of the state machine whose
# execution issued the task token (engine/sfn.py task_token_state_machine). A token the
# world did not issue (garbage, an activity's token) names no state machine: nothing is
# decided here, the action answers InvalidToken (or handles the activity token).
TASK_RESPONSE_ACTIONS = ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat")


def task_token_resource(token: str | None) -> str | None:
    try:
        from ..engine.sfn import task_token_state_machine
    except ImportError:  # pragma: no cover - the world without its engine
        return None
    return task_token_state_machine(token)


def _states_authorizations(response, api_action: str) -> list:
    if api_action in TASK_RESPONSE_ACTIONS:
        machine = task_token_resource(response._get_param("taskToken"))
        return [(f"states:{api_action}", machine, {})] if machine else []
    for param in STATES_AUTHORIZATIONS.get(api_action, ()):
        arn = response._get_param(param)
        if arn:
            return [(f"states:{api_action}", str(arn), {})]
    return [(f"states:{api_action}", "*", {})]


def cloudformation_stack_resource(region: str, account: str, stack_name: str | None) -> str:
    """The resource cloudformation:DescribeStacks (and the other stack actions) is
    authorized on: a stack ARN as given; a stack name: that stack's ARN
    (arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>) when it exists, else
    arn:...:stack/<name>/* (the ARN AWS names in its AccessDenied for a stack by name:
    "not authorized to perform: cloudformation:DescribeStacks on resource:
    arn:aws:cloudformation:us-east-2:...:stack/hpc/*", aws-samples/aws-hpc-tutorials#271;
    a policy naming `stack/<name>` without `/*` is refused, aws/aws-parallelcluster#754);
    no name (every stack): arn:...:stack/*/* (as AWS words it for ListStacks,
    jogold/cloudstructs#217)."""
    part = partition(region)
    base = f"arn:{part}:cloudformation:{region}:{account}:stack"
    if not stack_name:
        return f"{base}/*/*"
    if stack_name.startswith("arn:"):
        return stack_name
    try:
        from moto.cloudformation.models import cloudformation_backends

        backend = cloudformation_backends[account][region]
        for stack in list(backend.stacks.values()):
            if stack.name == stack_name and not str(stack.status).startswith("DELETE_COMPLETE"):
                return stack.stack_id
    except Exception:  # noqa: BLE001 - an unknown stack is the action's own error
        pass
    return f"{base}/{stack_name}/*"


CLOUDFORMATION_ON_A_STACK = {"DescribeStacks", "DescribeStackEvents", "DescribeStackResources",
                             "DescribeStackResource", "ListStackResources", "GetTemplate"}


def _cloudformation_authorizations(response, api_action: str) -> list:
    action = f"cloudformation:{api_action}"
    if api_action not in CLOUDFORMATION_ON_A_STACK:
        return [(action, "*", {})]
    return [(action, cloudformation_stack_resource(
        response.region, response.current_account, response._get_param("StackName")), {})]


def _events_authorizations(response, api_action: str) -> list:
    """events:PutEvents is authorized on each entry's event bus (Service Authorization
    Reference, "Actions, resources, and condition keys for Amazon EventBridge": PutEvents,
    resource type event-bus, arn:aws:events:<region>:<account>:event-bus/<name>); an
    entry without EventBusName goes to the caller's `default` bus. Other events actions:
    on "*"."""
    action = f"events:{api_action}"
    if api_action != "PutEvents":
        return [(action, "*", {})]
    base = f"arn:{partition(response.region)}:events:{response.region}:{response.current_account}:event-bus/"
    buses = []
    for entry in response._get_param("Entries") or []:
        name = (entry or {}).get("EventBusName") or "default"
        arn = name if str(name).startswith("arn:") else base + str(name)
        if arn not in buses:
            buses.append(arn)
    return [(action, arn, {}) for arn in buses] or [(action, base + "default", {})]


# KMS operations on a key are decided by kms.py (key policy + grants + identity_allows);
# these KMS actions have no key and are decided here.
KMS_WITHOUT_KEY = {"CreateKey", "ListKeys", "ListAliases", "GenerateRandom"}
ALWAYS_ALLOWED = {"sts:GetCallerIdentity"}  # STS API Reference: no permission needed


def authorizations(response, service: str, api_action: str) -> list:
    """[(action, resource ARN, context)] the request needs, [] when nothing is decided
    here (KMS on a key: kms.py)."""
    action = f"{service}:{api_action}"
    if action in ALWAYS_ALLOWED:
        return []
    if service == "ec2":
        fn = EC2_AUTHORIZATIONS.get(api_action)
        return fn(response) if fn else [(action, "*", {})]
    if service == "kms":
        return [(action, "*", {})] if api_action in KMS_WITHOUT_KEY else []
    if service == "states":
        return _states_authorizations(response, api_action)
    if service == "cloudformation":
        return _cloudformation_authorizations(response, api_action)
    if service == "events":
        return _events_authorizations(response, api_action)
    if service == "sts" and api_action == "AssumeRole":
        ctx = {}
        ext = response._get_param("ExternalId")
        if ext is not None:
            ctx["sts:externalid"] = ext
        return [(action, response._get_param("RoleArn") or "*", ctx)]
    return [(action, "*", {})]


# =================================================================================
# The hook and the denials
# =================================================================================
def _service_of(response) -> str | None:
    auth = (response.headers or {}).get("Authorization") or ""
    m = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/", auth)
    return m.group(2) if m else None


def _denial(response, service: str, message: str):
    from werkzeug.exceptions import HTTPException

    if service == "ec2":
        from moto.core.responses import ActionResult

        from .errors import ec2_error

        err = ec2_error("UnauthorizedOperation", f"You are not authorized to perform this operation. {message}")
        status, headers, body = response.serialized(ActionResult(err))

        class Unauthorized(HTTPException):
            code = 403

            def get_headers(self, *args, **kwargs):
                return [("Content-Type", "text/xml")]

        return Unauthorized(description=body)
    if service == "kms":
        from .errors import kms_access_denied

        return kms_access_denied(message)
    if service in ("states", "events"):
        # Step Functions / EventBridge API Reference, "Common Errors":
        # AccessDeniedException, HTTP 400 (awsJson: {"__type": ..., "message": ...}).
        from .errors import json_access_denied

        return json_access_denied(message)
    # STS, IAM and CloudFormation (awsQuery): AccessDenied, HTTP 403 (as CloudFormation
    # answers a DescribeStacks its caller may not make: "$fault: client, httpStatusCode:
    # 403", anomalyco/sst#3006).
    from .errors import sts_access_denied

    return sts_access_denied(message, namespace=service)


def authorize(response) -> None:
    """The rule (module docstring) for one request; raises the service's denial."""
    service = _service_of(response)
    if not service:
        return
    caller = caller_for(response.current_account, response.get_access_key(), getattr(response, "region", None))
    if caller is None:
        return
    api_action = response._get_action()
    for action, resource, context in authorizations(response, service, api_action):
        decision = identity_decision(caller, action, resource, context)
        if decision != "Allow":
            raise _denial(response, service, denied_message(caller, action, resource, decision))


def _hook(prev):
    def _authenticate_and_authorize_normal_action(self, resource: str = "*") -> None:
        authorize(self)
        return prev(self, resource)

    _authenticate_and_authorize_normal_action._ferry_iam = True
    return _authenticate_and_authorize_normal_action


def identity_policies_are_evaluated() -> None:
    """The rule (module docstring), installed on moto's access-control hook, which every
    query/JSON service request passes through before its action runs."""
    from moto.core.responses import BaseResponse

    BaseResponse._authenticate_and_authorize_normal_action = _hook(
        BaseResponse._authenticate_and_authorize_normal_action
    )


# =================================================================================
# State machines' execution roles: the calls Step Functions makes with them
# =================================================================================
# Step Functions makes its service calls (invoking a Lambda function, starting a nested
# execution) with the state machine's execution role ("How Step Functions works with
# IAM"; "IAM policies for integrated services"): the same identity-policy evaluation as
# above (identity_decision), so the usage report covers these roles too. The engine
# (engine/sfn.py) asks the functions below before each such call and fails the Task with
# the returned error; a role the world does not evaluate (unknown to IAM, the stand-in
# admin role, or the "iam" group not installed) is allowed everything, as above.

# The error names Step Functions gives a call its role may not make. Step Functions'
# clients are the AWS SDK for Java: an error code the service's API model does not list
# for the operation (AccessDeniedException is listed neither for Lambda Invoke nor for
# Step Functions StartExecution/DescribeExecution/StopExecution, see botocore's models)
# surfaces as the SDK's generic exception, named <Service>.AWS<Service>Exception; the
# cause is the Java SDK's message "<message> (Service: ...; Status Code: ...; Error Code:
# ...; Request ID: ...; Proxy: null)". Seen in real executions: a Task invoking a function
# its role may not invoke fails with error "Lambda.AWSLambdaException", cause "User:
# arn:aws:sts::<account>:assumed-role/<role>/<session> is not authorized to perform:
# lambda:InvokeFunction on resource: <function ARN> because no identity-based policy
# allows the lambda:InvokeFunction action (Service: AWSLambda; Status Code: 403; Error
# Code: AccessDeniedException; Request ID: ...; Proxy: null)" (awslabs/aws-deployment-
# framework#460, aws-samples/lambda-refarch-imagerecognition#19). The session name is 32
# random letters. StepFunctions.AWSStepFunctionsException is the same rule applied to
# Step Functions' own API (users Retry on that name for startExecution.sync:2 Tasks);
# its AccessDeniedException is HTTP 400 (awsJson 1.0).
LAMBDA_ACCESS_DENIED_ERROR = "Lambda.AWSLambdaException"
STATES_ACCESS_DENIED_ERROR = "StepFunctions.AWSStepFunctionsException"

# The EventBridge rule Step Functions manages for startExecution.sync / .sync:2.
STATES_SYNC_MANAGED_RULE = "StepFunctionsGetEventsForStepFunctionsExecutionRule"
STATES_SYNC_RULE_ACTIONS = ("events:PutTargets", "events:PutRule", "events:DescribeRule")

_STATES_SYNC_RESOURCE = re.compile(r"^arn:aws[\w-]*:states:::states:startExecution\.sync(?::2)?$")
_FUNCTION_ARN = re.compile(r"^arn:(aws[\w-]*):lambda:([\w-]+):(\d{12}):function:([^:]+)(?::([^:]+))?$")
_FUNCTION_PARTIAL_ARN = re.compile(r"^(\d{12}):function:([^:]+)(?::([^:]+))?$")
_STATE_MACHINE_ARN = re.compile(r"^arn:(aws[\w-]*):states:([\w-]+):(\d{12}):stateMachine:([^:]+)(?::.+)?$")


def state_machine_caller(role_arn: str | None, region: str | None) -> Caller | None:
    """The evaluated caller for the role a state machine's Task runs with (its execution
    role, or the Task's Credentials.RoleArn), in a Step Functions session; None when the
    world does not evaluate that role (see the section comment)."""
    if not _installed():
        return None
    m = _ROLE_ARN.match(role_arn or "")
    if not m:
        return None
    role = _role_by_arn(role_arn)
    if role is None or role.name == ORGANIZATION_ACCESS_ROLE:
        return None
    import random
    import string

    session = "".join(random.choice(string.ascii_letters) for _ in range(32))
    return Caller(m.group(2), region or "us-east-1", role, session)


def _first_denial(caller: Caller, checks: list) -> tuple | None:
    """(action, resource, message) of the first check the caller's identity policies do
    not allow (each check evaluated, and recorded, in order), or None."""
    for action, resource, context in checks:
        decision = identity_decision(caller, action, resource, context)
        if decision != "Allow":
            return action, resource, denied_message(caller, action, resource, decision)
    return None


def java_sdk_cause(message: str, service: str, status: int, code: str = "AccessDeniedException") -> str:
    """How a Step Functions error's Cause words a service error (see the section comment)."""
    import uuid

    return (f"{message} (Service: {service}; Status Code: {status}; Error Code: {code}; "
            f"Request ID: {uuid.uuid4()}; Proxy: null)")


def lambda_invoke_resource(function_name: str, qualifier: str | None, region: str, account: str) -> str:
    """The resource lambda:InvokeFunction is authorized on (Lambda DG, "Fine-tuning the
    Resources and Conditions sections of policies", function names and ARNs in policies):
    "Lambda makes authorization decisions by comparing the resource element in the IAM
    policy with both the FunctionName and Qualifier passed in API calls": an unqualified
    call is the unqualified function ARN (a policy naming only `function:f:*` does not
    allow it), a call with a version or alias (`f:live`, `f:$LATEST`, or the Qualifier
    parameter) is `function:f:<qualifier>` (a policy naming only the unqualified ARN does
    not allow it; `function:f:*` and SAM's LambdaInvokePolicy `function:f*` do).
    FunctionName may be a name, a partial ARN (`<account>:function:f`) or an ARN."""
    name, part, q = str(function_name or ""), partition(region), None
    m = _FUNCTION_ARN.match(name)
    if m:
        part, region, account, name, q = m.groups()
    else:
        m = _FUNCTION_PARTIAL_ARN.match(name)
        if m:
            account, name, q = m.groups()
        elif ":" in name:
            name, q = name.split(":", 1)
    q = qualifier or q
    arn = f"arn:{part}:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{q}" if q else arn


def lambda_task_denial(role_arn: str | None, region: str, account: str, function_name: str,
                       qualifier: str | None = None) -> tuple[str, str] | None:
    """Rule: a Lambda Task invokes with the state machine's role (Step Functions DG,
    "IAM policies for invoking AWS Lambda functions" / "Invoke an AWS Lambda function
    with Step Functions": the role needs lambda:InvokeFunction on the function). Both
    forms: `Resource: <function ARN>` and `arn:aws:states:::lambda:invoke` (FunctionName,
    Qualifier). Returns None when the role may invoke it, else (error, cause) as Step
    Functions reports it: Lambda.AWSLambdaException, the cause naming the session, the
    action and the function ARN (see the section comment); a Task's Retry/Catch match
    that name like any other."""
    caller = state_machine_caller(role_arn, region)
    if caller is None:
        return None
    resource = lambda_invoke_resource(function_name, qualifier, region, account)
    denial = _first_denial(caller, [("lambda:InvokeFunction", resource, {})])
    if denial is None:
        return None
    return LAMBDA_ACCESS_DENIED_ERROR, java_sdk_cause(denial[2], "AWSLambda", 403)


def managed_rule_arn(region: str, account: str) -> str:
    return f"arn:{partition(region)}:events:{region}:{account}:rule/{STATES_SYNC_MANAGED_RULE}"


def managed_rule_message(role_arn: str) -> str:
    """AWS's words when the role cannot manage the .sync rule (as CloudFormation/Terraform
    users quote CreateStateMachine's AccessDeniedException)."""
    return f"'{role_arn}' is not authorized to create managed-rule."


def nested_start_authorizations(state_machine_arn: str, execution_name: str, sync: bool,
                                region: str, account: str) -> list:
    """What a nested-execution Task needs, in the order it is checked (Step Functions DG,
    "IAM policies for nested AWS Step Functions calls", a.k.a. "Start a new AWS Step
    Functions state machine from a running execution", IAM section):
    * always: states:StartExecution on the child state machine's ARN;
    * `.sync` and `.sync:2` ("Synchronous"): also events:PutTargets, events:PutRule and
      events:DescribeRule on arn:aws:events:<region>:<account>:rule/
      StepFunctionsGetEventsForStepFunctionsExecutionRule, and states:DescribeExecution
      and states:StopExecution on the child's executions
      (arn:aws:states:<region>:<account>:execution:<child name>:*), here the ARN of the
      execution about to start (its name, or the UUID Step Functions gives it).
    Asynchronous (`startExecution`, `.waitForTaskToken`) needs only StartExecution."""
    checks = [("states:StartExecution", state_machine_arn, {})]
    if not sync:
        return checks
    m = _STATE_MACHINE_ARN.match(state_machine_arn or "")
    if m:
        part, sm_region, sm_account, sm_name = m.groups()
        execution_arn = f"arn:{part}:states:{sm_region}:{sm_account}:execution:{sm_name}:{execution_name}"
    else:  # a malformed ARN is StartExecution's own error (InvalidArn)
        execution_arn = "*"
    rule = managed_rule_arn(region, account)
    checks += [(action, rule, {}) for action in STATES_SYNC_RULE_ACTIONS]
    checks += [("states:DescribeExecution", execution_arn, {}), ("states:StopExecution", execution_arn, {})]
    return checks


def nested_start_denial(role_arn: str | None, region: str, account: str, state_machine_arn: str,
                        execution_name: str, sync: bool) -> tuple[str, str] | None:
    """Rule: a nested-execution Task (`arn:aws:states:::states:startExecution`, `.sync`,
    `.sync:2`) is authorized, before the child starts, for every action of
    `nested_start_authorizations` with the state machine's role. Returns None, or the
    Task's (error, cause): StepFunctions.AWSStepFunctionsException (see the section
    comment) with the AccessDenied message naming the action and resource, or, for the
    EventBridge rule actions, "'<role ARN>' is not authorized to create managed-rule."
    (the message AWS gives for them when the state machine is created, see
    sync_integrations_need_the_managed_rule), so no child is started.

    Where the world is stricter than AWS documents: AWS checks the rule actions when the
    state machine is created or updated (the rule below) and does not document checking
    them again at run time, nor when it uses DescribeExecution (following the child) and
    StopExecution (stopping the child when the parent Task is stopped, times out or its
    Map/Parallel fails); the world checks all of them before starting the child, so a
    role that loses one after the state machine was created fails the Task here."""
    caller = state_machine_caller(role_arn, region)
    if caller is None:
        return None
    denial = _first_denial(
        caller, nested_start_authorizations(state_machine_arn, execution_name, sync, region, account))
    if denial is None:
        return None
    action, _resource, message = denial
    if action in STATES_SYNC_RULE_ACTIONS:
        message = managed_rule_message(caller.role_arn)
    return STATES_ACCESS_DENIED_ERROR, java_sdk_cause(message, "AWSStepFunctions", 400)


def _definition_uses_states_sync(definition) -> bool:
    """Does an ASL definition (JSON text or dict) have a Task whose Resource is
    arn:aws:states:::states:startExecution.sync or .sync:2 (at any depth: Parallel
    branches, Map iterators / item processors)?"""
    try:
        doc = json.loads(definition) if isinstance(definition, str) else definition
    except ValueError:
        return False

    def walk(states) -> bool:
        for state in (states or {}).values():
            if not isinstance(state, dict):
                continue
            if state.get("Type") == "Task" and _STATES_SYNC_RESOURCE.match(str(state.get("Resource", ""))):
                return True
            for branch in state.get("Branches") or []:
                if isinstance(branch, dict) and walk(branch.get("States")):
                    return True
            for key in ("Iterator", "ItemProcessor"):
                inner = state.get(key)
                if isinstance(inner, dict) and walk(inner.get("States")):
                    return True
        return False

    return isinstance(doc, dict) and walk(doc.get("States"))


def sync_integrations_need_the_managed_rule() -> None:
    """Rule: CreateStateMachine and UpdateStateMachine of a definition with a
    `states:startExecution.sync` / `.sync:2` Task check that its execution role may
    manage the EventBridge rule Step Functions uses to follow nested executions
    (Step Functions DG, "IAM policies for nested AWS Step Functions calls", Synchronous:
    events:PutTargets, events:PutRule, events:DescribeRule on
    arn:aws:events:<region>:<account>:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule).
    Without them the call fails with AccessDeniedException "'<role ARN>' is not
    authorized to create managed-rule." (HTTP 400), as users report it from
    CloudFormation and Terraform (nasa/cumulus#2693: "error creating Step Function State
    Machine (...): AccessDeniedException: 'arn:aws:iam::...:role/...-steprole' is not
    authorized to create managed-rule."; terraform-aws-modules/terraform-aws-step-functions#41),
    so a template that lacks them fails to deploy, here as there. The three actions are
    evaluated (and recorded for the usage report) with the role's identity policies; a
    role the world does not evaluate passes."""
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.models import StepFunctionBackend

    class ManagedRuleAccessDenied(AWSError):
        TYPE = "AccessDeniedException"
        STATUS = 400

    def check(backend, definition, role_arn) -> None:
        if not role_arn or not _definition_uses_states_sync(definition):
            return
        caller = state_machine_caller(role_arn, backend.region_name)
        if caller is None:
            return
        rule = managed_rule_arn(backend.region_name, backend.account_id)
        if _first_denial(caller, [(action, rule, {}) for action in STATES_SYNC_RULE_ACTIONS]) is not None:
            raise ManagedRuleAccessDenied(managed_rule_message(caller.role_arn))

    original_create = StepFunctionBackend.create_state_machine
    original_update = StepFunctionBackend.update_state_machine

    def create_state_machine(self, name, definition, roleArn, *args, **kwargs):
        check(self, definition, roleArn)
        return original_create(self, name, definition, roleArn, *args, **kwargs)

    def update_state_machine(self, arn, definition=None, role_arn=None, *args, **kwargs):
        if definition is not None or role_arn is not None:
            current = self.describe_state_machine(arn)
            check(self, definition if definition is not None else current.definition,
                  role_arn if role_arn is not None else current.roleArn)
        return original_update(self, arn, definition, role_arn, *args, **kwargs)

    StepFunctionBackend.create_state_machine = create_state_machine
    StepFunctionBackend.update_state_machine = update_state_machine


# =================================================================================
# Least privilege
# =================================================================================
def usage_report() -> dict:
    """Per evaluated role that exists: calls evaluated/denied, and each Allow statement's
    actions that no call used (statement Sid or index, policy name)."""
    from moto.iam.models import iam_backends

    out = {}
    with _lock:
        used = {k: set(v) for k, v in _USED.items()}
        calls = {k: dict(v) for k, v in _CALLS.items()}
    for account in list(iam_backends.keys()):
        for part in ("aws",):
            backend = iam_backends[account][part]
            for role in list(backend.roles.values()):
                if role.arn not in calls and role.arn not in used:
                    continue
                role_used = used.get(role.arn, set())
                unused = []
                for name, doc in role_policies(role):
                    for i, st in enumerate(as_list(doc.get("Statement"))):
                        if not isinstance(st, dict) or str(st.get("Effect", "")).lower() != "allow":
                            continue
                        for pattern in as_list(st.get("Action")):
                            if (name, i, str(pattern)) not in role_used:
                                unused.append({"policy": name, "statement": st.get("Sid", i), "action": str(pattern)})
                out[role.arn] = {"calls": calls.get(role.arn, {}), "unused": unused}
    return out


def reset_usage() -> None:
    with _lock:
        _USED.clear()
        _CALLS.clear()
