"""`crowdguard score`, `evaluate` and `model` on the shipped model, with good and bad input."""

from __future__ import annotations

import json

import orjson
import pytest

from service.cli import main
from service.settings import DEFAULT_MODEL_DIR

PROSE = ("The people who walked each day slept a bit longer and said they were less tired "
         "during the day, and nobody in the study had any serious problem from the walking.")


def _score(tmp_path, capsysbinary, content: bytes, name: str) -> tuple[int, list[dict], str]:
    path = tmp_path / name
    path.write_bytes(content)
    code = main(["score", str(path), "--model", str(DEFAULT_MODEL_DIR), "--log-level", "ERROR"])
    out, err = capsysbinary.readouterr()
    rows = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    return code, rows, err.decode()


def test_score_jsonl_keeps_order_ids_and_never_drops(tmp_path, capsysbinary):
    lines = [
        orjson.dumps({"id": "a", "text": PROSE}),
        orjson.dumps({"id": "b", "text": "   "}),
        b"{broken json",
        orjson.dumps({"id": "d"}),
        orjson.dumps({"id": "e", "text": 42}),
        orjson.dumps({"id": "f", "text": "Too short."}),
        orjson.dumps({"id": "g", "text": PROSE * 2000}),  # ~360k characters
        b'{"id": "h", "text": "\xff\xfe"}',
    ]
    code, rows, err = _score(tmp_path, capsysbinary, b"\n".join(lines) + b"\n", "in.jsonl")
    assert code == 0
    assert [r["id"] for r in rows] == ["a", "b", None, "d", "e", "f", "g", None]
    by = {i: r for i, r in enumerate(rows)}
    assert 0 <= by[0]["p_llm"] <= 1 and by[0]["verdict"] in ("llm", "human", "uncertain")
    for i, why in [(1, "empty text"), (2, "not valid JSON"), (3, "missing field"),
                   (4, "not a string"), (5, "too short"), (7, "not UTF-8")]:
        assert by[i]["verdict"] == "uncertain", by[i]
        assert any(why in r for r in by[i]["reasons"]), (why, by[i])
    assert any("first" in r and "tokens" in r for r in by[6]["reasons"])
    assert "scored 8 records" in err


def test_score_names_a_chat_assistants_reply_formula(tmp_path, capsysbinary):
    reply = "Sure, here's a summary of the study: " + PROSE
    lines = [orjson.dumps({"id": "r", "text": reply}), orjson.dumps({"id": "p", "text": PROSE})]
    code, rows, _ = _score(tmp_path, capsysbinary, b"\n".join(lines) + b"\n", "in.jsonl")
    assert code == 0 and rows[0]["verdict"] == "llm"
    assert rows[0]["reasons"][0] == "opens like a chat assistant's reply: \"Sure, here's\""
    assert 0 <= rows[0]["p_llm"] <= 1  # still the model's own score
    assert not any("chat assistant" in r for r in rows[1]["reasons"])


def test_score_weighs_task_text_and_keystrokes_as_the_stream_does(tmp_path, capsysbinary):
    reply = "Sure, here's a summary of the study: " + PROSE  # llm whatever the score
    source = "Task: summarize this. " + reply
    typed = [["key", ch, 1_700_000_000_000 + 250 * i] for i, ch in enumerate(reply)]
    lines = [orjson.dumps({"id": "plain", "text": reply}),
             orjson.dumps({"id": "copied", "text": reply, "source_text": source}),
             orjson.dumps({"id": "own", "text": reply, "source_text": "An unrelated task."}),
             orjson.dumps({"id": "typed", "text": reply, "events": typed})]
    code, rows, _ = _score(tmp_path, capsysbinary, b"\n".join(lines) + b"\n", "in.jsonl")
    by = {r["id"]: r for r in rows}
    assert code == 0 and by["plain"]["verdict"] == "llm" and by["own"]["verdict"] == "llm"
    assert by["copied"]["verdict"] == "uncertain"
    assert by["copied"]["reasons"][-1].startswith("100% of the answer repeats the task text")
    assert by["copied"]["p_llm"] == by["plain"]["p_llm"]
    # a formula typed by hand is the worker's own words (service.signals.fuse)
    assert by["typed"]["verdict"] == "uncertain"
    assert "typed, not pasted" in by["typed"]["reasons"][-1]


def test_score_csv_with_quoted_newlines_and_bad_quoting(tmp_path, capsysbinary):
    good = f'id,text\n1,"{PROSE}\nsecond line, with a comma"\n'.encode()
    code, rows, _ = _score(tmp_path, capsysbinary, good, "in.csv")
    assert code == 0 and rows[0]["id"] == "1" and rows[0]["p_llm"] is not None
    bad = b'id,text\n1,"ok"\n2,"broken "quote" here\n'
    path = tmp_path / "bad.csv"
    path.write_bytes(bad)
    code = main(["score", str(path), "--model", str(DEFAULT_MODEL_DIR)])
    _, err = capsysbinary.readouterr()
    assert code == 2 and "bad.csv:" in err.decode() and "quoting" in err.decode()


def test_missing_model_dir_fails_fast_with_advice(tmp_path, capsys):
    f = tmp_path / "x.jsonl"
    f.write_text('{"text": "hello"}\n')
    assert main(["score", str(f), "--model", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "crowdguard train" in err


def test_evaluate_reports_per_file_and_group(tmp_path, capsysbinary):
    rows = [{"text": PROSE + f" Note {i}.", "label": "human" if i % 2 else "llm",
             "group": "a" if i < 6 else "b"} for i in range(12)]
    f = tmp_path / "ev.jsonl"
    f.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    assert main(["evaluate", str(f), "--model", str(DEFAULT_MODEL_DIR)]) == 0
    out, err = capsysbinary.readouterr()
    report = json.loads(out)
    entry = report["files"][str(f)]
    assert entry["all"]["n"] == 12 and set(entry["groups"]) == {"a", "b"}
    for key in ("accuracy", "f1", "auroc", "tpr_at_1pct_fpr", "tpr_at_5pct_fpr",
                "llm_verdict_fpr", "uncertain_share", "ece", "ci95"):
        assert key in entry["all"]
    fpr = entry["all"]["ci95"]["llm_verdict_fpr"]
    assert fpr["n"] == 6 and fpr["k"] == round(6 * entry["all"]["llm_verdict_fpr"])
    assert fpr["low"] <= entry["all"]["llm_verdict_fpr"] <= fpr["high"]
    # a headline per file on stderr, the false-positive rate with its bound
    line = err.decode().strip().splitlines()[-1]
    acc, auc = entry["all"]["ci95"]["accuracy"], entry["all"]["ci95"]["auroc"]
    assert line.startswith(f"{f}: n=12 (6 human, 6 llm), accuracy {entry['all']['accuracy']:.3f} "
                           f"[{acc['low']:.3f}, {acc['high']:.3f}], AUROC ")
    assert f"[{auc['low']:.3f}, {auc['high']:.3f}]" in line
    assert (f"llm verdict on {fpr['k']} of 6 human texts "
            f"(95% upper bound {100 * fpr['high']:.2f}%)") in line


def test_evaluate_unknown_label_names_file_and_line(tmp_path, capsys):
    f = tmp_path / "ev.jsonl"
    f.write_text(json.dumps({"text": PROSE, "label": "llm"}) + "\n"
                 + json.dumps({"text": PROSE, "label": "robot"}) + "\n")
    assert main(["evaluate", str(f), "--model", str(DEFAULT_MODEL_DIR)]) == 2
    assert "ev.jsonl:2: unknown label 'robot'" in capsys.readouterr().err


def _edited_default_member(tmp_path, meta_edit):
    """A copy of the default panel's first member (ONNX files linked) with edited metadata."""
    import shutil

    from service.detector import load_model_info

    single = load_model_info(DEFAULT_MODEL_DIR).singles[0].path
    d = tmp_path / "model"
    shutil.copytree(single, d, ignore=shutil.ignore_patterns("*.onnx"))
    for f in single.glob("*.onnx"):
        (d / f.name).symlink_to(f)
    meta = json.loads((d / "crowdguard-model.json").read_text())
    meta_edit(meta)
    (d / "crowdguard-model.json").write_text(json.dumps(meta))
    return d


@pytest.mark.parametrize("meta_edit, message", [
    (lambda m: m.pop("files"), "lacks 'files'"),
    (lambda m: m.update(format=99), "format 99"),
    (lambda m: m["files"].update(cpu="missing.onnx"), "missing"),
    (lambda m: m.update(thresholds={"llm": 0.2, "human": 0.8}), "thresholds must satisfy"),
])
def test_broken_model_directories_are_explained(tmp_path, meta_edit, message):
    from service.detector import load_model_info
    from service.errors import ModelError

    d = _edited_default_member(tmp_path, meta_edit)
    with pytest.raises(ModelError, match=message):
        load_model_info(d)


def test_a_texts_score_does_not_depend_on_its_batch():
    from service.detector import Detector

    texts = [PROSE, "Short answer, typed quickly: walking helps sleep a bit and that's it really.",
             PROSE * 6, "In conclusion, the findings underscore the importance of daily walks."]
    det = Detector.load(DEFAULT_MODEL_DIR, batch_size=32)
    together = [s.p_llm for s in det.score(texts)]
    alone = [det.score([t])[0].p_llm for t in texts]
    assert together == alone


def test_a_model_with_an_operator_this_onnxruntime_lacks_says_what_to_upgrade(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from service.detector.backend import create_session
    from service.errors import BackendError

    graph = helper.make_graph(
        [helper.make_node("NoSuchOperator", ["x"], ["y"], domain="com.microsoft")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    onnx.save(model, str(tmp_path / "new.onnx"))
    with pytest.raises(BackendError, match=r"lacks an operator .* onnxruntime >= 1\.20"):
        create_session(tmp_path / "new.onnx", device="cpu", threads=1)


@pytest.mark.parametrize("flags, machine, expected", [
    ("fpu sse2 avx2 avx512f avx512bw", "x86_64", True),  # Skylake-SP: no VNNI
    ("fpu sse2 avx2 avx512f avx512_vnni", "x86_64", False),
    ("fpu sse2 avx2 avx_vnni", "x86_64", False),  # Alder Lake and later
    (None, "x86_64", None),  # no flags line to read
    ("fp asimd asimddp", "aarch64", False),  # ARM: no saturating int8 path
])
def test_which_cpus_saturate_int8_with_8_bit_weights(flags, machine, expected):
    from service.detector.backend import int8_saturates

    cpuinfo = "processor\t: 0\nmodel name\t: some CPU\n" + (
        f"flags\t\t: {flags}\n" if flags else "")
    assert int8_saturates(cpuinfo, machine) is expected


def test_8_bit_int8_weights_are_refused_where_they_would_saturate(tmp_path, caplog):
    from service.detector import Detector, load_model_info
    from service.detector.backend import int8_saturates
    from service.detector.detector import _check_int8_weights
    from service.errors import ModelError

    d = _edited_default_member(tmp_path, lambda m: m["quantization"].update(reduce_range=False))
    info = load_model_info(d)
    with pytest.raises(ModelError, match=r"8-bit weights .* --int8-weight-bits 7"):
        _check_int8_weights(info, saturates=True)
    _check_int8_weights(info, saturates=False)  # a VNNI CPU serves it
    _check_int8_weights(info, saturates=None)  # flags unknown: served, with a warning
    assert "flags cannot be read" in caplog.text
    seven = load_model_info(DEFAULT_MODEL_DIR).singles[0]
    _check_int8_weights(seven, saturates=True)  # 7-bit: served anywhere
    # the loader applies the check with this CPU's flags
    if int8_saturates():
        with pytest.raises(ModelError, match="8-bit weights"):
            Detector.load(d)
    else:
        assert Detector.load(d).info.raw["quantization"]["reduce_range"] is False


def test_training_refuses_8_bit_int8_weights_where_they_would_saturate():
    from service.errors import TrainingError
    from service.training.train import _check_cpu_for_weight_bits

    with pytest.raises(TrainingError, match=r"need a CPU with VNNI .* --int8-weight-bits 7"):
        _check_cpu_for_weight_bits(8, saturates=True)
    _check_cpu_for_weight_bits(8, saturates=False)  # VNNI or ARM
    _check_cpu_for_weight_bits(8, saturates=None)  # flags unknown: the loader warns later
    _check_cpu_for_weight_bits(7, saturates=True)  # 7-bit weights: any CPU


@pytest.mark.parametrize("quantization, bits", [
    ({"reduce_range": True}, 7), ({"reduce_range": False}, 8), ({}, 7), (None, 7)])
def test_the_recorded_int8_weight_width(quantization, bits):
    from service.detector.model_dir import int8_weight_bits

    meta = {} if quantization is None else {"quantization": quantization}
    assert int8_weight_bits(meta) == bits


def test_model_describes_what_it_loaded_and_scores_a_check_text(tmp_path, capsysbinary):
    from service.detector import load_model_info
    from service.detector.model_dir import CHAR_NGRAMS_KIND, veto_tag
    from service.model_report import CHECK_TEXT

    code = main(["model", "--model", str(DEFAULT_MODEL_DIR), "--log-level", "ERROR"])
    out, err = capsysbinary.readouterr()
    assert code == 0
    report = orjson.loads(out)
    info = load_model_info(DEFAULT_MODEL_DIR)
    assert (report["model"], report["kind"], report["rule"]) == (info.label, "panel", "all-agree")
    assert report["precision"] == "int8"
    assert report["validation"]["llm_verdict_fpr"] == info.validation["llm_verdict_fpr"]
    assert [m["model"] for m in report["models"]] == [m.label for m in info.members]
    for shown, member in zip(report["models"], info.members, strict=True):
        assert shown["file"] == member.files["cpu"]
        assert shown["file_bytes"] == member.file("cpu").stat().st_size
        assert shown["thresholds"]["llm"] == member.thresholds.llm
        assert shown["familiarity_threshold"] == (
            None if member.familiarity is None else member.familiarity.threshold)
        assert shown["validation"]["n"] == member.validation["n"]
        if member.raw.get("kind") == CHAR_NGRAMS_KIND:  # numpy, no ONNX session
            assert shown["providers"] == [] and "int8_weight_bits" not in shown
        else:
            assert shown["int8_weight_bits"] == 7
            assert shown["providers"] == ["CPUExecutionProvider"]
    files = [f for f in DEFAULT_MODEL_DIR.rglob("*") if f.is_file()]
    assert report["size_bytes"] == sum(f.stat().st_size for f in files)
    assert f"{info.label} loads here (panel, cpu, int8" in err.decode()
    assert report["veto"] == list(info.veto)
    assert report["text_only_veto"] == list(info.text_only_veto)
    assert all(f"{name}{veto_tag(name, info.veto, info.text_only_veto)}: " in err.decode()
               for name in info.veto)
    # the check text gets what `score` gives it
    check = report["check"]
    _, rows, _ = _score(tmp_path, capsysbinary, orjson.dumps({"text": CHECK_TEXT}), "c.jsonl")
    assert (check["p_llm"], check["verdict"], check["reasons"]) == \
        (rows[0]["p_llm"], rows[0]["verdict"], rows[0]["reasons"])
    assert check["seconds"] > 0 and check["tokens"] > 15


def test_model_fails_fast_with_the_loaders_advice(tmp_path, capsysbinary):
    d = _edited_default_member(tmp_path, lambda m: m["files"].update(cpu="gone.onnx"))
    code = main(["model", "--model", str(d), "--log-level", "ERROR"])
    out, err = capsysbinary.readouterr()
    assert code == 2 and out == b""
    assert "cpu file 'gone.onnx' named in the metadata is missing" in err.decode()


@pytest.mark.parametrize("saturates", [False, True])
def test_model_reports_8_bit_weights_and_whether_this_cpu_serves_them(
        tmp_path, capsysbinary, monkeypatch, saturates):
    import service.detector.detector as detector_module
    import service.model_report as report_module

    monkeypatch.setattr(detector_module, "int8_saturates", lambda: saturates)
    monkeypatch.setattr(report_module, "int8_saturates", lambda: saturates)
    d = _edited_default_member(tmp_path, lambda m: m["quantization"].update(reduce_range=False))
    code = main(["model", "--model", str(d), "--log-level", "ERROR"])
    out, err = capsysbinary.readouterr()
    if saturates:
        assert code == 2 and "--int8-weight-bits 7" in err.decode()
    else:
        report = orjson.loads(out)
        assert code == 0 and report["kind"] == "model" and report["int8_saturates_here"] is False
        assert report["rule"] is None and report["validation"] is None and report["veto"] is None
        assert [m["int8_weight_bits"] for m in report["models"]] == [8]


def test_version_flag_prints_the_installed_version(capsys):
    from importlib.metadata import version

    import service

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"crowdguard {service.__version__}"
    assert version("crowdguard") == service.__version__


def test_score_warns_with_file_and_line_when_source_text_is_not_a_string(tmp_path, capsysbinary):
    lines = [orjson.dumps({"id": "ok", "text": PROSE, "source_text": "Summarize the study."}),
             orjson.dumps({"id": "odd", "text": PROSE, "source_text": 5})]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    code = main(["score", str(path), "--model", str(DEFAULT_MODEL_DIR), "--log-level", "WARNING"])
    out, err = capsysbinary.readouterr()
    rows = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    assert code == 0 and [r["id"] for r in rows] == ["ok", "odd"]  # scored, without the field
    assert rows[1]["p_llm"] == rows[0]["p_llm"]
    warned = [line for line in err.decode().splitlines() if "field not used" in line]
    assert len(warned) == 1 and "in.jsonl:2" in warned[0] and "is int, not a string" in warned[0]


def test_headline_of_validation_figures_with_one_class() -> None:
    from service.cli import _evaluation_line
    from service.evaluation import summarize

    line = _evaluation_line(summarize([0, 0, 0], [0.1, 0.2, 0.9], ["human", "human", "llm"]))
    assert line.startswith("n=3 (3 human, 0 llm), accuracy 0.667 [")
    assert "AUROC" not in line  # one class: no ranking figure, no crash
    assert "llm verdict on 1 of 3 human texts (95% upper bound " in line
    assert line.endswith("uncertain 0.0%")
