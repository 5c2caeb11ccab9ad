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
from service.detector.model_dir import logit  # noqa: E402
from service.errors import CrowdguardError  # noqa: E402
from service.evaluation import accuracy, auroc  # noqa: E402
from service.scoring import read_labelled  # noqa: E402
from service.training.panel import shared_validation  # noqa: E402


def member_logits(panel: Detector, texts: list[str]) -> np.ndarray:
    """One row per member: the logits of its calibrated ``p_llm`` (one panel pass)."""
    return np.array([[logit(m.p_llm) for m in s.members] for s in panel.score(texts)]).T


def log_loss(z: np.ndarray, y: np.ndarray) -> float:
    # -log sigmoid(z) for y=1, -log sigmoid(-z) for y=0, computed stably
    return float(np.mean(np.logaddexp(0.0, np.where(y == 1, -z, z))))


def labelled(path: Path) -> tuple[list[str], np.ndarray]:
    """Texts and labels of a labelled file (:func:`service.scoring.read_labelled`)."""
    texts, y = read_labelled(path)
    return texts, np.array(y)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("panel", type=Path)
    ap.add_argument("--data", type=Path, nargs="+", required=True,
                    help="the files the members were trained on")
    ap.add_argument("--test", type=Path, nargs="+", required=True, help="labelled files")
    ap.add_argument("--grid", type=int, default=21, help="grid points for w in [0, 1]")
    args = ap.parse_args()
    if args.grid < 2:
        ap.error("--grid needs at least 2 points")
    try:
        panel = Detector.load(args.panel)
        members = panel.info.members
        if len(members) != 2:
            raise SystemExit(f"{args.panel}: needs a panel of two members, "
                             f"not {len(members) or 'a single model'}")
        val = shared_validation([m.raw for m in members], args.data)
        tests = [(path, *labelled(path)) for path in args.test]  # bad input fails before scoring
    except CrowdguardError as exc:
        raise SystemExit(str(exc)) from exc
    names = [m.member_name for m in members]
    yv = np.array([e.label for e in val])
    za, zb = member_logits(panel, [e.text for e in val])
    grid = np.linspace(0.0, 1.0, args.grid)
    losses = [log_loss(w * zb + (1 - w) * za, yv) for w in grid]
    w = float(grid[int(np.argmin(losses))])
    print(f"{len(val)} validation texts: log loss {log_loss((za + zb) / 2, yv):.4f} at w=0.5, "
          f"{min(losses):.4f} at w={w:.2f} (weight of {names[1]})")
    for path, texts, y in tests:
        ta, tb = member_logits(panel, texts)
        for label, wt in (("mean", 0.5), ("fitted", w)):
            p = 1 / (1 + np.exp(-(wt * tb + (1 - wt) * ta)))
            print(f"{path.name} {label} w={wt:.2f}: AUROC {auroc(y, p):.4f}, "
                  f"accuracy {accuracy(y, p):.3f} (n={len(y)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
