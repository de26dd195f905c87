"""``floodgate ask`` against a policy server on a free port: the answer Postfix would get,
and clear errors for a service that is not there or arguments that are not attributes."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from connectors.postfix_policy.server import PolicyServer
from pipeline.cli import main
from tests.fixtures.policy_requests import make_server


@pytest.fixture
def server() -> Iterator[PolicyServer]:
    loop = asyncio.new_event_loop()
    policy = make_server()  # mallory is blocked
    loop.run_until_complete(policy.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield policy
    asyncio.run_coroutine_threadsafe(policy.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_ask_prints_what_postfix_would_be_told(server: PolicyServer,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    to = f"127.0.0.1:{server.port}"
    assert main(["ask", "--to", to, "sasl_username=mallory", "client_address=10.0.0.5"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("action=REJECT 5.7.1") and "answered in " in err
    assert main(["ask", "--to", to, "sasl_username=alice"]) == 0
    assert capsys.readouterr()[0] == "action=DUNNO\n"
    assert server.stats.requests == 2


def test_a_service_that_is_not_there_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["ask", "--to", f"127.0.0.1:{port}", "sasl_username=alice"]) == 1
    assert f"policy service 127.0.0.1:{port}:" in capsys.readouterr()[1]


def test_a_silent_service_times_out(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        assert main(["ask", "--to", f"127.0.0.1:{port}", "--timeout", "0.5",
                     "sasl_username=alice"]) == 1
    assert f"policy service 127.0.0.1:{port}: timed out" in capsys.readouterr()[1]


@pytest.mark.parametrize(("argv", "message"), [
    (["ask", "sasl_username"], "write NAME=VALUE"),
    (["ask", "sasl_username=a\nb"], "cannot hold a line break"),
    (["ask", "--timeout", "0", "a=b"], "above 0"),
])
def test_bad_arguments_are_usage_errors(argv: list[str], message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr()[1]
