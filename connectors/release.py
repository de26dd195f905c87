"""Which Floodgate release this is: for ``--version``, metrics and SIEM records."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version


@cache
def release() -> str:
    try:
        return version("floodgate")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"
