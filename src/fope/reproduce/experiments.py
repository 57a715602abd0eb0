"""The paper's experiment grid as data: which training runs exist and which cells of which figure they fill.

A grid is a list of `Run`s (one training run each, plus its evaluations) and a list of `Cell`s (one arm of one
experiment: a name and the runs, e.g. the seeds, whose results it aggregates). Runs are de-duplicated by their
resolved overrides: the σ = 0.3 arm of the σ sweep *is* the seed-0 FoPE run of the main comparison, the σ = 0 arm
*is* "FoPE without the Fourier series", so nothing is trained twice.

Experiments (docs/paper.md §4.4-§4.8, §6.7):
    main        Fig. 1 / Fig. 5: every position encoding at training length L, `seeds` seeds; perplexity from L/2 to
                16L on the training distribution and on the other corpus; passkey from L to 16L.
    extension   Fig. 4: from the seed-0 RoPE-L and FoPE-L runs, continue at 2L with YaRN (the authors' factor 16,
                β 32/1, no attention temperature) or with FoPE (coefficient expansion from FoPE, fresh coefficients from
                RoPE): four arms, plus the two un-extended references.
    ablations   Fig. 6: FoPE without the Fourier series (σ = 0, clip on), without the floor clip, without both;
                the σ sweep; the frequency-grid sweep D; double head dim vs double heads vs double layers.
    passkey     a passkey task small models can learn: the seed-0 main runs fine-tuned at L on a mixture of the
                training corpus and synthetic key-retrieval documents shorter than L (the test's frame, filler unlike
                the test's), then evaluated from L to 16L with the unchanged zero-shot protocol.
    table2      Table 2: RoPE, RoPE-A (frequencies rounded up to whole cycles within L) and NoPE, each without and
                with QK norm (q, k standardised before the rotation); loss from L to 16L. The two arms without QK
                norm are the seed-0 main runs of rope and nope.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from fope.pos.scaling import authors_yarn

from .presets import GridPreset

# names of fope.pos FoPE options used by the ablations
FOPE_SIGMA = "sigma"
FOPE_CLIP = "clip_floor"
FOPE_FREQ_DIM = "freq_dim"


@dataclass(frozen=True)
class Run:
    """One training run of the grid.

    Attributes:
        name: unique path-like name, e.g. ``main/fope/seed1``; the run directory is ``OUT/runs/<name>``.
        overrides: dotted fope.train overrides (typed values) applied on top of the preset's base config.
        init_from: name of the run whose final model this one continues from (continual pre-training), or None.
        passkey_trials: passkey trials per length of this run's evaluation (0: no passkey evaluation).
        cost: relative cost (1 = training one main run), training plus evaluation, for the time estimate.
    """

    name: str
    overrides: dict = field(hash=False)
    init_from: str | None = None
    passkey_trials: int = 10
    cost: float = 1.0

    @property
    def key(self) -> str:
        """Identity of the trained model: equal keys mean the same run."""
        return json.dumps({"o": self.overrides, "i": self.init_from}, sort_keys=True, default=str)


@dataclass(frozen=True)
class EvalRequest:
    """One evaluation of one run: ``kind`` names its result file, ``settings`` fully determine it."""

    kind: str
    settings: dict


@dataclass(frozen=True)
class Cell:
    """One arm of one experiment: ``experiment/group/arm`` aggregating the results of ``runs`` (seeds)."""

    experiment: str
    group: str
    arm: str
    runs: tuple[str, ...]
    info: dict = field(default_factory=dict, hash=False)


@dataclass
class Grid:
    """Runs in execution order (a run's ``init_from`` always comes earlier) and the cells they fill."""

    preset: GridPreset
    runs: list[Run]
    cells: list[Cell]

    def run(self, name: str) -> Run:
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(f"no run named {name!r} in the grid")

    def cells_of(self, experiment: str, group: str | None = None) -> list[Cell]:
        return [c for c in self.cells if c.experiment == experiment and (group is None or c.group == group)]


class _Builder:
    def __init__(self, preset: GridPreset):
        self.p = preset
        self.runs: list[Run] = []
        self.by_key: dict[str, str] = {}
        self.cells: list[Cell] = []

    def add_run(
        self, name: str, overrides: dict[str, Any], *, init_from: str | None = None, trials: int, cost: float
    ) -> str:
        pe = str(overrides.get("model.pe", "rope"))
        run = Run(
            name=name,
            overrides=overrides,
            init_from=init_from,
            passkey_trials=trials,
            cost=run_cost(self.p, cost, trials, pe=pe),
        )
        if run.key in self.by_key:  # the same model already exists under another name
            existing = self.by_key[run.key]
            i = next(i for i, r in enumerate(self.runs) if r.name == existing)
            if trials > self.runs[i].passkey_trials:  # evaluate it as thoroughly as its most demanding use
                self.runs[i] = dataclasses.replace(
                    self.runs[i], passkey_trials=trials, cost=run_cost(self.p, cost, trials, pe=pe)
                )
            return existing
        if any(r.name == name for r in self.runs):
            raise ValueError(f"two different runs are named {name!r}")
        self.runs.append(run)
        self.by_key[run.key] = name
        return name

    def cell(self, experiment: str, group: str, arm: str, runs: list[str], **info: Any) -> None:
        self.cells.append(Cell(experiment, group, arm, tuple(runs), info))


# Evaluation cost of the additive-bias encodings relative to RoPE (perplexity, passkey generation), from the
# per-run evaluation times of the committed `cpu` run (docs/results/cpu/results.json: ALiBi and KERPLE ~2x RoPE's
# evaluation time, FIRE ~6x, dominated by its decoding); only the time estimate uses them.
EVAL_COST = {"alibi": (1.5, 2.0), "kerple": (1.5, 2.0), "fire": (2.0, 6.0)}


def run_cost(preset: GridPreset, train_units: float, trials: int, *, pe: str = "rope") -> float:
    """Relative cost of a run (1 = training a main run) for the time estimate: training + evaluation.

    A forward pass costs about a third of a training step per token; perplexity scores ``eval_tokens`` per length
    on two corpora; a passkey trial runs its prompt twice (generation, likelihood) at every passkey length.
    """
    train_tokens = preset.steps * preset.global_batch * preset.train_len
    ppl_f, pk_f = EVAL_COST.get(pe, (1.0, 1.0))
    ppl = ppl_f * 2 * len(preset.ppl_lengths) * preset.eval_tokens / 3
    passkey = pk_f * trials * 2 * sum(preset.passkey_lengths) / 3
    return train_units + (ppl + passkey) / train_tokens


def pe_options(pe: str, preset: GridPreset, **fope: Any) -> dict[str, Any]:
    """The ``model.pe_options`` of a run: FoPE gets the preset's σ unless given; other kinds use their defaults."""
    if pe != "fope":
        return {}
    out: dict[str, Any] = {FOPE_SIGMA: float(preset.sigma)}
    if preset.fope_init:
        out["init"] = preset.fope_init
    out.update(fope)
    return out


def _arm(pe: str, preset: GridPreset, seed: int, **fope: Any) -> dict[str, Any]:
    if pe in preset.pe_variants:  # a named variant: its kind, the kind's grid defaults updated by its options
        variant = dict(preset.pe_variants[pe])
        kind = variant.pop("pe")
        return {"model.pe": kind, "model.pe_options": {**pe_options(kind, preset), **variant}, "train.seed": seed}
    return {"model.pe": pe, "model.pe_options": pe_options(pe, preset, **fope), "train.seed": seed}


def build_grid(preset: GridPreset, *, head_dim: int, n_heads: int, n_layers: int) -> Grid:
    """All runs and cells of the grid for ``preset``.

    Args:
        preset: the grid preset.
        head_dim, n_heads, n_layers: the base model's shape (for the doubled-shape ablation and the D sweep).
    """
    b = _Builder(preset)
    p = preset
    ex = set(p.experiments)
    main_trials = p.passkey_trials if p.main_passkey_trials < 0 else p.main_passkey_trials
    # ------------------------------------------------------------------ main comparison (Fig. 1, Fig. 5)
    # Order: seed 0 of every encoding, then the other experiments, then the other seeds, so that a grid stopped
    # early (or still running) already covers every figure with one seed.
    needed = [pe for pe in ("rope", "fope") if ex & {"extension", "ablations"}]
    needed += [
        pe
        for pe in p.retrieval_pes
        if "passkey" in ex and p.retrieval_share > 0 and p.passkey_scratch is None and pe not in needed
    ]
    main_pes = list(p.pes) + [pe for pe in needed if pe not in p.pes] if "main" in ex else needed
    names: dict[tuple[str, int], str] = {}
    for pe in main_pes:
        names[pe, 0] = b.add_run(f"main/{pe}/seed0", _arm(pe, p, 0), trials=main_trials, cost=1.0)
    # ------------------------------------------------------------------ length extension (Fig. 4)
    if "extension" in ex:
        _extension(b, names)
    # ------------------------------------------------------------------ ablations (Fig. 6)
    if "ablations" in ex:
        _ablations(b, names, head_dim=head_dim, n_heads=n_heads, n_layers=n_layers)
    # ------------------------------------------------------------------ passkey variant (CPU scale)
    if "passkey" in ex and p.retrieval_share > 0:
        _passkey(b, names, n_layers=n_layers)
    # ------------------------------------------------------------------ Table 2 (RoPE / RoPE-A / NoPE x QK norm)
    if "table2" in ex:
        _table2(b)
    # ------------------------------------------------------------------ the other seeds of the main comparison
    if "main" in ex:
        for seed in range(1, p.seeds):
            for pe in p.pes:
                names[pe, seed] = b.add_run(f"main/{pe}/seed{seed}", _arm(pe, p, seed), trials=main_trials, cost=1.0)
        b.cells[:0] = [Cell("main", "pe", pe, tuple(names[pe, s] for s in range(p.seeds)), {"pe": pe}) for pe in p.pes]
    return Grid(preset=p, runs=b.runs, cells=b.cells)


def yarn_scaling(preset: GridPreset) -> dict[str, Any]:
    """The authors' YaRN setting (fope.pos.scaling.authors_yarn) for the extension: original length L, factor
    ``preset.yarn_factor``."""
    return authors_yarn(preset.train_len, factor=preset.yarn_factor)


def _extension(b: _Builder, names: dict[tuple[str, int], str]) -> None:
    p = b.p
    two_l = 2 * p.train_len
    batch = max(p.global_batch // 2, 1)  # same tokens per step at 2L (the configs halve the batch)
    micro = max(min(p.micro_batch, batch), 1)
    while batch % micro:
        micro -= 1
    common = {
        "model.train_len": two_l,
        "train.max_steps": p.extension_steps,
        "train.warmup_steps": p.extension_warmup,
        "train.global_batch": batch,
        "train.micro_batch": micro,
        "train.reset_optimizer": True,
        "train.seed": 0,
    }
    cost = p.extension_steps / p.steps  # same tokens per step as the main runs
    for src in ("rope", "fope"):
        b.cell("extension", "arm", src, [names[src, 0]], source=src, method=None, train_len=p.train_len)
    arms = [
        ("rope", "yarn", {"model.pe": "rope", "model.pe_options": {"scaling": yarn_scaling(p)}}),
        ("rope", "fope", {"model.pe": "fope", "model.pe_options": pe_options("fope", p)}),
        (
            "fope",
            "yarn",
            {
                "model.pe": "fope",
                "model.pe_options": pe_options("fope", p, scaling=yarn_scaling(p)),
                "train.expand_fourier": "zero",
            },
        ),
        (
            "fope",
            "fope",
            {"model.pe": "fope", "model.pe_options": pe_options("fope", p), "train.expand_fourier": "expand"},
        ),
    ]
    for src, method, ov in arms:
        arm = f"{src}+{method}"
        name = b.add_run(
            f"extension/{arm}", {**common, **ov}, init_from=names[src, 0], trials=p.passkey_trials, cost=cost
        )
        b.cell("extension", "arm", arm, [name], source=src, method=method, train_len=two_l)


def _passkey(b: _Builder, names: dict[tuple[str, int], str], *, n_layers: int) -> None:
    """Fine-tune each seed-0 main run at L on a retrieval mixture (or, with ``passkey_scratch``, train a dedicated
    model from scratch on it); evaluate passkey zero-shot from L to 16L."""
    p = b.p
    common = {
        "train.max_steps": p.passkey_steps,
        "train.warmup_steps": max(1, p.passkey_steps // 10),
        "train.reset_optimizer": True,
        "data.retrieval_share": float(p.retrieval_share),
    }
    scratch = p.passkey_scratch
    cost = p.passkey_steps / p.steps
    if scratch is not None:
        common = {**common, **scratch}
        cost *= int(scratch.get("model.n_layers", n_layers)) / n_layers  # step time grows about with the layers
    for pe in p.retrieval_pes:
        src = None if scratch is not None else names[pe, 0]
        name = b.add_run(
            f"passkey/{pe}", {**_arm(pe, p, 0), **common}, init_from=src, trials=p.passkey_trials, cost=cost
        )
        b.cell("passkey", "pe", pe, [name], pe=pe, zero_shot=[src] if src else [])


def _ablations(b: _Builder, names: dict[tuple[str, int], str], *, head_dim: int, n_heads: int, n_layers: int) -> None:
    p = b.p
    seeds = range(1)  # one seed per ablation arm (the paper: one run per setting)

    def fope_runs(
        label: str, seed_cost: float = 1.0, extra: dict | None = None, trials: int = 0, **fope: Any
    ) -> list[str]:
        """Runs of one FoPE arm; passkey only where the figure uses it (trials > 0: the D sweep, Fig. 6c)."""
        out = []
        for s in seeds:
            arm = _arm("fope", p, s, **fope)
            arm.update(extra or {})
            out.append(b.add_run(f"ablations/{label}/seed{s}", arm, trials=trials, cost=seed_cost))
        return out

    groups = set(p.ablation_groups)
    # (a) components: FS = Fourier series (σ > 0), CF = clip floor
    if "components" in groups:
        _components(b, fope_runs, names)
    if "sigma" in groups:
        _sigma(b, fope_runs)
    if "freq_dim" in groups:
        _freq_dim(b, fope_runs, head_dim)
    if "shape" in groups:
        _shape(b, fope_runs, head_dim=head_dim, n_heads=n_heads, n_layers=n_layers)


def _components(b: _Builder, fope_runs: Any, names: dict[tuple[str, int], str]) -> None:
    b.cell("ablations", "components", "FoPE", fope_runs("fope"), fs=True, cf=True)
    b.cell("ablations", "components", "w/o FS", fope_runs("no-fs", **{FOPE_SIGMA: 0.0}), fs=False, cf=True)
    b.cell("ablations", "components", "w/o CF", fope_runs("no-cf", **{FOPE_CLIP: False}), fs=True, cf=False)
    b.cell(
        "ablations",
        "components",
        "w/o FS, w/o CF",
        fope_runs("no-fs-no-cf", **{FOPE_SIGMA: 0.0, FOPE_CLIP: False}),
        fs=False,
        cf=False,
    )
    b.cell("ablations", "components", "RoPE", [names["rope", 0]], fs=None, cf=None)


def _sigma(b: _Builder, fope_runs: Any) -> None:
    """(b) the sigma sweep."""
    for sigma in b.p.sigmas:
        b.cell(
            "ablations",
            "sigma",
            f"{float(sigma):g}",
            fope_runs(f"sigma{float(sigma):g}", **{FOPE_SIGMA: float(sigma)}),
            sigma=float(sigma),
        )


def _freq_dim(b: _Builder, fope_runs: Any, head_dim: int) -> None:
    """(c) frequency-grid size D (the release uses freq_dim only when > head_dim: smaller D is the default grid)."""
    for d in b.p.freq_dims:
        opts = {} if d <= head_dim else {FOPE_FREQ_DIM: int(d)}
        b.cell(
            "ablations",
            "freq_dim",
            str(int(d)),
            fope_runs(f"D{int(d)}", trials=b.p.ablation_passkey_trials, **opts),
            freq_dim=int(d),
            grid_dim=max(int(d), head_dim),
        )


def _shape(b: _Builder, fope_runs: Any, *, head_dim: int, n_heads: int, n_layers: int) -> None:
    """(a, right) doubled head dim vs doubled heads vs doubled layers."""
    b.cell("ablations", "shape", "FoPE", fope_runs("fope"), head_dim=head_dim, n_heads=n_heads, n_layers=n_layers)
    b.cell(
        "ablations",
        "shape",
        "2x head_dim",
        fope_runs("double-head-dim", 1.3, {"model.head_dim": 2 * head_dim}),
        head_dim=2 * head_dim,
        n_heads=n_heads,
        n_layers=n_layers,
    )
    b.cell(
        "ablations",
        "shape",
        "2x heads",
        fope_runs("double-heads", 1.3, {"model.n_heads": 2 * n_heads, "model.head_dim": head_dim}),
        head_dim=head_dim,
        n_heads=2 * n_heads,
        n_layers=n_layers,
    )
    b.cell(
        "ablations",
        "shape",
        "2x layers",
        fope_runs("double-layers", 1.6, {"model.n_layers": 2 * n_layers}),
        head_dim=head_dim,
        n_heads=n_heads,
        n_layers=2 * n_layers,
    )


#: Table 2 rows: (label, pe, pe_options); each also with QK norm (ModelConfig.qk_norm)
TABLE2_ARMS = (("RoPE", "rope", {}), ("RoPE-A", "rope", {"whole_cycles": True}), ("NoPE", "nope", {}))


def _table2(b: _Builder) -> None:
    """Paper Table 2: one seed per arm (as the paper); perplexity only (the paper reports loss)."""
    for label, pe, options in TABLE2_ARMS:
        for qk_norm in (False, True):
            arm = {"model.pe": pe, "model.pe_options": dict(options), "train.seed": 0, **b.p.table2_overrides}
            if qk_norm:  # without it (and without table2_overrides) the arm is the seed-0 main run: trained once
                arm["model.qk_norm"] = True
            slug = label.lower() + ("-qknorm" if qk_norm else "")
            name = b.add_run(f"table2/{slug}/seed0", arm, trials=0, cost=1.0)
            b.cell(
                "table2",
                "pe",
                label + (" + QK Norm" if qk_norm else ""),
                [name],
                pe=pe,
                whole_cycles=bool(options.get("whole_cycles")),
                qk_norm=qk_norm,
            )
