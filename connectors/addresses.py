"""Client addresses as Postfix writes them, in the one spelling every connector uses."""

from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=16_384)  # busy servers see the same clients over and over
def client_address(text: str | None) -> str | None:
    """``1.2.3.4``, ``[::1]``, ``IPv6:2001:db8::1`` -> compressed form; None for ``unknown``
    or anything that is not an address."""
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text.strip("[]").removeprefix("IPv6:")))
    except ValueError:
        return None


def is_loopback(text: str | None) -> bool:
    address = client_address(text)
    return address is not None and ipaddress.ip_address(address).is_loopback
