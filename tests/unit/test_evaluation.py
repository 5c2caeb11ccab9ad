"""Metrics, Platt scaling and threshold choice on hand-made arrays with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.evaluation import (accuracy, auroc, auroc_interval, binomial_interval,
                                choose_thresholds,
                                expected_calibration_error, f1, fit_platt, fpr_resolvable,
                                platt_probability, ranking_metrics, summarize, tpr_at_fpr,
                                verdicts_for)


# --- AUROC -------------------------------------------------------------------------
def test_auroc_perfect_and_inverted() -> None:
    assert auroc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert auroc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0


def test_auroc_known_pairs_and_ties() -> None:
    # pairs (pos, neg): (0.4>0.1) (0.4<0.5) (0.8>0.1) (0.8>0.5) -> 3/4
    assert auroc([0, 0, 1, 1], [0.1, 0.5, 0.4, 0.8]) == pytest.approx(0.75)
    # every score tied -> one half
    assert auroc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == pytest.approx(0.5)
    # one tie between classes counts one half: (0.5 vs 0.5)=0.5, (0.9>0.5)=1 -> 0.75
    assert auroc([0, 1, 1], [0.5, 0.5, 0.9]) == pytest.approx(0.75)


def test_auroc_one_class_is_none() -> None:
    assert auroc([1, 1, 1], [0.2, 0.5, 0.9]) is None
    assert auroc([], []) is None


# --- accuracy, F1 --------------------------------------------------------------------
def test_accuracy_and_f1() -> None:
    y = [0, 0, 1, 1, 1]
    p = [0.2, 0.6, 0.7, 0.4, 0.5]  # predictions 0 1 1 0 1 (0.5 counts as llm)
    assert accuracy(y, p) == pytest.approx(3 / 5)
    # tp=2 fp=1 fn=1 -> 2*2/(4+1+1)
    assert f1(y, p) == pytest.approx(4 / 6)
    assert accuracy(y, p, threshold=0.8) == pytest.approx(2 / 5)


def test_accuracy_f1_degenerate() -> None:
    assert accuracy([], []) is None
    assert f1([0, 0], [0.1, 0.9]) is None  # no LLM texts
    assert f1([1, 1], [0.1, 0.2]) == 0.0
    assert accuracy([0, 0], [0.1, 0.2]) == 1.0


# --- TPR at FPR ------------------------------------------------------------------------
def test_tpr_at_fpr_known_answer() -> None:
    human = np.arange(100) / 100.0  # 0.00 .. 0.99
    llm = np.array([0.985, 0.995, 0.5, 0.999])
    y = np.r_[np.zeros(100), np.ones(4)].astype(int)
    p = np.r_[human, llm]
    # 1% FPR allows one human (0.99) above t: t must exceed 0.98 -> 0.985 0.995 0.999
    assert tpr_at_fpr(y, p, 0.01) == pytest.approx(3 / 4)
    # 0% FPR: t above 0.99 -> 0.995 0.999
    assert tpr_at_fpr(y, p, 0.0) == pytest.approx(2 / 4)
    # 5% FPR: t above 0.94 -> 0.985 0.995 0.999
    assert tpr_at_fpr(y, p, 0.05) == pytest.approx(3 / 4)
    assert tpr_at_fpr(y, p, 1.0) == 1.0


def test_tpr_at_fpr_ties_are_not_split() -> None:
    # the only human ties the LLM text: no threshold separates them at 0% FPR
    assert tpr_at_fpr([0, 1], [0.7, 0.7], 0.0) == 0.0
    assert tpr_at_fpr([1, 1], [0.7, 0.8], 0.01) is None


# --- ECE --------------------------------------------------------------------------------
def test_ece_known_answer() -> None:
    # bin [0.2,0.3): p=0.25 x2, y 0,0 -> |0.25-0| ; bin [0.9,1.0]: p=0.95 x2, y 1,1 -> 0.05
    y = [0, 0, 1, 1]
    p = [0.25, 0.25, 0.95, 0.95]
    assert expected_calibration_error(y, p) == pytest.approx((2 * 0.25 + 2 * 0.05) / 4)
    assert expected_calibration_error([1], [1.0]) == pytest.approx(0.0)  # p=1 in the last bin
    assert expected_calibration_error([], []) is None


def test_ece_perfectly_calibrated_bins() -> None:
    y = [0, 0, 0, 1] * 5
    p = [0.25] * 20
    assert expected_calibration_error(y, p) == pytest.approx(0.0)


# --- Platt -------------------------------------------------------------------------------
def test_fit_platt_recovers_known_parameters() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 3.0, 20000)
    p_true = 1.0 / (1.0 + np.exp(-(0.7 * z - 0.4)))
    y = (rng.random(z.size) < p_true).astype(int)
    a, b = fit_platt(z, y)
    assert a == pytest.approx(0.7, abs=0.05)
    assert b == pytest.approx(-0.4, abs=0.07)


def test_fit_platt_separable_stays_finite() -> None:
    z = np.array([-5.0, -4.0, -3.0, 3.0, 4.0, 5.0])
    y = np.array([0, 0, 0, 1, 1, 1])
    a, b = fit_platt(z, y)
    assert math.isfinite(a) and math.isfinite(b) and a > 0
    p = platt_probability(z, a, b)
    # Platt's smoothed targets for 3+3 texts: 1/5 and 4/5 at most
    assert p[0] < 0.5 < p[-1]
    assert p.max() < 0.95 and p.min() > 0.05


def test_fit_platt_degenerate() -> None:
    assert fit_platt([], []) == (1.0, 0.0)
    a, b = fit_platt([1.0, 2.0, 3.0], [0, 0, 0])  # one class: finite, probabilities low
    assert math.isfinite(a) and math.isfinite(b)
    assert (platt_probability([1.0, 2.0, 3.0], a, b) < 0.5).all()


# --- thresholds -------------------------------------------------------------------------
def test_choose_thresholds_known_answer() -> None:
    human = [0.05, 0.1, 0.2, 0.3, 0.6]
    llm = [0.4, 0.7, 0.8, 0.9, 0.95]
    y = [0] * 5 + [1] * 5
    thr = choose_thresholds(y, human + llm, target_fpr=0.0, target_fnr=0.0)
    # no human at or above: smallest such observed value is 0.7
    assert thr["llm"] == pytest.approx(0.7)
    # no LLM at or below: largest such observed value is 0.3
    assert thr["human"] == pytest.approx(0.3)
    # 20% allowed each way: one human (0.6) may score at or above -> 0.4 qualifies,
    # clamped up to 0.5; one LLM (0.4) may fall at or below -> 0.6, clamped down to 0.5
    thr = choose_thresholds(y, human + llm, target_fpr=0.2, target_fnr=0.2)
    assert thr["llm"] == 0.5
    assert thr["human"] == 0.5


def test_choose_thresholds_clamps() -> None:
    # everything separable far below 0.5: the llm threshold never drops below 0.5
    thr = choose_thresholds([0, 0, 1, 1], [0.01, 0.02, 0.3, 0.4])
    assert thr["llm"] == 0.5
    assert thr["human"] == pytest.approx(0.02)
    # the human threshold never exceeds the llm threshold
    thr = choose_thresholds([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], target_fpr=0.0, target_fnr=0.5)
    assert thr["human"] <= thr["llm"]


def test_choose_thresholds_human_on_top() -> None:
    # a human text has the top score: nothing observed qualifies at 0% FPR
    thr = choose_thresholds([0, 1, 0], [0.2, 0.8, 0.99], target_fpr=0.0)
    assert thr["llm"] > 0.99
    assert thr["human"] <= thr["llm"]


def test_choose_thresholds_degenerate() -> None:
    assert choose_thresholds([], []) == {"llm": 0.5, "human": 0.5}
    thr = choose_thresholds([1, 1], [0.7, 0.9])
    assert 0.5 <= thr["llm"] and thr["human"] <= thr["llm"]
    thr = choose_thresholds([0, 0], [0.1, 0.2])
    assert thr["llm"] >= 0.5 and thr["human"] <= thr["llm"]


@pytest.mark.parametrize(("n_human", "target_fpr", "resolvable"), [
    (100, 0.01, True), (99, 0.01, False), (20, 0.05, True), (19, 0.05, False), (0, 0.5, False),
    (1000, 0.001, True),
])
def test_fpr_resolvable(n_human: int, target_fpr: float, resolvable: bool) -> None:
    assert fpr_resolvable(n_human, target_fpr) is resolvable


def test_verdicts_for() -> None:
    thr = {"llm": 0.8, "human": 0.3}
    assert verdicts_for([0.8, 0.79, 0.3, 0.31, 0.0], thr) == [
        "llm", "uncertain", "human", "uncertain", "human"]


def test_ranking_metrics_known_answer_and_one_class() -> None:
    # 2 humans, 3 LLM texts; one LLM text (0.2) ranks below a human (0.4)
    m = ranking_metrics([0, 0, 1, 1, 1], [-1.0, 0.4, 0.2, 2.0, 3.0], digits=4)
    assert m == {"auroc": round(5 / 6, 4), "tpr_at_1pct_fpr": round(2 / 3, 4),
                 "tpr_at_5pct_fpr": round(2 / 3, 4)}
    assert ranking_metrics([1, 1], [0.3, 0.9]) == {
        "auroc": None, "tpr_at_1pct_fpr": None, "tpr_at_5pct_fpr": None}


# --- summarize ---------------------------------------------------------------------------
def test_summarize_known_answer() -> None:
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    p = [0.1, 0.2, 0.6, 0.3, 0.9, 0.8, 0.4, 0.7]
    verdicts = ["human", "human", "llm", "uncertain", "llm", "llm", "uncertain", "llm"]
    s = summarize(y, p, verdicts)
    assert s["n"] == 8 and s["n_human"] == 4 and s["n_llm"] == 4
    assert s["accuracy"] == pytest.approx(6 / 8)
    assert s["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert s["auroc"] == pytest.approx(15 / 16)  # only (0.4 llm, 0.6 human) misordered
    assert s["llm_verdict_fpr"] == pytest.approx(1 / 4)
    assert s["llm_verdict_tpr"] == pytest.approx(3 / 4)
    assert s["uncertain_share"] == pytest.approx(2 / 8)
    assert set(s) == {"accuracy", "f1", "auroc", "tpr_at_1pct_fpr", "tpr_at_5pct_fpr",
                      "llm_verdict_fpr", "llm_verdict_tpr", "uncertain_share", "ece",
                      "n", "n_human", "n_llm", "ci95"}
    ci = s["ci95"]
    low, high = auroc_interval(y, p)
    assert ci["auroc"] == {"low": pytest.approx(low, abs=1e-6),
                           "high": pytest.approx(high, abs=1e-6)}
    assert (ci["accuracy"]["k"], ci["accuracy"]["n"]) == (6, 8)
    assert (ci["llm_verdict_fpr"]["k"], ci["llm_verdict_fpr"]["n"]) == (1, 4)
    assert (ci["llm_verdict_tpr"]["k"], ci["llm_verdict_tpr"]["n"]) == (3, 4)
    low, high = binomial_interval(1, 4)
    assert ci["llm_verdict_fpr"]["low"] == pytest.approx(low, abs=1e-6)
    assert ci["llm_verdict_fpr"]["high"] == pytest.approx(high, abs=1e-6)


def test_summarize_one_class_and_missing_scores() -> None:
    s = summarize([0, 0, 0], [0.1, float("nan"), 0.7], ["human", "uncertain", "llm"])
    assert s["auroc"] is None and s["tpr_at_1pct_fpr"] is None and s["f1"] is None
    assert s["llm_verdict_tpr"] is None
    assert s["llm_verdict_fpr"] == pytest.approx(1 / 3)
    assert s["accuracy"] == pytest.approx(1 / 2)  # the unscored text is left out
    assert s["n"] == 3


def test_summarize_empty_and_mismatch() -> None:
    s = summarize([], [], [])
    assert s["n"] == 0 and s["accuracy"] is None and s["uncertain_share"] is None
    assert s["ci95"] == {"auroc": None, "accuracy": None, "llm_verdict_fpr": None,
                         "llm_verdict_tpr": None}
    with pytest.raises(ValueError):
        summarize([0, 1], [0.2], ["human", "llm"])
    with pytest.raises(ValueError):
        summarize([0, 1], [0.2, 0.3], ["human"])
    with pytest.raises(ValueError):
        accuracy([0, 2], [0.1, 0.2])


# --- exact binomial intervals --------------------------------------------------------
@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (5, 100, 0.01643187, 0.11283491),  # R: binom.test(5, 100)$conf.int
    (1, 10, 0.00252858, 0.44501612),   # R: binom.test(1, 10)$conf.int
    (0, 1000, 0.0, 0.00368208),
])
def test_binomial_interval_known_answers(k: int, n: int, low: float, high: float) -> None:
    lo, hi = binomial_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-7) and hi == pytest.approx(high, abs=1e-7)


def test_binomial_interval_no_event_has_the_closed_form_and_the_368_rule() -> None:
    for n in (1, 31, 144, 1562):
        assert binomial_interval(0, n)[1] == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-9)
    assert binomial_interval(0, 367)[1] > 0.01 > binomial_interval(0, 368)[1]


def test_binomial_interval_is_symmetric_and_contains_the_rate() -> None:
    for k, n in [(0, 7), (3, 7), (7, 7), (40, 1000), (999, 1000)]:
        lo, hi = binomial_interval(k, n)
        mirror_lo, mirror_hi = binomial_interval(n - k, n)
        assert lo == pytest.approx(1 - mirror_hi, abs=1e-12)
        assert hi == pytest.approx(1 - mirror_lo, abs=1e-12)
        assert lo <= k / n <= hi
    assert binomial_interval(7, 7)[1] == 1.0
    wide, narrow = binomial_interval(1, 10, 0.99), binomial_interval(1, 10, 0.9)
    assert wide[0] < narrow[0] and wide[1] > narrow[1]


def test_binomial_interval_large_counts_and_bad_arguments() -> None:
    lo, hi = binomial_interval(40_000, 100_000)  # no overflow in the log-space sums
    assert lo < 0.4 < hi and hi - lo < 0.01
    assert binomial_interval(0, 0) is None
    for k, n, level in [(-1, 5, 0.95), (6, 5, 0.95), (1, 5, 1.0), (1, 5, 0.0)]:
        with pytest.raises(ValueError):
            binomial_interval(k, n, level)


# --- DeLong's AUROC interval -----------------------------------------------------------
def _delong_brute_force(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    pos, neg = p[y == 1], p[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    area = psi.mean()
    se = math.sqrt(psi.mean(1).var(ddof=1) / pos.size + psi.mean(0).var(ddof=1) / neg.size)
    return max(0.0, area - 1.959964 * se), min(1.0, area + 1.959964 * se)


def test_auroc_interval_matches_the_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(60), np.ones(45)].astype(np.int64)
    p = np.round(np.r_[rng.normal(0, 1, 60), rng.normal(1.2, 1, 45)], 1)  # many ties
    low, high = auroc_interval(y, p)
    ref_low, ref_high = _delong_brute_force(y, p)
    assert low == pytest.approx(ref_low, abs=1e-5) and high == pytest.approx(ref_high, abs=1e-5)
    assert low < auroc(y, p) < high


def test_auroc_interval_narrows_with_more_texts_and_degenerates_when_separated() -> None:
    rng = np.random.default_rng(5)
    widths = []
    for n in (50, 2000):
        y = np.r_[np.zeros(n), np.ones(n)].astype(np.int64)
        p = np.r_[rng.normal(0, 1, n), rng.normal(1.5, 1, n)]
        low, high = auroc_interval(y, p)
        widths.append(high - low)
    assert widths[1] < widths[0] / 4
    assert auroc_interval([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == (1.0, 1.0)
    assert auroc_interval([0, 0, 0], [0.1, 0.2, 0.3]) is None
    with pytest.raises(ValueError):
        auroc_interval([0, 1], [0.1, 0.9], level=1.0)
