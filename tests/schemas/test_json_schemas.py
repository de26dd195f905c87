import json
import re
from pathlib import Path

from schemas.json_schemas import SCHEMA_DIR, export_schemas, render_schemas, stale_schemas


def test_committed_schemas_match_the_models() -> None:
    assert stale_schemas(SCHEMA_DIR) == [], (
        "schemas/json is out of date: run `floodgate schemas export schemas/json`")


def test_a_changed_file_is_reported(tmp_path: Path) -> None:
    export_schemas(tmp_path)
    path = tmp_path / "mail_event.schema.json"
    path.write_text(path.read_text().replace('"event_id"', '"eventId"'))
    assert stale_schemas(tmp_path) == ["mail_event.schema.json"]


def test_field_names_are_snake_case_and_contracts_complete() -> None:
    mail = json.loads(render_schemas()["mail_event.schema.json"])
    for name in ("event_id", "ts", "host", "queue_id", "message_id", "client_ip", "client_name",
                 "sasl_username", "sender", "sender_domain", "recipients", "recipient_count",
                 "size", "direction", "accepted", "spam", "spam_score", "source"):
        assert name in mail["properties"]
    action = json.loads(render_schemas()["action_event.schema.json"])
    for name in ("action_id", "subject_type", "subject", "action", "threshold", "state", "origin",
                 "triggered_at", "expires_at", "evidence"):
        assert name in action["properties"]
    for schema in (json.loads(text) for name, text in render_schemas().items()
                   if name.endswith(".json")):
        for prop in schema["properties"]:
            assert prop == prop.lower() and "-" not in prop


def test_the_reference_documents_every_field_and_escapes_tables() -> None:
    reference = render_schemas()["REFERENCE.md"]
    for section in ("## MailEvent", "## ActionEvent", "## PolicyEvent", "## DeadLetter",
                    "## FloodgateConfig", "### Threshold", "### Direction"):
        assert section in reference
    assert "| `event_id` | string | yes |" in reference
    assert "| `expires_at` | string (date-time) | yes |" in reference
    for line in reference.splitlines():
        if line.startswith("| `"):
            assert len(re.split(r"(?<!\\)\|", line)) == 7  # five cells; pipes inside escaped
