"""``floodgate tail`` end to end on the test broker: rotation, copytruncate, kill -9, restart.

Every message written to the log must reach Kafka at least once (consumers drop
repeats by event_id), whatever happens to the file or the tailer.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from connectors.kafka.topics import TopicSpec, ensure_topics
from schemas.config import KafkaSettings
from schemas.events import DeliveryEvent, MailEvent
from tests.figures import Figures
from tests.fixtures.processes import start_floodgate, stop
from tests.fixtures.topic_reader import read_all

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]


def message_lines(n: int) -> list[str]:
    qid = f"{0xA00000 + n:X}"
    stamp = f"Nov 27 10:{n // 60 % 60:02d}:{n % 60:02d}"
    return [
        f"{stamp} mx1 postfix/submission/smtpd[7]: {qid}: client=c[10.0.0.{n % 200 + 1}], "
        f"sasl_method=PLAIN, sasl_username=user{n % 17}",
        f"{stamp} mx1 postfix/cleanup[8]: {qid}: message-id=<{n}@example.net>",
        f"{stamp} mx1 postfix/qmgr[9]: {qid}: from=<user{n % 17}@example.net>, size=900, nrcpt=1 "
        "(queue active)",
        f"{stamp} mx1 postfix/smtp[10]: {qid}: to=<r{n}@far.example>, relay=mx[192.0.2.1]:25, "
        "delay=0.5, delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 ok)",
        f"{stamp} mx1 postfix/qmgr[9]: {qid}: removed",
    ]


def append(path: Path, first: int, last: int) -> None:
    with open(path, "a") as log:
        for n in range(first, last):
            log.write("\n".join(message_lines(n)) + "\n")
            log.flush()


class TailProcess:
    def __init__(self, log: Path, config: Path, checkpoint: Path, out: Path) -> None:
        self._args = ["tail", str(log), "--config", str(config), "--checkpoint", str(checkpoint)]
        self._out = out
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = start_floodgate(self._args, self._out)

    def kill(self, sig: int) -> None:
        stop(self.process, sig)


def tail_config(kafka_settings: KafkaSettings, tmp_path: Path, partitions: int
                ) -> tuple[Path, str, str]:
    """A config with topics of its own: (path, mail topic, delivery topic)."""
    mail_topic, delivery_topic = f"mail-{uuid.uuid4().hex[:6]}", f"dlv-{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka_settings, [TopicSpec(mail_topic, partitions),
                                   TopicSpec(delivery_topic, partitions)])
    config = tmp_path / "floodgate.yaml"
    config.write_text(f"kafka: {{bootstrap_servers: '{kafka_settings.bootstrap_servers}'}}\n"
                      f"topics: {{mail_events: {mail_topic}, deliveries: {delivery_topic}}}\n"
                      "networks: {internal: [10.0.0.0/8], local_domains: [example.net]}\n")
    return config, mail_topic, delivery_topic


def test_tail_loses_nothing_through_rotation_truncation_and_kill(
    kafka_settings: KafkaSettings, tmp_path: Path, figures: Figures
) -> None:
    config, mail_topic, delivery_topic = tail_config(kafka_settings, tmp_path, 3)
    log, checkpoint = tmp_path / "mail.log", tmp_path / "tail.pos"
    tail = TailProcess(log, config, checkpoint, tmp_path / "tail.out")

    append(log, 0, 100)
    tail.start()
    time.sleep(3)
    log.rename(tmp_path / "mail.log.1")          # rename rotation
    append(log, 100, 200)
    time.sleep(3)
    tail.kill(signal.SIGKILL)                     # crash, then more mail while it is down
    append(log, 200, 250)
    log.rename(tmp_path / "mail.log.2")          # rotated while down: found again by its inode
    append(log, 250, 300)
    tail.start()
    time.sleep(4)                                 # caught up: copytruncate loses nothing now
    shutil.copy(log, tmp_path / "mail.log.3")     # copytruncate while it runs
    with open(log, "r+") as f:
        f.truncate(0)
    append(log, 300, 400)
    time.sleep(3)
    log.unlink()                                  # gone for a while, then back
    time.sleep(1)
    append(log, 400, 450)
    time.sleep(4)
    tail.kill(signal.SIGTERM)

    mails = [MailEvent.model_validate_json(v) for v in read_all(kafka_settings, mail_topic, 3, 450, 60)]
    deliveries = [DeliveryEvent.model_validate_json(v)
                  for v in read_all(kafka_settings, delivery_topic, 3, 450, 30)]
    expected = {f"mx1/{0xA00000 + n:X}" for n in range(450)}
    assert {m.event_id for m in mails} == expected, (tmp_path / "tail.out").read_text()[-3000:]
    assert {d.event_id for d in deliveries} == expected
    sample = next(m for m in mails if m.event_id == "mx1/A00005")
    assert (sample.sasl_username, sample.sender, sample.direction.value) == (
        "user5", "user5@example.net", "outbound")
    assert len(mails) < 2 * 450  # repeats after the crash are bounded, not a full re-read
    assert checkpoint.exists()
    figures.add("tailer SIGKILL, rotations, copytruncate, file gone", "450 logged messages",
                f"{len(mails) - 450} repeats on the topic", lost=len(expected - {m.event_id for m in mails}))
