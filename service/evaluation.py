"""Detection metrics, calibration and threshold choice, in plain numpy.

Shared by training (validation figures, Platt calibration, thresholds) and the
``evaluate`` command, so both report the same numbers the same way.

Conventions: ``y`` holds 1 for LLM-written and 0 for human texts; ``p`` is the
(calibrated) probability that a text is LLM-written; the LLM class is the
positive class. Metrics that need both classes return ``None`` when one is
missing instead of raising.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = [
    "auroc",
    "auroc_interval",
    "accuracy",
    "f1",
    "tpr_at_fpr",
    "binomial_interval",
    "fpr_resolvable",
    "expected_calibration_error",
    "ranking_metrics",
    "fit_platt",
    "platt_probability",
    "choose_thresholds",
    "verdicts_for",
    "summarize",
]

log = logging.getLogger(__name__)

ArrayLike = Sequence[float] | np.ndarray


def _arrays(y: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    ya = np.asarray(y, dtype=np.int64).ravel()
    pa = np.asarray(p, dtype=np.float64).ravel()
    if ya.shape != pa.shape:
        raise ValueError(f"y and p differ in length ({ya.size} vs {pa.size})")
    if ya.size and not np.isin(ya, (0, 1)).all():
        raise ValueError("y must hold only 0 (human) and 1 (llm)")
    return ya, pa


def _both_classes(y: np.ndarray) -> bool:
    return bool(y.size) and 0 < int(y.sum()) < y.size


def auroc(y: ArrayLike, p: ArrayLike) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties count one half); ``None`` if one class."""
    ya, pa = _arrays(y, p)
    if not _both_classes(ya):
        return None
    order = np.argsort(pa, kind="mergesort")
    sorted_p = pa[order]
    ranks = np.empty(pa.size, dtype=np.float64)
    # average ranks (1-based) over runs of tied scores
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    n_pos = int(ya.sum())
    n_neg = ya.size - n_pos
    u = ranks[ya == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def auroc_interval(y: ArrayLike, p: ArrayLike,
                   level: float = 0.95) -> tuple[float, float] | None:
    """DeLong's interval for the AUROC: the AUROC ± z·SE, clipped to [0, 1].

    The variance comes from each text's placement among the other class
    (DeLong, DeLong and Clarke-Pearson, 1988; ties count one half, as in
    :func:`auroc`). It is a normal approximation: near 1 with few errors it
    is too narrow, and with no misordered pair at all its width is 0.
    ``None`` if one class is missing.
    """
    ya, pa = _arrays(y, p)
    if not _both_classes(ya):
        return None
    if not 0 < level < 1:
        raise ValueError(f"level must lie between 0 and 1 (got {level})")
    pos, neg = np.sort(pa[ya == 1]), np.sort(pa[ya == 0])
    # per LLM text: share of human texts it outranks (ties one half) ...
    below, not_above = np.searchsorted(neg, pos, "left"), np.searchsorted(neg, pos, "right")
    v10 = (below + not_above) / 2 / neg.size
    # ... per human text: share of LLM texts above it (ties one half)
    below, not_above = np.searchsorted(pos, neg, "left"), np.searchsorted(pos, neg, "right")
    v01 = (2 * pos.size - below - not_above) / 2 / pos.size
    area = float(v10.mean())
    var = (float(np.var(v10, ddof=1)) / pos.size if pos.size > 1 else 0.0) \
        + (float(np.var(v01, ddof=1)) / neg.size if neg.size > 1 else 0.0)
    half = NormalDist().inv_cdf((1 + level) / 2) * math.sqrt(var)
    return max(0.0, area - half), min(1.0, area + half)


def accuracy(y: ArrayLike, p: ArrayLike, threshold: float = 0.5) -> float | None:
    """Share of texts classified correctly with ``p >= threshold`` meaning LLM; ``None`` if empty."""
    ya, pa = _arrays(y, p)
    if not ya.size:
        return None
    return float(np.mean((pa >= threshold).astype(np.int64) == ya))


def f1(y: ArrayLike, p: ArrayLike, threshold: float = 0.5) -> float | None:
    """F1 of the LLM class with ``p >= threshold`` meaning LLM; ``None`` without LLM texts."""
    ya, pa = _arrays(y, p)
    if not ya.size or not ya.sum():
        return None
    pred = pa >= threshold
    tp = float(np.sum(pred & (ya == 1)))
    fp = float(np.sum(pred & (ya == 0)))
    fn = float(np.sum(~pred & (ya == 1)))
    return 2 * tp / (2 * tp + fp + fn)


def tpr_at_fpr(y: ArrayLike, p: ArrayLike, fpr: float) -> float | None:
    """Highest TPR of any threshold ``p >= t`` whose FPR is at most ``fpr``; ``None`` if one class."""
    ya, pa = _arrays(y, p)
    if not _both_classes(ya):
        return None
    human = np.sort(pa[ya == 0])[::-1]  # descending
    llm = pa[ya == 1]
    allowed = int(np.floor(fpr * human.size + 1e-9))  # human texts that may score >= t
    if allowed >= human.size:
        return 1.0
    # t must be strictly above the (allowed+1)-th highest human score
    bound = human[allowed]
    return float(np.mean(llm > bound))


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), 0 < p < 1, summed in log space."""
    i = np.arange(k + 1, dtype=np.float64)
    # log C(n, i) as a running sum of log((n - j + 1) / j), j = 1..i
    log_choose = np.concatenate(([0.0], np.cumsum(np.log((n - i[1:] + 1) / i[1:]))))
    log_pmf = log_choose + i * math.log(p) + (n - i) * math.log1p(-p)
    top = float(log_pmf.max())
    return min(1.0, math.exp(top) * float(np.exp(log_pmf - top).sum()))


def _solve_decreasing(f: Any, target: float) -> float:
    """The p in (0, 1) where the decreasing function ``f`` equals ``target`` (bisection)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):  # 2**-60: far below any rate that is reported
        mid = (lo + hi) / 2
        if f(mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def binomial_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float] | None:
    """Exact (Clopper-Pearson) interval for a rate of ``k`` events in ``n`` trials.

    Covers the true rate at least ``level`` of the time, whatever it is, so it
    is wider than approximate intervals; that is the safe side for a claim such
    as "at most 1% of honest writers are accused". With no event in ``n``
    texts the upper bound is ``1 - ((1 - level) / 2) ** (1 / n)``: 0 of 144
    bounds the rate by 2.5%, and only ``n >= 368`` bounds it below 1%.
    ``None`` when ``n`` is 0. (The live per-worker rates use Wilson's interval,
    :func:`service.rates.wilson_interval`: closed-form, cheap on every
    verdict, and without this guarantee of coverage.)
    """
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"k must lie between 0 and n (got k={k}, n={n})")
    if not 0 < level < 1:
        raise ValueError(f"level must lie between 0 and 1 (got {level})")
    tail = (1 - level) / 2
    # the lower bound: P(X >= k) = tail, i.e. P(X <= k - 1) = 1 - tail
    low = 0.0 if k == 0 else _solve_decreasing(lambda q: _binomial_cdf(k - 1, n, q), 1 - tail)
    high = 1.0 if k == n else _solve_decreasing(lambda q: _binomial_cdf(k, n, q), tail)
    return low, high


def _bounds(interval: tuple[float, float] | None) -> dict[str, Any] | None:
    return None if interval is None else {"low": _round(interval[0]), "high": _round(interval[1])}


def _rate_interval(mask: np.ndarray, level: float = 0.95) -> dict[str, Any] | None:
    """``k`` of ``n`` (the true entries of ``mask``) with its exact interval; ``None`` if empty."""
    k, n = int(mask.sum()), int(mask.size)
    bounds = _bounds(binomial_interval(k, n, level))
    return None if bounds is None else {"k": k, "n": n, **bounds}


def expected_calibration_error(y: ArrayLike, p: ArrayLike, bins: int = 10) -> float | None:
    """ECE over ``bins`` equal-width bins of ``p`` (weighted |mean p - share LLM|); ``None`` if empty."""
    ya, pa = _arrays(y, p)
    if not ya.size:
        return None
    idx = np.clip((pa * bins).astype(np.int64), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.sum() * abs(pa[mask].mean() - ya[mask].mean())
    return float(total / ya.size)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def platt_probability(z: ArrayLike, a: float, b: float) -> np.ndarray:
    """Calibrated probability ``sigmoid(a * z + b)`` of a raw margin ``z``."""
    return _sigmoid(a * np.asarray(z, dtype=np.float64) + b)


def fit_platt(z: ArrayLike, y: ArrayLike, *, max_iter: int = 100,
              tol: float = 1e-10) -> tuple[float, float]:
    """Fit Platt scaling ``p = sigmoid(a * z + b)`` by Newton's method.

    Uses Platt's (1999) smoothed targets, ``(N+ + 1) / (N+ + 2)`` and
    ``1 / (N- + 2)``, so the fit stays finite when the validation margins are
    perfectly separable (common for a good detector on a small hold-out).
    With no data returns the identity-like ``(1.0, 0.0)``.
    """
    ya, za = _arrays(y, z)
    if not ya.size:
        return 1.0, 0.0
    n_pos = float(ya.sum())
    n_neg = float(ya.size - n_pos)
    t = np.where(ya == 1, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    x = np.stack([za, np.ones_like(za)], axis=1)
    w = np.array([1.0, float(np.log((n_pos + 1.0) / (n_neg + 1.0)))])
    ridge = 1e-8 * np.eye(2)

    def loss(wv: np.ndarray) -> float:
        s = x @ wv
        # cross-entropy with soft targets, computed stably: log(1+e^s) - t*s
        return float(np.sum(np.logaddexp(0.0, s) - t * s))

    current = loss(w)
    for _ in range(max_iter):
        q = _sigmoid(x @ w)
        grad = x.T @ (q - t)
        hess = (x * (q * (1.0 - q))[:, None]).T @ x + ridge
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = grad
        scale = 1.0
        while scale > 1e-10:  # backtracking line search keeps the loss decreasing
            candidate = w - scale * step
            value = loss(candidate)
            if value <= current:
                break
            scale *= 0.5
        else:
            break
        improvement = current - value
        w, current = candidate, value
        if improvement < tol * max(1.0, abs(current)):
            break
    return float(w[0]), float(w[1])


def fpr_resolvable(n_human: int, target_fpr: float) -> bool:
    """Whether ``n_human`` validation human texts can show a false-positive rate of ``target_fpr``.

    With fewer than ``1 / target_fpr`` of them, one false positive already
    exceeds the target, so the ``llm`` threshold goes above all their scores,
    and the rate on new human texts cannot be read off them.
    """
    return _allowed_errors(n_human, target_fpr) >= 1


def _allowed_errors(n: int, rate: float) -> int:
    """How many of ``n`` texts may be wrong at an error rate of at most ``rate``."""
    return int(np.floor(rate * n + 1e-9))


def choose_thresholds(y: ArrayLike, p: ArrayLike, target_fpr: float = 0.01,
                      target_fnr: float = 0.05) -> dict[str, float]:
    """Pick the verdict thresholds on validation probabilities.

    * ``llm``: the smallest observed ``p`` such that at most ``target_fpr`` of
      human texts score at or above it; never below 0.5. If no observed value
      qualifies (a human text has the top score), the next float above the top.
    * ``human``: the largest observed ``p`` such that at most ``target_fnr`` of
      LLM texts score at or below it; never above the ``llm`` threshold, and
      never above 0.5: a calibrated ``p`` over one half says "more likely LLM",
      which must not be reported as ``human`` (0.0 if no observed value qualifies).
      Between the two lies the explicit ``uncertain`` band.

    A text is ``llm`` when ``p >= llm``, ``human`` when ``p <= human`` and
    ``uncertain`` in between.
    """
    ya, pa = _arrays(y, p)
    if not ya.size:
        return {"llm": 0.5, "human": 0.5}
    values = np.unique(pa)  # ascending
    human = np.sort(pa[ya == 0])
    llm = np.sort(pa[ya == 1])

    allowed_fp = _allowed_errors(human.size, target_fpr)
    # number of human scores >= v, for every candidate v
    fp_counts = human.size - np.searchsorted(human, values, side="left")
    ok = values[fp_counts <= allowed_fp]
    llm_thr = float(ok[0]) if ok.size else float(np.nextafter(values[-1], np.inf))
    llm_thr = max(llm_thr, 0.5)

    allowed_fn = _allowed_errors(llm.size, target_fnr)
    fn_counts = np.searchsorted(llm, values, side="right")  # LLM scores <= v
    ok = values[fn_counts <= allowed_fn]
    human_thr = float(ok[-1]) if ok.size else 0.0
    human_thr = min(human_thr, llm_thr, 0.5)
    return {"llm": llm_thr, "human": human_thr}


def verdicts_for(p: ArrayLike, thresholds: dict[str, float]) -> list[str]:
    """``llm`` if ``p >= thresholds['llm']``, ``human`` if ``p <= thresholds['human']``, else ``uncertain``."""
    out: list[str] = []
    for value in np.asarray(p, dtype=np.float64).ravel():
        if value >= thresholds["llm"]:
            out.append("llm")
        elif value <= thresholds["human"]:
            out.append("human")
        else:
            out.append("uncertain")
    return out


def _share(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def ranking_metrics(y: ArrayLike, score: ArrayLike, digits: int = 6) -> dict[str, float | None]:
    """AUROC and TPR at 1% and 5% FPR of any score where higher means LLM.

    They depend only on the order of the scores, so raw margins, probabilities
    and zero-shot scores compare; ``None`` where one class is missing.
    """
    return {"auroc": _round(auroc(y, score), digits),
            "tpr_at_1pct_fpr": _round(tpr_at_fpr(y, score, 0.01), digits),
            "tpr_at_5pct_fpr": _round(tpr_at_fpr(y, score, 0.05), digits)}


def summarize(y: ArrayLike, p: ArrayLike, verdicts: Sequence[str]) -> dict[str, Any]:
    """Every figure crowdguard reports for labelled texts.

    ``accuracy`` and ``f1`` use ``p >= 0.5``; ``llm_verdict_fpr`` is the share of
    human texts whose verdict is ``llm``, ``llm_verdict_tpr`` the share of LLM
    texts whose verdict is ``llm``, and ``uncertain_share`` the share of all
    texts whose verdict is neither ``llm`` nor ``human`` (uncertain or
    abstained). Texts with a non-finite ``p`` (an abstained text may have no
    score) count in ``n`` and in the verdict figures but not in score metrics.

    ``ci95`` holds the counts behind ``accuracy``, ``llm_verdict_fpr`` and
    ``llm_verdict_tpr`` (``k`` of ``n``) with their exact 95% intervals
    (:func:`binomial_interval`): on a few hundred texts a rate of 0 is not
    a rate under 1%, and the interval says how far the data rule out more.
    ``ci95.auroc`` is DeLong's interval (:func:`auroc_interval`).
    """
    ya, pa = _arrays(y, p)
    va = np.asarray(list(verdicts), dtype=object)
    if va.size != ya.size:
        raise ValueError(f"verdicts and y differ in length ({va.size} vs {ya.size})")
    scored = np.isfinite(pa)
    ys, ps = ya[scored], pa[scored]
    is_llm_verdict = va == "llm"
    decided = (va == "llm") | (va == "human")
    return {
        "n": int(ya.size),
        "n_human": int((ya == 0).sum()),
        "n_llm": int((ya == 1).sum()),
        "accuracy": _round(accuracy(ys, ps)),
        "f1": _round(f1(ys, ps)),
        **ranking_metrics(ys, ps),
        "llm_verdict_fpr": _round(_share(is_llm_verdict[ya == 0])),
        "llm_verdict_tpr": _round(_share(is_llm_verdict[ya == 1])),
        "uncertain_share": _round(_share(~decided)),
        "ece": _round(expected_calibration_error(ys, ps)),
        "ci95": {
            "auroc": _bounds(auroc_interval(ys, ps)),
            "accuracy": _rate_interval((ps >= 0.5).astype(np.int64) == ys),
            "llm_verdict_fpr": _rate_interval(is_llm_verdict[ya == 0]),
            "llm_verdict_tpr": _rate_interval(is_llm_verdict[ya == 1]),
        },
    }
