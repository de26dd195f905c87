"""Run a few child processes as one tree: restart the ones that die, stop them all by PID.

A child that keeps dying (``MAX_FAILURES`` exits within ``FAILURE_WINDOW_S``) is given
up on: restarting it for ever would hide a cause that needs a person (a port taken, a
bad setting). Each exit is reported with the last line the child wrote to its log.

Each child gets ``PR_SET_PDEATHSIG`` (Linux), so even a supervisor killed with
SIGKILL leaves no orphan behind; a normal stop sends SIGTERM to every child's
process group, waits, then SIGKILLs what is left.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1
RESTART_BACKOFF_S = (1, 2, 5, 10, 30)
MAX_FAILURES = 5
FAILURE_WINDOW_S = 600.0
LAST_LINE_BYTES = 4096
SETTLE_S = 60.0  # a restarted child up this long is well again: no more "restarting"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Child:
    name: str
    command: list[str]
    log: Path
    env: dict[str, str] | None = None
    restart: bool = True
    reloads: bool = False  # re-reads its config on SIGHUP (``Supervisor.reload``)
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    finished: bool = False  # a child that may end (restart=False) and did
    gave_up: bool = False  # died MAX_FAILURES times within FAILURE_WINDOW_S: not restarted
    history: list[int] = field(default_factory=list)  # PIDs it ran as
    failures: list[float] = field(default_factory=list)  # when it exited, recent ones
    log_start: int = 0  # the log's size when the current run started
    last_error: str = ""  # the last line it wrote before its latest exit
    last_exit: str = ""  # how it ended: "exit 3", "killed by SIGKILL"
    started_at: float = 0.0  # monotonic, the current run's

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


class Supervisor:
    def __init__(self, children: list[Child], backoff_s: tuple[float, ...] = RESTART_BACKOFF_S,
                 max_failures: int = MAX_FAILURES, settle_s: float = SETTLE_S) -> None:
        self.children = children
        self._backoff, self._max_failures, self._settle_s = backoff_s, max_failures, settle_s

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)

    def check(self) -> list[str]:
        """Restart children that died (with backoff); return a line for each event."""
        events = []
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if process is not None and process.poll() is not None:
                code = process.returncode
                child.process = None
                if not child.restart:
                    child.finished = True
                    events.append(f"{child.name} finished (exit {code})")
                    continue
                child.last_error = _last_line(child.log, child.log_start)
                child.last_exit = exit_text(code)
                child.failures = [t for t in child.failures if now - t < FAILURE_WINDOW_S]
                child.failures.append(now)
                said = f": {child.last_error}" if child.last_error else ""
                if len(child.failures) >= self._max_failures:
                    child.gave_up = True
                    events.append(f"{child.name} exited with {code} {len(child.failures)} times "
                                  f"in {FAILURE_WINDOW_S / 60:.0f} minutes; not restarting it "
                                  f"(see {child.log}){said}")
                    continue
                delay = self._backoff[min(child.restarts, len(self._backoff) - 1)]
                child.next_start = now + delay
                child.restarts += 1
                events.append(f"{child.name} exited with {code}; restarting in {delay} s "
                              f"(see {child.log}){said}")
            elif (process is None and not child.finished and not child.gave_up
                  and now >= child.next_start):
                self._spawn(child)
        return events

    @property
    def given_up(self) -> list[Child]:
        return [child for child in self.children if child.gave_up]

    def restarting(self) -> list[Child]:
        """Children that died and are not well again (down, or restarted less than
        ``settle_s`` ago), for a status line."""
        now = time.monotonic()
        return [c for c in self.children if not c.gave_up and c.failures
                and (c.process is None or now - c.started_at < self._settle_s)]

    def reload(self) -> list[str]:
        """SIGHUP to every running child that reloads its config; their names."""
        told = []
        for child in self.children:
            process = child.process
            if child.reloads and process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGHUP)
                    told.append(child.name)
        return told

    def stop(self, timeout_s: float = 30.0) -> None:
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        for child in self.children:
            child.process = None

    def _spawn(self, child: Child) -> None:
        env = {**os.environ, **(child.env or {})}
        with open(child.log, "ab") as out:
            child.log_start = out.tell()
            child.started_at = time.monotonic()
            child.process = subprocess.Popen(
                child.command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env, start_new_session=True, preexec_fn=_die_with_parent)
        child.history.append(child.process.pid)


def exit_text(code: int) -> str:
    """``exit 3``, or ``killed by SIGKILL`` for a process a signal ended."""
    if code >= 0:
        return f"exit {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def _last_line(log: Path, since: int) -> str:
    """The last non-empty line written to ``log`` after byte ``since`` (cut to 200 chars)."""
    try:
        with open(log, "rb") as stream:
            stream.seek(max(since, stream.seek(0, os.SEEK_END) - LAST_LINE_BYTES))
            tail = stream.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""
