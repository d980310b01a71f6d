"""A bare ASGI app for ``bench_load.py``'s floor phase: the same uvicorn, loop and HTTP parser
as ``liqmap serve``, no liqmap code.

It answers ``POST /graphql?op=NAME`` with a fixed JSON body of the size ``BARE_APP_SIZES`` (a
JSON object of operation names to byte counts) gives ``NAME``, 4 KB for any other. Fed the sizes
of liqmap's own answers, what its clients measure is what this machine, the load generator and
uvicorn cost to move those bytes: the latency no code inside the API can go below.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qs

DEFAULT_BYTES = 4096


def body_of(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes (at least its 19 bytes of framing)."""
    return b'{"data":{"pad":"' + b"x" * max(0, size - 19) + b'"}}'


_BODIES = {
    op: body_of(int(n)) for op, n in json.loads(os.environ.get("BARE_APP_SIZES", "{}")).items()
}
_DEFAULT = body_of(DEFAULT_BYTES)


def _headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):  # the request body, read and dropped
        pass
    op = parse_qs(scope.get("query_string", b"").decode()).get("op", [""])[0]
    body = _BODIES.get(op, _DEFAULT)
    await send({"type": "http.response.start", "status": 200, "headers": _headers(body)})
    await send({"type": "http.response.body", "body": body})
