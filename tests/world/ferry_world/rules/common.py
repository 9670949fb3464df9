"""Helpers every rule module shares: moto's backends looked up without creating new ones,
the partition of a Region, who is calling (the request context), tags seen per account,
and which rule groups are installed. No AWS rule lives here."""
from __future__ import annotations

import datetime as _dt
import threading

from ..engine import clock

# Rule groups (rules/__init__.py GROUPS) installed in this process, added when a group's
# last rule is in: rules ask it where they compose with another group.
INSTALLED_GROUPS: set[str] = set()

_ctx = threading.local()  # who is calling: set at the start of every request

# The one lock of the migration rules (image states settling, RunInstances ClientTokens).
STATE_LOCK = threading.RLock()


def later(seconds: float) -> _dt.datetime:
    """The simulated time `seconds` from now."""
    return clock.now() + _dt.timedelta(seconds=float(seconds))


def partition(region: str | None) -> str:
    from moto.utilities.utils import get_partition

    return get_partition(region or "us-east-1")


# =================================================================================
# Backends without creating new ones
# =================================================================================
def existing_backend(backend_dict, account: str, region: str):
    if account not in list(backend_dict.keys()):
        return None
    regions = backend_dict[account]
    if region not in list(regions.keys()):
        return None
    return regions[region]


def ec2_backends():
    from moto.ec2.models import ec2_backends as backends

    return backends


def kms_backends():
    from moto.kms.models import kms_backends as backends

    return backends


def region_ec2_backends(region: str) -> list:
    """The EC2 backend of every account that exists in `region`."""
    ec2 = ec2_backends()
    out = []
    for account in list(ec2.keys()):
        backend = existing_backend(ec2, account, region)
        if backend is not None:
            out.append(backend)
    return out


def other_ec2_backends(backend) -> list:
    """EC2 backends of every other account that exists in `backend`'s region."""
    return [b for b in region_ec2_backends(backend.region_name) if b.account_id != backend.account_id]


def find_in_region(backend, collection: str, item_id: str):
    """The AMI/snapshot (`collection` "amis" or "snapshots") with this id in the caller's
    own backend, else in any account's backend of the same region, whether or not the
    caller may use it (that is the sharing rules' business), or None."""
    own = getattr(backend, collection).get(item_id)
    if own is not None:
        return own
    for other in region_ec2_backends(backend.region_name):
        items = getattr(other, collection)
        if other is not backend and item_id in items:
            return items[item_id]
    return None


def shared_by_others(backend, collection: str, shared_with) -> list:
    """The AMIs/snapshots of other accounts (same region) that `shared_with(item,
    account)` says are shared with `backend`'s account."""
    out = []
    for other in other_ec2_backends(backend):
        for item in list(getattr(other, collection).values()):
            # moto copies the default (amazon-owned) AMIs into every backend: only what
            # an account really owns counts as its own.
            if item.owner_id != other.account_id:
                continue
            if shared_with(item, backend.account_id):
                out.append(item)
    return out


def own_item(backend, collection: str, item_id: str, shared_with, not_owner: str, not_found):
    """The caller's own AMI/snapshot with this id, for calls only its owner may make:
    one the caller merely sees (shared with it) -> ERRORS[not_owner] (AuthFailure), an
    unknown one -> `not_found()`."""
    from .errors import ERRORS, ec2_error

    own = getattr(backend, collection).get(item_id)
    if own is not None:
        return own
    if find_visible(backend, collection, item_id, shared_with) is not None:
        code, msg = ERRORS[not_owner]
        raise ec2_error(code, msg.format(id=item_id))
    raise not_found()


def find_visible(backend, collection: str, item_id: str, shared_with):
    """The caller's own AMI/snapshot with this id, else one shared with it, else None."""
    own = getattr(backend, collection).get(item_id)
    if own is not None:
        return own
    for item in shared_by_others(backend, collection, shared_with):
        if item.id == item_id:
            return item
    return None


# =================================================================================
# Request context: who is calling (set at the start of every request)
# =================================================================================
def principal_for(account: str, access_key: str | None, region: str | None) -> str:
    """The IAM principal behind an access key: the assumed role's ARN, a user's ARN, or
    the account root."""
    part = partition(region)
    root = f"arn:{part}:iam::{account}:root"
    try:
        from moto.iam.models import iam_backends

        if account not in list(iam_backends.keys()):
            return root
        iam = iam_backends[account][part]
        key = getattr(iam, "access_keys", {}).get(access_key) if access_key else None
        if key is not None:
            if getattr(key, "role_arn", None):
                return key.role_arn
            if getattr(key, "user_name", None):
                return f"arn:{part}:iam::{account}:user/{key.user_name}"
    except Exception:  # pragma: no cover - defensive: never break a request here
        pass
    return root


def _wrap_setup_class(prev):
    def setup_class(self, *args, **kwargs):
        result = prev(self, *args, **kwargs)
        try:
            account = self.current_account
            region = getattr(self, "region", None)
            _ctx.account = account
            _ctx.region = region
            _ctx.principal = principal_for(account, getattr(self, "access_key", None), region)
        except Exception:  # pragma: no cover
            _ctx.account = None
            _ctx.principal = None
        return result

    setup_class._ferry_sharing = True
    return setup_class


def every_request_knows_its_caller() -> None:
    """Support for the key-use rules (kms.py): every request records the account and the
    principal (assumed role, user or root) it is served for."""
    from moto.core.responses import BaseResponse

    BaseResponse.setup_class = _wrap_setup_class(BaseResponse.setup_class)


def caller_of(account: str, region: str | None = None) -> str:
    """The principal ARN making the current request when it acts as `account`, else the
    account root (calls made by the world itself, outside a request)."""
    if getattr(_ctx, "account", None) == account and getattr(_ctx, "principal", None):
        return _ctx.principal
    return f"arn:{partition(region)}:iam::{account}:root"


def wrap_get_tags(prev):
    def get_tags(self):
        """Tags are per account (EC2 UG "Tag your resources": tags on a shared AMI or
        snapshot are visible only to the account that added them)."""
        viewer = getattr(_ctx, "account", None)
        owner = self.ec2_backend
        if viewer and viewer != owner.account_id and getattr(self, "id", None):
            vb = existing_backend(ec2_backends(), viewer, owner.region_name)
            return vb.describe_tags(filters={"resource-id": [self.id]}) if vb is not None else []
        return prev(self)

    return get_tags


def with_client_token(backend, slot: str, token: str | None, fingerprint: str, lock, mismatch, answer, call):
    """EC2 API Reference, "Ensuring idempotency in Amazon EC2 API requests": a request
    repeated with the same ClientToken and the same parameters returns the first one's
    result and makes nothing new; the same token with other parameters fails
    (`mismatch()`, IdempotentParameterMismatch). `call()` serves a new request and returns
    (its response, what it made or None); `answer(made)` answers a repeat (None: serve
    it again, e.g. a DryRun). Tokens live on the account/region backend, in `slot`."""
    tokens = backend.__dict__.setdefault(slot, {})
    with lock:
        if token and token in tokens:
            previous, made = tokens[token]
            if previous != fingerprint:
                raise mismatch()
            repeat = answer(made)
            if repeat is not None:
                return repeat
        result, made = call()
        if token and made is not None:
            tokens[token] = (fingerprint, made)
        return result


def call_with_request(local, request_attr: str, request, made_attr: str, call) -> tuple:
    """Serve a response-layer call whose backend layer needs the request: `local.<request_attr>`
    holds it while `call()` runs, and the backend layer leaves what it made in
    `local.<made_attr>`. Returns (the response, what was made or None)."""
    setattr(local, request_attr, request)
    setattr(local, made_attr, None)
    try:
        result = call()
    finally:
        setattr(local, request_attr, None)
    made = getattr(local, made_attr, None)
    setattr(local, made_attr, None)
    return result, made
