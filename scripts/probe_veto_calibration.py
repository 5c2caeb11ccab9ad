"""Let a panel's veto member move ``p_llm``: how calibration and ranking change. An experiment, not part of the service.

A panel's ``p_llm`` is the sigmoid of the mean of its scoring members'
calibrated logits; a veto member (``crowdguard panel --veto``) votes under the
all-agree rule but is left out of it. So a text the veto member keeps from
``llm`` can still carry a high ``p_llm``. This probe scores a panel's shared
validation texts (the files its members were trained on, given as ``--data``;
:func:`service.training.panel.shared_validation`) and each ``--test`` file
once, and compares four ways to make ``p_llm`` from the scoring members' mean
logit ``z`` and the veto member's logit ``v``:

* ``served``: ``sigmoid(z)``, as the panel serves it;
* ``served+platt``: ``sigmoid(a * z + b)``, Platt scaling fitted on the
  validation texts (ranking unchanged);
* ``stacked``: ``sigmoid(a * z + c * v + b)``, logistic regression on the
  validation texts (L2 penalty ``--l2`` on ``a`` and ``c``);
* ``capped``: ``sigmoid(min(z, v))``: the veto member caps the score.

For each it prints AUROC (on the logits, so that scores rounded to 1.0 do not
tie), expected calibration error, accuracy at p >= 0.5 and the mean ``p_llm``
of the human texts (``service.evaluation``). Validation
figures of the fitted forms are out of fold (``--folds``); the test files are
scored with the fit on all validation texts. Verdicts are not affected: they
follow each member's own thresholds.

Usage: python scripts/probe_veto_calibration.py PANEL_DIR --data FILE [FILE ...]
       --test FILE [FILE ...] [--l2 X] [--folds K]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from probe_panel_weights import member_logits  # noqa: E402

from service.detector import Detector  # noqa: E402
from service.errors import CrowdguardError  # noqa: E402
from service.evaluation import accuracy, auroc, expected_calibration_error  # noqa: E402
from service.scoring import read_labelled  # noqa: E402
from service.settings import cpu_count  # noqa: E402
from service.training.panel import shared_validation  # noqa: E402

FORMS = ("served", "served+platt", "stacked", "capped")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iters: int = 100) -> np.ndarray:
    """Weights of ``sigmoid(x @ w[:-1] + w[-1])`` by Newton's method; ``l2`` spares the bias."""
    x1 = np.c_[x, np.ones(len(x))]
    w = np.zeros(x1.shape[1])
    pen = np.r_[np.full(x.shape[1], l2), 0.0]
    for _ in range(iters):
        p = _sigmoid(x1 @ w)
        grad = x1.T @ (p - y) + pen * w
        hess = (x1 * (p * (1 - p))[:, None]).T @ x1 + np.diag(pen) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return w


def features(form: str, z: np.ndarray, v: np.ndarray) -> np.ndarray | None:
    """The inputs a fitted form regresses on; ``None`` for the fixed forms."""
    return {"served+platt": z[:, None], "stacked": np.c_[z, v]}.get(form)


def fixed(form: str, z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The logit of a fixed form."""
    return z if form == "served" else np.minimum(z, v)


def figures(y: np.ndarray, s: np.ndarray) -> str:
    """Figures of logits ``s``: AUROC on ``s`` itself, so that probabilities rounded to
    1.0 in floating point do not tie; the rest on ``sigmoid(s)``."""
    a = auroc(y, s)
    p = _sigmoid(s)
    human = p[y == 0]
    return (f"AUROC {'-' if a is None else f'{a:.4f}'}, "
            f"ECE {expected_calibration_error(y, p):.3f}, "
            f"accuracy {accuracy(y, p):.3f}, mean p_llm of humans "
            f"{'-' if not human.size else f'{human.mean():.3f}'} (n={len(y)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("panel", type=Path)
    ap.add_argument("--data", type=Path, nargs="+", required=True,
                    help="the files the members were trained on")
    ap.add_argument("--test", type=Path, nargs="+", required=True, help="labelled files")
    ap.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the stacked weights")
    ap.add_argument("--folds", type=int, default=10, help="folds for out-of-fold validation")
    args = ap.parse_args()
    if args.folds < 2 or args.l2 < 0:
        ap.error("--folds needs at least 2 and --l2 must not be negative")
    try:
        panel = Detector.load(args.panel, threads=cpu_count())
        info = panel.info
        if len(info.veto) != 1:
            raise SystemExit(f"{args.panel}: needs a panel with one veto member, "
                             f"not {len(info.veto)}")
        names = [m.member_name for m in info.members]
        veto = names.index(info.veto[0])
        scoring = [i for i in range(len(names)) if i != veto]
        val = shared_validation([m.raw for m in info.members], args.data)
        tests = [(path, *read_labelled(path)) for path in args.test]  # bad input fails first
    except CrowdguardError as exc:
        raise SystemExit(str(exc)) from exc

    def zv(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        logits = member_logits(panel, texts)
        return logits[scoring].mean(axis=0), logits[veto]

    yv = np.array([e.label for e in val])
    z, v = zv([e.text for e in val])
    fold = np.random.default_rng(0).permutation(len(yv)) % args.folds
    weights = {}
    print(f"{args.panel}: veto member {names[veto]}; {len(val)} validation texts")
    for form in FORMS:
        x = features(form, z, v)
        if x is None:
            print(f"  validation {form}: {figures(yv, fixed(form, z, v))}")
            continue
        oof = np.empty(len(yv))
        for k in range(args.folds):
            w = fit_logistic(x[fold != k], yv[fold != k], args.l2)
            oof[fold == k] = np.c_[x[fold == k], np.ones((fold == k).sum())] @ w
        weights[form] = fit_logistic(x, yv, args.l2)
        print(f"  validation {form} (out of fold): {figures(yv, oof)}; "
              f"weights on all: {np.round(weights[form], 3).tolist()}")
    for path, texts, labels in tests:
        y = np.asarray(labels)
        tz, tv = zv(texts)
        for form in FORMS:
            x = features(form, tz, tv)
            s = fixed(form, tz, tv) if x is None else np.c_[x, np.ones(len(x))] @ weights[form]
            print(f"  {path.name} {form}: {figures(y, s)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
