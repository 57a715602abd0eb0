"""vLLM 0.33.0's own FoPE layer against fope's, and fope's vLLM plugin, on CPU (marker ``engines``).

Runs tests/serve/vllm_side.py in the side environment .venv-engines (scripts/setup_engines.sh; vLLM is never
installed in .venv): vLLM's FourierRotaryEmbedding.forward_native vs fope.pos.fope.FoPE on the same coefficients,
sep_head on/off (off through fope.hf.vllm_model.SharedHeadFourier, 0.33.0 crashes there), GQA, head dims 32/64/128,
num_inv_freq null and set, fp32 and bf16, pad one (0.33.0's) and zero (main's, through ZeroPadFourier); plugin
registration and the pad check.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SIDE = ROOT / ".venv-engines" / "bin" / "python"
pytestmark = [
    pytest.mark.engines,
    pytest.mark.skipif(not SIDE.exists(), reason="no .venv-engines (run: bash scripts/setup_engines.sh)"),
]


def _side(*args):
    env = {**os.environ, "VLLM_TARGET_DEVICE": "cpu", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [str(SIDE), str(Path(__file__).with_name("vllm_side.py")), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def side():
    return _side()


def test_plugin_constructs_and_loads_a_fope_export(tmp_path):
    """vLLM's ModelConfig (with the plugin's architecture), FopeLlamaForCausalLM's construction and weight loading
    (coefficients equal to the export's, one FourierRotaryEmbedding per layer) run on CPU; the forward stops in this
    CUDA wheel's CPU linear layers (QKVParallelLinear has no cpu_linear: only a CPU build of vLLM sets it)."""
    from tests.hf.helpers import engine_export

    engine_export(tmp_path)
    got = _side(str(tmp_path / "eng"))
    assert got["stages"][:3] == ["model_config", "construct", "load_weights"], got
    assert got["coefficients_equal"] and got["rotary_classes"] == ["NativeFourier"], got
    print(json.dumps(got))


def test_versions_registration_and_pad_check(side):
    assert side["vllm"] == "0.33.0" and side["torch"].startswith("2.13.0")
    assert side["registered"] and side["model_class"] == "FopeLlamaForCausalLM"
    assert side["vllm_pad"] == "one" and side["accepted_one"] == "one"
    refusal = side["refusal"]
    assert "'zero'" in refusal and "'one'" in refusal and "0.33.0" in refusal and "\n" not in refusal


def test_vllm_forward_native_equals_fope(side):
    rows = side["rows"]
    assert len(rows) == 20 and {r["class"] for r in rows} >= {"NativeFourier", "SharedHeadFourier", "ZeroPadFourier"}
    for r in rows:
        worst = max(r["max_abs_q"], r["max_abs_k"])
        if r["dtype"] == "float32":
            assert worst == 0.0, r  # bit for bit
        else:  # vLLM caches its tables in bf16: one bf16 rounding of the largest value
            assert worst <= r["scale"] * 2.0**-7, r
    assert max(side["cross"]["max_abs_q"], side["cross"]["max_abs_k"]) > 0.1  # the other pad is caught
    assert side["versions"] == {"sglang": "0.5.23", "lmdeploy": "0.18.0"}
    others = side["other_engines"]
    assert {r["engine"] for r in others} == {"sglang", "lmdeploy"} and len(others) == 8
    assert all(r["max_abs_q"] == 0.0 and r["max_abs_k"] == 0.0 for r in others), others  # fp32, bit for bit
    print(json.dumps({"max_bf16": max(max(r["max_abs_q"], r["max_abs_k"]) for r in rows if r["dtype"] == "bfloat16")}))
