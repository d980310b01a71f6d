"""The heatmap the page preloads (api/viewer/first_view.py derives it on the server), checked by
hand and against the page's own first.js, run in Node over the same inputs: wherever the server
names a first heatmap, it is the one first.js would ask for, byte for byte as JSON."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from api.viewer.first_view import (
    auto_window,
    epoch_ms,
    first_heatmap_variables,
    iso_ms,
    latest_variables,
)
from api.viewer.shared import documents, style

STATIC = Path(__file__).resolve().parents[2] / "api" / "viewer" / "static"
DAY = 86_400_000

# Interval enum of the API (seconds, needsBaseSnapshots), finest first, as `limits` lists it
INTERVALS = [
    {"interval": "FIVE_MINUTES", "seconds": 300, "needsBaseSnapshots": True},
    {"interval": "FIFTEEN_MINUTES", "seconds": 900, "needsBaseSnapshots": True},
    {"interval": "THIRTY_MINUTES", "seconds": 1800, "needsBaseSnapshots": True},
    {"interval": "ONE_HOUR", "seconds": 3600, "needsBaseSnapshots": False},
    {"interval": "FOUR_HOURS", "seconds": 14400, "needsBaseSnapshots": False},
    {"interval": "ONE_DAY", "seconds": 86400, "needsBaseSnapshots": False},
]


def limits(columns: int = 2000, span_days: int = 400) -> dict[str, Any]:
    return {
        "maxSpanDays": span_days,
        "maxHeatmapColumns": columns,
        "maxMatrixCells": 2_000_000,
        "baseIntervalSeconds": 300,
        "recentDays": 7,
        "intervals": INTERVALS,
    }


def test_times_are_written_as_javascripts_toisostring() -> None:
    # Date.UTC(2026, 4, 20, 11, 55, 0, 7) = 1779278100007 (node -p)
    assert iso_ms(1_779_278_100_007) == "2026-05-20T11:55:00.007Z"
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert epoch_ms("2026-05-20T11:55:00+00:00") == 1_779_278_100_000
    assert epoch_ms("2026-05-20T13:55:00+02:00") == 1_779_278_100_000
    assert epoch_ms("2026-05-20T11:55:00.25Z") == 1_779_278_100_250


def test_the_auto_window_is_the_finest_accepted_interval_ending_at_its_last_column() -> None:
    newest = epoch_ms("2026-05-20T11:55:00Z")
    # 24 h at 5 min: 288 columns, ending at 11:55 (a whole 5-minute column)
    assert auto_window(limits(), newest - 30 * DAY, newest, DAY) == (newest - DAY, newest)
    # exactly the API's maximum of columns is accepted, one more is not (15 min: 96, ends 11:45)
    quarter = epoch_ms("2026-05-20T11:45:00Z")
    assert auto_window(limits(columns=288), newest - 30 * DAY, newest, DAY) == (
        newest - DAY,
        newest,
    )
    assert auto_window(limits(columns=287), newest - 30 * DAY, newest, DAY) == (
        quarter - DAY,
        quarter,
    )
    # sub-hour snapshots kept from exactly the window's start: accepted
    assert auto_window(limits(), newest - DAY, newest, DAY) == (newest - DAY, newest)
    # 200 columns at most: 5 min (288) refused, 15 min (96) ends at 11:45
    end = epoch_ms("2026-05-20T11:45:00Z")
    assert auto_window(limits(columns=200), newest - 30 * DAY, newest, DAY) == (end - DAY, end)
    # sub-hour snapshots kept only from 2 h before the newest: 24 h needs hourly (ends 11:00)
    end = epoch_ms("2026-05-20T11:00:00Z")
    assert auto_window(limits(), newest - 7_200_000, newest, DAY) == (end - DAY, end)
    # no sub-hour snapshots at all: never a base interval
    assert auto_window(limits(), None, newest, DAY) == (end - DAY, end)
    # longer than the API's maximum span: nothing
    assert auto_window(limits(span_days=7), newest - 30 * DAY, newest, 30 * DAY) is None


def answers(at: str, fine_from: str | None) -> dict[str, Any]:
    return {
        "data": {
            "liquidationMap": {"at": at, "price": 77_000.5},
            "limits": {"fineResolutionFrom": fine_from},
        }
    }


def test_only_views_whose_heatmap_the_address_does_not_change_are_preloaded() -> None:
    latest = answers("2026-05-20T11:55:00+00:00", "2026-05-01T00:00:00+00:00")
    named = first_heatmap_variables({}, {"data": {"limits": limits()}}, latest)
    assert named == {
        "symbol": style()["defaults"]["symbol"],
        "exchanges": None,
        "start": "2026-05-19T11:55:00.000Z",
        "end": "2026-05-20T11:55:00.000Z",
        "interval": None,
        "priceMin": None,
        "priceMax": None,
        "withinPct": style()["defaults"]["near_price_pct"],
        "bucketSize": None,
        "leverage": None,
    }
    for address in ("res=ONE_HOUR", "pmin=1", "bucket=5", "leverage=X1_10", "range=custom"):
        params = dict(parse_qsl(address))
        assert first_heatmap_variables(params, {"data": {"limits": limits()}}, latest) is None
    # without the two answers there is nothing to derive it from
    assert first_heatmap_variables({}, {"data": None}, latest) is None
    assert first_heatmap_variables({}, {"data": {"limits": limits()}}, {"data": {}}) is None
    assert latest_variables({"exchanges": " binanceusdm, ,bybit"})["exchanges"] == [
        "binanceusdm",
        "bybit",
    ]


# what the harness gives first.js: the page's two script elements, its address, and a fetch
# that records each request's body and never answers
HARNESS = """
import { readFileSync } from "node:fs";
const [cases, shared] = [2, 3].map((i) => JSON.parse(readFileSync(process.argv[i], "utf8")));
globalThis.sessionStorage = { getItem: () => null, setItem() {}, removeItem() {} };
let current = null;
globalThis.document = {
  getElementById: (id) =>
    id === "liqmap-shared" ? { textContent: JSON.stringify(shared) }
    : id === "liqmap-first" && current.first !== null ? { textContent: current.first }
    : null,
};
const bodies = [];
globalThis.fetch = (url, init) => {
  const { mode, credentials } = init;
  bodies.push(init.body ? JSON.parse(init.body) : { url, mode, credentials });
  return new Promise(() => {});
};
const out = [];
for (const [i, c] of cases.entries()) {
  current = c;
  globalThis.location = { search: c.search };
  bodies.length = 0;
  await import(`./first.js?case=${i}`);
  await new Promise((resolve) => setTimeout(resolve, 0));
  const heatmaps = bodies.filter((b) => b.query === shared.documents.heatmap);
  const gets = bodies.filter((b) => b.url !== undefined);
  out.push(gets.length ? gets : heatmaps.length ? JSON.stringify(heatmaps[0].variables) : null);
}
console.log(JSON.stringify(out));
"""


def run_first_js(folder: Path, cases: list[dict[str, Any]]) -> list[Any]:
    """first.js run in Node for each case: the heatmap variables it POSTs (as JSON), the GETs
    it sends, or None."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing (Node 20 is part of the test machine)")
    for source in STATIC.glob("*.js"):
        shutil.copy(source, folder / source.name)
    (folder / "package.json").write_text('{"type": "module"}')
    (folder / "harness.js").write_text(HARNESS)
    (folder / "shared.json").write_text(json.dumps({"style": style(), "documents": documents()}))
    (folder / "cases.json").write_text(json.dumps(cases))
    run = subprocess.run(
        [node, "harness.js", "cases.json", "shared.json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    asked: list[Any] = json.loads(run.stdout)
    return asked


ADDRESSES = [
    "",
    "?range=7d",
    "?range=1y",
    "?range=12h&axis=full",
    "?range=90d&axis=near&side=long&scale=log&within=3&overlays=swept,clusters",
    "?range=bogus&axis=weird",
    "?symbol=ETH/USDT:USDT&exchanges=binanceusdm,%20bybit",
    "?symbol=&exchanges=",
    "?range=custom",
    "?res=ONE_HOUR",
    "?res=auto&range=3d",
    "?pmin=60000&pmax=90000",
    "?bucket=50",
    "?leverage=X1_10,X100_PLUS",
    "?start=2026-05-01T00:00&end=2026-05-02T00:00",
]
NEWEST = ["2026-05-20T11:55:00+00:00", "2026-05-20T11:57:31.5+00:00", "2026-05-20T00:00:00Z"]
FINE_FROM = [None, "2026-05-13T12:00:00+00:00", "2026-05-19T11:55:00+00:00", "2026-05-20T10:00:00Z"]
LIMITS = [limits(), limits(columns=288, span_days=90), limits(columns=287)]


def test_the_preloaded_heatmap_is_the_one_first_js_asks_for(tmp_path: Path) -> None:
    cases, expected = [], []
    for address, newest, fine_from, limit in itertools.product(
        ADDRESSES, NEWEST, FINE_FROM, LIMITS
    ):
        params = dict(parse_qsl(address.removeprefix("?"), keep_blank_values=True))
        limits_answer = {"data": {"limits": limit}}
        latest_answer = answers(newest, fine_from)
        first = {
            "variables": latest_variables(params),
            "limits": json.dumps(limits_answer),
            "latest": json.dumps(latest_answer),
        }
        cases.append({"search": address, "first": json.dumps(first)})
        named = first_heatmap_variables(params, limits_answer, latest_answer)
        expected.append((address, named))
    asked = run_first_js(tmp_path, cases)
    assert len(asked) == len(expected)
    named_views = set()
    for (address, named), js in zip(expected, asked, strict=True):
        if named is not None:
            # same keys in the same order: first.js and main.js compare variables as JSON
            assert json.dumps(named, separators=(",", ":")) == js, address
            named_views.add(address)
        # no address the page asks nothing for early is ever preloaded
        assert js is not None or named is None, address
    assert named_views == set(ADDRESSES[:8]), named_views


def test_first_js_fetches_the_address_the_page_preloads(tmp_path: Path) -> None:
    """With the server's first heatmap in the page, first.js sends no POST of its own: it
    fetches that address with the preload's mode and credentials (so Chromium answers it from
    the preload; tests/viewer/test_views.py counts the server's executions)."""
    latest = answers("2026-05-20T11:55:00+00:00", "2026-05-01T00:00:00+00:00")
    named = first_heatmap_variables({}, {"data": {"limits": limits()}}, latest)
    first = {
        "variables": latest_variables({}),
        "limits": json.dumps({"data": {"limits": limits()}}),
        "latest": json.dumps(latest),
        "heatmap": {"variables": named, "url": "/graphql?query=q&variables=v"},
    }
    asked = run_first_js(tmp_path, [{"search": "", "first": json.dumps(first)}])
    assert asked == [
        [{"url": "/graphql?query=q&variables=v", "mode": "cors", "credentials": "same-origin"}]
    ]
