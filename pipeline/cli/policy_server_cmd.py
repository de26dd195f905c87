"""``floodgate policy-server --config CONFIG``: answer Postfix from the active actions."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from connectors.http.observability import ObservabilityServer
from connectors.kafka.errors import KafkaNotConfigured
from connectors.kafka.identity import claim_state, read_identity, reset_if_moved
from connectors.kafka.settings_records import SettingsFeed
from connectors.postfix_policy.action_feed import ActionFeed
from connectors.postfix_policy.action_store import ActionStore
from connectors.postfix_policy.metrics import PolicyCollector, policy_registry
from connectors.postfix_policy.policy_events import PolicyEventPublisher
from connectors.postfix_policy.policy_protocol import Answer
from connectors.postfix_policy.server import PolicyServer, ServerStats
from pipeline import gc_tuning
from pipeline.cli.check_config import load_or_report
from pipeline.cli.config_reload import Reloader
from pipeline.engine.enforcement import ActiveActions
from pipeline.engine.policy_decision import PolicyResponder, SettingsExemptions
from schemas.config import FloodgateConfig
from schemas.events import ActionEvent
from schemas.time_ms import wall_ms

log = logging.getLogger("floodgate.policy")

# The service's own chores between requests (delivery reports of policy events, expiries):
# often, so each is short (at 5,000 requests/s, 0.1 s of reports took ~1 ms at once)
HOUSEKEEPING_S = 0.01


def register(sub: Any) -> None:
    parser = sub.add_parser("policy-server", help="Postfix policy service enforcing the actions")
    parser.add_argument("--config", required=True)
    parser.set_defaults(run=run)




def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_or_report(args.config)
    if config is None:
        return 1
    try:
        asyncio.run(serve(config, args.config))
    except (KafkaNotConfigured, StateDirError) as exc:
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        return 1
    return 0


def _responder(config: FloodgateConfig, view: ActiveActions,
               exemptions: SettingsExemptions) -> PolicyResponder:
    return PolicyResponder(config.policy, config.exempt, view,
                           config.addresses.extension_delimiters, exemptions,
                           config.threshold_replies)


class StateDirError(RuntimeError):
    """policy.state_dir cannot be used."""


def _open_store(state_dir: str | None) -> ActionStore | None:
    if not state_dir:
        return None
    try:
        return ActionStore(Path(state_dir))
    except (OSError, RuntimeError) as exc:  # rocksdict reports a locked or unreadable store
        raise StateDirError(
            f"policy.state_dir {state_dir}: {exc}; set it to a directory this user can write "
            "(or null to keep the actions in memory only)") from None


def reset_policy_state_if_moved(config: FloodgateConfig) -> str | None:
    """Before the service starts: drop a stored action view read from another action topic
    (one line says so). A running service checks the same once Kafka answers."""
    if not config.policy.state_dir:
        return None
    directory = Path(config.policy.state_dir)
    identity = read_identity(config.kafka, [config.topics.actions])
    return reset_if_moved(directory, identity, [ActionStore.database(directory)])


async def serve(config: FloodgateConfig, path: str | None = None) -> None:
    """Answer until SIGTERM or SIGINT; SIGHUP re-reads the config at ``path``."""
    loop = asyncio.get_running_loop()
    view = ActiveActions()
    exemptions = SettingsExemptions()

    store = _open_store(config.policy.state_dir)
    start_offsets: dict[int, int] = {}
    if store is not None:
        known, start_offsets = store.load()
        for action in known:  # answer from the last known actions from the first request on
            view.apply(action)
        log.info("loaded %d actions from %s", len(known), config.policy.state_dir)

    def deliver(event: ActionEvent | None, partition: int, offset: int) -> None:
        if store is not None:
            store.apply(event, partition, offset)
        if event is not None:  # the view is only touched on the event loop
            loop.call_soon_threadsafe(view.apply, event)

    def claim() -> dict[int, int] | None:
        """The stored actions are of this action topic, or they are dropped."""
        assert store is not None and config.policy.state_dir is not None
        identity = read_identity(config.kafka, [config.topics.actions])
        said = claim_state(Path(config.policy.state_dir), identity, store.has_state())
        if said is None:
            return None
        log.warning("%s", said)
        store.clear()
        loop.call_soon_threadsafe(view.clear)  # before any action read from the new topic
        return {}

    feed = ActionFeed(config.kafka, config.topics.actions, deliver, start_offsets,
                      claim if store is not None else None)
    publisher = PolicyEventPublisher(config.kafka, config.topics.policy_events,
                                     config.policy.mail_host or socket.gethostname(),
                                     config.policy.event_buffer)

    def report(attributes: dict[str, str], answer: Answer) -> None:
        publisher.publish(attributes, answer, wall_ms())

    in_force: list[dict[str, int]] = [{}]  # replaced whole on the loop, read by scrapes
    settings_feed = SettingsFeed(config.kafka, config.topics.subject_settings, exemptions.apply)
    registry, latency = policy_registry(PolicyCollector(
        stats := ServerStats(), publisher, feed, lambda: in_force[0],
        lambda: (settings_feed.records, len(exemptions))))
    responders = [_responder(config, view, exemptions)]  # replaced whole by a reload
    server = PolicyServer(config.policy, lambda attributes, now: responders[0].answer(
        attributes, now), wall_ms, report, latency.observe)
    server.stats = stats
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if path is not None:
        reloader = Reloader(path, config, lambda new: responders.__setitem__(
            0, _responder(new, view, exemptions)), log)
        loop.add_signal_handler(signal.SIGHUP, reloader.reload)
    settings_feed.start()
    feed.start()
    await server.start()
    health = ObservabilityServer(config.policy.health_listen, feed.caught_up.is_set,
                                 registry).start()
    log.info("answering on %s (health on %s); reading %s", config.policy.listen,
             config.policy.health_listen, config.topics.actions)
    gc_tuning.settle()  # a collection is a stall of every request waiting (see gc_tuning)
    try:
        census_due = 0.0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HOUSEKEEPING_S)
            publisher.poll()  # delivery reports: a few at a time, not a stall's worth
            gc_tuning.collect_if_due()
            view.expire(wall_ms())
            if loop.time() >= census_due:  # for the metrics: once a second is plenty
                in_force[0], census_due = view.census(), loop.time() + 1.0
    finally:
        health.close()
        await server.stop()
        feed.stop()
        settings_feed.stop()
        if store is not None:
            store.close()
        publisher.close()
        stats = server.stats
        log.info("stopped: %d requests %s, %d policy events published, %d dropped",
                 stats.requests, dict(stats.answers), publisher.published, publisher.dropped)
