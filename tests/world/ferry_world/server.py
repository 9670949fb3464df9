"""Entry point of the world's server: `python -m ferry_world.server [--port N]`.

Kept under this name because tests/world/up starts it so and tests/world/up and down
recognise the world's process by `ferry_world.server` in its command line. The server
itself is ferry_world/engine/server.py.
"""
from .engine.server import build_app, main, run  # noqa: F401

if __name__ == "__main__":
    run()
