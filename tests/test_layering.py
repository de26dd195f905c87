"""The layering, checked over every module's imports: schemas <- connectors <- pipeline.

``schemas/`` (the contracts) imports neither ``connectors/`` nor ``pipeline/``;
``connectors/`` (bytes to schemas and back) never imports ``pipeline/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"schemas": ("connectors", "pipeline"), "connectors": ("pipeline",)}


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def reaching_back(layer: str) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {module}"
            for path in sorted((ROOT / layer).rglob("*.py"))
            for line, module in imported(path)
            if module.split(".")[0] in FORBIDDEN[layer]]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_import_runs_back_up_the_layers(layer: str) -> None:
    assert (ROOT / layer).is_dir()
    assert reaching_back(layer) == []


def test_the_check_sees_an_import_that_runs_back(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import os\nfrom pipeline.engine import evaluator\n\ndef f():\n"
                      "    import pipeline.cli\n")
    assert [m for _, m in imported(module)] == ["os", "pipeline.engine", "pipeline.cli"]
