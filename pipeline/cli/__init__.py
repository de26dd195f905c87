"""The ``floodgate`` command: one sub-command per job, each in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from connectors.release import release
from pipeline.cli import (
    actions_cmd,
    ask_cmd,
    check_config,
    console_cmd,
    demo_traffic_cmd,
    parse_cmd,
    policy_server_cmd,
    replay_cmd,
    schemas_cmd,
    settings_cmd,
    siem_cmd,
    tail_cmd,
    topics_cmd,
    up_cmd,
    worker_cmd,
)
from pipeline.cli.kafka_preflight import CommandFailed

COMMANDS = (check_config, parse_cmd, replay_cmd, tail_cmd, worker_cmd, policy_server_cmd,
            actions_cmd, ask_cmd, console_cmd, up_cmd, demo_traffic_cmd, siem_cmd, topics_cmd, schemas_cmd,
            settings_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="floodgate",
        description="Catch and stop outbound email abuse: sliding-window thresholds per "
                    "SASL user, sender, sender domain or client IP.",
    )
    parser.add_argument("--version", action="version", version=f"floodgate {release()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
