"""Copy a trained model directory into the repository's ``models/`` without its fp32 file.

The fp32 ``model.onnx`` (about 90 MB for MiniLM) is too big for git, so the
shipped default holds the int8 CPU file, the tokenizer and the training
features of the familiarity check; on CUDA the int8 file runs. The metadata's ``files`` drop
``fp32``, and the model card is rendered again to say so. Refuses a directory
whose CPU file *is* the fp32 one (int8 quantization broke that model).

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


def ship(src: Path, dst: Path) -> dict:
    try:
        meta = json.loads((src / METADATA_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{src} is not a model directory: {exc}") from exc
    files = dict(meta["files"])
    if files.get("cpu") == files.get("fp32"):
        raise SystemExit(f"{src} serves fp32 on CPU (int8 broke it): too big to ship in git")
    files.pop("fp32", None)
    tmp = dst.with_name(dst.name + ".new")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name in files.values():
        shutil.copy2(src / name, tmp / name)
    meta["files"] = files
    write_metadata(tmp, meta)
    write_model_card(tmp, meta)
    try:
        Detector.load(tmp)  # what is shipped must load
    except Exception:
        shutil.rmtree(tmp)
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
    size = sum(p.stat().st_size for p in dst.iterdir()) / 1e6
    print(f"shipped {meta['name']} {meta['version']} to {dst} ({size:.1f} MB): "
          f"{', '.join(sorted(meta['files'].values()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
