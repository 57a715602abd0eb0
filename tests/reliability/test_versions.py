"""Resuming across code versions: checkpoints record the code (fope version, git commit) and the config schema; an
older layout resumes with the new fields' defaults (one line), a newer one is refused with advice that keeps the run,
and a loss-changing upgrade is reported (probe loss of the restored weights, recomputed by this code)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from fope.cli import main
from fope.train import train
from fope.train.config import CONFIG_SCHEMA
from fope.utils import git_info

from .helpers import records, tiny_experiment


@pytest.fixture(scope="module")
def stopped(shards, tmp_path_factory):
    """A run stopped at step 2 of 4 (to be copied by each test) and the uninterrupted run."""
    root = tmp_path_factory.mktemp("versions")
    cfg = tiny_experiment(shards, max_steps=4, save_every=2, eval_every=2, warmup_steps=1)
    train(cfg, root / "stopped", stop_at=2)
    train(cfg, root / "ref")
    return root / "stopped", root / "ref"


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _rewrite(ckpt: Path, name: str, edit) -> None:
    """Change a checkpoint file the way another fope would have written it (its checksum recomputed)."""
    path = ckpt / name
    if name.endswith(".yaml"):
        data = yaml.safe_load(path.read_text())
        edit(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    else:
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
    sums = json.loads((ckpt / "checksums.json").read_text())
    sums[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    (ckpt / "checksums.json").write_text(json.dumps(sums))


def test_checkpoint_records_code_version_and_schema(stopped):
    """state.json: fope version, git commit when known, config schema, probe loss."""
    state = json.loads((stopped[0] / "checkpoint" / "state.json").read_text())
    import fope

    assert state["code"]["fope_version"] == fope.__version__
    assert state["code"]["git_commit"] == git_info()["commit"]
    assert state["config_schema"] == CONFIG_SCHEMA and isinstance(state["probe_loss"], float)


def test_older_config_layout_resumes_with_defaults(stopped, tmp_path, capsys):
    """A checkpoint written before train.loss_chunk existed resumes with its default, said in one line."""
    out = _copy(stopped[0], tmp_path / "run")
    _rewrite(out / "checkpoint", "config.yaml", lambda d: d["train"].pop("loss_chunk"))
    _rewrite(out / "checkpoint", "state.json", lambda d: d.update(config_schema=CONFIG_SCHEMA - 1))
    assert main(["train", "--resume", str(out)]) == 0
    err = capsys.readouterr().err
    notes = [ln for ln in err.splitlines() if "before train.loss_chunk existed" in ln]
    assert len(notes) == 1 and "resuming with the default train.loss_chunk=0" in notes[0], err
    assert records(out)[-1]["step"] == 4


@pytest.mark.parametrize("how", ["newer schema", "unknown key"])
def test_newer_config_is_refused_without_destructive_advice(stopped, tmp_path, capsys, how):
    """A checkpoint written by a newer fope (schema, or a key this one does not know): one line, the run kept."""
    out = _copy(stopped[0], tmp_path / "run")
    if how == "newer schema":
        _rewrite(out / "checkpoint", "state.json", lambda d: d.update(config_schema=CONFIG_SCHEMA + 1))
    else:
        _rewrite(out / "checkpoint", "config.yaml", lambda d: d["train"].update(future_field=1))
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert main(["train", "--resume", str(out)]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(out / "checkpoint" / "config.yaml") in lines[0], lines
    assert "resume it with the fope that wrote it" in lines[0] and "delete" not in lines[0]
    assert ("schema" in lines[0]) if how == "newer schema" else ("train.future_field" in lines[0])
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_loss_changing_upgrade_is_reported(stopped, tmp_path, capsys, monkeypatch):
    """Code whose forward gives another loss on the same weights: the resume says so and records it; the same code
    resumes silently and exactly."""
    import fope.model.lm as lm

    out = _copy(stopped[0], tmp_path / "same")
    assert main(["train", "--resume", str(out)]) == 0
    assert "loss-changing" not in capsys.readouterr().err
    assert records(out) == records(stopped[1])

    real = lm.CausalLM.forward

    def changed(self, *a, **kw):  # e.g. an upgrade that scales the logits
        out = real(self, *a, **kw)
        return out * 1.5 if kw.get("targets") is None else out

    monkeypatch.setattr(lm.CausalLM, "forward", changed)
    out = _copy(stopped[0], tmp_path / "upgraded")
    assert main(["train", "--resume", str(out)]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "loss-changing upgrade" in ln]
    assert len(lines) == 1 and str(out / "checkpoint") in lines[0], lines
    events = [r for r in records(out) if r.get("event") == "resume"]
    assert len(events) == 1 and events[0]["step"] == 2 and "probe_loss" in events[0]["loss_changed"]
