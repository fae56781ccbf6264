"""transformers baseline for medix's GPU model benchmark (issue 14; bench/gpu/model-bench.ts measures medix).

Same shapes as the medix side, random weights (a Qwen3-1.7B-shaped Qwen3ForCausalLM by default):
  train   one step of the model held in fp32 (master weights, gradients, AdamW moments) under bf16 autocast,
          as FSDP's mixed precision runs it: sdpa attention, gradient checkpointing (medix recomputes too),
          forward to per-token log-probs (log_softmax of the fp32 logits, gathered at the next tokens),
          backward of sum(dlogp * logp), grad-norm clipping at 1, fused AdamW. SEQS sequences of SEQ_LEN
          tokens (16,384 by default), which medix packs into one batch. Best of REPS steps after a warm-up.
  decode  bf16 weights, `generate` with a static cache (transformers compiles the forward itself unless
          --compile off), sampling at temperature 1 with no top-k/top-p, NEW tokens forced per row. For each
          batch size, best of 2 after a warm-up: tokens/s = batch * (NEW - 1) / (time from the prefill's
          logits to the last step's, noted by a logits processor after a synchronize), as medix's rate
          starts when its prefill step's tokens arrive.
  peak    the limits both sides are measured against, in the same run: bf16 GEMM TFLOP/s (8192^3
          torch.matmul, best of 10) and device-to-device copy bandwidth (1 GiB, best of 10, read + write bytes).
Prints one JSON line on stdout (a part that fails, e.g. out of memory, carries its error and the others still
run), progress on stderr. Exit 2: no CUDA device; 3: PyTorch or transformers missing.

    python3 scripts/device/hf_model_bench.py [--seqs 4] [--seq-len 4096] [--batches 1,32,128] [--prompt 64]
        [--new 128] [--reps 2] [--compile auto|off] [--only train,decode]
"""
import argparse
import json
import sys
import time

# Qwen3-1.7B's shape (its config.json); bench/gpu/model-bench.ts uses the same numbers.
QWEN3_1_7B = dict(vocab_size=151936, hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                  num_attention_heads=16, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-6,
                  tie_word_embeddings=True)


def ints(text):
    return [int(x) for x in text.split(",") if x]


def log(msg):
    print(f"hf_model_bench: {msg}", file=sys.stderr, flush=True)


def event_ms(torch, fn):
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    fn()
    end.record()
    end.synchronize()
    return begin.elapsed_time(end)


def peaks(torch):
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    torch.matmul(a, b)
    gemm_ms = min(event_ms(torch, lambda: torch.matmul(a, b)) for _ in range(10))
    src = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    copy_ms = min(event_ms(torch, lambda: dst.copy_(src)) for _ in range(10))
    del a, b, src, dst
    torch.cuda.empty_cache()
    return {"bf16_gemm_tflops": 2 * 8192**3 / (gemm_ms / 1e3) / 1e12,
            "copy_gb_per_s": 2 * 2**30 / (copy_ms / 1e3) / 1e9}


def make_model(torch, transformers, dtype):
    config = transformers.Qwen3Config(**QWEN3_1_7B)
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    return model.to(dtype)


def train(torch, transformers, args):
    model = make_model(torch, transformers, torch.float32)
    model.config.use_cache = False
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=True)
    vocab = model.config.vocab_size
    gen = torch.Generator(device="cuda").manual_seed(0)
    ids = torch.randint(0, vocab, (args.seqs, args.seq_len), device="cuda", generator=gen)
    tokens = args.seqs * (args.seq_len - 1)
    dlogp = torch.full((args.seqs, args.seq_len - 1), -1.0 / tokens, device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=ids).logits[:, :-1]
        logp = torch.log_softmax(logits.float(), -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        (logp * dlogp).sum().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step()  # warm-up: allocator blocks, cuBLAS handles, the AdamW state
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    ms = min(event_ms(torch, step) for _ in range(args.reps))
    peak = torch.cuda.max_memory_allocated()
    params = sum(p.numel() for p in model.parameters())
    del model, opt
    torch.cuda.empty_cache()
    return {"seqs": args.seqs, "seq_len": args.seq_len, "step_ms": ms, "peak_bytes": peak, "params": params}


def decode(torch, transformers, args):
    model = make_model(torch, transformers, torch.bfloat16).eval()
    vocab = model.config.vocab_size
    gen = torch.Generator(device="cuda").manual_seed(1)

    class StepClock(transformers.LogitsProcessor):
        """Notes when each step's logits are ready (generate calls it once a step, outside the forward)."""

        def __init__(self):
            self.times = []

        def __call__(self, input_ids, scores):
            torch.cuda.synchronize()
            self.times.append(time.perf_counter())
            return scores

    out = []
    for batch in args.batches:
        prompt = torch.randint(0, vocab, (batch, args.prompt), device="cuda", generator=gen)

        def run():
            clock = StepClock()
            kw = dict(max_new_tokens=args.new, min_new_tokens=args.new, do_sample=True, temperature=1.0, top_k=0,
                      top_p=1.0, cache_implementation="static", pad_token_id=0, eos_token_id=vocab - 1,
                      logits_processor=transformers.LogitsProcessorList([clock]))
            if args.compile == "off":
                kw["disable_compile"] = True
            with torch.inference_mode():
                model.generate(prompt, attention_mask=torch.ones_like(prompt), **kw)
            # From the prefill's logits to the last step's: NEW - 1 decode steps of `batch` tokens.
            return batch * (len(clock.times) - 1) / (clock.times[-1] - clock.times[0])

        t0 = time.time()
        run()  # warm-up: the static cache, and the compilation when transformers compiles
        warm_s = time.time() - t0
        rate = max(run() for _ in range(2))
        log(f"decode batch {batch}: {rate:.1f} tokens/s (warm-up {warm_s:.1f} s)")
        out.append({"batch": batch, "tokens_per_s": rate, "warmup_s": warm_s})
    del model
    torch.cuda.empty_cache()
    return {"prompt": args.prompt, "new": args.new, "compile": args.compile, "results": out}


def guarded(torch, name, fn):
    try:
        return fn()
    except Exception as e:  # one part failing (out of memory, an API change) must not lose the others
        log(f"{name} failed: {type(e).__name__}: {e}")
        torch.cuda.empty_cache()
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seqs", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=4096)
    p.add_argument("--batches", type=ints, default=[1, 32, 128])
    p.add_argument("--prompt", type=int, default=64)
    p.add_argument("--new", type=int, default=128)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--compile", choices=["auto", "off"], default="auto")
    p.add_argument("--only", type=lambda s: s.split(","), default=["train", "decode"])
    args = p.parse_args()
    try:
        import torch
        import transformers
    except ImportError as e:
        log(f"PyTorch and transformers are needed ({sys.executable}): {e}")
        return 3
    if not torch.cuda.is_available():
        log(f"NO CUDA DEVICE visible to PyTorch {torch.__version__}")
        return 2
    result = {"bench": "hf_model", "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "transformers": transformers.__version__, "config": QWEN3_1_7B, "peak": peaks(torch)}
    log(f"peaks: {result['peak']}")
    if "train" in args.only:
        result["train"] = guarded(torch, "train", lambda: train(torch, transformers, args))
        log(f"train: {result['train']}")
    if "decode" in args.only:
        result["decode"] = guarded(torch, "decode", lambda: decode(torch, transformers, args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
