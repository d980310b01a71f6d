"""CLI commands that run jobs: worker, ingest, backfill, status and imports."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import (
    UserError,
    add_replay_arguments,
    database_for,
    parse_epoch_ms,
    settings_from_args,
)
from liqmap.database import DatabaseTarget
from liqmap.logs import get_logger
from liqmap.settings import Settings

log = get_logger(__name__)
T = TypeVar("T")
AddCommand = Callable[..., argparse.ArgumentParser]


async def _with_runtime(
    settings: Settings, target: DatabaseTarget, body: Callable[[Any], Awaitable[T]]
) -> T:
    from jobs.app import fail_runs_of_dead_processes
    from jobs.pipeline import open_runtime
    from jobs.runtime import ConfigurationError

    rt = open_runtime(settings, target)
    try:
        await fail_runs_of_dead_processes(rt.engine)  # so status and the runs below tell the truth
        return await body(rt)
    except ConfigurationError as exc:
        raise UserError(str(exc)) from None
    finally:
        await rt.close()
        await rt.engine.dispose()


def cmd_worker(args: argparse.Namespace, settings: Settings, target: DatabaseTarget) -> int:
    from cli.runner import lower_cpu_priority, migrate, supervise_worker

    # jobs yield the cores to the API processes sharing the host (a materialization step is
    # numpy work in bursts; an answer waiting behind it is what users see)
    log.info("job worker priority", nice=lower_cpu_priority(settings.worker_nice))

    async def main() -> None:
        await migrate(target)
        await supervise_worker(settings, target, concurrency=args.concurrency)

    asyncio.run(main())
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings, target: DatabaseTarget) -> int:
    from jobs.pipeline import ingest_all, sync_all_markets

    async def body(rt: Any) -> list[Any]:
        await sync_all_markets(rt)
        return await ingest_all(rt)

    results = asyncio.run(_with_runtime(settings, target, body))
    _print_results(results)
    return 0 if all(r.status == "succeeded" for r in results) else 1


def cmd_backfill(args: argparse.Namespace, settings: Settings, target: DatabaseTarget) -> int:
    from jobs.ingest import DATASETS, ingest_dataset

    since = parse_epoch_ms(args.since)
    until = parse_epoch_ms(args.until) if args.until else None
    if until is not None and until <= since:
        raise UserError("--until must be after --since")
    datasets = args.dataset or [d for d in DATASETS if d != "tiers"]

    async def body(rt: Any) -> list[Any]:
        await rt.sync_markets(args.exchange, [args.symbol])
        results = []
        end = until or rt.adapter(args.exchange).now_ms()
        with _progress(rows=True) as bar:
            for dataset in datasets:
                task = bar.add_task(dataset, total=max(end - since, 1), rows=0)

                def advance(rows: int, position: int, task: Any = task) -> None:
                    bar.update(task, completed=min(position, end) - since, rows=rows)

                result = await ingest_dataset(
                    rt,
                    args.exchange,
                    args.symbol,
                    dataset,
                    since_ms=since,
                    until_ms=until,
                    job="backfill",
                    progress=advance,
                )
                results.append(result)
                if result.status == "succeeded":  # the whole range is covered
                    bar.update(task, completed=max(end - since, 1), rows=result.rows_written)
        return results

    results = asyncio.run(_with_runtime(settings, target, body))
    _print_results(results)
    return 0 if all(r.status == "succeeded" for r in results) else 1


def cmd_status(args: argparse.Namespace, settings: Settings, target: DatabaseTarget) -> int:
    from jobs.status import coverage

    rows = asyncio.run(_with_runtime(settings, target, coverage))
    table = Table(title=f"liqmap coverage ({settings.timeframe} bars)")
    for column in (
        "exchange",
        "symbol",
        "dataset",
        "rows",
        "first",
        "last",
        "gaps",
        "stale tail",
        "last success",
        "last run",
        "last error",
    ):
        table.add_column(column)
    problems: list[str] = []
    for r in rows:
        bars = r.dataset in {"candles", "open_interest"}
        table.add_row(
            r.exchange,
            r.symbol,
            r.dataset,
            str(r.rows),
            _fmt(r.first),
            _fmt(r.last),
            str(len(r.gaps)) if bars and r.rows else "",
            f"since {_fmt(r.stale_since)}" if r.stale_since else "",
            _fmt(r.last_success),
            " ".join(x for x in (r.last_job, r.last_status) if x),
            (r.last_error or "")[:80],
        )
        where = f"{r.exchange} {r.symbol} {r.dataset}"
        for start, after in r.gaps:
            problems.append(f"{where}: gap {_fmt(start)} → {_fmt(after)} (missing bars)")
        if r.stale_since:
            problems.append(f"{where}: stale tail: nothing stored from {_fmt(r.stale_since)} on")
        if r.last_error:
            problems.append(f"{where}: last error ({_fmt(r.last_error_at)}): {r.last_error}")
    console = Console()
    console.print(table)
    for line in problems:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings, target: DatabaseTarget) -> int:
    if args.import_kind == "liquidations":
        from jobs.liquidations import RealizedFileError, import_realized_file

        async def body(rt: Any) -> int:
            total = 0
            for path in args.files:
                total += await import_realized_file(
                    rt,
                    Path(path),
                    base=args.base.upper(),
                    exchange=args.exchange,
                    symbol=args.symbol,
                    source=args.source,
                )
            return total

        try:
            written = asyncio.run(_with_runtime(settings, target, body))
        except RealizedFileError as exc:
            raise UserError(str(exc)) from None
        print(f"imported {written} bars of realized liquidations")
        return 0

    from jobs.archive import ArchiveError, import_archive_folder

    async def archive_body(rt: Any) -> Any:
        with _progress() as bar:
            task = bar.add_task("archive files", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return await import_archive_folder(rt, Path(args.folder), progress=advance)

    try:
        report = asyncio.run(_with_runtime(settings, target, archive_body))
    except ArchiveError as exc:
        raise UserError(str(exc)) from None
    print(
        f"imported {report.files} files: {report.candles} candles, "
        f"{report.open_interest} open-interest rows"
    )
    for line in report.rejected or []:
        print(f"rejected: {line}")
    return 0 if not report.rejected else 1


def _progress(*, rows: bool = False) -> Progress:
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    ]
    if rows:
        columns.append(TextColumn("{task.fields[rows]} rows"))
    return Progress(*columns, transient=False)


def _fmt(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _print_results(results: list[Any]) -> None:
    table = Table()
    for column in ("exchange", "symbol", "dataset", "status", "rows", "error"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.exchange, r.symbol, r.dataset, r.status, str(r.rows_written), (r.error or "")[:100]
        )
    Console().print(table)


def register(sub: Any, add: AddCommand) -> None:
    worker = add("worker", "Run a job worker (periodic ingest + materialize)", _job(cmd_worker))
    worker.add_argument("--concurrency", type=int, default=2)
    add_replay_arguments(worker)

    ingest = add(
        "ingest", "Ingest every configured market once, from its watermark", _job(cmd_ingest)
    )
    add_replay_arguments(ingest)

    backfill = add("backfill", "Load history for one market over a time range", _job(cmd_backfill))
    backfill.add_argument("--exchange", required=True)
    backfill.add_argument("--symbol", required=True, help="unified symbol, e.g. BTC/USDT:USDT")
    backfill.add_argument("--since", required=True, help="ISO-8601 or epoch ms")
    backfill.add_argument("--until", help="ISO-8601 or epoch ms (default: now)")
    backfill.add_argument(
        "--dataset", action="append", choices=["candles", "open_interest", "funding"]
    )
    add_replay_arguments(backfill)

    status = add(
        "status",
        "Coverage, gaps, last success and last error per market and dataset",
        _job(cmd_status),
    )
    add_replay_arguments(status, "judge staleness by the recording's clock")

    imp = add("import", "Import realized liquidations or Binance archive files", _job(cmd_import))
    kinds = imp.add_subparsers(dest="import_kind", metavar="KIND", required=True)
    liq = kinds.add_parser("liquidations", help="per-bar realized totals (CoinGlass CSV layout)")
    liq.add_argument("files", nargs="+")
    liq.add_argument("--base", default="BTC", help="base asset of the file (default BTC)")
    liq.add_argument("--exchange", default="*", help="exchange id, or * for a multi-venue total")
    liq.add_argument(
        "--symbol", default="*", help="unified market, or * for every market of the base"
    )
    liq.add_argument("--source", default="coinglass")
    arch = kinds.add_parser("binance-archive", help="klines/metrics files from data.binance.vision")
    arch.add_argument("folder")
    for leaf in (liq, arch):
        leaf.add_argument("--database-url", metavar="URL", default=argparse.SUPPRESS)


def _job(
    func: Callable[[argparse.Namespace, Settings, DatabaseTarget], int],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from jobs.runtime import ConfigurationError

        settings = settings_from_args(args)
        target = database_for(settings, require_schema=args.command != "worker")
        try:
            if args.command == "worker":  # a worker checks what it can before migrating
                from jobs.pipeline import check_configuration
                from jobs.replay import replay_settings

                check_configuration(replay_settings(settings))  # what the replay will track
            return func(args, settings, target)
        except ConfigurationError as exc:  # one line, exit code 2
            raise UserError(str(exc)) from None

    return run
