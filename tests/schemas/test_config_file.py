"""check-config's promise: every problem with its file, line and setting path."""

from pathlib import Path

import pytest

from schemas.config_file import ConfigError, load_config
from schemas.vocabulary import ActionKind, SubjectType

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "examples" / "floodgate.yaml"


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "floodgate.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    return [str(p).replace(str(path), "F") for p in caught.value.problems]


THRESHOLD = """\
  - name: {name}
    key: sasl_username
    window: {window}
    messages: 60
    action: defer
    duration: 15m
"""


def test_the_shipped_example_holds_the_design_cards_two_thresholds() -> None:
    config = load_config(EXAMPLE, {})
    burst, spam = config.thresholds
    assert (burst.key, burst.window.total_seconds(), burst.messages, burst.spams,
            burst.action) == (SubjectType.SASL_USERNAME, 30, 60, 0, ActionKind.DEFER)
    assert (spam.window.total_seconds(), spam.messages, spam.spams) == (30, 10, 10)


def test_bad_duration_points_at_its_line(tmp_path: Path) -> None:
    text = "thresholds:\n" + THRESHOLD.format(name="a", window="30s") \
        + THRESHOLD.format(name="b", window="30s") + THRESHOLD.format(name="c", window="30x")
    assert problems(tmp_path, text) == [
        'F:16: thresholds[2].window: "30x" is not a duration '
        "(write it like 30s, 15m, 1h30m or 2d)"]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """\
networks:
  internal: [10.0.0.300/8]
exempt:
  senders: [nobody]
thresholds:
  - name: x
    key: sasl_user
    window: 30s
    messages: ten
    action: defer
    duration: 15m
    colour: red
"""
    assert problems(tmp_path, text) == [
        'F:2: networks.internal[0]: "10.0.0.300/8" is not an IP address or CIDR network',
        'F:4: exempt.senders[0]: "nobody" is not an address or @domain',
        "F:7: thresholds[0].key: \"sasl_user\" is not one of: 'sasl_username', 'sender', "
        "'sender_domain', 'client_ip', 'client_net'",
        'F:9: thresholds[0].messages: "ten" is not a whole number',
        "F:12: thresholds[0].colour: unknown setting (check its spelling and indentation)",
    ]


def test_missing_setting_points_at_its_parent(tmp_path: Path) -> None:
    text = "thresholds:\n  - name: x\n    key: sender\n    messages: 5\n    action: warn\n" \
           "    duration: 1m\n"
    assert problems(tmp_path, text) == ["F:2: thresholds[0].window: required setting is missing"]


def test_duplicate_names_and_keys(tmp_path: Path) -> None:
    text = "thresholds:\n" + THRESHOLD.format(name="a", window="1m") \
        + THRESHOLD.format(name="a", window="2m")
    assert problems(tmp_path, text) == [
        'F:8: thresholds[1].name: "a" is already the name of thresholds[0]']
    assert problems(tmp_path, "kafka:\n  client_id: a\n  client_id: b\n") == [
        "F:3: kafka.client_id: set twice in the same mapping"]


def test_semantic_checks(tmp_path: Path) -> None:
    text = "thresholds:\n  - {name: z, key: sender, window: 1s, messages: 0, spams: 0, " \
           "action: warn, duration: 1m}\n"
    assert problems(tmp_path, text) == [
        "F:2: thresholds[0]: messages and spams are both 0: it would fire on every message"]


def test_escalation_ladder_is_checked(tmp_path: Path) -> None:
    text = "thresholds:\n" + THRESHOLD.format(name="a", window="1m") + """\
    escalate:
      - {after: 3, within: 24h, action: block, duration: 1d}
      - {after: 2, within: 0s, action: defer, duration: 1h}
      - {after: 1, within: 40d, action: warn, duration: 1h}
"""
    assert problems(tmp_path, text) == [
        "F:10: thresholds[0].escalate[1]: within must be longer than 0",
        "F:11: thresholds[0].escalate[2].after: 1 is too small: must be at least 2",
    ]
    text = "thresholds:\n" + THRESHOLD.format(name="a", window="1m") + """\
    escalate:
      - {after: 3, within: 24h, action: block, duration: 1d}
      - {after: 2, within: 24h, action: defer, duration: 1h}
"""
    assert problems(tmp_path, text) == [
        "F:2: thresholds[0]: escalate steps must be in increasing order of `after`, each "
        "`after` once"]
    ladder = load_config(EXAMPLE, {}).thresholds[0].escalate
    assert [(s.after, s.action) for s in ladder] == [(2, ActionKind.DEFER), (3, ActionKind.BLOCK)]


def test_invalid_yaml_and_wrong_shapes(tmp_path: Path) -> None:
    # an unclosed bracket or quote is pointed at where it opened, not where it was noticed
    unclosed = "exempt:\n  ips: [10.0.0.1, 10.0.0.2\nthresholds:\n  - name: x\n"
    assert problems(tmp_path, unclosed) == [
        "F:2: invalid YAML: the [ opened on this line is not closed (expected ',' or ']', but "
        "got ':' on line 3)"]
    assert problems(tmp_path, 'thresholds:\n  - name: "burst\n    key: x\n')[0].startswith(
        "F:2: invalid YAML: the quote opened on this line is not closed")
    assert problems(tmp_path, "- a\n- b\n") == ["F:1: the top level must be a mapping"]
    assert problems(tmp_path, "thresholds: 5\n") == ["F:1: thresholds: expected a list, got 5"]


def test_every_field_problem_of_a_threshold_is_said_in_one_pass(tmp_path: Path) -> None:
    text = ("thresholds:\n  - name: a\n    key: sasl_username\n    window: 40d\n"
            "    messages: 60\n    action: explode\n    duration: 0s\n")
    assert problems(tmp_path, text) == [
        "F:4: thresholds[0].window: window must be at most 30d",
        "F:6: thresholds[0].action: \"explode\" is not one of: 'warn', 'defer', 'quarantine', "
        "'block'",
        "F:7: thresholds[0].duration: duration must be longer than 0"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml", {})
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary, {})


def test_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(EXAMPLE.read_text())
    config = load_config(path, {
        "FLOODGATE_KAFKA__BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
        "FLOODGATE_THRESHOLDS__0__MESSAGES": "120",
        "FLOODGATE_NETWORKS__LOCAL_DOMAINS": "[example.com, example.org]",
        "OTHER": "ignored",
        # not settings: the console's secret, the container's health-check address
        "FLOODGATE_CONSOLE_TOKEN": "s3cret", "FLOODGATE_HEALTH_URL": "http://127.0.0.1:1/readyz",
    })
    assert config.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert config.thresholds[0].messages == 120
    assert config.networks.local_domains == ["example.com", "example.org"]


def test_environment_problems_name_the_variable(tmp_path: Path) -> None:
    assert problems(tmp_path, "{}\n", {"FLOODGATE_KAFKA__SECURITY_PROTOCOL": "FOO"}) == [
        "FLOODGATE_KAFKA__SECURITY_PROTOCOL: kafka.security_protocol: \"FOO\" is not one of: "
        "'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'"]
    assert problems(tmp_path, "{}\n", {"FLOODGATE_THRESHOLDS__3__MESSAGES": "1"}) == [
        "FLOODGATE_THRESHOLDS__3__MESSAGES: thresholds[3]: no such list item to override in "
        "the config file"]


def test_secrets_are_not_printed(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("kafka:\n  sasl_password: hunter2\n")
    config = load_config(path, {})
    assert "hunter2" not in repr(config)


@pytest.mark.parametrize(("settings", "problem"), [
    ("count: deliveries", "count: deliveries needs flagged: bounced or remote_refused"),
    ("flagged: bounced\n    flagged_units: 5", "flagged: bounced needs count: deliveries"),
    ("count: deliveries\n    flagged: bounced\n    spams: 3", "spams does not apply to flagged: "
                                                            "bounced; use flagged_units"),
    ("flagged_units: 3", "flagged_units is for flagged: bounced, remote_refused or "
                         "unknown_recipient"),
    ("flagged: unknown_recipient\n    flagged_units: 5", "flagged: unknown_recipient needs "
                                                         "count: recipients"),
    ("count: deliveries\n    flagged: unknown_recipient\n    flagged_units: 5",
     "flagged: unknown_recipient needs count: recipients"),
    ("count: deliveries\n    flagged: remote_refused\n    flagged_units: 0",
     "thresholds[0].flagged_units: 0 is too small: must be at least 1"),
])
def test_flags_fit_what_is_counted(tmp_path: Path, settings: str, problem: str) -> None:
    text = "thresholds:\n" + THRESHOLD.format(name="a", window="10m") + f"    {settings}\n"
    [found] = problems(tmp_path, text)
    assert problem in found


def test_a_bounce_ratio_threshold(tmp_path: Path) -> None:
    from pipeline.cli.check_config import describe
    from schemas.vocabulary import CountMode, Flag

    path = tmp_path / "floodgate.yaml"
    path.write_text("thresholds:\n" + THRESHOLD.format(name="bought-list", window="10m")
                    .replace("60", "30") + "    count: deliveries\n    flagged: bounced\n"
                    "    flagged_units: 20\n")
    [bounce] = load_config(path, {}).thresholds
    assert (bounce.count, bounce.flagged, bounce.flagged_limit) == (
        CountMode.DELIVERIES, Flag.BOUNCED, 20)
    assert describe(bounce).startswith(
        "bought-list: >= 30 deliveries with >= 20 bounced in 10m per sasl_username")


@pytest.mark.parametrize(("line", "problem"), [
    ("key: sender\n    prefix: {ipv6: 64}", "prefix is for key: client_ip only"),
    ("key: client_net", "write key: client_ip and prefix"),
    ("key: client_ip\n    prefix: {ipv6: 200}", "prefix.ipv6: 200 is too large: must be at most 128"),
])
def test_prefix_keys_are_checked(tmp_path: Path, line: str, problem: str) -> None:
    text = ("thresholds:\n  - name: t\n    " + line + "\n    window: 1m\n    messages: 5\n"
            "    action: defer\n    duration: 1m\n")
    found = problems(tmp_path, text)
    assert any(problem in p for p in found), found
