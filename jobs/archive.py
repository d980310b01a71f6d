"""Importer for Binance's public bulk archive (data.binance.vision) files in a local folder.

History beyond the 30-day open-interest API window comes from these files:

- klines: ``BTCUSDT-5m-2024-01-01.zip`` (daily) or ``BTCUSDT-5m-2024-01.zip`` (monthly), CSV with
  or without a header: open_time, open, high, low, close, volume, close_time, quote_volume, count,
  taker_buy_volume, taker_buy_quote_volume, ignore;
- metrics: ``BTCUSDT-metrics-2024-01-01.zip``: create_time, symbol, sum_open_interest,
  sum_open_interest_value, … at 5-minute snapshots. Up to the 2026-06-24 files ``create_time``
  is the snapshot instant (rows 00:05 … 00:00 of the next day), i.e. the *end* of the bar that
  opened one period earlier — the same stamp as the REST ``openInterestHist`` ``timestamp``;
  from the 2026-06-25 files on it is the start of that period (rows 00:00 … 23:55, snapshot
  five minutes later; binance/binance-public-data#491). Either way the value is stored at the
  open of the bar whose end it was taken at, as everywhere in liqmap.

Zipped or plain ``.csv``. Files are processed in time order, each in one transaction together
with the watermark, so an interrupted import resumes cleanly and re-importing is idempotent.
"""

from __future__ import annotations

import csv
import io
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from jobs.runtime import Runtime
from jobs.validation import BatchRejected, validate_candles, validate_open_interest
from liqmap.logs import get_logger
from liqmap.timeframes import timeframe_ms
from models import jobs_store, market_data_store, market_store
from models.market_store import MarketRow
from models.records import CandleRow, MarketInfo, OpenInterestRow, to_ms

log = get_logger(__name__)

_KLINES = re.compile(
    r"^(?P<sym>[A-Z0-9]+)-(?P<tf>\d+[mhdw])-(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(zip|csv)$"
)
_METRICS = re.compile(r"^(?P<sym>[A-Z0-9]+)-metrics-(?P<date>\d{4}-\d{2}-\d{2})\.(zip|csv)$")
_QUOTES = ("USDT", "USDC", "BUSD")


class ArchiveError(ValueError):
    """A file that cannot be imported; names the file, row and column."""


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    path: Path
    kind: str  # klines | metrics
    exchange_symbol: str
    timeframe: str | None
    period: str


@dataclass
class ArchiveReport:
    files: int = 0
    candles: int = 0
    open_interest: int = 0
    rejected: list[str] | None = None


def scan_folder(folder: Path) -> list[ArchiveFile]:
    found: list[ArchiveFile] = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        if m := _KLINES.match(path.name):
            found.append(ArchiveFile(path, "klines", m["sym"], m["tf"], m["date"]))
        elif m := _METRICS.match(path.name):
            found.append(ArchiveFile(path, "metrics", m["sym"], None, m["date"]))
    found.sort(key=lambda f: (f.kind, f.exchange_symbol, f.period))
    return found


def _read_text(path: Path) -> str:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(".csv")]
            if not names:
                raise ArchiveError(f"{path}: no .csv inside the zip")
            return archive.read(names[0]).decode()
    return path.read_text()


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(_read_text(path)))
    for line, row in enumerate(reader, start=1):
        if not row or (
            line == 1 and not row[0].strip().lstrip("-").isdigit() and "time" in row[0].lower()
        ):
            continue  # header line (newer files have one)
        yield line, row


def parse_klines(path: Path) -> list[CandleRow]:
    out: list[CandleRow] = []
    columns = ("open_time", "open", "high", "low", "close", "volume")
    for line, row in _rows(path):
        try:
            values = [float(row[i]) for i in range(5)]
            volume = float(row[5]) if len(row) > 5 and row[5] != "" else None
            taker = float(row[9]) if len(row) > 9 and row[9] != "" else None
        except (ValueError, IndexError) as exc:
            bad = next(
                (c for i, c in enumerate(columns) if i >= len(row) or not _is_number(row[i])),
                "taker_buy_volume",
            )
            raise ArchiveError(f"{path}: row {line}, column {bad}: {exc}") from None
        ts = int(values[0])
        if ts > 10**14:  # 2025+ archives use microseconds
            ts //= 1000
        out.append(CandleRow(ts, values[1], values[2], values[3], values[4], volume, taker))
    return out


METRICS_PERIOD_MS = 300_000  # the archive's open-interest snapshots are 5 minutes apart
# from this file date on, create_time labels the start of the period, not the snapshot instant
METRICS_START_LABELS_FROM = date(2026, 6, 25)


def metrics_stamp_offset_ms(period: str) -> int:
    """What to add to a metrics file's ``create_time`` to get its snapshot instant."""
    day = date.fromisoformat(period[:10])
    return METRICS_PERIOD_MS if day >= METRICS_START_LABELS_FROM else 0


def parse_metrics(path: Path, step_ms: int, period: str) -> list[OpenInterestRow]:
    """Open-interest rows at bar open (the snapshot closing that bar); ``period`` = file date."""
    offset = metrics_stamp_offset_ms(period)
    out: list[OpenInterestRow] = []
    for line, row in _rows(path):
        try:
            when = datetime.strptime(row[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except (ValueError, IndexError):
            raise ArchiveError(f"{path}: row {line}, column create_time: {row[:1]!r}") from None
        try:
            amount = float(row[2])
            value = float(row[3])
        except (ValueError, IndexError):
            raise ArchiveError(
                f"{path}: row {line}, column sum_open_interest/sum_open_interest_value"
            ) from None
        snapshot_ms = to_ms(when) + offset
        if snapshot_ms % step_ms:
            continue  # metrics granularity varies; keep only snapshots on the bar grid
        out.append(OpenInterestRow(snapshot_ms - step_ms, amount, value))
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def market_from_exchange_symbol(exchange: str, exchange_symbol: str) -> MarketInfo:
    """A USDⓈ-M perpetual's market record from its id (BTCUSDT → BTC/USDT:USDT)."""
    for quote in _QUOTES:
        if exchange_symbol.endswith(quote) and len(exchange_symbol) > len(quote):
            base = exchange_symbol[: -len(quote)]
            return MarketInfo(
                exchange=exchange,
                symbol=f"{base}/{quote}:{quote}",
                exchange_symbol=exchange_symbol,
                base=base,
                quote=quote,
                settle=quote,
                linear=True,
                contract_size=1.0,
            )
    raise ArchiveError(f"cannot map archive symbol {exchange_symbol!r} to a USDⓈ-M market")


@dataclass
class _ImportRun:
    """One job run per (market, dataset) of an import: rows, rejected files, watermark."""

    run_id: int
    rows: int = 0
    rejected: list[str] = field(default_factory=list)


async def import_archive_folder(
    rt: Runtime,
    folder: Path,
    *,
    exchange: str = "binanceusdm",
    progress: Callable[[int, int], None] | None = None,
) -> ArchiveReport:
    """Import every archive file of ``folder``, each file in one transaction.

    The ingest watermark (where the API ingest resumes) only moves *contiguously*: when the
    stored bars now run without a hole from the current watermark on, it moves to the first
    missing bar; an import that leaves a hole after the watermark does not move it, so the API
    ingest still fills that hole. Without a watermark (nothing ingested yet) it stays unset.
    Each (market, dataset) of the import is recorded as one ``import`` job run.
    """
    files = scan_folder(folder)
    if not files:
        raise ArchiveError(f"{folder}: no Binance archive files (SYMBOL-5m-DATE.zip, …-metrics-…)")
    report = ArchiveReport(rejected=[])
    timeframe = rt.settings.timeframe
    step = timeframe_ms(timeframe)
    now = int(time.time() * 1000)
    markets: dict[str, MarketRow] = {}
    runs: dict[tuple[int, str], _ImportRun] = {}
    for done, item in enumerate(files, start=1):
        if item.exchange_symbol not in markets:
            info = market_from_exchange_symbol(exchange, item.exchange_symbol)
            async with rt.engine.connect() as conn:
                ref = await market_store.market(conn, exchange, info.symbol)
            if ref is None:
                async with rt.engine.begin() as conn:
                    ref = (await market_store.upsert_markets(conn, [info]))[0]
            markets[item.exchange_symbol] = ref
        market = markets[item.exchange_symbol]
        if item.kind == "klines" and item.timeframe != timeframe:
            continue
        dataset = "candles" if item.kind == "klines" else "open_interest"
        run = runs.get((market.id, dataset))
        if run is None:
            async with rt.engine.connect() as conn:
                watermark = await jobs_store.watermark(conn, market.id, dataset)
            run_id = await jobs_store.start_job_run(
                rt.engine, "import", exchange, market.symbol, dataset, watermark
            )
            run = runs[(market.id, dataset)] = _ImportRun(run_id)
        try:
            candles: list[CandleRow] = []
            interest: list[OpenInterestRow] = []
            if dataset == "candles":
                candles = parse_klines(item.path)
                validate_candles(candles, step, now)
            else:
                interest = parse_metrics(item.path, step, item.period)
                validate_open_interest(interest, step, now)
            stamps = [r.timestamp for r in candles] or [r.timestamp for r in interest]
            await market_data_store.prepare_partitions(rt.engine, dataset, stamps)
            async with rt.engine.begin() as conn:
                written = await market_data_store.write_candles(conn, market.id, timeframe, candles)
                report.candles += written
                run.rows += written
                written = await market_data_store.write_open_interest(
                    conn, market.id, timeframe, interest
                )
                report.open_interest += written
                run.rows += written
                await jobs_store.advance_watermark_contiguously(
                    conn, market.id, dataset, timeframe, step
                )
        except (ArchiveError, BatchRejected) as exc:
            log.error(
                "archive file rejected; nothing of it written", file=str(item.path), reason=str(exc)
            )
            assert report.rejected is not None
            report.rejected.append(f"{item.path.name}: {exc}")
            run.rejected.append(f"{item.path.name}: {exc}")
        else:
            report.files += 1
        if progress is not None:
            progress(done, len(files))
    for (market_id, dataset), run in runs.items():
        async with rt.engine.connect() as conn:
            watermark = await jobs_store.watermark(conn, market_id, dataset)
        error = None
        if run.rejected:
            more = f" (+{len(run.rejected) - 3} more)" if len(run.rejected) > 3 else ""
            error = f"batch rejected: {'; '.join(run.rejected[:3])}{more}"
        await jobs_store.finish_job_run(
            rt.engine,
            run.run_id,
            "rejected" if run.rejected else "succeeded",
            run.rows,
            watermark,
            error,
        )
    return report
