"""Model cards state every `llm` false-positive rate with its exact 95% upper bound."""

from __future__ import annotations

from service.training.export import render_model_card


def _panel(validation: dict, evaluations: list[dict]) -> dict:
    return {"kind": "panel", "name": "p", "version": "0", "rule": "all-agree",
            "members": [], "validation": validation, "evaluations": evaluations}


def test_bounds_come_from_the_counts_when_a_record_predates_them() -> None:
    # an evaluation recorded before evaluate reported ci95: rate x n_human is the count
    old = {"set": "crowd summaries", "metrics": {
        "n": 464, "n_human": 144, "llm_verdict_fpr": 0.0,
        "without_familiarity": {"llm_verdict_fpr": round(2 / 144, 6)}}}
    card = render_model_card(_panel({"n": 681, "n_human": 331,
                                     "llm_verdict_fpr": round(1 / 331, 6)}, [old]))
    row = next(line for line in card.splitlines() if line.startswith("| crowd summaries |"))
    # 0 of 144: at most 2.5%; 2 of 144 with the check off: at most 4.9%
    assert "| 0.000 (≤ 0.025) |" in row and row.endswith("| 0.014 (≤ 0.049) |")
    assert "| 0.003 (≤ 0.017) |" in card  # validation: 1 of 331
    assert "only from 368 human texts on" in card


def test_recorded_intervals_are_used_and_missing_figures_stay_n_a() -> None:
    new = {"set": "docs", "metrics": {
        "n": 10, "n_human": 10, "llm_verdict_fpr": 0.0,
        "ci95": {"llm_verdict_fpr": {"k": 0, "n": 10, "low": 0.0, "high": 0.123456}}}}
    card = render_model_card(_panel({}, [new]))
    row = next(line for line in card.splitlines() if line.startswith("| docs |"))
    assert "| 0.000 (≤ 0.123) |" in row and row.endswith("| n/a |")  # no check-off figures
    no_humans = {"set": "llm only", "metrics": {"n": 3, "n_human": 0, "llm_verdict_fpr": None}}
    card = render_model_card(_panel({}, [no_humans]))
    row = next(line for line in card.splitlines() if line.startswith("| llm only |"))
    assert "(≤" not in row


def test_cards_say_verdicts_are_reproducible_on_one_kind_of_cpu() -> None:
    from service.training.export import CPU_KIND_NOTE

    assert "VNNI" in CPU_KIND_NOTE
    assert CPU_KIND_NOTE in render_model_card(_panel({}, []))
    single = render_model_card({"name": "m", "version": "0", "validation": {}, "training": {}})
    limits = single[single.index("## Limitations"):]
    assert f"- **CPU kind**: {CPU_KIND_NOTE}" in limits
