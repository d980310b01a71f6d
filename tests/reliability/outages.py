"""The database restarted N times under ``liqmap up --replay`` with live subscribers: the
machinery of ``bench/fault_matrix.py`` (the 5-restart run whose matrix docs/reliability.md
records) and ``tests/reliability/test_up_outages.py`` (a short version in the suite).

Everything is real and on loopback. A private PostgreSQL of this run's own (``initdb`` in a
temporary folder; the machine's shared server is never touched) holds two databases:

* ``clean``: ``liqmap up --replay ../shared/data --once`` — a clean replay, no fault;
* ``faulty``: ``liqmap up --replay ../shared/data`` (worker in its own child process, API in
  the main one) with the replay clock started ``--span-hours`` before the recording's end and
  running at ``--speed`` recorded seconds per wall second, 5-s ingest and materialize periods, so
  a new 5-minute bar closes every 300/speed s and is ingested, materialized and NOTIFYed.

Two websocket clients subscribe to ``heatmapUpdated`` (Binance and the cross-exchange total).
Then, ``--restarts`` times: wait for steady state (a new candle stored and a new column received
since the last trial), stop the server (``pg_ctl -m fast``: every session is cut), keep it down
``--down`` seconds, start it, and measure from the start until (a) a candle newer than the
newest before the stop is stored (ingest resumed), (b) each subscriber receives a column (the
subscription resumed). ``liqmap up`` must keep its PID throughout.

Finally the two databases are compared row by row up to the faulty run's newest bar: candles,
open interest, funding rates and every 5-minute heatmap snapshot (prices, bucket grid, vectors),
and each subscriber's columns must be exactly the stored snapshots after its first one: no gap,
no duplicate. Prints the fault matrix (fault, trials, survived, time to recover).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.reliability.harness import (
    REPO,
    LiqmapProcess,
    PrivatePostgres,
    free_port,
    liqmap_env,
    replay_pipeline,
    wait_until,
)

SYMBOL = "BTC/USDT:USDT"
SHARED = REPO.parent / "shared" / "data"
SUBSCRIPTION = """subscription ($exchanges: [String!]) {
  heatmapUpdated(symbol: "BTC/USDT:USDT", exchanges: $exchanges) { at price } }"""
SCOPES = {"binanceusdm": ["binanceusdm"], "all": None}


@dataclass
class Trial:
    down_s: float
    ingest_recovered_s: float | None = None
    subscribers_recovered_s: dict[str, float | None] = field(default_factory=dict)
    worker_restarts: int = 0
    survived: bool = False


@dataclass
class Report:
    trials: list[Trial]
    up_pid_kept: bool
    tables_equal: dict[str, bool]
    rows_compared: dict[str, int]
    subscribers_exact: dict[str, bool]
    columns_received: dict[str, int]
    load_average: tuple[float, float, float]
    wall_s: float

    @property
    def ok(self) -> bool:
        return (
            all(t.survived for t in self.trials)
            and self.up_pid_kept
            and all(self.tables_equal.values())
            and all(self.subscribers_exact.values())
        )

    def matrix(self) -> str:
        ingest = [t.ingest_recovered_s for t in self.trials if t.ingest_recovered_s is not None]
        subs = [s for t in self.trials for s in t.subscribers_recovered_s.values() if s is not None]
        downs = sorted({round(t.down_s) for t in self.trials})

        def span(values: list[float]) -> str:
            if not values:
                return "never"
            return f"median {statistics.median(values):.1f} s, max {max(values):.1f} s"

        survived = sum(t.survived for t in self.trials)
        resumed = sum(
            bool(t.subscribers_recovered_s)
            and all(v is not None for v in t.subscribers_recovered_s.values())
            for t in self.trials
        )
        n = len(self.trials)
        lines = [
            "| fault | trials | survived | time to recover (from the database's return) |",
            "|---|---|---|---|",
            f"| PostgreSQL stopped (`pg_ctl -m fast`) {downs} s under `liqmap up --replay`: "
            f"worker resumes ingest | {n} | {survived} | {span(ingest)} |",
            f"| same: live `heatmapUpdated` subscribers (2 per trial) get columns again | "
            f"{n} | {resumed} | {span(subs)} |",
            f"| same: data identical to a clean replay ({', '.join(self.tables_equal)}) | 1 | "
            f"{int(all(self.tables_equal.values()))} | rows compared: {self.rows_compared} |",
            f"| same: every subscriber got every column once, in order | "
            f"{len(self.subscribers_exact)} | {sum(self.subscribers_exact.values())} | "
            f"columns: {self.columns_received} |",
        ]
        return "\n".join(lines)


class Subscribers:
    """Websocket clients (graphql-transport-ws) on a thread of their own; every column received
    is kept with its arrival time."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("http", "ws") + "/graphql"
        self.columns: dict[str, list[tuple[float, str]]] = {scope: [] for scope in SCOPES}
        self.errors: list[str] = []
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def received_after(self, scope: str, at: float) -> bool:
        return any(t > at for t, _ in list(self.columns[scope]))

    async def _run(self) -> None:
        import websockets

        async with websockets.connect(self.url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            for scope, exchanges in SCOPES.items():
                payload = {"query": SUBSCRIPTION, "variables": {"exchanges": exchanges}}
                await ws.send(json.dumps({"id": scope, "type": "subscribe", "payload": payload}))
            self.ready.set()
            while not self._stop.is_set():
                try:
                    async with asyncio.timeout(0.5):
                        message = json.loads(await ws.recv())
                except TimeoutError:
                    continue
                if message.get("type") == "next" and message["payload"].get("data"):
                    column = message["payload"]["data"]["heatmapUpdated"]
                    self.columns[message["id"]].append((time.time(), column["at"]))
                elif message.get("type") in {"next", "error", "complete"}:
                    self.errors.append(json.dumps(message)[:500])


def scalar(url: str, sql: str, *params: object) -> Any:
    with psycopg.connect(url, connect_timeout=3) as conn:
        row = conn.execute(sql, params).fetchone()
        return row[0] if row else None


def rows(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, connect_timeout=10) as conn:
        return list(conn.execute(sql, params).fetchall())


COMPARED = {
    "candles": """SELECT m.exchange_id, m.symbol, c.timeframe, c.ts, c.open, c.high, c.low,
        c.close, c.volume, c.taker_buy_volume FROM candles c JOIN markets m ON m.id = c.market_id
        WHERE c.ts BETWEEN %s AND %s ORDER BY 1, 2, 3, 4""",
    "open_interest": """SELECT m.exchange_id, m.symbol, o.timeframe, o.ts, o.open_interest,
        o.open_interest_usd FROM open_interest o JOIN markets m ON m.id = o.market_id
        WHERE o.ts BETWEEN %s AND %s ORDER BY 1, 2, 3, 4""",
    "funding_rates": """SELECT m.exchange_id, m.symbol, f.ts, f.funding_rate FROM funding_rates f
        JOIN markets m ON m.id = f.market_id WHERE f.ts BETWEEN %s AND %s ORDER BY 1, 2, 3""",
    "heatmap_snapshots": """SELECT s.symbol, s.scope, h.resolution, h.ts, h.price,
        h.bucket_origin, h.bucket_size, h.long_usd, h.short_usd, h.long_total_usd,
        h.short_total_usd, h.model_version FROM heatmap_snapshots h
        JOIN heatmap_series s ON s.id = h.series_id
        WHERE h.resolution = '5m' AND h.ts BETWEEN %s AND %s ORDER BY 1, 2, 3, 4""",
}


def compare(clean: str, faulty: str) -> tuple[dict[str, bool], dict[str, int]]:
    """Every compared table, row by row, from the first bar to the faulty run's newest
    materialized bar (the clean replay went on to the recording's end)."""
    last = scalar(
        faulty,
        "SELECT max(ts) FROM heatmap_snapshots WHERE resolution = '5m'",
    )
    # 5-minute snapshots older than LIQMAP_RECENT_DAYS before the newest are pruned, and the
    # clean run's newest is later: snapshots are compared where both runs keep them
    oldest = "SELECT min(ts) FROM heatmap_snapshots WHERE resolution = '5m'"
    kept_from = max(scalar(clean, oldest), scalar(faulty, oldest))
    equal: dict[str, bool] = {}
    counts: dict[str, int] = {}
    for table, sql in COMPARED.items():
        first = kept_from if table == "heatmap_snapshots" else datetime(1970, 1, 1, tzinfo=UTC)
        a, b = rows(clean, sql, first, last), rows(faulty, sql, first, last)
        equal[table] = a == b and len(a) > 0
        counts[table] = len(b)
        if a != b:
            diff = next(
                (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                min(len(a), len(b)),
            )
            print(f"{table}: {len(a)} clean rows, {len(b)} faulty rows, first difference at {diff}")
    return equal, counts


def exact_columns(faulty: str, subs: Subscribers) -> tuple[dict[str, bool], dict[str, int]]:
    """Each subscriber's columns (their ``at``, the bar's close) are exactly the stored 5-minute
    snapshots after its first column, up to its last: in order, none missing, none twice."""
    exact: dict[str, bool] = {}
    counts: dict[str, int] = {}
    for scope, got in subs.columns.items():
        ats = [at for _, at in got]
        counts[scope] = len(ats)
        if not ats:
            exact[scope] = False
            continue
        first, last = (datetime.fromisoformat(a) - timedelta(minutes=5) for a in (ats[0], ats[-1]))
        stored = rows(
            faulty,
            "SELECT h.ts FROM heatmap_snapshots h JOIN heatmap_series s ON s.id = h.series_id "
            "WHERE s.symbol = %s AND s.scope = %s AND h.resolution = '5m' "
            "AND h.ts BETWEEN %s AND %s ORDER BY h.ts",
            SYMBOL,
            scope,
            first,
            last,
        )
        expected = [(ts + timedelta(minutes=5)).isoformat() for (ts,) in stored]
        exact[scope] = ats == expected
        if not exact[scope]:
            print(f"subscriber {scope}: {len(ats)} columns, {len(expected)} stored in its range")
    return exact, counts


def run(
    restarts: int,
    down_s: float,
    speed: float,
    span_hours: float,
    work: Path,
    shared: Path = SHARED,
    clean_url: str | None = None,
) -> Report:
    """``clean_url``: a database ``liqmap up --replay SHARED --once`` filled (default settings)
    to compare with; without it one is made on the private server first."""
    import os

    started = time.monotonic()
    with PrivatePostgres() as pg:
        for name in ("clean", "faulty"):
            with psycopg.connect(pg.url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
        faulty = pg.database_url("faulty")
        clean = clean_url or pg.database_url("clean")
        if clean_url is None:
            replay_pipeline(clean, shared, work / "clean.log")

        end = scalar(clean, "SELECT max(ts) FROM candles") + timedelta(minutes=5)
        start = end - timedelta(hours=span_hours)
        port = free_port()
        env = liqmap_env(
            faulty,
            ingest_interval_s=5,
            materialize_interval_s=5,
            replay_start=start.isoformat(),
            replay_speed=speed,
            api_cache_entries=0,
        )
        up = LiqmapProcess(
            ["up", "--replay", str(shared), "--port", str(port)], env, work / "up.log"
        )
        subs = Subscribers(f"http://127.0.0.1:{port}")
        trials: list[Trial] = []
        try:
            wait_until(
                lambda: (
                    httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200
                ),
                600,
                what="liqmap up to serve",
                explain=lambda: up.output()[-3000:],
            )
            pid = up.pid
            subs.start()
            assert subs.ready.wait(30), "subscribers did not connect"

            def newest() -> Any:
                return scalar(faulty, "SELECT max(ts) FROM candles")

            def restarts_logged() -> int:
                return up.output().count("job worker process exited")

            mark = time.time()
            for _ in range(restarts):
                before = newest()
                wait_until(
                    lambda before=before, mark=mark: (
                        newest() > before and all(subs.received_after(s, mark) for s in SCOPES)
                    ),
                    120,
                    what="steady state: a new candle and a new column for every subscriber",
                    explain=lambda: up.output()[-3000:],
                )
                exits = restarts_logged()
                pg.stop("fast")
                time.sleep(down_s)  # the outage itself
                pg.start()
                back = time.time()
                trial = Trial(down_s=down_s)
                at_stop = scalar(faulty, "SELECT max(ts) FROM candles")
                try:
                    wait_until(
                        lambda at_stop=at_stop: newest() > at_stop, 120, what="ingest to resume"
                    )
                    trial.ingest_recovered_s = round(time.time() - back, 1)
                    for scope in SCOPES:
                        wait_until(
                            lambda scope=scope, back=back: subs.received_after(scope, back),
                            120,
                            what=f"subscriber {scope} to receive a column",
                        )
                        arrived = min(t for t, _ in subs.columns[scope] if t > back)
                        trial.subscribers_recovered_s[scope] = round(arrived - back, 1)
                    trial.survived = up.alive() and up.pid == pid
                except AssertionError as exc:
                    print(f"trial {len(trials) + 1} failed: {exc}")
                    trial.subscribers_recovered_s.setdefault("binanceusdm", None)
                trial.worker_restarts = restarts_logged() - exits
                newest_after = newest()
                print(
                    f"trial {len(trials) + 1}: down {down_s:.0f} s, ingest back after "
                    f"{trial.ingest_recovered_s} s, subscribers {trial.subscribers_recovered_s}, "
                    f"worker restarts {trial.worker_restarts}, newest bar {newest_after}",
                    flush=True,
                )
                trials.append(trial)
                mark = time.time()
            # one more column after the last trial, then compare
            wait_until(
                lambda mark=mark: all(subs.received_after(s, mark) for s in SCOPES),
                120,
                what="a column after the last trial",
            )
            up_pid_kept = up.alive() and up.pid == pid
        finally:
            subs.stop()
            up.stop(timeout=30)
        tables_equal, rows_compared = compare(clean, faulty)
        subscribers_exact, received = exact_columns(faulty, subs)
        if subs.errors:
            print("subscription errors:", subs.errors[:5])
            subscribers_exact = dict.fromkeys(subscribers_exact, False)
    return Report(
        trials=trials,
        up_pid_kept=up_pid_kept,
        tables_equal=tables_equal,
        rows_compared=rows_compared,
        subscribers_exact=subscribers_exact,
        columns_received=received,
        load_average=os.getloadavg(),
        wall_s=round(time.monotonic() - started, 1),
    )
