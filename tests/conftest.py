"""Every test runs against a temporary store: the real data folder is never touched."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import regman

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "regman-home"
    monkeypatch.setenv("REGMAN_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("REGMAN_DEBUG", raising=False)
    monkeypatch.delenv("REGMAN_LOCK_TIMEOUT", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    regman.configure(None)
    yield home
    regman.configure(None)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def manager(store_path: Path) -> regman.RegistryManager:
    return regman.RegistryManager(store_path)


def make_spec(
    step_type: str = "XGBoostTraining",
    *,
    deps: dict[str, str] | None = None,
    outs: dict[str, str] | None = None,
    node_type: str | None = None,
) -> regman.StepSpecification:
    """A small valid spec: ``deps``/``outs`` map logical name -> type."""
    deps = {} if deps is None else deps
    outs = {"model_output": "model_artifacts"} if outs is None else outs
    if node_type is None:
        node_type = {
            (False, True): "source",
            (True, True): "internal",
            (True, False): "sink",
            (False, False): "singular",
        }[(bool(deps), bool(outs))]
    return regman.StepSpecification(
        step_type=step_type,
        node_type=node_type,
        dependencies=[
            regman.DependencySpec(logical_name=n, dependency_type=t) for n, t in deps.items()
        ],
        outputs=[
            regman.OutputSpec(logical_name=n, output_type=t, property_path=f"properties.{n}.S3Uri")
            for n, t in outs.items()
        ],
    )


def snapshot(root: Path, *, include_locks: bool = False) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for folders): to prove nothing changed.

    Lock files are left out unless asked for: taking a lock is not a change of state.
    """
    tree: dict[str, bytes | None] = {}
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        if not include_locks and rel.split(os.sep)[0] == "locks":
            continue
        for d in dirs:
            tree[os.path.join(rel, d)] = None
        for f in files:
            tree[os.path.join(rel, f)] = Path(folder, f).read_bytes()
    return tree


# The S3 test server and backends (tests/s3server.py): session-scoped, on loopback.
from tests.s3server import s3_backend, s3_env, s3_server  # noqa: E402, F401
