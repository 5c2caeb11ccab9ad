"""Weigh a two-member panel's logits by its validation texts. An experiment, not part of the service.

A panel's ``p_llm`` is the sigmoid of the plain mean of its members' calibrated
logits. This probe fits one weight ``w`` instead, ``z = w * z_b + (1 - w) * z_a``
for members ``a`` and ``b`` in the panel's order, by log loss on the validation
texts the members share (the files they were trained on, given as ``--data``;
:func:`service.training.panel.shared_validation`), over a grid of ``w`` in
[0, 1]. It then prints, for each ``--test`` file, AUROC and accuracy at
p >= 0.5 (``service.evaluation``) with the plain mean and with the fitted
weight. Verdicts are not affected: they follow each member's own thresholds.

Usage: python scripts/probe_panel_weights.py PANEL_DIR --data FILE [FILE ...]
       --test FILE [FILE ...] [--grid N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.detector import Detector  # noqa: E402
from service.detector.model_dir import load_model_info  # noqa: E402
from service.errors import CrowdguardError  # noqa: E402
from service.evaluation import accuracy, auroc  # noqa: E402
from service.records import parse_label, read_records  # noqa: E402
from service.training.panel import shared_validation  # noqa: E402


def logits(det: Detector, texts: list[str]) -> np.ndarray:
    p = np.clip(np.array([s.p_llm for s in det.score(texts)], dtype=float), 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def log_loss(z: np.ndarray, y: np.ndarray) -> float:
    # -log sigmoid(z) for y=1, -log sigmoid(-z) for y=0, computed stably
    return float(np.mean(np.logaddexp(0.0, np.where(y == 1, -z, z))))


def labelled(path: Path) -> tuple[list[str], np.ndarray]:
    texts, y = [], []
    for rec in read_records(path):
        if rec.error:
            raise SystemExit(f"{rec.where}: {rec.error}")
        texts.append(str(rec.fields.get("text", "")))
        y.append(parse_label(rec.fields.get("label", rec.fields.get("labels")),
                             source=rec.source, line=rec.line))
    return texts, np.array(y)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("panel", type=Path)
    ap.add_argument("--data", type=Path, nargs="+", required=True,
                    help="the files the members were trained on")
    ap.add_argument("--test", type=Path, nargs="+", required=True, help="labelled files")
    ap.add_argument("--grid", type=int, default=21, help="grid points for w in [0, 1]")
    args = ap.parse_args()
    try:
        info = load_model_info(args.panel)
        if len(info.members) != 2:
            raise SystemExit(f"{args.panel}: needs a panel of two members, "
                             f"not {len(info.members) or 'a single model'}")
        names = [m.path.name for m in info.members]
        metas = [m.raw for m in info.members]
        val = shared_validation(metas, args.data)
        dets = [Detector.load(args.panel / n) for n in names]
    except CrowdguardError as exc:
        raise SystemExit(str(exc)) from exc
    yv = np.array([e.label for e in val])
    za, zb = (logits(d, [e.text for e in val]) for d in dets)
    grid = np.linspace(0.0, 1.0, args.grid)
    losses = [log_loss(w * zb + (1 - w) * za, yv) for w in grid]
    w = float(grid[int(np.argmin(losses))])
    print(f"{len(val)} validation texts: log loss {losses[len(grid) // 2]:.4f} at w=0.5, "
          f"{min(losses):.4f} at w={w:.2f} (weight of {names[1]})")
    for path in args.test:
        texts, y = labelled(path)
        ta, tb = (logits(d, texts) for d in dets)
        for label, wt in (("mean", 0.5), ("fitted", w)):
            p = 1 / (1 + np.exp(-(wt * tb + (1 - wt) * ta)))
            print(f"{path.name} {label} w={wt:.2f}: AUROC {auroc(y, p):.4f}, "
                  f"accuracy {accuracy(y, p):.3f} (n={len(y)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
