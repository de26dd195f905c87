"""``floodgate schemas export DIR``: write the JSON Schemas of every contract."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from schemas.json_schemas import export_schemas, stale_schemas


def register(sub: Any) -> None:
    parser = sub.add_parser("schemas", help="JSON Schemas of the topics' records and the config")
    actions = parser.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="write the schema files into DIR")
    export.add_argument("directory", metavar="DIR")
    export.set_defaults(run=run_export)
    check = actions.add_parser("check", help="exit 1 if the files in DIR differ from the models")
    check.add_argument("directory", metavar="DIR")
    check.set_defaults(run=run_check)


def run_export(args: argparse.Namespace) -> int:
    for path in export_schemas(Path(args.directory)):
        print(path)
    return 0


def run_check(args: argparse.Namespace) -> int:
    stale = stale_schemas(Path(args.directory))
    for name in stale:
        print(f"{args.directory}/{name}: out of date; run `floodgate schemas export {args.directory}`")
    return 1 if stale else 0
