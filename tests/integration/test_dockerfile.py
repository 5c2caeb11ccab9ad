"""The Dockerfile, proved without a container engine by scripts/check_dockerfile.sh.

(a) hadolint + the image contract, (b) the CPU image's pip steps (docker/install.sh)
replayed in a clean venv: no torch, onnxruntime + tokenizers importable,
`crowdguard --help`, `crowdguard model` on the baked model, (c) the installed
`crowdguard run` against the session's Kafka broker (``kafka_bootstrap``), healthy
on /healthz and exiting 0 on SIGTERM.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_dockerfile.sh"
MODEL = ROOT / "models" / "crowdguard-detector"

pytestmark = pytest.mark.timeout(1200)


def _run(*steps: str, workdir: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDGUARD_")}
    full_env.update(env)
    if workdir is not None:
        full_env["CHECK_WORKDIR"] = str(workdir)
    full_env.setdefault("PIP_QUIET", "1")
    return subprocess.run(["bash", str(SCRIPT), *steps], capture_output=True, text=True,
                          env=full_env, timeout=1100, check=False)


def _explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"


@pytest.fixture(scope="session")
def runtime_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Step (b) once per session: wheel + CPU runtime venv, kept for step (c)."""
    work = tmp_path_factory.mktemp("dockercheck")
    # A missing model is reported by test_default_model_is_there, not here.
    proc = _run("install", workdir=work, CHECK_ALLOW_MISSING_MODEL="1")
    assert proc.returncode == 0, _explain(proc)
    return work


def test_lint() -> None:
    proc = _run("lint")
    assert proc.returncode == 0, _explain(proc)
    assert "hadolint: clean" in proc.stdout
    assert "Dockerfile structure: ok" in proc.stdout


def test_default_model_is_there() -> None:
    """The image bakes models/crowdguard-detector: `docker build` fails without it."""
    assert (MODEL / "crowdguard-model.json").is_file(), (
        f"{MODEL} is missing: the Dockerfile COPYs it into the image")


def test_cpu_runtime_install(runtime_workdir: Path) -> None:
    venv = runtime_workdir / "venv-cpu"
    py = venv / "bin" / "python"
    probe = subprocess.run(
        [str(py), "-c", "import importlib.util as u, sys; "
         "sys.exit(0 if u.find_spec('torch') is None and u.find_spec('onnxruntime') "
         "and u.find_spec('tokenizers') else 1)"], capture_output=True, text=True, check=False)
    assert probe.returncode == 0, "torch importable, or onnxruntime/tokenizers missing in the runtime venv"
    wheels = list((runtime_workdir / "wheels").glob("crowdguard-*.whl"))
    assert len(wheels) == 1, wheels
    help_ = subprocess.run([str(venv / "bin" / "crowdguard"), "--help"], capture_output=True,
                           text=True, check=False)
    assert help_.returncode == 0 and "run" in help_.stdout, help_.stdout + help_.stderr
    # `crowdguard model` in the runtime venv described the baked model and scored its check text
    report = json.loads((runtime_workdir / "model.json").read_text())
    assert report["model"].startswith("crowdguard-detector@") and report["precision"] == "int8"
    assert report["check"]["seconds"] > 0


def test_run_against_kafka(runtime_workdir: Path, kafka_bootstrap: str) -> None:
    proc = _run("run", workdir=runtime_workdir, CROWDGUARD_KAFKA_BOOTSTRAP=kafka_bootstrap)
    assert proc.returncode == 0, _explain(proc)
    assert "exited 0 on SIGTERM" in proc.stdout
