"""What the log reader counted: lines by kind, events made, what it could not use (sampled)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

SAMPLES_KEPT = 20


@dataclass
class TrackerStats:
    lines: int = 0
    postfix_lines: int = 0
    facts: int = 0
    ignored: int = 0
    unparsed: int = 0
    verdicts: int = 0
    other_lines: int = 0  # other programs' lines (opendkim, dovecot, ...): not ours to parse
    late_verdicts: int = 0
    ambiguous_verdicts: int = 0  # verdict lines whose client text spells another verdict
    ambiguous_refusals: int = 0  # refusal lines with more than one reading: they decide nothing
    own_refusals: int = 0  # Floodgate's own refusals (never counted)
    truncated: int = 0  # events with a value cut to fit the contract
    invalid: int = 0  # messages no valid event could be made of (sampled with the unparsed)
    mail_events: int = 0
    delivery_events: int = 0
    evicted: int = 0
    unparsed_samples: deque[str] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))

    @property
    def unparsed_share(self) -> float:
        return self.unparsed / self.postfix_lines if self.postfix_lines else 0.0
