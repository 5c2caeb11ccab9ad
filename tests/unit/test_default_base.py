"""The shipped default model and ``crowdguard train``'s default base are the same encoder.

Resolves the real default base from its PyPI packages (the ``train`` extra), so a
piece list or package that drifted from what the default model was trained on
fails here, not in a user's two-hour training run.
"""

from __future__ import annotations

import orjson
import pytest

from service.detector.model_dir import load_model_info
from service.errors import TrainingError
from service.settings import DEFAULT_MODEL_DIR
from service.training.bases import DEFAULT_BASE, resolve_base

pytestmark = pytest.mark.train


def test_default_model_was_trained_on_the_default_base() -> None:
    pytest.importorskip("safetensors")
    # the default model, or the members of a default panel that are on the default base
    on_default = [m for m in load_model_info(DEFAULT_MODEL_DIR).singles
                  if m.raw.get("base", {}).get("name") == DEFAULT_BASE]
    assert on_default
    try:
        resolved = resolve_base(DEFAULT_BASE)
    except TrainingError as exc:  # its package is in the train extra
        pytest.skip(f"the default base is not installed: {exc}")
    base_tok = orjson.loads((resolved.path / "tokenizer.json").read_bytes())
    config = orjson.loads((resolved.path / "config.json").read_bytes())
    for member in on_default:
        # same package (and piece list)
        assert member.raw["base"]["package"] == resolved.package, member.member_name
        shipped_tok = orjson.loads((member.path / "tokenizer.json").read_bytes())
        for key in ("type", "unk_id", "unk_token", "vocab"):  # same pieces, same ids
            assert base_tok["model"].get(key) == shipped_tok["model"].get(key), key
        assert shipped_tok["model"]["vocab"]
        assert config["vocab_size"] == len(shipped_tok["model"]["vocab"])
