"""Is Kafka there? Every command that needs it asks first, so an unreachable or unset broker
is one clear line within seconds, naming the address tried, instead of a long wait."""

from __future__ import annotations

import errno
import socket
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from connectors.kafka.client_config import common_config
from connectors.kafka.errors import KafkaUnreachable
from schemas.config import KafkaSettings

REACH_TIMEOUT_S = 10.0
_CHECK = ("check kafka.bootstrap_servers (or FLOODGATE_KAFKA__BOOTSTRAP_SERVERS) and that it "
          "is running")



def require_kafka(settings: KafkaSettings, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """Return once a broker answered; KafkaUnreachable (or KafkaNotConfigured) otherwise.
    When no bootstrap address can be reached at all (a name that does not resolve, a port
    nothing listens on) that is said at once, not after ``timeout_s``."""
    client_settings = common_config(settings)  # KafkaNotConfigured first, when unset
    refusals = _refusals(settings.bootstrap_servers or "")
    if refusals:
        raise KafkaUnreachable(
            f"Kafka at {settings.bootstrap_servers}: {'; '.join(refusals)}; {_CHECK}")
    admin = AdminClient(client_settings)  # only once a bootstrap address can be reached
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            admin.poll(0.1)  # hands the client's own lines (connection refused, ...) to logging
            if time.monotonic() >= deadline:
                raise unreachable(settings, timeout_s, exc) from None


def unreachable(settings: KafkaSettings, timeout_s: float, exc: KafkaException) -> KafkaUnreachable:
    reason = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
    return KafkaUnreachable(f"Kafka at {settings.bootstrap_servers} did not answer within "
                            f"{timeout_s:.0f} s ({reason}); {_CHECK}")


def _refusals(bootstrap: str) -> list[str]:
    """Why each bootstrap address refuses at once, if every one does; [] when any accepts
    or merely takes its time (a slow network is the client's to wait for)."""
    said = []
    for address in filter(None, (a.strip() for a in bootstrap.split(","))):
        host, _, port = address.rpartition(":")
        host = host.split("://")[-1].strip("[]")
        if not host or not port.isdigit():
            return []  # a form the client may still know: let it judge
        try:
            with socket.create_connection((host, int(port)), timeout=3):
                return []
        except socket.gaierror:
            said.append(f"{host} does not resolve")
        except ConnectionRefusedError:
            said.append(f"connection refused on {host}:{port}")
        except OSError as exc:
            if exc.errno not in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                return []  # e.g. a timeout: perhaps only slow
            said.append(f"{host}:{port}: {exc.strerror}")
    return said
