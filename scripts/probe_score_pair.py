"""Combine two models' calibrated ``p_llm`` on one labelled file. An experiment, not part of the service.

``A`` and ``B`` are the JSONL outputs of ``crowdguard score --model DIR FILE --out OUT``
for two models on the same labelled ``FILE``. Prints AUROC and TPR at 1% and 5%
FPR of each model and of three label-free combinations (mean probability, mean
logit, the smaller probability), and the ``llm`` verdict FPR/TPR of each model
and of the AND rule (``llm`` only where both say ``llm``, ``human`` only where
both say ``human``).

Usage: python scripts/probe_score_pair.py FILE A B
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from service.evaluation import ranking_metrics  # noqa: E402
from service.records import read_records  # noqa: E402

test, a, b = sys.argv[1], sys.argv[2], sys.argv[3]
y = []
for rec in read_records(Path(test)):
    y.append(1 if str(rec.fields.get('label')).lower() in ('llm', 'synthetic') else 0)
y = np.array(y)
def load(f):
    rows = [json.loads(l) for l in open(f)]
    return np.array([r['p_llm'] for r in rows], dtype=float), [r['verdict'] for r in rows]
pa, va = load(a); pb, vb = load(b)
assert len(pa) == len(pb) == len(y)
logit = lambda p: np.log(np.clip(p, 1e-9, 1 - 1e-9) / np.clip(1 - p, 1e-9, 1))
def verdict_stats(v):
    v = np.array(v); llm = v == 'llm'
    return {'llm_fpr': round(float(llm[y == 0].mean()), 4), 'llm_tpr': round(float(llm[y == 1].mean()), 4),
            'uncertain': round(float((v == 'uncertain').mean()), 4)}
out = {}
for name, s in [('A', pa), ('B', pb), ('mean p', (pa + pb) / 2), ('mean logit', (logit(pa) + logit(pb)) / 2),
                ('min p', np.minimum(pa, pb))]:
    out[name] = ranking_metrics(y, s, digits=4)
out['A verdicts'] = verdict_stats(va); out['B verdicts'] = verdict_stats(vb)
andv = ['llm' if x == 'llm' and z == 'llm' else ('human' if x == 'human' and z == 'human' else 'uncertain')
        for x, z in zip(va, vb)]
out['AND verdicts'] = verdict_stats(andv)
print(json.dumps(out, indent=1))
