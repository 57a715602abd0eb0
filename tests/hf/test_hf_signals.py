"""Ctrl-C (SIGINT) of a real `fope` process running a long HF-side command: exit status 130, no traceback, and the
fine-tuning checkpoint kept (a resume finishes the run), like `fope train`'s graceful stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("transformers")

pytestmark = pytest.mark.slow


def _env() -> dict:
    src = str(Path(__file__).parents[2] / "src")
    return {
        **os.environ,
        "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }


def _default_sigint() -> None:
    """A test runner started in the background ignores SIGINT, and so would the child: give it a terminal's."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args: list[str], tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    err = tmp_path / f"{name}.stderr"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fope.cli", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=_env(),
            text=True,
            preexec_fn=_default_sigint,
            cwd=tmp_path,
        )
    return proc, err


def wait_until(condition, proc: subprocess.Popen, err: Path, timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"exited {proc.returncode} too early: {err.read_text()[-2000:]}"
        assert time.monotonic() < end, f"timed out: {err.read_text()[-2000:]}"
        time.sleep(0.05)


def interrupt(proc: subprocess.Popen, err: Path) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    text = err.read_text()
    assert proc.returncode == 130, text[-2000:]
    assert "Traceback" not in text
    return out, text


@pytest.fixture
def model_dir(tiny_llama, char_tokenizer, tmp_path) -> Path:
    import fope.hf
    from fope.hf.convert import convert

    fope.hf.save(convert(tiny_llama, pe="rope"), tmp_path / "model", tokenizer=char_tokenizer)
    return tmp_path / "model"


def chat(tmp_path: Path, n: int = 400) -> Path:
    rows = [
        {"messages": [{"role": "user", "content": f"count to {i}"}, {"role": "assistant", "content": "1 2 3 " * 8}]}
        for i in range(n)
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def metrics_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def test_ctrl_c_of_finetune_exits_130_with_its_checkpoint_kept(model_dir, tmp_path):
    from fope.train.checkpoint import find_checkpoint

    data = chat(tmp_path)
    args = ["hf", "finetune", "--model", str(model_dir), "--data", str(data), "--out", str(tmp_path / "ft")]
    args += ["--seq-len", "32", "--epochs", "200", "--save-every", "100000", "--no-progress"]
    proc, err = start(args, tmp_path, "ft")
    wait_until(lambda: metrics_lines(tmp_path / "ft" / "metrics.jsonl") >= 3, proc, err)
    out, text = interrupt(proc, err)
    assert "stopped after step" in out and "checkpoint saved" in out
    assert "interrupted: fine-tuning stopped by SIGINT after step" in text.strip().splitlines()[-1]
    ckpt = find_checkpoint(tmp_path / "ft")
    assert ckpt is not None  # kept: the next --resume continues from it
    step = json.loads((ckpt / "state.json").read_text())["step"] if (ckpt / "state.json").is_file() else None
    assert step is None or step >= 1


def test_ctrl_c_of_extend_stops_the_comparison_with_the_checkpoint_kept(model_dir, tmp_path):
    from fope.train.checkpoint import find_checkpoint

    out_dir = tmp_path / "ext"
    args = ["extend", "--model", str(model_dir), "--out", str(out_dir), "--methods", "yarn,none"]
    args += ["--steps", "100000", "--n-examples", "50", "--corpus", "wiki", "--batch-size", "1"]
    proc, err = start(args, tmp_path, "ext")
    wait_until(lambda: metrics_lines(out_dir / "yarn" / "metrics.jsonl") >= 2, proc, err)
    _, text = interrupt(proc, err)
    assert "stopped by SIGINT" in text.strip().splitlines()[-1]
    assert find_checkpoint(out_dir / "yarn") is not None
    assert not (out_dir / "none").exists() and not (out_dir / "extend.json").exists()  # nothing ran after it


def test_ctrl_c_of_eval_longbench_exits_130(model_dir, tmp_path):
    pytest.importorskip("lm_eval")
    classes = ["Abbreviation", "Entity", "Description", "Human", "Location", "Numeric"]
    row = {"input": "Who?", "context": "Question: What?\nType: Entity\n", "answers": ["Human"], "length": 9}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "trec_e.jsonl").write_text(
        "".join(json.dumps({**row, "all_classes": classes, "_id": str(i)}) + "\n" for i in range(2000))
    )
    args = ["eval", "longbench", "--model", str(model_dir), "--data-dir", str(tmp_path / "data"), "--tasks", "trec"]
    args += ["--max-length", "512"]
    proc, err = start(args, tmp_path, "lb")
    wait_until(lambda: "Running generate_until requests" in err.read_text(), proc, err)
    time.sleep(1.0)
    _, text = interrupt(proc, err)
    assert "interrupted" in text  # (a progress bar may be redrawn after it)


def test_ctrl_c_of_convert_exits_130_and_leaves_no_half_model(model_dir, tmp_path):
    args = ["hf", "convert", "--model", str(model_dir), "--out", str(tmp_path / "conv"), "--preset", "keep-context"]
    proc, err = start(args, tmp_path, "conv")
    maps = Path(f"/proc/{proc.pid}/maps")
    wait_until(lambda: "libtorch" in (maps.read_text() if maps.exists() else ""), proc, err)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=300)
    if proc.returncode == 0:  # a loaded machine let it finish first: then it is complete
        assert (tmp_path / "conv" / "model.safetensors").is_file()
    else:
        assert proc.returncode == 130 and "Traceback" not in err.read_text(), err.read_text()[-2000:]
        assert not (tmp_path / "conv").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".conv.")]  # atomic_dir's folder is gone
