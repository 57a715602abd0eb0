"""Scaling as an option of convert / load / eval, conversion presets and floors, model names, tokenizer loading."""

import pytest
import torch
from torch.testing import assert_close

import fope.hf
from fope.hf.convert import (
    CONVERT_PRESETS,
    ROPE_REDUCTION,
    convert,
    floor_length,
    parse_rope_scaling,
    preset_options,
    scaled_rope_parameters,
)


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits


@pytest.mark.parametrize(
    "text,expected",
    [
        ("yarn:2", {"rope_type": "yarn", "factor": 2.0}),
        ("pi:4", {"rope_type": "linear", "factor": 4.0}),
        ("dynamic:1.5", {"rope_type": "dynamic", "factor": 1.5}),
        ("none", None),
        ('{"rope_type": "yarn", "factor": 2, "beta_fast": 16}', {"rope_type": "yarn", "factor": 2, "beta_fast": 16}),
    ],
)
def test_parse_rope_scaling(text, expected):
    assert parse_rope_scaling(text) == expected


@pytest.mark.parametrize("bad", ["yarn", "yarn:x", "yarn:-1", "llama3:2", "[1, 2]", "{bad"])
def test_parse_rope_scaling_rejects_naming_the_text(bad):
    with pytest.raises(ValueError, match="rope-scaling"):
        parse_rope_scaling(bad)


def test_scaled_rope_parameters_keeps_theta_and_context():
    out = scaled_rope_parameters(
        {"rope_type": "default", "rope_theta": 1e5}, {"rope_type": "yarn", "factor": 2.0}, 8192
    )
    assert out == {"rope_type": "yarn", "rope_theta": 1e5, "factor": 2.0, "original_max_position_embeddings": 8192}
    with pytest.raises(ValueError, match="bogus"):
        scaled_rope_parameters({"rope_theta": 1e4}, {"rope_type": "yarn", "factor": 2.0, "bogus": 1}, 64)


@pytest.mark.parametrize("spec", ["yarn:2", "linear:2", "dynamic:2"])
def test_convert_with_scaling_equals_hf_with_the_same_scaling(tiny_llama, llama_config, spec):
    """The converted model with --rope-scaling matches transformers' own Llama with that rope_parameters dict, and the
    FoPE RoPE reduction with that scaling matches too (to 2x the context: 128 > 64 so dynamic NTK is active)."""
    from transformers import LlamaForCausalLM

    scaling = parse_rope_scaling(spec)
    rope = scaled_rope_parameters({"rope_type": "default", "rope_theta": 10000.0}, scaling, 64)
    reference = LlamaForCausalLM(llama_config(rope_parameters=rope)).eval()
    reference.load_state_dict(tiny_llama.state_dict())
    ids = torch.randint(0, 97, (1, 128), generator=torch.Generator().manual_seed(3))
    want = logits(reference, ids)
    assert not torch.allclose(want, logits(tiny_llama, ids))  # the scaling changes the model
    for pe, options in (("rope", {}), ("fope", ROPE_REDUCTION)):
        converted = convert(tiny_llama, pe=pe, rope_scaling=scaling, **options)
        assert converted.config.rope_parameters == rope
        assert_close(logits(converted, ids), want, rtol=1e-5, atol=1e-5)


def test_load_with_rope_scaling_and_eval_adapter(tmp_path, tiny_llama, llama_config):
    """fope.hf.load and fope.eval's load_model set HF's own scaling on a plain directory (no hand-edited config)."""
    from transformers import LlamaForCausalLM

    from fope.eval.loader import load_model

    tiny_llama.save_pretrained(tmp_path / "src")
    rope = {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}
    reference = LlamaForCausalLM(llama_config(rope_parameters=rope)).eval()
    reference.load_state_dict(tiny_llama.state_dict())
    ids = torch.randint(0, 97, (1, 40), generator=torch.Generator().manual_seed(4))
    loaded = fope.hf.load(tmp_path / "src", rope_scaling="pi:2")
    assert loaded.config.rope_parameters["rope_type"] == "linear"
    assert_close(logits(loaded, ids), logits(reference, ids), rtol=0, atol=0)
    adapter = load_model(str(tmp_path / "src"), rope_scaling="linear:2")
    assert_close(logits(adapter.model, ids), logits(reference, ids), rtol=0, atol=0)
    # static NTK has no HF type: plain transformers gets the equivalent theta
    ntk = load_model(str(tmp_path / "src"), rope_scaling="ntk:2")
    assert ntk.model.config.rope_parameters["rope_type"] == "default"
    assert ntk.model.config.rope_parameters["rope_theta"] == pytest.approx(10000.0 * 2 ** (16 / 14))


def test_floor_cycles_and_presets(tiny_llama, ids):
    assert floor_length(8192, 1 / 16) == 131072 and floor_length(64, 1) == 64
    with pytest.raises(ValueError, match="floor_cycles"):
        floor_length(64, 2)
    half = convert(tiny_llama, pe="fope", floor_cycles=0.5, **preset_options("preserving"))
    assert half.config.pe_train_len == 128
    with pytest.raises(ValueError, match="not both"):
        convert(tiny_llama, pe="fope", train_len=64, floor_cycles=0.5)
    with pytest.raises(ValueError, match="unknown conversion preset 'keep'"):
        preset_options("keep")
    for name in CONVERT_PRESETS:
        model = convert(tiny_llama, pe="fope", **preset_options(name))
        out = logits(model, ids)
        assert torch.isfinite(out).all()
        if name == "rope-exact":
            assert_close(out, logits(tiny_llama, ids), rtol=0, atol=0)
    keep = convert(tiny_llama, pe="fope", **preset_options("keep-context"))
    assert keep.config.pe_train_len == 64 * 16
    # fewer clipped frequencies than the paper's floor: D_in grows
    assert (
        keep.model.layers[0].self_attn.pos_enc.cos_coef.shape[-2]
        > half.model.layers[0].self_attn.pos_enc.cos_coef.shape[-2]
    )


def test_cli_convert_preset_and_scaling(tmp_path, tiny_llama):
    from fope.cli import main

    tiny_llama.save_pretrained(tmp_path / "src")
    assert (
        main(
            [
                "hf",
                "convert",
                "--model",
                str(tmp_path / "src"),
                "--out",
                str(tmp_path / "out"),
                "--preset",
                "keep-context",
                "--rope-scaling",
                "yarn:2",
            ]
        )
        == 0
    )
    model = fope.hf.load(tmp_path / "out")
    assert model.config.pe_options == {"out_dim": "full", "pad": "zero", "sigma": 0.15}
    assert model.config.pe_train_len == 1024
    assert model.config.rope_parameters["rope_type"] == "yarn"


def test_resolve_names(tmp_path, tiny_llama):
    from fope.hf.io import resolve

    with pytest.raises(FileNotFoundError, match="no such local directory: 'HuggingFaceTB/SmolLM2-135M'"):
        resolve("HuggingFaceTB/SmolLM2-135M")  # offline (HF_HUB_OFFLINE=1 in the tests) and not in the hub cache
    with pytest.raises(FileNotFoundError, match=r"no such directory: .*missing-dir"):
        resolve(str(tmp_path / "missing-dir"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no config.json"):
        resolve(tmp_path / "empty")
    tiny_llama.save_pretrained(tmp_path / "src")
    assert resolve(str(tmp_path / "src")) == tmp_path / "src"


def test_converted_tokenizer_loads_without_remote_code(tmp_path, tiny_llama, char_tokenizer, monkeypatch):
    """fope.hf.load_tokenizer reads a FoPE directory's tokenizer without ever asking to trust remote code."""
    import transformers.models.auto.configuration_auto as configuration_auto

    fope.hf.save(convert(tiny_llama, pe="fope"), tmp_path / "m", tokenizer=char_tokenizer)

    def refuse(*args, **kwargs):
        raise AssertionError("asked to trust remote code")

    monkeypatch.setattr(configuration_auto, "resolve_trust_remote_code", refuse)
    tok = fope.hf.load_tokenizer(tmp_path / "m")
    assert tok("ab")["input_ids"] == char_tokenizer("ab")["input_ids"]
