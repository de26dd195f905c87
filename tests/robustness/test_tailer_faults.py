"""Faults: the tailer killed with SIGKILL at random moments while the log is written without
pause and rotated (renamed: mail.log to mail.log.1, .1 to .2, ...) every 1.5 s, so that
rotations happen while it is down and while it reads. Every message reaches Kafka."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import pytest

from schemas.config import KafkaSettings
from schemas.events import MailEvent
from tests.figures import Figures
from tests.fixtures.tail_process import TailProcess, message_lines, tail_config
from tests.fixtures.topic_reader import read_to_end

pytestmark = pytest.mark.slow
MESSAGES, PER_S, ROTATE_EVERY_S, KILLS = 6_000, 300, 1.5, 3


def write_and_rotate(log: Path, done: threading.Event) -> int:
    """Write MESSAGES at PER_S, rotating like logrotate's rename; returns the rotations."""
    rotations, started, rotated_at = 0, time.monotonic(), time.monotonic()
    out = open(log, "a")  # noqa: SIM115 - reopened at each rotation
    for n in range(MESSAGES):
        out.write("\n".join(message_lines(n)) + "\n")
        out.flush()
        if time.monotonic() - rotated_at >= ROTATE_EVERY_S:
            out.close()
            for k in range(rotations, 0, -1):
                Path(f"{log}.{k}").rename(f"{log}.{k + 1}")
            log.rename(f"{log}.1")
            out = open(log, "a")  # noqa: SIM115
            rotations, rotated_at = rotations + 1, time.monotonic()
        time.sleep(max(0.0, started + (n + 1) / PER_S - time.monotonic()))
    out.close()
    done.set()
    return rotations


def test_tailer_killed_during_rotations_loses_nothing(kafka_settings: KafkaSettings,
                                                      tmp_path: Path, figures: Figures) -> None:
    config, mail_topic, _ = tail_config(kafka_settings, tmp_path, 2)
    log = tmp_path / "mail.log"
    log.write_text("")
    tail = TailProcess(log, config, tmp_path / "tail.pos", tmp_path / "tail.out")
    rng = random.Random(int(time.time()))
    done = threading.Event()
    rotations: list[int] = []
    writer = threading.Thread(target=lambda: rotations.append(write_and_rotate(log, done)))
    kills = []
    tail.start()
    try:
        writer.start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(2, 5))
            tail.kill(signal.SIGKILL)
            down = rng.uniform(1, 4)  # long enough for one or two rotations
            kills.append(round(down, 1))
            time.sleep(down)
            tail.start()
        writer.join()
        time.sleep(6)  # caught up
    finally:
        tail.kill(signal.SIGTERM)
    events = [MailEvent.model_validate_json(v) for v in read_to_end(kafka_settings, mail_topic, 2)]
    expected = {f"mx1/{0xA00000 + n:X}" for n in range(MESSAGES)}
    missing = expected - {e.event_id for e in events}
    output = (tmp_path / "tail.out").read_text(errors="replace")[-3000:]
    assert not missing, f"{len(missing)} missing, e.g. {sorted(missing)[:3]}; down {kills} s\n{output}"
    figures.add(f"tailer SIGKILL x{KILLS}, down {', '.join(map(str, kills))} s, log rotated "
                f"every {ROTATE_EVERY_S} s ({rotations[0]} rotations)", f"{MESSAGES:,} messages",
                f"{len(events) - MESSAGES} repeats on the topic", lost=len(missing))
