#!/usr/bin/env bash
# `lookalike embed` from the shell: the shared MobileNet names what is in product photos (the
# expected top-1 labels are ONNX Runtime's for the same photos), vectors are L2-normalised
# and have the model's dimension, batch size and thread count do not change them, another
# model (random-weight ResNet-18) gives its own dimension, and bad images, models, labels and
# flags fail with a message and a non-zero exit while the good images still come out.
set -uo pipefail
BUILD=${BUILD:-build}
LK=$BUILD/lookalike
DATA=${DATA_DIR:-../shared/data}/products
MODELS=${MODELS_DIR:-../shared/models}
MODEL=$MODELS/mobilenet_v1_0.75_224.onnx
LABELS=$MODELS/mobilenet_v1_0.75_224.labels.txt
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILS=0
fail() {
    echo "FAIL: $*"
    FAILS=$((FAILS + 1))
}
ok() { echo "ok: $*"; }
# check NAME FILE PYTHON: runs PYTHON (an assertion script) with the JSON lines of FILE as `rows`.
check() {
    if /usr/bin/python3 - "$2" <<PY; then ok "$1"; else fail "$1"; fi
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
$3
PY
}

PANTS=$DATA/validation/pants/081b5ec1-13a6-43c8-991f-9ad2020f646a.jpg
TSHIRT=$DATA/validation/t-shirt/164900f8-4d29-454b-97ba-5d7d22f5cfe2.jpg
SHOES=$DATA/validation/shoes/65368501-a7a8-4552-9035-7e812b9b4828.jpg
LONGSLEEVE=$DATA/validation/longsleeve/e01b05a4-e4ac-40cb-8049-0a3781971796.jpg
GOOD=("$PANTS" "$TSHIRT" "$SHOES" "$LONGSLEEVE")

# ---- classification ----
if "$LK" embed --model "$MODEL" --classify --labels "$LABELS" "${GOOD[@]}" >"$TMP/classes.json" 2>"$TMP/err"; then
    ok "classify exits 0"
else
    fail "classify: $(cat "$TMP/err")"
fi
check "top-1 labels are the ones ONNX Runtime gives" "$TMP/classes.json" "
want = ['jean, blue jean, denim', 'jersey, T-shirt, tee shirt', 'Loafer', 'sweatshirt']
got = [r['classes'][0]['label'] for r in rows]
assert got == want, got
for r in rows:
    c = r['classes']
    assert len(c) == 5, c
    s = [x['score'] for x in c]
    assert s == sorted(s, reverse=True) and 0 < sum(s) <= 1.0001 and s[0] > 0.5, s
    assert all(0 <= x['id'] < 1000 for x in c)
"
check "classify prints one line per image in argument order" "$TMP/classes.json" "
assert [r['file'].rsplit('/', 2)[1] for r in rows] == ['pants', 't-shirt', 'shoes', 'longsleeve'], rows
"
# The probabilities output is already a softmax: its scores must match the logits' softmax.
"$LK" embed --model "$MODEL" --classify --output probabilities "$PANTS" >"$TMP/probs.json"
check "--output probabilities is not softmaxed twice" "$TMP/probs.json" "
c = rows[0]['classes']
ref = json.loads(open('$TMP/classes.json').readline())['classes']
assert [x['id'] for x in c] == [x['id'] for x in ref] and 'label' not in c[0], (c, ref)
assert all(abs(x['score'] - y['score']) < 1e-4 for x, y in zip(c, ref)), (c, ref)
"
"$LK" embed --model "$MODEL" --classify --top 3 "$SHOES" >"$TMP/top3.json"
check "--top 3 without labels gives ids and scores" "$TMP/top3.json" "
c = rows[0]['classes']
assert len(c) == 3 and c[0]['id'] == 630 and 'label' not in c[0], c
"

# ---- vectors ----
"$LK" embed --model "$MODEL" --threads 2 --batch 3 "${GOOD[@]}" "$PANTS" >"$TMP/vec.json" 2>"$TMP/err" ||
    fail "embed: $(cat "$TMP/err")"
"$LK" embed --model "$MODEL" --threads 1 --batch 1 "${GOOD[@]}" >"$TMP/vec1.json" 2>"$TMP/err" ||
    fail "embed (1 thread, batch 1): $(cat "$TMP/err")"
check "vectors: 768-d, unit norm, non-negative (after ReLU6), distinct per photo" "$TMP/vec.json" "
assert len(rows) == 5
for r in rows:
    v = r['vector']
    assert len(v) == 768, len(v)
    assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5
    assert min(v) >= 0
assert rows[0]['vector'] == rows[4]['vector']
cos = sum(a * b for a, b in zip(rows[0]['vector'], rows[1]['vector']))
assert cos < 0.95, cos
"
check "batch size and thread count do not change the vectors" "$TMP/vec1.json" "
other = [json.loads(l) for l in open('$TMP/vec.json')][:4]
for a, b in zip(rows, other):
    assert a['file'] == b['file']
    d = max(abs(x - y) for x, y in zip(a['vector'], b['vector']))
    assert d < 1e-5, d
"
"$LK" embed --model "$MODEL" --output logits "$PANTS" >"$TMP/logits.json"
check "--output logits gives the 1000-d class scores, normalised" "$TMP/logits.json" "
v = rows[0]['vector']
assert len(v) == 1000 and abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5
assert v.index(max(v)) == 608
"
mapfile -t resnet < <(scripts/resnet-models.sh "$BUILD/models")
"$LK" embed --model "${resnet[0]}" "$TSHIRT" "$SHOES" >"$TMP/resnet.json" 2>"$TMP/err" ||
    fail "resnet18: $(cat "$TMP/err")"
check "ResNet-18: the pooled feature, 512-d, unit norm" "$TMP/resnet.json" "
assert len(rows) == 2
for r in rows:
    assert len(r['vector']) == 512 and abs(math.sqrt(sum(x * x for x in r['vector'])) - 1) < 1e-5
"

# ---- bad images: reported, the good ones still printed, exit 1 ----
printf 'not an image\n' >"$TMP/text.jpg"
: >"$TMP/empty.png"
head -c 3000 "$TSHIRT" >"$TMP/truncated.jpg"
"$LK" embed --model "$MODEL" "$TMP/missing.jpg" "$PANTS" "$TMP/text.jpg" "$TMP/empty.png" "$TMP/truncated.jpg" \
    "$SHOES" >"$TMP/mixed.json" 2>"$TMP/mixed.err"
rc=$?
[ $rc -eq 1 ] && ok "bad images: exit 1" || fail "bad images: exit $rc, want 1"
check "bad images: the two good ones are printed" "$TMP/mixed.json" "
assert [r['file'] for r in rows] == ['$PANTS', '$SHOES'], [r['file'] for r in rows]
"
for f in missing.jpg text.jpg empty.png truncated.jpg; do
    if grep -q "$f" "$TMP/mixed.err"; then ok "bad image $f reported"; else fail "bad image $f not reported: $(cat "$TMP/mixed.err")"; fi
done
[ "$(wc -l <"$TMP/mixed.err")" -eq 4 ] && ok "one message per bad image" || fail "stderr: $(cat "$TMP/mixed.err")"

# ---- bad models, labels and flags ----
expect_fail() { # NAME RC PATTERN ARGS...
    local name=$1 want=$2 pat=$3
    shift 3
    "$LK" embed "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -eq "$want" ] && grep -q -- "$pat" "$TMP/err" && [ ! -s "$TMP/out" ]; then
        ok "$name"
    else
        fail "$name: exit $rc (want $want), stderr [$(cat "$TMP/err")], stdout $(wc -c <"$TMP/out") bytes"
    fi
}
expect_fail "model that is not ONNX" 1 "model $TMP/text.jpg" --model "$TMP/text.jpg" "$PANTS"
expect_fail "missing model" 1 "cannot open" --model "$TMP/none.onnx" "$PANTS"
expect_fail "unknown output tensor" 1 "no tensor named 'nope'" --model "$MODEL" --output nope "$PANTS"
expect_fail "labels with the wrong line count" 1 "has 1 lines, but 'logits' has 1000" --model "$MODEL" \
    --classify --labels "$TMP/text.jpg" "$PANTS"
expect_fail "missing labels file" 1 "cannot read" --model "$MODEL" --classify --labels "$TMP/none.txt" "$PANTS"
expect_fail "labels without --classify" 2 "needs --classify" --model "$MODEL" --labels "$LABELS" "$PANTS"
expect_fail "no image" 2 "no image given" --model "$MODEL"
expect_fail "unknown flag" 2 "unknown flag --colour" --model "$MODEL" --colour red "$PANTS"
expect_fail "bad --batch" 2 "batch" --model "$MODEL" --batch 0 "$PANTS"
expect_fail "bad --preprocessing" 2 "preprocessing" --model "$MODEL" --preprocessing "whatever" "$PANTS"
"$LK" embed --help >"$TMP/help" && grep -q -- "--classify" "$TMP/help" && ok "--help" || fail "--help"

echo "$FAILS failures"
[ "$FAILS" -eq 0 ]
