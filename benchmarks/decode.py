"""Greedy decoding speed of every position encoding after a long prompt (KV cache), in one process.

For each kind: prefill the prompt through the KV cache (timed), then generate --new tokens greedily one at a time
(each timed). Kinds are interleaved token by token, so machine noise hits them alike; the per-token medians are
reported with their ratio to RoPE's, then one JSON line.

    python benchmarks/decode.py --preset cpu-small --prompt 4096 --new 32
    python benchmarks/decode.py --preset 60M --device cuda --precision bf16 --prompt 16384 --new 32

Scaling options go through --scaling (a JSON rope_parameters dict, applied to rope and fope), e.g.
``--scaling '{"rope_type": "dynamic", "factor": 4.0}'`` to time dynamic NTK beyond the training length.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--kinds", nargs="+", default=["rope", "fope", "nope", "alibi", "kerple", "fire"])
    parser.add_argument("--prompt", type=int, default=16384, help="prompt tokens")
    parser.add_argument("--new", type=int, default=32, help="generated tokens (greedy)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--scaling", default=None, help="JSON rope_parameters for rope and fope")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import fope.model

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = fope.model.resolve_config(args.preset)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16" else contextlib.nullcontext()
    )
    models = {}
    for kind in args.kinds:
        torch.manual_seed(args.seed)
        opts = {"scaling": json.loads(args.scaling)} if args.scaling and kind in ("rope", "fope") else {}
        if kind == "fope":
            opts["sigma"] = 0.3
        models[kind] = fope.model.build(cfg, pe=kind, pe_options=opts).to(device).eval()
    gen = torch.Generator().manual_seed(args.seed)
    prompt = torch.randint(0, cfg.vocab_size, (args.batch, args.prompt), generator=gen).to(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    caches, last, prefill_s = {}, {}, {}
    with torch.inference_mode(), autocast:
        for kind, model in models.items():
            caches[kind] = model.new_cache(capacity=args.prompt + args.new)
            sync()
            t0 = time.perf_counter()
            logits = model(prompt, cache=caches[kind])
            sync()
            prefill_s[kind] = time.perf_counter() - t0
            last[kind] = logits[:, -1:].argmax(-1)
        times = {k: [] for k in models}
        for step in range(args.new):
            order = args.kinds[step % len(args.kinds) :] + args.kinds[: step % len(args.kinds)]
            for kind in order:
                sync()
                t0 = time.perf_counter()
                logits = models[kind](last[kind], cache=caches[kind])
                last[kind] = logits[:, -1:].argmax(-1)
                sync()
                times[kind].append(time.perf_counter() - t0)
    med = {k: statistics.median(t) for k, t in times.items()}
    base = "rope" if "rope" in med else args.kinds[0]
    result = {
        "benchmark": "decode",
        "preset": args.preset,
        "prompt": args.prompt,
        "new": args.new,
        "batch": args.batch,
        "device": str(device),
        "precision": args.precision,
        "scaling": args.scaling,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "prefill_s": {k: round(v, 3) for k, v in prefill_s.items()},
        "per_token_ms": {k: round(v * 1e3, 3) for k, v in med.items()},
        "ratio_to_" + base: {k: round(v / med[base], 3) for k, v in med.items()},
    }
    for k in args.kinds:
        print(f"{k:7s} prefill {prefill_s[k]:8.2f} s   per token {med[k] * 1e3:8.2f} ms   x{med[k] / med[base]:.2f}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
