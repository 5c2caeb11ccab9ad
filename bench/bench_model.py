"""Model-only throughput on this machine's CPUs, in one run:

* onnxruntime int8 (the shipped CPU model) and fp32 (the GPU-path file), through
  crowdguard's own inference path (``Detector.score``);
* torch fp32 of the same architecture (the model's base encoder, named in its
  metadata, + classification head);
* torch fp32 of a bert-base-sized encoder (the study's e5-base size; random
  weights: throughput does not depend on the values).

All rows read the texts with the model's own ``tokenizer.json``. For a panel
directory (``crowdguard panel``) the int8 row is the whole panel, and the rows
after it are given for each member: its own int8 and fp32 files and torch fp32
of its base (a char n-gram member, which runs in numpy, only its own row); the
bert-base-sized row reads the first encoder member's tokenizer.

Usage: python bench/bench_model.py [--model DIR] [--data FILE] [--n 512] [--batch 32]
       [--threads N] [--out bench/results/model.json]
Texts come from ``--data`` (any JSON/JSONL/CSV with ``text``), default the
bundled sample stream, cycled to ``--n`` texts.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from itertools import cycle, islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.detector import Detector  # noqa: E402
from service.detector.model_dir import CHAR_NGRAMS_KIND  # noqa: E402
from service.records import read_records  # noqa: E402
from service.settings import DEFAULT_MODEL_DIR, cpu_count  # noqa: E402
from service.text import normalize  # noqa: E402
from service.worker import SAMPLE_STREAM  # noqa: E402


def load_texts(path: Path, n: int) -> list[str]:
    texts = [r.fields["text"] for r in read_records(path)
             if r.error is None and isinstance(r.fields.get("text"), str)]
    return list(islice(cycle(texts), n))


def time_it(fn, texts: list[str], batch: int) -> float:
    fn(texts[:batch])  # warm-up
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        fn(texts[i:i + batch])
    return len(texts) / (time.perf_counter() - t0)


def onnx_rate(model: Path, precision: str, texts, batch, threads) -> float:
    det = Detector.load(model, precision=precision, threads=threads, batch_size=batch)
    return time_it(det.score, texts, batch)


def torch_rate(config_or_dir, tokenizer: Path, texts, batch, threads, max_length) -> float:
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForSequenceClassification, BertConfig

    torch.set_num_threads(threads)
    if isinstance(config_or_dir, BertConfig):
        model = AutoModelForSequenceClassification.from_config(config_or_dir)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(config_or_dir, num_labels=2)
    model.eval()
    tok = Tokenizer.from_file(str(tokenizer))
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding()

    def run(chunk):
        encs = tok.encode_batch([normalize(t) for t in chunk])
        ids = torch.tensor([e.ids for e in encs])
        mask = torch.tensor([e.attention_mask for e in encs])
        with torch.inference_mode():
            return model(input_ids=ids, attention_mask=mask).logits

    return time_it(run, texts, batch)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    ap.add_argument("--data", type=Path, default=SAMPLE_STREAM)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=cpu_count())
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "model.json")
    args = ap.parse_args()
    texts = load_texts(args.data, args.n)
    info = Detector.load(args.model).info
    singles = info.singles
    res: dict[str, float] = {}
    res["onnx_int8"] = onnx_rate(args.model, "int8", texts, args.batch, args.threads)
    print(f"onnxruntime int8{' (panel)' if info.members else ''}: {res['onnx_int8']:.1f} docs/s",
          file=sys.stderr)
    bases: list[str] = []
    for single in singles:
        suffix = f"_{single.member_name}" if info.members else ""
        base = single.raw.get("base", {}).get("name", "all-MiniLM-L6-v2")  # models before 0.3.0
        bases.append(base)
        if info.members:
            res["onnx_int8" + suffix] = onnx_rate(single.path, "int8", texts, args.batch,
                                                  args.threads)
            print(f"onnxruntime int8 {single.member_name}: {res['onnx_int8' + suffix]:.1f} docs/s",
                  file=sys.stderr)
        if single.raw.get("kind") == CHAR_NGRAMS_KIND:
            continue  # numpy on the CPU: one file, no encoder to run in torch
        if "fp32" in single.files and single.files["fp32"] != single.files["cpu"]:
            res["onnx_fp32" + suffix] = onnx_rate(single.path, "fp32", texts, args.batch,
                                                  args.threads)
            print(f"onnxruntime fp32{suffix}: {res['onnx_fp32' + suffix]:.1f} docs/s",
                  file=sys.stderr)
        if not args.skip_torch:
            from service.training.train import resolve_base

            res["torch_fp32_base" + suffix] = torch_rate(
                str(resolve_base(base).path), single.file("tokenizer"), texts, args.batch,
                args.threads, single.max_length)
            print(f"torch fp32 {base}: {res['torch_fp32_base' + suffix]:.1f} docs/s",
                  file=sys.stderr)
    max_length = info.max_length
    tokenizer = next(s for s in singles if "tokenizer" in s.files).file("tokenizer")
    base = " + ".join(bases)
    if not args.skip_torch:
        from tokenizers import Tokenizer
        from transformers import BertConfig

        vocab = Tokenizer.from_file(str(tokenizer)).get_vocab_size()
        bert_base = BertConfig(vocab_size=vocab, hidden_size=768, num_hidden_layers=12,
                               num_attention_heads=12, intermediate_size=3072, num_labels=2)
        res["torch_fp32_bert_base"] = torch_rate(bert_base, tokenizer,
                                                 texts[: max(args.batch * 4, 64)],
                                                 args.batch, args.threads, max_length)
        print(f"torch fp32 bert-base-sized: {res['torch_fp32_bert_base']:.1f} docs/s",
              file=sys.stderr)
    report = {"docs_per_s": {k: round(v, 1) for k, v in res.items()}, "batch": args.batch,
              "threads": args.threads, "n_texts": len(texts), "max_length": max_length,
              "base": base, "data": args.data.name, "model": str(args.model.relative_to(ROOT))
              if args.model.is_relative_to(ROOT) else str(args.model),
              "cpu": platform.processor() or platform.machine(), "python": platform.python_version()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
