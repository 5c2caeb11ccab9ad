"""scripts/paste_fpr.py: verdicts as if every text were pasted from outside the task, with the
default panel. All texts here are invented."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from service.detector import Detector
from service.errors import InputError
from service.settings import DEFAULT_MODEL_DIR
from service.signals import FOREIGN_PASTE_MIN_CHARS, FOREIGN_PASTE_MIN_SHARE

TEXTS = [
    ("We walked to the river after lunch and my brother lost his shoe in the mud, so we spent "
     "an hour looking for it while the dog ran around barking at every duck it could see.",
     "human"),
    ("In conclusion, the study demonstrates that regular physical activity significantly "
     "improves sleep quality and reduces daytime fatigue, highlighting the importance of "
     "incorporating exercise into daily routines for overall well-being and health.", "llm"),
    ("The government will continue to deepen reform and opening up, promote high quality "
     "development, improve the living standards of the people and build a modern economic "
     "system, so that all the people share the fruits of development.", "human"),
    ("Overall, this research provides valuable insights into the complex relationship "
     "between diet and heart disease, emphasizing the need for further studies to explore "
     "these findings and develop effective prevention strategies.", "llm"),
]


@pytest.fixture(scope="module")
def mod(load_script):
    return load_script("paste_fpr")


def test_a_whole_answer_pasted_is_a_large_foreign_paste(mod) -> None:
    text = "word " * 200
    sig = mod.pasted(text)
    assert sig.events_available and sig.n_pastes == 1
    assert sig.foreign_paste_share == 1.0 >= FOREIGN_PASTE_MIN_SHARE
    assert sig.foreign_paste_chars == len(text) >= FOREIGN_PASTE_MIN_CHARS


def test_counts_say_rate_and_upper_bound(mod) -> None:
    y = [0, 0, 0, 1, 1]
    v = ["llm", "human", "uncertain", "llm", "uncertain"]
    assert mod.count(y, v, 0) == "1/3 (33.3%, <= 90.6%)"
    assert mod.count(y, v, 1) == "1/2 (50.0%)"
    assert mod.count([1], ["llm"], 0) == "-"


def test_the_paste_rule_only_adds_llm_verdicts_and_members_only_take_them_away(
        mod, tmp_path: Path) -> None:
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in TEXTS))
    detector = Detector.load(DEFAULT_MODEL_DIR)
    y, out = mod.verdicts(detector, path)
    assert y == [0, 1, 0, 1] and set(out) == set(mod.WAYS)
    for i in range(len(TEXTS)):
        text, pasted, old = (out[w][i] for w in mod.WAYS)
        if text == "llm":  # a paste never takes an llm verdict away
            assert pasted == "llm"
        if pasted == "llm":  # the members' bar only removes llm verdicts the old rule gave
            assert old == "llm"
        assert text == "human" or pasted != "human"  # a paste never makes human


def test_bad_input_is_refused_with_file_and_line(mod, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "label": "human"}\n{"label": "llm"}\n')
    with pytest.raises(InputError, match="bad.jsonl:2: missing field 'text'"):
        mod.verdicts(Detector.load(DEFAULT_MODEL_DIR / "minilm"), path)
    monkeypatch.setattr(sys, "argv", ["paste_fpr.py", "--model",
                                      str(DEFAULT_MODEL_DIR / "minilm"), str(path)])
    with pytest.raises(SystemExit, match="bad.jsonl:2"):
        mod.main()
