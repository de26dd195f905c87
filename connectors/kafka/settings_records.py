"""The subject-settings topic: operators' records out (one, or a million from an import),
and a background reader of the whole topic for those who need every subject's latest
record (the policy service's exemptions, ``settings show|list``, the console)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Producer

from connectors.kafka.client_config import consumer_config
from connectors.kafka.errors import NotConfirmed
from connectors.kafka.produce import produce_waiting
from connectors.kafka.topic_reader import CatchUpReader
from schemas.config import KafkaSettings
from schemas.subject_settings import SubjectSettings
from schemas.time_ms import to_ms, wall_ms

log = logging.getLogger("floodgate.settings")

SettingsChange = tuple[str, SubjectSettings | None]  # subject key, record (None: tombstone)
# Raw record of the topic: subject key (None when a record has none), value (None: tombstone)
Deliver = Callable[[str | None, bytes | None], None]


def publish_settings(producer: Producer, topic: str, changes: Iterable[SettingsChange],
                     timeout_s: float = 60, on_sent: Callable[[int], None] | None = None,
                     headers: dict[str, str] | None = None) -> int:
    """Produce every change, keyed by subject; return how many once Kafka confirmed them all.
    Raises NotConfirmed when Kafka refused one or did not answer in time. ``on_sent``: called
    with the count every 10,000 records (progress). ``headers``: on every record (who and
    why of a tombstone, which has no value to say it)."""
    extra: dict[str, Any] = {"headers": headers} if headers else {}
    failed: list[str] = []

    def confirmed(error: object, _message: object) -> None:
        if error is not None:
            failed.append(str(error))

    sent = 0
    for key, record in changes:
        value = record.to_json() if record is not None else None
        stamp = to_ms(record.at) if record is not None else wall_ms()
        produce_waiting(producer, topic, key=key.encode(), value=value, timestamp=stamp,
                        on_delivery=confirmed, **extra)
        sent += 1
        if sent % 10_000 == 0:
            producer.poll(0)
            if failed:
                break
            if on_sent is not None:
                on_sent(sent)
    if producer.flush(timeout_s) or failed:
        raise NotConfirmed(f"Kafka did not confirm the settings records within {timeout_s:.0f}s"
                           + (f": {failed[0]}" if failed else ""))
    return sent


class SettingsFeed(CatchUpReader):
    """Every record of the topic from its start, handed on raw: readers that keep only some
    (the policy service keeps exemptions) decide what to parse."""

    def __init__(self, settings: KafkaSettings, topic: str, deliver: Deliver) -> None:
        super().__init__(topic, consumer_config(settings, f"{settings.client_id}-settings",
                                                **{"enable.partition.eof": False}),
                         "settings-feed", log)
        self._deliver = deliver

    def _take(self, key: bytes | None, value: bytes | None, partition: int, offset: int) -> None:
        self._deliver(key.decode("utf-8", "replace") if key is not None else None, value)


def latest_settings(records: Iterable[tuple[str | None, bytes | None]]
                    ) -> dict[str, SubjectSettings]:
    """The latest valid record per subject (a tombstone removes it); bad records skipped."""
    latest: dict[str, SubjectSettings] = {}
    for key, value in records:
        if key is None:
            continue
        if value is None:
            latest.pop(key, None)
            continue
        try:
            latest[key] = SubjectSettings.model_validate_json(value)
        except ValueError as exc:
            log.warning("skipping bad settings record for %.200r: %s", key, exc)
    return latest
