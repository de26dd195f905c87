"""A threshold in the configuration: what is counted, for which key, over which window, and
what happens when it is crossed (with its escalation ladder)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from schemas.addresses import WHOLE_ADDRESS
from schemas.config_types import (
    MAX_THRESHOLD_COUNT,
    MAX_WINDOW,
    ClassName,
    DomainName,
    ReplyTemplate,
    Section,
    ThresholdName,
)
from schemas.durations import Duration
from schemas.vocabulary import ActionKind, CountMode, DirectionScope, Flag, SubjectType, ThresholdMode

MAX_ESCALATION_STEPS = 10
MAX_ESCALATION_AFTER = 100


class EscalationStep(Section):
    """For repeat offenders: the threshold's Nth firing for one subject within ``within``
    (this one included) takes this step's action and duration instead of its own."""

    after: int = Field(ge=2, le=MAX_ESCALATION_AFTER,
                       description="applies from this firing on (2 = the second within `within`)")
    within: Duration = Field(description="how far back earlier firings count, e.g. 24h")
    action: ActionKind
    duration: Duration

    @model_validator(mode="after")
    def _check(self) -> EscalationStep:
        for name, value in (("within", self.within), ("duration", self.duration)):
            if value <= timedelta(0):
                raise PydanticCustomError("escalate", f"{name} must be longer than 0", {})
        if self.within > MAX_WINDOW:
            raise PydanticCustomError("escalate", "within must be at most 30d", {})
        return self


class ClassNumbers(Section):
    """A customer class's own numbers for one threshold; unset ones are the threshold's."""

    messages: int | None = Field(None, ge=0, le=MAX_THRESHOLD_COUNT)
    spams: int | None = Field(None, ge=0, le=MAX_THRESHOLD_COUNT)
    flagged_units: int | None = Field(None, ge=1, le=MAX_THRESHOLD_COUNT)


class PrefixLengths(Section):
    """How many leading bits of a client address a ``client_ip`` threshold counts by: every
    address of the customer's IPv6 /64 or of an IPv4 pool as one subject."""

    ipv4: int = Field(32, ge=8, le=32, description="e.g. 24: every address of a /24 is one "
                                                    "subject; 32: each address (the default)")
    ipv6: int = Field(128, ge=16, le=128, description="e.g. 64: a customer line's whole /64; "
                                                       "128: each address (the default)")


MIN_LEARNING_WINDOWS = 4
MAX_LEARN = timedelta(days=90)


class BaselineSettings(Section):
    """Each subject against its own normal: the threshold fires when the units in the window
    exceed ``factor`` times the subject's learnt mean per window and reach ``min_messages``.
    Until a subject has ``learn`` of history, the threshold's fixed numbers (or its class's)
    apply instead."""

    factor: float = Field(ge=1.5, le=1_000, description="e.g. 10: ten times the usual")
    min_messages: int = Field(ge=1, le=MAX_THRESHOLD_COUNT,
                              description="never fire below this many units: a quiet account "
                                          "is not flagged for 3 messages instead of 0")
    learn: Duration = Field(default_factory=lambda: timedelta(days=14),
                            description="the history a subject needs before its baseline "
                                        "applies, and the span of the mean (e.g. 14d)")


class Threshold(Section):
    """Fires when, in a window ending at a counted unit, units >= messages and flagged units
    >= spams (or >= flagged_units, for a flag other than spam)."""

    name: ThresholdName
    key: SubjectType
    direction: DirectionScope = DirectionScope.OUTBOUND
    sender_domains: list[DomainName] = Field(
        default_factory=list, description="Count only mail from these sender domains; empty = all"
    )
    prefix: PrefixLengths | None = Field(
        None, description="key: client_ip only: count per network, e.g. {ipv4: 24, ipv6: 64}; "
                          "the subject is then client_net:NETWORK/LENGTH")
    window: Duration
    messages: int = Field(ge=0, le=MAX_THRESHOLD_COUNT,
                          description="units in the window: messages, recipients or delivery "
                                      "attempts, as `count` says")
    spams: int = Field(0, ge=0, le=MAX_THRESHOLD_COUNT,
                       description="of which spam units (flagged: spam)")
    count: CountMode = CountMode.MESSAGES
    flagged: Flag = Field(
        Flag.SPAM, description="what the second limit counts: spam (messages, recipients), "
                               "bounced or remote_refused (count: deliveries), "
                               "unknown_recipient (count: recipients: refused as no such "
                               "mailbox)")
    flagged_units: int | None = Field(
        None, ge=1, le=MAX_THRESHOLD_COUNT,
        description="of which flagged units, for a flag other than spam (e.g. 20 bounced "
                    "among messages: 30 deliveries)")
    action: ActionKind
    duration: Duration
    mode: ThresholdMode = Field(
        ThresholdMode.ENFORCE,
        description="shadow: fires and publishes its actions (enforced: false) exactly like an "
                    "enforcing threshold, but the policy service never applies them; try a "
                    "threshold on live mail before switching it on")
    classes: list[ClassName] = Field(
        default_factory=list,
        description="count only subjects of these customer classes (see `classes`); empty: "
                    "every class")
    per_class: dict[ClassName, ClassNumbers] = Field(
        default_factory=dict,
        description="a class's own numbers, e.g. {business: {messages: 600}}; a subject's "
                    "own overrides (floodgate settings) go before them")
    reply: ReplyTemplate | None = Field(
        None, description="what Postfix tells the client while this threshold's action is in "
                          "force, instead of policy.texts: the same placeholders, e.g. \"5.7.1 "
                          "{subject} sent to too many unknown recipients; call support "
                          "(ref {action_id})\"; a leading status code's class follows the "
                          "action (4 defer, 5 block)")
    baseline: BaselineSettings | None = Field(
        None, description="compare each subject with its own learnt normal (see "
                          "BaselineSettings); messages and spams are then the cold-start "
                          "numbers")
    escalate: list[EscalationStep] = Field(
        default_factory=list, max_length=MAX_ESCALATION_STEPS,
        description="steps for repeat offenders, by increasing `after`: the last step whose "
                    "`after` firings (this one included) fall within its `within` applies")

    @property
    def prefix_lengths(self) -> tuple[int, int]:
        """(IPv4, IPv6) leading bits a client address is counted by: 32 and 128 without a
        prefix."""
        prefix = self.prefix or PrefixLengths()
        return prefix.ipv4, prefix.ipv6

    @property
    def counts_networks(self) -> bool:
        """Whether a client address counts under a network (a prefix shorter than the
        address for either IP version)."""
        return self.key is SubjectType.CLIENT_IP and self.prefix_lengths != WHOLE_ADDRESS

    @property
    def flagged_limit(self) -> int:
        """The second limit, whatever its flag: spams, or flagged_units."""
        return self.spams if self.flagged is Flag.SPAM else self.flagged_units or 0

    def limits_for(self, subject_class: str) -> tuple[int, int]:
        """(messages, flagged limit) for a subject of this class, before its own overrides."""
        numbers = self.per_class.get(subject_class)
        if numbers is None:
            return self.messages, self.flagged_limit
        return with_numbers(self, (self.messages, self.flagged_limit), numbers.messages,
                            numbers.spams, numbers.flagged_units)

    def counts_class(self, subject_class: str) -> bool:
        return not self.classes or subject_class in self.classes

    @field_validator("window", "duration")
    @classmethod
    def _positive(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        # a field's own check: said in the same pass as every other field's problem
        if value <= timedelta(0):
            raise PydanticCustomError("threshold", f"{info.field_name} must be longer than 0",
                                      {})
        if info.field_name == "window" and value > MAX_WINDOW:
            raise PydanticCustomError("threshold", "window must be at most 30d", {})
        return value

    @model_validator(mode="after")
    def _check(self) -> Threshold:
        self._check_flag()
        if self.key is SubjectType.CLIENT_NET:
            raise PydanticCustomError(
                "threshold", "key: client_net is what a client_ip threshold with a prefix "
                             "counts by: write key: client_ip and prefix: {ipv4: 24, ipv6: 64}",
                {})
        if self.prefix is not None and self.key is not SubjectType.CLIENT_IP:
            raise PydanticCustomError("threshold", "prefix is for key: client_ip only", {})
        if self.baseline is not None:
            learn = self.baseline.learn
            if learn < self.window * MIN_LEARNING_WINDOWS or learn > MAX_LEARN:
                raise PydanticCustomError(
                    "threshold", f"baseline.learn must be at least {MIN_LEARNING_WINDOWS} "
                                 "windows and at most 90d", {})
        if self.messages == 0 and self.flagged_limit == 0:
            second, unit = ("spams", "message") if self.flagged is Flag.SPAM else \
                ("flagged_units", "unit")
            raise PydanticCustomError(
                "threshold", f"messages and {second} are both 0: it would fire on every {unit}",
                {})
        for name, numbers in self.per_class.items():
            self._check_numbers(f"per_class.{name}", numbers.spams, numbers.flagged_units)
            if self.limits_for(name) == (0, 0):
                raise PydanticCustomError(
                    "threshold", f"per_class.{name}: messages and the flagged limit are both 0: "
                                 "it would fire on every unit", {})
        afters = [step.after for step in self.escalate]
        if afters != sorted(set(afters)):
            raise PydanticCustomError(
                "threshold", "escalate steps must be in increasing order of `after`, each "
                             "`after` once", {})
        return self

    def _check_numbers(self, where: str, spams: int | None, flagged_units: int | None) -> None:
        if self.flagged is Flag.SPAM and flagged_units is not None:
            raise PydanticCustomError(
                "threshold", f"{where}: flagged_units is for flagged: bounced, remote_refused "
                             "or unknown_recipient; spam units are limited by spams", {})
        if self.flagged is not Flag.SPAM and spams is not None:
            raise PydanticCustomError(
                "threshold", f"{where}: spams does not apply to flagged: "
                             f"{self.flagged.value}; use flagged_units", {})

    def _check_flag(self) -> None:
        needs = _FLAG_COUNTS[self.flagged]
        if self.count is CountMode.DELIVERIES and self.flagged is Flag.SPAM:
            raise PydanticCustomError(
                "threshold", "count: deliveries needs flagged: bounced or remote_refused (a "
                             "delivery attempt has no spam verdict)", {})
        if self.count not in needs:
            raise PydanticCustomError(
                "threshold", f"flagged: {self.flagged.value} needs count: "
                             f"{' or '.join(sorted(m.value for m in needs))}", {})
        if self.flagged is Flag.SPAM and self.flagged_units is not None:
            raise PydanticCustomError(
                "threshold", "flagged_units is for flagged: bounced, remote_refused or "
                             "unknown_recipient; spam units are limited by spams", {})
        if self.flagged is not Flag.SPAM and self.spams:
            raise PydanticCustomError(
                "threshold", f"spams does not apply to flagged: {self.flagged.value}; "
                             "use flagged_units", {})


# What each flag can mark: a spam verdict is a message's, a bounce or a remote refusal a
# delivery attempt's, an unknown mailbox a refused recipient's.
_FLAG_COUNTS: dict[Flag, frozenset[CountMode]] = {
    Flag.SPAM: frozenset({CountMode.MESSAGES, CountMode.RECIPIENTS}),
    Flag.BOUNCED: frozenset({CountMode.DELIVERIES}),
    Flag.REMOTE_REFUSED: frozenset({CountMode.DELIVERIES}),
    Flag.UNKNOWN_RECIPIENT: frozenset({CountMode.RECIPIENTS}),
}


def with_numbers(threshold: Threshold, base: tuple[int, int], messages: int | None,
                 spams: int | None, flagged_units: int | None) -> tuple[int, int]:
    """``base`` (messages, flagged limit) with the numbers that are set replacing it; the
    flagged limit is ``spams`` for a spam threshold, ``flagged_units`` for the others."""
    flagged = spams if threshold.flagged is Flag.SPAM else flagged_units
    return (base[0] if messages is None else messages,
            base[1] if flagged is None else flagged)
