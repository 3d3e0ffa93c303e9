"""The processes a benchmark run starts besides the stores: gunicorn and uvicorn apps, a ``footfall drain``.

Every process is started in its own session on 127.0.0.1 and stopped by the runner (``stop``), by
its own pid. CPU time is read with psutil so costs can be compared per request, which is steadier on
a shared machine than throughput alone.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from footfall.embedded import free_port, stop_process

__all__ = ["AppServer", "GunicornConfig", "Gunicorn", "UvicornConfig", "Uvicorn", "DrainProcess", "benchmark_env",
           "cpu_seconds", "passed_settings", "stop_process"]

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 30.0  # seconds


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by the live processes among ``pids``."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


@dataclass(frozen=True)
class GunicornConfig:
    """One gunicorn configuration, used for both the bare and the wrapped WSGI app."""

    workers: int = 1
    worker_class: str = "gthread"
    threads: int = 4

    def describe(self) -> str:
        """e.g. ``1 worker, gthread × 4 threads``."""
        plural = "s" if self.workers != 1 else ""
        return f"{self.workers} worker{plural}, {self.worker_class} × {self.threads} threads"


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@dataclass(frozen=True)
class UvicornConfig:
    """One uvicorn configuration, used for both the bare and the wrapped ASGI app.

    :ivar loop: uvicorn's ``--loop``; by default uvloop when it is installed, else asyncio.
    :ivar http: uvicorn's ``--http``; by default httptools when it is installed, else h11.
    """

    workers: int = 1
    loop: str = field(default_factory=lambda: "uvloop" if _importable("uvloop") else "asyncio")
    http: str = field(default_factory=lambda: "httptools" if _importable("httptools") else "h11")

    def describe(self) -> str:
        """e.g. ``1 worker, --loop uvloop --http httptools, no access log``."""
        plural = "s" if self.workers != 1 else ""
        return f"{self.workers} worker{plural}, `--loop {self.loop} --http {self.http}`, no access log"


@dataclass
class AppServer:
    """An HTTP server process serving one app on a free loopback port (see :class:`Gunicorn`,
    :class:`Uvicorn`).

    :ivar env: the environment of the server (``FOOTFALL_*`` variables for the wrapped app).
    """

    app: str
    env: dict[str, str]
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def workers(self) -> int:
        """How many worker processes the server runs."""
        raise NotImplementedError

    def argv(self) -> list[str]:
        """The server's command line (``self.port`` is set)."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the server and wait until ``GET /`` answers.

        :raises RuntimeError: it exited or did not answer within 30 s (the message carries its log).
        """
        self.port = free_port()
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(self.argv(), cwd=ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/", headers={"User-Agent": "footfall-benchmark-startup-check"})
                conn.getresponse().read()
                conn.close()
                if len(self.worker_pids()) == self.workers:
                    return
            time.sleep(0.2)
        log = self.log_path.read_text(errors="replace")[-1500:]
        self.stop()
        raise RuntimeError(f"{self.argv()[0]} {self.app} did not start: {log}")

    def worker_pids(self) -> list[int]:
        """The pids of the processes that serve requests (the master's children)."""
        if self.process is None:
            return []
        with contextlib.suppress(psutil.Error):
            return [child.pid for child in psutil.Process(self.process.pid).children()]
        return []

    def stop(self) -> None:
        """Stop the server (a master stops its workers)."""
        stop_process(self.process)
        self.process = None


@dataclass
class Gunicorn(AppServer):
    """gunicorn serving a WSGI app (a ``module:factory()`` spec)."""

    config: GunicornConfig = field(default_factory=GunicornConfig)

    @property
    def workers(self) -> int:
        """The configured worker count."""
        return self.config.workers

    def argv(self) -> list[str]:
        """``gunicorn --bind … --worker-class … APP``."""
        return [str(Path(sys.executable).with_name("gunicorn")), "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(self.config.workers), "--worker-class", self.config.worker_class,
                "--threads", str(self.config.threads), "--graceful-timeout", "5", self.app]


@dataclass
class Uvicorn(AppServer):
    """uvicorn serving an ASGI app factory (a ``module:factory`` spec, ``--factory``).

    With one worker uvicorn serves in its own process (no supervisor): that process is the worker.
    The access log is off, as gunicorn's is by default.
    """

    config: UvicornConfig = field(default_factory=UvicornConfig)

    @property
    def workers(self) -> int:
        """The configured worker count."""
        return self.config.workers

    def argv(self) -> list[str]:
        """``uvicorn --factory APP --host 127.0.0.1 --port … --workers … --loop … --http …``."""
        return [str(Path(sys.executable).with_name("uvicorn")), "--factory", self.app, "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", str(self.config.workers), "--loop", self.config.loop,
                "--http", self.config.http, "--no-access-log", "--log-level", "warning",
                "--timeout-graceful-shutdown", "5"]

    def worker_pids(self) -> list[int]:
        """The serving processes: uvicorn itself with one worker, else its supervisor's children."""
        if self.process is None:
            return []
        if self.config.workers == 1:
            return [self.process.pid]
        return super().worker_pids()


@dataclass
class DrainProcess:
    """``footfall drain`` as a separate process, as ``footfall serve`` runs it."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start the drain (it connects to the stores named in ``env``)."""
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "footfall", "--log-level", "WARNING", "drain"],
                                            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        """The drain's pid (0 when not running)."""
        return self.process.pid if self.process is not None else 0

    def stop(self) -> None:
        """SIGTERM: the drain writes what is queued (bounded by its flush timeout) and exits."""
        stop_process(self.process, timeout=45.0)
        self.process = None


RUN_SETTINGS = ("FOOTFALL_SECRET_KEY", "FOOTFALL_REDIS_URL", "FOOTFALL_MONGODB_URI", "FOOTFALL_COOKIE_SECURE",
                "FOOTFALL_INPROCESS_DRAIN")


def passed_settings() -> dict[str, str]:
    """``FOOTFALL_*`` variables of this environment that the apps and the drain get as they are
    (to measure a setting: ``FOOTFALL_VISITOR_NUMBER_BLOCK=1000 python -m benchmarks.run``); the
    run sets the others (:data:`RUN_SETTINGS`) itself."""
    return {k: v for k, v in os.environ.items()
            if k.startswith("FOOTFALL_") and k not in RUN_SETTINGS and k != "FOOTFALL_DATA_DIR"}


def benchmark_env(redis_url: str, mongodb_uri: str, secret_key: str) -> dict[str, str]:
    """The environment of the servers: this one, with footfall's settings for the throwaway stores."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    env.update(passed_settings())
    env.update({"FOOTFALL_SECRET_KEY": secret_key, "FOOTFALL_REDIS_URL": redis_url,
                "FOOTFALL_MONGODB_URI": mongodb_uri, "FOOTFALL_COOKIE_SECURE": "false",
                "FOOTFALL_INPROCESS_DRAIN": "false", "PYTHONPATH": str(ROOT)})
    return env
