"""``floodgate settings``: set, show, list, unset and import on a real broker, and replay with
the same settings."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from pipeline.cli import main
from schemas.config import KafkaSettings
from tests.pipeline.cli.cli_files import write_history

CLASSES = """
classes: {default: consumer, names: [consumer, business]}
thresholds:
  - {name: burst, key: sasl_username, window: 30s, messages: 60, action: defer, duration: 15m,
     per_class: {business: {messages: 600}}}
  - {name: all-spam, key: sender, window: 30s, messages: 10, spams: 10, action: block,
     duration: 1h}
"""


def settings_config(tmp_path: Path, kafka: KafkaSettings | None) -> str:
    path = tmp_path / "floodgate.yaml"
    head = ""
    if kafka is not None:
        head = (f"kafka: {{bootstrap_servers: '{kafka.bootstrap_servers}'}}\n"
                f"topics: {{subject_settings: settings-{uuid.uuid4().hex[:8]}}}\n")
    path.write_text(head + CLASSES)
    return str(path)


def test_set_show_list_unset(kafka_settings: KafkaSettings, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    config = settings_config(tmp_path, kafka_settings)
    assert main(["settings", "set", "sasl_username:alice", "--class", "business",
                 "--override", "burst.messages=900", "--config", config, "--actor", "ops",
                 "--reason", "ticketing system"]) == 0
    assert main(["settings", "set", "sender:Bob@Example.NET", "--off", "all-spam", "--exempt",
                 "--config", config, "--reason", "our own alerts"]) == 0
    capsys.readouterr()
    assert main(["settings", "show", "sasl_username:alice", "--config", config]) == 0
    out = capsys.readouterr()[0]
    assert "class business, burst messages=900" in out and "set by ops" in out
    assert "burst: >= 900 messages in 30s (override)" in out
    assert main(["settings", "list", "--config", config]) == 0
    out = capsys.readouterr()[0]
    assert "sasl_username:alice" in out and "sender:bob@example.net" in out  # one spelling
    assert main(["settings", "unset", "sasl_username:alice", "--config", config,
                 "--reason", "left us"]) == 0
    capsys.readouterr()
    assert main(["settings", "show", "sasl_username:alice", "--config", config]) == 0
    out = capsys.readouterr()[0]
    assert "no settings (class consumer)" in out
    assert "burst: >= 60 messages in 30s (class consumer)" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--class", "gold"], "unknown class 'gold'"),
    (["--override", "burst.volume=5"], "THRESHOLD.FIELD=N"),
    (["--override", "nosuch.messages=5"], "no threshold named nosuch"),
    (["--override", "burst.messages=0"], "greater than or equal to 1"),
])
def test_set_refuses_what_the_config_does_not_know(argv: list[str], message: str,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = settings_config(tmp_path, None)  # refused before Kafka is asked
    assert main(["settings", "set", "sasl_username:a", "--config", config, "--reason", "x",
                 *argv]) == 1
    assert message in capsys.readouterr()[1]


def test_import_reports_bad_rows_by_line_and_imports_the_rest(
        kafka_settings: KafkaSettings, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = settings_config(tmp_path, kafka_settings)
    export = tmp_path / "customers.csv"
    export.write_text("\n".join([
        "subject,class",
        "sasl_username:alice,business",
        "sasl_username:bob,gold",                      # 3: unknown class
        "nobody,business",                             # 4: no type
        "sasl_username:carol,business,extra",          # 5: three fields
        json.dumps({"subject": "sasl_username:dave", "class": "consumer",
                    "overrides": {"burst": {"messages": 5}}}),
        json.dumps({"subject": "sasl_username:erin", "overrides": {"nope": "off"}}),  # 7
        "{not json",                                   # 8
        "sasl_username:frank,",                        # no class: the default
    ]) + "\n")
    assert main(["settings", "import", str(export), "--config", config]) == 1
    err = capsys.readouterr()[1]
    for line in (3, 4, 5, 8):
        assert f"customers.csv:{line}:" in err, err
    assert "no threshold named nope" in err
    assert "imported 3 rows" in err and "5 bad rows skipped" in err
    assert main(["settings", "list", "--config", config]) == 0
    listed = capsys.readouterr()[0]
    assert all(f"sasl_username:{name}" in listed for name in ("alice", "dave", "frank"))
    assert "bob" not in listed and "erin" not in listed
    # A nightly export that no longer lists dave: --prune removes his settings.
    export.write_text("sasl_username:alice,business\nsasl_username:frank,consumer\n")
    assert main(["settings", "import", str(export), "--config", config, "--prune"]) == 0
    assert "1 subjects no longer listed removed" in capsys.readouterr()[1]
    assert main(["settings", "list", "--config", config]) == 0
    listed = capsys.readouterr()[0]
    assert "alice" in listed and "dave" not in listed


def test_replay_counts_by_the_settings_file(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = settings_config(tmp_path, None)
    history = write_history(tmp_path / "history.jsonl")  # alice sends 70 in 14 s
    assert main(["replay", history, "--config", config, "--format", "jsonl"]) == 0
    assert '"subject":"alice"' in capsys.readouterr()[0]
    export = tmp_path / "customers.csv"
    export.write_text("sasl_username:alice,business\n")
    assert main(["replay", history, "--config", config, "--format", "jsonl",
                 "--settings", str(export)]) == 0
    out, err = capsys.readouterr()
    assert '"subject":"alice"' not in out and "1 subject settings" in err
    export.write_text("sasl_username:alice,platinum\n")
    assert main(["replay", history, "--config", config, "--settings", str(export)]) == 1
    assert "customers.csv:1: unknown class 'platinum'" in capsys.readouterr()[1]
