"""The reliability figures the fault, load and fuzzing tests measured in this run.

Tests record a row through the ``figures`` fixture; at the end of the session
pytest prints them as one table (the README quotes a run of it). Rows come
from what the test measured, never from constants.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    fault: str  # what was done to the system
    inputs: str  # what went through it meanwhile
    lost: int | None  # events (or answers) lost; None where nothing can be lost
    worst_ms: float | None  # slowest answer to a client while it lasted
    outcome: str  # what the test checked, briefly


class Figures:
    def __init__(self) -> None:
        self.rows: list[Figure] = []

    def add(self, fault: str, inputs: str, outcome: str, lost: int | None = None,
            worst_ms: float | None = None) -> None:
        self.rows.append(Figure(fault, inputs, lost, worst_ms, outcome))

    def table(self) -> list[str]:
        head = ("fault or load", "inputs", "lost", "worst answer", "outcome")
        cells = [head] + [(r.fault, r.inputs, "-" if r.lost is None else str(r.lost),
                           "-" if r.worst_ms is None else f"{r.worst_ms:,.1f} ms", r.outcome)
                          for r in self.rows]
        return ["| " + " | ".join(row) + " |" for row in cells[:1]] + \
               ["| " + " | ".join("---" for _ in head) + " |"] + \
               ["| " + " | ".join(row) + " |" for row in cells[1:]]
