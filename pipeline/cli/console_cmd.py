"""``floodgate console --config CONFIG``: the operations console in the browser
(``connectors.console``): actions in force, top subjects, policy answers, lift and add."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

from connectors.http.console_server import (
    TOKEN_ENV,
    ConsoleConfigError,
    ConsoleServer,
    console_credentials,
)
from connectors.http.operators import new_operator
from pipeline.cli.check_config import load_or_report
from pipeline.cli.config_reload import Reloader
from pipeline.cli.kafka_preflight import ask_kafka
from pipeline.console.live_state import ConsoleState


def register(sub: Any) -> None:
    parser = sub.add_parser("console", help="the operations console: actions in force, top "
                                            "senders, policy answers, lift and add, in a browser")
    parser.add_argument("--config", help="the config (required unless --new-operator)")
    parser.add_argument("--new-operator", metavar="NAME",
                        help="print a fresh token for operator NAME and the line to add to "
                             "console.operators_file, then exit")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="instead of console.listen (loopback unless operators sign in: "
                             "console.operators_file, console.user_header or "
                             "FLOODGATE_CONSOLE_TOKEN)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.new_operator is not None:
        return _new_operator(args.new_operator)
    if not args.config:
        print("--config is required", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_or_report(args.config)
    if config is None:
        return 1
    listen = args.listen or config.console.listen
    if not listen:
        print("console.listen is null and no --listen was given: nowhere to serve the console",
              file=sys.stderr)
        return 1
    try:
        credentials = console_credentials(config.console, os.environ.get(TOKEN_ENV))
    except ConsoleConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    ask_kafka(config.kafka)
    state = ConsoleState(config)
    try:
        server = ConsoleServer(listen, state, credentials)
    except (ConsoleConfigError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    Reloader(args.config, config, state.reconfigure, logging.getLogger("floodgate.console")
             ).on_sighup()
    state.start()
    server.start()
    print(f"console on {server.url}", flush=True)
    try:
        stop.wait()
    finally:
        server.close()
        state.stop()
    return 0


def _new_operator(name: str) -> int:
    try:
        token, line = new_operator(name)
    except ValueError as exc:
        print(f"--new-operator: {exc}", file=sys.stderr)
        return 2
    print(f"# give {name} this token (shown once; the file keeps only its SHA-256):\n"
          f"#   {token}\n# and add this line to console.operators_file:\n{line}")
    return 0
