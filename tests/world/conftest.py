"""pytest support for tests/world: makes ferry_world importable and provides the ONE
in-process world server the rule tests use (`world_url`).

Each rule test module names the rule groups it needs in WORLD_RULES (groups of
ferry_world/rules/__init__.py: "migration", "sharing", "trust"); FERRY_WORLD_ALL_RULES=1
installs every group instead (an integration check). Rules patch moto for the whole
process and are never uninstalled, so the modules run in the order of those groups
(rules.ORDER), the order the real world installs them in: a module of a later group
never runs before one of an earlier group. The engine tests (test_engine.py) start a
real world with tests/world/up instead.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ferry_world import rules  # noqa: E402
from worldtest import REGION, free_port  # noqa: E402


def _group_rank(item) -> int:
    groups = getattr(item.module, "WORLD_RULES", ())
    return max((rules.ORDER.index(g) + 1 for g in groups), default=0)


def pytest_collection_modifyitems(session, config, items):
    # Stable: within a rank, the collection order is kept.
    items.sort(key=_group_rank)


@pytest.fixture(scope="module")
def world_url(request):
    """A moto server in this process on a free port, with the module's WORLD_RULES
    installed; its URL. Tests reset it themselves (worldtest.reset_world)."""
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        os.environ.setdefault(k, v)
    os.environ.pop("MOTO_ACCOUNT_ID", None)
    if os.environ.get("FERRY_WORLD_ALL_RULES"):
        rules.install_all()
    else:
        rules.install(*request.module.WORLD_RULES)
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sfn_world(world_url):
    """`world_url` with the engine's Step Functions (clock, nested executions, the role
    checks), calling back into this module's server (the interpreter's clients use
    MOTO_PORT)."""
    from ferry_world.engine import sfn

    sfn.install()
    saved = os.environ.get("MOTO_PORT")
    os.environ["MOTO_PORT"] = world_url.rsplit(":", 1)[1]
    try:
        yield world_url
    finally:
        if saved is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = saved
