"""Which action applies now: a materialised view of the action topic.

The policy responder keeps one of these current from ``floodgate.actions``
and asks it, for each Postfix request, about every subject of the request.
Pure: time comes in as ``now_ms``, so an action past its end no longer applies
even before its ``expired`` record arrives.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from schemas.addresses import network_shape
from schemas.events import ActionEvent
from schemas.time_ms import to_ms
from schemas.vocabulary import ACTION_STRENGTH, ActionState, SubjectType


class ActiveActions:
    """Active actions by subject key (``subject_type:subject``).

    Ends are kept in a heap and the census as running counts, so the chores run every
    few milliseconds (``expire``) and every second (``census``) cost what changed, not
    what is held: an ISP can have thousands of actions in force."""

    def __init__(self) -> None:
        self._by_key: dict[str, dict[str, ActionEvent]] = {}
        self._key_of: dict[str, str] = {}  # action_id -> subject key
        self._networks = NetworkShapes()  # of the client_net subjects with actions
        self._ends: list[tuple[int, str]] = []  # (expires at, action_id), a heap; may be stale
        self._kinds: dict[str, int] = {}  # census: actions held by kind

    def apply(self, event: ActionEvent) -> None:
        """Take one record of the action topic, in topic order; repeats are harmless."""
        key = event.key
        if event.state is ActionState.ACTIVE:
            if self._key_of.get(event.action_id, key) != key:  # one action, one subject: the
                self._drop(event.action_id, self._key_of[event.action_id])  # last record's
            actions = self._by_key.get(key)
            if actions is None:
                self._networks.add(key)
                actions = self._by_key[key] = {}
            old = actions.get(event.action_id)
            if old is not None:
                self._count(old, -1)
            actions[event.action_id] = event
            self._count(event, 1)
            self._key_of[event.action_id] = key
            if old is None or old.expires_at != event.expires_at:
                heapq.heappush(self._ends, (to_ms(event.expires_at), event.action_id))
            return
        self._drop(event.action_id, self._key_of.pop(event.action_id, key))

    def _drop(self, action_id: str, key: str) -> None:
        actions = self._by_key.get(key)
        if actions is not None:
            gone = actions.pop(action_id, None)
            if gone is not None:
                self._count(gone, -1)
            if not actions:
                del self._by_key[key]
                self._networks.discard(key)

    def _count(self, action: ActionEvent, change: int) -> None:
        kind = _census_kind(action)
        left = self._kinds.get(kind, 0) + change
        if left:
            self._kinds[kind] = left
        else:
            self._kinds.pop(kind, None)

    def clear(self) -> None:
        """Forget every action (the topic they came from is gone)."""
        self._by_key.clear()
        self._key_of.clear()
        self._ends.clear()
        self._kinds.clear()
        self._networks = NetworkShapes()

    @property
    def network_shapes(self) -> frozenset[tuple[int, int]]:
        """(IP version, prefix length) of every network with an action: what a client
        address must also be looked up under."""
        return self._networks.shapes

    def strongest(self, keys: Iterable[str], now_ms: int) -> ActionEvent | None:
        """The strongest enforced action in force at ``now_ms`` for any of ``keys``.

        Ties go to the action that lasts longest, so the answer names the end
        the sender will actually see.
        """
        best: ActionEvent | None = None
        for key in keys:
            for action in self._by_key.get(key, {}).values():
                if not action.enforced:  # a shadow threshold's: watched, never applied
                    continue
                if to_ms(action.expires_at) <= now_ms or to_ms(action.triggered_at) > now_ms:
                    continue
                if best is None or _rank(action) > _rank(best):
                    best = action
        return best

    def expire(self, now_ms: int) -> list[ActionEvent]:
        """Forget actions that ended by ``now_ms``; return them (for metrics and logs)."""
        ended = []
        while self._ends and self._ends[0][0] <= now_ms:
            when, action_id = heapq.heappop(self._ends)
            action = self._by_key.get(self._key_of.get(action_id, ""), {}).get(action_id)
            if action is None or to_ms(action.expires_at) != when:
                continue  # lifted, or its end moved: that end has its own entry
            ended.append(action)
            self.apply(action.model_copy(update={"state": ActionState.EXPIRED}))
        return ended

    def actions_for(self, key: str) -> list[ActionEvent]:
        return list(self._by_key.get(key, {}).values())

    def in_force(self, now_ms: int, key: str | None = None) -> list[ActionEvent]:
        """Actions not yet ended at ``now_ms`` (shadow ones too), of ``key`` or of all."""
        actions = self.actions_for(key) if key is not None else self.all()
        return [a for a in actions if to_ms(a.expires_at) > now_ms]

    def census(self) -> dict[str, int]:
        """How many actions of each kind the view holds: ``block``, ``defer``, ... and
        ``shadow_block``, ... for shadow thresholds' actions (never applied)."""
        return dict(self._kinds)

    def all(self) -> list[ActionEvent]:
        return [a for actions in self._by_key.values() for a in actions.values()]

    def __len__(self) -> int:
        return sum(len(actions) for actions in self._by_key.values())


class NetworkShapes:
    """How many ``client_net`` subjects of each (IP version, prefix length) a view holds."""

    _PREFIX = SubjectType.CLIENT_NET.value + ":"

    def __init__(self) -> None:
        self._counts: dict[tuple[int, int], int] = {}
        self.shapes: frozenset[tuple[int, int]] = frozenset()

    def add(self, key: str) -> None:
        shape = self._shape(key)
        if shape is not None:
            self._counts[shape] = self._counts.get(shape, 0) + 1
            self.shapes = frozenset(self._counts)

    def discard(self, key: str) -> None:
        shape = self._shape(key)
        if shape is not None:
            left = self._counts.get(shape, 1) - 1
            if left > 0:
                self._counts[shape] = left
            else:
                self._counts.pop(shape, None)
                self.shapes = frozenset(self._counts)

    def _shape(self, key: str) -> tuple[int, int] | None:
        if not key.startswith(self._PREFIX):
            return None
        try:
            return network_shape(key[len(self._PREFIX):])
        except ValueError:
            return None  # not a network Floodgate spells: no address can fall in it


def _census_kind(action: ActionEvent) -> str:
    return action.action.value if action.enforced else f"shadow_{action.action.value}"


def _rank(action: ActionEvent) -> tuple[int, int]:
    return ACTION_STRENGTH[action.action], to_ms(action.expires_at)
