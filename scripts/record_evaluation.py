"""Record a held-out evaluation in a model directory's metadata and re-render its card.

Takes the JSON report that ``crowdguard evaluate --out REPORT`` wrote, picks one
of its files (``--file``, needed only when the report holds several), and adds
its overall metrics to the ``evaluations`` list of ``crowdguard-model.json`` in
``--into``; an entry with the same ``--set`` name is replaced, and ``--replaces OLD``
puts the new entry in the place of the entry named OLD (an older recipe's figures,
say). ``--remove`` drops the entry named by ``--set`` instead. Then
``MODEL_CARD.md`` is written again from the metadata, so the card shows the
figures exactly as ``evaluate`` measured them.

``--model`` says which model was evaluated when it is not the directory's own
(a twin trained without the held-out data, say); the report's model label is
kept beside it.

Usage: python scripts/record_evaluation.py --into MODEL_DIR --report REPORT.json
       --set NAME [--file PATH] [--model TEXT] [--note TEXT] [--command TEXT]
       [--replaces OLD_NAME]
       python scripts/record_evaluation.py --into MODEL_DIR --set NAME --remove
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.detector.model_dir import load_model_info  # noqa: E402
from service.errors import ModelError  # noqa: E402
from service.training.export import METADATA_FILE, write_metadata, write_model_card  # noqa: E402


def _load(into: Path) -> dict:
    try:
        load_model_info(into)  # fail fast on something that is not a model directory
    except ModelError as exc:
        raise SystemExit(str(exc)) from exc
    return json.loads((into / METADATA_FILE).read_text())


def _names(evals: list[dict]) -> str:
    """The set names of ``evals`` for an error message."""
    return "; ".join(str(e.get("set")) for e in evals) or "none"


def _save(into: Path, meta: dict) -> None:
    write_metadata(into, meta)
    write_model_card(into, meta)


def record(into: Path, report: dict, *, set_name: str, file: str | None = None,
           model: str | None = None, note: str | None = None,
           command: str | None = None, replaces: str | None = None) -> dict:
    """Add the evaluation to ``into``'s metadata and card; return the entry written.

    With ``replaces``, the entry of that name must exist; the new one takes its place.
    """
    meta = _load(into)
    files = report.get("files") or {}
    if file is None:
        if len(files) != 1:
            raise SystemExit(f"the report holds {len(files)} files; name one with --file "
                             f"({', '.join(files) or 'none'})")
        file = next(iter(files))
    if file not in files:
        raise SystemExit(f"{file!r} is not in the report (it has: {', '.join(files)})")
    entry = {"set": set_name, "model": model or "this model",
             "evaluated": report.get("model"), "metrics": files[file]["all"]}
    if note:
        entry["note"] = note
    if command:
        entry["command"] = command
    evals = list(meta.get("evaluations", []))
    names = [e.get("set") for e in evals]
    if replaces is not None:
        if replaces not in names:
            raise SystemExit(f"no evaluation named {replaces!r} to replace in {into} "
                             f"(it has: {_names(evals)})")
        at = names.index(replaces)
        evals[at] = entry
        evals = [e for i, e in enumerate(evals) if i == at or e.get("set") != set_name]
    else:
        evals = [*(e for e in evals if e.get("set") != set_name), entry]
    meta["evaluations"] = evals
    _save(into, meta)
    return entry


def remove(into: Path, set_name: str) -> None:
    """Drop the evaluation named ``set_name`` from ``into``'s metadata and card."""
    meta = _load(into)
    evals = list(meta.get("evaluations", []))
    kept = [e for e in evals if e.get("set") != set_name]
    if len(kept) == len(evals):
        raise SystemExit(f"no evaluation named {set_name!r} in {into} (it has: {_names(evals)})")
    meta["evaluations"] = kept
    _save(into, meta)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--into", type=Path, required=True, help="model directory to record into")
    ap.add_argument("--report", type=Path, help="`crowdguard evaluate --out` file")
    ap.add_argument("--set", dest="set_name", required=True, help="name of the held-out set")
    ap.add_argument("--file", help="which file of the report (when it has several)")
    ap.add_argument("--model", help="the model evaluated, when not the directory's own")
    ap.add_argument("--note", help="what the figures mean, shown under the table")
    ap.add_argument("--command", help="the command that produced the report")
    ap.add_argument("--replaces", metavar="OLD_NAME",
                    help="put the new entry in the place of this one, which goes")
    ap.add_argument("--remove", action="store_true",
                    help="drop the entry named by --set (no report needed)")
    args = ap.parse_args()
    if args.remove:
        if any((args.report, args.replaces, args.file, args.model, args.note, args.command)):
            ap.error("--remove takes only --into and --set")
        remove(args.into, args.set_name)
        print(f"removed {args.set_name!r} from {args.into}")
        return 0
    if args.report is None:
        ap.error("--report is required unless --remove is given")
    try:
        report = json.loads(args.report.read_text())
    except (OSError, ValueError) as exc:
        ap.error(f"cannot read the report {args.report}: {exc}")
    entry = record(args.into, report, set_name=args.set_name,
                   file=args.file, model=args.model, note=args.note, command=args.command,
                   replaces=args.replaces)
    print(json.dumps(entry, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
