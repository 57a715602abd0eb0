"""The serving engines' FoPE format (fope.hf.engines): read as FoPE by every loader, written with the pad recorded.

Reference for reading: transformers' own ``proportional`` RoPE (the first half of the frequencies rotate, the rest are
zero frequencies) is exactly an engine-format FoPE checkpoint with identity coefficients, num_inv_freq = half the
pairs, read with pad zero.
"""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from fope.hf import engines
from fope.hf.io import load

HEAD_DIM, N_KV, HALF = 16, 2, 4  # 8 pairs, 4 kept


def _tiny(model_type, **extra):
    import transformers

    cls = {"llama": "Llama", "qwen2": "Qwen2", "qwen3": "Qwen3"}[model_type]
    config = getattr(transformers, f"{cls}Config")(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=N_KV,
        head_dim=HEAD_DIM,
        max_position_embeddings=64,
        **extra,
    )
    torch.manual_seed(0)
    model = getattr(transformers, f"{cls}ForCausalLM")(config).eval()
    with torch.no_grad():  # non-trivial norms (Qwen3's q/k norms start at one)
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    return model


def _engine_dir(tmp_path, model, *, layout="layers", block=None, coef=None):
    """Save ``model`` and turn it into the engines' format: FoPE keys in rope_scaling, identity coefficients."""
    out = tmp_path / "engine"
    model.save_pretrained(out)
    cfg = json.loads((out / "config.json").read_text())
    block = block or {"rope_type": "default", "fope_init_factor": 0.5, "fope_sep_head": True, "num_inv_freq": HALF}
    block.setdefault("rope_theta", 10000.0)
    cfg.pop("rope_parameters", None)
    cfg["rope_scaling"] = block
    (out / "config.json").write_text(json.dumps(cfg))
    state = load_file(out / "model.safetensors")
    eye = coef if coef is not None else torch.eye(HALF).expand(N_KV, HALF, HALF).contiguous()
    for name in ("cos_coef", "sin_coef"):
        if layout == "model":
            state[f"model.language_model.rotary_emb.{name}"] = eye.clone()
        else:
            for i in range(model.config.num_hidden_layers):
                state[f"model.layers.{i}.self_attn.rotary_emb.{name}"] = eye.clone()
    save_file(state, out / "model.safetensors", metadata={"format": "pt"})
    return out


def _proportional(model):
    """The same weights under transformers' own proportional RoPE (partial_rotary_factor 0.5)."""
    assert "proportional" in __import__("transformers").modeling_rope_utils.ROPE_INIT_FUNCTIONS
    config = model.config.__class__(**model.config.to_dict())
    config.rope_parameters = {"rope_type": "proportional", "rope_theta": 10000.0, "partial_rotary_factor": 0.5}
    ref = model.__class__(config).eval()
    ref.load_state_dict(model.state_dict())
    return ref


@pytest.mark.parametrize(
    ("model_type", "layout", "extra"),
    [("llama", "layers", {}), ("qwen2", "model", {}), ("qwen3", "layers", {}), ("llama", "model", {})],
)
def test_identity_half_kept_pad_zero_is_transformers_proportional_rope(
    tmp_path, ids, monkeypatch, model_type, layout, extra
):
    model = _tiny(model_type, **extra)
    if model_type == "qwen2":
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("_proj.bias"):
                    p.normal_(0, 0.5)
    directory = _engine_dir(tmp_path, model, layout=layout)
    monkeypatch.setenv(engines.PAD_ENV, "zero")
    fope_model = load(directory)
    assert type(fope_model).__name__ == "FopeForCausalLM"
    pos = fope_model.model.layers[1].self_attn.pos_enc
    assert (pos.options["pad"], pos.options["num_inv_freq"], tuple(pos.cos_coef.shape)) == ("zero", HALF, (2, 4, 4))
    with torch.no_grad():
        got, want = fope_model(ids).logits, _proportional(model)(ids).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    # the released engines' pad (one) is not proportional RoPE: the pad matters
    monkeypatch.delenv(engines.PAD_ENV)
    with torch.no_grad():
        one = load(directory)(ids).logits
    assert (one - want).abs().max() > 1e-3


def test_null_num_inv_freq_keeps_frequencies_above_the_floor():
    # head 128, theta 5e6, 262144 positions: Intern-S1-Pro keeps 45 of 64 pairs (vLLM's rule, omega > 2pi/L)
    assert engines.kept_count(head_dim=128, theta=5e6, max_position_embeddings=262144, num_inv_freq=None) == 45
    assert engines.kept_count(head_dim=128, theta=5e6, max_position_embeddings=262144, num_inv_freq=24) == 24


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"model_type": "mistral"}, "model_type 'mistral'"),
        ({"rope_scaling": {"fope_sep_head": True, "factor": 2.0}}, "'factor'"),
        ({"rope_scaling": {"fope_sep_head": True, "num_inv_freq": 9}}, "num_inv_freq=9"),
        ({"rope_scaling": {"fope_sep_head": True, "rope_type": "yarn"}}, "rope_type 'yarn'"),
        ({"rope_scaling": {"fope_sep_head": True, "fope_pad": "half"}}, "pad 'half'"),
    ],
)
def test_config_fope_cannot_honour_is_refused_in_one_line(tmp_path, change, words):
    directory = _engine_dir(tmp_path, _tiny("llama"))
    cfg = json.loads((directory / "config.json").read_text())
    cfg.update(change)
    (directory / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError) as err:
        load(directory)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_coefficient_shape_and_missing_coefficients_are_refused(tmp_path):
    directory = _engine_dir(tmp_path, _tiny("llama"), coef=torch.eye(HALF).expand(3, HALF, HALF).contiguous())
    with pytest.raises(ValueError, match=r"model.layers.0.self_attn.rotary_emb.cos_coef has shape \(3, 4, 4\)"):
        load(directory)
    state = load_file(directory / "model.safetensors")
    del state["model.layers.1.self_attn.rotary_emb.sin_coef"]
    state["model.layers.0.self_attn.rotary_emb.cos_coef"] = torch.eye(HALF).expand(N_KV, HALF, HALF).contiguous()
    state["model.layers.0.self_attn.rotary_emb.sin_coef"] = state[
        "model.layers.0.self_attn.rotary_emb.cos_coef"
    ].clone()
    state["model.layers.1.self_attn.rotary_emb.cos_coef"] = state[
        "model.layers.0.self_attn.rotary_emb.cos_coef"
    ].clone()
    save_file(state, directory / "model.safetensors")
    with pytest.raises(ValueError, match=r"model.layers.1.self_attn.rotary_emb.sin_coef missing"):
        load(directory)


def _fope_model(**options):
    from fope.hf.convert import convert

    return convert(_tiny("llama"), pe="fope", sigma=0.3, out_dim="full", **options)


@pytest.mark.parametrize(("pad", "share_heads"), [("one", False), ("zero", False), ("one", True)])
def test_round_trip_fope_engines_fope_same_logits(tmp_path, ids, monkeypatch, pad, share_heads):
    monkeypatch.delenv(engines.PAD_ENV, raising=False)
    model = _fope_model(pad=pad, share_heads=share_heads)
    out = engines.save_engines(model, tmp_path / "eng")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["rope_scaling"]["fope_pad"] == pad and cfg["fope"]["pad"] == pad
    assert cfg["rope_scaling"]["fope_sep_head"] is (not share_heads)
    n = model.model.layers[0].self_attn.pos_enc.cos_coef.shape[-1]
    assert load_file(out / "model.safetensors")["model.layers.1.self_attn.rotary_emb.sin_coef"].shape[-2:] == (n, n)
    back = load(out)
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, model(ids).logits, atol=0, rtol=0)


def test_model_level_layout_needs_equal_layers_and_round_trips(tmp_path, ids):
    model = _fope_model(pad="one")
    with pytest.raises(ValueError, match=r"model.layers.1.cos_coef differs|model.layers.1.sin_coef differs"):
        engines.save_engines(model, tmp_path / "bad", layout="model")
    assert not (tmp_path / "bad").exists()
    with torch.no_grad():
        first = model.model.layers[0].self_attn.pos_enc
        for layer in model.model.layers[1:]:
            layer.self_attn.pos_enc.cos_coef.copy_(first.cos_coef)
            layer.self_attn.pos_enc.sin_coef.copy_(first.sin_coef)
    out = engines.save_engines(model, tmp_path / "eng", layout="model")
    keys = [k for k in load_file(out / "model.safetensors") if "rotary_emb" in k]
    assert sorted(keys) == ["model.rotary_emb.cos_coef", "model.rotary_emb.sin_coef"]
    with torch.no_grad():
        torch.testing.assert_close(load(out)(ids).logits, model(ids).logits, atol=0, rtol=0)


def test_options_the_format_cannot_express_are_refused(tmp_path):
    from fope.hf.convert import convert

    cap = convert(_tiny("llama"), pe="fope", sigma=0.3, clip_floor=False)  # the release's out_dim="cap": 8 -> 4
    with pytest.raises(ValueError, match="out_dim='cap'"):
        engines.save_engines(cap, tmp_path / "cap")
    rope = convert(_tiny("llama"), pe="rope")
    with pytest.raises(ValueError, match="pe='rope'"):
        engines.save_engines(rope, tmp_path / "rope")


def test_export_format_engines_command_and_every_loader(tmp_path, capsys, monkeypatch):
    """``fope hf export --format engines`` on a native model; the result loads through fope.eval's loader (the one
    every eval/analyze command uses) with the native logits, and a release-default (cap) model is refused."""
    import fope.model
    from fope.cli import main
    from fope.eval.loader import load_model

    monkeypatch.delenv(engines.PAD_ENV, raising=False)
    opts = {"out_dim": "full", "pad": "zero", "sigma": 0.3}
    cfg = fope.model.ModelConfig(
        vocab_size=40, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, train_len=16, pe="fope", pe_options=opts
    )
    model = fope.model.build(cfg).eval()
    fope.model.save(model, tmp_path / "native")
    argv = ["hf", "export", "--model", str(tmp_path / "native"), "--out", str(tmp_path / "eng"), "--format", "engines"]
    assert main(argv) == 0
    config = json.loads((tmp_path / "eng" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["rope_scaling"]["fope_pad"] == "zero"
    ids = torch.randint(0, 40, (1, 12))
    loaded = load_model(str(tmp_path / "eng"))
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(input_ids=ids).logits, model(ids), atol=1e-5, rtol=1e-5)
    cap = cfg.replace(pe_options={"sigma": 0.3, "clip_floor": False})  # head_dim 8: D_in 4, cap D_out 2
    fope.model.save(fope.model.build(cap).eval(), tmp_path / "cap")
    argv[3], argv[5] = str(tmp_path / "cap"), str(tmp_path / "eng2")
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "out_dim='cap'" in err and not (tmp_path / "eng2").exists()


def test_intern_s1_pro_setting_round_trips_to_its_config_keys(tmp_path, monkeypatch):
    """Intern-S1-Pro's FoPE as fope options: 45 of 64 pairs kept at head_dim 128; written with num_inv_freq null and
    Intern-S1-Pro's rope_scaling keys; read back to the same options."""
    from fope.hf.remote.configuration_fope import FopeConfig
    from fope.hf.remote.modeling_fope import FopeForCausalLM
    from fope.pos import build

    monkeypatch.delenv(engines.PAD_ENV, raising=False)
    setting = engines.INTERN_S1_PRO
    opts = engines.intern_s1_pro_options()
    native = build("fope", head_dim=128, n_heads=4, n_kv_heads=2, train_len=setting["max_position_embeddings"], **opts)
    assert (native.d_in, native.d_out) == (45, 45)
    theta = opts.pop("theta")
    cfg = FopeConfig(
        vocab_size=16,
        hidden_size=256,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=128,
        max_position_embeddings=setting["max_position_embeddings"],
        rope_parameters={"rope_type": "default", "rope_theta": theta},
        pe="fope",
        pe_options=opts,
        pe_train_len=setting["max_position_embeddings"],
    )
    config, _ = engines.to_engines(FopeForCausalLM(cfg).eval())
    block = config["rope_scaling"]
    assert {k: block[k] for k in ("fope_init_factor", "fope_sep_head", "num_inv_freq", "rope_theta")} == {
        k: setting[k] for k in ("fope_init_factor", "fope_sep_head", "num_inv_freq", "rope_theta")
    }
    assert config["max_position_embeddings"] == setting["max_position_embeddings"] and block["fope_pad"] == "one"
    read = engines.engine_options(config)
    assert (read["num_inv_freq"], read["pad"], read["share_heads"]) == (45, "one", False)


def test_analyze_damage_on_an_engine_checkpoint_and_far_refused_in_one_line(tmp_path, capsys, monkeypatch):
    from fope.cli import main

    from .helpers import engine_export

    monkeypatch.delenv(engines.PAD_ENV, raising=False)
    eng = str(engine_export(tmp_path))
    argv = ["analyze", "damage", "--model", eng, "--samples", "2", "--seq-len", "32", "--out", str(tmp_path / "a")]
    assert main([*argv, "--no-plot"]) == 0
    report = json.loads(next((tmp_path / "a").glob("damage-*.json")).read_text())
    assert "overall" in json.dumps(report)
    assert main(["analyze", "far", "--model", eng, "--tokens", "64", "--no-plot", "--out", str(tmp_path / "f")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert "far attention runs on native fope models only" in err[-1]
