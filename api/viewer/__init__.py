"""The web viewer: one static page at ``/`` and its ES modules under ``/viewer/``.

The page is plain HTML, CSS and JavaScript modules (no build step) shipped inside this package,
and it reads everything through the public GraphQL API (``/graphql``, including the
``heatmapUpdated`` subscription over graphql-transport-ws), so it doubles as the reference client.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = STATIC_DIR / "index.html"


class _Static(StaticFiles):
    """Static files that browsers revalidate (ETag) so a new release is picked up at once."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers["Cache-Control"] = "no-cache"
        return response


async def index(_: Request) -> Response:
    return FileResponse(INDEX, media_type="text/html", headers={"Cache-Control": "no-cache"})


def routes() -> list[BaseRoute]:
    """Routes to add to the app: the page at ``/`` and its assets at ``/viewer/…``."""
    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Mount("/viewer", app=_Static(directory=STATIC_DIR), name="viewer"),
    ]
