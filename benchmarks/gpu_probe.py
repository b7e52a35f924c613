"""Measure what one GPU sustains, to hold the core's defaults against: dense matmul rate per precision,
memory bandwidth (copy, read, write, and the GEMV of a batch-1 decode), and the prefill and decode step
times of Llama-shaped decoders with random weights.

Needs PyTorch with CUDA (not a dependency of mlsysim-lab): ``python benchmarks/gpu_probe.py --out gpu.json``.
``--smoke`` runs tiny shapes on the CPU to check the script itself. ``python benchmarks/gpu_compare.py
gpu.json`` then sets each figure beside the core's prediction.

How it times: CUDA events around each region after warm-ups, the median of many repeats, random (never
zero) data, every matrix bigger than the L2 cache. The decoder is plain PyTorch (cuBLAS GEMMs, FlashAttention
through scaled_dot_product_attention, unfused norms and rotary embeddings) and each decode step replays a
CUDA graph, as gpt-fast does with ``mode="reduce-overhead"``; the same step run eagerly shows what kernel
launches cost. A decode step at context C attends over exactly C cached tokens (the cache is filled with
random keys and values and the new token overwrites the last slot), so its cost is that of step C of a
real generation.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F

#: Decoder shapes from the models' config.json files (Hugging Face: meta-llama/Meta-Llama-3-8B and
#: meta-llama/Llama-2-7b-hf); the catalog holds the same numbers under the same names.
MODELS = {
    "Llama-3-8B": dict(layers=32, d_model=4096, heads=32, kv_heads=8, ffn=14336, vocab=128256),
    "Llama-2-7B": dict(layers=32, d_model=4096, heads=32, kv_heads=32, ffn=11008, vocab=32000),
}
SMOKE_MODEL = dict(layers=2, d_model=256, heads=4, kv_heads=2, ffn=512, vocab=1000)
HEAD_DIM = 128
KV_BUDGET = 70e9  # bytes of KV cache a decode configuration may allocate


class Timer:
    """Median seconds of ``fn`` over ``repeat`` calls after ``warmup``: CUDA events on a GPU."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn, repeat=20, warmup=3):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeat):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            else:
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
        return statistics.median(times)


# ------------------------------------------------------------------------------------------ ceilings
def matmul_rates(dev, timer, sizes):
    """Dense GEMM FLOP/s (2 m n k per product) for each precision the device runs."""
    out = []
    for n in sizes:
        for prec in ("bf16", "fp16", "tf32", "fp32", "fp8", "int8"):
            try:
                fn = _matmul(prec, n, dev)
            except Exception as exc:  # a precision this device or build lacks
                out.append(dict(precision=prec, n=n, error=f"{type(exc).__name__}: {exc}"[:200]))
                continue
            if fn is None:
                continue
            t = timer(fn, repeat=10 if n >= 16384 else 20)
            out.append(dict(precision=prec, n=n, seconds=t, flops_per_s=2.0 * n ** 3 / t))
            print(f"matmul {prec:5s} n={n:6d} {2.0 * n ** 3 / t / 1e12:8.1f} TFLOP/s", flush=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    return out


def _matmul(prec, n, dev):
    torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
    if dev.type != "cuda" and prec in ("fp8", "int8", "tf32"):
        return None
    if prec in ("bf16", "fp16", "tf32", "fp32"):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(prec, torch.float32)
        a, b = (torch.randn(n, n, device=dev, dtype=dtype) for _ in range(2))
        return lambda: a @ b
    if prec == "fp8":
        a = torch.randn(n, n, device=dev).to(torch.float8_e4m3fn)
        b = torch.randn(n, n, device=dev).to(torch.float8_e4m3fn).t()  # column-major, as cuBLASLt wants
        one = torch.ones((), device=dev)
        torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
        return lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    a = torch.randint(-64, 64, (n, n), device=dev, dtype=torch.int8)
    b = torch.randint(-64, 64, (n, n), device=dev, dtype=torch.int8).t().contiguous().t()
    torch._int_mm(a, b)
    return lambda: torch._int_mm(a, b)


def bandwidths(dev, timer, nbytes):
    """Bytes per second of a large copy (read + write counted), a read (sum), a write (fill), and the
    GEMV y = W x of batch-1 decode (W read once)."""
    n = int(nbytes) // 2
    src = torch.randn(n, device=dev, dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    rows = []
    for name, fn, moved in (
        ("copy (read + write)", lambda: dst.copy_(src), 4 * n),
        ("read (sum)", lambda: src.sum(dtype=torch.float32), 2 * n),
        ("write (fill)", lambda: dst.fill_(1.0), 2 * n),
    ):
        t = timer(fn)
        rows.append(dict(kind=name, bytes=moved, seconds=t, bytes_per_s=moved / t))
    del src, dst
    d = 4096 if dev.type == "cuda" else 256
    for k_out in (4 * d, 14336 if dev.type == "cuda" else 512):  # QKV/O-sized and MLP-sized weights
        copies = max(1, int(nbytes // (k_out * d * 2)))  # rotate through more weights than the L2 holds
        ws = [torch.randn(k_out, d, device=dev, dtype=torch.bfloat16) for _ in range(copies)]
        x = torch.randn(1, d, device=dev, dtype=torch.bfloat16)
        t = timer(lambda: [x @ w.t() for w in ws]) / copies
        rows.append(dict(kind=f"gemv {k_out}x{d} bf16 batch 1", bytes=k_out * d * 2, seconds=t,
                         bytes_per_s=k_out * d * 2 / t))
        del ws
    for r in rows:
        print(f"bandwidth {r['kind']:<32s} {r['bytes_per_s'] / 1e9:8.0f} GB/s", flush=True)
    return rows


# ------------------------------------------------------------------------------------------- decoder
class Decoder:
    """A Llama-shaped decoder (RMSNorm, rotary, grouped-query attention, SwiGLU) with random bf16 weights."""

    def __init__(self, cfg, dev, dtype):
        self.cfg, self.dev, self.dtype = cfg, dev, dtype
        d, h, kvh, ffn = cfg["d_model"], cfg["heads"], cfg["kv_heads"], cfg["ffn"]
        self.hd = HEAD_DIM if d // h == HEAD_DIM else d // h

        def w(*shape):
            return torch.randn(*shape, device=dev, dtype=dtype) * 0.02

        self.emb = w(cfg["vocab"], d)
        self.layers = [dict(n1=torch.ones(d, device=dev, dtype=dtype), n2=torch.ones(d, device=dev, dtype=dtype),
                            wqkv=w((h + 2 * kvh) * self.hd, d), wo=w(d, h * self.hd),
                            w13=w(2 * ffn, d), w2=w(d, ffn)) for _ in range(cfg["layers"])]
        self.norm = torch.ones(d, device=dev, dtype=dtype)
        self.out = w(cfg["vocab"], d)
        self.params = sum(t.numel() for t in (self.emb, self.out)) + sum(
            t.numel() for layer in self.layers for t in layer.values())

    @staticmethod
    def rmsnorm(x, g):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-5)).to(x.dtype) * g

    def rotary(self, x, pos):
        """Rotate pairs of x [B, heads, T, hd] by position-dependent angles (theta 500000, Llama 3)."""
        half = self.hd // 2
        inv = 500000.0 ** (-torch.arange(half, device=self.dev, dtype=torch.float32) / half)
        ang = pos.float()[:, None] * inv[None, :]
        cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)

    def new_cache(self, batch, length):
        kvh = self.cfg["kv_heads"]
        return [(torch.randn(batch, kvh, length, self.hd, device=self.dev, dtype=self.dtype),
                 torch.randn(batch, kvh, length, self.hd, device=self.dev, dtype=self.dtype))
                for _ in self.layers]

    def decode_step(self, tokens, pos, cache):
        """One token per sequence: tokens [B], pos a 1-element tensor (the slot written), cache full."""
        cfg = self.cfg
        b, h, kvh, hd = tokens.shape[0], cfg["heads"], cfg["kv_heads"], self.hd
        x = self.emb[tokens]
        for layer, (kc, vc) in zip(self.layers, cache):
            a = self.rmsnorm(x, layer["n1"])
            q, k, v = (a @ layer["wqkv"].t()).split([h * hd, kvh * hd, kvh * hd], dim=-1)
            q = self.rotary(q.view(b, h, 1, hd), pos)
            k = self.rotary(k.view(b, kvh, 1, hd), pos)
            kc.index_copy_(2, pos, k)
            vc.index_copy_(2, pos, v.view(b, kvh, 1, hd))
            # Grouped decode: the query heads of one KV head ride along the query-length axis, so each KV
            # head is read once for its group (FlashDecoding); no mask, every cached slot is in the past.
            o = F.scaled_dot_product_attention(q.view(b, kvh, h // kvh, hd), kc, vc)
            x = x + o.reshape(b, h * hd) @ layer["wo"].t()
            g, u = (self.rmsnorm(x, layer["n2"]) @ layer["w13"].t()).chunk(2, dim=-1)
            x = x + (F.silu(g) * u) @ layer["w2"].t()
        return self.rmsnorm(x, self.norm) @ self.out.t()

    def prefill(self, tokens):
        """The whole prompt at once (causal), logits of the last token only, as serving engines do."""
        cfg = self.cfg
        b, t = tokens.shape
        h, kvh, hd = cfg["heads"], cfg["kv_heads"], self.hd
        pos = torch.arange(t, device=self.dev)
        x = self.emb[tokens]
        for layer in self.layers:
            a = self.rmsnorm(x, layer["n1"])
            q, k, v = (a @ layer["wqkv"].t()).split([h * hd, kvh * hd, kvh * hd], dim=-1)
            q = self.rotary(q.view(b, t, h, hd).transpose(1, 2), pos)
            k = self.rotary(k.view(b, t, kvh, hd).transpose(1, 2), pos)
            v = v.view(b, t, kvh, hd).transpose(1, 2)
            if kvh != h:
                k, v = k.repeat_interleave(h // kvh, dim=1), v.repeat_interleave(h // kvh, dim=1)
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + o.transpose(1, 2).reshape(b, t, h * hd) @ layer["wo"].t()
            g, u = (self.rmsnorm(x, layer["n2"]) @ layer["w13"].t()).chunk(2, dim=-1)
            x = x + (F.silu(g) * u) @ layer["w2"].t()
        return self.rmsnorm(x[:, -1], self.norm) @ self.out.t()


def decoder_runs(dev, timer, models, batches, contexts, prompts, smoke, compiled=False):
    rows = []
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    for name, cfg in models.items():
        model = Decoder(cfg, dev, dtype)
        kv_per_token = 2 * cfg["layers"] * cfg["kv_heads"] * model.hd * 2
        with torch.inference_mode():
            for p in prompts:
                tokens = torch.randint(0, cfg["vocab"], (1, p), device=dev)
                t = timer(lambda: model.prefill(tokens), repeat=10)
                rows.append(dict(model=name, phase="prefill", batch=1, tokens=p, seconds=t))
                print(f"{name} prefill {p:5d} tokens: {t * 1e3:8.2f} ms", flush=True)
            for ctx in contexts:
                for b in batches:
                    if b * ctx * kv_per_token > KV_BUDGET:
                        continue
                    rows.extend(_decode(model, name, timer, b, ctx, dev, smoke, compiled))
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def _decode(model, name, timer, b, ctx, dev, smoke, compiled=False):
    cache = model.new_cache(b, ctx)
    tokens = torch.randint(0, model.cfg["vocab"], (b,), device=dev)
    pos = torch.tensor([ctx - 1], device=dev)
    if compiled:  # one compilation per shape; allow them all
        for knob in ("recompile_limit", "cache_size_limit"):
            if hasattr(torch._dynamo.config, knob):
                setattr(torch._dynamo.config, knob, 64)
    fn = torch.compile(model.decode_step, dynamic=False) if compiled else model.decode_step
    step = lambda: fn(tokens, pos, cache)  # noqa: E731
    eager = timer(step, repeat=10)
    tag = "compiled" if compiled else "eager"
    rows = [dict(model=name, phase="decode", mode=tag, batch=b, context=ctx, seconds=eager)]
    graphed = None
    if dev.type == "cuda" and not smoke:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        graphed = timer(graph.replay, repeat=30)
        rows.append(dict(model=name, phase="decode", mode=f"{tag} + cuda graph", batch=b, context=ctx,
                         seconds=graphed))
        del graph
    print(f"{name} decode batch {b:4d} context {ctx:5d}: {tag} {eager * 1e3:7.2f} ms"
          + (f", graph {graphed * 1e3:7.2f} ms" if graphed else ""), flush=True)
    del cache
    return rows


def device_facts(dev):
    facts = dict(torch=torch.__version__, python=platform.python_version(), device=str(dev))
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        facts.update(name=p.name, sms=p.multi_processor_count, memory_bytes=p.total_memory,
                     l2_bytes=getattr(p, "L2_cache_size", None), cuda=torch.version.cuda)
    return facts


def smi():
    """Clocks, power and temperature as nvidia-smi reads them (the card is measured as found)."""
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name,clocks.sm,clocks.mem,clocks.max.sm,power.draw,"
                               "power.limit,temperature.gpu,driver_version", "--format=csv"],
                              capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"nvidia-smi unavailable: {exc}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu_probe.json")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU: checks the script only")
    ap.add_argument("--batches", type=int, nargs="+", help="with --compiled: these batches (Llama-3-8B only)")
    ap.add_argument("--contexts", type=int, nargs="+", default=[1024], help="with --batches: these contexts")
    ap.add_argument("--compiled", action="store_true",
                    help="only decode, each step through torch.compile (fused norms and rotary) and a "
                         "CUDA graph, as gpt-fast runs it")
    args = ap.parse_args()
    smoke = args.smoke or not torch.cuda.is_available()
    dev = torch.device("cpu" if smoke else "cuda")
    timer = Timer(dev)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    result = dict(facts=device_facts(dev), smi_before=smi() if not smoke else "")
    if smoke:
        models = {"smoke": SMOKE_MODEL}
        result["matmul"] = matmul_rates(dev, timer, [128])
        result["bandwidth"] = bandwidths(dev, timer, 2 ** 22)
        result["decoder"] = decoder_runs(dev, timer, models, [1, 4], [64], [32], smoke=True)
    elif args.compiled and args.batches:
        result["decoder"] = decoder_runs(dev, timer, {"Llama-3-8B": MODELS["Llama-3-8B"]}, args.batches,
                                         args.contexts, [], smoke=False, compiled=True)
    elif args.compiled:
        result["decoder"] = (
            decoder_runs(dev, timer, {"Llama-3-8B": MODELS["Llama-3-8B"]}, [1, 16, 64], [1024, 4096], [],
                         smoke=False, compiled=True)
            + decoder_runs(dev, timer, {"Llama-2-7B": MODELS["Llama-2-7B"]}, [1, 16], [1024], [],
                           smoke=False, compiled=True))
    else:
        result["matmul"] = matmul_rates(dev, timer, [4096, 8192, 16384])
        result["bandwidth"] = bandwidths(dev, timer, 4 * 2 ** 30)
        result["decoder"] = decoder_runs(dev, timer, MODELS, [1, 16, 64], [1024, 4096], [512, 2048], smoke=False)
    result["smi_after"] = smi() if not smoke else ""
    result["wall_seconds"] = time.perf_counter() - t0
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"wrote {args.out} in {result['wall_seconds']:.0f} s")
    assert all(math.isfinite(r["seconds"]) for r in result["decoder"])


if __name__ == "__main__":
    main()
