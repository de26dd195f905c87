"""Who is at the console: the credentials that let a person in, and the name every change
they make is recorded under (the actor of the action or settings record, in the SIEM).

Three kinds, each optional:

* ``console.operators_file``: one line per operator, ``NAME:sha256:HEX``, the SHA-256 of
  that operator's own token (``floodgate console --new-operator NAME`` makes a token and
  its line). A request carrying the token (``Authorization: Bearer TOKEN``, or basic auth
  with the token as password) acts as NAME; the name typed in a form is not used.
* ``console.user_header`` (e.g. ``X-Forwarded-User``): the user a reverse proxy has signed
  in, believed only from ``console.trusted_proxies`` (loopback by default).
* ``FLOODGATE_CONSOLE_TOKEN``: one shared token. It lets a person in but names nobody, so
  each change then needs the operator to type who they are, as on loopback without any.

With any of them, a request that brings none is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from base64 import b64decode
from binascii import Error as Base64Error
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path

OPERATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
_LINE = re.compile(r"^(?P<name>[^:\s]+):sha256:(?P<digest>[0-9a-f]{64})$")


class CredentialsError(ValueError):
    """The operators file cannot be used: the message names the file and line."""


@dataclass(frozen=True)
class Visitor:
    """Who a request comes from: ``name`` None when the credential names nobody."""

    name: str | None


@dataclass(frozen=True)
class Credentials:
    shared_token: str | None = None
    operators: dict[str, bytes] = field(default_factory=dict)  # name -> SHA-256 of the token
    user_header: str | None = None
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()

    @property
    def required(self) -> bool:
        """Whether every request must bring a credential."""
        return bool(self.shared_token or self.operators or self.user_header)

    def identify(self, authorization: str, proxy_user: str | None, peer: str) -> Visitor | None:
        """The visitor, or None when the request brings no credential this console takes."""
        offered = _offered_token(authorization)
        if offered is not None:
            digest = hashlib.sha256(offered.encode()).digest()
            for name, known in self.operators.items():
                if hmac.compare_digest(digest, known):
                    return Visitor(name)
        if self.user_header and proxy_user and self._trusted(peer):
            user = proxy_user.strip()
            if OPERATOR_NAME.match(user):
                return Visitor(user)
        if offered is not None and self.shared_token is not None and hmac.compare_digest(
                offered.encode(), self.shared_token.encode()):
            return Visitor(None)
        return None

    def _trusted(self, peer: str) -> bool:
        try:
            address = ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)


def _offered_token(header: str) -> str | None:
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    if scheme.lower() == "basic":
        try:
            return b64decode(credentials.strip(), validate=True).decode().partition(":")[2] or None
        except (Base64Error, UnicodeDecodeError):
            return None
    return None


def read_operators(path: str) -> dict[str, bytes]:
    """The operators file's names and token digests; CredentialsError naming the line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"console.operators_file {path}: {exc}") from None
    operators: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        found = _LINE.match(line)
        if found is None or not OPERATOR_NAME.match(found["name"]):
            raise CredentialsError(
                f"{path}:{number}: write NAME:sha256:HEX (floodgate console --new-operator "
                "NAME makes one); NAME is letters, digits and . _ @ + -, at most 64")
        if found["name"] in operators:
            raise CredentialsError(f"{path}:{number}: {found['name']} is listed twice")
        operators[found["name"]] = bytes.fromhex(found["digest"])
    if not operators:
        raise CredentialsError(f"console.operators_file {path} names no operator")
    return operators


def networks(addresses: list[str]) -> tuple[IPv4Network | IPv6Network, ...]:
    return tuple(ip_network(address, strict=False) for address in addresses)


def new_operator(name: str) -> tuple[str, str]:
    """(a fresh token for ``name``, the operators file's line for it)."""
    if not OPERATOR_NAME.match(name):
        raise ValueError(f"{name!r}: letters, digits and . _ @ + -, at most 64 characters")
    token = secrets.token_urlsafe(32)
    return token, f"{name}:sha256:{hashlib.sha256(token.encode()).hexdigest()}"
