"""The ``floodgate`` command: one sub-command per job, each in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from pipeline.cli.command_failed import CommandFailed

# Each command's name and its module: only the one asked for is imported (``floodgate parse``
# needs neither Kafka nor the console), all of them for the overview (``--help``).
COMMANDS = {
    "check-config": "check_config", "parse": "parse_cmd", "replay": "replay_cmd",
    "tail": "tail_cmd", "worker": "worker_cmd", "policy-server": "policy_server_cmd",
    "actions": "actions_cmd", "ask": "ask_cmd", "console": "console_cmd", "up": "up_cmd",
    "demo-traffic": "demo_traffic_cmd", "siem": "siem_cmd", "topics": "topics_cmd",
    "schemas": "schemas_cmd", "settings": "settings_cmd",
}


def _command_modules(argv: Sequence[str]) -> list[ModuleType]:
    named = COMMANDS.get(argv[0]) if argv else None
    names = [named] if named else list(COMMANDS.values())
    return [importlib.import_module(f"pipeline.cli.{name}") for name in names]


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The command line's parser: every command's, or only ``argv``'s command's when it
    names one."""
    from connectors.release import release

    parser = argparse.ArgumentParser(
        prog="floodgate",
        description="Catch and stop outbound email abuse: sliding-window thresholds per "
                    "SASL user, sender, sender domain or client IP.",
    )
    parser.add_argument("--version", action="version", version=f"floodgate {release()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _command_modules(argv):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        code: int = args.run(args)
    except CommandFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `floodgate replay ... | head`
        sys.stderr.close()
        return 0
    return code
