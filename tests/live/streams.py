"""Real servers and real stream clients for the live-stream tests: footfall's ASGI app under uvicorn in
a thread, on a free loopback port, and an SSE reader that keeps every frame (comments included)."""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from footfall.embedded import free_port


class ThreadedServer:
    """A uvicorn server running an ASGI app in a daemon thread (lifespan on)."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@dataclass
class Frame:
    """One SSE frame: its fields (``id``, ``event``, ``data``, ``retry``) and comment lines."""

    fields: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)

    @property
    def message(self) -> dict[str, Any]:
        return json.loads(self.fields["data"])


class SSEReader:
    """Opens ``GET path`` on a server and reads its event stream in a thread, frame by frame.

    :ivar status: the response status; ``body`` holds a non-stream answer's JSON.
    """

    def __init__(self, port: int, path: str, headers: dict[str, str] | None = None) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.connection.request("GET", path, headers=headers or {})
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.headers = self.response.headers
        self.frames: queue.Queue[Frame] = queue.Queue()
        self.body: Any = None
        if self.status != 200:
            self.body = json.loads(self.response.read() or b"null")
            self.connection.close()
            return
        threading.Thread(target=self._read, name="sse-reader", daemon=True).start()

    def _read(self) -> None:
        frame = Frame()
        try:
            while line := self.response.readline():
                text = line.decode().rstrip("\r\n")
                if not text:
                    self.frames.put(frame)
                    frame = Frame()
                elif text.startswith(":"):
                    frame.comments.append(text)
                else:
                    name, _, value = text.partition(":")
                    frame.fields[name] = value.removeprefix(" ")
        except (OSError, ValueError, AttributeError, http.client.HTTPException):  # closed by the test
            return

    def next_frame(self, timeout: float) -> Frame | None:
        """The next frame within ``timeout`` seconds, or ``None``."""
        try:
            return self.frames.get(timeout=timeout)
        except queue.Empty:
            return None

    def next_event(self, timeout: float) -> Frame | None:
        """The next frame with data (comments and ``retry`` frames skipped) within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            frame = self.next_frame(left)
            if frame is not None and "data" in frame.fields:
                return frame
        return None

    def events_within(self, seconds: float) -> Iterator[Frame]:
        """Every event frame that arrives within ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            frame = self.next_event(left)
            if frame is not None:
                yield frame

    def close(self) -> None:
        """Hang up (the socket is shut down first: the reader thread may be blocked reading it)."""
        if self.connection.sock is not None:
            with contextlib.suppress(OSError):
                self.connection.sock.shutdown(socket.SHUT_RDWR)
        self.connection.close()
