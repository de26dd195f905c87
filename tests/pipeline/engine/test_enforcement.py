import random

from pipeline.engine.enforcement import ActiveActions
from schemas.time_ms import to_ms
from tests.fixtures.policy_requests import action
from tests.pipeline.engine.builders import T0


def test_view_follows_the_action_topic() -> None:
    view = ActiveActions()
    view.apply(action("defer", "sender", "a@x.org", "one"))
    view.apply(action("defer", "sender", "a@x.org", "one"))  # a repeat changes nothing
    view.apply(action("block", "sender", "a@x.org", "two", minutes=60))
    assert len(view) == 2
    now = to_ms(T0) + 1_000
    assert view.strongest(["sender:a@x.org"], now).action_id == "two"  # type: ignore[union-attr]
    view.apply(action("block", "sender", "a@x.org", "two", state="lifted"))
    assert view.strongest(["sender:a@x.org"], now).action_id == "one"  # type: ignore[union-attr]
    assert view.strongest(["sender:b@x.org"], now) is None
    assert [a.action_id for a in view.expire(to_ms(T0) + 15 * 60_000)] == ["one"]
    assert len(view) == 0


def test_census_counts_the_actions_held_by_kind() -> None:
    view = ActiveActions()
    assert view.census() == {}
    for n, kind in enumerate(("block", "defer", "defer")):
        view.apply(action(kind, "sasl_username", f"user{n}", f"id{n}"))
    assert view.census() == {"block": 1, "defer": 2}
    view.apply(action("defer", "sasl_username", "user1", "id1", state="lifted"))
    assert view.census() == {"block": 1, "defer": 1}


def test_expiry_and_census_match_a_scan_of_every_action_held() -> None:
    """The heap of ends and the running census against the plain reading of the view: random
    actions raised, repeated, moved to a later end, lifted and left to expire."""
    for seed in range(5):
        rng = random.Random(seed)
        view = ActiveActions()
        now = to_ms(T0)
        for step in range(1_500):
            roll = rng.random()
            ident, subject = f"id{rng.randrange(60)}", f"user{rng.randrange(25)}"
            if roll < 0.55:
                view.apply(action(rng.choice(("block", "defer", "warn")), "sasl_username",
                                  subject, ident, minutes=rng.randrange(1, 30),
                                  enforced=rng.random() < 0.8))
            elif roll < 0.7:
                for held in view.all():
                    if held.action_id == ident:
                        view.apply(held.model_copy(update={"state": "lifted"}))
            else:
                now += rng.randrange(0, 90_000)
                expected = sorted(a.action_id for a in view.all()
                                  if to_ms(a.expires_at) <= now)
                assert sorted(a.action_id for a in view.expire(now)) == expected, (seed, step)
                assert all(to_ms(a.expires_at) > now for a in view.all())
            census: dict[str, int] = {}
            for held in view.all():
                kind = held.action.value if held.enforced else f"shadow_{held.action.value}"
                census[kind] = census.get(kind, 0) + 1
            assert view.census() == census, (seed, step)
