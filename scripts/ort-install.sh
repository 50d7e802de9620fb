#!/usr/bin/env bash
# Installs the pinned ONNX Runtime for Node (tools/ort/package-lock.json) into
# tools/ort/node_modules with `npm ci`, once; later runs are a no-op while the lock file is
# unchanged. Used by the tests and the benchmark that compare the embed engine against ONNX
# Runtime. Installs Debian's nodejs/npm when node or npm is missing (never skips).
# Package install scripts are not run: the CPU library ships inside the package, and the
# postinstall step only fetches optional GPU providers from outside the npm registry.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/tools/ort"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    "$root/scripts/deps.sh" nodejs npm
fi

mkdir -p "$root/build"
exec 9>"$root/build/.ort-install.lock"
flock 9
stamp="$dir/node_modules/.installed-lock"
if [ -f "$dir/node_modules/onnxruntime-node/package.json" ] && cmp -s "$dir/package-lock.json" "$stamp"; then
    exit 0
fi
echo "ort-install: npm ci in tools/ort" >&2
(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
cp "$dir/package-lock.json" "$stamp"
