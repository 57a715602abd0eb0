"""Native fope CausalLM -> HF FopeForCausalLM: logits equal for every position encoding (same `native_to_hf`
the exporter uses), and the exported directory loads back."""

import dataclasses

import pytest
import torch
from torch.testing import assert_close

import fope.hf
import fope.model
import fope.pos
from fope.hf.export import export, native_to_hf

from .helpers import native

CASES = [
    ("rope", {}),
    ("fope", {"sigma": 0.3}),
    ("fope", {"sigma": 0.2, "share_heads": True, "pad": "zero", "out_dim": "full"}),
    ("fope", {"scaling": {"rope_type": "yarn", "factor": 4.0}}),
    ("rope", {"theta": 500.0, "scaling": {"rope_type": "dynamic", "factor": 2.0}}),
    ("nope", {}),
    ("alibi", {}),
    ("kerple", {}),
    ("fire", {}),
]


@pytest.mark.parametrize("pe,options", CASES)
def test_exported_logits_equal_native(pe, options):
    model = native(pe, options)
    ids = torch.randint(0, 50, (2, 40), generator=torch.Generator().manual_seed(2))  # 40 > train_len 16
    with torch.no_grad():
        expected = model(ids)
        got = native_to_hf(model)(input_ids=ids, use_cache=False).logits
    assert_close(got, expected)


def test_export_directory_round_trip(tmp_path):
    model = native("fope", {"sigma": 0.3})
    fope.model.save(model, tmp_path / "native")
    out = export(tmp_path / "native", tmp_path / "hf")
    assert (out / "modeling_fope.py").is_file() and (out / "configuration_fope.py").is_file()
    ids = torch.randint(0, 50, (1, 20))
    with torch.no_grad():
        assert_close(fope.hf.load(out)(input_ids=ids).logits, model(ids))


def test_export_rejects_unknown_weights():
    from fope.hf.export import native_state_to_hf

    model = native("rope", {})
    state = dict(model.state_dict(), extra=torch.zeros(1))
    with pytest.raises(ValueError, match="extra"):
        native_state_to_hf(state, model.config)


#: a non-default value for every option fope.pos.build accepts (n_kv_heads: the GQA shape of every model here)
OPTION_VALUES = {
    "rope": {"theta": 500.0, "scaling": {"rope_type": "yarn", "factor": 2.0}, "whole_cycles": True},
    "fope": {
        "sigma": 0.1,
        "theta": 500.0,
        "freq_dim": 64,
        "clip_floor": False,
        "floor_ratio": 1.5,
        "out_dim": "full",
        "pad": "zero",
        "init": "eye_norm",
        "normalize": True,
        "learnable": True,
        "share_heads": True,
        "num_inv_freq": 3,
        "scaling": {"rope_type": "dynamic", "factor": 2.0},
    },
    "alibi": {},
    "nope": {},
    "kerple": {"init": "ones"},
    "fire": {"mlp_width": 8, "c_init": 0.5, "threshold": 10.0, "eps": 1e-3},
}
EVERY_OPTION = [(kind, {name: value}) for kind, opts in OPTION_VALUES.items() for name, value in opts.items()]
EVERY_OPTION += [("fope", {"init": init}) for init in fope.pos.functional.FOPE_INITS]
EVERY_OPTION += [
    (pe, {"scaling": {"rope_type": t, "factor": 2.0}})
    for pe in ("rope", "fope")
    for t in ("linear", "ntk", "dynamic", "yarn")
]
EVERY_OPTION += [("fope", {"freq_dim": 64, "scaling": {"rope_type": "yarn", "factor": 2.0}})]  # freq_dim > head_dim


def test_every_option_is_covered():
    for kind in fope.pos.options.KINDS:  # the kinds the remote code carries
        fields = {f.name for f in dataclasses.fields(fope.pos.options.OPTIONS[kind])}
        assert set(OPTION_VALUES[kind]) == fields - {"n_kv_heads"}, kind


@pytest.mark.parametrize("pe,options", EVERY_OPTION, ids=lambda x: x if isinstance(x, str) else str(x)[:40])
def test_every_native_option_exports_loads_and_matches(pe, options, tmp_path):
    """Every option fope.pos.build takes: the saved directory loads (fope's classes) with the native logits."""
    model = native(pe, options, d_model=64)
    with torch.no_grad():
        for p in model.parameters():  # move learned kinds off their init so every parameter matters
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    ids = torch.randint(0, 50, (2, 40), generator=torch.Generator().manual_seed(2))  # 40 > train_len 16
    out = export(model, tmp_path / "hf")
    with torch.no_grad():
        assert_close(fope.hf.load(out)(input_ids=ids).logits, model(ids), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("pe", fope.pos.options.KINDS)
def test_exported_models_are_left_padding_invariant(pe):
    """A batch of left-padded rows, with only the attention mask (positions come from it, as in generate), gives each
    row's unpadded logits, also past FIRE's threshold (FIRE normalises by the query's position id, not its cache
    index)."""
    model = native(pe, {})
    with torch.no_grad():
        for p in model.parameters():  # move FIRE/KERPLE off their init so the bias matters
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    hf = native_to_hf(model)
    gen = torch.Generator().manual_seed(3)
    rows = [torch.randint(1, 50, (1, n), generator=gen) for n in (40, 33, 21)]  # 40 > train_len 16
    padded = torch.zeros(len(rows), 40, dtype=torch.long)
    mask = torch.zeros_like(padded)
    for i, row in enumerate(rows):
        padded[i, 40 - row.shape[1] :], mask[i, 40 - row.shape[1] :] = row[0], 1
    with torch.no_grad():
        got = hf(input_ids=padded, attention_mask=mask).logits
        for i, row in enumerate(rows):
            assert_close(got[i, 40 - row.shape[1] :], model(row)[0], rtol=1e-4, atol=1e-4)
