from pathlib import Path

from connectors.event_files import InputProblem, read_events
from tests.pipeline.engine.builders import mail


def _write(path: Path, lines: list[str | bytes]) -> str:
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n"
                              for line in lines))
    return str(path)


def test_files_are_merged_in_time_order(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.jsonl", [mail(0).model_dump_json(), mail(20).model_dump_json()])
    b = _write(tmp_path / "b.jsonl", [mail(10).model_dump_json(), mail(30).model_dump_json()])
    problems: list[InputProblem] = []
    events = list(read_events([a, b], problems.append))
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert len(events) == 4 and problems == []


def test_bad_lines_are_reported_with_their_place_and_skipped(tmp_path: Path) -> None:
    good = mail(0).model_dump_json()
    path = _write(tmp_path / "e.jsonl", [
        good, "{not json", '{"event_id": "x"}', b"\xff\xfe garbage", "", good.replace(
            '"accepted":true', '"accepted":"perhaps"')])
    problems: list[InputProblem] = []
    events = list(read_events([path, str(tmp_path / "missing.jsonl")], problems.append))
    assert len(events) == 1
    found = {p.where.rsplit("/", 1)[-1]: p.message for p in problems}
    assert sorted(found) == ["e.jsonl:2", "e.jsonl:3", "e.jsonl:4", "e.jsonl:6", "missing.jsonl"]
    assert found["e.jsonl:2"].startswith("not valid JSON")
    assert "ts: Field required" in found["e.jsonl:3"] and "more problems" in found["e.jsonl:3"]
    assert found["e.jsonl:4"].startswith("not valid JSON")  # invalid UTF-8
    assert found["e.jsonl:6"].startswith("accepted:")
    assert "cannot read" in found["missing.jsonl"]


def test_an_overlong_line_is_skipped_not_loaded(tmp_path: Path) -> None:
    from connectors import event_files

    good = mail(0).model_dump_json()
    path = _write(tmp_path / "e.jsonl", ["x" * (event_files.MAX_LINE_BYTES + 10), good])
    problems: list[InputProblem] = []
    assert len(list(read_events([path], problems.append))) == 1
    assert [p.where.rsplit("/", 1)[-1] for p in problems] == ["e.jsonl:1"]
    assert "longer than" in problems[0].message


def test_delivery_attempts_are_read_beside_messages(tmp_path: Path) -> None:
    from schemas.events import DeliveryEvent, MailEvent
    from tests.pipeline.engine.builders import delivery

    bounced = delivery(5, status="bounced", response="host mx[192.0.2.1] said: 550 5.1.1 no")
    # a MailEvent whose text names the key is still a MailEvent: only a key decides
    odd = mail(10, sender='"delivery_id":x@example.org')
    path = _write(tmp_path / "e.jsonl", [mail(0).model_dump_json(), bounced.model_dump_json(),
                                         odd.model_dump_json()])
    problems: list[InputProblem] = []
    events = list(read_events([path], problems.append))
    assert [type(e) for e in events] == [MailEvent, DeliveryEvent, MailEvent] and not problems
    assert events[1] == bounced
