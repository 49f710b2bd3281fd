"""The worker process the console can start and stop (keys w / W).

It is an ordinary `bemctl worker` in its own process, so training never competes with
the UI for the interpreter, and stopping it is the same SIGTERM a shell user would send:
the worker hands its job back to the queue (the next worker resumes it).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import IO

from engine.settings import Settings
from store.errors import BemctlError


class LocalWorker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log_path: Path = settings.store_path.parent / "console-worker.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        """`python -m bemctl [--config FILE] worker`: the same settings as the console."""
        config = self.settings.config_path
        return [
            sys.executable,
            "-m",
            "bemctl",
            *(["--config", str(config)] if config is not None else []),
            "worker",
        ]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def state(self) -> str:
        """For the status line: off, running (pid N), or how it ended."""
        if self.proc is None:
            return "off"
        code = self.proc.poll()
        if code is None:
            return f"running (pid {self.proc.pid})"
        return f"exited ({code})"

    def start(self) -> int:
        """Start the worker, output appended to `log_path`; returns its pid."""
        if self.running:
            assert self.proc is not None
            raise BemctlError(f"a console worker is already running (pid {self.proc.pid})")
        self._close_log()
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        except OSError as exc:
            raise BemctlError(f"{self.log_path}: cannot open worker log: {exc.strerror}") from None
        stamp = datetime.now().astimezone().isoformat(timespec="seconds")
        self._log.write(f"--- {stamp}: {' '.join(self.command())}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.settings.base_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self.proc.pid

    def stop(self) -> int:
        """Ask the worker to stop (SIGTERM); returns its pid. `wait` for it to exit."""
        if not self.running:
            raise BemctlError("no console worker is running (start one with the worker key)")
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.pid

    def wait(self, timeout_s: float) -> int | None:
        """Its exit code, killing it if SIGTERM was not enough within `timeout_s`."""
        if self.proc is None:
            return None
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._close_log()
        return code

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
