"""Copy a trained model directory into the repository's ``models/`` without its fp32 file.

The fp32 ``model.onnx`` (about 90 MB for MiniLM) is too big for git, so the
shipped default holds the int8 CPU file, the tokenizer and the training
features of the familiarity check; on CUDA the int8 file runs. The metadata's ``files`` drop
``fp32``, and the model card is rendered again to say so. Refuses a directory
whose CPU file *is* the fp32 one (int8 quantization broke that model).
A panel directory (``crowdguard panel``) is shipped member by member, the same way; a
char n-gram member (``train --base char-ngrams``, about 1 MB) is copied whole.

Usage: python scripts/ship_model.py SRC_DIR [DST_DIR]   (default DST: models/crowdguard-detector)
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.detector import Detector  # noqa: E402
from service.training.export import METADATA_FILE, write_metadata, write_model_card  # noqa: E402


def _ship_files(src: Path, out: Path) -> dict:
    """Copy one model directory's files, without fp32, into the new directory ``out``."""
    try:
        meta = json.loads((src / METADATA_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{src} is not a model directory: {exc}") from exc
    out.mkdir(parents=True)
    if meta.get("kind") == "panel":
        for member in meta["members"]:
            _ship_files(src / member, out / member)
        write_metadata(out, meta)
        write_model_card(out, meta)
        return meta
    files = dict(meta["files"])
    if meta.get("kind") == "char-ngrams":  # one small file serves every precision
        for name in set(files.values()):
            shutil.copy2(src / name, out / name)
        shutil.copy2(src / METADATA_FILE, out / METADATA_FILE)
        write_model_card(out, meta)
        return meta
    if files.get("cpu") == files.get("fp32"):
        raise SystemExit(f"{src} serves fp32 on CPU (int8 broke it): too big to ship in git")
    files.pop("fp32", None)
    for name in files.values():
        shutil.copy2(src / name, out / name)
    meta["files"] = files
    write_metadata(out, meta)
    write_model_card(out, meta)
    return meta


def ship(src: Path, dst: Path) -> dict:
    tmp = dst.with_name(dst.name + ".new")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        meta = _ship_files(src, tmp)
        Detector.load(tmp)  # what is shipped must load
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)
    return meta


def main() -> int:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    src = Path(sys.argv[1])
    dst = Path(sys.argv[2]) if len(sys.argv) == 3 else ROOT / "models" / "crowdguard-detector"
    meta = ship(src, dst)
    files = sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())
    size = sum((dst / f).stat().st_size for f in files) / 1e6
    print(f"shipped {meta['name']} {meta['version']} to {dst} ({size:.1f} MB): {', '.join(files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
