"""Experiment (docs/experiments.md): does a one-token YES/NO judgement by a model, over the evidence the extractive
answerer selected, tell near-miss unanswerable questions from answerable ones? Writes one JSON line a question, with
its P(YES) read from the first token's log-probabilities.

    scripts/serve_llm.sh &  .venv/bin/python scripts/judge_abstention.py > judge.jsonl

Any OpenAI-compatible chat endpoint that returns log-probabilities will do (llama.cpp's server, vLLM, a hosted API):
JUDGE_BASE_URL (default the local model server, http://127.0.0.1:8089/v1), JUDGE_MODEL (default
qwen2.5-coder-1.5b) and JUDGE_API_KEY (sent as a bearer token when set). Issue 14's near misses wait on a stronger
judge than the local 1.5B model; this is how one is scored.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.eval import DEV_CORPORA, build_service, load_gold  # noqa: E402

SYSTEM = ("You check whether numbered sentences from news articles state the answer to a question. "
          "The answer must be stated explicitly: the specific person, organisation, number, date, place or fact the "
          "question asks for, about exactly the subject the question names. Related information about the same topic "
          "is not enough. Reply with one word: YES or NO.")
MAX_SENTENCES = 4


def p_yes(client: httpx.Client, model: str, question: str, sentences: list[str]) -> float:
    """The model's probability that the sentences state the answer: P(YES) / (P(YES) + P(NO)) over its first token's
    top log-probabilities (0.5 when neither word is among them)."""
    numbered = "\n".join(f"[{i}] {' '.join(s.split())}" for i, s in enumerate(sentences, 1))
    user = (f"Sentences:\n{numbered}\n\nQuestion: {question}\n\n"
            "Do the sentences state the answer to the question? Reply YES or NO.")
    body = {"model": model, "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
            "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 10}
    reply = client.post("/chat/completions", json=body).raise_for_status().json()
    p = {"yes": 0.0, "no": 0.0}
    for candidate in reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]:
        word = candidate["token"].strip().lower()
        if word in p:
            p[word] += math.exp(candidate["logprob"])
    return p["yes"] / (p["yes"] + p["no"]) if p["yes"] + p["no"] > 0 else 0.5


def main() -> None:
    model = os.environ.get("JUDGE_MODEL", "qwen2.5-coder-1.5b")
    key = os.environ.get("JUDGE_API_KEY")
    client = httpx.Client(base_url=os.environ.get("JUDGE_BASE_URL", "http://127.0.0.1:8089/v1"), timeout=300,
                          headers={"Authorization": f"Bearer {key}"} if key else None)
    for gold, corpus in DEV_CORPORA.values():
        service = build_service("extractive", corpus_dir=corpus)
        for row in load_gold(gold):
            result = service.ask_with_retrieval(row["question"], None, 5)
            sentences = [e.text for e in service.answerer.select(row["question"], result.retrieval)][:MAX_SENTENCES]
            started = time.time()
            p = p_yes(client, model, row["question"], sentences) if sentences else 0.0
            print(json.dumps({"corpus": corpus, "id": row["id"], "lang": row["lang"], "answerable": row["answerable"],
                              "abstained": result.answer.abstained, "p_yes": p, "n": len(sentences),
                              "s": round(time.time() - started, 1)}), flush=True)


if __name__ == "__main__":
    main()
