"""Would a mean-pooled head beat BERT's CLS pooler? An experiment, not part of the service.

Fine-tunes a base encoder exactly as ``crowdguard train`` does (same loading,
seeded validation split, batches, optimizer and schedule, through
:mod:`service.training.train`'s own functions), with the classifier either on
the CLS pooler (``--pooling cls``, what ``train`` ships) or on the masked mean
of the last layer's hidden states (``--pooling mean``). Then it scores the
validation part and a held-out file in PyTorch fp32 by the raw margin
(logit LLM minus logit human: no ONNX, no calibration) and prints one JSON
line: accuracy at margin > 0, AUROC, TPR at 5% and 1% FPR (the metrics of
:mod:`service.evaluation`). Nothing is written to disk unless ``--margins``.

Usage: python scripts/probe_mean_pooling.py --pooling mean --data TRAIN_FILE [...] \
    --test FILE [--epochs N] [--lr LR] [--seed N] [--group-field HITId] [--base NAME]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.errors import InputError  # noqa: E402
from service.evaluation import ranking_metrics  # noqa: E402
from service.settings import cpu_count  # noqa: E402
from service.training import train as training  # noqa: E402
from service.training.bases import DEFAULT_BASE, resolve_base  # noqa: E402
from service.training.data import load_dataset, split_validation  # noqa: E402


def use_mean_pooling(model: Any) -> None:
    """Make ``model`` (a ``*ForSequenceClassification``) classify the masked mean of its last layer."""
    import torch

    encoder = getattr(model, model.base_model_prefix)

    def forward(input_ids=None, attention_mask=None, labels=None, **_: Any) -> Any:
        hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        logits = model.classifier(model.dropout(pooled))
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
        return argparse.Namespace(loss=loss, logits=logits)

    model.forward = forward


def margins(model: Any, tokenizer: Any, texts: list[str], max_length: int) -> np.ndarray:
    import torch

    out: list[float] = []
    with torch.no_grad():
        for i in range(0, len(texts), 32):
            batch = tokenizer(texts[i:i + 32], truncation=True, max_length=max_length,
                              padding=True, return_tensors="pt")
            logits = model(input_ids=batch["input_ids"],
                           attention_mask=batch["attention_mask"]).logits
            out.extend((logits[:, 1] - logits[:, 0]).tolist())
    return np.asarray(out)


def report(y: np.ndarray, m: np.ndarray) -> dict[str, Any]:
    return {"n": int(y.size), "accuracy": round(float(np.mean((m > 0) == y)), 4),
            "errors": int(np.sum((m > 0) != y)), **ranking_metrics(y, m, digits=4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pooling", choices=("cls", "mean"), required=True)
    ap.add_argument("--data", type=Path, nargs="+", required=True, help="training files")
    ap.add_argument("--test", type=Path, required=True, help="held-out labelled file")
    ap.add_argument("--base", default=DEFAULT_BASE)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=6e-5)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--group-field", default=None)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--margins", type=Path, help="also save the test margins (.npy)")
    args = ap.parse_args()

    import torch

    try:
        dataset = load_dataset(args.data, group_field=args.group_field)
        test = load_dataset([args.test]).examples
    except InputError as exc:
        raise SystemExit(f"error: {exc}") from exc
    train, val = split_validation(dataset.examples, 0.15, args.seed)
    torch.set_num_threads(cpu_count())
    training._seed_everything(args.seed)
    tokenizer, model = training._load_hf(resolve_base(args.base).path)
    if args.pooling == "mean":
        use_mean_pooling(model)
    started = time.monotonic()
    ids, labels, pad = training._encode(tokenizer, train, args.max_length)
    training._fine_tune(model, ids, labels, pad=pad, epochs=args.epochs, batch_size=16,
                        lr=args.lr, seed=args.seed, progress=True)
    result: dict[str, Any] = {k: (str(v) if isinstance(v, Path) else v)
                              for k, v in vars(args).items() if k != "data"}
    result["data"] = [str(p) for p in args.data]
    result["train_seconds"] = round(time.monotonic() - started)
    for name, rows in (("validation", val), ("test", test)):
        m = margins(model, tokenizer, [e.text for e in rows], args.max_length)
        result[name] = report(np.asarray([e.label for e in rows]), m)
        if name == "test" and args.margins:
            np.save(args.margins, m)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
