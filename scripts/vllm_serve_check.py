"""Serve a `fope hf export --format engines` directory through vLLM (fope's plugin) and compare with fope: generate
20 tokens greedily from a prompt and compare the first token's log-probabilities with fope's FopeForCausalLM on the
same export. Prints one JSON line. Needs vLLM on a GPU (scripts/device_gpu_quick.sh --vllm).

    python scripts/vllm_serve_check.py EXPORT_DIR [--dtype float32]
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--tokens", type=int, default=20)
    args = parser.parse_args()

    import torch
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    from fope.hf.io import load
    from fope.hf.vllm_plugin import ARCHITECTURE, register

    register()
    prompt = list(range(1, 33))
    llm = LLM(
        model=args.model,
        dtype=args.dtype,
        hf_overrides={"architectures": [ARCHITECTURE]},
        enforce_eager=True,
        skip_tokenizer_init=True,
    )
    params = SamplingParams(temperature=0.0, max_tokens=args.tokens, logprobs=20)
    out = llm.generate(TokensPrompt(prompt_token_ids=prompt), params)[0].outputs[0]
    first = out.logprobs[0]  # token id -> Logprob, the 20 most likely
    model = load(args.model, dtype=getattr(torch, args.dtype))
    with torch.no_grad():
        ref = torch.log_softmax(model(torch.tensor([prompt])).logits[0, -1].float(), -1)
    diff = max(abs(lp.logprob - float(ref[tok])) for tok, lp in first.items())
    greedy = [int(t) for t in out.token_ids]
    with torch.no_grad():
        fope_greedy = model.generate(torch.tensor([prompt]), max_new_tokens=args.tokens, do_sample=False)[0, 32:]
    print(
        json.dumps(
            {
                "model": args.model,
                "dtype": args.dtype,
                "first_logprob_max_abs_diff": diff,
                "vllm_tokens": greedy,
                "fope_tokens": fope_greedy.tolist(),
                "same_tokens": greedy == fope_greedy.tolist(),
            }
        )
    )


if __name__ == "__main__":
    main()
