"""``/livez``, ``/readyz`` and ``/metrics`` (Prometheus text format) over HTTP.

One small threaded server for every Floodgate process (worker, policy
service, tailer), so probes and scrapes never wait on the process's own loop.
Metrics carry no user, sender or address as a label: only fixed words.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from connectors.release import release


def counter_families(prefix: str, rows: Iterable[tuple[str, float, str]]
                     ) -> Iterator[CounterMetricFamily]:
    """Counters read at scrape time from a process's own tallies: (name, value, help) rows."""
    for name, value, text in rows:
        yield CounterMetricFamily(f"{prefix}_{name}", text, value=value)


class HealthListenError(OSError):
    """The health address cannot be listened on (taken, or not this host's)."""


class BuildInfo(Collector):
    """``floodgate_build_info{version, python}`` 1: which release a process runs, for fleets
    mid-upgrade and for joining with other metrics."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        info = GaugeMetricFamily("floodgate_build_info", "Floodgate release this process runs",
                                 labels=["version", "python"])
        info.add_metric([release(), platform.python_version()], 1)
        yield info


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class ObservabilityServer:
    def __init__(self, listen: str, ready: Callable[[], bool], registry: CollectorRegistry) -> None:
        self._ready, self._registry = ready, registry
        registry.register(BuildInfo())
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer._respond(self)

            def log_message(self, *args: object) -> None:
                pass  # probes every few seconds would drown the log

        try:
            self._server = ThreadingHTTPServer(split_listen(listen), Handler)
        except OSError as exc:  # name the address: "Address already in use" alone says nothing
            raise HealthListenError(f"cannot serve /livez, /readyz and /metrics on {listen}: "
                                    f"{exc.strerror or exc}") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="observability",
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> ObservabilityServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _respond(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path == "/livez":
            status, kind, body = 200, "text/plain", b"ok\n"
        elif path == "/readyz":
            ready = self._ready()
            status, kind, body = (200 if ready else 503), "text/plain", (
                b"ready\n" if ready else b"not ready\n")
        elif path == "/metrics":
            status, kind, body = 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        else:
            status, kind, body = 404, "text/plain", b"try /livez, /readyz or /metrics\n"
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
