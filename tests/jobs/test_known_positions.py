"""The real-position layer: Hyperliquid known positions ingested, stored and read back.

Offline, the 34 recorded top-trader snapshots of ../shared/data/hyperliquid are stored from the
replay's Hyperliquid recording; live, a round reads accounts through ccxt ``fetch_positions``,
here answered from the shared ccxt extract's recorded ``clearinghouseState``. Expectations are
read from the shared files in the tests, sums recomputed here with plain SQL and Python.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs.app import build_app
from jobs.known_positions import (
    RECORDED_SOURCE,
    collect_known_positions,
    configured_accounts,
    parse_recorded_levels,
    read_account_liquidations,
    read_accounts_round,
    venue_adapter,
)
from jobs.known_positions import KnownPositionsReport as Report
from jobs.replay.hyperliquid_wire import RECORDED_ACCOUNT
from jobs.runtime import Runtime
from models import known_positions_store as kps

from .conftest import make_settings

LEVELS = Path("hyperliquid") / "top_trader_liq_levels_dev.jsonl"
EXTRACT = Path("ccxt_fixtures") / "hyperliquid_response_extract.json"
BTC = "BTC/USDC:USDC"
UNRECORDED = "0x" + "f" * 40  # an account the replay holds no state of
TABLES = "known_snapshots"  # the other known_* tables cascade from it


@pytest.fixture(scope="module")
def levels(shared_data: Path) -> list[dict]:  # type: ignore[type-arg]
    with (shared_data / LEVELS).open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture
async def known_db(db: AsyncEngine) -> AsyncEngine:
    async with db.begin() as conn:
        await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    return db


def _runtime(engine: AsyncEngine, shared_data: Path, **overrides: object) -> Runtime:
    settings = make_settings(
        replay_dir=shared_data,
        replay_window="venues-2026-01",
        exchanges=["hyperliquid"],
        symbols={"hyperliquid": [BTC]},
        **overrides,
    )
    return Runtime(settings=settings, engine=engine)


def _ms(stamp: str) -> int:
    return round(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def test_a_recorded_line_parses_to_its_own_numbers(levels: list[dict]) -> None:  # type: ignore[type-arg]
    line = levels[0]
    snap = parse_recorded_levels(line)
    assert snap.taken_at == _ms(line["lastUpdated"]) and snap.accounts == line["tradersCount"]
    btc = next(m for m in snap.markets if m.symbol == BTC)
    raw = line["data"]["BTC"]
    assert (btc.price, btc.long_usd, btc.short_usd, btc.positions) == (
        raw["currentPrice"],
        raw["totalLongValue"],
        raw["totalShortValue"],
        raw["positionCount"],
    )
    # the source's bins: 50 over ± 30 % of the price, so the centres step by 1.2 % of it
    centres = sorted(b.price for b in btc.bins)
    steps = {round((b - a) / btc.bin_width, 3) for a, b in itertools.pairwise(centres)}
    assert all(abs(s - round(s)) < 0.01 for s in steps)  # whole numbers of bins apart
    assert btc.bin_width == pytest.approx(0.012 * raw["currentPrice"])


async def test_the_34_recorded_snapshots_are_stored_with_the_files_sums(
    known_db: AsyncEngine,
    shared_data: Path,
    levels: list[dict],  # type: ignore[type-arg]
) -> None:
    rt = _runtime(known_db, shared_data)
    try:
        report = await collect_known_positions(rt)
        again = await collect_known_positions(rt)  # idempotent: the same rows, no duplicates
    finally:
        await rt.close()
    assert report.recorded_snapshots == again.recorded_snapshots == len(levels) == 34
    assert report.round_id is None  # no accounts listed, and a replay has no leaderboard
    async with known_db.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM known_snapshots"))).scalar()
        stored = (
            await conn.execute(
                text(
                    "SELECT s.taken_at, s.accounts_planned, b.symbol, b.side, sum(b.usd), "
                    "count(*), sum(b.usd_by_leverage[1]), sum(b.usd_by_leverage[4]) "
                    "FROM known_snapshots s JOIN known_level_bins b ON b.snapshot_id = s.id "
                    "GROUP BY s.taken_at, s.accounts_planned, b.symbol, b.side"
                )
            )
        ).all()
    assert count == 34
    by_key = {(r[0], r[2], r[3]): r for r in stored}
    for line in levels:
        at = datetime.fromtimestamp(_ms(line["lastUpdated"]) / 1000, tz=UTC)
        for coin, data in line["data"].items():
            for side, key, total in (
                ("long", "longLiquidations", "totalLongValue"),
                ("short", "shortLiquidations", "totalShortValue"),
            ):
                rows = data[key]
                if not rows:
                    assert (at, f"{coin}/USDC:USDC", side) not in by_key
                    continue
                _, traders, _, _, usd, bins, lev10, lev100 = by_key[(at, f"{coin}/USDC:USDC", side)]
                # the stored long (short) total is the file's sum of its levels, and its total
                assert usd == pytest.approx(sum(r["value"] for r in rows), rel=1e-12)
                assert usd == pytest.approx(data[total], rel=1e-9)
                assert bins == len(rows) and traders == line["tradersCount"]
                assert lev10 == pytest.approx(sum(r["10x"] for r in rows), rel=1e-12, abs=1e-9)
                assert lev100 == pytest.approx(sum(r["100x"] for r in rows), rel=1e-12, abs=1e-9)


async def test_the_replay_clock_decides_which_snapshots_exist(
    known_db: AsyncEngine,
    shared_data: Path,
    levels: list[dict],  # type: ignore[type-arg]
) -> None:
    start = datetime(2026, 1, 30, tzinfo=UTC)
    rt = _runtime(known_db, shared_data, replay_start=start)
    try:
        report = await collect_known_positions(rt)
        async with known_db.connect() as conn:
            latest = await kps.known_snapshot_at(conn, "hyperliquid", BTC)
            assert latest is not None
            levels_at = await kps.known_levels(conn, latest.snapshot_id, BTC)
            earlier = await kps.known_snapshot_at(
                conn, "hyperliquid", BTC, datetime(2026, 1, 26, 11, tzinfo=UTC)
            )
    finally:
        await rt.close()
    due = [line for line in levels if _ms(line["lastUpdated"]) <= start.timestamp() * 1000]
    assert 0 < report.recorded_snapshots == len(due) < len(levels)
    newest = max(due, key=lambda line: _ms(line["lastUpdated"]))
    raw = newest["data"]["BTC"]
    assert latest.taken_at.timestamp() * 1000 == _ms(newest["lastUpdated"])
    assert (latest.source, latest.accounts, latest.accounts_planned) == (
        RECORDED_SOURCE,
        None,  # the file does not list its accounts
        newest["tradersCount"],
    )
    assert (latest.long_usd, latest.short_usd, latest.price) == (
        raw["totalLongValue"],
        raw["totalShortValue"],
        raw["currentPrice"],
    )
    assert latest.leverage_bands == ["1-10", "11-25", "26-50", "51+"]
    assert latest.open_interest_share is None  # the venue's open interest was not recorded
    expected = sorted(
        [("long", r["price"], r["value"]) for r in raw["longLiquidations"]]
        + [("short", r["price"], r["value"]) for r in raw["shortLiquidations"]],
        key=lambda t: (t[1], t[0]),
    )
    assert [(lv.side, lv.price, lv.usd) for lv in levels_at] == expected
    # 11:00 on the 26th: the snapshot of 10:56 is the newest by then
    assert earlier is not None and earlier.taken_at == datetime(
        2026, 1, 26, 10, 56, 34, 483000, tzinfo=UTC
    )


async def test_a_live_round_stores_the_venues_liquidation_prices(
    known_db: AsyncEngine,
    shared_data: Path,
    levels: list[dict],  # type: ignore[type-arg]
    extract: dict,  # type: ignore[type-arg]
) -> None:
    state = extract["fetchPositions_isolated_with_liquidationPx"]["httpResponse"]
    (raw,) = [p["position"] for p in state["assetPositions"]]
    accounts = [f"{RECORDED_ACCOUNT.upper()}@flx", UNRECORDED]
    rt = _runtime(known_db, shared_data, known_positions_accounts=accounts)
    try:
        report = await collect_known_positions(rt)
        second = Report()
        await read_accounts_round(rt, second)  # the clock stands still: no second round
    finally:
        await rt.close()
    assert report.recorded_snapshots == len(levels)
    assert (report.accounts_read, report.accounts_failed, report.positions) == (1, 1, 1)
    assert "no recorded clearinghouseState" in report.errors[0]
    assert second.round_id is None
    symbol = "FLX-CRCL/USDC:USDC"  # ccxt's name without the flx dex's markets loaded
    async with known_db.connect() as conn:
        coverage = await kps.known_snapshot_at(conn, "hyperliquid", symbol)
        assert coverage is not None
        (level,) = await kps.known_levels(conn, coverage.snapshot_id, symbol)
        position = (
            await conn.execute(
                text(
                    "SELECT account, dex, coin, side, size, notional_usd, entry_price, leverage, "
                    "margin_mode, liquidation_price FROM known_positions"
                )
            )
        ).one()
    assert tuple(position) == (
        RECORDED_ACCOUNT,
        "flx",
        raw["coin"],
        "long",
        float(raw["szi"]),
        float(raw["positionValue"]),
        float(raw["entryPx"]),
        float(raw["leverage"]["value"]),
        "isolated",
        float(raw["liquidationPx"]),
    )
    assert (level.side, level.price, level.usd, level.leverage) == (
        "long",
        float(raw["liquidationPx"]),
        float(raw["positionValue"]),
        3.0,
    )
    assert coverage.source == "clearinghouseState" and coverage.accounts_planned == 2
    assert coverage.accounts == [f"{RECORDED_ACCOUNT}@flx", UNRECORDED]
    assert (coverage.accounts_read, coverage.accounts_failed) == (2, 1)
    assert coverage.selection == "2 listed"
    # the state's own time, 2025-11-28, not the replay clock's
    state_at = datetime.fromtimestamp(int(state["time"]) / 1000, tz=UTC)
    assert coverage.state_from == coverage.state_to == state_at
    assert (coverage.long_usd, coverage.short_usd, coverage.positions) == (
        float(raw["positionValue"]),
        0.0,
        1,
    )
    # no mark price was recorded: the price is the positions' value over their size
    assert coverage.price == pytest.approx(float(raw["positionValue"]) / float(raw["szi"]))


async def test_the_read_accounts_liquidation_fills_are_kept_apart_and_once(
    known_db: AsyncEngine,
    shared_data: Path,
    extract: dict,  # type: ignore[type-arg]
) -> None:
    """The round reads the account's own liquidation fills (ccxt fetch_my_liquidations on the
    recorded userFills) into known_liquidations, never into the market's realized
    liquidations; a later read asks only for fills after the newest stored one."""
    fills = sorted(extract["fetchMyTrades_liquidation_fills"], key=lambda f: int(f["time"]))
    rt = _runtime(known_db, shared_data, known_positions_accounts=[f"{RECORDED_ACCOUNT}@flx"])
    try:
        report = Report()
        await read_accounts_round(rt, report)
        transport = venue_adapter(rt).transport
        assert transport is not None
        before = len(transport.requests)
        again = Report()
        await read_account_liquidations(rt, RECORDED_ACCOUNT, again)
        asked = [r.params for r in transport.requests[before:]]
    finally:
        await rt.close()
    assert report.liquidation_fills == len(fills) == 2 and again.liquidation_fills == 0
    (request,) = asked
    assert request["type"] == "userFillsByTime"
    assert int(request["startTime"]) == int(fills[-1]["time"]) + 1
    async with known_db.connect() as conn:
        stored = (
            await conn.execute(
                text(
                    "SELECT venue, account, fill_id, symbol, "
                    "(extract(epoch FROM ts) * 1000)::bigint, side, price, quantity, usd_value "
                    "FROM known_liquidations ORDER BY ts"
                )
            )
        ).all()
        elsewhere = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM realized_liquidations), "
                    "(SELECT count(*) FROM liquidation_events)"
                )
            )
        ).one()
    assert [tuple(r) for r in stored] == [
        (
            "hyperliquid",
            RECORDED_ACCOUNT,
            f["tid"],
            "HYPE/USDC:USDC" if f["coin"] == "HYPE" else "FLX-CRCL/USDC:USDC",
            int(f["time"]),
            "long",  # a sell closed a long ("Close Long")
            float(f["px"]),
            float(f["sz"]),
            pytest.approx(float(f["px"]) * float(f["sz"]), rel=1e-12),
        )
        for f in fills
    ]
    assert tuple(elsewhere) == (0, 0)


async def test_a_round_cut_short_resumes_with_the_unread_accounts_only(
    known_db: AsyncEngine, shared_data: Path
) -> None:
    accounts = [f"{RECORDED_ACCOUNT}@flx", UNRECORDED]
    rt = _runtime(known_db, shared_data, known_positions_accounts=accounts)
    try:
        transport = venue_adapter(rt).transport
        assert transport is not None
        # the recorded account reads after two timeouts (retried); then the process "dies"
        transport.inject(RECORDED_ACCOUNT, "timeout", times=2)
        transport.inject(UNRECORDED, RuntimeError("killed mid-round"), times=1)
        first = Report()
        with pytest.raises(RuntimeError, match="killed"):
            await read_accounts_round(rt, first)
        async with known_db.connect() as conn:
            open_round = await kps.open_round(conn, "hyperliquid", "clearinghouseState")
            assert open_round is not None and open_round.id == first.round_id
            assert await kps.pending_accounts(conn, open_round.id) == [(UNRECORDED, "")]
        before = len(transport.requests)
        resumed = Report()
        await read_accounts_round(rt, resumed)
        asked = [
            r.params.get("user")
            for r in transport.requests[before:]
            if r.params.get("type") == "clearinghouseState"
        ]
    finally:
        await rt.close()
    assert resumed.round_id == first.round_id  # the same round, continued
    assert asked == [UNRECORDED]  # only the unread account was asked again
    assert (resumed.accounts_read, resumed.accounts_failed) == (0, 1)
    async with known_db.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM known_positions), "
                    "(SELECT count(*) FROM known_snapshots WHERE finished_at IS NULL), "
                    "(SELECT count(*) FROM known_snapshot_accounts WHERE read_at IS NULL)"
                )
            )
        ).one()
    assert tuple(rows) == (1, 0, 0)  # one position, no duplicate; the round is closed


def test_accounts_setting_and_schedule() -> None:
    assert configured_accounts(["0xAB@flx", " 0xab@flx", "0xCD", ""]) == [
        ("0xab", "flx"),
        ("0xcd", ""),
    ]
    url = "postgresql://unused@localhost/x"
    tracked = build_app(make_settings(exchanges=["hyperliquid"], symbols={}), url)
    untracked = build_app(make_settings(), url)
    key = ("liqmap.known_positions", "known_positions|hyperliquid")
    assert key in tracked.periodic_registry.periodic_tasks
    assert key not in untracked.periodic_registry.periodic_tasks


@pytest.fixture(scope="module")
def extract(shared_data: Path) -> AsyncIterator[dict]:  # type: ignore[type-arg]
    with (shared_data / EXTRACT).open() as handle:
        yield json.load(handle)
