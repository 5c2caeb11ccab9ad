"""The faust-streaming worker: wiring only, the logic lives in the other modules.

Data flow (see the README)::

    submissions --parse--> (invalid) --> dead-letter
         |  micro-batch (noack_take: size / time bound)
         v  Detector.score in an executor, off the event loop
      verdict + signals --> flags (key: submission_id)
         |  flags re-keyed by worker_id (group_by)
         v
      per-worker rolling table (changelog in Kafka) --> worker-rates events, metrics

Delivery is at-least-once: a batch's messages are acked only after every flag
and dead letter of the batch was confirmed by the broker, so the committed
offset never passes an unpublished verdict. A crash replays the uncommitted
tail; replays are keyed by ``submission_id`` and the rate table skips ids
among a worker's last 20 verdicts, which is where replays land. Agents run
with concurrency 1 (faust#606), and exceptions never escape an agent
(faust#189): they are dead-lettered and counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import faust
import orjson
from prometheus_client import CONTENT_TYPE_LATEST

from . import faust_fixes
from .detector import Detector, TextScore
from .errors import InputError
from .kafka import ssl_context
from .metrics import Metrics
from .rates import PrevalenceTracker, ThresholdTracker, WorkerState
from .schema import DeadLetter, Flag, Submission, dumps, now_iso, parse_submission, parse_time
from .settings import Settings
from .signals import compute_signals, judge
from .verdict import REPLY_FORMULA_REASON, unfamiliar_reason

__all__ = ["build_app", "Pipeline"]

log = logging.getLogger(__name__)

#: Back-off between attempts to publish a batch while the broker is unreachable.
_SEND_RETRY_S = (0.5, 1, 2, 5)


def _credentials(settings: Settings) -> Any:
    """faust credentials for the configured security protocol (None for PLAINTEXT)."""
    ctx = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        password = settings.kafka_sasl_password.get_secret_value() \
            if settings.kafka_sasl_password else None
        return faust.SASLCredentials(username=settings.kafka_sasl_username, password=password,
                                     mechanism=settings.kafka_sasl_mechanism or "PLAIN",
                                     ssl_context=ctx)
    if ctx is not None:
        return faust.SSLCredentials(ctx)
    return None


class Pipeline:
    """What the scoring agent does with a batch, kept apart from the faust wiring."""

    def __init__(self, settings: Settings, detector: Detector) -> None:
        self.settings = settings
        self.detector = detector
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self.last_inference_s = 0.0

    async def score(self, subs: list[Submission]) -> list[TextScore]:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        scores = await loop.run_in_executor(self.executor, self.detector.score,
                                            [s.text for s in subs])
        self.last_inference_s = time.perf_counter() - t0
        return scores

    def flag(self, sub: Submission, score: TextScore) -> Flag:
        info = self.detector.info
        signals = compute_signals(sub.text, sub.events, source_text=sub.source_text,
                                  started_at=sub.started_at, submitted_at=sub.submitted_at)
        verdict = judge(sub.text, score, info, signals)
        return Flag(
            submission_id=sub.submission_id, worker_id=sub.worker_id, task_id=sub.task_id,
            p_llm=None if verdict.p_llm is None else round(verdict.p_llm, 6),
            verdict=verdict.verdict, reasons=list(verdict.reasons), signals=signals.to_dict(),
            model=info.label, scored_at=now_iso(),
            submitted_at=sub.submitted_at.isoformat() if sub.submitted_at else None,
            text=sub.text if self.settings.include_text else None,
            feature_distance=None if score.distance is None else round(score.distance, 4),
        )


def build_app(settings: Settings, detector: Detector, metrics: Metrics) -> faust.App:
    """The faust app with its topics, agents, table and web views."""
    faust_fixes.apply()
    pipe = Pipeline(settings, detector)
    app = faust.App(
        settings.consumer_group,
        broker=[f"kafka://{hp}" for hp in (settings.kafka_bootstrap or "").split(",")],
        broker_credentials=_credentials(settings),
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        consumer_auto_offset_reset="earliest",
        stream_ack_exceptions=False,
        stream_ack_cancelled_tasks=False,
        stream_wait_empty=True,
        producer_acks=-1,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        web_enabled=True,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_advertised_host or settings.web_host,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_tables_enabled=False,
        web_router_enabled=False,
        web_metrics_enabled=False,
        worker_redirect_stdouts=False,
        table_cleanup_interval=60.0,
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}
    submissions = app.topic(settings.topic_submissions, partitions=settings.topic_partitions,
                            **raw)
    flags = app.topic(settings.topic_flags, partitions=settings.topic_partitions, **raw)
    dead = app.topic(settings.topic_dead_letter, partitions=settings.topic_partitions, **raw)
    rates_out = app.topic(settings.topic_worker_rates, partitions=settings.topic_partitions,
                          **raw)
    # keys and values are bytes (the app's raw serializer): worker_id and orjson state
    workers = app.Table("worker-state", default=None, partitions=settings.topic_partitions,
                        key_type=bytes, value_type=bytes)
    prevalence = PrevalenceTracker(window_s=settings.rate_window_s, step_s=settings.rate_step_s)
    tracker = ThresholdTracker(settings.rate_threshold, settings.rate_min_submissions)
    ready = {"assigned": False}

    async def publish(topic: faust.TopicT, items: list[tuple[bytes, bytes]]) -> None:
        """Send and wait until the broker confirmed every message (retries while it is down)."""
        pending = items
        for attempt in range(10_000):
            futures = [await topic.send(key=k, value=v) for k, v in pending]
            results = await asyncio.gather(*futures, return_exceptions=True)
            failed = [item for item, res in zip(pending, results, strict=True)
                      if isinstance(res, BaseException)]
            if not failed:
                return
            delay = _SEND_RETRY_S[min(attempt, len(_SEND_RETRY_S) - 1)]
            log.warning("publish failed, retrying", extra={
                "topic": topic.get_topic_name(), "failed": len(failed), "retry_in_s": delay,
                "error": repr(next(r for r in results if isinstance(r, BaseException)))})
            pending = failed
            await asyncio.sleep(delay)

    def dead_letter(exc: Exception, event: faust.EventT) -> tuple[bytes, bytes]:
        msg = event.message
        letter = DeadLetter.of(exc, topic=msg.topic, partition=msg.partition,
                               offset=msg.offset, value=event.value, key=msg.key)
        metrics.dead_lettered(letter.reason)
        log.warning("dead-lettered", extra={"topic": msg.topic, "partition": msg.partition,
                                             "offset": msg.offset, "reason": letter.reason,
                                             "error": letter.error})
        return (msg.key or b"", letter.to_bytes())

    async def score_batch(events: list[faust.EventT]) -> None:
        t0 = time.perf_counter()
        pipe.last_inference_s = 0.0
        letters: list[tuple[bytes, bytes]] = []
        good: list[tuple[faust.EventT, Submission]] = []
        for ev in events:
            try:
                good.append((ev, parse_submission(ev.value,
                                                  max_bytes=settings.max_message_bytes)))
            except InputError as exc:
                letters.append(dead_letter(exc, ev))
        out: list[tuple[bytes, bytes]] = []
        if good:
            try:
                scores = await pipe.score([s for _, s in good])
            except Exception:  # noqa: BLE001 - isolate the message that breaks the batch
                log.exception("batch inference failed; scoring one by one")
                scores = []
                for ev, sub in good:
                    try:
                        scores.extend(await pipe.score([sub]))
                    except Exception as exc:  # noqa: BLE001
                        scores.append(None)  # type: ignore[arg-type]
                        letters.append(dead_letter(exc, ev))
            for (ev, sub), score in zip(good, scores, strict=True):
                if score is None:
                    continue
                try:
                    flag = pipe.flag(sub, score)
                except Exception as exc:  # noqa: BLE001 - never let one message stop the worker
                    log.exception("flag failed", extra={"topic": ev.message.topic,
                                                         "partition": ev.message.partition,
                                                         "offset": ev.message.offset})
                    letters.append(dead_letter(exc, ev))
                    continue
                out.append((sub.submission_id.encode(), flag.to_bytes()))
                metrics.scored(flag.verdict, flag.task_id, flag.p_llm,
                               unfamiliar=unfamiliar_reason(score, detector.info) is not None,
                               reply_formula=any(r.startswith(REPLY_FORMULA_REASON)
                                                 for r in flag.reasons[:1]))
                if sub.submitted_at is not None:
                    metrics.end_to_end((datetime.now(timezone.utc)
                                        - sub.submitted_at).total_seconds())
        await publish(flags, out)
        await publish(dead, letters)
        metrics.observe_batch(len(events), pipe.last_inference_s, time.perf_counter() - t0)

    @app.agent(submissions, concurrency=1)
    async def score_agent(stream: faust.StreamT) -> None:
        async for events in stream.noack_take(settings.batch_size, within=settings.batch_window_s):
            if log.isEnabledFor(logging.DEBUG):
                log.debug("batch", extra={"offsets": sorted(
                    (ev.message.partition, ev.message.offset) for ev in events)})
            await score_batch(list(events))
            for ev in events:  # only now: every output of the batch is on the broker
                await stream.ack(ev)

    def worker_key(value: bytes) -> bytes:
        try:
            return Flag.from_bytes(value).worker_id.encode()
        except Exception:  # noqa: BLE001 - a foreign record on the flags topic
            return b""

    @app.agent(flags, concurrency=1)
    async def rates_agent(stream: faust.StreamT) -> None:
        async for value in stream.group_by(worker_key, name="by-worker"):
            try:
                flag = Flag.from_bytes(value)
            except Exception:  # noqa: BLE001
                log.warning("unreadable record on the flags topic skipped")
                continue
            try:
                await update_worker(flag)
            except Exception:  # noqa: BLE001
                log.exception("worker rate update failed", extra={"worker_id": flag.worker_id})

    async def update_worker(flag: Flag) -> None:
        now = time.time()
        raw_state = workers.get(flag.worker_id.encode())
        state = (WorkerState.from_dict(orjson.loads(raw_state), window_s=settings.rate_window_s,
                                       step_s=settings.rate_step_s) if raw_state
                 else WorkerState(flag.worker_id, window_s=settings.rate_window_s,
                                  step_s=settings.rate_step_s))
        if any(r[0] == flag.submission_id for r in state.recent):
            return  # a replayed flag (at-least-once): already counted
        ts = now
        if flag.submitted_at:
            try:
                ts = min(now, parse_time(flag.submitted_at).timestamp())
            except ValueError:
                pass
        state.add(ts, flag.verdict, submission_id=flag.submission_id, p_llm=flag.p_llm)
        stats = state.stats(now)
        change = tracker.update(state, stats)
        if change is not None:
            await publish(rates_out, [(flag.worker_id.encode(), dumps(
                {"event": change, **stats.to_dict(), "threshold": settings.rate_threshold,
                 "min_submissions": settings.rate_min_submissions, "at": now_iso()}))])
            log.info("worker rate event", extra={"worker_id": flag.worker_id, "event": change,
                                                  "rate": round(stats.rate, 3), "n": stats.n})
        workers[flag.worker_id.encode()] = dumps(state.to_dict())
        metrics.update_worker(stats, state.flagged)
        prevalence.add(flag.task_id, flag.verdict, flag.p_llm, ts)

    @app.timer(interval=5.0)
    async def refresh_gauges() -> None:
        val = detector.info.validation
        metrics.set_prevalence(**prevalence.estimates(
            val.get("llm_verdict_tpr"), val.get("llm_verdict_fpr"), now=time.time()))
        consumer = app.consumer
        for tp in consumer.assignment():
            if tp.topic != settings.topic_submissions:
                continue
            high = consumer.highwater(tp)
            committed = consumer._committed_offset.get(tp)  # noqa: SLF001 - no public accessor
            if high is not None:
                metrics.set_lag(tp.partition, max(0, high - (committed or 0)))

    @app.on_partitions_assigned.connect
    async def on_assigned(app_: faust.App, assigned: Any, **_: Any) -> None:  # noqa: ARG001
        ready["assigned"] = True
        metrics.forget_partitions(tp.partition for tp in assigned
                                  if tp.topic == settings.topic_submissions)

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:  # noqa: ARG001
        # aiohttp refuses a charset inside content_type; the exposition format is UTF-8 anyway
        return web.bytes(metrics.render(), content_type=CONTENT_TYPE_LATEST.split(";")[0]
                         + "; version=0.0.4")

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:  # noqa: ARG001
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:  # noqa: ARG001
        ok = ready["assigned"] and not app.rebalancing
        body = {"ready": ok, "model": detector.info.label, "partitions_assigned": ready["assigned"],
                "rebalancing": bool(app.rebalancing)}
        return web.json(body, status=200 if ok else 503)

    @app.page("/workers/{worker_id}")
    @app.table_route(table=workers, match_info="worker_id")
    async def worker_view(web: Any, request: Any, worker_id: str) -> Any:  # noqa: ARG001
        raw_state = workers.get(worker_id.encode())
        if not raw_state:
            return web.json({"worker_id": worker_id, "error": "unknown worker"}, status=404)
        state = WorkerState.from_dict(orjson.loads(raw_state), window_s=settings.rate_window_s,
                                      step_s=settings.rate_step_s)
        stats = state.stats(time.time())
        recent = [{"submission_id": sid, "verdict": v, "p_llm": p, "at": ts}
                  for sid, v, p, ts in state.recent]
        return web.json({**stats.to_dict(), "flagged": state.flagged, "recent": recent})

    @app.page("/prevalence")
    async def prevalence_view(web: Any, request: Any) -> Any:  # noqa: ARG001
        val = detector.info.validation
        est = prevalence.estimates(val.get("llm_verdict_tpr"), val.get("llm_verdict_fpr"),
                                   now=time.time())
        return web.json({
            "model": detector.info.label, "scope": "partitions owned by this replica",
            "classifier": {"tpr": val.get("llm_verdict_tpr"), "fpr": val.get("llm_verdict_fpr")},
            "platform": {m: e.to_dict() for m, e in est["platform"].items()},
            "tasks": {t: {m: e.to_dict() for m, e in ms.items()}
                      for t, ms in est["tasks"].items()}})

    @app.page("/tasks/{task_id}/prevalence")
    async def task_view(web: Any, request: Any, task_id: str) -> Any:  # noqa: ARG001
        val = detector.info.validation
        est = prevalence.estimates(val.get("llm_verdict_tpr"), val.get("llm_verdict_fpr"),
                                   now=time.time())["tasks"].get(task_id)
        if est is None:
            return web.json({"task_id": task_id, "error": "unknown task on this replica"},
                            status=404)
        return web.json({"task_id": task_id, "model": detector.info.label,
                         **{m: e.to_dict() for m, e in est.items()}})

    app.crowdguard = {"pipeline": pipe, "workers": workers, "agents": (score_agent, rates_agent)}
    return app
