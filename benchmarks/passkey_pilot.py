"""Passkey-task pilot: fine-tune a trained run (--src) on a retrieval-heavy mixture, then the zero-shot passkey test.

    python benchmarks/passkey_pilot.py --src RUN_DIR --name r600s6 --trials 40 --factors 1,2,4 \\
        train.max_steps=600 train.warmup_steps=30 data.retrieval_share=0.6 train.lr=3e-3

The run directory and the JSON log paths are the ones used for docs/results/pilots/passkey.jsonl; edit them to rerun.
"""
import json, sys, time, os, argparse
import torch
ap = argparse.ArgumentParser()
ap.add_argument("--src", required=True)
ap.add_argument("--name", required=True)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--trials", type=int, default=50)
ap.add_argument("--factors", default="1,2,4")
ap.add_argument("overrides", nargs="*")
a = ap.parse_args()
torch.set_num_threads(a.threads)
from fope.train import apply_overrides, train, ExperimentConfig
from fope.eval import load_model, passkey_eval
cfg = ExperimentConfig.from_yaml(f"{a.src}/config.yaml")
ov = [f"train.init_from={a.src}/model", "train.reset_optimizer=true", "train.eval_every=0", "train.save_every=100000"] + a.overrides
cfg = apply_overrides(cfg, ov)
L = cfg.model.train_len
d = f"/work/pilot/runs/pk-{a.name}"
os.system(f"rm -rf {d}")
t0 = time.time(); s = train(cfg, d); t1 = time.time()
m = load_model(d)
lengths = [int(float(f) * L) for f in a.factors.split(",")]
res = passkey_eval(m, m.tokenizer, lengths, trials=a.trials, seed=0, mode="both", depths="uniform", progress=False)
t2 = time.time()
lik = (res.get("likelihood") or {}).get("top1", {}).get("by_length")
rec = dict(name=a.name, src=a.src, overrides=a.overrides, train_s=round(t1-t0,1), eval_s=round(t2-t1,1), acc=res["by_length"], lik_top1=lik)
print(json.dumps(rec), flush=True)
open("/work/pilot/pk.jsonl", "a").write(json.dumps(rec) + "\n")
