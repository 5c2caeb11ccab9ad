"""scripts/make_learner_noise.py: learner-like errors put into labelled texts. All texts here
are invented."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

TEXT = ("The committee has a plan for the new bridge, and the workers are ready. "
        "It was built in the spring with an old crane from Ohio.")


@pytest.fixture(scope="module")
def mod(load_script):
    return load_script("make_learner_noise")


def test_a_misspelling_keeps_the_first_and_last_letters(mod) -> None:
    rng = random.Random(1)
    for _ in range(200):
        w = mod.misspell("committee", rng)
        assert w != "" and w[0] == "c" and w[-1] == "e" and abs(len(w) - 9) <= 1


def test_typos_touch_only_words_of_four_letters_or_more(mod) -> None:
    out = mod.add_noise(TEXT, "typos", 1.0, random.Random(3))
    before, after = TEXT.split(), out.split()
    assert len(before) == len(after)
    for a, b in zip(before, after, strict=True):
        letters = sum(c.isalpha() for c in a)
        if letters < 4:
            assert a == b
    assert out != TEXT


def test_grammar_slips_at_rate_one(mod) -> None:
    out = mod.add_noise(TEXT, "grammar", 1.0, random.Random(5))
    words = out.replace(",", "").replace(".", "").split()
    assert not {"a", "an", "the", "The"} & set(words)          # every article dropped
    assert "have" in words and "is" in words and "were" in words  # has/are/was switched
    assert "It" in words                                        # case and other words kept
    assert mod.add_noise(TEXT, "grammar", 1.0, random.Random(5)) == out  # deterministic


def test_a_low_rate_changes_about_that_share_of_words(mod) -> None:
    long = " ".join([TEXT] * 40)
    out = mod.add_noise(long, "typos", 0.1, random.Random(7))
    pairs = list(zip(long.split(), out.split(), strict=True))  # typos never drop a word
    eligible = [(a, b) for a, b in pairs if sum(c.isalpha() for c in a) >= 4]
    share = sum(a != b for a, b in eligible) / len(eligible)
    assert 0.05 <= share <= 0.15
    with pytest.raises(ValueError, match="kind must be one of"):
        mod.add_noise(TEXT, "spelling", 0.1, random.Random(7))


def _run(mod, monkeypatch, *argv: str) -> None:
    monkeypatch.setattr(sys, "argv", ["make_learner_noise.py", *argv])
    assert mod.main() == 0


def test_every_other_field_is_kept(mod, tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": TEXT, "label": "human", "group": "g"}) + "\n"
                   + json.dumps({"text": TEXT, "label": "llm"}) + "\n")
    out = tmp_path / "out.jsonl"
    _run(mod, monkeypatch, str(src), str(out), "--kind", "grammar", "--rate", "1", "--seed", "2")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["label"] for r in rows] == ["human", "llm"] and rows[0]["group"] == "g"
    assert all(r["noise"] == "grammar 1" and r["text"] != TEXT for r in rows)


def test_bad_input_is_refused(mod, tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps({"text": TEXT, "label": "human"}) + "\n"
                   + json.dumps({"text": "  ", "label": "human"}) + "\n")
    with pytest.raises(SystemExit, match="bad.jsonl:2"):
        _run(mod, monkeypatch, str(src), str(tmp_path / "o.jsonl"))
    assert not (tmp_path / "o.jsonl").exists()
    with pytest.raises(SystemExit):
        _run(mod, monkeypatch, str(src), str(tmp_path / "o.jsonl"), "--rate", "0")
