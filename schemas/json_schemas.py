"""Generate the committed JSON Schema files from the models (the models are the source of truth)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.config import FloodgateConfig
from schemas.events import ActionEvent, DeadLetter, DeliveryEvent, MailEvent, PolicyEvent
from schemas.subject_batch import SubjectBatch
from schemas.subject_settings import SubjectSettings

SCHEMA_DIR = Path(__file__).parent / "json"

# file stem -> model; each file documents one topic's records (or the config).
EXPORTED: dict[str, type[BaseModel]] = {
    "mail_event": MailEvent,
    "delivery_event": DeliveryEvent,
    "action_event": ActionEvent,
    "policy_event": PolicyEvent,
    "dead_letter": DeadLetter,
    "subject_batch": SubjectBatch,
    "subject_settings": SubjectSettings,
    "config": FloodgateConfig,
}


REFERENCE = "REFERENCE.md"


def render_schemas() -> dict[str, str]:
    """File name -> text, deterministic: one JSON Schema per contract, and REFERENCE.md."""
    out = {}
    schemas = {}
    for stem, model in EXPORTED.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://floodgate.invalid/schemas/{stem}.schema.json"
        schemas[stem] = schema
        out[f"{stem}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    out[REFERENCE] = markdown_reference(schemas)
    return out


def markdown_reference(schemas: dict[str, dict[str, Any]]) -> str:
    """The schemas as Markdown tables: what operators and SIEM teams read."""
    lines = ["# Record and configuration reference", "",
             "Generated from the JSON Schemas in this folder by `floodgate schemas export "
             "schemas/json`; do not edit by hand.", ""]
    for stem, schema in schemas.items():
        lines += [f"## {schema.get('title', stem)} (`{stem}.schema.json`)", ""]
        if schema.get("description"):
            lines += [_one_line(schema["description"]), ""]
        lines += _table(schema)
        for name, definition in sorted(schema.get("$defs", {}).items()):
            if "enum" in definition:
                values = ", ".join(f"`{v}`" for v in definition["enum"])
                lines += [f"### {name}", "", f"One of {values}.", ""]
            if "properties" in definition:
                lines += [f"### {name}", ""]
                if definition.get("description"):
                    lines += [_one_line(definition["description"]), ""]
                lines += _table(definition)
    return "\n".join(lines).rstrip() + "\n"


def _table(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| field | type | required | default | description |", "| --- | --- | --- | --- | --- |"]
    for name, prop in schema.get("properties", {}).items():
        default = json.dumps(prop["default"]) if "default" in prop else ""
        rows.append(f"| `{name}` | {_type(prop)} | {'yes' if name in required else ''} | "
                    f"{_cell(default)} | {_cell(_one_line(prop.get('description', '')))} |")
    return [*rows, ""]


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    kind = str(prop.get("type", "any"))
    if kind == "array":
        return f"array of {_type(prop.get('items', {}))}"
    if kind == "object" and "additionalProperties" in prop:
        return f"map of {_type(prop['additionalProperties'])}"
    return f"{kind} ({prop['format']})" if "format" in prop else kind


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


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
