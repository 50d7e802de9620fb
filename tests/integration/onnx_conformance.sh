#!/usr/bin/env bash
# ONNX backend node tests from Debian's libonnx-testdata, on the embed engine: every test whose
# model uses only ops we implement must pass on both the fast and the reference kernels; tests
# the engine rejects at load as unsupported are listed. Prints the pass count.
set -euo pipefail
BUILD=${BUILD:-build}
dir=/usr/share/libonnx-testdata/data/node
if [ ! -d "$dir" ]; then
    dir=$(dpkg -L libonnx-testdata 2>/dev/null | grep -m1 '/data/node$' || true)
fi
if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    echo "libonnx-testdata is not installed (make deps installs it)" >&2
    exit 1
fi
timeout 600 "$BUILD/tests/onnx_conformance" "$dir"
