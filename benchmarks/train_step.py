"""Training-step speed of fope's encodings (and of HF LlamaForCausalLM of the same shape), eager or compiled, in
fp32 or bf16 autocast: all variants timed in ONE process, interleaved, so machine noise hits them alike.

One training step = forward + cross-entropy + backward + AdamW step + zero_grad, on random tokens. Every variant
gets its own freshly initialised model (same seed) and optimizer. The order of the variants rotates every
repetition; medians are reported with their ratios to the first variant, then one JSON line.

    python benchmarks/train_step.py --preset cpu-small --steps 10                     # fope, rope, hf in fp32
    python benchmarks/train_step.py --preset cpu-small --variants rope/fp32 rope/bf16 rope/fp32/compile
    python benchmarks/train_step.py --preset 60M --device cuda --variants rope/bf16 rope/bf16/compile hf/bf16

A variant is ``PE[/PRECISION][/compile]``: PE is a fope.pos kind or ``hf`` (HF Llama: same vocabulary, width,
layers, heads, head dim, SwiGLU width, RMSNorm eps, untied embeddings, no biases, rope theta; its default
"sdpa" attention), PRECISION is fp32 (default) or bf16 (autocast; fp32 weights), ``compile`` wraps the model in
torch.compile (the compile time is excluded by the warm-up steps and reported separately).

``--profile`` adds, per variant, where a step's time goes: torch.profiler's self time of every op over a few
steps, grouped by the part of the model it belongs to (see ``PARTS``), as a Markdown table. ``--keep-freed-memory``
runs with ``fope.utils.keep_freed_memory`` as ``fope train`` does on CPU (without it, glibc's defaults).

    python benchmarks/train_step.py --preset cpu-tiny --vocab 2048 --seq 256 --batch 16 --threads 1 \
        --keep-freed-memory --variants rope/fp32 fope/fp32 --profile
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: bf16 peak of the device, FLOP/s, for the MFU column (None: not reported). Pass --peak-tflops to override.
KNOWN_PEAKS = {"NVIDIA H200": 989e12, "NVIDIA H100 80GB HBM3": 989e12, "NVIDIA A100-SXM4-80GB": 312e12}


def hf_llama_like(cfg):
    """A randomly initialised LlamaForCausalLM with the shape of fope ModelConfig `cfg` (fp32)."""
    import transformers

    cfg = cfg.resolved()

    hf_cfg = transformers.LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.mlp_hidden,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_kv_heads,
        head_dim=cfg.head_dim,
        rms_norm_eps=cfg.norm_eps,
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
        max_position_embeddings=cfg.train_len,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    )
    return transformers.LlamaForCausalLM(hf_cfg)


def parse_variant(spec: str) -> tuple[str, str, bool]:
    """'rope/bf16/compile' -> ('rope', 'bf16', True)."""
    import fope.pos

    parts = spec.split("/")
    pe, precision, compiled = parts[0], "fp32", False
    for p in parts[1:]:
        if p in ("fp32", "bf16"):
            precision = p
        elif p == "compile":
            compiled = True
        else:
            raise ValueError(f"variant {spec!r}: unknown part {p!r} (expected fp32, bf16 or compile)")
    if pe != "hf" and pe not in fope.pos.KINDS:
        raise ValueError(f"variant {spec!r}: unknown encoding {pe!r}; choose hf or one of {list(fope.pos.KINDS)}")
    return pe, precision, compiled


def make_step(model, logits_fn, *, device: torch.device, precision: str, fused: bool, lr: float = 3e-4):
    """A closure running one full training step on (ids, targets); returns the loss as a float."""
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.1, fused=fused or None
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()

    def step(ids: torch.Tensor, targets: torch.Tensor) -> float:
        with autocast:
            logits = logits_fn(ids)  # (B, T, V)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return step


#: the parts of a step ``--profile`` reports, in the order an op is tested against them (the first match wins)
PARTS = (
    "optimizer",
    "output layer + cross-entropy",
    "attention (SDPA)",
    "MLP (SwiGLU)",
    "q/k/v/o projections",
    "position encoding",
    "other",
)


def op_part(name: str, shapes: list, parents: list[str], cfg) -> str:
    """The part of the model (one of ``PARTS``) a profiled op belongs to, from its name, input shapes and parents.

    Shapes identify the parts by widths only they have: the vocabulary (output layer, its softmax and loss), the
    SwiGLU widths (hidden, 2 x hidden), the fused q/k/v width and the d_model x d_model output projection; an op
    whose input ends in head_dim or head_dim / 2 outside SDPA is position-encoding work (rotation tables, FoPE's
    Fourier mixing, attention biases). Where two parts share a width the earlier part in ``PARTS`` wins.
    """
    if any(p.startswith("Optimizer.") for p in parents):
        return "optimizer"
    cfg = cfg.resolved()
    dims = [tuple(s) for s in shapes if isinstance(s, (list, tuple)) and s and all(isinstance(d, int) for d in s)]
    if any(cfg.vocab_size in s for s in dims) or "log_softmax" in name or "nll_loss" in name:
        return "output layer + cross-entropy"
    if "scaled_dot_product" in name or "flash_attention" in name:
        return "attention (SDPA)"
    if any(cfg.mlp_hidden in s or 2 * cfg.mlp_hidden in s for s in dims):
        return "MLP (SwiGLU)"
    qkv = (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_dim
    if any(qkv in s for s in dims) or (name == "aten::mm" and any(s[-2:] == (cfg.d_model, cfg.d_model) for s in dims)):
        return "q/k/v/o projections"
    if any(s[-1] in (cfg.head_dim, cfg.head_dim // 2) for s in dims):
        return "position encoding"
    return "other"


def profile_parts(step, inputs, targets, cfg, steps: int = 3) -> dict[str, float]:
    """Self CPU seconds per step of each part of ``PARTS`` (torch.profiler over ``steps`` steps)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            step(inputs, targets)
    totals = dict.fromkeys(PARTS, 0.0)
    for ev in prof.events():
        if ev.device_type != torch.autograd.DeviceType.CPU or not ev.name.startswith("aten::"):
            continue  # self times of aten ops only: wrappers (autograd nodes, record_function) hold no work
        parents, up = [], ev.cpu_parent
        while up is not None:
            parents.append(up.name)
            up = up.cpu_parent
        totals[op_part(ev.name, ev.input_shapes, parents, cfg)] += ev.self_cpu_time_total / 1e6 / steps
    return totals


def parts_table(parts: dict[str, dict[str, float]]) -> str:
    """Markdown: one row per part, one column per variant: self time per step (ms) and share of the total."""
    names = list(parts)
    lines = ["| part | " + " | ".join(f"`{n}` ms/step (share)" for n in names) + " |", "|---|" + "---|" * len(names)]
    for part in PARTS:
        cells = [f"{parts[n][part] * 1e3:.1f} ({parts[n][part] / sum(parts[n].values()):.0%})" for n in names]
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    lines.append("| total (profiled) | " + " | ".join(f"{sum(parts[n].values()) * 1e3:.1f}" for n in names) + " |")
    return "\n".join(lines)


def model_flops_per_token(cfg, seq: int) -> float:
    """Training FLOPs per token: 6 x (non-embedding matmul params + LM head) + causal attention 6 x L x T x C."""
    head_dim = cfg.resolved().head_dim
    return (
        6 * cfg.num_params(embeddings=1) + 6 * cfg.n_layers * seq * cfg.n_heads * head_dim
    )  # causal: half of 12·L·T·C


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-small", help="fope.model preset giving the shape")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["fope/fp32", "rope/fp32", "hf/fp32"],
        help="PE[/fp32|bf16][/compile] ... (ratios are to the first)",
    )
    parser.add_argument("--pe", default=None, help="shortcut: --variants PE/PRECISION[/compile] rope/...")
    parser.add_argument("--precision", default=None, choices=["fp32", "bf16"], help="with --pe")
    parser.add_argument("--compile", action="store_true", help="with --pe")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant (after --warmup)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant (compilation happens here)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=None, help="sequence length (default: the preset's train_len)")
    parser.add_argument("--d-model", type=int, default=None)
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--heads", type=int, default=None)
    parser.add_argument("--vocab", type=int, default=None)
    parser.add_argument("--fused-adamw", action="store_true", help="AdamW(fused=True)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak for the MFU column")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="also print where each variant's step time goes")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="fope.utils.keep_freed_memory(), as fope train does (default: glibc's defaults)",
    )
    args = parser.parse_args(argv)

    import fope.model

    if args.threads:
        torch.set_num_threads(args.threads)
    kept = False
    if args.keep_freed_memory:
        from fope.utils import keep_freed_memory

        kept = keep_freed_memory()
    device = torch.device(args.device)
    if args.pe:
        args.variants = [
            f"{args.pe}/{args.precision or 'fp32'}" + ("/compile" if args.compile else ""),
            "rope/" + (args.precision or "fp32") + ("/compile" if args.compile else ""),
        ]
    overrides = {
        k: v
        for k, v in dict(d_model=args.d_model, n_layers=args.layers, n_heads=args.heads, vocab_size=args.vocab).items()
        if v is not None
    }
    cfg = fope.model.resolve_config(args.preset, **overrides)
    seq = args.seq or cfg.train_len
    steps, params, compile_s = {}, {}, {}
    for spec in args.variants:
        pe, precision, compiled = parse_variant(spec)
        torch.manual_seed(args.seed)
        if pe == "hf":
            model = hf_llama_like(cfg).to(device).train()
            net = torch.compile(model) if compiled else model

            def fn(ids, net=net):
                return net(input_ids=ids).logits

        else:
            model = fope.model.build(cfg, pe=pe, train_len=max(cfg.train_len, seq)).to(device).train()
            net = torch.compile(model) if compiled else model
            fn = net
        steps[spec] = make_step(model, fn, device=device, precision=precision, fused=args.fused_adamw)
        params[spec] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    gen = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, cfg.vocab_size, (args.batch, seq + 1), generator=gen).to(device)
    inputs, targets = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    names = list(steps)
    times: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(args.warmup + args.steps):
        order = names[rep % len(names) :] + names[: rep % len(names)]  # rotate who goes first
        for name in order:
            sync()
            t0 = time.perf_counter()
            steps[name](inputs, targets)
            sync()
            dt = time.perf_counter() - t0
            if rep >= args.warmup:
                times[name].append(dt)
            elif rep == 0:
                compile_s[name] = dt

    tokens = args.batch * seq
    med = {n: statistics.median(t) for n, t in times.items()}
    base = names[0]
    peak = (
        args.peak_tflops * 1e12
        if args.peak_tflops
        else (KNOWN_PEAKS.get(torch.cuda.get_device_name(device)) if device.type == "cuda" else None)
    )
    flops = model_flops_per_token(cfg, seq)
    result = {
        "benchmark": "train_step",
        "preset": args.preset,
        "d_model": cfg.d_model,
        "n_layers": cfg.n_layers,
        "n_heads": cfg.n_heads,
        "vocab_size": cfg.vocab_size,
        "batch": args.batch,
        "seq": seq,
        "steps": args.steps,
        "warmup": args.warmup,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "fused_adamw": args.fused_adamw,
        "keep_freed_memory": kept,
        "params": params,
        "median_s": {n: round(v, 5) for n, v in med.items()},
        "min_s": {n: round(min(t), 5) for n, t in times.items()},
        "first_step_s": {n: round(v, 2) for n, v in compile_s.items()},
        "tokens_per_s": {n: round(tokens / v) for n, v in med.items()},
        "ratio_to_first": {n: round(med[n] / med[base], 3) for n in names},
    }
    if peak:
        result["mfu"] = {n: round(flops * tokens / med[n] / peak, 3) for n in names}
    if args.profile:
        parts = {n: profile_parts(steps[n], inputs, targets, cfg, steps=5) for n in names}
        result["profile_s"] = {n: {k: round(v, 5) for k, v in p.items()} for n, p in parts.items()}
        print(parts_table(parts))
    for n in names:
        print(
            f"{n:22s} median {med[n] * 1e3:9.1f} ms  min {min(times[n]) * 1e3:9.1f} ms  "
            f"{tokens / med[n]:10.0f} tok/s  x{med[n] / med[base]:.3f} of {base}"
        )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
