"""Saved directories round-trip exactly and load with trust_remote_code where fope cannot be imported."""

import json
import shutil
import subprocess
import sys
import textwrap

import torch
from torch.testing import assert_close

from fope.hf.convert import convert
from fope.hf.io import AUTO_MAP, REMOTE_FILES, is_fope_dir, load, save

from .helpers import NO_FOPE


def test_save_load_round_trip(tiny_llama, ids, tmp_path):
    model = convert(tiny_llama, pe="fope", sigma=0.3)
    save(model, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["auto_map"] == AUTO_MAP and cfg["model_type"] == "fope_llama" and cfg["pe"] == "fope"
    assert all((tmp_path / name).is_file() for name in REMOTE_FILES) and is_fope_dir(tmp_path)
    loaded = load(tmp_path)
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    with torch.no_grad():
        assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits, rtol=0, atol=0)


CHILD = NO_FOPE + textwrap.dedent("""
    model_dir, ref = sys.argv[1], load_file(sys.argv[2])
    model = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    with torch.no_grad():
        logits = model(input_ids=ref["ids"]).logits
    torch.testing.assert_close(logits, ref["logits"], rtol=0, atol=0)
    assert not [m for m in sys.modules if m == "fope" or m.startswith("fope.")]
    print("OK", type(model).__name__)
""")


def test_trust_remote_code_load_without_fope(tiny_llama, ids, tmp_path):
    from safetensors.torch import save_file

    model = convert(tiny_llama, pe="fope", sigma=0.3)
    save(model, tmp_path / "saved")
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "saved", moved)
    with torch.no_grad():
        save_file({"ids": ids, "logits": model(input_ids=ids).logits}, str(tmp_path / "ref.safetensors"))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    # -I: isolated mode (no PYTHONPATH, no user site, no script dir on sys.path), run from tmp
    proc = subprocess.run(
        [sys.executable, "-I", str(script), str(moved), str(tmp_path / "ref.safetensors")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK FopeForCausalLM" in proc.stdout


def test_eval_load_model_reads_fope_dirs_without_remote_code(tiny_llama, ids, tmp_path, char_tokenizer):
    from fope.eval import HFAdapter, load_model
    from fope.hf.remote.modeling_fope import FopeForCausalLM

    model = convert(tiny_llama, pe="fope", sigma=0.3)
    save(model, tmp_path, tokenizer=char_tokenizer)
    (tmp_path / "modeling_fope.py").write_text("raise RuntimeError('remote code executed')\n")  # must not run
    adapter = load_model(tmp_path)  # trust_remote_code=False
    assert isinstance(adapter, HFAdapter) and type(adapter.model) is FopeForCausalLM
    assert adapter.tokenizer is not None
    with torch.no_grad():
        assert_close(adapter.logits(ids), model(input_ids=ids).logits, rtol=0, atol=0)
