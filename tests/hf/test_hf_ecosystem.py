"""The Hugging Face ecosystem recipe of docs/huggingface.md ("Fine-tuning an export with transformers.Trainer or
PEFT"), in a fresh interpreter where fope cannot be imported: fine-tune a FoPE export with ``transformers.Trainer``
(all weights, gradient checkpointing on) and with a PEFT LoRA adapter, save, reload from disk without fope, same
logits."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from .helpers import NO_FOPE

pytest.importorskip("peft")

pytestmark = pytest.mark.slow

#: the recipe as a user runs it (only torch, transformers, peft); argv: export dir, work dir
CHILD = NO_FOPE + textwrap.dedent("""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoTokenizer, Trainer, TrainingArguments

    export, work = sys.argv[1], sys.argv[2]
    tok = AutoTokenizer.from_pretrained(export, trust_remote_code=True)
    texts = ["the cat sat on the mat and the dog sat on the log"] * 16
    rows = [tok(t, truncation=True, max_length=48)["input_ids"] for t in texts]
    data = [{"input_ids": r, "labels": r} for r in rows]
    probe = torch.tensor([rows[0]])

    def args(name, **extra):
        return TrainingArguments(
            output_dir=os.path.join(work, name), max_steps=3, per_device_train_batch_size=2, learning_rate=5e-3,
            report_to=[], save_strategy="no", logging_strategy="no", use_cpu=True, seed=0, **extra,
        )

    def logits(model):
        model.eval()
        with torch.no_grad():
            return model(input_ids=probe).logits

    out = {}
    base = logits(AutoModelForCausalLM.from_pretrained(export, trust_remote_code=True))

    # 1. transformers.Trainer, every weight, with gradient checkpointing
    model = AutoModelForCausalLM.from_pretrained(export, trust_remote_code=True)
    Trainer(model=model, args=args("full", gradient_checkpointing=True), train_dataset=data).train()
    trained = logits(model)
    model.save_pretrained(os.path.join(work, "full-model"))
    tok.save_pretrained(os.path.join(work, "full-model"))
    again = AutoModelForCausalLM.from_pretrained(os.path.join(work, "full-model"), trust_remote_code=True)
    out["full"] = {
        "module": type(again).__module__,
        "moved": float((trained - base).abs().max()),
        "reload_diff": float((logits(again) - trained).abs().max()),
        "files": sorted(os.listdir(os.path.join(work, "full-model"))),
    }

    # 2. PEFT LoRA on the attention projections: adapter saved alone, and merged into a plain directory
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(export, trust_remote_code=True),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, task_type="CAUSAL_LM"),
    )
    Trainer(model=model, args=args("lora"), train_dataset=data).train()
    trained = logits(model)
    model.save_pretrained(os.path.join(work, "adapter"))
    reloaded = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(export, trust_remote_code=True), os.path.join(work, "adapter")
    )
    merged = model.merge_and_unload()
    merged.save_pretrained(os.path.join(work, "merged"))
    plain = AutoModelForCausalLM.from_pretrained(os.path.join(work, "merged"), trust_remote_code=True)
    out["lora"] = {
        "moved": float((trained - base).abs().max()),
        "adapter_files": sorted(os.listdir(os.path.join(work, "adapter"))),
        "reload_diff": float((logits(reloaded) - trained).abs().max()),
        "merged_diff": float((logits(plain) - trained).abs().max()),
    }
    assert not [m for m in sys.modules if m == "fope" or m.startswith("fope.")]
    print(json.dumps(out))
""")


def test_trainer_and_lora_fine_tune_an_export_and_reload_without_fope(tiny_llama, char_tokenizer, tmp_path):
    import fope.hf
    from fope.hf.convert import convert

    export = tmp_path / "export"
    fope.hf.save(convert(tiny_llama, pe="fope"), export)
    char_tokenizer.save_pretrained(export)
    done = subprocess.run(
        [sys.executable, "-I", "-c", CHILD, str(export), str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    full, lora = out["full"], out["lora"]
    assert full["module"].startswith("transformers_modules")  # the saved directory's own copy of the code
    assert {"modeling_fope.py", "configuration_fope.py", "model.safetensors"} <= set(full["files"])
    assert full["moved"] > 1e-3 and full["reload_diff"] == 0.0  # training changed it; the reload is exact
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(lora["adapter_files"])
    assert lora["moved"] > 1e-4
    assert lora["reload_diff"] == 0.0  # base export + adapter, loaded from disk
    assert lora["merged_diff"] < 1e-5  # merged weights: the same function up to float rounding
