"""Alerts for new actions as JSON POSTs: retried with backoff, sent once per action id."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable

from schemas.events import ActionEvent
from schemas.vocabulary import ActionState

log = logging.getLogger("floodgate.siem")
REMEMBERED = 100_000


class Webhook:
    def __init__(self, url: str, attempts: int = 5, timeout_s: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook {url!r}: must be an http:// or https:// URL")
        self._url, self._attempts, self._timeout = url, attempts, timeout_s
        self._sleep = sleep
        self._sent: OrderedDict[str, None] = OrderedDict()
        self.delivered = 0
        self.failed = 0

    def notify(self, action: ActionEvent) -> bool:
        """POST a new action (state active) once; True when delivered now."""
        if action.state is not ActionState.ACTIVE or action.action_id in self._sent:
            return False
        body = json.dumps({"text": f"Floodgate: {action.action.value} {action.subject_type.value} "
                                   f"{action.subject} until {action.expires_at.isoformat()}",
                           "action": action.model_dump(mode="json")}).encode()
        for attempt in range(self._attempts):
            request = urllib.request.Request(self._url, data=body, method="POST", headers={
                "Content-Type": "application/json", "Idempotency-Key": action.action_id})
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:
                    if 200 <= response.status < 300:
                        self._remember(action.action_id)
                        self.delivered += 1
                        return True
            except (urllib.error.URLError, OSError) as exc:
                log.warning("webhook attempt %d for %s failed: %s", attempt + 1,
                            action.action_id, exc)
            self._sleep(min(2 ** attempt, 30))
        self.failed += 1
        log.error("webhook gave up on %s after %d attempts", action.action_id, self._attempts)
        return False

    def _remember(self, action_id: str) -> None:
        self._sent[action_id] = None
        if len(self._sent) > REMEMBERED:
            self._sent.popitem(last=False)
