"""Typed experiment configuration: ``ExperimentConfig(model, data, train)``, YAML in/out, dotted overrides.

    >>> cfg = load_preset("cpu-tiny")
    >>> cfg = apply_overrides(cfg, ["train.lr=3e-4", "model.pe=fope", "model.pe_options.sigma=0.3"])
    >>> cfg.to_yaml("run.yaml"); ExperimentConfig.from_yaml("run.yaml") == cfg
    True

Every field carries its documentation (:func:`fope.utils.doc_field`), so the CLI help and ``docs/training.md`` are
generated from the code. Overrides are fope.utils' KEY=VALUE overrides, coerced to the field's declared type
(:func:`fope.utils.coerce`); an unknown key raises ``ValueError`` naming it and the closest valid key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fope.model.config import ModelConfig
from fope.utils import coerce, did_you_mean, doc_field, field_docs, parse_value, split_override

#: version of the experiment config's layout (the fields of ModelConfig, DataConfig and TrainConfig and their
#: meaning), recorded in every checkpoint. Bump it when a field is added, removed, renamed or changes meaning. A run
#: written with an older layout resumes with the new fields at their defaults (said in one line); one written with
#: a newer layout is refused, naming the fope that wrote it.
CONFIG_SCHEMA = 1

#: seeds are non-negative 63-bit integers (what numpy's, torch's and Python's generators all accept)
MAX_SEED = 2**63 - 1

PRECISIONS = ("auto", "fp32", "bf16")
MAX_STEPS = 10**9  # beyond any schedule (a typo'd --max-steps is refused, not started)
EXPAND_MODES = ("expand", "zero")
METRIC_BACKENDS = ("tensorboard", "wandb")


@dataclass
class DataConfig:
    """Where the training tokens come from (prepared by ``fope.data``)."""

    corpus: str = doc_field(
        "books",
        "training corpus: a fope.data name (books, wiki, c4, pg19) or a path to .txt/.jsonl/.parquet or a folder",
    )
    tokenizer: str = doc_field(
        "train:8192",
        "tokenizer: a path / name understood by fope.data.load_tokenizer, or "
        "'train:VOCAB' to train a byte-level BPE of that size on the corpus "
        "(cached and shared by runs with the same corpus and vocab)",
    )
    cache_dir: str | None = doc_field(
        None, "root of the token-shard and tokenizer cache (default $FOPE_CACHE or ~/.cache/fope)"
    )
    shard_dir: str | None = doc_field(
        None,
        "use the shards in this directory instead of the cache "
        "(train.bin/val.bin/meta.json from fope.data.prepare_shards)",
    )
    max_tokens: int | None = doc_field(
        None,
        "cap on tokens per split when preparing shards (e.g. the paper's 10B-token "
        "C4 subset of a streamed hub corpus; None = everything)",
    )
    retrieval_share: float = doc_field(
        0.0,
        "share (by tokens) of synthetic key-retrieval documents mixed into the "
        "training split (the CPU-scale passkey variant; 0 = off)",
    )
    seed: int = doc_field(0, "seed of the synthetic retrieval documents")
    eval_corpora: list[str] = doc_field(
        [],
        "extra corpora whose validation split is scored at every evaluation "
        "(logged as val_loss/NAME), e.g. the paper scores Books runs on C4",
    )


@dataclass
class TrainConfig:
    """Optimisation, schedule, batching, logging and checkpointing (paper values from docs/paper.md §4.3)."""

    seed: int = doc_field(6198, "global seed (model init, data order); the paper uses 6198")
    lr: float = doc_field(6e-4, "peak learning rate of AdamW")
    beta1: float = doc_field(0.9, "AdamW beta1")
    beta2: float = doc_field(0.95, "AdamW beta2")
    eps: float = doc_field(1e-8, "AdamW epsilon")
    weight_decay: float = doc_field(
        0.1,
        "AdamW decoupled weight decay, applied to every trainable parameter "
        "(norms and embeddings too, as in the paper)",
    )
    warmup_steps: int = doc_field(100, "linear warm-up from lr 0 to `lr` over this many optimizer steps")
    max_steps: int = doc_field(1000, "length of the schedule in optimizer steps (cosine ends here)")
    final_lr_ratio: float = doc_field(0.1, "cosine decays to final_lr_ratio * lr at max_steps")
    grad_clip: float = doc_field(1.0, "clip the global gradient L2 norm to this value (0 = off)")
    global_batch: int = doc_field(
        32, "sequences per optimizer step over all processes (= micro_batch * grad-accumulation * world size)"
    )
    micro_batch: int = doc_field(8, "sequences per forward/backward on one process")
    seq_len: int | None = doc_field(None, "tokens per training sequence (None = model.train_len)")
    precision: str = doc_field(
        "auto",
        "auto (bf16 autocast on CUDA and on CPUs with native bf16, i.e. AVX-512 BF16 or AMX; "
        "fp32 on other CPUs), fp32 or bf16 (autocast)",
    )
    device: str = doc_field("auto", "auto (cuda:LOCAL_RANK when available, else cpu), cpu or cuda")
    compile: bool = doc_field(False, "wrap the model in torch.compile")
    loss_chunk: int = doc_field(
        0,
        "output layer + cross-entropy in chunks of this many tokens, recomputed in backward, so "
        "the whole logits never exist (memory; measured slower on CPU); 0 = off",
    )
    log_every: int = doc_field(10, "write a metrics line every this many steps")
    eval_every: int = doc_field(100, "validation loss on held-out windows every this many steps (0 = only at the end)")
    eval_windows: int = doc_field(32, "number of held-out validation windows per corpus and evaluation")
    save_every: int = doc_field(200, "write OUT/checkpoint and OUT/model every this many steps (and at the end)")
    metrics: list[str] = doc_field([], "extra metric backends besides metrics.jsonl: tensorboard, wandb")
    wandb_project: str = doc_field("fope", "Weights & Biases project (when 'wandb' is in metrics)")
    init_from: str | None = doc_field(
        None,
        "continual pre-training: start from the weights of this model directory "
        "or training run (new train_len / pe allowed)",
    )
    reset_optimizer: bool = doc_field(
        True,
        "with init_from: start AdamW from scratch (True) or load its moments "
        "from the source run's checkpoint (False); the LR schedule is this run's",
    )
    expand_fourier: str = doc_field(
        "expand",
        "with init_from and larger FoPE coefficient matrices: 'expand' (fresh "
        "Xavier + step-eye with the old block copied in) or 'zero' (new rows zero)",
    )


@dataclass
class ExperimentConfig:
    """One training run: the model, its data and how it is trained."""

    model: ModelConfig
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    # ----------------------------------------------------------------- derived values
    @property
    def seq_len(self) -> int:
        """Tokens per training sequence."""
        return self.train.seq_len or self.model.train_len

    # ----------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentConfig:
        """Build from a nested dict whose ``model`` section is complete (``data`` and ``train`` default). A dict
        that starts from a named preset (top-level ``preset: NAME``) is read by `fope.train.presets.load_config`."""
        if not isinstance(d, dict):
            raise ValueError(f"an experiment config must be a mapping, got {type(d).__name__}")
        d = {k: v for k, v in d.items() if v is not None}  # an empty YAML section reads as None
        if "preset" in d:
            raise ValueError(
                f"'preset: {d['preset']}' starts from a named preset: read this config with "
                "fope.train.load_config (as `fope train CONFIG.yaml` does)"
            )
        check_keys(d, ("model", "data", "train"), "")
        if "model" not in d:
            raise ValueError("experiment config needs a 'model' section (or a top-level 'preset: NAME')")
        cfg = cls(
            model=ModelConfig.from_dict(d["model"]),
            data=_section_from_dict(DataConfig, d.get("data") or {}, "data"),
            train=_section_from_dict(TrainConfig, d.get("train") or {}, "train"),
        )
        cfg.validate()
        return cfg

    def to_yaml(self, path: str | Path | None = None) -> str:
        """The resolved config as YAML text; also written to ``path`` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            from fope.utils import atomic_write

            atomic_write(path, text)
        return text

    @classmethod
    def from_yaml(cls, path: str | Path, *, complete: bool = False) -> ExperimentConfig:
        """Read a YAML experiment (see `from_dict`). ``complete=True`` (files fope wrote itself, e.g. a run's
        config.yaml) requires every key, so a truncated file is an error instead of silently taking defaults."""
        p, d = Path(path), read_yaml(path)
        if complete:
            missing = _missing_keys(d)
            if missing:
                raise ValueError(
                    f"{p}: incomplete (truncated?) config: missing {', '.join(missing[:5])}"
                    + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                )
        try:
            return cls.from_dict(d or {})
        except ValueError as e:
            raise ValueError(f"{p}: {e}") from e

    # ----------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise ValueError naming the first inconsistent value (the model config validates itself)."""
        t = self.train
        if t.micro_batch < 1:  # checked first: the divisibility check below divides by it
            raise ValueError(f"train.micro_batch must be >= 1, got {t.micro_batch}")
        finite = [
            (f"train.{k}", getattr(t, k))
            for k in ("lr", "beta1", "beta2", "eps", "weight_decay", "final_lr_ratio", "grad_clip")
        ] + [("data.retrieval_share", self.data.retrieval_share)]
        for key, value in finite:
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isfinite(value):
                raise ValueError(f"{key} must be a finite number, got {value}")
        for key, value in (("train.seed", t.seed), ("data.seed", self.data.seed)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
                flag = " (--seed)" if key == "train.seed" else ""
                shown = f"{value:.3g}" if isinstance(value, int) and abs(value) > 10**18 else repr(value)
                raise ValueError(f"{key}{flag} must be an integer in [0, 2**63 - 1], got {shown}")
        checks = [
            (t.lr > 0 and math.isfinite(t.lr), f"train.lr must be > 0, got {t.lr}"),
            (0 <= t.beta1 < 1 and 0 <= t.beta2 < 1, f"train.beta1/beta2 must be in [0, 1), got {t.beta1}, {t.beta2}"),
            (t.eps > 0, f"train.eps must be > 0, got {t.eps}"),
            (t.weight_decay >= 0, f"train.weight_decay must be >= 0, got {t.weight_decay}"),
            (
                1 <= t.max_steps <= MAX_STEPS,
                f"train.max_steps must be in [1, {MAX_STEPS:,}], got {t.max_steps:.3g}"
                if abs(t.max_steps) > 10**12
                else f"train.max_steps must be in [1, {MAX_STEPS:,}], got {t.max_steps}",
            ),
            (
                0 <= t.warmup_steps <= t.max_steps,
                f"train.warmup_steps must be in [0, max_steps={t.max_steps}], got {t.warmup_steps}",
            ),
            (0 <= t.final_lr_ratio <= 1, f"train.final_lr_ratio must be in [0, 1], got {t.final_lr_ratio}"),
            (t.grad_clip >= 0, f"train.grad_clip must be >= 0 (0 = off), got {t.grad_clip}"),
            (t.micro_batch >= 1, f"train.micro_batch must be >= 1, got {t.micro_batch}"),
            (
                t.global_batch >= 1 and t.global_batch % t.micro_batch == 0,
                f"train.global_batch={t.global_batch} must be a positive multiple of train.micro_batch={t.micro_batch}",
            ),
            (
                t.seq_len is None or (not isinstance(t.seq_len, bool) and t.seq_len >= 2),
                f"train.seq_len must be >= 2 or none (= model.train_len), got {t.seq_len}",
            ),
            (self.seq_len >= 2, f"sequence length must be >= 2, got {self.seq_len}"),
            (t.precision in PRECISIONS, f"train.precision must be one of {PRECISIONS}, got {t.precision!r}"),
            (t.device in ("auto", "cpu", "cuda"), f"train.device must be auto, cpu or cuda, got {t.device!r}"),
            (
                isinstance(t.loss_chunk, int) and t.loss_chunk >= 0,
                f"train.loss_chunk must be 0 (off) or a positive number of tokens, got {t.loss_chunk!r}",
            ),
            (
                t.log_every >= 1 and t.save_every >= 1 and t.eval_every >= 0,
                f"train.log_every/save_every must be >= 1 and eval_every >= 0, got "
                f"{t.log_every}/{t.save_every}/{t.eval_every}",
            ),
            (t.eval_windows >= 1, f"train.eval_windows must be >= 1, got {t.eval_windows}"),
            (
                all(m in METRIC_BACKENDS for m in t.metrics),
                f"train.metrics entries must be in {METRIC_BACKENDS}, got {t.metrics}",
            ),
            (
                t.expand_fourier in EXPAND_MODES,
                f"train.expand_fourier must be one of {EXPAND_MODES}, got {t.expand_fourier!r}",
            ),
            (
                self.data.max_tokens is None or self.data.max_tokens >= 1,
                f"data.max_tokens must be >= 1 or None, got {self.data.max_tokens}",
            ),
            (
                0 <= self.data.retrieval_share < 1,
                f"data.retrieval_share must be in [0, 1), got {self.data.retrieval_share}",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)


def read_yaml(path: str | Path) -> Any:
    """The YAML document in ``path``; FileNotFoundError / a one-line ValueError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {p}")
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{p}: not valid YAML: {str(e).splitlines()[0]}") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"{p}: not a YAML text file (byte {e.start} is not UTF-8)") from e
    except OSError as e:
        raise ValueError(f"{p}: cannot read it ({os.strerror(e.errno) if e.errno else e})") from e


# --------------------------------------------------------------------------- comparing configs
#: keys that may differ between a run and its resumption: schedule length, cadences, logging, where it runs
RESUME_MAY_CHANGE = (
    "train.max_steps",
    "train.log_every",
    "train.eval_every",
    "train.save_every",
    "train.metrics",
    "train.wandb_project",
    "train.device",
    "train.compile",
    "data.cache_dir",
)

#: what a resume may also change to recover from a NaN stop (the advice of that stop uses them): the peak learning
#: rate, the warm-up and the gradient clip. The change is said in one line and recorded (metrics.jsonl, config.yaml).
RESUME_RECOVERY = ("train.lr", "train.warmup_steps", "train.grad_clip")


def config_diff(a: dict, b: dict, *, ignore: typing.Iterable[str] = ()) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (value in a, value in b)}`` where two config dicts (``to_dict()``) differ (``model.pe_options``
    counts as one key)."""
    fa, fb, skip = flatten(a), flatten(b), set(ignore)
    return {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if k not in skip and fa.get(k) != fb.get(k)}


def _missing_keys(d: Any) -> list[str]:
    """Keys of a complete experiment dict that ``d`` lacks (every section, every field)."""
    if not isinstance(d, dict):
        return ["model", "data", "train"]
    missing = []
    for section, hints in _section_types().items():
        sec = d.get(section)
        if not isinstance(sec, dict):
            missing.append(section)
            continue
        missing += [f"{section}.{k}" for k in hints if not k.startswith("_") and k not in sec]
    return missing


# --------------------------------------------------------------------------- overrides
def apply_overrides(cfg: ExperimentConfig, overrides: list[str] | dict[str, Any]) -> ExperimentConfig:
    """Return a copy of ``cfg`` with dotted ``key=value`` overrides applied and validated.

    Values are strings coerced to the declared field type (``int``, ``float``, ``bool``, ``str``, ``X | None``
    with ``none``/``null``, lists as YAML ``[a, b]`` or ``a,b``, dicts as YAML). ``model.pe_options.NAME=V``
    sets one entry of a dict field (V parsed as YAML). A dict of already-typed values is accepted too.
    """
    items = list(overrides.items()) if isinstance(overrides, dict) else [split_override(o) for o in overrides]
    d = cfg.to_dict()
    for key, value in items:
        _set_dotted(d, key, value)
    out = ExperimentConfig(
        model=ModelConfig.from_dict(d["model"]),
        data=_section_from_dict(DataConfig, d["data"], "data"),
        train=_section_from_dict(TrainConfig, d["train"], "train"),
    )
    out.validate()
    return out


def _section_types() -> dict[str, dict[str, Any]]:
    return {
        "model": typing.get_type_hints(ModelConfig),
        "data": typing.get_type_hints(DataConfig),
        "train": typing.get_type_hints(TrainConfig),
    }


def all_keys() -> list[str]:
    """Every valid dotted key (``section.field``)."""
    return [f"{s}.{k}" for s, hints in _section_types().items() for k in hints if not k.startswith("_")]


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    types_ = _section_types()
    if len(parts) < 2 or parts[0] not in types_ or parts[1] not in types_[parts[0]]:
        raise ValueError(
            f"unknown config key {key!r}{did_you_mean(key, all_keys(), cutoff=0.5)}; "
            f"keys look like train.lr, model.pe, data.corpus"
        )
    section, name, rest = parts[0], parts[1], parts[2:]
    tp = types_[section][name]
    if rest:  # model.pe_options.sigma=0.3: one entry of a dict field
        if _origin(tp) is not dict:
            raise ValueError(f"config key {section}.{name} is not a mapping; cannot set {key!r}")
        target = d[section].setdefault(name, {}) or {}
        d[section][name] = target
        for p in rest[:-1]:
            target = target.setdefault(p, {})
        target[rest[-1]] = parse_value(value) if isinstance(value, str) else value
        return
    d[section][name] = coerce(value, tp, key) if isinstance(value, str) else value


def _origin(tp: Any) -> Any:
    return typing.get_origin(tp) or tp


# --------------------------------------------------------------------------- helpers
def check_keys(d: dict[str, Any], valid: typing.Iterable[str], prefix: str) -> None:
    valid = list(valid)
    for k in d:
        if k not in valid:
            hint = did_you_mean(f"{prefix}{k}", [prefix + v for v in valid], cutoff=0.5)
            raise ValueError(f"unknown config key {prefix + str(k)!r}{hint}")


def _section_from_dict(cls: type, d: dict[str, Any], name: str) -> Any:
    if not isinstance(d, dict):
        raise ValueError(f"config section {name!r} must be a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    check_keys(d, hints, f"{name}.")
    kwargs = {
        k: (coerce(v, hints[k], f"{name}.{k}") if isinstance(v, str) and hints[k] is not str else v)
        for k, v in d.items()
    }
    for k, v in kwargs.items():
        _check_type(v, hints[k], f"{name}.{k}")
    return cls(**kwargs)


def _check_type(v: Any, tp: Any, key: str) -> None:
    """Reject YAML values of the wrong type (e.g. a list where an int is expected)."""
    allowed = typing.get_args(tp) if _origin(tp) in (typing.Union, types.UnionType) else (tp,)
    base = tuple(_origin(a) for a in allowed)
    if float in base:
        base += (int,)
    if isinstance(v, bool) and bool not in base:
        raise ValueError(f"{key}: expected {tp}, got {v!r}")
    if not isinstance(v, base):
        raise ValueError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {v!r}")


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'train': {'lr': 1}} -> {'train.lr': 1}; dict-typed fields (pe_options) are kept whole."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key.count(".") < 1:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def fields_table() -> str:
    """Markdown table of every data.* and train.* field with default and documentation (for docs/training.md;
    model.* fields are documented on fope.model.ModelConfig)."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for section, cls in (("data", DataConfig), ("train", TrainConfig)):
        for name, (default, doc) in field_docs(cls).items():
            rows.append(f"| `{section}.{name}` | `{default!r}` | {doc} |")
    return "\n".join(rows) + "\n"
