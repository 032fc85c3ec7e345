"""Real HTTP servers on loopback for tests: an ASGI app served by uvicorn in a thread, and
the ``monitor`` command as a subprocess whose output is read line by line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

ROOT = Path(__file__).resolve().parents[1]

TIMEOUT_SCALE = float(os.environ.get("MONITOR_TEST_TIMEOUT_SCALE", "1"))
"""Every deadline in the tests is multiplied by this: ``.ci/run`` raises it, because a
shared runner with its other core busy takes several times as long to start a daemon."""


def find_tool(name: str) -> str | None:
    """The path of the command ``name``: first beside this interpreter (a tool that a
    Python package installs, such as hadolint or docker-compose, when the virtual
    environment is not activated), then on ``PATH``."""
    beside = shutil.which(name, path=str(Path(sys.executable).parent))
    return beside or shutil.which(name)


def deadline(seconds: float) -> float:
    """``seconds`` scaled by ``MONITOR_TEST_TIMEOUT_SCALE``: the one place a test's patience
    is set. ``wait_for``, ``until`` and ``wait_for_line`` apply it themselves."""
    return seconds * TIMEOUT_SCALE


def wait_for(
    condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds
    (scaled by ``deadline``)."""
    timeout = deadline(timeout)
    end = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def until(check: Callable[[], Awaitable[Any]], *, timeout: float, what: str) -> Any:
    """Await ``check()`` until it returns something truthy; fail after ``timeout`` s
    (scaled by ``deadline``)."""
    timeout = deadline(timeout)
    end = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def serve_in_thread(app: Any, **options: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a background thread; yields its base URL.
    ``options`` go to ``uvicorn.Config`` (``timeout_keep_alive``, ``ssl_certfile``, ...)."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", **options
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="the test server to listen")
    port = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if options.get("ssl_certfile") else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=deadline(10))


class MonitorProcess:
    """``python -m monitor ARGS`` in a subprocess; stdout and stderr are merged and read
    by a thread so tests can wait for a line without blocking."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        open_files: int | None = None,
    ) -> None:
        def limit() -> None:  # in the child, before exec: its soft and hard limit
            import resource

            assert open_files is not None
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            cwd=cwd,
            preexec_fn=limit if open_files is not None else None,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self._queue.put(line.rstrip("\n"))

    def wait_for_line(self, pattern: str, *, timeout: float = 30) -> re.Match[str]:
        """The first output line (seen so far or to come) that matches ``pattern``."""
        compiled = re.compile(pattern)
        for line in self.lines:
            if match := compiled.search(line):
                return match
        end = time.monotonic() + deadline(timeout)
        while (left := end - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=min(left, 0.1))
            except queue.Empty:
                if self.proc.poll() is not None and self._queue.empty():
                    break
                continue
            self.lines.append(line)
            if match := compiled.search(line):
                return match
        raise AssertionError(f"no line matching {pattern!r}; output so far:\n" + self.output())

    def output(self) -> str:
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return "\n".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=deadline(10))
        self._reader.join(timeout=deadline(10))
