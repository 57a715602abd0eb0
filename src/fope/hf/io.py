"""Save and load Hugging Face model directories of `FopeForCausalLM` (and plain HF causal LMs).

A saved directory holds config.json (with ``auto_map``), model.safetensors, generation_config.json, the tokenizer
files when given, and the remote code (``configuration_fope.py``, ``modeling_fope.py`` and fope.pos's ``functional.py``,
``scaling.py`` and ``options.py`` that the model imports), so that

    AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)

works on a machine that has transformers but not fope.
"""

from __future__ import annotations

import contextlib
import functools
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
    """True if ``path`` is an HF directory of a FopeForCausalLM (its config.json read by `read_config`)."""
    cfg = Path(path) / "config.json"
    return cfg.is_file() and read_config(path).get("model_type") == MODEL_TYPE


def is_engine_dir(path: str | Path) -> bool:
    """True if ``path`` is an HF directory in the serving engines' FoPE format (fope.hf.engines: rope_scaling or
    rope_parameters with fope_init_factor / fope_sep_head / num_inv_freq)."""
    from .engines import is_engine_config

    cfg = Path(path) / "config.json"
    return cfg.is_file() and is_engine_config(read_config(path))


def read_config(directory: str | Path) -> dict[str, Any]:
    """A model directory's config.json as a dict; FileProblem (a ValueError) naming the file when it is empty, not
    JSON, not a JSON object or has no ``model_type``; FileNotFoundError when it is missing."""
    from fope.utils import FileProblem

    path = Path(directory) / "config.json"
    fix = "restore the model's config.json (re-save or re-download the model)"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no config.json in the model directory") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FileProblem(path, f"unreadable ({type(e).__name__}: {e})", fix) from None
    if not text.strip():
        raise FileProblem(path, "empty file, not a model config", fix)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise FileProblem(path, f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})", fix) from None
    if not isinstance(data, dict):
        raise FileProblem(path, f"expected a JSON object (a model config), got a JSON {type(data).__name__}", fix)
    if data.get("format") == "fope":
        raise ValueError(
            f"{Path(directory)} is a native fope model directory; this needs the Hugging Face format: export it "
            f"first (fope hf export --model {Path(directory)} --out DIR)"
        )
    if not isinstance(data.get("model_type"), str) or not data["model_type"]:
        raise FileProblem(path, "no 'model_type' (not a Hugging Face model config)", fix)
    return data


def check_weight_files(directory: str | Path) -> list[Path]:
    """The safetensors weight files of a model directory (a sharded model's files from its index), each opened to
    check that it is complete: FileProblem naming the file for a truncated or corrupt one, FileNotFoundError for a
    shard the index names that is not there. Files in other formats (``pytorch_model.bin``) are left to
    transformers."""
    from safetensors import safe_open

    from fope.utils import FileProblem, json_object, reading

    directory = Path(directory)
    fix = "re-save or re-download the model"
    files = sorted(directory.glob("*.safetensors"))
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        with reading(index, "safetensors index", fix):
            weight_map = json_object(index.read_text(encoding="utf-8"), str(index)).get("weight_map")
        if not isinstance(weight_map, dict):
            raise FileProblem(index, "no 'weight_map' object", fix)
        for name in sorted(set(weight_map.values())):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory / name}: weights shard named in {index.name} is missing; {fix}")
    for file in files:
        with reading(file, "safetensors weights file", fix), safe_open(str(file), "pt") as handle:
            handle.keys()
    return files


def looks_local(name: str) -> bool:
    """A name that can only be a path: empty, starts with ``/`` ``.`` or ``~``, has more than one ``/``, or its first
    part is a folder here (``runs/tiny`` when ``runs/`` exists). Anything else of the form ``org/name`` (or a bare
    ``name``) may be a Hugging Face Hub repo."""
    parts = name.split("/")
    return (
        not name or name.startswith((".", "/", "~")) or len(parts) > 2 or (len(parts) == 2 and Path(parts[0]).is_dir())
    )


def resolve(name: str | Path) -> str | Path:
    """Where a Hugging Face model lives (the one path-or-hub-name rule): ``smollm2`` -> its dequantized cache
    directory (built on first use), an existing directory -> that Path (a fine-tuning run directory -> its
    ``model/``; its config.json checked by `read_config`), a name that `looks_local` -> FileNotFoundError
    ``no such directory: NAME`` at once, anything else -> `hub_source` (the Hub, tried once, or its local cache)."""
    from .smollm import ensure_smollm2_dir, is_smollm2_name

    if is_smollm2_name(str(name)):
        return ensure_smollm2_dir()
    text = str(name)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists() and (path / "model" / "config.json").is_file():
            path = path / "model"  # a fine-tuning run directory (fope.hf.finetune): its published model
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                f"{path} holds no config.json: neither a fope model or run directory nor a Hugging Face model directory"
            )
        read_config(path)
        return path
    if path.exists():
        raise FileNotFoundError(f"model {text!r} is a file, not a model directory")
    if looks_local(text):
        raise FileNotFoundError(f"no such directory: {text}")
    return hub_source(text)


#: seconds the one Hub request of `hub_source` may take
HUB_TIMEOUT_S = 5.0


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set: no request to the Hub, only its local cache."""
    import os

    from huggingface_hub import constants

    words = ("1", "on", "yes", "true")
    return bool(constants.HF_HUB_OFFLINE) or any(
        os.environ.get(k, "").strip().lower() in words for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_source(name: str) -> str | Path:
    """A Hub name as something transformers loads without retrying: the name itself when the Hub answers (one
    request, `HUB_TIMEOUT_S`, no retries), the cached snapshot directory when the Hub cannot be asked (offline, or
    unreachable) but its cache has the model; otherwise FileNotFoundError in one line saying that there is no such
    local directory, why the Hub gave nothing, and how to use a local copy."""
    return _hub_source(name, hub_offline())


@functools.lru_cache(maxsize=64)
def _hub_source(name: str, offline: bool) -> str | Path:
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    def cached() -> Path | None:
        try:
            found = huggingface_hub.try_to_load_from_cache(name, "config.json")
        except (HFValidationError, ValueError):
            return None
        return Path(found).parent if isinstance(found, str) else None

    if offline:
        snapshot = cached()
        if snapshot is not None:
            return snapshot
        reason = "was not asked (HF_HUB_OFFLINE is set) and its local cache has no copy"
    else:
        try:
            huggingface_hub.HfApi().model_info(name, timeout=HUB_TIMEOUT_S)
            return name
        except GatedRepoError:
            return name  # it exists; transformers says what access it needs
        except RepositoryNotFoundError:
            reason = "has no such repo (or it is private: log in with `hf auth login`)"
        except HFValidationError as e:
            reason = f"cannot have it either ({str(e).splitlines()[0][:120]})"
        except Exception as e:  # no network, DNS, timeout, proxy, HTTP 5xx: one line, no retry loop
            snapshot = cached()
            if snapshot is not None:
                return snapshot
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
            reason = f"is unreachable ({type(e).__name__}: {first})"
    raise FileNotFoundError(
        f"no such local directory: {name!r}; as a Hugging Face Hub name, the Hub {reason}. To use a local copy, "
        f"pass its directory (e.g. ./{name} or an absolute path), or download it once where there is network "
        f"(`hf download {name}`) and run with HF_HUB_OFFLINE=1"
    )


def check_model_type(config: Any, supported: Any, where: Any, what: str = "this command") -> None:
    """ValueError naming the model and its model_type when ``config`` (a config object or dict) has a model_type
    not in ``supported``; checked from the config, before any weight is read."""
    model_type = config.get("model_type") if isinstance(config, dict) else getattr(config, "model_type", None)
    if model_type not in tuple(supported):
        raise ValueError(
            f"model {str(where)!r} has model_type {model_type!r}, which {what} does not support "
            f"(supported: {', '.join(map(repr, supported))})"
        )


def check_loaded_keys(info: dict[str, Any], where: Any) -> None:
    """ValueError naming the model and the first offending weight names when transformers' loading info shows
    weights that were not used (unexpected), not found (missing) or of another shape: a config edited to fewer
    layers or another architecture must not load with weights silently dropped or left random."""
    problems = []
    for key, label in (("unexpected_keys", "unexpected"), ("missing_keys", "missing"), ("mismatched_keys", "shape")):
        names = sorted(str(k[0] if isinstance(k, tuple) else k) for k in (info.get(key) or ()))
        if names:
            problems.append(f"{len(names)} {label} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})")
    if problems:
        raise ValueError(
            f"model {str(where)!r}: its weights do not match its config.json: {'; '.join(problems)}; refusing to "
            "load with weights dropped or left random (was config.json edited? restore it)"
        )


def load(
    path: str | Path,
    *,
    device: str = "cpu",
    dtype: Any = None,
    rope_scaling: Any = None,
    trust_remote_code: bool = False,
    model_types: Any = None,
    what: str = "this command",
) -> Any:
    """Load a model (eval mode): a FopeForCausalLM directory with fope's own classes (no remote code executed), any
    other causal LM directory or hub name with ``AutoModelForCausalLM``, and the name ``smollm2`` (fope.hf.smollm).

    A checkpoint in the serving engines' FoPE format (vLLM / SGLang / lmdeploy / xtuner; `fope.hf.engines`) loads
    as a FopeForCausalLM, read with the pad `fope.hf.engines.engine_pad` chooses ($FOPE_ENGINE_PAD, else the
    checkpoint's record, else "one").

    Checked before any weight is read: the path or hub name (`resolve`), config.json (`read_config`), the
    safetensors files (`check_weight_files`), and, with ``model_types``, the model_type (`check_model_type`; ``what``
    names the command in its message). After
    loading, weights unused / missing / of another shape are refused (`check_loaded_keys`); transformers' own load
    report and progress bar are not shown.

    ``rope_scaling`` ("yarn:2", "linear:4", or an HF dict; see `fope.hf.convert.parse_rope_scaling`) replaces the
    model's frequency scaling before the weights load (theta kept; yarn/dynamic get the model's context as
    ``original_max_position_embeddings``), so HF's own YaRN / PI / dynamic NTK need no hand-edited config.
    ``trust_remote_code`` lets transformers run the Python code a (non-FoPE) model directory ships (off by default).
    Models in every format, native ones included: `fope.eval.loader.load_model`."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from .convert import hf_rope_scaling, parse_rope_scaling

    source = resolve(path)
    scaling = parse_rope_scaling(rope_scaling)
    kwargs: dict[str, Any] = {} if dtype is None else {"dtype": dtype}
    if isinstance(source, Path):
        if model_types is not None:
            check_model_type(read_config(source), model_types, path, what)
        check_weight_files(source)
    if isinstance(source, Path) and is_engine_dir(source):  # the serving engines' FoPE (fope.hf.engines)
        if scaling is not None:
            raise ValueError(f"model {str(path)!r}: rope_scaling is not supported on the engines' FoPE format")
        with quiet_transformers():
            return load_engine(source, dtype=dtype, device=device)
    if isinstance(source, Path) and is_fope_dir(source):
        from .remote.modeling_fope import FopeConfig, FopeForCausalLM

        cls, config = FopeForCausalLM, FopeConfig.from_pretrained(source)
    else:
        kwargs["trust_remote_code"] = trust_remote_code
        cls, config = AutoModelForCausalLM, AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
        if model_types is not None:
            check_model_type(config, model_types, path, what)
    if scaling is not None:
        hf_rope_scaling(config, scaling, native_ntk=cls is not AutoModelForCausalLM)
    with quiet_transformers():
        try:
            model, info = cls.from_pretrained(source, config=config, output_loading_info=True, **kwargs)
        except RuntimeError as e:
            if "mismatched_sizes" not in str(e) and "size mismatch" not in str(e):
                raise
            raise ValueError(
                f"model {str(path)!r}: weight shapes do not match its config.json (was it edited? restore it)"
            ) from None
    check_loaded_keys(info, path)
    return model.to(device).eval()


def _read_state(directory: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    files = check_weight_files(directory)
    if not files:
        raise FileNotFoundError(f"{directory}: no *.safetensors weights (the engines' FoPE format is read from them)")
    state: dict[str, Any] = {}
    for file in files:
        state.update(load_file(str(file)))
    return state


def load_engine(directory: str | Path, *, pad: str | None = None, dtype: Any = None, device: str = "cpu"):
    """A `FopeForCausalLM` (eval mode) with every weight of an engine-format checkpoint directory."""
    from .convert import load_weights
    from .engines import engine_state_to_fope, fope_config
    from .remote.modeling_fope import FopeForCausalLM

    directory = Path(directory)
    config = read_config(directory)
    cfg = fope_config(config, pad=pad)
    state = _read_state(directory)
    if cfg.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    fope_state = engine_state_to_fope(state, cfg)
    with quiet_transformers():
        model = FopeForCausalLM(cfg)
    try:
        load_weights(model, fope_state)
    except (ValueError, RuntimeError) as e:
        first = str(e).splitlines()[0][:200]
        raise ValueError(
            f"model {str(directory)!r}: its weights do not fit its engine-format config ({first})"
        ) from None
    if cfg.tie_word_embeddings:
        model.tie_weights()
    target = dtype if dtype is not None else next(iter(state.values())).dtype
    return model.to(device=device, dtype=target).eval()


@contextlib.contextmanager
def quiet_transformers():
    """transformers' warnings, load report and progress bars off inside the block (errors still raise)."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


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
    if isinstance(source, Path) and is_engine_dir(source):  # transformers warns about the FoPE rope keys
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    return AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)


__all__ = [
    "AUTO_MAP",
    "HUB_TIMEOUT_S",
    "REMOTE_FILES",
    "check_loaded_keys",
    "check_model_type",
    "check_weight_files",
    "hub_offline",
    "hub_source",
    "is_engine_dir",
    "is_fope_dir",
    "load",
    "load_engine",
    "load_tokenizer",
    "looks_local",
    "quiet_transformers",
    "read_config",
    "register_auto_classes",
    "resolve",
    "save",
]
