"""Which way a message goes, from the config's networks and local domains.

Shared by every connector that makes MailEvents (mail log, policy service),
so they agree: a message is ours when its client authenticated (SASL), was
submitted locally (pickup), or connected from ``networks.internal``. Our mail
to any recipient outside ``local_domains`` is outbound, else internal; mail
from elsewhere to our domains is inbound.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.addresses import NetworkSet, domain_of
from schemas.config import Networks
from schemas.vocabulary import Direction


class DirectionRules:
    def __init__(self, networks: Networks) -> None:
        self._internal = NetworkSet(networks.internal)
        self._local = frozenset(networks.local_domains)

    def is_ours(self, client_ip: str | None, sasl_username: str | None, local_submission: bool) -> bool:
        if sasl_username or local_submission:
            return True
        return self._internal.contains(client_ip)

    def classify(self, client_ip: str | None, sasl_username: str | None, local_submission: bool,
                 recipients: Iterable[str]) -> Direction:
        """The direction; UNKNOWN for outside mail whose recipients are unknown or not ours."""
        domains = [domain_of(r) for r in recipients]
        remote = any(d is None or d not in self._local for d in domains)
        if self.is_ours(client_ip, sasl_username, local_submission):
            return Direction.OUTBOUND if remote or not domains else Direction.INTERNAL
        if domains and not remote:
            return Direction.INBOUND
        return Direction.UNKNOWN
