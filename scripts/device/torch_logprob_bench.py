"""PyTorch eager baseline for medix's GPU fused log-probs (issue 14; bench/gpu/logprob_bench.cu measures medix).

Times torch.log_softmax((h @ W.T).float(), -1).gather(...) with bf16 h [T, hidden] and W [vocab, hidden],
forward and forward+backward (autograd, upstream gradient uniform in [-1, 1)), with CUDA events after a warm-up,
and its peak memory beyond the inputs (torch.cuda.max_memory_allocated after reset_peak_memory_stats, minus what
was allocated before the calls: the inputs). Prints one JSON line on stdout, progress on stderr.

    python3 scripts/device/torch_logprob_bench.py [--T 4096,16384] [--hidden 2048,4096] [--vocab 151936] [--reps 3]
"""
import argparse
import json
import sys


def ints(text):
    return [int(x) for x in text.split(",") if x]


def run_shape(torch, T, hidden, vocab, reps, backward):
    gen = torch.Generator(device="cuda").manual_seed(0)
    h = (torch.rand(T, hidden, device="cuda", generator=gen) * 2 - 1).to(torch.bfloat16)
    spread = 2.6 / hidden**0.5  # logits' standard deviation ~1.5, as the medix bench
    W = ((torch.rand(vocab, hidden, device="cuda", generator=gen) * 2 - 1) * spread).to(torch.bfloat16)
    targets = torch.randint(0, vocab, (T, 1), device="cuda", generator=gen)
    dlogp = torch.rand(T, 1, device="cuda", generator=gen) * 2 - 1
    h.requires_grad_(backward)
    W.requires_grad_(backward)

    def once():
        h.grad = None
        W.grad = None
        logp = torch.log_softmax((h @ W.T).float(), -1).gather(-1, targets)
        if backward:
            logp.backward(dlogp)
        return logp

    once()  # warm-up: cuBLAS handles, the caching allocator's blocks
    h.grad = None
    W.grad = None
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    begin = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    begin.record()
    for _ in range(reps):
        once()
    end.record()
    end.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del h, W, targets, dlogp
    torch.cuda.empty_cache()
    return {"T": T, "hidden": hidden, "mode": "forward_backward" if backward else "forward",
            "ms": begin.elapsed_time(end) / reps, "peak_bytes": peak}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--T", type=ints, default=[4096, 16384])
    p.add_argument("--hidden", type=ints, default=[2048, 4096])
    p.add_argument("--vocab", type=int, default=151936)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    try:
        import torch
    except ImportError as e:
        print(f"torch_logprob_bench: PyTorch is not installed for {sys.executable}: {e}", file=sys.stderr)
        return 3
    if not torch.cuda.is_available():
        print(f"torch_logprob_bench: NO CUDA DEVICE visible to PyTorch {torch.__version__}", file=sys.stderr)
        return 2
    results = []
    for T in args.T:
        for hidden in args.hidden:
            for backward in (False, True):
                r = run_shape(torch, T, hidden, args.vocab, max(1, args.reps), backward)
                print(f"torch_logprob_bench: T={T} hidden={hidden} {r['mode']}: {r['ms']:.3f} ms, "
                      f"peak {r['peak_bytes'] / 2**20:.1f} MiB", file=sys.stderr)
                results.append(r)
    print(json.dumps({"bench": "torch_logprob", "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                      "vocab": args.vocab, "reps": args.reps, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
