"""The event loop the long-running processes run on.

``liqmap serve`` and ``liqmap up`` run on uvloop when it is installed (``uvicorn[standard]``
brings it): its C transports move a 1.5 MB heatmap into the socket and back to the next request
in a fraction of the time the pure-Python selector loop takes, which is what keeps cheap queries
fast while large answers stream out beside them. Without it, the standard loop serves the same.

A TERM ends these processes through a normal interpreter exit (``SystemExit``): uvicorn shuts
down gracefully on it and then raises it again, and the default action would kill the process
without running its ``atexit`` handlers — among them the one that stops the embedded PostgreSQL
the process started, which would be left running.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _exit_on_term(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # the status a shell reports for a process ended by TERM


def run(main: Coroutine[Any, Any, T]) -> T:
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_term)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
