"""Average the fp32 weights of two models fine-tuned from the same base (a weight soup).

An experiment, not part of the service. ``A`` and ``B`` are model directories
written by ``crowdguard train`` from the same base encoder (with their fp32
``model.onnx``). ``--out`` becomes a copy of ``A`` whose ``model.onnx`` holds
``alpha * A + (1 - alpha) * B`` for every floating-point weight; integer
constants must be equal in both. ``A``'s int8 file is not copied, so the new
directory does not load until its steps after export are re-run: its
calibration, thresholds and familiarity fit are still ``A``'s. Re-run them with
``crowdguard refinish --model OUT --data A's training files``, which rebuilds
``A``'s validation split. (When ``B`` was trained with another seed, part of
that split was ``B``'s training data, so the thresholds come out optimistic;
rankings, AUROC and TPR at fixed FPR, are not affected.)

Usage: python scripts/probe_weight_soup.py A B --out DIR [--alpha 0.5]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.training.export import FP32_FILE, INT8_FILE  # noqa: E402


def soup(a: Path, b: Path, out: Path, alpha: float) -> int:
    """Write the soup into ``out``; return the number of weights averaged."""
    import onnx
    from onnx import numpy_helper

    for d in (a, b):
        if not (d / FP32_FILE).is_file():
            raise SystemExit(f"{d} has no {FP32_FILE}: a soup needs the fp32 export that "
                             "`crowdguard train` writes")
    model_a = onnx.load(a / FP32_FILE)
    model_b = onnx.load(b / FP32_FILE)
    weights_b = {t.name: t for t in model_b.graph.initializer}
    if sorted(weights_b) != sorted(t.name for t in model_a.graph.initializer):
        raise SystemExit(f"{a} and {b} do not hold the same weights: not the same base?")
    averaged = 0
    for tensor in model_a.graph.initializer:
        xa = numpy_helper.to_array(tensor)
        xb = numpy_helper.to_array(weights_b[tensor.name])
        if xa.shape != xb.shape or xa.dtype != xb.dtype:
            raise SystemExit(f"{tensor.name}: {xa.shape} {xa.dtype} against {xb.shape} {xb.dtype}")
        if xa.dtype.kind != "f":
            if not np.array_equal(xa, xb):
                raise SystemExit(f"{tensor.name}: integer constants differ")
            continue
        mixed = (alpha * xa + (1.0 - alpha) * xb).astype(xa.dtype)
        tensor.CopyFrom(numpy_helper.from_array(mixed, tensor.name))
        averaged += 1
    shutil.copytree(a, out, ignore=shutil.ignore_patterns(INT8_FILE))
    onnx.save(model_a, out / FP32_FILE)
    return averaged


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="model directory (its other files are copied)")
    ap.add_argument("b", type=Path, help="model directory fine-tuned from the same base")
    ap.add_argument("--out", type=Path, required=True, help="new directory to write")
    ap.add_argument("--alpha", type=float, default=0.5, help="weight of A (default 0.5)")
    args = ap.parse_args()
    if not 0.0 <= args.alpha <= 1.0:
        ap.error("--alpha must be in [0, 1]")
    if args.out.exists():
        ap.error(f"{args.out} exists")
    n = soup(args.a, args.b, args.out, args.alpha)
    print(f"{n} weights averaged (alpha {args.alpha}) into {args.out}; now run "
          f"crowdguard refinish --model {args.out} --data <{args.a}'s training files>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
