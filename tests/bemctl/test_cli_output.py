"""Where `bemctl report` (and any command) writes: -o targets and a failing stdout.

Run on the session's finished project, read-only: nothing here writes into it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest


@pytest.fixture
def in_ran_project(ran_v1_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(ran_v1_project)
    for key in [k for k in os.environ if k.startswith("BEMCTL_")]:
        monkeypatch.delenv(key)
    return ran_v1_project


def _bemctl(args: list[str], cwd: Path, stdout) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEMCTL_")}
    return subprocess.run(
        [sys.executable, "-m", "bemctl", *args],
        cwd=cwd,
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
    )


def test_report_to_a_read_only_file_is_refused(in_ran_project: Path, cli, tmp_path) -> None:
    target = tmp_path / "report.md"
    target.write_text("keep me")
    target.chmod(0o444)
    result = cli("report", "-o", str(target))
    assert result.code == 2
    assert result.err == (
        f"error: {target}: not overwriting a read-only file (mode 0444); "
        "choose another --output or make it writable\n"
    )
    assert target.read_text() == "keep me" and stat.S_IMODE(target.stat().st_mode) == 0o444


def test_report_to_dev_full_is_one_line(in_ran_project: Path, cli) -> None:
    result = cli("report", "-o", "/dev/full")
    assert result.code == 1
    assert result.err == "error: /dev/full: cannot write report: No space left on device\n"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_report_into_a_named_pipe(in_ran_project: Path, cli, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []

    def read() -> None:
        with open(fifo, encoding="utf-8") as fh:
            received.append(fh.read())

    reader = threading.Thread(target=read)
    reader.start()
    result = cli("report", "--format", "md", "-o", str(fifo))
    reader.join(timeout=60)
    assert result.code == 0, result.err
    assert not reader.is_alive() and "v1_dynrank" in received[0]
    assert received[0] == cli("report", "--format", "md").out
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_report_into_a_missing_directory_or_a_directory(
    in_ran_project: Path, cli, tmp_path: Path
) -> None:
    missing = tmp_path / "nope" / "r.md"
    result = cli("report", "-o", str(missing))
    assert (result.code, result.err.count("\n")) == (2, 1)
    assert f"directory {missing.parent} does not exist" in result.err
    result = cli("report", "-o", str(tmp_path))
    assert (result.code, result.err.count("\n")) == (2, 1) and "is a directory" in result.err


@pytest.mark.parametrize("args", [["report"], ["report", "--format", "json"], ["list"]])
def test_stdout_on_dev_full_is_one_line(ran_v1_project: Path, args: list[str]) -> None:
    """`bemctl report > /dev/full`: the real entry point, stdout opened on /dev/full."""
    with open("/dev/full", "w") as full:
        proc = _bemctl(args, ran_v1_project, full)
    assert proc.returncode == 1
    assert proc.stderr == "error: cannot write to standard output: No space left on device\n"


def test_a_closed_pipe_ends_quietly(ran_v1_project: Path) -> None:
    """`bemctl report | head -0`: the reader went away; exit 1, nothing on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEMCTL_")}
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bemctl", "report", "--format", "json"],
            cwd=ran_v1_project,
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 1
    assert proc.stderr == ""
