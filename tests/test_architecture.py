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
    "store": {"errors", "names", "spec", "specfile", "yamlsafe", "store"},
    "registry": {"errors", "names", "spec", "specfile", "store", "scoring", "bundle"},
    "manager": {"errors", "names", "spec", "store", "registry", "plan"},
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
    "compare": {"errors", "registry"},
    "plan": {"compare", "resolution", "resolver", "spec"},
    "sources": {"errors", "names", "spec", "specfile", "bundle"},
    "bundle": {"errors", "names", "spec", "specfile", "yamlsafe"},
}

# Inside the store, a backend knows only the storage primitives: the policy (revisions, history,
# restore, purge, caps) lives once above the backends, in core, and no backend imports it.
BACKEND_MODULES = {
    "store.backend": set(),
    "store.memory": {"store.backend"},
    "store.files": {"store.backend", "store.safeio"},
    "store.safeio": set(),
}


def regman_imports(path: Path, depth: int = 1) -> set[str]:
    """The regman modules ``path`` imports, named to ``depth`` parts after ``regman.``."""
    found = set()
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
    for name in names:
        parts = name.split(".")
        if parts[0] == "regman" and len(parts) > 1:
            found.add(".".join(parts[1 : 1 + depth]))
    return found


def library_modules() -> list[Path]:
    return [
        p
        for p in PACKAGE.rglob("*.py")
        if p.stem not in ("__init__", "__main__") and "cli" not in p.relative_to(PACKAGE).parts
    ]


@pytest.mark.parametrize(
    "module", sorted(str(p.relative_to(PACKAGE).with_suffix("")) for p in library_modules())
)
def test_layers_point_one_way(module: str) -> None:
    layer = module.split("/")[0]
    allowed = LAYERS.get(layer)
    assert allowed is not None, f"regman/{module}.py has no place in LAYERS: add it"
    imported = regman_imports(PACKAGE / f"{module}.py")
    assert imported <= allowed, f"{module} imports {sorted(imported - allowed)}"


@pytest.mark.parametrize("module", sorted(BACKEND_MODULES))
def test_backends_know_only_the_primitives(module: str) -> None:
    path = PACKAGE / (module.replace(".", "/") + ".py")
    imported = {m for m in regman_imports(path, depth=2) if m.startswith("store")}
    assert imported <= BACKEND_MODULES[module], f"{module} imports {sorted(imported)}"


def test_nothing_imports_cli() -> None:
    for path in library_modules():
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
