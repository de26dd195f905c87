"""Local state tied to the Kafka topics it was read from.

The policy service's action store and the worker's counting stores hold what
they read from topics, with the offsets they read up to. Against another
cluster, or topics deleted and created again (a new embedded broker, a
rebuilt cluster), those offsets mean nothing: resuming from them skips
records or counts stale ones. So each state directory records the cluster id
and the ids of its topics (``kafka-identity.json``); when they differ, the
state is deleted and built afresh from the topics, and the caller says so.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient

from connectors.kafka.client_config import common_config
from connectors.kafka.errors import KafkaUnreachable
from connectors.kafka.reachability import unreachable
from schemas.config import KafkaSettings

IDENTITY_FILE = "kafka-identity.json"


@dataclass(frozen=True)
class TopicIdentity:
    cluster_id: str
    topic_ids: dict[str, str]  # topic name -> the id the cluster gave it when it was created

    def to_json(self) -> str:
        return json.dumps({"cluster_id": self.cluster_id, "topic_ids": self.topic_ids},
                          sort_keys=True)


def read_identity(settings: KafkaSettings, topics: list[str],
                  timeout_s: float = 10.0) -> TopicIdentity:
    """The cluster id and the ids of ``topics`` (which must exist)."""
    admin = AdminClient(common_config(settings))
    try:
        cluster_id = admin.list_topics(timeout=timeout_s).cluster_id or ""
        described = admin.describe_topics(TopicCollection(topics), request_timeout=timeout_s)
        ids = {name: str(future.result(timeout_s).topic_id) for name, future in described.items()}
    except KafkaException as exc:
        raise unreachable(settings, timeout_s, exc) from None
    except TimeoutError:
        raise KafkaUnreachable(f"Kafka at {settings.bootstrap_servers}: no answer about "
                               f"{', '.join(topics)} in {timeout_s:.0f} s") from None
    return TopicIdentity(cluster_id, ids)


def claim_state(directory: Path, identity: TopicIdentity, has_state: bool) -> str | None:
    """Record that ``directory``'s state belongs to ``identity``. When it holds state read
    from other topics, return one line saying so: the caller then drops that state.
    None when the state is this identity's, or there is none."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / IDENTITY_FILE
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        stored = None
    before = TopicIdentity(str(stored.get("cluster_id", "")), dict(stored.get("topic_ids", {}))
                           ) if isinstance(stored, dict) else None
    said = None
    if has_state and before != identity:
        said = (f"{directory}: its state was read from "
                f"{_describe(before) if before else 'unrecorded topics'}, not from "
                f"{_describe(identity)} (a new broker, or topics created again): "
                "starting afresh from the topics")
    path.write_text(identity.to_json())
    return said


def reset_if_moved(directory: Path, identity: TopicIdentity, owned: list[Path]) -> str | None:
    """``claim_state`` for state kept in files: the ``owned`` paths (only what the state is
    made of) are deleted when it was read from other topics."""
    said = claim_state(directory, identity, any(p.exists() for p in owned))
    if said is not None:
        for owned_path in owned:
            if owned_path.is_dir():
                shutil.rmtree(owned_path)
            elif owned_path.exists():
                owned_path.unlink()
    return said


def _describe(identity: TopicIdentity) -> str:
    topics = ", ".join(f"{name} {topic_id}" for name, topic_id in sorted(identity.topic_ids.items()))
    return f"cluster {identity.cluster_id or '?'} ({topics})"
