"""Coverage-guided fuzz targets (atheris, libFuzzer) for the parsers that take outside input.

Run one:  python -m tests.robustness.fuzz_targets TARGET [libFuzzer flags, e.g. -runs=50000]
Targets: policy (protocol bytes to replies), log (syslog lines through the tracker),
record (Kafka records to a counting partition), state (stored subject bytes), and
canary, which crashes on one input so a test can show that crashes are found.

Hypothesis (test_hostile_input.py) checks the same properties from generated values;
atheris mutates bytes guided by which branches of our code they reach, which finds
the inputs generators do not think of. An uncaught exception or a failed check is a
crash: libFuzzer prints the input and exits non-zero.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

# Everything the targets reach is imported in here, the test helpers that import our modules
# too: a module imported first outside it is not instrumented, and its branches guide nothing.
with atheris.instrument_imports(include=["connectors", "pipeline", "schemas"]):
    from pydantic import ValidationError

    from connectors.postfix_log.reader import LogReader
    from connectors.postfix_policy.policy_protocol import MAX_REPLY_TEXT, ProtocolError, RequestReader
    from pipeline.engine.enforcement import ActiveActions
    from pipeline.engine.policy_decision import PolicyResponder
    from pipeline.streaming.state import stored_state
    from schemas.config import Exempt, Networks, PolicySettings, ReplyTexts
    from schemas.direction import DirectionRules
    from schemas.subject_batch import BATCH_KIND, LIFT_KIND, SubjectBatch
    from schemas.vocabulary import ActionState
    from tests.fixtures.counting import counting_partition
    from tests.fixtures.policy_requests import NOW, action
    from tests.pipeline.engine.builders import config, threshold
    from tests.pipeline.streaming.state.store_writes import commit_now

from tests.connectors.postfix_log.corpora import CORPORA

RS = b"\x1e"  # separates the records of one ``record`` input
REPLY = re.compile(rf"action=[A-Z_]+( [^\x00-\x1f\x7f]{{0,{MAX_REPLY_TEXT}}})?\n\n")
_VIEW = ActiveActions()
_VIEW.apply(action("block", "sasl_username", "mallory"))
_RESPONDER = PolicyResponder(
    PolicySettings(texts=ReplyTexts(block="5.7.1 {subject} {threshold} {action_id}")),
    Exempt(), _VIEW)
_ENGINE_CONFIG = config(threshold(name="burst", messages=3, window="10s", duration="1m"))


def policy(data: bytes) -> None:
    """Any bytes, cut where the first byte says: requests or ProtocolError, safe replies."""
    cut = data[0] if data else 0
    reader = RequestReader()
    try:
        for chunk in (data[1:cut + 1], data[cut + 1:]):
            for request in reader.feed(chunk):
                wire = _RESPONDER.answer(request, NOW).wire.decode()
                if not REPLY.fullmatch(wire):
                    raise AssertionError(f"unsafe reply {wire!r}")
    except ProtocolError:
        pass  # the server closes such a connection


def log(data: bytes) -> None:
    """Any bytes as log lines: whatever comes out is a record that survives JSON."""
    reader = LogReader(DirectionRules(Networks(internal=["10.0.0.0/8"])))
    for line in data.decode("utf-8", "replace").split("\n"):
        for output in reader.feed_line(line):
            type(output).model_validate_json(output.model_dump_json())
    reader.finish()


def record(data: bytes) -> None:
    """Kafka records ``key RS value RS key RS value ...`` for a counting partition (routed
    batches), the last pair also as a lift: each is counted, or fails with the error its dead
    letter would carry."""
    _count(_pairs(data))


def _pairs(data: bytes) -> list[tuple[bytes, bytes]]:
    parts = data.split(RS)
    return list(zip(parts[::2], parts[1::2], strict=False))


def _count(pairs: list[tuple[bytes, bytes]]) -> dict[bytes, bytes | None]:
    partition = counting_partition(_ENGINE_CONFIG)
    try:
        for offset, (key, value) in enumerate(pairs):
            with contextlib.suppress(ValueError, ValidationError):  # what the loop dead-letters
                partition.take(offset, BATCH_KIND, key, value)
            partition.release(lambda entry, error: None)
        if pairs:
            with contextlib.suppress(ValueError, ValidationError):
                partition.take(len(pairs), LIFT_KIND, *pairs[-1])
        changes = commit_now(partition.store)
        partition.counter.tick(2**62, 2**62)
        return changes
    finally:
        partition.store.close()
        shutil.rmtree(partition.store.path, ignore_errors=True)


def state(data: bytes) -> None:
    """A subject's stored bytes (RocksDB, changelog): state or ValueError, nothing else."""
    with contextlib.suppress(ValueError):
        stored_state.unpack(data)


@atheris.instrument_func
def canary(data: bytes) -> None:
    """Crashes on one input, reachable only by following comparisons: proves the harness."""
    if data[:2] == b"FG" and len(data) > 3 and data[2] == 0x7F and json.dumps(data[3:4].hex()):
        raise RuntimeError("canary reached")


def seeds(target: str) -> list[bytes]:
    """Valid inputs to start from: mutations of them reach deeper than random bytes."""
    if target == "policy":
        request = (b"request=smtpd_access_policy\nprotocol_state=%s\nsasl_username=%s\n"
                   b"sender=%s@example.net\nrecipient=r@far.example\nclient_address=10.0.0.9\n"
                   b"instance=1.2\nqueue_id=ABC\nrecipient_count=3\n\n")
        return [bytes([n]) + request % (state, user, user) for n in (0, 40, 200)
                for state in (b"RCPT", b"END-OF-MESSAGE") for user in (b"mallory", b"alice")]
    if target == "log":
        return [("\n".join(block)).encode() for block in _corpus_blocks()]
    if target == "record":
        key = b"sasl_username:alice"
        batches = [SubjectBatch(source_topic="mail", source_partition=0, upto=n, mark_ms=ms,
                                entries=[("sasl_username:alice", n, ms, n % 2, 1, n, "outbound",
                                          "example.net")]).model_dump_json().encode()
                   for n, ms in enumerate(range(1_795_780_800_000, 1_795_780_804_000, 1000))]
        lift = action("defer", "sasl_username", "alice").model_copy(
            update={"state": ActionState.LIFTED})
        mails = RS.join(key + RS + batch for batch in batches)
        return [mails, mails + RS + key + RS + lift.model_dump_json().encode()]
    if target == "state":  # what the counter stores for the record seeds
        return [value for seed in seeds("record") for value in _count(_pairs(seed)).values()
                if value is not None]
    return [b"FG"]


def _corpus_blocks(lines_per_block: int = 12, most: int = 400) -> list[list[str]]:
    """Postfix lines of the public samples in ../shared/corpora (read, not copied), and ours."""
    lines = [f"Nov 27 10:00:0{n} mx1 postfix/qmgr[9]: ABC{n}: from=<a@example.net>, size=9, "
             "nrcpt=1 (queue active)" for n in range(3)]
    if CORPORA.is_dir():
        for path in sorted(CORPORA.rglob("*")):
            if path.is_file() and path.stat().st_size < 5_000_000:
                lines += [line for line in path.read_text(errors="replace").splitlines()
                          if "postfix/" in line][:500]
    blocks = [lines[i:i + lines_per_block] for i in range(0, len(lines), lines_per_block)]
    return blocks[:: max(1, len(blocks) // most)]


TARGETS: dict[str, Callable[[bytes], None]] = {
    "policy": policy, "log": log, "record": record, "state": state, "canary": canary}


def write_seeds(target: str, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for n, seed in enumerate(seeds(target)):
        (directory / f"seed-{n}").write_bytes(seed)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: python -m tests.robustness.fuzz_targets "
                         f"{{{'|'.join(TARGETS)}}} [CORPUS_DIR] [libFuzzer flags]")
    name, flags = sys.argv[1], sys.argv[2:]
    if not [flag for flag in flags if not flag.startswith("-")]:  # no corpus: start from seeds
        corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
        write_seeds(name, corpus)
        flags.append(str(corpus))
    atheris.Setup([sys.argv[0], *flags], TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
