"""Load run: 64 clients of mixed queries against uvicorn while ingestion and materialization run.

Run:  .venv/bin/python bench/bench_load.py [--database-url URL] [--duration 60] [--clients 64]
          [--think-ms 0] [--churn live|recompute|reingest|none] [--churn-interval 10]
          [--live-speed 30] [--live-hold-hours 2] [--worker-nice 10] [--rounds 4] [--max-steal 0.03]
          [--block-retries 2] [--api-processes 1] [--warmup 2] [--idle-requests 500]
          [--paced-requests 200] [--floor-duration 40] [--json FILE]

Everything is on loopback and real: a fresh database on the given server (DATABASE_URL, else a
private PostgreSQL started in a temporary folder) is filled by the main job
(``liqmap up --replay ../shared/data --once``); ``liqmap serve`` (uvicorn, caches as configured
by default) serves it from its own process(es). First every distinct request of the mix (~175)
is asked once per API process (**prime**, not measured), so every phase starts from the caches
of a service that has been answering for a while. Then ``--rounds`` rounds, each running every
phase once, in this order:

1. **idle**: one client, ``--idle-requests`` requests per operation one after another, no job
   running: p50 / p99 per operation;
2. **paced idle** (with ``--think-ms``): one client again, ``--paced-requests`` per operation
   over all rounds, waiting between its requests as each load client does — the service just
   as idle, the machine idle between requests too;
3. the same two against the **bare app** (below);
4. **baseline**: the load clients below with no job running — what the jobs add is the loaded
   phase's p99 over this one's (``--no-baseline`` skips it);
5. **floor**: the load clients against the bare app, no job running;
6. **load**: ``liqmap worker --replay`` runs with 5 s ingest and 10 s materialize periods during
   this block only, at CPU niceness ``--worker-nice`` (``LIQMAP_WORKER_NICE``). With ``--churn
   live`` (the default) the jobs work as they do live, only faster: the database is filled up to
   ``--live-hold-hours`` before the recording's end, and the worker's replay clock runs from
   there at ``--live-speed`` recorded seconds per wall second (30: a new 5-minute bar every 10
   s, 30 times the live rate) and stops while the worker is stopped between load blocks, so each
   ingest period fetches the bars that closed since and each materialization computes those
   steps, writes their snapshots and NOTIFYs the API. The other modes keep the replay's clock at
   the recording's end, where a period has nothing new, and "churn" every ``--churn-interval``
   seconds: ``reingest`` rewinds the ingest watermarks by a day (each period fetches and upserts
   a day of bars again), ``recompute`` also drops the engine states, so the next materialization
   recomputes the whole 4-week series, rewrites every snapshot and NOTIFYs the API, which drops
   its caches — a far heavier background than live operation, where a period adds one bar and
   the materializer computes one step.

The load clients (``--clients``) send a mix of ``heatmap`` (a random 24 h window of the last
7 days at 5 min, 500 price rows), ``liquidationLevels`` (latest, 400 buckets), ``snapshots``
pages (a random page of hourly maps) and ``longShortSplit``, spread over ``--api-processes``
``liqmap serve`` replicas (a load balancer's job), each waiting ``--think-ms`` × 0.5–1.5
between its requests (0: back to back); a load block lasts ``--duration`` / rounds seconds
after ``--warmup`` seconds that are not counted (connections opening, clients arriving).
Answers are not gzipped (loopback; ``bench_api.py`` measures compression); the load generator
uses aiohttp (ccxt's HTTP client, with a C parser) so that it takes less of the two cores than
the server.

Why rounds: the machine is a virtual one whose host lends its cores to other guests at times
(CPU time "stolen", ``/proc/stat``). Run one after the other, a burst of steal lands on one
phase — often the short idle one that every ratio is divided by. Interleaved, each round's
load is compared with the same round's idle, the figures are pooled over the rounds and the
goal is judged on the median over the rounds; a block during which the host stole more than
``--max-steal`` of the CPU time is run again (up to ``--block-retries`` times, the last try kept
whatever its steal), and the run prints each block's steal and every block it ran again.

The **floor**: ``bench/bare_app.py``, an ASGI app with no liqmap code under the same uvicorn,
loop and HTTP parser, answers each operation with a fixed body of the median size of liqmap's
answers to it (read in the prime step), measured the same way. Its figures are what this
machine, the load generator and uvicorn cost to move those bytes; liqmap's loaded p99 over the
bare app's is what liqmap's own code adds. The run also prints the serving processes' CPU time
per answered request in each phase (liqmap's and the bare app's).

An error is a non-200 answer, a transport error, or any ``errors`` in the body. The goal: zero
errors, and under load each operation's p99 within 3× its idle p99 (the median over the rounds
of the round's ratio, and pooled); the run also says whether it is within 3× of the paced idle
p99, of the baseline's (what the jobs cost, apart from what 64 clients cost), and whether the
bare app itself is within 3× of its own idle p99. The run waits for a quiet machine first
(1-minute load average below 1.0; other sessions run tests at times).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from functools import partial
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
    uncounted: int = 0  # requests of the warm-up, answered but not measured


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
            out.append(
                {
                    "query": HEATMAP,
                    "variables": {
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "lo": lo,
                        "hi": lo + 500 * 50 - 1,
                    },
                }
            )
        return out
    if op == "liquidationLevels":
        return [{"query": LEVELS, "variables": {"lo": lo, "hi": lo + 400 * 50 - 1}}]
    if op == "snapshots":  # a page of 24 hourly maps starting on a day
        days = max(1, (window.last_bar - window.first_hourly).days - 1)
        return [
            {
                "query": SNAPSHOTS,
                "variables": {"start": (window.first_hourly + timedelta(days=d)).isoformat()},
            }
            for d in range(days)
        ]
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
        stats.uncounted = sum(map(len, discarded.latencies.values()))
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


def process_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (``/proc/PID/stat``)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def cpu_ticks() -> tuple[int, int]:
    """(all CPU time, stolen time) of the machine since boot, in ticks (``/proc/stat``). On a
    virtual machine the host's other guests take cores away at times; that shows as steal, and
    lands on whatever phase is running then."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(fields), fields[7]


@dataclass
class Phase:
    """One phase of the run (say, liqmap's load) over every round: its samples pooled, each
    round's own summary, and the CPU time the host stole while it ran."""

    pooled: Stats = field(default_factory=Stats)
    rounds: list[dict[str, dict[str, float]]] = field(default_factory=list)
    seconds: float = 0.0
    ticks: int = 0
    stolen: int = 0
    stolen_by_round: list[float] = field(default_factory=list)
    rerun_steal: list[float] = field(default_factory=list)  # the steal of blocks run again
    server_cpu_s: float = 0.0  # the serving processes' CPU time during the phase
    answered: int = 0  # requests answered during the phase, warm-up included

    def add(self, stats: Stats, seconds: float | None, ticks: int, stolen: int) -> None:
        for op, values in stats.latencies.items():
            self.pooled.latencies[op].extend(values)
        for op, count in stats.errors.items():
            self.pooled.errors[op] += count
        for op, samples in stats.samples.items():
            self.pooled.samples[op].extend(samples[: 3 - len(self.pooled.samples[op])])
        self.rounds.append(summarize(stats, seconds))
        self.seconds += seconds or 0.0
        self.ticks += ticks
        self.stolen += stolen
        self.stolen_by_round.append(stolen / ticks if ticks else 0.0)
        self.answered += sum(map(len, stats.latencies.values())) + stats.uncounted

    def summary(self) -> dict[str, Any]:
        return summarize(self.pooled, self.seconds or None)

    def server_cpu_ms_per_request(self) -> float:
        """The serving processes' CPU time per answered request (in all, not only the last
        request's own: the server's event loop, its HTTP parsing and writes, its GC)."""
        return 1000 * self.server_cpu_s / self.answered if self.answered else float("nan")

    def steal(self) -> float:
        """The share of the machine's CPU time the host took while this phase ran."""
        return self.stolen / self.ticks if self.ticks else 0.0


def measured(
    phase: Phase, limits: argparse.Namespace, pids: list[int], run: Any, *args: Any
) -> None:
    """Run one block (``run(*args)`` → (Stats, seconds or None)) against the processes
    ``pids`` and add it to ``phase``. A block during which the host stole more than
    ``limits.max_steal`` of the machine's CPU time is run again, up to ``limits.block_retries``
    times (the last try is kept whatever its steal): another guest's burst is not this
    service's latency, and it would land on one phase and not the other."""
    for attempt in range(limits.block_retries + 1):
        ticks, stolen = cpu_ticks()
        served = process_cpu_s(pids)
        stats, seconds = run(*args)
        served = process_cpu_s(pids) - served
        after_ticks, after_stolen = cpu_ticks()
        ticks, stolen = after_ticks - ticks, after_stolen - stolen
        share = stolen / ticks if ticks else 0.0
        if share <= limits.max_steal or attempt == limits.block_retries:
            phase.server_cpu_s += served
            phase.add(stats, seconds, ticks, stolen)
            return
        phase.rerun_steal.append(share)


def median_round_ratios(load: Phase, reference: Phase) -> dict[str, float]:
    """Per operation, the median over the rounds of each round's p99 over the reference
    phase's p99 in the same round."""
    return {
        op: statistics.median(
            lo[op]["p99_ms"] / ref[op]["p99_ms"]
            for lo, ref in zip(load.rounds, reference.rounds, strict=True)
        )
        for op, _ in MIX
    }


def median_within_3x(load: Phase, reference: Phase) -> bool:
    """No errors, and every operation's median over the rounds of its p99 / the reference's
    p99 in the same round at most 3."""
    ratios = median_round_ratios(load, reference)
    errors = load.summary()
    return all(errors[op]["errors"] == 0 and ratios[op] <= 3 for op, _ in MIX)


@dataclass
class Target:
    """What the clients ask: liqmap's API process(es), or the bare app answering the same
    sizes (``window`` None)."""

    urls: list[str]
    window: Window | None
    pids: list[int]  # the serving processes, for their CPU time


class Worker:
    """``liqmap worker --replay`` that runs only during the load blocks. Its replay clock stops
    while it does: each start sets the clock's epoch later by the time it was stopped, so the
    recording resumes where it left off — a new bar every 10 s at 30×, no catch-up bursts."""

    def __init__(
        self, url: str, folder: Path, clock: dict[str, object], speed: float, nice: int
    ) -> None:
        self.url, self.folder, self.clock, self.speed = url, folder, dict(clock), speed
        self.nice = nice
        self.process: LiqmapProcess | None = None
        self.epoch: datetime | None = None
        self.stopped_at: datetime | None = None
        self.started_first: datetime | None = None

    def start(self) -> None:
        now = datetime.now(UTC)
        if self.epoch is None:
            self.epoch = self.started_first = now
        elif self.stopped_at is not None:
            self.epoch += now - self.stopped_at
        clock = dict(self.clock)
        if "replay_start" in clock:  # live: the clock runs; other modes hold it at the end
            clock["replay_speed"] = self.speed
            clock["replay_epoch"] = self.epoch.isoformat()
        env = liqmap_env(
            self.url,
            ingest_interval_s=5,
            materialize_interval_s=10,
            log_level="WARNING",
            worker_nice=self.nice,
            **clock,
        )
        self.process = LiqmapProcess(
            ["worker", "--replay", str(SHARED)], env, self.folder / "worker.log"
        )
        time.sleep(6)  # the worker is up and its first periodic runs have started

    def stop(self) -> None:
        if self.process is not None:
            if not self.process.alive():
                print(f"the worker died: {self.process.output()[-2000:]}", flush=True)
            self.process.stop()
            self.process = None
            self.stopped_at = datetime.now(UTC)


def run_rounds(
    args: argparse.Namespace,
    targets: dict[str, Target],
    worker: Worker | None = None,
    churner: Any = None,
) -> dict[str, Phase]:
    """``args.rounds`` rounds, each every phase in turn — so a stretch of host noise (steal)
    lands on the reference phases as much as on the load ones, and a noisy round shows in its
    own ratios instead of moving the one idle p99 that all others are divided by:

    for each target (liqmap, then the bare app): **idle** (one client, ``--idle-requests``
    per operation back to back) and **paced** idle (one client, ``--paced-requests`` per
    operation over all rounds, each followed by the load clients' think time); then the
    **baseline** (liqmap, the load clients, no job running), the **floor** load (the bare app,
    the same clients) and last liqmap's **load**, the worker running (``worker``) during it
    only. Load blocks last ``--duration`` / rounds seconds after ``--warmup`` not counted.
    Phase keys: ``"<phase>:<target>"``.
    """
    think_s = args.think_ms / 1000
    rounds = args.rounds
    paced_each = max(1, round(args.paced_requests / rounds)) if args.paced_requests else 0
    phases: dict[str, Phase] = defaultdict(Phase)

    def idle(target: Target, requests: int, seed: int, think: float) -> tuple[Stats, None]:
        return asyncio.run(idle_phase(target.urls[0], target.window, requests, seed, think)), None

    def block(target: Target, duration: float, seed: int) -> tuple[Stats, float]:
        return asyncio.run(
            load_phase(
                target.urls, target.window, args.clients, duration, think_s, seed, args.warmup
            )
        )

    liqmap, bare = targets.get("liqmap"), targets.get("bare")
    for k in range(rounds):
        seed = args.seed * 100 + k
        for name, target in targets.items():
            measured(
                phases[f"idle:{name}"],
                args,
                target.pids[:1],
                idle,
                target,
                args.idle_requests,
                seed,
                0.0,
            )
            if paced_each and think_s:
                measured(
                    phases[f"paced:{name}"],
                    args,
                    target.pids[:1],
                    idle,
                    target,
                    paced_each,
                    seed,
                    think_s,
                )
        if liqmap is not None and worker is not None and not args.no_baseline:
            measured(
                phases["baseline:liqmap"],
                args,
                liqmap.pids,
                block,
                liqmap,
                args.duration / rounds,
                seed + 1,
            )
        if bare is not None:
            measured(
                phases["load:bare"],
                args,
                bare.pids,
                block,
                bare,
                args.floor_duration / rounds,
                seed,
            )
        if liqmap is not None:
            if worker is not None:
                worker.start()
            try:
                run = churner if churner is not None else partial(block, liqmap)
                measured(
                    phases["load:liqmap"], args, liqmap.pids, run, args.duration / rounds, seed
                )
            finally:
                if worker is not None:
                    worker.stop()
        print(f"  round {k + 1}/{rounds} done", flush=True)
    return dict(phases)


class BareApi:
    """``bench/bare_app.py`` under uvicorn on a free loopback port, with the loop and HTTP
    parser ``liqmap serve`` uses, answering each operation with a body of ``sizes[op]`` bytes."""

    def __init__(self, log: Path, sizes: dict[str, int]) -> None:
        self.port = free_port()
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.bare_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "BARE_APP_SIZES": json.dumps(sizes)},
        )
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
    """The bare app alone (``floor_mix.py``): answering each operation with a body of
    ``sizes[op]`` bytes, measured as the API is, in ``args.rounds`` rounds (idle, paced idle,
    the load clients for ``args.floor_duration`` s in all), as many processes as liqmap had."""
    bares = [BareApi(folder / f"bare-{i}.log", sizes) for i in range(args.api_processes)]
    try:
        target = Target([b.url for b in bares], None, [b.proc.pid for b in bares])
        phases = run_rounds(args, {"bare": target})
    finally:
        for process in bares:
            process.stop()
    return floor_figures(phases, sizes)


def floor_figures(phases: dict[str, Phase], sizes: dict[str, int]) -> dict[str, Any]:
    paced = phases.get("paced:bare")
    load = phases["load:bare"]
    return {
        "idle": phases["idle:bare"].summary(),
        "paced": paced.summary() if paced else None,
        "load": load.summary(),
        "sizes": sizes,
        "seconds": load.seconds,
        "median_round_ratio": median_round_ratios(load, phases["idle:bare"]),
        "steal": {
            name.split(":")[0]: phase.steal()
            for name, phase in phases.items()
            if name.endswith(":bare")
        },
        "server_cpu_ms_per_request": {
            name.split(":")[0]: phase.server_cpu_ms_per_request()
            for name, phase in phases.items()
            if name.endswith(":bare")
        },
    }


def print_table(
    idle: dict[str, Any],
    paced: dict[str, Any] | None,
    base: dict[str, Any] | None,
    load: dict[str, Any],
    seconds: float,
    median_ratio: dict[str, float],
) -> None:
    header = (
        f"{'operation':<18} {'idle p50':>9} {'idle p99':>9} {'paced p99':>9} {'no-jobs p99':>11} │"
        f" {'req/s':>7} {'p50':>8} {'p99':>8} {'max':>8} {'errors':>6} {'/idle':>7}"
        f" {'/idle med':>9} {'/paced':>7} {'/no-jobs':>8}"
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
            f"{lo['errors']:>6} {lo['p99_ms'] / i['p99_ms']:>6.1f}× {median_ratio[op]:>8.1f}× "
            f"{lo['p99_ms'] / p99:>6.1f}× {lo['p99_ms'] / b99:>7.1f}×"
        )
    print(f"{'all':<18} {'':>9} {'':>9} {'':>9} {'':>11} │ {total / seconds:>7.1f}")


def print_floor(floor: dict[str, Any], load: dict[str, Any]) -> None:
    """The bare app's figures, and liqmap's loaded p99 over the bare app's (what liqmap's own
    code adds to the tail under the same load)."""
    header = (
        f"{'bare app':<18} {'bytes':>9} {'idle p99':>9} {'paced p99':>9} │ {'req/s':>7} "
        f"{'p50':>8} {'p99':>8} {'max':>8} {'errors':>6} {'/idle':>7} {'/idle med':>9} "
        f"{'/paced':>7} {'liqmap/bare':>11}"
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
            f"{lo['errors']:>6} {lo['p99_ms'] / i['p99_ms']:>6.1f}× "
            f"{floor['median_round_ratio'][op]:>8.1f}× {lo['p99_ms'] / p99:>6.1f}× "
            f"{load[op]['p99_ms'] / lo['p99_ms']:>10.1f}×"
        )


def print_rounds(phases: dict[str, Phase]) -> None:
    """Each round's p99 per phase and operation, and the steal in each: how far the rounds
    agree, and which were disturbed."""
    names = [name for name in phases if phases[name].rounds]
    print(
        f"{'round':<6} {'phase':<16} "
        + " ".join(f"{op[:12]:>12}" for op, _ in MIX)
        + f" {'steal':>6}"
    )
    for k in range(len(phases[names[0]].rounds)):
        for name in names:
            phase = phases[name]
            cells = " ".join(f"{phase.rounds[k][op]['p99_ms']:>11.1f}m" for op, _ in MIX)
            print(f"{k + 1:<6} {name:<16} {cells} {phase.stolen_by_round[k]:>5.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load in all")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--think-ms", type=float, default=0.0)
    parser.add_argument(
        "--api-processes", type=int, default=1, help="liqmap serve replicas, clients spread"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="every phase runs in each round, in turn; load phases last --duration / rounds",
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of each load block not counted"
    )
    parser.add_argument(
        "--max-steal",
        type=float,
        default=0.03,
        help="a block during which the host stole more of the CPU time than this share is "
        "run again",
    )
    parser.add_argument("--block-retries", type=int, default=2, help="at most, per block")
    parser.add_argument(
        "--idle-requests", type=int, default=500, help="per operation and round, back to back"
    )
    parser.add_argument(
        "--paced-requests",
        type=int,
        default=200,
        help="per operation over all rounds, one client waiting --think-ms between requests "
        "(0: no such phase)",
    )
    parser.add_argument(
        "--floor-duration",
        type=float,
        default=40.0,
        help="seconds of load on the bare app in all (0: no floor phase)",
    )
    parser.add_argument(
        "--churn", choices=["live", "recompute", "reingest", "none"], default="live"
    )
    parser.add_argument("--churn-interval", type=float, default=10.0)
    parser.add_argument("--live-speed", type=float, default=30.0, help="recorded s per wall s")
    parser.add_argument("--live-hold-hours", type=float, default=2.0)
    parser.add_argument("--no-worker", action="store_true", help="load without background jobs")
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=10,
        help="the worker's CPU niceness (LIQMAP_WORKER_NICE; 0: the API's priority)",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the load phase without jobs that the loaded one is compared with",
    )
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
    bares: list[BareApi] = []
    worker: Worker | None = None
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
        if args.churn == "live":
            # the 5m retention moves on with the replay clock (at most to the recording's end):
            # no heatmap variant may start where it will have dropped the bars by then
            window.recent_from += timedelta(hours=args.live_hold_hours)
        env = liqmap_env(url, log_level="WARNING")
        apis = [ApiProcess(env, folder / f"api-{i}.log") for i in range(args.api_processes)]
        for api in apis:
            api.wait_ready()

        primed = asyncio.run(prime([a.url for a in apis], window))
        sizes = {op: round(statistics.median(primed[op])) for op, _ in MIX}
        print(
            f"primed the caches: {sum(map(len, primed.values()))} distinct requests answered "
            f"once; median answer sizes {sizes}",
            flush=True,
        )
        targets = {"liqmap": Target([a.url for a in apis], window, [a.pid for a in apis])}
        if args.floor_duration:
            bares = [BareApi(folder / f"bare-{i}.log", sizes) for i in range(args.api_processes)]
            targets["bare"] = Target([b.url for b in bares], None, [b.proc.pid for b in bares])
        background: dict[str, int] = {"rewinds": 0}
        churner = None
        if not args.no_worker:
            worker = Worker(url, folder, clock, args.live_speed, args.worker_nice)
            if args.churn in ("recompute", "reingest"):

                def churner(duration: float, seed: int) -> tuple[Stats, float]:
                    async def loaded() -> tuple[Stats, float]:
                        stop = asyncio.Event()
                        task = asyncio.create_task(
                            churn(url, args.churn, args.churn_interval, stop, background)
                        )
                        try:
                            return await load_phase(
                                targets["liqmap"].urls,
                                window,
                                args.clients,
                                duration,
                                args.think_ms / 1000,
                                seed,
                                args.warmup,
                            )
                        finally:
                            stop.set()
                            await task

                    return asyncio.run(loaded())

        load_before = os.getloadavg()[0]
        gc_before = full_collections([a.url for a in apis])
        print(
            f"{args.rounds} rounds of: idle ({args.idle_requests} requests per operation one "
            f"at a time), paced idle, baseline (no jobs), the bare app's floor, load "
            f"({args.clients} clients on {args.api_processes} API process(es), think "
            f"{args.think_ms:.0f} ms, worker {'off' if args.no_worker else 'on'}, churn "
            f"{args.churn}); load average {load_before:.2f}",
            flush=True,
        )
        phases = run_rounds(args, targets, worker, churner)
        dead = [p.args for p in apis if not p.alive()]
        if dead:
            print(f"processes died during the run: {dead}", flush=True)
        load_after = os.getloadavg()[0]
        collections = gc_summary(gc_before, full_collections([a.url for a in apis]))
        idle = phases["idle:liqmap"].summary()
        paced = phases["paced:liqmap"].summary() if "paced:liqmap" in phases else None
        base = phases["baseline:liqmap"].summary() if "baseline:liqmap" in phases else None
        load_phase_ = phases["load:liqmap"]
        load, seconds = load_phase_.summary(), load_phase_.seconds
        median_ratio = median_round_ratios(load_phase_, phases["idle:liqmap"])
        if worker is not None and worker.started_first is not None:
            background.update(background_work(url, worker.started_first, window))
        floor = floor_figures(phases, sizes) if "load:bare" in phases else None
        print()
        print_table(idle, paced, base, load, seconds, median_ratio)
        print(f"\nbackground while the worker ran: {background}")
        print(
            f"load average before {load_before:.2f}, after {load_after:.2f}; CPU time stolen "
            "by the host: "
            + ", ".join(f"{name} {phase.steal():.1%}" for name, phase in phases.items())
        )
        reruns = {name: phase.rerun_steal for name, phase in phases.items() if phase.rerun_steal}
        print(
            f"blocks run again for steal above {args.max_steal:.0%}: "
            + (
                ", ".join(
                    f"{name} {len(v)} ({', '.join(f'{x:.0%}' for x in v)})"
                    for name, v in reruns.items()
                )
                or "none"
            )
        )
        print(
            "the serving processes' CPU time per answered request: "
            + ", ".join(
                f"{name} {phase.server_cpu_ms_per_request():.2f} ms"
                for name, phase in phases.items()
            )
        )
        print(
            f"full garbage collections in the API process(es) over the rounds: "
            f"{collections['full_collections']}, the longest at most "
            f"{collections['longest_at_most_s']} s"
        )
        for op, samples in load_phase_.pooled.samples.items():
            for sample in samples:
                print(f"  {op} error: {sample}")
        goal = median_within_3x(load_phase_, phases["idle:liqmap"])
        print(
            "goal (0 errors; for every operation, the median over the rounds of p99 / the "
            f"same round's idle p99 at most 3): {'met' if goal else 'NOT met'}; pooled p99 "
            f"/ pooled idle p99 ≤ 3: {'yes' if within_3x(load, idle) else 'no'}"
        )
        paced_goal = None
        if paced is not None:
            paced_goal = within_3x(load, paced)
            print(
                "pooled p99 ≤ 3× the pooled paced idle p99 (one client, the same think time): "
                f"{'met' if paced_goal else 'NOT met'}"
            )
        bare_goal = None
        if floor is not None:
            print()
            print_floor(floor, load)
            bare_goal = median_within_3x(phases["load:bare"], phases["idle:bare"])
            print(
                "the bare app itself, median round p99 ≤ 3× its idle p99 for every operation: "
                f"{'yes' if bare_goal else 'NO'}"
            )
        jobs_cost = None
        if base is not None:
            jobs_cost = within_3x(load, base)
            print(
                "with the jobs running, p99 ≤ 3× the no-jobs p99 of the same clients for "
                f"every operation: {'yes' if jobs_cost else 'NO'}"
            )
        print()
        print_rounds(phases)
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "idle": idle,
                        "paced_idle": paced,
                        "baseline": base,
                        "load": load,
                        "seconds": seconds,
                        "floor": floor,
                        "paced_goal_met": paced_goal,
                        "median_round_ratio": median_ratio,
                        "bare_goal_met": bare_goal,
                        "rounds": {
                            name: {
                                "p99_ms": [
                                    {op: r[op]["p99_ms"] for op, _ in MIX} for r in phase.rounds
                                ],
                                "steal": phase.stolen_by_round,
                            }
                            for name, phase in phases.items()
                        },
                        "steal": {name: phase.steal() for name, phase in phases.items()},
                        "rerun_steal": {name: phase.rerun_steal for name, phase in phases.items()},
                        "server_cpu_ms_per_request": {
                            name: phase.server_cpu_ms_per_request()
                            for name, phase in phases.items()
                        },
                        "gc": collections,
                        "background": background,
                        "within_3x_of_baseline": jobs_cost,
                        "clients": args.clients,
                        "think_ms": args.think_ms,
                        "duration": args.duration,
                        "rounds_count": args.rounds,
                        "churn": args.churn,
                        "worker": not args.no_worker,
                        "api_processes": args.api_processes,
                        "warmup": args.warmup,
                        "load_average": [load_before, load_after],
                        "goal_met": goal,
                    },
                    indent=2,
                )
            )
        return 0
    finally:
        if worker is not None:
            worker.stop()
        for process in apis:
            process.stop()
        for bare in bares:
            bare.stop()
        drop_database(admin, url)
        if private is not None:
            private.close()


if __name__ == "__main__":
    raise SystemExit(main())
