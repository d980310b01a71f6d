"""``liqmap apikey create|list|revoke``: API keys for third-party integrations.

Wired into the CLI by ``cli.main`` through :func:`register` (the same pattern as jobs_cli).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

T = TypeVar("T")
AddCommand = Callable[..., argparse.ArgumentParser]


async def _with_engine(url: str, body: Callable[[Any], Awaitable[T]]) -> T:
    from liqmap.database import create_engine

    engine = create_engine(url, pool_size=1)
    try:
        return await body(engine)
    finally:
        await engine.dispose()


def cmd_apikey(args: argparse.Namespace) -> int:
    from api import auth
    from cli.common import UserError, database_for, settings_from_args

    settings = settings_from_args(args)
    target = database_for(settings, require_schema=True)
    console = Console()
    if args.apikey_command == "create":
        if args.rate_limit < 1:
            raise UserError("--rate-limit must be at least 1 request per minute")

        async def create(engine: Any) -> tuple[str, auth.ApiKeyInfo]:
            return await auth.create_key(engine, args.name, args.rate_limit)

        key, info = asyncio.run(_with_engine(target.url, create))
        print(key)
        console.print(
            f"[dim]created key {info.prefix!r} ({info.name}, {info.rate_limit_per_minute}/min); "
            "it is shown once — store it now. Send it as 'Authorization: Bearer …' or "
            "'X-API-Key: …'.[/dim]",
            highlight=False,
        )
        return 0
    if args.apikey_command == "list":
        keys = asyncio.run(_with_engine(target.url, auth.list_keys))
        table = Table(title="API keys")
        for column in ("prefix", "name", "rate/min", "created", "revoked"):
            table.add_column(column)
        for k in keys:
            table.add_row(
                k.prefix,
                k.name,
                str(k.rate_limit_per_minute),
                f"{k.created_at:%Y-%m-%d %H:%M}",
                f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
            )
        console.print(table)
        return 0

    async def revoke(engine: Any) -> bool:
        return await auth.revoke_key(engine, args.prefix)

    if not asyncio.run(_with_engine(target.url, revoke)):
        raise UserError(f"no active API key with prefix {args.prefix!r} (see liqmap apikey list)")
    print(f"revoked {args.prefix}")
    return 0


def register(sub: Any, add: AddCommand) -> None:
    apikey = add("apikey", "Manage API keys for third-party clients", cmd_apikey)
    actions = apikey.add_subparsers(dest="apikey_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="Create a key (printed once; stored hashed)")
    create.add_argument("name", help="who the key is for, e.g. 'acme dashboard'")
    create.add_argument(
        "--rate-limit", type=int, default=600, metavar="N", help="requests per minute (default 600)"
    )
    actions.add_parser("list", help="List keys (prefix, name, limit, created, revoked)")
    revoke = actions.add_parser("revoke", help="Revoke a key by its prefix (or the key itself)")
    revoke.add_argument("prefix")
    for leaf in (create, revoke):
        leaf.add_argument("--database-url", metavar="URL", default=argparse.SUPPRESS)
    for leaf in actions.choices.values():
        if leaf is not create and leaf is not revoke:
            leaf.add_argument("--database-url", metavar="URL", default=argparse.SUPPRESS)
