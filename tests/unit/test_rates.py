"""service.rates: intervals, windowed worker state, crossings, prevalence."""

from __future__ import annotations

import math
import random
from datetime import datetime, timezone

import orjson
import pytest

from service.rates import (
    HYSTERESIS_MARGIN, OTHER_TASK, RECENT_VERDICTS, Estimate, PrevalenceTracker, RollingCounter,
    ThresholdTracker, WorkerRate, WorkerState, crossing, probabilistic_cc, rogan_gladen,
    wilson_interval,
)

H = 3600.0
DAY = 24 * H


# --- Wilson ------------------------------------------------------------------------------------
def test_wilson_known_values() -> None:
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_contains_rate_and_narrows_with_n() -> None:
    prev = 1.0
    for n in (10, 100, 1000, 10000):
        k = n * 3 // 10
        lo, hi = wilson_interval(k, n)
        assert lo <= k / n <= hi
        assert hi - lo < prev
        prev = hi - lo


def test_wilson_coverage_is_close_to_nominal() -> None:
    rng = random.Random(1)
    p, n, trials = 0.2, 40, 2000
    covered = 0
    for _ in range(trials):
        k = sum(rng.random() < p for _ in range(n))
        lo, hi = wilson_interval(k, n)
        covered += lo <= p <= hi
    assert 0.92 <= covered / trials <= 0.98


# --- WorkerState ------------------------------------------------------------------------------
def test_worker_state_counts_and_rate() -> None:
    st = WorkerState("w1", window_s=7 * DAY, step_s=H)
    t0 = 1_700_000_000.0
    for i, v in enumerate(["llm", "llm", "human", "uncertain", "llm"]):
        st.add(t0 + i * 60, v, submission_id=f"s{i}", p_llm=0.5)
    r = st.stats(t0 + 600)
    assert (r.n, r.n_llm, r.n_uncertain) == (5, 3, 1)
    assert r.rate == pytest.approx(0.6)
    assert (r.lo, r.hi) == pytest.approx(wilson_interval(3, 5))
    assert r.window_s == 7 * DAY and r.worker_id == "w1"


def test_hopping_window_expiry() -> None:
    st = WorkerState("w", window_s=10 * H, step_s=H)
    t0 = 1000 * H  # start of a bucket
    st.add(t0 + 10, "llm")
    assert st.stats(t0 + 9 * H + 3599).n == 1      # still in the 10th bucket of the window
    assert st.stats(t0 + 10 * H).n == 0            # left between window_s and window_s+step_s
    r = st.stats(t0 + 5 * H)
    assert r.expires_at == pytest.approx(t0 + 10 * H)
    assert st.stats(t0 + 20 * H).expires_at is None


def test_datetime_timestamps() -> None:
    st = WorkerState("w", window_s=DAY, step_s=H)
    st.add(datetime(2024, 1, 1, 12, tzinfo=timezone.utc), "llm")
    assert st.stats(datetime(2024, 1, 1, 13, tzinfo=timezone.utc)).n_llm == 1
    assert st.stats(datetime(2024, 1, 3, tzinfo=timezone.utc)).n == 0


def test_state_is_bounded() -> None:
    st = WorkerState("w", window_s=24 * H, step_s=H)
    for i in range(24 * 30):  # a month, hourly
        st.add(i * H + 5, "llm" if i % 3 == 0 else "human", submission_id=str(i))
    assert len(st.buckets) <= 25
    assert len(st.recent) == RECENT_VERDICTS
    assert st.recent[-1][0] == str(24 * 30 - 1)
    assert len(orjson.dumps(st.to_dict())) < 5000


def test_state_round_trips_through_json() -> None:
    st = WorkerState("w", window_s=7 * DAY, step_s=H)
    for i in range(30):
        st.add(1_700_000_000 + i * 1000, ["llm", "human", "uncertain"][i % 3],
               submission_id=f"s{i}", p_llm=i / 30)
    st.flagged = True
    d = orjson.loads(orjson.dumps(st.to_dict()))
    back = WorkerState.from_dict(d)
    now = 1_700_000_000 + 40_000
    assert back.stats(now) == st.stats(now)
    assert list(back.recent) == list(st.recent) and back.flagged
    # re-bucketing to a coarser step keeps the counts
    coarse = WorkerState.from_dict(d, step_s=6 * H)
    assert coarse.stats(now).n == st.stats(now).n


def test_late_old_event_does_not_resurrect_the_window() -> None:
    st = WorkerState("w", window_s=2 * H, step_s=H)
    st.add(100 * H, "llm")
    st.add(10 * H, "llm")  # far older than the window of the newest bucket
    assert st.stats(100 * H).n == 1 and len(st.buckets) == 1


def test_rolling_counter() -> None:
    rc = RollingCounter(window_s=2 * H, step_s=H)
    rc.add("a", 0.0, True, "llm")
    rc.add("a", 10.0, False, "uncertain")
    rc.add("b", 10.0, False)
    assert rc.rate("a", 20.0).n_uncertain == 1 and rc.rate("a", 20.0).rate == 0.5
    assert rc.rate("zzz", 20.0).n == 0
    assert rc.expire(5 * H) == ["a", "b"] and not rc.states
    rc.add("c", 5 * H, True)
    assert RollingCounter.from_dict(rc.to_dict()).rate("c", 5 * H).n_llm == 1


# --- crossings --------------------------------------------------------------------------------
def wr(rate: float, n: int) -> WorkerRate:
    k = round(rate * n)
    return WorkerRate("w", n, k, 0, rate, 0.0, 1.0, 3600.0)


def test_crossing_up_needs_min_n() -> None:
    assert crossing(False, wr(0.8, 4), 0.5, 5) is None
    assert crossing(False, wr(0.8, 5), 0.5, 5) == "crossed_up"
    assert crossing(False, wr(0.5, 10), 0.5, 5) == "crossed_up"
    assert crossing(False, wr(0.4, 10), 0.5, 5) is None


def test_crossing_hysteresis() -> None:
    assert HYSTERESIS_MARGIN == 0.05
    assert crossing(True, wr(0.48, 50), 0.5, 5) is None        # within the margin: stay
    assert crossing(True, wr(0.46, 50), 0.5, 5) is None
    assert crossing(True, wr(0.44, 50), 0.5, 5) == "fell_back"
    assert crossing(True, wr(0.9, 3), 0.5, 5) == "fell_back"   # window thinned out
    assert crossing(True, wr(0.9, 50), 0.5, 5) is None


def test_threshold_tracker_no_flapping() -> None:
    tr = ThresholdTracker(0.5, 5)
    st = WorkerState("w", window_s=DAY, step_s=H)
    events = []
    for rate in [0.3, 0.5, 0.49, 0.51, 0.47, 0.52, 0.46, 0.44, 0.5, 0.3]:
        ev = tr.update(st, wr(rate, 20))
        if ev:
            events.append((rate, ev))
    assert events == [(0.5, "crossed_up"), (0.44, "fell_back"), (0.5, "crossed_up"),
                      (0.3, "fell_back")]
    with pytest.raises(ValueError):
        ThresholdTracker(0.0, 5)


# --- prevalence ----------------------------------------------------------------------------------
def test_rogan_gladen_point_and_interval() -> None:
    e = rogan_gladen(30, 100, tpr=0.8, fpr=0.05)
    assert e.value == pytest.approx((0.3 - 0.05) / 0.75)
    lo, hi = wilson_interval(30, 100)
    assert e.lo == pytest.approx((lo - 0.05) / 0.75) and e.hi == pytest.approx((hi - 0.05) / 0.75)
    assert e.lo < e.value < e.hi and e.n == 100


def test_rogan_gladen_clips_and_degenerate_cases() -> None:
    e = rogan_gladen(1, 100, tpr=0.8, fpr=0.05)  # raw rate below fpr
    assert e.value == 0.0 and e.lo == 0.0 and 0 < e.hi < 1
    assert rogan_gladen(100, 100, tpr=0.8, fpr=0.05).value == 1.0
    none = rogan_gladen(0, 0, 0.8, 0.05)
    assert none.value is None and none.reason == "no submissions"
    bad = rogan_gladen(5, 10, 0.3, 0.3)
    assert bad.value is None and "tpr <= fpr" in bad.reason and bad.n == 10


def test_rogan_gladen_is_unbiased_in_simulation() -> None:
    rng = random.Random(3)
    prev, tpr, fpr, n = 0.3, 0.7, 0.02, 20000
    k = 0
    for _ in range(n):
        is_llm = rng.random() < prev
        k += rng.random() < (tpr if is_llm else fpr)
    e = rogan_gladen(k, n, tpr, fpr)
    assert e.lo <= prev <= e.hi
    assert abs(k / n - prev) > 0.05  # the naive count is far off


def test_pcc() -> None:
    e = probabilistic_cc([0.1, 0.9, 0.5, 0.5])
    assert e.value == pytest.approx(0.5) and e.n == 4
    sd = math.sqrt(sum((p - 0.5) ** 2 for p in [0.1, 0.9, 0.5, 0.5]) / 3)
    assert e.hi == pytest.approx(0.5 + 1.96 * sd / 2)
    assert probabilistic_cc([]).value is None
    assert probabilistic_cc([0.7]).value == pytest.approx(0.7)  # n=1: zero-width interval
    adj = probabilistic_cc([0.5] * 10, tpr_p=0.9, fpr_p=0.1)
    assert adj.value == pytest.approx(0.5)
    assert probabilistic_cc([0.5], tpr_p=0.2, fpr_p=0.3).value is None
    assert probabilistic_cc([0.2, None, float("nan")]).n == 1  # type: ignore[list-item]


def test_prevalence_tracker_cumulative() -> None:
    pt = PrevalenceTracker(max_tasks=2)
    for i in range(10):
        pt.add("t1", "llm" if i < 4 else "human", 0.8 if i < 4 else 0.1)
    pt.add("t2", "human", None)
    assert pt.add("t3", "llm", 0.9) == OTHER_TASK
    est = pt.estimates(0.8, 0.05)
    assert set(est["tasks"]) == {"t1", "t2", OTHER_TASK}
    assert est["platform"]["rogan_gladen"].n == 12
    assert est["tasks"]["t1"]["rogan_gladen"].value == pytest.approx((0.4 - 0.05) / 0.75)
    assert est["tasks"]["t1"]["pcc"].value == pytest.approx((4 * 0.8 + 6 * 0.1) / 10)
    assert est["tasks"]["t2"]["pcc"].value is None
    assert est["tasks"]["t2"]["rogan_gladen"].value == 0.0
    none = pt.estimates(0.5, 0.5)
    assert none["platform"]["rogan_gladen"].value is None
    back = PrevalenceTracker.from_dict(orjson.loads(orjson.dumps(pt.to_dict())))
    assert back.estimates(0.8, 0.05) == est


def test_prevalence_tracker_windowed_drops_old_tasks() -> None:
    pt = PrevalenceTracker(window_s=2 * H, step_s=H, max_tasks=1)
    pt.add("old", "llm", 0.9, ts=0.0)
    assert pt.add("new", "human", 0.1, ts=5 * H) == "new"  # "old" expired, room again
    est = pt.estimates(0.8, 0.05, now=5 * H)
    assert set(est["tasks"]) == {"new"} and est["platform"]["rogan_gladen"].n == 1
    with pytest.raises(ValueError):
        pt.add("x", "llm", 0.5)
    empty = PrevalenceTracker().estimates(0.8, 0.05)
    assert empty["platform"]["rogan_gladen"] == Estimate.none("no submissions")
    assert empty["tasks"] == {}
