"""Files and folders fope writes follow the user's umask (saved models were 0600 and atomic_dir folders, such as the
smollm2 cache, 0700 whatever the umask, so a server under another uid or a colleague could not read them)."""

from __future__ import annotations

import os
import stat

import pytest

import fope.model
from fope.utils import atomic_dir, atomic_json, user_umask


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_written_files_follow_the_umask(tmp_path, umask):
    """A saved model directory (weights, config, tokenizer), an atomic_dir folder and an atomic file: mode 0666 /
    0777 less the umask, for three umasks."""
    from tokenizers import Tokenizer, models

    old = os.umask(umask)
    try:
        assert user_umask() == umask
        model = fope.model.build({"vocab_size": 64, "d_model": 32, "n_layers": 1, "n_heads": 2, "train_len": 32})
        tok = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
        with atomic_dir(tmp_path / "out") as tmp:
            fope.model.save(model, tmp / "model", tokenizer=tok)
        atomic_json(tmp_path / "out" / "x.json", {"a": 1})
    finally:
        os.umask(old)
    paths = [p for p in (tmp_path / "out").rglob("*")] + [tmp_path / "out"]
    assert {p.name for p in paths} >= {"model.safetensors", "config.json", "tokenizer.json", "x.json", "out"}
    for p in paths:
        want = (0o777 if p.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(p.stat().st_mode) == want, (p, oct(stat.S_IMODE(p.stat().st_mode)), oct(want))
