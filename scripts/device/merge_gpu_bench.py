"""Merges the GPU log-prob benchmark outputs into bench records (bench/types.ts: name, metric, value, unit, note).

Inputs: the JSON line of build/cuda-check/gpu_logprob_bench (medix) and of scripts/device/torch_logprob_bench.py
(PyTorch), matched by T, hidden and mode. Per shape it writes gpu_fused_logprob/torch_time_ratio (torch ms / medix
ms) and gpu_fused_logprob/torch_memory_ratio (torch peak bytes / medix peak bytes), with the raw times and peaks
in the note, plus the gpu/name and gpu/commit notes. The file is OUT_DIR/<gpu>-<date>.json (gpu: the device name
without "NVIDIA", lower case, e.g. h200); records already there for the same name, metric and shape (for gpu/*:
the same name and metric) are replaced, others kept.

    python3 scripts/device/merge_gpu_bench.py MEDIX_JSON TORCH_JSON --commit SHA [--out-dir bench/results] [--date D]
"""
import argparse
import datetime
import json
import os
import re
import sys


def last_json_line(path):
    with open(path) as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    if not lines:
        raise SystemExit(f"merge_gpu_bench: {path} is empty (did the benchmark run?)")
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError as e:
        raise SystemExit(f"merge_gpu_bench: {path}: the last line is not JSON ({e})")


def gpu_slug(device):
    name = re.sub(r"(?i)\bnvidia\b", "", device).strip().lower()
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "gpu"


def key(r, path):
    try:
        return (int(r["T"]), int(r["hidden"]), str(r["mode"]))
    except (KeyError, TypeError, ValueError):
        raise SystemExit(f"merge_gpu_bench: {path}: a result lacks T, hidden or mode: {r}")


def identity(r):
    """What makes two records the same measurement: name, metric and the shape (the note before ';')."""
    shape = "" if r.get("name") == "gpu" else str(r.get("note", "")).split(";")[0]
    return (r.get("name"), r.get("metric"), shape)


def records(medix, torch, medix_path, torch_path, commit):
    theirs = {key(r, torch_path): r for r in torch.get("results", [])}
    out = [
        {"name": "gpu", "metric": "name", "value": 0, "unit": "", "note": medix["device"]},
        {"name": "gpu", "metric": "commit", "value": 0, "unit": "", "note": commit},
    ]
    for r in medix.get("results", []):
        k = key(r, medix_path)
        t = theirs.get(k)
        if t is None:
            print(f"merge_gpu_bench: no PyTorch result for T={k[0]} hidden={k[1]} {k[2]} in {torch_path}",
                  file=sys.stderr)
            continue
        shape = f"T={k[0]} hidden={k[1]} vocab={medix.get('vocab')} {k[2]}, bf16"
        out.append({"name": "gpu_fused_logprob", "metric": "torch_time_ratio", "value": t["ms"] / r["ms"],
                    "unit": "x", "note": f"{shape}; medix {r['ms']:.3f} ms, torch {torch.get('torch')} "
                                         f"{t['ms']:.3f} ms"})
        out.append({"name": "gpu_fused_logprob", "metric": "torch_memory_ratio",
                    "value": t["peak_bytes"] / r["peak_bytes"], "unit": "x",
                    "note": f"{shape}; medix peak {r['peak_bytes']} bytes, torch {t['peak_bytes']} bytes"})
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("medix")
    p.add_argument("torch")
    p.add_argument("--commit", required=True)
    p.add_argument("--out-dir", default="bench/results")
    p.add_argument("--date", default=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"))
    args = p.parse_args()
    medix, torch = last_json_line(args.medix), last_json_line(args.torch)
    if "device" not in medix:
        raise SystemExit(f"merge_gpu_bench: {args.medix}: no device field")
    new = records(medix, torch, args.medix, args.torch, args.commit)
    path = os.path.join(args.out_dir, f"{gpu_slug(medix['device'])}-{args.date}.json")
    old = []
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        if not isinstance(old, list):
            raise SystemExit(f"merge_gpu_bench: {path} is not a list of bench records")
    replaced = {identity(r) for r in new}
    kept = [r for r in old if identity(r) not in replaced]
    os.makedirs(args.out_dir, exist_ok=True)
    with open(path, "w") as f:
        json.dump(kept + new, f, indent=2)
        f.write("\n")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
