"""Eventual consistency: what a caller sees only a while after the call that made it.

- EC2 (describe_finds_new_ids_only_after_a_while): the ids a create call returned are not
  found by the creating account's Describe* by id for `describeNotFoundAfterCreateSeconds`
  of simulated time, and filters do not list them yet.
- KMS (new_kms_grants_take_effect_after_a_while): a new grant counts for its grantee
  (kms.kms_key_allows asks grant_in_effect) only `kmsGrantDelaySeconds` after
  CreateGrant, except in a KMS request that passes the grant's token. EC2 using a key on
  a caller's behalf (launch, start, copy) passes no token and waits.
- EC2 sharing (shares_reach_grantees_after_a_while): a launch permission or
  createVolumePermission just added counts for the accounts it names (what they see and
  may copy or launch) only `sharePropagationSeconds` later; its owner sees it at once.

Both are installed on moto's request dispatch (BaseResponse.call_action): for the one
request being served they wrap the action's method, whatever rule implements it (the
sharing group replaces some Describe* calls after the migration group is in), after
moto's access-control check (rules/iam.py: an unauthorized call fails as unauthorized,
not as NotFound). So where they sit in the install order does not matter, and each
installs once however many groups list it.
"""
from __future__ import annotations

import json
import threading
from typing import Any, Callable

from ..engine import clock, config
from .common import later
from .errors import not_found

_installed: set[str] = set()  # rules of this module already installed in this process
_tls = threading.local()  # the grant tokens of the KMS request this thread serves


def _per_request(hooks_for: Callable[[Any, str], Callable | None]) -> None:
    """Wrap BaseResponse.call_action: when `hooks_for(response, action)` answers a hook
    for a request, the action's method is `hook(response, method)` for that request only
    (an attribute of the response object, shadowing the class's method)."""
    from moto.core.responses import BaseResponse
    from moto.core.utils import camelcase_to_underscores

    prev = BaseResponse.call_action

    def call_action(self):
        try:
            action = camelcase_to_underscores(self._get_action())
            hook = hooks_for(self, action) if action and hasattr(self, action) else None
        except Exception:  # noqa: BLE001 - a request we cannot read is served as it is
            hook = None
        if hook is None:
            return prev(self)
        method = getattr(self, action)
        self.__dict__[action] = lambda: hook(self, method)
        try:
            return prev(self)
        finally:
            self.__dict__.pop(action, None)

    BaseResponse.call_action = call_action


# =================================================================================
# EC2: ids just created
# =================================================================================
def _stamp(item: Any, account: str) -> None:
    """`item` (an AMI, snapshot or instance a create call returned) is found only from
    the simulated time describeNotFoundAfterCreateSeconds from now on. A repeat of the
    call (ClientToken) returns it again without restarting the window."""
    if item is None or "_ferry_visible_at" in item.__dict__:
        return
    item.__dict__["_ferry_visible_at"] = later(float(config.get("describeNotFoundAfterCreateSeconds")))
    item.__dict__["_ferry_created_by"] = account


def not_yet_visible(item: Any, account: str) -> bool:
    """Is `item` still unknown to `account` (its creator, inside the window)?"""
    if item is None:
        return False
    at = item.__dict__.get("_ferry_visible_at")
    return at is not None and item.__dict__.get("_ferry_created_by") == account and clock.now() < at


def _instance(backend, instance_id: str):
    try:
        return backend.get_instance_by_id(instance_id)
    except Exception:  # noqa: BLE001
        return None


def _result(answer):
    return getattr(answer, "result", None)


def _made_by(action: str, backend, answer) -> list:
    """What a create call's answer returned: the AMIs, snapshots or instances."""
    result = _result(answer)
    if action in ("create_image", "copy_image", "register_image"):
        return [backend.amis.get((result or {}).get("ImageId"))] if isinstance(result, dict) else []
    if action == "copy_snapshot":
        return [backend.snapshots.get((result or {}).get("SnapshotId"))] if isinstance(result, dict) else []
    if action == "create_snapshots":
        return list((result or {}).get("Snapshots") or []) if isinstance(result, dict) else []
    if action == "create_snapshot":
        return [result] if getattr(result, "id", "").startswith("snap-") else []
    if action == "run_instances":
        return list(getattr(result, "instances", None) or [])
    return []


CREATE_ACTIONS = ("create_image", "copy_image", "register_image", "run_instances",
                  "create_snapshot", "create_snapshots", "copy_snapshot")

# Describe* by id: action -> (id parameter, kind of id, where the backend keeps them)
DESCRIBE_BY_ID = {
    "describe_images": ("ImageIds", "image", "amis"),
    "describe_image_attribute": ("ImageId", "image", "amis"),
    "describe_snapshots": ("SnapshotIds", "snapshot", "snapshots"),
    "describe_snapshot_attribute": ("SnapshotId", "snapshot", "snapshots"),
    "describe_instances": ("InstanceIds", "instance", None),
    "describe_instance_attribute": ("InstanceId", "instance", None),
    "describe_instance_status": ("InstanceIds", "instance", None),
}
# Describe* that list: action -> the answer's list
DESCRIBE_LISTS = {"describe_images": "Images", "describe_snapshots": "Snapshots",
                  "describe_instances": "Reservations", "describe_instance_status": "InstanceStatuses"}


def _created(response, action: str):
    def hook(self, method):
        answer = method()
        for item in _made_by(action, self.ec2_backend, answer):
            _stamp(item, self.current_account)
        return answer

    return hook


def _described(response, action: str):
    param, kind, collection = DESCRIBE_BY_ID[action]

    def hook(self, method):
        account, backend = self.current_account, self.ec2_backend
        value = self._get_param(param)
        ids = list(value) if isinstance(value, list) else ([value] if value else [])
        find = (lambda i: _instance(backend, i)) if collection is None else getattr(backend, collection).get
        young = [i for i in ids if not_yet_visible(find(i), account)]
        if young:
            raise not_found(kind, young)
        answer = method()
        key = DESCRIBE_LISTS.get(action)
        result = _result(answer)
        if key and isinstance(result, dict) and isinstance(result.get(key), list):
            if key == "Reservations":
                result[key] = [r for r in result[key]
                               if not (r.instances and all(not_yet_visible(i, account) for i in r.instances))]
            else:
                result[key] = [item for item in result[key] if not not_yet_visible(item, account)]
        return answer

    return hook


def describe_finds_new_ids_only_after_a_while() -> None:
    """EC2 developer guide, "Eventual consistency in the Amazon EC2 API": "if you run a
    command to modify or describe the resource that you just created, its ID might not
    have propagated throughout the system, and you will get an error responding that the
    resource does not exist" (e.g. InvalidInstanceID.NotFound right after RunInstances);
    callers are to retry Describe with backoff. The world: for
    `describeNotFoundAfterCreateSeconds` of simulated time after CreateImage, CopyImage,
    RegisterImage, RunInstances, CreateSnapshot(s) or CopySnapshot, the ids it returned
    are, for the account that created them, NotFound by DescribeImages /
    DescribeImageAttribute (InvalidAMIID.NotFound), DescribeInstances /
    DescribeInstanceAttribute / DescribeInstanceStatus (InvalidInstanceID.NotFound), DescribeSnapshots /
    DescribeSnapshotAttribute (InvalidSnapshot.NotFound), and filter-only describes do
    not list them yet. Other calls (RunInstances from the image, CreateTags, ...) see
    them at once."""
    if "describe" in _installed:
        return
    from moto.ec2.responses import EC2Response

    def hooks_for(response, action):
        if not isinstance(response, EC2Response):
            return None
        if action in CREATE_ACTIONS:
            return _created(response, action)
        if action in DESCRIBE_BY_ID:
            return _described(response, action)
        return None

    _per_request(hooks_for)
    _installed.add("describe")


# =================================================================================
# KMS: grants just created
# =================================================================================
def grant_in_effect(grant) -> bool:
    """Does `grant` count yet (kms.kms_key_allows)? Once kmsGrantDelaySeconds have passed
    since CreateGrant made it, or at once in a KMS request whose GrantTokens include one
    of its tokens. Grants made before the rule was installed always count."""
    at = grant.__dict__.get("_ferry_effective_at")
    if at is None or clock.now() >= at:
        return True
    tokens = getattr(_tls, "grant_tokens", None)
    if not tokens:
        return False
    return bool(tokens & ({grant.token} | grant.__dict__.get("_ferry_tokens", set())))


def _with_grant_tokens(action: str):
    def hook(self, method):
        tokens = self._get_param("GrantTokens") or []
        _tls.grant_tokens = {t for t in tokens if isinstance(t, str)}
        try:
            answer = method()
        finally:
            _tls.grant_tokens = None
        if action == "create_grant":
            _note_grant(self, answer)
        return answer

    return hook


def _note_grant(response, answer) -> None:
    """A grant CreateGrant answered: stamped when new (a retry by Name returns an older
    grant, whose time does not restart); every token answered for it makes it effective."""
    from .kms import kms_lookup

    try:
        body = json.loads(answer) if isinstance(answer, (str, bytes)) else None
    except ValueError:
        return
    if not isinstance(body, dict) or not body.get("GrantId"):
        return
    _backend, key = kms_lookup(response, response._get_param("KeyId") or "")
    grant = key.grants.get(body["GrantId"]) if key is not None else None
    if grant is None:
        return
    if "_ferry_effective_at" not in grant.__dict__:
        grant.__dict__["_ferry_effective_at"] = later(float(config.get("kmsGrantDelaySeconds")))
    if body.get("GrantToken"):
        grant.__dict__.setdefault("_ferry_tokens", set()).add(body["GrantToken"])


def new_kms_grants_take_effect_after_a_while() -> None:
    """KMS developer guide, "Using a grant token" (and KMS API Reference "CreateGrant"):
    "When you create a grant, the grant might not be effective immediately. ... It
    typically takes less than a few seconds for the change to propagate throughout the
    system, but in some cases it can take several minutes. ... if a grant that is so new
    that it is not yet known to all of AWS KMS, the request might fail with an
    AccessDeniedException error. To use the permissions in a new grant immediately, use
    the grant token for the grant ... You can submit a grant token to any AWS KMS grant
    operation". The world: a grant counts in key use only `kmsGrantDelaySeconds` of
    simulated time after CreateGrant made it, or at once in a KMS request whose
    GrantTokens name it (grant_in_effect). EC2 (launch, start, copy) cannot pass one."""
    if "grants" in _installed:
        return
    from moto.kms.responses import KmsResponse

    def hooks_for(response, action):
        return _with_grant_tokens(action) if isinstance(response, KmsResponse) else None

    _per_request(hooks_for)
    _installed.add("grants")


# =================================================================================
# EC2: launch permissions and createVolumePermission just added
# =================================================================================
def _lp_key(lp: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in lp.items()))


def permission_in_effect(item: Any, key: tuple) -> bool:
    """Does the permission `key` of `item` (an AMI's launch permission, `_lp_key`, or a
    snapshot's ("UserId", id) / ("Group", "all")) count yet for the accounts it names?
    Permissions added before the rule was installed always count."""
    at = (item.__dict__.get("_ferry_shared_at") or {}).get(key)
    return at is None or clock.now() >= at


def effective_launch_permissions(ami: Any) -> list:
    """The launch permissions of `ami` that reach the accounts they name by now."""
    return [lp for lp in ami.launch_permissions if permission_in_effect(ami, _lp_key(lp))]


def _stamp_permissions(item: Any, added: list, removed: list) -> None:
    stamps = item.__dict__.setdefault("_ferry_shared_at", {})
    for key in removed:
        stamps.pop(key, None)
    for key in added:
        if key not in stamps:
            stamps[key] = later(float(config.get("sharePropagationSeconds")))


def _wrap_modify_image_attribute(prev):
    def modify_image_attribute(self, ami_id, launch_permissions_to_add=None, launch_permissions_to_remove=None, *args, **kwargs):
        before = {_lp_key(lp) for lp in (self.amis[ami_id].launch_permissions if ami_id in self.amis else [])}
        answer = prev(self, ami_id, launch_permissions_to_add, launch_permissions_to_remove, *args, **kwargs)
        ami = self.amis.get(ami_id)
        if ami is not None:
            after = {_lp_key(lp) for lp in ami.launch_permissions}
            _stamp_permissions(ami, sorted(after - before), sorted(before - after))
        return answer

    return modify_image_attribute


def _wrap_add_cvp(prev):
    def add_create_volume_permission(self, snapshot_id, user_ids=None, groups=None):
        snap = self.snapshots.get(snapshot_id)
        before = (set(snap.create_volume_permission_userids), set(snap.create_volume_permission_groups)) if snap else (set(), set())
        answer = prev(self, snapshot_id, user_ids=user_ids, groups=groups)
        if snap is not None:
            added = [("UserId", u) for u in snap.create_volume_permission_userids if u not in before[0]]
            added += [("Group", g) for g in snap.create_volume_permission_groups if g not in before[1]]
            _stamp_permissions(snap, added, [])
        return answer

    return add_create_volume_permission


def _wrap_remove_cvp(prev):
    def remove_create_volume_permission(self, snapshot_id, user_ids=None, groups=None):
        answer = prev(self, snapshot_id, user_ids=user_ids, groups=groups)
        snap = self.snapshots.get(snapshot_id)
        if snap is not None:
            gone = [("UserId", u) for u in (user_ids or []) if u not in snap.create_volume_permission_userids]
            gone += [("Group", g) for g in (groups or []) if g not in snap.create_volume_permission_groups]
            _stamp_permissions(snap, [], gone)
        return answer

    return remove_create_volume_permission


def shares_reach_grantees_after_a_while() -> None:
    """EC2 developer guide, "Eventual consistency in the Amazon EC2 API": "the result of
    an API command you run that affects your Amazon EC2 resources might not be
    immediately visible to all subsequent commands you run". Sharing is such a command:
    an account that was just given a launch permission may not see the AMI yet
    (DescribeImages: InvalidAMIID.NotFound) and one just given createVolumePermission may
    not copy or restore the snapshot yet. AWS gives no figure; the world: a permission
    added by ModifyImageAttribute / ModifySnapshotAttribute counts for the accounts it
    names only `sharePropagationSeconds` of simulated time later (images._shared_with,
    snapshots.snapshot_shared_with ask permission_in_effect); the owner sees its own
    attribute at once; a removal counts at once (the stricter reading)."""
    if "shares" in _installed:
        return
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.models.elastic_block_store import EBSBackend

    AmiBackend.modify_image_attribute = _wrap_modify_image_attribute(AmiBackend.modify_image_attribute)
    EBSBackend.add_create_volume_permission = _wrap_add_cvp(EBSBackend.add_create_volume_permission)
    EBSBackend.remove_create_volume_permission = _wrap_remove_cvp(EBSBackend.remove_create_volume_permission)
    _installed.add("shares")
