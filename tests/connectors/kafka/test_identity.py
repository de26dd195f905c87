"""State tied to the topics it was read from: kept for the same topics, dropped (and said)
for a new broker or topics created again."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import pytest

from connectors.kafka.errors import KafkaUnreachable
from connectors.kafka.identity import (
    TopicIdentity,
    claim_state,
    read_identity,
    reset_if_moved,
)
from connectors.kafka.reachability import require_kafka
from connectors.kafka.topics import TopicSpec, ensure_topics
from schemas.config import KafkaSettings

OLD = TopicIdentity("cluster-a", {"floodgate.actions": "id-1"})
NEW = TopicIdentity("cluster-a", {"floodgate.actions": "id-2"})


def test_state_of_the_same_topics_is_kept(tmp_path: Path) -> None:
    assert claim_state(tmp_path, OLD, has_state=False) is None  # first run: nothing to say
    assert claim_state(tmp_path, OLD, has_state=True) is None  # a restart: resume


def test_state_of_other_topics_is_dropped_and_said(tmp_path: Path) -> None:
    store = tmp_path / "counting"
    assert claim_state(tmp_path, OLD, has_state=False) is None  # the first run's start
    (store / "p0").mkdir(parents=True)
    (store / "p0" / "data").write_text("counts")
    keep = tmp_path / "other.txt"
    keep.write_text("not ours")
    assert reset_if_moved(tmp_path, OLD, [store]) is None
    said = reset_if_moved(tmp_path, NEW, [store])
    assert said is not None and "floodgate.actions id-1" in said
    assert "floodgate.actions id-2" in said and "starting afresh" in said
    assert not store.exists() and keep.read_text() == "not ours"  # only what it owns
    assert reset_if_moved(tmp_path, NEW, [store]) is None  # recorded: the next start resumes


def test_state_without_a_recorded_identity_is_rebuilt(tmp_path: Path) -> None:
    said = claim_state(tmp_path, OLD, has_state=True)  # written by a version that kept none
    assert said is not None and "unrecorded topics" in said


@pytest.mark.slow
def test_topics_created_again_get_a_new_identity(kafka_settings: KafkaSettings) -> None:
    first, second = f"id-a-{uuid.uuid4().hex[:6]}", f"id-b-{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka_settings, [TopicSpec(first, 1), TopicSpec(second, 1)])
    one = read_identity(kafka_settings, [first, second])
    assert one == read_identity(kafka_settings, [first, second])  # stable
    assert one.topic_ids[first] != one.topic_ids[second]
    assert one.cluster_id


def test_an_unreachable_broker_is_named_within_the_timeout() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
    began = time.monotonic()
    with pytest.raises(KafkaUnreachable, match=f"Kafka at 127.0.0.1:{port}"):
        read_identity(settings, ["t"], timeout_s=3)
    with pytest.raises(KafkaUnreachable, match=f"Kafka at 127.0.0.1:{port}: connection refused"):
        require_kafka(settings, timeout_s=3)  # said at once: nothing listens there
    assert time.monotonic() - began < 10
