"""Per-customer limits through a real Postfix, changed live.

``burst`` is 60 messages in 30 s for the default class (consumer) and 600 for
``business``. A business account and a consumer account each send 200 messages
in 20 s: the consumer is deferred, the business account never. Moving the
business account to the consumer class (``floodgate settings set``) defers it
within 10 s, with no restart. An exemption set on the topic lets the deferred
consumer's mail through within 10 s; its tombstone (``settings unset``) undoes it.
Then the config is edited and sent SIGHUP: a changed and an added threshold and
new reply texts take effect in the running worker and policy service, and the
count of an unchanged threshold is kept; a broken config is refused and logged.
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

from schemas.config import KafkaSettings
from schemas.events import ActionEvent
from tests.fixtures.mail_chain import MailChain, mail_chain
from tests.fixtures.postfix_instance import PostfixInstance, needs_postfix
from tests.fixtures.topic_reader import read_until

pytestmark = needs_postfix
REPO = Path(__file__).resolve().parents[2]
SECTIONS = "classes: {default: consumer, names: [consumer, business]}\n"
BURST = ("  - {name: burst, key: sasl_username, window: 30s, messages: 60, action: defer, "
         "duration: 10m, per_class: {business: {messages: 600}}}\n")
# dora writes MAIL FROM dora@other.example: only her mail is in these thresholds' scope
QUOTA = ("  - {name: quota, key: sender, sender_domains: [other.example], window: 10m, "
         "messages: 8, action: warn, duration: 1m}\n")
ADDED = ("  - {name: dora-burst, key: sender, sender_domains: [other.example], window: 10m, "
         "messages: 7, action: defer, duration: 10m}\n")


class Sender:
    """An authenticated SMTP session through the submission port; ``send`` returns the
    reply code of the message (250 accepted, 4xx/5xx refused). After a refusal it connects
    again, as a client retrying later would (Postfix slows down, then drops, a session
    with many errors)."""

    def __init__(self, postfix: PostfixInstance, user: str, sender: str | None = None) -> None:
        self.user, self.sender = user, sender or f"{user}@example.net"
        self._port = postfix.submission_port
        self.last_reply = ""
        self._connect()

    def _connect(self) -> None:
        self.smtp = smtplib.SMTP("127.0.0.1", self._port, timeout=30)
        self.smtp.login(f"{self.user}@example.net", f"{self.user}-secret")

    def send(self, n: int) -> int:
        message = f"From: {self.sender}\r\nTo: r{n}@gmail.example\r\nSubject: {n}\r\n\r\nhi\r\n"
        try:
            self.smtp.sendmail(self.sender, [f"r{n}@gmail.example"], message)
            return 250
        except smtplib.SMTPDataError as exc:
            self.last_reply = exc.smtp_error.decode(errors="replace")
            self.smtp.close()
            self._connect()
            return exc.smtp_code

    def close(self) -> None:
        self.smtp.quit()


def floodgate(config: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", *args, "--config", str(config)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def burst(sender: Sender, count: int, seconds: float, codes: list[int]) -> None:
    for n in range(count):
        codes.append(sender.send(n))
        time.sleep(seconds / count)


def until_code(sender: Sender, wanted: int, deadline_s: float) -> float:
    """Send one message every 0.25 s until one gets ``wanted``; the seconds it took."""
    started = time.monotonic()
    n = 1000
    while (code := sender.send(n)) != wanted:
        assert time.monotonic() - started < deadline_s, (code, sender.last_reply)
        n += 1
        time.sleep(0.25)
    return time.monotonic() - started


def test_classes_overrides_and_exemptions_change_live(kafka_settings: KafkaSettings,
                                                      tmp_path: Path) -> None:
    with mail_chain(kafka_settings, tmp_path, BURST + QUOTA, ["biz", "cons", "dora"],
                    SECTIONS) as chain:
        config = chain.config
        floodgate(config, "settings", "set", "sasl_username:biz@example.net", "--class",
                  "business", "--reason", "ticketing system")
        time.sleep(1.5)  # the log stamps whole seconds: the mail comes after the record
        biz, cons = Sender(chain.postfix, "biz"), Sender(chain.postfix, "cons")
        codes: dict[str, list[int]] = {"biz": [], "cons": []}
        threads = [threading.Thread(target=burst, args=(who, 200, 20.0, codes[who.user]))
                   for who in (biz, cons)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert codes["biz"] == [250] * 200, codes["biz"]
        first_deferred = codes["cons"].index(450)
        assert first_deferred >= 60
        assert "Sending deferred for sasl_username cons@example.net: too much mail" in cons.last_reply

        # the business account moved to the default class: deferred within 10 s
        floodgate(config, "settings", "set", "sasl_username:biz@example.net", "--class",
                  "consumer", "--reason", "contract ended")
        moved_s = until_code(biz, 450, 10)
        # an exemption on the topic: the deferred consumer passes within 10 s ...
        floodgate(config, "settings", "set", "sasl_username:cons@example.net", "--exempt",
                  "--reason", "our own notification system")
        exempt_s = until_code(cons, 250, 10)
        # ... and its tombstone undoes it: the action still in force applies again
        floodgate(config, "settings", "unset", "sasl_username:cons@example.net", "--reason",
                  "not ours after all")
        unset_s = until_code(cons, 450, 10)
        print(f"moved class -> deferred in {moved_s:.1f} s; exempt -> passes in "
              f"{exempt_s:.1f} s; unset -> deferred in {unset_s:.1f} s")
        for sender in (biz, cons):
            sender.close()
        reload_config(chain, kafka_settings)


def reload_config(chain: MailChain, kafka_settings: KafkaSettings) -> None:
    """SIGHUP after an edit: a changed threshold, an added one, new reply texts; the unchanged
    threshold keeps its count. Then a broken config: refused, logged, nothing changes."""
    dora = Sender(chain.postfix, "dora", "dora@other.example")
    assert [dora.send(n) for n in range(5)] == [250] * 5  # quota (8 in 10 min) counts 5
    time.sleep(3)  # counted before the reload: the log is read and routed within a second
    text = chain.config.read_text()
    chain.config.write_text(
        text.replace("messages: 60,", "messages: 50,")
        .replace("policy: {listen:", "policy: {texts: {defer: '4.7.1 RELOADED {subject}'}, "
                                     "listen:") + ADDED)
    worker, policy, tail = chain.processes
    logs = {p: Path(str(chain.config.parent / name)) for p, name in
            ((worker, "worker.log"), (policy, "policy.log"), (tail, "tail.log"))}
    for process in (worker, policy, tail):
        os.kill(process.pid, signal.SIGHUP)
    for log in logs.values():
        wait_in_log(log, "config reloaded from", 20)
    assert "added dora-burst; changed burst" in logs[worker].read_text()
    codes = [dora.send(n) for n in range(5, 8)]  # quota's 6th to 8th: kept its 5, fires
    assert codes == [250] * 3
    quota = wait_action(chain, kafka_settings, "quota", 30)
    assert quota.evidence is not None and quota.evidence.messages == 8
    # the added threshold counts from the reload on: its 7th message fires it
    for n in range(8, 12):
        assert dora.send(n) == 250  # WARN from quota: mail passes
        time.sleep(0.2)
    wait_action(chain, kafka_settings, "dora-burst", 30)
    until_code(dora, 450, 10)
    assert "RELOADED dora@other.example" in dora.last_reply, dora.last_reply
    # a broken config: refused with its problems in the log; the one in force stays
    chain.config.write_text(chain.config.read_text().replace("messages: 50,", "messages: lots,"))
    for process in (worker, policy):
        os.kill(process.pid, signal.SIGHUP)
    for process in (worker, policy):
        wait_in_log(logs[process], "config reload refused", 20)
        assert process.poll() is None
    assert until_code(dora, 450, 5) < 5
    dora.close()


def wait_in_log(log: Path, text: str, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while text not in log.read_text():
        assert time.monotonic() < deadline, f"{text!r} not in {log}: {log.read_text()[-3000:]}"
        time.sleep(0.2)


def wait_action(chain: MailChain, kafka_settings: KafkaSettings, threshold: str,
                deadline_s: float) -> ActionEvent:
    def fired(values: list[bytes]) -> bool:
        return any(ActionEvent.model_validate_json(v).threshold == threshold for v in values)

    records = read_until(kafka_settings, chain.topics["actions"], 2, fired, deadline_s)
    found = [a for a in map(ActionEvent.model_validate_json, records) if a.threshold == threshold]
    assert found, f"no {threshold} action within {deadline_s} s"
    return found[0]
