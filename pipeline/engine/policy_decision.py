"""The policy service's decision: the reply to one policy request, from the active actions.

The strongest action in force for any subject of the request (SASL account,
sender, sender domain, client address, and every client network with an action
or a settings record that holds the address) decides: block -> REJECT, defer ->
DEFER (or DEFER_IF_PERMIT), quarantine -> HOLD, warn -> WARN, none -> DUNNO.
An exempt account or client network always gets DUNNO; an exempt sender only
keeps the sender and sender-domain subjects out of the lookup (any client can
write it into MAIL FROM), as it does in counting. Exemptions come from the
config and, live, from the subjects' settings records (``SettingsExemptions``):
an account or client address exempted there gets DUNNO, an exempted sender or
sender domain is left out of the lookup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from connectors.postfix_policy.policy_protocol import PASS, Answer, reply
from pipeline.engine.counting import Exemptions
from pipeline.engine.enforcement import ActiveActions, NetworkShapes
from schemas.addresses import client_address, client_network, domain_of, normal_address
from schemas.config import MAX_SUBJECT_IN_REPLY, Exempt, PolicySettings
from schemas.events import ActionEvent
from schemas.subject_settings import SubjectSettings
from schemas.subjects import normalise_subject, subject_key
from schemas.vocabulary import ActionKind, CountMode, Flag, SubjectType

# Cheap test before a record is parsed: a settings record that exempts says so in its bytes;
# only those, and records of subjects exempt so far, are parsed.
_EXEMPT_BYTES = re.compile(rb'"exempt"\s*:\s*true')
_WHOLE_REQUEST = (SubjectType.SASL_USERNAME.value + ":", SubjectType.CLIENT_IP.value + ":",
                  SubjectType.CLIENT_NET.value + ":")


class SettingsExemptions:
    """The subjects the settings topic exempts, kept current from its records (any thread:
    set operations are atomic). Of 10,000,000 records only the exempting ones are parsed."""

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._networks = NetworkShapes()
        self.bad_records = 0

    @property
    def network_shapes(self) -> frozenset[tuple[int, int]]:
        return self._networks.shapes

    def apply(self, key: str | None, value: bytes | None) -> None:
        if key is None:
            return
        if value is None:
            self._forget(key)
            return
        if key not in self._keys and _EXEMPT_BYTES.search(value) is None:
            return  # not exempt before, not exempt now: no need to parse it
        try:
            record = SubjectSettings.model_validate_json(value)
        except ValueError:
            record = None
        if record is None or record.subject != key:
            self.bad_records += 1  # as the worker does: the subject keeps what it had
            return
        if record.exempt:
            if key not in self._keys:
                self._keys.add(key)
                self._networks.add(key)
        else:
            self._forget(key)

    def _forget(self, key: str) -> None:
        if key in self._keys:
            self._keys.discard(key)
            self._networks.discard(key)

    def __len__(self) -> int:
        return len(self._keys)

    def exempts_request(self, keys: list[str]) -> bool:
        """An exempt account or client address among the request's subjects."""
        return bool(self._keys) and any(key in self._keys for key in keys
                                        if key.startswith(_WHOLE_REQUEST))

    def others(self, keys: list[str]) -> list[str]:
        """The subjects to look actions up under: the exempt ones left out."""
        return [key for key in keys if key not in self._keys] if self._keys else keys


_SASL = subject_key(SubjectType.SASL_USERNAME, "")
_SENDER = subject_key(SubjectType.SENDER, "")
_DOMAIN = subject_key(SubjectType.SENDER_DOMAIN, "")
_CLIENT = subject_key(SubjectType.CLIENT_IP, "")


def subject_keys(attributes: dict[str, str], sender_exempt: bool = False,
                 delimiters: str = "",
                 networks: Iterable[tuple[int, int]] = ()) -> list[str]:
    """The table keys (``type:subject``) a request is looked up under. ``networks``: the
    (IP version, prefix length) of the ``client_net`` subjects to look the client address
    up under too. Each subject spelt by ``normalise_subject``, the keys in the order
    account, sender, sender domain, client address, networks (every request goes
    through here: the prefixes are made once)."""
    keys = []
    account = attributes.get("sasl_username")
    if account:
        keys.append(_SASL + account)
    sender = attributes.get("sender")
    if sender and not sender_exempt:
        keys.append(_SENDER + normal_address(sender, delimiters))
        domain = normalise_subject(SubjectType.SENDER_DOMAIN, domain_of(sender))
        if domain:
            keys.append(_DOMAIN + domain)
    address = client_address(attributes.get("client_address"))
    if address:
        keys.append(_CLIENT + address)
        version = 4 if "." in address else 6
        for shape_version, length in networks:
            network = client_network(address, length, length) \
                if shape_version == version else None
            if network is not None:
                keys.append(subject_key(SubjectType.CLIENT_NET, network))
    return keys


class PolicyResponder:
    def __init__(self, settings: PolicySettings, exempt: Exempt, view: ActiveActions,
                 delimiters: str = "", live: SettingsExemptions | None = None,
                 replies: Mapping[str, str] | None = None) -> None:
        """``replies``: the thresholds' own reply texts by name (``threshold_replies``)."""
        self._settings = settings
        self._replies = dict(replies or {})
        self._delimiters = delimiters  # the config's addresses.extension_delimiters
        self._exemptions = Exemptions(exempt, delimiters)
        self._view = view
        self._live = live if live is not None else SettingsExemptions()  # len() 0 is falsy

    def answer(self, attributes: dict[str, str], now_ms: int) -> Answer:
        sender = attributes.get("sender", "")
        client = client_address(attributes.get("client_address"))
        if self._exemptions.exempts_message(attributes.get("sasl_username") or None, client):
            return PASS
        sender_exempt = self._exemptions.exempts_sender(sender, domain_of(sender))
        networks = self._view.network_shapes
        if self._live.network_shapes:
            networks = networks | self._live.network_shapes
        keys = subject_keys(attributes, sender_exempt, self._delimiters, networks)
        if self._live.exempts_request(keys):
            return PASS
        action = self._view.strongest(self._live.others(keys), now_ms)
        if action is None:
            return PASS
        return Answer(self._reply_for(action), action)

    def _reply_for(self, action: ActionEvent) -> bytes:
        texts = self._settings.texts
        values = {
            # Cut so the reply (450 characters at most) keeps its reference to the action.
            "subject": action.subject[:MAX_SUBJECT_IN_REPLY],
            "subject_type": action.subject_type.value,
            "threshold": action.threshold or "manual", "action_id": action.action_id,
            "expires_at": action.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "reason": reason_of(action),
        }
        own = self._replies.get(action.threshold) if action.threshold else None
        if action.action is ActionKind.BLOCK:
            return reply("REJECT", _status_class(_fill(own or texts.block, values), "5"))
        if action.action is ActionKind.DEFER:
            return reply(self._settings.defer_reply,
                         _status_class(_fill(own or texts.defer, values), "4"))
        if action.action is ActionKind.QUARANTINE:
            return reply("HOLD", _fill(own or texts.quarantine, values))
        return reply("WARN", _fill(own or texts.warn, values))


def reason_of(action: ActionEvent) -> str:
    """Why the action is in force, in the words a customer and a helpdesk read: by what
    its threshold counted (its evidence), or the operator's hand."""
    evidence = action.evidence
    if action.threshold is None:
        return "held by the mail operator"
    if evidence is None:
        return "too much mail"
    if evidence.baseline is not None:
        return "far more mail than usual"
    if evidence.limit_spams:
        return _FLAGGED_REASON[evidence.flagged]
    return "too many delivery attempts" if evidence.count is CountMode.DELIVERIES else \
        "too much mail"


_FLAGGED_REASON = {Flag.SPAM: "too much spam", Flag.BOUNCED: "too many bounces",
                   Flag.REMOTE_REFUSED: "too many refusals by receiving mail servers",
                   Flag.UNKNOWN_RECIPIENT: "too many unknown recipients"}
_STATUS = re.compile(r"[245](?=\.\d{1,3}\.\d{1,3} )")


def _status_class(text: str, first: str) -> str:
    """A leading enhanced status code in the action's class: a threshold's own text may be
    used for a defer and, up its escalation ladder, for a block."""
    return _STATUS.sub(first, text, count=1) if _STATUS.match(text) else text


def _fill(template: str, values: dict[str, str]) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template  # a broken template still gives a reply, never an empty one
