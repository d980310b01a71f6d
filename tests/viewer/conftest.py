"""Fixtures for the viewer, render and export tests: data from the real jobs, a real server.

The database is filled the way the main job fills it (tests/api/test_pipeline_e2e.py): the real
replay adapters over ../shared/data (default window: May–June 2026) ingest Binance and Bybit
BTC/USDT:USDT and Binance ETH/USDT:USDT, then the real materializer runs. Only Binance BTC has
recorded open interest there, so it is the one market with maps: Bybit (whose own data lies in
January and has no open interest) and ETH (January candles only) are tracked with no map, and
the cross-exchange total is Binance's. The newest hour is held back: :meth:`ViewerData.catch_up`
ingests and materializes it later through the same job functions, which is how a test sees new
snapshots arrive live. Hyperliquid's recorded top-trader levels (January 2026) are stored
through the known-positions job's parser, for the real-positions overlay.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from liqmap.database import DatabaseTarget, create_engine
from liqmap.settings import Settings
from tests.api.conftest import LiveServer, build_app
from tests.api.pipeline import band_rows, on_grid
from tests.conftest import create_database, drop_database

SYMBOL = "BTC/USDT:USDT"
EMPTY_SYMBOL = "ETH/USDT:USDT"  # a market the exchange lists, with no open interest: no map
NO_OI_EXCHANGE = "bybit"  # tracked for SYMBOL, no open interest recorded: no map
HOLD_BACK_MS = 3_600_000
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def viewer_settings(shared_data: Path) -> Settings:
    from tests.api.settings import api_settings

    return api_settings(
        replay_dir=shared_data,
        exchanges=["binanceusdm", NO_OI_EXCHANGE],
        symbols={"binanceusdm": [SYMBOL, EMPTY_SYMBOL], NO_OI_EXCHANGE: [SYMBOL]},
    )


@dataclass
class ViewerData:
    url: str
    settings: Settings
    engine: AsyncEngine
    cut_ms: int  # bars opening at or after this were held back

    async def catch_up(self) -> int:
        """Ingest the held-back bars and materialize them (the main job's steps)."""
        from jobs.pipeline import PipelineReport, ingest_all, materialize_all, open_runtime

        rt = open_runtime(self.settings, DatabaseTarget(self.url, embedded=False))
        report = PipelineReport()
        try:
            await ingest_all(rt)
            await materialize_all(rt, report)
        finally:
            await rt.close()
            await rt.engine.dispose()
        return report.snapshots

    async def series_id(self, scope: str = "all", symbol: str = SYMBOL) -> int:
        async with self.engine.connect() as conn:
            return int(
                (
                    await conn.execute(
                        text("SELECT id FROM heatmap_series WHERE symbol = :s AND scope = :c"),
                        {"s": symbol, "c": scope},
                    )
                ).scalar_one()
            )

    async def band_snapshots(
        self, scope: str, resolution: str, start_bar: Any, end_bar: Any, bands: list[int]
    ) -> list[Any]:
        """As :meth:`snapshots`, each vector the sum of the leverage ``bands`` (plain SQL, the
        blob read with struct), spread on the grid as the API reads it."""
        rows = await self._stored(
            "band_usd, cardinality(long_usd) AS size", scope, resolution, start_bar, end_bar
        )
        out = []
        for r in rows:
            long_c, short_c = band_sums(bytes(r.band_usd), r.size, bands)
            out.append(_grid_row(r, long_c.astype(np.float32), short_c.astype(np.float32)))
        return out

    async def snapshots(
        self, scope: str, resolution: str, start_bar: Any, end_bar: Any
    ) -> list[Any]:
        """Stored snapshots (plain SQL) whose bar opened in [start_bar, end_bar), their vectors on
        the grid (graded model v2 rows spread back as the API reads them: ``on_grid``)."""
        rows = await self._stored("long_usd, short_usd", scope, resolution, start_bar, end_bar)
        return [_grid_row(r, r.long_usd, r.short_usd) for r in rows]

    async def _stored(
        self, vectors: str, scope: str, resolution: str, start_bar: Any, end_bar: Any
    ) -> list[Any]:
        """The stored rows whose bar opened in [start_bar, end_bar), oldest first: their layout
        and the ``vectors`` columns."""
        sid = await self.series_id(scope)
        async with self.engine.connect() as conn:
            result = await conn.execute(
                text(
                    "SELECT ts, price, bucket_origin, bucket_size, fine_buckets, center_index, "
                    f"compact_first, {vectors} FROM heatmap_snapshots WHERE series_id = :s "
                    "AND resolution = :r AND ts >= :a AND ts < :b ORDER BY ts"
                ),
                {"s": sid, "r": resolution, "a": start_bar, "b": end_bar},
            )
            return list(result)

    async def newest_bar_close_ms(self, scope: str = "all") -> int:
        sid = await self.series_id(scope)
        async with self.engine.connect() as conn:
            newest = (
                await conn.execute(
                    text("SELECT max(ts) FROM heatmap_snapshots WHERE series_id = :s"), {"s": sid}
                )
            ).scalar_one()
        return round(newest.timestamp() * 1000) + 300_000


@dataclass(frozen=True, slots=True)
class GridRow:
    """A stored snapshot with its vectors on the grid from ``bucket_origin``."""

    ts: Any
    price: float
    bucket_origin: float
    bucket_size: float
    long_usd: np.ndarray
    short_usd: np.ndarray


def _grid_row(r: Any, long_stored: Any, short_stored: Any) -> GridRow:
    """A stored row's vectors (on its stored buckets) spread on the grid as the API reads them."""
    first, long_usd, short_usd = on_grid(
        r.bucket_origin,
        r.bucket_size,
        long_stored,
        short_stored,
        r.fine_buckets,
        r.center_index,
        r.compact_first,
    )
    return GridRow(r.ts, r.price, first * r.bucket_size, r.bucket_size, long_usd, short_usd)


def band_sums(blob: bytes, size: int, bands: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Long and short sums of some leverage bands from a stored band blob, read field by field
    (tests/api/pipeline.band_rows)."""
    rows = band_rows(blob, size).astype(np.float64)
    return rows[bands].sum(axis=0), rows[[5 + b for b in bands]].sum(axis=0)


def grid_matrix(rows: list[Any], first_row: int, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Stored vectors placed on a grid of ``n_rows`` rows from ``first_row`` (one column each)."""
    long_m = np.zeros((n_rows, len(rows)))
    short_m = np.zeros((n_rows, len(rows)))
    for j, r in enumerate(rows):
        origin = round(r.bucket_origin / r.bucket_size) - first_row
        for i, (lo, sh) in enumerate(zip(r.long_usd, r.short_usd, strict=True)):
            if 0 <= origin + i < n_rows:
                long_m[origin + i, j] = lo
                short_m[origin + i, j] = sh
    return long_m, short_m


def cell_pixels(
    rgb: np.ndarray, box: tuple[float, float, float, float], rows: int, columns: int
) -> np.ndarray:
    """The pixel at the centre of every cell of a plot box (x0, y0, width, height; row 0 at
    the bottom): rows × columns × 3."""
    x0, y0, w, h = box
    xs = (x0 + (np.arange(columns) + 0.5) * w / columns).astype(int)
    ys = (y0 + (rows - 1 - np.arange(rows) + 0.5) * h / rows).astype(int)
    return rgb[ys[:, None], xs[None, :]]


def colour_indices(pixels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Index of each pixel's colour in ``table`` (n × RGB), -1 where it is none of them."""
    lookup = np.full(1 << 24, -1, np.int16)
    table = table.astype(int)
    lookup[table[:, 0] << 16 | table[:, 1] << 8 | table[:, 2]] = np.arange(len(table))
    pixels = pixels.astype(int)
    return lookup[pixels[..., 0] << 16 | pixels[..., 1] << 8 | pixels[..., 2]]


@pytest.fixture(scope="session")
def viewer_database_url(server_url: str) -> Iterator[str]:
    from liqmap import migrations

    url = create_database(server_url, "liqmap_test_viewer")
    migrations.upgrade(url)
    yield url
    drop_database(server_url, url)


@pytest.fixture(scope="session")
async def viewer_data(viewer_database_url: str, shared_data: Path) -> AsyncIterator[ViewerData]:
    from jobs.ingest import DATASETS, ingest_dataset
    from jobs.pipeline import (
        PipelineReport,
        import_replay_realized,
        materialize_all,
        open_runtime,
        sync_all_markets,
    )

    settings = viewer_settings(shared_data)
    rt = open_runtime(settings, DatabaseTarget(viewer_database_url, embedded=False))
    try:
        await sync_all_markets(rt)
        now = rt.adapter("binanceusdm").now_ms()
        cut = now - now % 300_000 - HOLD_BACK_MS
        for exchange in settings.exchanges:
            for symbol in settings.symbols_for(exchange):
                for dataset in DATASETS:
                    await ingest_dataset(rt, exchange, symbol, dataset, until_ms=cut)
        await import_replay_realized(rt, PipelineReport())  # CoinGlass bars, for the overlays
        await materialize_all(rt, PipelineReport())
        await store_known_levels(rt.engine, shared_data)  # the real-positions overlay
    finally:
        await rt.close()
        await rt.engine.dispose()
    engine = create_engine(viewer_database_url, pool_size=5)
    yield ViewerData(viewer_database_url, settings, engine, cut)
    await engine.dispose()


async def store_known_levels(engine: AsyncEngine, shared_data: Path) -> None:
    """Hyperliquid's recorded top-trader snapshots, parsed and stored as the job does."""
    from jobs.known_positions import parse_recorded_levels
    from models import known_positions_store as kps
    from tests.api.pipeline import read_known_levels

    async with engine.begin() as conn:
        for line in read_known_levels(shared_data):
            await kps.upsert_level_snapshot(conn, parse_recorded_levels(line))


@pytest.fixture(scope="session")
async def viewer_app(viewer_data: ViewerData) -> AsyncIterator[Starlette]:
    app = build_app(viewer_data.engine, viewer_data.url)
    yield app
    await app.state.hub.close()


@pytest.fixture(scope="session")
async def viewer_server(viewer_app: Starlette) -> AsyncIterator[LiveServer]:
    async with LiveServer(viewer_app) as server:
        yield server


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """One headless Debian chromium for the whole run (scripts/test.sh installs it)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test.sh does)")
    from playwright.async_api import async_playwright

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    async with async_playwright() as pw:
        instance = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield instance
        await instance.close()


@pytest.fixture
async def page(browser: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """A fresh page (1600 × 1300, device pixel ratio 1); a screenshot is kept in tmp_path."""
    context = await browser.new_context(
        viewport={"width": 1600, "height": 1300}, device_scale_factor=1
    )
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.page_errors = errors
    yield tab
    try:
        await tab.screenshot(path=str(tmp_path / "viewer.png"), full_page=True)
    finally:
        await context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def graphql_body(request: Any) -> dict[str, Any] | None:
    """A playwright request's GraphQL document and variables, POSTed or (as the page preloads
    its first heatmap) in a GET address; None for any other request."""
    url = urlsplit(request.url)
    if url.path != "/graphql":
        return None
    if request.method == "POST":
        body: dict[str, Any] = json.loads(request.post_data)
        return body
    params = dict(parse_qsl(url.query))
    if request.method != "GET" or "query" not in params:
        return None
    return {"query": params["query"], "variables": json.loads(params.get("variables") or "{}")}
