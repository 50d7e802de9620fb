#!/usr/bin/env bash
# Our image pipeline against an independent one on real photos: torchvision's preprocessing
# done with PIL (bench/embed/pil_pipeline.py: EXIF transpose, RGB, Resize(256) antialiased
# bilinear, CenterCrop(224), Normalize). Both decode JPEG with libjpeg-turbo, so any
# difference comes from resampling and rounding: every value must be within 6 pixel levels and the
# mean difference under 0.5 levels; a wrong crop offset, orientation, channel order, normalisation or
# resize size gives tens of levels. Measured: photos on the direct JPEG path match PIL exactly; the
# one with an EXIF block (libvips path) differs by up to 2 levels (libvips alone: 4 and 0.15).
set -euo pipefail

BUILD=${BUILD:-build}
DATA_DIR=${DATA_DIR:-../shared/data}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mapfile -t photos < <(find "$DATA_DIR/products" -name '*.jpg' | sort | awk 'NR % 14 == 3' | head -n 50)
[ ${#photos[@]} -ge 50 ] || { echo "need 50 product photos, found ${#photos[@]}" >&2; exit 1; }

timeout 120 "$BUILD/tests/embed_pipeline" "$tmp/ours.f32" "${photos[@]}"
timeout 120 /usr/bin/python3 bench/embed/pil_pipeline.py --out "$tmp/pil.f32" "${photos[@]}" >/dev/null
timeout 60 /usr/bin/python3 - "$tmp/ours.f32" "$tmp/pil.f32" "${#photos[@]}" <<'PY'
import sys
import numpy as np
n = int(sys.argv[3])
ours = np.fromfile(sys.argv[1], np.float32)
ref = np.fromfile(sys.argv[2], np.float32)
assert ours.size == ref.size == n * 3 * 224 * 224, (ours.size, ref.size)
std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
d = np.abs(ours.reshape(n, 3, 224, 224) - ref.reshape(n, 3, 224, 224)) * std * 255.0
per_image = d.reshape(n, -1).mean(axis=1)
print(f'{{"images":{n},"max_abs_diff_levels":{d.max():.3f},"mean_abs_diff_levels":{d.mean():.4f},'
      f'"worst_image_mean_levels":{per_image.max():.4f}}}')
ok = d.max() <= 6.0 and d.mean() <= 0.5
sys.exit(0 if ok else 1)
PY
