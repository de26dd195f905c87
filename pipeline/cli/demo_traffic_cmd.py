"""``floodgate demo-traffic --config CONFIG``: publish made-up mail (``connectors.demo_traffic``)."""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from typing import Any

from confluent_kafka import Producer

from connectors.demo_traffic import CUSTOMERS, as_answered, mail_event, policy_question, schedule
from connectors.http.server import split_listen
from connectors.kafka.client_config import producer_config
from connectors.postfix_policy.client import PolicyClient, PolicyUnreachable
from pipeline.cli.arguments import digits, number_in
from pipeline.cli.check_config import load_or_report
from pipeline.cli.kafka_preflight import kafka_preflight
from schemas.time_ms import wall_ms

_accounts = number_in(digits, lambda value: 1 <= value <= 10_000_000,
                      "must be 1 to 10000000: {text}", "not a whole number: {text!r}")
_positive = number_in(float, lambda value: 0 < value <= 1_000_000,
                      "must be above 0 and at most 1000000: {text}", "not a number: {text!r}")


def register(sub: Any) -> None:
    parser = sub.add_parser("demo-traffic",
                            help="publish made-up mail (a bursting account, a spammer) to try it out")
    parser.add_argument("--config", required=True)
    parser.add_argument("--rate", type=_positive, default=20.0,
                        help="background messages per second (default 20)")
    parser.add_argument("--seconds", type=_positive, default=3600.0,
                        help="how long to run (default 3600)")
    parser.add_argument("--customers", type=_accounts, default=CUSTOMERS,
                        help=f"accounts sending the background mail (default {CUSTOMERS})")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--ask", metavar="HOST:PORT",
                        help="ask this policy service about each message first, as Postfix "
                             "would: a deferred or blocked message is published as refused "
                             "(`up --demo` asks its own policy service)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 1
    with kafka_preflight(config.kafka):
        producer = Producer(producer_config(config.kafka))
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    client = None
    if args.ask:
        try:
            host, port = split_listen(args.ask)
        except ValueError:
            print(f"--ask: {args.ask!r} is not HOST:PORT", file=sys.stderr)
            return 2
        client = PolicyClient(host, port)
    refused = unanswered = 0
    rng = random.Random(args.seed)
    start = time.time()
    sent = 0
    print(f"demo traffic to {config.topics.mail_events}: {args.rate:g} messages/s, a bursting "
          "account (compromised) and a spammer", flush=True)
    for demo in schedule(args.rate, args.seconds, rng, args.customers):
        while not stopping and (wait := start + demo.at_ms / 1000 - time.time()) > 0:
            producer.poll(min(wait, 0.2))
        if stopping:
            break
        event = mail_event(demo, wall_ms(), rng)
        if client is not None:
            try:
                answer = client.ask(policy_question(event)).action
            except PolicyUnreachable:
                answer, unanswered = "DUNNO", unanswered + 1  # Postfix's default_action
            event = as_answered(event, answer)
            refused += not event.accepted
        producer.produce(config.topics.mail_events, key=demo.user.encode(),
                         value=event.model_dump_json().encode())
        sent += 1
    left = producer.flush(10)
    if client is not None:
        client.close()
        print(f"demo traffic: {refused} refused by the policy service, {unanswered} asked "
              "without an answer (passed, as Postfix's default_action=DUNNO does)", flush=True)
    print(f"demo traffic: {sent - left} messages sent", flush=True)
    return 0
