"""The worker's internal records on ``floodgate.subject-events``: routed mail, in batches.

The worker's router reads ``floodgate.mail-events`` (and, when counting them,
``floodgate.policy-events`` and ``floodgate.deliveries``) and sends to each partition of
``floodgate.subject-events`` one ``SubjectBatch`` per source partition and
routing cycle: the messages of that source which count under a subject whose
state lives in that partition, reduced to what counting needs. One Kafka
record then carries hundreds of subject updates instead of one.

A batch also carries the source's *mark*: the newest event time routed from
that source partition so far (or, once the router has read the partition to
its end, the wall clock less ``worker.live_lateness_s``). A counting partition
applies its entries in event-time order up to the lowest mark of all sources,
so counts do not depend on how fast each source partition is read. A batch
with no entries is a mark alone.

Subject settings (``floodgate.subject-settings``, keyed by subject) are routed
the same way, in ``settings``: what counting needs of the record (class,
overrides, exemption, in the compact form of ``pipeline.engine.customisation``;
``None`` for a tombstone), its event time (the record's ``at``; a tombstone's
Kafka timestamp) and source offset, so a subject's settings reach the partition that holds its counts and
apply in event-time order with its mail, as in a Kafka Streams table join.

Records carry the header ``floodgate-kind: batch``; operators' lifts travel
on the same topic as ``ActionEvent`` JSON with ``floodgate-kind: lift``. A
batch also names the worker life that routed it (``floodgate-routed: <life>:<n>``):
a worker that holds the batch's counting partition has counted it already and
skips the copy it reads back.
"""

from __future__ import annotations

from typing import Annotated, Literal, NamedTuple

from pydantic import Field

from schemas.addresses import MAX_ADDRESS
from schemas.events import MAX_NAME, _Record

KIND_HEADER = "floodgate-kind"
ROUTED_HEADER = "floodgate-routed"
BATCH_KIND = b"batch"
LIFT_KIND = b"lift"


# bounds: a subject key is a type word, ":" and an address (Postfix allows long ones)
SubjectKey = Annotated[str, Field(min_length=3, max_length=MAX_ADDRESS + 32)]
Offset = Annotated[int, Field(ge=0)]
Millis = Annotated[int, Field(ge=0, lt=2**62)]
Units = Annotated[int, Field(ge=1, le=2**31 - 1)]
Hash64 = Annotated[int, Field(ge=0, lt=2**64)]
Word = Annotated[str, Field(max_length=16)]
Domain = Annotated[str | None, Field(max_length=MAX_NAME)]


def routed_tag(life: str, number: int) -> bytes:
    """``ROUTED_HEADER``'s value: the worker life that routed a batch, and its number."""
    return f"{life}:{number}".encode()


class SubjectEntry(NamedTuple):
    """One message counted under one subject (a JSON array on the wire, in this order)."""

    subject: str  # the subject key, ``type:value``
    offset: int  # the message's offset in its source partition
    ts_ms: int  # event time, milliseconds since the epoch
    flags: int  # schemas.vocabulary's FLAG_BITS, and DELIVERY_UNIT for a delivery attempt
    recipients: int  # >= 1 (1 for a delivery attempt)
    event_hash: int  # 64-bit hash of the event_id, or of a delivery's delivery_id (repeats
    # are dropped by it)
    direction: str  # a Direction word
    sender_domain: str | None


class SettingsEntry(NamedTuple):
    """A subject's new settings (a JSON array on the wire, in this order)."""

    subject: str
    offset: int  # the record's offset in its settings partition
    ts_ms: int  # when it applies from (event time)
    record: str | None  # the settings as counting reads them (compact JSON); None removes them


class SubjectBatch(_Record):
    """Routed messages of one source partition for one ``subject-events`` partition."""

    schema_version: Literal[1] = 1
    source_topic: str = Field(min_length=1, max_length=249)
    source_partition: int = Field(ge=0)
    upto: int = Field(ge=-1, description="Every message of the source up to this offset is routed")
    mark_ms: int | None = Field(None, description="Event time the source has reached (see above)")
    entries: list[tuple[SubjectKey, Offset, Millis, Annotated[int, Field(ge=0, le=255)], Units,
                        Hash64, Word, Domain]] = Field(
        default_factory=list, description="SubjectEntry fields, oldest source offset first")
    settings: list[tuple[SubjectKey, Offset, Millis, Annotated[str | None, Field(
        max_length=100_000)]]] = Field(
        default_factory=list, description="SettingsEntry fields, oldest source offset first")
