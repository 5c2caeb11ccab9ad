"""Vocabulary pruning of a Unigram tokenizer and its embedding matrix."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from service.errors import TrainingError
from service.training import bases
from service.training.vocab_prune import (WORD_EMBEDDINGS, load_piece_list, prune_tokenizer,
                                          prune_weights)

M = "\u2581"
PIECES = ["<s>", "<pad>", "</s>", "<unk>", f"{M}the", f"{M}cat", f"{M}ca", "t", "c", "a", "h",
          "e", f"{M}", f"{M}gato", "g", "o", f"{M}t", f"{M}c", "<mask>"]


def _tokenizer_json() -> dict:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    scores = [(p, 0.0 if p.startswith("<") else -float(len(PIECES) - len(p)))
              for p in PIECES]
    tok = Tokenizer(models.Unigram(scores, unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return json.loads(tok.to_str())


def _encode(spec: dict, text: str) -> list[str]:
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json.dumps(spec)).encode(text).tokens


def test_pruned_tokenizer_renumbers_keeps_specials_and_splits_dropped_words() -> None:
    spec = _tokenizer_json()
    assert _encode(spec, "the cat gato") == ["<s>", f"{M}the", f"{M}cat", f"{M}gato", "</s>"]
    drop = {f"{M}cat", f"{M}gato", "<mask>"}  # <mask> asked to go: specials stay anyway
    keep = [i for i, p in enumerate(PIECES) if p not in drop]
    pruned = prune_tokenizer(spec, keep)

    vocab = [p for p, _ in pruned["model"]["vocab"]]
    assert vocab == [p for p in PIECES if p not in drop] + ["<mask>"]
    assert pruned["model"]["unk_id"] == 3
    assert {t["content"]: t["id"] for t in pruned["added_tokens"]}["<mask>"] == len(vocab) - 1
    assert pruned["post_processor"]["special_tokens"]["</s>"]["ids"] == [2]
    # "cat" and "gato" now split into pieces that are still there; nothing is unknown
    assert _encode(pruned, "the cat gato") == ["<s>", f"{M}the", f"{M}ca", "t",
                                               f"{M}", "g", "a", "t", "o", "</s>"]
    from tokenizers import Tokenizer

    enc = Tokenizer.from_str(json.dumps(pruned)).encode("the cat")
    assert [vocab[i] for i in enc.ids] == enc.tokens
    assert spec["model"]["vocab"][5][0] == f"{M}cat"  # the input dict is left alone


def test_pruned_weights_keep_the_rows_of_the_kept_pieces() -> None:
    spec = _tokenizer_json()
    rows = len(PIECES) + 3  # like multilingual-e5-small: more rows than pieces
    matrix = np.arange(rows * 4, dtype=np.float32).reshape(rows, 4)
    weights = {WORD_EMBEDDINGS: matrix, "other": np.ones(2)}
    config = {"vocab_size": rows}
    keep = [4, 7, 9]
    prune_weights(weights, config, spec, keep)
    kept = [0, 1, 2, 3, 4, 7, 9, len(PIECES) - 1]  # the special tokens come along
    np.testing.assert_array_equal(weights[WORD_EMBEDDINGS], matrix[kept])
    assert config["vocab_size"] == len(kept) and weights["other"].shape == (2,)
    pruned = prune_tokenizer(spec, keep)
    assert len(pruned["model"]["vocab"]) == len(kept)


def test_bad_piece_lists_and_tokenizers_are_refused(tmp_path: Path) -> None:
    spec = _tokenizer_json()
    raw = json.dumps(spec).encode()
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"tokenizer_sha256": hashlib.sha256(raw).hexdigest(),
                                "ids": [4, 5]}))
    assert load_piece_list(good, raw) == [4, 5]
    with pytest.raises(TrainingError, match="made for another tokenizer.json"):
        load_piece_list(good, raw + b" ")
    (tmp_path / "bad.json").write_text("{\"ids\": [1]}")
    with pytest.raises(TrainingError, match="cannot read the piece list"):
        load_piece_list(tmp_path / "bad.json", raw)
    with pytest.raises(TrainingError, match="outside the vocabulary"):
        prune_tokenizer(spec, [len(PIECES)])
    with pytest.raises(TrainingError, match="no embeddings.word_embeddings.weight"):
        prune_weights({"other": np.ones(2)}, {}, spec, [4])
    wordpiece = {"model": {"type": "WordPiece", "vocab": {}}}
    with pytest.raises(TrainingError, match="needs a Unigram tokenizer"):
        prune_tokenizer(wordpiece, [0])


def test_shipped_piece_list_is_well_formed() -> None:
    spec = json.loads((bases.PIECES_DIR / "e5-small-en.json").read_text())
    ids = spec["ids"]
    assert ids == sorted(set(ids)) and len(ids) == spec["pieces"] == 32_000
    assert ids[:4] == [0, 1, 2, 3] and 250_001 in ids  # <s> <pad> </s> <unk>, <mask>
    assert len(spec["tokenizer_sha256"]) == 64
    assert bases.BASES["e5-small-en"].pieces == "e5-small-en.json"


def test_special_token_ids_are_renumbered_inside_a_processor_sequence() -> None:
    spec = _tokenizer_json()
    template = spec["post_processor"]
    spec["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
         "use_regex": True}, template]}
    spec["post_processor"]["processors"][1]["special_tokens"]["</s>"]["ids"] = [18]  # <mask>
    pruned = prune_tokenizer(spec, [4])
    assert pruned["post_processor"]["processors"][1]["special_tokens"]["</s>"]["ids"] == [5]
