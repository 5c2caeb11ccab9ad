"""Text preparation shared by training, offline scoring and the stream.

One function, :func:`normalize`, turns any submission text into what the
model sees; training and inference both call it, so they cannot drift apart.
:func:`clean_artifacts` removes known dataset artifacts and is applied to
training data only (it is harmless on live text, but live text has no such
artifacts to remove); so is :class:`LineBreakRepair`, which needs the word
counts of a whole corpus. :func:`assistant_reply_formula` finds the opening a chat
assistant puts before what it was asked to write ("Sure, here's ...").
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

__all__ = ["normalize", "clean_artifacts", "word_count", "sentences", "english_score",
           "LineBreakRepair", "assistant_reply_formula"]

_WS = re.compile(r"\s+")
# DetectRL (and other scraped corpora) lost paragraph breaks as a literal "nn"
# glued to the next sentence: "... ever seen. nnI recommend". Human texts carry
# it, LLM texts almost never do, so a model would learn it as a shortcut.
_LOST_NEWLINES = re.compile(r"(?<![A-Za-z])(?:nn)+(?=[A-Z0-9\"'(\[])")
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?", re.UNICODE)

# The most frequent English function words: running English prose is about
# 40-50% these; other languages and non-prose (code, lists of numbers) score low.
_EN_FUNCTION_WORDS = frozenset("""
a about after all also an and any are as at be because been but by can could did do
does for from had has have he her him his how i if in into is it its just like may me
more most my no not of on one only or other our out so some than that the their them
then there these they this those to up us was we were what when which who will with
would you your
""".split())


def normalize(text: str) -> str:
    """Unicode NFC, whitespace runs (newlines included) collapsed to one space, trimmed."""
    return _WS.sub(" ", unicodedata.normalize("NFC", text)).strip()


# A chat assistant asked to write something often answers "Sure, here's a ..." before
# the text itself, and pasting the whole reply carries the formula along. Only the very
# start of the text counts, and only an agreement followed by "here is/are" (or an
# assistant introducing itself as one): a person writing an answer for a task does not
# open that way, while "Of course, the trial ..." or "Here is my summary" stay unmatched.
_REPLY_FORMULA = re.compile(
    r"^[\W_]*(?:(?:sure|certainly|of course|absolutely)\s*[,.!:]?\s+here(?:'s|\u2019s|\s+is|\s+are)\b"
    r"|as an ai(?: language model| model| assistant)?\s*,\s*i\b)",
    re.IGNORECASE)


def assistant_reply_formula(text: str) -> str | None:
    """The chat-assistant formula ``text`` opens with (``"Sure, here's"``), or ``None``."""
    m = _REPLY_FORMULA.match(normalize(text[:200]))
    return m.group(0).lstrip("\"'\u201c*# ") if m else None


def clean_artifacts(text: str) -> str:
    """Remove dataset artifacts a model must not learn (DetectRL's lost ``\\n\\n`` as ``nn``)."""
    return _LOST_NEWLINES.sub(" ", text)


class LineBreakRepair:
    """Put back the spaces a corpus lost with its line breaks: ``themodel`` -> ``the model``.

    DetectRL's human abstracts were hard-wrapped; the wraps were removed without
    a space, so 99% of them carry words glued at line ends (``whichare``,
    ``oneswant``), a cue LLM texts lack and a model can learn (the default
    0.2.0, trained with it, scores those abstracts as more LLM-like once the
    spaces are back; docs/detector-results.md, "Why the e5 recipe accuses
    crowd summaries"). A word is split when it is rare in the corpus (at most
    ``rare`` occurrences, case-insensitive, 5 letters or more) and splits into
    two words that are each frequent (``common`` occurrences or more); of the
    possible splits, the one whose rarer half is most frequent wins. A glued
    pair is nearly always rare and its halves common; a real word seen more
    than ``rare`` times is never split. Corpus statistics, not a dictionary, so
    it is meant for training corpora (thousands of texts), not single texts.
    """

    _TOKEN = re.compile(r"[A-Za-z]+")

    def __init__(self, texts: Iterable[str], *, rare: int = 2, common: int = 50) -> None:
        self.counts = Counter(w.lower() for t in texts for w in self._TOKEN.findall(t))
        self.rare = rare
        self.common = common

    def split(self, word: str) -> str | None:
        """``word`` with one space put back, or ``None`` when it is left alone."""
        lw = word.lower()
        if len(lw) < 5 or self.counts[lw] > self.rare:
            return None
        best: tuple[int, int] | None = None
        for i in range(1, len(lw) - 1):
            left, right = lw[:i], lw[i:]
            if len(left) == 1 and left not in "ai":
                continue
            score = min(self.counts[left], self.counts[right])
            if score >= self.common and (best is None or score > best[0]):
                best = (score, i)
        return None if best is None else f"{word[:best[1]]} {word[best[1]:]}"

    def __call__(self, text: str) -> str:
        return self._TOKEN.sub(lambda m: self.split(m.group()) or m.group(), text)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    """``text`` cut after each ``.``, ``!`` or ``?`` that white space follows.

    A rough cut (abbreviations split too), enough to join halves of two texts.
    """
    return _SENTENCE_END.split(text.strip())


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def english_score(text: str) -> float:
    """Share of words that are common English function words (0..1); ~0.4+ for English prose."""
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return 0.0
    return sum(w in _EN_FUNCTION_WORDS for w in words) / len(words)
