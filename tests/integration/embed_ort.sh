#!/usr/bin/env bash
# The embed engine against ONNX Runtime (onnxruntime-node, installed from tools/ort's lock file
# when missing) on the same preprocessed tensors of real product photos: 64 photos through
# every model in MODELS_DIR, and a few through ResNet-18 and ResNet-50 graphs with random
# weights (built here by tools/models/make_resnet.py). Embedding and logits must agree within
# 1e-3 of the output's scale and the top-1 class must be the same for every photo, both for
# the whole batch (split over two threads) and for each photo alone. ResNet-18 is given to us
# without its "embedding" graph output, so the engine must find the pooled feature itself
# (the input of the final Gemm), as in a torchvision export.
set -euo pipefail
BUILD=${BUILD:-build}
DATA_DIR=${DATA_DIR:-../shared/data}
MODELS_DIR=${MODELS_DIR:-../shared/models}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

scripts/ort-install.sh
mapfile -t resnet < <(scripts/resnet-models.sh "$BUILD/models")
mapfile -t photos < <(find "$DATA_DIR/products" -name '*.jpg' | sort | awk 'NR % 11 == 5' | head -n 64)
[ ${#photos[@]} -ge 50 ] || { echo "need 50 product photos, found ${#photos[@]}" >&2; exit 1; }

# A torchvision-like ResNet-18: the same file with only "logits" as graph output.
/usr/bin/python3 - "${resnet[0]}" "$tmp/resnet18_logits_only.onnx" <<'PY'
import sys
import onnx
m = onnx.load(sys.argv[1])
keep = [o for o in m.graph.output if o.name == "logits"]
del m.graph.output[:]
m.graph.output.extend(keep)
onnx.save(m, sys.argv[2])
PY

failed=0
# compare NAME OUR_MODEL ORT_MODEL IMAGE...
compare() {
    local name=$1 ours=$2 ort=$3
    shift 3
    local dir="$tmp/$name"
    mkdir -p "$dir"
    if ! timeout 300 "$BUILD/tests/embed_ort" "$ours" "$dir" 2 "$@" >"$dir/meta.json"; then
        echo "$name: our engine failed"
        failed=1
        return
    fi
    echo "$name: $(cat "$dir/meta.json")"
    timeout 300 /usr/bin/python3 tests/integration/embed_ort_compare.py --dir "$dir" --model "$ort" \
        --name "$name" --threads 2 || failed=1
}

n_models=0
for model in "$MODELS_DIR"/*.onnx; do
    [ -f "$model" ] || continue
    compare "$(basename "$model" .onnx)" "$model" "$model" "${photos[@]}"
    n_models=$((n_models + 1))
done
[ $n_models -ge 1 ] || { echo "no model in $MODELS_DIR" >&2; exit 1; }
compare resnet18 "$tmp/resnet18_logits_only.onnx" "${resnet[0]}" "${photos[@]:0:6}"
compare resnet50 "${resnet[1]}" "${resnet[1]}" "${photos[@]:6:4}"
[ $failed -eq 0 ]
