"""Results of an evaluation: one JSON object per evaluation, the one schema of `fope eval ppl/passkey --json` and of
the grid's evaluation records (OUT/runs/<run>/eval/*.json of fope.reproduce, which adds its ``request`` and
``wall_s``). `ppl_result` and `passkey_result` build them.

Schema (keys of mappings indexed by length or depth are strings, as JSON requires):

    {
      "kind": "ppl" | "passkey",
      "schema_version": 1,
      "settings": {"model": str, "model_kind": "fope"|"hf", "model_config": {...} | null,
                   "train_len": int | null, "lengths": [int], "fope_version": str,
                   "git_commit": str | null, "created": ISO-8601 UTC time, ...evaluation options...},
      "by_length": {"512": float, ...},              # ppl: perplexity; passkey: accuracy in [0, 1]
      # ppl only
      "details": {"512": {"ppl", "mean_ce", "n_tokens", "n_windows"}, ...},
      # passkey only
      "metric": "generate" | "likelihood_top1",     # what by_length holds
      "by_length_depth": {"512": {"0.25": float, ...}, ...},
      "counts": {"512": {"0.25": int, ...}, ...},
      "generate": {"by_length", "by_length_depth", "counts"} | null,
      "likelihood": {"n_candidates", "top1", "mrr", "mean_rank", "margin"} | null,
      "n_garbage": {"512": int, ...},
      "trials": [{"length", "depth", "key", "n_garbage", "prefix_chars", "prompt_tokens", "generated",
                  "predicted", "correct", "rank", "n_candidates", "logprob_key", "margin"}, ...]
    }
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Any

from fope.utils import atomic_json, git_info, read_json

SCHEMA_VERSION = 1
KINDS = ("ppl", "passkey")


def base_settings(model_info: dict, lengths: list[int], **options: Any) -> dict:
    """The common "settings" block: model description, lengths, versions, time, plus `options`."""
    import fope

    return {
        "model": model_info.get("model"),
        "model_kind": model_info.get("kind"),
        "model_config": model_info.get("config"),
        "train_len": model_info.get("train_len"),
        "lengths": list(lengths),
        **options,
        "fope_version": fope.__version__,
        "git_commit": git_info()["commit"],
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def ppl_result(model_info: dict, report: dict[int, Any], **options: Any) -> dict:
    """The "ppl" result of `fope.eval.perplexity.perplexity_report`'s ``{length: LengthResult}``; ``model_info`` is
    the adapter's ``describe()``, ``options`` the evaluation's settings."""
    settings = base_settings(model_info, list(report), **options)
    return make_result(
        "ppl", settings, {n: r.ppl for n, r in report.items()}, details={n: r.to_dict() for n, r in report.items()}
    )


def passkey_result(model_info: dict, res: dict, lengths: list[int], **options: Any) -> dict:
    """The "passkey" result of `fope.eval.passkey.passkey_eval`'s dict ``res`` (every key of it kept)."""
    settings = base_settings(model_info, lengths, **options)
    return make_result("passkey", settings, res["by_length"], **{k: v for k, v in res.items() if k != "by_length"})


def make_result(kind: str, settings: dict, by_length: dict, **extra: Any) -> dict:
    """A result object with string keys everywhere (ints and floats as keys become their str())."""
    if kind not in KINDS:
        raise ValueError(f"unknown result kind {kind!r}; choose from {', '.join(KINDS)}")
    return _stringify(
        {"kind": kind, "schema_version": SCHEMA_VERSION, "settings": settings, "by_length": by_length, **extra}
    )


def _stringify(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {(str(k) if isinstance(k, (int, float)) else k): _stringify(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_stringify(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def validate(result: dict, *, source: str = "result") -> dict:
    """Check the top-level schema; raise ValueError naming the missing/wrong field."""
    if not isinstance(result, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(result).__name__}")
    for key in ("kind", "settings", "by_length"):
        if key not in result:
            raise ValueError(f"{source}: missing top-level key {key!r}")
    if result["kind"] not in KINDS:
        raise ValueError(f"{source}: unknown kind {result['kind']!r}")
    by_length = result["by_length"]
    if not isinstance(by_length, dict) or not by_length:
        raise ValueError(f"{source}: 'by_length' must be a non-empty object")
    for k, v in by_length.items():
        if not k.isdigit():
            raise ValueError(f"{source}: by_length key {k!r} is not a length")
        if not (isinstance(v, (int, float)) or v in ("inf", None)):
            raise ValueError(f"{source}: by_length[{k!r}] = {v!r} is not a number")
        if result["kind"] == "passkey" and not 0.0 <= v <= 1.0:
            raise ValueError(f"{source}: passkey accuracy by_length[{k!r}] = {v} outside [0, 1]")
    if result["kind"] == "passkey" and "by_length_depth" not in result:
        raise ValueError(f"{source}: passkey result without 'by_length_depth'")
    return result


def save_result(result: dict, path: str | Path) -> Path:
    """Validate and write `result` as indented JSON, atomically (parent folders created)."""
    validate(result)
    return atomic_json(path, result)


def load_result(path: str | Path) -> dict:
    """Read and validate a result file."""
    path = Path(path)
    return validate(read_json(path, "result file"), source=str(path))


def series(result: dict, key: str = "by_length") -> tuple[list[int], list[float]]:
    """Sorted lengths and their values of a length-indexed mapping ("inf" -> math.inf, null -> nan)."""
    items = sorted((int(k), v) for k, v in result[key].items())
    conv = {"inf": math.inf, "-inf": -math.inf, None: math.nan}
    return [k for k, _ in items], [conv.get(v, v) if not isinstance(v, (int, float)) else float(v) for _, v in items]
