"""Read the YAML config file and FLOODGATE_* overrides into one validated model.

Every problem is reported with where it is: the file and line for YAML, the
variable name for an override, and the setting's path (``thresholds[2].window``),
so an operator can fix a file without reading a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from schemas.config import FloodgateConfig

ENV_PREFIX = "FLOODGATE_"
# FLOODGATE_ variables that are not settings: the console's secret (kept out of config
# files and their dumps) and the container image's health-check address.
NOT_SETTINGS = frozenset({"FLOODGATE_CONSOLE_TOKEN", "FLOODGATE_HEALTH_URL"})
MAX_CONFIG_BYTES = 4 * 1024 * 1024

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    message: str
    where: str  # "file.yaml:12" or "FLOODGATE_KAFKA__BOOTSTRAP_SERVERS"

    def __str__(self) -> str:
        return f"{self.where}: {self.path}: {self.message}" if self.path else f"{self.where}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists each thing to fix."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def format_path(path: PathKey) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> FloodgateConfig:
    """Load ``path`` and apply ``FLOODGATE_*`` overrides from ``environ`` (default: os.environ).

    Raises ConfigError listing every problem found.
    """
    source = str(path)
    text = _read(Path(path))
    data, lines = _parse_yaml(text, source)
    overrides = apply_env_overrides(data, os.environ if environ is None else environ)
    try:
        return FloodgateConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, data, lines, overrides, source)) from None


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError([ConfigProblem("", "file is larger than 4 MiB", str(path))])
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem("", f"cannot read: {exc.strerror}", str(path))]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [ConfigProblem("", f"not UTF-8 text (byte {exc.start})", str(path))]
        ) from None


_OPENERS = {"flow sequence": "the [", "flow mapping": "the {", "quoted scalar": "the quote"}


def _yaml_problem(exc: yaml.YAMLError, source: str) -> ConfigProblem:
    """Where the mistake is: a bracket or quote left open is pointed at where it opened
    (the parser notices only on a later line), with the later line named too."""
    mark = getattr(exc, "problem_mark", None)
    context, opened = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return ConfigProblem("", f"invalid YAML: {problem}", source)
    opener = next((text for kind, text in _OPENERS.items() if kind in (context or "")), None)
    if opened is not None and opener and opened.line < mark.line:
        return ConfigProblem("", f"invalid YAML: {opener} opened on this line is not closed "
                                 f"({problem} on line {mark.line + 1})",
                             f"{source}:{opened.line + 1}")
    return ConfigProblem("", f"invalid YAML: {problem}", f"{source}:{mark.line + 1}")


def _parse_yaml(text: str, source: str) -> tuple[dict[str, Any], dict[PathKey, int]]:
    """The document as plain data plus the line of every key and list item."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc, source)]) from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict) or node is None:
        raise ConfigError([ConfigProblem("", "the top level must be a mapping", f"{source}:1")])
    lines: dict[PathKey, int] = {}
    duplicates: list[ConfigProblem] = []
    _index_lines(node, (), lines, duplicates, source)
    if duplicates:
        raise ConfigError(duplicates)
    return data, lines


def _index_lines(
    node: yaml.Node, path: PathKey, lines: dict[PathKey, int],
    duplicates: list[ConfigProblem], source: str,
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            child = (*path, key)
            if key in seen:  # PyYAML would silently keep the last one
                duplicates.append(ConfigProblem(
                    format_path(child), "set twice in the same mapping",
                    f"{source}:{key_node.start_mark.line + 1}",
                ))
            seen.add(key)
            _index_lines(value_node, child, lines, duplicates, source)
            lines[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*path, index), lines, duplicates, source)


def apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> dict[PathKey, str]:
    """Set ``FLOODGATE_A__B__0__C`` as ``data[a][b][0][c]``; return path -> variable name.

    Values stay strings (pydantic coerces numbers and booleans); a value starting
    with ``[`` or ``{`` is read as a YAML flow list or mapping.
    """
    applied: dict[PathKey, str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        raw = environ[name]
        parts: PathKey = tuple(
            int(p) if p.isdigit() else p.lower()
            for p in name[len(ENV_PREFIX):].split("__")
        )
        value: Any = raw
        if raw.lstrip().startswith(("[", "{")):
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError:
                raise ConfigError([ConfigProblem(
                    format_path(parts), "not a valid YAML list or mapping", name)]) from None
        _set_path(data, parts, value, name)
        applied[parts] = name
    return applied


def _set_path(data: dict[str, Any], parts: PathKey, value: Any, name: str) -> None:
    target: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(target, list) or part >= len(target):
                raise ConfigError([ConfigProblem(
                    format_path(parts[: depth + 1]),
                    "no such list item to override in the config file", name)])
        elif not isinstance(target, dict):
            raise ConfigError([ConfigProblem(
                format_path(parts[: depth + 1]), "cannot set a key inside a non-mapping", name)])
        if last:
            target[part] = value
        else:
            if isinstance(target, dict) and target.get(part) is None:
                target[part] = {}
            target = target[part]


def _problems(
    exc: ValidationError, data: dict[str, Any], lines: dict[PathKey, int],
    overrides: dict[PathKey, str], source: str,
) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        path = _data_path(error, data)
        message = _message(error)
        problems.append(ConfigProblem(format_path(path), message,
                                      _where(path, lines, overrides, source)))
    return problems


def _data_path(error: Any, data: dict[str, Any]) -> PathKey:
    """The error's location trimmed to keys that exist in the document.

    Pydantic adds union members and validator names to ``loc``; a reader wants
    the setting. A missing key is kept: it is what the operator must add.
    """
    if error["type"] == "duplicate_name":
        return ("thresholds", error["ctx"]["index"], "name")
    if error["type"] == "unknown_class":
        return ("thresholds", error["ctx"]["index"])
    path: list[str | int] = []
    node: Any = data
    for part in error["loc"]:
        if not _holds(node, part):
            if error["type"] == "missing" and isinstance(node, dict):
                path.append(part)
            break
        node = node[part]
        path.append(part)
    return tuple(path)


def _holds(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and part < len(node)


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown setting (check its spelling and indentation)"
    if kind == "missing":
        return "required setting is missing"
    given = error.get("input")
    if kind in ("enum", "literal_error"):
        return f'"{given}" is not one of: {error["ctx"]["expected"].replace(" or ", ", ")}'
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f'"{given}" is not a whole number'
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = "at least" if kind == "greater_than_equal" else "at most"
        limit = error["ctx"]["ge" if kind == "greater_than_equal" else "le"]
        return f"{given} is too {'small' if bound == 'at least' else 'large'}: must be " \
               f"{bound} {limit}"
    if kind in ("list_type", "dict_type"):
        return f"expected a {'list' if kind == 'list_type' else 'mapping'}, got {given!r}"
    return str(error["msg"]).removeprefix("Value error, ")


def _where(path: PathKey, lines: dict[PathKey, int], overrides: dict[PathKey, str],
           source: str) -> str:
    for length in range(len(path), -1, -1):
        prefix = path[:length]
        if prefix in overrides:
            return overrides[prefix]
        if prefix in lines:
            return f"{source}:{lines[prefix]}"
    return source
