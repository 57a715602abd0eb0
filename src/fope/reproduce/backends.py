"""Who does the work of a run: `LocalBackend` (fope.train + fope.eval in this process) and `TorchrunBackend`
(each training run under ``torchrun``; evaluation in this process).

Evaluation uses fope.eval's library functions, the same ones as `fope eval ppl` / `fope eval passkey`
(`load_model`, `tokens_from_corpus`, `token_budget`, `perplexity_report`, `passkey_eval`), and returns fope.eval's
result schema (`fope.eval.results.ppl_result` / `passkey_result`).
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .experiments import EvalRequest, Grid
from .records import read_json, run_dir


class Backend(Protocol):
    """What the runner needs done; `LocalBackend` is the real one."""

    def train(self, cfg: Any, run_dir: Path, *, resume: bool) -> dict:
        """Train (or finish) the run; return fope.train's summary (with ``finished``)."""

    def evaluate(self, run_dir: Path, request: EvalRequest) -> dict:
        """Evaluate the trained model in ``run_dir``; return its result in fope.eval's schema (fope.eval.results)."""


class LocalBackend:
    """Train with fope.train and evaluate with fope.eval in this process."""

    def __init__(self, *, device: str = "auto"):
        self.device = device
        self._tokens: dict[tuple, Any] = {}

    def train(self, cfg: Any, run_dir: Path, *, resume: bool) -> dict:
        from fope.train import train

        return train(cfg, run_dir, resume=resume)

    def prepare(self, cfg: Any) -> None:
        """Train the tokenizer and write the token shards of ``cfg`` (cached; nothing to do when up to date)."""
        import torch

        from fope.train.data import prepare_data
        from fope.train.distributed import DistInfo

        prepare_data(cfg, DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu")))

    def _device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def evaluate(self, run_dir: Path, request: EvalRequest) -> dict:
        from fope.eval import load_model

        model = load_model(run_dir, device=self._device())
        if model.tokenizer is None:
            raise FileNotFoundError(f"{run_dir} holds no tokenizer.json next to the model; cannot evaluate")
        s = request.settings
        if request.kind == "passkey":
            return self._passkey(model, s)
        return self._perplexity(model, s)

    def _stream(self, corpus: str, tokenizer: Any, max_tokens: int, tok_id: str) -> Any:
        key = (corpus, tok_id, max_tokens)
        if key not in self._tokens:
            from fope.eval import tokens_from_corpus

            self._tokens[key] = tokens_from_corpus(corpus, tokenizer, split="val", max_tokens=max_tokens + 1)
        return self._tokens[key]

    def _perplexity(self, model: Any, s: dict) -> dict:
        from fope.eval.perplexity import perplexity_report, token_budget
        from fope.eval.results import ppl_result

        lengths = [int(x) for x in s["lengths"]]
        tok_id = _tokenizer_id(model)
        stream = self._stream(s["corpus"], model.tokenizer, int(s["max_tokens"]), tok_id)
        budget = token_budget(len(stream), lengths, max_tokens=int(s["max_tokens"]))
        stream = stream[:budget]
        report = {}
        for length in lengths:  # one call per length: the batch follows the length, the tokens do not
            batch = max(1, int(s["batch_tokens"]) // length)
            report[length] = perplexity_report(
                model, stream, [length], mode=s["mode"], batch_size=batch, progress=False
            )[length]
        options = {k: v for k, v in s.items() if k != "lengths"}
        return ppl_result(model.describe(), report, **options, tokens_scored_per_length=budget)

    def _passkey(self, model: Any, s: dict) -> dict:
        from fope.eval import passkey_eval
        from fope.eval.results import passkey_result

        lengths = [int(x) for x in s["lengths"]]
        res = passkey_eval(
            model,
            model.tokenizer,
            lengths,
            trials=int(s["trials"]),
            seed=int(s["seed"]),
            depths=s.get("depths"),
            mode=s["mode"],
            progress=False,
        )
        return passkey_result(model.describe(), res, lengths, **{k: v for k, v in s.items() if k != "lengths"})


def _tokenizer_id(model: Any) -> str:
    """A content id of the model's tokenizer (runs of a grid usually share one)."""
    import hashlib

    tok = model.tokenizer
    for attr in ("to_str",):
        fn = getattr(tok, attr, None)
        if callable(fn):
            return hashlib.sha256(fn().encode()).hexdigest()[:16]
    probe = "The pass key is 12345. Remember it. Thou art the grass and sky."
    return hashlib.sha256(repr((getattr(tok, "vocab_size", None), tok.encode(probe))).encode()).hexdigest()[:16]


class TorchrunBackend(LocalBackend):
    """Each training run as ``torchrun --standalone --nproc_per_node N -m fope.cli train ...`` (GPU presets).

    Evaluation runs in this process (one device). With ``dry_run`` nothing is executed: the commands are only
    printed (``fope reproduce --print-commands``).
    """

    def __init__(
        self, *, nproc: int, device: str = "auto", dry_run: bool = False, log: Callable[[str], None] | None = None
    ):
        super().__init__(device=device)
        self.nproc = nproc
        self.dry_run = dry_run
        self.log = log or (lambda s: print(s, flush=True))

    def command(self, cfg_path: Path, run_dir: Path, *, resume: bool) -> list[str]:
        head = ["torchrun", "--standalone", f"--nproc_per_node={self.nproc}", "-m", "fope.cli", "train"]
        return head + (["--resume", str(run_dir)] if resume else [str(cfg_path), "--out", str(run_dir)])

    def train(self, cfg: Any, run_dir: Path, *, resume: bool) -> dict:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg_path = run_dir / "grid-config.yaml"
        cfg.to_yaml(cfg_path)
        cmd = self.command(cfg_path, run_dir, resume=resume)
        self.log("  $ " + " ".join(shlex.quote(c) for c in cmd))
        if self.dry_run:
            return {"finished": True, "step": cfg.train.max_steps, "dry_run": True}
        proc = subprocess.run(cmd, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"torchrun exited with status {proc.returncode} for {run_dir}")
        summary = read_json(run_dir / "summary.json")
        if summary is None:
            raise RuntimeError(f"torchrun finished but {run_dir / 'summary.json'} is missing or unreadable")
        return summary


def print_plan(grid: Grid, out_dir: Path, *, nproc: int, log: Callable[[str], None] | None = None) -> None:
    """Print every run with its overrides and its torchrun command, and which cells use it (no execution)."""
    say = log or (lambda s: print(s, flush=True))
    backend = TorchrunBackend(nproc=nproc, dry_run=True, log=say)
    for i, run in enumerate(grid.runs, 1):
        cells = [f"{c.experiment}/{c.group}/{c.arm}" for c in grid.cells if run.name in c.runs]
        say(
            f"[{i}/{len(grid.runs)}] {run.name}"
            + (f" (from {run.init_from})" if run.init_from else "")
            + f"  -> {', '.join(cells) or 'reference'}"
        )
        say("  overrides: " + " ".join(f"{k}={json.dumps(v)}" for k, v in run.overrides.items()))
        path = run_dir(out_dir, run.name)
        say("  $ " + " ".join(shlex.quote(c) for c in backend.command(path / "grid-config.yaml", path, resume=False)))
