#!/usr/bin/python3
"""The peer for the image pipeline benchmark: torchvision's preprocessing done with PIL.

  pil_pipeline.py [--out FILE.f32] [--mean R,G,B --std R,G,B] IMAGE...

For each image: open, EXIF transpose, convert to RGB, Resize(256) with PIL's antialiased
bilinear (what torchvision uses on PIL images), CenterCrop(224), ToTensor + Normalize, NCHW
float32. Prints one JSON line with the wall and CPU time of the loop, and writes the tensors to --out
(raw float32) so the benchmark can compare them with ours. Needs Debian's python3-pil and
python3-numpy.
"""
import argparse
import json
import sys
import time

import numpy as np
from PIL import Image, ImageOps


def preprocess(path, mean, std):
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        w, h = im.size
        if w <= h:
            nw, nh = 256, int(256 * h / w)
        else:
            nw, nh = int(256 * w / h), 256
        im = im.resize((nw, nh), Image.BILINEAR)
        left, top = int(round((nw - 224) / 2.0)), int(round((nh - 224) / 2.0))
        im = im.crop((left, top, left + 224, top + 224))
        a = np.asarray(im, dtype=np.float32) / 255.0
    return ((a - mean) / std).transpose(2, 0, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--mean", default="0.485,0.456,0.406")
    ap.add_argument("--std", default="0.229,0.224,0.225")
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    mean = np.array([float(x) for x in a.mean.split(",")], dtype=np.float32)
    std = np.array([float(x) for x in a.std.split(",")], dtype=np.float32)
    out = []
    t0, c0 = time.perf_counter(), time.process_time()
    for p in a.images:
        out.append(preprocess(p, mean, std))
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    if a.out:
        np.ascontiguousarray(np.stack(out), dtype=np.float32).tofile(a.out)
    print(json.dumps({"images": len(a.images), "seconds": dt, "cpu_seconds": cpu}))


if __name__ == "__main__":
    sys.exit(main())
