"""Run under .venv-engines (scripts/setup_engines.sh): vLLM's FourierRotaryEmbedding.forward_native against fope's
FoPE on the same coefficients, plus plugin registration and the pad check. Prints one JSON object."""

import importlib.metadata
import json
import sys

import torch
from vllm.config import VllmConfig, set_current_vllm_config

from fope.hf import vllm_model
from fope.hf.engines import kept_count
from fope.hf.vllm_plugin import ARCHITECTURE, register
from fope.pos.fope import FoPE

CASES = [  # (head_dim, heads, kv heads, theta, max_positions, num_inv_freq, sep_head)
    (64, 9, 3, 100000.0, 8192, None, True),  # SmolLM2 shape (GQA 3:1)
    (64, 9, 3, 100000.0, 8192, 24, True),
    (128, 4, 2, 5e6, 262144, None, True),  # Intern-S1-Pro shape: 45 of 64 pairs
    (32, 4, 4, 10000.0, 512, None, False),
    (32, 8, 2, 10000.0, 512, 6, False),
]


def one(case, dtype, pad, fope_pad=None):
    head_dim, heads, kv, theta, max_pos, n_inv, sep = case
    n = kept_count(head_dim=head_dim, theta=theta, max_position_embeddings=max_pos, num_inv_freq=n_inv)
    cls = vllm_model.fourier_class(pad=pad, sep_head=sep)
    torch.manual_seed(0)
    layer = cls(head_dim, head_dim, max_pos, theta, True, dtype, False, kv, n_inv, sep, 0.5)
    coef = {c: torch.eye(n) + 0.3 * torch.randn((kv if sep else 1), n, n) for c in ("cos", "sin")}
    for c in ("cos", "sin"):
        if sep:  # vLLM's own loader asks for the tensor-parallel group; one rank: a plain copy
            getattr(layer, f"{c}_coef").data.copy_(coef[c])
        else:
            layer.weight_loader(getattr(layer, f"{c}_coef"), coef[c][0])
    fope = _fope(case, n, fope_pad or pad, coef)
    t = 40
    positions = torch.tensor(list(range(t // 2)) + list(range(max_pos - t // 2, max_pos)))
    q = torch.randn(t, heads * head_dim).to(dtype)
    k = torch.randn(t, kv * head_dim).to(dtype)
    vq, vk = layer.forward_native(positions, q.clone(), k.clone())
    vq, vk = vq.reshape(t, -1), vk.reshape(t, -1)
    fq, fk = fope.rotate(
        q.view(1, t, heads, head_dim).transpose(1, 2), k.view(1, t, kv, head_dim).transpose(1, 2), positions
    )
    fq, fk = fq.transpose(1, 2).reshape(t, -1), fk.transpose(1, 2).reshape(t, -1)
    return {
        "case": list(case),
        "n": n,
        "dtype": str(dtype).split(".")[-1],
        "pad": pad,
        "class": cls.__name__,
        "max_abs_q": float((vq.float() - fq.float()).abs().max()),
        "max_abs_k": float((vk.float() - fk.float()).abs().max()),
        "scale": float(fq.float().abs().max()),
    }


def _fope(case, n, pad, coef):
    head_dim, heads, kv, theta, max_pos, _, sep = case
    fope = FoPE(
        head_dim=head_dim,
        n_heads=heads,
        train_len=max_pos,
        n_kv_heads=kv,
        theta=theta,
        clip_floor=False,
        num_inv_freq=n,
        out_dim="full",
        pad=pad,
        share_heads=not sep,
        sigma=0.0,
    )
    fope.cos_coef.copy_(coef["cos"] if sep else coef["cos"][0])
    fope.sin_coef.copy_(coef["sin"] if sep else coef["sin"][0])
    return fope


def other_engines(case):
    """SGLang's FourierRotaryEmbedding (forward) and lmdeploy's FopeRotaryEmbeddingImpl (its cos/sin tables applied
    rotate-half, query head h on kv head h // (H/Hkv)) against fope's FoPE, fp32, pad one (both pad with 1)."""
    from lmdeploy.pytorch.backends.default.rotary_embedding import FopeRotaryEmbeddingImpl
    from lmdeploy.pytorch.backends.rotary_embedding import FopeParameters
    from sglang.srt.layers.rotary_embedding.rope_variant import FourierRotaryEmbedding as SglFourier

    head_dim, heads, kv, theta, max_pos, n_inv, sep = case
    n = kept_count(head_dim=head_dim, theta=theta, max_position_embeddings=max_pos, num_inv_freq=n_inv)
    torch.manual_seed(0)
    coef = {c: torch.eye(n) + 0.3 * torch.randn((kv if sep else 1), n, n) for c in ("cos", "sin")}
    fope = _fope(case, n, "one", coef)
    t = 40
    positions = torch.tensor(list(range(t // 2)) + list(range(max_pos - t // 2, max_pos)))
    q, k = torch.randn(t, heads * head_dim), torch.randn(t, kv * head_dim)
    fq, fk = fope.rotate(
        q.view(1, t, heads, head_dim).transpose(1, 2), k.view(1, t, kv, head_dim).transpose(1, 2), positions
    )
    fq, fk = fq.transpose(1, 2).reshape(t, -1), fk.transpose(1, 2).reshape(t, -1)
    rows = []
    if sep:  # SGLang allocates (kv, n, n) and runs the 2-D einsum on it when sep_head is false, like vLLM 0.33.0
        sgl = SglFourier(
            head_dim,
            head_dim,
            max_pos,
            theta,
            True,
            torch.float32,
            kv,
            fope_sep_head=True,
            num_inv_freq=n_inv,
            device="cpu",
        )
        sgl.cos_coef.data.copy_(coef["cos"])
        sgl.sin_coef.data.copy_(coef["sin"])
        sq, sk = sgl(positions, q.clone(), k.clone())
        rows.append(
            {
                "engine": "sglang",
                "case": list(case),
                "n": n,
                "max_abs_q": float((sq - fq).abs().max()),
                "max_abs_k": float((sk - fk).abs().max()),
            }
        )
    grid = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    params = FopeParameters(num_inv_freq=n_inv, num_key_value_heads=kv, fope_sep_head=sep, inv_freq=grid)
    lmd = FopeRotaryEmbeddingImpl(head_dim, max_pos, params=params)
    cos, sin = lmd(
        q[None], positions[None], coef["sin"] if sep else coef["sin"][0], coef["cos"] if sep else coef["cos"][0]
    )
    cos, sin = cos[0], sin[0]  # (T, Hkv | -, D)
    if cos.dim() == 2:
        cos, sin = cos[:, None], sin[:, None]

    def apply(x, h):
        x = x.view(t, h, head_dim)
        idx = torch.arange(h) // (h // cos.shape[1]) if cos.shape[1] > 1 else torch.zeros(h, dtype=torch.long)
        c, s_ = cos[:, idx], sin[:, idx]
        half = head_dim // 2
        rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return (x * c + rot * s_).reshape(t, -1)

    lq, lk = apply(q, heads), apply(k, kv)
    rows.append(
        {
            "engine": "lmdeploy",
            "case": list(case),
            "n": n,
            "max_abs_q": float((lq - fq).abs().max()),
            "max_abs_k": float((lk - fk).abs().max()),
        }
    )
    return rows


def construct(directory):
    """As far as vLLM's CPU path goes with a fope export: config (with --hf-overrides' architecture), construction,
    weight loading, the forward. Returns the stage reached and where it stopped."""
    from safetensors.torch import load_file
    from vllm.config import ModelConfig
    from vllm.distributed import init_distributed_environment, initialize_model_parallel

    register()
    out = {"stages": []}
    try:
        mc = ModelConfig(
            model=directory, dtype="float32", hf_overrides={"architectures": [ARCHITECTURE]}, skip_tokenizer_init=True
        )
        out["stages"].append("model_config")
        vc = VllmConfig(model_config=mc)
        with set_current_vllm_config(vc):
            init_distributed_environment(1, 0, "tcp://127.0.0.1:29533", 0, backend="gloo")
            initialize_model_parallel(1, 1)
            model = vllm_model.FopeLlamaForCausalLM(vllm_config=vc)
            out["stages"].append("construct")
            state = load_file(f"{directory}/model.safetensors")
            out["loaded"] = len(model.load_weights(state.items()))
            out["coefficients_equal"] = all(
                torch.equal(
                    getattr(layer.self_attn.rotary_emb, c).data, state[f"model.layers.{i}.self_attn.rotary_emb.{c}"]
                )
                for i, layer in enumerate(model.model.layers)
                for c in ("cos_coef", "sin_coef")
            )
            out["rotary_classes"] = sorted({type(layer.self_attn.rotary_emb).__name__ for layer in model.model.layers})
            out["stages"].append("load_weights")
            model(torch.arange(8), torch.arange(8))
            out["stages"].append("forward")
    except Exception as e:  # where vLLM's CPU path stops, recorded
        out["stopped"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200]}"
    return out


def main():
    if len(sys.argv) > 1:
        json.dump(construct(sys.argv[1]), sys.stdout)
        return
    out = {"vllm": importlib.metadata.version("vllm"), "torch": torch.__version__}
    with set_current_vllm_config(VllmConfig()):
        register()
        from vllm import ModelRegistry

        out["registered"] = ARCHITECTURE in ModelRegistry.get_supported_archs()
        out["model_class"] = (
            ModelRegistry._try_load_model_cls(ARCHITECTURE).__name__
            if hasattr(ModelRegistry, "_try_load_model_cls")
            else None
        )
        out["vllm_pad"] = vllm_model.vllm_pad()
        try:
            vllm_model.check_pad({"rope_scaling": {"fope_sep_head": True, "fope_pad": "zero"}})
            out["refusal"] = None
        except ValueError as e:
            out["refusal"] = str(e)
        out["accepted_one"] = vllm_model.check_pad({"rope_scaling": {"fope_sep_head": True, "fope_pad": "one"}})
        out["rows"] = [one(c, d, p) for c in CASES for d in (torch.float32, torch.bfloat16) for p in ("one", "zero")]
        out["cross"] = one(CASES[0], torch.float32, "one", fope_pad="zero")  # the other pad: must differ
    out["versions"] = {m: importlib.metadata.version(m) for m in ("sglang", "lmdeploy")}
    out["other_engines"] = [row for case in CASES for row in other_engines(case)]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
