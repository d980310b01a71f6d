"""Alembic environment: liqmap's models are the target; the URL comes from liqmap's settings."""

from __future__ import annotations

import re
from logging.config import fileConfig

from sqlalchemy import create_engine, pool

import models
from alembic import context
from liqmap.database import normalize_url, resolve_database
from liqmap.settings import load_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = models.metadata

# Monthly partitions (<table>_y2026m05, <table>_default) and procrastinate's own tables are
# created outside the model metadata; they are not drift.
_PARTITIONED = "|".join(models.PARTITIONED_TABLES)
_UNMANAGED = re.compile(rf"^(?:(?:{_PARTITIONED})_(?:y\d{{4}}m\d{{2}}|default)|procrastinate_.*)$")


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    if type_ == "table" and name and _UNMANAGED.match(name):
        return False
    if type_ in {"index", "unique_constraint", "foreign_key_constraint"}:
        table = getattr(obj, "table", None)
        if table is not None and _UNMANAGED.match(table.name):
            return False
    return True


def _database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        url = resolve_database(load_settings()).url
    plain = normalize_url(url)
    return plain.replace("postgresql://", "postgresql+psycopg://", 1)


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        include_object=include_object,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    engine = create_engine(_database_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run_with(conn)
    engine.dispose()


def _run_with(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
    )
    with context.begin_transaction():
        # Two processes starting at once must not both run the same migration.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7405120)")
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
