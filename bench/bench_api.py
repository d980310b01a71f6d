"""GraphQL API benchmark over real HTTP on loopback (uvicorn in its own process).

Run:  .venv/bin/python bench/bench_api.py [--database-url URL] [--requests 200] [--duration 10]

Builds a fresh database on the given server (DATABASE_URL, else an embedded PostgreSQL), fills it
the way the main job does (one offline pipeline run over ../shared/data: the 4-week Binance
BTCUSDT window ingested through ccxt, CoinGlass realized liquidations, the materializer's
snapshots: 5m for the last 7 days, hourly for all 4 weeks, per exchange and aggregated), starts
uvicorn on loopback and measures, in the same run:

1. ``heatmap`` 24 h × 5 min × 500 price rows, both sides, FLOAT32_BASE64: p50 / p99;
2. the same cells served as a list of per-cell objects (a bench-only endpoint on the same server,
   reading the same rows): p50, and the speed-up of (1) over it;
3. ``liquidationLevels`` (latest, 400 buckets): p50 / p99 one client at a time, then requests/s,
   latency and errors with 32 concurrent clients; and the default answer, the full map (model
   v2: its whole span), p50 / p99.

Each measurement runs twice, against a server with its caches off (every request reads
PostgreSQL, assembles and encodes) and against one with them on (decoded snapshot columns and
encoded responses kept until the materializer's NOTIFY), and the heatmap is also measured with a
different 24 h window per request (no response-cache hits). The per-cell comparison uses the
caches-off server. Figures are printed as a table; ``--json`` also writes them to a file.

``--only PIECE`` instead weighs one piece of the API's infrastructure that reaches into a
library's internals: two servers on the same database, one as ``liqmap serve`` runs and one
without the piece, asked the same requests in alternation (ABBA order), so both see the same
machine load; it prints each side's p50 / p99 and their ratio.

* ``execution``: ``api/execution.py``'s flat-list completion against graphql-core's generic
  path, caches off (every request executes; with the response cache on, repeated queries never
  reach execution);
* ``deadlines``: ``api/connection_deadlines.py``'s protocol against uvicorn's own httptools
  protocol — what its timers cost per request, on a kept-alive connection and on a new
  connection per request (its gain is protection, shown by tests/reliability/);
* ``compression``: ``api/compression.py``'s gzip (ISA-L) against Starlette's GZipMiddleware
  (zlib) at the same level, caches off (with them on, a repeated answer is gzipped once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import strawberry
from strawberry.types import Info

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("LIQMAP_SHARED_DATA", REPO.parent / "shared" / "data"))
SYMBOL = "BTC/USDT:USDT"

HEATMAP = """query ($start: DateTime!, $end: DateTime!, $lo: Float!, $hi: Float!) {
  heatmap(symbol: "BTC/USDT:USDT", start: $start, end: $end, interval: FIVE_MINUTES,
          priceMin: $lo, priceMax: $hi) {
    start stepSeconds columns priceMin priceStep rows maxUsd long short } }"""

HEATMAP_WITH_CANDLES = HEATMAP.replace(
    "long short }", "long short candles { ts open high low close } }"
)

CELLS = """query ($start: DateTime!, $end: DateTime!, $lo: Float!, $hi: Float!) {
  heatmapCells(start: $start, end: $end, priceMin: $lo, priceMax: $hi) {
    ts price longUsd shortUsd } }"""

LEVELS = """query ($lo: Float!, $hi: Float!) {
  liquidationLevels(symbol: "BTC/USDT:USDT", priceMin: $lo, priceMax: $hi) {
    at price totalLongUsd totalShortUsd
    levels { price longUsd shortUsd cumulativeLongUsd cumulativeShortUsd intensity }
    maxPainLong { price cumulativeUsd } maxPainShort { price cumulativeUsd } } }"""

LEVELS_FULL = """{
  liquidationLevels(symbol: "BTC/USDT:USDT") {
    at price totalLongUsd totalShortUsd
    levels { price longUsd shortUsd cumulativeLongUsd cumulativeShortUsd intensity }
    maxPainLong { price cumulativeUsd } maxPainShort { price cumulativeUsd } } }"""


# --- the server process -----------------------------------------------------------------------
@strawberry.type
class Cell:
    """One heatmap cell as its own object: the layout the matrices replace."""

    ts: datetime
    price: float
    long_usd: float
    short_usd: float


@strawberry.type
class CellsQuery:
    @strawberry.field
    async def heatmap_cells(
        self, info: Info, start: datetime, end: datetime, price_min: float, price_max: float
    ) -> list[Cell]:
        from api.resolvers.heatmap import heatmap
        from api.timerange import utc
        from api.types.scalars import Interval

        h = await heatmap(
            info, SYMBOL, start, end, None, Interval.FIVE_MINUTES, price_min, price_max
        )
        step = timedelta(seconds=h.step_seconds)
        t0 = utc(h.start)
        long_usd, short_usd = h.data.long_usd.tolist(), h.data.short_usd.tolist()
        return [
            Cell(
                ts=t0 + j * step,
                price=h.price_min + i * h.price_step,
                long_usd=long_usd[i][j],
                short_usd=short_usd[i][j],
            )
            for i in range(h.rows)
            for j in range(h.columns)
        ]


def cells_app(settings: Any, engine: Any) -> Any:
    """A bench-only GraphQL endpoint serving the heatmap as one object per cell, through the
    same view class (orjson, gzip, same session factory) as the real API."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from api.http import LiqmapGraphQL
    from api.limits import ApiLimits
    from api.metrics import Metrics
    from api.subscriptions import Hub

    limits = ApiLimits.from_settings(settings)
    view = LiqmapGraphQL(
        strawberry.Schema(query=CellsQuery),
        settings=settings,
        limits=limits,
        sessions=async_sessionmaker(engine, expire_on_commit=False),
        hub=Hub(None),
        metrics=Metrics(),
    )
    view.response_cache_seconds = 0.0
    return view


def serve(url: str, port: int, no_cache: bool, variant: str | None = None) -> None:
    """One API server. ``variant``: ``generic-lists`` (graphql-core's list completion instead
    of api/execution.py's), ``deadlines`` / ``plain-protocol`` (uvicorn with or without
    api/connection_deadlines.py's protocol, at ``liqmap serve``'s default deadlines),
    ``starlette-gzip`` (Starlette's GZipMiddleware instead of api/compression.py's)."""
    import uvicorn
    from starlette.routing import Route
    from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

    from api.app import create_app
    from api.connection_deadlines import deadline_protocol
    from liqmap.database import create_engine
    from liqmap.logs import configure_logging
    from liqmap.settings import Settings

    configure_logging("WARNING")
    settings = Settings(_env_file=None, exchanges=["binanceusdm", "bybit"])  # type: ignore[call-arg]
    engine = create_engine(url, pool_size=10)
    app = create_app(settings, engine, database_url=url)
    if no_cache:
        app.state.graphql.response_cache_seconds = 0.0
        app.state.graphql.columns.entries = 0
    if variant == "generic-lists":
        app.state.graphql.schema.execution_context_class = StrawberryGraphQLCoreExecutionContext
    if variant == "starlette-gzip":
        from starlette.middleware import Middleware
        from starlette.middleware.gzip import GZipMiddleware

        from api.compression import GzipMiddleware as IsalGzip

        starlette_gzip = Middleware(
            GZipMiddleware, minimum_size=1024, compresslevel=settings.api_gzip_level
        )
        app.user_middleware = [
            starlette_gzip if m.cls is IsalGzip else m for m in app.user_middleware
        ]
    app.router.routes.append(Route("/cells", cells_app(settings, engine), methods=["POST"]))
    protocol: Any = "httptools"
    if variant == "deadlines":
        protocol = deadline_protocol(
            settings.api_request_head_timeout_seconds, settings.api_response_send_timeout_seconds
        )
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, http=protocol
    )


# --- setup ---------------------------------------------------------------------------------------
async def fill(url: str) -> dict[str, Any]:
    """The main job's own data: one offline pipeline run (ingest → materialize) over the replay."""
    import psycopg

    from jobs.pipeline import run_pipeline_once
    from liqmap.database import DatabaseTarget
    from liqmap.settings import Settings

    settings = Settings(_env_file=None, replay_dir=SHARED)  # type: ignore[call-arg]
    await run_pipeline_once(settings, DatabaseTarget(url, embedded=False))
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.ts, c.close FROM candles c JOIN markets m ON m.id = c.market_id "
            "WHERE m.exchange_id = 'binanceusdm' AND m.symbol = %s ORDER BY c.ts",
            (SYMBOL,),
        ).fetchall()
    stamps = [r[0] for r in rows]
    closes = {r[0]: float(r[1]) for r in rows}
    last_close = stamps[-1] + timedelta(minutes=5)
    end = last_close.replace(minute=0)  # a closed 24 h range inside the 5m window
    return {
        "bars": len(stamps),
        "first": stamps[0].isoformat(),
        "last": stamps[-1].isoformat(),
        "heatmap_end": end,
        "last_price": closes[stamps[-1]],
        "price_at_end": closes[end - timedelta(minutes=5)],
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


async def timed(client: Any, path: str, query: str, variables: dict[str, Any]) -> tuple[float, int]:
    started = time.perf_counter()
    response = await client.post(path, json={"query": query, "variables": variables})
    body = response.content  # read and (if gzip) decompressed
    elapsed = time.perf_counter() - started
    ok = response.status_code == 200 and b'"errors"' not in body[:20]
    return elapsed, len(body) if ok else -1


async def sequential(
    client: Any, path: str, query: str, variables: list[dict[str, Any]], warmup: int = 3
) -> dict[str, float]:
    for _ in range(warmup):
        await timed(client, path, query, variables[0])
    times, size = [], 0
    n = len(variables)
    for v in variables:
        elapsed, size = await timed(client, path, query, v)
        if size < 0:
            raise RuntimeError(f"{path} request failed")
        times.append(elapsed * 1000)
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": percentile(times, 99),
        "n": n,
        "bytes": size,
    }


async def load(
    client_factory: Any, query: str, variables: dict[str, Any], concurrency: int, duration: float
) -> dict[str, float]:
    times: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal errors
        async with client_factory() as client:
            while time.perf_counter() < stop:
                elapsed, size = await timed(client, "/graphql", query, variables)
                if size < 0:
                    errors += 1
                else:
                    times.append(elapsed * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return {
        "requests_per_s": len(times) / wall,
        "errors": errors,
        "p50_ms": statistics.median(times),
        "p99_ms": percentile(times, 99),
        "requests": len(times),
    }


async def measure(
    base: str, info: dict[str, Any], args: argparse.Namespace, cached: bool
) -> dict[str, Any]:
    import httpx

    end = info["heatmap_end"]
    lo = round(info["price_at_end"] / 50) * 50 - 12_500.0

    def window(shift: int = 0) -> dict[str, Any]:
        """24 h ending ``shift`` bars before the newest closed hour (all inside the 5m days)."""
        e = end - timedelta(minutes=5 * shift)
        return {
            "start": (e - timedelta(hours=24)).isoformat(),
            "end": e.isoformat(),
            "lo": lo,
            "hi": lo + 25_000.0,
        }

    price = round(info["last_price"] / 50) * 50
    levels_vars = {"lo": price - 10_000.0, "hi": price + 10_000.0}

    def make_client() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=base,
            timeout=60,
            headers={"Accept-Encoding": "gzip"},
            limits=httpx.Limits(max_keepalive_connections=64),
        )

    results: dict[str, Any] = {}
    async with make_client() as client:
        check = await client.post("/graphql", json={"query": HEATMAP, "variables": window()})
        h = check.json()["data"]["heatmap"]
        assert (h["columns"], h["rows"]) == (288, 500), h
        lv = await client.post("/graphql", json={"query": LEVELS, "variables": levels_vars})
        assert len(lv.json()["data"]["liquidationLevels"]["levels"]) == 400
        # every request a different 24 h window (slid by one bar): no response-cache hits
        sliding = [window(k) for k in range(1, args.requests + 1)]
        results["heatmap_sliding"] = await sequential(client, "/graphql", HEATMAP, sliding)
        results["heatmap"] = await sequential(
            client, "/graphql", HEATMAP, [window()] * args.requests
        )
        results["heatmap_with_candles"] = await sequential(
            client, "/graphql", HEATMAP_WITH_CANDLES, [window()] * args.requests
        )
        if not cached:
            results["heatmap_cells"] = await sequential(
                client, "/cells", CELLS, [window()] * 5, warmup=1
            )
        results["levels"] = await sequential(
            client, "/graphql", LEVELS, [levels_vars] * args.requests
        )
        full = await client.post("/graphql", json={"query": LEVELS_FULL})
        results["levels_full_buckets"] = len(full.json()["data"]["liquidationLevels"]["levels"])
        results["levels_full"] = await sequential(
            client, "/graphql", LEVELS_FULL, [{}] * args.requests
        )
    results["levels_load"] = await load(
        make_client, LEVELS, levels_vars, args.concurrency, args.duration
    )
    return results


# --- one infrastructure piece against the library's own behaviour (--only) ---------------------
CANDLES = """query ($start: DateTime!, $end: DateTime!) {
  candles(symbol: "BTC/USDT:USDT", exchange: "binanceusdm", start: $start, end: $end) {
    ts open high low close volume takerBuyVolume } }"""

# piece → (caches off?, the variant as `liqmap serve` runs it, the variant without the piece)
PIECES: dict[str, tuple[bool, str | None, str]] = {
    "execution": (True, None, "generic-lists"),
    "deadlines": (False, "deadlines", "plain-protocol"),
    "compression": (True, None, "starlette-gzip"),
}


def cases(
    piece: str, info: dict[str, Any]
) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(name, query, variables, client options) of the requests that weigh ``piece``."""
    end = info["heatmap_end"]
    lo = round(info["price_at_end"] / 50) * 50 - 12_500.0
    day = {
        "start": (end - timedelta(hours=24)).isoformat(),
        "end": end.isoformat(),
        "lo": lo,
        "hi": lo + 25_000.0,
    }
    price = round(info["last_price"] / 50) * 50
    levels = {"lo": price - 10_000.0, "hi": price + 10_000.0}
    week = {"start": (end - timedelta(days=7)).isoformat(), "end": end.isoformat()}
    if piece == "execution":
        return [
            ("liquidationLevels latest, 400 buckets", LEVELS, levels, {}),
            ("candles 7 days × 5 min (2,016 rows)", CANDLES, week, {}),
            ("heatmap 24 h × 5 min with its 288 candles", HEATMAP_WITH_CANDLES, day, {}),
        ]
    if piece == "compression":
        return [
            ("heatmap 24 h × 5 min, 1.54 MB before gzip", HEATMAP, day, {}),
            ("liquidationLevels latest, 400 buckets", LEVELS, levels, {}),
        ]
    return [
        ("liquidationLevels, kept-alive connection", LEVELS, levels, {}),
        ("liquidationLevels, a new connection per request", LEVELS, levels, {"fresh": True}),
        ("heatmap 24 h, 1.54 MB uncompressed", HEATMAP, day, {"identity": True}),
    ]


async def alternate(
    bases: dict[str, str], query: str, variables: dict[str, Any], n: int, options: dict[str, Any]
) -> dict[str, Any]:
    """``n`` requests to each server, in ABBA order; each side's p50 / p99 (ms)."""
    import httpx

    def make_client(base: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=base,
            timeout=60,
            headers={"Accept-Encoding": "identity" if options.get("identity") else "gzip"},
            limits=httpx.Limits(max_keepalive_connections=0 if options.get("fresh") else 8),
        )

    labels = list(bases)
    clients = {label: make_client(base) for label, base in bases.items()}
    try:
        answers = {}
        for label in labels:
            response = await clients[label].post(
                "/graphql", json={"query": query, "variables": variables}
            )
            answers[label] = response.json()
            assert "errors" not in answers[label], answers[label]
        assert answers[labels[0]] == answers[labels[1]], "the two servers answer differently"
        for label in labels:
            for _ in range(3):
                await timed(clients[label], "/graphql", query, variables)
        times: dict[str, list[float]] = {label: [] for label in labels}
        size = 0
        for i in range(n):
            for label in labels if i % 2 == 0 else labels[::-1]:
                elapsed, size = await timed(clients[label], "/graphql", query, variables)
                if size < 0:
                    raise RuntimeError(f"{label}: request failed")
                times[label].append(elapsed * 1000)
    finally:
        for client in clients.values():
            await client.aclose()
    out: dict[str, Any] = {
        label: {"p50_ms": statistics.median(t), "p99_ms": percentile(t, 99)}
        for label, t in times.items()
    }
    out["bytes"] = size
    out["ratio"] = out["without"]["p50_ms"] / out["with"]["p50_ms"]
    return out


def weigh(url: str, info: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    no_cache, with_piece, without_piece = PIECES[args.only]
    servers = {
        "with": start_server(url, no_cache, with_piece),
        "without": start_server(url, no_cache, without_piece),
    }
    bases = {label: base for label, (_, base) in servers.items()}
    results: dict[str, Any] = {}
    try:
        for name, query, variables, options in cases(args.only, info):
            results[name] = asyncio.run(alternate(bases, query, variables, args.requests, options))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
    return results


def report_piece(results: dict[str, Any], args: argparse.Namespace) -> None:
    what = {
        "execution": ("api/execution.py", "graphql-core's generic completion"),
        "deadlines": ("api/connection_deadlines.py", "uvicorn's httptools protocol"),
        "compression": ("api/compression.py", "Starlette's GZipMiddleware"),
    }[args.only]
    print(
        f"\n{what[0]} against {what[1]} — uvicorn on loopback, {os.cpu_count()} CPUs, "
        f"n={args.requests} per side, alternating"
    )
    for name, r in results.items():
        w, wo = r["with"], r["without"]
        print(
            f"{name:48s} with p50 {w['p50_ms']:6.2f} ms (p99 {w['p99_ms']:6.2f})   "
            f"without p50 {wo['p50_ms']:6.2f} ms (p99 {wo['p99_ms']:6.2f})   "
            f"without/with {r['ratio']:.2f}×"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


def start_server(
    url: str, no_cache: bool, variant: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    from tests.api.conftest import free_port

    port = free_port()
    command = [sys.executable, __file__, "--serve", url, str(port)]
    if no_cache:
        command.append("--no-cache")
    if variant:
        command += ["--variant", variant]
    proc = subprocess.Popen(command)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/health/ready").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return proc, base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    parser.add_argument("--serve", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--no-cache", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument(
        "--only",
        choices=sorted(PIECES),
        help="weigh one infrastructure piece against the library's own behaviour instead",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.no_cache, args.variant)
        return

    from liqmap import migrations
    from liqmap.database import normalize_url, start_embedded_server, with_database
    from tests.conftest import create_database, drop_database

    if args.database_url:
        server = normalize_url(args.database_url)
    else:
        server = with_database(start_embedded_server(Path(tempfile.mkdtemp())), "postgres")
    url = create_database(server, "liqmap_bench_api")
    results: dict[str, Any] = {}
    try:
        migrations.upgrade(url)
        started = time.perf_counter()
        info = asyncio.run(fill(url))
        print(
            f"filled {info['bars']} bars ({info['first']} → {info['last']}) in "
            f"{time.perf_counter() - started:.1f} s"
        )
        if args.only:
            results = weigh(url, info, args)
        else:
            for label, no_cache in (("uncached", True), ("cached", False)):
                proc, base = start_server(url, no_cache)
                try:
                    results[label] = asyncio.run(measure(base, info, args, cached=not no_cache))
                finally:
                    proc.terminate()
                    proc.wait(10)
    finally:
        drop_database(server, url)
    if args.only:
        report_piece(results, args)
    else:
        report(results, args)


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    cold, warm = results["uncached"], results["cached"]
    cells = cold["heatmap_cells"]
    speedup = cells["p50_ms"] / cold["heatmap"]["p50_ms"]
    results["speedup_vs_cells_uncached"] = speedup

    def line(name: str, r: dict[str, float]) -> str:
        return f"{name:58s} p50 {r['p50_ms']:7.1f} ms   p99 {r['p99_ms']:7.1f} ms"

    print(f"\nliqmap API benchmark — uvicorn on loopback, {os.cpu_count()} CPUs, n={args.requests}")
    for label, r in (
        ("caches off (every request from PostgreSQL)", cold),
        ("caches on (column cache + response cache)", warm),
    ):
        print(f"\n[{label}]")
        print(line("heatmap 24h×5m×500 rows, both sides, FLOAT32_BASE64", r["heatmap"]))
        print(line("  same, each request a different 24 h window", r["heatmap_sliding"]))
        print(line("  same, with the 288 candles", r["heatmap_with_candles"]))
        print(line("liquidationLevels latest, 400 buckets", r["levels"]))
        full = f"liquidationLevels latest, the full map ({r['levels_full_buckets']} buckets)"
        print(line(full, r["levels_full"]))
        ld = r["levels_load"]
        print(
            f"  {args.concurrency} concurrent clients for {args.duration:.0f} s: "
            f"{ld['requests_per_s']:.0f} req/s, {ld['errors']} errors, "
            f"p50 {ld['p50_ms']:.1f} ms, p99 {ld['p99_ms']:.1f} ms"
        )
    print(
        f"\nper-cell objects (caches off): p50 {cells['p50_ms']:.0f} ms, "
        f"{cells['bytes'] / 1e6:.1f} MB → FLOAT32_BASE64 is {speedup:.0f}× faster "
        f"({cold['heatmap']['bytes'] / 1e6:.2f} MB)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
