"""Import rules: the library never loads the CLI stack, and layers point one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import regman

PACKAGE = Path(regman.__file__).parent

LAYERS = {
    "_version": set(),
    "errors": set(),
    "names": {"errors"},
    "spec": {"errors", "specfile", "yamlsafe"},
    "yamlsafe": {"errors"},
    "specfile": {"errors", "spec", "yamlsafe"},
    "atomic": {"errors"},
    "index": {"errors", "spec"},
    "locks": {"errors", "atomic"},
    "store": {"errors", "names", "spec", "specfile", "yamlsafe", "atomic", "index", "locks"},
    "registry": {"errors", "names", "spec", "specfile", "store", "scoring", "atomic"},
    "manager": {"errors", "names", "spec", "store", "registry"},
    "scoring": {"errors", "spec"},
    "resolution": {"scoring", "spec"},
    "candidates": {"scoring", "spec", "resolution"},
    "resolver": {
        "errors",
        "names",
        "spec",
        "registry",
        "scoring",
        "store",
        "resolution",
        "candidates",
    },
    "doctor": {"errors", "names", "spec", "store", "atomic", "index"},
    "compare": {"errors", "registry"},
}


def regman_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("regman"):
            found.add(node.module.split(".")[1] if "." in node.module else "")
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("regman."))
    return found - {""}


@pytest.mark.parametrize(
    "module", sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
)
def test_layers_point_one_way(module: str) -> None:
    allowed = LAYERS.get(module)
    assert allowed is not None, f"regman/{module}.py has no place in LAYERS: add it"
    assert regman_imports(PACKAGE / f"{module}.py") <= allowed


def test_nothing_imports_cli() -> None:
    for path in PACKAGE.glob("*.py"):
        if path.stem != "__main__":
            assert "cli" not in regman_imports(path), path


def test_library_import_loads_no_cli_stack() -> None:
    code = (
        "import sys, regman\n"
        "m = regman.RegistryManager(':memory:')\n"
        "m.get_registry('a')\n"
        "print(sorted(k for k in ('typer', 'rich', 'click', 'pydantic', 'yaml', 'filelock') "
        "if k in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_all_names_importable() -> None:
    for name in regman.__all__:
        assert getattr(regman, name) is not None, name
    seed_names = [
        "RegistryManager",
        "get_registry",
        "list_contexts",
        "clear_context",
        "get_context_stats",
        "registry_manager",
        "integrate_with_pipeline_builder",
        "get_pipeline_registry",
        "get_default_registry",
        "SpecificationRegistry",
        "DependencyResolver",
    ]
    assert set(seed_names) <= set(regman.__all__)


def test_only_safe_yaml_loading() -> None:
    unsafe = (
        "yaml.load(",
        "yaml.Loader",
        "UnsafeLoader",
        "FullLoader",
        "unsafe_load",
        "yaml.load_all(",
    )
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        for needle in unsafe:
            assert needle not in text, f"{path}: {needle}"
