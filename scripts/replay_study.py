"""Replay a crowd study's file through the real stream and report rates and prevalence.

Starts a private local Kafka broker and one ``crowdguard run`` worker, publishes the
file with ``crowdguard replay`` logic (MTurk batch results or Prolific CSV), waits
for a flag per submission, then reads the per-worker rolling rates
(``/workers/{id}``) and the corrected prevalence (``/prevalence``) from the
worker. The rate window is widened to cover the study's dates.

Usage:
  python scripts/replay_study.py --data ../shared/data/gpturk/Batch_5083843_batch_results.csv \
      [--format mturk] [--model DIR] [--out bench/results/mturk_replay.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer  # noqa: E402

from service.broker import LocalBroker, free_port  # noqa: E402
from service.replay import iter_submissions, publish  # noqa: E402
from service.settings import DEFAULT_MODEL_DIR  # noqa: E402


def get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:  # noqa: S310
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


async def read_flags(bootstrap: str, topic: str, n: int, timeout: float) -> list[dict]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    flags: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(flags) < n and time.monotonic() < deadline:
            for recs in (await consumer.getmany(timeout_ms=500)).values():
                for r in recs:
                    f = orjson.loads(r.value)
                    flags[f["submission_id"]] = f
    finally:
        await consumer.stop()
    return list(flags.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--format", choices=["mturk", "prolific", "jsonl"], default="mturk")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "mturk_replay.json")
    args = ap.parse_args()
    subs = [s for s in iter_submissions(args.data, args.format) if isinstance(s, dict)]
    tmp = Path(tempfile.mkdtemp(prefix="crowdguard-replay-"))
    port, cport, web = free_port(), free_port(), free_port()
    broker = LocalBroker(tmp / "broker", port=port, controller_port=cport)
    bootstrap = broker.start()
    topics = {k: f"study.{k}" for k in ("submissions", "flags", "dead-letter", "worker-rates")}
    cmd = [sys.executable, "-m", "service.cli", "run", "--kafka-bootstrap", bootstrap,
           "--topic-submissions", topics["submissions"], "--topic-flags", topics["flags"],
           "--topic-dead-letter", topics["dead-letter"],
           "--topic-worker-rates", topics["worker-rates"], "--consumer-group", "study-replay",
           "--web-port", str(web), "--data-dir", str(tmp / "faust"), "--model-dir",
           str(args.model), "--rate-window-s", str(20 * 365 * 86400), "--rate-step-s", "86400",
           "--rate-min-submissions", "1", "--log-level", "WARNING"]
    worker = subprocess.Popen(cmd, cwd=ROOT)  # noqa: S603
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if get(web, "/readyz")[0] == 200:
                    break
            except OSError:
                time.sleep(1)
        res = asyncio.run(publish(args.data, args.format, bootstrap=bootstrap,
                                  topic=topics["submissions"]))
        flags = asyncio.run(read_flags(bootstrap, topics["flags"], len(subs), 180))
        time.sleep(3)  # the rates agent follows the flags topic
        workers = {}
        for wid in sorted({f["worker_id"] for f in flags}):
            workers[wid] = get(web, f"/workers/{wid}")[1]
        prevalence = get(web, "/prevalence")[1]
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        broker.stop()
    verdicts = Counter(f["verdict"] for f in flags)
    foreign = sum(1 for f in flags if (f["signals"].get("foreign_paste_share") or 0) >= 0.5)
    unfamiliar = sum(1 for f in flags
                     if any(r.startswith("unlike the model's training data") for r in f["reasons"]))
    report = {
        "data": args.data.name, "model": flags[0]["model"] if flags else None,
        "submissions": len(subs), "published": res.sent, "flagged": len(flags),
        "verdicts": dict(verdicts), "llm_share_raw": verdicts["llm"] / max(1, len(flags)),
        "foreign_paste_majority": foreign, "unfamiliar": unfamiliar,
        "prevalence": prevalence,
        "workers": {w: {k: v.get(k) for k in ("n", "n_llm", "n_uncertain", "rate", "lo", "hi",
                                              "flagged")} for w, v in workers.items()},
        "flags": [{k: f.get(k) for k in ("submission_id", "worker_id", "p_llm", "verdict",
                                         "reasons", "feature_distance")} for f in flags],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("submissions", "flags", "verdicts", "llm_share_raw",
                                             "foreign_paste_majority", "unfamiliar")},
                     indent=1))
    print(json.dumps(prevalence.get("platform"), indent=1))
    multi = {w: v for w, v in report["workers"].items() if (v.get("n") or 0) > 1}
    print(f"workers: {len(workers)}, with more than one submission: {len(multi)}")
    for w, v in multi.items():
        print(f"  {w}: n={v['n']} llm={v['n_llm']} rate={v['rate']:.2f} "
              f"[{v['lo']:.2f}, {v['hi']:.2f}]")
    return 0 if len(flags) == len(subs) else 1


if __name__ == "__main__":
    sys.exit(main())
