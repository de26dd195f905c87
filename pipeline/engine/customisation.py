"""What the operator set for one subject (``schemas.subject_settings``), as counting reads it."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.subject_settings import OFF, SubjectSettings, ThresholdOverride

Numbers = tuple[int | None, int | None, int | None]  # messages, spams, flagged_units


@dataclass(frozen=True, slots=True)
class Customisation:
    subject_class: str | None  # None: the config's default class
    overrides: dict[str, Numbers | None]  # threshold name -> numbers; None: off
    exempt: bool = False

    @classmethod
    def of(cls, record: SubjectSettings) -> Customisation:
        overrides: dict[str, Numbers | None] = {}
        for name, override in record.overrides.items():
            if override == OFF:
                overrides[name] = None
            else:
                assert isinstance(override, ThresholdOverride)
                overrides[name] = (override.messages, override.spams, override.flagged_units)
        return cls(record.subject_class, overrides, record.exempt)

    @classmethod
    def decode(cls, data: bytes) -> Customisation:
        """From a settings record's JSON; raises ValueError (ValidationError) when damaged."""
        return cls.of(SubjectSettings.model_validate_json(data))
