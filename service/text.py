"""Text preparation shared by training, offline scoring and the stream.

One function, :func:`normalize`, turns any submission text into what the
model sees; training and inference both call it, so they cannot drift apart.
:func:`clean_artifacts` removes known dataset artifacts and is applied to
training data only (it is harmless on live text, but live text has no such
artifacts to remove).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize", "clean_artifacts", "word_count", "english_score"]

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


def clean_artifacts(text: str) -> str:
    """Remove dataset artifacts a model must not learn (DetectRL's lost ``\\n\\n`` as ``nn``)."""
    return _LOST_NEWLINES.sub(" ", text)


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def english_score(text: str) -> float:
    """Share of words that are common English function words (0..1); ~0.4+ for English prose."""
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return 0.0
    return sum(w in _EN_FUNCTION_WORDS for w in words) / len(words)
