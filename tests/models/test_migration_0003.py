"""Migration 0003: realized totals keyed per market (stream totals recomputed), and back."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from liqmap import migrations
from tests.conftest import create_database, drop_database

BAR = "2026-06-01 00:05:00+00"


@pytest.fixture
def db_at_0002(server_url: str) -> Iterator[str]:
    url = create_database(server_url, "liqmap_test_m3")
    migrations.upgrade(url, "0002")
    yield url
    drop_database(server_url, url)


def _realized(url: str) -> list[tuple]:  # type: ignore[type-arg]
    with psycopg.connect(url) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'realized_liquidations'"
            )
        ]
        symbol = "symbol" if "symbol" in columns else "NULL"
        return conn.execute(
            f"SELECT source, exchange, {symbol}, timeframe, long_usd, short_usd, events "
            "FROM realized_liquidations ORDER BY source, 3"
        ).fetchall()


def test_stream_totals_are_recomputed_per_market_and_summed_back(db_at_0002: str) -> None:
    url = db_at_0002
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO exchanges (id, name) VALUES ('bybit', 'Bybit')")
        ids = [
            conn.execute(
                "INSERT INTO markets (exchange_id, symbol, exchange_symbol, base, quote, settle, "
                "linear, contract_size) VALUES ('bybit', %s, %s, 'BTC', %s, %s, %s, 1) "
                "RETURNING id",
                params,
            ).fetchone()[0]  # type: ignore[index]
            for params in (
                ("BTC/USDT:USDT", "BTCUSDT", "USDT", "USDT", True),
                ("BTC/USD:BTC", "BTCUSD", "USD", "BTC", False),
            )
        ]
        for market, side, usd, second in (
            (ids[0], "long", 100.0, 1),
            (ids[0], "short", 7.0, 9),
            (ids[1], "long", 40.0, 3),
        ):
            conn.execute(
                "INSERT INTO liquidation_events (market_id, ts, side, price, quantity, usd_value) "
                "VALUES (%s, %s::timestamptz + make_interval(secs => %s), %s, 1, 1, %s)",
                (market, BAR, second, side, usd),
            )
        # under 0002 the two markets shared one row: the last writer (the inverse one) won
        conn.execute(
            "INSERT INTO realized_liquidations (source, exchange, base, timeframe, ts, long_usd, "
            "short_usd, events) VALUES ('stream', 'bybit', 'BTC', '5m', %s, 40, 0, 1), "
            "('coinglass', '*', 'BTC', '30m', '2026-06-01 00:00+00', 5, 6, NULL)",
            (BAR,),
        )
    migrations.upgrade(url, "0003")
    assert _realized(url) == [
        ("coinglass", "*", "*", "30m", 5.0, 6.0, None),
        ("stream", "bybit", "BTC/USD:BTC", "5m", 40.0, 0.0, 1),
        ("stream", "bybit", "BTC/USDT:USDT", "5m", 100.0, 7.0, 2),
    ]
    migrations.upgrade(url)  # the later revisions on top, then no drift from the models
    migrations.check(url)
    migrations.downgrade(url, "0002")
    assert _realized(url) == [
        ("coinglass", "*", None, "30m", 5.0, 6.0, None),
        ("stream", "bybit", None, "5m", 140.0, 7.0, 3),
    ]
