"""Entry point of the deployer: `python -m ferry_world.deploy [--binaries DIR] ...`.

Kept under this name for tests/world/up and the engine tests; the deployer itself is
ferry_world/engine/deploy.py.
"""
import sys

from .engine.deploy import default_binaries_dir, deploy, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
