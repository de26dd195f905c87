"""The pure threshold engine: windows, counting rules and decisions.

Nothing here imports Kafka, Faust, asyncio or sockets, and nothing reads the
clock: time comes in as event timestamps or as an argument, in integer
milliseconds since the epoch. The streaming worker, the offline replay and the
policy responder are adapters around it.
"""

from pipeline.engine.evaluator import Subject, ThresholdEngine
from pipeline.engine.subject_state import SubjectState, ThresholdState, decode_state, encode_state

__all__ = [
    "Subject",
    "SubjectState",
    "ThresholdEngine",
    "ThresholdState",
    "decode_state",
    "encode_state",
]
