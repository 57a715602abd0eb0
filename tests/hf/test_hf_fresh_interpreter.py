"""Exported native models load in a fresh interpreter where fope cannot be imported (``python -I``, only torch,
transformers and safetensors) and match the native logits for every position-encoding kind, FoPE under every
scaling type, GQA, and left-padded batched greedy generation (against unpadded native generation per row)."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from fope.hf.export import export

from .helpers import NO_FOPE, native

CASES = {
    "rope": ("rope", {}),
    "nope": ("nope", {}),
    "alibi": ("alibi", {}),
    "kerple": ("kerple", {}),
    "fire": ("fire", {}),
    "fope": ("fope", {"sigma": 0.3}),
    "fope-preserving": ("fope", {"sigma": 0.3, "out_dim": "full", "pad": "zero", "share_heads": True}),
    "fope-linear": ("fope", {"scaling": {"rope_type": "linear", "factor": 2.0}}),
    "fope-ntk": ("fope", {"scaling": {"rope_type": "ntk", "factor": 2.0}}),
    "fope-dynamic": ("fope", {"scaling": {"rope_type": "dynamic", "factor": 2.0}}),
    "fope-yarn": ("fope", {"scaling": {"rope_type": "yarn", "factor": 4.0}}),
    "fope-yarn-freq-dim": ("fope", {"freq_dim": 32, "scaling": {"rope_type": "yarn", "factor": 2.0}}),
    "rope-yarn": ("rope", {"scaling": {"rope_type": "yarn", "factor": 2.0}}),
    "rope-whole-cycles": ("rope", {"whole_cycles": True}),
}

CHILD = NO_FOPE + textwrap.dedent("""
    failures = {}
    for name in json.loads(sys.argv[1]):
        try:
            ref = load_file(os.path.join(name, "ref.safetensors"))
            model = AutoModelForCausalLM.from_pretrained(os.path.join(name, "hf"), trust_remote_code=True).eval()
            assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
            with torch.no_grad():
                logits = model(input_ids=ref["ids"], use_cache=False).logits
            torch.testing.assert_close(logits, ref["logits"], rtol=1e-4, atol=1e-4)
            out = model.generate(input_ids=ref["padded"], attention_mask=ref["mask"], max_new_tokens=4,
                                 do_sample=False, pad_token_id=0)
            new = out[:, ref["padded"].shape[1]:]
            assert torch.equal(new, ref["greedy"]), f"generated {new.tolist()} != native {ref['greedy'].tolist()}"
        except Exception as e:  # report every case, not only the first
            failures[name] = f"{type(e).__name__}: {str(e)[:300]}"
    assert not [m for m in sys.modules if m == "fope" or m.startswith("fope.")]
    print(json.dumps({"failures": failures}))
""")


def greedy(model, ids, n):
    with torch.no_grad():
        for _ in range(n):
            ids = torch.cat((ids, model(ids)[:, -1:].argmax(-1)), dim=1)
    return ids


@pytest.mark.slow
def test_exports_match_native_in_a_fresh_interpreter(tmp_path):
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(2)
    for name, (pe, options) in CASES.items():
        model = native(pe, options)
        ids = torch.randint(1, 50, (2, 40), generator=gen)  # 40 > train_len 16 (dynamic NTK active)
        # prompts longer than train_len 16, so FIRE's position normaliser and dynamic NTK are in play
        short = [torch.randint(1, 50, (1, 22), generator=gen), torch.randint(1, 50, (1, 17), generator=gen)]
        padded = torch.zeros(2, 22, dtype=torch.long)
        mask = torch.zeros(2, 22, dtype=torch.long)
        greedy_rows = []
        for row, seq in enumerate(short):
            padded[row, 22 - seq.shape[1] :] = seq[0]
            mask[row, 22 - seq.shape[1] :] = 1
            greedy_rows.append(greedy(model, seq, 4)[:, seq.shape[1] :])
        with torch.no_grad():
            logits = model(ids)
        (tmp_path / name).mkdir()
        export(model, tmp_path / name / "hf")
        save_file(
            {
                "ids": ids,
                "logits": logits.contiguous(),
                "padded": padded,
                "mask": mask,
                "greedy": torch.cat(greedy_rows),
            },
            str(tmp_path / name / "ref.safetensors"),
        )
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run(
        [sys.executable, "-I", str(script), json.dumps(list(CASES))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    failures = json.loads(proc.stdout.strip().splitlines()[-1])["failures"]
    assert failures == {}
