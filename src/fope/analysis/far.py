"""Where does the loss beyond the training length come from? Attention to far keys, decomposed (ours).

A model trained at length L and evaluated on chunks of n > L tokens sees query-key distances it never saw. This
analysis re-runs the perplexity evaluation with the attention scores of those distances (d >= L) changed, one
variant at a time, and reports the perplexity of each variant, overall and per position bucket:

``full``                  the model unchanged (computed with the same explicit attention: equals the model)
``window``                keys at distance >= L masked: every query sees at most the L most recent tokens
``far_without_cycles``    beyond L, the score keeps only the rotary pairs that do not complete a cycle within L
                          (FoPE's zero-frequency pairs; RoPE's pairs with ω < 2π/L)
``far_cycles_only``       beyond L, the score keeps only the pairs that complete a cycle within L (FoPE's mixed
                          pairs; RoPE's pairs with ω >= 2π/L)

Scores within L are never changed, so the four variants agree on every position < L. If ``window`` is flat in n
and ``full`` is not, the growth comes from attending beyond L; the two ``far_*`` variants say which pairs' scores
at unseen distances do the harm. The split between the pairs is FoPE's own clip floor, so for FoPE the
"without cycles" pairs are exactly position-free and the "cycles" pairs carry all of its position information.

    from fope.analysis.far import far_attention_report
    rep = far_attention_report(model, tokens, train_len=256, length=4096)
    rep["variants"]["window"]["ppl"], rep["variants"]["full"]["buckets"]

:func:`far_attention_of` runs the report on a saved model over the first tokens of a corpus' validation split (what
`fope analyze far`, the grid's Mechanism section and scripts/far_attention.py do); :func:`far_passkey` runs the
zero-shot passkey test under the same variants: which far scores keep a model from retrieving a key beyond L, and
whether it can retrieve at distances it never saw (the needle-depth counts). Its Markdown tables are far_tables.py's.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

VARIANTS = ("full", "window", "far_without_cycles", "far_cycles_only")
_PAIR_VARIANTS = ("far_without_cycles", "far_cycles_only")


def cycle_pairs(pos: Any, train_len: int) -> int:
    """Number of leading rotary pairs (rotate-half layout) that complete a cycle within ``train_len``.

    FoPE: its D_out mixed pairs (the rest are padded zero-frequency pairs). RoPE: the pairs with ω >= 2π/L (RoPE's
    frequencies fall with the pair index, so they are the first ones). Other encodings have no rotary pairs.
    """
    from fope.pos import functional as PF
    from fope.pos.fope import FoPE
    from fope.pos.rope import RoPE

    if isinstance(pos, FoPE):
        if not pos.opts.clip_floor:
            raise ValueError(
                "fope without the clip floor mixes frequencies below 2π/L into its pairs: they do not "
                "split into cycle and position-free pairs"
            )
        if pos.train_len != train_len:
            raise ValueError(f"fope's clip floor is at 2π/{pos.train_len}, not at the analysis' L = {train_len}")
        return int(pos.d_out)
    if isinstance(pos, RoPE):
        inv = pos.inv_freq.float()
        keep = PF.clip_floor_keep(inv, train_len)
        n = int(keep.sum())
        if not bool(keep[:n].all()):
            raise ValueError("rope: frequencies are not in falling order; the cycle pairs are not the leading ones")
        return n
    raise ValueError(f"{type(pos).__name__} has no rotary pairs: only the 'full' and 'window' variants apply")


def _explicit_attend(
    attn: Any, variant: str, train_len: int, n_cycle: int, far_mass: dict | None = None, layer: int = 0
):
    """An ``Attention._attend`` replacement: explicit softmax attention (fp32) with the variant's far scores.

    With ``far_mass``, each call adds to ``far_mass[layer]`` (a (Hq, T) float64 tensor, created by the first call)
    the attention weight every query row puts on keys at distance >= ``train_len``, summed over the batch.
    """

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_pos: torch.Tensor) -> torch.Tensor:
        B, Hq, T, D = q.shape
        Tk = k.shape[2]
        if k.shape[1] != Hq:  # grouped-query attention: repeat each kv head for its query heads (HF repeat_kv)
            k = k.repeat_interleave(Hq // k.shape[1], dim=1)
            v = v.repeat_interleave(Hq // v.shape[1], dim=1)
        kf, vf = k.float(), v.float()
        k_pos = torch.arange(Tk, device=q.device)
        scale = D**-0.5
        if variant in _PAIR_VARIANTS:
            in_cycle = (torch.arange(D, device=q.device) % (D // 2)) < n_cycle  # (D,) the cycle pairs' dims
            kc = kf * in_cycle
        rows = max(1, attn.block_rows(B, Tk) // 2)  # two score tensors per block
        outs = []
        for r0 in range(0, T, rows):
            r1 = min(T, r0 + rows)
            qb = q[:, :, r0:r1].float()
            s = qb @ kf.transpose(-1, -2) * scale  # (B, Hq, r, Tk)
            bias = attn.pos.attn_bias(q_pos[r0:r1], k_pos)
            if bias is not None:
                s = s + bias.float()
            dist = q_pos[r0:r1, None] - k_pos[None, :]  # (r, Tk)
            far = dist >= train_len
            if variant == "window":
                s = s.masked_fill(far, float("-inf"))
            elif variant in _PAIR_VARIANTS:
                s_cycle = (qb * in_cycle) @ kc.transpose(-1, -2) * scale
                s = torch.where(far, s - s_cycle if variant == "far_without_cycles" else s_cycle, s)
            s = s.masked_fill(dist < 0, float("-inf"))
            p = torch.softmax(s, dim=-1)
            if far_mass is not None:
                if layer not in far_mass:
                    far_mass[layer] = torch.zeros(Hq, T, dtype=torch.float64)
                far_mass[layer][:, r0:r1] += (p * far).sum(-1).sum(0).double().cpu()
            outs.append((p @ vf).to(q.dtype))
        return torch.cat(outs, dim=2)

    return attend


@contextlib.contextmanager
def attention_variant(model: Any, variant: str, *, train_len: int, far_mass: dict | None = None) -> Iterator[None]:
    """Within the block, every attention layer of a fope ``CausalLM`` runs ``variant`` (see the module docstring).

    With ``far_mass`` (a dict), every forward adds to ``far_mass[i]``, for each layer i, a (heads, T) float64 tensor
    of the attention weight each query puts on keys at distance >= ``train_len``, summed over the batch
    (``far_attention_report`` turns it into per-bucket means).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown far-attention variant {variant!r}; choose from {VARIANTS}")
    if not isinstance(train_len, int) or train_len < 1:
        raise ValueError(f"train_len must be a positive int, got {train_len!r}")
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise ValueError(
            f"{type(model).__name__} is not a fope CausalLM (no .blocks): this analysis patches fope's attention layers"
        )
    layers = [b.attn for b in blocks]
    n_cycle = cycle_pairs(layers[0].pos, train_len) if variant in _PAIR_VARIANTS else 0
    try:
        for i, a in enumerate(layers):
            a._attend = _explicit_attend(a, variant, train_len, n_cycle, far_mass, i)
        yield
    finally:
        for a in layers:
            a.__dict__.pop("_attend", None)


def _pair_split(model: Any, train_len: int) -> tuple[int | None, tuple[str, ...]]:
    """(cycle pairs or None, the variants that apply): every variant for a rotary encoding with a pair split,
    ``full`` and ``window`` otherwise (bias encodings, FoPE without the clip floor)."""
    try:
        n_cycle = cycle_pairs(model.blocks[0].attn.pos, train_len)
    except ValueError:
        return None, ("full", "window")
    return n_cycle, VARIANTS


def mean_far_mass(far_mass: list, bucket: int, layers: Sequence[int] | None = None) -> float:
    """Mean over heads (of ``layers``, default every layer) of a report's ``far_mass`` [layer][head][bucket] in one
    position bucket."""
    heads = [h for i, layer in enumerate(far_mass) if layers is None or i in layers for h in layer]
    return sum(h[bucket] for h in heads) / len(heads)


def bucket_edges(train_len: int, length: int) -> list[int]:
    """[0, L, 2L, 4L, ..., length]: position buckets of the report."""
    edges, e = [0], train_len
    while e < length:
        edges.append(e)
        e *= 2
    return [*edges, length]


@torch.no_grad()
def far_attention_report(
    model: Any,
    tokens: Sequence[int] | torch.Tensor,
    *,
    train_len: int,
    length: int,
    variants: Sequence[str] | None = None,
    device: str | torch.device | None = None,
) -> dict:
    """Perplexity of each variant on non-overlapping chunks of ``length`` tokens, overall and per position bucket.

    Args:
        model: a fope ``CausalLM`` (eval mode is set here).
        tokens: the token stream; the first ``len // length`` chunks of exactly ``length`` tokens are scored (each
            chunk predicts its tokens 1..length-1 from the ones before, like ``fope eval ppl``).
        train_len: L, the distance from which scores count as "far".
        length: chunk length n (> L for anything to differ).
        variants: default every variant that applies (``full`` and ``window`` only for encodings without a split
            into cycle and position-free rotary pairs: bias encodings, FoPE without the clip floor).
    Returns:
        {"train_len", "length", "chunks", "cycle_pairs", "edges", "variants": {name: {"ppl", "buckets": [ppl per
        bucket [edges[i], edges[i+1])], "far_mass": [per layer: [per head: [per bucket]]]}}}; position p is the
        position of the predicted token. ``far_mass`` is the mean attention weight that the queries predicting the
        bucket's tokens put on keys at distance >= L (0 in the buckets below L), over the chunks and the bucket's
        positions: how much of its attention each head spends where distances were never seen in training.
    """
    if length < 2:
        raise ValueError(f"length must be >= 2, got {length}")
    ids = torch.as_tensor(tokens, dtype=torch.long).flatten()
    n_chunks = ids.numel() // length
    if n_chunks < 1:
        raise ValueError(f"{ids.numel()} tokens make no chunk of length {length}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    chunks = ids[: n_chunks * length].view(n_chunks, length).to(device)
    model.eval()
    edges = bucket_edges(train_len, length)
    n_cycle, default = _pair_split(model, train_len)
    variants = default if variants is None else variants
    out: dict[str, Any] = {
        "train_len": train_len,
        "length": length,
        "chunks": n_chunks,
        "cycle_pairs": n_cycle,
        "edges": edges,
        "variants": {},
    }
    for variant in variants:
        total = torch.zeros(length - 1, dtype=torch.float64)
        far_mass: dict[int, torch.Tensor] = {}
        with attention_variant(model, variant, train_len=train_len, far_mass=far_mass):
            for c in range(n_chunks):
                x = chunks[c : c + 1]
                logits = model(x[:, :-1])
                nll = F.cross_entropy(logits[0].float(), x[0, 1:], reduction="none")
                total += nll.double().cpu()
        nll = total / n_chunks  # (length-1,): the loss of predicting position p = 1..length-1
        per_pos = torch.cat([torch.full((1,), float("nan"), dtype=torch.float64), nll])  # index = position
        buckets = []
        for a, b in pairwise(edges):
            seg = per_pos[max(a, 1) : b]
            buckets.append(round(math.exp(float(seg.mean())), 3))
        mass = []  # query q = p - 1 predicts position p: the bucket [a, b) holds the queries a-1 .. b-2
        for i in sorted(far_mass):
            per_head = far_mass[i] / n_chunks  # (H, length-1)
            mass.append(
                [[round(float(h[max(a, 1) - 1 : b - 1].mean()), 5) for a, b in pairwise(edges)] for h in per_head]
            )
        out["variants"][variant] = {"ppl": round(math.exp(float(nll.mean())), 3), "buckets": buckets, "far_mass": mass}
    return out


def far_attention_of(
    model: str | Path,
    *,
    tokens: int,
    corpus: str = "books",
    length: int | None = None,
    factor: int = 16,
    train_len: int | None = None,
    variants: Sequence[str] | None = None,
    device: str = "cpu",
) -> tuple[Any, Any, dict]:
    """:func:`far_attention_report` of a saved model (a fope model or run directory, read by fope.eval's loader) on
    the first ``tokens`` tokens of ``corpus``'s validation split (the grid's perplexity evaluation reads the same),
    at ``length`` (default ``factor`` x L), L = ``train_len`` or the model's. Returns (the adapter, those tokens, the
    report with its ``corpus``)."""
    from fope.eval.loader import load_model
    from fope.eval.perplexity import tokens_from_corpus

    adapter = load_model(model, device=device)
    if not hasattr(adapter.model.config, "train_len"):  # a Hugging Face model (FoPE ones included)
        raise ValueError(
            f"model {str(model)!r}: far attention runs on native fope models only (fope model or run directories); "
            "for a Hugging Face or engine-format model use `fope analyze damage`"
        )
    L = train_len or int(adapter.model.config.train_len)
    stream = tokens_from_corpus(corpus, adapter.tokenizer, split="val", max_tokens=tokens + 1)[:tokens]
    report = far_attention_report(adapter.model, stream, train_len=L, length=length or factor * L, variants=variants)
    report["corpus"] = corpus
    return adapter, stream, report


def far_passkey(
    adapter: Any,
    lengths: Sequence[int],
    *,
    train_len: int,
    trials: int,
    seed: int = 0,
    variants: Sequence[str] | None = None,
) -> dict:
    """The zero-shot passkey test (greedy generation and likelihood top-1) under each far-attention variant.

    Args:
        adapter: a fope model adapter (``fope.eval.loader.load_model``) with its tokenizer.
        lengths: prompt lengths in tokens (> L for the variants to differ).
        train_len: L, the distance from which scores count as "far".
        trials: trials per length, needles at uniform depths (the seed fixes keys and depths, so every variant
            sees the same prompts).
        variants: default every variant that applies to the model's encoding (as :func:`far_attention_report`).
    Returns:
        {"train_len", "trials", "seed", "variants": {name: {"generation": {len: acc}, "likelihood_top1": {len: acc},
        "depth": {len: {depth-bin centre: [correct, trials]}}}}}; depth 0 is the start of the filler (the needle
        farthest from the question).
    """
    from fope.eval import passkey_eval
    from fope.eval.passkey import depth_counts

    model = adapter.model
    variants = _pair_split(model, train_len)[1] if variants is None else variants
    out: dict[str, Any] = {"train_len": train_len, "trials": trials, "seed": seed, "variants": {}}
    for variant in variants:
        with attention_variant(model, variant, train_len=train_len):
            res = passkey_eval(
                adapter,
                adapter.tokenizer,
                list(lengths),
                trials=trials,
                seed=seed,
                depths="uniform",
                mode="both",
                progress=False,
            )
        out["variants"][variant] = {
            "generation": {str(n): v for n, v in res["by_length"].items()},
            "likelihood_top1": {str(n): v for n, v in res["likelihood"]["top1"]["by_length"].items()},
            "depth": depth_counts(res["trials"]),
        }
    return out
