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


CLASSED = """classes: {default: consumer, names: [consumer, business]}
thresholds:
  - {name: burst, key: sasl_username, window: 30s, messages: 60, action: defer, duration: 15m,
     per_class: {business: {messages: 600}}}
  - {name: newcomer, key: sasl_username, window: 1h, messages: 5, spams: 3, action: block,
     duration: 1d, classes: [consumer]}
"""


def test_check_config_says_what_each_class_gets(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "classes.yaml"
    path.write_text(CLASSED)
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr()[0]
    assert ("customer classes (a subject with no settings record: consumer):\n"
            "  consumer:\n"
            "    burst: >= 60 messages in 30s\n"
            "    newcomer: >= 5 messages with >= 3 spam in 1h\n"
            "  business:\n"
            "    burst: >= 600 messages in 30s\n"
            "    newcomer: not counted\n") in out
    assert main(["check-config", EXAMPLE]) == 0
    assert "customer classes" not in capsys.readouterr()[0]  # one class: nothing to say


@pytest.mark.parametrize(("text", "message"), [
    (CLASSED.replace("business: {messages: 600}", "gold: {messages: 600}"),
     "classes.yaml:3: thresholds[0]: thresholds[0] (\"burst\") names the class(es) gold"),
    (CLASSED.replace("classes: [consumer]", "classes: [trial]"), "names the class(es) trial"),
    (CLASSED.replace("{messages: 600}", "{flagged_units: 3}"),
     "per_class.business: flagged_units is for flagged: bounced"),
    (CLASSED.replace("messages: 5, spams: 3,", "messages: 0, spams: 3, per_class: "
                     "{consumer: {spams: 0}},"), "per_class.consumer: messages and the flagged "
                                                 "limit are both 0"),
])
def test_class_mistakes_are_pointed_at(text: str, message: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "classes.yaml"
    path.write_text(text)
    assert main(["check-config", str(path)]) == 1
    assert message in capsys.readouterr()[1]


def test_check_config_explains_networks_baselines_and_own_replies(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "floodgate.yaml"
    path.write_text(
        "thresholds:\n"
        "  - {name: per-line, key: client_ip, prefix: {ipv6: 64}, window: 10m, messages: 300, "
        "action: defer, duration: 1h}\n"
        "  - {name: unusual, key: sasl_username, window: 1h, messages: 2000, baseline: "
        "{factor: 10, min_messages: 50, learn: 14d}, action: defer, duration: 1h, "
        "reply: '4.7.1 {subject}: {reason} (ref {action_id})'}\n")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr()[0]
    assert "per-line: >= 300 messages in 10m per client network (/32 IPv4, /64 IPv6)" in out
    assert ("unusual: > 10 x its normal and >= 50 messages in 1h once it has 2w of history "
            "(before: >= 2000 messages in 1h) per sasl_username") in out
    assert "; own reply text" in out
    for extra, problem in (("reply: 'hi {customer}'", "reply: bad placeholder 'customer'"),
                           ("baseline: {factor: 10, min_messages: 5, learn: 2h}",
                            "baseline.learn must be at least 4 windows")):
        path.write_text("thresholds:\n  - {name: a, key: sender, window: 1h, messages: 5, "
                        f"action: warn, duration: 1m, {extra}}}\n")
        assert main(["check-config", str(path)]) == 1
        assert problem in capsys.readouterr()[1]
