"""Save and load Hugging Face model directories of `FopeForCausalLM` (and plain HF causal LMs).

A saved directory holds config.json (with ``auto_map``), model.safetensors, generation_config.json, the tokenizer
files when given, and the remote code (``configuration_fope.py``, ``modeling_fope.py`` and fope.pos's ``functional.py``,
``scaling.py`` and ``options.py`` that the model imports), so that

    AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)

works on a machine that has transformers but not fope.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

_POS_DIR = Path(__file__).parents[1] / "pos"
#: remote-code file -> its source: configuration + model, and fope.pos's pure math modules (only math + torch) that
#: the model imports relatively
REMOTE_SOURCES = {
    name: Path(__file__).parent / "remote" / name for name in ("configuration_fope.py", "modeling_fope.py")
}
REMOTE_SOURCES.update({name: _POS_DIR / name for name in ("functional.py", "scaling.py", "options.py")})
REMOTE_FILES = tuple(REMOTE_SOURCES)
AUTO_MAP = {
    "AutoConfig": "configuration_fope.FopeConfig",
    "AutoModel": "modeling_fope.FopeModel",
    "AutoModelForCausalLM": "modeling_fope.FopeForCausalLM",
}
MODEL_TYPE = "fope_llama"


def save(model: Any, out_dir: str | Path, *, tokenizer: Any = None) -> Path:
    """Write ``model`` (a FopeForCausalLM) as a self-contained HF directory; returns the directory."""
    out = Path(out_dir)
    if getattr(model.config, "model_type", None) != MODEL_TYPE:
        raise ValueError(
            f"save expects a FopeForCausalLM (model_type {MODEL_TYPE!r}), got "
            f"{getattr(model.config, 'model_type', type(model).__name__)!r}; convert it first"
        )
    out.mkdir(parents=True, exist_ok=True)
    model.config.auto_map = dict(AUTO_MAP)
    model.save_pretrained(out)
    for name, source in REMOTE_SOURCES.items():
        shutil.copyfile(source, out / name)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    return out


def is_fope_dir(path: str | Path) -> bool:
    """True if ``path`` is an HF directory of a FopeForCausalLM."""
    cfg = Path(path) / "config.json"
    return cfg.is_file() and json.loads(cfg.read_text()).get("model_type") == MODEL_TYPE


def looks_local(name: str) -> bool:
    """A path rather than a hub name: empty, starts with ``.`` ``/`` ``~``, has more than one ``/``, or its first part
    is a folder here (``runs/tiny`` when ``runs/`` exists)."""
    parts = name.split("/")
    return (
        not name or name.startswith((".", "/", "~")) or len(parts) > 2 or (len(parts) == 2 and Path(parts[0]).is_dir())
    )


def resolve(name: str | Path) -> str | Path:
    """Where a Hugging Face model lives (the one path-or-hub-name rule): ``smollm2`` -> its dequantized cache
    directory (built on first use), an existing directory -> that Path (a fine-tuning run directory -> its
    ``model/``), anything else -> the string, for the Hub (or its local cache). FileNotFoundError for a directory
    without config.json and for a name that `looks_local` but does not exist."""
    from .smollm import ensure_smollm2_dir, is_smollm2_name

    if is_smollm2_name(str(name)):
        return ensure_smollm2_dir()
    path, text = Path(name), str(name)
    if path.is_dir():
        if not (path / "config.json").is_file() and (path / "model" / "config.json").is_file():
            path = path / "model"  # a fine-tuning run directory (fope.hf.finetune): its published model
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} holds no config.json: neither a fope model or run directory nor a Hugging Face model directory"
            )
        return path
    if path.exists():
        raise FileNotFoundError(f"model {text!r} is a file, not a model directory")
    if looks_local(text):
        raise FileNotFoundError(f"model directory {text!r} does not exist (and it is no hub name org/name)")
    return text


def load(
    path: str | Path,
    *,
    device: str = "cpu",
    dtype: Any = None,
    rope_scaling: Any = None,
    trust_remote_code: bool = False,
) -> Any:
    """Load a model (eval mode): a FopeForCausalLM directory with fope's own classes (no remote code executed), any
    other causal LM directory or hub name with ``AutoModelForCausalLM``, and the name ``smollm2`` (fope.hf.smollm).

    ``rope_scaling`` ("yarn:2", "linear:4", or an HF dict; see `fope.hf.convert.parse_rope_scaling`) replaces the
    model's frequency scaling before the weights load (theta kept; yarn/dynamic get the model's context as
    ``original_max_position_embeddings``), so HF's own YaRN / PI / dynamic NTK need no hand-edited config.
    ``trust_remote_code`` lets transformers run the Python code a (non-FoPE) model directory ships (off by default).
    Models in every format, native ones included: `fope.eval.loader.load_model`."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from .convert import hf_rope_scaling, parse_rope_scaling

    source = resolve(path)
    kwargs: dict[str, Any] = {} if dtype is None else {"dtype": dtype}
    if isinstance(source, Path) and is_fope_dir(source):
        from .remote.modeling_fope import FopeConfig, FopeForCausalLM

        cls, config = FopeForCausalLM, FopeConfig.from_pretrained(source)
    else:
        kwargs["trust_remote_code"] = trust_remote_code
        cls, config = AutoModelForCausalLM, AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    scaling = parse_rope_scaling(rope_scaling)
    if scaling is not None:
        hf_rope_scaling(config, scaling, native_ntk=cls is not AutoModelForCausalLM)
    model = cls.from_pretrained(source, config=config, **kwargs)
    return model.to(device).eval()


def register_auto_classes() -> None:
    """Register fope's own FopeConfig / FopeModel / FopeForCausalLM with transformers' Auto classes (idempotent).

    Afterwards ``AutoModelForCausalLM.from_pretrained(fope_dir)`` loads FoPE directories *without*
    ``trust_remote_code`` (transformers prefers the registered local classes; the directory's copy of the remote
    code is not executed). Used by lm-eval's runs (fope.eval.lmeval, fope.eval.downstream).
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    from .remote.configuration_fope import FopeConfig
    from .remote.modeling_fope import FopeForCausalLM, FopeModel

    AutoConfig.register(MODEL_TYPE, FopeConfig, exist_ok=True)
    AutoModel.register(FopeConfig, FopeModel, exist_ok=True)
    AutoModelForCausalLM.register(FopeConfig, FopeForCausalLM, exist_ok=True)


def load_tokenizer(path: str | Path, *, trust_remote_code: bool = False) -> Any:
    """The HF tokenizer saved with a model directory (or SmolLM2's, for the name ``smollm2``; or a hub name).

    For FopeForCausalLM directories the config is read with fope's own class, so no remote code is asked for.
    (A plain ``AutoTokenizer.from_pretrained(fope_dir)`` always reads config.json first in transformers 5 and so
    asks to trust the remote code; ``PreTrainedTokenizerFast.from_pretrained(fope_dir)`` does not.)
    ``trust_remote_code``: let another model directory's own tokenizer code run (off by default)."""
    from transformers import AutoTokenizer

    from .smollm import is_smollm2_name, load_smollm2_tokenizer

    if is_smollm2_name(str(path)):
        return load_smollm2_tokenizer()
    source = resolve(path)
    if isinstance(source, Path) and is_fope_dir(source):
        from .remote.configuration_fope import FopeConfig

        return AutoTokenizer.from_pretrained(source, config=FopeConfig.from_pretrained(source))
    return AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)


__all__ = [
    "AUTO_MAP",
    "REMOTE_FILES",
    "is_fope_dir",
    "load",
    "load_tokenizer",
    "looks_local",
    "register_auto_classes",
    "resolve",
    "save",
]
