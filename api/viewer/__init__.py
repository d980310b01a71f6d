"""The web viewer: one static page at ``/`` and its ES modules under ``/viewer/``.

The page is plain HTML, CSS and JavaScript modules (no build step) shipped inside this package,
and it reads everything through the public GraphQL API (``/graphql``, including the
``heatmapUpdated`` subscription over graphql-transport-ws), so it doubles as the reference client.
The server inlines what the page shares with `liqmap render` (:mod:`api.viewer.shared`) into it,
and the API's answers to the page's first two queries (:func:`first_answers`), so that the first
heatmap is the page's first request; and it names that heatmap for the browser to preload while
it loads the modules (:func:`first_heatmap`).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import mimetypes
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message

from api.viewer.first_view import first_heatmap_variables, latest_variables
from api.viewer.shared import document, page_block
from liqmap.logs import get_logger

log = get_logger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = STATIC_DIR / "index.html"


@cache
def assets() -> dict[str, tuple[bytes, str, str]]:
    """Every file under static/ by its path there: (bytes, ETag, media type). Read once: the
    files ship in the package and change only with a release (a restart), and a page's modules
    are then answered without a thread hop per file while the server computes its heatmap."""
    found: dict[str, tuple[bytes, str, str]] = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            body = path.read_bytes()
            etag = content_etag(body)
            media = mimetypes.guess_type(path.name)[0] or "text/plain"
            if media.startswith("text/") or media.endswith(("javascript", "json")):
                media += "; charset=utf-8"
            found[path.relative_to(STATIC_DIR).as_posix()] = (body, etag, media)
    return found


async def asset(request: Request) -> Response:
    """A viewer file (:func:`revalidated`)."""
    found = assets().get(request.path_params["path"])
    if found is None:
        return PlainTextResponse("Not Found", status_code=404)
    return revalidated(request, *found)


def content_etag(body: bytes) -> str:
    return f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'


def revalidated(request: Request, body: bytes, etag: str, media: str) -> Response:
    """``body`` for browsers to revalidate (no-cache and its ETag; 304 when theirs matches), so
    a new release, or a page with new answers in it, is picked up at once."""
    headers = {"Cache-Control": "no-cache", "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, headers={**headers, "Content-Type": media})


PLACEHOLDER = re.compile(r"<!-- liqmap:shared\b.*?-->")
FIRST_PLACEHOLDER = re.compile(r"<!-- liqmap:first\b.*?-->")
PRELOAD_PLACEHOLDER = re.compile(r"<!-- liqmap:preload\b.*?-->", re.S)
FIRST_ID = "liqmap-first"  # the page's <script type="application/json"> of first answers


@cache
def page() -> tuple[str, str, str]:
    """index.html with the shared definitions in place of their placeholder, split where the
    first answers and the first heatmap's preload go (:func:`first_answers`)."""
    source = INDEX.read_text(encoding="utf-8")
    text, found = PLACEHOLDER.subn(lambda _: page_block(), source, count=1)
    if not found:
        raise RuntimeError(f"{INDEX} has no <!-- liqmap:shared --> placeholder")
    parts = re.split(f"{FIRST_PLACEHOLDER.pattern}|{PRELOAD_PLACEHOLDER.pattern}", text, flags=re.S)
    if len(parts) != 3:
        raise RuntimeError(f"{INDEX} needs one <!-- liqmap:first --> and one liqmap:preload")
    return parts[0], parts[1], parts[2]


# what a request of the page's own keeps of the page request's headers: who asks (forwarded
# addresses, credentials) but not how the page was asked for
_DROPPED = {
    b"accept",
    b"accept-encoding",
    b"content-length",
    b"content-type",
    b"if-none-match",
    b"if-modified-since",
    b"transfer-encoding",
}


async def post_graphql(request: Request, query: str, variables: dict[str, Any]) -> str | None:
    """POST one document through the whole app, as the page would from the same client (auth,
    rate limits, caches and metrics apply): the JSON answer, or None unless it is a 200 without
    errors (the page then asks itself, and sees the error as it always did)."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    headers = [(k, v) for k, v in request.scope["headers"] if k.lower() not in _DROPPED]
    headers += [
        (b"content-type", b"application/json"),
        (b"accept", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    kept = {k: v for k, v in request.scope.items() if k not in ("endpoint", "path_params")}
    scope = {
        **kept,
        "method": "POST",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "headers": headers,
    }
    done = asyncio.Event()
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    status = 0
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await request.app(scope, receive, send)
    finally:
        done.set()
    text = b"".join(chunks).decode()
    if status != 200:
        return None
    answer = json.loads(text)
    return text if isinstance(answer, dict) and not answer.get("errors") else None


def first_heatmap(
    request: Request, limits: str | None, latest: str | None
) -> dict[str, Any] | None:
    """The heatmap the page will ask for first (:mod:`api.viewer.first_view`), as its variables
    and the ``GET /graphql`` address the page preloads and then fetches, or None."""
    pairs = request.query_params.multi_items()
    if limits is None or latest is None or len({k for k, _ in pairs}) != len(pairs):
        return None  # (a repeated parameter: URLSearchParams and Starlette pick different ones)
    variables = first_heatmap_variables(dict(pairs), json.loads(limits), json.loads(latest))
    if variables is None:
        return None
    encoded = json.dumps(variables, separators=(",", ":"))
    return {
        "variables": variables,
        "url": "/graphql?" + urlencode({"query": document("heatmap"), "variables": encoded}),
    }


async def first_answers(request: Request) -> tuple[str, str]:
    """The ``<script>`` with the API's answers to the page's first queries (``limits`` and the
    newest map of the symbol the address names), asked for while the page is sent: the page
    then sends the heatmap as its first request instead of after two round trips; and the
    ``<link rel="preload">`` of that heatmap when the server can name it (:func:`first_heatmap`).
    Empty when neither could be answered here."""
    variables = latest_variables(request.query_params)
    try:
        limits, latest = await asyncio.gather(
            post_graphql(request, document("limits"), {}),
            post_graphql(request, document("latest"), variables),
        )
    except Exception as exc:  # the page asks for them itself
        log.warning("first answers not embedded", error=repr(exc))
        return "", ""
    if limits is None and latest is None:
        return "", ""
    heatmap = first_heatmap(request, limits, latest)
    payload = json.dumps(
        {"variables": variables, "limits": limits, "latest": latest, "heatmap": heatmap},
        separators=(",", ":"),
    ).replace("<", "\\u003c")  # no "<" at all: the address's symbol is in it, verbatim
    script = f'<script type="application/json" id="{FIRST_ID}">{payload}</script>'
    if heatmap is None:
        return script, ""
    # the browser fetches it as soon as it reads this line, while it loads the modules;
    # first.js's fetch of the same address is then answered from that request
    href = html.escape(heatmap["url"])
    return script, f'<link rel="preload" as="fetch" crossorigin="anonymous" href="{href}">'


async def index(request: Request) -> Response:
    head, modules, tail = page()
    answers, preload = await first_answers(request)
    body = (head + answers + modules + preload + tail).encode()
    return revalidated(request, body, content_etag(body), "text/html; charset=utf-8")


def routes() -> list[BaseRoute]:
    """Routes to add to the app: the page at ``/`` and its assets at ``/viewer/…``."""
    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/viewer/{path:path}", asset, methods=["GET", "HEAD"]),
    ]
