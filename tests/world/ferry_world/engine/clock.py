"""The world's one simulated clock.

Simulated time runs SCALE times faster than real time (default 600: one simulated
minute is 0.1 s real), starting from the real time the world started. Everything that
waits in the world uses it: image and copy pending times, instance state changes, ASL
Wait states and Retry intervals. State machines keep production intervals and still
finish in seconds, while timestamps (execution history, image creation dates) show the
durations they would have in AWS.

Set FERRY_WORLD_TIME_SCALE to change the scale (1 = real time); set_scale() changes it
while the world runs (POST /ferry-world/clock/scale), e.g. for a test or a benchmark that
measures latencies which the real time of a Lambda invocation would distort at 600x
(0.2 s real, a debug binary's cold start, is 2 simulated minutes there).
"""
import datetime as _dt
import os
import threading
import time as _time

DEFAULT_SCALE = float(os.environ.get("FERRY_WORLD_TIME_SCALE", "600"))
SCALE = DEFAULT_SCALE

_lock = threading.Lock()
_real_start = _time.monotonic()
_sim_start = _dt.datetime.now(_dt.timezone.utc)
_offset = 0.0  # simulated seconds added by advance()


def now() -> _dt.datetime:
    """Simulated UTC now (timezone-aware)."""
    with _lock:
        elapsed = (_time.monotonic() - _real_start) * SCALE + _offset
    return _sim_start + _dt.timedelta(seconds=elapsed)


def now_naive() -> _dt.datetime:
    """Simulated UTC now without tzinfo (what moto's utcnow() returns)."""
    return now().replace(tzinfo=None)


def set_scale(scale: float) -> None:
    """From now on, `scale` simulated seconds per real second; the clock reads the same
    the moment the scale changes (no jump either way)."""
    global SCALE, _real_start, _sim_start, _offset
    if not scale > 0:
        raise ValueError(f"the time scale must be positive, not {scale}")
    with _lock:
        real = _time.monotonic()
        elapsed = (real - _real_start) * SCALE + _offset
        _sim_start = _sim_start + _dt.timedelta(seconds=elapsed)
        _real_start, _offset, SCALE = real, 0.0, float(scale)


def sleep(simulated_seconds: float) -> None:
    """Sleep for a simulated duration: simulated_seconds / SCALE real seconds."""
    if simulated_seconds > 0:
        _time.sleep(simulated_seconds / SCALE)


def advance(simulated_seconds: float) -> None:
    """Jump the clock forward (tests use it to expire pending states at once)."""
    global _offset
    with _lock:
        _offset += simulated_seconds


def since(start: _dt.datetime) -> float:
    """Simulated seconds elapsed since `start` (aware or naive UTC)."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=_dt.timezone.utc)
    return (now() - start).total_seconds()
