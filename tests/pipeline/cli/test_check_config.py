"""`floodgate check-config`: exit codes and the explanation of each threshold."""

from pathlib import Path

import pytest

from pipeline.cli import main
from tests.pipeline.cli.cli_files import EXAMPLE


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
