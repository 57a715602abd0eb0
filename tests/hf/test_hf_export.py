"""Native fope CausalLM -> HF FopeForCausalLM: logits equal for every position encoding (same `native_to_hf`
the exporter uses), and the exported directory loads back."""

import pytest
import torch
from torch.testing import assert_close

import fope.hf
import fope.model
from fope.hf.export import export, native_to_hf
from fope.model import ModelConfig

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


def native(pe, options):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=50, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, train_len=16, pe=pe,
                      pe_options=options)
    return fope.model.build(cfg).eval()


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


@pytest.mark.parametrize("pe", ["fire", "alibi", "kerple", "fope"])
def test_exported_bias_kinds_are_left_padding_invariant(pe):
    """A left-padded row (positions from the mask, as generate computes them) gives the unpadded logits, also past
    FIRE's threshold (FIRE normalises by the query's position id, not its cache index)."""
    model = native(pe, {})
    with torch.no_grad():
        for p in model.parameters():  # move FIRE/KERPLE off their init so the bias matters
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    hf = native_to_hf(model)
    seq = torch.randint(1, 50, (1, 40), generator=torch.Generator().manual_seed(3))  # 40 > train_len 16
    padded = torch.cat([torch.zeros(1, 5, dtype=torch.long), seq], 1)
    mask = (padded != 0).long()
    mask[0, 5:] = 1
    with torch.no_grad():
        want = model(seq)[0]
        got = hf(input_ids=padded, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits[0, 5:]
    assert_close(got, want, rtol=1e-4, atol=1e-4)
