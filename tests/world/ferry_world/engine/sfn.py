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
  Exception: ``.waitForTaskToken`` Tasks (the callback pattern, ``install_task_tokens``
  below): what they wait for is a SendTaskSuccess/SendTaskFailure that may come hours
  later, so their TimeoutSeconds/TimeoutSecondsPath/HeartbeatSeconds count SIMULATED
  seconds. Deviation from AWS: the clock starts when the integration call (Lambda Invoke,
  SQS SendMessage...) has returned, so the real time of that call (a debug binary's cold
  start) is not multiplied by the time scale; on AWS the call's ~100 ms count too.
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

The state machine's role (``install_role_authorization``; the rules are
``lambda_task_denial`` and ``nested_start_denial`` in rules/iam.py): the interpreter
calls Lambda and Step Functions with the world's root keys, so before each call Step
Functions would make with the execution role (or the Task's Credentials.RoleArn) the
world evaluates that role's identity policies, as AWS does: lambda:InvokeFunction for
a ``Resource: <function ARN>`` or ``arn:aws:states:::lambda:invoke`` Task;
states:StartExecution (and for ``.sync``/``.sync:2`` the EventBridge managed rule
actions and states:DescribeExecution/StopExecution) for a nested execution. Denied, the
Task fails with AWS's error (``Lambda.AWSLambdaException``,
``StepFunctions.AWSStepFunctionsException``) before anything is invoked or started, and
its Retry/Catch handle that name as on AWS.

The payload quota, States.DataLimitExceeded (``install_payload_limit``; the rules are the
``within_payload_limit`` and ``data_limit_matches`` below): a Task's result, a
state's output and a state's input after Parameters larger than
``config["sfnPayloadLimitBytes"]`` (262,144 bytes) fail the state with
States.DataLimitExceeded, which ``States.ALL`` (and ``States.TaskFailed``) do not match in
a Catch or Retry. StartExecution's own input size is NOT checked (see within_payload_limit).
"""
from __future__ import annotations

import collections
import datetime as _real_datetime
import json
import logging
import threading
import time as _time
import types

from . import clock, config

LOG = logging.getLogger("ferry_world.sfn")

# Longest real slice a simulated wait sleeps before re-reading the clock.
_SLICE_REAL_SECONDS = 0.05

# Every Retry delay chosen: {"executionArn", "state", "error", "delaySeconds", "at"}.
RETRY_DELAYS: collections.deque = collections.deque(maxlen=5000)
_installed = False
_lock = threading.Lock()


def sim_wait(seconds: float, event: threading.Event | None = None, still_running=None,
             slice_real: float = _SLICE_REAL_SECONDS) -> bool:
    """Waits `seconds` simulated seconds by the world clock. Returns False if interrupted
    (`still_running()` turned false), True when the time has passed. Setting `event`
    wakes the wait at once (it then asks `still_running()`); otherwise it re-reads the
    clock every `slice_real` real seconds at most."""
    if seconds <= 0:
        return True
    deadline = clock.now() + _real_datetime.timedelta(seconds=seconds)
    while True:
        remaining = (deadline - clock.now()).total_seconds()
        if remaining <= 0:
            return True
        real = min(remaining / clock.SCALE, slice_real)
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
        # Keyed by the server's port too (MOTO_PORT): in-process worlds of the rule tests
        # each listen on their own port.
        from moto.settings import moto_server_port

        key = (region, service, moto_server_port())
        client = clients.get(key)
        if client is None:
            client = clients[key] = original_client_for(region, service, state_credentials)
        return client

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sqs,
    )

    for module in (boto_client_mod, lambda_eval_utils, state_task_service_aws_sdk, state_task_service_sqs):
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

    install_payload_limit()
    install_task_tokens()
    install_role_authorization()
    install_history_paging()
    install_quiet_sync_polls()


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


# ---------------------------------------------------------------------------------------
# The payload quota: States.DataLimitExceeded
# ---------------------------------------------------------------------------------------
# AWS, "Handling errors in Step Functions workflows" (concepts-error-handling), error name
# States.DataLimitExceeded: "Reported due to the following conditions: When the output of
# a connector is larger than payload size quota. When the output of a state is larger than
# payload size quota. When, after Parameters processing, the input of a state is larger
# than the payload size quota." And: "A terminal error that can't be caught by the
# States.ALL error type." / "The States.ALL error type ... can't catch the
# States.DataLimitExceeded terminal error".
# AWS, "Step Functions service quotas": "Maximum input or output size for a task, state, or
# execution: 256 KiB of data as a UTF-8 encoded string" (hard quota); the API reference
# gives the same as "Length Constraints: Maximum length of 262144 ... expressed as bytes in
# UTF-8 encoding", so exactly 262,144 bytes is within the quota.

DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"


def payload_limit_bytes() -> int:
    """The world's quota (config sfnPayloadLimitBytes, AWS: 262,144)."""
    return int(config.get("sfnPayloadLimitBytes"))


def payload_size_bytes(value) -> int:
    """Size of a payload as AWS counts it: bytes of its UTF-8 encoded JSON text.

    Encoding chosen: json.dumps(value, separators=(",", ":"), ensure_ascii=False) encoded
    as UTF-8. Compact separators because the payload Step Functions passes on is the JSON
    value, not a pretty-printed text (AWS's history shows it compact), so spaces would be
    counted against the quota that AWS does not count; ensure_ascii=False because the quota
    is in bytes "as a UTF-8 encoded string": an "é" is 2 bytes, not the 6 of "\\u00e9"
    (the vendored interpreter's own check used json.dumps defaults, over-counting both)."""
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    # A Python str here is a JSON string value (quotes and escapes count), not a JSON text.
    from moto.stepfunctions.parser.asl.utils.encoding import _DateTimeEncoder

    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, cls=_DateTimeEncoder)
    return len(text.encode("utf-8"))


def within_payload_limit(value) -> bool:
    """AWS "Handling errors in Step Functions workflows", States.DataLimitExceeded is
    reported "When the output of a connector is larger than payload size quota. When the
    output of a state is larger than payload size quota. When, after Parameters
    processing, the input of a state is larger than the payload size quota." One check,
    applied (install_payload_limit) to: a Task's result (for a Lambda function ARN Task
    the function's result; for a service integration such as lambda:invoke or
    startExecution.sync:2 its response, before ResultSelector/ResultPath); every state's
    output after OutputPath (Pass, Task, Choice, Wait, Parallel, Map and the states of
    each iteration/branch); and a state's input after Parameters (Pass, Task before
    anything is called, Map per item). StartExecution's own input (API reference: at most
    262,144 bytes) is not checked: which error AWS answers with is not documented clearly
    enough to imitate."""
    return payload_size_bytes(value) <= payload_limit_bytes()


def data_limit_matches(error_name, error_names) -> bool | None:
    """Catching: AWS "Handling errors in Step Functions workflows": States.ALL "can't
    catch the States.DataLimitExceeded terminal error"; States.DataLimitExceeded is "a
    terminal error that can't be caught by the States.ALL error type". So for that error
    neither States.ALL nor States.TaskFailed (which the interpreter lets match any
    non-States error, e.g. a Parallel branch's error passed up) matches, in a Catch or a
    Retry; an ErrorEquals that names States.DataLimitExceeded itself does (the docs
    exclude only the wildcard). Returns None for any other error (usual matching)."""
    if _error_text(error_name) != DATA_LIMIT_EXCEEDED:
        return None
    return any(_error_text(name) == DATA_LIMIT_EXCEEDED for name in error_names)


def _data_limit_failure(env, cause: str, event_type_name: str = "TaskFailed", lambda_event: bool = False):
    from moto.stepfunctions.parser.api import (
        HistoryEventType,
        LambdaFunctionFailedEventDetails,
        TaskFailedEventDetails,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    if lambda_event:
        event_type = HistoryEventType.LambdaFunctionFailed
        details = EventDetails(lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(
            error=DATA_LIMIT_EXCEEDED, cause=cause))
    else:
        event_type = getattr(HistoryEventType, event_type_name)
        details = EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
            error=DATA_LIMIT_EXCEEDED, cause=cause))
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=StatesErrorNameType.StatesStatesDataLimitExceeded),
            event_type=event_type,
            event_details=details,
        )
    )


def _result_cause(subject: str) -> str:
    # AWS's wording (as in real execution histories).
    return (f"The state/task '{subject}' returned a result with a size exceeding the maximum "
            "number of bytes service limit.")


def install_payload_limit() -> None:
    """Puts the rules above into the vendored interpreter (moto's copy of LocalStack's),
    replacing its own partial check (256 KiB exclusive, ASCII-escaped, catchable by
    States.ALL, no input check)."""
    from moto.stepfunctions.parser.asl.component.common import parargs as parargs_mod
    from moto.stepfunctions.parser.asl.component.common.error_name import error_equals_decl
    from moto.stepfunctions.parser.asl.component.state import state as state_mod
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service,
    )

    # Every state's output (CommonStateField._eval_body calls this after OutputPath,
    # outside the state's Catch/Retry: the execution fails).
    def _verify_state_output(self, env, value) -> None:
        if not within_payload_limit(value):
            raise _data_limit_failure(env, _result_cause(self.name))

    state_mod.CommonStateField._verify_size_quota = _verify_state_output

    # A Lambda function ARN Task's result (the function's payload; AWS names the
    # function ARN in the cause).
    def _verify_lambda_result(self, env, value) -> None:
        payload = value.get("Payload") if isinstance(value, dict) else value
        if not within_payload_limit(payload):
            raise _data_limit_failure(env, _result_cause(self.resource.resource_arn), lambda_event=True)

    state_task_lambda.StateTaskLambda._verify_size_quota = _verify_lambda_result

    # A service integration's response (incl. startExecution.sync[:2]; AWS names
    # the resource type, e.g. 'lambda', 'states', in the cause).
    def _verify_service_result(self, env, value) -> None:
        if not within_payload_limit(value):
            raise _data_limit_failure(env, _result_cause(self._get_sfn_resource_type()))

    state_task_service.StateTaskService._verify_size_quota = _verify_service_result

    # The input after Parameters.
    original_parargs_eval = parargs_mod.Parargs._eval_body

    def _parargs_eval_body(self, env) -> None:
        original_parargs_eval(self, env)
        if env.stack and not within_payload_limit(env.stack[-1]):
            name = _state_name(env) or "?"
            raise _data_limit_failure(
                env,
                f"The state/task '{name}' has an input, after Parameters processing, with a size "
                "exceeding the maximum number of bytes service limit.",
            )

    parargs_mod.Parargs._eval_body = _parargs_eval_body

    # Catching: States.ALL / States.TaskFailed do not match States.DataLimitExceeded.
    original_error_equals = error_equals_decl.ErrorEqualsDecl._eval_body

    def _error_equals_eval_body(self, env) -> None:
        error_name = env.stack[-1] if env.stack else None
        verdict = data_limit_matches(error_name, self.error_names)
        if verdict is None:
            original_error_equals(self, env)
            return
        env.stack.pop()
        env.stack.append(verdict)

    error_equals_decl.ErrorEqualsDecl._eval_body = _error_equals_eval_body

    # A Parallel branch or Map iteration that failed with States.DataLimitExceeded fails
    # its Parallel/Map with that error (AWS passes a branch's error up). The interpreter
    # re-wraps the branch's error as CustomErrorName, which refuses any "States." name
    # (ValueError -> States.Runtime). Only States.DataLimitExceeded is mapped here; other
    # States.* errors of a branch keep the interpreter's behaviour.
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl

    def _branch_error_name(error_name=None, *args, **kwargs):
        if error_name == DATA_LIMIT_EXCEEDED:
            return StatesErrorName(typ=StatesErrorNameType.StatesStatesDataLimitExceeded)
        return CustomErrorName(error_name, *args, **kwargs)

    for module in (branches_decl, iteration_worker):
        module.CustomErrorName = _branch_error_name


# ---------------------------------------------------------------------------------------
# The callback pattern: .waitForTaskToken on the simulated clock
# ---------------------------------------------------------------------------------------
# AWS, Step Functions DG, "Wait for a Callback with Task Token" (connect-to-resource.html
# #connect-wait-token): a Task whose Resource ends in `.waitForTaskToken` passes
# `$$.Task.Token` to the integration and then pauses "until it receives that task token
# back with a SendTaskSuccess or SendTaskFailure call"; "Configure a Heartbeat Timeout
# for a Waiting Task": TimeoutSeconds/HeartbeatSeconds bound the wait and, when they run
# out, the Task fails with States.Timeout (TaskTimedOut event), which Retry and Catch
# handle like any error ("Handling errors in Step Functions workflows", States.Timeout).
# Each Retry attempt is a new task: the context object's Task.Token is new
# ("Accessing execution data from the Context object": Task.Token is the token of the
# current task), and the token of an attempt that ended answers TaskTimedOut.
# Step Functions API Reference, SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat,
# "Errors": InvalidToken "The provided token is not valid." (400); TaskTimedOut "The task
# token has either expired or the task associated with the token has already been
# closed." (400); SendTaskSuccess also InvalidOutput "The provided JSON output data is
# not valid." (400). SendTaskFailure's `error` and `cause` become the Task's error and
# cause (TaskFailed event), so a Catch on that error name matches.

# How often the callback waits re-read the clock and the execution's state (real s).
_CALLBACK_SLICE_REAL_SECONDS = 0.02


class TaskTokenRecord:
    """A task token the world issued to a .waitForTaskToken Task attempt."""

    __slots__ = ("token", "state_machine_arn", "execution_arn", "endpoint", "closed")

    def __init__(self, token: str, state_machine_arn: str | None, execution_arn: str | None, endpoint):
        self.token = token
        self.state_machine_arn = state_machine_arn
        self.execution_arn = execution_arn
        self.endpoint = endpoint
        self.closed = False


# token -> TaskTokenRecord; a record is closed (under _TOKENS_LOCK) when its attempt ends:
# a SendTaskSuccess/SendTaskFailure accepted, the wait timed out, the execution stopped.
TASK_TOKENS: dict[str, TaskTokenRecord] = {}
_TOKENS_LOCK = threading.Lock()


def task_token_record(token: str | None) -> TaskTokenRecord | None:
    if not token:
        return None
    with _TOKENS_LOCK:
        return TASK_TOKENS.get(token)


def task_token_state_machine(token: str | None) -> str | None:
    """The ARN of the state machine whose execution issued `token` (None: not a token of
    a .waitForTaskToken Task the world issued). rules/iam.py authorizes SendTask* on it."""
    record = task_token_record(token)
    return record.state_machine_arn if record is not None else None


def _register_token(token: str, context_data: dict, endpoint) -> TaskTokenRecord:
    machine = (context_data.get("StateMachine") or {}).get("Id")
    execution = (context_data.get("Execution") or {}).get("Id")
    record = TaskTokenRecord(token, machine, execution, endpoint)
    with _TOKENS_LOCK:
        TASK_TOKENS[token] = record
    return record


def _token_closed(token: str) -> bool:
    record = task_token_record(token)
    return record is not None and record.closed


def _close_token(record: TaskTokenRecord) -> None:
    with _TOKENS_LOCK:
        record.closed = True


def wait_for_task_token(env, record: TaskTokenRecord, timeout_seconds, heartbeat_endpoint):
    """Waits, on the simulated clock, for the outcome of a .waitForTaskToken attempt:
    the CallbackOutcome sent (success/failure), CallbackOutcomeTimedOut when
    TimeoutSeconds ran out, HeartbeatTimedOut when HeartbeatSeconds passed without a
    SendTaskHeartbeat, None when the execution stopped. The clock starts now (after the
    integration call returned, see the module docstring). A SendTaskSuccess/Failure wakes
    the wait at once (the endpoint's event); the execution's state and heartbeats are
    read every _CALLBACK_SLICE_REAL_SECONDS."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackOutcomeTimedOut,
        HeartbeatTimedOut,
    )

    endpoint = record.endpoint
    heartbeat_event = getattr(heartbeat_endpoint, "_next_heartbeat_event", None)
    heartbeat_seconds = getattr(heartbeat_endpoint, "_heartbeat_seconds", None)
    start = clock.now()
    deadline = start + _real_datetime.timedelta(seconds=float(timeout_seconds))
    last_beat = start

    def still_waiting() -> bool:
        return (env.is_running() and not record.closed and endpoint.get_outcome() is None
                and not (heartbeat_event is not None and heartbeat_event.is_set()))

    while True:
        outcome = endpoint.get_outcome()
        if outcome is not None:
            return outcome
        if not env.is_running() or record.closed:
            return None
        now = clock.now()
        if heartbeat_event is not None and heartbeat_event.is_set():
            heartbeat_event.clear()
            last_beat = now
        remaining = (deadline - now).total_seconds()
        beat_remaining = float("inf")
        if heartbeat_seconds is not None:
            beat_remaining = (last_beat - now).total_seconds() + float(heartbeat_seconds)
        if remaining <= 0 or beat_remaining <= 0:
            with _TOKENS_LOCK:
                outcome = endpoint.get_outcome()  # sent just in time: it counts
                if outcome is not None:
                    return outcome
                record.closed = True
            if remaining <= 0:
                return CallbackOutcomeTimedOut(callback_id=record.token)
            return HeartbeatTimedOut()
        sim_wait(min(remaining, beat_remaining), endpoint._notify_event, still_waiting,
                 slice_real=_CALLBACK_SLICE_REAL_SECONDS)


def install_task_tokens() -> None:
    """Puts the callback pattern (section comment) into the interpreter and the API:

    * ``StateTaskServiceCallback._evaluate_with_timeout`` (a .waitForTaskToken Task
      attempt; every other Task keeps the interpreter's real-second timeout): a new token
      for every attempt after the first, registered with its state machine and execution
      before Parameters are evaluated; no real-second bound around the attempt (the
      simulated one is inside); the attempt ends as soon as the execution stops; the
      token is closed when the attempt ends.
    * ``StateTaskServiceCallback._eval_wait_for_task_token``: ``wait_for_task_token``.
    * ``send_task_success`` / ``send_task_failure`` / ``send_task_heartbeat`` of the
      parser backend: a world-issued token answers TaskTimedOut once its attempt ended
      (moto: its consumer-error check never fires, so a late SendTaskSuccess was
      accepted, and a token of an ended execution answered InvalidToken), InvalidToken when
      no Task issued it (moto: ``InvalidToken()`` cannot be constructed, HTTP 500);
      SendTaskSuccess checks its output is JSON (InvalidOutput); SendTaskFailure passes
      ``cause`` too (moto's response handler dropped it)."""
    import copy

    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser import models as parser_models
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackOutcomeFailure,
        CallbackOutcomeSuccess,
    )
    from moto.stepfunctions.parser.utils import TMP_THREADS
    from moto.stepfunctions.responses import StepFunctionResponse

    class InvalidToken(AWSError):
        TYPE = "InvalidToken"
        STATUS = 400

    class TaskTimedOut(AWSError):
        TYPE = "TaskTimedOut"
        STATUS = 400

    class InvalidOutput(AWSError):
        TYPE = "InvalidOutput"
        STATUS = 400

    # The messages AWS answers with (as users quote them).
    invalid_token = "Invalid Token: 'Invalid token'"
    task_timed_out = "Task Timed Out: 'Provided task does not exist anymore'"

    callback_cls = state_task_service_callback.StateTaskServiceCallback
    original_evaluate = ExecutionState._evaluate_with_timeout
    original_wait = callback_cls._eval_wait_for_task_token

    def is_callback_attempt(task, env) -> bool:
        resource = getattr(task, "resource", None)
        return (getattr(resource, "condition", None) == ResourceCondition.WaitForTaskToken
                and not env.is_mocked_mode())

    def _evaluate_with_timeout(self, env) -> None:
        if not is_callback_attempt(self, env):
            return original_evaluate(self, env)
        data = env.states.context_object.context_object_data
        token = (data.get("Task") or {}).get("Token")
        if token is None or _token_closed(token) or env.callback_pool_manager.get(token) is None:
            # A Retry attempt is a new task with a new token (section comment).
            token = env.states.context_object.update_task_token()
            env.callback_pool_manager.add(token)
        record = _register_token(token, data, env.callback_pool_manager.get(token))

        frame = env.open_frame()
        frame.states.reset(input_value=env.states.get_input())
        frame.stack = copy.deepcopy(env.stack)
        outputs: list = []
        errors: list = [None]
        done = threading.Event()

        def run():
            try:
                self._eval_execution(frame)
                outputs.extend(frame.stack)
            except Exception as ex:  # noqa: BLE001 - handed to the state's Retry/Catch
                errors.append(ex)
            done.set()

        thread = threading.Thread(target=run, daemon=True, name=f"WaitForTaskToken_{self.name}")
        TMP_THREADS.append(thread)
        thread.start()
        try:
            while not done.wait(_CALLBACK_SLICE_REAL_SECONDS):
                if not env.is_running():
                    break
        finally:
            _close_token(record)
            frame.set_ended()
            env.close_frame(frame)
        if not env.is_running():
            # The execution stopped (StopExecution, or it ended elsewhere): no output and
            # no failure event; the attempt's own answer, if any, is not used.
            return
        error = errors.pop()
        if error:
            raise error
        output = outputs.pop()
        env.stack.append(output)
        if not self._is_language_query_jsonpath():
            env.states.set_result(output)
        if self.assign_decl:
            self.assign_decl.eval(env=env)
        if self.result_selector:
            self.result_selector.eval(env=env)
        if self.result_path:
            self.result_path.eval(env)
        else:
            env.states.reset(input_value=env.stack.pop())

    callback_cls._evaluate_with_timeout = _evaluate_with_timeout

    def _eval_wait_for_task_token(self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint):
        record = task_token_record(getattr(callback_endpoint, "callback_id", None))
        if record is None or not is_callback_attempt(self, env):
            return original_wait(self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint)
        outcome = wait_for_task_token(env, record, timeout_seconds, heartbeat_endpoint)
        if outcome is None:  # stopped: whatever the attempt returns is not used
            from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeTimedOut

            return CallbackOutcomeTimedOut(callback_id=record.token)
        return outcome

    callback_cls._eval_wait_for_task_token = _eval_wait_for_task_token

    # --- the API ----------------------------------------------------------------------
    backend_cls = parser_models.StepFunctionsParserBackend
    original_success = backend_cls.send_task_success
    original_failure = backend_cls.send_task_failure
    original_heartbeat = backend_cls.send_task_heartbeat

    def other_token_known(backend, token) -> bool:
        """A token moto's own interpreter handles (activity tasks)."""
        for execution in backend._get_executions():
            worker = getattr(execution, "exec_worker", None)
            env = getattr(worker, "env", None)
            pool = getattr(env, "callback_pool_manager", None)
            if pool is not None and pool.get(token) is not None:
                return True
        return False

    def deliver(record: TaskTokenRecord, outcome) -> None:
        with _TOKENS_LOCK:
            if record.closed or record.endpoint is None or record.endpoint.get_outcome() is not None:
                raise TaskTimedOut(task_timed_out)
            record.closed = True
            record.endpoint.notify(outcome)

    def send_task_success(self, task_token, outcome):
        record = task_token_record(task_token)
        if record is None:
            if other_token_known(self, task_token):
                return original_success(self, task_token, outcome)
            raise InvalidToken(invalid_token)
        try:
            json.loads(outcome)
        except (TypeError, ValueError):
            raise InvalidOutput("The provided JSON output data is not valid.") from None
        deliver(record, CallbackOutcomeSuccess(callback_id=task_token, output=outcome))

    def send_task_failure(self, task_token, error=None, cause=None):
        record = task_token_record(task_token)
        if record is None:
            if other_token_known(self, task_token):
                return original_failure(self, task_token, error=error, cause=cause)
            raise InvalidToken(invalid_token)
        deliver(record, CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause))

    def send_task_heartbeat(self, task_token):
        record = task_token_record(task_token)
        if record is None:
            if other_token_known(self, task_token):
                return original_heartbeat(self, task_token)
            raise InvalidToken(invalid_token)
        with _TOKENS_LOCK:
            if record.closed or record.endpoint is None or record.endpoint.get_outcome() is not None:
                raise TaskTimedOut(task_timed_out)
            record.endpoint.notify_heartbeat()

    backend_cls.send_task_success = send_task_success
    backend_cls.send_task_failure = send_task_failure
    backend_cls.send_task_heartbeat = send_task_heartbeat

    from moto.core.responses import EmptyResult

    def response_send_task_failure(self):
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause"))
        return EmptyResult()

    StepFunctionResponse.send_task_failure = response_send_task_failure


# ---------------------------------------------------------------------------------------
# The state machine's role: the calls Step Functions makes with it
# ---------------------------------------------------------------------------------------


class LambdaInvokeDenied(Exception):
    """An Invoke the Task's role may not make: (error, cause) as Step Functions reports it."""

    def __init__(self, error: str, cause: str):
        super().__init__(cause)
        self.error = error
        self.cause = cause


def _iam_rules():
    """rules/iam.py, or None when the world runs without its rules (plain moto)."""
    try:
        from ..rules import iam
    except ImportError:
        return None
    return iam


def install_role_authorization() -> None:
    """Puts the state machine's role in front of the interpreter's Lambda and Step
    Functions calls (module docstring; the rules and the AWS documents they follow are
    in rules/iam.py: lambda_task_denial, nested_start_denial).

    * Lambda: ``lambda_eval_utils.execute_lambda_function_integration``, the one Invoke
      path of both Task forms, asks ``lambda_task_denial`` first (FunctionName and
      Qualifier as the Task passes them, the role the Task runs with). A denial fails a
      ``Resource: <function ARN>`` Task with a LambdaFunctionFailed event and a
      ``lambda:invoke`` Task with a TaskFailed event (resource ``invoke``, resource type
      ``lambda``), both with error ``Lambda.AWSLambdaException``. The function is not
      invoked. (Which history event AWS records for this failure is not documented;
      LambdaFunctionFailed after LambdaFunctionScheduled/Started is how the world
      records every Lambda service error of a function ARN Task.)
    * Nested executions: ``StateTaskServiceSfn._eval_service_task`` (the StartExecution
      call) asks ``nested_start_denial`` with the child's state machine ARN and the
      execution name (a Task without Name gets its UUID name here, so the name checked is
      the name started); a denial fails the Task with a TaskFailed event (resource
      ``startExecution.sync:2``..., resource type ``states``) and
      ``StepFunctions.AWSStepFunctionsException``; no child is started."""
    from moto.stepfunctions.parser.api import (
        HistoryEventType,
        LambdaFunctionFailedEventDetails,
        TaskFailedEventDetails,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,
        state_task_lambda,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_lambda,
        state_task_service_sfn,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    def _role_of(env, state_credentials) -> str | None:
        role = getattr(state_credentials, "role_arn", None)
        return role or env.aws_execution_details.role_arn

    # --- Lambda: both Task forms invoke through this module function ---------------
    original_execute = lambda_eval_utils.execute_lambda_function_integration

    def execute_lambda_function_integration(env, parameters, region, state_credentials):
        iam = _iam_rules()
        if iam is not None and not env.is_mocked_mode():
            denial = iam.lambda_task_denial(
                _role_of(env, state_credentials), region, env.aws_execution_details.account,
                parameters.get("FunctionName"), parameters.get("Qualifier"),
            )
            if denial is not None:
                raise LambdaInvokeDenied(*denial)
        return original_execute(env=env, parameters=parameters, region=region, state_credentials=state_credentials)

    lambda_eval_utils.execute_lambda_function_integration = execute_lambda_function_integration

    lambda_task = state_task_lambda.StateTaskLambda
    function_arn_from_error = lambda_task._from_error  # the world's (Lambda.<code>) version

    def _function_arn_from_error(self, env, ex):
        if isinstance(ex, LambdaInvokeDenied):
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(ex.error),
                event_type=HistoryEventType.LambdaFunctionFailed,
                event_details=EventDetails(
                    lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(error=ex.error, cause=ex.cause)
                ),
            )
        return function_arn_from_error(self, env, ex)

    lambda_task._from_error = _function_arn_from_error

    invoke_task = state_task_service_lambda.StateTaskServiceLambda
    invoke_from_error = invoke_task._from_error

    def _invoke_from_error(self, env, ex):
        if isinstance(ex, LambdaInvokeDenied):
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(ex.error),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=ex.error, cause=ex.cause,
                        resource=self._get_sfn_resource(), resourceType=self._get_sfn_resource_type(),
                    )
                ),
            )
        return invoke_from_error(self, env, ex)

    invoke_task._from_error = _invoke_from_error

    # --- Nested executions -------------------------------------------------------------
    sfn_task = state_task_service_sfn.StateTaskServiceSfn
    original_service_task = sfn_task._eval_service_task

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        iam = _iam_rules()
        if iam is not None and self._get_boto_service_action() == "start_execution":
            import uuid

            if not normalised_parameters.get("name"):
                normalised_parameters["name"] = str(uuid.uuid4())
            sync = self.resource.condition in (ResourceCondition.Sync, ResourceCondition.Sync2)
            denial = iam.nested_start_denial(
                _role_of(env, state_credentials), resource_runtime_part.region, resource_runtime_part.account,
                normalised_parameters.get("stateMachineArn"), normalised_parameters["name"], sync,
            )
            if denial is not None:
                error, cause = denial
                raise FailureEventException(
                    failure_event=FailureEvent(
                        env=env,
                        error_name=CustomErrorName(error),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(
                            taskFailedEventDetails=TaskFailedEventDetails(
                                error=error, cause=cause,
                                resource=self._get_sfn_resource(), resourceType=self._get_sfn_resource_type(),
                            )
                        ),
                    )
                )
        return original_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials)

    sfn_task._eval_service_task = _eval_service_task


# ---------------------------------------------------------------------------------------
# GetExecutionHistory as AWS answers it
# ---------------------------------------------------------------------------------------
HISTORY_PAGE_DEFAULT = 100  # AWS: maxResults default 100 ... up to 1000


def page_history(events: list, reverse: bool, max_results: int | None, token: str | None,
                 include_data: bool) -> tuple[list, str | None]:
    """Step Functions API Reference, GetExecutionHistory: `reverseOrder` lists events
    newest first; `maxResults` (default 100, at most 1000) pages with a `nextToken`;
    `includeExecutionData: false` leaves out each event's input and output. Returns
    (page, next token or None). moto answers every event, oldest first, with data."""
    ordered = list(reversed(events)) if reverse else list(events)
    size = max_results if max_results and 0 < max_results <= 1000 else HISTORY_PAGE_DEFAULT
    start = int(token) if token and token.isdigit() else 0
    page = ordered[start:start + size]
    if not include_data:
        page = [_without_data(e) for e in page]
    nxt = str(start + size) if start + size < len(ordered) else None
    return page, nxt


def _without_data(event: dict) -> dict:
    out = dict(event)
    for key, details in event.items():
        if key.endswith("EventDetails") and isinstance(details, dict):
            out[key] = {k: v for k, v in details.items()
                        if k not in ("input", "output", "inputDetails", "outputDetails")}
    return out


def install_history_paging() -> None:
    """GetExecutionHistory honours reverseOrder, maxResults/nextToken and
    includeExecutionData (page_history), as the API reference documents."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    original = StepFunctionResponse.get_execution_history

    def get_execution_history(self):
        answer = original(self)
        result = getattr(answer, "result", None)
        if not isinstance(result, dict) or not isinstance(result.get("events"), list):
            return answer
        include = self._get_param("includeExecutionData")
        page, nxt = page_history(
            result["events"], bool(self._get_param("reverseOrder")), self._get_param("maxResults"),
            self._get_param("nextToken"), include is None or bool(include),
        )
        body = {**result, "events": page}
        body.pop("nextToken", None)
        if nxt:
            body["nextToken"] = nxt
        return ActionResult(body)

    StepFunctionResponse.get_execution_history = get_execution_history


# ---------------------------------------------------------------------------------------
# .sync / .sync:2: wait for the child without a DescribeExecution round trip per poll
# ---------------------------------------------------------------------------------------
def _child_still_running(execution_arn: str) -> bool:
    """The child's status straight from the backend (no HTTP call): True while RUNNING."""
    from moto.stepfunctions.responses import get_backend

    parts = execution_arn.split(":")
    if len(parts) < 8:
        return False
    try:
        execution = get_backend(parts[4], parts[3]).describe_execution(execution_arn)
    except Exception:  # noqa: BLE001 - unknown here: let the interpreter ask as it does
        return False
    return getattr(execution, "status", None) == "RUNNING"


def install_quiet_sync_polls() -> None:
    """The interpreter waits for a nested `.sync`/`.sync:2` child by calling
    DescribeExecution over HTTP every 0.5 s real (300 simulated seconds): with 20 children
    that is most of the world's work (the 100-target distribute test made ~2,400 such
    calls). AWS learns that a child ended from EventBridge, not by polling. Here the
    resolver first reads the child's status from the backend in process and makes the
    real DescribeExecution call (evaluated, recorded, its answer used as before) only once
    the child has ended. What the parent sees is unchanged."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sfn,
    )

    cls = state_task_service_sfn.StateTaskServiceSfn
    for name in ("_build_sync_resolver", "_build_sync2_resolver"):
        original = getattr(cls, name)

        def build(self, env, resource_runtime_part, normalised_parameters, state_credentials,
                  _original=original):
            top = env.stack[-1] if env.stack else None
            arn = top.get("ExecutionArn") if isinstance(top, dict) else None
            resolver = _original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
            if resolver is None or not arn:
                return resolver

            def quiet_resolver():
                if _child_still_running(arn):
                    return None
                return resolver()

            return quiet_resolver

        setattr(cls, name, build)
