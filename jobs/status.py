"""Coverage per market and dataset: what is stored, where it has holes, how the jobs fared.

``liqmap status`` prints this. A *gap* is a run of missing bars between two stored ones; a
*stale tail* means the newest stored bar is older than it should be: the next bar closed more
than one ingest interval ago (by the exchange's clock: the recording's in replay) and is still
not stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from jobs.runtime import ConfigurationError, Runtime
from liqmap.timeframes import timeframe_ms
from models import jobs_store, market_data_store
from models.records import to_datetime, to_ms

BAR_SERIES = ("candles", "open_interest")


@dataclass(frozen=True, slots=True)
class Coverage:
    exchange: str
    symbol: str
    dataset: str
    rows: int
    first: datetime | None
    last: datetime | None
    # missing bars between stored ones: (first missing bar open, first stored bar after it)
    gaps: list[tuple[datetime, datetime]] = field(default_factory=list)
    stale_since: datetime | None = None  # first bar missing at the tail, when overdue
    last_success: datetime | None = None
    last_job: str | None = None
    last_status: str | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


def _now_ms(rt: Runtime, exchange: str) -> int:
    try:
        return rt.adapter(exchange).now_ms()  # the recording's clock in replay
    except ConfigurationError:  # an exchange no longer configured: the wall clock
        import time

        return int(time.time() * 1000)


async def coverage(rt: Runtime) -> list[Coverage]:
    timeframe = rt.settings.timeframe
    step = timeframe_ms(timeframe)
    interval_ms = rt.settings.ingest_interval_s * 1000
    out: list[Coverage] = []
    async with rt.engine.connect() as conn:
        for r in await jobs_store.coverage(conn, timeframe):
            gaps: list[tuple[datetime, datetime]] = []
            stale: datetime | None = None
            if r.dataset in BAR_SERIES and r.rows and r.last_ts is not None:
                holes = await market_data_store.find_gaps(
                    conn, r.dataset, r.market_id, timeframe, step
                )
                gaps = [(to_datetime(to_ms(a) + step), b) for a, b in holes]
                next_bar = to_ms(r.last_ts) + step
                # the next bar closes at next_bar + step (its open-interest snapshot then too)
                if _now_ms(rt, r.exchange) - (next_bar + step) > interval_ms:
                    stale = to_datetime(next_bar)
            out.append(
                Coverage(
                    r.exchange,
                    r.symbol,
                    r.dataset,
                    r.rows,
                    r.first_ts,
                    r.last_ts,
                    gaps,
                    stale,
                    r.last_success,
                    r.last_job,
                    r.last_status,
                    r.last_error,
                    r.last_error_at,
                )
            )
    return out
