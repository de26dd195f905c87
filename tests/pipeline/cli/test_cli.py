"""The floodgate command as an operator runs it."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.cli.replay_cmd import Progress
from schemas.events import ActionEvent
from tests.pipeline.engine.builders import mail

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = str(REPO / "deploy" / "examples" / "floodgate.yaml")


def _history(path: Path) -> str:
    """Alice bursts 70 messages in 14 s; a spammer sends 12 spams in 12 s; carol is quiet."""
    events = [mail(i * 200, sasl_username="alice", sender="alice@example.net") for i in range(70)]
    events += [mail(i * 1_000, sasl_username="mallory", sender="promo@spam.example",
                    spam=True, spam_score=15.0) for i in range(12)]
    events += [mail(i * 5_000, sasl_username="carol", sender="carol@example.net")
               for i in range(20)]
    events += [mail(4_000_000, sasl_username="carol", sender="carol@example.net")]  # 66 min later
    events.sort(key=lambda e: e.ts)
    path.write_text("".join(e.model_dump_json() + "\n" for e in events))
    return str(path)


def test_replay_prints_the_seed_thresholds_actions_in_time_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["replay", _history(tmp_path / "h.jsonl"), "--config", EXAMPLE,
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
    history = _history(tmp_path / "h.jsonl")
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
    history = _history(tmp_path / "h.jsonl")
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
    code = main(["replay", _history(tmp_path / "h.jsonl"), "--config", EXAMPLE,
                 "--compare", str(stricter)])
    out, err = capsys.readouterr()
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["TIME", "STATE", "ACTION"]
    assert [row.split()[:5] for row in rows] == [  # alice's 70 messages never reach 75
        ["-", "2026-11-27T12:00:11.800Z", "active", "defer", "sasl_username:alice"],
        ["-", "2026-11-27T12:15:11.800Z", "expired", "defer", "sasl_username:alice"]]
    assert "2 action events only with --config, 0 only with --compare, 2 in both" in err
    assert main(["replay", _history(tmp_path / "h2.jsonl"), "--config", EXAMPLE, "--compare",
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


def test_check_config_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", EXAMPLE]) == 0
    assert "burst: >= 60 messages in 30s per sasl_username" in capsys.readouterr()[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text("thresholds:\n  - {name: a, key: sender, window: 30x, messages: 1, "
                   "action: warn, duration: 1m}\n")
    assert main(["check-config", str(bad)]) == 1
    assert 'bad.yaml:2: thresholds[0].window: "30x" is not a duration' in capsys.readouterr()[1]
    bad.write_text("thresholds:\n  - {name: a, key: sender, window: 30s, messages: 1, "
                   "action: warn, duration: 3000000d}\nlog_reading: {spam_replies: ['(unclosed']}\n")
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr()[1]
    assert 'duration: "3000000d" is out of range' in err
    assert "log_reading.spam_replies[0]" in err and "is not a regular expression" in err


def test_check_config_takes_config_like_every_other_command(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", EXAMPLE]) == 0
    assert "OK, " in capsys.readouterr()[0]
    for argv in (["check-config"], ["check-config", EXAMPLE, "--config", EXAMPLE]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert "give the config file once" in capsys.readouterr()[1]


def test_schemas_export_then_check(tmp_path: Path) -> None:
    assert main(["schemas", "export", str(tmp_path)]) == 0
    assert main(["schemas", "check", str(tmp_path)]) == 0
    (tmp_path / "config.schema.json").write_text("{}")
    assert main(["schemas", "check", str(tmp_path)]) == 1


def test_console_script_and_usage_errors(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("floodgate")
    done = subprocess.run([str(script), "check-config", EXAMPLE], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([str(script), "replay", "--config"], capture_output=True, text=True)
    assert done.returncode == 2 and "usage:" in done.stderr


def test_parse_prints_mail_events_and_reports_what_it_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "mail.log"
    log.write_text(
        "Nov 27 10:00:00 mx1 postfix/submission/smtpd[1]: 4ABC1: client=c[10.0.0.5], "
        "sasl_method=PLAIN, sasl_username=alice\n"
        "Nov 27 10:00:01 mx1 postfix/qmgr[2]: 4ABC1: from=<alice@example.net>, size=9, nrcpt=1 "
        "(queue active)\n"
        "Nov 27 10:00:02 mx1 postfix/smtp[3]: 4ABC1: to=<bob@far.example>, relay=f[192.0.2.1]:25, "
        "delay=1, dsn=2.0.0, status=sent (250 ok)\n"
        "Nov 27 10:00:02 mx1 postfix/qmgr[2]: 4ABC1: removed\n"
        "this is not a log line\n")
    assert main(["parse", str(log), "--config", EXAMPLE, "--timezone", "Europe/Paris"]) == 0
    out, err = capsys.readouterr()
    [event] = [json.loads(line) for line in out.splitlines()]
    assert (event["event_id"], event["sasl_username"], event["direction"], event["ts"][11:19]) == (
        "mx1/4ABC1", "alice", "outbound", "09:00:01")
    assert "1 not understood" in err and "not understood: this is not a log line" in err
    assert main(["parse", str(log), "--timezone", "Mars/Olympus"]) == 2
    assert main(["parse", str(tmp_path / "absent.log")]) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["demo-traffic", "--config", EXAMPLE, "--rate", "0"], "must be above 0"),
    (["demo-traffic", "--config", EXAMPLE, "--seconds", "soon"], "not a number"),
    (["demo-traffic", "--config", EXAMPLE, "--customers", "0"], "must be 1 to 10000000"),
    (["demo-traffic", "--config", EXAMPLE, "--customers", "many"], "not a whole number"),
    (["siem", "--config", EXAMPLE, "--format", "cef", "--to", "http://siem:80"],
     "use syslog://HOST:PORT"),
    (["siem", "--config", EXAMPLE, "--format", "leef"], "invalid choice"),
    (["siem", "--config", EXAMPLE, "--format", "ecs", "--max-record-bytes", "1000"],
     "from 2048 (what every syslog receiver takes)"),
    (["siem", "--config", EXAMPLE, "--format", "ecs", "--max-record-bytes", "8k"],
     "'8k': a number of bytes"),
    (["siem", "--config", EXAMPLE, "--format", "ecs", "--from", "2026-12-01T00:00"],
     "a time with its zone"),
    (["siem", "--config", EXAMPLE, "--format", "ecs", "--from", "yesterday"],
     "earliest, latest or a time"),
    (["worker", "--config", EXAMPLE, "--log-level", "chatty"], "invalid choice"),
])
def test_bad_arguments_are_usage_errors(argv: list[str], message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr()[1]


def test_up_and_siem_refuse_what_they_cannot_use(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    single_host = str(REPO / "deploy" / "examples" / "single-host.yaml")
    assert main(["up", "--config", single_host, "--log", str(tmp_path / "missing.log"),
                 "--state-dir", str(tmp_path / "state")]) == 1
    assert "missing.log: no such file" in capsys.readouterr()[1]
    assert main(["siem", "--config", EXAMPLE, "--format", "ecs"]) == 1  # no Kafka configured
    assert "kafka.bootstrap_servers is not set" in capsys.readouterr()[1]
    assert main(["siem", "--config", single_host, "--format", "ecs", "--webhook",
                 "ftp://x"]) == 1
    assert "must be an http:// or https:// URL" in capsys.readouterr()[1]


@pytest.mark.parametrize(("argv", "message"), [
    (["actions", "add", "sender:a@x.example", "--action", "block", "--for", "3000000d",
      "--config", EXAMPLE], "at most 3650d"),
    (["actions", "add", "sender:a@x.example", "--action", "block", "--for", "9" * 30 + "w",
      "--config", EXAMPLE], "at most 3650d"),
])
def test_manual_actions_refuse_durations_out_of_range(argv: list[str], message: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr()[1]


def test_policy_state_is_kept_by_default_and_an_unusable_dir_is_said(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from schemas.config import PolicySettings

    assert PolicySettings().state_dir == "/var/lib/floodgate/policy"  # the systemd StateDirectory
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("FLOODGATE_POLICY__STATE_DIR", str(blocker / "policy"))
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "policy-server", "--config",
                           EXAMPLE], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"policy.state_dir {blocker / 'policy'}:" in done.stderr
    assert "set it to a directory this user can write" in done.stderr
    assert "Traceback" not in done.stderr


def test_replay_and_check_config_show_a_shadow_threshold(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shadow = tmp_path / "shadow.yaml"
    shadow.write_text(Path(EXAMPLE).read_text().replace("mode: enforce", "mode: shadow", 1))
    assert main(["check-config", str(shadow)]) == 0
    burst = next(line for line in capsys.readouterr()[0].splitlines() if "burst:" in line)
    assert burst.endswith("-> block for 1d (shadow: published, not applied)")
    assert main(["replay", _history(tmp_path / "h.jsonl"), "--config", str(shadow)]) == 0
    header, *rows = capsys.readouterr()[0].splitlines()
    column = header.split().index("MODE")
    modes = {(row.split()[2], row.split()[3]): row.split()[column] for row in rows}
    assert modes[("defer", "sasl_username:alice")] == "shadow"  # side by side
    assert modes[("block", "sender:promo@spam.example")] == "enforce"
