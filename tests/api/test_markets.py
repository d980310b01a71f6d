"""exchanges and markets(exchange): per-dataset coverage checked against what the jobs stored and
recorded in job_runs; DataLoaders keep the number of SQL statements flat (no N+1)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from liqmap.database import DatabaseTarget, create_engine
from tests.api.conftest import GraphQLClient, build_app
from tests.api.pipeline import (
    DATASETS,
    ETH,
    MID_WINDOW,
    SYMBOL,
    WITHOUT_OI,
    Stored,
    read_venue_bars,
)
from tests.api.settings import jobs_settings
from tests.conftest import create_database, drop_database

MARKETS = """query ($exchange: String) {
  markets(exchange: $exchange) {
    exchange symbol exchangeSymbol base quote settle linear contractSize active
    coverage { dataset firstTs lastTs lastSuccess lastStatus lastError unavailableReason }
  }
}"""

EXTENT_SQL = {
    "candles": "SELECT min(ts), max(ts) FROM candles WHERE market_id = %s",
    "open_interest": "SELECT min(ts), max(ts) FROM open_interest WHERE market_id = %s",
    "funding": "SELECT min(ts), max(ts) FROM funding_rates WHERE market_id = %s",
    "tiers": "SELECT min(valid_from), max(valid_from) FROM margin_tiers WHERE market_id = %s",
}


def when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def expected_coverage(stored: Stored, exchange: str, symbol: str) -> list[dict[str, Any]]:
    """Per dataset, from the stored rows and the job runs the ingest recorded."""
    market = stored.market_id(exchange, symbol)
    out = []
    for dataset in DATASETS:
        first, last = stored.one(EXTENT_SQL[dataset], (market,))
        runs = stored.rows(
            "SELECT status, error, finished_at FROM job_runs WHERE exchange = %s AND symbol = %s "
            "AND dataset = %s ORDER BY started_at",
            (exchange, symbol, dataset),
        )
        succeeded = [finished for status, _, finished in runs if status == "succeeded"]
        out.append(
            {
                "dataset": dataset,
                "firstTs": first,
                "lastTs": last,
                "lastSuccess": max(succeeded) if succeeded else None,
                "lastStatus": runs[-1][0] if runs else None,
                "lastError": runs[-1][1] if runs else None,
                "unavailableReason": runs[-1][1] if runs and runs[-1][0] == "unavailable" else None,
            }
        )
    return out


async def test_markets_report_coverage_per_dataset(gql: GraphQLClient, stored: Stored) -> None:
    markets = (await gql.data(MARKETS, exchange="binanceusdm"))["markets"]
    assert [(m["exchange"], m["symbol"]) for m in markets] == [
        ("binanceusdm", SYMBOL),
        ("binanceusdm", ETH),
    ]
    for market in markets:
        row = stored.one(
            "SELECT exchange_symbol, base, quote, settle, linear, contract_size, active "
            "FROM markets WHERE exchange_id = %s AND symbol = %s",
            (market["exchange"], market["symbol"]),
        )
        assert (
            market["exchangeSymbol"],
            market["base"],
            market["quote"],
            market["settle"],
            market["linear"],
            market["contractSize"],
            market["active"],
        ) == tuple(row)
        got = [
            {k: when(v) if k in {"firstTs", "lastTs", "lastSuccess"} else v for k, v in c.items()}
            for c in market["coverage"]
        ]
        assert got == expected_coverage(stored, market["exchange"], market["symbol"])

    btc, eth = ({c["dataset"]: c for c in m["coverage"]} for m in markets)
    # what the ingest of the recorded Binance window stored: every bar but the last, partial one
    assert when(btc["candles"]["firstTs"]) == stored.bars.ts[0]
    assert when(btc["candles"]["lastTs"]) == stored.bars.ts[-2]
    assert all(c["lastStatus"] == "succeeded" and c["lastError"] is None for c in btc.values())
    assert all(c["lastSuccess"] is not None for c in btc.values())
    assert all(c["unavailableReason"] is None for c in btc.values())
    # ETH: the January file's candles and funding, no open interest (unavailable, with why)
    eth_bars = read_venue_bars(stored.shared_data, "binanceusdm", ETH)
    assert when(eth["candles"]["firstTs"]) == eth_bars.ts[0]
    # every row: the May window's later clock closed the January file's last bar too
    assert when(eth["candles"]["lastTs"]) == eth_bars.ts[-1]
    assert eth["funding"]["lastStatus"] == "succeeded" and eth["funding"]["firstTs"] is not None
    oi = eth["open_interest"]
    assert (oi["firstTs"], oi["lastTs"], oi["lastSuccess"]) == (None, None, None)
    assert oi["lastStatus"] == "unavailable"
    assert (
        oi["unavailableReason"]
        == oi["lastError"]
        == stored.unavailable("binanceusdm", ETH)["open_interest"]
    )
    assert "no open_interest of ETH/USDT:USDT was recorded" in oi["unavailableReason"]
    assert eth["tiers"]["lastStatus"] == "succeeded" and eth["tiers"]["firstTs"] is not None

    # Bybit and OKX: their own January candles and funding; open interest and tiers unavailable
    for exchange in WITHOUT_OI:
        (market,) = (await gql.data(MARKETS, exchange=exchange))["markets"]
        coverage = {c["dataset"]: c for c in market["coverage"]}
        got = [
            {k: when(v) if k in {"firstTs", "lastTs", "lastSuccess"} else v for k, v in c.items()}
            for c in market["coverage"]
        ]
        assert got == expected_coverage(stored, exchange, SYMBOL)
        assert when(coverage["candles"]["firstTs"]) == datetime(2026, 1, 1, tzinfo=UTC)
        assert coverage["candles"]["lastStatus"] == coverage["funding"]["lastStatus"] == "succeeded"
        for dataset in ("open_interest", "tiers"):
            c = coverage[dataset]
            assert (c["firstTs"], c["lastSuccess"], c["lastStatus"]) == (None, None, "unavailable")
            assert c["unavailableReason"] == stored.unavailable(exchange)[dataset]
            assert f"{exchange} replay: no {dataset} of {SYMBOL} was recorded" in c["lastError"]
    bybit_bars = read_venue_bars(stored.shared_data, "bybit", SYMBOL)
    (bybit,) = (await gql.data(MARKETS, exchange="bybit"))["markets"]
    bybit_candles = next(c for c in bybit["coverage"] if c["dataset"] == "candles")
    assert when(bybit_candles["lastTs"]) == bybit_bars.ts[-1]  # the file's last row

    everything = (await gql.data(MARKETS))["markets"]
    assert [(m["exchange"], m["symbol"]) for m in everything] == sorted(
        stored.rows("SELECT exchange_id, symbol FROM markets")
    )


async def test_exchanges_list_their_markets(gql: GraphQLClient, stored: Stored) -> None:
    data = await gql.data("{ exchanges { id name markets { symbol } } }")
    expected = stored.rows("SELECT id, name FROM exchanges ORDER BY id")
    assert [(e["id"], e["name"]) for e in data["exchanges"]] == [tuple(r) for r in expected]
    for exchange in data["exchanges"]:
        symbols = stored.rows(
            "SELECT symbol FROM markets WHERE exchange_id = %s ORDER BY symbol", (exchange["id"],)
        )
        assert [m["symbol"] for m in exchange["markets"]] == [s for (s,) in symbols]


async def test_unknown_exchange_names_close_matches(gql: GraphQLClient, stored: Stored) -> None:
    body = await gql(MARKETS, exchange="bybt")
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert "bybit" in error["message"] and "bybit" in error["extensions"]["suggestions"]


# --- N+1 --------------------------------------------------------------------------------------
@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def statements_for(
    engine: AsyncEngine, url: str, query: str, variables: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    app = build_app(engine, url)  # a fresh app: nothing answered from its caches
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            with count_statements(engine) as statements:
                response = await client.post(
                    "/graphql", json={"query": query, "variables": variables or {}}
                )
        body = response.json()
        assert "errors" not in body, body
        return len(statements), body["data"]
    finally:
        await app.state.hub.close()


RECORDED_MARKETS = {  # every perpetual the replay recordings list (instrument specs)
    "binanceusdm": [SYMBOL, ETH],
    "bybit": ["BTC/USD:BTC", SYMBOL, ETH],
    "okx": ["BTC/USD:BTC", SYMBOL, ETH],
}


@pytest.fixture(scope="module")
async def catalogue(server_url: str, shared_data: Path) -> AsyncIterator[tuple[str, Any]]:
    """A database of its own, where the real jobs sync markets (and fetch their tier tables)."""
    from jobs.ingest import ingest_dataset
    from jobs.pipeline import open_runtime
    from liqmap import migrations

    url = create_database(server_url, "liqmap_test_api_catalogue")
    migrations.upgrade(url)
    settings = jobs_settings(
        shared_data, exchanges=list(RECORDED_MARKETS), symbols=RECORDED_MARKETS
    )
    rt = open_runtime(settings, DatabaseTarget(url, embedded=False))

    async def sync(exchange: str, symbols: list[str]) -> None:
        await rt.sync_markets(exchange, symbols)
        for symbol in symbols:
            await ingest_dataset(rt, exchange, symbol, "tiers")  # succeeded or failed: a run

    engine = create_engine(url, pool_size=5)
    try:
        yield url, (engine, sync)
    finally:
        await rt.close()
        await rt.engine.dispose()
        await engine.dispose()
        drop_database(server_url, url)


CATALOGUE = """{
  exchanges { id markets { symbol coverage { dataset lastTs lastStatus lastError } } }
  markets { symbol coverage { dataset firstTs lastSuccess } }
}"""


async def test_market_coverage_takes_the_same_statements_for_one_or_many_markets(
    catalogue: tuple[str, Any],
) -> None:
    url, (engine, sync) = catalogue
    await sync("binanceusdm", [SYMBOL])
    few, data = await statements_for(engine, url, CATALOGUE)
    assert len(data["markets"]) == 1
    for exchange, symbols in RECORDED_MARKETS.items():
        await sync(exchange, symbols)
    many, data = await statements_for(engine, url, CATALOGUE)
    count = sum(len(s) for s in RECORDED_MARKETS.values())
    assert len(data["markets"]) == count == 8
    assert sum(len(e["markets"]) for e in data["exchanges"]) == count
    assert len(data["exchanges"]) == 3
    assert all(len(m["coverage"]) == 4 for m in data["markets"])
    tiers = [
        c
        for e in data["exchanges"]
        for m in e["markets"]
        for c in m["coverage"]
        if c["dataset"] == "tiers"
    ]
    assert len(tiers) == count and all(c["lastStatus"] for c in tiers)
    assert many == few, (few, many)


SNAPSHOT_NODES = """query ($first: Int!, $start: DateTime!) {
  snapshots(symbol: "BTC/USDT:USDT", start: $start, first: $first) {
    edges { node { at totalLongUsd model { version assumptions }
                   coverage { exchanges lastBar missingDatasets } } } } }"""


async def test_model_and_coverage_of_many_maps_take_the_same_statements(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored
) -> None:
    start = MID_WINDOW.isoformat()
    counts = {}
    for first in (2, 40):
        counts[first], data = await statements_for(
            api_engine, api_database_url, SNAPSHOT_NODES, {"first": first, "start": start}
        )
        nodes = [e["node"] for e in data["snapshots"]["edges"]]
        assert len(nodes) == first
        assert {n["model"]["version"] for n in nodes} == {
            v for v, _ in stored.model_states().values()
        }
        missing = stored.missing_datasets(["binanceusdm", *WITHOUT_OI])
        assert all(n["coverage"]["missingDatasets"] == missing for n in nodes)
        assert all(n["coverage"]["exchanges"] == ["binanceusdm"] for n in nodes)
    assert counts[2] == counts[40], counts
