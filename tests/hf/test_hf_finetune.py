"""Chat fine-tuning: assistant-only loss masks, packing, the warmup+cosine schedule, atomic resumable checkpoints."""

import json
import math

import pytest
import torch

from fope.hf.convert import convert
from fope.hf.finetune import encode_conversation, finetune, lr_at, pack, read_conversations

CONVERSATIONS = [
    [{"role": "user", "content": "say hi"}, {"role": "assistant", "content": "hi there"}],
    [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "and 3+3?"},
     {"role": "assistant", "content": "6"}],
]


def write_jsonl(path, n=30):
    path.write_text("".join(json.dumps({"messages": CONVERSATIONS[i % 2]}) + "\n" for i in range(n)))
    return path


def test_assistant_mask_covers_exactly_the_assistant_turns(char_tokenizer):
    ids, mask = encode_conversation(char_tokenizer, CONVERSATIONS[1], loss_on="assistant")
    text = "".join(char_tokenizer.convert_ids_to_tokens([i for i, m in zip(ids, mask) if m]))
    assert text == "4<|im_end|>\n6<|im_end|>\n"  # content + end-of-turn marker, nothing of user/system turns
    ids_all, mask_all = encode_conversation(char_tokenizer, CONVERSATIONS[1], loss_on="all")
    assert ids_all == ids and all(mask_all)


def test_pack_cuts_blocks_and_masks_labels():
    inputs, labels = pack([([1, 2, 3], [False, True, True]), ([4, 5, 6, 7], [True] * 4)], seq_len=3)
    assert inputs.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert labels.tolist() == [[-100, 2, 3], [4, 5, 6]]
    with pytest.raises(ValueError, match="fewer than one block"):
        pack([([1], [True])], seq_len=3)


def test_lr_schedule_is_the_pretraining_schedule():
    """One definition: update n = step + 1 of fope.train.optim.lr_at (warm-up, then cosine to exactly 0)."""
    from fope.train.config import TrainConfig
    from fope.train.optim import lr_at as train_lr_at

    lrs = [lr_at(s, 20, lr=1.0, warmup_ratio=0.1) for s in range(20)]
    assert lrs[:2] == [0.5, 1.0]
    assert lrs[11] == pytest.approx(0.5 * (1 + math.cos(math.pi * 10 / 18)))
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))
    sched = TrainConfig(lr=1.0, warmup_steps=2, max_steps=20, final_lr_ratio=0.0)
    assert lrs == [train_lr_at(s + 1, sched) for s in range(20)]


def test_read_conversations_rejects_bad_rows(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "no messages"}) + "\n")
    with pytest.raises(ValueError, match="example 0 has no 'messages'"):
        read_conversations(bad)
    with pytest.raises(FileNotFoundError):
        read_conversations(tmp_path / "missing.jsonl")


def test_finetune_learns_saves_and_resumes_exactly(tiny_llama, char_tokenizer, tmp_path):
    data = write_jsonl(tmp_path / "chat.jsonl")
    opts = dict(seq_len=32, batch_size=2, max_steps=6, lr=3e-3, save_every=3, progress=False)
    full = convert(tiny_llama, pe="fope")
    finetune(full, char_tokenizer, data, tmp_path / "full", **opts)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert (tmp_path / "full" / "modeling_fope.py").is_file() and (tmp_path / "full" / "tokenizer.json").is_file()

    # stop after 3 steps (as if interrupted right after the checkpoint), then resume to 6
    part = convert(tiny_llama, pe="fope")
    stopped = finetune(part, char_tokenizer, data, tmp_path / "part", stop_at=3, **opts)
    assert stopped["steps"] == 3 and not stopped["finished"]
    with (tmp_path / "part" / "metrics.jsonl").open("a") as f:  # a crash after step 4's record, before its save
        f.write(json.dumps({"step": 4, "loss": 0.0}) + "\n")
    resumed = convert(tiny_llama, pe="fope")
    summary = finetune(resumed, char_tokenizer, data, tmp_path / "part", resume=True, **opts)
    assert summary["steps"] == 6 and summary["finished"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # no step twice after the resume
    for name, value in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, msg=name)
    assert not (tmp_path / "part" / "checkpoint.tmp").exists()


def test_resume_refuses_a_changed_schedule(tiny_llama, char_tokenizer, tmp_path):
    data = write_jsonl(tmp_path / "chat.jsonl")
    opts = dict(seq_len=32, batch_size=2, max_steps=6, lr=3e-3, save_every=3, progress=False)
    finetune(convert(tiny_llama, pe="fope"), char_tokenizer, data, tmp_path / "run", stop_at=3, **opts)
    with pytest.raises(ValueError, match=r"max_steps: 6 -> 8.*--allow-config-change"):
        finetune(convert(tiny_llama, pe="fope"), char_tokenizer, data, tmp_path / "run", resume=True,
                 **{**opts, "max_steps": 8})
    done = finetune(convert(tiny_llama, pe="fope"), char_tokenizer, data, tmp_path / "run", resume=True,
                    allow_config_change=True, **{**opts, "max_steps": 8})
    assert done["steps"] == 8
    # save_every may change freely
    finetune(convert(tiny_llama, pe="fope"), char_tokenizer, data, tmp_path / "run2", stop_at=3, **opts)
    finetune(convert(tiny_llama, pe="fope"), char_tokenizer, data, tmp_path / "run2", resume=True,
             **{**opts, "save_every": 2})


def test_tokenizer_without_chat_template_trains_on_plain_text(tiny_llama, char_tokenizer, tmp_path):
    """A native fope export has no chat template: loss_on='all' trains on the text; 'assistant' says what to do."""
    plain = char_tokenizer
    plain.chat_template = None
    ids, mask = encode_conversation(plain, CONVERSATIONS[0], loss_on="all")
    assert "".join(plain.convert_ids_to_tokens(ids)) == "say hi\n\nhi there\n" and all(mask)
    with pytest.raises(ValueError, match="no chat template.*--loss-on all"):
        encode_conversation(plain, CONVERSATIONS[0], loss_on="assistant")
    out = finetune(convert(tiny_llama, pe="rope"), plain, write_jsonl(tmp_path / "c.jsonl"), tmp_path / "ft",
                   seq_len=32, max_steps=2, loss_on="all", progress=False)
    assert out["finished"]


def test_native_export_converts_and_finetunes(tmp_path, char_tokenizer):
    """A native RoPE model exported to HF converts to FoPE (model_type fope_llama, pe rope) and fine-tunes."""
    import fope.model
    from fope.hf.export import native_to_hf

    torch.manual_seed(0)
    native = fope.model.CausalLM(fope.model.ModelConfig(vocab_size=97, d_model=32, n_layers=1, n_heads=2,
                                                        train_len=32, pe="rope"))
    hf = native_to_hf(native)
    exact = convert(hf, pe="fope", sigma=0.0, clip_floor=False, out_dim="full")
    ids = torch.randint(0, 97, (1, 20))
    with torch.no_grad():
        torch.testing.assert_close(exact(input_ids=ids).logits, hf(input_ids=ids).logits, rtol=0, atol=0)
    fope_model = convert(hf, pe="fope", train_len=64, out_dim="full", pad="zero")
    assert fope_model.config.pe_train_len == 64 and fope_model.config.pe == "fope"
    with pytest.raises(ValueError, match="only pe='rope' sources"):
        convert(fope_model, pe="fope")
    char_tokenizer.chat_template = None
    assert finetune(fope_model, char_tokenizer, write_jsonl(tmp_path / "c.jsonl"), tmp_path / "ft", seq_len=64,
                    max_steps=1, loss_on="all", progress=False)["finished"]


def test_resume_after_a_kill_inside_the_checkpoint_swap(tiny_llama, char_tokenizer, tmp_path):
    """Killed between the two renames of save_checkpoint (only checkpoint.old exists): resume uses it and the run
    ends with the same weights as an uninterrupted one."""
    data = write_jsonl(tmp_path / "chat.jsonl")
    opts = dict(seq_len=32, batch_size=2, max_steps=4, lr=3e-3, save_every=2, progress=False)
    full = convert(tiny_llama, pe="fope")
    finetune(full, char_tokenizer, data, tmp_path / "full", **opts)
    finetune(convert(tiny_llama, pe="fope"), char_tokenizer, data, tmp_path / "run", stop_at=2, **opts)
    (tmp_path / "run" / "checkpoint").rename(tmp_path / "run" / "checkpoint.old")
    resumed = convert(tiny_llama, pe="fope")
    assert finetune(resumed, char_tokenizer, data, tmp_path / "run", resume=True, **opts)["steps"] == 4
    for name, value in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, msg=name)
