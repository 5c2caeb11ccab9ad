"""Per-worker rolling LLM-use rates, threshold crossings and platform prevalence.

Pure math, no I/O. Timestamps are epoch seconds (``float``) or aware
``datetime``\\s.

Windows are *hopping*: time is cut into buckets of ``step_s`` seconds
(bucket ``b`` holds ``[b*step_s, (b+1)*step_s)``) and the window at time
``now`` is the ``W = ceil(window_s / step_s)`` buckets ending with the bucket
of ``now``. The window so advances one step at a time; an event leaves it
between ``window_s`` and ``window_s + step_s`` after it happened. Buckets ahead
of ``now`` (clock skew) are counted; buckets that fell out are dropped.

A worker's *LLM-use rate* is ``n_llm / n``: ``uncertain`` verdicts count in
``n`` but not in ``n_llm`` (the rate is the share of their submissions the
service was sure enough to call LLM-written, so a lower bound on their LLM use
as the detector sees it). Its 95% interval is Wilson's.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "wilson_interval", "WorkerRate", "WorkerState", "RollingCounter", "crossing",
    "ThresholdTracker", "HYSTERESIS_MARGIN", "Estimate", "rogan_gladen", "probabilistic_cc",
    "PrevalenceTracker", "RECENT_VERDICTS", "OTHER_TASK",
]

HYSTERESIS_MARGIN = 0.05
"""A flagged worker falls back only once their rate is below ``threshold - margin``."""
RECENT_VERDICTS = 20
"""Verdicts a :class:`WorkerState` remembers for the HTTP view."""
OTHER_TASK = "_other"
"""Where :class:`PrevalenceTracker` counts tasks beyond its ``max_tasks``."""

Crossing = Literal["crossed_up", "fell_back"]


def _epoch(ts: float | datetime) -> float:
    return ts.timestamp() if isinstance(ts, datetime) else float(ts)


# --- intervals ----------------------------------------------------------------------------
def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k/n``; ``(0, 1)`` when ``n == 0``."""
    if n <= 0:
        return 0.0, 1.0
    k = min(max(k, 0), n)
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


# --- per-worker state --------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerRate:
    """A worker's counts and rate over the window ending at the time asked."""

    worker_id: str
    n: int
    n_llm: int
    n_uncertain: int
    rate: float
    lo: float
    hi: float
    window_s: float
    expires_at: float | None = None  # when the window will be empty if nothing new comes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WorkerState:
    """One worker's windowed counts, stored as the value of a table keyed by worker id.

    Bounded: only buckets inside the window of the newest bucket seen are kept
    (at most ``ceil(window_s/step_s) + 1``), and the last :data:`RECENT_VERDICTS`
    verdicts. ``flagged`` remembers whether the worker is over the threshold
    (for :func:`crossing`). Pass ``ts`` no later than the wall clock (clamp
    ``submitted_at`` to now): a far-future ``ts`` would push the window ahead.
    """

    __slots__ = ("worker_id", "window_s", "step_s", "buckets", "recent", "flagged")

    def __init__(self, worker_id: str, *, window_s: float, step_s: float) -> None:
        if window_s <= 0 or step_s <= 0:
            raise ValueError("window_s and step_s must be positive")
        self.worker_id = worker_id
        self.window_s = float(window_s)
        self.step_s = float(step_s)
        self.buckets: dict[int, list[int]] = {}  # bucket -> [n, n_llm, n_uncertain]
        self.recent: deque[tuple[str | None, str, float | None, float]] = deque(
            maxlen=RECENT_VERDICTS)
        self.flagged = False

    def _width(self, window_s: float | None = None) -> int:
        return max(1, math.ceil((window_s or self.window_s) / self.step_s - 1e-9))

    def _bucket(self, ts: float) -> int:
        return math.floor(ts / self.step_s)

    def add(self, ts: float | datetime, verdict: str, *, submission_id: str | None = None,
            p_llm: float | None = None) -> None:
        t = _epoch(ts)
        b = self._bucket(t)
        counts = self.buckets.setdefault(b, [0, 0, 0])
        counts[0] += 1
        counts[1] += verdict == "llm"
        counts[2] += verdict == "uncertain"
        self.recent.append((submission_id, verdict, p_llm, t))
        self.prune(max(self.buckets) * self.step_s)

    def prune(self, now: float | datetime) -> None:
        """Drop buckets that left the window at ``now``."""
        oldest = self._bucket(_epoch(now)) - self._width() + 1
        for b in [b for b in self.buckets if b < oldest]:
            del self.buckets[b]

    def stats(self, now: float | datetime, window_s: float | None = None) -> WorkerRate:
        """Counts and rate over the window ending with the bucket of ``now``."""
        w = self._width(window_s)
        oldest = self._bucket(_epoch(now)) - w + 1
        n = n_llm = n_unc = 0
        for b, (bn, bl, bu) in self.buckets.items():
            if b >= oldest:
                n += bn
                n_llm += bl
                n_unc += bu
        lo, hi = wilson_interval(n_llm, n)
        live = [b for b in self.buckets if b >= oldest]
        expires = (max(live) + w) * self.step_s if live else None
        return WorkerRate(self.worker_id, n, n_llm, n_unc, n_llm / n if n else 0.0, lo, hi,
                          w * self.step_s, expires)

    @property
    def empty(self) -> bool:
        return not self.buckets

    def to_dict(self) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id, "window_s": self.window_s, "step_s": self.step_s,
            "buckets": {str(b): list(c) for b, c in self.buckets.items()},
            "recent": [list(r) for r in self.recent], "flagged": self.flagged,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, window_s: float | None = None,
                  step_s: float | None = None) -> WorkerState:
        """Rebuild from :meth:`to_dict`. A different ``step_s`` than stored re-buckets by
        bucket start time; a new ``window_s`` applies from the next :meth:`prune`."""
        old_step = float(d.get("step_s") or step_s or 1.0)
        st = cls(str(d["worker_id"]), window_s=window_s or float(d["window_s"]),
                 step_s=step_s or old_step)
        same = st.step_s == old_step
        for key, counts in (d.get("buckets") or {}).items():
            b = int(key) if same else st._bucket(int(key) * old_step)
            acc = st.buckets.setdefault(b, [0, 0, 0])
            for i in range(3):
                acc[i] += int(counts[i])
        for r in d.get("recent") or []:
            st.recent.append((r[0], str(r[1]), r[2], float(r[3])))
        st.flagged = bool(d.get("flagged", False))
        if st.buckets:
            st.prune(max(st.buckets) * st.step_s)
        return st


class RollingCounter:
    """Windowed counts for many keys (an in-memory stand-in for the table of WorkerStates)."""

    def __init__(self, *, window_s: float, step_s: float) -> None:
        self.window_s = window_s
        self.step_s = step_s
        self.states: dict[str, WorkerState] = {}

    def add(self, key: str, ts: float | datetime, is_llm: bool, verdict: str | None = None,
            **kw: Any) -> WorkerState:
        st = self.states.get(key)
        if st is None:
            st = self.states[key] = WorkerState(key, window_s=self.window_s, step_s=self.step_s)
        st.add(ts, verdict or ("llm" if is_llm else "human"), **kw)
        return st

    def rate(self, key: str, now: float | datetime) -> WorkerRate:
        st = self.states.get(key)
        if st is None:
            return WorkerRate(key, 0, 0, 0, 0.0, 0.0, 1.0, self.window_s)
        return st.stats(now)

    def expire(self, now: float | datetime) -> list[str]:
        """Drop keys whose window emptied; return them."""
        gone = []
        for key, st in list(self.states.items()):
            st.prune(now)
            if st.empty:
                gone.append(key)
                del self.states[key]
        return gone

    def to_dict(self) -> dict[str, Any]:
        return {"window_s": self.window_s, "step_s": self.step_s,
                "states": {k: s.to_dict() for k, s in self.states.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RollingCounter:
        rc = cls(window_s=float(d["window_s"]), step_s=float(d["step_s"]))
        rc.states = {k: WorkerState.from_dict(v) for k, v in d.get("states", {}).items()}
        return rc


# --- threshold crossings -------------------------------------------------------------------
def crossing(prev_flagged: bool, stats: WorkerRate, threshold: float, min_n: int,
             margin: float = HYSTERESIS_MARGIN) -> Crossing | None:
    """``"crossed_up"``, ``"fell_back"`` or ``None`` (no change), with hysteresis.

    Up: not flagged, ``n >= min_n`` and ``rate >= threshold``. Back: flagged and
    either ``rate < threshold - margin`` or fewer than ``min_n`` submissions left
    in the window (not enough evidence to keep the flag).
    """
    if not prev_flagged:
        if stats.n >= min_n and stats.rate >= threshold:
            return "crossed_up"
        return None
    if stats.n < min_n or stats.rate < threshold - margin:
        return "fell_back"
    return None


class ThresholdTracker:
    """:func:`crossing` with fixed settings, updating a :class:`WorkerState`'s ``flagged``."""

    def __init__(self, threshold: float, min_n: int, margin: float = HYSTERESIS_MARGIN) -> None:
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        self.threshold = threshold
        self.min_n = min_n
        self.margin = margin

    def crossing(self, prev_flagged: bool, stats: WorkerRate) -> Crossing | None:
        return crossing(prev_flagged, stats, self.threshold, self.min_n, self.margin)

    def update(self, state: WorkerState, stats: WorkerRate) -> Crossing | None:
        event = self.crossing(state.flagged, stats)
        if event == "crossed_up":
            state.flagged = True
        elif event == "fell_back":
            state.flagged = False
        return event


# --- prevalence ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """A prevalence estimate with its interval; ``value is None`` with a ``reason`` if none."""

    value: float | None
    lo: float | None
    hi: float | None
    n: int = 0
    reason: str | None = None

    @classmethod
    def none(cls, reason: str, n: int = 0) -> Estimate:
        return cls(None, None, None, n, reason)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def rogan_gladen(k: int, n: int, tpr: float | None, fpr: float | None,
                 z: float = 1.96) -> Estimate:
    """Adjusted classify-and-count: ``(k/n - fpr) / (tpr - fpr)``, clipped to [0, 1].

    ``k`` is the number of ``llm`` verdicts among ``n`` submissions; ``tpr`` and
    ``fpr`` are P(verdict = llm | LLM-written) and P(verdict = llm | human) measured
    on validation data *with ``uncertain`` counted as not-llm* (the model's
    ``llm_verdict_tpr``/``llm_verdict_fpr``).

    Interval: the Wilson interval of the raw rate ``k/n`` mapped through the same
    (monotone) correction and clipped. It treats ``tpr``/``fpr`` as exact, so it is
    too narrow when they come from a small validation set.
    """
    if n <= 0:
        return Estimate.none("no submissions")
    if tpr is None or fpr is None:
        return Estimate.none("classifier tpr/fpr unknown", n)
    if tpr <= fpr:
        return Estimate.none("classifier no better than chance (tpr <= fpr)", n)
    d = tpr - fpr
    lo, hi = wilson_interval(k, n, z)
    return Estimate(_clip((k / n - fpr) / d), _clip((lo - fpr) / d), _clip((hi - fpr) / d), n)


def _pcc_from_sums(n: int, s: float, s2: float, tpr_p: float | None, fpr_p: float | None,
                   z: float) -> Estimate:
    if n <= 0:
        return Estimate.none("no scored submissions")
    mean = s / n
    var = max(0.0, s2 / n - mean * mean) * (n / (n - 1) if n > 1 else 0.0)
    half = z * math.sqrt(var / n)
    lo, hi = mean - half, mean + half
    if tpr_p is not None and fpr_p is not None:
        if tpr_p <= fpr_p:
            return Estimate.none("classifier no better than chance (tpr_p <= fpr_p)", n)
        d = tpr_p - fpr_p
        mean, lo, hi = (mean - fpr_p) / d, (lo - fpr_p) / d, (hi - fpr_p) / d
    return Estimate(_clip(mean), _clip(lo), _clip(hi), n)


def probabilistic_cc(p_values: Iterable[float], tpr_p: float | None = None,
                     fpr_p: float | None = None, z: float = 1.96) -> Estimate:
    """Probabilistic classify-and-count: the mean calibrated ``p_llm``.

    With ``tpr_p``/``fpr_p`` (mean ``p_llm`` of LLM / human validation texts) it is
    adjusted like Rogan-Gladen (PACC). Interval: normal approximation,
    ``mean +- z * sd / sqrt(n)`` (sample sd), mapped through the adjustment and
    clipped to [0, 1]; it ignores calibration error.
    """
    n = 0
    s = s2 = 0.0
    for p in p_values:
        if p is None or not math.isfinite(p):
            continue
        n += 1
        s += p
        s2 += p * p
    return _pcc_from_sums(n, s, s2, tpr_p, fpr_p, z)


class PrevalenceTracker:
    """Windowed per-task and platform-wide counts for prevalence estimates.

    Per bucket (same hopping windows as worker rates; ``window_s=None`` keeps one
    all-time bucket): ``n`` submissions, ``k`` llm verdicts, and ``n_p``, ``sum p``,
    ``sum p^2`` over those with a ``p_llm``. At most ``max_tasks`` tasks are
    tracked; later ones are counted under :data:`OTHER_TASK` (they are always in the
    platform total). Tasks whose window emptied are dropped.
    """

    def __init__(self, *, window_s: float | None = None, step_s: float = 3600.0,
                 max_tasks: int = 200) -> None:
        self.window_s = window_s
        self.step_s = float(step_s)
        self.max_tasks = max_tasks
        self.platform: dict[int, list[float]] = {}
        self.tasks: dict[str, dict[int, list[float]]] = {}

    def _bucket(self, ts: float | datetime | None) -> int:
        if self.window_s is None:
            return 0
        if ts is None:
            raise ValueError("a windowed PrevalenceTracker needs a timestamp")
        return math.floor(_epoch(ts) / self.step_s)

    def _oldest(self, now: float | datetime | None) -> int:
        if self.window_s is None or now is None:
            return -(2 ** 62)
        width = max(1, math.ceil(self.window_s / self.step_s - 1e-9))
        return self._bucket(now) - width + 1

    def add(self, task_id: str, verdict: str, p_llm: float | None,
            ts: float | datetime | None = None) -> str:
        """Count one verdict; returns the task key it was counted under."""
        if task_id not in self.tasks and len(self.tasks) >= self.max_tasks:
            if ts is not None:
                self.prune(ts)
            if len(self.tasks) >= self.max_tasks:
                task_id = OTHER_TASK
        b = self._bucket(ts)
        for buckets in (self.platform, self.tasks.setdefault(task_id, {})):
            c = buckets.setdefault(b, [0, 0, 0, 0.0, 0.0])
            c[0] += 1
            c[1] += verdict == "llm"
            if p_llm is not None and math.isfinite(p_llm):
                c[2] += 1
                c[3] += p_llm
                c[4] += p_llm * p_llm
        return task_id

    def prune(self, now: float | datetime | None) -> None:
        oldest = self._oldest(now)
        for buckets in (self.platform, *self.tasks.values()):
            for b in [b for b in buckets if b < oldest]:
                del buckets[b]
        for t in [t for t, bk in self.tasks.items() if not bk]:
            del self.tasks[t]

    def _sums(self, buckets: dict[int, list[float]], oldest: int) -> list[float]:
        tot = [0, 0, 0, 0.0, 0.0]
        for b, c in buckets.items():
            if b >= oldest:
                for i in range(5):
                    tot[i] += c[i]
        return tot

    def _estimate(self, sums: list[float], tpr: float | None, fpr: float | None,
                  tpr_p: float | None, fpr_p: float | None) -> dict[str, Estimate]:
        n, k, n_p, s, s2 = sums
        return {"rogan_gladen": rogan_gladen(int(k), int(n), tpr, fpr),
                "pcc": _pcc_from_sums(int(n_p), s, s2, tpr_p, fpr_p, 1.96)}

    def estimates(self, tpr: float | None, fpr: float | None, *,
                  now: float | datetime | None = None, tpr_p: float | None = None,
                  fpr_p: float | None = None) -> dict[str, Any]:
        """``{"platform": {method: Estimate}, "tasks": {task_id: {method: Estimate}}}``."""
        if now is not None:
            self.prune(now)
        oldest = self._oldest(now)
        return {
            "platform": self._estimate(self._sums(self.platform, oldest), tpr, fpr, tpr_p, fpr_p),
            "tasks": {t: self._estimate(self._sums(bk, oldest), tpr, fpr, tpr_p, fpr_p)
                      for t, bk in self.tasks.items()},
        }

    def to_dict(self) -> dict[str, Any]:
        def enc(bk: dict[int, list[float]]) -> dict[str, list[float]]:
            return {str(b): list(c) for b, c in bk.items()}
        return {"window_s": self.window_s, "step_s": self.step_s, "max_tasks": self.max_tasks,
                "platform": enc(self.platform),
                "tasks": {t: enc(bk) for t, bk in self.tasks.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PrevalenceTracker:
        def dec(bk: dict[str, list[float]]) -> dict[int, list[float]]:
            return {int(b): [int(c[0]), int(c[1]), int(c[2]), float(c[3]), float(c[4])]
                    for b, c in bk.items()}
        pt = cls(window_s=d.get("window_s"), step_s=float(d.get("step_s", 3600.0)),
                 max_tasks=int(d.get("max_tasks", 200)))
        pt.platform = dec(d.get("platform", {}))
        pt.tasks = {t: dec(bk) for t, bk in d.get("tasks", {}).items()}
        return pt
