"""scripts/generate_llm_texts.py: which human texts seed the prompts, and how.

The generation itself needs the GGUF wheels and minutes of CPU; it is run by hand
(README, Results > Detector). These tests cover the part that decides what the
generators are asked to write.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from service.errors import InputError


@pytest.fixture()
def mod(load_script):
    return load_script("generate_llm_texts")


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    return path


def test_only_human_texts_of_known_kinds_seed_prompts(mod, tmp_path: Path) -> None:
    detectrl = _write(tmp_path / "d.jsonl", [
        {"text": "A human story.nnIt goes on.", "label": "human", "data_type": "story"},
        {"text": "An LLM story.", "label": "llm", "data_type": "direct_prompt"},
        {"text": "A human poem.", "label": "human", "data_type": "poem"},
        {"text": "   ", "label": "human", "data_type": "story", "extra": 1},
    ])
    gpturk = _write(tmp_path / "g.jsonl", [
        {"text": "A crowd summary.", "labels": "real", "HITId": "h1"},
        {"text": "A ChatGPT summary.", "labels": "synthetic", "HITId": "h1"},
    ])
    by_kind = mod._human_texts([str(detectrl), str(gpturk)])
    # LLM texts never seed a prompt; unknown kinds and empty texts are skipped; the nn
    # artifact is cleaned; records without a data_type are GPTurk-style summaries
    assert dict(by_kind) == {"story": ["A human story. It goes on."],
                             "summary": ["A crowd summary."]}


def test_a_bad_record_is_an_error_naming_file_and_line(mod, tmp_path: Path) -> None:
    unlabelled = _write(tmp_path / "u.jsonl", [
        {"text": "Fine.", "label": "human", "data_type": "story"},
        {"text": "No label here.", "data_type": "story"},
    ])
    with pytest.raises(InputError, match=r"u\.jsonl:2: .*no 'label'"):
        mod._human_texts([str(unlabelled)])
    broken = tmp_path / "b.jsonl"
    broken.write_bytes(b'{"text": "Fine.", "label": "human"}\n{not json\n')
    with pytest.raises(InputError, match=r"b\.jsonl:2: "):
        mod._human_texts([str(broken)])
    odd = _write(tmp_path / "o.jsonl", [{"text": "Odd.", "label": "robot"}])
    with pytest.raises(InputError, match=r"o\.jsonl:1: "):
        mod._human_texts([str(odd)])


def test_prompts_cap_each_kind_and_depend_only_on_the_seed(mod) -> None:
    words = " ".join(f"w{i}" for i in range(300))
    by_kind = {"story": [f"story {i} {words}" for i in range(10)],
               "content": [f"review {i} {words}" for i in range(3)]}
    prompts = mod._prompts(by_kind, 4, random.Random(7))
    assert [k for k, _, _ in prompts].count("story") == 4
    assert [k for k, _, _ in prompts].count("content") == 3
    assert prompts == mod._prompts(by_kind, 4, random.Random(7))
    for kind, how, prompt in prompts:
        assert how in {"write", "rewrite", "polish"}
        assert mod.KINDS[kind] in prompt
        # a rewritten text is cut to its first 180 words, an opening to 20
        assert len(prompt.split()) < 200
