"""Which of two or more model directories scores faster on this machine? Interleaved rounds.

The machines of this project change speed from minute to minute (the same
int8 file measured 40 to 64 docs/s within ten minutes), so runs of
``bench_model.py`` made one after another cannot tell two models apart. This
script loads every model once, then times them in turn, round after round,
so each round meets them all at about the same machine speed. Each model
scores the same texts through crowdguard's own path (``Detector.score``, the
CPU file, batches of ``--batch``), familiarity distance included.

Usage: python bench/compare_models.py --model DIR --model DIR [--data FILE] [--n 128]
       [--rounds 6] [--batch 32] [--threads N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_model import load_texts  # noqa: E402
from service.detector import Detector  # noqa: E402
from service.settings import cpu_count  # noqa: E402
from service.worker import SAMPLE_STREAM  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, action="append", required=True,
                    help="a model directory; give two or more")
    ap.add_argument("--data", type=Path, default=SAMPLE_STREAM)
    ap.add_argument("--n", type=int, default=128, help="texts per round and model")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=cpu_count())
    ap.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = ap.parse_args()
    if len(args.model) < 2:
        ap.error("give at least two --model directories to compare")
    texts = load_texts(args.data, args.n)
    detectors = {str(m): Detector.load(m, threads=args.threads, batch_size=args.batch)
                 for m in args.model}
    for det in detectors.values():
        det.score(texts[:args.batch])  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in detectors}
    for _ in range(args.rounds):
        for name, det in detectors.items():
            t0 = time.perf_counter()
            det.score(texts)
            rates[name].append(round(len(texts) / (time.perf_counter() - t0), 1))
    result = {
        "docs_per_s": {name: {"median": round(statistics.median(r), 1), "rounds": r}
                       for name, r in rates.items()},
        "labels": {name: det.info.label for name, det in detectors.items()},
        "n_texts": len(texts), "rounds": args.rounds, "batch": args.batch,
        "threads": args.threads, "data": args.data.name,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
