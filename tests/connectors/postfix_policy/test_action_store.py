from pathlib import Path

from connectors.postfix_policy.action_store import ActionStore
from tests.fixtures.policy_requests import action


def test_a_restarted_store_knows_the_actions_in_force_and_where_to_resume(tmp_path: Path) -> None:
    store = ActionStore(tmp_path)
    store.apply(action("block", "sender", "a@x.org", "one"), partition=0, offset=10)
    store.apply(action("defer", "sender", "b@x.org", "two"), partition=1, offset=3)
    store.apply(action("block", "sender", "a@x.org", "one", state="lifted"), partition=0, offset=11)
    store.apply(None, partition=1, offset=4)  # a tombstone only moves the offset
    store.close()

    actions, offsets = ActionStore(tmp_path).load()
    assert [a.action_id for a in actions] == ["two"]
    assert offsets == {0: 12, 1: 5}
