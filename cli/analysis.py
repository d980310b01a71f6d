"""CLI commands for analysts: `liqmap render` (PNG pictures) and `liqmap export snapshots`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli.common import UserError, database_for, parse_instant, settings_from_args

AddCommand = Callable[..., argparse.ArgumentParser]


def _exchanges(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        out += [part.strip() for part in value.split(",") if part.strip()]
    return tuple(dict.fromkeys(out))


def _run(body: Callable[[Any, Any], int]) -> Callable[[argparse.Namespace], int]:
    """Settings and database as every command gets them; user errors become exit code 2."""

    def run(args: argparse.Namespace) -> int:
        settings = settings_from_args(args)
        target = database_for(settings, require_schema=True)  # reads stored data
        return body(args, (settings, target))

    return run


def _overlays(value: str | None) -> tuple[str, ...]:
    """``--overlays a,b`` (``none`` or empty for none); the page's defaults when omitted."""
    from api.viewer import overlays

    if value is None:
        return overlays.defaults()
    names = [part.strip() for part in value.split(",") if part.strip()]
    return () if names in ([], ["none"]) else tuple(dict.fromkeys(names))


def _leverage(value: str | None) -> tuple[str, ...]:
    """``--leverage 51-100,101+``: the bands' labels → the API's ids (every band: none)."""
    from cli.render import LEVERAGE

    if value is None:
        return ()
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [n for n in names if n not in LEVERAGE]
    if unknown or not names:
        raise UserError(
            f"unknown leverage band {', '.join(unknown) or value!r}; use "
            + ", ".join(LEVERAGE)
            + " (comma-separated)"
        )
    picked = tuple(i for label, i in LEVERAGE.items() if label in names)
    return () if len(picked) == len(LEVERAGE) else picked


# --- render ---------------------------------------------------------------------------------
def cmd_render(args: argparse.Namespace, env: Any) -> int:
    from api.viewer.local import ApiError, LocalApi
    from cli.export import ExportError
    from cli.render import RenderError, RenderRequest, render
    from liqmap.database import create_engine

    settings, target = env
    req = RenderRequest(
        symbol=args.symbol,
        start=parse_instant(args.start),
        end=parse_instant(args.end) if args.end else None,
        exchanges=_exchanges(args.exchanges),
        kind=args.kind,
        interval=args.resolution,
        side=args.side,
        scale=args.scale,
        price_min=args.price_min,
        price_max=args.price_max,
        bucket_size=args.bucket_size,
        within_pct=args.within,
        width=args.width,
        height=args.height,
        overlays=_overlays(args.overlays),
        leverage=_leverage(args.leverage),
    )

    async def main() -> Any:
        engine = create_engine(target.url, pool_size=4)
        try:
            return await render(LocalApi(settings, engine), req, Path(args.output))
        finally:
            await engine.dispose()

    try:
        result = asyncio.run(main())
    except (RenderError, ExportError) as exc:
        raise UserError(str(exc)) from None
    except ApiError as exc:
        raise UserError(f"{exc} ({exc.code})") from None
    print(f"wrote {result.path} ({result.width}×{result.height}): {result.title}")
    return 0


# --- export -----------------------------------------------------------------------------------
def cmd_export_snapshots(args: argparse.Namespace, env: Any) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from cli.export import ExportError, ExportRequest, export_snapshots
    from liqmap.database import create_engine

    settings, target = env
    req = ExportRequest(
        symbol=args.symbol,
        start=parse_instant(args.start),
        end=parse_instant(args.end),
        exchanges=_exchanges(args.exchange),
        format=args.format,
        resolution=args.resolution,
    )
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("snapshots"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=args.quiet,
    )

    task = bar.add_task("export", total=None)

    def advance(done: int, total: int) -> None:
        if not bar.live.is_started:  # shown once the input is checked and the export begins
            bar.start()
        bar.update(task, completed=done, total=total)

    async def main() -> Any:
        engine = create_engine(target.url, pool_size=2)
        try:
            return await export_snapshots(
                engine, req, Path(args.output), timeframe=settings.timeframe, progress=advance
            )
        finally:
            if bar.live.is_started:
                bar.stop()
            await engine.dispose()

    try:
        report = asyncio.run(main())
    except ExportError as exc:
        raise UserError(str(exc)) from None
    note = "" if report.snapshots else " (no snapshots in this range)"
    print(
        f"wrote {report.path}: {report.rows} rows from {report.snapshots} snapshots in "
        f"{report.row_groups} {'row groups' if args.format == 'parquet' else 'batches'}{note}",
        file=sys.stdout,
    )
    return 0


def register(sub: Any, add: AddCommand) -> None:
    from cli.render import DEFAULTS, INTERVALS, KINDS, SCALES, SIDES

    render = add(
        "render",
        "Draw the viewer's heatmap or liquidation map as a PNG (matplotlib)",
        _run(cmd_render),
    )
    render.add_argument("--symbol", required=True, help="unified symbol, e.g. BTC/USDT:USDT")
    render.add_argument(
        "--exchanges",
        action="append",
        metavar="IDS",
        help="ccxt ids, comma-separated or repeated (default: the cross-exchange total)",
    )
    render.add_argument("--start", required=True, help="ISO-8601 (UTC) or epoch ms")
    render.add_argument("--end", help="ISO-8601 (UTC) or epoch ms (default: now)")
    render.add_argument(
        "--kind",
        choices=KINDS,
        default="heatmap",
        help="heatmap over time, or the map at --end (default heatmap)",
    )
    render.add_argument(
        "--resolution",
        choices=list(INTERVALS),
        default="auto",
        help="heatmap column width (default: the finest that fits)",
    )
    render.add_argument("--side", choices=SIDES, default=DEFAULTS["side"])
    render.add_argument("--scale", choices=SCALES, default=DEFAULTS["scale"], help="colour scale")
    render.add_argument(
        "--leverage",
        metavar="BANDS",
        help="only these leverage bands, comma-separated: 1-10, 11-25, 26-50, 51-100, 101+ "
        "(default: all; e.g. 51-100,101+ for high leverage)",
    )
    render.add_argument("--price-min", type=float, help="lowest price shown (default: auto)")
    render.add_argument("--price-max", type=float, help="highest price shown (default: auto)")
    render.add_argument("--bucket-size", type=float, help="price row height (grid multiple)")
    render.add_argument(
        "--within",
        type=float,
        default=float(DEFAULTS["within_pct"]),
        help="map: long/short split within ±this %% of price",
    )
    render.add_argument("--width", type=int, default=1600, help="pixels (default 1600)")
    render.add_argument("--height", type=int, default=900, help="pixels (default 900)")
    render.add_argument(
        "--overlays",
        metavar="LIST",
        help="comma-separated: realized, swept, clusters, maxpain, or none "
        "(default: the viewer's, realized,clusters,maxpain)",
    )
    render.add_argument("-o", "--output", required=True, help="PNG file to write")

    export = add("export", "Export stored data for analysts (Parquet or CSV)", _run(cmd_export))
    kinds = export.add_subparsers(dest="export_kind", metavar="WHAT", required=True)
    snaps = kinds.add_parser(
        "snapshots",
        help="liquidation maps as tidy rows: timestamp, exchange, price, long_usd, short_usd",
        description="Stream stored snapshots to a file, one row per price bucket per snapshot. "
        "Without --exchange the cross-exchange total (exchange 'all') is exported.",
    )
    snaps.add_argument("--symbol", required=True, help="unified symbol, e.g. BTC/USDT:USDT")
    snaps.add_argument("--start", required=True, help="first instant, ISO-8601 (UTC) or epoch ms")
    snaps.add_argument("--end", required=True, help="end (exclusive), ISO-8601 (UTC) or epoch ms")
    snaps.add_argument(
        "--exchange",
        action="append",
        metavar="ID",
        help="ccxt id, repeatable or comma-separated; 'all' = cross-exchange total (default)",
    )
    snaps.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    snaps.add_argument(
        "--resolution",
        choices=["1h", "5m"],
        default="1h",
        help="stored resolution (5m is kept for recent days only)",
    )
    snaps.add_argument("-o", "--output", required=True, help="file to write")
    snaps.add_argument("--quiet", action="store_true", help="no progress bar")
    snaps.add_argument("--database-url", metavar="URL", default=argparse.SUPPRESS)


def cmd_export(args: argparse.Namespace, env: Any) -> int:
    if args.export_kind == "snapshots":
        return cmd_export_snapshots(args, env)
    raise UserError(f"nothing to export as {args.export_kind!r}")  # pragma: no cover
