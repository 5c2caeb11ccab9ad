"""Every Prometheus metric of crowdguard, in one per-process registry.

:class:`Metrics` owns its own :class:`~prometheus_client.CollectorRegistry`
(build one per process; tests build their own) and the methods the stream
calls. Names use base units (seconds), counters end in ``_total``, and every
label has a small, bounded set of values:

* ``verdict``: llm | human | uncertain; ``reason``: :data:`~service.schema.DEAD_LETTER_REASONS`
  (unknown reasons count as ``processing_error``);
* ``task_id``: at most ``max_task_series`` tasks, later ones as ``_other``;
* ``worker_id``: at most ``max_worker_series`` workers, chosen at each scrape
  (highest rate among workers with ``n >= min_n``, then most submissions);
  a worker whose window emptied disappears at the next scrape;
* ``partition``: the partitions this process is assigned;
  ``method``: rogan_gladen | pcc; ``bound``: estimate | lower | upper.

The per-worker and prevalence series come from custom collectors that render
a bounded dict at scrape time, so a series that is evicted is gone exactly.
Series are per process: with several replicas, sum counters/histograms over
``instance``; the worker gauges of replicas are disjoint when submissions are
partitioned by worker id.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from .schema import DEAD_LETTER_REASONS

__all__ = ["Metrics", "CONTENT_TYPE_LATEST", "OTHER_TASK", "LATENCY_BUCKETS",
           "BATCH_SIZE_BUCKETS", "END_TO_END_BUCKETS", "RATE_BUCKETS"]

OTHER_TASK = "_other"
VERDICTS = ("llm", "human", "uncertain")
PREVALENCE_METHODS = ("rogan_gladen", "pcc")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
END_TO_END_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
                      3600.0)
RATE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass
class _Worker:
    rate: float
    n: int
    flagged: bool
    expires_at: float | None


class _WorkerCollector:
    """Per-worker gauges for a bounded, relevance-ranked subset; counts over all workers."""

    def __init__(self, *, max_series: int, min_n: int, max_tracked: int,
                 clock: Callable[[], float]) -> None:
        self.max_series = max_series
        self.min_n = min_n
        self.max_tracked = max_tracked
        self.clock = clock
        self.lock = threading.Lock()
        self.workers: OrderedDict[str, _Worker] = OrderedDict()  # least recently updated first

    def update(self, worker_id: str, rate: float, n: int, flagged: bool,
               expires_at: float | None) -> None:
        with self.lock:
            if n <= 0:
                self.workers.pop(worker_id, None)
                return
            self.workers[worker_id] = _Worker(rate, n, flagged, expires_at)
            self.workers.move_to_end(worker_id)
            while len(self.workers) > self.max_tracked:
                self.workers.popitem(last=False)

    def remove(self, worker_id: str) -> None:
        with self.lock:
            self.workers.pop(worker_id, None)

    def _live(self) -> list[tuple[str, _Worker]]:
        now = self.clock()
        with self.lock:
            for wid in [w for w, s in self.workers.items()
                        if s.expires_at is not None and s.expires_at <= now]:
                del self.workers[wid]
            return list(self.workers.items())

    def exposed(self) -> list[tuple[str, _Worker]]:
        """The workers that get a series, most relevant first."""
        import heapq

        def key(item: tuple[str, _Worker]) -> tuple[int, float, int, str]:
            wid, w = item
            eligible = w.n >= self.min_n
            return (0 if eligible else 1, -w.rate if eligible else 0.0, -w.n, wid)
        return heapq.nsmallest(self.max_series, self._live(), key=key)

    def describe(self) -> Iterator[Metric]:
        yield from self._families([], [])

    def collect(self) -> Iterator[Metric]:
        live = self._live()
        yield from self._families(live, self.exposed() if self.max_series else [])

    def _families(self, live: list[tuple[str, _Worker]],
                  top: list[tuple[str, _Worker]]) -> Iterator[Metric]:
        rate = GaugeMetricFamily(
            "crowdguard_worker_llm_rate",
            "LLM-use rate (llm verdicts / submissions) of a worker over the rolling window; "
            "bounded set of the most relevant workers", labels=["worker_id"])
        subs = GaugeMetricFamily(
            "crowdguard_worker_window_submissions",
            "Submissions of a worker in the rolling window (same workers as "
            "crowdguard_worker_llm_rate)", labels=["worker_id"])
        for wid, w in top:
            rate.add_metric([wid], w.rate)
            subs.add_metric([wid], w.n)
        yield rate
        yield subs
        counts = [0] * len(RATE_BUCKETS)
        total = 0.0
        for _, w in live:
            total += w.rate
            for i, ub in enumerate(RATE_BUCKETS):
                if w.rate <= ub:
                    counts[i] += 1
        buckets = [(repr(float(ub)), float(c)) for ub, c in zip(RATE_BUCKETS, counts)]
        buckets.append(("+Inf", float(len(live))))
        yield GaugeHistogramMetricFamily(
            "crowdguard_worker_llm_rate_distribution",
            "Current LLM-use rates of all tracked workers (a snapshot, not cumulative)",
            buckets=buckets, gsum_value=total)
        yield GaugeMetricFamily(
            "crowdguard_workers_over_threshold",
            "Workers whose rate is over the flag threshold (with hysteresis)",
            value=sum(1 for _, w in live if w.flagged))
        yield GaugeMetricFamily("crowdguard_workers_tracked",
                                "Workers with submissions in the rolling window",
                                value=len(live))


class _PrevalenceCollector:
    """Platform-wide and per-task prevalence gauges from the last :meth:`Metrics.set_prevalence`."""

    def __init__(self) -> None:
        self.platform: dict[str, tuple[float | None, float | None, float | None]] = {}
        self.tasks: dict[str, dict[str, tuple[float | None, float | None, float | None]]] = {}

    def describe(self) -> Iterator[Metric]:
        yield from self._families({}, {})

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self.platform, self.tasks)

    @staticmethod
    def _families(platform: Mapping[str, Any], tasks: Mapping[str, Any]) -> Iterator[Metric]:
        plat = GaugeMetricFamily(
            "crowdguard_llm_prevalence",
            "Estimated share of LLM-written submissions, platform-wide, with its 95% interval",
            labels=["method", "bound"])
        task = GaugeMetricFamily(
            "crowdguard_task_llm_prevalence",
            "Estimated share of LLM-written submissions per task (capped set of tasks)",
            labels=["task_id", "method", "bound"])
        for method, vals in platform.items():
            for bound, v in zip(("estimate", "lower", "upper"), vals):
                if v is not None:
                    plat.add_metric([method, bound], v)
        for task_id, methods in tasks.items():
            for method, vals in methods.items():
                for bound, v in zip(("estimate", "lower", "upper"), vals):
                    if v is not None:
                        task.add_metric([task_id, method, bound], v)
        yield plat
        yield task


def _triple(est: Any) -> tuple[float | None, float | None, float | None]:
    def ok(x: Any) -> float | None:
        return float(x) if x is not None and math.isfinite(float(x)) else None
    if est is None or getattr(est, "value", None) is None:
        return (None, None, None)
    return ok(est.value), ok(getattr(est, "lo", None)), ok(getattr(est, "hi", None))


class Metrics:
    """The service's metrics and the calls that update them.

    ``threshold``/``min_n`` match the settings ``rate_threshold``/``rate_min_submissions``;
    ``clock`` (epoch seconds) decides when a worker's window is empty.
    """

    def __init__(self, *, max_task_series: int = 100, max_worker_series: int = 500,
                 min_n: int = 5, max_tracked_workers: int = 200_000,
                 clock: Callable[[], float] = time.time, process_metrics: bool = True) -> None:
        disable_created_metrics()  # no *_created series: noise for Prometheus (process-wide)
        self.registry = CollectorRegistry()
        self.max_task_series = max_task_series
        r = self.registry
        if process_metrics:
            ProcessCollector(registry=r)
        self.submissions_scored = Counter(
            "crowdguard_submissions_scored_total", "Submissions scored, by verdict",
            ["verdict"], registry=r)
        self.task_submissions_scored = Counter(
            "crowdguard_task_submissions_scored_total",
            f"Submissions scored, by task (at most {max_task_series} tasks; more as "
            f"task_id=\"{OTHER_TASK}\") and verdict", ["task_id", "verdict"], registry=r)
        self.unfamiliar_texts = Counter(
            "crowdguard_unfamiliar_texts_total",
            "Scored submissions whose text lies beyond the model's familiarity threshold "
            "(unlike its training data, so given no text verdict)", registry=r)
        self.reply_formula_texts = Counter(
            "crowdguard_reply_formula_texts_total",
            "Scored submissions whose verdict rests on a chat assistant's reply formula at the "
            "start of the text (\"Sure, here's ...\"): llm, or uncertain when typed by hand",
            registry=r)
        self.dead_letters = Counter(
            "crowdguard_dead_letters_total", "Messages sent to the dead-letter topic, by reason",
            ["reason"], registry=r)
        self.inference_seconds = Histogram(
            "crowdguard_inference_seconds", "Model inference time of one micro-batch",
            buckets=LATENCY_BUCKETS, registry=r)
        self.batch_seconds = Histogram(
            "crowdguard_batch_seconds",
            "Time to process one micro-batch (parse, score, fuse, produce)",
            buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram(
            "crowdguard_batch_size", "Submissions per micro-batch",
            buckets=BATCH_SIZE_BUCKETS, registry=r)
        self.end_to_end_seconds = Histogram(
            "crowdguard_end_to_end_seconds",
            "Time from a submission's submitted_at to its flag being produced",
            buckets=END_TO_END_BUCKETS, registry=r)
        self.llm_probability = Histogram(
            "crowdguard_text_llm_probability",
            "Calibrated p_llm of scored texts (its _sum/_count give the PCC prevalence "
            "summed over replicas)", buckets=RATE_BUCKETS, registry=r)
        self.consumer_lag = Gauge(
            "crowdguard_consumer_lag_messages",
            "Messages of the submissions topic not yet consumed, per assigned partition",
            ["partition"], registry=r)
        self.model_info = Gauge(
            "crowdguard_model_info", "The loaded model (value is always 1)",
            ["name", "version", "device"], registry=r)
        self.model_ready = Gauge(
            "crowdguard_model_ready", "1 when the model is loaded and scoring, else 0",
            registry=r)
        for v in VERDICTS:
            self.submissions_scored.labels(v)
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(reason)
        self._tasks: set[str] = set()
        self._task_lock = threading.Lock()
        self.workers = _WorkerCollector(max_series=max_worker_series, min_n=min_n,
                                        max_tracked=max_tracked_workers, clock=clock)
        r.register(self.workers)
        self.prevalence = _PrevalenceCollector()
        r.register(self.prevalence)

    # --- calls from the stream ---------------------------------------------------------------
    def _task_label(self, task_id: str) -> str:
        with self._task_lock:
            if task_id in self._tasks:
                return task_id
            if len(self._tasks) < self.max_task_series and task_id != OTHER_TASK:
                self._tasks.add(task_id)
                return task_id
        return OTHER_TASK

    def observe_batch(self, size: int, inference_s: float, batch_s: float) -> None:
        self.batch_size.observe(size)
        self.inference_seconds.observe(max(0.0, inference_s))
        self.batch_seconds.observe(max(0.0, batch_s))

    def scored(self, verdict: str, task_id: str, p_llm: float | None = None, *,
               unfamiliar: bool = False, reply_formula: bool = False) -> None:
        verdict = verdict if verdict in VERDICTS else "uncertain"
        self.submissions_scored.labels(verdict).inc()
        if unfamiliar:
            self.unfamiliar_texts.inc()
        if reply_formula:
            self.reply_formula_texts.inc()
        self.task_submissions_scored.labels(self._task_label(task_id), verdict).inc()
        if p_llm is not None and math.isfinite(p_llm):
            self.llm_probability.observe(p_llm)

    def dead_lettered(self, reason: str) -> None:
        self.dead_letters.labels(reason if reason in DEAD_LETTER_REASONS
                                 else "processing_error").inc()

    def end_to_end(self, seconds: float) -> None:
        """Latency from ``submitted_at``; negative (clock skew) is observed as 0."""
        if math.isfinite(seconds):
            self.end_to_end_seconds.observe(max(0.0, seconds))

    def set_lag(self, partition: int, lag: int | float) -> None:
        self.consumer_lag.labels(str(partition)).set(max(0, lag))

    def forget_partitions(self, keep: Iterable[int]) -> None:
        """Drop lag series of partitions no longer assigned (call on rebalance)."""
        keep_s = {str(p) for p in keep}
        for labels in list(self.consumer_lag._metrics):  # noqa: SLF001 - no public listing
            if labels[0] not in keep_s:
                self.consumer_lag.remove(*labels)

    def set_model(self, info_label: str, device: str, ready: bool) -> None:
        """``info_label`` is ``name@version`` (:attr:`ModelInfo.label`)."""
        name, _, version = info_label.rpartition("@")
        if not name:
            name, version = version, "unknown"
        self.model_info.clear()
        self.model_info.labels(name, version, device).set(1)
        self.model_ready.set(1 if ready else 0)

    def set_ready(self, ready: bool) -> None:
        self.model_ready.set(1 if ready else 0)

    def update_worker(self, worker_rate: Any, flagged: bool) -> None:
        """Record a :class:`~service.rates.WorkerRate` (``n == 0`` removes the worker)."""
        self.workers.update(worker_rate.worker_id, float(worker_rate.rate), int(worker_rate.n),
                            bool(flagged), getattr(worker_rate, "expires_at", None))

    def remove_worker(self, worker_id: str) -> None:
        self.workers.remove(worker_id)

    def set_prevalence(self, platform: Mapping[str, Any],
                       tasks: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Replace the prevalence gauges with ``{method: Estimate}`` (platform) and
        ``{task_id: {method: Estimate}}`` (the output of
        :meth:`~service.rates.PrevalenceTracker.estimates`). Estimates without a value
        give no series. At most ``max_task_series`` tasks (most submissions first)."""
        plat = {m: _triple(e) for m, e in platform.items() if m in PREVALENCE_METHODS}
        task_items = list((tasks or {}).items())
        if len(task_items) > self.max_task_series:
            def size(item: tuple[str, Mapping[str, Any]]) -> int:
                return max((getattr(e, "n", 0) or 0) for e in item[1].values()) if item[1] else 0
            task_items = sorted(task_items, key=lambda it: (-size(it), it[0]))
            task_items = task_items[:self.max_task_series]
        per_task = {t: {m: _triple(e) for m, e in ms.items() if m in PREVALENCE_METHODS}
                    for t, ms in task_items}
        self.prevalence.platform, self.prevalence.tasks = plat, per_task  # atomic swap

    def render(self) -> bytes:
        """The text exposition format (serve with :data:`CONTENT_TYPE_LATEST`)."""
        return generate_latest(self.registry)
