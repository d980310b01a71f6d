"""Load run: 64 clients of mixed queries against uvicorn while ingestion and materialization run.

Run:  .venv/bin/python bench/bench_load.py [--database-url URL] [--duration 60] [--clients 64]
          [--think-ms 0] [--churn live|recompute|reingest|none] [--churn-interval 10]
          [--live-speed 30] [--live-hold-hours 2]
          [--api-processes 1] [--warmup 5] [--paced-requests 150] [--floor-duration 30]
          [--json FILE]

Everything is on loopback and real: a fresh database on the given server (DATABASE_URL, else a
private PostgreSQL started in a temporary folder) is filled by the main job
(``liqmap up --replay ../shared/data --once``); ``liqmap serve`` (uvicorn, caches as configured
by default) serves it from its own process. Then, in the same run:

0. **prime**: every distinct request of the mix (~180) is asked once per API process, so both
   phases start from the caches of a service that has been answering for a while;
1. **idle**: one client, requests one after another, no job running: p50 / p99 per operation;
1b. **paced idle** (with ``--think-ms``): one client again, but waiting between its requests as
   each load client does — the service just as idle, the machine idle between requests too;
2. **baseline**: the load below (same clients, same mix, same length), with no job running —
   what the jobs add is the loaded phase's p99 over this one's (``--no-baseline`` skips it);
3. **load**: ``liqmap worker --replay`` runs with 5 s ingest and 10 s materialize periods.
   With ``--churn live`` (the default) the jobs work as they do live, only faster: the database
   is filled up to ``--live-hold-hours`` before the recording's end, and the worker's replay
   clock then runs from there at ``--live-speed`` recorded seconds per wall second (30: a new
   5-minute bar every 10 s, 30 times the live rate), so each ingest period fetches the bars
   that closed since and each materialization computes those steps, writes their snapshots
   and NOTIFYs the API. The other modes keep the replay's clock at the recording's end, where
   a period has nothing new, and "churn" every ``--churn-interval`` seconds: ``reingest`` rewinds
   the ingest watermarks by a day (each period fetches and upserts a day of bars again),
   ``recompute`` also drops the engine states, so the next materialization
   recomputes the whole 4-week series, rewrites every snapshot and NOTIFYs the API, which drops
   its caches — a far heavier background than live operation, where a period adds one bar and
   the materializer computes one step. Meanwhile
   ``--clients`` clients send a mix of ``heatmap`` (a random 24 h window of the last 7 days at
   5 min, 500 price rows), ``liquidationLevels`` (latest, 400 buckets), ``snapshots`` pages
   (a random page of hourly maps) and ``longShortSplit`` for ``--duration`` seconds after
   ``--warmup`` seconds that are not counted (connections opening, clients arriving), spread
   over ``--api-processes`` ``liqmap serve`` replicas (a load balancer's job), each waiting
   ``--think-ms`` between its requests (0: back to back). Answers are not gzipped (loopback;
   ``bench_api.py`` measures compression); the load generator uses aiohttp (ccxt's HTTP client,
   with a C parser) so that it takes less of the two cores than the server.

Last, the **floor**: ``bench/bare_app.py``, an ASGI app with no liqmap code under the same
uvicorn, loop and HTTP parser, answers each operation with a fixed body of the median size of
liqmap's answers to it (read in the prime step), and is measured the same way (idle, paced
idle, the same clients for ``--floor-duration`` s, no job running). Its figures are what this
machine, the load generator and uvicorn cost to move those bytes; liqmap's loaded p99 over the
bare app's is what liqmap's own code adds.

An error is a non-200 answer, a transport error, or any ``errors`` in the body. The goal: zero
errors, and under load each operation's p99 within 3× its idle p99; the run also says whether
it is within 3× of the paced idle p99, of the baseline's (what the jobs cost, apart from what
64 clients cost), and whether the bare app itself is within 3× of its own idle p99. The run
waits for a quiet machine first (1-minute load average below 1.0; other sessions run tests at
times).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402  (ccxt's HTTP client: a C parser keeps the load generator cheap)
import orjson  # noqa: E402
import psycopg  # noqa: E402

from liqmap.database import database_name  # noqa: E402
from tests.conftest import create_database, drop_database  # noqa: E402
from tests.reliability.harness import (  # noqa: E402
    ApiProcess,
    LiqmapProcess,
    PrivatePostgres,
    free_port,
    liqmap_env,
    replay_pipeline,
)

SHARED = Path(os.environ.get("LIQMAP_SHARED_DATA", REPO.parent / "shared" / "data"))

HEATMAP = """query ($start: DateTime!, $end: DateTime!, $lo: Float!, $hi: Float!) {
  heatmap(symbol: "BTC/USDT:USDT", start: $start, end: $end, interval: FIVE_MINUTES,
          priceMin: $lo, priceMax: $hi) {
    start stepSeconds columns priceMin priceStep rows maxUsd long short } }"""
LEVELS = """query ($lo: Float!, $hi: Float!) {
  liquidationLevels(symbol: "BTC/USDT:USDT", priceMin: $lo, priceMax: $hi) {
    at price totalLongUsd totalShortUsd
    levels { price longUsd shortUsd cumulativeLongUsd cumulativeShortUsd intensity }
    maxPainLong { price cumulativeUsd } maxPainShort { price cumulativeUsd } } }"""
SNAPSHOTS = """query ($start: DateTime!) {
  snapshots(symbol: "BTC/USDT:USDT", start: $start, resolution: ONE_HOUR, first: 24) {
    edges { cursor node { at price totalLongUsd totalShortUsd levels { price longUsd shortUsd } } }
    pageInfo { hasNextPage endCursor } } }"""
SPLIT = """query ($w: Float!) {
  longShortSplit(symbol: "BTC/USDT:USDT", withinPct: $w) {
    at price longUsd shortUsd ratio perExchange { exchange longUsd shortUsd } } }"""

# no gzip: over loopback it would only burn CPU on both ends (bench_api.py measures it)
JSON = {"content-type": "application/json", "accept-encoding": "identity"}
MIX = (("heatmap", 25), ("liquidationLevels", 35), ("snapshots", 20), ("longShortSplit", 20))


@dataclass
class Window:
    """What the stored data covers, read once after the pipeline run."""

    last_bar: datetime
    price: float
    recent_from: datetime
    first_hourly: datetime


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def variants(op: str, window: Window) -> list[dict[str, Any]]:
    """Every distinct request of ``op`` the clients choose from (uniformly)."""
    lo = window.price * 0.9
    if op == "heatmap":  # a 24 h window starting on an hour of the last week
        hours = int((window.last_bar - window.recent_from).total_seconds() // 3600) - 24
        out = []
        for hour in range(max(1, hours)):
            start = window.recent_from + timedelta(hours=hour)
            start = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            end = start + timedelta(hours=24)
            out.append({"query": HEATMAP, "variables": {
                "start": start.isoformat(), "end": end.isoformat(),
                "lo": lo, "hi": lo + 500 * 50 - 1,
            }})  # fmt: skip
        return out
    if op == "liquidationLevels":
        return [{"query": LEVELS, "variables": {"lo": lo, "hi": lo + 400 * 50 - 1}}]
    if op == "snapshots":  # a page of 24 hourly maps starting on a day
        days = max(1, (window.last_bar - window.first_hourly).days - 1)
        return [
            {"query": SNAPSHOTS,
             "variables": {"start": (window.first_hourly + timedelta(days=d)).isoformat()}}
            for d in range(days)
        ]  # fmt: skip
    return [{"query": SPLIT, "variables": {"w": w}} for w in (1.0, 2.0, 5.0, 10.0)]


_VARIANTS: dict[tuple[str, int], list[dict[str, Any]]] = {}


def request_for(op: str, window: Window | None, rng: random.Random) -> dict[str, Any]:
    if window is None:  # the bare app ignores the request
        return {"query": "{ __typename }"}
    key = (op, id(window))
    if key not in _VARIANTS:
        _VARIANTS[key] = variants(op, window)
    return rng.choice(_VARIANTS[key])


async def prime(bases: list[str], window: Window) -> dict[str, list[int]]:
    """Ask every distinct request of the mix once on every API process (not measured): both
    phases then start from the caches a running service has, rather than one phase paying
    for filling them. Returns the answers' sizes per operation."""
    sizes: dict[str, list[int]] = defaultdict(list)
    for base in bases:
        async with session(base, 4) as client:
            for op, _ in MIX:
                for body in variants(op, window):
                    sizes[op].append(await timed(client, op, body, Stats()))
    return sizes


async def timed(
    client: aiohttp.ClientSession, op: str, body: dict[str, Any], stats: Stats, bare: bool = False
) -> int:
    """One POST; an error is a non-200 answer, a transport error or ``errors`` in the body.
    Returns the answer's size. ``bare``: the request goes to the bare app, which answers
    ``op`` with a body of that operation's size.

    The body is searched for the ``"errors"`` key instead of parsed: no value of these answers
    can contain that token (base64, numbers, ISO times, symbols), and a 1.5 MB heatmap would
    otherwise cost the client more CPU than the server spends on it.
    """
    started = time.perf_counter()
    error = None
    content = b""
    path = f"/graphql?op={op}" if bare else "/graphql"
    try:
        async with client.post(path, data=orjson.dumps(body), headers=JSON) as response:
            content = await response.read()
            if response.status != 200:
                error = f"HTTP {response.status}: {content[:200]!r}"
            elif b'"errors"' in content:
                error = f"errors: {content[-300:]!r}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - started
    stats.latencies[op].append(elapsed)
    if error is not None:
        stats.errors[op] += 1
        if len(stats.samples[op]) < 3:
            stats.samples[op].append(error)
    return len(content)


def session(base: str, clients: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=base,
        connector=aiohttp.TCPConnector(limit=clients),
        timeout=aiohttp.ClientTimeout(total=60),
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def idle_phase(
    base: str, window: Window | None, per_op: int, seed: int, think_s: float = 0.0
) -> Stats:
    """One client: requests one after another (``think_s`` 0), or paced as a load client is
    (each followed by ``think_s`` × 0.5–1.5 of waiting). ``window`` None: the bare app."""
    stats = Stats()
    rng = random.Random(seed)
    bare = window is None
    async with session(base, 1) as client:
        for op, _ in MIX:  # warm up the connection, not measured
            await timed(client, op, request_for(op, window, rng), Stats(), bare)
        order = [op for op, _ in MIX for _ in range(per_op)]
        rng.shuffle(order)
        for op in order:
            await timed(client, op, request_for(op, window, rng), stats, bare)
            if think_s:
                await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))
    return stats


async def load_phase(
    bases: list[str],
    window: Window | None,
    clients: int,
    duration: float,
    think_s: float,
    seed: int,
    warmup: float,
) -> tuple[Stats, float]:
    """``clients`` clients for ``warmup`` + ``duration`` seconds; only the last part counts (the
    first seconds fill the caches with 64 cold requests at once, which no steady state has)."""
    stats, discarded = Stats(), Stats()
    measured_from = time.perf_counter() + warmup
    deadline = measured_from + duration
    ops = [op for op, weight in MIX for _ in range(weight)]
    sessions = [session(base, clients) for base in bases]
    try:

        async def one(index: int) -> None:
            client = sessions[index % len(sessions)]  # a load balancer spreading clients
            rng = random.Random(seed * 1000 + index)
            await asyncio.sleep(rng.uniform(0, 0.5))  # clients arrive over half a second
            while (now := time.perf_counter()) < deadline:
                op = rng.choice(ops)
                target = stats if now >= measured_from else discarded
                await timed(client, op, request_for(op, window, rng), target, window is None)
                if think_s:
                    await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))

        await asyncio.gather(*(one(i) for i in range(clients)))
        return stats, time.perf_counter() - measured_from
    finally:
        for client in sessions:
            await client.close()


async def churn(
    url: str, mode: str, interval: float, stop: asyncio.Event, counts: dict[str, int]
) -> None:
    """Every ``interval`` s: rewind the ingest watermarks a day (``reingest``), and drop the
    engine states too (``recompute``: the next materialization recomputes the whole series)."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval)
            return
        except TimeoutError:
            pass
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(
                "UPDATE ingest_watermarks SET watermark = watermark - interval '1 day' "
                "WHERE dataset IN ('candles', 'open_interest')"
            )
            if mode == "recompute":
                await conn.execute("DELETE FROM engine_states")
        counts["rewinds"] += 1


def read_window(url: str) -> Window:
    with psycopg.connect(url) as conn:
        last_bar, price = conn.execute(
            "SELECT ts, price FROM heatmap_snapshots WHERE resolution = '5m' "
            "ORDER BY ts DESC LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        recent_from = conn.execute(
            "SELECT min(ts) FROM heatmap_snapshots WHERE resolution = '5m'"
        ).fetchone()[0]  # type: ignore[index]
        first_hourly = conn.execute(
            "SELECT min(ts) FROM heatmap_snapshots WHERE resolution = '1h'"
        ).fetchone()[0]  # type: ignore[index]
    return Window(last_bar, float(price), recent_from, first_hourly)


def background_work(url: str, since: datetime, window: Window) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        ingest = conn.execute(
            "SELECT count(*), coalesce(sum(rows_written), 0) FROM job_runs "
            "WHERE job = 'ingest' AND status = 'succeeded' AND finished_at >= %s",
            (since,),
        ).fetchone()
        snapshots = conn.execute(
            "SELECT count(*) FROM heatmap_snapshots WHERE resolution = '5m' AND ts > %s",
            (window.last_bar,),
        ).fetchone()
        materialize = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs j JOIN procrastinate_events e "
            "ON e.job_id = j.id AND e.type = 'succeeded' "
            "WHERE j.task_name = 'liqmap.materialize' AND e.at >= %s",
            (since,),
        ).fetchone()
    assert ingest is not None and materialize is not None and snapshots is not None
    return {
        "new_5m_snapshots": int(snapshots[0]),
        "ingest_runs": int(ingest[0]),
        "ingest_rows": int(ingest[1]),
        "materialize_runs": int(materialize[0]),
    }


def full_collections(bases: list[str]) -> dict[str, float]:
    """The API processes' full (generation 2) garbage collections so far, per pause bucket
    (``liqmap_gc_pause_seconds``, summed over the processes)."""
    import urllib.request

    out: dict[str, float] = defaultdict(float)
    for base in bases:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith('liqmap_gc_pause_seconds_bucket{generation="2"'):
                    le = line.split('le="', 1)[1].split('"', 1)[0]
                    out[le] += float(line.rsplit(" ", 1)[1])
    return out


def gc_summary(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """How many full collections ran between two scrapes, and the bucket the longest fell in."""
    total = after.get("+Inf", 0.0) - before.get("+Inf", 0.0)
    longest = None
    for le, count in after.items():  # cumulative buckets, smallest bound first
        if total and count - before.get(le, 0.0) == total:
            longest = le
            break
    return {"full_collections": int(total), "longest_at_most_s": longest}


def wait_for_quiet(max_wait: float, threshold: float) -> float:
    deadline = time.monotonic() + max_wait
    while True:
        load1 = os.getloadavg()[0]
        if load1 < threshold:
            return load1
        if time.monotonic() > deadline:
            print(f"machine still busy (load {load1:.2f}); measuring anyway", flush=True)
            return load1
        print(f"load average {load1:.2f} ≥ {threshold}; waiting for a quiet machine", flush=True)
        time.sleep(15)


def summarize(stats: Stats, seconds: float | None) -> dict[str, dict[str, float]]:
    out = {}
    for op, _ in MIX:
        values = stats.latencies.get(op, [])
        out[op] = {
            "requests": len(values),
            "errors": stats.errors.get(op, 0),
            "rps": len(values) / seconds if seconds else float("nan"),
            "p50_ms": percentile(values, 0.50) * 1000,
            "p99_ms": percentile(values, 0.99) * 1000,
            "max_ms": max(values) * 1000 if values else float("nan"),
            "mean_ms": statistics.fmean(values) * 1000 if values else float("nan"),
        }
    return out


def within_3x(load: dict[str, Any], reference: dict[str, Any]) -> bool:
    """No errors, and every operation's p99 within 3× the reference phase's."""
    return all(
        load[op]["errors"] == 0 and load[op]["p99_ms"] <= 3 * reference[op]["p99_ms"]
        for op, _ in MIX
    )


def print_table(
    idle: dict[str, Any],
    paced: dict[str, Any] | None,
    base: dict[str, Any] | None,
    load: dict[str, Any],
    seconds: float,
) -> None:
    header = (
        f"{'operation':<18} {'idle p50':>9} {'idle p99':>9} {'paced p99':>9} {'no-jobs p99':>11} │"
        f" {'req/s':>7} {'p50':>8} {'p99':>8} {'max':>8} {'errors':>6} {'/idle':>7} {'/paced':>7}"
        f" {'/no-jobs':>8}"
    )
    print(header)
    print("─" * len(header))
    total = 0
    nan = float("nan")
    for op, _ in MIX:
        i, lo = idle[op], load[op]
        total += lo["requests"]
        p99 = paced[op]["p99_ms"] if paced else nan
        b99 = base[op]["p99_ms"] if base else nan
        print(
            f"{op:<18} {i['p50_ms']:>8.1f}m {i['p99_ms']:>8.1f}m {p99:>8.1f}m {b99:>10.1f}m │ "
            f"{lo['rps']:>7.1f} {lo['p50_ms']:>7.1f}m {lo['p99_ms']:>7.1f}m {lo['max_ms']:>7.1f}m "
            f"{lo['errors']:>6} {lo['p99_ms'] / i['p99_ms']:>6.1f}× {lo['p99_ms'] / p99:>6.1f}× "
            f"{lo['p99_ms'] / b99:>7.1f}×"
        )
    print(f"{'all':<18} {'':>9} {'':>9} {'':>9} {'':>11} │ {total / seconds:>7.1f}")


class BareApi:
    """``bench/bare_app.py`` under uvicorn on a free loopback port, with the loop and HTTP
    parser ``liqmap serve`` uses, answering each operation with a body of ``sizes[op]`` bytes."""

    def __init__(self, log: Path, sizes: dict[str, int]) -> None:
        self.port = free_port()
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--loop", "uvloop", "--http", "httptools",
             "--no-access-log", "--log-level", "warning"],
            cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, "BARE_APP_SIZES": json.dumps(sizes)},
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the bare app did not start") from None
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._log.close()


def floor_phase(folder: Path, args: argparse.Namespace, sizes: dict[str, int]) -> dict[str, Any]:
    """The machine's own floor: the bare app answering each operation with a body of the size
    liqmap's answers have, measured as the API is (back to back, paced, and under the same
    clients and think time, no job running), as many processes as liqmap had."""
    bares = [BareApi(folder / f"bare-{i}.log", sizes) for i in range(args.api_processes)]
    bare = bares[0]
    try:
        think_s = args.think_ms / 1000
        idle = summarize(
            asyncio.run(idle_phase(bare.url, None, args.idle_requests, args.seed)), None
        )
        paced = None
        if args.paced_requests and think_s:
            paced = summarize(
                asyncio.run(idle_phase(bare.url, None, args.paced_requests, args.seed, think_s)),
                None,
            )
        stats, seconds = asyncio.run(
            load_phase([b.url for b in bares], None, args.clients, args.floor_duration, think_s,
                       args.seed, args.warmup)
        )  # fmt: skip
        load = summarize(stats, seconds)
    finally:
        for process in bares:
            process.stop()
    return {"idle": idle, "paced": paced, "load": load, "sizes": sizes, "seconds": seconds}


def print_floor(floor: dict[str, Any], load: dict[str, Any]) -> None:
    """The bare app's figures, and liqmap's loaded p99 over the bare app's (what liqmap's own
    code adds to the tail under the same load)."""
    header = (
        f"{'bare app':<18} {'bytes':>9} {'idle p99':>9} {'paced p99':>9} │ {'req/s':>7} "
        f"{'p50':>8} {'p99':>8} {'max':>8} {'errors':>6} {'/idle':>7} {'/paced':>7} "
        f"{'liqmap/bare':>11}"
    )
    print(header)
    print("─" * len(header))
    nan = float("nan")
    for op, _ in MIX:
        i, lo = floor["idle"][op], floor["load"][op]
        p99 = floor["paced"][op]["p99_ms"] if floor["paced"] else nan
        print(
            f"{op:<18} {floor['sizes'][op]:>9,} {i['p99_ms']:>8.1f}m {p99:>8.1f}m │ "
            f"{lo['rps']:>7.1f} {lo['p50_ms']:>7.1f}m {lo['p99_ms']:>7.1f}m {lo['max_ms']:>7.1f}m "
            f"{lo['errors']:>6} {lo['p99_ms'] / i['p99_ms']:>6.1f}× {lo['p99_ms'] / p99:>6.1f}× "
            f"{load[op]['p99_ms'] / lo['p99_ms']:>10.1f}×"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--think-ms", type=float, default=0.0)
    parser.add_argument(
        "--api-processes", type=int, default=1, help="liqmap serve replicas, clients spread"
    )
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load not counted")
    parser.add_argument("--idle-requests", type=int, default=500, help="per operation")
    parser.add_argument(
        "--paced-requests", type=int, default=150,
        help="per operation, one client waiting --think-ms between requests (0: no such phase)",
    )  # fmt: skip
    parser.add_argument(
        "--floor-duration", type=float, default=30.0,
        help="seconds of load on the bare app (0: no floor phase)",
    )  # fmt: skip
    parser.add_argument(
        "--churn", choices=["live", "recompute", "reingest", "none"], default="live"
    )
    parser.add_argument("--churn-interval", type=float, default=10.0)
    parser.add_argument("--live-speed", type=float, default=30.0, help="recorded s per wall s")
    parser.add_argument("--live-hold-hours", type=float, default=2.0)
    parser.add_argument("--no-worker", action="store_true", help="load without background jobs")
    parser.add_argument(
        "--no-baseline", action="store_true",
        help="skip the load phase without jobs that the loaded one is compared with",
    )  # fmt: skip
    parser.add_argument("--quiet-load", type=float, default=1.0)
    parser.add_argument("--quiet-wait", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="liqmap-bench-load-"))
    private: PrivatePostgres | None = None
    if args.database_url:
        from liqmap.database import normalize_url

        admin = normalize_url(args.database_url)
    else:
        private = PrivatePostgres()
        private.start()
        admin = private.url
    url = create_database(admin, "liqmap_bench_load")
    apis: list[ApiProcess] = []
    worker: LiqmapProcess | None = None
    try:
        wait_for_quiet(args.quiet_wait, args.quiet_load)  # before any process of ours starts
        print(
            f"filling {database_name(url)} with the main job (liqmap up --replay --once) …",
            flush=True,
        )
        t0 = time.perf_counter()
        clock: dict[str, object] = {}
        if args.churn == "live":
            from jobs.replay import open_recording

            end_ms = open_recording(SHARED, "binanceusdm").now_ms
            start_ms = end_ms - round(args.live_hold_hours * 3_600_000)
            start_ms -= start_ms % 300_000
            clock["replay_start"] = datetime.fromtimestamp(start_ms / 1000, tz=UTC).isoformat()
        replay_pipeline(url, SHARED, folder / "up.log", **clock)
        print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
        window = read_window(url)
        env = liqmap_env(url, log_level="WARNING")
        apis = [ApiProcess(env, folder / f"api-{i}.log") for i in range(args.api_processes)]
        for api in apis:
            api.wait_ready()

        primed = asyncio.run(prime([a.url for a in apis], window))
        sizes = {op: round(statistics.median(primed[op])) for op, _ in MIX}
        print(f"primed the caches: {sum(map(len, primed.values()))} distinct requests answered "
              f"once; median answer sizes {sizes}", flush=True)  # fmt: skip
        load_before = os.getloadavg()[0]
        gc_before = full_collections([a.url for a in apis])
        print(f"idle phase: {args.idle_requests} requests per operation, one at a time "
              f"(load average {load_before:.2f})", flush=True)  # fmt: skip
        idle_stats = asyncio.run(idle_phase(apis[0].url, window, args.idle_requests, args.seed))
        idle = summarize(idle_stats, None)
        paced: dict[str, Any] | None = None
        if args.paced_requests and args.think_ms:
            print(f"paced idle phase: {args.paced_requests} requests per operation, one client "
                  f"waiting {args.think_ms:.0f} ms × 0.5–1.5 between them", flush=True)  # fmt: skip
            paced = summarize(asyncio.run(idle_phase(
                apis[0].url, window, args.paced_requests, args.seed, args.think_ms / 1000
            )), None)  # fmt: skip

        base: dict[str, Any] | None = None
        if not args.no_worker and not args.no_baseline:
            print(f"baseline phase: the same {args.clients} clients, no job running", flush=True)
            base_stats, base_seconds = asyncio.run(
                load_phase([a.url for a in apis], window, args.clients, args.duration,
                           args.think_ms / 1000, args.seed + 1, args.warmup)
            )  # fmt: skip
            base = summarize(base_stats, base_seconds)
            if any(base[op]["errors"] for op, _ in MIX):
                print(f"baseline errors: {dict(base_stats.samples)}", flush=True)

        background: dict[str, int] = {"rewinds": 0}
        if not args.no_worker:
            if args.churn == "live":  # the clock runs from where the fill stopped
                clock["replay_speed"] = args.live_speed
                clock["replay_epoch"] = datetime.now(UTC).isoformat()
            worker_env = liqmap_env(
                url, ingest_interval_s=5, materialize_interval_s=10, log_level="WARNING", **clock
            )
            worker = LiqmapProcess(["worker", "--replay", str(SHARED)], worker_env,
                                   folder / "worker.log")  # fmt: skip
            time.sleep(6)  # the worker is up and its first periodic runs have started
        since = datetime.now(UTC)
        print(f"load phase: {args.clients} clients on {args.api_processes} API process(es), "
              f"{args.duration:.0f} s after {args.warmup:.0f} s of warm-up, think "
              f"{args.think_ms:.0f} ms, worker {'off' if args.no_worker else 'on'}, churn "
              f"{args.churn} every {args.churn_interval:.0f} s", flush=True)  # fmt: skip

        async def loaded() -> tuple[Stats, float]:
            stop = asyncio.Event()
            churner = None
            if not args.no_worker and args.churn in ("recompute", "reingest"):
                churner = asyncio.create_task(
                    churn(url, args.churn, args.churn_interval, stop, background)
                )
            try:
                return await load_phase([a.url for a in apis], window, args.clients, args.duration,
                                        args.think_ms / 1000, args.seed, args.warmup)  # fmt: skip
            finally:
                stop.set()
                if churner is not None:
                    await churner

        stats, seconds = asyncio.run(loaded())
        dead = [p.args for p in (*apis, *([worker] if worker else [])) if not p.alive()]
        if dead:
            print(f"processes died during the run: {dead}", flush=True)
        load_after = os.getloadavg()[0]
        collections = gc_summary(gc_before, full_collections([a.url for a in apis]))
        load = summarize(stats, seconds)
        if not args.no_worker:
            background.update(background_work(url, since, window))
        floor: dict[str, Any] | None = None
        if args.floor_duration:
            if worker is not None:
                worker.stop()
                worker = None
            print("floor phase: the bare app answering with bodies of the same sizes, the "
                  "same clients, no job running", flush=True)  # fmt: skip
            floor = floor_phase(folder, args, sizes)
        print()
        print_table(idle, paced, base, load, seconds)
        print(f"\nbackground during the load phase: {background}")
        print(f"load average before {load_before:.2f}, after {load_after:.2f}")
        print(f"full garbage collections in the API process(es) from the idle phase to the end of "
              f"the load phase: {collections['full_collections']}, the longest at most "
              f"{collections['longest_at_most_s']} s")  # fmt: skip
        for op, samples in stats.samples.items():
            for sample in samples:
                print(f"  {op} error: {sample}")
        goal = within_3x(load, idle)
        verdict = "met" if goal else "NOT met"
        print(f"goal (0 errors, p99 ≤ 3× idle p99 for every operation): {verdict}")
        paced_goal = None
        if paced is not None:
            paced_goal = within_3x(load, paced)
            print("the same against the paced idle p99 (one client, the same think time): "
                  f"{'met' if paced_goal else 'NOT met'}")  # fmt: skip
        if floor is not None:
            print()
            print_floor(floor, load)
            bare_goal = within_3x(floor["load"], floor["idle"])
            print("the bare app itself, p99 ≤ 3× its idle p99 for every operation: "
                  f"{'yes' if bare_goal else 'NO'}")  # fmt: skip
        jobs_cost = None
        if base is not None:
            jobs_cost = within_3x(load, base)
            print("with the jobs running, p99 ≤ 3× the no-jobs p99 of the same clients for "
                  f"every operation: {'yes' if jobs_cost else 'NO'}")  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps({
                "idle": idle, "paced_idle": paced, "baseline": base, "load": load,
                "seconds": seconds, "floor": floor, "paced_goal_met": paced_goal,
                "gc": collections,
                "background": background, "within_3x_of_baseline": jobs_cost,
                "clients": args.clients, "think_ms": args.think_ms, "duration": args.duration,
                "churn": args.churn, "worker": not args.no_worker,
                "api_processes": args.api_processes, "warmup": args.warmup,
                "load_average": [load_before, load_after], "goal_met": goal,
            }, indent=2))  # fmt: skip
        return 0
    finally:
        for process in (worker, *apis):
            if process is not None:
                process.stop()
        drop_database(admin, url)
        if private is not None:
            private.close()


if __name__ == "__main__":
    raise SystemExit(main())
