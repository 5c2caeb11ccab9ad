"""How far does each way of storing the embedding tables move a model from fp32?

An experiment, not part of the service. Copies a trained model directory
(which must still hold its fp32 ``model.onnx``) into ``--work``, rebuilds its
validation split (its seed and ``val_fraction``, from the same data files),
and for each variant re-quantizes the fp32 file with
:func:`service.training.export.quantize_int8` (int8 encoder layers, 7-bit),
then scores the validation texts through the runtime's path, as
``crowdguard train`` does. Per variant it prints the file size, the AUROC, the
share of verdicts that differ from fp32 (calibration and thresholds fitted on
that int8 file, as training fits them) and how far the raw margins move.

Usage: python scripts/probe_embedding_quantization.py --model DIR --work DIR --data TRAIN_FILE [...]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.evaluation import auroc  # noqa: E402
from service.training.calibrate import _agreement, _fit, _margins  # noqa: E402
from service.training.data import load_dataset, split_validation  # noqa: E402
from service.training.export import (FP32_FILE, INT8_FILE, METADATA_FILE,  # noqa: E402
                                     quantize_int8)
from service.training.train import TARGET_FNR  # noqa: E402

#: name -> keyword arguments of quantize_int8 (rows: the smallest table stored in 4 bits)
VARIANTS = {
    "tables fp32": {"embedding_bits": 32},
    "tables int8": {"embedding_bits": 8},
    "4-bit, blocks of 128, all tables": {"embedding_block": 128, "embedding_min_rows": 1},
    "4-bit, blocks of 32, all tables": {"embedding_block": 32, "embedding_min_rows": 1},
    "4-bit, blocks of 128, vocabulary only": {"embedding_block": 128},
    "4-bit, blocks of 32, vocabulary only": {"embedding_block": 32},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="trained model directory")
    ap.add_argument("--work", type=Path, required=True, help="scratch copy of the directory")
    ap.add_argument("--data", nargs="+", required=True, help="the model's training files")
    args = ap.parse_args()
    meta = orjson.loads((args.model / METADATA_FILE).read_bytes())
    tr = meta["training"]
    dataset = load_dataset(args.data, group_field=tr.get("group_field"))
    _, val = split_validation(dataset.examples, float(tr["val_fraction"]), int(tr["seed"]))
    texts, y = [e.text for e in val], np.array([e.label for e in val])
    if args.work.resolve() == args.model.resolve():
        ap.error("--work must not be the model directory: its int8 file is overwritten")
    shutil.copytree(args.model, args.work, dirs_exist_ok=True)
    z32 = _margins(args.work, texts, "fp32")
    target_fpr = float(meta["thresholds"]["target_fpr"])
    print(f"{args.model}: {len(y)} validation texts, fp32 AUROC {auroc(y, z32):.4f}")
    print("| embedding tables | int8 file | AUROC | verdicts differ | largest Δp "
          "| mean / 95th pct / largest Δmargin |")
    print("|---|---|---|---|---|---|")
    for name, kwargs in VARIANTS.items():
        out = quantize_int8(args.work / FP32_FILE, args.work / INT8_FILE, **kwargs)
        z8 = _margins(args.work, texts, "int8")
        a, b, thresholds = _fit(z8, y, target_fpr, TARGET_FNR)
        agree = _agreement(z8, z32, a, b, thresholds)
        dz = np.abs(z8 - z32)
        print(f"| {name} | {out.stat().st_size / 1e6:.1f} MB | {auroc(y, z8):.4f} "
              f"| {100 * agree['verdicts_differ']:.1f}% | {agree['max_abs_dp']:.2f} "
              f"| {dz.mean():.3f} / {np.quantile(dz, 0.95):.3f} / {dz.max():.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
