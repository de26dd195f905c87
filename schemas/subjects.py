"""The subject key ``type:value``: what is counted, acted on and looked up.

One spelling everywhere, because it is a partitioning contract: the key of
``subject-events`` and ``actions`` records (hashed with murmur2 to pick the
partition), of the worker's state, of the policy service's lookups and of an
operator's ``actions lift``. Subjects are normalised here once: senders and
domains in their one spelling (``schemas.addresses``: unquoted, lower-case,
IDNA domains), SASL names as given, client addresses in their compressed form.
"""

from __future__ import annotations

import ipaddress

from schemas.addresses import (
    MAX_ADDRESS,
    WHOLE_ADDRESS,
    client_network,
    is_domain_name,
    normal_address,
    normal_domain,
    normal_network,
)
from schemas.vocabulary import SubjectType

# The dimensions any client can write into MAIL FROM: an exempt sender keeps only these out.
SENDER_KEYS = frozenset({SubjectType.SENDER, SubjectType.SENDER_DOMAIN})


_TYPES = {t.value: t for t in SubjectType}  # a dict: the worker splits a key per message


def subject_key(kind: SubjectType, value: str) -> str:
    """``sender:alice@example.net``: the record and table key of a subject."""
    return f"{kind.value}:{value}"


def split_subject_key(key: str) -> tuple[SubjectType, str]:
    """The type and value of a key made by ``subject_key``; ValueError for anything else."""
    kind, sep, value = key.partition(":")
    subject_type = _TYPES.get(kind)
    if not sep or not value or subject_type is None:
        raise ValueError(f"not a subject key: {key[:80]!r}")
    return subject_type, value


def normalise_subject(kind: SubjectType, raw: str | None, delimiters: str = "") -> str | None:
    """The one spelling of a subject, shared by counting and enforcement; None for none.

    ``delimiters``: the config's ``addresses.extension_delimiters``.
    """
    if not raw:
        return None
    if kind is SubjectType.SENDER:
        return normal_address(raw, delimiters)
    if kind is SubjectType.SENDER_DOMAIN:
        return normal_domain(raw)
    if kind is SubjectType.CLIENT_NET:
        try:
            return normal_network(raw)
        except ValueError:
            return None
    return raw


def client_subject(address: str, ipv4: int = WHOLE_ADDRESS[0], ipv6: int = WHOLE_ADDRESS[1]
                   ) -> tuple[SubjectType, str]:
    """What a client address counts under for a threshold with these prefix lengths: the
    address itself (``client_ip``) at full length, else its network (``client_net``)."""
    network = client_network(address, ipv4, ipv6)
    if network is None:
        return SubjectType.CLIENT_IP, address
    return SubjectType.CLIENT_NET, network


def parse_subject(text: str, delimiters: str = "") -> tuple[SubjectType, str]:
    """``type:value`` as an operator writes it, in its one spelling; ValueError saying what
    is wrong with it."""
    kind, _, value = text.partition(":")
    try:
        subject_type = SubjectType(kind)
    except ValueError:
        raise ValueError(f"a subject is type:value with type one of "
                         f"{', '.join(t.value for t in SubjectType)}; got {text!r}") from None
    value = value.strip()
    if not value:
        raise ValueError(f"the subject {text!r} has no value after the colon")
    if len(value) > MAX_ADDRESS:
        raise ValueError(f"the subject's value is longer than {MAX_ADDRESS} characters")
    if subject_type is SubjectType.CLIENT_NET:
        return subject_type, normal_network(value)  # ValueError saying why not
    if subject_type is SubjectType.CLIENT_IP:
        return subject_type, _operator_address(value)
    normal = normalise_subject(subject_type, value, delimiters) or value
    if subject_type in SENDER_KEYS:
        _check_domain(subject_type, normal)
    return subject_type, normal


def _operator_address(value: str) -> str:
    """A client address as the policy service matches it (compressed); ValueError naming the
    forms that would match, for anything that never could."""
    if "/" in value:
        raise ValueError(f"{value[:80]!r} is a network: write client_net:{value[:80]} (every "
                         "address inside it), or client_ip:ADDRESS for one address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value[:80]!r} is not a client address: write it bare, e.g. "
                         "client_ip:192.0.2.7 or client_ip:2001:db8::7 (no brackets, no IPv6: "
                         "prefix); a network is client_net:192.0.2.0/24") from None


def _check_domain(kind: SubjectType, normal: str) -> None:
    domain = normal.rpartition("@")[2] if kind is SubjectType.SENDER else normal
    if kind is SubjectType.SENDER and "@" not in normal:
        raise ValueError(f"{normal[:80]!r} is not an address: write sender:LOCAL@DOMAIN")
    if not is_domain_name(domain):
        raise ValueError(f"{domain[:80]!r} is not a domain name (letters, digits, - and _ "
                         "in dot-separated labels, e.g. example.net)")
