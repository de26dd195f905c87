"""Subject settings as operators write and read them (the CLI, the console, ``check-config``):
one parser for overrides, one check against the config, one wording of what a subject gets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from pipeline.engine.customisation import Customisation
from schemas.config import FloodgateConfig
from schemas.durations import format_duration
from schemas.subject_settings import Override, SubjectSettings, ThresholdOverride
from schemas.subjects import split_subject_key
from schemas.thresholds import Threshold, with_numbers
from schemas.validation import describe_validation_error
from schemas.vocabulary import SubjectType

OVERRIDE_FIELDS = ("messages", "spams", "flagged_units")


def parse_overrides(numbers: list[str], off: list[str]) -> dict[str, Override]:
    """``["burst.messages=600"]`` and ``["spam-ratio"]`` (off) as a record's overrides;
    ValueError saying what is wrong."""
    collected: dict[str, dict[str, int]] = {}
    for text in numbers:
        name, dot, rest = text.strip().partition(".")
        field, eq, number = rest.partition("=")
        if not dot or not eq or field.strip() not in OVERRIDE_FIELDS \
                or not number.strip().isdigit():
            raise ValueError(f"override {text!r}: write THRESHOLD.FIELD=N with FIELD "
                             f"{', '.join(OVERRIDE_FIELDS)}")
        collected.setdefault(name, {})[field.strip()] = int(number)
    overrides: dict[str, Override] = {}
    for name, fields in collected.items():
        try:
            overrides[name] = ThresholdOverride.model_validate(fields)
        except ValidationError as exc:
            raise ValueError(f"override of {name}: {describe_validation_error(exc)}") from None
    for name in off:
        overrides[name.strip()] = "off"
    return overrides


def class_problem(config: FloodgateConfig) -> Callable[[str | None], str | None]:
    """A check of a record's class against the config's: None when it is known."""
    known = config.classes.known

    def problem(name: str | None) -> str | None:
        if name is None or name in known:
            return None
        return f"unknown class {name!r}: the config's classes are {', '.join(known)}"
    return problem


def record_problem(config: FloodgateConfig, record: SubjectSettings) -> str | None:
    """What is wrong with a record under this config (a class or threshold it does not
    know), or None."""
    problem = class_problem(config)(record.subject_class)
    if problem:
        return problem
    unknown = sorted(set(record.overrides) - {t.name for t in config.thresholds})
    if unknown:
        return f"no threshold named {', '.join(unknown)} in the config"
    return None


def limits_text(threshold: Threshold, limits: tuple[int, int]) -> str:
    """``burst: >= 600 messages in 30s``: a threshold's numbers for one class or subject."""
    messages, flagged = limits
    spam = f" with >= {flagged} {threshold.flagged.value}" if flagged else ""
    return (f"{threshold.name}: >= {messages} {threshold.count.value}{spam} in "
            f"{format_duration(threshold.window)}")


def class_lines(config: FloodgateConfig) -> list[str]:
    """What each customer class gets, when the config has more than one or scopes by them."""
    known = config.classes.known
    if len(known) == 1 and not any(t.classes or t.per_class for t in config.thresholds):
        return []
    lines = [f"customer classes (a subject with no settings record: {config.classes.default}):"]
    for name in known:
        lines.append(f"  {name}:")
        for threshold in config.thresholds:
            text = (limits_text(threshold, threshold.limits_for(name))
                    if threshold.counts_class(name) else f"{threshold.name}: not counted")
            lines.append(f"    {text}")
    return lines


@dataclass(frozen=True)
class SubjectLimit:
    threshold: Threshold
    limits: tuple[int, int] | None  # (units, flagged); None: the threshold does not count it
    overridden: bool  # the numbers are the subject's own


def subject_class(config: FloodgateConfig, custom: Customisation | None) -> str:
    """The class a subject is counted as: its record's, if the config knows it, else the
    default."""
    return custom.subject_class if custom and custom.subject_class in config.classes.known \
        else config.classes.default


def subject_limits(config: FloodgateConfig, kind: SubjectType,
                   custom: Customisation | None) -> list[SubjectLimit]:
    """What each threshold of ``kind`` counts a subject by: its class's numbers, or its own
    overrides (an exempt subject: none)."""
    if custom is not None and custom.exempt:
        return []
    name = subject_class(config, custom)
    limits = []
    for threshold in (t for t in config.thresholds if t.key is kind):
        numbers = custom.overrides.get(threshold.name, ()) if custom else ()
        if not threshold.counts_class(name) or numbers is None:
            limits.append(SubjectLimit(threshold, None, False))
            continue
        own = threshold.limits_for(name)
        limits.append(SubjectLimit(threshold, with_numbers(threshold, own, *numbers)
                                   if numbers else own, bool(numbers)))
    return limits


def effective_lines(config: FloodgateConfig, key: str, custom: Customisation | None) -> list[str]:
    """What each threshold of the subject's type counts it by, in ``check-config``'s words."""
    kind, _ = split_subject_key(key)
    if custom is not None and custom.exempt:
        return ["exempt: no threshold counts it, no action applies to it"]
    name = subject_class(config, custom)
    return [f"{limit.threshold.name}: not counted" if limit.limits is None else
            limits_text(limit.threshold, limit.limits)
            + (" (override)" if limit.overridden else f" (class {name})")
            for limit in subject_limits(config, kind, custom)]
