"""``floodgate check-config [--config] FILE``: validate a config and say exactly what is wrong."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pipeline.action_text import ordinal
from pipeline.settings_text import class_lines, limits_text
from pipeline.streaming.sizing import partitions_held, worker_memory_mib
from schemas.config import FloodgateConfig
from schemas.config_file import ConfigError, load_config
from schemas.durations import format_duration
from schemas.thresholds import Threshold


def register(sub: Any) -> None:
    parser = sub.add_parser("check-config", help="validate a config file (and FLOODGATE_* overrides)")
    parser.add_argument("file", nargs="?", help="the YAML config file")
    parser.add_argument("--config", help="the YAML config file, as every other command takes it")
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    if (args.file is None) == (args.config is None):
        args.parser.error("give the config file once: check-config FILE or --config FILE")
    path = args.file or args.config
    config = load_or_report(path)
    if config is None:
        return 1
    print(f"{path}: OK, {len(config.thresholds)} threshold(s)")
    for threshold in config.thresholds:
        print(f"  {describe(threshold)}")
    for line in class_lines(config):
        print(line)
    print(memory_line(config))
    return 0


def memory_line(config: FloodgateConfig) -> str:
    """The worker's memory need (``pipeline.streaming.sizing``), alone and shared by three."""
    worker = config.worker
    alone = worker_memory_mib(worker, worker.partitions)
    held = partitions_held(worker, 3)
    return (f"worker memory: at most {alone:,.0f} MiB holding all {worker.partitions} partitions, "
            f"{worker_memory_mib(worker, held):,.0f} MiB holding {held} (one of 3 workers); "
            "give its systemd unit a MemoryMax above the first")


def load_or_report(path: str) -> FloodgateConfig | None:
    """The config, or None after printing every problem to stderr."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s); nothing was started",
              file=sys.stderr)
        return None


def describe(threshold: Threshold) -> str:
    """One line an operator can read: ``burst: >= 60 messages in 30s per sasl_username ...``."""
    scope = f" from {', '.join(threshold.sender_domains)}" if threshold.sender_domains else ""
    key = threshold.key.value
    if threshold.prefix is not None:  # counted per network
        key = f"client network (/{threshold.prefix.ipv4} IPv4, /{threshold.prefix.ipv6} IPv6)"
    learning = threshold.baseline
    limits = limits_text(threshold, (threshold.messages, threshold.flagged_limit))
    if learning is not None:
        limits = (f"{threshold.name}: > {learning.factor:g} x its normal and >= "
                  f"{learning.min_messages} {threshold.count.value} in "
                  f"{format_duration(threshold.window)} once it has "
                  f"{format_duration(learning.learn)} of history (before: "
                  f"{limits.split(': ', 1)[1]})")
    return (f"{limits} per {key}, "
            f"{threshold.direction.value}{scope} -> {threshold.action.value} for "
            f"{format_duration(threshold.duration)}"
            + "".join(f"; {ordinal(step.after)} firing within {format_duration(step.within)} -> "
                      f"{step.action.value} for {format_duration(step.duration)}"
                      for step in threshold.escalate)
            + (" (shadow: published, not applied)" if threshold.mode.value == "shadow" else "")
            + ("; own reply text" if threshold.reply else ""))
