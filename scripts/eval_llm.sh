#!/usr/bin/env bash
# `make eval-llm`: start the local model server (scripts/serve_llm.sh), run the evaluation in generative mode
# through litellm against it, once per strategy, then stop the server (by its PID).
#
#   scripts/eval_llm.sh                       # both strategies, both development corpora
#                                             #   -> eval/runs/llm-<strategy>-<corpus>/
#   STRATEGIES=evidence LANG_ONLY=en scripts/eval_llm.sh   # the English questions only (the translations' figures)
#   STRATEGIES=evidence CORPORA="other.jsonl=path/to/articles" scripts/eval_llm.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
CORPORA="${CORPORA:-eval/dev.jsonl=seeds eval/corpus-b/questions.jsonl=eval/corpus-b}"
LANG_ONLY="${LANG_ONLY:-}"
STRATEGIES="${STRATEGIES:-evidence passages}"
export LLM_PORT="${LLM_PORT:-8089}"
export LITELLM_LOCAL_MODEL_COST_MAP=True
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
log="$(mktemp -t serve_llm.XXXXXX.log)"

scripts/serve_llm.sh > "$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  if curl -sf "http://127.0.0.1:$LLM_PORT/v1/models" > /dev/null; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$log" >&2; echo "the model server exited" >&2; exit 1; fi
  sleep 1
done
curl -sf "http://127.0.0.1:$LLM_PORT/v1/models" > /dev/null || { cat "$log" >&2; echo "model server not ready" >&2; exit 1; }

runs=()
for strategy in $STRATEGIES; do
  for pair in $CORPORA; do
    gold="${pair%%=*}"
    corpus="${pair#*=}"
    name="llm-$strategy-$(basename "$corpus")${LANG_ONLY:+-$LANG_ONLY}${RUN_SUFFIX:-}"
    echo "== llm mode, strategy $strategy, $gold over $corpus" >&2
    RAG_LLM_MODEL="${RAG_LLM_MODEL:-openai/qwen2.5-coder-1.5b}" \
    RAG_LLM_API_BASE="${RAG_LLM_API_BASE:-http://127.0.0.1:$LLM_PORT/v1}" \
    RAG_LLM_API_KEY="${RAG_LLM_API_KEY:-local}" \
    RAG_LLM_TIMEOUT="${RAG_LLM_TIMEOUT:-300}" \
    RAG_LLM_STRATEGY="$strategy" \
      "$PYTHON" -m app.eval "$gold" --corpus "$corpus" --mode llm ${LANG_ONLY:+--lang "$LANG_ONLY"} \
        --out "eval/runs/$name" > /dev/null
    runs+=("eval/runs/$name")
  done
done
"$PYTHON" -m app.eval table "${runs[@]}"
