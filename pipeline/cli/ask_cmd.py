"""``floodgate ask [--to HOST:PORT | --config FILE] NAME=VALUE ...``: one policy request.

Sends the attributes (with ``request``, ``protocol_state=END-OF-MESSAGE`` and
``protocol_name`` filled in unless given) to a running policy service and
prints its answer and how long it took: what Postfix would be told.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from connectors.postfix_policy.client import PolicyUnreachable, ask
from pipeline.cli.arguments import number_in
from pipeline.cli.check_config import load_or_report

_ADDRESS = re.compile(r"\[?([0-9A-Za-z:.\-]+?)\]?:(\d{1,5})")


_seconds = number_in(float, lambda value: 0 < value <= 300,
                     "{text!r}: seconds, above 0 and at most 300")


def register(sub: Any) -> None:
    parser = sub.add_parser("ask", help="send one policy request to a running policy service "
                                        "and print its answer")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--to", metavar="HOST:PORT",
                       help="the policy service (default: policy.listen of --config, "
                            "else 127.0.0.1:10040)")
    where.add_argument("--config", help="take the address from this config's policy.listen")
    parser.add_argument("--timeout", type=_seconds, default=5.0, metavar="SECONDS")
    parser.add_argument("attributes", nargs="+", type=_attribute, metavar="NAME=VALUE",
                        help="request attributes, e.g. sasl_username=alice "
                             "client_address=192.0.2.7")
    parser.set_defaults(run=run)


def _attribute(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not re.fullmatch(r"[a-z_]+", name):
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=VALUE, e.g. sasl_username=alice")
    if "\n" in value or "\r" in value:
        raise argparse.ArgumentTypeError(f"{name}: a value cannot hold a line break")
    return name, value


def run(args: argparse.Namespace) -> int:
    address = args.to or "127.0.0.1:10040"
    if args.config:
        config = load_or_report(args.config)
        if config is None:
            return 1
        address = config.policy.listen
    match = _ADDRESS.fullmatch(address)
    if match is None or not 0 < int(match.group(2)) < 65536:
        print(f"{address!r}: write HOST:PORT, e.g. 127.0.0.1:10040", file=sys.stderr)
        return 2
    try:
        answer = ask(match.group(1), int(match.group(2)), dict(args.attributes), args.timeout)
    except PolicyUnreachable as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"action={answer.action}")
    print(f"answered in {answer.latency_ms:.1f} ms", file=sys.stderr)
    return 0
