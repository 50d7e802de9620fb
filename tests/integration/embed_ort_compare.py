#!/usr/bin/python3
"""ONNX Runtime's side of embed_ort.sh, and the verdict.

  embed_ort_compare.py --dir DIR --model ORT_MODEL.onnx --name NAME [--threads T] [--tol 1e-3]

DIR holds what the embed_ort helper wrote: meta.json (its JSON line), input.f32 and our
outputs ({batch,single}_{embedding,logits}.f32). The same input.f32 is run through ONNX
Runtime (tools/ort/run.js) on ORT_MODEL, a copy of which gains a graph output for any
requested tensor the file does not already output (ONNX Runtime returns only graph outputs).
Both of our runs are compared with ONNX Runtime's: max |ours - ORT| over every value must be
at most tol times the output's scale (max |ORT|), and the top-1 class of every image must be
the same. Prints one JSON line per model with the figures; exits 1 if a check fails.
"""
import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np
import onnx
from onnx import shape_inference

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def with_outputs(model_path, names, out_path):
    """model_path, or a copy at out_path whose graph outputs include every name."""
    m = onnx.load(model_path, load_external_data=False)
    have = {o.name for o in m.graph.output}
    missing = [n for n in names if n not in have]
    if not missing:
        return model_path
    inferred = shape_inference.infer_shapes(m)
    info = {v.name: v for v in inferred.graph.value_info}
    for n in missing:
        if n not in info:
            raise SystemExit(f"embed_ort_compare: no type for tensor {n} in {model_path}")
        m.graph.output.append(info[n])
    onnx.save(m, out_path)
    return out_path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tol", type=float, default=1e-3)
    a = ap.parse_args()
    meta = json.load(open(os.path.join(a.dir, "meta.json")))
    n, crop = meta["images"], meta["crop"]
    names = {"embedding": meta["embedding"], "logits": meta["logits"]}
    dims = {"embedding": meta["embedding_dim"], "logits": meta["logits_dim"]}
    ort_model = with_outputs(a.model, list(names.values()), os.path.join(a.dir, "ort_model.onnx"))
    ort_dir = os.path.join(a.dir, "ort")
    subprocess.run(["node", os.path.join(ROOT, "tools/ort/run.js"), "--model", ort_model, "--input",
                    os.path.join(a.dir, "input.f32"), "--shape", f"{n},3,{crop},{crop}", "--outputs",
                    ",".join(names.values()), "--out-dir", ort_dir, "--threads", str(a.threads)],
                   check=True, stdout=subprocess.DEVNULL, timeout=300)
    result = {"model": a.name, "images": n}
    ok = True
    for role, tensor in names.items():
        ref = np.fromfile(os.path.join(ort_dir, re.sub(r"[^A-Za-z0-9_.-]", "_", tensor) + ".f32"), np.float32)
        ref = ref.reshape(n, -1)
        if ref.shape[1] != dims[role]:
            print(f"{a.name}: {role} '{tensor}': ORT gives {ref.shape[1]} values per image, we {dims[role]}")
            ok = False
            continue
        scale = float(np.abs(ref).max())
        result[f"{role}_scale"] = round(scale, 4)
        for run in ("batch", "single"):
            ours = np.fromfile(os.path.join(a.dir, f"{run}_{role}.f32"), np.float32).reshape(n, -1)
            diff = float(np.abs(ours - ref).max())
            rel = diff / scale if scale > 0 else diff
            result[f"{role}_{run}_max_abs_diff"] = float(f"{diff:.3g}")
            result[f"{role}_{run}_rel"] = float(f"{rel:.3g}")
            if not rel <= a.tol:
                print(f"{a.name}: {role} ({run}): max abs diff {diff:g} is {rel:g} of the scale {scale:g}, "
                      f"over {a.tol:g}")
                ok = False
            if role == "logits":
                agree = int((ours.argmax(axis=1) == ref.argmax(axis=1)).sum())
                result[f"top1_{run}_agree"] = agree
                if agree != n:
                    print(f"{a.name}: top-1 differs from ORT on {n - agree} of {n} images ({run})")
                    ok = False
    result["ok"] = ok
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
