"""Load: ``floodgate tail`` on a log growing at 20,000 lines/s for 10 s. Every message reaches
Kafka and the tailer's memory stays bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from schemas.config import KafkaSettings
from schemas.events import MailEvent
from tests.figures import Figures
from tests.fixtures.processes import peak_rss_mib, start_floodgate, stop
from tests.fixtures.tail_process import message_lines, tail_config
from tests.fixtures.topic_reader import read_all

pytestmark = pytest.mark.slow
LINES_PER_S, SECONDS = 20_000, 10
MESSAGES = LINES_PER_S * SECONDS // len(message_lines(0))


def test_tailer_keeps_up_with_20k_lines_per_second(kafka_settings: KafkaSettings,
                                                   tmp_path: Path, figures: Figures) -> None:
    config, mail_topic, _ = tail_config(kafka_settings, tmp_path, 2)
    log = tmp_path / "mail.log"
    log.write_text("")
    tailer = start_floodgate(["tail", str(log), "--config", str(config), "--checkpoint",
                              str(tmp_path / "pos")], tmp_path / "tail.out")
    try:
        time.sleep(2)
        per_tick = len(message_lines(0))
        batch = LINES_PER_S // 20 // per_tick  # messages per 50 ms
        started = time.monotonic()
        written = 0
        with open(log, "a") as out:
            while written < MESSAGES:
                out.write("".join("\n".join(message_lines(n)) + "\n"
                                  for n in range(written, min(written + batch, MESSAGES))))
                out.flush()
                written = min(written + batch, MESSAGES)
                time.sleep(max(0.0, started + written * per_tick / LINES_PER_S - time.monotonic()))
        wrote_s = time.monotonic() - started
        events = read_all(kafka_settings, mail_topic, 2, MESSAGES, 120)
        caught_up_s = time.monotonic() - started
        rss = peak_rss_mib(tailer.pid)
    finally:
        stop(tailer)
    ids = {MailEvent.model_validate_json(v).queue_id for v in events}
    assert len(ids) == MESSAGES, f"{MESSAGES - len(ids)} messages missing"
    assert wrote_s < SECONDS * 1.5  # the writer really produced about 20,000 lines/s
    assert rss < 256, f"tailer peak RSS {rss:.0f} MiB"
    figures.add(f"log growing at {LINES_PER_S:,} lines/s for {SECONDS} s",
                f"{MESSAGES * per_tick:,} lines, {MESSAGES:,} messages",
                f"on Kafka {caught_up_s - wrote_s:.1f} s after the last line; tailer RSS "
                f"{rss:.0f} MiB", lost=MESSAGES - len(ids))
    print(f"{MESSAGES * per_tick:,} lines in {wrote_s:.1f} s; all {MESSAGES:,} messages on "
          f"Kafka after {caught_up_s:.1f} s; tailer peak RSS {rss:.0f} MiB")
