from pipeline.engine.actions import ExpiryQueue, action_id, fired, lifted
from schemas.events import ActionEvent, Evidence
from schemas.time_ms import to_ms
from schemas.vocabulary import ActionState, SubjectType
from tests.pipeline.engine.builders import T0, threshold

START = to_ms(T0)


def _action(subject: str, expires_in_ms: int) -> ActionEvent:
    evidence = Evidence(window_start=T0, window_end=T0, messages=3, spams=0, recipients=3,
                        count="messages", limit_messages=3, limit_spams=0)
    return fired(threshold(name="t"), SubjectType.SENDER, subject, START, START + expires_in_ms,
                 evidence)


def test_expired_in_order_of_their_end_and_only_when_due() -> None:
    queue = ExpiryQueue()
    late, early = _action("a@x.org", 2_000), _action("b@x.org", 1_000)
    queue.push(late)
    queue.push(early)
    assert queue.due(START + 999) == []
    assert [(a.subject, a.state) for a in queue.due(START + 5_000)] == [
        ("b@x.org", ActionState.EXPIRED), ("a@x.org", ActionState.EXPIRED)]
    assert len(queue) == 0


def test_a_lifted_action_does_not_expire_later() -> None:
    queue = ExpiryQueue()
    action = _action("a@x.org", 1_000)
    queue.push(action)
    gone = lifted(action, START + 10, actor="noc", reason="false positive")
    queue.forget(gone.action_id)
    assert gone.state is ActionState.LIFTED and gone.actor == "noc"
    assert queue.due(START + 5_000) == []


def test_ids_depend_on_what_defines_a_firing() -> None:
    one = action_id("t", SubjectType.SENDER, "a@x.org", START)
    assert one == action_id("t", SubjectType.SENDER, "a@x.org", START)
    assert one != action_id("t", SubjectType.SENDER, "a@x.org", START + 1)
    assert one != action_id("t", SubjectType.SENDER_DOMAIN, "a@x.org", START)
