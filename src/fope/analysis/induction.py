"""Can the model copy a sequence it has seen? The repeated-random-tokens test of induction heads (ours for fope).

Passkey retrieval by greedy generation needs the model to copy the key's digits *in order* from far back in the
context. The mechanism that does this in transformers is the induction head (Olsson et al., 2022, "In-context
learning and induction heads"): a previous-token head in one layer and, in a later one, a head that attends to the
token after the earlier occurrence of the current token. Their standard probe is a sequence of random tokens shown
twice: a model without them predicts the second copy no better than the first; a model with them predicts it almost
perfectly.

``induction_report`` runs that probe: ``sequences`` rows of ``length`` tokens drawn uniformly from ``token_ids``, each
shown twice with ``gap`` random tokens between the copies (so the copy distance is ``length + gap``), and reports
the mean next-token NLL over the first copy and over the second (each copy's first token is left out: it cannot
be predicted), their difference (the *induction score*, nats), and the greedy top-1 accuracy on the second copy.
With ``token_ids`` the ten digit tokens the probe asks what the passkey needs: copying a digit string in order,
where the current token alone does not say what comes next (a digit recurs), so a one-token induction head is not
enough.

    from fope.analysis.induction import induction_report, digit_token_ids
    rep = induction_report(adapter, token_ids=range(3, vocab), length=50, sequences=16)
    rep["induction_score"], rep["top1_repeat"]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F


def digit_token_ids(tokenizer: Any) -> list[int]:
    """The ids of the tokens "0".."9"; ValueError when a digit is not one token of its own."""
    ids = []
    for d in "0123456789":
        enc = tokenizer.encode(d)
        if len(enc) != 1:
            raise ValueError(f"digit {d!r} is {len(enc)} tokens ({enc}) in this tokenizer, not one")
        ids.append(enc[0])
    return ids


def probe_batch(token_ids: Sequence[int], *, length: int, sequences: int, gap: int = 0, seed: int = 0) -> torch.Tensor:
    """(sequences, 2 * length + gap) ids: x, g, x with x and g drawn uniformly (with replacement) from token_ids."""
    pool = torch.as_tensor(list(token_ids), dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    x = pool[torch.randint(len(pool), (sequences, length), generator=g)]
    filler = pool[torch.randint(len(pool), (sequences, gap), generator=g)]
    return torch.cat([x, filler, x], dim=1)


@torch.no_grad()
def induction_report(
    model: Any,
    *,
    token_ids: Sequence[int],
    length: int = 50,
    sequences: int = 16,
    gap: int = 0,
    seed: int = 0,
    batch_size: int = 8,
) -> dict:
    """NLL of the first and the repeated copy of random sequences, their difference and top-1 on the repeat.

    Args:
        model: an ``LMAdapter`` (``fope.eval.as_adapter`` wraps a fope ``CausalLM`` or a transformers model).
        token_ids: the ids to draw from (e.g. ``range(n_special, vocab)``, or ``digit_token_ids(tokenizer)``).
        length: tokens per copy (>= 2).
        sequences: number of random rows (>= 1).
        gap: random tokens between the two copies (>= 0).
        seed: seed of the rows.
        batch_size: rows per forward pass.

    Returns:
        {"length", "gap", "sequences", "n_tokens": len(token_ids), "nll_first", "nll_repeat", "induction_score",
         "top1_first", "top1_repeat", "chance_nll": log(len(token_ids)), "nll_repeat_by_position": [...]}
    """
    from fope.eval.adapters import as_adapter

    if length < 2:
        raise ValueError(f"length must be >= 2, got {length}")
    if sequences < 1:
        raise ValueError(f"sequences must be >= 1, got {sequences}")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ids_list = list(token_ids)
    if len(ids_list) < 2:
        raise ValueError(f"token_ids needs at least 2 ids, got {len(ids_list)}")
    adapter = as_adapter(model)
    bad = [i for i in ids_list if not 0 <= int(i) < adapter.vocab_size]
    if bad:
        raise ValueError(f"token ids {bad[:5]} outside the model's vocabulary of {adapter.vocab_size}")
    ids = probe_batch(ids_list, length=length, sequences=sequences, gap=gap, seed=seed)
    second = length + gap  # index of the second copy's first token
    nll_rows, hit_rows = [], []
    for rows in ids.split(batch_size):
        logits = adapter.logits(rows.to(adapter.device)).float().cpu()  # (B, T, V)
        nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), rows[:, 1:], reduction="none")  # (B, T - 1)
        hit = (logits[:, :-1].argmax(-1) == rows[:, 1:]).float()
        nll_rows.append(nll)
        hit_rows.append(hit)
    nll, hit = torch.cat(nll_rows), torch.cat(hit_rows)
    # prediction at index t scores token t + 1: first copy = targets 1..length-1, repeat = second+1..second+length-1
    first, repeat = slice(0, length - 1), slice(second, second + length - 1)
    nll_first, nll_repeat = nll[:, first].mean().item(), nll[:, repeat].mean().item()
    return {
        "length": length,
        "gap": gap,
        "sequences": sequences,
        "n_tokens": len(ids_list),
        "nll_first": nll_first,
        "nll_repeat": nll_repeat,
        "induction_score": nll_first - nll_repeat,
        "top1_first": hit[:, first].mean().item(),
        "top1_repeat": hit[:, repeat].mean().item(),
        "chance_nll": math.log(len(ids_list)),
        "nll_repeat_by_position": nll[:, repeat].mean(0).tolist(),
    }
