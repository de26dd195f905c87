"""`floodgate replay` as an operator runs it: actions in time order, tables, bad input,
--compare, progress."""

import io
import json
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.cli.replay_cmd import Progress
from schemas.events import ActionEvent
from tests.pipeline.cli.cli_files import EXAMPLE, write_history


def test_replay_prints_the_seed_thresholds_actions_in_time_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["replay", write_history(tmp_path / "h.jsonl"), "--config", EXAMPLE,
                 "--format", "jsonl"])
    out, err = capsys.readouterr()
    assert code == 0, err
    actions = [ActionEvent.model_validate_json(line) for line in out.splitlines()]
    assert [(a.state.value, a.threshold, a.subject, a.action.value, a.ts.strftime("%H:%M:%S.%f"))
            for a in actions] == [
        ("active", "all-spam", "promo@spam.example", "block", "12:00:09.000000"),  # 10th spam
        ("active", "burst", "alice", "defer", "12:00:11.800000"),  # her 60th message
        ("expired", "burst", "alice", "defer", "12:15:11.800000"),
        ("expired", "all-spam", "promo@spam.example", "block", "13:00:09.000000"),
    ]
    burst = json.loads(out.splitlines()[1])
    assert burst["evidence"]["messages"] == 60 and burst["evidence"]["spams"] == 0
    assert burst["evidence"]["window_start"] == "2026-11-27T11:59:41.800000Z"
    assert "103 events (103 counted, 0 duplicates, 0 unreadable)" in err


def test_replay_table_and_bad_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = write_history(tmp_path / "h.jsonl")
    with open(history, "a") as f:
        f.write("{broken\n")
    code = main(["replay", history, "--config", EXAMPLE])
    out, err = capsys.readouterr()
    assert code == 1  # everything readable was replayed, but a line was skipped
    assert out.splitlines()[0].split()[:3] == ["TIME", "STATE", "ACTION"]
    assert "sasl_username:alice" in out and "sender:promo@spam.example" in out
    assert "h.jsonl:104: not valid JSON" in err


def test_replay_refuses_files_that_are_neither_events_nor_logs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = write_history(tmp_path / "h.jsonl")
    not_events = tmp_path / "other.json"
    not_events.write_text('{"a":1}\n')
    hostname = tmp_path / "hostname"
    hostname.write_text("mx1.example.net\n")
    code = main(["replay", history, str(not_events), str(hostname), "--config", EXAMPLE])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"{not_events}: no mail event and no syslog line in it" in err
    assert f"{hostname}: no mail event and no syslog line in it" in err
    assert "sasl_username:alice" in out  # the readable file was still replayed
    empty = tmp_path / "empty.log"
    empty.write_text("")
    assert main(["replay", history, str(empty), "--config", EXAMPLE]) == 0  # a quiet day's log


def test_replay_compare_prints_only_the_actions_that_differ(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stricter = tmp_path / "stricter.yaml"
    stricter.write_text(Path(EXAMPLE).read_text().replace("messages: 60", "messages: 75", 1))
    code = main(["replay", write_history(tmp_path / "h.jsonl"), "--config", EXAMPLE,
                 "--compare", str(stricter)])
    out, err = capsys.readouterr()
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["TIME", "STATE", "ACTION"]
    assert [row.split()[:5] for row in rows] == [  # alice's 70 messages never reach 75
        ["-", "2026-11-27T12:00:11.800Z", "active", "defer", "sasl_username:alice"],
        ["-", "2026-11-27T12:15:11.800Z", "expired", "defer", "sasl_username:alice"]]
    assert "2 action events only with --config, 0 only with --compare, 2 in both" in err
    assert main(["replay", write_history(tmp_path / "h2.jsonl"), "--config", EXAMPLE, "--compare",
                 str(stricter), "--format", "jsonl"]) == 0
    first = json.loads(capsys.readouterr()[0].splitlines()[0])
    assert first["only_with"] == "config" and first["action"]["subject"] == "alice"


def test_replay_progress_is_rewritten_in_place_and_cleared() -> None:
    now = [0.0]
    out = io.StringIO()
    progress = Progress(out, every_s=2.0, clock=lambda: now[0])
    progress.tick(10, 0)
    assert out.getvalue() == ""  # quick inputs print nothing
    now[0] = 2.5
    progress.tick(200_000, 14)
    now[0] = 3.0
    progress.tick(210_000, 14)  # not yet: every 2 s
    progress.done()
    assert out.getvalue() == "\r200,000 events replayed, 14 action events so far\r\x1b[K"


def test_replay_and_check_config_show_a_shadow_threshold(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shadow = tmp_path / "shadow.yaml"
    shadow.write_text(Path(EXAMPLE).read_text().replace("mode: enforce", "mode: shadow", 1))
    assert main(["check-config", str(shadow)]) == 0
    burst = next(line for line in capsys.readouterr()[0].splitlines() if "burst:" in line)
    assert burst.endswith("-> block for 1d (shadow: published, not applied)")
    assert main(["replay", write_history(tmp_path / "h.jsonl"), "--config", str(shadow)]) == 0
    header, *rows = capsys.readouterr()[0].splitlines()
    column = header.split().index("MODE")
    modes = {(row.split()[2], row.split()[3]): row.split()[column] for row in rows}
    assert modes[("defer", "sasl_username:alice")] == "shadow"  # side by side
    assert modes[("block", "sender:promo@spam.example")] == "enforce"
