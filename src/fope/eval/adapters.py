"""One small model interface for every evaluation: fope `CausalLM`s and Hugging Face causal LMs.

Shapes: B batch, T tokens, V vocabulary.

The evaluations (`perplexity.py`, `passkey.py`) only talk to an `LMAdapter`:
    vocab_size: int, device: torch.device
    logits(ids (B, T) long) -> (B, T, V) float32         one causal forward, no cache
    sum_nll(ids (B, T), first) -> list[float]
        per row b, sum over t >= first[b] of -log p(ids[b, t] | ids[b, :t]) (nats, float64 sums); the
        fope adapter applies the LM head slice by slice, so (B, T, V) logits never exist at once
    new_cache() -> cache; step(ids (B, T), cache, *, last_only=False) -> (B, T or 1, V) float32
        incremental forward: the T new tokens get positions cache_len .. cache_len+T-1 and the cache
        grows in place (a fope `KVCache` or a Hugging Face `Cache`); last_only returns the last position
    prefill(prompt_ids) -> Prefill(cache, last_logits (V,), length)
        the prompt run once; may seed the two calls below (then the prompt is not run again)
    generate_greedy(prompt_ids, max_new_tokens, *, eos_id=None, prefill=None) -> list[int]
        greedy decoding with the KV cache (the prompt runs once, then one token per step)
    continuation_logprobs(prompt_ids, continuations, *, prefill=None) -> list[float]
        teacher-forced sum of log p(continuation | prompt) for each candidate; the prompt runs once
        and each candidate extends a branch of its cache
    describe() -> dict   (what goes into a result file's "settings")

Models are loaded (and wrapped in the right adapter) by `fope.eval.loader.load_model`.
"""

from __future__ import annotations

import copy
import inspect
import sys
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn


@runtime_checkable
class LMAdapter(Protocol):
    """What the evaluations need from a causal language model (see the module docstring)."""

    vocab_size: int
    device: torch.device

    def logits(self, ids: torch.Tensor) -> torch.Tensor: ...

    def sum_nll(self, ids: torch.Tensor, first: list[int]) -> list[float]: ...

    def new_cache(self) -> Any: ...

    def step(self, ids: torch.Tensor, cache: Any, *, last_only: bool = False) -> torch.Tensor: ...

    def prefill(self, prompt_ids: list[int]) -> Prefill: ...

    def generate_greedy(
        self, prompt_ids: list[int], max_new_tokens: int, *, eos_id: int | None = None, prefill: Prefill | None = None
    ) -> list[int]: ...

    def continuation_logprobs(
        self, prompt_ids: list[int], continuations: list[list[int]], *, prefill: Prefill | None = None
    ) -> list[float]: ...

    def describe(self) -> dict: ...


_CE_SLICE = 2048  # positions per cross-entropy slice: bounds the (slice, V) temporaries


def _check_logits(logits: torch.Tensor, ids: torch.Tensor, vocab_size: int, *, last_only: bool = False) -> torch.Tensor:
    """Raise on a model that returns the wrong shape; return fp32 logits."""
    expected = (ids.shape[0], 1 if last_only else ids.shape[1], vocab_size)
    if tuple(logits.shape) != expected:
        raise ValueError(
            f"model returned logits of shape {tuple(logits.shape)}, expected {expected} for input {tuple(ids.shape)}"
        )
    return logits.float()


def _as_ids(ids: torch.Tensor | list[int], device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(ids, dtype=torch.long, device=device)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2:
        raise ValueError(f"token ids must be (T,) or (B, T), got shape {tuple(t.shape)}")
    return t


def _check_first(ids: torch.Tensor, first: list[int]) -> None:
    if len(first) != ids.shape[0] or any(not 1 <= f < ids.shape[1] for f in first):
        raise ValueError(
            f"first={list(first)} must give one offset in [1, {ids.shape[1] - 1}] per row of {tuple(ids.shape)}"
        )


def _sum_ce(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Summed cross-entropy of (T, V) logits against (T,) targets, in slices to bound memory."""
    total = 0.0
    for s in range(0, len(targets), _CE_SLICE):
        ce = F.cross_entropy(logits[s : s + _CE_SLICE].float(), targets[s : s + _CE_SLICE], reduction="sum")
        total += float(ce.double())
    return total


@dataclass
class Prefill:
    """A prompt already run through the model: its KV cache, the next-token logits (V,) and its length."""

    cache: Any
    last_logits: torch.Tensor
    length: int


class _AdapterBase:
    """Greedy decoding and continuation scoring written once on top of `step` / `new_cache`."""

    vocab_size: int
    device: torch.device

    def logits(self, ids: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self, ids: torch.Tensor, cache: Any, *, last_only: bool = False) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def new_cache(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def sum_nll(self, ids: torch.Tensor, first: list[int]) -> list[float]:
        """Per row, summed NLL of the tokens at positions >= first[row] (each >= 1); see module docstring."""
        ids = _as_ids(ids, self.device)
        _check_first(ids, first)
        logits = self.logits(ids[:, :-1])  # (B, T-1, V): position t predicts token t+1
        out = [_sum_ce(logits[b, f - 1 :], ids[b, f:]) for b, f in enumerate(first)]
        del logits
        return out

    @torch.no_grad()
    def prefill(self, prompt_ids: list[int]) -> Prefill:
        """Run a prompt once; the result can seed several `generate_greedy` / `continuation_logprobs` calls."""
        if not prompt_ids:
            raise ValueError("the prompt is empty")
        cache = self.new_cache()
        logits = self.step(_as_ids(prompt_ids, self.device), cache, last_only=True)[0, -1]  # (V,)
        return Prefill(cache=cache, last_logits=logits, length=len(prompt_ids))

    @torch.no_grad()
    def generate_greedy(
        self, prompt_ids: list[int], max_new_tokens: int, *, eos_id: int | None = None, prefill: Prefill | None = None
    ) -> list[int]:
        """Greedy continuation of one prompt; stops after `max_new_tokens` or at `eos_id` (not returned).

        With `prefill` (of this prompt) the prompt is not run again; the prefill stays reusable.
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        pre = prefill if prefill is not None else self.prefill(prompt_ids)
        cache = self._branch(pre.cache, pre.length)
        logits = pre.last_logits
        out: list[int] = []
        for _ in range(max_new_tokens):
            nxt = int(logits.argmax())
            if eos_id is not None and nxt == eos_id:
                break
            out.append(nxt)
            if len(out) == max_new_tokens:
                break
            logits = self.step(_as_ids([nxt], self.device), cache)[0, -1]  # (V,)
        return out

    @torch.no_grad()
    def continuation_logprobs(
        self, prompt_ids: list[int], continuations: list[list[int]], *, prefill: Prefill | None = None
    ) -> list[float]:
        """Sum of log p(c_i | prompt, c_<i) over each candidate continuation c (teacher forcing).

        The prompt runs once (or not at all with `prefill`); each candidate extends a branch of the prompt's
        KV cache (`_branch`: a deep copy, or for fope caches the same cache cropped back to the prompt).
        Cost: one prompt forward plus one short cached forward per candidate.
        """
        if any(len(c) == 0 for c in continuations):
            raise ValueError("every continuation needs at least one token")
        pre = prefill if prefill is not None else self.prefill(prompt_ids)
        first = torch.log_softmax(pre.last_logits, dim=-1)  # (V,)
        scores = []
        for cont in continuations:
            total = float(first[cont[0]])
            if len(cont) > 1:
                branch = self._branch(pre.cache, pre.length)
                logp = torch.log_softmax(self.step(_as_ids(cont[:-1], self.device), branch)[0], dim=-1)  # (c-1, V)
                total += float(logp.gather(-1, torch.as_tensor(cont[1:], device=self.device)[:, None]).sum())
            scores.append(total)
        return scores

    def _branch(self, cache: Any, prompt_len: int) -> Any:
        """A cache holding exactly the prompt that may be extended without changing `cache`'s prompt."""
        return copy.deepcopy(cache)


class FopeAdapter(_AdapterBase):
    """A fope `CausalLM` (or any module with `forward(ids, cache=None) -> (B, T, V)` and `new_cache()`).

    Args:
        model: the language model; put in eval mode here.
        name: where it came from (recorded in result files).
        tokenizer: optional tokenizer loaded alongside (encode/decode/eos_id/vocab_size).
    """

    def __init__(self, model: nn.Module, *, name: str = "", tokenizer: Any = None) -> None:
        if not hasattr(model, "new_cache"):
            raise TypeError(f"{type(model).__name__} has no new_cache(); expected a fope CausalLM")
        self.model = model.eval()
        self.name = name
        self.tokenizer = tokenizer
        cfg = getattr(model, "config", None)
        vocab = getattr(cfg, "vocab_size", None) or getattr(model, "vocab_size", None)
        if not isinstance(vocab, int):
            raise TypeError(f"cannot find the vocabulary size of {type(model).__name__} (model.config.vocab_size)")
        self.vocab_size = vocab
        # a fope CausalLM exposes hidden_states + lm_head: long sequences never build (B, T, V) logits
        self._split_head = hasattr(model, "hidden_states") and hasattr(model, "lm_head")
        try:
            self.device = next(model.parameters()).device
        except StopIteration:  # parameter-free stand-ins
            self.device = torch.device("cpu")

    @torch.no_grad()
    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        ids = _as_ids(ids, self.device)
        return _check_logits(self.model(ids), ids, self.vocab_size)

    def new_cache(self) -> Any:
        return self.model.new_cache()

    def _branch(self, cache: Any, prompt_len: int) -> Any:
        if hasattr(cache, "crop"):  # fope KVCache.crop(length): forget every token after `length`
            cache.crop(prompt_len)
            return cache
        return copy.deepcopy(cache)

    @torch.no_grad()
    def step(self, ids: torch.Tensor, cache: Any, *, last_only: bool = False) -> torch.Tensor:
        ids = _as_ids(ids, self.device)
        if last_only and self._split_head:
            logits = self.model.lm_head(self.model.hidden_states(ids, cache)[:, -1:])  # (B, 1, V)
        else:
            logits = self.model(ids, cache=cache)
            logits = logits[:, -1:] if last_only else logits
        return _check_logits(logits, ids, self.vocab_size, last_only=last_only)

    @torch.no_grad()
    def sum_nll(self, ids: torch.Tensor, first: list[int]) -> list[float]:
        if not self._split_head:
            return super().sum_nll(ids, first)
        ids = _as_ids(ids, self.device)
        _check_first(ids, first)
        hidden = self.model.hidden_states(ids[:, :-1])  # (B, T-1, C): position t predicts token t+1
        out = []
        for b, f in enumerate(first):
            total = 0.0
            for s in range(f - 1, hidden.shape[1], _CE_SLICE):
                logits = self.model.lm_head(hidden[b, s : s + _CE_SLICE]).float()  # (slice, V)
                total += _sum_ce(logits, ids[b, s + 1 : s + 1 + _CE_SLICE])
            out.append(total)
        return out

    def describe(self) -> dict:
        cfg = getattr(self.model, "config", None)
        config = cfg.to_dict() if hasattr(cfg, "to_dict") else None
        return {"kind": "fope", "model": self.name, "config": config, "train_len": getattr(cfg, "train_len", None)}


class HFAdapter(_AdapterBase):
    """A Hugging Face causal LM (`transformers.PreTrainedModel` with `past_key_values` caching).

    Args:
        model: e.g. the result of `AutoModelForCausalLM.from_pretrained`; put in eval mode here.
        name: directory or hub name (recorded in result files).
        tokenizer: optional tokenizer wrapper (see `HFTokenizer`).
    """

    def __init__(self, model: nn.Module, *, name: str = "", tokenizer: Any = None) -> None:
        self.model = model.eval()
        self.name = name
        self.tokenizer = tokenizer
        self.vocab_size = int(model.config.vocab_size)
        self.device = next(model.parameters()).device
        self._params = set(inspect.signature(model.forward).parameters)
        # transformers >= 5.2x renamed `past_key_values` to `cache`; remote-code models may use either
        self._cache_kwarg = "cache" if "cache" in self._params else "past_key_values"

    @torch.no_grad()
    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        ids = _as_ids(ids, self.device)
        out = self.model(input_ids=ids, use_cache=False)
        return _check_logits(out.logits, ids, self.vocab_size)

    def new_cache(self) -> Any:
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    @torch.no_grad()
    def step(self, ids: torch.Tensor, cache: Any, *, last_only: bool = False) -> torch.Tensor:
        ids = _as_ids(ids, self.device)
        kwargs = {self._cache_kwarg: cache, "use_cache": True}
        if last_only and "logits_to_keep" in self._params:
            kwargs["logits_to_keep"] = 1
        logits = self.model(input_ids=ids, **kwargs).logits
        return _check_logits(logits[:, -1:] if last_only else logits, ids, self.vocab_size, last_only=last_only)

    def describe(self) -> dict:
        cfg = self.model.config
        return {
            "kind": "hf",
            "model": self.name,
            "config": cfg.to_diff_dict() if hasattr(cfg, "to_diff_dict") else None,
            "train_len": getattr(cfg, "max_position_embeddings", None),
        }


class HFTokenizer:
    """encode/decode/eos_id/vocab_size over a `transformers` tokenizer; never adds special tokens."""

    def __init__(self, tok: Any) -> None:
        self.tok = tok
        self.eos_id = tok.eos_token_id
        self.vocab_size = len(tok)

    def encode(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=False)


def as_adapter(model: Any) -> LMAdapter:
    """`model` itself if it already is an adapter; else wrap a fope `CausalLM` or a `transformers` model.

    Wrapping puts the module in eval mode (and leaves it there).
    """
    if isinstance(model, _AdapterBase):
        return model
    if isinstance(model, nn.Module) and hasattr(model, "new_cache"):
        return FopeAdapter(model)
    transformers = sys.modules.get("transformers")  # only an already imported transformers can have built it
    if transformers is not None and isinstance(model, transformers.PreTrainedModel):
        return HFAdapter(model)
    if isinstance(model, LMAdapter):
        return model
    raise TypeError(
        f"cannot evaluate a {type(model).__name__}: expected an LMAdapter, a fope CausalLM or a transformers model"
    )
