"""SIGHUP's config reload: a good file is applied, a bad one refused with the old one kept."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import pytest

from pipeline.cli.config_reload import Reloader, threshold_changes
from schemas.config import FloodgateConfig
from schemas.config_file import load_config

BURST = "  - {name: burst, key: sasl_username, window: 30s, messages: 60, action: defer, duration: 15m}\n"


def test_a_good_config_is_applied_and_a_bad_one_refused(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "floodgate.yaml"
    path.write_text("thresholds:\n" + BURST)
    applied: list[FloodgateConfig] = []
    reloader = Reloader(str(path), load_config(path), applied.append, logging.getLogger("t"))
    path.write_text("thresholds:\n" + BURST.replace("60", "30")
                    + BURST.replace("burst", "spam").replace("sasl_username", "sender"))
    with caplog.at_level(logging.INFO):
        assert reloader.reload()
    assert [t.messages for t in applied[0].thresholds] == [30, 60]
    assert "added spam; changed burst" in caplog.text
    path.write_text("thresholds:\n" + BURST.replace("60", "sixty"))
    with caplog.at_level(logging.INFO):
        assert not reloader.reload()
    assert len(applied) == 1 and reloader.config is applied[0]
    assert "config reload refused; the running config stays in force" in caplog.text
    assert "thresholds[0].messages" in caplog.text
    path.write_text("kafka: {bootstrap_servers: 'elsewhere:9092'}\nthresholds:\n" + BURST)
    with caplog.at_level(logging.INFO):
        assert reloader.reload()
    assert "kafka changed; that takes effect at the next restart" in caplog.text


def test_sighup_reloads(tmp_path: Path) -> None:
    path = tmp_path / "floodgate.yaml"
    path.write_text("thresholds:\n" + BURST)
    applied: list[FloodgateConfig] = []
    previous = signal.getsignal(signal.SIGHUP)
    try:
        Reloader(str(path), load_config(path), applied.append, logging.getLogger("t")).on_sighup()
        os.kill(os.getpid(), signal.SIGHUP)
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert len(applied) == 1


def test_threshold_changes_names_nothing_when_nothing_changed() -> None:
    config = FloodgateConfig()
    assert threshold_changes(config, config) == "thresholds unchanged"
