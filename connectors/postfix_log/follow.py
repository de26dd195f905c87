"""Follow a growing log file across rename rotation, copytruncate and absence.

Yields complete lines with their position: ``(file number, offset)``, where
the file number grows by one at each rotation, so positions order across
files. ``inode_of`` maps a file number back to the file, for checkpoints.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from connectors.postfix_log.syslog_formats import MAX_LINE

Position = tuple[int, int]
_FINGERPRINT = 64
_ROTATED_SUFFIX = r"(\.\d+|-\d+)"  # logrotate's mail.log.1, or mail.log-20261127 (dateext)


@dataclass(frozen=True)
class StartAt:
    """Where to begin: an inode and an offset in it (from a checkpoint)."""

    inode: int
    offset: int


class FileFollower:
    def __init__(self, path: str, start: StartAt | None, stop: threading.Event,
                 poll_s: float = 0.2) -> None:
        self._path = Path(path)
        self._stop = stop
        self._poll_s = poll_s
        self._seq = 0
        self._inodes: dict[int, int] = {}
        self._start = start
        self.notes: list[str] = []  # what an operator should know (e.g. a lost checkpoint file)
        self._last_bytes = b""  # the end of what was read, to recognise a rewritten file
        self._finished: set[int] = set()  # inodes of rotated files read to their end

    def inode_of(self, seq: int) -> int | None:
        return self._inodes.get(seq)

    def forget_before(self, seq: int) -> None:
        for old in [s for s in self._inodes if s < seq]:
            del self._inodes[old]

    def lines(self) -> Iterator[tuple[str | None, Position]]:
        """(line, position of its start); (None, position) when idle, so callers can do other work."""
        stream, offset = self._open_first()
        partial = b""
        idle = False
        while not self._stop.is_set():
            if stream is None:
                stream, offset = self._reopen_current()
                if stream is None:
                    yield None, (self._seq, 0)
                    self._stop.wait(self._poll_s)
                    continue
            if idle and offset and not self._still_there(stream, offset):
                # Truncated (copytruncate) and written again past our offset while we
                # waited: what follows our offset is new text, so start over.
                stream.seek(0)
                offset, partial, self._last_bytes = 0, b"", b""
                self.notes.append(f"{self._path} was truncated (copytruncate); reading from its start")
            idle = False
            raw = stream.readline(MAX_LINE + 1)
            if raw.endswith(b"\n") or len(partial) + len(raw) > MAX_LINE:
                line, start = partial + raw, offset - len(partial)
                partial = b""
                offset += len(raw)
                self._last_bytes = (self._last_bytes + raw)[-_FINGERPRINT:]
                yield line.decode("utf-8", "replace"), (self._seq, start)
                continue
            if raw:  # a line still being written: keep it until its newline arrives
                partial += raw
                offset += len(raw)
                self._last_bytes = (self._last_bytes + raw)[-_FINGERPRINT:]
                continue
            switched = self._rotated_or_truncated(stream, offset)
            if switched == "rotated":
                finished = os.fstat(stream.fileno())
                stream.close()
                stream, partial, self._last_bytes = None, b"", b""
                self._seq += 1
                successor = self._successor(finished.st_ino, finished.st_mtime_ns)
                if successor is not None:  # rotated again meanwhile: that file before ours
                    stream, offset = self._open(successor, 0)
                continue
            if switched == "truncated":
                stream.seek(0)
                offset, partial, self._last_bytes = 0, b"", b""
                self.notes.append(f"{self._path} was truncated (copytruncate); reading from its start")
                continue
            idle = True
            yield None, (self._seq, offset)
            self._stop.wait(self._poll_s)
        if stream is not None:
            stream.close()

    def _still_there(self, stream: BinaryIO, offset: int) -> bool:
        """Whether the bytes we read last still end at ``offset`` (not truncated and rewritten)."""
        if not self._last_bytes:
            return True
        size = os.fstat(stream.fileno()).st_size
        if size < offset:
            return False
        start = offset - len(self._last_bytes)
        return os.pread(stream.fileno(), len(self._last_bytes), start) == self._last_bytes

    def _open_first(self) -> tuple[BinaryIO | None, int]:
        start = self._start
        if start is None:
            return self._reopen_current()
        current = _inode(self._path)
        if current == start.inode:
            return self._open(self._path, start.offset)
        rotated = self._find_inode(start.inode)
        if rotated is not None:
            self.notes.append(f"resuming in rotated file {rotated}, then {self._path}")
            return self._open(rotated, start.offset)
        self.notes.append(f"the checkpointed file (inode {start.inode}) is gone; "
                          f"reading {self._path} from its start")
        return self._reopen_current()

    def _reopen_current(self) -> tuple[BinaryIO | None, int]:
        if not self._path.exists():
            return None, 0
        return self._open(self._path, 0)

    def _open(self, path: Path, offset: int) -> tuple[BinaryIO | None, int]:
        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed by lines()
        except OSError:
            return None, 0
        size = os.fstat(stream.fileno()).st_size
        offset = offset if offset <= size else 0  # shorter than the checkpoint: truncated meanwhile
        stream.seek(offset)
        self._inodes[self._seq] = os.fstat(stream.fileno()).st_ino
        return stream, offset

    def _rotated_or_truncated(self, stream: BinaryIO, offset: int) -> str | None:
        try:
            on_disk = os.stat(self._path)
        except FileNotFoundError:
            return None  # gone for now: keep the old one open, look again later
        if on_disk.st_ino != os.fstat(stream.fileno()).st_ino:
            # Renamed away: finish the old file (already at its end), then the new one.
            return "rotated"
        if on_disk.st_size < offset:
            return "truncated"
        return None

    def _successor(self, inode: int, mtime_ns: int) -> Path | None:
        """The rotated file written after the one just finished, if it is not the current one.

        Rotated twice before we got to it (the tailer was down, or slow): mail.log.2 is
        done, but mail.log.1 came between it and mail.log. The next file is the oldest
        one modified after ours; compressed ones are beyond reading.
        """
        self._finished.add(inode)
        rotated = re.compile(re.escape(self._path.name) + _ROTATED_SUFFIX)
        newer: list[tuple[int, bool, Path]] = []
        for path in [self._path, *self._path.parent.glob(self._path.name + "*")]:
            if path != self._path and not rotated.fullmatch(path.name):
                continue  # compressed, or not a rotation of ours (a checkpoint, a lock)
            try:
                status = path.stat()
            except OSError:
                continue
            if status.st_ino not in self._finished and status.st_mtime_ns >= mtime_ns:
                newer.append((status.st_mtime_ns, path == self._path, path))
        following = min(newer, default=None)
        if following is None or following[2] == self._path:
            self._finished.clear()  # back on the current file: the chain is done
            return None
        self.notes.append(f"{following[2]} was rotated away before it was read: reading it first")
        return following[2]

    def _find_inode(self, inode: int) -> Path | None:
        for candidate in sorted(self._path.parent.glob(self._path.name + "*")):
            if _inode(candidate) == inode:
                return candidate
        return None


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None
