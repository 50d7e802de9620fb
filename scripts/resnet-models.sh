#!/usr/bin/env bash
# Generates the random-weight ResNet-18 and ResNet-50 ONNX graphs (tools/models/make_resnet.py)
# into DIR (default build/models) unless they are already there and newer than the generator.
# Prints the two paths. Used by the embed tests and benchmark; never committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build/models}
gen="$root/tools/models/make_resnet.py"
mkdir -p "$dir"
exec 9>"$dir/.generate.lock"
flock 9
for depth in 18 50; do
    out="$dir/resnet$depth.onnx"
    if [ ! -s "$out" ] || [ "$gen" -nt "$out" ]; then
        /usr/bin/python3 "$gen" --depth "$depth" --seed "$depth" --out "$out" >&2
    fi
    echo "$out"
done
