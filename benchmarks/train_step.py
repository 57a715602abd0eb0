"""Training-step speed: fope's FoPE vs fope's RoPE vs Hugging Face LlamaForCausalLM of the same shape.

One training step = forward + cross-entropy + backward + AdamW step + zero_grad, fp32, on random tokens.
The three models are timed in ONE process, interleaved (the order rotates every repetition) so that machine
noise hits all of them alike; medians are reported with their ratios, then one JSON line.

    .venv/bin/python benchmarks/train_step.py --preset cpu-small --steps 10 --batch 8 --seq 512

The HF model has the same vocabulary, width, layers, heads, head dim, SwiGLU width, RMSNorm eps, untied
embeddings, no biases and rope theta; it uses its default ("sdpa") attention.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def hf_llama_like(cfg):
    """A randomly initialised LlamaForCausalLM with the shape of fope ModelConfig `cfg` (fp32)."""
    import transformers

    hf_cfg = transformers.LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.hidden,
        num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.kv_heads,
        head_dim=cfg.dim_head, rms_norm_eps=cfg.norm_eps, tie_word_embeddings=False, attention_bias=False,
        mlp_bias=False, max_position_embeddings=cfg.train_len,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    )
    return transformers.LlamaForCausalLM(hf_cfg)


def make_step(model, logits_fn, lr: float = 3e-4):
    """A closure running one full training step on (ids, targets); returns the loss as a float."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)

    def step(ids: torch.Tensor, targets: torch.Tensor) -> float:
        logits = logits_fn(ids)  # (B, T, V) fp32
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return step


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model (after --warmup)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=None, help="sequence length (default: the preset's train_len)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import fope.model

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = fope.model.resolve_config(args.preset)
    seq = args.seq or cfg.train_len
    fope_model = fope.model.build(cfg, pe="fope").train()
    rope_model = fope.model.build(cfg, pe="rope").train()
    hf_model = hf_llama_like(cfg).train()
    steps = {
        "fope": make_step(fope_model, fope_model),
        "rope": make_step(rope_model, rope_model),
        "hf_llama": make_step(hf_model, lambda ids: hf_model(input_ids=ids).logits.float()),
    }
    gen = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, cfg.vocab_size, (args.batch, seq + 1), generator=gen)
    inputs, targets = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()

    names = list(steps)
    times: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(args.warmup + args.steps):
        order = names[rep % len(names):] + names[: rep % len(names)]  # rotate who goes first
        for name in order:
            t0 = time.perf_counter()
            steps[name](inputs, targets)
            if rep >= args.warmup:
                times[name].append(time.perf_counter() - t0)

    med = {n: statistics.median(t) for n, t in times.items()}
    result = {
        "benchmark": "train_step", "preset": args.preset, "batch": args.batch, "seq": seq, "steps": args.steps,
        "warmup": args.warmup, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "params": {"fope": fope_model.num_params(), "rope": rope_model.num_params(),
                   "hf_llama": sum(p.numel() for p in hf_model.parameters())},
        "median_s": {n: round(v, 4) for n, v in med.items()},
        "min_s": {n: round(min(t), 4) for n, t in times.items()},
        "ratio_fope_over_rope": round(med["fope"] / med["rope"], 3),
        "ratio_rope_over_hf": round(med["rope"] / med["hf_llama"], 3),
    }
    tokens = args.batch * seq
    for n in names:
        print(f"{n:9s} median {med[n] * 1e3:8.1f} ms  min {min(times[n]) * 1e3:8.1f} ms  "
              f"{tokens / med[n]:9.0f} tok/s")
    print(f"FoPE / RoPE (ours)   = {result['ratio_fope_over_rope']:.3f}   (target <= 1.05)")
    print(f"RoPE (ours) / HF     = {result['ratio_rope_over_hf']:.3f}   (target <= 1.00)")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
