"""What wrote a checkpoint, and whether this code can carry the run on.

Every checkpoint's ``state.json`` records (`checkpoint_info`):

    code           {"fope_version", "git_commit", "git_dirty"} of the code that wrote it (`code_version`)
    config_schema  fope.train.config.CONFIG_SCHEMA: the layout of the experiment config
    probe_loss     the loss of the saved weights on a fixed token pattern (`probe_loss`), in fp32

On resume:

- a config written with an older layout (fields this code added are missing, and the checkpoint's checksums
  vouch that the file is whole) resumes with the new fields at their defaults, said in one line;
- one written with a newer layout, or holding keys this code does not know, is refused with advice that keeps the
  run: resume it with the fope that wrote it (never "delete the run directory");
- a **loss-changing upgrade** is reported: the probe loss of the restored weights is recomputed with this code and
  compared with the recorded one. Same weights and same input give the same loss unless the model's forward or the
  loss changed (a relative difference above `PROBE_TOLERANCE`, far above run-to-run float noise); the report names
  both code versions and is recorded in metrics.jsonl. The resumed run goes on (the user upgraded on purpose), but
  its curve before and after that step is not one computation.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import typing
from pathlib import Path
from typing import Any

import torch

from fope.utils import FileProblem, git_info

from .config import CONFIG_SCHEMA, DataConfig, ExperimentConfig, TrainConfig, _missing_keys, read_yaml
from .evaluate import token_loss

#: relative difference of the probe loss above which a resume reports a loss-changing upgrade
PROBE_TOLERANCE = 1e-3
_SAID: set[tuple[str, tuple[str, ...]]] = set()

#: tokens of the probe sequence at most (it uses the training length when shorter: no new position tables)
PROBE_TOKENS = 64


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """``{"fope_version", "git_commit", "git_dirty"}`` of the running code (the commit is None outside a git
    checkout)."""
    import fope

    git = git_info()
    return {
        "fope_version": getattr(fope, "__version__", "unknown"),
        "git_commit": git["commit"],
        "git_dirty": git["dirty"],
    }


def describe(code: dict[str, Any] | None) -> str:
    """``fope 0.1.0 (commit 1a2b3c4d5e6f, with local changes)``, or "a fope that recorded no version"."""
    if not code:
        return "a fope that recorded no version"
    text = f"fope {code.get('fope_version', '?')}"
    commit = code.get("git_commit")
    if commit:
        text += f" (commit {str(commit)[:12]}{', with local changes' if code.get('git_dirty') else ''})"
    return text


def checkpoint_info(probe: float | None) -> dict[str, Any]:
    """What a checkpoint's state.json records besides the step: code version, config schema, probe loss."""
    return {"code": code_version(), "config_schema": CONFIG_SCHEMA, "probe_loss": probe}


def probe_inputs(vocab_size: int, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed (1, T) token pattern and its next tokens: no data, no RNG, the same for every run of a shape."""
    n = max(2, min(seq_len, PROBE_TOKENS)) + 1
    ids = (torch.arange(n, dtype=torch.long) * 7919 + 17) % vocab_size
    return ids[None, :-1].to(device), ids[None, 1:].to(device)


def probe_loss(model: torch.nn.Module, vocab_size: int, seq_len: int, device: torch.device) -> float:
    """The fp32 loss of ``model`` on `probe_inputs` (eval mode, no autocast, no gradient, no RNG used)."""
    x, y = probe_inputs(vocab_size, seq_len, device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return float(token_loss(model, x, y))
    finally:
        model.train(was_training)


def probe_changed(saved: Any, now: float) -> bool:
    """Whether a recomputed probe loss differs from the recorded one beyond `PROBE_TOLERANCE`."""
    if not isinstance(saved, (int, float)) or isinstance(saved, bool):
        return False
    if not (math.isfinite(saved) and math.isfinite(now)):
        return math.isfinite(saved) != math.isfinite(now)
    return abs(now - saved) > PROBE_TOLERANCE * max(1.0, abs(saved))


def _fix_newer(saved_code: dict[str, Any] | None) -> str:
    commit = (saved_code or {}).get("git_commit")
    version = (saved_code or {}).get("fope_version")
    how = f"`git checkout {str(commit)[:12]}`" if commit else f"fope {version}" if version else "that fope"
    return f"resume it with the fope that wrote it ({how}); the run directory is intact and unchanged"


def config_from_checkpoint(path: Path, state: dict[str, Any], *, verified: bool) -> ExperimentConfig:
    """The ExperimentConfig of a checkpoint's config.yaml, across versions (see the module docstring).

    ``state``: the checkpoint's state.json ({} when it has none); ``verified``: its checksums vouch for the file,
    so missing keys mean an older config layout, not a truncated file.
    """
    d = read_yaml(path)
    saved_code, schema = state.get("code"), state.get("config_schema")
    if isinstance(schema, int) and schema > CONFIG_SCHEMA:
        raise FileProblem(
            path,
            f"written by {describe(saved_code)} with config schema {schema}; this {describe(code_version())} "
            f"reads schema {CONFIG_SCHEMA}",
            _fix_newer(saved_code),
        )
    unknown = _unknown_keys(d)
    if unknown:
        raise FileProblem(
            path,
            f"has {', '.join(unknown[:4])}, unknown to this {describe(code_version())} (written by "
            f"{describe(saved_code)})",
            _fix_newer(saved_code),
        )
    missing = _missing_keys(d)
    if missing:
        if not verified or any("." not in k for k in missing):
            raise FileProblem(
                path,
                f"incomplete (truncated?) config: missing {', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
                "restore it from a backup, or train the run again in a new directory; the run directory is left "
                "as it is",
            )
        cfg = ExperimentConfig.from_dict(d)
        values = [f"{k}={_get(cfg, k)!r}" for k in missing]
        if (str(path), tuple(missing)) in _SAID:  # the config is read twice on a resume (CLI and train): say it once
            return cfg
        _SAID.add((str(path), tuple(missing)))
        print(
            f"fope: {path}: written by {describe(saved_code)} before {', '.join(missing)} existed; resuming with "
            f"the default{'s' if len(missing) > 1 else ''} {', '.join(values)}",
            file=sys.stderr,
            flush=True,
        )
        return cfg
    return ExperimentConfig.from_dict(d)


def _get(cfg: ExperimentConfig, dotted: str) -> Any:
    section, name = dotted.split(".", 1)
    return getattr(getattr(cfg, section), name)


def _unknown_keys(d: Any) -> list[str]:
    from fope.model.config import ModelConfig

    if not isinstance(d, dict):
        return []
    out = [k for k in d if k not in ("model", "data", "train")]
    for section, cls in (("model", ModelConfig), ("data", DataConfig), ("train", TrainConfig)):
        sec = d.get(section)
        if isinstance(sec, dict):
            names = {f.name for f in dataclasses.fields(cls)} | set(typing.get_type_hints(cls))
            out += [f"{section}.{k}" for k in sec if k not in names]
    return out


__all__ = [
    "PROBE_TOLERANCE",
    "checkpoint_info",
    "code_version",
    "config_from_checkpoint",
    "describe",
    "probe_changed",
    "probe_loss",
]
