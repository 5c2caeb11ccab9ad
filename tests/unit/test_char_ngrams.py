"""Char n-gram models: the features, the weights file, training, loading, and serving as a
panel's second veto member."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import orjson
import pytest

from service.cli import main
from service.detector import Detector, load_model_info
from service.detector.char_ngrams import (WEIGHTS_FILE, CharNgramDetector, CharNgramWeights,
                                          char_ngrams, text_for_ngrams)
from service.errors import ModelError
from service.settings import DEFAULT_MODEL_DIR
from service.training.char_ngrams import vocabulary
from service.training.panel import build_panel
from service.verdict import decide

HUMAN = ["i think the walkers slept better but the study was small and the authors say so",
         "people who walked every day had fewer heart problems in this study of adults",
         "the researchers compared two groups and found a small difference in sleep",
         "we dont know if walking caused it, other habits may explain part of it"]
LLM = ["In conclusion, the study demonstrates that daily walking significantly improves "
       "overall cardiovascular health outcomes.",
       "Overall, these findings highlight the importance of regular physical activity in "
       "promoting well-being.",
       "Furthermore, the comprehensive analysis underscores the crucial role of consistent "
       "exercise.",
       "Additionally, it is essential to consider the multifaceted benefits of walking for "
       "adults."]


def _training_file(path: Path, n: int = 60) -> Path:
    rng = random.Random(1)
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"text": " ".join(rng.sample(HUMAN, 3)) + f" note {i}",
                                "label": "human"}) + "\n")
            f.write(json.dumps({"text": " ".join(rng.sample(LLM, 3)) + f" Item {i}.",
                                "label": "llm"}) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(training file, model directory) of a char n-gram model trained by the CLI."""
    root = tmp_path_factory.mktemp("char")
    data = _training_file(root / "train.jsonl")
    code = main(["train", "--data", str(data), "--out", str(root / "m"), "--base", "char-ngrams",
                 "--version", "t1"])
    assert code == 0
    return data, root / "m"


def test_ngrams_of_each_word_padded_with_spaces() -> None:
    assert char_ngrams("hi  there") == [
        " h", "hi", "i ", " hi", "hi ", " hi ",
        " t", "th", "he", "er", "re", "e ", " th", "the", "her", "ere", "re ",
        " the", "ther", "here", "ere ", " ther", "there", "here "]
    assert char_ngrams("") == []


def test_ngrams_match_scikit_learns_char_wb_analyzer() -> None:
    sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
    analyzer = sklearn_text.TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).build_analyzer()
    for text in [*HUMAN, *LLM, "a I x-ray 3.5% naïve (short) words"]:
        clean, _ = text_for_ngrams(text, 10_000)
        assert char_ngrams(clean) == analyzer(clean)


def test_text_is_normalized_lower_cased_and_cut() -> None:
    assert text_for_ngrams("The  Cat\n sat", 100) == ("the cat sat", False)
    assert text_for_ngrams("Abcdef", 3) == ("abc", True)


def test_weights_round_trip_and_score_by_hand(tmp_path: Path) -> None:
    vocab, idf = vocabulary(["ab ab", "ab cd"])  # " a", "ab", "b ", " ab", "ab ", " ab "...
    coef = np.linspace(-1, 1, len(vocab))
    weights = CharNgramWeights(vocab, idf, coef, 0.25)
    weights.save(tmp_path / WEIGHTS_FILE)
    back = CharNgramWeights.load(tmp_path / WEIGHTS_FILE)
    assert back.vocab == vocab and np.allclose(back.idf, idf) and back.intercept == 0.25
    idx, vals, read = back.vector("ab ab zz")
    assert read == len(char_ngrams("ab ab zz")) == 18 and np.isclose(np.linalg.norm(vals), 1.0)
    # "ab" occurs twice: (1 + log 2) * idf before scaling; n-grams of "zz" are unknown
    counts = {g: 2 for g in char_ngrams("ab")}
    raw = {vocab[g]: (1 + np.log(c)) * idf[vocab[g]] for g, c in counts.items()}
    norm = np.sqrt(sum(v * v for v in raw.values()))
    assert back.margin(idx, vals) == pytest.approx(
        sum(v / norm * coef[i] for i, v in raw.items()) + 0.25, rel=1e-6)


@pytest.mark.parametrize("damage", ["lengths", "not_npz", "non_finite"])
def test_a_damaged_weights_file_is_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / WEIGHTS_FILE
    vocab = np.frombuffer(b" a\nab", dtype=np.uint8)
    if damage == "not_npz":
        path.write_bytes(b"not a zip")
    else:
        coef = np.array([1.0, np.nan] if damage == "non_finite" else [1.0, 2.0, 3.0])
        np.savez(path, vocab=vocab, idf=np.ones(2), coef=coef, intercept=np.float64(0))
    with pytest.raises(ModelError, match="char_ngrams.npz"):
        CharNgramWeights.load(path)


def test_train_writes_a_loadable_calibrated_model(trained: tuple[Path, Path]) -> None:
    _, model_dir = trained
    meta = orjson.loads((model_dir / "crowdguard-model.json").read_bytes())
    assert meta["kind"] == "char-ngrams" and meta["files"]["cpu"] == WEIGHTS_FILE
    assert meta["ngrams"]["C"] in [x["C"] for x in meta["ngrams"]["searched"]]
    assert meta["validation"]["auroc"] == 1.0  # the two kinds of fixture text differ plainly
    assert "character n-grams" in (model_dir / "MODEL_CARD.md").read_text()
    det = Detector.load(model_dir, device="cuda")  # runs in numpy whatever the device
    assert isinstance(det, CharNgramDetector) and det.session is None
    human, llm = det.score([" ".join(HUMAN), " ".join(LLM)])
    assert human.p_llm < 0.5 < llm.p_llm and human.distance is None
    assert decide(" ".join(LLM), llm, det.info).verdict == "llm"
    assert decide(" ".join(HUMAN), human, det.info).verdict == "human"


@pytest.mark.parametrize("option", [["--folds", "4"], ["--val-fraction", "1.5"]])
def test_training_refuses_encoder_options_and_bad_values(tmp_path: Path,
                                                         option: list[str]) -> None:
    data = _training_file(tmp_path / "train.jsonl", n=20)
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "m"), "--base",
                 "char-ngrams", *option])
    assert code == 2 and not (tmp_path / "m").exists()


def test_training_warns_about_fine_tuning_settings_it_does_not_use(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from service.training import train_model

    data = _training_file(tmp_path / "train.jsonl", n=20)
    train_model([data], tmp_path / "m", base="char-ngrams", epochs=9, progress=False)
    assert "fits no encoder: epochs not used" in caplog.text
    assert (tmp_path / "m" / WEIGHTS_FILE).is_file()


def test_refinish_refuses_a_char_model(trained: tuple[Path, Path]) -> None:
    data, model_dir = trained
    before = (model_dir / "crowdguard-model.json").read_bytes()
    assert main(["refinish", "--model", str(model_dir), "--data", str(data)]) == 2
    assert (model_dir / "crowdguard-model.json").read_bytes() == before


def test_a_directory_without_its_weights_file_fails_fast(trained: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    _, model_dir = trained
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "crowdguard-model.json").write_bytes((model_dir / "crowdguard-model.json")
                                                    .read_bytes())
    with pytest.raises(ModelError, match="cpu file 'char_ngrams.npz'"):
        load_model_info(broken)


def test_a_char_model_as_a_second_veto_can_only_remove_verdicts(
        trained: tuple[Path, Path], tmp_path: Path) -> None:
    """In a panel it votes under the rule and stays out of p_llm, so verdicts are a subset."""
    _, char_dir = trained
    encoder = load_model_info(DEFAULT_MODEL_DIR).singles[0].path
    plain = build_panel([("minilm", encoder), ("again", encoder)], tmp_path / "p1",
                        name="p", version="1", veto=["again"])
    both = build_panel([("minilm", encoder), ("again", encoder), ("chars", char_dir)],
                       tmp_path / "p2", name="p", version="2", veto=["again", "chars"])
    assert plain["veto"] == ["again"] and both["veto"] == ["again", "chars"]
    p1, p2 = Detector.load(tmp_path / "p1"), Detector.load(tmp_path / "p2")
    assert p2.info.max_length == p1.info.max_length  # tokens; the char member counts characters
    texts = [" ".join(LLM), " ".join(HUMAN), " ".join(HUMAN[:2] + LLM[:2])]
    for text, s1, s2 in zip(texts, p1.score(texts), p2.score(texts), strict=True):
        assert s2.p_llm == pytest.approx(s1.p_llm)  # the veto members do not move the score
        v1 = decide(text, s1, p1.info, familiarity=False)
        v2 = decide(text, s2, p2.info, familiarity=False)
        assert v2.verdict in (v1.verdict, "uncertain")
        assert any(r.startswith("model chars (veto): text score") for r in v2.reasons)
    assert main(["model", "--model", str(tmp_path / "p2")]) == 0
    # as a text-only veto (`panel --text-only-veto`): the same text verdicts, its own tag
    p3 = tmp_path / "p3"
    assert main(["panel", "--member", f"minilm={encoder}", "--member", f"again={encoder}",
                 "--member", f"chars={char_dir}", "--veto", "again", "--text-only-veto", "chars",
                 "--out", str(p3), "--version", "3"]) == 0
    info = load_model_info(p3)
    assert info.veto == ("again", "chars") and info.text_only_veto == ("chars",)
    for text, s2, s3 in zip(texts, p2.score(texts), Detector.load(p3).score(texts), strict=True):
        v2 = decide(text, s2, p2.info, familiarity=False)
        v3 = decide(text, s3, info, familiarity=False)
        assert v3.verdict == v2.verdict
        assert any(r.startswith("model chars (veto, text only): text score") for r in v3.reasons)
    assert main(["model", "--model", str(p3)]) == 0
