"""The local AWS world's server: moto in server mode, with ferry's rules, the simulated
clock, faults on demand, call recording and the Lambda runner.

    python -m ferry_world.server [--port 4566] [--host 127.0.0.1]

(ferry_world/server.py is the entry module; tests/world/up and down find the running
world by the string `ferry_world.server` in its command line.)

The port also comes from FERRY_WORLD_PORT. One port serves every service. Stops cleanly
on SIGTERM/SIGINT, taking every Lambda sandbox it started with it.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

LOG = logging.getLogger("ferry_world.server")

_STATE = {"rules": None, "rulesError": None, "started": None}


def _prepare_environment(port: int) -> None:
    # Account ids come from the access keys (AssumeRole into another account works only
    # without MOTO_ACCOUNT_ID); the SFN interpreter calls back into this server on MOTO_PORT.
    if "MOTO_ACCOUNT_ID" in os.environ:
        LOG.warning("MOTO_ACCOUNT_ID is set; unsetting it so accounts follow the access keys")
        del os.environ["MOTO_ACCOUNT_ID"]
    os.environ["MOTO_PORT"] = str(port)
    # moto's own clients (SFN interpreter) must not pick up a real AWS profile.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("FERRY_WORLD_REGION", "us-east-1"))
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(var, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def _enable_moto_features() -> None:
    # What POST /moto-api/config would do, done in-process before serving.
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.set_config(
        {
            "stepfunctions": {"execute_state_machine": True},
            "lambda": {"use_docker": False},
        }
    )


def _install_rules() -> None:
    """ferry's AWS rules (ferry_world/rules/, `rules.install_all()`). A missing module is
    reported loudly and, unless FERRY_WORLD_REQUIRE_RULES=1, the world serves plain moto."""
    try:
        from .. import rules

        rules.install_all()
        _STATE["rules"] = True
    except ImportError as exc:  # ModuleNotFoundError, or "cannot import name 'migration'"
        if not (exc.name or "").startswith("ferry_world.rules"):
            raise
        message = (
            f"ferry world: a rules module is missing ({exc}); serving WITHOUT ferry's AWS rules "
            "(plain moto behaviour for EC2/KMS/Organizations)"
        )
        _STATE["rules"] = False
        _STATE["rulesError"] = message
        if os.environ.get("FERRY_WORLD_REQUIRE_RULES") == "1":
            raise SystemExit(message + "; FERRY_WORLD_REQUIRE_RULES=1, refusing to start")
        print("!" * 78 + "\n" + message + "\n" + "!" * 78, file=sys.stderr, flush=True)


def build_app(port: int):
    """Imports and patches moto, then returns the WSGI app to serve."""
    _prepare_environment(port)
    import moto  # noqa: F401
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from . import clock, faults, lambda_runner, sfn

    _enable_moto_features()
    _install_rules()
    sfn.install()
    runner = lambda_runner.install(port)

    def on_reset():
        from moto.moto_api._internal.models import moto_api_backend

        runner.shutdown(graceful=False)
        moto_api_backend.reset()
        _enable_moto_features()

    def health():
        return {
            "rules": _STATE["rules"],
            "rulesError": _STATE["rulesError"],
            "pid": os.getpid(),
            "sandboxPids": runner.pids(),
            "clock": {"now": clock.now().isoformat(), "scale": clock.SCALE},
            "startedAt": _STATE["started"],
        }

    moto_app = DomainDispatcherApplication(create_backend_app)
    return faults.WorldMiddleware(moto_app, port, on_reset=on_reset, health=health), runner


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferry_world.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("FERRY_WORLD_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("FERRY_WORLD_PORT", "4566")))
    parser.add_argument("--log-level", default=os.environ.get("FERRY_WORLD_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per request from werkzeug is noise at this volume.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    t0 = time.monotonic()
    app, runner = build_app(args.port)

    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    try:
        server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    except OSError as exc:
        print(f"ferry world: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        runner.shutdown()
        return 2

    stopping = threading.Event()

    def _stop(signum, _frame):
        if stopping.is_set():
            return
        stopping.set()
        LOG.info("signal %s: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    _STATE["started"] = time.time()
    LOG.info(
        "ferry world serving on http://%s:%s (ready in %.2fs; rules %s)",
        args.host,
        args.port,
        time.monotonic() - t0,
        "installed" if _STATE["rules"] else "MISSING",
    )
    try:
        server.serve_forever()
    finally:
        LOG.info("stopping Lambda sandboxes: %s", runner.pids())
        runner.shutdown(graceful=True)
        server.server_close()
        LOG.info("ferry world stopped")
    return 0


def run() -> None:
    """`python -m ferry_world.server`: serve until stopped, then exit at once."""
    code = main()
    # Everything the world started is stopped by now; skip tearing down moto's large
    # in-memory state at interpreter exit (seconds of finalisation for nothing).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
