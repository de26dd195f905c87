"""What a refusal's reply says: Floodgate's own refusal, a spam filter's, or neither.

Only the server's own text is read (``Refused.reply``: the reply with the
address it echoes taken out, and None when the line's readings disagree on it).
Floodgate's refusals are recognised by the reply texts the policy service
sends (``policy.texts`` and the thresholds' own ``reply``), so an account that
keeps retrying while deferred or blocked is never counted for those retries,
whatever words the texts use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from schemas.config import FloodgateConfig, LogReadingSettings, ReplyTexts
from schemas.config_types import REPLY_PLACEHOLDERS

# What each placeholder of a reply text can stand for in the log.
_PLACEHOLDER = {
    "action_id": r"[\w.:-]{1,128}",
    "expires_at": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
}
_ANY = r".{0,600}?"
_STATUS = re.compile(r"\d\.\d{1,3}\.\d{1,3} ")
_FIELD = re.compile(r"\{(" + "|".join(REPLY_PLACEHOLDERS) + r")\}")


class RefusalReplies:
    def __init__(self, settings: LogReadingSettings, texts: ReplyTexts,
                 thresholds: Iterable[str] = ()) -> None:
        """``thresholds``: the thresholds' own reply texts (``FloodgateConfig.threshold_replies``)."""
        self._spam = (re.compile("|".join(f"(?:{p})" for p in settings.spam_replies), re.I | re.S)
                      if settings.spam_replies else None)
        own = [_template(t) for t in (texts.block, texts.defer, texts.quarantine, texts.warn,
                                      *thresholds)]
        self._own = re.compile("|".join(f"(?:{p})" for p in own), re.S)
        self.verdict_wait_ms = int(settings.verdict_wait.total_seconds() * 1000)

    @classmethod
    def for_config(cls, config: FloodgateConfig) -> RefusalReplies:
        return cls(config.log_reading, config.policy.texts, config.threshold_replies.values())

    def judge(self, reply: str | None) -> Literal["own", "spam"] | None:
        """``own``: the policy service's refusal of a subject in force (never spam, whatever
        its words); ``spam``: a spam filter's refusal by its reply text; None: neither, or
        no reply to judge."""
        if reply is None:
            return None
        if self._own.search(reply) is not None:
            return "own"
        if self._spam is not None and self._spam.search(reply) is not None:
            return "spam"
        return None


def _template(text: str) -> str:
    """A reply text with placeholders as a regex; literal parts must match exactly, but for
    a leading enhanced status code, which Postfix may take out of the text."""
    code = _STATUS.match(text)
    parts, end = [r"(?:\d\.\d{1,3}\.\d{1,3} )?"] if code else [], code.end() if code else 0
    for m in _FIELD.finditer(text):
        parts.append(re.escape(text[end:m.start()]))
        parts.append(_PLACEHOLDER.get(m[1], _ANY))
        end = m.end()
    parts.append(re.escape(text[end:]))
    return "".join(parts)
