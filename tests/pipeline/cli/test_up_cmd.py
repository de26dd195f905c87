"""``floodgate up --demo``: the whole single-host tree starts, demo traffic gets an account
deferred by the policy service, and SIGTERM leaves no process behind."""

from __future__ import annotations

import re
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from connectors.kafka.embedded_broker import free_port
from pipeline.cli import build_parser
from tests.fixtures.processes import REPO, start, stop, up_environment

pytestmark = pytest.mark.slow
CONFIG = REPO / "deploy" / "examples" / "single-host.yaml"
ASK = (b"request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nsasl_username=compromised\n"
       b"sender=compromised@example.net\nclient_address=10.0.0.7\n\n")


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children re-parented nowhere yet), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def ask(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(ASK)
        reply = b""
        while not reply.endswith(b"\n\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply


def test_up_with_demo_traffic_defers_the_bursting_account_and_stops_clean(tmp_path: Path) -> None:
    policy_port = free_port()
    env = up_environment(tmp_path, policy_port, free_port(), "up")
    first, first_s, text = up_until_deferred(tmp_path, env, policy_port, "first")
    # the address ends at a space: copied with a double click it is HOST:PORT, not "PORT:"
    assert re.search(r"embedded broker \(Tansu\) on 127\.0\.0\.1:\d+ \(in memory only", text)
    assert f"inet:127.0.0.1:{policy_port}" in text
    assert "starting afresh" not in text
    # The same folder again: a new, empty broker. The state the first run left (the policy
    # service's stored actions and offsets, the worker's counts) belongs to the old broker.
    second, seconds, text = up_until_deferred(tmp_path, env, policy_port, "second")
    assert text.count("starting afresh from the topics") == 2, text[-3000:]  # worker, policy
    assert reference(second) != reference(first)  # this run's action, not the stored one
    print(f"quick start: the demo's account deferred {first_s:.1f} s after `up` (the same "
          f"folder again: {seconds:.1f} s)")
    assert seconds < 60, f"deferred only after {seconds:.0f} s"


def reference(answer: bytes) -> bytes:
    """The action's reference at the end of a DEFER reply (the action id's first characters)."""
    return answer.rstrip().rsplit(b" ", 1)[-1]


def up_until_deferred(tmp_path: Path, env: dict[str, str], policy_port: int,
                      run: str) -> tuple[bytes, float, str]:
    """``up --demo`` until the policy service defers the demo's bursting account, then
    SIGTERM: the answer, how long it took, what ``up`` printed. Asserts a clean stop."""
    out = tmp_path / f"up-{run}.out"
    started = time.monotonic()
    up = start([sys.executable, "-m", "pipeline.cli", "up", "--config", str(CONFIG), "--demo",
                "--state-dir", str(tmp_path / "state")], out, env)
    tree: set[int] = set()
    answer = b""
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not answer.startswith(b"action=DEFER"):
            time.sleep(1)
            tree |= descendants(up.pid)
            try:
                answer = ask(policy_port)
            except OSError:
                continue
        seconds = time.monotonic() - started
        assert answer.startswith(b"action=DEFER 4.7.1"), out.read_text()[-3000:]
        tree |= descendants(up.pid)
        assert len(tree) >= 5  # broker, worker, policy service, console, demo traffic
    finally:
        stop(up, signal.SIGTERM, timeout_s=90)
    assert up.returncode == 0
    text = out.read_text()
    assert "stopped: no process left" in text
    left = [pid for pid in tree if alive(pid)]
    assert not left, f"still running: {left}"
    return answer, seconds, text


def test_up_s_default_state_folder_is_ignored_by_git() -> None:
    default = build_parser().parse_args(["up", "--config", "x.yaml"]).state_dir
    ignored = (REPO / ".gitignore").read_text().split()
    assert f"{default}/" in ignored
