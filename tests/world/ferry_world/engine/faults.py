"""The world's front door: a WSGI middleware in front of moto that records every AWS call,
fails the ones a test asks it to fail, and serves the world's control API.

Every AWS call (from boto3, from the Rust Lambdas, from the Step Functions interpreter)
goes through here, so a fault applies to all of them alike.

Control API (JSON):

  GET    /ferry-world/health                  {"ok": true, ...}
  GET    /ferry-world/faults                  the armed faults with their remaining counts
  POST   /ferry-world/faults                  arm one (or a list): {"service": "ec2",
         "action": "RunInstances", "count": 2, "code": "InsufficientInstanceCapacity",
         "status": 500, "message": "...", optional "account", "caller", "skip",
         "mode": "before" (default: the call never reaches AWS) or "after" (AWS
         carries the call out, then its answer is lost and the caller sees the error:
         what a timeout after commit looks like, the case idempotency tokens exist for)
         or "kill" (a Lambda killed mid-step: only a call made by a Lambda sandbox
         matches; AWS carries it out, then the runner SIGKILLs that sandbox's process
         before the answer, so the invocation ends with Runtime.ExitError; "code" is
         optional and only recorded)}
  DELETE /ferry-world/faults                  disarm all
  GET    /ferry-world/calls?service=&action=&account=&caller=&since=
  DELETE /ferry-world/calls
  GET    /ferry-world/config                  config.snapshot()
  POST   /ferry-world/config                  config.update(body)
  GET    /ferry-world/clock                   {"now", "scale"}
  POST   /ferry-world/clock/advance           {"seconds": N}
  POST   /ferry-world/clock/scale             {"scale": N}: simulated seconds per real second
                                              from now on (the clock goes on from where it
                                              is); reset puts FERRY_WORLD_TIME_SCALE back
  POST   /ferry-world/reset                   moto reset + config.reset + faults, calls and
                                              EventBridge / Scheduler invocation records
                                              cleared + Lambda sandboxes stopped
  GET    /ferry-world/functions               the Lambda runner's sandboxes and counts
  GET    /ferry-world/sfn/retries?executionArn=   Retry delays the interpreter chose
  POST   /ferry-world/stacks                  deploy a plain template's IAM roles into an
         account, as CloudFormation would: {"template": "target-account.yaml", "account":
         "...", "parameters": {...}} -> {"outputs": {...}} (deploy.deploy_stack); also
         template.yaml's plain roles (the invoker role) into the hub, with its !Ref /
         !GetAtt of the deployed state machines: {"template": "template.yaml", "account":
         "<hub>", "parameters": {"InvokerAccountIds": "...", "InvokerExternalId": "..."}}
         ("stack" defaults to "ferry-target", and to the world's stack, $FERRY_WORLD_STACK
         or "ferry", for template.yaml)
  GET    /ferry-world/events/invocations      EventBridge deliveries to Step Functions
         targets (rules/events.py): {"delivered": [...], "failed": [{rule, targetArn,
         roleArn, error, cause}]} (AWS: the FailedInvocations metric / a target's DLQ);
         EventBridge Scheduler's invocations too, with "source": "scheduler"; Lambda
         targets' asynchronous invokes; "ec2Events": every EC2 state-change event the
         world emitted (rules/ec2_events.py) as {"event", "status": queued | delivered |
         dropped | failed, "deliveredWall": real Unix seconds it was handed to the rules}
  POST   /ferry-world/schedules/fire          invoke an EventBridge Scheduler schedule as
         when its time comes (rules/scheduler.py, which documents the request and answer):
         {"name": "ferry-distribute-image", optional "group", "accountId", "region",
         "scheduledTime"} -> {"invoked", "reason", "executionArn", "failure", "input", ...};
         a DISABLED schedule invokes nothing; 404 ResourceNotFoundException
  GET    /ferry-world/iam/usage               per evaluated role: calls, and the allowed
                                              actions no call used (rules/iam.py)
  DELETE /ferry-world/iam/usage               forget the usage recorded so far
"""
from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
from urllib.parse import parse_qs

from . import clock, config

MAX_CALLS = 200_000

# Service names as a caller may spell them -> the SigV4 signing name recorded.
SERVICE_ALIASES = {
    "stepfunctions": "states",
    "sfn": "states",
    "awslambda": "lambda",
    "organisations": "organizations",
}

# HTTP status AWS uses for well-known codes, when the fault does not say.
DEFAULT_STATUS = {
    "RequestLimitExceeded": 503,
    "Throttling": 400,
    "ThrottlingException": 400,
    "TooManyRequestsException": 429,
    "InternalError": 500,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "Unavailable": 503,
    "ServiceException": 500,
    "KMSInternalException": 500,
    "InsufficientInstanceCapacity": 500,
}

_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")


def _norm_service(name: str | None) -> str:
    name = (name or "").lower()
    return SERVICE_ALIASES.get(name, name)


MODES = ("before", "after", "kill")


class Fault:
    def __init__(self, spec: dict):
        if spec.get("mode") == "kill" and not spec.get("code"):
            spec = {**spec, "code": "SandboxKilled"}
        if not spec.get("code"):
            raise ValueError("a fault needs a 'code' (the AWS error code to answer with)")
        if not spec.get("service"):
            raise ValueError("a fault needs a 'service' (ec2, kms, lambda, states, ...)")
        self.id = spec.get("id") or uuid.uuid4().hex[:12]
        self.service = _norm_service(spec["service"])
        self.action = spec.get("action") or "*"
        self.count = int(spec.get("count", 1))
        self.skip = int(spec.get("skip", 0))
        self.code = spec["code"]
        self.status = int(spec.get("status") or DEFAULT_STATUS.get(self.code, 400))
        self.message = spec.get("message") or f"{self.code} (injected by the ferry world)"
        self.account = spec.get("account")
        self.caller = spec.get("caller")
        self.mode = spec.get("mode", "before")
        if self.mode not in MODES:
            raise ValueError("mode must be 'before', 'after' or 'kill'")
        if self.mode == "kill" and self.message == f"{self.code} (injected by the ferry world)":
            self.message = "the calling Lambda sandbox was killed (injected by the ferry world)"
        self.fired = 0
        if self.count < 1:
            raise ValueError("count must be >= 1")

    def matches(self, call: dict) -> bool:
        if self.service not in ("*", call["service"]):
            return False
        if self.action != "*" and self.action not in (call["action"], call.get("request")):
            return False
        if self.account and self.account != call["account"]:
            return False
        if self.caller and self.caller != call.get("caller"):
            return False
        return True

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "service": self.service,
            "action": self.action,
            "count": self.count,
            "skip": self.skip,
            "fired": self.fired,
            "code": self.code,
            "status": self.status,
            "message": self.message,
            "account": self.account,
            "caller": self.caller,
            "mode": self.mode,
        }


class World:
    """State of the middleware: armed faults and recorded calls."""

    def __init__(self):
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.calls: list[dict] = []
        self.seq = 0

    def arm(self, specs) -> list[dict]:
        specs = specs if isinstance(specs, list) else [specs]
        faults = [Fault(s) for s in specs]
        with self.lock:
            self.faults.extend(faults)
        return [f.to_dict() for f in faults]

    def take_fault(self, call: dict, sandbox=None) -> Fault | None:
        """The first armed fault matching `call`, its count taken. `sandbox()` names the
        Lambda sandbox that made the call (None: not a sandbox); a "kill" fault matches
        only a sandbox's call."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(call):
                    if fault.mode == "kill" and (sandbox is None or sandbox() is None):
                        continue
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.count -= 1
                    fault.fired += 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def record(self, call: dict) -> None:
        # "wall": real (Unix) seconds when the call's answer was ready. The simulated clock
        # runs real time times the time scale, so a bound on how long something took in
        # real terms is what stays true on a loaded machine (tests/e2e event_waits.rs).
        with self.lock:
            self.seq += 1
            call["seq"] = self.seq
            call["wall"] = round(time.time(), 3)
            self.calls.append(call)
            if len(self.calls) > MAX_CALLS:
                del self.calls[: len(self.calls) - MAX_CALLS]

    def query(self, params: dict) -> list[dict]:
        service = _norm_service(params.get("service")) if params.get("service") else None
        action = params.get("action")
        account = params.get("account")
        caller = params.get("caller")
        since = int(params.get("since") or 0)
        with self.lock:
            calls = list(self.calls)
        return [
            c
            for c in calls
            if (service is None or c["service"] == service)
            and (action is None or action in (c["action"], c.get("request")))
            and (account is None or c["account"] == account)
            and (caller is None or c.get("caller") == caller)
            and c["seq"] > since
        ]

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.calls.clear()


WORLD = World()


# ---------------------------------------------------------------------------------------
# Identifying a call
# ---------------------------------------------------------------------------------------


def _read_body(environ) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            body = stream.read(int(length))
        except ValueError:
            body = b""
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _account_for(access_key: str | None, environ) -> str:
    explicit = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if explicit:
        return explicit
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import get_account_id_from

    if not access_key:
        return DEFAULT_ACCOUNT_ID
    try:
        return get_account_id_from(access_key)
    except Exception:  # noqa: BLE001 - recording must never break a call
        return DEFAULT_ACCOUNT_ID


def _rest_operation(service: str, environ) -> str | None:
    try:
        from moto.core.request import Request
        from moto.core.routing import get_service_router

        boto_name = {"states": "stepfunctions"}.get(service, service)
        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(environ["wsgi.input"].getvalue())
        operation, _ = get_service_router(boto_name).match(Request(env))
        return operation.name
    except Exception:  # noqa: BLE001
        return None


def identify(environ, body: bytes) -> dict:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    access_key = service = region = None
    m = _CREDENTIAL.search(auth)
    if m:
        access_key, region, service = m.group(1), m.group(2), m.group(3)
    target = environ.get("HTTP_X_AMZ_TARGET")
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    content_type = environ.get("CONTENT_TYPE", "") or ""

    action = None
    protocol = "rest"
    form = {}
    if target:
        protocol = "json"
        action = target.rsplit(".", 1)[-1]
        if not service:
            service = target.split(".", 1)[0].split("_")[0].lower()
    else:
        if content_type.startswith("application/x-www-form-urlencoded") and body:
            form = parse_qs(body.decode("utf-8", "replace"))
        elif method == "GET" and query:
            form = parse_qs(query)
        if "Action" in form:
            action = form["Action"][0]
            protocol = "query"
    service = _norm_service(service or "unknown")
    if protocol == "query" and service == "ec2":
        protocol = "ec2"
    if protocol == "rest" and service == "s3":
        protocol = "rest-xml"
    request_line = f"{method} {path}"
    if action is None:
        action = _rest_operation(service, environ) or request_line

    from . import lambda_runner

    caller = None
    if access_key == "ak":
        caller = "stepfunctions"  # the ASL interpreter's own client
    elif lambda_runner.RUNNER is not None:
        caller = lambda_runner.RUNNER.function_for_key(access_key)

    call = {
        "time": clock.now().isoformat(),
        "service": service,
        "action": action,
        "account": _account_for(access_key, environ),
        "region": region,
        "accessKey": access_key,
        "caller": caller,
        "protocol": protocol,
    }
    if protocol == "rest" or protocol == "rest-xml":
        call["request"] = request_line
    return call


# ---------------------------------------------------------------------------------------
# AWS-shaped errors
# ---------------------------------------------------------------------------------------


def _xml_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def error_response(fault: Fault, call: dict) -> tuple[str, list, bytes]:
    request_id = str(uuid.uuid4())
    code, message = fault.code, fault.message
    protocol = call["protocol"]
    if protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{_xml_escape(code)}</Code>"
            f"<Message>{_xml_escape(message)}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml;charset=UTF-8")]
    elif protocol == "query":
        kind = "Receiver" if fault.status >= 500 else "Sender"
        body = (
            "<ErrorResponse><Error>"
            f"<Type>{kind}</Type><Code>{_xml_escape(code)}</Code>"
            f"<Message>{_xml_escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    elif protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    elif protocol == "rest-xml":
        body = (
            f"<Error><Code>{_xml_escape(code)}</Code><Message>{_xml_escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml")]
    else:  # rest-json (Lambda...)
        kind = "Service" if fault.status >= 500 else "User"
        body = json.dumps({"Type": kind, "message": message}).encode()
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    headers += [
        ("x-amzn-RequestId", request_id),
        ("x-amz-request-id", request_id),
        ("Content-Length", str(len(body))),
    ]
    from http import HTTPStatus

    try:
        reason = HTTPStatus(fault.status).phrase
    except ValueError:
        reason = "Error"
    return f"{fault.status} {reason}", headers, body


# ---------------------------------------------------------------------------------------
# The middleware
# ---------------------------------------------------------------------------------------


class _SandboxOf:
    """The Lambda sandbox that made a call, found (once, and only when a "kill" fault
    asks) by the caller's TCP connection: the sandbox process owning the socket at the
    request's remote port. Works for a function's own credentials and for a role it
    assumed alike."""

    def __init__(self, environ, port: int):
        self.environ = environ
        self.port = port
        self.done = False
        self.found = None

    def __call__(self):
        if not self.done:
            self.done = True
            from . import lambda_runner

            runner = lambda_runner.RUNNER
            peer = self.environ.get("REMOTE_PORT")
            if runner is not None and peer:
                try:
                    self.found = runner.sandbox_for_peer(int(peer), self.port)
                except (OSError, ValueError):
                    self.found = None
        return self.found


class WorldMiddleware:
    def __init__(self, app, port: int, on_reset=None, health=None):
        self.app = app
        self.port = port
        self.on_reset = on_reset
        self.health = health or (lambda: {})

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/ferry-world/") or path == "/ferry-world":
            return self._control(environ, start_response)
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)

        started = time.monotonic()
        body = _read_body(environ)
        call = identify(environ, body)
        sandbox = _SandboxOf(environ, self.port)
        fault = WORLD.take_fault(call, sandbox)
        if fault is not None and fault.mode in ("after", "kill"):
            # Let AWS (moto) carry the call out, then lose its answer.
            done = {}
            result = self.app(environ, lambda status, headers, exc_info=None: done.setdefault("s", status))
            b"".join(result)
            if hasattr(result, "close"):
                result.close()
        if fault is not None and fault.mode == "kill":
            # The call took effect; now its caller dies before it hears back.
            victim = sandbox()
            call["killed"] = {"function": victim.spec.name, "pid": victim.pid}
            victim.kill_by_fault(f"{call['service']}:{call['action']}", fault.id)
        if fault is not None:
            status, headers, payload = error_response(fault, call)
            call.update(status=fault.status, fault=fault.id, errorCode=fault.code)
            call["durationMs"] = round((time.monotonic() - started) * 1000, 2)
            WORLD.record(call)
            start_response(status, headers)
            return [payload]

        captured = {}

        def _start_response(status, headers, exc_info=None):
            captured["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        try:
            result = self.app(environ, _start_response)
        except Exception:
            call.update(status=500, durationMs=round((time.monotonic() - started) * 1000, 2))
            WORLD.record(call)
            raise
        call["status"] = captured.get("status")
        call["durationMs"] = round((time.monotonic() - started) * 1000, 2)
        WORLD.record(call)
        return result

    # -- control API ------------------------------------------------------------------

    def _control(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        params = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        raw = _read_body(environ)
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            return _json(start_response, 400, {"error": f"body is not JSON: {exc}"})
        try:
            status, payload = self._route(method, path, params, body)
        except (KeyError, ValueError, TypeError) as exc:
            return _json(start_response, 400, {"error": str(exc)})
        return _json(start_response, status, payload)

    def _route(self, method, path, params, body):
        from . import lambda_runner, sfn

        if path == "/ferry-world/health" and method == "GET":
            return 200, {"ok": True, "port": self.port, **self.health()}
        if path == "/ferry-world/faults":
            if method == "GET":
                with WORLD.lock:
                    return 200, {"faults": [f.to_dict() for f in WORLD.faults]}
            if method == "POST":
                return 201, {"faults": WORLD.arm(body)}
            if method == "DELETE":
                with WORLD.lock:
                    WORLD.faults.clear()
                return 200, {"faults": []}
        if path == "/ferry-world/calls":
            if method == "GET":
                calls = WORLD.query(params)
                return 200, {"calls": calls, "count": len(calls)}
            if method == "DELETE":
                with WORLD.lock:
                    WORLD.calls.clear()
                return 200, {"calls": []}
        if path == "/ferry-world/config":
            if method == "GET":
                return 200, config.snapshot()
            if method == "POST":
                return 200, config.update(body)
        if path == "/ferry-world/clock" and method == "GET":
            return 200, {"now": clock.now().isoformat(), "scale": clock.SCALE}
        if path == "/ferry-world/clock/scale" and method == "POST":
            clock.set_scale(float(body["scale"]))
            return 200, {"now": clock.now().isoformat(), "scale": clock.SCALE}
        if path == "/ferry-world/clock/advance" and method == "POST":
            seconds = float(body["seconds"])
            if seconds < 0:
                raise ValueError("the clock only goes forward")
            clock.advance(seconds)
            return 200, {"now": clock.now().isoformat(), "scale": clock.SCALE}
        if path == "/ferry-world/reset" and method == "POST":
            if self.on_reset:
                self.on_reset()
            WORLD.clear()
            config.reset()
            if clock.SCALE != clock.DEFAULT_SCALE:
                clock.set_scale(clock.DEFAULT_SCALE)
            sfn.RETRY_DELAYS.clear()
            try:  # EventBridge / EventBridge Scheduler invocation records (rules/events.py)
                from ..rules import events

                events.reset()
                from ..rules import ec2_events

                ec2_events.reset()
            except ImportError:
                pass
            return 200, {"reset": True, "now": clock.now().isoformat()}
        if path == "/ferry-world/functions" and method == "GET":
            runner = lambda_runner.RUNNER
            return 200, runner.describe() if runner else {"sandboxes": [], "stats": {}}
        if path == "/ferry-world/sfn/retries" and method == "GET":
            arn = params.get("executionArn")
            delays = [d for d in list(sfn.RETRY_DELAYS) if arn is None or d["executionArn"] == arn]
            return 200, {"retries": delays}
        if path == "/ferry-world/stacks" and method == "POST":
            from . import deploy

            template = deploy.REPO_ROOT / body["template"]
            if template.parent != deploy.REPO_ROOT or not template.exists():
                raise ValueError(f"no template {body['template']!r} at the repository root")
            endpoint = f"http://127.0.0.1:{self.port}"
            import os

            default_stack = (os.environ.get("FERRY_WORLD_STACK", "ferry") if template.name == "template.yaml"
                             else "ferry-target")
            outputs = deploy.deploy_stack(
                template, endpoint, str(body["account"]), body.get("region", "us-east-1"),
                dict(body.get("parameters") or {}), body.get("stack", default_stack),
            )
            return 200, {"outputs": outputs}
        if path == "/ferry-world/events/invocations" and method == "GET":
            from ..rules import events

            from ..rules import ec2_events

            return 200, {"delivered": list(events.DELIVERED), "failed": list(events.FAILED_INVOCATIONS),
                         "ec2Events": [dict(r) for r in list(ec2_events.EMITTED)]}
        if path == "/ferry-world/schedules/fire" and method == "POST":
            from ..rules import scheduler

            return scheduler.fire_request(body)
        if path == "/ferry-world/iam/usage":
            from ..rules import iam

            if method == "GET":
                return 200, {"roles": iam.usage_report()}
            if method == "DELETE":
                iam.reset_usage()
                return 200, {"roles": {}}
        return 404, {"error": f"no such control endpoint: {method} {path}"}


def _json(start_response, status: int, payload) -> list[bytes]:
    from http import HTTPStatus

    data = json.dumps(payload, default=str).encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]
