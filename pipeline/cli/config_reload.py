"""Config reload on SIGHUP, the same for every long-running command.

The file is read and checked exactly as ``check-config`` does; a config that
fails is refused with every problem in the log, and the one in force stays.
What a process can apply live it applies (``apply``); sections that only take
effect at a restart (listen addresses, Kafka connection, data directories,
partition counts) are named in the log.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable

from schemas.config import FloodgateConfig
from schemas.config_file import ConfigError, load_config

Apply = Callable[[FloodgateConfig], None]
# Sections a running process never re-reads: changing them needs a restart.
RESTART_SECTIONS = ("kafka", "topics")


def reread(path: str, running: FloodgateConfig, log: logging.Logger) -> FloodgateConfig | None:
    """The file's config when it passes ``check-config``, else None after logging why."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        log.error("config reload refused; the running config stays in force. %s: %d "
                  "problem(s): %s", path, len(exc.problems),
                  "; ".join(str(p) for p in exc.problems))
        return None
    except OSError as exc:
        log.error("config reload refused; the running config stays in force: %s", exc)
        return None
    for section in RESTART_SECTIONS:
        if getattr(config, section) != getattr(running, section):
            log.warning("config reload: %s changed; that takes effect at the next restart",
                        section)
    return config


def threshold_changes(old: FloodgateConfig, new: FloodgateConfig) -> str:
    """``added a, b; changed c; removed d``, or ``thresholds unchanged``."""
    before = {t.name: t for t in old.thresholds}
    after = {t.name: t for t in new.thresholds}
    parts = []
    for word, names in (("added", [n for n in after if n not in before]),
                        ("changed", [n for n in after if n in before and after[n] != before[n]]),
                        ("removed", [n for n in before if n not in after])):
        if names:
            parts.append(f"{word} {', '.join(names)}")
    return "; ".join(parts) or "thresholds unchanged"


class Reloader:
    """Holds the config in force; ``reload`` re-reads ``path`` and applies a good one."""

    def __init__(self, path: str, config: FloodgateConfig, apply: Apply,
                 log: logging.Logger) -> None:
        self.path, self.config, self._apply, self._log = path, config, apply, log
        self.reloads = 0

    def reload(self) -> bool:
        new = reread(self.path, self.config, self._log)
        if new is None:
            return False
        self._log.info("config reloaded from %s: %s", self.path,
                       threshold_changes(self.config, new))
        self._apply(new)
        self.config = new
        self.reloads += 1
        return True

    def on_sighup(self) -> None:
        """Reload when the process gets SIGHUP (a plain handler: for processes whose main
        thread runs Python code, not an asyncio loop)."""
        signal.signal(signal.SIGHUP, lambda *_: self.reload())
