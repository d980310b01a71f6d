"""The `liqmap` command. Thin: parses arguments, builds settings, calls into jobs/api/engine.

Imports are lazy: ``liqmap backtest`` and ``liqmap calibrate`` work on CSV files only and load
neither the database layer nor the API (tests/foundation/test_cli.py checks it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from cli.common import EXIT_USAGE, UserError, database_for, settings_from_args
from liqmap import __version__

# commands that read CSV files only: run straight from their own module (see main)
ENGINE_TOOLS = ("backtest", "calibrate")

DESCRIPTION = """\
liqmap estimates where leveraged crypto-futures positions would be force-liquidated and serves
liquidation maps and heatmaps over GraphQL.

Main job:  liqmap up                      ingest → materialize → serve (embedded PostgreSQL when
                                          DATABASE_URL is unset)
Offline:   liqmap up --replay ../shared/data [--replay-window venues-2026-01]
Settings come from the environment / .env with the LIQMAP_ prefix (see README).
"""


# --- db ---------------------------------------------------------------------------------------
def cmd_db(args: argparse.Namespace) -> int:
    from liqmap import migrations

    settings = settings_from_args(args)
    target = database_for(settings)
    if args.db_command == "upgrade":
        migrations.upgrade(target.url, args.revision)
        print(f"database at revision {migrations.current_revision(target.url)}")
    elif args.db_command == "downgrade":
        migrations.downgrade(target.url, args.revision)
        print(f"database at revision {migrations.current_revision(target.url) or 'base'}")
    elif args.db_command == "current":
        print(migrations.current_revision(target.url) or "base")
    elif args.db_command == "check":
        migrations.check(target.url)
        print("models and migrations agree")
    elif args.db_command == "url":
        print(target.url)
    return 0


# --- up / serve -------------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    from cli.runner import run_up
    from jobs.runtime import ConfigurationError
    from liqmap import event_loop

    settings = settings_from_args(args, api_host=args.host, api_port=args.port)
    target = database_for(settings)
    try:
        event_loop.run(run_up(settings, target, ingest=not args.no_ingest, once=args.once))
    except ConfigurationError as exc:
        raise UserError(str(exc)) from None
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from cli.runner import run_serve
    from liqmap import event_loop

    settings = settings_from_args(args, api_host=args.host, api_port=args.port)
    target = database_for(settings, require_schema=True)
    event_loop.run(run_serve(settings, target))
    return 0


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="PostgreSQL URL (default: DATABASE_URL / LIQMAP_DATABASE_URL, else embedded)",
    )


def build_parser() -> argparse.ArgumentParser:
    from rich_argparse import RawDescriptionRichHelpFormatter

    from cli.common import add_replay_arguments

    parser = argparse.ArgumentParser(
        prog="liqmap", description=DESCRIPTION, formatter_class=RawDescriptionRichHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"liqmap {__version__}")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, help_: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=help_, description=help_, formatter_class=parser.formatter_class
        )
        _add_common(p)
        p.set_defaults(func=func)
        return p

    db = add("db", "Manage the database schema (Alembic migrations)", cmd_db)
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up_ = db_sub.add_parser("upgrade", help="Migrate to a revision (default: head)")
    up_.add_argument("revision", nargs="?", default="head")
    down = db_sub.add_parser("downgrade", help="Migrate down to a revision (e.g. base)")
    down.add_argument("revision")
    current = db_sub.add_parser("current", help="Print the database's revision")
    check = db_sub.add_parser("check", help="Fail if models and migrations differ")
    url = db_sub.add_parser(
        "url", help="Print the database URL in use (starts the embedded server)"
    )
    for leaf in (up_, down, current, check, url):
        _add_common(leaf)

    up = add("up", "Run the main job: migrate, ingest, materialize and serve", cmd_up)
    up.add_argument("--host", default=None, help="API bind address (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=None, help="API port (default 8000)")
    add_replay_arguments(up)
    up.add_argument("--no-ingest", action="store_true", help="serve what is stored; no jobs")
    up.add_argument(
        "--once", action="store_true", help="ingest and materialize once, then exit (no server)"
    )

    serve = add("serve", "Serve the GraphQL API only (no jobs)", cmd_serve)
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)

    for extension in _EXTENSIONS:
        extension(sub, add)
    return parser


def _register_jobs(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    from cli import jobs as jobs_cli

    jobs_cli.register(sub, add)


def _register_apikeys(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    from cli import apikeys as api_cli

    api_cli.register(sub, add)


def _register_engine_tools(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """backtest and calibrate work on CSV files only: no database, no settings."""
    from rich_argparse import RawDescriptionRichHelpFormatter

    from cli import backtest, calibrate

    for name, module, help_ in (
        ("backtest", backtest, "Score the model against realized liquidations (CSV files)"),
        ("calibrate", calibrate, "Fit the model's free parameters on development data"),
    ):
        p = sub.add_parser(
            name,
            help=help_,
            description=module.__doc__,
            formatter_class=RawDescriptionRichHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(func=module.run)


def _register_analysis(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """render (PNG) and export (Parquet/CSV) for analysts."""
    from cli import analysis as analysis_cli

    analysis_cli.register(sub, add)


# Subcommands defined in other modules (kept explicit so `liqmap --help` lists all).
_EXTENSIONS: list[Callable[..., None]] = [
    _register_jobs,
    _register_apikeys,
    _register_engine_tools,
    _register_analysis,
]


def _engine_tool(name: str, argv: list[str]) -> int:
    """``liqmap backtest|calibrate ARGS`` without building the whole command tree."""
    import importlib

    module = importlib.import_module(f"cli.{name}")
    parser = argparse.ArgumentParser(prog=f"liqmap {name}", description=module.__doc__)
    module.add_arguments(parser)
    try:
        return int(module.run(parser.parse_args(argv)))
    except UserError as exc:
        print(f"liqmap: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in ENGINE_TOOLS and not {"-h", "--help"} & set(args_list):
        # the same arguments and run() as the full parser's subcommand, minus its imports;
        # help still goes through the full parser (rich formatting)
        return _engine_tool(args_list[0], args_list[1:])
    from liqmap.database import DatabaseConfigError
    from liqmap.logs import configure_logging

    parser = build_parser()
    args = parser.parse_args(args_list)
    configure_logging(args.log_level or "INFO")
    try:
        return int(args.func(args))
    except (UserError, DatabaseConfigError) as exc:
        print(f"liqmap: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
