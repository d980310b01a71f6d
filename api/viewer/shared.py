"""What the web page and `liqmap render` share: ``static/viewer.json`` and ``static/graphql/``.

``viewer.json`` holds the colours, the colour map, the colour scales, the legend, the sides,
the intervals, the time-tick steps and the USD units; ``graphql/*.graphql`` are the documents
both send to the API. The server inlines all of it into the page (:func:`page_block`), and
render.py reads the same files from the installed package here, so neither side keeps a copy.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

SCRIPT_ID = "liqmap-shared"  # the page's <script type="application/json"> element


def _static() -> Traversable:
    return resources.files("api.viewer") / "static"


@cache
def style() -> dict[str, Any]:
    """``viewer.json``, parsed (do not mutate: it is cached)."""
    loaded: dict[str, Any] = json.loads((_static() / "viewer.json").read_text(encoding="utf-8"))
    return loaded


@cache
def documents() -> dict[str, str]:
    """Every shared GraphQL document by name (``heatmap`` for ``graphql/heatmap.graphql``)."""
    folder = _static() / "graphql"
    return {
        entry.name.removesuffix(".graphql"): entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".graphql")
    }


def document(name: str) -> str:
    return documents()[name]


def colour(name: str) -> str:
    """A named colour of ``viewer.json`` (``"long"``, ``"accent"``…) as CSS hex."""
    value: str = style()["colours"][name]
    return value


def css_variables() -> str:
    """The colours as CSS custom properties on :root (``candle_up`` → ``--candle-up``).

    Colours are hex only (tests/viewer/test_shared.py), so nothing here needs escaping.
    """
    props = "".join(
        f"--{name.replace('_', '-')}:{value};" for name, value in style()["colours"].items()
    )
    return f":root{{{props}}}"


def page_block() -> str:
    """The ``<style>`` and ``<script>`` the page reads the shared definitions from."""
    payload = json.dumps({"style": style(), "documents": documents()}, separators=(",", ":"))
    # inside <script> only "</" could end the element early; "<\/" is the same JSON string
    payload = payload.replace("</", "<\\/")
    return (
        f"<style>{css_variables()}</style>\n"
        f'  <script type="application/json" id="{SCRIPT_ID}">{payload}</script>'
    )
