"""Step Functions on the world's simulated clock.

moto 5.2.5 runs ASL with LocalStack's interpreter (moto/stepfunctions/parser). Out of the
box it waits in real time (Wait states: ``env.program_state_event.wait(seconds)``;
Retry intervals: ``time.sleep(interval)``) and stamps history events, execution start and
stop dates and ``$$.State.EnteredTime`` with the real wall clock. This module moves all of
that onto ``ferry_world.engine.clock``:

* Wait states (Seconds, SecondsPath, Timestamp, TimestampPath) wait simulated seconds, in
  short real slices, so ``clock.advance()`` shortens a wait and StopExecution still
  interrupts it. Timestamp waits measure against ``clock.now()``.
* Retry intervals wait simulated seconds the same way (and become interruptible).
  The delay follows AWS: ``min(IntervalSeconds * BackoffRate ** (n - 1), MaxDelaySeconds)``
  and, with ``JitterStrategy: FULL``, ``uniform(0, that)``. The interpreter computes this
  itself (BackoffRateDecl, MaxDelaySecondsDecl, JitterStrategyDecl, checked by
  test_engine.py); every delay it chose is kept in ``RETRY_DELAYS`` for inspection.
* Task ``TimeoutSeconds``/``HeartbeatSeconds`` stay in REAL seconds, like the Lambda
  function's own Timeout: what they bound (a Lambda process) runs in real time, and at
  scale 600 a simulated 60 s would be 0.1 s real, less than a debug binary's cold start.
* History event timestamps, execution start/stop dates and the context object's times
  come from ``clock.now()``, so the history shows the durations AWS would show.

For ``Resource: <function ARN>`` Tasks, an AWS-side Lambda error (a ClientError from
Invoke: throttling, a 5xx...) is named ``Lambda.<code>`` as Step Functions names it
(``Lambda.TooManyRequestsException``, ``Lambda.ServiceException``...) instead of the
interpreter's bare ``Exception``, so the state machines' Retry on those names works.
A function error keeps its ``errorType`` (the interpreter already reads it from the
payload; the Lambda runner answers with ``X-Amz-Function-Error: Unhandled``).

Smaller fidelity fixes to the interpreter:
* StartExecution without ``name`` gets a UUID name as in AWS (moto: ``...:None`` and a null
  ``$$.Execution.Name``, which ferry's Preflight refuses as Ferry.InvalidInput).
* ``$$.Execution.StartTime`` / ``$$.State.EnteredTime`` are AWS-formatted strings
  (``2026-01-01T12:00:00.123Z``), not a datetime / ``+00:00`` isoformat.
* The ExecutionStarted event carries the execution's startDate.
* Nested executions (``states:startExecution``, ``.sync``, ``.sync:2``) work: Task
  parameters reach the API under its member names and the result has AWS's capitalised
  fields (ExecutionArn, Output, Status, Error, Cause).
* The interpreter's boto3 clients are reused (one per region and service) instead of one
  new client per Task (~50 ms real each, i.e. most of a simulated minute per Task).
"""
from __future__ import annotations

import collections
import datetime as _real_datetime
import logging
import threading
import time as _time
import types

from . import clock

LOG = logging.getLogger("ferry_world.sfn")

# Longest real slice a simulated wait sleeps before re-reading the clock.
_SLICE_REAL_SECONDS = 0.05

# Every Retry delay chosen: {"executionArn", "state", "error", "delaySeconds", "at"}.
RETRY_DELAYS: collections.deque = collections.deque(maxlen=5000)
_installed = False
_lock = threading.Lock()


def sim_wait(seconds: float, event: threading.Event | None = None, still_running=None) -> bool:
    """Waits `seconds` simulated seconds by the world clock. Returns False if interrupted
    (`still_running()` turned false), True when the time has passed."""
    if seconds <= 0:
        return True
    deadline = clock.now() + _real_datetime.timedelta(seconds=seconds)
    while True:
        remaining = (deadline - clock.now()).total_seconds()
        if remaining <= 0:
            return True
        real = min(remaining / clock.SCALE, _SLICE_REAL_SECONDS)
        if event is not None:
            event.wait(real)
        else:
            _time.sleep(real)
        if still_running is not None and not still_running():
            return False


class _ClockDateTime(_real_datetime.datetime):
    """datetime.datetime whose now()/utcnow() read the world clock."""

    @classmethod
    def now(cls, tz=None):  # noqa: D401
        sim = clock.now()
        if tz is None:
            return sim.replace(tzinfo=None)
        return sim.astimezone(tz)

    @classmethod
    def utcnow(cls):
        return clock.now_naive()


def aws_iso(value: _real_datetime.datetime) -> str:
    """AWS's timestamp format in Step Functions' context object: UTC, milliseconds, Z."""
    if value.tzinfo is not None:
        value = value.astimezone(_real_datetime.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class _AwsIsoDateTime(_real_datetime.datetime):
    """A clock datetime whose isoformat() is AWS's format."""

    @classmethod
    def now(cls, tz=None):
        sim = clock.now()
        sim = sim.replace(tzinfo=None) if tz is None else sim.astimezone(tz)
        return cls._wrap(sim)

    @classmethod
    def _wrap(cls, value):
        return cls(
            value.year, value.month, value.day, value.hour, value.minute, value.second,
            value.microsecond, value.tzinfo,
        )

    def isoformat(self, *args, **kwargs):
        return aws_iso(self)


def _clock_datetime_module(datetime_class=None) -> types.ModuleType:
    """A stand-in for the `datetime` module whose datetime.now() is the world clock."""
    mod = types.ModuleType("datetime")
    for name in dir(_real_datetime):
        if not name.startswith("__"):
            setattr(mod, name, getattr(_real_datetime, name))
    mod.datetime = datetime_class or _ClockDateTime
    return mod


def install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True

    clock_datetime = _clock_datetime_module()

    # --- timestamps -----------------------------------------------------------------
    from moto.stepfunctions.parser import models as parser_models
    from moto.stepfunctions.parser.asl.component.state import state as state_mod
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
        map_run_record,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import timestamp as ts_mod
    from moto.stepfunctions.parser.asl.eval.event import event_manager
    from moto.stepfunctions.parser.backend import execution as execution_mod
    from moto.stepfunctions.parser.backend import state_machine as state_machine_mod

    for module in (
        parser_models,  # StartExecution's start_date
        execution_mod,  # stop_date
        map_run_record,
        branches_decl,
        ts_mod,  # Timestamp waits: delta from now
        state_machine_mod,
    ):
        module.datetime = clock_datetime
    # $$.State.EnteredTime, formatted as AWS does ("2026-01-01T12:00:00.123Z").
    state_mod.datetime = _clock_datetime_module(_AwsIsoDateTime)

    # $$.Execution.StartTime: AWS gives a string in the same format; the interpreter
    # passes the datetime object through.
    from moto.stepfunctions.parser.backend import execution_worker

    original_env = execution_worker.ExecutionWorker._get_evaluation_environment

    def _get_evaluation_environment(self):
        env = original_env(self)
        try:
            data = env.states.context_object.context_object_data["Execution"]
            start = data.get("StartTime")
            if isinstance(start, _real_datetime.datetime):
                data["StartTime"] = aws_iso(start)
        except (AttributeError, KeyError):
            pass
        return env

    execution_worker.ExecutionWorker._get_evaluation_environment = _get_evaluation_environment

    from moto.stepfunctions.parser.api import HistoryEventType

    # ExecutionStarted at the execution's startDate, as in AWS (the worker thread starts
    # a few real milliseconds = simulated seconds later).
    from moto.stepfunctions.parser.api import ExecutionStartedEventDetails, HistoryEventExecutionDataDetails
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails as _EventDetails
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    def _execution_logic(self):
        program = self._get_evaluation_entrypoint()
        self.env = self._get_evaluation_environment()
        details = self._evaluation_details
        self.env.event_manager.add_event(
            context=self.env.event_history_context,
            event_type=HistoryEventType.ExecutionStarted,
            event_details=_EventDetails(
                executionStartedEventDetails=ExecutionStartedEventDetails(
                    input=to_json_str(details.execution_details.inpt),
                    inputDetails=HistoryEventExecutionDataDetails(truncated=False),
                    roleArn=details.aws_execution_details.role_arn,
                )
            ),
            timestamp=details.execution_details.start_time,
            update_source_event_id=False,
        )
        program.eval(self.env)
        self._execution_communication.terminated()

    execution_worker.ExecutionWorker._execution_logic = _execution_logic

    # One boto3 client per (region, service) for the interpreter's own calls instead of a
    # new one per Task (~50 ms real each = most of a simulated minute per Task).
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk,
    )
    from moto.stepfunctions.parser.asl.utils import boto_client as boto_client_mod

    original_client_for = boto_client_mod.boto_client_for
    clients: dict = {}

    def boto_client_for(region, service, state_credentials=None):
        key = (region, service)
        client = clients.get(key)
        if client is None:
            client = clients[key] = original_client_for(region, service, state_credentials)
        return client

    for module in (boto_client_mod, lambda_eval_utils, state_task_service_aws_sdk):
        module.boto_client_for = boto_client_for

    # StartExecution without a name: AWS names the execution with a UUID (moto's parser
    # backend leaves it None: "...:execution:<machine>:None" and $$.Execution.Name null).
    import uuid

    original_start = parser_models.StepFunctionsParserBackend.start_execution

    def start_execution(self, state_machine_arn, name=None, execution_input=None, trace_header=None):
        return original_start(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    parser_models.StepFunctionsParserBackend.start_execution = start_execution

    event_manager.EventManager._get_current_timestamp = staticmethod(clock.now)

    # --- Wait states ------------------------------------------------------------------
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    def _wait_interval(self, env, wait_seconds):
        if not sim_wait(wait_seconds, env.program_state_event, env.is_running):
            LOG.info("Wait state interrupted: the execution is no longer running")

    WaitFunction._wait_interval = _wait_interval

    # --- Retry intervals --------------------------------------------------------------
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.common.retry.max_attempts_decl import (
        MaxAttemptsOutcome,
    )
    from moto.stepfunctions.parser.asl.component.common.retry.retrier_outcome import (
        RetrierOutcome,
    )

    def _retrier_eval_body(self, env) -> None:
        # Same steps as RetrierDecl._eval_body, with the wait on the world clock.
        error_name = env.stack[-1] if env.stack else None
        self.error_equals.eval(env)
        if not env.stack.pop():
            env.stack.append(RetrierOutcome.Skipped)
            return
        self.max_attempts.eval(env=env)
        if env.stack.pop() == MaxAttemptsOutcome.EXHAUSTED:
            env.stack.append(RetrierOutcome.Failed)
            return
        # IntervalSeconds, * BackoffRate^(n-1), min(.., MaxDelaySeconds), FULL jitter.
        self.interval_seconds.eval(env=env)
        self.backoff_rate.eval(env=env)
        self.max_delay_seconds.eval(env=env)
        self.jitter_strategy.eval(env=env)
        delay = float(env.stack.pop())
        RETRY_DELAYS.append(
            {
                "executionArn": _execution_arn(env),
                "state": _state_name(env),
                "error": _error_text(error_name),
                "delaySeconds": delay,
                "at": clock.now().isoformat(),
            }
        )
        sim_wait(delay, env.program_state_event, env.is_running)
        env.stack.append(RetrierOutcome.Executed)

    retrier_decl.RetrierDecl._eval_body = _retrier_eval_body

    # --- Lambda service errors named Lambda.<code> --------------------------------------
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original_from_error = state_task_lambda.StateTaskLambda._from_error

    def _from_error(self, env, ex):
        if isinstance(ex, ClientError):
            code = ex.response.get("Error", {}).get("Code") or "ServiceException"
            error = code if code.startswith("Lambda.") else f"Lambda.{code}"
            cause = ex.response.get("Error", {}).get("Message") or str(ex)
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(error),
                event_type=HistoryEventType.LambdaFunctionFailed,
                event_details=EventDetails(
                    lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(
                        error=error, cause=cause
                    )
                ),
            )
        return original_from_error(self, env, ex)

    state_task_lambda.StateTaskLambda._from_error = _from_error

    # --- Nested executions (arn:aws:states:::states:startExecution[.sync[:2]]) -----------
    # The vendored interpreter hands the Task's Parameters to boto3 as written in the ASL
    # (StateMachineArn, Name, Input) while the Step Functions API model names them
    # stateMachineArn, name, input (botocore: KeyError 'StateMachineArn'), and returns
    # boto3's camelCase response where the .sync resolvers and AWS's documented output use
    # ExecutionArn, Output, Status... ("Run a Step Functions state machine as a task": the
    # output is the DescribeExecution response with capitalised fields, Output parsed as
    # JSON with :2). Both conversions are what LocalStack's full version does.
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sfn,
    )

    sfn_task = state_task_service_sfn.StateTaskServiceSfn
    original_sfn_params = sfn_task._normalise_parameters

    def _sfn_parameters(self, parameters, boto_service_name=None, service_action_name=None):
        original_sfn_params(
            self, parameters, boto_service_name=boto_service_name, service_action_name=service_action_name
        )
        if service_action_name is None:
            for key in list(parameters):
                parameters[key[:1].lower() + key[1:]] = parameters.pop(key)

    def _sfn_response(self, response, boto_service_name=None, service_action_name=None):
        if isinstance(response, dict):
            for key in list(response):
                response[key[:1].upper() + key[1:]] = response.pop(key)

    sfn_task._normalise_parameters = _sfn_parameters
    sfn_task._normalise_response = _sfn_response


def _execution_arn(env) -> str | None:
    try:
        return env.states.context_object.context_object_data["Execution"]["Id"]
    except Exception:  # noqa: BLE001 - best effort, for the record only
        return None


def _state_name(env) -> str | None:
    try:
        return env.states.context_object.context_object_data["State"]["Name"]
    except Exception:  # noqa: BLE001
        return None


def _error_text(error_name) -> str | None:
    if error_name is None:
        return None
    for attr in ("error_name", "typ"):
        value = getattr(error_name, attr, None)
        if value is not None:
            return str(value)
    return str(error_name)
