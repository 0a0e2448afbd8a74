"""Experiment (docs/experiments.md): does a one-token YES/NO judgement by the local model, over the evidence the
extractive answerer selected, tell near-miss unanswerable questions from answerable ones? Needs the model server
(scripts/serve_llm.sh) on 127.0.0.1:8089; writes one JSON line a question (its P(YES) from the token log-probs).

    scripts/serve_llm.sh &  python scripts/judge_abstention.py > judge.jsonl
"""
import json
import math
import time
from pathlib import Path

import httpx

from app.eval import build_service, load_gold

SYSTEM = ("You check whether numbered sentences from news articles state the answer to a question. "
          "The answer must be stated explicitly: the specific person, organisation, number, date, place or fact the "
          "question asks for, about exactly the subject the question names. Related information about the same topic "
          "is not enough. Reply with one word: YES or NO.")
def ask(q, sentences):
    numbered = "\n".join(f"[{i}] {' '.join(s.split())}" for i, s in enumerate(sentences, 1))
    user = f"Sentences:\n{numbered}\n\nQuestion: {q}\n\nDo the sentences state the answer to the question? Reply YES or NO."
    body = {"model": "qwen2.5-coder-1.5b", "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
            "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 10}
    r = httpx.post("http://127.0.0.1:8089/v1/chat/completions", json=body, timeout=300).json()
    top = r["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    p = {"yes": 0.0, "no": 0.0}
    for t in top:
        k = t["token"].strip().lower()
        if k in p:
            p[k] += math.exp(t["logprob"])
    return p["yes"] / (p["yes"] + p["no"]) if p["yes"] + p["no"] > 0 else 0.5

out = []
for gold, corpus in [("eval/dev.jsonl", "seeds"), ("eval/corpus-b/questions.jsonl", "eval/corpus-b")]:
    svc = build_service("extractive", corpus_dir=Path(corpus))
    for row in load_gold(gold):
        res = svc.ask_with_retrieval(row["question"], None, 5)
        sel = svc.answerer.select(row["question"], res.retrieval) if hasattr(svc.answerer, "select") else []
        sentences = [e.text for e in sel][:4]
        t = time.time()
        p = ask(row["question"], sentences) if sentences else 0.0
        out.append({"corpus": corpus, "id": row["id"], "lang": row["lang"], "answerable": row["answerable"],
                    "abstained": res.answer.abstained, "p_yes": p, "n": len(sentences), "s": round(time.time()-t, 1)})
        print(json.dumps(out[-1]), flush=True)
