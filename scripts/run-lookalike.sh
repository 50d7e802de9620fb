#!/usr/bin/env bash
# `make run` for lookalike: on first start, ingest the demo catalogue into build/run-data
# (with its metadata, a progress bar), then serve on localhost:$PORT.
# usage: scripts/run-lookalike.sh BUILD_DIR PORT   (DATA_DIR and MODELS_DIR from the Makefile)
set -euo pipefail
build=${1:-build}
port=${2:-8080}
data=$build/run-data
products=${DATA_DIR:?DATA_DIR is not set}/products
model=${MODELS_DIR:?MODELS_DIR is not set}/mobilenet_v1_0.75_224.onnx
if [[ ! -e $data/.ingested ]]; then
    echo "lookalike: first start: ingesting the demo catalogue from $products into $data" >&2
    mkdir -p "$data"
    "$build/lookalike" ingest --data "$data" --model "$model" --metadata "$products/metadata.csv" "$products"
    touch "$data/.ingested"
fi
echo "lookalike: open http://127.0.0.1:$port/ in a browser (the API is under /api; Ctrl-C stops)" >&2
exec "$build/lookalike" serve --data "$data" --model "$model" --port "$port" --bind 127.0.0.1
