#!/usr/bin/env bash
# Install the crowdguard runtime into a virtual environment: the ONE copy of the
# image's pip steps. The Dockerfile runs it in the `cpu` and `gpu` stages;
# scripts/check_dockerfile.sh runs it in a scratch venv to prove the CPU steps
# without a container engine.
#
#   docker/install.sh cpu|gpu VENV_DIR WHEEL_DIR
#
# Environment: ONNXRUNTIME_VERSION (required; the Dockerfile's build arg),
#              PYTHON (interpreter that creates the venv; default python3).
# Pins live in docker/requirements-{cpu,gpu}.txt beside this script.
set -euo pipefail

variant="${1:?usage: install.sh cpu|gpu VENV_DIR WHEEL_DIR}"
venv="${2:?usage: install.sh cpu|gpu VENV_DIR WHEEL_DIR}"
wheels="${3:?usage: install.sh cpu|gpu VENV_DIR WHEEL_DIR}"
: "${ONNXRUNTIME_VERSION:?ONNXRUNTIME_VERSION must be set (Dockerfile ARG)}"
export ONNXRUNTIME_VERSION
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

case "$variant" in
    cpu) ort_dist=onnxruntime; provider=CPUExecutionProvider ;;
    gpu) ort_dist=onnxruntime-gpu; provider=CUDAExecutionProvider ;;
    *) echo "install.sh: variant must be cpu or gpu, not '$variant'" >&2; exit 64 ;;
esac

shopt -s nullglob
whl=("$wheels"/crowdguard-*.whl)
if (( ${#whl[@]} != 1 )); then
    echo "install.sh: expected exactly one crowdguard-*.whl in $wheels, found ${#whl[@]}" >&2
    exit 1
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
py="$venv/bin/python"
pip=("$py" -m pip --disable-pip-version-check --no-input)
export PIP_PROGRESS_BAR="${PIP_PROGRESS_BAR:-off}"  # build logs, not a terminal

# 1. The wheel and its dependencies, with the CPU onnxruntime pinned.
"${pip[@]}" install -r "$here/requirements-cpu.txt" "${whl[0]}"

# 2. GPU: swap onnxruntime for onnxruntime-gpu. Both ship the `onnxruntime` import
#    package; having both installed corrupts it, so the CPU one goes first.
if [[ "$variant" == gpu ]]; then
    "${pip[@]}" uninstall -y onnxruntime
    "${pip[@]}" install -r "$here/requirements-gpu.txt"
fi

# 3. Prove the result: no torch, exactly one onnxruntime distribution at the pinned
#    version with the expected execution provider compiled in, tokenizers present.
"$py" - "$ort_dist" "$provider" <<'PY'
import importlib.metadata as md
import importlib.util
import os
import sys

ort_dist, provider = sys.argv[1], sys.argv[2]
if importlib.util.find_spec("torch") is not None:
    sys.exit("install.sh: torch is importable in the runtime environment (it must not be)")
ort_dists = sorted({d.metadata["Name"].lower() for d in md.distributions()
                    if d.metadata["Name"].lower().startswith("onnxruntime")})
if ort_dists != [ort_dist]:
    sys.exit(f"install.sh: expected only {ort_dist} installed, found {ort_dists}")
import onnxruntime
import tokenizers  # noqa: F401
import service  # noqa: F401
want = os.environ["ONNXRUNTIME_VERSION"]
if onnxruntime.__version__ != want:
    sys.exit(f"install.sh: onnxruntime {onnxruntime.__version__} imported, {want} pinned")
providers = onnxruntime.get_available_providers()
if provider not in providers:
    sys.exit(f"install.sh: {provider} not in onnxruntime providers {providers}")
print(f"install.sh: ok: {ort_dist} {onnxruntime.__version__} {providers}, "
      f"tokenizers {tokenizers.__version__}, no torch")
PY

# 4. Dependency consistency. The GPU swap leaves exactly one expected complaint
#    (crowdguard's metadata names `onnxruntime`, satisfied by onnxruntime-gpu).
if ! out="$("${pip[@]}" check 2>&1)"; then
    rest="$(grep -viE '^crowdguard [^ ]+ requires onnxruntime, which is not installed\.?$' <<<"$out" || true)"
    if [[ "$variant" == cpu || -n "$rest" ]]; then
        echo "$out" >&2
        exit 1
    fi
fi

"$venv/bin/crowdguard" --help >/dev/null
echo "install.sh: $variant runtime installed in $venv"
