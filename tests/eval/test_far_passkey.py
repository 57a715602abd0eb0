"""fope.analysis.far.far_passkey: the passkey test under the far-attention variants, on a tiny random model."""

from __future__ import annotations

import pytest
import torch

import fope.model
from fope.analysis.far import VARIANTS, far_passkey
from fope.eval import FopeAdapter, passkey_eval

L = 64


def _adapter(tok, train_len: int) -> FopeAdapter:
    torch.manual_seed(0)
    cfg = fope.model.ModelConfig(
        vocab_size=tok.vocab_size, d_model=32, n_layers=2, n_heads=2, head_dim=16, train_len=train_len, pe="fope"
    )
    return FopeAdapter(fope.model.build(cfg), tokenizer=tok)


@pytest.fixture(scope="module")
def adapter(tok):
    return _adapter(tok, L)


def test_full_variant_is_the_plain_passkey_test(adapter, tok):
    res = far_passkey(adapter, [2 * L, 4 * L], train_len=L, trials=6, seed=3, variants=["full"])
    ref = passkey_eval(adapter, tok, [2 * L, 4 * L], trials=6, seed=3, depths="uniform", mode="both", progress=False)
    full = res["variants"]["full"]
    assert full["generation"] == {str(n): v for n, v in ref["by_length"].items()}
    assert full["likelihood_top1"] == {str(n): v for n, v in ref["likelihood"]["top1"]["by_length"].items()}
    for n in (2 * L, 4 * L):  # the depth counts add up to the trials and to the accuracy
        counts = full["depth"][str(n)].values()
        assert sum(k for _, k in counts) == 6
        assert sum(c for c, _ in counts) / 6 == pytest.approx(ref["by_length"][n])
    assert adapter.model.blocks[0].attn.__dict__.get("_attend") is None  # the model is restored


def test_variants_agree_when_nothing_is_far(tok):
    """Prompts of L/2 tokens, plus the generated or scored key, stay within L: no distance is far, so every
    variant runs the same test."""
    res = far_passkey(_adapter(tok, 2 * L), [L], train_len=2 * L, trials=4, seed=1)
    assert set(res["variants"]) == set(VARIANTS)
    lik = {v: r["likelihood_top1"] for v, r in res["variants"].items()}
    depth = {v: r["depth"] for v, r in res["variants"].items()}
    assert len({str(x) for x in lik.values()}) == 1 and len({str(x) for x in depth.values()}) == 1


def test_cli_passkey_only(adapter, tok, tmp_path, capsys):
    """`fope analyze far --passkey-only`: the passkey test under every variant, no perplexity decomposition."""
    import json

    from fope.cli import main

    model_dir = tmp_path / "model"
    fope.model.save(adapter.model, model_dir, tokenizer=tok)
    out = tmp_path / "an"
    args = ["analyze", "far", "--model", str(model_dir), "--out", str(out), "--passkey-factors", "2"]
    assert main([*args, "--passkey-only"]) == 2
    assert "--passkey-only needs --passkey-trials" in capsys.readouterr().err
    assert main([*args, "--passkey-only", "--passkey-trials", "2"]) == 0
    res = json.loads((out / "far-model.json").read_text())
    assert "variants" not in res and "corpus" not in res and res["pe"] == "fope" and res["train_len"] == L
    assert set(res["passkey"]["variants"]) == set(VARIANTS)
    ref = far_passkey(adapter, [2 * L], train_len=L, trials=2)
    assert res["passkey"]["variants"] == ref["variants"]
    assert "attention weight" not in capsys.readouterr().out


def test_cli_perplexity_decomposition_prints_and_writes_the_far_weight(adapter, tok, tmp_path, capsys, monkeypatch):
    """`fope analyze far` without --passkey-only: the decomposition of every variant, with the far weight per layer,
    in the console and the JSON (the corpus is replaced by random tokens so the test needs no download)."""
    import json

    import fope.eval.perplexity
    from fope.cli import main

    ids = torch.randint(0, tok.vocab_size, (1000,), generator=torch.Generator().manual_seed(0)).tolist()
    monkeypatch.setattr(fope.eval.perplexity, "tokens_from_corpus", lambda *a, max_tokens, **k: ids[:max_tokens])
    model_dir = tmp_path / "model"
    fope.model.save(adapter.model, model_dir, tokenizer=tok)
    out = tmp_path / "an"
    assert (
        main(["analyze", "far", "--model", str(model_dir), "--out", str(out), "--factor", "4", "--tokens", str(8 * L)])
        == 0
    )
    text = capsys.readouterr().out
    res = json.loads((out / "far-model.json").read_text())
    assert res["corpus"] == "books" and res["chunks"] == 2 and res["edges"] == [0, L, 2 * L, 4 * L]
    assert set(res["variants"]) == set(VARIANTS) and "passkey" not in res
    assert "attention weight on keys >= L away" in text
    for v, r in res["variants"].items():
        assert len(r["far_mass"]) == 2  # layers
        for i, layer in enumerate(r["far_mass"]):
            means = [sum(h[b] for h in layer) / len(layer) for b in range(3)]
            assert f"{v} layer {i}".ljust(38) + " " + " ".join(f"{x:>10.3f}" for x in means) in text
    assert all(h == [0.0, 0.0, 0.0] for layer in res["variants"]["window"]["far_mass"] for h in layer)
