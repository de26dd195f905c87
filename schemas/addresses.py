"""One spelling of an address and of a domain, for every path that compares them.

Postfix's log quotes a local part that needs it (``"a b"@x.example``) while a
policy request carries it bare (``a b@x.example``); a domain may come as UTF-8
(SMTPUTF8) or as its ASCII ``xn--`` form. Counting, enforcement, exemptions and
threshold scopes all compare the forms made here: the local part unquoted and
lower-cased, the domain lower-cased in its ASCII (IDNA) form. With
``addresses.extension_delimiters`` (Postfix's ``recipient_delimiter``) set,
``alice+news@`` is also ``alice@``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache

MAX_ADDRESS = 512  # characters of an address, account name or subject value in any record
# (IPv4, IPv6) prefix lengths of a whole address: a client counted by these is its address,
# by anything shorter its network
WHOLE_ADDRESS = (32, 128)


def whole_length(version: int) -> int:
    """The prefix length of a whole address of IP ``version`` (4 or 6)."""
    return WHOLE_ADDRESS[0] if version == 4 else WHOLE_ADDRESS[1]


# A domain name in its one spelling (``normal_domain``): labels of letters, digits, - and _.
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_-]{1,63}$")


def is_domain_name(normal: str) -> bool:
    """Whether ``normal`` (a ``normal_domain`` result) is a domain name."""
    return _DOMAIN.match(normal) is not None


def normal_domain(domain: str) -> str:
    """``Bücher.Example.`` -> ``xn--bcher-kva.example``; a domain IDNA cannot encode stays
    lower-cased as given."""
    text = domain.strip().rstrip(".").lower()
    if text.isascii():
        return text
    try:
        return text.encode("idna").decode("ascii")
    except UnicodeError:
        return text


def normal_local_part(local: str, delimiters: str = "") -> str:
    """``"A b"`` -> ``a b``: quotes and their backslash escapes taken off, lower-cased, and
    cut at the first of ``delimiters`` (an address extension), unless that leaves nothing."""
    if len(local) >= 2 and local[0] == local[-1] == '"':
        body, out, escaped = local[1:-1], [], False
        for char in body:
            if escaped or char != "\\":
                out.append(char)
                escaped = False
            else:
                escaped = True
        local = "".join(out)
    for index, char in enumerate(local):
        if char in delimiters:
            local = local[:index] or local
            break
    return local.lower()


def normal_address(address: str, delimiters: str = "") -> str:
    """The address's one spelling; without ``@`` only lower-cased."""
    if (address.isascii() and '"' not in address and not address.endswith(".")
            and not (delimiters and any(d in address for d in delimiters))):
        return address.lower()  # the common case, on the worker's hot path
    local, at, domain = address.rpartition("@")
    if not at:
        return address.lower()
    return f"{normal_local_part(local, delimiters)}@{normal_domain(domain)}"


def domain_of(address: str | None) -> str | None:
    """The normal domain of ``user@domain``; None for the null sender or no ``@``."""
    if not address or "@" not in address:
        return None
    return normal_domain(address.rsplit("@", 1)[1]) or None

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


@lru_cache(maxsize=65_536)
def client_network(address: str, ipv4: int, ipv6: int) -> str | None:
    """The network of ``ipv4`` or ``ipv6`` leading bits holding ``address``
    (``2001:db8:1:2::/64``), None when the length is the whole address (or it is no
    address). Postfix gives IPv4 clients as IPv4 addresses, never IPv4-mapped ones."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    length = ipv4 if ip.version == 4 else ipv6
    if length >= ip.max_prefixlen:
        return None
    return str(ipaddress.ip_network(f"{ip}/{length}", strict=False))


def network_shape(network: str) -> tuple[int, int]:
    """(IP version, prefix length) of a network spelled by ``client_network``."""
    address, _, length = network.rpartition("/")
    return (6 if ":" in address else 4), int(length)


def normal_network(text: str) -> str:
    """``2001:DB8:1:2:0::/64`` or ``192.0.2.7/24`` -> ``2001:db8:1:2::/64``, ``192.0.2.0/24``
    (host bits cleared); ValueError for anything that is not a network with a length."""
    if "/" not in text:
        raise ValueError(f"{text[:80]!r} is not a network: write it as ADDRESS/LENGTH")
    network = ipaddress.ip_network(text.strip().strip("[]"), strict=False)
    if network.prefixlen in (0, network.max_prefixlen):
        raise ValueError(f"{text[:80]!r}: a network subject's length is between 1 and "
                         f"{network.max_prefixlen - 1} (a whole address is client_ip)")
    return str(network)


def is_loopback(text: str | None) -> bool:
    address = client_address(text)
    return address is not None and ipaddress.ip_address(address).is_loopback


class NetworkSet:
    """Client addresses inside a set of networks (CIDR text), with a bounded cache of answers:
    busy servers ask about the same clients over and over."""

    def __init__(self, networks: Iterable[str], cache: int = 65_536) -> None:
        self._networks = [ipaddress.ip_network(n, strict=False) for n in networks]
        self._seen: dict[str, bool] = {}
        self._cache = cache

    def __bool__(self) -> bool:
        return bool(self._networks)

    def contains(self, address: str | None) -> bool:
        """Whether ``address`` (any spelling ``ipaddress`` reads; an IPv4-mapped IPv6 address
        as its IPv4 form; a zone index ignored) is in one of the networks; False for
        anything that is not an address."""
        if not address or not self._networks:
            return False
        known = self._seen.get(address)
        if known is None:
            known = self._inside(address)
            if len(self._seen) >= self._cache:
                self._seen.clear()
            self._seen[address] = known
        return known

    def _inside(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._networks)
