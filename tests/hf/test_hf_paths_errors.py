"""Every HF-side load (fope eval, hf convert, hf export, hf finetune, extend) resolves names and checks model
directories the same way, and fails with one line naming the offending value or file, exit code 2, before any weight
is read: paths that do not exist, Hub names that cannot be had, broken config.json, truncated weights, configs edited
to another shape or model type, bad conversion values, devices this machine does not have."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from fope.cli import main

pytest.importorskip("transformers")


def one_line_error(capsys, argv: list[str], *needles: str) -> str:
    """Run ``fope argv``: exit code 2, stdout empty, stderr one line holding every needle; returns that line."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


#: every command that loads a Hugging Face model, with the arguments it needs besides --model
COMMANDS = {
    "eval": ["eval", "ppl", "--data", "wiki", "--lengths", "16"],
    "longbench": ["eval", "longbench", "--tasks", "trec"],
    "downstream": ["eval", "downstream", "--tables", "5"],
    "convert": ["hf", "convert", "--out", "{tmp}/out"],
    "export": ["hf", "export", "--out", "{tmp}/out"],
    "finetune": ["hf", "finetune", "--data", "{tmp}/chat.jsonl", "--out", "{tmp}/ft"],
    "extend": ["extend", "--out", "{tmp}/ext"],
}


def argv(command: str, model: str, tmp_path: Path) -> list[str]:
    return [a.format(tmp=tmp_path) for a in COMMANDS[command]] + ["--model", model]


@pytest.fixture
def llama_dir(tiny_llama, tmp_path) -> Path:
    tiny_llama.save_pretrained(tmp_path / "llama")
    return tmp_path / "llama"


def edited(src: Path, dst: Path, **changes) -> Path:
    """A copy of the model directory ``src`` with config.json keys changed."""
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config.update(changes)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("name", ["/no/such/model", "./missing", "~/fope-missing-model", "runs/a/b"])
def test_a_name_that_can_only_be_a_path_fails_at_once(command, name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    one_line_error(capsys, argv(command, name, tmp_path), f"no such directory: {name}")
    assert time.monotonic() - start < 10
    assert not (tmp_path / "out").exists() and not (tmp_path / "ext").exists()


@pytest.mark.parametrize("command", ["eval", "convert", "finetune", "extend"])
def test_a_hub_name_offline_fails_in_one_line_saying_why_and_what_to_do(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(
        tmp_path
    )  # (no runs/ here: runs/tiny-rope may be a Hub name, as the docs' example before it exists)
    line = one_line_error(
        capsys,
        argv(command, "runs/tiny-rope", tmp_path),
        "no such local directory: 'runs/tiny-rope'",
        "HF_HUB_OFFLINE",
        "To use a local copy, pass its directory",
    )
    assert "Traceback" not in line


def test_the_hub_is_asked_once_and_says_unreachable_or_no_such_repo(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    from fope.hf import io

    calls = []

    def unreachable(self, name, timeout=None):
        calls.append((name, timeout))
        raise ConnectionError("[Errno -2] Name or service not known")

    monkeypatch.setattr(io, "hub_offline", lambda: False)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    io._hub_source.cache_clear()
    with pytest.raises(FileNotFoundError, match=r"no such local directory: 'org/a'; .*the Hub is unreachable"):
        io.resolve("org/a")
    assert calls == [("org/a", io.HUB_TIMEOUT_S)]  # one request with a timeout: no retry loop

    def missing(self, name, timeout=None):
        calls.append((name, timeout))
        raise RepositoryNotFoundError("404 Repository Not Found", response=SimpleNamespace(headers={}, request=None))

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", missing)
    with pytest.raises(FileNotFoundError, match=r"'org/b'; .*the Hub has no such repo"):
        io.resolve("org/b")
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, name, timeout=None: object())
    assert io.resolve("org/c") == "org/c"  # the Hub has it: transformers loads it
    io._hub_source.cache_clear()


def test_without_network_a_hub_name_fails_within_seconds(tmp_path):
    """A real process with the Hub not offline but unreachable (a closed local port): one request, one line."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf-home"))
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "fope.cli", "hf", "convert", "--model", "org/name", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    took = time.monotonic() - start
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and done.stdout == "" and len(lines) == 1, done.stderr
    assert "no such local directory: 'org/name'" in lines[0] and "the Hub is unreachable" in lines[0]
    assert "To use a local copy" in lines[0] and "Retrying" not in done.stderr
    assert took < 30  # start-up included; the Hub is asked once, no 25-33 s of retries


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "empty file"), ("[1]", "expected a JSON object"), ("{bad", "not valid JSON"), ("{}", "no 'model_type'")],
)
@pytest.mark.parametrize("command", ["eval", "convert", "finetune"])
def test_config_json_errors_name_the_file(command, text, problem, llama_dir, tmp_path, capsys):
    (llama_dir / "config.json").write_text(text)
    line = one_line_error(capsys, argv(command, str(llama_dir), tmp_path), str(llama_dir / "config.json"))
    if command != "eval" or text in ("[1]", "{}"):  # eval reads "{bad" / "" first as a possible fope model config
        assert problem in line


def test_an_unsupported_model_type_is_refused_before_any_weight_loads(llama_dir, tmp_path, capsys):
    gpt = edited(llama_dir, tmp_path / "gpt", model_type="gpt2")
    (gpt / "model.safetensors").write_bytes(b"not weights")  # reading them would fail otherwise
    one_line_error(capsys, argv("convert", str(gpt), tmp_path), "model_type 'gpt2'", "fope hf convert")
    one_line_error(capsys, argv("extend", str(gpt), tmp_path), "model_type 'gpt2'")


@pytest.mark.parametrize("command", ["eval", "convert", "longbench"])
def test_truncated_weights_are_one_line_naming_the_file(command, llama_dir, tmp_path, capsys):
    weights = llama_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    one_line_error(capsys, argv(command, str(llama_dir), tmp_path), str(weights), "not fully covered")


@pytest.mark.parametrize("command", ["eval", "convert"])
def test_a_config_edited_to_another_shape_does_not_load_with_weights_dropped(command, llama_dir, tmp_path, capsys):
    fewer = edited(llama_dir, tmp_path / "fewer", num_hidden_layers=1)
    one_line_error(capsys, argv(command, str(fewer), tmp_path), "9 unexpected (model.layers.1.", "refusing")
    other = edited(llama_dir, tmp_path / "other", model_type="gpt2")
    if command == "eval":  # any causal LM evaluates; its weights must be the ones its config describes
        one_line_error(capsys, argv(command, str(other), tmp_path), "unexpected", "missing (transformer.")
    wide = edited(llama_dir, tmp_path / "wide", intermediate_size=128)
    one_line_error(capsys, argv(command, str(wide), tmp_path), "weight shapes do not match its config.json")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--train-len", "0"], "--train-len must be a positive number of tokens, got 0"),
        (["--train-len", "-5"], "got -5"),
        (["--sigma", "-1"], "--sigma must be a finite number >= 0, got -1.0"),
        (["--sigma", "nan"], "got nan"),
        (["--floor-cycles", "2"], "floor_cycles must be a number in (0, 1], got 2.0"),
        (["sigma=inf"], "sigma must be a finite number >= 0, got 'inf'"),
    ],
)
def test_convert_refuses_bad_values_before_loading(flags, needle, tmp_path, capsys):
    # the model does not exist: the value is refused first
    one_line_error(capsys, ["hf", "convert", "--model", "./missing", "--out", str(tmp_path / "o"), *flags], needle)


def test_convert_library_refuses_them_too(tiny_llama):
    from fope.hf.convert import convert

    with pytest.raises(ValueError, match=r"train_len .* got 0"):
        convert(tiny_llama, pe="fope", train_len=0)
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0, got -1"):
        convert(tiny_llama, pe="fope", sigma=-1)


@pytest.mark.parametrize("command", ["eval", "longbench", "downstream"])
@pytest.mark.parametrize(
    ("device", "needle"), [("cuda", "CUDA is not available here"), ("tpu9", "unknown device 'tpu9'")]
)
def test_eval_on_a_device_this_machine_lacks_is_one_line(command, device, needle, llama_dir, tmp_path, capsys):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    one_line_error(capsys, argv(command, str(llama_dir), tmp_path) + ["--device", device], needle)


def test_convert_writes_a_complete_directory_or_none(tiny_llama, llama_dir, tmp_path, capsys, monkeypatch):
    """A failure (or Ctrl-C) while saving leaves no half-written model at OUT."""
    import fope.hf.io

    def broken(model, out, tokenizer=None):
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(fope.hf.io, "save", broken)
    assert main(["hf", "convert", "--model", str(llama_dir), "--out", str(tmp_path / "o")]) == 130
    assert not (tmp_path / "o").exists() and not [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.")]
    monkeypatch.undo()
    assert main(["hf", "convert", "--model", str(llama_dir), "--out", str(tmp_path / "o"), "--pe", "rope"]) == 0
    assert (tmp_path / "o" / "model.safetensors").is_file()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.")]  # atomic_dir's folder is gone
