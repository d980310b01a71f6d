"""The web viewer: one static page at ``/`` and its ES modules under ``/viewer/``.

The page is plain HTML, CSS and JavaScript modules (no build step) shipped inside this package,
and it reads everything through the public GraphQL API (``/graphql``, including the
``heatmapUpdated`` subscription over graphql-transport-ws), so it doubles as the reference client.
The server inlines what the page shares with `liqmap render` (:mod:`api.viewer.shared`) into it.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api.viewer.shared import page_block

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = STATIC_DIR / "index.html"


class _Static(StaticFiles):
    """Static files that browsers revalidate (ETag) so a new release is picked up at once."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers["Cache-Control"] = "no-cache"
        return response


PLACEHOLDER = re.compile(r"<!-- liqmap:shared\b.*?-->")


@cache
def page() -> tuple[bytes, str]:
    """index.html with the shared definitions in place of its placeholder, and its ETag."""
    source = INDEX.read_text(encoding="utf-8")
    html, found = PLACEHOLDER.subn(lambda _: page_block(), source, count=1)
    if not found:
        raise RuntimeError(f"{INDEX} has no <!-- liqmap:shared --> placeholder")
    body = html.encode()
    return body, f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'


async def index(request: Request) -> Response:
    body, etag = page()
    headers = {"Cache-Control": "no-cache", "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/html", headers=headers)


def routes() -> list[BaseRoute]:
    """Routes to add to the app: the page at ``/`` and its assets at ``/viewer/…``."""
    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Mount("/viewer", app=_Static(directory=STATIC_DIR), name="viewer"),
    ]
