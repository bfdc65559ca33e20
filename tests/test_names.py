"""Hostile context and step names: rejected everywhere, and nothing reaches the disk.

Names become folder and file names, so each hostile name must be refused by the
rule itself (regman.names.validate_name), by the manager (get_registry) and by a
registry (register_specification), always with InvalidNameError, and the store
folder must be byte-for-byte what it was before the call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from regman import RegistryManager
from regman.errors import InvalidNameError, RegmanError
from regman.names import MAX_NAME_LENGTH, validate_name
from tests.conftest import make_spec, snapshot

HOSTILE: list[Any] = [
    # walking out of the store
    "..",
    ".",
    "../x",
    "x/..",
    "a..b",
    "/abs",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "..\\..\\windows",
    "C:",
    "c:\\x",
    "\\\\server\\share",
    "file://x",
    "~user",
    # NUL and control characters
    "\x00",
    "a\x00b",
    "a\nb",
    "a\rb",
    "a\tb",
    "\x7f",
    "\x1b[31mred",
    "a\x08b",
    # length
    "",
    "a" * (MAX_NAME_LENGTH + 1),
    "a" * 1000,
    # Unicode lookalikes and invisibles
    "tr\u0430ining",  # Cyrillic a
    "\uff54\uff52\uff41\uff49\uff4e",  # fullwidth "train"
    "pr\u043eduction",  # Cyrillic o
    "a\u200bb",  # zero-width space
    "a\u00a0b",  # no-break space
    "e\u0301",  # combining accent
    "\u202etxt.exe",  # right-to-left override
    "\ufb01le",  # ligature fi
    "\u0130stanbul",  # dotted capital I
    "na\u00efve",
    "rocket\U0001f680",
    # names Windows reserves, with and without extension, any case
    "CON",
    "con",
    "PRN",
    "AUX",
    "NUL",
    "nul.txt",
    "NUL.tar.gz",
    "COM1",
    "com9",
    "LPT1",
    "lpt3.log",
    "CONIN$",
    # trailing dot or space, leading '-' or '.', other edge characters
    "name.",
    "name ",
    " name",
    "-name",
    "--help",
    ".hidden",
    "_private",
    "-",
    "_",
    "a-",
    "a_",
    # characters shells, filesystems or our own formats treat specially
    "a b",
    "a:b",
    "a*b",
    "a?b",
    "a|b",
    "a<b",
    "a>b",
    'a"b',
    "a'b",
    "a#b",
    "a@b",
    "a;rm -rf",
    "$HOME",
    "%APPDATA%",
    "lib[dev]",
    "a,b",
    "a=b",
    "a+b",
    # not strings at all
    None,
    123,
    b"bytes",
]

VALID = [
    "default",
    "training_pipeline",
    "production",
    "customer_a",
    "a",
    "A",
    "0",
    "v1.2.3",
    "x-y_z",
    "a" * MAX_NAME_LENGTH,
    "Pipeline.V2",
    "con1",
    "console",
    "nul1",
    "COM10",
    "lpt",
    "a.b.c",
    "2024-01-01",
    "XGBoostTraining",
]


def test_there_are_enough_hostile_names() -> None:
    assert len(HOSTILE) >= 55


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_validate_name_rejects(name: Any) -> None:
    for kind in ("context", "step"):
        with pytest.raises(InvalidNameError):
            validate_name(name, kind)


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_manager_rejects_hostile_context_and_creates_nothing(name: Any, tmp_path: Path) -> None:
    before = snapshot(tmp_path, include_locks=True)
    manager = RegistryManager(tmp_path / "store")
    with pytest.raises(InvalidNameError):
        manager.get_registry(name)
    with pytest.raises(InvalidNameError):
        manager.get_registry(name, create_if_missing=False)
    with pytest.raises(InvalidNameError):
        manager.create_context(name)
    with pytest.raises(InvalidNameError):
        manager.clear_context(name)
    assert snapshot(tmp_path, include_locks=True) == before
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_registry_rejects_hostile_step_and_writes_nothing(name: Any, tmp_path: Path) -> None:
    manager = RegistryManager(tmp_path / "store")
    registry = manager.get_registry("ctx")
    assert registry is not None
    registry.register_specification("existing", make_spec())
    before = snapshot(tmp_path, include_locks=True)
    with pytest.raises(InvalidNameError):
        registry.register_specification(name, make_spec())
    with pytest.raises(InvalidNameError):
        registry.remove_specification(name)
    assert snapshot(tmp_path, include_locks=True) == before
    assert registry.list_step_names() == ["existing"]


def test_a_context_differing_only_in_case_is_rejected(tmp_path: Path) -> None:
    manager = RegistryManager(tmp_path / "store")
    manager.get_registry("Training")
    before = snapshot(tmp_path, include_locks=True)
    for other in ("training", "TRAINING", "tRaInInG"):
        with pytest.raises(InvalidNameError):
            manager.get_registry(other)
        with pytest.raises(InvalidNameError):
            manager.create_context(other)
    assert snapshot(tmp_path, include_locks=True) == before
    # a second manager on the same folder (another process) sees the clash too
    with pytest.raises(InvalidNameError):
        RegistryManager(tmp_path / "store").get_registry("training")
    assert manager.list_contexts() == ["Training"]


def test_a_step_differing_only_in_case_is_rejected(tmp_path: Path) -> None:
    registry = RegistryManager(tmp_path / "store").get_registry("ctx")
    assert registry is not None
    registry.register_specification("Preprocess", make_spec())
    before = snapshot(tmp_path, include_locks=True)
    for other in ("preprocess", "PREPROCESS"):
        with pytest.raises(InvalidNameError):
            registry.register_specification(other, make_spec("Other"))
    assert snapshot(tmp_path, include_locks=True) == before
    assert registry.list_step_names() == ["Preprocess"]


def test_a_case_clash_in_memory_is_rejected_too() -> None:
    manager = RegistryManager(":memory:")
    manager.get_registry("Training")
    with pytest.raises(InvalidNameError):
        manager.get_registry("training")


@pytest.mark.parametrize("name", VALID)
def test_valid_names_are_accepted_everywhere(name: str, tmp_path: Path) -> None:
    assert validate_name(name, "context") == name
    assert validate_name(name, "step") == name
    manager = RegistryManager(tmp_path / "store")
    registry = manager.get_registry(name)
    assert registry is not None
    assert registry.register_specification(name, make_spec()) == "created"
    assert manager.list_contexts() == [name]
    assert registry.list_step_names() == [name]
    assert RegistryManager(tmp_path / "store").get_registry(name, create_if_missing=False)


def test_invalid_name_error_is_a_value_error_and_a_regman_error() -> None:
    with pytest.raises(ValueError):
        validate_name("../x")
    with pytest.raises(RegmanError):
        validate_name("../x")
