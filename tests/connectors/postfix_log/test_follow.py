"""FileFollower on its own: rotations it did not see happen are read in order."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from connectors.postfix_log.follow import FileFollower, StartAt


def read_until_idle(follower: FileFollower) -> list[str]:
    lines = []
    for line, _ in follower.lines():
        if line is None:
            break
        lines.append(line.strip())
    return lines


def test_two_rotations_while_down_are_read_oldest_first(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("a1\na2\n")
    checkpoint = StartAt(os.stat(log).st_ino, len("a1\n"))  # crashed after a1
    log.rename(tmp_path / "mail.log.1")
    log.write_text("b1\nb2\n")
    (tmp_path / "mail.log.1").rename(tmp_path / "mail.log.2")
    log.rename(tmp_path / "mail.log.1")
    log.write_text("c1\n")
    (tmp_path / "mail.log.3.gz").write_bytes(b"\x1f\x8b older, compressed")
    (tmp_path / "mail.log.pos").write_text('{"inode": 1, "offset": 2}\n')  # newest: not a log
    follower = FileFollower(str(log), checkpoint, threading.Event(), poll_s=0.01)
    assert read_until_idle(follower) == ["a2", "b1", "b2", "c1"]


def test_rotated_twice_between_two_polls(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("a1\n")
    follower = FileFollower(str(log), None, threading.Event(), poll_s=0.01)
    lines = follower.lines()
    assert next(lines)[0] == "a1\n"
    assert next(lines)[0] is None  # idle at the end of the first file
    log.rename(tmp_path / "mail.log.1")
    log.write_text("b1\n")
    (tmp_path / "mail.log.1").rename(tmp_path / "mail.log.2")
    log.rename(tmp_path / "mail.log.1")
    log.write_text("c1\n")
    got = []
    for line, _ in lines:
        if line is None:
            break
        got.append(line.strip())
    assert got == ["b1", "c1"]


def test_dateext_rotation_is_followed_too(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("a1\n")
    checkpoint = StartAt(os.stat(log).st_ino, 0)
    log.rename(tmp_path / "mail.log-20261126")
    log.write_text("b1\n")
    log.rename(tmp_path / "mail.log-20261127")
    log.write_text("c1\n")
    follower = FileFollower(str(log), checkpoint, threading.Event(), poll_s=0.01)
    assert read_until_idle(follower) == ["a1", "b1", "c1"]
