"""Known positions: read real positions and their liquidation prices from Hyperliquid.

Live, a round reads the positions of a configurable set of accounts (``known_positions_accounts``
and the stats leaderboard's top ``known_positions_top`` by account value) through the adapter's
``fetch_account_positions`` (ccxt ``fetch_positions`` on ``clearinghouseState``), one account
at a time with a pause between reads (rate limit), and stores each position with the venue's
liquidation price, side, size and leverage. A round is resumable: accounts are planned when it
starts and each is marked read in the transaction that stores its positions, so a round cut
short (crash, deploy) continues with the unread ones; a round older than two intervals is closed
as partial instead. Transient errors are retried with backoff; an account that still cannot be
read is recorded with the error and the round goes on. At the end the venue's mark price and
open interest of the tracked markets are stored beside the totals. With
``known_positions_liquidations`` (default) each account's own liquidation fills since the newest
one stored are read too and kept apart (``known_liquidations``), never mixed into the market's
realized liquidations.

Offline, the replay's Hyperliquid recording carries 34 recorded snapshots of the top traders'
levels (already binned, ``hyperliquid/top_trader_liq_levels_dev.jsonl``); every one taken by the
replay clock is stored, idempotently. Accounts listed explicitly are read through the recorded
transport like a live round.

What this layer is: the positions of a sample of accounts on one venue. What it is not: the
market's positions; other venues' accounts and everyone outside the sample are absent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import ccxt.async_support as ccxt
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from jobs.exchanges.hyperliquid import HyperliquidAdapter
from jobs.runtime import Runtime
from liqmap.logs import get_logger
from models import known_positions_store as kps
from models.known_records import LevelBin, LevelMarket, LevelSnapshot

log = get_logger(__name__)

VENUE = "hyperliquid"
LIVE_SOURCE = "clearinghouseState"
RECORDED_SOURCE = "kittycapital/liquidation-heatmap"
# the recorded file's bands (its LEVERAGE_BUCKETS: 1-10, 11-25, 26-50, 51-100; above 100 is
# counted in the last), in the order of its "10x", "25x", "50x", "100x" splits
RECORDED_BANDS = ("1-10", "11-25", "26-50", "51+")
RECORDED_SPLITS = ("10x", "25x", "50x", "100x")
RECORDED_RANGE = 0.30  # bins cover currentPrice ± 30 %
RECORDED_BINS = 50


@dataclass
class KnownPositionsReport:
    recorded_snapshots: int = 0
    round_id: int | None = None
    accounts_read: int = 0
    accounts_failed: int = 0
    positions: int = 0
    liquidation_fills: int = 0  # the read accounts' own liquidation fills read this round
    errors: list[str] = field(default_factory=list)


# --- the recorded, binned snapshots -------------------------------------------------------------
def _ms_of(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def _ms(stamp: str) -> int:
    return round(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def parse_recorded_levels(line: dict[str, Any]) -> LevelSnapshot:
    """One line of the top-trader file as a snapshot (values as the file has them).

    The file's tool laid 50 bins over currentPrice ± 30 % (bin width 1.2 % of the price), put
    each position's ``|size| × entry price`` in the bin of its liquidation price (positions
    outside the range are left out of the bins and of the totals, but counted in
    ``positionCount``) and split it by leverage band.
    """
    markets = []
    for coin, data in line["data"].items():
        price = float(data["currentPrice"])
        bins = [
            LevelBin(
                side=side,
                price=float(level["price"]),
                usd=float(level["value"]),
                usd_by_leverage=tuple(float(level[k]) for k in RECORDED_SPLITS),
            )
            for side, key in (("long", "longLiquidations"), ("short", "shortLiquidations"))
            for level in data[key]
        ]
        markets.append(
            LevelMarket(
                symbol=f"{coin}/USDC:USDC",
                price=price,
                bin_width=price * 2 * RECORDED_RANGE / RECORDED_BINS,
                long_usd=float(data["totalLongValue"]),
                short_usd=float(data["totalShortValue"]),
                positions=int(data["positionCount"]),
                bins=bins,
            )
        )
    traders = int(line["tradersCount"])
    return LevelSnapshot(
        venue=VENUE,
        source=RECORDED_SOURCE,
        taken_at=_ms(line["lastUpdated"]),
        accounts=traders,
        selection=f"Hyperliquid stats leaderboard, the first {traders} rows as served "
        "(kittycapital/liquidation-heatmap); the accounts are not listed",
        leverage_bands=RECORDED_BANDS,
        markets=markets,
        meta={
            "commit": line.get("commit"),
            "commit_time": line.get("commit_time"),
            "value": "|size| x entry price of each position (the source's positionValue)",
            "bins": f"{RECORDED_BINS} over currentPrice ± {RECORDED_RANGE:.0%}; price = centre",
            "totals": "positions with a liquidation price inside the binned range",
        },
    )


def venue_adapter(rt: Runtime) -> HyperliquidAdapter:
    adapter = rt.adapter(VENUE)
    if not isinstance(adapter, HyperliquidAdapter):  # pragma: no cover - the registry's choice
        raise TypeError(f"{VENUE} adapter is {type(adapter).__name__}")
    return adapter


async def import_recorded_levels(rt: Runtime) -> int:
    """Store every recorded snapshot taken by the replay clock (idempotent); 0 live."""
    adapter = venue_adapter(rt)
    if adapter.recording is None:
        return 0
    now = adapter.now_ms()
    lines = adapter.recording.static.get("topTraderLevels", [])
    snapshots = [s for s in (parse_recorded_levels(line) for line in lines) if s.taken_at <= now]
    async with rt.engine.begin() as conn:
        for snap in snapshots:
            await kps.upsert_level_snapshot(conn, snap)
    if snapshots:
        log.info("recorded known levels stored", venue=VENUE, snapshots=len(snapshots))
    return len(snapshots)


# --- live rounds ---------------------------------------------------------------------------------
def configured_accounts(entries: list[str]) -> list[tuple[str, str]]:
    """``address`` or ``address@dex`` entries as (address, dex) pairs, lower case, in order."""
    out: list[tuple[str, str]] = []
    for entry in entries:
        address, _, dex = entry.strip().partition("@")
        pair = (address.lower(), dex.strip())
        if address and pair not in out:
            out.append(pair)
    return out


async def _accounts_to_read(rt: Runtime) -> tuple[list[tuple[str, str]], str]:
    accounts = configured_accounts(rt.settings.known_positions_accounts)
    parts = [f"{len(accounts)} listed"] if accounts else []
    top = rt.settings.known_positions_top
    if top and rt.settings.replay_dir is None:  # a replay has no recorded leaderboard
        leaders = await venue_adapter(rt).leaderboard_accounts(top)
        for address in leaders:
            if (address, "") not in accounts:
                accounts.append((address, ""))
        parts.append(f"the stats leaderboard's top {top} by account value")
    return accounts, " + ".join(parts)


def _retrying(rt: Runtime) -> AsyncRetrying:
    settings = rt.settings
    return AsyncRetrying(
        retry=retry_if_exception_type(ccxt.NetworkError),
        wait=wait_exponential(multiplier=settings.retry_initial_s, max=settings.retry_max_s)
        + wait_random(0, settings.retry_initial_s),
        stop=stop_after_attempt(settings.retry_attempts),
        reraise=True,
    )


async def _contexts(rt: Runtime) -> dict[str, kps.MarketContext]:
    """Mark price and open interest (USD) of the tracked markets, as the venue says now."""
    adapter = venue_adapter(rt)
    symbols = rt.settings.symbols_for(VENUE)
    if not symbols:
        return {}
    try:
        found = await adapter.exchange.fetch_open_interests(symbols)
    except ccxt.BaseError as exc:
        log.info("no market contexts for the known positions", venue=VENUE, error=str(exc)[:200])
        return {}
    out = {}
    for symbol, interest in (found or {}).items():
        amount = interest.get("openInterestAmount")
        mark = (interest.get("info") or {}).get("markPx")
        price = float(mark) if mark not in (None, "") else None
        usd = float(amount) * price if amount is not None and price is not None else None
        out[symbol] = kps.MarketContext(price, usd)
    return out


async def read_account_liquidations(
    rt: Runtime, account: str, report: KnownPositionsReport
) -> None:
    """Store the account's own liquidation fills since the newest one stored (all the venue
    serves the first time). Kept in ``known_liquidations``, never in the market's realized
    liquidations: the sample is not the market. A read that fails is logged and counted; the
    account's positions stay stored."""
    adapter = venue_adapter(rt)
    async with rt.engine.connect() as conn:
        last = await kps.last_account_liquidation(conn, VENUE, account)
    since = None if last is None else _ms_of(last) + 1
    try:
        async for attempt in _retrying(rt):
            with attempt:
                fills = await adapter.fetch_account_liquidations(account, since)
    except ccxt.BaseError as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        report.errors.append(reason)
        log.warning("liquidation fills not read", venue=VENUE, account=account, error=reason)
        return
    async with rt.engine.begin() as conn:
        report.liquidation_fills += await kps.write_account_liquidations(
            conn, VENUE, account, fills
        )


async def read_accounts_round(rt: Runtime, report: KnownPositionsReport) -> None:
    """Start (or resume) a round over the configured accounts and read the unread ones.

    A new round starts only when the last one started at least half an interval ago (a
    replay's clock that stands still starts one round, not one per run).
    """
    adapter = venue_adapter(rt)
    now = adapter.now_ms()
    interval_ms = rt.settings.known_positions_interval_s * 1000
    async with rt.engine.begin() as conn:
        current = await kps.open_round(conn, VENUE, LIVE_SOURCE)
        if current is not None and _ms_of(current.taken_at) < now - 2 * interval_ms:
            await kps.finish_round(conn, current.id, {}, {"partial": True})
            log.warning("a stale round closed as partial", venue=VENUE, round=current.id)
            current = None
        last = await kps.latest_round_start(conn, VENUE, LIVE_SOURCE)
    if current is None and last is not None and _ms_of(last) > now - interval_ms // 2:
        return
    if current is None:
        accounts, selection = await _accounts_to_read(rt)
        if not accounts:
            return
        async with rt.engine.begin() as conn:
            round_id = await kps.start_round(conn, VENUE, LIVE_SOURCE, now, selection, accounts)
    else:
        round_id = current.id
        log.info("resuming a round", venue=VENUE, round=round_id)
    report.round_id = round_id
    async with rt.engine.connect() as conn:
        pending = await kps.pending_accounts(conn, round_id)
    spacing = 0.0 if adapter.replay else rt.settings.known_positions_spacing_ms / 1000
    fills_read: set[str] = set()
    for index, (account, dex) in enumerate(pending):
        if index and spacing:
            await asyncio.sleep(spacing)
        try:
            async for attempt in _retrying(rt):
                with attempt:
                    read = await adapter.fetch_account_positions(account, dex)
        except ccxt.BaseError as exc:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            async with rt.engine.begin() as conn:
                await kps.fail_account(conn, round_id, account, dex, reason)
            report.accounts_failed += 1
            report.errors.append(reason)
            log.warning("account not read", venue=VENUE, account=account, error=reason)
            continue
        async with rt.engine.begin() as conn:
            report.positions += await kps.write_account(conn, round_id, read)
        report.accounts_read += 1
        if rt.settings.known_positions_liquidations and account not in fills_read:
            fills_read.add(account)
            if spacing:
                await asyncio.sleep(spacing)
            await read_account_liquidations(rt, account, report)
    contexts = await _contexts(rt)
    async with rt.engine.begin() as conn:
        await kps.finish_round(conn, round_id, contexts)
    log.info(
        "known positions read",
        venue=VENUE,
        round=round_id,
        accounts=report.accounts_read,
        failed=report.accounts_failed,
        positions=report.positions,
        liquidation_fills=report.liquidation_fills,
    )


async def collect_known_positions(rt: Runtime) -> KnownPositionsReport:
    """The job: store the recorded snapshots due by the replay clock, then run a round."""
    report = KnownPositionsReport()
    report.recorded_snapshots = await import_recorded_levels(rt)
    await read_accounts_round(rt, report)
    return report
