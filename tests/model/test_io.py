"""Model directories: exact round-trips (FoPE coefficients included), strict keys, no pickle, run dirs."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

import fope.model
from fope.model.io import CONFIG, TOKENIZER, WEIGHTS

from .helpers import ALL_KINDS, tiny_config


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_round_trip_exact_logits(tmp_path, kind):
    model = fope.model.build(tiny_config(pe=kind, n_heads=4, n_kv_heads=2, d_model=128)).eval()
    with torch.no_grad():  # perturb every parameter (incl. fixed FoPE coefficients): nothing may come from init
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(0.01 * torch.randn_like(t))
    fope.model.save(model, tmp_path / "m")
    loaded = fope.model.load(tmp_path / "m")
    ids = torch.randint(0, 97, (2, 19))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids), model(ids), rtol=0, atol=0)
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert not loaded.training
    assert loaded.config == model.config.resolved()
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [CONFIG, WEIGHTS]  # no temp files left


def test_config_json_contents(tmp_path):
    model = fope.model.build(tiny_config(pe="nope"))
    fope.model.save(model, tmp_path)
    meta = json.loads((tmp_path / CONFIG).read_text())
    assert meta["format"] == "fope" and meta["format_version"] == 2
    assert meta["weights_sha256"] == hashlib.sha256((tmp_path / WEIGHTS).read_bytes()).hexdigest()
    assert meta["n_kv_heads"] == 2 and meta["head_dim"] == 32 and meta["mlp_hidden"] == 256


@pytest.mark.parametrize("kind", ["nope", "fope"])
def test_load_run_directory_and_dtype(tmp_path, kind):
    """A run directory loads its model/; with a dtype, position-encoding state (FoPE coefficients) stays exact."""
    model = fope.model.build(tiny_config(pe=kind))
    fope.model.save(model, tmp_path / "run" / "model")
    loaded = fope.model.load(tmp_path / "run", dtype=torch.bfloat16)
    assert loaded.embed.weight.dtype == torch.bfloat16
    assert torch.equal(loaded.embed.weight, model.embed.weight.to(torch.bfloat16))
    for (name, a), b in zip(
        model.blocks[1].attn.pos.state_dict().items(), loaded.blocks[1].attn.pos.state_dict().values()
    ):
        assert a.dtype == b.dtype and torch.equal(a, b), name
    with torch.no_grad():
        assert loaded(torch.randint(0, 97, (1, 5))).dtype == torch.float32


def test_missing_and_unexpected_keys(tmp_path):
    from safetensors.torch import load_file, save_file

    fope.model.save(fope.model.build(tiny_config(pe="nope")), tmp_path)
    state = load_file(str(tmp_path / WEIGHTS))
    del state["blocks.1.mlp.ff_out.weight"]
    state["blocks.1.extra"] = torch.zeros(1)
    save_file(state, str(tmp_path / WEIGHTS))
    with pytest.raises(ValueError, match=r"missing \['blocks.1.mlp.ff_out.weight'\], unexpected \['blocks.1.extra'\]"):
        fope.model.load(tmp_path)


def test_shape_mismatch(tmp_path):
    fope.model.save(fope.model.build(tiny_config(pe="nope")), tmp_path)
    meta = json.loads((tmp_path / CONFIG).read_text())
    meta["vocab_size"] = 98
    (tmp_path / CONFIG).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"'embed.weight' has shape \(97, 64\), config.json implies \(98, 64\)"):
        fope.model.load(tmp_path)


def test_errors_for_missing_and_foreign_dirs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no fope model directory"):
        fope.model.load(tmp_path)
    fope.model.save(fope.model.build(tiny_config(pe="nope")), tmp_path)
    meta = json.loads((tmp_path / CONFIG).read_text())
    meta["format"] = "llama"
    (tmp_path / CONFIG).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format 'llama', expected 'fope'"):
        fope.model.load(tmp_path)


def test_tokenizer_is_saved(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    fope.model.save(fope.model.build(tiny_config(pe="nope")), tmp_path, tokenizer=tok)
    again = tokenizers.Tokenizer.from_file(str(tmp_path / TOKENIZER))
    assert again.get_vocab() == tok.get_vocab()


def test_find_model_dir_tells_native_directories_from_the_rest(tmp_path):
    model = fope.model.build(tiny_config(pe="rope"))
    fope.model.save(model, tmp_path / "run" / "model")
    assert fope.model.find_model_dir(tmp_path / "run" / "model") == tmp_path / "run" / "model"
    assert fope.model.find_model_dir(tmp_path / "run") == tmp_path / "run" / "model"  # a training run directory
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / CONFIG).write_text(json.dumps({"model_type": "llama"}))  # a Hugging Face directory
    for other in (tmp_path / "hf", tmp_path / "missing", "org/name"):
        assert fope.model.find_model_dir(other) is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / CONFIG).write_text("{")
    from fope.utils import FileProblem

    with pytest.raises(FileProblem, match=str(tmp_path / "bad" / CONFIG)):
        fope.model.find_model_dir(tmp_path / "bad")
    state = fope.model.read_state_dict(tmp_path / "run")
    assert state.keys() == model.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
