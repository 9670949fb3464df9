"""Instance states on the world's clock (migration rule 7; EC2 UG "Amazon EC2 instance
state changes", "Status checks", "Enable termination protection" / "Enable stop
protection"): pending -> running, stopping -> stopped, shutting-down -> terminated take
simulated seconds; status checks initialize; protection refuses Stop/TerminateInstances.
Every state an instance enters is announced once to rules/ec2_events.py (EC2 Instance
State-change Notification), at the simulated time it entered it.
"""
from __future__ import annotations

import copy
import datetime as _dt
import threading
from typing import Any

from ..engine import clock, config
from . import ec2_events
from .errors import ec2_error
from .common import later

STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}


class _ClockState:
    """An instance state that moves on to its next state on the simulated clock.

    Behaves like moto's InstanceState (`name`, `code`); moto's own code assigning a name
    cancels any transition. copy.copy() gives a plain, frozen InstanceState."""

    def __init__(self, instance: Any, name: str):
        self._instance = instance
        self._name = name
        self._code = STATE_CODES[name]
        self._next: tuple[str, _dt.datetime] | None = None
        # rules/ec2_events.py: the state last announced, since when the instance is in
        # its state, and which world (moto reset) it lives in.
        self._told: str | None = None
        self._since = clock.now()
        self._world = ec2_events.world_of(instance)
        self._lock = threading.RLock()

    def go(self, now_name: str, next_name: str, seconds: float) -> None:
        at = later(seconds)
        with self._lock:
            self._name, self._code = now_name, STATE_CODES[now_name]
            self._since = clock.now()
            self._next = (next_name, at)
        if next_name == "running":
            self._instance.__dict__["_ferry_running_since"] = at
        self._tell_later(at)

    def _tell_later(self, at: _dt.datetime | None = None) -> None:
        # The state entered now is announced a moment later (the steps of one call make
        # one event); the next one when the clock reaches it, described or not.
        ec2_events.watch(clock.now(), self.tell, grace=ec2_events.SETTLE_GRACE_SECONDS)
        if at is not None:
            ec2_events.watch(at, self.tell)

    def _settle(self) -> None:
        nxt = self._next
        if nxt is not None and clock.now() >= nxt[1]:
            with self._lock:
                nxt = self._next
                if nxt is None or clock.now() < nxt[1]:
                    return
                self._tell_locked()  # the state it leaves, if never announced
                self._next = None
                self._name, self._code = nxt[0], STATE_CODES[nxt[0]]
                self._since = nxt[1]
                self._tell_locked()

    def tell(self) -> None:
        """Announce the state the instance is in, if not yet (EC2 Instance State-change
        Notification, rules/ec2_events.py), settling it first."""
        with self._lock:
            self._settle()
            self._tell_locked()

    def _tell_locked(self) -> None:
        if self._name != self._told:
            self._told = self._name
            ec2_events.instance_state_changed(self._instance, self._name, self._since, self._world)

    @property
    def name(self) -> str:
        self._settle()
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._settle()
        if value == "running" and self._name != "running":
            self._instance.__dict__["_ferry_running_since"] = clock.now()
        with self._lock:
            self._next = None
            if value != self._name:
                self._since = clock.now()
            self._name = value
        self._tell_later()

    @property
    def code(self) -> int:
        self._settle()
        return self._code

    @code.setter
    def code(self, value: int) -> None:
        self._code = value

    def __deepcopy__(self, memo: dict) -> Any:  # a frozen InstanceState, like copy.copy
        return self.__copy__()

    def __copy__(self) -> Any:
        from moto.ec2.models.instances import InstanceState

        return InstanceState(self.name, self.code)


def instances_change_state_on_the_clock() -> None:
    """EC2 User Guide, "Amazon EC2 instance state changes" (lifecycle: pending -> running,
    stopping -> stopped, shutting-down -> terminated), "Status checks for Amazon EC2
    instances" (checks report `initializing` after launch, then `ok`), "Enable
    termination protection" and "Enable stop protection" (OperationNotPermitted).
    Simulated durations: instancePendingSeconds, instanceStoppingSeconds,
    instanceShuttingDownSeconds, statusInitializingSeconds."""
    from moto.ec2.models.instances import Instance, InstanceBackend

    original_init = Instance.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.launch_time = clock.now_naive()
        self._state = _ClockState(self, "pending")
        self._state.go("pending", "running", config.get("instancePendingSeconds"))

    Instance.__init__ = __init__

    def _status(self: Any) -> dict[str, Any]:
        if self.state != "running":
            return {"Status": "not-applicable"}
        since = self.__dict__.get("_ferry_running_since") or clock.now()
        ready = since + _dt.timedelta(seconds=float(config.get("statusInitializingSeconds")))
        if clock.now() < ready:
            return {"Status": "initializing", "Details": [{"Name": "reachability", "Status": "initializing"}]}
        return {"Status": "ok", "Details": [{"Name": "reachability", "Status": "passed"}]}

    Instance.instance_status = property(_status)
    Instance.system_status = property(_status)

    original_start, original_stop, original_terminate = Instance.start, Instance.stop, Instance.terminate

    def start(self: Any) -> Any:
        previous = copy.copy(self._state)
        if previous.name in ("pending", "running"):
            return previous
        if previous.name != "stopped":
            raise ec2_error("IncorrectInstanceState",
                       f"The instance '{self.id}' is not in a state from which it can be started.")
        original_start(self)
        self._state.go("pending", "running", config.get("instancePendingSeconds"))
        return previous

    def stop(self: Any) -> Any:
        previous = copy.copy(self._state)
        if previous.name in ("stopping", "stopped"):
            return previous
        original_stop(self)
        self._state.go("stopping", "stopped", config.get("instanceStoppingSeconds"))
        return previous

    def terminate(self: Any) -> Any:
        previous = copy.copy(self._state)
        if previous.name in ("shutting-down", "terminated"):
            return previous  # TerminateInstances is idempotent
        original_terminate(self)
        self._state.go("shutting-down", "terminated", config.get("instanceShuttingDownSeconds"))
        return previous

    Instance.start, Instance.stop, Instance.terminate = start, stop, terminate

    def stop_instances(self: Any, instance_ids: list[str]) -> list[Any]:
        # All or nothing: every instance is checked before any is stopped.
        instances = self.get_multi_instances_by_id(instance_ids)
        for instance in instances:
            state = instance.state
            if state in ("stopped", "stopping"):
                continue
            if instance.disable_api_stop is True:
                raise ec2_error(
                    "OperationNotPermitted",
                    f"The instance '{instance.id}' may not be stopped. Modify its "
                    "'disableApiStop' instance attribute and try again.",
                )
            if state == "pending":
                raise ec2_error("IncorrectInstanceState",
                           f"Instance '{instance.id}' cannot be stopped as it has never reached the 'running' state.")
            if state != "running":
                raise ec2_error("IncorrectInstanceState",
                           f"This instance '{instance.id}' is not in a state from which it can be stopped.")
        return [(instance, instance.stop()) for instance in instances]

    InstanceBackend.stop_instances = stop_instances

    original_terminate_instances = InstanceBackend.terminate_instances

    def terminate_instances(self: Any, instance_ids: list[str]) -> list[Any]:
        # All or nothing: check protection on every instance before terminating any.
        if instance_ids:
            for instance in self.get_multi_instances_by_id(instance_ids):
                if instance.disable_api_termination is True:
                    raise ec2_error(
                        "OperationNotPermitted",
                        f"The instance '{instance.id}' may not be terminated. Modify its "
                        "'disableApiTermination' instance attribute and try again.",
                    )
        return original_terminate_instances(self, instance_ids)

    InstanceBackend.terminate_instances = terminate_instances

    from moto.ec2.responses.instances import InstanceResponse

    def current_state(method_name: str, key: str) -> None:
        # moto answers a fixed CurrentState; EC2 answers the state the call left
        # (e.g. `stopped` for StopInstances on a stopped instance).
        original = getattr(InstanceResponse, method_name)

        def method(self: Any) -> Any:
            result = original(self)
            for item in (getattr(result, "result", None) or {}).get(key, []):
                instance = self.ec2_backend.get_instance(item["InstanceId"])
                item["CurrentState"] = {"Code": instance.state_code, "Name": instance.state}
            return result

        setattr(InstanceResponse, method_name, method)

    current_state("start_instances", "StartingInstances")
    current_state("stop_instances", "StoppingInstances")
    current_state("terminate_instances", "TerminatingInstances")
