"""Run a few child processes as one tree: restart the ones that die, stop them all by PID.

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
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    finished: bool = False  # a child that may end (restart=False) and did
    history: list[int] = field(default_factory=list)  # PIDs it ran as

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


class Supervisor:
    def __init__(self, children: list[Child]) -> None:
        self.children = children

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
                delay = RESTART_BACKOFF_S[min(child.restarts, len(RESTART_BACKOFF_S) - 1)]
                child.next_start = now + delay
                child.restarts += 1
                events.append(f"{child.name} exited with {code}; restarting in {delay} s "
                              f"(see {child.log})")
            elif process is None and not child.finished and now >= child.next_start:
                self._spawn(child)
        return events

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
            child.process = subprocess.Popen(
                child.command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env, start_new_session=True, preexec_fn=_die_with_parent)
        child.history.append(child.process.pid)
