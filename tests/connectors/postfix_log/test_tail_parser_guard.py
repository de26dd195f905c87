"""The tailer skips a line its parser chokes on (a bug of ours) and reads on: the mail log
must not stop for one line."""

from __future__ import annotations

import threading
from pathlib import Path

from connectors.postfix_log.reader import LogReader
from connectors.postfix_log.tail import Tailer
from connectors.postfix_log.tracker import Output
from schemas.config import Networks, Topics
from schemas.direction import DirectionRules
from tests.fixtures.tail_doubles import AcceptingProducer, ListFollower
from tests.fixtures.tail_process import message_lines


class ChokingReader(LogReader):
    def feed_line(self, line: str, position: tuple[int, ...] = ()) -> list[Output]:
        if "BOOM" in line:
            raise ValueError("could not convert string to float: '0.3.'")
        return super().feed_line(line, position)


def test_a_line_the_parser_chokes_on_is_skipped_and_counted(tmp_path: Path) -> None:
    lines = [*message_lines(0), "Nov 27 10:00:01 mx1 postfix/smtp[10]: BOOM", *message_lines(1)]
    producer = AcceptingProducer()
    tailer = Tailer(ChokingReader(DirectionRules(Networks(internal=["10.0.0.0/8"]))),
                    ListFollower(lines), producer, Topics(),  # type: ignore[arg-type]
                    tmp_path / "pos", threading.Event())
    tailer.run()
    assert tailer.parser_errors == 1
    assert producer.topics.count(Topics().mail_events) == 2  # both messages, around the bad line
