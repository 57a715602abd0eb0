"""docs/ARCHITECTURE.md holds: its layers are the import-linter contract, the imports obey them (lazy ones too) and
make no cycle between modules, and every module, name and file it mentions exists."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import pkgutil
import re
import tomllib
from pathlib import Path

import pytest

import fope

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "fope"
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()


def doc_layers() -> list[str]:
    """The packages of the picture, top to bottom."""
    picture = DOC.split("```")[1]
    return re.findall(r"^\s*(fope\.\w+)\s", picture, re.M)


def contract_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(c["layers"] for c in config["contracts"] if c["type"] == "layers")


def modules() -> dict[str, Path]:
    """Every module of the package (``fope.pos.fope`` -> its file)."""
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports() -> dict[str, set[str]]:
    """Module -> the fope modules it imports anywhere in its body (function-level imports included)."""
    mods = modules()

    def resolve(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    out: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {resolve(a.name) for a in node.names if a.name.startswith("fope")}
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                if module.startswith("fope"):
                    found |= {resolve(f"{module}.{a.name}") for a in node.names}
        out[name] = {m for m in found if m and m != name and m != "fope"}
    return out


def layer_of(module: str, layers: list[str]) -> int | None:
    return next((i for i, layer in enumerate(layers) if module == layer or module.startswith(layer + ".")), None)


def test_the_pictured_layers_are_the_contract():
    assert doc_layers() == contract_layers()
    packages = {f"fope.{p.name}" for p in pkgutil.iter_modules(fope.__path__)}
    assert set(doc_layers()) == packages, "every sub-package (and top module) of fope is a layer"
    for layer in doc_layers():  # one paragraph per package
        assert f"\n## {layer}\n" in DOC, f"docs/ARCHITECTURE.md has no section for {layer}"


def test_imports_run_down_the_layers_lazy_ones_included():
    layers = doc_layers()  # top first
    upward = [
        f"{a} -> {b}"
        for a, targets in imports().items()
        for b in targets
        if layer_of(a, layers) is not None
        and layer_of(b, layers) is not None
        and layer_of(b, layers) < layer_of(a, layers)
    ]
    assert not upward, "imports that run up the layers:\n" + "\n".join(sorted(upward))


def test_no_import_cycle_between_modules():
    graph = imports()
    cycles, index, low, stack, on_stack = [], {}, {}, [], set()

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"modules that import each other (also through function-level imports): {cycles}"


def _resolve(dotted: str):
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_every_dotted_name_exists():
    names = sorted(set(re.findall(r"`(fope(?:\.\w+)+)", DOC)))
    assert len(names) > 80
    missing = []
    for name in names:
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            missing.append(name)
    assert not missing, f"docs/ARCHITECTURE.md names what does not exist: {missing}"


def _everything_named() -> set[str]:
    """Every name a module of fope defines: its attributes, its classes' attributes, dataclass fields."""
    out: set[str] = set()
    for name in modules():
        if name == "fope.hf.vllm_model" and importlib.util.find_spec("vllm") is None:
            continue  # vLLM's side of the plugin: imports vLLM, which lives in .venv-engines only
        module = importlib.import_module(name)
        out |= set(vars(module))
        for cls in (c for c in vars(module).values() if inspect.isclass(c) and c.__module__ == name):
            out |= set(dir(cls))
            if dataclasses.is_dataclass(cls):
                out |= {f.name for f in dataclasses.fields(cls)}
    return out


def test_every_code_name_exists():
    """A bare name in backticks that looks like code (has an underscore or a capital, or is a call) is defined."""
    known = _everything_named()
    prose = re.sub(r"```.*?```", "", DOC, flags=re.S)  # inline code only, not the pictures
    tokens = set(re.findall(r"`([^`\n]+)`", prose))
    code = {
        m.group(1)
        for t in tokens
        if (m := re.fullmatch(r"([A-Za-z_]\w*)(\(.*\))?", t))
        and ("_" in m.group(1) or not m.group(1).islower() or m.group(2))
    }
    assert len(code) > 30
    assert not sorted(code - known), f"docs/ARCHITECTURE.md names what fope does not define: {sorted(code - known)}"


def _around() -> dict[str, str]:
    """The "Around the package" picture: top-level folder -> its text (continuation lines included)."""
    entries: dict[str, str] = {}
    folder = ""
    for line in DOC.split("## Around the package")[1].split("```")[1].splitlines():
        if line and not line.startswith(" "):
            folder = line.split("/")[0]
        entries[folder] = entries.get(folder, "") + line + "\n"
    return entries


@pytest.mark.parametrize("folder", ["benchmarks", "scripts"])
def test_every_benchmark_and_script_is_named(folder):
    named = set(re.findall(r"([\w-]+\.(?:py|sh))", _around()[folder]))
    files = {p.name for p in (ROOT / folder).iterdir() if p.is_file()}
    assert named == files, f"{folder}/ in docs/ARCHITECTURE.md: named {sorted(named)}, present {sorted(files)}"


def test_every_test_file_named_exists():
    for path in re.findall(r"(tests/[\w/]+\.py)", DOC):
        assert (ROOT / path).is_file(), path
