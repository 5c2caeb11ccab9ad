"""End-to-end stream throughput and latency through a real Kafka broker, in one run:

1. **model-only**: ``Detector.score`` of the same texts in-process, in batches of
   ``--batch-size`` (threads = CPUs available), docs/s. Measured again at the end
   as a drift check (the machine's load may change during the run).
2. **saturation**: ``--n`` submissions are produced to fresh topics *before* one
   ``crowdguard run`` worker process starts; the worker drains the backlog.
   Throughput comes from the broker's append times of the flags (the flags
   topic is created with ``message.timestamp.type=LogAppendTime``), so the
   bench does not consume while the worker works and start-up is excluded:
   ``flags/s = flags appended after the first batch / (last append - end of the
   first batch's appends)``. The first batch (model warm-up, partition
   assignment, first fetch) is left out.
3. **latency at half load**: with the worker still running, submissions are
   produced at a fixed rate (default 50 % of the measured saturation
   throughput) for ``--latency-seconds``; each carries its send time
   (``submitted_at``, RFC 3339 with ms, and ``bench_sent_ns``). Latency of one
   submission = the broker's append time of its flag - its send time (also:
   the time the bench's consumer received the flag - send time). p50/p95/p99/max.

The worker, the broker and this bench share the machine's CPUs; the JSON
records the CPU seconds each used per phase and the machine's load.

Usage: python bench/bench_stream.py [--model DIR] [--n 2000] [--batch-size 32]
       [--data FILE] [--bootstrap HOST:PORT] [--latency-seconds 30]
       [--latency-rate DOCS_PER_S] [--batch-window-s S] [--out bench/results/stream.json]
Without ``--bootstrap`` a broker is started in a temporary home on free ports
and stopped at the end. Texts come from ``--data`` (JSON/JSONL/CSV with
``text``), default the bundled sample stream, cycled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from itertools import cycle, islice
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402

from service.broker import LocalBroker, free_port  # noqa: E402
from service.detector import Detector  # noqa: E402
from service.records import read_records  # noqa: E402
from service.settings import DEFAULT_MODEL_DIR, cpu_count  # noqa: E402
from service.worker import SAMPLE_STREAM  # noqa: E402

PARTITIONS = 4
#: Crowd workers the bench's submissions are spread over (the worker keeps per-worker state).
CROWD_WORKERS = 50
LATENCY_MAX_MESSAGES = 100_000
READY_TIMEOUT_S = 240.0
#: The saturation phase fails when no new flag appeared for this long.
STALL_TIMEOUT_S = 120.0
#: After the last latency submission was sent, wait at most this long for the remaining flags.
DRAIN_TIMEOUT_S = 60.0
#: Smallest gap (ms) between two flag appends that separates two batches (see saturation()).
FIRST_BATCH_GAP_MS = 5
TARGET_RATIO = 0.90
TARGET_P99_S = 1.0


def log(msg: str) -> None:
    print(f"[bench_stream {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- inputs --------------------------------------------------------------------------------
def load_texts(path: Path) -> list[str]:
    texts = [r.fields["text"] for r in read_records(path)
             if r.error is None and isinstance(r.fields.get("text"), str)
             and r.fields["text"].strip()]
    if not texts:
        raise SystemExit(f"{path}: no record with a non-empty 'text'")
    return texts


def iso_ms(ns: int) -> str:
    dt = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def submission(sid: str, i: int, text: str) -> dict[str, Any]:
    return {"submission_id": sid, "worker_id": f"bench-w{i % CROWD_WORKERS:03d}",
            "task_id": f"bench-task-{i % 5}", "text": text}


# -- process / machine accounting ----------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_cpu_s(pid: int | None) -> float | None:
    """utime + stime of a process in seconds (Linux procfs), None when unknown."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rfind(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, ValueError, IndexError):
        return None


def machine_cpu() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot (/proc/stat)."""
    try:
        parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return (total - idle) / _TICK, total / _TICK


class CpuMeter:
    """CPU seconds used by the worker, the broker, this bench and the whole machine."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self._start = self._snap()
        self._t0 = time.monotonic()

    def _snap(self) -> dict[str, Any]:
        t = os.times()
        return {"procs": {k: proc_cpu_s(p) for k, p in self.pids.items()},
                "bench": t.user + t.system, "machine": machine_cpu()}

    def stop(self) -> dict[str, Any]:
        end, wall = self._snap(), time.monotonic() - self._t0
        out: dict[str, Any] = {"wall_s": round(wall, 3)}
        for k in self.pids:
            a, b = self._start["procs"][k], end["procs"][k]
            out[f"{k}_cpu_s"] = None if a is None or b is None else round(b - a, 3)
        out["bench_cpu_s"] = round(end["bench"] - self._start["bench"], 3)
        if self._start["machine"] and end["machine"]:
            busy = end["machine"][0] - self._start["machine"][0]
            total = end["machine"][1] - self._start["machine"][1]
            out["machine_busy_cpu_s"] = round(busy, 3)
            out["machine_busy_fraction"] = round(busy / total, 3) if total > 0 else None
            named = sum(v for k, v in out.items()
                        if k.endswith("_cpu_s") and k != "machine_busy_cpu_s" and v is not None)
            out["other_processes_cpu_s"] = round(busy - named, 3)
        return out


# -- the worker's /metrics -----------------------------------------------------------------
def scrape(port: int) -> dict[str, float]:
    """Sums and counts of the worker's batch histograms (empty dict when unreachable)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
            text = resp.read().decode()
    except OSError:
        return {}
    wanted = {"crowdguard_inference_seconds", "crowdguard_batch_seconds", "crowdguard_batch_size"}
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name not in wanted:
            continue
        for s in fam.samples:
            if s.name.endswith(("_sum", "_count")):
                out[s.name] = s.value
    return out


def metrics_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    batches = d.get("crowdguard_batch_size_count", 0.0)
    docs = d.get("crowdguard_batch_size_sum", 0.0)
    if not batches or not docs:
        return {}
    inf = d.get("crowdguard_inference_seconds_sum", 0.0)
    bat = d.get("crowdguard_batch_seconds_sum", 0.0)
    return {"batches": int(batches), "docs": int(docs), "mean_batch_size": round(docs / batches, 2),
            "inference_s_total": round(inf, 3), "batch_s_total": round(bat, 3),
            "inference_ms_per_doc": round(1000 * inf / docs, 3),
            "batch_ms_per_doc": round(1000 * bat / docs, 3)}


# -- Kafka helpers -------------------------------------------------------------------------
class Names:
    def __init__(self) -> None:
        self.prefix = f"bench{uuid.uuid4().hex[:8]}"
        self.submissions = f"{self.prefix}.submissions"
        self.flags = f"{self.prefix}.flags"
        self.dead = f"{self.prefix}.dead-letter"
        self.rates = f"{self.prefix}.worker-rates"
        self.group = self.prefix  # faust's internal topics start with the app id


async def create_topics(bootstrap: str, names: Names) -> str:
    """Create the four topics; submissions and flags with broker append times.

    Returns the timestamp type asked for ("LogAppendTime", or "CreateTime" when
    the broker refused the topic config). Returns once every partition has a leader.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        kind = await _create(admin, names)
        topics = [names.submissions, names.flags, names.dead, names.rates]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            desc = await admin.describe_topics(topics)
            if len(desc) == len(topics) and all(
                    t["error_code"] == 0 and len(t["partitions"]) == PARTITIONS
                    and all(p["leader"] >= 0 for p in t["partitions"]) for t in desc):
                break
            await asyncio.sleep(0.2)
        return kind
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, names: Names) -> str:
    cfg = {"message.timestamp.type": "LogAppendTime"}
    plain = [NewTopic(names.dead, PARTITIONS, 1), NewTopic(names.rates, PARTITIONS, 1)]
    try:
        await admin.create_topics([NewTopic(names.submissions, PARTITIONS, 1, topic_configs=cfg),
                                   NewTopic(names.flags, PARTITIONS, 1, topic_configs=cfg),
                                   *plain])
        return "LogAppendTime"
    except Exception as exc:  # noqa: BLE001 - fall back to producer timestamps
        log(f"creating topics with LogAppendTime failed ({exc!r}); using CreateTime")
        existing = set(await admin.list_topics())
        await admin.create_topics([t for t in (NewTopic(names.submissions, PARTITIONS, 1),
                                               NewTopic(names.flags, PARTITIONS, 1), *plain)
                                   if t.name not in existing])
        return "CreateTime"


async def delete_topics(bootstrap: str, prefix: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if prefix in t]  # faust adds its own
        if ours:
            await admin.delete_topics(ours)
        return ours
    finally:
        await admin.close()


async def produce_all(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futs = [await producer.send(topic, value, key=key) for key, value in items]
        await asyncio.wait_for(asyncio.gather(*futs), timeout=120)
    finally:
        await producer.stop()


async def end_offsets_sum(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> int:
    ends = await consumer.end_offsets(tps)
    return sum(ends.values())


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        await consumer._client.force_metadata_update()  # noqa: SLF001 - topic just created
        await asyncio.sleep(0.2)
    raise RuntimeError(f"no partitions for topic {topic} after 30 s")


async def read_flags(bootstrap: str, topic: str, want: set[str], timeout: float) -> dict[str, Any]:
    """Earliest flag record per submission id in ``want`` (read from the beginning)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(found) < len(want):
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                for r in recs:
                    sid = orjson.loads(r.value)["submission_id"]
                    if sid in want and (sid not in found or r.timestamp < found[sid].timestamp):
                        found[sid] = r
    finally:
        await consumer.stop()
    return found


# -- the worker process --------------------------------------------------------------------
class Worker:
    def __init__(self, args: argparse.Namespace, bootstrap: str, names: Names, tmp: Path) -> None:
        self.port = free_port()
        self.log_path = tmp / "worker.log"
        self.cmd = [sys.executable, "-m", "service.cli", "run", "--kafka-bootstrap", bootstrap,
                    "--topic-submissions", names.submissions, "--topic-flags", names.flags,
                    "--topic-dead-letter", names.dead, "--topic-worker-rates", names.rates,
                    "--topic-partitions", str(PARTITIONS),
                    "--consumer-group", names.group, "--web-port", str(self.port),
                    "--data-dir", str(tmp / "faust"), "--model-dir", str(args.model),
                    "--batch-size", str(args.batch_size), "--log-level", "WARNING"]
        if args.batch_window_s is not None:
            self.cmd += ["--batch-window-s", str(args.batch_window_s)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDGUARD_")}
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=env, stdout=self._log,  # noqa: S603
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.exit_code: int | None = None

    def log_tail(self, chars: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz",  # noqa: S310
                                        timeout=2) as resp:
                return resp.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the worker exited with code {self.proc.returncode}:\n"
                               f"{self.log_tail()}")

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"worker did not stop within {timeout:.0f} s of SIGTERM; killing it")
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.exit_code = self.proc.returncode
        self._log.close()
        return self.exit_code


# -- phases --------------------------------------------------------------------------------
def model_only(model: Path, texts: list[str], batch: int, threads: int) -> float:
    det = Detector.load(model, threads=threads, batch_size=batch)
    det.score(texts[:batch])  # warm-up
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        det.score(texts[i:i + batch])
    return len(texts) / (time.perf_counter() - t0)


def pct(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    a = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = (round(float(np.percentile(a, q)), 4) for q in (50, 95, 99))
    return {"p50": p50, "p95": p95, "p99": p99, "max": round(float(a.max()), 4),
            "mean": round(float(a.mean()), 4)}


async def saturation(args: argparse.Namespace, bootstrap: str, names: Names, worker: Worker,
                     n: int, pids: dict[str, int | None], model_rate: float) -> dict[str, Any]:
    """Wait for the worker to drain the pre-produced backlog; throughput from append times."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    t_ready_ns: int | None = None
    try:
        tps = await topic_partitions(consumer, names.flags)
        last_count, last_change = 0, time.monotonic()
        start = time.monotonic()
        meter: CpuMeter | None = None
        while True:
            worker.check_alive()
            if t_ready_ns is None:
                if await asyncio.to_thread(worker.ready):
                    t_ready_ns = time.time_ns()
                    meter = CpuMeter(pids)
                    log(f"worker ready after {time.monotonic() - start:.1f} s")
                elif time.monotonic() - start > READY_TIMEOUT_S:
                    raise RuntimeError(f"worker not ready within {READY_TIMEOUT_S:.0f} s:\n"
                                       f"{worker.log_tail()}")
            count = await end_offsets_sum(consumer, tps)
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            if count >= n:
                break
            if t_ready_ns is not None and time.monotonic() - last_change > STALL_TIMEOUT_S:
                raise RuntimeError(f"no new flag for {STALL_TIMEOUT_S:.0f} s ({count}/{n} "
                                   f"flags):\n{worker.log_tail()}")
            await asyncio.sleep(0.25)
        cpu = meter.stop() if meter else None
    finally:
        await consumer.stop()
    metrics = metrics_delta({}, await asyncio.to_thread(scrape, worker.port))
    want = {f"{names.prefix}-sat-{i:06d}" for i in range(n)}
    recs = await read_flags(bootstrap, names.flags, want, timeout=120)
    if len(recs) < n:
        raise RuntimeError(f"only {len(recs)} of {n} flags could be read back")
    ts = sorted(r.timestamp for r in recs.values())  # ms
    ts_type = sorted({r.timestamp_type for r in recs.values()})
    t_first, t_last = ts[0], ts[-1]
    # One batch's flags are appended within a few ms of each other; consecutive batches are an
    # inference apart. Appends closer than `gap_ms` (30 % of a batch's model-only time, at least
    # FIRST_BATCH_GAP_MS) belong to the same batch. The first group is excluded.
    gap_ms = max(FIRST_BATCH_GAP_MS, 0.3 * 1000 * args.batch_size / model_rate)
    groups = [1]
    for a, b in zip(ts, ts[1:]):
        if b - a > gap_ms:
            groups.append(1)
        else:
            groups[-1] += 1
    cut = ts[groups[0] - 1]
    counted = n - groups[0]
    span_s = (t_last - cut) / 1000
    rate = counted / span_s if span_s > 0 and counted else None
    out: dict[str, Any] = {
        "n": n, "flags_read": len(recs),
        "flag_timestamp_type": ["CreateTime" if t == 0 else "LogAppendTime" for t in ts_type],
        "batch_gap_ms": round(gap_ms, 1), "append_groups": len(groups),
        "append_group_sizes": groups if len(groups) <= 200 else None,
        "first_batch_flags_excluded": groups[0], "flags_counted": counted,
        "span_s": round(span_s, 3), "flags_per_s": round(rate, 2) if rate else None,
        "first_flag_after_ready_s": round((t_first - t_ready_ns / 1e6) / 1000, 3)
        if t_ready_ns else None,
        "worker_metrics": metrics, "cpu_ready_to_done": cpu,
    }
    if t_ready_ns is not None and t_last > t_ready_ns / 1e6:
        # everything from the bench's first successful /readyz (polled every ~0.25 s) to the
        # last flag, with every flag appended after it; includes the first batch's warm-up
        after = sum(1 for t in ts if t > t_ready_ns / 1e6)
        out["flags_per_s_from_ready"] = round(after / ((t_last - t_ready_ns / 1e6) / 1000), 2)
    return out


async def latency(args: argparse.Namespace, bootstrap: str, names: Names, worker: Worker,
                  texts: list[str], rate: float, pids: dict[str, int | None]) -> dict[str, Any]:
    count = max(1, min(LATENCY_MAX_MESSAGES, int(round(rate * args.latency_seconds))))
    log(f"latency phase: {count} submissions at {rate:.1f}/s (~{count / rate:.1f} s)")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="latest")
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, names.flags)
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)  # resolve now, before the first send
    except BaseException:
        await consumer.stop()
        raise
    sent_ns: dict[str, int] = {}
    sub_append_ms: dict[str, int] = {}
    flag_append_ms: dict[str, int] = {}
    recv_ns: dict[str, int] = {}
    ts_types: set[int] = set()
    done_sending = asyncio.Event()

    async def receive() -> None:
        drain_deadline: float | None = None
        while True:
            if done_sending.is_set():
                if drain_deadline is None:
                    drain_deadline = time.monotonic() + DRAIN_TIMEOUT_S
                if len(recv_ns) >= count or time.monotonic() > drain_deadline:
                    return
            batch = await consumer.getmany(timeout_ms=200)
            now = time.time_ns()
            for recs in batch.values():
                for r in recs:
                    sid = orjson.loads(r.value)["submission_id"]
                    if sid in recv_ns or not sid.startswith(f"{names.prefix}-lat-"):
                        continue
                    recv_ns[sid] = now
                    flag_append_ms[sid] = r.timestamp
                    ts_types.add(r.timestamp_type)

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    before = await asyncio.to_thread(scrape, worker.port)
    meter = CpuMeter(pids)
    receiver = asyncio.create_task(receive())
    send_lag: list[float] = []
    futs: list[tuple[str, asyncio.Future]] = []
    try:
        t0 = time.monotonic() + 0.2
        for i in range(count):
            target = t0 + i / rate
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            send_lag.append(max(0.0, time.monotonic() - target))
            if receiver.done():
                receiver.result()  # surfaces an exception
            sid = f"{names.prefix}-lat-{i:06d}"
            ns = time.time_ns()
            sub = submission(sid, i, texts[i % len(texts)])
            sub["submitted_at"] = iso_ms(ns)
            sub["bench_sent_ns"] = ns
            sent_ns[sid] = ns
            futs.append((sid, await producer.send(names.submissions, orjson.dumps(sub),
                                                  key=sid.encode())))
        send_s = time.monotonic() - t0
        results = await asyncio.wait_for(asyncio.gather(*(f for _, f in futs)), timeout=60)
        for (sid, _), md in zip(futs, results, strict=True):
            if md.timestamp_type == 1:
                sub_append_ms[sid] = md.timestamp
        done_sending.set()
        worker.check_alive()
        await asyncio.wait_for(receiver, timeout=DRAIN_TIMEOUT_S + 30)
    finally:
        done_sending.set()
        if not receiver.done():
            receiver.cancel()
        await producer.stop()
        await consumer.stop()
    cpu = meter.stop()
    metrics = metrics_delta(before, await asyncio.to_thread(scrape, worker.port))
    lat_broker = [(flag_append_ms[s] - sent_ns[s] / 1e6) / 1000 for s in flag_append_ms]
    lat_recv = [(recv_ns[s] - sent_ns[s]) / 1e9 for s in recv_ns]
    to_broker = [(sub_append_ms[s] - sent_ns[s] / 1e6) / 1000 for s in sub_append_ms]
    in_worker = [(flag_append_ms[s] - sub_append_ms[s]) / 1000
                 for s in flag_append_ms if s in sub_append_ms]
    return {
        "rate_per_s": round(rate, 2), "sent": count, "send_s": round(send_s, 3),
        "achieved_send_rate_per_s": round(count / send_s, 2) if send_s > 0 else None,
        "max_send_lag_s": round(max(send_lag), 4) if send_lag else None,
        "flags_received": len(recv_ns), "missing": count - len(recv_ns),
        "flag_timestamp_type": ["CreateTime" if t == 0 else "LogAppendTime"
                                for t in sorted(ts_types)],
        "latency_s": pct(lat_broker),
        "latency_received_s": pct(lat_recv),
        "breakdown_s": {"send_to_submission_append": pct(to_broker),
                        "submission_append_to_flag_append": pct(in_worker)},
        "worker_metrics": metrics, "cpu": cpu,
    }


# -- main ----------------------------------------------------------------------------------
async def stream_phases(args: argparse.Namespace, bootstrap: str, texts: list[str],
                        tmp: Path, broker_pid: int | None, report: dict[str, Any]) -> None:
    names = Names()
    report["topics_prefix"] = names.prefix
    ts_type = await create_topics(bootstrap, names)
    report["settings"]["topic_timestamp_type_requested"] = ts_type
    items = []
    for i in range(args.n):
        sid = f"{names.prefix}-sat-{i:06d}"
        items.append((sid.encode(), orjson.dumps(submission(sid, i, texts[i % len(texts)]))))
    log(f"pre-producing {args.n} submissions to {names.submissions}")
    await produce_all(bootstrap, names.submissions, items)
    worker = Worker(args, bootstrap, names, tmp)
    report["worker_command"] = shlex.join(worker.cmd)
    pids = {"worker": worker.proc.pid, "broker": broker_pid}
    log(f"worker started (pid {worker.proc.pid}, web port {worker.port}); draining the backlog")
    try:
        report["saturation"] = sat = await saturation(args, bootstrap, names, worker, args.n, pids,
                                                      report["model_only"]["docs_per_s"])
        log(f"saturation: {sat['flags_per_s']} flags/s over {sat['flags_counted']} flags "
            f"({sat['span_s']} s)")
        if args.latency_seconds > 0:
            rate = args.latency_rate or (sat["flags_per_s"] or 0) * args.latency_fraction
            if rate <= 0:
                raise RuntimeError("no saturation throughput to derive the latency rate from")
            report["latency"] = await latency(args, bootstrap, names, worker, texts, rate, pids)
        worker.check_alive()
    finally:
        code = worker.stop()
        report["worker_exit_code"] = code
        log(f"worker stopped (exit code {code})")
        if code not in (0, None):
            log("worker log tail:\n" + worker.log_tail())
    if args.bootstrap:  # someone else's broker: leave nothing behind
        try:
            report["topics_deleted"] = await asyncio.wait_for(
                delete_topics(bootstrap, names.prefix), timeout=60)
        except Exception as exc:  # noqa: BLE001
            log(f"could not delete the bench topics ({exc!r})")


def print_table(r: dict[str, Any]) -> None:
    mo = r["model_only"]
    sat = r.get("saturation", {})
    lat = r.get("latency", {})
    rows = [("CPUs (affinity)", r["machine"]["cpu_count"]),
            ("batch size", r["settings"]["batch_size"]),
            ("model-only docs/s (start / end)", f"{mo['docs_per_s']} / {mo.get('docs_per_s_end')}"),
            ("end-to-end flags/s at saturation", sat.get("flags_per_s")),
            ("end-to-end / model-only", r.get("ratio")),
            ("  target", f">= {TARGET_RATIO:.2f}")]
    if lat:
        ls = lat["latency_s"]
        rows += [("latency phase rate /s (sent)", f"{lat['rate_per_s']} ({lat['sent']})"),
                 ("latency p50 / p95 / p99 / max s",
                  f"{ls['p50']} / {ls['p95']} / {ls['p99']} / {ls['max']}"),
                 ("  target p99", f"< {TARGET_P99_S:.1f} s"),
                 ("flags missing", lat["missing"])]
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print()


def _interrupt(signum: int, frame: Any) -> None:  # noqa: ARG001
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    ap.add_argument("--n", type=int, default=2000, help="submissions of the saturation phase")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--batch-window-s", type=float, default=None,
                    help="the worker's --batch-window-s (default: the worker's default)")
    ap.add_argument("--data", type=Path, default=SAMPLE_STREAM)
    ap.add_argument("--bootstrap", default=None, help="an existing broker; default: start one")
    ap.add_argument("--latency-seconds", type=float, default=30.0,
                    help="length of the fixed-rate phase (0 skips it)")
    ap.add_argument("--latency-fraction", type=float, default=0.5,
                    help="rate of the latency phase as a fraction of the saturation throughput")
    ap.add_argument("--latency-rate", type=float, default=None,
                    help="fixed rate (docs/s) of the latency phase, overrides --latency-fraction")
    ap.add_argument("--keep-tmp", action="store_true",
                    help="keep the temp dir (worker log, broker data)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "stream.json")
    args = ap.parse_args()
    if args.n < 2 or args.batch_size < 1:
        ap.error("--n must be >= 2 and --batch-size >= 1")

    # SIGTERM behaves like Ctrl-C: the finally blocks stop the worker and the broker
    signal.signal(signal.SIGTERM, _interrupt)
    # aiokafka logs (and retries) NotLeaderForPartition while fresh topics settle; failures that
    # matter surface as exceptions of the awaited sends
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    threads = cpu_count()
    base = load_texts(args.data)
    texts = list(islice(cycle(base), args.n))
    report: dict[str, Any] = {
        "bench": "stream", "command": shlex.join([sys.executable, *sys.argv]),
        "started_at": iso_ms(time.time_ns()),
        "settings": {"n": args.n, "batch_size": args.batch_size,
                     "batch_window_s": args.batch_window_s, "threads": threads,
                     "partitions": PARTITIONS, "crowd_workers": CROWD_WORKERS,
                     "latency_seconds": args.latency_seconds,
                     "latency_fraction": args.latency_fraction, "latency_rate": args.latency_rate,
                     "data": str(args.data), "distinct_texts": len(base),
                     "model": str(args.model), "broker": args.bootstrap or "local (temporary)"},
        "machine": {"cpu_count": threads, "os_cpu_count": os.cpu_count(),
                    "cpu": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "loadavg_start": os.getloadavg()},
        "targets": {"ratio_min": TARGET_RATIO, "p99_max_s": TARGET_P99_S},
    }
    log(f"model-only: {args.n} texts, batch {args.batch_size}, {threads} threads")
    report["model_only"] = {"docs_per_s": round(model_only(args.model, texts, args.batch_size,
                                                           threads), 2),
                            "n": args.n, "batch_size": args.batch_size, "threads": threads}
    log(f"model-only: {report['model_only']['docs_per_s']} docs/s")

    tmp = Path(tempfile.mkdtemp(prefix="crowdguard-bench-"))
    broker: LocalBroker | None = None
    ok = False
    try:
        if args.bootstrap:
            bootstrap, broker_pid = args.bootstrap, None
        else:
            broker = LocalBroker(tmp / "broker", port=free_port(), controller_port=free_port(),
                                 partitions=PARTITIONS)
            log("starting a temporary Kafka broker")
            bootstrap = broker.start(timeout=180)
            broker_pid = broker.status().pid
            log(f"broker ready at {bootstrap}")
        asyncio.run(stream_phases(args, bootstrap, texts, tmp, broker_pid, report))
        ok = True
    finally:
        if broker is not None:
            log("stopping the broker")
            try:
                broker.stop()
            except Exception as exc:  # noqa: BLE001
                log(f"broker stop failed: {exc!r}")
        if args.keep_tmp or not ok:
            log(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    log("model-only again (drift check)")
    report["model_only"]["docs_per_s_end"] = round(model_only(args.model, texts, args.batch_size,
                                                              threads), 2)
    report["machine"]["loadavg_end"] = os.getloadavg()
    sat_rate = report.get("saturation", {}).get("flags_per_s")
    mo = report["model_only"]["docs_per_s"]
    report["ratio"] = round(sat_rate / mo, 3) if sat_rate else None
    report["ratio_vs_end_model_only"] = (round(sat_rate / report["model_only"]["docs_per_s_end"], 3)
                                         if sat_rate else None)
    lat = report.get("latency")
    report["meets_targets"] = {
        "ratio": None if report["ratio"] is None else report["ratio"] >= TARGET_RATIO,
        "p99": None if not lat or lat["latency_s"]["p99"] is None
        else lat["missing"] == 0 and lat["latency_s"]["p99"] < TARGET_P99_S,
    }
    sat = report.get("saturation", {})
    wm = sat.get("worker_metrics") or {}
    if sat_rate and wm:
        # per-document time at saturation: where the end-to-end time goes (see README)
        report["per_doc_ms_at_saturation"] = {
            "end_to_end": round(1000 / sat_rate, 3),
            "model_only": round(1000 / mo, 3),
            "inference_in_worker": wm["inference_ms_per_doc"],
            "batch_other": round(wm["batch_ms_per_doc"] - wm["inference_ms_per_doc"], 3),
            "between_batches": round(1000 / sat_rate - wm["batch_ms_per_doc"], 3),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
