"""Chat fine-tuning through fope.train's loop: assistant-only loss masks, packing, the pre-training schedule
(update n counted from 1), exact resume, the checkpoint fallback, metrics without duplicates, kill -9."""

import json
import math
from pathlib import Path

import pytest
import torch

from fope.hf.convert import convert
from fope.hf.finetune import ChatBlocks, HFForTraining, encode_conversation, finetune, pack, read_conversations

CONVERSATIONS = [
    [{"role": "user", "content": "say hi"}, {"role": "assistant", "content": "hi there"}],
    [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "and 3+3?"},
        {"role": "assistant", "content": "6"},
    ],
]


def write_jsonl(path, n=30):
    path.write_text("".join(json.dumps({"messages": CONVERSATIONS[i % 2]}) + "\n" for i in range(n)))
    return path


def records(out):
    """metrics.jsonl without the timing field (which differs between runs)."""
    rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in rows]


def assert_same_weights(out, ref):
    """Final weights (OUT/model and the checkpoint's) and AdamW state byte-/bit-identical to the reference run."""
    for rel in ("model/model.safetensors", "checkpoint/model/model.safetensors"):
        assert (Path(out) / rel).read_bytes() == (Path(ref) / rel).read_bytes(), rel
    a, b = (torch.load(Path(d) / "checkpoint" / "optimizer.pt", weights_only=True) for d in (out, ref))
    assert a["param_groups"] == b["param_groups"]
    for key, state in b["state"].items():
        for name, value in state.items():
            torch.testing.assert_close(a["state"][key][name], value, rtol=0, atol=0)


def test_assistant_mask_covers_exactly_the_assistant_turns(char_tokenizer):
    ids, mask = encode_conversation(char_tokenizer, CONVERSATIONS[1], loss_on="assistant")
    text = "".join(char_tokenizer.convert_ids_to_tokens([i for i, m in zip(ids, mask) if m]))
    assert text == "4<|im_end|>\n6<|im_end|>\n"  # content + end-of-turn marker, nothing of user/system turns
    ids_all, mask_all = encode_conversation(char_tokenizer, CONVERSATIONS[1], loss_on="all")
    assert ids_all == ids and all(mask_all)


def test_pack_cuts_blocks_and_masks_labels():
    inputs, labels = pack([([1, 2, 3], [False, True, True]), ([4, 5, 6, 7], [True] * 4)], block_len=3)
    assert inputs.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert labels.tolist() == [[-100, 2, 3], [4, 5, 6]]
    with pytest.raises(ValueError, match="fewer than one block"):
        pack([([1], [True])], block_len=3)


def test_chat_blocks_shift_targets_and_drop_blocks_without_loss():
    """Blocks of seq_len + 1: inputs the first seq_len tokens, targets the last seq_len labels (HF's shift); a
    block whose targets all carry no loss would make a 0/0 loss and is left out."""
    ids = torch.arange(12).view(3, 4)
    labels = torch.tensor([[0, 1, -100, 3], [4, -100, -100, -100], [-100, -100, 10, -100]])
    blocks = ChatBlocks(ids, labels)
    assert len(blocks) == 2
    x, y = blocks.batch([1, 0])
    assert x.tolist() == [[8, 9, 10], [0, 1, 2]] and y.tolist() == [[-100, 10, -100], [1, -100, 3]]


def test_adapter_state_dict_has_the_hf_names_and_loads_strictly(tiny_llama, llama_config, tmp_path):
    """HFForTraining: same keys as the HF model, logits of the HF forward, strict load from save_pretrained's
    file (a tied lm_head, which HF saves once, is filled in), and a missing weight is an error."""
    from safetensors.torch import load_file
    from transformers import LlamaForCausalLM

    net = HFForTraining(tiny_llama)
    assert list(net.state_dict()) == list(tiny_llama.state_dict())
    ids = torch.randint(0, 97, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(net(ids), tiny_llama(input_ids=ids).logits, rtol=0, atol=0)
    net.train()
    assert tiny_llama.training and all(m.training for m in tiny_llama.modules())
    torch.manual_seed(1)
    tied = LlamaForCausalLM(llama_config(tie_word_embeddings=True))
    HFForTraining(tied).save(tmp_path / "tied")
    saved = load_file(str(tmp_path / "tied" / "model.safetensors"))
    torch.manual_seed(2)
    fresh = HFForTraining(LlamaForCausalLM(llama_config(tie_word_embeddings=True)))
    fresh.load_state_dict(saved, strict=True)
    for name, value in tied.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[name], value, rtol=0, atol=0, msg=name)
    assert fresh.hf.lm_head.weight.data_ptr() == fresh.hf.model.embed_tokens.weight.data_ptr()
    del saved["model.norm.weight"]
    with pytest.raises(RuntimeError, match=r"model.norm.weight"):
        fresh.load_state_dict(saved, strict=True)


def test_lr_schedule_is_the_pretraining_schedule(tiny_llama, char_tokenizer, tmp_path):
    """The learning rates a fine-tuning run logs are fope.train.optim.lr_at's for updates n = 1..N (warm-up over
    ceil(10% of 20) = 2 updates from lr/2, cosine to exactly 0 at the last), checked against the closed form."""
    from fope.train.config import TrainConfig
    from fope.train.optim import lr_at

    out = tmp_path / "ft"
    finetune(
        convert(tiny_llama, pe="rope"),
        char_tokenizer,
        write_jsonl(tmp_path / "c.jsonl", 60),
        out,
        seq_len=16,
        max_steps=20,
        lr=1e-3,
        warmup_ratio=0.1,
        save_every=100,
        progress=False,
    )
    lrs = [r["lr"] for r in records(out)]
    closed = [1e-3 * n / 2 if n <= 2 else 0.5e-3 * (1 + math.cos(math.pi * (n - 2) / 18)) for n in range(1, 21)]
    assert lrs[:2] == [0.5e-3, 1e-3] and lrs[-1] == 0.0
    assert lrs == pytest.approx(closed, rel=1e-12, abs=1e-18)
    native = TrainConfig(lr=1e-3, warmup_steps=2, max_steps=20, final_lr_ratio=0.0)
    assert lrs == [lr_at(n, native) for n in range(1, 21)]  # the same function, bit for bit


def test_read_conversations_rejects_bad_rows(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "no messages"}) + "\n")
    with pytest.raises(ValueError, match="example 0 has no 'messages'"):
        read_conversations(bad)
    with pytest.raises(FileNotFoundError):
        read_conversations(tmp_path / "missing.jsonl")


def test_finetune_learns_saves_and_resumes_exactly(tiny_llama, char_tokenizer, tmp_path):
    """Stop after 2 of 7 steps (not a save_every multiple), resume: the same metrics records (losses, grad norms,
    lrs) and bit-identical weights and optimizer state as the uninterrupted run; grad_accum 2 included."""
    data = write_jsonl(tmp_path / "chat.jsonl")
    opts = dict(seq_len=32, batch_size=2, grad_accum=2, max_steps=7, lr=3e-3, save_every=3, progress=False)
    full = convert(tiny_llama, pe="fope")
    summary = finetune(full, char_tokenizer, data, tmp_path / "full", **opts)
    assert summary["finished"] and summary["step"] == 7 and summary["final_loss"] < summary["first_loss"]
    assert [r["step"] for r in records(tmp_path / "full")] == list(range(1, 8))
    model_dir = tmp_path / "full" / "model"
    assert (model_dir / "modeling_fope.py").is_file() and (model_dir / "tokenizer.json").is_file()
    import fope.hf

    reloaded = fope.hf.load(tmp_path / "full")  # the run directory resolves to OUT/model
    for name, value in full.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[name], value, rtol=0, atol=0, msg=name)

    part = convert(tiny_llama, pe="fope")
    stopped = finetune(part, char_tokenizer, data, tmp_path / "part", stop_at=2, **opts)
    assert stopped["step"] == 2 and stopped["stopped"] == "stop_at" and not stopped["finished"]
    with (tmp_path / "part" / "metrics.jsonl").open("a") as f:  # a crash after step 3's record, before its save
        f.write(json.dumps({"step": 3, "loss": 0.0}) + "\n")
    resumed = convert(tiny_llama, pe="fope")
    summary = finetune(resumed, char_tokenizer, data, tmp_path / "part", resume=True, **opts)
    assert summary["step"] == 7 and summary["finished"]
    assert records(tmp_path / "part") == records(tmp_path / "full")  # exact, and no step twice
    assert_same_weights(tmp_path / "part", tmp_path / "full")
    for name, value in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=0, atol=0, msg=name)
    assert not (tmp_path / "part" / "checkpoint.tmp").exists()


def test_resume_refuses_a_changed_schedule(tiny_llama, char_tokenizer, tmp_path):
    data = write_jsonl(tmp_path / "chat.jsonl")
    opts = dict(seq_len=32, batch_size=2, max_steps=6, lr=3e-3, save_every=3, progress=False)
    finetune(convert(tiny_llama, pe="fope"), char_tokenizer, data, tmp_path / "run", stop_at=3, **opts)
    with pytest.raises(ValueError, match=r"another config .*finetune\.max_steps 6 -> 8.*--allow-config-change"):
        finetune(
            convert(tiny_llama, pe="fope"),
            char_tokenizer,
            data,
            tmp_path / "run",
            resume=True,
            **{**opts, "max_steps": 8},
        )
    with pytest.raises(ValueError, match=r"already holds a training run.*--resume"):
        finetune(convert(tiny_llama, pe="fope"), char_tokenizer, data, tmp_path / "run", **opts)
    done = finetune(
        convert(tiny_llama, pe="fope"),
        char_tokenizer,
        data,
        tmp_path / "run",
        resume=True,
        allow_config_change=True,
        **{**opts, "max_steps": 8},
    )
    assert done["step"] == 8
    # save_every may change freely
    finetune(convert(tiny_llama, pe="fope"), char_tokenizer, data, tmp_path / "run2", stop_at=3, **opts)
    finetune(
        convert(tiny_llama, pe="fope"),
        char_tokenizer,
        data,
        tmp_path / "run2",
        resume=True,
        **{**opts, "save_every": 2},
    )


def test_tokenizer_without_chat_template_trains_on_plain_text(tiny_llama, char_tokenizer, tmp_path):
    """A native fope export has no chat template: loss_on='all' trains on the text; 'assistant' says what to do."""
    plain = char_tokenizer
    plain.chat_template = None
    ids, mask = encode_conversation(plain, CONVERSATIONS[0], loss_on="all")
    assert "".join(plain.convert_ids_to_tokens(ids)) == "say hi\n\nhi there\n" and all(mask)
    with pytest.raises(ValueError, match=r"no chat template.*--loss-on all"):
        encode_conversation(plain, CONVERSATIONS[0], loss_on="assistant")
    out = finetune(
        convert(tiny_llama, pe="rope"),
        plain,
        write_jsonl(tmp_path / "c.jsonl"),
        tmp_path / "ft",
        seq_len=32,
        max_steps=2,
        loss_on="all",
        progress=False,
    )
    assert out["finished"]


def test_native_export_converts_and_finetunes(tmp_path, char_tokenizer):
    """A native RoPE model exported to HF converts to FoPE (model_type fope_llama, pe rope) and fine-tunes."""
    import fope.model
    from fope.hf.export import native_to_hf

    torch.manual_seed(0)
    native = fope.model.CausalLM(
        fope.model.ModelConfig(vocab_size=97, d_model=32, n_layers=1, n_heads=2, train_len=32, pe="rope")
    )
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
    assert finetune(
        fope_model,
        char_tokenizer,
        write_jsonl(tmp_path / "c.jsonl"),
        tmp_path / "ft",
        seq_len=64,
        max_steps=1,
        loss_on="all",
        progress=False,
    )["finished"]


def test_resume_after_a_kill_inside_the_checkpoint_swap(tiny_llama, char_tokenizer, tmp_path):
    """Killed between the two renames of save_checkpoint (only checkpoint.prev exists): resume uses it and the run
    ends with the same weights as an uninterrupted one."""
    data = write_jsonl(tmp_path / "chat.jsonl")
    opts = dict(seq_len=32, batch_size=2, max_steps=4, lr=3e-3, save_every=2, progress=False)
    full = convert(tiny_llama, pe="fope")
    finetune(full, char_tokenizer, data, tmp_path / "full", **opts)
    finetune(convert(tiny_llama, pe="fope"), char_tokenizer, data, tmp_path / "run", stop_at=2, **opts)
    (tmp_path / "run" / "checkpoint").rename(tmp_path / "run" / "checkpoint.prev")
    resumed = convert(tiny_llama, pe="fope")
    assert finetune(resumed, char_tokenizer, data, tmp_path / "run", resume=True, **opts)["step"] == 4
    assert records(tmp_path / "run") == records(tmp_path / "full")
    assert_same_weights(tmp_path / "run", tmp_path / "full")
    assert not (tmp_path / "run" / "checkpoint.prev").exists()
    for name, value in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=0, atol=0, msg=name)


def test_make_chat_data_reads_any_corpus(tmp_path):
    """A local text folder (no embedded part names) makes stand-in chat data too: every corpus has named_docs."""
    from fope.hf.finetune import make_chat_data

    (tmp_path / "txt").mkdir()
    for i in range(3):
        (tmp_path / "txt" / f"doc{i}.txt").write_text(" ".join(f"word{i}-{j}" for j in range(400)))
    out = make_chat_data(tmp_path / "chat.jsonl", corpus=str(tmp_path / "txt"), n=5, split="train", passage_chars=300)
    rows = [json.loads(line)["messages"] for line in out.read_text().splitlines()]
    assert len(rows) == 5
    assert all(m[0]["role"] == "user" and m[0]["content"].startswith("Continue this passage from ") for m in rows)
    assert all(m[1]["role"] == "assistant" and m[1]["content"] for m in rows)
    assert read_conversations(out) == rows
