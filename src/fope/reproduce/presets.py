"""Grid presets of `fope reproduce`: the scale at which the paper's experiment grid is run.

A `GridPreset` fixes everything the grid needs besides the experiments themselves: the base training preset of
`fope.train` (model size, optimiser, data), the training length L, the budget, the number of seeds, the evaluated
lengths and the ablation values. `fope.reproduce.experiments.build_grid` turns a preset into the list of runs.

CPU presets (run here, sized from measured wall times on 2 CPU cores; see docs/reproduce.md):
    cpu-quick   the six-PE main comparison (1 seed) at the budget where RoPE degrades beyond L, 8-14 min
    cpu         the same budget, the whole grid: 3 seeds, extension, ablations, passkey task, Table 2, about 1 h

GPU presets (one GPU; `--nproc N` runs each training run under torchrun on N GPUs):
    gpu-quick   the six-PE main comparison at 50.3M parameters / 13.1M tokens per run, FS / CF ablations, passkey
                task, 1 seed, <= 15 min on one H200-class GPU
    gpu         3 seeds, the extension arms, every ablation, passkey task, <= 3 h

Paper presets (GPU, `torchrun`; defined, not run here): `60M`, `180M`, `1.2B`: the paper's Books setting at
L = 512 (docs/paper.md §4.1-§4.3, Fig. 5 / Fig. 6), evaluated on the Books validation split and on C4.

Every field can be changed from the command line (`fope reproduce --preset cpu seeds=5 steps=2000`), see
`apply_grid_overrides`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from fope.pos import KINDS as PE_KINDS  # every registered position-encoding kind (a live view)
from fope.utils import coerce, did_you_mean, doc_field, parse_overrides

#: the encodings of the paper's main comparison (Fig. 1), named here so a newly registered kind joins no grid by
#: surprise: a preset lists the kinds it runs
MAIN_PES: tuple[str, ...] = ("rope", "fope", "alibi", "nope", "kerple", "fire")
#: p of p-RoPE in the clip-only comparison: the cpu grid (head_dim 32, L = 256) keeps 7 of 16 frequencies above
#: FoPE's clip floor, and p = 7/16 keeps exactly those (tests/pos/test_prope.py)
CLIP_ONLY_PROPE_P = 7 / 16
#: the clip-only variants of the main comparison (RoPE with FoPE's clip floor, no Fourier series): p-RoPE with that
#: p, HoPE, and FoPE with σ = 0 (the floor plus the step-eye mix without noise); the `cpu-clip` preset runs them
CLIP_ONLY: tuple[str, ...] = ("prope", "hope", "fope_sigma0")
#: the variants of `CLIP_ONLY` that are not a kind with its grid defaults: name -> {"pe": kind, option: value}
CLIP_ONLY_VARIANTS: dict[str, dict[str, Any]] = {
    "prope": {"pe": "prope", "p": CLIP_ONLY_PROPE_P},
    "fope_sigma0": {"pe": "fope", "sigma": 0.0},
}

EXPERIMENTS = ("main", "extension", "ablations", "passkey", "table2")
ABLATION_GROUPS = ("components", "sigma", "freq_dim", "shape")


@dataclass(frozen=True)
class GridPreset:
    """The scale of one reproduction grid (every field documented where it is defined: `fope.utils.doc_field`)."""

    name: str = doc_field("custom", "preset name (recorded in results.json)")
    description: str = doc_field("", "one line shown in the report")
    base: str = doc_field("cpu-tiny", "fope.train preset every run starts from (model size, optimiser, data)")
    train_len: int = doc_field(128, "training length L of the main runs (extension runs train at 2L)")
    steps: int = doc_field(300, "optimizer steps of every main and ablation run")
    warmup_steps: int = doc_field(30, "linear warm-up steps of every main and ablation run")
    global_batch: int = doc_field(16, "sequences per optimizer step at length L")
    micro_batch: int = doc_field(16, "sequences per forward/backward on one process")
    lr: float = doc_field(2e-3, "peak AdamW learning rate (cosine to 0.1x)")
    vocab_size: int = doc_field(2048, "vocabulary of the byte-level BPE trained on the training corpus (CPU presets)")
    train_overrides: dict = doc_field({}, "extra dotted fope.train overrides applied to every run")
    pes: tuple[str, ...] = doc_field(MAIN_PES, "position encodings of the main comparison (Fig. 1)")
    pe_variants: dict = doc_field(
        {},
        "named variants pes and retrieval_pes may list beside the kinds: name -> {'pe': kind, option: value, ...} "
        "(e.g. {'fope_sigma0': {'pe': 'fope', 'sigma': 0.0}}); the options replace the kind's grid defaults",
    )
    seeds: int = doc_field(3, "seeds of the main comparison (mean +- std over seeds)")
    sigma: float = doc_field(
        0.3,
        "FoPE coefficient gain sigma of every FoPE run outside the sigma sweep "
        "(Xavier-normal gain, as in the released code; docs/paper.md §7.1)",
    )
    fope_init: str = doc_field(
        "",
        "FoPE coefficient init of every FoPE run ('' = the release's eye_xavier_norm; "
        "'eye_norm' reads sigma literally as the noise std, the paper's N(0, sigma))",
    )
    sigmas: tuple[float, ...] = doc_field((0.0, 0.1, 0.3, 0.5), "sigma sweep of the ablation (Fig. 6b)")
    freq_dims: tuple[int, ...] = doc_field((16, 32, 64, 128), "frequency-grid sizes D of the ablation (Fig. 6c)")
    length_factors: tuple[float, ...] = doc_field((0.5, 1, 2, 4, 8, 16), "perplexity lengths as multiples of L")
    passkey_factors: tuple[int, ...] = doc_field((1, 2, 4, 8, 16), "passkey lengths as multiples of L")
    passkey_trials: int = doc_field(
        40,
        "passkey trials per length: passkey-task and extension runs (and main runs unless main_passkey_trials is set)",
    )
    main_passkey_trials: int = doc_field(
        -1,
        "passkey trials per length of the main runs (zero-shot, before any retrieval "
        "training); -1: passkey_trials, 0: skip",
    )
    ablation_passkey_trials: int = doc_field(20, "passkey trials per length, ablation runs")
    eval_tokens: int = doc_field(32768, "tokens scored per length by the perplexity evaluation (at least one chunk)")
    eval_batch_tokens: int = doc_field(16384, "tokens per perplexity forward batch (memory bound)")
    other_corpus: str = doc_field("wiki", "different-distribution evaluation corpus (the role of C4 in Fig. 5)")
    extension_steps: int = doc_field(100, "optimizer steps of each length-extension run (at 2L, half the batch)")
    extension_warmup: int = doc_field(10, "warm-up steps of each length-extension run (fresh schedule, reset AdamW)")
    yarn_factor: float = doc_field(16.0, "YaRN scale s of the extension arms (the authors' released setting is 16)")
    retrieval_share: float = doc_field(
        0.6,
        "share (by tokens) of synthetic in-length key-retrieval documents in the "
        "passkey experiment's fine-tuning data (the rest is the training corpus)",
    )
    retrieval_pes: tuple[str, ...] = doc_field(
        ("rope", "fope", "alibi"), "position encodings of the passkey experiment"
    )
    passkey_steps: int = doc_field(
        600,
        "optimizer steps of each passkey run: a fine-tune of the seed-0 main run (at L, "
        "fresh AdamW and warm-up, same batch and peak lr), or with passkey_scratch a model "
        "trained from scratch",
    )
    passkey_scratch: dict | None = doc_field(
        None,
        "None: the passkey runs fine-tune the seed-0 main runs; a dict of dotted "
        "fope.train overrides (e.g. {'model.n_layers': 4}): the passkey runs are "
        "dedicated models of the base config with these overrides, trained from "
        "scratch on the retrieval mixture (the 2-layer CPU models do not learn to "
        "copy the key's digits in order, docs/reproduce.md)",
    )
    experiments: tuple[str, ...] = doc_field(
        EXPERIMENTS, "experiments to run: main, extension, ablations, passkey, table2"
    )
    table2_overrides: dict = doc_field(
        {},
        "dotted fope.train overrides of the Table 2 arms only, e.g. a smaller model "
        "(the paper's Table 2 models are ~20M parameters); {}: the main runs' model, "
        "whose seed-0 runs then double as the arms without QK norm",
    )
    far_attention: bool = doc_field(
        True,
        "run the far-attention decomposition (fope.analysis.far) on every RoPE and FoPE "
        "main run for the report's Mechanism section (about 30 s per cpu-tiny model)",
    )
    ablation_groups: tuple[str, ...] = doc_field(
        ABLATION_GROUPS, "ablation groups to run: components (FS / CF), sigma, freq_dim, shape"
    )
    nproc: int = doc_field(1, "processes per training run; > 1 launches each run with torchrun (GPU presets)")
    jobs: int = doc_field(
        1, "runs trained/evaluated at the same time, each in its own process (CPU presets: 2 on 2 cores)"
    )
    threads: int = doc_field(
        0, "torch threads per run (0: torch's default); 1 thread x 2 jobs uses 2 cores best for these small models"
    )
    device: str = doc_field("auto", "device of training and evaluation: auto, cpu or cuda")

    def __post_init__(self) -> None:
        self.validate()

    @property
    def ppl_lengths(self) -> list[int]:
        return [_length(f, self.train_len) for f in self.length_factors]

    @property
    def passkey_lengths(self) -> list[int]:
        return [_length(f, self.train_len) for f in self.passkey_factors]

    def validate(self) -> None:
        """Raise ValueError naming the first bad value."""
        for name in (
            "train_len",
            "steps",
            "global_batch",
            "micro_batch",
            "vocab_size",
            "seeds",
            "passkey_trials",
            "ablation_passkey_trials",
            "eval_tokens",
            "eval_batch_tokens",
            "extension_steps",
            "nproc",
            "jobs",
            "passkey_steps",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"grid preset field {name} must be a positive int, got {v!r}")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps must be in [0, steps={self.steps}], got {self.warmup_steps}")
        if not 0 <= self.extension_warmup <= self.extension_steps:
            raise ValueError(
                f"extension_warmup must be in [0, extension_steps={self.extension_steps}], got {self.extension_warmup}"
            )
        if self.global_batch % self.micro_batch:
            raise ValueError(f"global_batch={self.global_batch} must be a multiple of micro_batch={self.micro_batch}")
        if not isinstance(self.pe_variants, dict):
            raise ValueError(f"pe_variants must be a dict name -> {{'pe': kind, ...}}, got {self.pe_variants!r}")
        for name, variant in self.pe_variants.items():
            if not isinstance(variant, dict) or variant.get("pe") not in PE_KINDS:
                raise ValueError(
                    f"pe_variants[{name!r}] must be a dict with 'pe' one of {list(PE_KINDS)}, got {variant!r}"
                )
        for pe in (*self.pes, *self.retrieval_pes):
            if pe not in PE_KINDS and pe not in self.pe_variants:
                raise ValueError(
                    f"unknown position encoding {pe!r} in the grid preset; choose from {list(PE_KINDS)} "
                    f"or a name of pe_variants {list(self.pe_variants)}"
                )
        for e in self.experiments:
            if e not in EXPERIMENTS:
                raise ValueError(f"unknown experiment {e!r}{did_you_mean(e, EXPERIMENTS)}; choose from {EXPERIMENTS}")
        for g in self.ablation_groups:
            if g not in ABLATION_GROUPS:
                raise ValueError(
                    f"unknown ablation group {g!r}{did_you_mean(g, ABLATION_GROUPS)}; choose from {ABLATION_GROUPS}"
                )
        if 1 not in self.length_factors:
            raise ValueError(f"length_factors must contain 1 (the training length), got {self.length_factors}")
        for f in (*self.length_factors, *self.passkey_factors):
            _length(f, self.train_len)
        if any(s < 0 for s in self.sigmas) or self.sigma < 0:
            raise ValueError(f"sigma values must be >= 0, got {self.sigma} and {self.sigmas}")
        if not 0 <= self.retrieval_share < 1:
            raise ValueError(f"retrieval_share must be in [0, 1), got {self.retrieval_share}")
        if self.yarn_factor < 1:
            raise ValueError(f"yarn_factor must be >= 1, got {self.yarn_factor}")
        if self.passkey_scratch is not None and (
            not isinstance(self.passkey_scratch, dict) or not all("." in str(k) for k in self.passkey_scratch)
        ):
            raise ValueError(
                f"passkey_scratch must be None or a dict of dotted fope.train overrides such as "
                f"{{'model.n_layers': 4}}, got {self.passkey_scratch!r}"
            )
        if self.main_passkey_trials < -1:
            raise ValueError(
                f"main_passkey_trials must be -1 (= passkey_trials), 0 or positive, got {self.main_passkey_trials}"
            )
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 0:
            raise ValueError(f"grid preset field threads must be an int >= 0, got {self.threads!r}")
        if self.nproc > 1 and self.jobs > 1:
            raise ValueError(f"jobs={self.jobs} with nproc={self.nproc}: torchrun runs use every device; set jobs=1")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if not isinstance(self.table2_overrides, dict) or any("." not in str(k) for k in self.table2_overrides):
            raise ValueError(
                f"table2_overrides must map dotted fope.train keys (model.d_model, ...) to values, "
                f"got {self.table2_overrides!r}"
            )
        if "extension" in self.experiments and not {"rope", "fope"} <= set(self.pes):
            raise ValueError("the extension experiment continues the rope and fope main runs: keep both in pes")

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


def _length(factor: float, train_len: int) -> int:
    length = factor * train_len
    if length < 2 or abs(length - round(length)) > 1e-9:
        raise ValueError(f"length factor {factor} of L={train_len} is not a whole number of tokens >= 2")
    return round(length)


# --------------------------------------------------------------------------- the presets
# The budget of both CPU presets, chosen by the pilot sweep of docs/reproduce.md: at L = 256 and 700 steps x 16
# sequences (2.9M tokens) RoPE's ppl(16L)/ppl(L) is past 1.5 while FoPE's stays near 1.2; at L = 128 FoPE degrades
# more (1.26-1.31), and below ~2M tokens RoPE does not degrade (1.17 at 0.8M). Precision is `auto`: bf16 autocast
# on a CPU with native bf16 (AVX-512 BF16 / AMX), fp32 elsewhere, where emulated bf16 is ~8x slower than fp32.
CPU_DEMO: dict[str, Any] = dict(
    base="cpu-tiny",
    train_len=256,
    steps=700,
    warmup_steps=70,
    global_batch=16,
    micro_batch=16,
    lr=4e-3,
    train_overrides={"train.precision": "auto"},
    length_factors=(0.5, 1, 2, 4, 8, 16),
    passkey_factors=(1, 2, 4, 8, 16),
    eval_tokens=32768,
    main_passkey_trials=0,
    passkey_trials=40,
    ablation_passkey_trials=5,
    passkey_steps=3000,
    passkey_scratch={"model.n_layers": 4, "train.lr": 3e-3, "train.warmup_steps": 300},
    retrieval_share=0.6,
    jobs=2,
    threads=1,
)


#: the Table 2 models of the `gpu` preset: ~20M parameters (d_model 384, 4 layers, 6 heads of 64, the 16,384
#: vocabulary), the size the paper gives for Table 2 without its shape (docs/paper.md §7.15)
TABLE2_20M: dict[str, Any] = {"model.d_model": 384, "model.n_layers": 4, "model.n_heads": 6}


def _paper(size: str, sigma: float, micro_batch: int, head_dim: int) -> GridPreset:
    """The paper's Books setting at L = 512 for one model size (docs/paper.md §4.1-§4.3, §4.6, §4.8)."""
    return GridPreset(
        name=size,
        description=f"paper scale: {size}, Books (PG-19) at L=512, evaluated on Books and C4; GPU + torchrun",
        base=f"books-512-{size}-rope",
        train_len=512,
        steps=10_025,
        warmup_steps=10_000,
        global_batch=1024,
        micro_batch=micro_batch,
        lr=6e-4,
        vocab_size=50304,
        pes=MAIN_PES,
        seeds=3,
        sigma=sigma,
        sigmas=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
        freq_dims=(head_dim, 2 * head_dim, 4 * head_dim),
        length_factors=(0.25, 0.5, 1, 2, 4, 8, 16),
        passkey_factors=(1, 2, 4, 8, 16),
        passkey_trials=1000,
        ablation_passkey_trials=1000,
        eval_tokens=4_194_304,
        eval_batch_tokens=65536,
        other_corpus="c4",
        extension_steps=1907,
        extension_warmup=100,
        yarn_factor=16.0,
        retrieval_share=0.0,
        retrieval_pes=(),
        experiments=("main", "extension", "ablations"),
        nproc=4,
        device="cuda",
    )


GRID_PRESETS: dict[str, GridPreset] = {
    "cpu-quick": GridPreset(
        name="cpu-quick",
        description="the six-PE main comparison at the budget where RoPE degrades beyond L, 1 seed "
        "(8 min on 2 CPU cores with native bf16, 14 min in fp32 on AVX2); the other "
        "experiments are in `cpu`",
        **CPU_DEMO,
        seeds=1,
        experiments=("main",),
        far_attention=False,
    ),
    "cpu": GridPreset(
        name="cpu",
        description="the whole grid at the cpu-quick budget: 3 seeds of the main comparison, extension, "
        "every ablation, the passkey task, Table 2 (about 1 h on 2 idle CPU cores)",
        **CPU_DEMO,
        seeds=3,
        freq_dims=(32, 64, 128),
        extension_steps=100,
        extension_warmup=10,
    ),
    "cpu-clip": GridPreset(
        name="cpu-clip",
        description="the clip-only comparison at the cpu budget: 3 seeds of RoPE, FoPE and the clip-only variants "
        "(p-RoPE keeping FoPE's floor frequencies, HoPE, FoPE with sigma 0) at L = 256 to 16L; add the passkey task "
        "of the best clip-only variant with --only passkey retrieval_pes=fope,NAME (docs/reproduce.md)",
        **{**CPU_DEMO, "retrieval_pes": ("fope", "hope")},
        seeds=3,
        pes=("rope", "fope", *CLIP_ONLY),
        pe_variants=CLIP_ONLY_VARIANTS,
        experiments=("main",),
        far_attention=False,
    ),
    "gpu-quick": GridPreset(
        name="gpu-quick",
        description="one GPU, <= 15 min: the six-PE main comparison at 50.3M parameters and 13.1M "
        "tokens per run, the FS / CF ablation arms and the passkey task (1 seed)",
        base="gpu-60M",
        train_len=512,
        steps=400,
        warmup_steps=40,
        global_batch=64,
        micro_batch=64,
        lr=1e-3,
        vocab_size=16384,
        seeds=1,
        length_factors=(0.5, 1, 2, 4, 8, 16),
        passkey_factors=(1, 2, 4, 8, 16),
        passkey_trials=50,
        ablation_passkey_trials=20,
        eval_tokens=131072,
        eval_batch_tokens=65536,
        experiments=("main", "ablations", "passkey"),
        ablation_groups=("components",),
        passkey_steps=150,
        retrieval_share=0.5,
        extension_steps=100,
        extension_warmup=10,
        train_overrides={"train.precision": "bf16"},
        device="cuda",
    ),
    "gpu": GridPreset(
        name="gpu",
        description="one GPU, <= 3 h: 3 seeds of the six-PE main comparison (50.3M parameters, 13.1M "
        "tokens per run), the four extension arms, every ablation, the passkey task",
        base="gpu-60M",
        train_len=512,
        steps=400,
        warmup_steps=40,
        global_batch=64,
        micro_batch=64,
        lr=1e-3,
        vocab_size=16384,
        seeds=3,
        sigmas=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
        freq_dims=(64, 128, 256),
        length_factors=(0.5, 1, 2, 4, 8, 16),
        passkey_factors=(1, 2, 4, 8, 16),
        passkey_trials=100,
        ablation_passkey_trials=50,
        eval_tokens=262144,
        eval_batch_tokens=65536,
        passkey_steps=150,
        retrieval_share=0.5,
        extension_steps=100,
        extension_warmup=10,
        train_overrides={"train.precision": "bf16"},
        table2_overrides=TABLE2_20M,
        device="cuda",
    ),
    "60M": _paper("60M", 0.3, 64, 64),
    "180M": _paper("180M", 0.4, 32, 128),
    "1.2B": _paper("1.2B", 0.6, 8, 128),
}


def get_preset(name: str) -> GridPreset:
    """The grid preset called ``name`` (ValueError naming the closest one if unknown)."""
    if name not in GRID_PRESETS:
        raise ValueError(
            f"unknown reproduce preset {name!r}{did_you_mean(name, GRID_PRESETS)}; choose one of {list(GRID_PRESETS)}"
        )
    return GRID_PRESETS[name]


#: grid preset fields that set a fope.train key of every run (fope.reproduce.runconfig.base_overrides): two spellings
#: of one knob, so a command may give only one of them
GRID_TRAIN_KEYS: dict[str, str] = {
    "train_len": "model.train_len",
    "steps": "train.max_steps",
    "warmup_steps": "train.warmup_steps",
    "global_batch": "train.global_batch",
    "micro_batch": "train.micro_batch",
    "lr": "train.lr",
    "device": "train.device",
    "vocab_size": "model.vocab_size",
}


def apply_grid_overrides(preset: GridPreset, overrides: dict[str, str] | list[str]) -> GridPreset:
    """A copy of ``preset`` with fields set from ``KEY=VALUE`` strings (tuples as ``a,b,c``).

    Dotted keys (``train.lr=1e-3``) are fope.train overrides and go into ``train_overrides``. A field and the
    fope.train key it sets (``lr=`` and ``train.lr=``, `GRID_TRAIN_KEYS`) given together are refused, naming both.
    """
    items = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides)
    for field, key in GRID_TRAIN_KEYS.items():
        if field in items and key in items:
            raise ValueError(
                f"{field}={items[field]} and {key}={items[key]} set the same knob ({key} of every run); give one of them"
            )
    hints = typing.get_type_hints(GridPreset)
    changes: dict[str, Any] = {}
    train_overrides = dict(preset.train_overrides)
    for key, text in items.items():
        if "." in key:
            train_overrides[key] = text
            continue
        if key not in hints or key == "name":
            raise ValueError(f"unknown grid preset field {key!r}{did_you_mean(key, hints)}")
        changes[key] = coerce(text, hints[key], f"grid preset field {key}") if isinstance(text, str) else text
    if train_overrides != preset.train_overrides:
        changes["train_overrides"] = train_overrides
    return dataclasses.replace(preset, **changes)
