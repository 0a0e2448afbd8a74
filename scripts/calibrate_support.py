"""Calibrate app/answer/llm.py's SUPPORT_THRESHOLD on a gold file: the similarity of each reference answer to the
gold quote it rests on (a supported claim) vs to three other sentences of the same article (unsupported claims),
and for each threshold the share of each that passes.

    .venv/bin/python scripts/calibrate_support.py [GOLD.jsonl]   # default eval/dev.jsonl
"""
import json
import random
import sys

import numpy as np

from app.config import Settings
from app.corpus import load_corpus
from app.embeddings import make_embedder
from app.text.arabic import sentence_spans

s = Settings()
emb = make_embedder(s, query_cache_size=0)
corpus = load_corpus(s.corpus_dir)
rows = [json.loads(l) for l in open(sys.argv[1] if len(sys.argv) > 1 else "eval/dev.jsonl")]
pos, neg, ids = [], [], []
random.seed(0)
for r in rows:
    if not r["answerable"]:
        continue
    a = emb.embed_passages([r["answer"]])[0]
    for g in r["gold_quotes"]:
        raw = corpus.articles[g["article"]].raw
        q0 = raw.find(g["quote"]); q1 = q0 + len(g["quote"])
        pv = emb.embed_passages([g["quote"]])[0]
        pos.append(float(pv @ a)); ids.append((r["id"], int(r["id"].split("-")[1]) % 2))
        others = [raw[x:y] for x, y in sentence_spans(raw) if y <= q0 or x >= q1]
        others = [o for o in others if len(o) > 40]
        for o in random.sample(others, min(3, len(others))):
            neg.append((float(emb.embed_passages([o])[0] @ a), int(r["id"].split("-")[1]) % 2))
pos = np.array(pos); negv = np.array([n for n, _ in neg])
print("positives", len(pos), "median", np.median(pos).round(3), "p10", np.percentile(pos, 10).round(3))
print("negatives", len(negv), "median", np.median(negv).round(3), "p90", np.percentile(negv, 90).round(3))
best = None
for t in np.arange(0.75, 0.90, 0.005):
    tpr = (pos >= t).mean(); fpr = (negv >= t).mean()
    j = tpr - fpr
    print(f"t={t:.3f} supported-pass {tpr:.2f} unsupported-pass {fpr:.2f} J={j:.2f}")
    if best is None or j > best[0]:
        best = (j, t)
print("best J at", round(best[1], 3))
for half in (0, 1):
    p = np.array([x for x, (i, h) in zip(pos, ids) if h == half]); n = np.array([x for x, h in neg if h == half])
    print("half", half, "pass@0.82", (p >= 0.82).mean().round(2), (n >= 0.82).mean().round(2))
