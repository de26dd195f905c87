"""Contracts: every record on a topic and the configuration, as pydantic models.

The JSON Schemas under ``schemas/json/`` are generated from these models
(``floodgate schemas export``) and are what other teams build on.
"""

from schemas.config import FloodgateConfig
from schemas.events import ActionEvent, Evidence, MailEvent, PolicyEvent, PolicyRequest
from schemas.thresholds import Threshold

__all__ = [
    "ActionEvent",
    "Evidence",
    "FloodgateConfig",
    "MailEvent",
    "PolicyEvent",
    "PolicyRequest",
    "Threshold",
]
