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
