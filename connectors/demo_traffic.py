"""Made-up mail for trying Floodgate without a mail server.

Twenty customers send now and then; one account is compromised and bursts
(80 messages in 20 s, every 2 minutes), and one sender sends nothing but spam
(12 in 12 s, every 3 minutes). With the example thresholds the burst gets a
`defer` and the spammer a `block` within a minute of starting.
"""

from __future__ import annotations

import random
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from connectors.postfix_policy.policy_protocol import is_refusal
from schemas.events import MailEvent
from schemas.time_ms import from_ms
from schemas.vocabulary import Direction, EventSource

CUSTOMERS = 20
BURST_EVERY_MS, BURST_COUNT, BURST_SPAN_MS = 120_000, 80, 20_000
SPAM_EVERY_MS, SPAM_COUNT, SPAM_SPAN_MS = 180_000, 12, 12_000


@dataclass(frozen=True)
class DemoMail:
    at_ms: int  # when to send it, from the start
    user: str
    spam: bool


def schedule(rate: float, seconds: float, rng: random.Random,
             customers: int = CUSTOMERS) -> Iterator[DemoMail]:
    """Every message of ``seconds`` of demo traffic, in time order (background ``rate``/s
    from ``customers`` accounts)."""
    span = int(seconds * 1000)
    plan = [DemoMail(int(rng.uniform(0, span)), f"customer{rng.randrange(customers):02d}",
                     rng.random() < 0.01)
            for _ in range(int(rate * seconds))]
    for start in range(0, span, BURST_EVERY_MS):  # at once: the quick start shows it soonest
        plan += [DemoMail(start + i * BURST_SPAN_MS // BURST_COUNT, "compromised", False)
                 for i in range(BURST_COUNT)]
    for start in range(10_000, span, SPAM_EVERY_MS):
        plan += [DemoMail(start + i * SPAM_SPAN_MS // SPAM_COUNT, "spammer", True)
                 for i in range(SPAM_COUNT)]
    plan.sort(key=lambda mail: mail.at_ms)
    return iter(plan)


def mail_event(demo: DemoMail, ts_ms: int, rng: random.Random) -> MailEvent:
    user = demo.user
    return MailEvent(
        event_id=f"demo/{uuid.uuid4().hex}", ts=from_ms(ts_ms), host="demo-mx",
        queue_id=uuid.uuid4().hex[:10].upper(), client_ip=f"10.0.{zlib.crc32(user.encode()) % 250}.7",
        sasl_username=user, sender=f"{user}@example.net",
        recipients=[f"friend{rng.randrange(1000)}@gmail.example"], direction=Direction.OUTBOUND,
        accepted=True, spam=demo.spam, source=EventSource.LOG)


def policy_question(event: MailEvent) -> dict[str, str]:
    """What Postfix's smtpd asks the policy service at the end of this message."""
    return {"protocol_state": "END-OF-MESSAGE", "queue_id": event.queue_id or "",
            "sender": event.sender or "", "recipient": event.recipients[0] if event.recipients else "",
            "recipient_count": str(event.recipient_count), "client_address": event.client_ip or "",
            "client_name": "unknown", "sasl_method": "PLAIN",
            "sasl_username": event.sasl_username or ""}


def as_answered(event: MailEvent, answer: str) -> MailEvent:
    """The message as the MTA records it after the policy service's answer: refused on a
    defer or block (Floodgate's own refusal: never counted), queued otherwise."""
    if not is_refusal(answer):
        return event
    return event.model_copy(update={"accepted": False, "spam": False,
                                    "reject_reason": answer[:2000]})
