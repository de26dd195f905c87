"""The floodgate command as an operator runs it."""

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.pipeline.cli.cli_files import EXAMPLE, REPO


def test_console_script_and_usage_errors(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("floodgate")
    done = subprocess.run([str(script), "check-config", EXAMPLE], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([str(script), "replay", "--config"], capture_output=True, text=True)
    assert done.returncode == 2 and "usage:" in done.stderr


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
      "--reason", "r", "--config", EXAMPLE], "at most 3650d"),
    (["actions", "add", "sender:a@x.example", "--action", "block", "--for", "9" * 30 + "w",
      "--reason", "r", "--config", EXAMPLE], "at most 3650d"),
    (["actions", "add", "sender:a@x.example", "--action", "block", "--for", "1h",
      "--config", EXAMPLE], "--reason"),
    (["actions", "lift", "sender:a@x.example", "--reason", " ", "--config", EXAMPLE],
     "argument --reason: printable text"),
    (["settings", "unset", "sender:a@x.example", "--reason", "r", "--actor", "a\x1b[2J",
      "--config", EXAMPLE], "argument --actor: printable text"),
])
def test_manual_changes_refuse_bad_durations_and_need_who_and_why(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own refusal
        code = int(exit_.code or 0)
    assert code == 2
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




@pytest.mark.parametrize("subject", ["client_ip:10.0.0.0/8", "client_ip:[10.1.2.3]",
                                     "client_ip:999.1.1.1", "sender_domain:exa mple..com"])
def test_actions_add_refuses_a_subject_that_could_never_match(
        subject: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["actions", "add", subject, "--action", "block", "--for", "1h",
                 "--reason", "test", "--config", EXAMPLE]) == 1
    assert capsys.readouterr()[1].startswith("SUBJECT: ")
