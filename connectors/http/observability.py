"""``/livez``, ``/readyz`` and ``/metrics`` (Prometheus text format) over HTTP.

Served by ``connectors.http.server`` in every Floodgate process (worker,
policy service, tailer), so probes and scrapes never wait on the process's own loop.
Metrics carry no user, sender or address as a label: only fixed words.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from connectors.http.server import SmallHttpServer
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


class ObservabilityServer:
    def __init__(self, listen: str, ready: Callable[[], bool], registry: CollectorRegistry) -> None:
        self._ready, self._registry = ready, registry
        registry.register(BuildInfo())
        try:
            self._server = SmallHttpServer(listen, self._respond, "observability")
        except OSError as exc:  # name the address: "Address already in use" alone says nothing
            raise HealthListenError(f"cannot serve /livez, /readyz and /metrics on {listen}: "
                                    f"{exc.strerror or exc}") from None

    @property
    def port(self) -> int:
        return self._server.address[1]

    def start(self) -> ObservabilityServer:
        self._server.start()
        return self

    def close(self) -> None:
        self._server.close()

    def _respond(self, request: BaseHTTPRequestHandler, _method: str) -> None:
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
