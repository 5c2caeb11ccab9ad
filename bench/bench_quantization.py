"""int8 against fp32 on this machine's CPU: 8-bit against 7-bit (``reduce_range``) weights.

Quantizes a model directory's ``model.onnx`` twice with crowdguard's own
:func:`~service.training.export.quantize_int8` (per-channel, dynamic), once
with full 8-bit weights and once with 7-bit ones, and scores the same labelled
texts with fp32 and with both int8 files through ``Detector.margins`` (raw
margins, one text per call as the runtime scores int8). Reports, per variant:
AUROC, how many texts change the sign of their margin against fp32, and the
mean and largest margin difference. It also records whether the CPU has VNNI:
without it (AVX2 only) onnxruntime's int8 kernels saturate on 8-bit weights.

Usage: python bench/bench_quantization.py --model DIR --data FILE [--n 500] [--seed 0]
       [--threads N] [--out bench/results/quantization-NAME.json]
``--data`` is labelled (``label``/``labels``: human|llm, real|synthetic); ``--n``
texts are drawn from it at random (seeded). Needs the ``train`` extra (onnx).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.detector import Detector  # noqa: E402
from service.evaluation import auroc  # noqa: E402
from service.settings import cpu_count  # noqa: E402
from service.training.data import load_dataset  # noqa: E402
from service.training.export import (FP32_FILE, INT8_FILE, TOKENIZER_FILE,  # noqa: E402
                                     quantize_int8, write_metadata)

VARIANTS = {"int8_8bit": False, "int8_7bit_reduce_range": True}


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="model directory with model.onnx")
    ap.add_argument("--data", type=Path, required=True, help="labelled JSON/JSONL/CSV")
    ap.add_argument("--n", type=int, default=500, help="texts drawn at random (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=cpu_count())
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not (args.model / FP32_FILE).is_file():
        ap.error(f"{args.model} has no {FP32_FILE}: this compares int8 files made from it")

    ds = load_dataset([args.data])
    idx = np.random.default_rng(args.seed).permutation(len(ds.examples))
    if args.n:
        idx = idx[: args.n]
    texts = [ds.examples[i].text for i in idx]
    y = np.array([ds.examples[i].label for i in idx])
    flags = cpu_flags()
    report: dict = {"model": str(args.model), "data": args.data.name, "n": len(texts),
                    "n_llm": int(y.sum()), "threads": args.threads,
                    "cpu": {"machine": platform.machine(),
                            "avx2": "avx2" in flags, "avx512_vnni": "avx512_vnni" in flags,
                            "avx_vnni": "avx_vnni" in flags},
                    "variants": {}}
    with tempfile.TemporaryDirectory(prefix="bench-quant-") as tmp:
        work = Path(tmp)
        (work / FP32_FILE).symlink_to((args.model / FP32_FILE).resolve())
        shutil.copy(args.model / TOKENIZER_FILE, work / TOKENIZER_FILE)
        meta = json.loads((args.model / "crowdguard-model.json").read_text())
        meta["files"] = {"cpu": FP32_FILE, "fp32": FP32_FILE, "tokenizer": TOKENIZER_FILE}
        meta.pop("familiarity", None)  # margins only: the feature distribution is not needed
        write_metadata(work, meta)
        t0 = time.perf_counter()
        z_fp32 = Detector.load(work, calibrated=False, precision="fp32",
                               threads=args.threads).margins(texts)
        report["fp32"] = {"auroc": round(auroc(y, z_fp32), 4),
                          "seconds": round(time.perf_counter() - t0, 1)}
        print(f"fp32: AUROC {report['fp32']['auroc']}", file=sys.stderr)
        meta["files"]["cpu"] = INT8_FILE
        write_metadata(work, meta)
        for name, reduce_range in VARIANTS.items():
            quantize_int8(work / FP32_FILE, work / INT8_FILE, per_channel=True,
                          reduce_range=reduce_range)
            z = Detector.load(work, calibrated=False, precision="int8",
                              threads=args.threads).margins(texts)
            diff = np.abs(z - z_fp32)
            report["variants"][name] = {
                "auroc": round(auroc(y, z), 4),
                "sign_flips_vs_fp32": int(((z > 0) != (z_fp32 > 0)).sum()),
                "mean_abs_margin_diff": round(float(diff.mean()), 3),
                "max_abs_margin_diff": round(float(diff.max()), 3),
                "size_mb": round((work / INT8_FILE).stat().st_size / 1e6, 1)}
            print(f"{name}: {report['variants'][name]}", file=sys.stderr)
    text = json.dumps(report, indent=2) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
