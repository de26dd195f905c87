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

from connectors.http.console_server import TOKEN_ENV, ConsoleConfigError, ConsoleServer
from pipeline.cli.check_config import load_or_report
from pipeline.cli.config_reload import Reloader
from pipeline.cli.kafka_preflight import ask_kafka
from pipeline.console.live_state import ConsoleState


def register(sub: Any) -> None:
    parser = sub.add_parser("console", help="the operations console: actions in force, top "
                                            "senders, policy answers, lift and add, in a browser")
    parser.add_argument("--config", required=True)
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="instead of console.listen (loopback unless FLOODGATE_CONSOLE_TOKEN "
                             "is set)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_or_report(args.config)
    if config is None:
        return 1
    listen = args.listen or config.console.listen
    if not listen:
        print("console.listen is null and no --listen was given: nowhere to serve the console",
              file=sys.stderr)
        return 1
    ask_kafka(config.kafka)
    state = ConsoleState(config)
    try:
        server = ConsoleServer(listen, state, os.environ.get(TOKEN_ENV) or None)
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
