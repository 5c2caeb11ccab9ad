"""Cut a base encoder's vocabulary down to the pieces English text needs.

multilingual-e5-small spends 96M of its 118M parameters on a 250k-piece
SentencePiece (Unigram) vocabulary for a hundred languages. The detector only
decides on English prose (other text gets ``uncertain``), so a base made from
it keeps a fixed list of piece ids (:func:`load_piece_list`, a JSON file made
by ``scripts/make_english_pieces.py``) and drops the rest of the rows of the
word-embedding matrix. The Unigram model segments any text with the pieces it
still has, so nothing becomes unknown that the list's single characters
cover; words whose best pieces were dropped are split into smaller ones.
Training and inference use the same pruned ``tokenizer.json``, so they agree.

Ids are renumbered in their original order; the special tokens (``<s>``,
``<pad>``, ``</s>``, ``<unk>``, ``<mask>``: the added tokens and the
unknown piece) are always kept.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrainingError

__all__ = ["WORD_EMBEDDINGS", "load_piece_list", "prune_tokenizer", "prune_weights"]

#: The word-embedding matrix in a Hugging Face ``BertModel`` state dict.
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"


def load_piece_list(path: Path, tokenizer_bytes: bytes) -> list[int]:
    """The ids kept by the list at ``path``; it must have been made for this tokenizer."""
    try:
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
        want, ids = spec["tokenizer_sha256"], [int(i) for i in spec["ids"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrainingError(f"cannot read the piece list {path}: {exc}") from exc
    have = hashlib.sha256(tokenizer_bytes).hexdigest()
    if have != want:
        raise TrainingError(f"the piece list {path} was made for another tokenizer.json "
                            f"(sha256 {want[:12]}, this one {have[:12]}); install the "
                            "tokenizer package version it names, or remake the list with "
                            "scripts/make_english_pieces.py")
    return ids


def _kept(tokenizer: dict[str, Any], keep: Sequence[int]) -> list[int]:
    size = len(tokenizer["model"]["vocab"])
    specials = {int(t["id"]) for t in tokenizer.get("added_tokens", [])}
    if tokenizer["model"].get("unk_id") is not None:
        specials.add(int(tokenizer["model"]["unk_id"]))
    kept = sorted(set(keep) | specials)
    if kept and (kept[0] < 0 or kept[-1] >= size):
        raise TrainingError(f"piece id {kept[0] if kept[0] < 0 else kept[-1]} is outside "
                            f"the vocabulary of {size} pieces")
    return kept


def prune_tokenizer(tokenizer: dict[str, Any], keep: Sequence[int]) -> dict[str, Any]:
    """A copy of a Unigram ``tokenizer.json`` dict holding only the pieces ``keep`` (and
    the special tokens), renumbered in order."""
    model = tokenizer.get("model", {})
    if model.get("type") != "Unigram":
        raise TrainingError(f"vocabulary pruning needs a Unigram tokenizer, not "
                            f"{model.get('type')!r}")
    kept = _kept(tokenizer, keep)
    new_id = {old: new for new, old in enumerate(kept)}
    out = copy.deepcopy(tokenizer)
    out["model"]["vocab"] = [model["vocab"][i] for i in kept]
    if model.get("unk_id") is not None:
        out["model"]["unk_id"] = new_id[model["unk_id"]]
    for token in out.get("added_tokens", []):
        token["id"] = new_id[token["id"]]
    post = out.get("post_processor") or {}
    for processor in post.get("processors") or [post]:  # a Sequence, or one processor
        for special in (processor.get("special_tokens") or {}).values():
            special["ids"] = [new_id[i] for i in special["ids"]]
    padding = out.get("padding") or {}
    if "pad_id" in padding:
        padding["pad_id"] = new_id[padding["pad_id"]]
    return out


def prune_weights(weights: dict[str, np.ndarray], config: dict[str, Any],
                  tokenizer: dict[str, Any], keep: Sequence[int]) -> None:
    """Keep the word-embedding rows of ``keep`` (and the special tokens), in place, and set
    ``config["vocab_size"]``; ids are renumbered as :func:`prune_tokenizer` does."""
    kept = _kept(tokenizer, keep)
    matrix = weights.get(WORD_EMBEDDINGS)
    if matrix is None:
        raise TrainingError(f"no {WORD_EMBEDDINGS} among the weights to prune")
    if matrix.shape[0] < len(tokenizer["model"]["vocab"]):  # more rows (padding) are fine
        raise TrainingError(f"the word embeddings have {matrix.shape[0]} rows, fewer than "
                            f"the tokenizer's {len(tokenizer['model']['vocab'])} pieces")
    weights[WORD_EMBEDDINGS] = np.ascontiguousarray(matrix[kept])
    config["vocab_size"] = len(kept)
