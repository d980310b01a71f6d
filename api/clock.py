"""What "now" is to the API: the wall clock live, the data's clock in a replay.

A replay (``liqmap up --replay``, or any process with ``LIQMAP_REPLAY_DIR`` set) serves recorded
data whose newest bar lies weeks or months in the past. Measured against the wall clock every
open range ("from start until now") would reach far past the data, and every freshness figure
(``coverage.staleness``) would read millions of seconds. So in a replay "now" is the close of the
newest ingested bar: the newest candle watermark over every market (the instant before which
every candle is stored), read at most once per ``ttl`` seconds. Before anything is ingested it
is the wall clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import jobs_store

DATA_CLOCK_DATASET = "candles"
DATA_CLOCK_TTL_S = 1.0


class ApiClock:
    """The API's clock; one per process."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        *,
        replay: bool = False,
        ttl: float = DATA_CLOCK_TTL_S,
    ) -> None:
        self._sessions = sessions
        self.replay = replay and sessions is not None
        self._ttl = ttl
        self._read: tuple[float, datetime | None] | None = None  # (monotonic, data clock)

    async def now(self) -> datetime:
        """The wall clock live; the newest ingested bar's close in a replay."""
        if not self.replay:
            return datetime.now(UTC)
        if self._read is None or time.monotonic() - self._read[0] > self._ttl:
            assert self._sessions is not None
            async with self._sessions() as session:
                newest = await jobs_store.newest_watermark(session, DATA_CLOCK_DATASET)
            self._read = (time.monotonic(), newest)
        return self._read[1] or datetime.now(UTC)
