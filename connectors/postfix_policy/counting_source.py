"""The MailEvent a policy request stands for, so the pipeline can count from the policy service.

Only END-OF-MESSAGE requests describe a whole message: the queue id, the
recipient count and the size are known, and ``instance`` is the same for all
requests of one message. The ``event_id`` is the one the log connector gives
the same message (``host/queue_id``), so a message reported by both is
counted once.

Two limits to know (see the README): the policy runs before milters and the
content filter, so a message they later refuse was already counted; and the
policy service sees no spam verdict. Counting from the log sees both.
"""

from __future__ import annotations

from connectors.postfix_policy.policy_protocol import is_refusal
from schemas.direction import DirectionRules
from schemas.events import MailEvent, PolicyEvent
from schemas.vocabulary import EventSource


def mail_event_from_policy(event: PolicyEvent, directions: DirectionRules) -> MailEvent | None:
    """The message an END-OF-MESSAGE request decided on; None for any other request.

    Raises ValueError (pydantic's ValidationError) when the request's values do
    not make a valid MailEvent, e.g. a client address that is not an address.
    """
    request = event.request
    if request.protocol_state.upper() != "END-OF-MESSAGE" or not request.queue_id:
        return None
    recipients = [request.recipient] if request.recipient else []
    sasl_username = request.sasl_username or None
    client_ip = request.client_address or None
    return MailEvent(
        event_id=f"{event.host}/{request.queue_id}",
        ts=event.ts,
        host=event.host,
        queue_id=request.queue_id,
        client_ip=client_ip,
        client_name=request.client_name or None,
        sasl_username=sasl_username,
        sender=request.sender,
        recipients=recipients,
        recipient_count=_number(request.recipient_count, MAX_POLICY_RECIPIENTS) or len(recipients),
        size=_number(request.size),
        direction=directions.classify(client_ip, sasl_username, False, recipients),
        accepted=not is_refusal(event.answer),
        source=EventSource.POLICY,
    )


# Postfix's own smtpd_recipient_limit is 1000; any local client can send a request, so the
# count it claims is bounded (a message counts for at most this many recipients).
MAX_POLICY_RECIPIENTS = 100_000


def _number(text: str, limit: int = 2**62) -> int | None:
    return min(int(text), limit) if text.isdigit() and len(text) < 19 else None
