"""The registry of position-encoding kinds (fope.pos.registry): a kind registered from this test file only, and one
from the entry point of a throwaway distribution on sys.path, train, evaluate, and get the HF export's one-line
refusal, with no other edit anywhere."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import fope.pos
from fope.model import ModelConfig
from fope.pos import PositionEncoding
from fope.pos.base import parse_options
from fope.pos.rope import RoPE

from ..train.helpers import tiny_experiment, write_shards


@dataclass(frozen=True)
class SlowRoPEOptions:
    #: base θ (a small one: every frequency turns within a short training length)
    theta: float = 100.0
    #: key/value heads (GQA)
    n_kv_heads: int | None = None


class SlowRoPE(RoPE):
    """A kind defined in a test file: RoPE with its own options dataclass and defaults."""

    Options = SlowRoPEOptions

    def __init__(self, *, head_dim, n_heads, train_len=None, **options):
        opts = parse_options(SlowRoPEOptions, "slow_rope", options)
        super().__init__(head_dim=head_dim, n_heads=n_heads, train_len=train_len, theta=opts.theta)


@pytest.fixture
def slow_rope():
    fope.pos.register("slow_rope")(SlowRoPE)
    yield "slow_rope"
    fope.pos.unregister("slow_rope")


DIST = {
    "toy_pe_plugin/__init__.py": '''
        from dataclasses import dataclass

        import fope.pos


        @dataclass(frozen=True)
        class ToyOptions:
            #: accepted for the model's GQA shape
            n_kv_heads: int | None = None


        class Toy(fope.pos.PositionEncoding):
            """No position at all (a NoPE of another package)."""

            Options = ToyOptions

            def __init__(self, *, head_dim, n_heads, train_len=None, **options):
                super().__init__()
                ToyOptions(**options)
        ''',
    "toy_pe_plugin-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: toy-pe-plugin\nVersion: 0.1\n",
    "toy_pe_plugin-0.1.dist-info/entry_points.txt": """
        [fope.position_encodings]
        toy_plugin = toy_pe_plugin:Toy
        broken_plugin = toy_pe_plugin_missing:Gone
        """,
}


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    root = tmp_path / "site"
    for name, text in DIST.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    monkeypatch.syspath_prepend(str(root))
    yield "toy_plugin"
    fope.pos.unregister("toy_plugin")
    sys.modules.pop("toy_pe_plugin", None)


def train_evaluate_export(kind: str, tmp_path: Path) -> dict[int, float]:
    from fope.eval.loader import load_model
    from fope.eval.perplexity import perplexity_by_length
    from fope.hf import export
    from fope.reproduce.presets import GridPreset
    from fope.train import train

    assert kind in fope.pos.KINDS and kind in list(fope.pos.KINDS)
    GridPreset(name="t", description="t", base="cpu-tiny", pes=("rope", "fope", kind)).validate()  # the grid takes it
    shards = write_shards(tmp_path / "shards", n_train=4000, n_val=1000)
    out = tmp_path / "run"
    summary = train(tiny_experiment(shards, pe=kind, max_steps=3, eval_every=3, save_every=3), out)
    assert summary["step"] == 3
    lm = load_model(out)
    tokens = torch.randint(0, 64, (400,)).numpy()
    ppl = perplexity_by_length(lm, tokens, [16, 64], progress=False)
    with pytest.raises(ValueError, match=rf"^cannot export pe='{kind}' to the Hugging Face format") as err:
        export(out, tmp_path / "hf")
    assert "\n" not in str(err.value)
    return ppl


def test_a_kind_registered_in_a_test_file_trains_evaluates_and_is_refused_by_export(slow_rope, tmp_path):
    ppl = train_evaluate_export(slow_rope, tmp_path)
    assert all(0 < v < float("inf") for v in ppl.values())
    assert fope.pos.build(slow_rope, head_dim=8, n_heads=2).theta == 100.0


def test_an_entry_point_kind_is_listed_lazily_then_trains_evaluates_and_is_refused_by_export(plugin, tmp_path):
    assert plugin in fope.pos.kinds() and "toy_pe_plugin" not in sys.modules  # listed, not imported
    ModelConfig(vocab_size=64, d_model=32, n_layers=1, n_heads=2, train_len=16, pe=plugin).validate()
    ppl = train_evaluate_export(plugin, tmp_path)
    assert "toy_pe_plugin" in sys.modules and all(0 < v < float("inf") for v in ppl.values())


def test_a_broken_entry_point_is_one_line_naming_it(plugin):
    with pytest.raises(
        ValueError, match=r"^broken position encoding entry point broken_plugin = toy_pe_plugin_missing"
    ) as err:
        fope.pos.build("broken_plugin", head_dim=8, n_heads=2)
    assert "\n" not in str(err.value) and "ModuleNotFoundError" in str(err.value)


def test_registering_checks_the_class_and_refuses_a_taken_name():
    class NoOptions(PositionEncoding):
        pass

    with pytest.raises(TypeError, match=r"NoOptions\.Options must be the dataclass of its options"):
        fope.pos.register("no_options")(NoOptions)
    with pytest.raises(ValueError, match=r"'rope' is already registered by fope\.pos\.rope\.RoPE"):
        fope.pos.register("rope")(SlowRoPE)
    with pytest.raises(ValueError, match="lower-case letters"):
        fope.pos.register("Bad-Name")(SlowRoPE)
    assert fope.pos.get_class("rope") is RoPE and "no_options" not in fope.pos.KINDS


def test_every_kind_has_a_documented_options_dataclass_and_the_builtin_order_is_kept():
    assert tuple(fope.pos.KINDS)[:6] == fope.pos.options.KINDS
    assert {"prope", "hope"} <= set(fope.pos.KINDS)
    for kind in fope.pos.KINDS:
        assert fope.pos.options_of(kind) is fope.pos.get_class(kind).Options
        assert fope.pos.get_class(kind).kind == kind


def test_unknown_kind_is_one_line_with_a_suggestion():
    with pytest.raises(ValueError, match=r"unknown position encoding kind 'hop'.*'hope'"):
        fope.pos.build("hop", head_dim=8, n_heads=2)
