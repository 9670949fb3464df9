"""EC2 state-change events on EventBridge: the world's images and instances announce their
state changes on the default event bus of their account and Region, at the simulated
time they happen, as EC2 does.

AWS documents followed:

* EC2 User Guide, "Monitor AMI events using Amazon EventBridge": EC2 sends an
  "EC2 AMI State Change" event to the default bus when an AMI becomes `available` or
  `failed` (CreateImage, CopyImage, RegisterImage) and when it is `deregistered`
  (DeregisterImage); "Events are generated on a best effort basis". The world emits
  (`disabled`, DisableImage, is not modelled: the world has no DisableImage):

    {"version": "0", "id": "<uuid>", "detail-type": "EC2 AMI State Change",
     "source": "aws.ec2", "account": "<image owner>", "time": "2026-01-01T12:00:00Z",
     "region": "<image region>", "resources": ["arn:aws:ec2:<region>::image/ami-..."],
     "detail": {"RequestId": "<uuid>", "ImageId": "ami-...",
                "State": "available" | "failed" | "deregistered",
                "ErrorMessage": "" | "<the image's StateReason message when failed>"}}

  RequestId: AWS gives the id of the request that made the image (or deregistered
  it); the world makes one up per image at creation (and per DeregisterImage).
* EC2 User Guide, "State change events for Amazon EC2 instances" (Amazon EventBridge
  events for Amazon EC2 instances): an "EC2 Instance State-change Notification" on every
  state an instance enters (pending, running, stopping, stopped, shutting-down,
  terminated):

    {"version": "0", "id": "<uuid>", "detail-type": "EC2 Instance State-change Notification",
     "source": "aws.ec2", "account": "<owner>", "time": "...Z", "region": "<region>",
     "resources": ["arn:aws:ec2:<region>:<owner>:instance/i-..."],
     "detail": {"instance-id": "i-...", "state": "running"}}

* EventBridge User Guide, "Events from AWS services" / "Amazon EventBridge events":
  AWS service events go to the default bus; rules there match them like any event
  (moto's pattern matcher, rules/events.py delivers to Step Functions and Lambda
  targets, moto to SQS / CloudWatch Logs / buses).

How: image_states.py and instances.py move states on the simulated clock, lazily (a
Describe* that reads the state settles it). They call image_state_changed /
instance_state_changed here on each transition, exactly once, with the simulated time
the transition happened (the image's pending-until, the instance's next-state time,
or the call's time for a state a call enters at once). A ticker thread (real 20 ms
period) settles every pending transition when the clock reaches it, so events come even
when nobody describes anything (clock.advance() jumps are caught on the next tick). A
state a call enters at once (stopping, pending, shutting-down) is announced by the
ticker ~50 ms (real) later, from what the instance shows then: the steps of one call
(moto's own stop, then the clock state; a failed launch's terminate then pending) give
one event, not one per step. Delivery runs on the same thread, never on the caller's:
in state order per resource, ec2EventDelaySeconds (simulated) after the change.

World settings (engine/config.py, POST /ferry-world/config):
  "ec2EventsDropped": false      true = every EC2 event is dropped (best effort: the
                                 slow poll must still find the change); dropped events
                                 are recorded, status "dropped"
  "ec2EventDelaySeconds": 0      simulated seconds between the change and delivery

GET /ferry-world/events/invocations "ec2Events": every event emitted, with its status
("queued", "delivered", "dropped", "failed") and, once handed to the rules,
"deliveredWall" (real Unix seconds; the world's call records carry "wall" alike); the targets' deliveries and failures are
in "delivered" / "failed" as for any event (rules/events.py).
"""
from __future__ import annotations

import datetime as _dt
import heapq
import itertools
import logging
import threading
import time as _time
import uuid
from typing import Any, Callable

from ..engine import clock, config
from .common import partition

LOG = logging.getLogger("ferry_world.rules.ec2_events")

AMI_STATE_CHANGE = "EC2 AMI State Change"
INSTANCE_STATE_CHANGE = "EC2 Instance State-change Notification"
TICK_SECONDS = 0.02  # real seconds between two looks at the clock
SETTLE_GRACE_SECONDS = 0.05  # real seconds before a state a call entered at once is told

_lock = threading.Lock()
_seq = itertools.count()
_watches: list = []  # (due simulated time, real not-before, seq, callback)
_outbox: list = []  # (deliver-at simulated time, seq, event, record)
EMITTED: list[dict] = []
_state = {"installed": False, "thread": None}


def installed() -> bool:
    return _state["installed"]


def reset() -> None:
    with _lock:
        _watches.clear()
        _outbox.clear()
        EMITTED.clear()


def _iso(at: _dt.datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=_dt.timezone.utc)
    return at.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def watch(due: _dt.datetime, callback: Callable[[], None], grace: float = 0.0) -> None:
    """Call `callback` on the ticker thread once the simulated clock reaches `due` (and at
    least `grace` real seconds from now)."""
    if not installed():
        return
    if due.tzinfo is None:
        due = due.replace(tzinfo=_dt.timezone.utc)
    with _lock:
        heapq.heappush(_watches, (due, _time.monotonic() + grace, next(_seq), callback))


def emit(account: str, region: str, detail_type: str, resources: list[str], detail: dict,
         at: _dt.datetime) -> dict | None:
    """Put one aws.ec2 event on the account's default bus in `region` (delivered by the
    ticker), or record it dropped (ec2EventsDropped)."""
    if not installed():
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=_dt.timezone.utc)
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.ec2",
        "account": account,
        "time": _iso(at),
        "region": region,
        "resources": resources,
        "detail": detail,
    }
    dropped = bool(config.get("ec2EventsDropped"))
    record = {"event": event, "status": "dropped" if dropped else "queued"}
    deliver_at = at + _dt.timedelta(seconds=float(config.get("ec2EventDelaySeconds") or 0))
    with _lock:
        EMITTED.append(record)
        if not dropped:
            heapq.heappush(_outbox, (deliver_at, next(_seq), event, record))
    LOG.info("%s %s %s%s", detail_type, resources[0] if resources else "", detail,
             " (dropped)" if dropped else "")
    return event


# =================================================================================
# What the state rules call
# =================================================================================
def _image_is_live(ami: Any) -> bool:
    try:
        return ami.ec2_backend.amis.get(ami.id) is ami
    except Exception:  # noqa: BLE001
        return False


def image_state_changed(ami: Any, at: _dt.datetime, state: str | None = None,
                        request_id: str | None = None) -> None:
    """An image entered `state` (default: the state it shows now, through every rule's
    state property, e.g. copy_image.py's failed copies) at simulated time `at`."""
    if not installed():
        return
    if state is None:
        if not _image_is_live(ami):
            return  # the world was reset under it
        state = ami.state
    if state not in ("available", "failed", "deregistered", "disabled"):
        return
    message = ""
    if state == "failed":
        reason = ami.state_reason
        if isinstance(reason, dict):
            message = reason.get("Message") or ""
        elif reason is not None:
            message = getattr(reason, "message", "") or ""
    backend = ami.ec2_backend
    region = backend.region_name
    emit(backend.account_id, region, AMI_STATE_CHANGE,
         [f"arn:{partition(region)}:ec2:{region}::image/{ami.id}"],
         {"RequestId": request_id or ami.__dict__.get("_ferry_request_id") or str(uuid.uuid4()),
          "ImageId": ami.id, "State": state, "ErrorMessage": message},
         at)


def world_of(instance: Any) -> Any:
    """What tells the world an instance was made in from the world after a moto reset
    (which empties its backends in place): the backend's reservations dict of then."""
    return getattr(getattr(instance, "ec2_backend", None), "reservations", None)


def instance_state_changed(instance: Any, state: str, at: _dt.datetime, world: Any = None) -> None:
    if not installed() or (world is not None and world_of(instance) is not world):
        return
    backend = instance.ec2_backend
    region, account = backend.region_name, backend.account_id
    emit(account, region, INSTANCE_STATE_CHANGE,
         [f"arn:{partition(region)}:ec2:{region}:{account}:instance/{instance.id}"],
         {"instance-id": instance.id, "state": state}, at)


# =================================================================================
# Delivery
# =================================================================================
def _deliver(event: dict, record: dict) -> None:
    from moto.core.utils import unix_time
    from moto.events.models import events_backends

    from .common import existing_backend

    record["deliveredWall"] = round(_time.time(), 3)  # real seconds, beside the calls' "wall"
    backend = existing_backend(events_backends, event["account"], event["region"])
    if backend is None:  # nobody ever used EventBridge there: no rule to match
        record["status"] = "delivered"
        return
    try:
        bus = backend.event_buses.get("default")
        rules = list(bus.rules.values()) if bus is not None else []
        for rule in rules:
            try:
                # moto's targets (SQS, logs, archives) read its "ingestion-time".
                rule.send_to_targets({**event, "ingestion-time": unix_time()})
            except Exception as exc:  # noqa: BLE001 - one rule's failure is its own
                from .events import record_failed

                record_failed({"source": "events", "rule": rule.arn, "eventId": event["id"],
                               "error": type(exc).__name__, "cause": str(exc)})
        record["status"] = "delivered"
    except Exception as exc:  # noqa: BLE001
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        LOG.exception("delivering %s", event)


def _tick() -> None:
    now = clock.now()
    real = _time.monotonic()
    due: list = []
    later: list = []
    with _lock:
        while _watches and _watches[0][0] <= now:
            item = heapq.heappop(_watches)
            (due if item[1] <= real else later).append(item)
        for item in later:
            heapq.heappush(_watches, item)
    for _at, _nb, _seq_no, callback in due:
        try:
            callback()
        except Exception:  # noqa: BLE001
            LOG.exception("settling a state on the clock")
    now = clock.now()
    ready = []
    with _lock:
        while _outbox and _outbox[0][0] <= now:
            ready.append(heapq.heappop(_outbox))
    for _at, _seq_no, event, record in ready:
        _deliver(event, record)


def _run() -> None:
    while True:
        try:
            _tick()
        except Exception:  # noqa: BLE001
            LOG.exception("ec2 events ticker")
        _time.sleep(TICK_SECONDS)


# =================================================================================
# The rule
# =================================================================================
def ec2_state_changes_are_sent_to_eventbridge() -> None:
    """EC2 UG "Monitor AMI events using Amazon EventBridge" and "State change events for
    Amazon EC2 instances": image_states.py and instances.py report every transition
    (image_state_changed / instance_state_changed); this rule turns the reports on,
    announces DeregisterImage (`deregistered`) and starts the ticker that settles due
    transitions and delivers the events to the default bus's rules."""
    if _state["installed"]:
        return
    from moto.ec2.models.amis import AmiBackend

    prev = AmiBackend.deregister_image

    def deregister_image(self: Any, ami_id: str, *args: Any, **kwargs: Any) -> Any:
        ami = self.amis.get(ami_id)
        result = prev(self, ami_id, *args, **kwargs)
        if ami is not None and self.amis.get(ami_id) is not ami:
            image_state_changed(ami, clock.now(), state="deregistered", request_id=str(uuid.uuid4()))
        return result

    AmiBackend.deregister_image = deregister_image
    _state["installed"] = True
    thread = threading.Thread(target=_run, name="ferry-ec2-events", daemon=True)
    thread.start()
    _state["thread"] = thread
