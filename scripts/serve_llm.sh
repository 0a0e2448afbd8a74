#!/usr/bin/env bash
# Serve the local model (scripts/fetch_llm.sh) over an OpenAI-compatible HTTP API with xllamacpp, llama.cpp's
# own server behind a prebuilt wheel (pip install -e '.[llm]'). Runs in the foreground until SIGINT/SIGTERM.
#
#   scripts/serve_llm.sh                 # http://127.0.0.1:8089/v1, model name "qwen2.5-coder-1.5b"
#   LLM_PORT=9000 LLM_THREADS=2 LLM_CTX=4096 scripts/serve_llm.sh
#
# The app then talks to it through litellm like to any OpenAI-compatible endpoint:
#   RAG_LLM_MODEL=openai/qwen2.5-coder-1.5b RAG_LLM_API_BASE=http://127.0.0.1:8089/v1 RAG_LLM_API_KEY=dummy
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LLM_MODEL_PATH="${LLM_MODEL_PATH:-$ROOT/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}"
export LLM_HOST="${LLM_HOST:-127.0.0.1}"
export LLM_PORT="${LLM_PORT:-8089}"
export LLM_THREADS="${LLM_THREADS:-2}"
export LLM_CTX="${LLM_CTX:-4096}"          # 5 passages of ~500 characters + prompt + answer fit with room to spare
export LLM_ALIAS="${LLM_ALIAS:-qwen2.5-coder-1.5b}"
# llama.cpp's OpenMP workers spin-wait between ops by default; on 2 cores shared with other jobs that spinning
# starves everything (throughput collapses). Passive waiting sleeps instead.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3

if [ ! -f "$LLM_MODEL_PATH" ]; then
  echo "no model at $LLM_MODEL_PATH: run scripts/fetch_llm.sh first" >&2
  exit 1
fi

exec "$PYTHON" - <<'PY'
import os
import signal
import sys
import threading

try:
    import xllamacpp as xlc
except ImportError:
    sys.exit("xllamacpp is not installed: pip install -e '.[llm]'")

params = xlc.CommonParams()
params.model.path = os.environ["LLM_MODEL_PATH"]
params.model_alias = {os.environ["LLM_ALIAS"]}
params.hostnames = [os.environ["LLM_HOST"]]
params.port = int(os.environ["LLM_PORT"])
params.n_ctx = int(os.environ["LLM_CTX"])
params.n_parallel = 1                      # one request at a time: 2 cores cannot batch usefully
params.cpuparams.n_threads = int(os.environ["LLM_THREADS"])
params.cpuparams_batch.n_threads = int(os.environ["LLM_THREADS"])
params.cache_prompt = True                 # the system prompt prefix is reused across questions
params.ui = False

stop = threading.Event()
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda *_: stop.set())

server = xlc.Server(params)  # loads the model and starts the HTTP server in its own threads
print(f"serving {params.model.path} as {os.environ['LLM_ALIAS']!r} at {server.listening_address}/v1 "
      f"({params.cpuparams.n_threads} threads, ctx {params.n_ctx}, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']})",
      flush=True)
stop.wait()
print("stopping", flush=True)
del server
PY
