"""service.metrics: real prometheus_client rendering, caps, eviction, bounded labels.

Also checks that every metric the alert rules and the Grafana dashboard use is
one the service exports.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.metrics import OTHER_TASK, RATE_BUCKETS, Metrics
from service.rates import Estimate, PrevalenceTracker, WorkerRate, WorkerState
from service.schema import DEAD_LETTER_REASONS

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "helm" / "crowdguard" / "files" / "alerts.yaml"
DASHBOARD = ROOT / "helm" / "crowdguard" / "files" / "dashboard.json"


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def parse(m: Metrics) -> dict[str, list]:
    """sample name -> list of (labels, value)."""
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(m.render().decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(samples: dict[str, list], name: str, **labels: str) -> float | None:
    for lab, v in samples.get(name, []):
        if all(lab.get(k) == val for k, val in labels.items()):
            return v
    return None


def rate(wid: str, r: float, n: int, expires_at: float | None = None) -> WorkerRate:
    return WorkerRate(wid, n, round(r * n), 0, r, 0.0, 1.0, 3600.0, expires_at)


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def m(clock: Clock) -> Metrics:
    return Metrics(max_task_series=3, max_worker_series=5, min_n=5, clock=clock)


# --- basics -----------------------------------------------------------------------------------
def test_renders_text_exposition_with_everything_pre_initialized(m: Metrics) -> None:
    raw = m.render()
    assert isinstance(raw, bytes) and raw.endswith(b"\n")
    s = parse(m)
    for reason in DEAD_LETTER_REASONS:
        assert value(s, "crowdguard_dead_letters_total", reason=reason) == 0.0
    for v in ("llm", "human", "uncertain"):
        assert value(s, "crowdguard_submissions_scored_total", verdict=v) == 0.0
    assert not any(n.endswith("_created") for n in s)
    for name in ("crowdguard_inference_seconds_count", "crowdguard_batch_seconds_count",
                 "crowdguard_batch_size_count", "crowdguard_end_to_end_seconds_count",
                 "crowdguard_model_ready", "crowdguard_workers_over_threshold",
                 "crowdguard_workers_tracked", "crowdguard_worker_llm_rate_distribution_bucket"):
        assert name in s, name
    assert b"# TYPE crowdguard_submissions_scored_total counter" in raw
    assert b"# TYPE crowdguard_worker_llm_rate_distribution histogram" in raw


def test_registries_are_per_instance() -> None:
    a, b = Metrics(process_metrics=False), Metrics(process_metrics=False)
    a.scored("llm", "t")
    assert value(parse(a), "crowdguard_submissions_scored_total", verdict="llm") == 1.0
    assert value(parse(b), "crowdguard_submissions_scored_total", verdict="llm") == 0.0


def test_scored_and_task_cap(m: Metrics) -> None:
    for t in ["a", "b", "c", "d", "e", "a"]:
        m.scored("llm", t, p_llm=0.9)
    m.scored("human", "d", p_llm=0.1)
    m.scored("weird-verdict", "a")
    s = parse(m)
    assert value(s, "crowdguard_submissions_scored_total", verdict="llm") == 6
    assert value(s, "crowdguard_submissions_scored_total", verdict="uncertain") == 1
    tasks = {lab["task_id"] for lab, _ in s["crowdguard_task_submissions_scored_total"]}
    assert tasks == {"a", "b", "c", OTHER_TASK}
    assert value(s, "crowdguard_task_submissions_scored_total", task_id="a", verdict="llm") == 2
    assert value(s, "crowdguard_task_submissions_scored_total", task_id=OTHER_TASK,
                 verdict="llm") == 2
    assert value(s, "crowdguard_task_submissions_scored_total", task_id=OTHER_TASK,
                 verdict="human") == 1
    assert value(s, "crowdguard_text_llm_probability_count") == 7
    assert value(s, "crowdguard_text_llm_probability_sum") == pytest.approx(6 * 0.9 + 0.1)


@pytest.mark.parametrize("flag, name, verdict", [
    ("unfamiliar", "crowdguard_unfamiliar_texts_total", "uncertain"),
    ("reply_formula", "crowdguard_reply_formula_texts_total", "llm"),
])
def test_unfamiliar_and_reply_formula_texts_are_counted(m: Metrics, flag: str, name: str,
                                                         verdict: str) -> None:
    assert value(parse(m), name) == 0  # exported before any
    m.scored(verdict, "a", p_llm=0.5, **{flag: True})
    m.scored("human", "a", p_llm=0.1)
    s = parse(m)
    assert value(s, name) == 1
    assert value(s, "crowdguard_submissions_scored_total", verdict=verdict) == 1


def test_dead_letters_batches_latency(m: Metrics) -> None:
    m.dead_lettered("not_json")
    m.dead_lettered("something new")  # unknown reasons must not create series
    m.observe_batch(32, 0.12, 0.2)
    m.observe_batch(4, 0.01, 0.03)
    m.end_to_end(2.0)
    m.end_to_end(-3.0)  # clock skew
    m.end_to_end(float("nan"))
    s = parse(m)
    assert value(s, "crowdguard_dead_letters_total", reason="not_json") == 1
    assert value(s, "crowdguard_dead_letters_total", reason="processing_error") == 1
    assert len(s["crowdguard_dead_letters_total"]) == len(DEAD_LETTER_REASONS)
    assert value(s, "crowdguard_batch_size_sum") == 36
    assert value(s, "crowdguard_inference_seconds_count") == 2
    assert value(s, "crowdguard_batch_seconds_bucket", le="0.05") == 1
    assert value(s, "crowdguard_end_to_end_seconds_count") == 2
    assert value(s, "crowdguard_end_to_end_seconds_bucket", le="0.05") == 1


def test_lag_and_rebalance(m: Metrics) -> None:
    m.set_lag(0, 10)
    m.set_lag(1, 20)
    m.set_lag(2, -5)
    m.forget_partitions([1, 2])
    s = parse(m)
    assert {lab["partition"]: v for lab, v in s["crowdguard_consumer_lag_messages"]} == {
        "1": 20.0, "2": 0.0}


def test_model_info_and_ready(m: Metrics) -> None:
    m.set_model("crowdguard-detector@2024.1", "cpu", ready=False)
    m.set_model("crowdguard-detector@2024.2", "cuda", ready=True)
    s = parse(m)
    assert s["crowdguard_model_info"] == [
        ({"name": "crowdguard-detector", "version": "2024.2", "device": "cuda"}, 1.0)]
    assert value(s, "crowdguard_model_ready") == 1.0
    m.set_ready(False)
    assert value(parse(m), "crowdguard_model_ready") == 0.0


# --- per-worker series ---------------------------------------------------------------------------
def test_worker_series_capped_and_ranked(m: Metrics, clock: Clock) -> None:
    exp = clock.t + 3600
    m.update_worker(rate("few-but-all-llm", 1.0, 3, exp), flagged=False)  # n < min_n
    for i in range(20):
        m.update_worker(rate(f"w{i:02d}", i / 20, 10, exp), flagged=i / 20 >= 0.5)
    m.update_worker(rate("tie-more", 0.95, 40, exp), flagged=True)
    s = parse(m)
    exposed = {lab["worker_id"]: v for lab, v in s["crowdguard_worker_llm_rate"]}
    assert set(exposed) == {"tie-more", "w19", "w18", "w17", "w16"}
    assert exposed["tie-more"] == 0.95
    subs = {lab["worker_id"]: v for lab, v in s["crowdguard_worker_window_submissions"]}
    assert set(subs) == set(exposed) and subs["tie-more"] == 40
    assert value(s, "crowdguard_workers_over_threshold") == 11
    assert value(s, "crowdguard_workers_tracked") == 22
    # the distribution covers all 22 workers, not just the exposed ones
    assert value(s, "crowdguard_worker_llm_rate_distribution_bucket", le="+Inf") == 22
    assert value(s, "crowdguard_worker_llm_rate_distribution_bucket", le="0.1") == 3  # 0, .05, .1
    assert value(s, "crowdguard_worker_llm_rate_distribution_bucket", le="1.0") == 22
    assert value(s, "crowdguard_worker_llm_rate_distribution_gcount") == 22
    buckets = [value(s, "crowdguard_worker_llm_rate_distribution_bucket", le=repr(float(b)))
               for b in RATE_BUCKETS]
    assert buckets == sorted(buckets)  # cumulative


def test_low_n_workers_fill_free_slots(m: Metrics, clock: Clock) -> None:
    m.update_worker(rate("eligible", 0.1, 10), flagged=False)
    m.update_worker(rate("one-sub", 1.0, 1), flagged=False)
    names = [lab["worker_id"] for lab, _ in parse(m)["crowdguard_worker_llm_rate"]]
    assert names == ["eligible", "one-sub"]


def test_worker_eviction_is_exact(m: Metrics, clock: Clock) -> None:
    m.update_worker(rate("stale", 0.9, 10, expires_at=clock.t + 60), flagged=True)
    m.update_worker(rate("fresh", 0.2, 10, expires_at=clock.t + 7200), flagged=False)
    m.update_worker(rate("gone", 0.8, 10, expires_at=clock.t + 7200), flagged=True)
    m.update_worker(rate("gone", 0.0, 0), flagged=False)  # its window emptied
    s = parse(m)
    assert {lab["worker_id"] for lab, _ in s["crowdguard_worker_llm_rate"]} == {"stale", "fresh"}
    clock.t += 61
    s = parse(m)
    assert {lab["worker_id"] for lab, _ in s["crowdguard_worker_llm_rate"]} == {"fresh"}
    assert value(s, "crowdguard_workers_over_threshold") == 0
    assert value(s, "crowdguard_workers_tracked") == 1
    m.remove_worker("fresh")
    s = parse(m)
    assert "crowdguard_worker_llm_rate" not in s
    assert value(s, "crowdguard_worker_llm_rate_distribution_bucket", le="+Inf") == 0


def test_worker_state_feeds_metrics(clock: Clock) -> None:
    m = Metrics(max_worker_series=10, min_n=2, clock=clock, process_metrics=False)
    st = WorkerState("w-a", window_s=3600, step_s=600)
    st.add(clock.t - 100, "llm")
    st.add(clock.t - 50, "llm")
    m.update_worker(st.stats(clock.t), flagged=True)
    assert value(parse(m), "crowdguard_worker_llm_rate", worker_id="w-a") == 1.0
    clock.t += 3600 + 600
    assert "crowdguard_worker_llm_rate" not in parse(m)


def test_tracked_workers_memory_is_bounded(clock: Clock) -> None:
    m = Metrics(max_worker_series=3, max_tracked_workers=100, clock=clock, process_metrics=False)
    for i in range(1000):
        m.update_worker(rate(f"w{i}", 0.5, 10), flagged=False)
    assert len(m.workers.workers) == 100
    assert "w999" in m.workers.workers and "w0" not in m.workers.workers


def test_zero_worker_series(clock: Clock) -> None:
    m = Metrics(max_worker_series=0, clock=clock, process_metrics=False)
    m.update_worker(rate("w", 0.9, 10), flagged=True)
    s = parse(m)
    assert "crowdguard_worker_llm_rate" not in s
    assert value(s, "crowdguard_workers_over_threshold") == 1


# --- prevalence -----------------------------------------------------------------------------------
def test_prevalence_gauges(m: Metrics) -> None:
    pt = PrevalenceTracker()
    for i in range(50):
        pt.add(f"t{i % 5}", "llm" if i % 3 == 0 else "human", 0.9 if i % 3 == 0 else 0.1)
    est = pt.estimates(0.8, 0.05)
    m.set_prevalence(est["platform"], est["tasks"])
    s = parse(m)
    plat = {(lab["method"], lab["bound"]): v for lab, v in s["crowdguard_llm_prevalence"]}
    assert set(plat) == {(meth, b) for meth in ("rogan_gladen", "pcc")
                         for b in ("estimate", "lower", "upper")}
    assert plat[("rogan_gladen", "lower")] <= plat[("rogan_gladen", "estimate")] \
        <= plat[("rogan_gladen", "upper")]
    tasks = {lab["task_id"] for lab, _ in s["crowdguard_task_llm_prevalence"]}
    assert len(tasks) == 3  # max_task_series
    # replacing drops tasks that are gone; estimates without a value give no series
    m.set_prevalence({"rogan_gladen": Estimate.none("no submissions"),
                      "pcc": Estimate(0.2, 0.1, 0.3, 10)},
                     {"only": {"pcc": Estimate(0.5, 0.4, 0.6, 10)}})
    s = parse(m)
    assert {(lab["method"], lab["bound"]) for lab, _ in s["crowdguard_llm_prevalence"]} == {
        ("pcc", "estimate"), ("pcc", "lower"), ("pcc", "upper")}
    assert {lab["task_id"] for lab, _ in s["crowdguard_task_llm_prevalence"]} == {"only"}


def test_no_unbounded_labels_under_random_load(clock: Clock) -> None:
    m = Metrics(max_task_series=20, max_worker_series=30, clock=clock, process_metrics=False)
    rng = random.Random(5)
    pt = PrevalenceTracker(max_tasks=1000)
    for i in range(5000):
        task = f"task-{rng.randrange(10_000)}"
        verdict = rng.choice(["llm", "human", "uncertain", "bogus"])
        m.scored(verdict, task, p_llm=rng.random())
        pt.add(task, verdict, rng.random())
        m.dead_lettered(rng.choice([*DEAD_LETTER_REASONS, f"r{i}"]))
        m.update_worker(rate(f"worker-{i}", rng.random(), rng.randrange(1, 30),
                             clock.t + rng.randrange(-100, 100)), flagged=rng.random() < 0.1)
    est = pt.estimates(0.8, 0.05)
    m.set_prevalence(est["platform"], est["tasks"])
    s = parse(m)
    assert len(s["crowdguard_task_submissions_scored_total"]) <= 21 * 3
    assert len({lab["task_id"] for lab, _ in s["crowdguard_task_llm_prevalence"]}) <= 20
    assert len(s["crowdguard_worker_llm_rate"]) == 30
    assert len(s["crowdguard_dead_letters_total"]) == len(DEAD_LETTER_REASONS)
    total = sum(len(v) for k, v in s.items() if k.startswith("crowdguard_"))
    assert total < 500


# --- alerts and dashboard use only exported metrics ------------------------------------------
def exported_names() -> set[str]:
    m = Metrics(process_metrics=False)
    m.scored("llm", "t", 0.5)
    m.observe_batch(1, 0.1, 0.1)
    m.end_to_end(1.0)
    m.set_lag(0, 1)
    m.set_model("x@1", "cpu", True)
    m.update_worker(rate("w", 0.5, 10), flagged=True)
    m.set_prevalence({"pcc": Estimate(0.1, 0.0, 0.2, 5)},
                     {"t": {"rogan_gladen": Estimate(0.1, 0.0, 0.2, 5)}})
    return set(parse(m))


def referenced(text: str) -> set[str]:
    return set(re.findall(r"\bcrowdguard_[a-z0-9_]+", text))


def test_alert_rules_reference_exported_metrics() -> None:
    names = referenced(ALERTS.read_text())
    assert names and names <= exported_names(), names - exported_names()


def test_dashboard_is_valid_and_uses_exported_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    var = [v for v in dash["templating"]["list"] if v["name"] == "datasource"]
    assert var and var[0]["type"] == "datasource" and var[0]["query"] == "prometheus"
    exprs = []
    ids = set()
    for p in dash["panels"]:
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["id"] not in ids
        ids.add(p["id"])
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"
            exprs.append(t["expr"])
    names = referenced("\n".join(exprs))
    assert names <= exported_names(), names - exported_names()
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for want in ("verdict", "dead letter", "latency", "batch size", "lag", "prevalence",
                 "top workers", "distribution"):
        assert want in titles, want
    assert any("bound=\"lower\"" in e for e in exprs) and any("0.99" in e for e in exprs)
