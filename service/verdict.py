"""From a calibrated text score (and, where present, behaviour) to a verdict with reasons.

Pure logic: no I/O, no model. The verdict is ``llm``, ``human`` or
``uncertain``; every verdict carries the reasons that drove it. The model's
thresholds were chosen on held-out data for a target false-positive rate, so
``llm`` is only said when the text score clears that bar; texts the model was
not built for (too short, not English prose, or unlike its training data by
the feature distance of :mod:`service.detector.familiarity`) are ``uncertain``.
One piece of evidence overrides the score: a text that opens with a chat
assistant's reply formula (:func:`service.text.assistant_reply_formula`, "Sure,
here's ...") is ``llm`` whatever its score and familiarity, with the formula
quoted as the first reason and ``p_llm`` still the model's own score. Texts too
short or not English stay ``uncertain``, and an answer typed by hand is judged
again by :func:`service.signals.fuse`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .detector.model_dir import ModelInfo, veto_tag
from .detector.detector import TextScore
from .text import assistant_reply_formula, english_score, normalize, word_count

__all__ = ["Verdict", "VerdictLabel", "decide", "VERDICTS", "REPLY_FORMULA_REASON"]

VerdictLabel = Literal["llm", "human", "uncertain"]
VERDICTS: tuple[VerdictLabel, ...] = ("llm", "human", "uncertain")
REPLY_FORMULA_REASON = "opens like a chat assistant's reply"
"""First reason of an ``llm`` verdict given for a reply formula (read by ``signals.fuse``)."""


@dataclass(frozen=True)
class Verdict:
    verdict: VerdictLabel
    p_llm: float | None
    reasons: tuple[str, ...]


def abstain_reason(text: str, info: ModelInfo) -> str | None:
    """Why the model should not judge ``text`` at all, or ``None``."""
    clean = normalize(text)
    if not clean:
        return "empty text"
    words = word_count(clean)
    if words < info.min_words:
        return f"too short to judge: {words} words < {info.min_words}"
    share = english_score(clean)
    if share < info.min_english:
        return (f"not English prose: function-word share {share:.2f} < {info.min_english:.2f}")
    return None


def unfamiliar_reason(score: TextScore, info: ModelInfo) -> str | None:
    """Why ``score`` should not be trusted because its text is unlike the training data.

    For a panel: the first member whose check finds the text unfamiliar, named.
    """
    if info.members and score.members:
        for member_score, member in zip(score.members, info.members, strict=True):
            why = unfamiliar_reason(member_score, member)
            if why is not None:
                return f"{why} (model {member.member_name})"
        return None
    fam = info.familiarity
    if fam is None or score.distance is None or score.distance <= fam.threshold:
        return None
    return (f"unlike the model's training data: feature distance {score.distance:.3f} > "
            f"{fam.threshold:.3f}")


def _by_thresholds(p: float, info: ModelInfo) -> tuple[VerdictLabel, str]:
    thr = info.thresholds
    if p >= thr.llm:
        return "llm", f"text score {p:.2f} >= llm threshold {thr.llm:.2f}"
    if p <= thr.human:
        return "human", f"text score {p:.2f} <= human threshold {thr.human:.2f}"
    return "uncertain", f"text score {p:.2f} between thresholds {thr.human:.2f} and {thr.llm:.2f}"


def _by_panel(score: TextScore, info: ModelInfo) -> tuple[VerdictLabel, tuple[str, ...]]:
    said = [(m.member_name + veto_tag(m.member_name, info.veto, info.text_only_veto),
             *_by_thresholds(s.p_llm, m))
            for s, m in zip(score.members, info.members, strict=True)]
    labels = [label for _, label, _ in said]
    n = len(said)
    if len(set(labels)) == 1:
        label, head = labels[0], f"all {n} models say {labels[0]}"
    else:
        label, head = "uncertain", f"the {n} models disagree"
    return label, (f"{head} (panel score {score.p_llm:.2f})",
                   *(f"model {name}: {why}" for name, _, why in said))


def decide(text: str, score: TextScore | None, info: ModelInfo, *,
           familiarity: bool = True) -> Verdict:
    """Verdict for one text given its score (``None`` when it could not be scored).

    ``familiarity=False`` decides as if the model had no familiarity check
    (evaluation reports both).
    """
    reasons: list[str] = []
    abstain = abstain_reason(text, info)
    if score is None:
        return Verdict("uncertain", None, (abstain or "not scored",))
    p = score.p_llm
    if score.truncated:
        reasons.append(f"scored the first {score.tokens} tokens of a longer text")
    formula = assistant_reply_formula(text) if abstain is None else None
    if abstain is None and familiarity:
        abstain = unfamiliar_reason(score, info)
    if formula is not None:
        why = ((abstain, f"text score {p:.2f} not used") if abstain is not None
               else (f"text score {p:.2f}",))
        return Verdict("llm", p, (f'{REPLY_FORMULA_REASON}: "{formula}"', *why,
                                  *reasons))
    if abstain is not None:
        return Verdict("uncertain", p, (abstain, f"text score {p:.2f} not used", *reasons))
    if info.members and score.members:
        label, why = _by_panel(score, info)
        return Verdict(label, p, (*why, *reasons))
    label, reason = _by_thresholds(p, info)
    return Verdict(label, p, (reason, *reasons))
