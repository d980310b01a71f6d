"""A database holding one heatmap snapshot row as an older schema wrote it, then upgraded."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from liqmap import migrations
from tests.conftest import create_database, drop_database


def upgraded_with_snapshot(
    server_url: str, name: str, revision: str, columns: str, values: str, params: Sequence[object]
) -> str:
    """A new database migrated to ``revision``, one BTC/USDT:USDT binanceusdm series (50 USD
    buckets) and one ``heatmap_snapshots`` row written there (``columns`` after series_id,
    ``values`` after its id, with ``params``), then upgraded to the head. The caller drops it
    (``drop_database``); it is dropped here when the setup fails."""
    url = create_database(server_url, name)
    try:
        migrations.upgrade(url, revision)
        with psycopg.connect(url, autocommit=True) as conn:
            sid = conn.execute(
                "INSERT INTO heatmap_series (symbol, scope, bucket_size) "
                "VALUES ('BTC/USDT:USDT', 'binanceusdm', 50.0) RETURNING id"
            ).fetchone()[0]  # type: ignore[index]
            conn.execute(
                f"INSERT INTO heatmap_snapshots (series_id, {columns}) VALUES (%s, {values})",
                (sid, *params),
            )
        migrations.upgrade(url, "head")
    except BaseException:
        drop_database(server_url, url)
        raise
    return url
