"""Records cut to a size every receiver takes, never in the middle of the syntax.

A record is a mapping of fields (nested for ECS, flat for CEF) and a function
that renders it. When the rendering is too long, text values are cut
*before* rendering (so an escape sequence or a JSON string is never split):
first the fields a format names (free text, repeated names), in its order,
then any other text value, longest as written first. A list is cut by items. What was cut is recorded in the
record itself by the format's ``mark`` (field path -> original length), so a
reader knows the value is partial and how long it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

MIN_RECORD_BYTES = 2048  # RFC 5426 asks every syslog receiver to take 2,048 octets
DEFAULT_RECORD_BYTES = 8000  # under rsyslog's 8 KiB default, with room for framing
MAX_RECORD_BYTES = 65000  # what a UDP datagram carries

Record = dict[str, Any]
Cuts = dict[str, int]


class RecordTooSmall(ValueError):
    """Even with every text value emptied the record does not fit (a budget below the floor)."""


def fit(record: Record, render: Callable[[Record], str], budget: int,
        cut_first: Sequence[str], mark: Callable[[Record, Cuts], None]) -> str:
    """``render(record)`` in at most ``budget`` UTF-8 bytes; ``record`` is changed in place."""
    line = render(record)
    if _size(line) <= budget:
        return line
    cuts: Cuts = {}
    for path in _cut_order(record, cut_first):
        line = _cut(record, path, render, budget, cuts, mark)
        if _size(line) <= budget:
            return line
    raise RecordTooSmall(f"a record does not fit in {budget} bytes even with its text emptied")


def _size(line: str) -> int:
    return len(line.encode("utf-8", "surrogatepass"))


def _cut_order(record: Record, cut_first: Sequence[str]) -> list[str]:
    named = [path for path in cut_first if _cuttable(_get(record, path))]
    others = sorted((path for path, value in _leaves(record)
                     if path not in named and _cuttable(value)),
                    key=lambda path: -len(json.dumps(_get(record, path))))
    return named + others


def _cut(record: Record, path: str, render: Callable[[Record], str], budget: int,
         cuts: Cuts, mark: Callable[[Record, Cuts], None]) -> str:
    """Keep the longest prefix of the value at ``path`` with which the record fits."""
    whole = _get(record, path)
    cuts[path] = _length(whole)

    def rendered(keep: int) -> str:
        _set(record, path, whole[:keep])
        mark(record, cuts)
        return render(record)

    low, high = 0, len(whole) - 1  # keeping 0 is always tried; keeping all did not fit
    best = rendered(0)
    if _size(best) > budget:
        return best  # this field alone cannot save the record: the next one is cut too
    while low < high:
        middle = (low + high + 1) // 2
        if _size(rendered(middle)) <= budget:
            low = middle
        else:
            high = middle - 1
    return rendered(low)


def _cuttable(value: Any) -> bool:
    return isinstance(value, str | list) and len(value) > 0


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | list) else 0


def _leaves(record: Record, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _leaves(value, f"{path}.")
        else:
            yield path, value


def _get(record: Record, path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _set(record: Record, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = record
    for part in parents:
        node = node[part]
    node[last] = value
