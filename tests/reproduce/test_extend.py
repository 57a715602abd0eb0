"""`fope extend` (fope.reproduce.extend): the four methods start from the same weights, fine-tune on the same data and are evaluated on
the same tokens; table, JSON and figure are written (tiny model, offline)."""

import json

import pytest
import torch

from fope.hf.convert import convert
from fope.reproduce.extend import EXTEND_PRESETS, format_table, method_options


def test_method_options_and_presets():
    assert method_options("none", factor=2, context=64, fope_preset="preserving") == {"pe": "rope"}
    assert method_options("yarn", factor=2, context=64, fope_preset="preserving")["rope_scaling"] == {
        "rope_type": "yarn",
        "factor": 2.0,
    }
    assert method_options("pi", factor=4, context=64, fope_preset="preserving")["rope_scaling"]["rope_type"] == "linear"
    fope = method_options("fope", factor=2, context=64, fope_preset="preserving")
    assert fope == {"pe": "fope", "out_dim": "full", "pad": "zero", "train_len": 128}  # floor at the new length
    assert "train_len" not in method_options("fope", factor=2, context=64, fope_preset="keep-context")
    with pytest.raises(ValueError, match="unknown extension method 'alibi'"):
        method_options("alibi", factor=2, context=64, fope_preset="preserving")
    assert set(EXTEND_PRESETS) == {"cpu", "gpu"}


def test_methods_start_from_the_source(tiny_llama):
    """Before fine-tuning, "none" is the source exactly; the other three change the model."""
    ids = torch.randint(0, 97, (1, 48), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        src = tiny_llama(input_ids=ids).logits
        none = convert(tiny_llama, **method_options("none", factor=2, context=64, fope_preset="preserving"))
        torch.testing.assert_close(none(input_ids=ids).logits, src, rtol=0, atol=0)
        for m in ("yarn", "pi", "fope"):
            model = convert(tiny_llama, **method_options(m, factor=2, context=64, fope_preset="preserving"))
            assert not torch.allclose(model(input_ids=ids).logits, src)


@pytest.mark.slow
def test_extend_end_to_end_on_a_tiny_model(tiny_llama, char_tokenizer, tmp_path):
    from fope.reproduce.extend import extend

    tiny_llama.save_pretrained(tmp_path / "src")
    char_tokenizer.save_pretrained(tmp_path / "src")
    result = extend(
        tmp_path / "src",
        tmp_path / "out",
        preset="cpu",
        steps=2,
        n_examples=20,
        max_chunks=1,
        passkey_trials=2,
        eval_multiples=(1, 8),
        log=lambda *_: None,
    )
    assert list(result["methods"]) == ["fope", "yarn", "pi", "none"]
    assert result["settings"]["context"] == 64 and result["settings"]["new_len"] == 128
    for row in result["methods"].values():
        assert set(row["ppl"]) == {"64", "512"} and all(v > 1 for v in row["ppl"].values())
        assert row["passkey"]["64"] is None and 0 <= row["passkey"]["512"] <= 100  # 64 is shorter than the prompt
        assert row["steps"] == 2
    saved = json.loads((tmp_path / "out" / "extend.json").read_text())
    assert saved["methods"]["pi"]["ppl"] == result["methods"]["pi"]["ppl"]
    assert (tmp_path / "out" / "extend.png").stat().st_size > 1000
    assert (tmp_path / "out" / "extend.md").read_text() == format_table(result)
