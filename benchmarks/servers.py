"""The processes a benchmark run starts besides the stores: gunicorn apps and a ``footfall drain``.

Every process is started in its own session on 127.0.0.1 and stopped by the runner (``stop``), by
its own pid. CPU time is read with psutil so costs can be compared per request, which is steadier on
a shared machine than throughput alone.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from footfall.embedded import free_port

__all__ = ["GunicornConfig", "Gunicorn", "DrainProcess", "benchmark_env", "cpu_seconds", "passed_settings",
           "stop_process"]

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 30.0  # seconds


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """SIGTERM ``proc``, wait up to ``timeout`` seconds, then SIGKILL it."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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
    """One gunicorn configuration, used for both the bare and the wrapped app."""

    workers: int = 1
    worker_class: str = "gthread"
    threads: int = 4

    def describe(self) -> str:
        """e.g. ``1 worker, gthread × 4 threads``."""
        plural = "s" if self.workers != 1 else ""
        return f"{self.workers} worker{plural}, {self.worker_class} × {self.threads} threads"


@dataclass
class Gunicorn:
    """A gunicorn master serving ``app`` (a ``module:factory()`` spec) on a free loopback port.

    :ivar env: the environment of the server (``FOOTFALL_*`` variables for the wrapped app).
    """

    app: str
    config: GunicornConfig
    env: dict[str, str]
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start gunicorn and wait until ``GET /`` answers.

        :raises RuntimeError: it exited or did not answer within 30 s (the message carries its log).
        """
        self.port = free_port()
        argv = [str(Path(sys.executable).with_name("gunicorn")), "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(self.config.workers), "--worker-class", self.config.worker_class,
                "--threads", str(self.config.threads), "--graceful-timeout", "5", self.app]
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/", headers={"User-Agent": "footfall-benchmark-startup-check"})
                conn.getresponse().read()
                conn.close()
                if len(self.worker_pids()) == self.config.workers:
                    return
            time.sleep(0.2)
        log = self.log_path.read_text(errors="replace")[-1500:]
        self.stop()
        raise RuntimeError(f"gunicorn {self.app} did not start: {log}")

    def worker_pids(self) -> list[int]:
        """The pids of the worker processes (the master's children)."""
        if self.process is None:
            return []
        with contextlib.suppress(psutil.Error):
            return [child.pid for child in psutil.Process(self.process.pid).children()]
        return []

    def stop(self) -> None:
        """Stop the master (it stops its workers)."""
        stop_process(self.process)
        self.process = None


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
