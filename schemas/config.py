"""The one configuration model, loaded once (see ``schemas.config_file``) and passed down."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, model_validator
from pydantic_core import PydanticCustomError

from schemas.config_types import (
    ClassName,
    DomainName,
    Network,
    ReplyTemplate,
    Section,
    SenderPattern,
)
from schemas.durations import Duration
from schemas.thresholds import Threshold


class Networks(Section):
    internal: list[Network] = Field(
        default_factory=list, description="Clients whose mail is ours: outbound when it leaves"
    )
    local_domains: list[DomainName] = Field(default_factory=list)


class Exempt(Section):
    """Mail matching any of these is never counted and never acted on."""

    client_ips: list[Network] = Field(default_factory=list)
    senders: list[SenderPattern] = Field(
        default_factory=list, description="Addresses, or @domain for a whole domain"
    )
    sasl_usernames: list[str] = Field(default_factory=list)


class SubjectClasses(Section):
    """Customer classes: a subject's class (``floodgate settings``, the subject-settings
    topic) picks the thresholds that count it (``classes``) and their numbers
    (``per_class``)."""

    default: ClassName = Field("standard", description="the class of every subject that has "
                                                       "no settings record, or an unknown class")
    names: list[ClassName] = Field(
        default_factory=list, max_length=100,
        description="every class operators may give (the default is always one); settings "
                    "naming another are refused")

    @property
    def known(self) -> list[str]:
        return [self.default, *(n for n in self.names if n != self.default)]


# A repeat offender's ladder: enough steps for any policy, few enough to read at a glance.
class KafkaSettings(Section):
    """Connection settings passed to every Kafka client (confluent-kafka and aiokafka)."""

    bootstrap_servers: str | None = Field(
        None, description="host:port[,host:port]; none means `floodgate up` runs its own broker"
    )
    client_id: str = "floodgate"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    idempotent_producers: bool = Field(
        True, description="the broker drops a producer's retried batches itself (Kafka's "
                          "idempotent producer). Turn off only for a broker that lacks it or "
                          "whose idempotent write is not atomic (Tansu 0.6 on S3 can answer a "
                          "retry after a crash as a duplicate of a batch it never stored): then "
                          "one request is in flight per connection, so retries keep the order, "
                          "and the duplicates they may leave are dropped by event id")


class Topics(Section):
    mail_events: str = "floodgate.mail-events"
    deliveries: str = "floodgate.deliveries"
    policy_events: str = "floodgate.policy-events"
    actions: str = "floodgate.actions"
    dead_letter: str = "floodgate.dead-letter"
    subject_settings: str = Field(
        "floodgate.subject-settings",
        description="compacted: each subject's class, overrides and exemption (floodgate "
                    "settings)")
    subject_events: str = Field("floodgate.subject-events",
                                description="internal: mail events keyed by subject, one copy "
                                            "per key dimension")


# The policy service cuts {subject} to this, so a reply (450 characters at most) keeps its
# {action_id}: the log reader recognises Floodgate's own refusals by their whole text.
MAX_SUBJECT_IN_REPLY = 200


class ReplyTexts(Section):
    """What Postfix tells the client, per action. Placeholders: {subject}, {subject_type},
    {threshold}, {reason} (why, by the threshold's kind: "too many bounces"), {expires_at}
    (UTC, ISO 8601), {action_id}. A threshold's own ``reply`` goes before these. Values from
    requests never reach a reply; control characters are stripped and the text is cut at
    450 characters."""

    block: ReplyTemplate = ("5.7.1 Sending suspended for {subject_type} {subject}: {reason} "
                            "(ref {action_id})")
    defer: ReplyTemplate = ("4.7.1 Sending deferred for {subject_type} {subject}: {reason}; try "
                            "again after {expires_at} (ref {action_id})")
    quarantine: ReplyTemplate = "Held for review: {subject_type} {subject}: {reason} (ref {action_id})"
    warn: ReplyTemplate = ("Floodgate warning for {subject_type} {subject}: {reason} "
                           "({threshold}, ref {action_id})")


class PolicySettings(Section):
    """The Postfix policy responder (``floodgate policy-server``)."""

    listen: str = Field("127.0.0.1:10040", pattern=r"^\[?[0-9A-Fa-f:.]+\]?:\d{1,5}$",
                        description="host:port; loopback unless Postfix runs elsewhere")
    unix_socket: str | None = Field(None, description="also listen on this unix socket path")
    allow_clients: list[Network] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="TCP clients outside these networks are refused at connect (the unix "
                    "socket is guarded by its file permissions)")
    defer_reply: Literal["DEFER", "DEFER_IF_PERMIT"] = "DEFER"
    texts: ReplyTexts = Field(default_factory=ReplyTexts)
    max_connections: int = Field(2_000, ge=1, le=100_000)
    idle_timeout: Duration = Field(default_factory=lambda: timedelta(seconds=600),
                                   description="closes connections silent this long (Postfix's own "
                                               "smtpd_policy_service_max_idle is 300s)")
    request_timeout: Duration = Field(default_factory=lambda: timedelta(seconds=10),
                                      description="time to finish a request once it started")
    fail_open: bool = Field(True, description="answer DUNNO when the responder itself fails")
    health_listen: str = Field("127.0.0.1:10041", pattern=r"^\[?[0-9A-Fa-f:.]+\]?:\d{1,5}$",
                               description="HTTP /livez and /readyz")
    mail_host: str | None = Field(
        None, min_length=1, max_length=253,
        description="the Postfix host's name as its log shows it (default: this host's name); "
                    "policy events carry it so they share event ids with the log connector")
    state_dir: str | None = Field(
        "/var/lib/floodgate/policy",
        description="keep the action view in RocksDB here, so a restarted responder answers "
                    "from the last known actions at once, even while Kafka is away; null: "
                    "memory only (a restart then answers DUNNO until Kafka is back)")
    event_buffer: int = Field(100_000, ge=1, le=10_000_000,
                              description="policy events held while Kafka is slow; more are "
                                          "dropped and counted")


class WorkerSettings(Section):
    """The streaming worker (``floodgate worker``)."""

    app_id: str = Field("floodgate-worker", pattern=r"^[A-Za-z0-9_.-]+$",
                        description="consumer group and changelog-topic prefix; same for all workers")
    data_dir: str = Field("/var/lib/floodgate/worker",
                          description="the counting partitions' RocksDB stores live here")
    partitions: int = Field(12, ge=1, le=1024,
                            description="partitions of the internal topics; fixed once created")
    tick_interval_s: float = Field(1.0, gt=0, le=60,
                                   description="how often the worker checkpoints its state "
                                               "(changelog, RocksDB, offsets), expires actions "
                                               "and sweeps idle subjects")
    live_lateness_s: float = Field(
        1.0, ge=0, le=3600,
        description="a mail source partition read to its end is taken to have reached the "
                    "wall clock less this (a settings partition, the wall clock): live "
                    "messages stamped later than that are counted on arrival instead of in "
                    "event-time order; a mail partition with no traffic holds counting back "
                    "by this much")
    decoded_subjects: int = Field(
        5_000, ge=100, le=10_000_000,
        description="subjects a counting partition keeps decoded after a checkpoint (about "
                    "2 KB each), and up to 4 times as many between checkpoints; the first "
                    "loaded go first and are read again from RocksDB when next seen")
    max_held_entries: int = Field(
        1_000_000, ge=1_000, le=50_000_000,
        description="entries the worker holds back for event-time order (about 700 bytes "
                    "each), shared by its counting partitions; past it a partition counts its "
                    "oldest anyway, out of order (a source partition far behind the others)")
    max_source_lead_s: float = Field(
        10.0, gt=0, le=3600,
        description="once three quarters of max_held_entries are held, a source partition whose events "
                    "run further ahead of the slowest source partition this worker reads is "
                    "paused until that one comes half way: in a backlog, what is held back for "
                    "event-time order stays bounded whatever order the broker serves partitions "
                    "in (each pause costs a fetch again of what was read ahead)")
    fetch_wait_ms: int = Field(
        500, ge=1, le=10_000,
        description="longest a fetch waits for records (librdkafka fetch.wait.max.ms). Apache "
                    "Kafka answers as soon as records arrive, so this only bounds an idle fetch; "
                    "a broker that holds every fetch this long (Tansu) adds it to detection "
                    "latency, and one that needs longer to read its storage (Tansu on S3 after "
                    "a restart) answers nothing at all below it")
    health_listen: str | None = Field(
        None, pattern=r"^\[?[0-9A-Fa-f:.]+\]?:\d{1,5}$",
        description="HTTP /livez, /readyz and /metrics (Prometheus); none: off")
    count_policy_events: bool = Field(
        False, description="also count the messages of end-of-message policy requests "
                           "(counted once when the log reports them too)")
    rocksdb_write_buffer_mib: int = Field(
        4, ge=1, le=1024, description="RocksDB memtable size per counting partition (two are kept); "
                                      "the worker's memory is about 100 MiB plus, per partition "
                                      "it holds, 2 x this + the block cache + 4 MiB")
    rocksdb_block_cache_mib: int = Field(
        16, ge=1, le=65536, description="RocksDB block cache per counting partition")


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise PydanticCustomError("regex", '"{value}" is not a regular expression: {problem}',
                                  {"value": value, "problem": str(exc)}) from None
    return value


Regex = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_regex)]
# The stock reject texts of rspamd (its milter's reply, and GTUBE), Amavis and spamass-milter.
DEFAULT_SPAM_REPLIES = (r"\bSpam message rejected\b", r"\bGtube pattern\b",
                        r"\bReject, id=\S+ - (?:spam|spammy)\b", r"\bBlocked by SpamAssassin\b")


class LogReadingSettings(Section):
    """How the log reader judges refusals and recognises a content filter's copies.

    A refused message counts as spam when a spam filter's own log line says so
    (rspamd, Amavis, spamd: joined by queue id or Message-ID) or when the
    server's reply matches one of ``spam_replies``; Floodgate's own refusals
    (the ``policy.texts`` replies) never count. Text the client sent (an echoed
    address, a header) is never searched.
    """

    spam_replies: list[Regex] = Field(
        default_factory=lambda: list(DEFAULT_SPAM_REPLIES), max_length=100,
        description="regular expressions (case-insensitive) searched in a refusal's reply text "
                    "that mean a spam filter refused the mail; for filters that log no verdict")
    verdict_wait: Duration = Field(
        default_factory=lambda: timedelta(seconds=5),
        description="log time a refused message waits for its spam filter's verdict line")
    reinjection_services: list[Annotated[str, Field(min_length=1, max_length=100,
                                                    pattern=r"^[\w.+-]+(/[\w.+-]+)*$")]] = Field(
        default_factory=list, max_length=50,
        description="syslog names of the services a content filter re-injects through (e.g. "
                    "postfix/reinject for a 127.0.0.1:10025 smtpd with -o syslog_name=...): "
                    "what they receive is a copy, never new mail. Copies are also known by "
                    "the filter's 'queued as' and by XFORWARD's orig_queue_id")

    @model_validator(mode="after")
    def _bounded_wait(self) -> LogReadingSettings:
        if self.verdict_wait > timedelta(minutes=5):
            raise PydanticCustomError("verdict_wait", "verdict_wait must be at most 5m", {})
        return self


class AddressSettings(Section):
    """How addresses are compared (see schemas/addresses.py)."""

    extension_delimiters: str = Field(
        "", max_length=8, pattern=r'^[^@"\s<>]*$',
        description="Postfix's recipient_delimiter characters (e.g. \"+\" or \"+-\"): when set, "
                    "alice+news@x counts, is exempted and is enforced as alice@x; none: off")


class TailSettings(Section):
    """The log tailer (``floodgate tail``)."""

    health_listen: str | None = Field(
        None, pattern=r"^\[?[0-9A-Fa-f:.]+\]?:\d{1,5}$",
        description="HTTP /livez, /readyz and /metrics (Prometheus); none: off")


class ConsoleSettings(Section):
    """The operations console (``floodgate console``; ``floodgate up`` starts it too)."""

    listen: str | None = Field(
        "127.0.0.1:10045", pattern=r"^\[?[0-9A-Fa-f:.]+\]?:\d{1,5}$",
        description="HTTP host:port of the console page and its JSON API; on any address but "
                    "loopback a credential is required: operators_file, user_header or the "
                    "environment's FLOODGATE_CONSOLE_TOKEN (one shared bearer token, or "
                    "basic-auth password); none: `up` starts no console")
    operators_file: str | None = Field(
        None, description="a file of NAME:sha256:HEX lines, one per operator (`floodgate "
                          "console --new-operator NAME` makes one): each signs in with a token "
                          "of their own, and every change they make is recorded under NAME")
    user_header: str | None = Field(
        None, pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="the header in which a reverse proxy passes the user it signed in (e.g. "
                    "X-Forwarded-User), taken as the operator's name; believed only from "
                    "trusted_proxies")
    trusted_proxies: list[Network] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="addresses whose user_header is believed (the reverse proxy's)")
    top_capacity: int = Field(
        200, ge=10, le=100_000,
        description="counters per key dimension in each minute of the Top subjects summary "
                    "(half that in each 10 seconds): no estimate is off by more than the "
                    "view's messages / top_capacity; memory is about 90 x 4 x this counters")


class FloodgateConfig(Section):
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: Topics = Field(default_factory=Topics)
    networks: Networks = Field(default_factory=Networks)
    exempt: Exempt = Field(default_factory=Exempt)
    classes: SubjectClasses = Field(default_factory=SubjectClasses)
    thresholds: list[Threshold] = Field(default_factory=list)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    tail: TailSettings = Field(default_factory=TailSettings)
    log_reading: LogReadingSettings = Field(default_factory=LogReadingSettings)
    addresses: AddressSettings = Field(default_factory=AddressSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @property
    def threshold_replies(self) -> dict[str, str]:
        """Each threshold's own reply text, by threshold name (those that have one)."""
        return {t.name: t.reply for t in self.thresholds if t.reply}

    @model_validator(mode="after")
    def _unique_names(self) -> FloodgateConfig:
        first_index: dict[str, int] = {}
        for index, threshold in enumerate(self.thresholds):
            if threshold.name in first_index:
                # `index` lets the config loader point at the offending line.
                raise PydanticCustomError(
                    "duplicate_name",
                    '"{name}" is already the name of thresholds[{first}]',
                    {"name": threshold.name, "first": first_index[threshold.name], "index": index},
                )
            first_index[threshold.name] = index
        known = set(self.classes.known)
        for index, threshold in enumerate(self.thresholds):
            unknown = sorted({*threshold.classes, *threshold.per_class} - known)
            if unknown:
                raise PydanticCustomError(
                    "unknown_class",
                    'thresholds[{index}] ("{name}") names the class(es) {unknown}, which '
                    "classes.names does not list ({known})",
                    {"index": index, "name": threshold.name, "unknown": ", ".join(unknown),
                     "known": ", ".join(sorted(known))})
        return self
