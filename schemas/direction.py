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
        listed, remote = self._recipients(recipients)
        if self.is_ours(client_ip, sasl_username, local_submission):
            return Direction.OUTBOUND if remote or not listed else Direction.INTERNAL
        if listed and not remote:
            return Direction.INBOUND
        return Direction.UNKNOWN

    def _recipients(self, recipients: Iterable[str]) -> tuple[bool, bool]:
        """(any recipient, any of them outside ``local_domains``), read no further than
        needed: one remote recipient decides."""
        listed = False
        for recipient in recipients:
            listed = True
            if not self._local:
                return True, True
            domain = domain_of(recipient)
            if domain is None or domain not in self._local:
                return True, True
        return listed, False
