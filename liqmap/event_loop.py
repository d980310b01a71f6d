"""The event loop the long-running processes run on.

``liqmap serve`` and ``liqmap up`` run on uvloop when it is installed (``uvicorn[standard]``
brings it): its C transports move a 1.5 MB heatmap into the socket and back to the next request
in a fraction of the time the pure-Python selector loop takes, which is what keeps cheap queries
fast while large answers stream out beside them. Without it, the standard loop serves the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
