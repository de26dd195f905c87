"""The building blocks of the configuration model: its bounds, checked value types and base."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from schemas.addresses import is_domain_name, normal_domain, normal_local_part

# The engine keeps up to max(messages, spams) entries per subject and threshold:
# this bound keeps one subject's state under a megabyte.
MAX_THRESHOLD_COUNT = 100_000
# Window timestamps are stored as 32-bit millisecond offsets.
MAX_WINDOW = timedelta(days=30)



def network(value: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise PydanticCustomError(
            "network", '"{value}" is not an IP address or CIDR network', {"value": value}
        ) from None


def domain(value: str) -> str:
    normal = normal_domain(value)  # a UTF-8 domain is kept in its xn-- form
    if not is_domain_name(normal):
        raise PydanticCustomError("domain", '"{value}" is not a domain name', {"value": value})
    return normal


def sender_pattern(value: str) -> str:
    """An exact address, or ``@domain`` for every sender of a domain."""
    local, at, domain = value.strip().rpartition("@")
    domain = normal_domain(domain)
    if not at or not domain or not is_domain_name(domain):
        raise PydanticCustomError(
            "sender",
            '"{value}" is not an address or @domain',
            {"value": value},
        )
    return f"{normal_local_part(local)}@{domain}"


# Threshold and customer-class names: safe in YAML, keys, metrics labels and SIEM fields.
NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
ThresholdName = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]
ClassName = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]
Network = Annotated[str, AfterValidator(lambda v: str(network(v)))]
DomainName = Annotated[str, AfterValidator(domain)]
SenderPattern = Annotated[str, AfterValidator(sender_pattern)]


# What a reply text (``policy.texts``, a threshold's ``reply``) may name.
REPLY_PLACEHOLDERS = ("subject", "subject_type", "threshold", "expires_at", "action_id", "reason")


def reply_template(text: str) -> str:
    """A reply text whose placeholders are all known; PydanticCustomError saying which is not."""
    try:
        text.format(**dict.fromkeys(REPLY_PLACEHOLDERS, "x"))
    except (KeyError, IndexError, ValueError) as exc:
        raise PydanticCustomError(
            "reply_text", "bad placeholder {problem} (use {allowed})",
            {"problem": str(exc),
             "allowed": ", ".join("{" + p + "}" for p in REPLY_PLACEHOLDERS)}) from None
    return text


# Cut at 450 characters on the wire (``policy_protocol``), whatever its length here.
ReplyTemplate = Annotated[str, AfterValidator(reply_template)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
