"""scripts/make_shuffled_passages.py: labelled texts cut into passages of shuffled sentences,
pooled per group, with the label kept; a bad record stops it with an error naming its line.
All texts here are invented."""

from __future__ import annotations

import json

import pytest


def _text(topic: str, n: int) -> str:
    return " ".join(f"Sentence {i} about {topic} has eight words here." for i in range(n))


ROWS = [
    {"text": _text("rivers", 20), "label": "llm", "data_type": "direct_prompt"},
    {"text": _text("bridges", 20), "label": "llm", "data_type": "direct_prompt"},
    {"text": _text("gardens", 40), "label": "llm", "data_type": "paraphrase"},
    {"text": _text("trains", 40), "label": "human", "data_type": "direct_prompt"},
]


@pytest.fixture(scope="module")
def mod(load_script):
    return load_script("make_shuffled_passages")


@pytest.fixture()
def src(tmp_path):
    return _write(tmp_path / "in.jsonl", ROWS)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_passages_pool_one_groups_sentences_in_shuffled_order(mod, src, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    assert mod.main([str(src), str(out), "--group-field", "data_type", "--per-group", "2"]) == 0
    rows = _rows(out)
    assert {r["group"] for r in rows} == {"shuffled-direct_prompt", "shuffled-paraphrase"}
    assert all(r["label"] == "llm" and r["origin"] == "in.jsonl" for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert len(row["text"].split()) >= mod.PASSAGE_WORDS
        # only llm texts of the row's own pool: no human "trains", no other group's topic
        topics = {"rivers", "bridges"} if row["group"] == "shuffled-direct_prompt" else {"gardens"}
        words = set(row["text"].replace(".", "").split())
        assert "trains" not in words and words & {"rivers", "bridges", "gardens"} <= topics
    mixed = [r for r in rows if r["group"] == "shuffled-direct_prompt"]
    assert len(mixed) == 2  # capped by --per-group
    # shuffled: the first passage is not the first text's opening run of sentences
    assert not mixed[0]["text"].startswith(_text("rivers", 3))
    assert "4 passages (direct_prompt 2, paraphrase 2)" in capsys.readouterr().err


def test_same_seed_same_passages_other_seed_other_order(mod, src, tmp_path):
    a, b, c = (tmp_path / f"{n}.jsonl" for n in "abc")
    mod.main([str(src), str(a)])
    mod.main([str(src), str(b)])
    mod.main([str(src), str(c), "--seed", "7"])
    assert a.read_text() == b.read_text()
    assert a.read_text() != c.read_text()
    # every sentence of the pool's texts appears at most once
    sentences = [s for r in _rows(a) for s in r["text"].split(". ")]
    assert len(sentences) == len(set(sentences))


def test_human_label_and_one_pool_without_the_field(mod, src, tmp_path):
    out = tmp_path / "h.jsonl"
    mod.main([str(src), str(out), "--label", "real"])
    rows = _rows(out)
    assert rows and {r["label"] for r in rows} == {"human"}
    assert {r["group"] for r in rows} == {"shuffled-all"}


def test_unknown_label_option_is_a_usage_error(mod, src, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        mod.main([str(src), str(tmp_path / "x.jsonl"), "--label", "robot"])
    assert exc.value.code == 2
    assert "unknown label" in capsys.readouterr().err


@pytest.mark.parametrize("bad, says", [
    ({"text": "   ", "label": "llm", "data_type": "paraphrase"}, "text is empty"),
    ({"text": "Boats float.", "label": "robot", "data_type": "paraphrase"}, "unknown label"),
    ({"text": "Boats float.", "label": "llm"}, "no 'data_type' field"),
])
def test_bad_record_is_an_error_naming_its_line(mod, tmp_path, capsys, bad, says):
    src = _write(tmp_path / "in.jsonl", ROWS + [bad])
    out = tmp_path / "x.jsonl"
    assert mod.main([str(src), str(out), "--group-field", "data_type"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "in.jsonl:5" in err and says in err
    assert not out.exists()


def test_missing_file_is_a_clear_error_not_a_traceback(mod, tmp_path, capsys):
    out = tmp_path / "x.jsonl"
    assert mod.main([str(tmp_path / "nope.jsonl"), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope.jsonl" in err
    assert not out.exists()
