"""Small builders for engine tests: events and configs with sensible defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.config import FloodgateConfig
from schemas.events import DeliveryEvent, MailEvent
from schemas.thresholds import Threshold

T0 = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
_counter = iter(range(10**12))


def mail(at_ms: int = 0, **fields: Any) -> MailEvent:
    """An accepted outbound message from alice@example.net at T0 + at_ms."""
    values: dict[str, Any] = {
        "event_id": f"mx1:{next(_counter)}",
        "ts": T0 + timedelta(milliseconds=at_ms),
        "host": "mx1",
        "client_ip": "10.0.0.5",
        "sasl_username": "alice",
        "sender": "alice@example.net",
        "recipients": ["bob@example.com"],
        "direction": "outbound",
        "accepted": True,
        "source": "log",
    }
    values.update(fields)
    return MailEvent(**values)


def delivery(at_ms: int = 0, status: str = "sent", response: str | None = None,
             **fields: Any) -> DeliveryEvent:
    """An outbound delivery attempt of alice@example.net's mail at T0 + at_ms."""
    number = next(_counter)
    values: dict[str, Any] = {
        "delivery_id": f"mx1/Q{number}/bob@example.com/{at_ms}/{status}",
        "event_id": f"mx1:{number}",
        "ts": T0 + timedelta(milliseconds=at_ms),
        "host": "mx1",
        "queue_id": f"Q{number}",
        "recipient": "bob@example.com",
        "status": status,
        "dsn": {"sent": "2.0.0", "deferred": "4.7.0"}.get(status, "5.1.1"),
        "response": response,
        "client_ip": "10.0.0.5",
        "sasl_username": "alice",
        "sender": "alice@example.net",
        "direction": "outbound",
    }
    values.update(fields)
    return DeliveryEvent(**values)


def threshold(**fields: Any) -> Threshold:
    values: dict[str, Any] = {"name": "t", "key": "sasl_username", "window": "30s",
                              "messages": 60, "action": "defer", "duration": "15m"}
    values.update(fields)
    return Threshold(**values)


def config(*thresholds: Threshold, **sections: Any) -> FloodgateConfig:
    return FloodgateConfig(thresholds=list(thresholds), **sections)
