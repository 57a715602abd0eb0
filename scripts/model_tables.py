"""docs/model.md's preset table and FoPE coefficient counts, computed from the code (tests/test_doc_numbers.py keeps
the page equal to them):

    python scripts/model_tables.py
"""

from __future__ import annotations


def presets_table() -> str:
    """The size presets of `fope.model.MODEL_PRESETS` with `cfg.num_params()` (total, untied) and the paper's
    convention (`num_params(embeddings=1)`: non-embedding + one embedding matrix)."""
    from fope.model import MODEL_PRESETS

    lines = [
        "| preset | vocab | d_model | layers | heads (kv) | head dim | SwiGLU hidden | train_len | params (total, untied) "
        "| paper convention (non-emb + 1 emb) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, cfg in MODEL_PRESETS.items():
        r = cfg.resolved()
        lines.append(
            f"| `{name}` | {r.vocab_size} | {r.d_model} | {r.n_layers} | {r.n_heads} ({r.n_kv_heads}) | {r.head_dim} | "
            f"{r.mlp_hidden} | {r.train_len} | {cfg.num_params():,} | {cfg.num_params(embeddings=1):,} |"
        )
    return "\n".join(lines)


def fope_coefficients(names: tuple[str, ...] = ("cpu-tiny", "cpu-small", "cpu-base", "60M")) -> dict[str, dict]:
    """Per preset with pe="fope": kept frequencies D_in of head_dim/2, mixed pairs D_out, fixed coefficients."""
    import torch

    import fope.model

    out = {}
    for name in names:
        with torch.device("meta"):
            model = fope.model.build(name, pe="fope")
        pos = model.blocks[0].attn.pos
        coef = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("sin_coef", "cos_coef")))
        out[name] = {"d_in": pos.d_in, "d_out": pos.d_out, "pairs": model.config.resolved().head_dim // 2, "coef": coef}
    return out


if __name__ == "__main__":
    print(presets_table())
    for name, c in fope_coefficients().items():
        print(f"{name}: D_in {c['d_in']} of {c['pairs']}, D_out {c['d_out']}, {c['coef']:,} fixed coefficients")
