"""``floodgate tail`` end to end on the test broker: rotation, copytruncate, kill -9, restart.

Every message written to the log must reach Kafka at least once (consumers drop
repeats by event_id), whatever happens to the file or the tailer.
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest

from schemas.config import KafkaSettings
from schemas.events import DeliveryEvent, MailEvent
from tests.figures import Figures
from tests.fixtures.tail_process import TailProcess, message_lines, tail_config
from tests.fixtures.topic_reader import read_all

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]


def append(path: Path, first: int, last: int) -> None:
    with open(path, "a") as log:
        for n in range(first, last):
            log.write("\n".join(message_lines(n)) + "\n")
            log.flush()


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
