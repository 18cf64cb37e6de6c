"""Dependencies point one way: a package imports only itself and the packages to its left.

``cognitive_reserve`` ← ``datamodules`` ← ``lightning_modules`` ← ``tracking`` ← ``run_outputs`` ← ``callbacks``
← ``run_cli`` ← ``run_reports`` ← ``studies`` ← ``run.py`` (``studies`` starts ``run.py`` in subprocesses, never imports
it). Every ``.py`` file is parsed (not imported), so imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers.cli import ROOT

#: The layers, lowest first; ``run.py`` is the top.
LAYERS = (
    "cognitive_reserve", "datamodules", "lightning_modules", "tracking", "run_outputs", "callbacks", "run_cli",
    "run_reports", "studies", "run",
)  # fmt: skip
#: Frameworks the framework-free core must never import.
FRAMEWORKS = ("lightning", "pytorch_lightning")


def layer_files() -> list[Path]:
    files = [path for layer in LAYERS[:-1] for path in sorted((ROOT / layer).rglob("*.py"))]
    return [*files, ROOT / "run.py"]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every import in the file; relative imports resolve to its package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = path.relative_to(ROOT).parts[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, package if node.level else node.module or ""))
        elif _is_import_module_call(node):
            found.append((node.lineno, node.args[0].value))
    return found


def _is_import_module_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
        return False
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    return name in ("import_module", "__import__") and isinstance(node.args[0].value, str)


def layer_of(path: Path) -> str:
    top = path.relative_to(ROOT).parts[0]
    return "run" if top == "run.py" else top


def violations(path: Path) -> list[str]:
    own = LAYERS.index(layer_of(path))
    found = []
    for line, module in imported_modules(path):
        top = module.split(".")[0]
        if top in LAYERS and LAYERS.index(top) > own:
            found.append(f"{path.relative_to(ROOT)}:{line} imports {module} (layer {top} is above {layer_of(path)})")
        if layer_of(path) == "cognitive_reserve" and top in FRAMEWORKS:
            found.append(f"{path.relative_to(ROOT)}:{line} imports {module} (the core is framework-free)")
    return found


@pytest.mark.parametrize("path", layer_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_imports_point_down_the_layers(path: Path) -> None:
    assert violations(path) == []


def test_checker_catches_an_upward_import_inside_a_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_root = tmp_path
    (fake_root / "datamodules").mkdir()
    module = fake_root / "datamodules" / "bad.py"
    module.write_text(
        "import torch\nfrom cognitive_reserve import io\n\ndef f():\n    from lightning_modules.gpt2_lm import X\n"
        "    import callbacks\n    return importlib.import_module('tracking.wandb')\n"
    )
    (fake_root / "cognitive_reserve").mkdir()
    core = fake_root / "cognitive_reserve" / "core.py"
    core.write_text("from . import io\nimport lightning.pytorch as pl\n")
    monkeypatch.setattr(f"{__name__}.ROOT", fake_root)
    assert [entry.split(" imports ")[1].split(" ")[0] for entry in violations(module)] == [
        "lightning_modules.gpt2_lm", "callbacks", "tracking.wandb",
    ]  # fmt: skip
    assert violations(core) == ["cognitive_reserve/core.py:2 imports lightning.pytorch (the core is framework-free)"]


def test_every_layer_is_a_package_that_exists() -> None:
    for layer in LAYERS[:-1]:
        assert (ROOT / layer / "__init__.py").is_file(), layer
    assert (ROOT / "run.py").is_file()


def import_cycle(package: Path) -> list[str]:
    """A cycle of imports among the modules of ``package`` (those under ``TYPE_CHECKING`` count too), or []."""
    modules = {f"{package.name}.{path.stem}": path for path in package.glob("*.py") if path.stem != "__init__"}
    graph = {name: [m for _, m in imported_modules(path) if m in modules] for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str]:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return []
        for imported in graph[name]:
            if cycle := visit(imported, [*path, name]):
                return cycle
        done.add(name)
        return []

    return next((cycle for name in sorted(graph) if (cycle := visit(name, []))), [])


def test_the_core_has_no_import_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert import_cycle(ROOT / "cognitive_reserve") == []
    fake = tmp_path / "cognitive_reserve"
    fake.mkdir()
    (fake / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cognitive_reserve.b import B\n"
    )
    (fake / "b.py").write_text("from cognitive_reserve.a import A\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert import_cycle(fake) == ["cognitive_reserve.a", "cognitive_reserve.b", "cognitive_reserve.a"]


#: Names of GPT-2's modules: the model declares its layout (``lightning_modules/gpt2_layout.py``), the core reads it.
GPT2_NAMES = ("c_attn", "c_fc", "c_proj", "transformer.h", "Conv1D", "n_head", "n_embd")


def test_the_core_holds_no_gpt2_name_outside_its_docstrings_and_comments() -> None:
    """Issue #30: the core names no GPT-2 module in code; its docstrings may use GPT-2 as an example."""
    found = []
    for path in sorted((ROOT / "cognitive_reserve").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
        }  # fmt: skip
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) and id(node) not in docstrings else None
            text = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else text
            if isinstance(text, str) and any(name in text for name in GPT2_NAMES):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text[:60]!r}")
    assert not found, found


def test_the_architecture_page_names_every_module_of_its_layer() -> None:
    """Each layer's row of docs/architecture.md's table names every module of the package (``x.py``, or its
    command: ``python -m pkg.x``, ``x``), so a newcomer finds from the page where a thing lives."""
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    unnamed = []
    for layer in LAYERS[:-1]:
        row = next(line for line in rows if line.startswith(f"| `{layer}/` |"))
        for path in sorted((ROOT / layer).glob("*.py")):
            names = (f"`{path.name}`", f"{layer}.{path.stem}`", f"`{path.stem}`")
            if path.name != "__init__.py" and not any(name in row for name in names):
                unnamed.append(f"{layer}/{path.name}")
    assert unnamed == [], "name them in their layer's row of docs/architecture.md"
