"""GraphiQL, served whole by the API: its page and the browser bundle it runs.

Strawberry's GraphiQL page loads React, GraphiQL and the explorer plugin from a CDN, so it is
blank on a machine without internet access. The same files (byte for byte: the page keeps the
SRI hashes Strawberry pins) are vendored under ``api/static/graphiql/`` by
``scripts/vendor_graphiql.sh``, with their licences, and served at ``/graphiql/``. Their paths
carry the package versions, so browsers may keep them for a year.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).resolve().parent / "static" / "graphiql"
PAGE = ASSETS / "index.html"


@cache
def page() -> str:
    """The GraphiQL page (loads its assets from ``graphiql/…`` next to ``/graphql``)."""
    return PAGE.read_text(encoding="utf-8")


class _Versioned(StaticFiles):
    """Files whose path names their version: cached by browsers for a year."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def routes() -> list[BaseRoute]:
    """The bundle at ``/graphiql/<package>-<version>/<file>``."""
    return [Mount("/graphiql", app=_Versioned(directory=ASSETS), name="graphiql")]
