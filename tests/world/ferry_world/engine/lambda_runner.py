"""Runs Lambda functions of the `provided.*` runtimes for real: the function's zip holds a
`bootstrap` (for ferry, a script that execs the debug binary cargo built), and the runner
plays the Lambda service around it.

Each *sandbox* is one bootstrap process with its own Lambda Runtime API endpoint
(``AWS_LAMBDA_RUNTIME_API``), which the real ``lambda_runtime`` crate talks to:

  GET  /2018-06-01/runtime/invocation/next            long poll; the event and its headers
  POST /2018-06-01/runtime/invocation/{id}/response   the result
  POST /2018-06-01/runtime/invocation/{id}/error      {"errorType", "errorMessage"}
  POST /2018-06-01/runtime/init/error                 the bootstrap failed to start

A sandbox starts on the first invoke (cold start), stays warm, and runs one invocation at a
time; concurrent invokes of the same function start more sandboxes (up to
FERRY_WORLD_LAMBDA_MAX_SANDBOXES per function, then they queue). The function's Timeout
(real seconds: the process runs in real time) is enforced by killing the sandbox and
answering ``Sandbox.Timedout``; a process that dies mid-invocation answers
``Runtime.ExitError`` ("Runtime exited with error: exit status 3", or "signal: killed"),
as Lambda does. The world's ``"mode": "kill"`` fault (faults.py) kills a sandbox that way
in the middle of one of its AWS calls, once the call has taken effect
(``sandbox_for_peer`` finds the sandbox by the call's TCP connection). Step Functions
then fails the Task with that errorType, as it does any function error: on AWS a killed
runtime's Task fails with ``Runtime.ExitError`` and the payload as its cause.
``Lambda.Unknown`` (Step Functions developer guide, "Handle Lambda service exceptions")
is the name of an unhandled error whose payload carries no errorType (an older runtime's
timeout): a Retry listing ``Lambda.Unknown`` and ``Sandbox.Timedout`` does not match a
killed runtime; ``Runtime.ExitError``, ``States.TaskFailed`` or ``States.ALL`` do.
stdout/stderr plus Lambda's START/END/REPORT lines go to ``<state dir>/logs/<function>.log``.

``install(port)`` patches moto's docker-less Lambda backend so Invoke of such a function
runs here and answers like Lambda: 200, and on error ``X-Amz-Function-Error: Unhandled``
with body ``{"errorType", "errorMessage"}``. Functions of other runtimes keep moto's
behaviour.
"""
from __future__ import annotations

import base64
import ctypes
import hashlib
import io
import json
import logging
import os
import queue
import secrets
import signal
import subprocess
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LOG = logging.getLogger("ferry_world.lambda")

RUNTIME_PREFIX = "/2018-06-01/runtime"
MAX_SANDBOXES = int(os.environ.get("FERRY_WORLD_LAMBDA_MAX_SANDBOXES", "8"))
TAIL_BYTES = 4096


def _state_dir() -> Path:
    default = Path(__file__).resolve().parents[4] / ".local"
    return Path(os.environ.get("FERRY_WORLD_STATE_DIR", str(default)))


def access_key_for(function_name: str) -> str:
    """A per-function access key id ([A-Z0-9]{20}, unknown to IAM, so it acts as the
    default = hub account) that lets the call recorder name the calling function."""
    digest = hashlib.sha256(function_name.encode()).hexdigest().upper()
    return ("AKIAFW" + digest)[:20]


# ---------------------------------------------------------------------------------------
# Invocations and sandboxes
# ---------------------------------------------------------------------------------------


@dataclass
class Invocation:
    payload: bytes
    function_arn: str
    timeout: float
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trace_id: str = ""
    deadline_ms: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    result: bytes = b""
    error: bool = False
    started_at: float = 0.0
    duration_ms: float = 0.0
    log: bytearray = field(default_factory=bytearray)

    def finish(self, body: bytes, error: bool) -> bool:
        if self.done.is_set():
            return False
        self.result, self.error = body, error
        self.done.set()
        return True


def _error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def _trace_id() -> str:
    return (
        f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};"
        f"Parent={secrets.token_hex(8)};Sampled=1"
    )


@dataclass
class FunctionSpec:
    """What a sandbox needs from moto's function object, copied at invoke time."""

    name: str
    arn: str
    version: str
    region: str
    account_id: str
    timeout: float
    memory: int
    env: dict
    code_dir: Path
    log_format: str | None
    app_log_level: str | None
    system_log_level: str | None
    role: str = ""

    @property
    def key(self) -> str:
        blob = json.dumps(
            [self.arn, self.version, str(self.code_dir), self.timeout, self.memory, self.env,
             self.log_format, self.app_log_level, self.role],
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()


class _Spawner:
    """Starts processes from one long-lived thread: PR_SET_PDEATHSIG fires when the
    *thread* that forked the child exits, so request threads must not fork."""

    def __init__(self):
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, name="lambda-spawner", daemon=True).start()

    def _run(self):
        while True:
            args, kwargs, reply = self._queue.get()
            try:
                reply.put((subprocess.Popen(*args, **kwargs), None))
            except Exception as exc:  # noqa: BLE001 - handed back to the caller
                reply.put((None, exc))

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        reply: queue.Queue = queue.Queue()
        self._queue.put((args, kwargs, reply))
        proc, exc = reply.get()
        if exc is not None:
            raise exc
        return proc


def _exit_reason(code: int) -> str:
    """How Lambda words a runtime's exit: "exit status 3", "signal: killed"."""
    if code < 0:
        try:
            return f"signal: {signal.strsignal(-code).lower()}"
        except (ValueError, AttributeError):
            return f"signal: {-code}"
    return f"exit status {code}"


def _loopback_socket_inodes(local_port: int, remote_port: int) -> set[str]:
    """Inodes of the TCP sockets 127.0.0.1:local_port -> :remote_port (/proc/net/tcp*)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    cols = line.split()
                    if len(cols) < 10:
                        continue
                    local, remote = cols[1], cols[2]
                    if (int(local.rsplit(":", 1)[1], 16) == local_port
                            and int(remote.rsplit(":", 1)[1], 16) == remote_port):
                        inodes.add(f"socket:[{cols[9]}]")
        except OSError:
            continue
    return inodes


def _die_with_parent():
    # Linux: SIGKILL this child when the world server dies, however it dies.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Sandbox:
    def __init__(self, runner: "Runner", spec: FunctionSpec):
        self.runner = runner
        self.spec = spec
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.current: Invocation | None = None
        self.busy = False
        self.dead = False
        self.invocations = 0
        self.created = time.time()
        self.init_done = threading.Event()
        self.init_duration_ms: float | None = None
        self.init_error: bytes | None = None
        self._lock = threading.Lock()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _runtime_handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, name=f"runtime-api-{spec.name}", daemon=True
        ).start()

        self.credentials = runner.credentials_for(spec)
        self.log_path = runner.log_dir / f"{spec.name}.log"
        self.log_file = open(self.log_path, "ab", buffering=0)
        bootstrap = spec.code_dir / "bootstrap"
        self.proc = runner.spawner.popen(
            [str(bootstrap)],
            cwd=str(spec.code_dir),
            env=self._environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.pid = self.proc.pid
        self._write_log(
            f"[ferry-world] cold start: sandbox pid {self.pid}, runtime API 127.0.0.1:{self.port}\n"
        )
        threading.Thread(target=self._pump_output, name=f"log-{spec.name}", daemon=True).start()
        threading.Thread(target=self._watch, name=f"watch-{spec.name}", daemon=True).start()

    # -- process ------------------------------------------------------------------------

    def _environment(self) -> dict:
        spec = self.spec
        endpoint = f"http://127.0.0.1:{self.runner.port}"
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "HOME": str(spec.code_dir),
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "LAMBDA_RUNTIME_DIR": str(spec.code_dir),
            "_HANDLER": "bootstrap",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.port}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]")
            + secrets.token_hex(16),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_ENDPOINT_URL": endpoint,
            # The function role's credentials, as Lambda gives them (an STS session of
            # the execution role named after the function): the world evaluates that
            # role's identity policies (rules/iam.py).
            **self.credentials,
            # No profile files (HOME has no .aws/), no IMDS: everything comes from the
            # environment, as in Lambda.
            "AWS_EC2_METADATA_DISABLED": "true",
            "RUST_BACKTRACE": "1",
        }
        if spec.log_format:
            env["AWS_LAMBDA_LOG_FORMAT"] = spec.log_format
        if spec.app_log_level and spec.log_format == "JSON":
            env["AWS_LAMBDA_LOG_LEVEL"] = spec.app_log_level
        # The function's own variables (RUST_LOG etc.) override nothing reserved above but
        # may set anything else.
        for k, v in (spec.env or {}).items():
            if k not in ("AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME"):
                env[k] = str(v)
        return env

    def _write_log(self, text: str) -> None:
        self._append_log(text.encode())

    def _append_log(self, data: bytes) -> None:
        """To the function's log file, and to the running invocation's log (1 MiB at most)."""
        try:
            self.log_file.write(data)
        except (OSError, ValueError):
            pass
        inv = self.current
        if inv is not None and len(inv.log) < 1 << 20:
            inv.log.extend(data)

    def _pump_output(self):
        out = self.proc.stdout
        for line in iter(out.readline, b""):
            self._append_log(line)
        out.close()

    def _watch(self):
        code = self.proc.wait()
        self.dead = True
        self._write_log(f"[ferry-world] sandbox pid {self.pid} exited with status {code}\n")
        inv = self.current
        if inv is not None and not inv.done.is_set():
            if self.init_error is not None:
                inv.finish(self.init_error, True)
            else:
                inv.finish(
                    _error_body(
                        "Runtime.ExitError",
                        f"RequestId: {inv.request_id} Error: Runtime exited with error: {_exit_reason(code)}",
                    ),
                    True,
                )
        # Invocations queued but never picked up.
        while True:
            try:
                queued = self.pending.get_nowait()
            except queue.Empty:
                break
            queued.finish(
                self.init_error
                or _error_body("Runtime.ExitError", f"Runtime exited with error: {_exit_reason(code)}"),
                True,
            )
        self.server.shutdown()
        self.server.server_close()
        self.runner._forget(self)

    def kill(self, graceful: bool = False) -> None:
        self.dead = True  # never handed another invocation
        if self.proc.poll() is not None:
            return
        try:
            if graceful:
                os.killpg(self.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=1.0)
                    return
                except subprocess.TimeoutExpired:
                    pass
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            LOG.error("sandbox pid %s did not die after SIGKILL", self.pid)

    def kill_by_fault(self, call: str, fault_id: str) -> None:
        """A "kill" fault (faults.py): SIGKILL the process in the middle of `call`; the
        watcher then ends the running invocation with Runtime.ExitError."""
        self._write_log(
            f"[ferry-world] sandbox pid {self.pid} killed (SIGKILL) during {call} by fault {fault_id}\n"
        )
        self.kill()

    def owns_socket(self, inodes: set[str]) -> bool:
        try:
            for fd in os.listdir(f"/proc/{self.pid}/fd"):
                try:
                    if os.readlink(f"/proc/{self.pid}/fd/{fd}") in inodes:
                        return True
                except OSError:
                    continue
        except OSError:
            return False
        return False

    # -- invocations --------------------------------------------------------------------

    def run(self, inv: Invocation) -> None:
        """Runs one invocation to its end (result, error, timeout or crash)."""
        inv.deadline_ms = int((time.time() + inv.timeout) * 1000)
        inv.trace_id = _trace_id()
        inv.started_at = time.monotonic()
        self.pending.put(inv)
        if self.dead and self.proc.poll() is not None:
            inv.finish(_error_body("Runtime.ExitError", "Runtime exited before the invocation"), True)
        if not inv.done.wait(inv.timeout):
            self._write_log(
                f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {inv.request_id} "
                f"Task timed out after {inv.timeout:.2f} seconds\n"
            )
            inv.finish(
                _error_body(
                    "Sandbox.Timedout",
                    f"RequestId: {inv.request_id} Error: Task timed out after {inv.timeout:.2f} seconds",
                ),
                True,
            )
            self.kill()
        self.invocations += 1
        inv.duration_ms = max((time.monotonic() - inv.started_at) * 1000, 0.001)
        if self.dead:
            self._end(inv)

    def _end(self, inv: Invocation) -> None:
        """END/REPORT, written as Lambda does when the runtime comes back for the next
        event (so the runtime's own after-response logging lands before it)."""
        with self._lock:
            if self.current is not inv:
                return
            self.current = None
        report = (
            f"REPORT RequestId: {inv.request_id}\tDuration: {inv.duration_ms:.2f} ms\t"
            f"Memory Size: {self.spec.memory} MB"
        )
        if self.invocations == 1 and self.init_duration_ms is not None:
            report += f"\tInit Duration: {self.init_duration_ms:.2f} ms"
        if inv.error:
            report += "\tStatus: error"
        self._write_log(f"END RequestId: {inv.request_id}\n{report}\n")

    def next_invocation(self) -> Invocation | None:
        """For the runtime's long poll: blocks until an invocation is queued."""
        if not self.init_done.is_set():
            self.init_duration_ms = (time.time() - self.created) * 1000
            self.init_done.set()
        previous = self.current
        if previous is not None:
            if previous.finish(
                _error_body(
                    "Runtime.InvalidResponse",
                    "the runtime asked for the next event without answering this one",
                ),
                True,
            ):
                pass
            # The invocation is over once run() has seen it finish.
            while not previous.duration_ms and not self.dead:
                time.sleep(0.001)
            self._end(previous)
        while not self.dead:
            try:
                inv = self.pending.get(timeout=0.5)
            except queue.Empty:
                continue
            with self._lock:
                self.current = inv
            self._write_log(
                f"START RequestId: {inv.request_id} Version: {self.spec.version}\n"
            )
            return inv
        return None

    def complete(self, request_id: str, body: bytes, error: bool) -> bool:
        with self._lock:
            inv = self.current
        if inv is None or inv.request_id != request_id:
            return False
        return inv.finish(body, error) or True

    def fail_init(self, body: bytes) -> None:
        self.init_error = body
        with self._lock:
            inv = self.current
        if inv is not None:
            inv.finish(body, True)

    def describe(self) -> dict:
        return {
            "function": self.spec.name,
            "pid": self.pid,
            "runtimeApi": f"127.0.0.1:{self.port}",
            "busy": self.busy,
            "dead": self.dead,
            "invocations": self.invocations,
            "initDurationMs": self.init_duration_ms,
            "log": str(self.log_path),
        }


def _runtime_handler(sandbox: Sandbox):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ferry-world-runtime-api"

        def log_message(self, fmt, *args):  # quiet
            LOG.debug("runtime api %s: " + fmt, sandbox.spec.name, *args)

        def _body(self) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks = []
                while True:
                    size_line = self.rfile.readline().strip()
                    size = int(size_line.split(b";")[0] or b"0", 16)
                    if size == 0:
                        # trailers until the blank line
                        while self.rfile.readline().strip():
                            pass
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, body: dict | bytes, headers: dict | None = None):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == f"{RUNTIME_PREFIX}/invocation/next":
                inv = sandbox.next_invocation()
                if inv is None:
                    self._send(500, {"errorType": "Runtime.Shutdown", "errorMessage": "sandbox shutting down"})
                    return
                self._send(
                    200,
                    inv.payload,
                    {
                        "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": inv.function_arn,
                        "Lambda-Runtime-Trace-Id": inv.trace_id,
                    },
                )
                return
            self._send(404, {"errorType": "NotFound", "errorMessage": f"GET {self.path} is not part of the Runtime API here"})

        def do_POST(self):
            body = self._body()
            path = self.path
            if path == f"{RUNTIME_PREFIX}/init/error":
                sandbox.fail_init(_normalise_error(body, self.headers, "Runtime.InitError"))
                self._send(202, {"status": "OK"})
                return
            prefix = f"{RUNTIME_PREFIX}/invocation/"
            if path.startswith(prefix):
                rest = path[len(prefix):]
                request_id, _, kind = rest.partition("/")
                if kind in ("response", "error"):
                    error = kind == "error"
                    if error:
                        body = _normalise_error(body, self.headers, "Unhandled")
                    if sandbox.complete(request_id, body, error):
                        self._send(202, {"status": "OK"})
                    else:
                        self._send(400, {"errorType": "InvalidRequestID", "errorMessage": f"Invalid request ID: {request_id}"})
                    return
            self._send(404, {"errorType": "NotFound", "errorMessage": f"POST {path} is not part of the Runtime API here"})

    return Handler


def _normalise_error(body: bytes, headers, default_type: str) -> bytes:
    """What Invoke answers for a function error: {"errorType", "errorMessage"[, "stackTrace"]}."""
    try:
        doc = json.loads(body or b"{}")
        if not isinstance(doc, dict):
            raise ValueError
    except ValueError:
        doc = {"errorMessage": body.decode("utf-8", "replace")}
    out = {
        "errorType": doc.get("errorType") or headers.get("Lambda-Runtime-Function-Error-Type") or default_type,
        "errorMessage": doc.get("errorMessage", ""),
    }
    if doc.get("stackTrace"):
        out["stackTrace"] = doc["stackTrace"]
    return json.dumps(out).encode()


# ---------------------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------------------


class Runner:
    def __init__(self, port: int, state_dir: Path | None = None):
        self.port = port
        self.state_dir = state_dir or _state_dir()
        self.log_dir = self.state_dir / "logs"
        self.code_root = self.state_dir / "lambda"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.code_root.mkdir(parents=True, exist_ok=True)
        self.spawner = _Spawner()
        self._lock = threading.Condition()
        self._sandboxes: dict[str, list[Sandbox]] = {}
        self._functions: dict[str, str] = {}  # access key id -> function name
        self._stats: dict[str, dict] = {}

    # -- moto's function object -> spec ------------------------------------------------

    def runnable(self, fn) -> bool:
        runtime = (getattr(fn, "run_time", None) or "")
        if not runtime.startswith("provided") or getattr(fn, "package_type", "Zip") != "Zip":
            return False
        code = getattr(fn, "code_bytes", b"") or b""
        try:
            with zipfile.ZipFile(io.BytesIO(code)) as zf:
                return "bootstrap" in zf.namelist()
        except zipfile.BadZipFile:
            return False

    def _code_dir(self, fn) -> Path:
        code = fn.code_bytes
        digest = hashlib.sha256(code).hexdigest()[:16]
        target = self.code_root / fn.function_name / digest
        if not (target / "bootstrap").exists():
            tmp = target.with_name(digest + f".tmp{os.getpid()}.{threading.get_ident()}")
            tmp.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(io.BytesIO(code)) as zf:
                for info in zf.infolist():
                    zf.extract(info, tmp)
                    mode = (info.external_attr >> 16) & 0o777
                    if mode:
                        os.chmod(tmp / info.filename, mode)
            os.chmod(tmp / "bootstrap", 0o755)
            try:
                tmp.rename(target)
            except OSError:  # another thread won the race
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
        return target

    def credentials_for(self, spec: FunctionSpec) -> dict:
        """Lambda's execution-role credentials for a new sandbox: AssumeRole of the
        function's role (session name = function name) in the world's STS. A function
        without a role gets a per-function key that acts as its account's root."""
        if spec.role:
            try:
                from moto.sts.models import sts_backends
                from moto.utilities.utils import get_partition

                account = spec.role.split(":")[4]
                assumed = sts_backends[account][get_partition(spec.region)].assume_role(
                    region_name=spec.region, role_session_name=spec.name, role_arn=spec.role,
                    policy=None, duration=43200, external_id=None,
                )
                self._functions[assumed.access_key_id] = spec.name
                return {
                    "AWS_ACCESS_KEY_ID": assumed.access_key_id,
                    "AWS_SECRET_ACCESS_KEY": assumed.secret_access_key,
                    "AWS_SESSION_TOKEN": assumed.session_token,
                }
            except Exception:  # noqa: BLE001 - logged; the function runs as root instead
                LOG.exception("could not assume %s for %s", spec.role, spec.name)
        self._functions[access_key_for(spec.name)] = spec.name
        return {
            "AWS_ACCESS_KEY_ID": access_key_for(spec.name),
            "AWS_SECRET_ACCESS_KEY": "ferry-world-secret-" + spec.name,
        }

    def spec_for(self, fn) -> FunctionSpec:
        logging_config = getattr(fn, "logging_config", None) or {}
        version = str(getattr(fn, "version", "$LATEST") or "$LATEST")
        if version == "0":
            version = "$LATEST"
        return FunctionSpec(
            name=fn.function_name,
            arn=fn.function_arn,
            version=version,
            region=fn.region,
            account_id=fn.account_id,
            timeout=float(fn.timeout or 3),
            memory=int(fn.memory_size or 128),
            env=dict(fn.environment_vars or {}),
            code_dir=self._code_dir(fn),
            log_format=logging_config.get("LogFormat"),
            app_log_level=logging_config.get("ApplicationLogLevel"),
            system_log_level=logging_config.get("SystemLogLevel"),
            role=str(getattr(fn, "role", "") or ""),
        )

    # -- invoke -------------------------------------------------------------------------

    def invoke(self, fn, payload: bytes, invoked_arn: str | None = None) -> tuple[bytes, bool, bytes]:
        """Runs one invocation; returns (body, is_error, log bytes)."""
        spec = self.spec_for(fn)
        sandbox = self._acquire(spec)
        inv = Invocation(payload=payload or b"{}", function_arn=invoked_arn or spec.arn, timeout=spec.timeout)
        try:
            sandbox.run(inv)
        finally:
            self._release(sandbox)
        stats = self._stats.setdefault(spec.name, {"invocations": 0, "errors": 0, "coldStarts": 0})
        stats["invocations"] += 1
        if inv.error:
            stats["errors"] += 1
        return inv.result, inv.error, bytes(inv.log)

    def _acquire(self, spec: FunctionSpec) -> Sandbox:
        with self._lock:
            while True:
                pool = self._sandboxes.setdefault(spec.key, [])
                for sb in pool:
                    if not sb.busy and not sb.dead:
                        sb.busy = True
                        return sb
                if len([sb for sb in pool if not sb.dead]) < MAX_SANDBOXES:
                    break
                self._lock.wait(0.5)
            self._retire_stale(spec)
            sb = Sandbox(self, spec)
            sb.busy = True
            pool.append(sb)
            self._stats.setdefault(spec.name, {"invocations": 0, "errors": 0, "coldStarts": 0})
            self._stats[spec.name]["coldStarts"] += 1
            return sb

    def _retire_stale(self, spec: FunctionSpec) -> None:
        """Idle sandboxes of the same function with older code or configuration are not
        used again (as Lambda does after an update): stop them. Caller holds the lock."""
        for key, pool in self._sandboxes.items():
            if key == spec.key:
                continue
            for sb in list(pool):
                if sb.spec.name == spec.name and sb.spec.arn == spec.arn and not sb.busy and not sb.dead:
                    sb._write_log(f"[ferry-world] sandbox pid {sb.pid} retired: the function was updated\n")
                    threading.Thread(target=sb.kill, name=f"retire-{sb.pid}", daemon=True).start()

    def _release(self, sandbox: Sandbox) -> None:
        with self._lock:
            sandbox.busy = False
            self._lock.notify_all()

    def _forget(self, sandbox: Sandbox) -> None:
        with self._lock:
            pool = self._sandboxes.get(sandbox.spec.key, [])
            if sandbox in pool:
                pool.remove(sandbox)
            self._lock.notify_all()

    # -- control ------------------------------------------------------------------------

    def sandbox_for_peer(self, peer_port: int, server_port: int) -> "Sandbox | None":
        """The live sandbox whose process holds the connection 127.0.0.1:peer_port ->
        server_port (an AWS call it is making), if any (Linux /proc)."""
        inodes = _loopback_socket_inodes(peer_port, server_port)
        if not inodes:
            return None
        with self._lock:
            sandboxes = [sb for pool in self._sandboxes.values() for sb in pool if not sb.dead]
        for sb in sandboxes:
            if sb.owns_socket(inodes):
                return sb
        return None

    def function_for_key(self, access_key: str | None) -> str | None:
        return self._functions.get(access_key or "")

    def describe(self) -> dict:
        with self._lock:
            sandboxes = [sb.describe() for pool in self._sandboxes.values() for sb in pool]
        return {"sandboxes": sandboxes, "stats": self._stats}

    def pids(self) -> list[int]:
        with self._lock:
            return [sb.pid for pool in self._sandboxes.values() for sb in pool if not sb.dead]

    def shutdown(self, graceful: bool = True) -> None:
        with self._lock:
            sandboxes = [sb for pool in self._sandboxes.values() for sb in pool]
        for sb in sandboxes:
            sb.kill(graceful=graceful)
        for sb in sandboxes:
            try:
                sb.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                LOG.error("sandbox pid %s (%s) still alive after shutdown", sb.pid, sb.spec.name)
            sb.dead = True
            self._forget(sb)


RUNNER: Runner | None = None


# ---------------------------------------------------------------------------------------
# moto patches
# ---------------------------------------------------------------------------------------


def install(port: int) -> Runner:
    global RUNNER
    if RUNNER is not None:
        return RUNNER
    RUNNER = Runner(port)

    from moto.awslambda import models as lambda_models
    from moto.awslambda_simple.models import LambdaSimpleBackend

    # Keep LoggingConfig (moto drops it): the runner sets AWS_LAMBDA_LOG_FORMAT from it,
    # as Lambda does.
    original_init = lambda_models.LambdaFunction.__init__

    def __init__(self, account_id, spec, region, version=1):
        original_init(self, account_id, spec, region, version)
        self.logging_config = spec.get("LoggingConfig")

    lambda_models.LambdaFunction.__init__ = __init__

    original_update = lambda_models.LambdaFunction.update_configuration

    def update_configuration(self, config_updates):
        result = original_update(self, config_updates)
        if "LoggingConfig" in config_updates:
            self.logging_config = config_updates["LoggingConfig"]
        return result

    lambda_models.LambdaFunction.update_configuration = update_configuration

    original_get_configuration = lambda_models.LambdaFunction.get_configuration

    def get_configuration(self, *args, **kwargs):
        config = original_get_configuration(self, *args, **kwargs)
        if getattr(self, "logging_config", None):
            config["LoggingConfig"] = self.logging_config
        return config

    lambda_models.LambdaFunction.get_configuration = get_configuration

    original_invoke = LambdaSimpleBackend.invoke

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        fn = self.get_function(function_name, qualifier)
        if not RUNNER.runnable(fn):
            return original_invoke(self, function_name, qualifier, body, headers, response_headers)
        if isinstance(body, str):
            body = body.encode("utf-8")
        inv_type = _header(headers, "X-Amz-Invocation-Type") or "RequestResponse"
        response_headers["x-amz-executed-version"] = str(fn.version if fn.version not in (0, "0") else "$LATEST")
        if inv_type == "DryRun":
            return b""
        if inv_type == "Event":
            threading.Thread(
                target=RUNNER.invoke, args=(fn, body or b"{}"), name=f"event-{fn.function_name}", daemon=True
            ).start()
            return b""
        result, error, log = RUNNER.invoke(fn, body or b"{}")
        if error:
            response_headers["x-amz-function-error"] = "Unhandled"
        if (_header(headers, "X-Amz-Log-Type") or "") == "Tail":
            response_headers["x-amz-log-result"] = base64.b64encode(log[-TAIL_BYTES:]).decode()
        response_headers["Content-Length"] = str(len(result))
        return result

    LambdaSimpleBackend.invoke = invoke
    return RUNNER


def _header(headers, name: str) -> str | None:
    if headers is None:
        return None
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        for k, v in dict(headers).items():
            if k.lower() == lower:
                return v
    return value
