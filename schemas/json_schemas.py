"""Generate the committed JSON Schema files from the models (the models are the source of truth)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.config import FloodgateConfig
from schemas.events import ActionEvent, DeadLetter, DeliveryEvent, MailEvent, PolicyEvent

SCHEMA_DIR = Path(__file__).parent / "json"

# file stem -> model; each file documents one topic's records (or the config).
EXPORTED: dict[str, type[BaseModel]] = {
    "mail_event": MailEvent,
    "delivery_event": DeliveryEvent,
    "action_event": ActionEvent,
    "policy_event": PolicyEvent,
    "dead_letter": DeadLetter,
    "config": FloodgateConfig,
}


def render_schemas() -> dict[str, str]:
    """File name -> JSON text, deterministic (sorted keys, trailing newline)."""
    out = {}
    for stem, model in EXPORTED.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://floodgate.invalid/schemas/{stem}.schema.json"
        out[f"{stem}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def export_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files in ``directory`` that differ from the models (or are missing)."""
    stale = []
    for name, text in render_schemas().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale
