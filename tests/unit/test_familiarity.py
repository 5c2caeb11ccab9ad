"""The familiarity check: the distance, its file, and the ONNX ``features`` output."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest

from service.detector import Detector, TrainingFeatures
from service.detector.model_dir import load_model_info
from service.errors import ModelError

ROOT = Path(__file__).resolve().parents[2]
# a single model shipped here: the default, or the first member of a default panel
DEFAULT_MODEL = load_model_info(ROOT / "models" / "crowdguard-detector").singles[0].path


def _clusters(n: int = 400, dim: int = 6, seed: int = 0) -> np.ndarray:
    """Two kinds of text: feature directions around two centres."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:2] * 4.0
    return centres[np.arange(n) % 2] + rng.normal(size=(n, dim)) * 0.5


def test_distance_is_one_minus_mean_cosine_to_the_k_nearest() -> None:
    x = _clusters()
    ref = TrainingFeatures.fit(x, k=5)
    probe = np.array([[1.0, 0.2, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 1.0, 0.0]])
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    pu = probe / np.linalg.norm(probe, axis=1, keepdims=True)
    expect = [1 - np.sort(unit @ p)[-5:].mean() for p in pu]
    np.testing.assert_allclose(ref.distances(probe), expect, atol=1e-5)
    # scale does not matter, direction does
    np.testing.assert_allclose(ref.distances(probe * 7.0), ref.distances(probe), atol=1e-6)


def test_far_texts_are_far_and_the_reference_is_capped() -> None:
    x = _clusters()
    ref = TrainingFeatures.fit(x)
    near = ref.distances(_clusters(seed=1)[:50])
    far = ref.distances(np.tile(np.eye(6)[4], (5, 1)) + 0.01)
    assert far.min() > 5 * near.max()
    capped = TrainingFeatures.fit(x, max_texts=100)
    assert capped.reference.shape == (100, 6)
    assert TrainingFeatures.fit(x[:3], k=10).k == 3  # never more neighbours than texts
    with pytest.raises(ValueError, match="dimensions"):
        ref.distances(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="k must be"):
        TrainingFeatures.fit(x, k=0)


def test_file_round_trip_and_clear_errors(tmp_path: Path) -> None:
    x = _clusters()
    ref = TrainingFeatures.fit(x, k=7)
    back = TrainingFeatures.load(ref.save(tmp_path / "familiarity.npz"))
    assert back.k == 7
    np.testing.assert_allclose(back.distances(x[:5]), ref.distances(x[:5]), atol=2e-3)  # float16
    (tmp_path / "broken.npz").write_bytes(b"not an npz")
    with pytest.raises(ModelError, match="cannot read the training features"):
        TrainingFeatures.load(tmp_path / "broken.npz")
    np.savez(tmp_path / "odd.npz", reference=np.zeros((3, 4)), k=np.array(9))
    with pytest.raises(ModelError, match="not usable"):
        TrainingFeatures.load(tmp_path / "odd.npz")


def _model_dir(tmp_path: Path, meta_extra: dict, files_extra: dict) -> Path:
    out = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, out)
    meta = orjson.loads((out / "crowdguard-model.json").read_bytes())
    meta.pop("familiarity", None)  # start from a model without the check
    meta["files"].pop("familiarity", None)
    meta["files"].update(files_extra)
    meta.update(meta_extra)
    (out / "crowdguard-model.json").write_bytes(orjson.dumps(meta))
    return out


def test_metadata_and_files_must_agree(tmp_path: Path) -> None:
    from service.detector import load_model_info

    x = _clusters()
    for bad in ("nan", -1.0, "far"):
        shutil.rmtree(tmp_path / "model", ignore_errors=True)
        out = _model_dir(tmp_path, {"familiarity": {"threshold": bad}},
                         {"familiarity": "tokenizer.json"})
        with pytest.raises(ModelError, match="familiarity"):
            load_model_info(out)
    shutil.rmtree(tmp_path / "model")
    with pytest.raises(ModelError, match="must come together"):
        load_model_info(_model_dir(tmp_path, {"familiarity": {"threshold": 3.0}}, {}))
    shutil.rmtree(tmp_path / "model")
    out = _model_dir(tmp_path, {"familiarity": {"threshold": 3.0}},
                     {"familiarity": "familiarity.npz"})
    TrainingFeatures.fit(x).save(out / "familiarity.npz")
    # the metadata names training features, but the ONNX file has no features output
    tok = orjson.loads((DEFAULT_MODEL / "tokenizer.json").read_bytes())
    _tiny_classifier(out / "model.int8.onnx", len(tok["model"]["vocab"]))
    with pytest.raises(ModelError, match="no 'features' output"):
        Detector.load(out)


def _tiny_classifier(path: Path, vocab: int, dim: int = 8, layers: int = 3) -> None:
    """Embedding -> ``layers`` LayerNorm "encoder layers" -> mean -> tanh -> 2-way Gemm head.

    The layer outputs are named as optimum names BERT's, which is how
    :func:`expose_features` finds them.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.normal(size=(vocab, dim)).astype(np.float32), "emb")]
    nodes = [helper.make_node("Gather", ["emb", "input_ids"], ["h_in"])]
    prev = "h_in"
    for i in range(layers):
        w, b = f"bert.encoder.layer.{i}.output.LayerNorm.weight", f"bert.encoder.layer.{i}.b"
        inits += [numpy_helper.from_array(rng.uniform(0.5, 1.5, dim).astype(np.float32), w),
                  numpy_helper.from_array(rng.normal(size=dim).astype(np.float32), b)]
        out = f"/bert/encoder/layer.{i}/output/LayerNorm/LayerNormalization_output_0"
        nodes += [helper.make_node("Tanh", [prev], [f"t{i}"]),
                  helper.make_node("LayerNormalization", [f"t{i}", w, b], [out], axis=-1)]
        prev = out
    inits += [numpy_helper.from_array(rng.normal(size=(2, dim)).astype(np.float32), "w"),
              numpy_helper.from_array(np.zeros(2, np.float32), "b")]
    nodes += [helper.make_node("ReduceMean", [prev], ["pooled"], axes=[1], keepdims=0),
              helper.make_node("Tanh", ["pooled"], ["act"]),
              helper.make_node("Gemm", ["act", "w", "b"], ["logits"], transB=1)]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64,
                                       ["batch_size", "seq"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", 2])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _tiny_dir(tmp_path: Path) -> tuple[Path, dict]:
    from service.training.export import expose_features, quantize_int8

    tok = orjson.loads((DEFAULT_MODEL / "tokenizer.json").read_bytes())
    out = tmp_path / "model"
    out.mkdir()
    _tiny_classifier(out / "model.onnx", len(tok["model"]["vocab"]))
    assert expose_features(out / "model.onnx") == (1, 8)  # a third of the way up 3 layers
    assert expose_features(out / "model.onnx") == (1, 8)  # a re-run replaces, not adds
    quantize_int8(out / "model.onnx", out / "model.int8.onnx")
    shutil.copy(DEFAULT_MODEL / "tokenizer.json", out / "tokenizer.json")
    meta = {"format": 1, "name": "tiny", "version": "0", "max_length": 64,
            "files": {"cpu": "model.int8.onnx", "fp32": "model.onnx",
                      "tokenizer": "tokenizer.json"}}
    (out / "crowdguard-model.json").write_bytes(orjson.dumps(meta))
    return out, meta


def test_expose_features_refuses_what_it_cannot_handle(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from service.errors import TrainingError
    from service.training.export import expose_features

    _tiny_classifier(tmp_path / "old.onnx", vocab=50)
    model = onnx.load(str(tmp_path / "old.onnx"))
    model.opset_import[0].version = 12
    onnx.save(model, str(tmp_path / "old.onnx"))
    with pytest.raises(TrainingError, match="opset 12"):
        expose_features(tmp_path / "old.onnx")
    _tiny_classifier(tmp_path / "flat.onnx", vocab=50, layers=0)
    with pytest.raises(TrainingError, match="no encoder layer outputs"):
        expose_features(tmp_path / "flat.onnx")
    _tiny_classifier(tmp_path / "three.onnx", vocab=50)
    with pytest.raises(TrainingError, match="no encoder layer 3 .it has 0 to 2"):
        expose_features(tmp_path / "three.onnx", layer=3)
    assert expose_features(tmp_path / "three.onnx", layer=0) == (0, 8)  # another layer on request
    from service.training.export import _FEATURES_PREFIX
    read = {i for n in onnx.load(str(tmp_path / "three.onnx")).graph.node
            if n.name.startswith(_FEATURES_PREFIX) for i in n.input}
    assert any("/layer.0/" in i for i in read) and not any("/layer.1/" in i for i in read)


def test_features_output_survives_quantization_and_feeds_the_distance(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")

    out, meta = _tiny_dir(tmp_path)
    graph = onnx.load(str(out / "model.onnx")).graph
    assert [o.name for o in graph.output] == ["logits", "features"]
    texts = ["the patients who walked every day slept longer", "a study of sleep and walking",
             "results were mixed across the two groups", "zebra quantum lattice vortex"]
    for precision in ("int8", "fp32"):
        det = Detector.load(out, precision=precision)
        feats = det.features(texts)
        assert feats.shape == (4, 8) and np.isfinite(feats).all()
        assert all(s.distance is None for s in det.score(texts))  # no reference yet
    # the mean leaves padding out: batched fp32 equals one text per call
    fp32 = Detector.load(out, precision="fp32", batch_size=1).features(texts)
    np.testing.assert_allclose(Detector.load(out, precision="fp32").features(texts), fp32,
                               atol=1e-5)
    # int8 layers and a 4-bit table (16 levels per row of this 8-wide toy table)
    np.testing.assert_allclose(Detector.load(out).features(texts), fp32, atol=0.15)

    TrainingFeatures.fit(fp32, k=2).save(out / "familiarity.npz")
    meta["files"]["familiarity"] = "familiarity.npz"
    meta["familiarity"] = {"threshold": 0.5, "quantile": 0.99}
    (out / "crowdguard-model.json").write_bytes(orjson.dumps(meta))
    det = Detector.load(out, precision="fp32")
    assert det.session.feature_dim == 8
    assert det.info.familiarity is not None and det.info.familiarity.threshold == 0.5
    scores = det.score(texts)
    expect = det.familiarity.distances(fp32)
    np.testing.assert_allclose([s.distance for s in scores], expect, atol=1e-5)
    # features of another model are refused at load, not per text
    TrainingFeatures.fit(np.random.default_rng(0).normal(size=(20, 5))).save(
        out / "familiarity.npz")
    with pytest.raises(ModelError, match="describes 5 features.*outputs 8"):
        Detector.load(out, precision="fp32")


def test_the_precision_setting_picks_the_file_served(tmp_path: Path, caplog, capsysbinary) -> None:
    pytest.importorskip("onnx")
    from service.cli import main
    from service.settings import load_settings

    out, _ = _tiny_dir(tmp_path)
    auto = Detector.for_settings(load_settings(model_dir=str(out), threads="1"))
    assert (auto.precision, auto.session.path.name) == ("int8", "model.int8.onnx")
    with caplog.at_level("INFO", logger="service.detector.detector"):
        fp32 = Detector.for_settings(load_settings(model_dir=str(out), precision="fp32"))
    assert (fp32.precision, fp32.session.path.name) == ("fp32", "model.onnx")
    assert "serving model.onnx with the calibration and thresholds fitted on model.int8.onnx" \
        in caplog.text
    # raw margins, as training reads them, borrow no calibration: no such line
    caplog.clear()
    with caplog.at_level("INFO", logger="service.detector.detector"):
        Detector.load(out, calibrated=False, precision="fp32")
    assert "serving model.onnx" not in caplog.text
    # the shipped default keeps int8 only: asking for fp32 fails at load, saying what to do
    with pytest.raises(ModelError, match="no fp32 model file.*precision auto"):
        Detector.for_settings(load_settings(precision="fp32"))
    # the flag reaches `score`
    data = tmp_path / "in.jsonl"
    data.write_bytes(orjson.dumps({"id": "a", "text": "the patients who walked every day "
                                   "slept longer and felt less tired during the day"}) + b"\n")
    assert main(["score", str(data), "--model", str(out), "--precision", "fp32",
                 "--log-level", "ERROR"]) == 0
    rows = [orjson.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == ["a"] and 0 <= rows[0]["p_llm"] <= 1
    np.testing.assert_allclose(rows[0]["p_llm"], fp32.score([
        "the patients who walked every day slept longer and felt less tired during the day"
    ])[0].p_llm, atol=1e-6)


def test_quantize_int8_stores_embedding_tables_in_4bit_blocks(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnx_ir")
    from service.errors import TrainingError
    from service.training.export import (EMBEDDING_BLOCK, MIN_4BIT_ROWS, expose_features,
                                         quantize_int8)

    vocab = MIN_4BIT_ROWS
    _tiny_classifier(tmp_path / "model.onnx", vocab, dim=EMBEDDING_BLOCK)
    expose_features(tmp_path / "model.onnx")
    quantize_int8(tmp_path / "model.onnx", tmp_path / "q4.onnx")
    quantize_int8(tmp_path / "model.onnx", tmp_path / "q8.onnx", embedding_bits=8)
    q4 = onnx.load(str(tmp_path / "q4.onnx"))
    tables = {t.name: t for t in q4.graph.initializer}
    gathers = [n for n in q4.graph.node if n.op_type == "GatherBlockQuantized"]
    assert len(gathers) == 1 and gathers[0].domain == "com.microsoft"
    data = tables[gathers[0].input[0]]
    assert data.data_type == onnx.TensorProto.INT4 and list(data.dims) == [vocab, EMBEDDING_BLOCK]
    assert list(tables[gathers[0].input[2]].dims) == [vocab, 1]  # one scale per block
    # converted to opset 21, not relabelled: ReduceMean takes its axes as an input now
    assert max(o.version for o in q4.opset_import if o.domain in ("", "ai.onnx")) >= 21
    reduce = next(n for n in q4.graph.node if n.op_type == "ReduceMean")
    assert len(reduce.input) == 2 and not any(a.name == "axes" for a in reduce.attribute)
    q8 = onnx.load(str(tmp_path / "q8.onnx"))
    assert not any(n.op_type == "GatherBlockQuantized" for n in q8.graph.node)
    assert len(data.raw_data) == vocab * EMBEDDING_BLOCK // 2  # two weights a byte
    assert (tmp_path / "q4.onnx").stat().st_size < 0.7 * (tmp_path / "q8.onnx").stat().st_size

    # each weight is its block's scale times a signed 4-bit integer, two a byte, low nibble
    # first, rounded to the nearest step
    from onnx import numpy_helper
    raw = np.frombuffer(data.raw_data, dtype=np.uint8)
    nibbles = np.stack([raw & 0x0F, raw >> 4], axis=1).reshape(vocab, EMBEDDING_BLOCK)
    q = nibbles.astype(np.int8) - 16 * (nibbles >= 8)
    scale = numpy_helper.to_array(tables[gathers[0].input[2]])
    original = numpy_helper.to_array(next(t for t in onnx.load(str(tmp_path / "model.onnx"))
                                          .graph.initializer if t.name == "emb"))
    err, step = np.abs(q * scale - original), np.abs(scale) + 1e-6
    # symmetric: a block's largest magnitude maps to -8, so a value of the other sign
    # as large is clipped at +7, one step off; every other one is at most half a step off
    assert np.all(err <= step) and np.all((err <= step / 2) | (q == 7))
    assert q.min() >= -8 and q.max() <= 7 and np.abs(q).max() >= 7  # the range is used

    # up to the first MatMul (the features of layer 1 of 3), the quantized graph computes
    # exactly what the fp32 graph computes with that table
    import onnxruntime as ort
    fp32 = onnx.load(str(tmp_path / "model.onnx"))
    for t in fp32.graph.initializer:
        if t.name == "emb":
            t.CopyFrom(numpy_helper.from_array((q * scale).astype(np.float32), "emb"))
    onnx.save(fp32, str(tmp_path / "dequantized.onnx"))
    ids = np.array([[1, 7, 42, vocab - 1, 5], [0, 3, 3, 250, 8]], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    outputs = {name: ort.InferenceSession(str(tmp_path / f"{name}.onnx"),
                                          providers=["CPUExecutionProvider"]).run(None, feed)
               for name in ("dequantized", "q4")}
    np.testing.assert_allclose(outputs["q4"][1], outputs["dequantized"][1], atol=1e-5)
    assert outputs["q4"][0].shape == (2, 2) and np.isfinite(outputs["q4"][0]).all()
    with pytest.raises(TrainingError, match="embedding_bits must be 4, 8 or 32"):
        quantize_int8(tmp_path / "model.onnx", tmp_path / "q3.onnx", embedding_bits=3)


def test_quantize_int8_keeps_small_embedding_tables_in_fp32(tmp_path: Path) -> None:
    """Position-sized tables are added to every token: they are not stored in 4 bits."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnx_ir")
    from onnx import numpy_helper
    from service.training.export import MIN_4BIT_ROWS, quantize_int8

    _tiny_classifier(tmp_path / "model.onnx", MIN_4BIT_ROWS - 1, dim=32)
    quantize_int8(tmp_path / "model.onnx", tmp_path / "q4.onnx")
    q4 = onnx.load(str(tmp_path / "q4.onnx"))
    assert not any(n.op_type == "GatherBlockQuantized" for n in q4.graph.node)
    gather = next(n for n in q4.graph.node if n.op_type == "Gather")
    table = next(t for t in q4.graph.initializer if t.name == gather.input[0])
    original = next(t for t in onnx.load(str(tmp_path / "model.onnx")).graph.initializer
                    if t.name == "emb")
    assert table.data_type == onnx.TensorProto.FLOAT
    np.testing.assert_array_equal(numpy_helper.to_array(table), numpy_helper.to_array(original))
    # the row limit is a parameter; embedding_bits=32 leaves every table as it is
    quantize_int8(tmp_path / "model.onnx", tmp_path / "q4all.onnx", embedding_min_rows=100)
    assert any(n.op_type == "GatherBlockQuantized"
               for n in onnx.load(str(tmp_path / "q4all.onnx")).graph.node)
    quantize_int8(tmp_path / "model.onnx", tmp_path / "q32.onnx", embedding_bits=32,
                  embedding_min_rows=100)
    q32 = onnx.load(str(tmp_path / "q32.onnx"))
    assert not any(n.op_type == "GatherBlockQuantized" for n in q32.graph.node)
    assert any(t.name == "emb" and t.data_type == onnx.TensorProto.FLOAT
               for t in q32.graph.initializer)


def test_the_shipped_default_model_has_the_check() -> None:
    det = Detector.load(DEFAULT_MODEL)
    fam = det.info.familiarity
    assert fam is not None and fam.threshold > 0 and fam.quantile == 0.99
    prose = ["The study followed nurses for years and found that those on night shifts had "
             "more sleep problems than those who worked days."]
    (score,) = det.score(prose)
    assert score.distance is not None and 0.0 < score.distance
    assert det.familiarity is not None and det.familiarity.dim == det.session.feature_dim


def test_evaluate_measures_the_check_and_record_evaluation_writes_it(tmp_path: Path,
                                                                    load_script) -> None:
    """evaluate reports the unfamiliar share and the verdicts had the check been off."""
    pytest.importorskip("onnx")
    from service.scoring import evaluate_files
    from service.training.export import expose_features

    tok = orjson.loads((DEFAULT_MODEL / "tokenizer.json").read_bytes())
    out = tmp_path / "model"
    out.mkdir()
    _tiny_classifier(out / "model.onnx", len(tok["model"]["vocab"]))
    expose_features(out / "model.onnx")
    shutil.copy(DEFAULT_MODEL / "tokenizer.json", out / "tokenizer.json")
    near = ["the patients who walked every day slept longer at night than the others did",
            "patients who walked daily slept longer than the others in the trial",
            "the trial found that walking every day helped the patients sleep",
            "those who walked each day slept a little longer at night"]
    far = ["mix the flour with three eggs and some milk, then let it rest for an hour before you "
           "fry the crepes in butter"] * 2
    meta = {"format": 1, "name": "tiny", "version": "0", "max_length": 64,
            "files": {"cpu": "model.onnx", "fp32": "model.onnx", "tokenizer": "tokenizer.json"},
            "thresholds": {"llm": 0.0, "human": 0.0}, "abstain": {"min_words": 3}}
    (out / "crowdguard-model.json").write_bytes(orjson.dumps(meta))
    feats = Detector.load(out, precision="fp32", batch_size=1).features(near + far)
    dist = TrainingFeatures.fit(feats[:4], k=1)
    dist.save(out / "familiarity.npz")
    threshold = float((dist.distances(feats[:4]).max() + dist.distances(feats[4:]).min()) / 2)
    assert dist.distances(feats[4:]).min() > dist.distances(feats[:4]).max()
    meta["files"]["familiarity"] = "familiarity.npz"
    meta["familiarity"] = {"threshold": threshold, "quantile": 0.99}
    (out / "crowdguard-model.json").write_bytes(orjson.dumps(meta))

    data = tmp_path / "eval.jsonl"
    rows = [{"text": t, "label": "human"} for t in near + far[:1]]
    rows.append({"text": far[1], "label": "llm"})
    data.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    report = evaluate_files(Detector.load(out, precision="fp32", batch_size=1), [data])
    fig = report["files"][str(data)]["all"]
    # llm threshold 0: every judged text is called llm; the check spares the far human
    # (and, the price of it, lets the far LLM text go)
    assert fig["unfamiliar_share"] == pytest.approx(2 / 6)
    assert fig["llm_verdict_fpr"] == 0.8 and fig["without_familiarity"]["llm_verdict_fpr"] == 1.0
    assert fig["llm_verdict_tpr"] == 0.0 and fig["without_familiarity"]["llm_verdict_tpr"] == 1.0
    assert fig["without_familiarity"]["uncertain_share"] == 0.0
    # the counts behind the rates, with their exact intervals, for the check on and off
    assert (fig["ci95"]["llm_verdict_fpr"]["k"], fig["ci95"]["llm_verdict_fpr"]["n"]) == (4, 5)
    off_ci = fig["without_familiarity"]["ci95"]["llm_verdict_fpr"]
    assert (off_ci["k"], off_ci["n"], off_ci["high"]) == (5, 5, 1.0)

    mod = load_script("record_evaluation")
    (out / "model.int8.onnx").symlink_to(out / "model.onnx")
    entry = mod.record(out, report, set_name="tiny held-out", model="the tiny twin",
                       note="made up for the test", command="crowdguard evaluate eval.jsonl")
    assert entry["metrics"] == fig and entry["evaluated"] == "tiny@0"
    mod.record(out, report, set_name="tiny held-out")  # same set: replaced, not added
    on_disk = orjson.loads((out / "crowdguard-model.json").read_bytes())
    assert [e["set"] for e in on_disk["evaluations"]] == ["tiny held-out"]
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "| tiny held-out | this model | 6 |" in card
    # each llm FPR with its 95% upper bound: 4 of 5 humans (check on), 5 of 5 (off)
    assert "| 0.800 (≤ 0.995) | 0.000 | 0.333 | 0.333 | 1.000 (≤ 1.000) |" in card
    # --replaces puts a new entry where an older one was; --remove drops one by name
    mod.record(out, report, set_name="second")
    mod.record(out, report, set_name="newer recipe", replaces="tiny held-out")
    on_disk = orjson.loads((out / "crowdguard-model.json").read_bytes())
    assert [e["set"] for e in on_disk["evaluations"]] == ["newer recipe", "second"]
    with pytest.raises(SystemExit, match="no evaluation named 'gone' to replace"):
        mod.record(out, report, set_name="x", replaces="gone")
    mod.remove(out, "second")
    on_disk = orjson.loads((out / "crowdguard-model.json").read_bytes())
    assert [e["set"] for e in on_disk["evaluations"]] == ["newer recipe"]
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "| newer recipe |" in card and "| second |" not in card
    with pytest.raises(SystemExit, match="no evaluation named 'second'"):
        mod.remove(out, "second")
