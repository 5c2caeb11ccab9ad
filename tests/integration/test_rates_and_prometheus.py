"""Per-worker rates through the stream, the HTTP views, and a real Prometheus scraping /metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter, defaultdict

import orjson
import pytest

from service.broker import free_port

from streamkit import Topics, WorkerProc, produce_sync, read_sync, submission, subs_bytes

pytestmark = pytest.mark.timeout(400)


def test_worker_rates_views_and_prometheus_scrape(kafka_bootstrap, tmp_path):
    topics = Topics()
    subs = [submission(i, worker=f"w-{i % 3}", task=f"task-{i % 2}") for i in range(60)]
    produce_sync(kafka_bootstrap, topics.submissions, subs_bytes(subs))
    # threshold 0.01 with min 1: any worker with one llm verdict crosses; none without
    worker = WorkerProc(kafka_bootstrap, topics, tmp_path,
                        extra=["--rate-threshold", "0.01", "--rate-min-submissions", "1"])
    prom = None
    try:
        worker.wait_ready()
        flags = [orjson.loads(r.value) for r in read_sync(kafka_bootstrap, topics.flags,
                                                          until=60)]
        per_worker: dict[str, Counter] = defaultdict(Counter)
        for f in {f["submission_id"]: f for f in flags}.values():
            per_worker[f["worker_id"]][f["verdict"]] += 1
        # the rate table is fed by a second agent: wait until it caught up
        deadline = time.monotonic() + 60
        views = {}
        while time.monotonic() < deadline:
            views = {w: worker.get(f"/workers/{w}") for w in per_worker}
            if all(s == 200 and json.loads(b)["n"] == sum(per_worker[w].values())
                   for w, (s, b) in views.items()):
                break
            time.sleep(1)
        for w, (status, body) in views.items():
            view = json.loads(body)
            assert status == 200, body
            assert view["n"] == sum(per_worker[w].values())
            assert view["n_llm"] == per_worker[w]["llm"]
            assert view["lo"] <= view["rate"] <= view["hi"]
            assert len(view["recent"]) == min(20, view["n"])
        assert worker.get("/workers/nobody")[0] == 404
        crossers = {w for w, c in per_worker.items() if c["llm"] > 0}
        if crossers:
            events = [orjson.loads(r.value) for r in
                      read_sync(kafka_bootstrap, topics.rates, until=len(crossers), timeout=30)]
            assert {e["worker_id"] for e in events if e["event"] == "crossed_up"} == crossers
        status, body = worker.get("/tasks/task-0/prevalence")
        assert status == 200
        prev = json.loads(body)
        assert set(prev) >= {"task_id", "rogan_gladen", "pcc"}
        assert worker.get("/healthz")[0] == 200

        # a real Prometheus scrapes the worker
        prom_bin = shutil.which("prometheus")
        assert prom_bin, "prometheus is not installed: apt-get install prometheus"
        port = free_port()
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: crowdguard
    static_configs: [{{targets: ['127.0.0.1:{worker.port}']}}]
""")
        prom = subprocess.Popen(  # noqa: S603
            [prom_bin, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def query(q: str) -> list:
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310
                return json.loads(resp.read())["data"]["result"]

        deadline = time.monotonic() + 60
        result: list = []
        while time.monotonic() < deadline:
            try:
                result = query("sum(crowdguard_submissions_scored_total)")
                if result and float(result[0]["value"][1]) == 60:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert result and float(result[0]["value"][1]) == 60
        assert query('up{job="crowdguard"}')[0]["value"][1] == "1"
        model = query("crowdguard_model_info")
        assert model and model[0]["metric"]["device"] == "cpu"
        assert float(query("crowdguard_model_ready")[0]["value"][1]) == 1
        rates = query("crowdguard_worker_llm_rate")
        assert {r["metric"]["worker_id"] for r in rates} <= set(per_worker)
        for r in rates:
            assert 0.0 <= float(r["value"][1]) <= 1.0
        assert query("crowdguard_batch_size_count")[0]["value"][1] != "0"
        lat = query("histogram_quantile(0.99, sum by (le) (crowdguard_inference_seconds_bucket))")
        assert lat and 0 < float(lat[0]["value"][1]) < 60
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(timeout=30)
        worker.close()
