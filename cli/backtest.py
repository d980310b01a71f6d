"""``liqmap backtest``: score the model walk-forward against realized liquidations from CSV files.

    liqmap backtest --candles C.csv --open-interest OI.csv --liquidations L.csv \\
        [--predictions OUT.csv] [--json] [--warmup 48] [--params PARAMS.json]

C.csv: ``timestamp`` (epoch ms, bar open), ``open``, ``high``, ``low``, ``close``, optional
``volume``, ``taker_buy_volume``, ``quote_volume`` (for ``entry_price: vwap``; empty cells mean
unknown). OI.csv: ``timestamp``, ``open_interest_usd`` (at bar end).
L.csv: ``timestamp``, ``long_usd``, ``short_usd`` (realized during the bar). All three must list
the same bars in increasing order; any bar length, gaps allowed. Bad input exits with code 2,
naming the file, row and column, and writes nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

EXIT_INPUT = 2
DEFAULT_TIER_SYMBOL = "BTC/USDT:USDT"


class InputError(Exception):
    """Bad input file: the message names the file, row (1 = header) and column."""

    def __init__(self, path: Path | str, row: int | None, column: str | None, message: str):
        where = f"{path}"
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Table:
    path: Path
    timestamp: npt.NDArray[np.int64]
    columns: dict[str, npt.NDArray[np.float64]]
    file_row: npt.NDArray[np.int64]  # row in the file of each data row (header = 1)


def read_table(
    path: Path,
    required: Sequence[str],
    optional: Sequence[str] = (),
    *,
    positive: Sequence[str] = (),
    non_negative: Sequence[str] = (),
) -> Table:
    """Read a CSV with an integer ``timestamp`` column and float columns, validating as it goes.

    Timestamps must be strictly increasing; every listed value must be a finite number, those in
    ``positive`` > 0 and those in ``non_negative`` ≥ 0. A cell of an *optional* column may be
    empty (the value is unknown for that bar: NaN). Extra columns are ignored. A UTF-8 byte-order
    mark (spreadsheet exports) is accepted.

    Well-formed files are parsed by pyarrow and checked with numpy; anything else (a bad cell,
    blank lines, ragged rows) goes through the row-by-row reader, which names the file, row and
    column of the first problem. Both accept and reject the same files.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, None, None, f"cannot read file ({exc.strerror})") from None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass  # the careful reader says where
    else:
        table = _read_fast(path, data, required, optional, positive, non_negative)
        if table is not None:
            return table
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(path, None, None, f"cannot read file ({exc.strerror})") from None
    try:
        with handle:
            return _read_rows(path, handle, required, optional, positive, non_negative)
    except UnicodeDecodeError as exc:
        raise InputError(
            path, None, None, f"not a UTF-8 text file (byte {exc.start}: {exc.reason})"
        ) from None


def _column(column: Any, dtype: type[np.generic]) -> Any:
    """A pyarrow int64/float64 column as a numpy array, nulls as NaN (floats only).

    Straight from the Arrow buffers: pyarrow's own ``to_numpy`` imports pandas, which costs a
    short command more time than reading its files.
    """
    arr = column.combine_chunks()
    size = np.dtype(dtype).itemsize
    values = np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * size)
    values = values.copy()
    if arr.null_count:
        bits = np.unpackbits(np.frombuffer(arr.buffers()[0], dtype=np.uint8), bitorder="little")
        values[~bits[arr.offset : arr.offset + len(arr)].astype(bool)] = np.nan
    return values


def _read_fast(
    path: Path,
    data: bytes,
    required: Sequence[str],
    optional: Sequence[str],
    positive: Sequence[str],
    non_negative: Sequence[str],
) -> Table | None:
    """pyarrow + numpy for a well-formed file; ``None`` when the careful reader must look."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    first_end = data.find(b"\n")
    header_line = data if first_end < 0 else data[:first_end]
    body = b"" if first_end < 0 else data[first_end + 1 :]
    # blank lines shift file rows; quotes may hide anything: leave those to the careful reader
    if not body.strip() or b'"' in data or b"\n\n" in body or b"\n\r\n" in body:
        return None
    if body.startswith((b"\n", b"\r\n")):
        return None
    names = [h.strip() for h in next(csv.reader([header_line.decode("utf-8")]), [])]
    if len(set(names)) != len(names) or not all(names):
        return None
    wanted = [c for c in (*required, *optional) if c in names]
    if "timestamp" not in names or any(c not in names for c in required):
        return None
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {"timestamp": pa.int64(), **{c: pa.float64() for c in wanted}}
    try:
        table = pacsv.read_csv(
            pa.BufferReader(body),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=["timestamp", *wanted],
                null_values=[""],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        return None
    if table.num_rows == 0 or table.column("timestamp").null_count:
        return None
    stamps = _column(table.column("timestamp"), np.int64)
    if len(stamps) > 1 and not np.all(stamps[1:] > stamps[:-1]):
        return None
    columns: dict[str, npt.NDArray[np.float64]] = {}
    for name in wanted:
        col = table.column(name)
        if col.null_count and name not in optional:
            return None
        values = _column(col, np.float64)
        unknown = np.isnan(values)
        if int(unknown.sum()) != col.null_count:  # a written NaN, not an empty cell
            return None
        known = values[~unknown] if col.null_count else values
        if not np.all(np.isfinite(known)):
            return None
        if name in positive and not np.all(known > 0):
            return None
        if name in non_negative and not np.all(known >= 0):
            return None
        columns[name] = values
    return Table(
        path,
        np.ascontiguousarray(stamps, dtype=np.int64),
        columns,
        np.arange(2, len(stamps) + 2, dtype=np.int64),
    )


def _read_rows(
    path: Path,
    handle: Any,
    required: Sequence[str],
    optional: Sequence[str],
    positive: Sequence[str],
    non_negative: Sequence[str],
) -> Table:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise InputError(path, None, None, "file is empty (no header row)")
    names = [h.strip() for h in header]
    index = {name: i for i, name in enumerate(names)}
    for column in ("timestamp", *required):
        if column not in index:
            raise InputError(path, 1, column, "required column is missing")
    wanted = [c for c in (*required, *optional) if c in index]
    stamps: list[int] = []
    file_rows: list[int] = []
    values: dict[str, list[float]] = {c: [] for c in wanted}
    previous: int | None = None
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < len(names):
            row = row + [""] * (len(names) - len(row))
        raw_ts = row[index["timestamp"]].strip()
        try:
            ts = int(raw_ts)
        except ValueError:
            try:
                as_float = float(raw_ts)
            except ValueError:
                as_float = math.nan
            if not (math.isfinite(as_float) and as_float == int(as_float)):
                raise InputError(
                    path, line_no, "timestamp", f"not an integer epoch-ms value: {raw_ts!r}"
                ) from None
            ts = int(as_float)
        if previous is not None and ts <= previous:
            what = "duplicate" if ts == previous else "out of order (timestamps must increase)"
            raise InputError(path, line_no, "timestamp", f"{what}: {ts} after {previous}")
        previous = ts
        stamps.append(ts)
        file_rows.append(line_no)
        for column in wanted:
            raw = row[index[column]].strip()
            if not raw and column in optional:
                values[column].append(math.nan)
                continue
            try:
                value = float(raw)
            except ValueError:
                raise InputError(path, line_no, column, f"not a number: {raw!r}") from None
            if not math.isfinite(value):
                raise InputError(path, line_no, column, f"not a finite number: {raw!r}")
            if column in positive and value <= 0:
                raise InputError(path, line_no, column, f"must be positive, got {raw}")
            if column in non_negative and value < 0:
                raise InputError(path, line_no, column, f"must not be negative, got {raw}")
            values[column].append(value)
    if not stamps:
        raise InputError(path, None, None, "file has a header but no data rows")
    return Table(
        path,
        np.asarray(stamps, dtype=np.int64),
        {c: np.asarray(v, dtype=np.float64) for c, v in values.items()},
        np.asarray(file_rows, dtype=np.int64),
    )


def _row_of(table: Table, i: int) -> int:
    """File row of the ``i``-th data row (header is row 1)."""
    return int(table.file_row[i])


def check_same_bars(reference: Table, other: Table) -> None:
    """Both tables must list exactly the same timestamps."""
    n = min(len(reference.timestamp), len(other.timestamp))
    diff = np.flatnonzero(reference.timestamp[:n] != other.timestamp[:n])
    if len(diff):
        i = int(diff[0])
        raise InputError(
            other.path,
            _row_of(other, i),
            "timestamp",
            f"{int(other.timestamp[i])} does not match {reference.path} row "
            f"{_row_of(reference, i)} ({int(reference.timestamp[i])})",
        )
    if len(other.timestamp) != len(reference.timestamp):
        longer, shorter = (other, reference) if len(other.timestamp) > n else (reference, other)
        raise InputError(
            longer.path,
            _row_of(longer, n),
            "timestamp",
            f"bar {int(longer.timestamp[n])} has no matching row in {shorter.path} "
            f"({len(shorter.timestamp)} data rows there, {len(longer.timestamp)} here)",
        )


@dataclass(frozen=True)
class BacktestInput:
    candles: Table
    open_interest: Table
    liquidations: Table


def read_candles(path: Path) -> Table:
    table = read_table(
        path,
        ["open", "high", "low", "close"],
        ["volume", "taker_buy_volume", "quote_volume"],
        positive=["open", "high", "low", "close"],
        non_negative=["volume", "taker_buy_volume", "quote_volume"],
    )
    bad = np.flatnonzero(table.columns["high"] < table.columns["low"])
    if len(bad):
        raise InputError(path, _row_of(table, int(bad[0])), "high", "high is below low")
    return table


def read_inputs(candles: Path, open_interest: Path, liquidations: Path) -> BacktestInput:
    c = read_candles(candles)
    oi = read_table(open_interest, ["open_interest_usd"], non_negative=["open_interest_usd"])
    sides = ["long_usd", "short_usd"]
    liq = read_table(liquidations, sides, non_negative=sides)
    check_same_bars(c, oi)
    check_same_bars(c, liq)
    return BacktestInput(c, oi, liq)


def bars_from(inputs: BacktestInput) -> Any:
    from engine.model import Bars

    c = inputs.candles.columns
    return Bars(
        timestamp=inputs.candles.timestamp,
        open=c["open"],
        high=c["high"],
        low=c["low"],
        close=c["close"],
        open_interest_usd=inputs.open_interest.columns["open_interest_usd"],
        volume=c.get("volume"),
        taker_buy_volume=c.get("taker_buy_volume"),
        quote_volume=c.get("quote_volume"),
    )


def load_params(path: str | None) -> Any:
    from engine.model import ModelParams

    if path is None:
        return ModelParams.default()
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, None, None, f"cannot read parameters: {exc}") from None
    try:
        return ModelParams.from_dict(data.get("params", data))
    except (TypeError, ValueError) as exc:
        raise InputError(path, None, None, f"invalid parameters: {exc}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candles", required=True, type=Path, help="C.csv (bar OHLC)")
    parser.add_argument(
        "--open-interest", required=True, type=Path, help="OI.csv (open interest at bar end)"
    )
    parser.add_argument(
        "--liquidations", required=True, type=Path, help="L.csv (realized, used only to score)"
    )
    parser.add_argument("--predictions", type=Path, help="write per-bar predictions to this CSV")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.add_argument(
        "--warmup", type=int, default=48, help="bars left out of the scores (default 48)"
    )
    parser.add_argument(
        "--score-from",
        metavar="TIME",
        help="score only bars from this time on (ISO-8601 or epoch ms); earlier bars still run "
        "the model, as warm-up: a held-out period after a calibration split",
    )
    parser.add_argument("--params", help="model parameters JSON (default: shipped calibration)")
    parser.add_argument(
        "--tiers-symbol",
        default=DEFAULT_TIER_SYMBOL,
        help=f"shipped Binance tier table to use (default {DEFAULT_TIER_SYMBOL})",
    )


def write_predictions(
    path: Path,
    timestamp: npt.NDArray[np.int64],
    long_usd: npt.NDArray[np.float64],
    short_usd: npt.NDArray[np.float64],
) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", newline="") as handle:
            handle.write("timestamp,predicted_long_usd,predicted_short_usd\n")
            rows = zip(timestamp.tolist(), long_usd.tolist(), short_usd.tolist(), strict=True)
            handle.writelines(f"{t},{lo!r},{sh!r}\n" for t, lo, sh in rows)
        tmp.replace(path)
    finally:  # written completely and moved into place, or nothing left behind
        tmp.unlink(missing_ok=True)


def _fmt(x: float | None) -> str:
    return "   n/a" if x is None else f"{x:+.4f}"


def run(args: argparse.Namespace) -> int:
    from engine.backtest import backtest
    from engine.tiers import load_shipped_binance_tiers

    if args.warmup < 0:
        print("error: --warmup must be >= 0", file=sys.stderr)
        return EXIT_INPUT
    try:
        inputs = read_inputs(args.candles, args.open_interest, args.liquidations)
        params = load_params(args.params)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    if args.warmup >= len(inputs.candles.timestamp):
        print(
            f"error: --warmup {args.warmup} leaves no bar to score "
            f"({len(inputs.candles.timestamp)} bars)",
            file=sys.stderr,
        )
        return EXIT_INPUT
    warmup = args.warmup
    if args.score_from:
        from cli.common import UserError, parse_epoch_ms

        try:
            first = parse_epoch_ms(args.score_from)
        except UserError:
            print(f"error: --score-from {args.score_from!r} is not a time", file=sys.stderr)
            return EXIT_INPUT
        warmup = max(warmup, int(np.searchsorted(inputs.candles.timestamp, first, side="left")))
        if warmup >= len(inputs.candles.timestamp):
            print(f"error: no bar at or after --score-from {args.score_from}", file=sys.stderr)
            return EXIT_INPUT
    tiers, _source, _valid_from = load_shipped_binance_tiers(args.tiers_symbol)
    bars = bars_from(inputs)
    liq = inputs.liquidations.columns
    result = backtest(bars, liq["long_usd"], liq["short_usd"], params, tiers, warmup=warmup)
    if args.predictions is not None:
        try:
            write_predictions(
                args.predictions,
                bars.timestamp,
                result.predicted_long_usd,
                result.predicted_short_usd,
            )
        except OSError as exc:
            print(f"error: {args.predictions}: cannot write ({exc.strerror})", file=sys.stderr)
            return EXIT_INPUT
    report = result.to_dict(params)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"bars scored: {report['bars']} (warm-up {warmup} bars)")
        print("                 long pearson  long spearman  short pearson  short spearman")
        for name in ("model", "baseline"):
            s = report[name]
            print(
                f"  {name:<12} {_fmt(s['long']['pearson']):>13} {_fmt(s['long']['spearman']):>14}"
                f" {_fmt(s['short']['pearson']):>14} {_fmt(s['short']['spearman']):>15}"
            )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liqmap backtest", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
