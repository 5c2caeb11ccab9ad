"""How far does each way of quantizing a model move it from fp32?

An experiment, not part of the service. Copies a trained model directory
(which must still hold its fp32 ``model.onnx``) into ``--work``, rebuilds its
validation split (its seed and ``val_fraction``, from the same data files),
and for each variant of the chosen ``--set`` re-quantizes the fp32 file into
the directory's int8 file name, then scores the validation texts through the
runtime's path, as ``crowdguard train`` does. Per variant it prints the file
size, the AUROC, the share of verdicts that differ from fp32 (calibration and
thresholds fitted on that file, as training fits them), how far the raw
margins move, and the seconds the file took to score the texts.

``--set tables`` (the default): the encoder layers in 7-bit int8, as
:func:`service.training.export.quantize_int8` makes them, and the embedding
tables stored in each way. ``--set layers``: the weights of the encoder's
MatMuls either as served (int8) or in 4-bit blocks (onnxruntime's
``MatMulNBits``, int8 compute), symmetric or with a zero point per block; the
vocabulary table in 4 bits as served throughout.

Usage: python scripts/probe_quantization.py --model DIR --work DIR --data TRAIN_FILE [...] [--set tables|layers]
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.evaluation import auroc  # noqa: E402
from service.training.calibrate import _agreement, _fit, _margins  # noqa: E402
from service.training.data import load_dataset, split_validation  # noqa: E402
from service.training.export import (EMBEDDING_BLOCK, FP32_FILE, INT4_IR_VERSION,  # noqa: E402
                                     INT4_OPSET, INT8_FILE, METADATA_FILE, MIN_4BIT_ROWS,
                                     _default_opset, _quantize_embeddings_4bit,
                                     _quiet_quantizer_logs, quantize_int8)
from service.training.train import TARGET_FNR  # noqa: E402

Quantizer = Callable[[Path, Path], Path]


def layers_4bit(fp32_file: Path, out_file: Path, *, block: int, symmetric: bool) -> Path:
    """The MatMul weights in 4-bit blocks along their input axis, then the vocabulary table
    in 4 bits as :func:`quantize_int8` stores it."""
    import onnx
    import onnx.version_converter
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer)

    config = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=symmetric,
                                          accuracy_level=4, bits=4,
                                          op_types_to_quantize=("MatMul",))
    model = onnx.load(str(fp32_file))
    if _default_opset(model) < INT4_OPSET:
        model = onnx.version_converter.convert_version(model, INT4_OPSET)
    model.ir_version = max(model.ir_version, INT4_IR_VERSION)
    with tempfile.TemporaryDirectory(prefix="layers4-", dir=out_file.parent) as tmp, \
            _quiet_quantizer_logs():
        layers = Path(tmp) / "layers.onnx"
        quantizer = MatMulNBitsQuantizer(model, block_size=block, is_symmetric=symmetric,
                                         accuracy_level=4, algo_config=config)
        quantizer.process()
        quantizer.model.save_model_to_file(str(layers), use_external_data_format=False)
        _quantize_embeddings_4bit(layers, out_file, EMBEDDING_BLOCK, MIN_4BIT_ROWS)
    return out_file


#: --set -> variant name -> quantizer (rows: the smallest table stored in 4 bits)
VARIANT_SETS: dict[str, dict[str, Quantizer]] = {
    "tables": {
        "tables fp32": functools.partial(quantize_int8, embedding_bits=32),
        "tables int8": functools.partial(quantize_int8, embedding_bits=8),
        "4-bit, blocks of 128, all tables": functools.partial(
            quantize_int8, embedding_block=128, embedding_min_rows=1),
        "4-bit, blocks of 32, all tables": functools.partial(
            quantize_int8, embedding_block=32, embedding_min_rows=1),
        "4-bit, blocks of 128, vocabulary only": functools.partial(
            quantize_int8, embedding_block=128),
        "4-bit, blocks of 32, vocabulary only": functools.partial(
            quantize_int8, embedding_block=32),
    },
    "layers": {
        "int8, 7-bit (as served)": quantize_int8,
        "4-bit, symmetric, blocks of 32": functools.partial(layers_4bit, block=32,
                                                            symmetric=True),
        "4-bit, zero point, blocks of 32": functools.partial(layers_4bit, block=32,
                                                             symmetric=False),
        "4-bit, zero point, blocks of 16": functools.partial(layers_4bit, block=16,
                                                             symmetric=False),
    },
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="trained model directory")
    ap.add_argument("--work", type=Path, required=True, help="scratch copy of the directory")
    ap.add_argument("--data", nargs="+", required=True, help="the model's training files")
    ap.add_argument("--set", choices=sorted(VARIANT_SETS), default="tables",
                    help="vary the embedding tables (default) or the encoder layers")
    args = ap.parse_args()
    meta = orjson.loads((args.model / METADATA_FILE).read_bytes())
    tr = meta["training"]
    dataset = load_dataset(args.data, group_field=tr.get("group_field"))
    _, val = split_validation(dataset.examples, float(tr["val_fraction"]), int(tr["seed"]))
    texts, y = [e.text for e in val], np.array([e.label for e in val])
    if args.work.resolve() == args.model.resolve():
        ap.error("--work must not be the model directory: its int8 file is overwritten")
    shutil.copytree(args.model, args.work, dirs_exist_ok=True)
    started = time.perf_counter()
    z32 = _margins(args.work, texts, "fp32")
    seconds32 = time.perf_counter() - started
    target_fpr = float(meta["thresholds"]["target_fpr"])
    print(f"{args.model}: {len(y)} validation texts, fp32 AUROC {auroc(y, z32):.4f}, "
          f"scored in {seconds32:.0f} s")
    print(f"| {'embedding tables' if args.set == 'tables' else 'encoder layers'} | file "
          "| AUROC | verdicts differ | largest Δp | mean / 95th pct / largest Δmargin | s |")
    print("|---|---|---|---|---|---|---|")
    for name, quantize in VARIANT_SETS[args.set].items():
        out = quantize(args.work / FP32_FILE, args.work / INT8_FILE)
        started = time.perf_counter()
        z8 = _margins(args.work, texts, "int8")
        seconds = time.perf_counter() - started
        a, b, thresholds = _fit(z8, y, target_fpr, TARGET_FNR)
        agree = _agreement(z8, z32, a, b, thresholds)
        dz = np.abs(z8 - z32)
        print(f"| {name} | {out.stat().st_size / 1e6:.1f} MB | {auroc(y, z8):.4f} "
              f"| {100 * agree['verdicts_differ']:.1f}% | {agree['max_abs_dp']:.2f} "
              f"| {dz.mean():.3f} / {np.quantile(dz, 0.95):.3f} / {dz.max():.2f} | {seconds:.0f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
