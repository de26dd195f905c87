from pipeline.replay import replay
from schemas.time_ms import to_ms
from schemas.vocabulary import ActionState
from tests.pipeline.engine.builders import T0, config, mail, threshold


def test_duplicates_by_event_id_count_once() -> None:
    cfg = config(threshold(name="t", window="1m", messages=3, duration="1m"))
    events = [mail(i, event_id="mx1:SAME") for i in range(5)]
    assert replay(cfg, events) == []


def test_actions_expire_in_event_time() -> None:
    cfg = config(threshold(name="t", window="10s", messages=3, duration="1m", action="warn"))
    events = [mail(i) for i in range(3)] + [mail(70_000, sasl_username="bob")]
    actions = replay(cfg, events)
    assert [(a.state, to_ms(a.ts) - to_ms(T0)) for a in actions] == [
        (ActionState.ACTIVE, 2), (ActionState.EXPIRED, 60_002)]
    assert actions[0].action_id == actions[1].action_id


def test_a_shadow_threshold_fires_exactly_like_an_enforcing_one() -> None:
    enforcing = threshold(name="t", window="30s", messages=5, duration="1m", action="block")
    shadow = threshold(name="t", window="30s", messages=5, duration="1m", action="block",
                       mode="shadow")
    events = [mail(i * 1_000, sasl_username=f"u{i % 3}") for i in range(40)]
    for event in [mail(i * 500, sasl_username="burst") for i in range(12)]:
        events.append(event)
    events.sort(key=lambda e: e.ts)
    enforced, watched = replay(config(enforcing), events), replay(config(shadow), events)
    assert enforced and all(a.enforced for a in enforced)
    assert not any(a.enforced for a in watched)
    assert [a.model_copy(update={"enforced": True}) for a in watched] == enforced  # same firings
