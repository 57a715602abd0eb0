"""kill -9 during Hugging Face fine-tuning, then resume: the same metrics history, weights and optimizer state as
an uninterrupted run (fine-tuning runs through fope.train's loop and checkpoints, so it inherits their recovery).

Two drills: a real SIGKILL of a `fope hf finetune` process at an unpredictable moment, and (as in
tests/reliability/test_crash_drill.py) a forked run that ends itself with os._exit just before its N-th
file-system step, for every N of a short run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fope.hf.convert import convert
from fope.hf.finetune import finetune
from fope.train.checkpoint import find_checkpoint

from .test_hf_finetune import assert_same_weights, records, write_jsonl

_spec = importlib.util.spec_from_file_location(
    "_fope_reliability_helpers", Path(__file__).parents[1] / "reliability" / "helpers.py"
)
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
KILLED, in_child = _helpers.KILLED, _helpers.in_child

pytestmark = pytest.mark.reliability


def _recover(run, out: Path) -> None:
    """What a user does after a crash: --resume when a checkpoint exists, else start again."""
    run(out, resume=find_checkpoint(out) is not None)


def test_sigkill_during_finetune_cli_then_resume_matches_an_uninterrupted_run(tiny_llama, char_tokenizer, tmp_path):
    import fope.hf

    model_dir = tmp_path / "model"
    fope.hf.save(convert(tiny_llama, pe="fope"), model_dir, tokenizer=char_tokenizer)
    data = write_jsonl(tmp_path / "chat.jsonl", n=200)
    opts = dict(seq_len=32, batch_size=2, max_steps=60, lr=3e-3, save_every=5)

    def run(out: Path, resume: bool = False) -> dict:
        model, tok = fope.hf.load(model_dir), fope.hf.io.load_tokenizer(model_dir)
        return finetune(model, tok, data, out, resume=resume, progress=False, **opts)

    run(tmp_path / "ref")
    out = tmp_path / "killed"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in opts.items()]
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(fope.__file__).parents[1]),
        "OMP_NUM_THREADS": str(torch.get_num_threads()),
    }  # the same thread count: the same float sums
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import torch; torch.set_num_threads({torch.get_num_threads()}); "
            "import sys; from fope.cli import main; sys.exit(main(sys.argv[1:]))",
            "hf",
            "finetune",
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--out",
            str(out),
            "--no-progress",
            *flags,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 300
    try:
        while time.time() < deadline and child.poll() is None:
            metrics = out / "metrics.jsonl"
            if metrics.is_file() and metrics.read_text().count("\n") >= 12:  # past the checkpoint of step 10
                break
            time.sleep(0.02)
        assert child.poll() is None, f"the fine-tuning ended before it was killed: {child.stderr.read()[-2000:]!r}"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists() and find_checkpoint(out) is not None
    summary = run(out, resume=True)
    assert summary["finished"] and summary["step"] == 60
    assert records(out) == records(tmp_path / "ref")
    assert_same_weights(out, tmp_path / "ref")
    assert (
        json.loads((out / "summary.json").read_text())["losses"]
        == json.loads((tmp_path / "ref" / "summary.json").read_text())["losses"]
    )


def test_kill_at_every_file_system_step_of_a_finetune(tiny_llama, char_tokenizer, tmp_path):
    data = write_jsonl(tmp_path / "chat.jsonl")
    opts = dict(seq_len=32, batch_size=2, grad_accum=2, max_steps=3, lr=3e-3, save_every=2, progress=False)

    def run(out: Path, resume: bool = False) -> dict:
        return finetune(convert(tiny_llama, pe="fope"), char_tokenizer, data, out, resume=resume, **opts)

    run(tmp_path / "ref")
    log = tmp_path / "events.txt"
    assert in_child(lambda: run(tmp_path / "count"), events=log) == 0, log.read_text()[-2000:]
    events = log.read_text().splitlines()
    assert sum("checkpoint.tmp" in e for e in events) > 10 and any(e.startswith("append") for e in events)
    for n in range(1, len(events) + 1):
        out = tmp_path / f"kill{n}"
        assert in_child(lambda out=out: run(out), crash_at=n) == KILLED, f"step {n} ({events[n - 1]})"
        _recover(run, out)
        try:
            assert records(out) == records(tmp_path / "ref")
            assert_same_weights(out, tmp_path / "ref")
            assert not (out / "checkpoint.tmp").exists() and not (out / "checkpoint.prev").exists()
        except AssertionError as e:
            raise AssertionError(f"killed before file-system step {n}: {events[n - 1]}") from e
        shutil.rmtree(out)
