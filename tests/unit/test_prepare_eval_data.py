"""scripts/prepare_eval_data.py: the source abstracts' paragraphs, the batch labelled by
behaviour, and the files with their task text. All texts here are invented."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

ABSTRACT = ("Rooftop Beehives and Honey Yield\n\n"
            "Whether hives on apartment roofs produce as much honey as hives in the countryside "
            "has not been studied over more than one season.\n\n"
            "We placed hives on nine roofs and weighed the honey.\n\n"
            "Hives next to herb planters produced forty percent more honey than hives on bare "
            "gravel roofs, and no resident reported a sting during the whole trial period.")


@pytest.fixture(scope="module")
def prep(load_script):
    return load_script("prepare_eval_data")


def _gpturk(tmp_path: Path, title: str = "Rooftop Beehives and Honey Yield") -> Path:
    g = tmp_path / "gpturk"
    g.mkdir()
    with (g / "abstracts_final.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["texts"], [ABSTRACT]])
    with (g / "qids.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["HITId", "question"], ["H1", title + "\n\nThe rest ."]])
    return g


def test_paragraphs_of_at_least_15_words_without_the_title(prep, tmp_path):
    rows = prep.abstract_paragraphs(_gpturk(tmp_path))
    assert [r["text"][:20] for r in rows] == ["Whether hives on apa", "Hives next to herb p"]
    assert all(r["label"] == "human" and r["HITId"] == "H1" for r in rows)
    assert "Honey Yield" not in " ".join(r["text"] for r in rows)  # the title goes, and
    assert "weighed" not in " ".join(r["text"] for r in rows)      # the 10-word paragraph


def test_a_mismatched_abstract_and_qid_stop_the_script(prep, tmp_path):
    with pytest.raises(SystemExit, match="does not match H1"):
        prep.abstract_paragraphs(_gpturk(tmp_path, title="Another Trial Altogether"))


def test_answers_are_labelled_by_their_keystroke_logs(prep):
    body = ABSTRACT.split("\n\n", 1)[1]
    own = "The hives near herbs made much more honey and nobody got stung at all there."
    typed = [["key", ch, 1_700_000_000_000 + 300 * i] for i, ch in enumerate(own)]
    foreign = ("Urban apiculture initiatives demonstrate that honeybee colonies adjacent to "
               "aromatic vegetation yield substantially more, with no adverse incidents.")
    base = {"source_text": ABSTRACT, "started_at": None, "submitted_at": None}
    cases = {
        ("llm", "foreign-paste"): {"text": foreign, "events": [["paste", foreign, 1]]},
        ("human", "task-text-paste"): {"text": body, "events": [["paste", body, 1]]},
        ("human", "typed"): {"text": own, "events": typed},
        None: {"text": own + " " + foreign[:60], "events": typed + [["paste", foreign[:60], 1]]},
    }
    for want, sub in cases.items():
        assert prep._behaviour_label({**base, **sub}) == want, want


def test_with_task_gives_each_text_its_abstract_and_drops_the_private_key(prep):
    rows = [{"text": "a", "label": "human", "HITId": "H1"}]
    assert list(prep._with_task(rows, {"H1": "the task"})) == [
        {"text": "a", "label": "human", "HITId": "H1", "source_text": "the task"}]
    batch = [{"text": "b", "label": "llm", "task": "its task"}]
    assert list(prep._with_task(batch)) == [{"text": "b", "label": "llm",
                                             "source_text": "its task"}]


def test_main_writes_the_split_paragraph_files(prep, tmp_path):
    g = _gpturk(tmp_path)
    (g / "train_inductive.json").write_text(json.dumps([{"HITId": "H1", "text": "x",
                                                        "labels": "real"}]))
    (tmp_path / "detectrl").mkdir()
    out = tmp_path / "out"
    assert prep.main(tmp_path, out) == 0
    lines = lambda name: (out / name).read_text().splitlines()  # noqa: E731
    assert len(lines("gpturk_abstract_paragraphs.jsonl")) == 2
    assert len(lines("gpturk_abstract_paragraphs_train_inductive.jsonl")) == 2
    assert not (out / "gpturk_abstract_paragraphs_test_inductive.jsonl").exists()
    assert not (out / "mturk2023_by_behaviour.jsonl").exists()  # no batch file given


def test_with_task_names_a_hitid_missing_from_qids(prep):
    with pytest.raises(SystemExit, match="HITId H9 is not in qids.csv"):
        list(prep._with_task([{"text": "a", "label": "human", "HITId": "H9"}], {"H1": "t"}))
