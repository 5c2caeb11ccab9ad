import base64

import orjson
import pytest

from service.errors import InputError
from service.schema import DEAD_LETTER_REASONS, DeadLetter, Flag, parse_submission


def _msg(**over):
    base = {"submission_id": "s1", "worker_id": "w1", "task_id": "t1",
            "text": "A short answer written by hand.", "extra": {"ignored": True}}
    base.update(over)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def test_valid_submission_parses_and_ignores_unknown_fields():
    sub = parse_submission(_msg(started_at="2026-11-01T10:00:00Z",
                                submitted_at="2026-11-01T10:05:00+01:00", events=[["key", "a", "x"]]))
    assert sub.submission_id == "s1" and sub.worker_id == "w1" and sub.task_id == "t1"
    assert sub.started_at.utcoffset().total_seconds() == 0
    assert (sub.submitted_at - sub.started_at).total_seconds() == -55 * 60
    assert sub.events == [["key", "a", "x"]]


@pytest.mark.parametrize("raw, reason", [
    (b"\xff\xfe not utf8", "not_utf8"),
    (b"{not json", "not_json"),
    (b"[1, 2]", "not_object"),
    (None, "not_json"),
    (_msg(text=...), "missing_field"),
    (_msg(worker_id=None), "missing_field"),
    (_msg(text=42), "wrong_type"),
    (_msg(source_text=["x"]), "wrong_type"),
    (_msg(worker_id=""), "bad_id"),
    (_msg(worker_id="   "), "bad_id"),
    (_msg(worker_id="w" * 257), "bad_id"),
    (_msg(text="  \n "), "empty_text"),
    (_msg(submitted_at="yesterday"), "bad_timestamp"),
])
def test_invalid_messages_name_their_reason(raw, reason):
    with pytest.raises(InputError) as info:
        parse_submission(raw)
    assert info.value.reason == reason
    assert reason in DEAD_LETTER_REASONS


def test_oversized_message_is_rejected_before_parsing():
    with pytest.raises(InputError) as info:
        parse_submission(_msg(text="x" * 5000), max_bytes=2048)
    assert info.value.reason == "oversized"
    assert "2048" in str(info.value)


def test_dead_letter_keeps_original_bytes_and_position():
    raw = b"\x00garbage"
    try:
        parse_submission(raw)
    except InputError as exc:
        letter = DeadLetter.of(exc, topic="subs", partition=3, offset=17, value=raw, key=b"k")
    d = orjson.loads(letter.to_bytes())
    assert d["topic"] == "subs" and d["partition"] == 3 and d["offset"] == 17
    assert base64.b64decode(d["value_b64"]) == raw
    assert d["reason"] == "not_json" and d["error"]


def test_flag_round_trip_omits_text_unless_given():
    flag = Flag("s1", "w1", "t1", 0.25, "human", ["r"], {"n_pastes": 0}, "m@1",
                "2026-11-01T00:00:00Z")
    raw = flag.to_bytes()
    assert b'"text"' not in raw
    assert Flag.from_bytes(raw) == flag
