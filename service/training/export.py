"""Writing the model directory: ONNX (fp32 and int8), tokenizer, metadata, model card.

* :func:`export_onnx` turns a fine-tuned Hugging Face checkpoint into
  ``model.onnx`` (fp32) with optimum-onnx's ``main_export``;
* :func:`expose_features` adds a second graph output, ``features`` (the mean
  of an early encoder layer's hidden states), for the familiarity check;
* :func:`quantize_int8` makes ``model.int8.onnx`` with onnxruntime dynamic
  quantization (int8 weights, activations quantized at run time) and the
  embedding tables in 4-bit blocks;
* :func:`save_tokenizer` writes ``tokenizer.json`` (tokenizers fast format)
  with truncation at the model's ``max_length``;
* :func:`write_metadata` and :func:`write_model_card` write
  ``crowdguard-model.json`` (read by the runtime) and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from datetime import datetime, timezone

from ..detector.model_dir import FORMAT, int8_weight_bits, veto_tag
from ..errors import TrainingError
from ..evaluation import binomial_interval, fpr_resolvable

__all__ = [
    "EMBEDDING_BLOCK",
    "MIN_4BIT_ROWS",
    "FP32_FILE",
    "INT8_FILE",
    "TOKENIZER_FILE",
    "METADATA_FILE",
    "CARD_FILE",
    "export_onnx",
    "expose_features",
    "quantize_int8",
    "save_tokenizer",
    "metadata_header",
    "write_metadata",
    "render_model_card",
    "write_model_card",
]

log = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
METADATA_FILE = "crowdguard-model.json"
CARD_FILE = "MODEL_CARD.md"


def export_onnx(checkpoint: Path, out_file: Path, *, opset: int | None = None) -> Path:
    """Export the sequence-classification checkpoint in ``checkpoint`` to ``out_file`` (fp32).

    The export is validated by optimum against the PyTorch outputs; only the
    ``.onnx`` file is kept (optimum's copies of config and tokenizer files are
    dropped).
    """
    try:
        from optimum.exporters.onnx import main_export
    except ImportError as exc:
        raise TrainingError("optimum-onnx is not installed; pip install 'crowdguard[train]'")\
            from exc
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="onnx-", dir=out_file.parent) as tmp:
        try:
            main_export(str(checkpoint), output=tmp, task="text-classification", opset=opset,
                        device="cpu", local_files_only=True, library_name="transformers")
        except Exception as exc:  # optimum raises many kinds; all mean the export failed
            raise TrainingError(f"ONNX export of {checkpoint} failed: {exc}") from exc
        produced = Path(tmp) / "model.onnx"
        if not produced.is_file():
            raise TrainingError(f"ONNX export wrote no model.onnx into {tmp}")
        if any(p.name.endswith(".onnx_data") or p.name.endswith(".data")
               for p in Path(tmp).iterdir()):
            raise TrainingError("ONNX export used external data (model > 2 GB); not supported")
        shutil.move(str(produced), out_file)
    log.info("exported %s (%.1f MB)", out_file, out_file.stat().st_size / 1e6)
    return out_file


#: Node and initializer names of the features subgraph start with this (so a re-run replaces it).
_FEATURES_PREFIX = "crowdguard_features"
_LAYER_OUTPUT = re.compile(r"/encoder/layer\.(\d+)/output/LayerNorm/")


def expose_features(onnx_file: Path, layer: int | None = None) -> tuple[int, int]:
    """Add graph output ``features``: the masked mean of an early encoder layer's hidden states.

    The layer is the one a third of the way up (layer 2 of MiniLM-L6's 6,
    layer 4 of a 12-layer base), found by the output names of its final
    LayerNorm (``.../encoder/layer.N/output/LayerNorm/...``), the names
    optimum's export keeps from BERT's modules (checked here on MiniLM; other
    encoders with the same module names work the same way). Padding is left
    out of the mean through ``attention_mask``. Needs opset 13 or newer (optimum
    exports newer). The file is rewritten in place, before quantization,
    so the int8 file has the output too; a features subgraph from an earlier
    run is replaced. ``layer`` picks another encoder layer (0 is the first).
    Returns ``(layer, dim)``.
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise TrainingError("the onnx package is missing; pip install 'crowdguard[train]'") from exc
    import numpy as np

    from ..detector.familiarity import FEATURES_OUTPUT

    model = onnx.load(str(onnx_file))
    graph = model.graph
    for node in [n for n in graph.node if n.name.startswith(_FEATURES_PREFIX)
                 or FEATURES_OUTPUT in n.output]:
        graph.node.remove(node)
    for init in [i for i in graph.initializer if i.name.startswith(_FEATURES_PREFIX)]:
        graph.initializer.remove(init)
    for out in [o for o in graph.output if o.name == FEATURES_OUTPUT]:
        graph.output.remove(out)
    layers: dict[int, str] = {}
    for node in graph.node:
        for name in node.output:
            found = _LAYER_OUTPUT.search(name)
            if found and node.op_type in ("LayerNormalization", "Add"):
                layers[int(found.group(1))] = name
    if not layers:
        raise TrainingError(f"{onnx_file}: no encoder layer outputs (.../encoder/layer.N/output/"
                            "LayerNorm/...) found; the familiarity check needs a BERT-like graph")
    if layer is None:
        layer = sorted(layers)[len(layers) // 3]
    elif layer not in layers:
        raise TrainingError(f"{onnx_file}: no encoder layer {layer} (it has {min(layers)} to "
                            f"{max(layers)})")
    hidden = layers[layer]
    dim = next((int(init.dims[0]) for init in graph.initializer
                if init.name.endswith(f"layer.{layer}.output.LayerNorm.weight")), 0)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        raise TrainingError(f"{onnx_file} uses opset {opset}; the features output needs 13 or "
                            "newer (re-export with optimum's default opset)")
    p = _FEATURES_PREFIX
    graph.initializer.extend([
        numpy_helper.from_array(np.array([-1], dtype=np.int64), f"{p}_axis_last"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), f"{p}_axis_seq"),
        numpy_helper.from_array(np.array(1e-6, dtype=np.float32), f"{p}_eps"),
    ])
    graph.node.extend([
        helper.make_node("Cast", ["attention_mask"], [f"{p}_mask"], to=TensorProto.FLOAT,
                         name=f"{p}_cast"),
        helper.make_node("Unsqueeze", [f"{p}_mask", f"{p}_axis_last"], [f"{p}_mask3"],
                         name=f"{p}_unsqueeze"),
        helper.make_node("Mul", [hidden, f"{p}_mask3"], [f"{p}_masked"], name=f"{p}_mul"),
        helper.make_node("ReduceSum", [f"{p}_masked", f"{p}_axis_seq"], [f"{p}_sum"],
                         keepdims=0, name=f"{p}_sum_hidden"),
        helper.make_node("ReduceSum", [f"{p}_mask3", f"{p}_axis_seq"], [f"{p}_count"],
                         keepdims=0, name=f"{p}_sum_mask"),
        helper.make_node("Max", [f"{p}_count", f"{p}_eps"], [f"{p}_count_safe"],
                         name=f"{p}_max"),
        helper.make_node("Div", [f"{p}_sum", f"{p}_count_safe"], [FEATURES_OUTPUT],
                         name=f"{p}_div"),
    ])
    graph.output.append(helper.make_tensor_value_info(
        FEATURES_OUTPUT, TensorProto.FLOAT, ["batch_size", dim or None]))
    onnx.save(model, str(onnx_file))
    log.info("exposed the mean of encoder layer %d of %d (%d values per text) as output %r",
             layer, len(layers), dim, FEATURES_OUTPUT)
    return layer, dim


def _below_warning(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


#: onnxruntime's 4-bit quantizer logs a line for every graph node at INFO.
_CHATTY_LOGGERS = ("onnxruntime.quantization.matmul_nbits_quantizer",)


@contextlib.contextmanager
def _quiet_quantizer_logs() -> Iterator[None]:
    """Drop onnxruntime's quantizer INFO records; warnings and our own records pass.

    Its dynamic quantizer logs straight on the root logger: a filter there drops
    those (a logger filter only sees records created by that logger, so records
    of every named logger, ours included, pass through untouched). Its 4-bit
    quantizer logs on a named logger, raised to WARNING meanwhile.
    """
    root = logging.getLogger()
    chatty = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [c.level for c in chatty]
    root.addFilter(_below_warning)
    for c in chatty:
        c.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeFilter(_below_warning)
        for c, level in zip(chatty, levels):
            c.setLevel(level)


#: Embedding tables are stored in 4-bit blocks of this many values along the hidden axis.
EMBEDDING_BLOCK = 32
#: Tables with fewer rows stay in fp32: in BERT-like encoders these are the position and
#: token-type tables, small, and added to every token, so their rounding would not average out.
MIN_4BIT_ROWS = 4096
#: The first ONNX opset and IR version with int4 tensors.
INT4_OPSET, INT4_IR_VERSION = 21, 10


def quantize_int8(fp32_file: Path, out_file: Path, *, per_channel: bool = True,
                  reduce_range: bool = True, embedding_bits: int = 4,
                  embedding_block: int = EMBEDDING_BLOCK,
                  embedding_min_rows: int = MIN_4BIT_ROWS) -> Path:
    """Dynamic int8 quantization of ``fp32_file`` into ``out_file``.

    Weights of MatMul become int8 (activations are quantized at run time).
    The embedding tables (the Gathers) become 4-bit blocks of
    ``embedding_block`` values with one scale each (onnxruntime's
    ``GatherBlockQuantized``), int8 with ``embedding_bits=8``, or stay fp32
    with ``embedding_bits=32``. The graph is first pre-processed (shape
    inference and onnxruntime's basic optimizations), as onnxruntime
    recommends before quantizing.

    ``reduce_range`` keeps the weights in 7 bits, as onnxruntime's
    documentation advises for x86 CPUs without VNNI (AVX2 only): there its
    uint8 x int8 kernels add pairs of products in saturating 16-bit
    arithmetic, which full 8-bit weights can overflow. Measured on this
    project's AVX2 machine with ``bench/bench_quantization.py``:
    all-mpnet-base-v2 fell from AUROC 1.000 (fp32) to 0.77 with 8-bit
    weights and kept 0.997 with 7-bit ones. Where the CPU has VNNI, 8-bit
    weights follow fp32 more closely: on the eight multilingual-e5-small fold
    models of GPTurk's inductive split, the test margins' sign changed against
    fp32 in 26 of 8 x 232 scores with 7 bits and in 7 with 8 bits
    (``train --int8-weight-bits 8``; the loader refuses such a file on an x86
    CPU without VNNI).

    4-bit embeddings: a lookup table only dequantizes the rows it reads, so no
    rounding accumulates in a product. Only vocabulary-sized tables (at least
    ``embedding_min_rows`` rows) are stored so; the position and token-type tables
    stay fp32. Measured with ``scripts/probe_quantization.py`` on the
    MiniLM twin without Llama-2 of model 0.4.0 (371 validation texts): 4-bit
    blocks of 128 on all three tables moved the margins 0.24 from fp32 on
    average and changed 4.6% of the verdicts; int8 tables 0.04 and 1.1%; blocks
    of 32 on the token table alone 0.05 and 0.5%, at 19.3 MB against int8
    tables' 23.1. 4-bit MatMul weights (block-wise, onnxruntime's ``MatMulNBits``)
    in symmetric blocks break e5-small-en (AUROC 0.66, 92% of verdicts changed);
    with a zero point per block of 16 they keep it (0.4% changed) but save only
    4.5 MB and scored slower than fp32 (``scripts/probe_quantization.py --set
    layers``), so the encoder layers stay int8.
    """
    if embedding_bits not in (4, 8, 32):
        raise TrainingError(f"embedding_bits must be 4, 8 or 32 (got {embedding_bits})")
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.registry import IntegerOpsRegistry
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise TrainingError("onnxruntime quantization tools are missing; "
                            "pip install onnxruntime onnx") from exc
    ops = [op for op in IntegerOpsRegistry if embedding_bits == 8 or op != "Gather"]
    fp32_file, out_file = fp32_file.resolve(), out_file.resolve()
    # the pre-processing writes scratch files into the working directory: keep them in tmp
    with tempfile.TemporaryDirectory(prefix="quant-", dir=out_file.parent) as tmp, \
            contextlib.chdir(tmp), _quiet_quantizer_logs():
        source = fp32_file
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(fp32_file), str(prepared), skip_symbolic_shape=False)
            source = prepared
        except Exception as exc:  # pre-processing is an optimisation; quantize without it
            log.warning("quantization pre-processing failed (%s); quantizing the raw graph", exc)
        int8_file = out_file if embedding_bits != 4 else Path(tmp) / "int8.onnx"
        try:
            quantize_dynamic(source, int8_file, per_channel=per_channel,
                             reduce_range=reduce_range, weight_type=QuantType.QInt8,
                             op_types_to_quantize=ops,
                             extra_options={"MatMulConstBOnly": True})
        except Exception as exc:
            raise TrainingError(f"int8 quantization of {fp32_file} failed: {exc}") from exc
        if embedding_bits == 4:
            _quantize_embeddings_4bit(int8_file, out_file, embedding_block, embedding_min_rows)
    log.info("quantized %s (%.1f MB)", out_file, out_file.stat().st_size / 1e6)
    return out_file


def _default_opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _quantize_embeddings_4bit(in_file: Path, out_file: Path, block: int, min_rows: int) -> None:
    """Store the vocabulary tables of ``in_file`` in symmetric 4-bit blocks.

    Runs inside :func:`quantize_int8`'s :func:`_quiet_quantizer_logs`.
    """
    try:
        import onnx
        import onnx.version_converter
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer)
    except ImportError as exc:
        raise TrainingError("4-bit embedding quantization needs onnx and onnx-ir: "
                            "pip install 'crowdguard[train]'") from exc
    config = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=True,
                                          op_types_to_quantize=("Gather",),
                                          quant_axes=(("Gather", 1),), bits=4)
    try:
        model = onnx.load(str(in_file))
        rows = {t.name: t.dims[0] for t in model.graph.initializer if t.dims}
        small = [n.name for n in model.graph.node
                 if n.op_type == "Gather" and rows.get(n.input[0], min_rows) < min_rows]
        # int4 tensors need opset 21: convert properly first (ops such as ReduceMean
        # changed their signature since the exporter's opset), rather than let the
        # quantizer merely relabel the opset
        if _default_opset(model) < INT4_OPSET:
            model = onnx.version_converter.convert_version(model, INT4_OPSET)
        model.ir_version = max(model.ir_version, INT4_IR_VERSION)
        quantizer = MatMulNBitsQuantizer(model, block_size=block, is_symmetric=True,
                                         algo_config=config, nodes_to_exclude=small)
        quantizer.process()
        quantizer.model.save_model_to_file(str(out_file), use_external_data_format=False)
    except Exception as exc:
        raise TrainingError(f"4-bit quantization of the embedding tables of {in_file} failed: "
                            f"{exc}") from exc


def save_tokenizer(tokenizer: Any, out_file: Path, max_length: int) -> Path:
    """Save a transformers fast tokenizer as ``tokenizer.json``, truncating at ``max_length``.

    Padding is left off: the runtime pads each batch to its longest text.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TrainingError("the base model has no fast tokenizer (tokenizer.json); "
                            "use a base with a tokenizers-format tokenizer")
    backend.enable_truncation(max_length=max_length)
    backend.no_padding()
    backend.save(str(out_file))
    return out_file


def metadata_header(name: str, version: str, kind: str | None = None) -> dict[str, Any]:
    """The first keys of every ``crowdguard-model.json`` that train and panel write:
    format, kind (absent for an encoder model), name, version and the UTC time now."""
    return {"format": FORMAT, **({"kind": kind} if kind else {}), "name": name,
            "version": version,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def write_metadata(out_dir: Path, meta: dict[str, Any]) -> Path:
    """Write ``crowdguard-model.json`` (indented, key order kept)."""
    path = out_dir / METADATA_FILE
    path.write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2) + b"\n")
    return path


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _fpr_upper_bound(m: dict[str, Any], n_human: Any) -> float | None:
    """The exact 95% upper bound of ``m``'s ``llm_verdict_fpr``.

    From its ``ci95`` entry where the figures have one, or else (figures recorded
    before ``evaluate`` reported intervals) from the rate and ``n_human``, whose
    product is the count the rate was computed from.
    """
    ci = (m.get("ci95") or {}).get("llm_verdict_fpr")
    if ci:
        return ci.get("high")
    rate = m.get("llm_verdict_fpr")
    if rate is None or not n_human:
        return None
    bounds = binomial_interval(round(float(rate) * int(n_human)), int(n_human))
    return None if bounds is None else bounds[1]


def _fpr_cell(m: dict[str, Any], n_human: Any) -> str:
    """``llm_verdict_fpr`` with its 95% upper bound: ``0.000 (≤ 0.004)``."""
    high = _fpr_upper_bound(m, n_human)
    return _fmt(m.get("llm_verdict_fpr")) + ("" if high is None else f" (≤ {_fmt(high)})")


def _evaluations(evals: list[dict[str, Any]]) -> str:
    """The held-out evaluations recorded in the metadata (``evaluations``), as a table."""
    if not evals:
        return ""
    keys = [("n", "n"), ("accuracy", "accuracy"), ("auroc", "AUROC"),
            ("tpr_at_5pct_fpr", "TPR@5%FPR"), ("llm_verdict_fpr", "`llm` FPR"),
            ("llm_verdict_tpr", "`llm` TPR"), ("uncertain_share", "uncertain"),
            ("unfamiliar_share", "unfamiliar"), ("off_llm_verdict_fpr", "`llm` FPR, check off")]
    head = "| held-out set | model | " + " | ".join(k[1] for k in keys) + " |"
    rows = [head, "|" + "---|" * (len(keys) + 2)]
    for e in evals:
        m = dict(e.get("metrics", {}))
        cells = {k: _fmt(m.get(k)) for k, _ in keys}
        cells["llm_verdict_fpr"] = _fpr_cell(m, m.get("n_human"))
        off = m.get("without_familiarity")
        cells["off_llm_verdict_fpr"] = _fpr_cell(off, m.get("n_human")) if off else "n/a"
        rows.append(f"| {e.get('set')} | {e.get('model', 'this model')} | "
                    + " | ".join(cells[k] for k, _ in keys) + " |")
    notes = "\n".join(f"- {e['set']}: {e['note']}" for e in evals if e.get("note"))
    cmds = "\n".join(f"    {e['command']}" for e in evals if e.get("command"))
    return ("\n## Held-out evaluation\n\nTexts that no part of training, calibration or "
            "threshold choice saw. \"unfamiliar\": share beyond the familiarity threshold "
            "(verdict `uncertain`); \"check off\": the `llm` FPR had the check been off. "
            "\"(≤ x)\": the exact 95% upper bound of that FPR from the number of human texts "
            "(Clopper-Pearson); with no accusation in n texts it is about 3.7 / n, so a set "
            "shows an FPR under 1% only from 368 human texts on.\n\n"
            + "\n".join(rows) + "\n\n" + notes
            + ("\n\nCommands:\n\n" + cmds if cmds else "") + "\n")


def _resolution_note(val: dict[str, Any], thr: dict[str, Any]) -> str:
    n_human, target = val.get("n_human"), thr.get("target_fpr")
    if n_human is None or target is None or fpr_resolvable(int(n_human), float(target)):
        return ""
    return "; too few to show that rate, so the threshold lies above all their scores"


def _familiarity_line(fam: dict[str, Any] | None) -> str:
    if not fam:
        return "- No familiarity check: texts unlike the training data are judged like the rest.\n"
    return (f"- Familiarity: a text whose feature distance (one minus its mean cosine similarity "
            f"to the {fam.get('k')} nearest of {fam.get('train_texts')} training texts, on the "
            f"{fam.get('features')}) exceeds {_fmt(fam.get('threshold'), 4)}, the "
            f"{_fmt(fam.get('quantile'), 2)} quantile of the validation texts' distances "
            f"(median {_fmt(fam.get('validation_median'), 4)}), gets `uncertain`: it is unlike "
            f"the training data.\n")


def _validation_cell(val: dict[str, Any], key: str) -> str:
    """One validation figure; the ``llm`` FPR with its 95% upper bound."""
    if key == "llm_verdict_fpr":
        return _fpr_cell(val, val.get("n_human"))
    return _fmt(val.get(key))


#: The cards' words on verdicts across kinds of CPU (docs/detector-results.md#avx2-portability).
CPU_KIND_NOTE = (
    "A verdict is reproducible on one kind of CPU, not across kinds: onnxruntime rounds "
    "differently on x86 CPUs with VNNI and without it (AVX2 only), so a text on the edge of a "
    "threshold can get another verdict (the default 0.10.0 on 5,885 held-out texts, "
    "2026-12-07: no `llm` verdict changed, at least 12 moved between `human` and `uncertain`).")


def render_panel_card(meta: dict[str, Any]) -> str:
    """The card (Markdown) of a panel directory: its members, rule and figures."""
    val = meta.get("validation") or {}
    members = meta.get("members", [])
    versions = meta.get("member_versions", {})
    veto, text_only = meta.get("veto", []), meta.get("text_only_veto", [])
    rows = "\n".join(f"| `{m}`{veto_tag(m, veto, text_only)} | {versions.get(m, 'n/a')} | "
                      f"[card]({m}/{CARD_FILE}) |" for m in members)
    veto_note = "" if not veto else (
        f", the veto member{'s' if len(veto) > 1 else ''} "
        f"{', '.join(f'`{m}`' for m in veto)} left out: a veto member's verdict counts under "
        "the rule, its score does not, so it can block a verdict but never moves `p_llm`")
    text_only_note = "" if not text_only else (
        f" but the text-only veto member{'s' if len(text_only) > 1 else ''} "
        f"{', '.join(f'`{m}`' for m in text_only)}, which block{'' if len(text_only) > 1 else 's'}"
        " verdicts on the text alone,")
    keys = [("n", "texts"), ("auroc", "AUROC"), ("tpr_at_5pct_fpr", "TPR at 5% FPR"),
            ("llm_verdict_fpr",
             "share of human texts with verdict `llm` (and its 95% upper bound)"),
            ("llm_verdict_tpr", "share of LLM texts with verdict `llm`"),
            ("uncertain_share", "share `uncertain`"), ("ece", "expected calibration error")]
    cross = meta.get("cross_fit")
    if cross and val:
        grouped = (f"whole `{cross['group_field']}` groups" if cross.get("group_field")
                   else "stratified by label")
        figures = (f"\n## Cross-fitting\n\nMade by `crowdguard train --folds {cross['folds']}`"
                   f" (seed {cross.get('seed')}): the {cross.get('texts')} training texts were "
                   f"cut into {cross['folds']} folds ({grouped}), and each member was trained "
                   "without one of them. Each member scored the fold it held out; Platt "
                   "calibration, thresholds and the familiarity threshold were fitted once on "
                   "those pooled out-of-fold scores, and every member carries them. The "
                   "figures below are those out-of-fold scores, each text by the one member "
                   "that never saw it, counted by the thresholds alone; the same texts chose "
                   "the thresholds, so they are optimistic, and the panel, which joins all "
                   "members, is not measured by them. "
                   f"{_fmt(cross.get('seconds'), 0)} s of training in all.\n\n"
                   "| figure | value |\n|---|---|\n"
                   + "\n".join(f"| {label} | {_validation_cell(val, k)} |"
                               for k, label in keys) + "\n")
    else:
        figures = ("\n## Validation\n\nOn the validation texts that no member trained on "
                   "(for members trained on the same files and seed, the split they share). "
                   "They set the members' calibration and thresholds, so these figures say how "
                   "the thresholds combine, not how the panel does on new writing. Verdicts are "
                   "counted as served, abstentions and the familiarity check included; the "
                   "members' cards count verdicts by their thresholds alone.\n\n"
                   "| figure | value |\n|---|---|\n"
                   + "\n".join(f"| {label} | {_validation_cell(val, k)} |" for k, label in keys)
                   + "\n" if val else
                   "\nNo validation figures: the panel was built without `--data`.\n")
    return (f"# Model card: {meta.get('name')} {meta.get('version')} (panel)\n\n"
            f"A panel of {len(members)} models, each trained by `crowdguard train` and "
            f"described in its own card. Every text is scored by every member. Rule "
            f"`{meta.get('rule')}`: the verdict is `llm` only when every member's own "
            f"thresholds say `llm`, `human` only when every member's say `human`, and "
            f"`uncertain` otherwise; a text too short, not English, or unlike the training "
            f"data of any member gets `uncertain`. A large paste from outside the task "
            f"(keystroke evidence) turns `uncertain` into `llm` only when every member"
            f"{text_only_note} scores the text at or above the midpoint of its own thresholds. "
            f"`p_llm` is the sigmoid "
            f"of the mean of the "
            f"members' calibrated logits{veto_note}. Built {meta.get('created_at')} by "
            f"`crowdguard {'train --folds' if cross else 'panel'}`."
            f"\n\n| member | model | card |\n|---|---|---|\n{rows}\n{figures}"
            f"{_evaluations(meta.get('evaluations', []))}"
            "\n## Limitations\n\nBy its rule, the panel's verdict on a text is `llm` only where "
            "every member's own verdict is `llm` (a chat assistant's reply formula aside, which "
            "gives `llm` in any model; a large paste from outside the task lowers every "
            "member's bar alike), so on any set of texts it accuses no more honest writers "
            "than its most cautious member, and detects no more LLM texts than its least eager "
            "one. "
            "Everything else each member's card says about its data and its limits holds for "
            "the panel. Inference costs the sum of the members' time. " + CPU_KIND_NOTE + "\n")


def render_char_ngrams_card(meta: dict[str, Any]) -> str:
    """The card (Markdown) of a char n-gram model (``train --base char-ngrams``)."""
    val = meta.get("validation") or {}
    tr = meta.get("training") or {}
    thr = meta.get("thresholds") or {}
    cal = meta.get("calibration") or {}
    grams = meta.get("ngrams") or {}
    abstain = meta.get("abstain") or {}
    lo, hi = (grams.get("range") or [None, None])[:2]
    data_rows = "\n".join(
        f"| `{d['file']}` | {d['records']} | `{d['sha256'][:16]}…` |" for d in tr.get("data", []))
    metrics = [("AUROC", val.get("auroc")), ("TPR at 5% FPR", val.get("tpr_at_5pct_fpr")),
               ("share of human texts with verdict `llm` (and its 95% upper bound)",
                _fpr_cell(val, val.get("n_human")) if val else None),
               ("share of LLM texts with verdict `llm`", val.get("llm_verdict_tpr")),
               ("share `uncertain`", val.get("uncertain_share")),
               ("expected calibration error (10 bins)", val.get("ece"))]
    searched = ", ".join(f"C = {x['C']:g}: {x['validation_log_loss']:.4f}"
                         for x in grams.get("searched", []))
    a, b = float(cal.get("a", 1.0)), float(cal.get("b", 0.0))
    return f"""# {meta.get('name')} {meta.get('version')} (character n-grams)

Generated by `crowdguard train --base char-ngrams` on {meta.get('created_at')}. Figures below
come from `{METADATA_FILE}`, which the runtime reads.

## Intended use

A second opinion of another kind beside fine-tuned encoders: as a panel's
veto member (`crowdguard panel --veto`) it can keep the panel from accusing a
text, never raise its score. Alone it is weaker than the encoders on writing
unlike its training data; do not serve it alone.

## Model

- TF-IDF of character {lo}-{hi}-grams within words ({grams.get('kept')} n-grams seen in at
  least {grams.get('min_df')} training texts), sublinear counts, unit length, and a logistic
  regression; the first {meta.get('max_length')} characters of a text are read.
- Penalty chosen by log loss on the validation texts: {searched}; kept C = {grams.get('C', float('nan')):g}.
- File: `{(meta.get('files') or {}).get('cpu')}` (runs in numpy on the CPU; no tokenizer, no ONNX).

## Training data

| file | records | sha256 |
|---|---|---|
{data_rows}

{_split_line(tr)}
identical texts kept once.{_repair_line(tr)} {_fmt(tr.get('seconds'), 0)} s in all.

## Validation figures

Held-out validation texts ({val.get('n')}: {val.get('n_human')} human, {val.get('n_llm')} LLM).
The same texts chose the penalty, calibration and thresholds, so these figures are optimistic.

| metric | value |
|---|---|
{chr(10).join(f"| {k} | {_fmt(v)} |" for k, v in metrics)}

## Calibration and thresholds

- Calibration: platt scaling of the margin z: p = sigmoid({a:.4f} · z {'-' if b < 0 else '+'} {abs(b):.4f}).
- Verdict `llm` when p ≥ {_fmt(thr.get('llm'), 4)}, `human` when p ≤ {_fmt(thr.get('human'), 4)},
  `uncertain` in between; abstention below {abstain.get('min_words')} words or an English
  score of {abstain.get('min_english')}.
{_evaluations(meta.get('evaluations', []))}
## Limitations

- It reads spelling and word forms, not meaning: a topic or a vocabulary
  common in one class of its training data moves its score.
- Measured as a veto beside MiniLM, not alone, on held-out writing
  (docs/detector-results.md#char-ngram-veto in the crowdguard repository).
- English only.
"""


def render_model_card(meta: dict[str, Any]) -> str:
    """The model card (Markdown) for the metadata ``meta`` (a panel's: :func:`render_panel_card`)."""
    if meta.get("kind") == "panel":
        return render_panel_card(meta)
    if meta.get("kind") == "char-ngrams":
        return render_char_ngrams_card(meta)
    val = meta.get("validation", {})
    tr = meta.get("training", {})
    thr = meta.get("thresholds", {})
    cal = meta.get("calibration", {})
    agree = meta.get("agreement_int8_fp32", {})
    abstain = meta.get("abstain", {})
    files = meta.get("files", {})
    data_rows = "\n".join(
        f"| `{d['file']}` | {d['records']} | `{d['sha256'][:16]}…` |" for d in tr.get("data", []))
    metrics = [
        ("accuracy (p ≥ 0.5)", val.get("accuracy")),
        ("F1 (LLM class)", val.get("f1")),
        ("AUROC", val.get("auroc")),
        ("TPR at 1% FPR", val.get("tpr_at_1pct_fpr")),
        ("TPR at 5% FPR", val.get("tpr_at_5pct_fpr")),
        ("share of human texts with verdict `llm` (and its 95% upper bound)",
         _fpr_cell(val, val.get("n_human")) if val else None),
        ("share of LLM texts with verdict `llm`", val.get("llm_verdict_tpr")),
        ("share `uncertain`", val.get("uncertain_share")),
        ("expected calibration error (10 bins)", val.get("ece")),
    ]
    metric_rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in metrics)
    base = meta.get("base", {})
    a, b = float(cal.get("a", 1.0)), float(cal.get("b", 0.0))
    labels = ", ".join(f"`{x}`" for x in meta.get("labels", []))
    cpu_is_int8 = files.get("cpu") != files.get("fp32")
    if cpu_is_int8:
        quant = meta.get("quantization") or {}
        bits = "7-bit weights, so that CPUs without VNNI do not saturate" \
            if int8_weight_bits(meta) == 7 else ("8-bit weights, which need a CPU with VNNI "
                                                 "(or ARM): it refuses to load on other x86 CPUs")
        if quant.get("embedding_bits") == 4:
            bits += f"; embedding tables in 4-bit blocks of {quant.get('embedding_block')}"
            if quant.get("embedding_min_rows"):
                bits += f" (tables under {quant['embedding_min_rows']} rows kept in fp32)"
        file_line = f"`{files.get('cpu')}` (int8, dynamic quantization, {bits}; CPU default), "
    else:
        file_line = ("no int8 file (dynamic int8 quantization broke this model, see "
                     "\"int8 vs fp32\"; CPU serves fp32), ")
    if files.get("fp32"):
        file_line += f"`{files.get('fp32')}` (fp32; GPU path), "
    else:
        file_line += ("no fp32 file (kept out of git for size: on CUDA the int8 file runs, "
                      "`crowdguard train` writes `model.onnx` for a faster GPU path), ")
    nonnative = ("\n  The familiarity check gives `uncertain` to kinds of writing unlike the "
                 "training data;\n  it need not catch non-native writing in a genre the "
                 "training data holds." if meta.get("familiarity") else "")
    refinished = (f" (steps after export re-run by `crowdguard refinish` on "
                  f"{meta['refinished_at']})" if meta.get("refinished_at") else "")
    file_line += f"`{files.get('tokenizer')}`"
    if files.get("familiarity"):
        file_line += (f", `{files['familiarity']}` (the training texts' features, for the "
                      "familiarity check)")
    file_line += "."
    return f"""# {meta.get('name')} {meta.get('version')}

Generated by `crowdguard train` on {meta.get('created_at')}{refinished}. Figures below come
from `{METADATA_FILE}`, which the runtime reads.

## Intended use

Flags crowd-worker answers (English prose, a paragraph or more) that were
probably written by a large language model, so that a person can review them
and per-worker LLM-use rates can be tracked. A verdict is evidence for review,
**not** proof: do not reject work or sanction a worker on a single verdict.

## Model

- Base encoder: `{base.get('name')}` ({base.get('package') or 'local directory'}), fine-tuned
  for two labels ({labels}), at most {meta.get('max_length')} tokens per text
  (longer texts are truncated).
- Files: {file_line}

## Training data

| file | records | sha256 |
|---|---|---|
{data_rows}

{_split_line(tr)}
identical texts kept once.{_repair_line(tr)} {tr.get('epochs')} epochs, learning rate {tr.get('lr')}, batch
size {tr.get('batch_size')}, {_fmt(tr.get('seconds'), 0)} s of training on CPU.{_weights_line(tr)}{_head_line(tr)}{_teacher_line(tr)}

## Validation figures

Held-out validation texts ({val.get('n')}: {val.get('n_human')} human,
{val.get('n_llm')} LLM), scored with the {'int8' if cpu_is_int8 else 'fp32'} {'fold models' if tr.get('folds') else 'model'} and calibrated
probabilities. The same texts chose the calibration and thresholds, so these
figures are optimistic; evaluate on independent data before relying on them.

| metric | value |
|---|---|
{metric_rows}

## Calibration and thresholds

- Calibration: {cal.get('method')} scaling of the raw margin
  z = logit(llm) − logit(human): p = sigmoid({a:.4f} · z {'-' if b < 0 else '+'} {abs(b):.4f}).
- Verdict `llm` when p ≥ {_fmt(thr.get('llm'), 4)} (chosen for at most
  {_fmt(thr.get('target_fpr'))} of the {val.get('n_human')} validation human texts flagged{_resolution_note(val, thr)}), `human` when
  p ≤ {_fmt(thr.get('human'), 4)} (at most 5% of validation LLM texts let through, and
  never above 0.5), `uncertain` in between.
- Abstention: texts with fewer than {abstain.get('min_words')} words or an English
  score below {abstain.get('min_english')} get no verdict.
{_familiarity_line(meta.get('familiarity'))}
## int8 vs fp32

On the {agree.get('n')} validation texts the int8 and fp32 models give different
verdicts for a share of {_fmt(agree.get('verdicts_differ'))} of texts; the largest
difference of calibrated probability is {_fmt(agree.get('max_abs_dp'), 4)}.
{_evaluations(meta.get('evaluations', []))}

## Limitations

- **Non-native English writers**: detectors of this kind flag non-native
  English writing as LLM-written more often than native writing, and the
  training data may not represent such writers. Unless the held-out evaluation
  holds a set of their writing, this model was not measured on it. Treat
  verdicts on their texts with extra care.{nonnative}
- **Short texts** carry little signal; below the abstention length no verdict
  is given, and texts just above it are less reliable than long ones.
- **Domain and generator shift**: accuracy holds for texts and LLMs like the
  training data; other tasks, newer models, paraphrasing or deliberate
  editing lower it. Re-validate on your own labelled sample.
- **Calibration** was fitted on a small validation set; probabilities are
  approximate, particularly near 0 and 1.
- English only; other languages are out of scope.
- **CPU kind**: {CPU_KIND_NOTE}
"""


def _split_line(training: dict[str, Any]) -> str:
    """The card's words on what was held out: a validation share, or folds (cross-fitting)."""
    tr = training
    if tr.get("folds"):
        grouped = f"whole `{tr['group_field']}` groups" if tr.get("group_field") else \
            "stratified by label"
        return (f"Member {tr.get('fold')} of a cross-fitted panel (`--folds {tr['folds']}`, "
                f"{grouped}, seed {tr.get('seed')}):\ntrained on {tr.get('train_records')} "
                f"texts, all but fold {tr.get('fold')}. Calibration, thresholds, the "
                "familiarity threshold\nand the validation figures below come from the "
                f"out-of-fold scores of all {tr['folds']} members ({tr.get('val_records')} "
                "texts, each\nscored by the member that held it out);")
    return (f"{tr.get('train_records')} texts for training and {tr.get('val_records')} held "
            f"out for\nvalidation (stratified by label, `val_fraction` {tr.get('val_fraction')}, "
            f"seed {tr.get('seed')});")


def _repair_line(training: dict[str, Any]) -> str:
    """The card's words on the glued-word repair; silent for models trained before it."""
    n = training.get("line_break_repaired")
    if n is None:
        return ""
    return (f" Words glued where line breaks were lost (DetectRL's `themodel`) were split\n"
            f"in {n} texts before training (`service.text.LineBreakRepair`).")


def _weights_line(training: dict[str, Any]) -> str:
    """The card's words on per-file loss weights (``train --balance-sources``), if any."""
    weights = training.get("source_weights")
    if not weights:
        return ""
    each = ", ".join(f"`{name}` {w:.3g}" for name, w in weights.items())
    return (f"\nEach file weighed the same in the loss (`--balance-sources`); weight per "
            f"example: {each}.")


def _head_line(training: dict[str, Any]) -> str:
    """The card's words on the head fitted before fine-tuning (``train --head-epochs``)."""
    n = training.get("head_epochs")
    if not n:
        return ""
    return (f"\nThe classifier head was first fitted on the frozen encoder's features for {n} "
            f"passes (`--head-epochs`, LP-FT), then the whole model was fine-tuned.")


def _teacher_line(training: dict[str, Any]) -> str:
    """The card's words on the teacher it learned from (``train --teacher``), if any."""
    t = training.get("teacher")
    if not t:
        return ""
    return (f"\nDistilled from the teacher {t.get('name')} {t.get('version')} (`--teacher`): "
            f"each training text's loss took {t.get('weight')} of its weight from the "
            f"teacher's calibrated score, at temperature {t.get('temperature')}."
            + (f" {t['splices']} unlabelled splices of two training texts each (`--splices`) "
               "were learned from the teacher alone." if t.get("splices") else ""))


def write_model_card(out_dir: Path, meta: dict[str, Any]) -> Path:
    """Write ``MODEL_CARD.md`` for ``meta`` into ``out_dir``."""
    path = out_dir / CARD_FILE
    path.write_text(render_model_card(meta), encoding="utf-8")
    return path
