"""service.signals: event parsing, paste provenance, bad logs, fusion policy.

All texts and logs here are invented for the tests.
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from service import signals as sg
from service.detector.model_dir import Thresholds
from service.errors import InputError
from service.signals import Signals, compute_signals, fuse, parse_mturk_answer, parse_prolific_log
from service.verdict import Verdict

SOURCE = (
    "Harbor Lane Gardens ran a two-season trial of rooftop beehives on nine apartment "
    "blocks. Residents on the upper floors were offered a weekly tasting of honey and a "
    "short talk about pollinators. Hives placed next to herb planters produced forty "
    "percent more honey than hives on bare gravel roofs, and no resident reported a sting "
    "during the trial. The organizers plan to extend the program to the school district "
    "next spring if the city council approves the insurance costs."
)
# An answer "from elsewhere": shares no 8 consecutive words with SOURCE.
FOREIGN = (
    "This report describes an urban apiculture initiative that evaluated the feasibility "
    "of maintaining honeybee colonies atop residential buildings over two consecutive "
    "seasons. Notably, colonies situated adjacent to aromatic vegetation demonstrated a "
    "substantial increase in productivity compared with those on unplanted surfaces. "
    "Furthermore, the absence of adverse incidents suggests that such programs can be "
    "safely integrated into dense neighborhoods, pending regulatory approval."
)
TYPED = (
    "The gardens put bee hives on the roofs of nine blocks for two years. Hives near herbs "
    "made a lot more honey than the ones on gravel and nobody got stung. They want to try "
    "it at schools next year if the council pays for insurance."
)
T0 = datetime(2024, 3, 5, 9, 0, tzinfo=timezone.utc)
THR = Thresholds(llm=0.8, human=0.2)  # midpoint 0.5


def iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def typed_events(text: str, start: datetime = T0, gap_s: float = 0.2) -> list[list]:
    out = []
    for i, ch in enumerate(text):
        key = "Enter" if ch == "\n" else ch
        out.append(["key", key, iso(start + timedelta(seconds=i * gap_s))])
    return out


def paste_events(text: str, at: datetime, *, shortcut: bool = True) -> list[list]:
    ev = []
    if shortcut:
        ev += [["key", "Control", iso(at)], ["key", "v", iso(at + timedelta(milliseconds=80))]]
    ev.append(["paste", text, iso(at + timedelta(milliseconds=100))])
    return ev


def sig(text: str, events, **kw) -> Signals:
    kw.setdefault("source_text", SOURCE)
    return compute_signals(text, events, **kw)


# --- formats ------------------------------------------------------------------------------
def test_typed_answer_mturk_list_format() -> None:
    s = sig(TYPED, typed_events(TYPED))
    assert s.events_available and s.unavailable_reason is None
    assert s.n_keys == len(TYPED) and s.chars_typed == len(TYPED)
    assert s.typed_share == pytest.approx(1.0)
    assert s.n_pastes == 0 and s.paste_share == 0.0 and s.foreign_paste_share == 0.0
    assert s.typing_speed_cpm == pytest.approx(300.0, rel=0.02)  # one key per 0.2 s
    assert s.time_on_task_s == pytest.approx((len(TYPED) - 1) * 0.2)
    assert s.n_out_of_order == 0 and not s.events_truncated


def test_object_format_and_json_string_give_the_same_signals() -> None:
    events = typed_events("Short intro. ") + paste_events(FOREIGN, T0 + timedelta(minutes=5))
    text = "Short intro. " + FOREIGN
    as_list = sig(text, events)
    objs = [{"type": e[0], "value": e[1], **({"t": e[2]} if len(e) > 2 else {})} for e in events]
    assert sig(text, objs) == as_list
    assert sig(text, json.dumps(events)) == as_list
    assert sig(text, json.dumps(objs).encode()) == as_list
    assert sig(text, {"events": objs}) == as_list


@pytest.mark.parametrize("unit", ["ms", "s"])
def test_epoch_timestamps(unit: str) -> None:
    base = T0.timestamp()
    scale = 1000 if unit == "ms" else 1
    events = [["key", ch, (base + i * 0.25) * scale] for i, ch in enumerate(TYPED)]
    s = sig(TYPED, events)
    assert s.time_on_task_s == pytest.approx((len(TYPED) - 1) * 0.25, rel=1e-6)
    assert s.typing_speed_cpm == pytest.approx(240.0, rel=0.02)


def test_shortcut_keys_and_deletes_are_not_typing() -> None:
    events = typed_events("abcx") + [["key", "Backspace", iso(T0 + timedelta(seconds=1))],
                                     ["key", "Shift", iso(T0 + timedelta(seconds=2))],
                                     ["key", "Control", iso(T0 + timedelta(seconds=3))],
                                     ["key", "c", iso(T0 + timedelta(seconds=3.2))],
                                     ["copy", "abc"]]
    s = sig("abc", events)
    assert s.chars_typed == 4 and s.n_deletes == 1 and s.n_shortcuts == 1 and s.n_copies == 1
    assert s.n_keys == 8


def test_key_long_after_control_is_typing() -> None:
    events = [["key", "Control", iso(T0)], ["key", "v", iso(T0 + timedelta(seconds=10))]]
    s = sig("v", events)
    assert s.chars_typed == 1 and s.n_shortcuts == 0


# --- paste provenance -----------------------------------------------------------------------
def test_foreign_paste_is_llm_evidence() -> None:
    s = sig(FOREIGN, paste_events(FOREIGN, T0))
    assert s.n_pastes == 1 and s.pasted_chars == len(FOREIGN)
    assert s.paste_share == pytest.approx(1.0)
    assert s.foreign_paste_share == pytest.approx(1.0)
    assert s.foreign_paste_chars == len(FOREIGN)
    assert s.pasted_from_source_share == 0.0
    assert s.typed_share == 0.0 and s.n_shortcuts == 1


def test_paste_from_source_is_not_foreign() -> None:
    piece = SOURCE[:220]
    events = [["copy", piece]] + paste_events(piece, T0)
    s = sig(piece, events)
    assert s.pasted_from_source_share == pytest.approx(1.0)
    assert s.foreign_paste_share == 0.0
    assert s.n_copies == 1 and s.copied_from_source == 1
    assert s.pasted_from_source_chars == len(piece.strip())  # answer length after normalize()


def test_source_match_ignores_case_punctuation_and_spacing() -> None:
    piece = SOURCE[:200].upper().replace(",", "").replace(" ", "  ")
    s = sig(piece, paste_events(piece, T0))
    assert s.pasted_from_source_share == pytest.approx(1.0)
    assert s.foreign_paste_share == 0.0


def test_without_source_a_page_copy_is_not_foreign() -> None:
    piece = SOURCE[:300]
    events = [["copy", piece]] + paste_events(piece, T0)
    s = sig(piece, events, source_text=None)
    assert not s.source_available
    assert s.pasted_from_page_share == pytest.approx(1.0)
    assert s.foreign_paste_share == 0.0
    # The same paste without the page copy: nothing says where it came from.
    s2 = sig(piece, paste_events(piece, T0), source_text=None)
    assert s2.foreign_paste_share == pytest.approx(1.0)


def test_moving_a_foreign_paste_keeps_it_foreign() -> None:
    # Paste from outside, copy it on the page, paste it again (moving it).
    events = (paste_events(FOREIGN, T0) + [["copy", FOREIGN]]
              + paste_events(FOREIGN, T0 + timedelta(seconds=30)))
    s = sig(FOREIGN, events)
    assert s.n_pastes == 2 and s.foreign_paste_share == pytest.approx(1.0)


def test_moving_own_typed_text_is_not_foreign() -> None:
    events = typed_events(TYPED) + [["copy", TYPED]] + paste_events(
        TYPED, T0 + timedelta(minutes=10))
    s = sig(TYPED, events)
    assert s.foreign_paste_share == 0.0
    assert s.pasted_own_share == pytest.approx(1.0)
    # Own text recognised through the replayed keys even without a copy event.
    s2 = sig(TYPED, typed_events(TYPED) + paste_events(TYPED, T0 + timedelta(minutes=10)))
    assert s2.foreign_paste_share == 0.0


def test_mixed_answer_shares_add_up() -> None:
    src_part = SOURCE[:250]
    text = src_part + " " + FOREIGN
    events = paste_events(src_part, T0) + paste_events(FOREIGN, T0 + timedelta(seconds=20))
    s = sig(text, events)
    assert s.paste_share == pytest.approx(1.0)
    assert s.pasted_from_source_share + s.foreign_paste_share == pytest.approx(1.0, abs=0.02)
    assert 0.3 < s.pasted_from_source_share < 0.5
    assert s.foreign_paste_chars > 300


def test_paste_deleted_before_submitting_does_not_count() -> None:
    s = sig(TYPED, typed_events(TYPED) + paste_events(FOREIGN, T0 + timedelta(minutes=2)))
    assert s.n_pastes == 1 and s.pasted_chars == len(FOREIGN)
    assert s.paste_share == 0.0 and s.foreign_paste_share == 0.0


def test_short_paste_counts_once() -> None:
    text = "the hives did well and the hives did well again"
    s = sig(text, typed_events("x") + paste_events("the hives did well", T0 + timedelta(minutes=1)))
    assert 0.3 < s.paste_share < 0.5


# --- bad logs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("events", [None, [], "", "  ", "null", "NaN"])
def test_missing_events_unavailable_no_events(events) -> None:
    s = sig(TYPED, events, started_at=T0, submitted_at=T0 + timedelta(minutes=3))
    assert not s.events_available
    assert s.unavailable_reason == "no events"
    assert s.time_on_task_s == 180.0
    assert s.foreign_paste_share is None and s.typed_share is None


@pytest.mark.parametrize("events, reason", [
    (42, "unrecognized events shape"),
    ({"foo": 1}, "unrecognized events shape"),
    ([1, 2, 3], "unrecognized event shape"),
    ([["key"], ["paste", None, 1]], "unrecognized event shape"),
    ("not json at all", "events are not JSON"),
    ('{"events": ', "events are not JSON"),
    (b"\xff\xfe", "events are not UTF-8"),
    ([["focus", "x", 1], {"type": "blur"}], "no key, paste or copy events"),
])
def test_unknown_shapes_are_unavailable_never_raise(events, reason) -> None:
    s = sig(TYPED, events)
    assert not s.events_available
    assert s.unavailable_reason.startswith(reason)


def test_malformed_and_unknown_events_are_counted_and_skipped() -> None:
    events = typed_events("hello") + [["paste"], ["key", 5, 1], "junk", ["scroll", 10, 1],
                                      {"type": "focus"}]
    s = sig("hello", events)
    assert s.events_available
    assert s.n_malformed == 3 and s.n_unknown == 2 and s.chars_typed == 5


def test_truncated_json_log_is_salvaged() -> None:
    events = typed_events(TYPED[:50]) + paste_events(FOREIGN, T0 + timedelta(minutes=1))
    raw = json.dumps(events)
    cut = raw[: raw.index('["paste"') + 30]  # cut inside the paste event
    s = sig(TYPED[:50] + " " + FOREIGN, cut)
    assert s.events_available and s.log_truncated
    assert s.n_pastes == 0 and s.chars_typed == 50


def test_out_of_order_events_are_sorted_and_counted() -> None:
    events = typed_events(TYPED) + paste_events(FOREIGN, T0 + timedelta(minutes=5))
    ordered = sig(TYPED + " " + FOREIGN, events)
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    s = sig(TYPED + " " + FOREIGN, shuffled)
    assert s.n_out_of_order > 0
    assert s.foreign_paste_share == ordered.foreign_paste_share
    assert s.typed_share == ordered.typed_share
    assert s.time_on_task_s == ordered.time_on_task_s


def test_events_without_timestamps_keep_their_order() -> None:
    events = [["key", ch] for ch in TYPED] + [["paste", FOREIGN]]
    s = sig(TYPED + " " + FOREIGN, events)
    assert s.events_available and s.n_out_of_order == 0
    assert s.typing_speed_cpm is None and s.time_on_task_s is None
    assert s.foreign_paste_share > 0.5


def test_bad_timestamps_are_tolerated() -> None:
    events = [["key", "a", "yesterday"], ["key", "b", -5], ["key", "c", float("nan")],
              ["key", "d", True], ["key", "e", {"x": 1}]]
    s = sig("abcde", events)
    assert s.events_available and s.chars_typed == 5 and s.time_on_task_s is None


def test_huge_log_is_capped() -> None:
    events = typed_events("a" * 30_000, gap_s=0.01)
    t = time.perf_counter()
    s = sig("a" * 100, events, max_events=20_000)
    assert time.perf_counter() - t < 5
    assert s.events_truncated and s.n_events == 20_000 and s.n_keys == 20_000
    assert s.typed_share == 1.0


def test_large_paste_and_answer_stay_fast() -> None:
    words = [f"w{i}" for i in range(60_000)]
    text = " ".join(words)
    events = [["paste", text, 1_700_000_000_000], ["copy", text],
              ["paste", text, 1_700_000_001_000]]
    t = time.perf_counter()
    s = sig(text, events)
    assert time.perf_counter() - t < 10
    assert s.foreign_paste_share == pytest.approx(1.0)


def test_time_on_task_prefers_submission_times() -> None:
    events = typed_events(TYPED)
    s = sig(TYPED, events, started_at=T0 - timedelta(minutes=10),
            submitted_at=T0 + timedelta(minutes=5))
    assert s.time_on_task_s == 900.0
    # inconsistent submission times fall back to the events
    s2 = sig(TYPED, events, started_at=T0 + timedelta(hours=1), submitted_at=T0)
    assert s2.time_on_task_s == pytest.approx((len(TYPED) - 1) * 0.2)


def test_to_dict_is_json_ready_and_round_trips() -> None:
    s = sig(FOREIGN, paste_events(FOREIGN, T0))
    d = s.to_dict()
    orjson.dumps(d)
    for key in ("events_available", "n_keys", "chars_typed", "n_pastes", "pasted_chars",
                "paste_share", "pasted_from_source_share", "foreign_paste_share", "n_copies",
                "copied_from_source", "typing_speed_cpm", "time_on_task_s", "typed_share",
                "events_truncated", "unavailable_reason"):
        assert key in d
    assert Signals.from_dict(d).foreign_paste_share == pytest.approx(s.foreign_paste_share)
    u = sig(FOREIGN, None).to_dict()
    orjson.dumps(u)
    assert u["events_available"] is False and u["unavailable_reason"] == "no events"


def test_never_raises_on_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a, **k):
        raise RuntimeError("bug")
    monkeypatch.setattr(sg, "_compute", boom)
    s = sig(TYPED, typed_events(TYPED), started_at=T0, submitted_at=T0 + timedelta(seconds=9))
    assert not s.events_available
    assert s.unavailable_reason == "could not interpret events: RuntimeError"
    assert s.time_on_task_s == 9.0


# --- replay formats ----------------------------------------------------------------------------
def mturk_cell(summary: str, events) -> str:
    return json.dumps([{"summary": summary, "log_of_what_they_did": json.dumps(events)}])


def test_parse_mturk_answer() -> None:
    events = [["copy", SOURCE]] + paste_events(FOREIGN, T0)
    summary, ev = parse_mturk_answer(mturk_cell(FOREIGN, events))
    assert summary == FOREIGN and ev == events
    s = sig(summary, ev)
    assert s.foreign_paste_share == pytest.approx(1.0) and s.copied_from_source == 1


def test_parse_mturk_answer_bad_cells() -> None:
    with pytest.raises(InputError):
        parse_mturk_answer("{not json")
    with pytest.raises(InputError):
        parse_mturk_answer("[1, 2]")
    with pytest.raises(InputError):
        parse_mturk_answer(json.dumps([{"log_of_what_they_did": "[]"}]))
    summary, ev = parse_mturk_answer(json.dumps([{"summary": "hi"}]))
    assert summary == "hi" and ev is None
    assert not sig("hi", ev).events_available
    # a truncated log comes back as the string, which compute_signals salvages
    raw = json.dumps(typed_events("hello there"))[:-40]
    summary, ev = parse_mturk_answer(json.dumps([{"summary": "x", "log_of_what_they_did": raw}]))
    assert isinstance(ev, str)
    assert sig("hello there", ev).log_truncated


def test_parse_prolific_log() -> None:
    events = typed_events("ok")
    cell = json.dumps(events)
    assert parse_prolific_log(cell) == events
    assert parse_prolific_log("") is None and parse_prolific_log("nan") is None
    assert parse_prolific_log(cell.replace('"', '""')) == events  # CSV quoting left in
    assert parse_prolific_log('"' + cell + '"') == events
    # an empty key value must survive (no blind "" replacement)
    with_empty = [["key", "", iso(T0)], ["key", "a", iso(T0)]]
    assert parse_prolific_log(json.dumps(with_empty)) == with_empty
    assert parse_prolific_log(cell[:-5]) == cell[:-5]


# --- fusion -------------------------------------------------------------------------------------
def V(label: str, p: float | None, *reasons: str) -> Verdict:
    return Verdict(label, p, reasons or (f"text score {p}",))  # type: ignore[arg-type]


FOREIGN_SIG = Signals(events_available=True, n_pastes=1, paste_share=1.0,
                      foreign_paste_share=0.9, foreign_paste_chars=450, typed_share=0.0)
TYPED_SIG = Signals(events_available=True, n_pastes=0, paste_share=0.0, foreign_paste_share=0.0,
                    foreign_paste_chars=0, typed_share=0.95, typing_speed_cpm=240.0)


def test_foreign_paste_raises_uncertain_to_llm_above_midpoint() -> None:
    out = fuse(V("uncertain", 0.6, "text score 0.60 between thresholds"), FOREIGN_SIG, THR)
    assert out.verdict == "llm" and out.p_llm == 0.6
    assert out.reasons[0] == "text score 0.60 between thresholds"
    assert "pasted 450 chars not from the task (90% of answer)" in out.reasons[1]
    assert "uncertain -> llm" in out.reasons[1]


def test_foreign_paste_held_back_by_a_panel_member_stays_uncertain() -> None:
    why = "model v (veto) scores 0.30 < 0.55, the midpoint of its thresholds"
    out = fuse(V("uncertain", 0.6), FOREIGN_SIG, THR, held_back=why)
    assert out.verdict == "uncertain"
    assert out.reasons[-1].endswith(f"but {why}: kept uncertain")
    # it only stops the paste from raising the verdict: an llm text verdict stays llm
    assert fuse(V("llm", 0.95), FOREIGN_SIG, THR, held_back=why).verdict == "llm"


def test_foreign_paste_below_midpoint_stays_uncertain() -> None:
    out = fuse(V("uncertain", 0.4), FOREIGN_SIG, THR)
    assert out.verdict == "uncertain"
    assert "pasted 450 chars not from the task" in out.reasons[-1]


def test_behaviour_never_makes_llm_when_text_says_human() -> None:
    out = fuse(V("human", 0.1), FOREIGN_SIG, THR)
    assert out.verdict == "human"
    assert "large foreign paste" in out.reasons[-1]
    assert out.reasons[-1].endswith("but text score says human")


def test_foreign_paste_supports_llm() -> None:
    out = fuse(V("llm", 0.95, "a", "b"), FOREIGN_SIG, THR)
    assert out.verdict == "llm" and out.reasons[:2] == ("a", "b") and len(out.reasons) == 3


def test_small_foreign_paste_is_not_evidence() -> None:
    small = Signals(events_available=True, paste_share=0.3, foreign_paste_share=0.3,
                    foreign_paste_chars=120, typed_share=0.7)
    out = fuse(V("uncertain", 0.7), small, THR)
    assert out.verdict == "uncertain"
    assert "too small to count as evidence" in out.reasons[-1]
    under_share = Signals(events_available=True, paste_share=0.45, foreign_paste_share=0.45,
                          foreign_paste_chars=900, typed_share=0.55)
    assert fuse(V("uncertain", 0.7), under_share, THR).verdict == "uncertain"


def test_abstained_or_unscored_text_is_never_raised() -> None:
    abst = V("uncertain", 0.75, "too short to judge: 9 words < 15", "text score 0.75 not used")
    out = fuse(abst, FOREIGN_SIG, THR)
    assert out.verdict == "uncertain" and "no usable text score" in out.reasons[-1]
    assert fuse(abst, FOREIGN_SIG, THR, abstained=False).verdict == "llm"
    out2 = fuse(V("uncertain", None, "not scored"), FOREIGN_SIG, THR)
    assert out2.verdict == "uncertain" and out2.p_llm is None


def test_typed_from_scratch_moves_uncertain_to_human_below_midpoint() -> None:
    out = fuse(V("uncertain", 0.3), TYPED_SIG, THR)
    assert out.verdict == "human"
    assert "typed 95% of the answer at 240 chars/min" in out.reasons[-1]
    assert fuse(V("uncertain", 0.55), TYPED_SIG, THR).verdict == "uncertain"
    llm = fuse(V("llm", 0.9), TYPED_SIG, THR)
    assert llm.verdict == "llm" and llm.reasons[-1].endswith("but text score says llm")


def test_a_reply_formula_typed_by_hand_is_not_llm_on_its_own() -> None:
    from service.verdict import REPLY_FORMULA_REASON

    formula = f'{REPLY_FORMULA_REASON}: "Sure, here\'s"'
    out = fuse(V("llm", 0.1, formula, "text score 0.10"), TYPED_SIG, THR)
    assert out.verdict == "uncertain" and out.reasons[-1].endswith("llm -> uncertain")
    # the text score alone says llm: kept, as for any llm text verdict
    high = fuse(V("llm", 0.95, formula, "text score 0.95"), TYPED_SIG, THR)
    assert high.verdict == "llm" and high.reasons[-1].endswith("but text score says llm")
    # pasted from outside the task, the formula stands
    assert fuse(V("llm", 0.1, formula, "text score 0.10"), FOREIGN_SIG, THR).verdict == "llm"
    # a panel's score says llm but a member (here the veto member) does not: not llm alone
    held = fuse(V("llm", 0.95, formula, "text score 0.95"), TYPED_SIG, THR,
                held_back="model v (veto) scores 0.30 < 0.55, the midpoint of its thresholds")
    assert held.verdict == "uncertain" and held.reasons[-1].endswith("llm -> uncertain")


def test_implausible_typing_speed_is_not_evidence() -> None:
    fast = Signals(events_available=True, paste_share=0.0, foreign_paste_share=0.0,
                   foreign_paste_chars=0, typed_share=1.0, typing_speed_cpm=5000.0)
    out = fuse(V("uncertain", 0.3), fast, THR)
    assert out.verdict == "uncertain" and "implausibly fast" in out.reasons[-1]
    unknown = Signals(events_available=True, paste_share=0.0, foreign_paste_share=0.0,
                      foreign_paste_chars=0, typed_share=1.0, typing_speed_cpm=None)
    assert fuse(V("uncertain", 0.3), unknown, THR).verdict == "uncertain"


def test_source_paste_is_stated_not_evidence() -> None:
    s = Signals(events_available=True, paste_share=1.0, pasted_from_source_share=1.0,
                pasted_from_source_chars=600, foreign_paste_share=0.0, foreign_paste_chars=0,
                typed_share=0.0)
    out = fuse(V("uncertain", 0.7), s, THR)
    assert out.verdict == "uncertain"
    assert out.reasons[-1] == ("pasted 600 chars from the task text (100% of answer); "
                               "not evidence of LLM use")


def test_answer_pasted_from_the_task_text_is_never_called_llm() -> None:
    s = Signals(events_available=True, paste_share=0.9, pasted_from_source_share=0.9,
                pasted_from_source_chars=900, foreign_paste_share=0.0, foreign_paste_chars=0,
                typed_share=0.1)
    out = fuse(V("llm", 0.95), s, THR)
    assert out.verdict == "uncertain"
    assert "rates the task's authors" in out.reasons[-1]
    minor = Signals(events_available=True, paste_share=0.2, pasted_from_source_share=0.2,
                    pasted_from_source_chars=120, foreign_paste_share=0.0,
                    foreign_paste_chars=0, typed_share=0.8)
    assert fuse(V("llm", 0.95), minor, THR).verdict == "llm"


def test_source_overlap_counts_words_repeated_from_the_task_text() -> None:
    assert sg.source_overlap(SOURCE, SOURCE) == pytest.approx(1.0)
    assert sg.source_overlap(FOREIGN, SOURCE) == 0.0
    # retyped with other case, punctuation and spacing: still the task's words
    retyped = SOURCE.upper().replace(",", " ;").replace(". ", "!  ")
    assert sg.source_overlap(retyped, SOURCE) == pytest.approx(1.0)
    # half copied, half the worker's own
    half = SOURCE[: SOURCE.index(" Hives placed")] + " " + FOREIGN[: FOREIGN.index(" Notably")]
    assert 0.35 < sg.source_overlap(half, SOURCE) < 0.65
    # fewer words than one shingle is never a copy
    assert sg.source_overlap("Harbor Lane Gardens ran a trial", SOURCE) == 0.0


def test_source_overlap_is_measured_without_events() -> None:
    none = compute_signals(SOURCE, None, source_text=SOURCE)
    assert not none.events_available and none.source_overlap_share == pytest.approx(1.0)
    bad = compute_signals(SOURCE, "{not json", source_text=SOURCE)
    assert not bad.events_available and bad.source_overlap_share == pytest.approx(1.0)
    typed = compute_signals(TYPED, typed_events(TYPED), source_text=SOURCE)
    assert typed.events_available and typed.source_overlap_share == 0.0
    assert compute_signals(SOURCE, None).source_overlap_share is None


def test_an_answer_repeating_the_task_text_is_never_called_llm() -> None:
    # no keystroke log at all: the overlap alone lowers llm, and only llm
    copied = compute_signals(SOURCE, None, source_text=SOURCE)
    out = fuse(V("llm", 0.95, "r0"), copied, THR)
    assert out.verdict == "uncertain" and out.p_llm == 0.95
    assert out.reasons == ("r0", "100% of the answer repeats the task text word for word, so "
                           "the text score rates the task's authors, not the worker: "
                           "llm -> uncertain")
    for label, p in (("human", 0.1), ("uncertain", 0.6)):
        v = V(label, p)
        assert fuse(v, copied, THR) is v
    own = compute_signals(FOREIGN, None, source_text=SOURCE)
    v = V("llm", 0.95)
    assert fuse(v, own, THR) is v
    # below SOURCE_REPEAT_MIN_SHARE the text is judged as it stands
    for share, label in ((sg.SOURCE_REPEAT_MIN_SHARE - 0.01, "llm"),
                         (sg.SOURCE_REPEAT_MIN_SHARE, "uncertain")):
        partly = Signals(events_available=False, source_overlap_share=share)
        assert fuse(V("llm", 0.95), partly, THR).verdict == label
    # retyped by hand, keystrokes and all: the words are still the task's
    retyped = compute_signals(SOURCE, typed_events(SOURCE), source_text=SOURCE)
    assert retyped.pasted_from_source_share == 0.0
    assert fuse(V("llm", 0.95), retyped, THR).verdict == "uncertain"
    # a large paste from outside the task stays evidence, whatever it shares with the task
    foreign = Signals(events_available=True, paste_share=1.0, foreign_paste_share=0.9,
                      foreign_paste_chars=900, source_overlap_share=0.6)
    assert fuse(V("llm", 0.95), foreign, THR).verdict == "llm"


def test_unavailable_signals_change_nothing() -> None:
    v = V("uncertain", 0.7)
    assert fuse(v, Signals.unavailable("no events"), THR) is v


def test_policy_invariants_over_a_grid() -> None:
    sigs = [FOREIGN_SIG, TYPED_SIG, Signals.unavailable("no events"),
            sig(FOREIGN, paste_events(FOREIGN, T0)), sig(TYPED, typed_events(TYPED))]
    for p in [i / 20 for i in range(21)]:
        label = "llm" if p >= THR.llm else "human" if p <= THR.human else "uncertain"
        base = V(label, p, "r0")
        for s in sigs:
            out = fuse(base, s, THR)
            assert out.reasons[: len(base.reasons)] == base.reasons
            assert out.p_llm == p
            if label == "human":
                assert out.verdict == "human"
            if label == "llm":
                assert out.verdict == "llm"
            if out.verdict == "llm" and label != "llm":
                assert p >= 0.5 and s.foreign_paste_share >= sg.FOREIGN_PASTE_MIN_SHARE
            if out.verdict == "human" and label != "human":
                assert p < 0.5 and s.typed_share >= sg.TYPED_MIN_SHARE
            if out.verdict != label:
                assert len(out.reasons) > len(base.reasons)


def test_end_to_end_with_real_verdict_and_signals() -> None:
    s = sig(FOREIGN, [["copy", SOURCE]] + paste_events(FOREIGN, T0))
    out = fuse(V("uncertain", 0.65), s, THR)
    assert out.verdict == "llm"
    s2 = sig(TYPED, typed_events(TYPED))
    assert fuse(V("uncertain", 0.35), s2, THR).verdict == "human"
