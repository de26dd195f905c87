"""`floodgate parse`: MailEvents out, and a report of what was read."""

import json
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.pipeline.cli.cli_files import EXAMPLE


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
