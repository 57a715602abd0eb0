"""`fope eval longbench` end to end: a real (tiny) model generates, lm-eval runs the task, and the generations are
post-processed and scored as LongBench's eval.py does -- not as lm-eval's own task files would.

The model is a deterministic character "bigram" Llama: attention and MLP outputs are zero, so the logits depend only
on the last token, and its lm_head makes every prompt here (ending in '?' or ':') continue with
"\\nHuman\\nHuman\\nHuman...". LongBench strips the leading newline of trec / triviaqa and keeps the first line
("Human"); lm-eval's own trec task stops at the first newline and scores '' instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("transformers")

from fope.cli import main
from fope.eval import lmeval

CLASSES = ["Abbreviation", "Entity", "Description", "Human", "Location", "Numeric"]
#: next character after each character (everything else: "\n")
CHAIN = {"\n": "H", "H": "u", "u": "m", "m": "a", "a": "n"}


def bigram_model(out: Path) -> Path:
    """Save the bigram Llama (vocabulary: <unk>, </s>, newline and the printable ASCII characters) with its
    character tokenizer at ``out``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    chars = ["\n"] + [chr(c) for c in range(32, 127)]
    vocab = {"<unk>": 0, "</s>": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="</s>", pad_token="</s>")
    n = len(vocab)
    config = LlamaConfig(
        vocab_size=n,
        hidden_size=128,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=1,
        pad_token_id=1,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.model.embed_tokens.weight[torch.arange(n), torch.arange(n)] = 1.0  # token i -> unit vector i
        for norm in (model.model.norm, model.model.layers[0].input_layernorm):
            norm.weight.fill_(1.0)
        model.model.layers[0].post_attention_layernorm.weight.fill_(1.0)
        for c, i in vocab.items():
            nxt = CHAIN.get(c, "\n")
            model.lm_head.weight[vocab[nxt], i] = 10.0
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out


def rows(dataset: str, inputs_answers: list[tuple[str, str, int]]) -> list[dict]:
    base = {"dataset": dataset, "language": "en", "all_classes": CLASSES if dataset.startswith("trec") else None}
    return [
        {**base, "input": q, "context": "Question: What is NASA?\nType: Abbreviation\n", "answers": [a], "length": n}
        | {"_id": f"{dataset}-{i}"}
        for i, (q, a, n) in enumerate(inputs_answers)
    ]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("lb")
    bigram_model(tmp / "model")
    data = tmp / "data"
    data.mkdir()
    trec = rows("trec_e", [("Who wrote Hamlet?", "Human", 100), ("Where is Paris?", "Location", 5000)])
    trec += rows("trec_e", [("How many legs?", "Numeric", 9000)])
    hotpot = rows("hotpotqa_e", [("Who was it?", "Human", 120)])
    for name, rs in (("trec_e", trec), ("hotpotqa_e", hotpot)):
        (data / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
    return tmp


def test_the_bigram_model_starts_every_answer_with_a_newline(setup):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(setup / "model")
    tok = AutoTokenizer.from_pretrained(setup / "model")
    ids = tok("Type: Abbreviation\nWho wrote Hamlet?", return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=8, do_sample=False)
    assert tok.decode(out[0, ids.shape[1] :]) == "\nHuman\nH"


@pytest.mark.slow
def test_fope_eval_longbench_scores_as_longbench_does(setup, capfd, monkeypatch):
    """Hand-worked from LongBench's eval.py / metrics.py on the generations "\\nHuman\\nHuman...":

    trec_e (first-line tasks: lstrip newlines, first line "Human"; classification_score: "Human" is the only class
    in it): rows with answer Human / Location / Numeric score 1, 0, 0 -> 33.33, buckets 0-4k 100, 4-8k 0, 8k+ 0.
    hotpotqa_e (no cut, QA F1 on the whole generation): 32 characters "\\nHuman" x 5 + "\\nH" -> tokens human x5, h;
    common 1 -> precision 1/6, recall 1 -> F1 2/7 = 28.57.
    """
    monkeypatch.chdir(setup)  # not a git checkout: lm-eval's `git describe` would say "fatal: not a git repository"
    out_json = setup / "lb.json"
    argv = ["eval", "longbench", "--model", str(setup / "model"), "--data-dir", str(setup / "data")]
    assert main(argv + ["--tasks", "trec,hotpotqa", "--bootstrap-iters", "0", "--out", str(out_json)]) == 0
    out, err = capfd.readouterr()
    assert "fatal: not a git repository" not in out + err
    assert "neither marked as CausalLM" not in out + err
    assert "Passed an already-initialized model" not in out + err
    # lm-eval's standard table, under the real task names
    assert "|longbench_trec_e    |      5|none  |     0|classification_score|↑  |0.3333|" in out
    assert "|longbench_hotpotqa_e|      5|none  |     0|qa_f1_score" in out
    assert "| longbench_trec_e | 3 | 33.33 | 100.00 (1) | 0.00 (1) | 0.00 (1) |" in out
    assert "| longbench_hotpotqa_e | 1 | 28.57 | 28.57 (1) | – | – |" in out

    rep = json.loads(out_json.read_text())
    for key in ("results", "versions", "n-shot", "configs", "higher_is_better", "n-samples"):
        assert set(rep[key]) == {"longbench_trec_e", "longbench_hotpotqa_e"}, key
    assert rep["versions"]["longbench_trec_e"] == 5.0 and rep["n-shot"]["longbench_trec_e"] == 0
    assert rep["results"]["longbench_trec_e"]["score,none"] == pytest.approx(1 / 3)
    assert rep["results"]["longbench_hotpotqa_e"]["qa_f1_score,none"] == pytest.approx(2 / 7)
    assert rep["longbench"]["longbench_trec_e"] == {
        "score": 33.33,
        "n": 3,
        "by_length": {"0-4k": 100.0, "4-8k": 0.0, "8k+": 0.0},
    }
    assert rep["by_bucket"]["longbench_trec_e"]["0-4k"] == {"score": 100.0, "n": 1}
    preds = rep["predictions"]["longbench_trec_e"]
    assert [p["pred"][:13] for p in preds] == ["\nHuman\nHuman\n"] * 3 and len(preds[0]["pred"]) == 64
    assert len(rep["predictions"]["longbench_hotpotqa_e"][0]["pred"]) == 32  # LongBench's budget, no newline stop
    assert rep["configs"]["longbench_trec_e"]["generation_kwargs"]["until"] == []
    prompt = rep["configs"]["longbench_trec_e"]["doc_to_text"]
    assert prompt.endswith("Here are some examples of questions.\n\n{{context}}\n{{question}}")


@pytest.mark.slow
def test_lm_evals_own_trec_task_would_score_these_generations_zero(setup):
    """The same model through lm-eval's own longbench_trec_e (its `until: ["\\n"]`, its metric): every generation
    stops at the leading newline and scores 0 -- the difference fope's scoring removes."""
    tasks = setup / "own"
    name = lmeval.local_task(
        "longbench_trec_e", setup / "data" / "trec_e.jsonl", tasks, name="own_trec", normalize=lmeval.longbench_row
    )
    lm, _ = lmeval.hf_lm(setup / "model")
    results = lmeval.evaluate(lm, [name], [tasks], bootstrap_iters=0)
    assert results["results"][name]["score,none"] == 0.0
    assert [s["resps"][0][0] for s in results["samples"][name]] == [""] * 3
