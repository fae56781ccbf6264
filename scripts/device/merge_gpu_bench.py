"""Merges the GPU log-prob benchmark outputs into bench records (bench/types.ts: name, metric, value, unit, note).

Inputs: the JSON line of build/cuda-check/gpu_logprob_bench (medix) and of scripts/device/torch_logprob_bench.py
(PyTorch), matched by T, hidden and mode. Per shape it writes gpu_fused_logprob/torch_time_ratio (torch ms / medix
ms) and gpu_fused_logprob/torch_memory_ratio (torch peak bytes / medix peak bytes), with the raw times and peaks
in the note, plus the gpu/name and gpu/commit notes. The file is OUT_DIR/<gpu>-<date>.json (gpu: the device name
without "NVIDIA", lower case, e.g. h200); records already there for the same name, metric and shape (for gpu/*:
the same name and metric) are replaced, others kept.

--records FILE adds a list of bench records made elsewhere (`bench/run.ts --device cuda --json FILE`, the model
benchmark against transformers), which must hold a gpu/name record; with it the two log-prob files may be left out.

    python3 scripts/device/merge_gpu_bench.py [MEDIX_JSON TORCH_JSON] [--records FILE] --commit SHA
        [--out-dir bench/results] [--date D]
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


def read_records(path):
    with open(path) as f:
        try:
            rs = json.load(f)
        except json.JSONDecodeError as e:
            raise SystemExit(f"merge_gpu_bench: {path}: not JSON ({e})")
    if not isinstance(rs, list) or not all(isinstance(r, dict) and "name" in r and "metric" in r for r in rs):
        raise SystemExit(f"merge_gpu_bench: {path} is not a list of bench records")
    device = next((r.get("note") for r in rs if r["name"] == "gpu" and r["metric"] == "name"), None)
    if not device:
        raise SystemExit(f"merge_gpu_bench: {path} has no gpu/name record (was the baseline given?)")
    return rs, device


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("medix", nargs="?")
    p.add_argument("torch", nargs="?")
    p.add_argument("--records")
    p.add_argument("--commit", required=True)
    p.add_argument("--out-dir", default="bench/results")
    p.add_argument("--date", default=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"))
    args = p.parse_args()
    if (args.medix is None) != (args.torch is None) or (args.medix is None and args.records is None):
        p.error("give MEDIX_JSON and TORCH_JSON, --records FILE, or both")
    new, device = [], None
    if args.medix:
        medix, torch = last_json_line(args.medix), last_json_line(args.torch)
        if "device" not in medix:
            raise SystemExit(f"merge_gpu_bench: {args.medix}: no device field")
        new, device = records(medix, torch, args.medix, args.torch, args.commit), medix["device"]
    if args.records:
        extra, their_device = read_records(args.records)
        if device and gpu_slug(their_device) != gpu_slug(device):
            raise SystemExit(f"merge_gpu_bench: {args.records} is from {their_device}, {args.medix} from {device}")
        device = their_device
        ours = {identity(r) for r in new}
        new += [r for r in extra if identity(r) not in ours]
        if not args.medix:
            new.append({"name": "gpu", "metric": "commit", "value": 0, "unit": "", "note": args.commit})
    path = os.path.join(args.out_dir, f"{gpu_slug(device)}-{args.date}.json")
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
