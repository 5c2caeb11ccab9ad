"""A panel: two or more models that score every text, and must agree to accuse.

Models built on different base encoders fail on different writing: on the
files measured here, an e5-small model ranked texts of an LLM it never saw
better than a MiniLM one, and accused crowd summaries, a genre it never saw,
where the MiniLM model abstained (docs/detector-results.md#e5-minilm-pair).
A panel scores each text with every member and, under its rule
(``all-agree``, :func:`service.verdict.decide`), says ``llm`` only when every
member's own thresholds say ``llm``, so no member can accuse alone. Its
``p_llm`` joins the members' calibrated probabilities by the mean of their
logits (:func:`~service.detector.model_dir.mean_logit`); it ranks texts, and
the verdict comes from the members. A *veto* member (``crowdguard panel
--veto NAME``) votes under the rule but its probability is left out of
``p_llm``: it can keep the panel from accusing writing it knows (e.g. English
by non-native writers, docs/detector-results.md#veto-member) without changing
how the others rank texts. A *text-only* veto member (``--text-only-veto NAME``)
blocks verdicts on the text alone; the keystroke rules of :mod:`service.signals`
do not wait for it (docs/detector-results.md#default-0110).

:class:`Panel` has the scoring interface of :class:`~service.detector.Detector`
(``info``, ``score``, ``margins``, ``probabilities``), and
``Detector.load`` returns one for a panel directory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ModelError
from .detector import Detector, TextScore
from .model_dir import ModelInfo, logit, mean_logit

__all__ = ["Panel"]


class Panel(Detector):
    """Member detectors of one panel directory, scored together."""

    def __init__(self, members: Sequence[Detector], info: ModelInfo) -> None:  # noqa: D107
        if len(members) != len(info.members):
            raise ModelError(f"{info.path}: {len(info.members)} members in the metadata, "
                             f"{len(members)} loaded")
        self.info = info
        self.members = tuple(members)
        self.familiarity = None
        self.calibrated = all(m.calibrated for m in members)
        self.precision = members[0].precision
        self.batch_size = min(m.batch_size for m in members)
        scoring = {m.member_name for m in info.scorers}
        self._scoring = [i for i, m in enumerate(info.members) if m.member_name in scoring]

    def score(self, texts: Sequence[str]) -> list[TextScore]:
        """Every member's score of each text, joined; in input order."""
        per_member = [m.score(texts) for m in self.members]
        out: list[TextScore] = []
        for scores in zip(*per_member, strict=True):
            p = mean_logit([scores[i].p_llm for i in self._scoring])
            out.append(TextScore(p, logit(p), max(s.tokens for s in scores),
                                 any(s.truncated for s in scores), None, tuple(scores)))
        return out

    def features(self, texts: Sequence[str]) -> np.ndarray:
        raise ModelError(f"{self.info.path} is a panel; its members' features are their own "
                         "(load a member directory)")
