"""The probe and metrics endpoints every Floodgate process serves."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from connectors.http.observability import ObservabilityServer


def get(port: int, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def test_livez_readyz_metrics() -> None:
    registry = CollectorRegistry()
    requests = Counter("floodgate_test_requests", "test", ["answer"], registry=registry)
    requests.labels("DUNNO").inc(3)
    ready = [False]
    server = ObservabilityServer("127.0.0.1:0", lambda: ready[0], registry).start()
    try:
        assert get(server.port, "/livez")[0] == 200
        assert get(server.port, "/readyz")[0] == 503
        ready[0] = True
        assert get(server.port, "/readyz")[0] == 200
        status, kind, body = get(server.port, "/metrics")
        assert status == 200 and kind.startswith("text/plain")
        assert 'floodgate_test_requests_total{answer="DUNNO"} 3.0' in body
        assert re.search(r'floodgate_build_info\{python="3\.\d+\.\d+",version="[^"]+"\} 1\.0',
                         body), body
        assert get(server.port, "/nothing")[0] == 404
    finally:
        server.close()
