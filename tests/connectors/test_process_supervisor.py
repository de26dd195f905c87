"""The supervisor behind ``floodgate up``: children that die are restarted with their last
words reported, and one that keeps dying is given up on instead of looping for ever."""

from __future__ import annotations

import time
from pathlib import Path

from connectors.process_supervisor import Child, Supervisor
from pipeline.cli.up_cmd import restarting_text


def run_until(supervisor: Supervisor, done: object, timeout_s: float = 20) -> list[str]:
    events: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not done():  # type: ignore[operator]
        events += supervisor.check()
        time.sleep(0.05)
    return events


def test_a_child_that_keeps_failing_is_given_up_with_its_last_line(tmp_path: Path) -> None:
    failing = Child("worker", ["sh", "-c", "echo starting; echo 'port 127.0.0.1:10042 taken' >&2;"
                                           " exit 3"], tmp_path / "worker.log")
    steady = Child("policy-server", ["sleep", "30"], tmp_path / "policy.log")
    supervisor = Supervisor([failing, steady], backoff_s=(0.1,), max_failures=3)
    supervisor.start()
    try:
        events = run_until(supervisor, lambda: supervisor.given_up)
        assert [c.name for c in supervisor.given_up] == ["worker"]
        assert len(failing.history) == 3  # started three times, then left alone
        assert events[0] == (f"worker exited with 3; restarting in 0.1 s (see {failing.log}): "
                             "port 127.0.0.1:10042 taken")
        assert events[-1].startswith("worker exited with 3 3 times in 10 minutes; not restarting")
        time.sleep(0.3)
        assert supervisor.check() == [] and len(failing.history) == 3
        assert steady.process is not None and steady.process.poll() is None  # untouched
    finally:
        supervisor.stop()


def test_a_restarted_child_is_shown_as_restarting_until_it_stays_up(tmp_path: Path) -> None:
    marker = tmp_path / "ran-once"
    flaky = Child("tail", ["sh", "-c", f"[ -e {marker} ] && exec sleep 30; touch {marker}; "
                                       "echo 'log file gone'; exit 1"], tmp_path / "tail.log")
    supervisor = Supervisor([flaky], backoff_s=(0.1,), max_failures=3)
    supervisor.start()
    try:
        run_until(supervisor, lambda: len(flaky.history) == 2)
        assert [c.name for c in supervisor.restarting()] == ["tail"]
        assert flaky.last_error == "log file gone" and not supervisor.given_up
    finally:
        supervisor.stop()


def test_sighup_goes_to_the_children_that_reload_only(tmp_path: Path) -> None:
    script = "trap 'echo reloaded' HUP; echo up; while true; do sleep 0.1; done"
    reloading = Child("worker", ["sh", "-c", script], tmp_path / "worker.log", reloads=True)
    other = Child("demo-traffic", ["sleep", "30"], tmp_path / "demo.log")  # SIGHUP would end it
    supervisor = Supervisor([reloading, other])
    supervisor.start()
    try:
        deadline = time.monotonic() + 10
        while "up" not in reloading.log.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert supervisor.reload() == ["worker"]
        while "reloaded" not in reloading.log.read_text():
            assert time.monotonic() < deadline, reloading.log.read_text()
            time.sleep(0.05)
        assert other.process is not None and other.process.poll() is None
        assert reloading.process is not None and reloading.process.poll() is None
    finally:
        supervisor.stop()


def test_a_restarted_child_that_stays_up_is_well_again_and_a_kill_is_said(tmp_path: Path) -> None:
    """After ``kill -9`` the status names the signal, not the unrelated line the child last
    logged, and once the restart has stayed up it is no longer shown as failing."""
    marker = tmp_path / "ran-once"
    killed = Child("worker", ["sh", "-c", f"[ -e {marker} ] && exec sleep 30; touch {marker}; "
                                          "echo 'INFO counting cycle took 3 ms'; kill -9 $$"],
                   tmp_path / "worker.log")
    supervisor = Supervisor([killed], backoff_s=(0.1,), max_failures=3, settle_s=1.0)
    supervisor.start()
    try:
        run_until(supervisor, lambda: len(killed.history) == 2)
        assert killed.last_exit == "killed by SIGKILL"
        assert [c.name for c in supervisor.restarting()] == ["worker"]
        assert restarting_text(killed) == "worker restarted after killed by SIGKILL (1x in 10 min)"
        time.sleep(1.2)
        assert supervisor.restarting() == []
    finally:
        supervisor.stop()
