"""`floodgate schemas export|check`: the committed JSON Schemas are the models' own."""

from pathlib import Path

from pipeline.cli import main


def test_schemas_export_then_check(tmp_path: Path) -> None:
    assert main(["schemas", "export", str(tmp_path)]) == 0
    assert main(["schemas", "check", str(tmp_path)]) == 0
    (tmp_path / "config.schema.json").write_text("{}")
    assert main(["schemas", "check", str(tmp_path)]) == 1
