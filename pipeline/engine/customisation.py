"""What the operator set for one subject (``schemas.subject_settings``), as counting reads it.

The worker keeps it for every subject that has settings (10,000,000 of them), so its stored
form is compact JSON of what counting needs, nothing of who set it or why::

    {"c": "business", "o": {"burst": [600, null, null], "spam": null}, "x": true}

(``c`` the class, ``o`` the overrides, a threshold's numbers or null for off, ``x`` exempt;
each left out when it has nothing to say).
"""

from __future__ import annotations

import json
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

    def encode(self) -> bytes:
        compact: dict[str, object] = {}
        if self.subject_class is not None:
            compact["c"] = self.subject_class
        if self.overrides:
            compact["o"] = self.overrides
        if self.exempt:
            compact["x"] = True
        return json.dumps(compact, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Customisation:
        """From ``encode``'s bytes; raises ValueError when they are not its."""
        try:
            compact = json.loads(data)
            name = compact.get("c")
            overrides = {str(threshold): None if numbers is None else
                         (_number(numbers[0]), _number(numbers[1]), _number(numbers[2]))
                         for threshold, numbers in compact.get("o", {}).items()}
            if name is not None and not isinstance(name, str):
                raise TypeError("class")
            return cls(name, overrides, compact.get("x") is True)
        except (TypeError, AttributeError, IndexError, KeyError) as exc:
            raise ValueError(f"damaged subject settings: {exc}") from None


def _number(value: object) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        return value
    raise TypeError(f"not a limit: {value!r}")
