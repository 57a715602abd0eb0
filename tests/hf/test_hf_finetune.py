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


def test_lr_schedule_warmup_then_cosine():
    lrs = [lr_at(s, 20, lr=1.0, warmup_ratio=0.1) for s in range(20)]
    assert lrs[:2] == [0.5, 1.0]
    assert lrs[2] == pytest.approx(1.0)
    assert lrs[11] == pytest.approx(0.5 * (1 + math.cos(math.pi * 9 / 18)))
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))


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
    resumed = convert(tiny_llama, pe="fope")
    summary = finetune(resumed, char_tokenizer, data, tmp_path / "part", resume=True, **opts)
    assert summary["steps"] == 6 and summary["finished"]
    for name, value in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, msg=name)
    assert not (tmp_path / "part" / "checkpoint.tmp").exists()
