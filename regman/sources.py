"""Spec files and folders given on a command line, as a mapping of step name -> spec.

A folder stands for its ``*.step.yaml`` files, searched recursively; each step is named
after its file (``data_loading.step.yaml`` -> ``data_loading``). Every file is read and
every problem collected, so a user sees all of them at once and nothing is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from regman.errors import SpecError
from regman.names import validate_name

if TYPE_CHECKING:
    from regman.spec import StepSpecification

SPEC_SUFFIXES = (".step.yaml", ".step.yml", ".yaml", ".yml")


def step_name_for(path: str) -> str:
    """``preprocessing_training.step.yaml`` -> ``preprocessing_training``."""
    name = Path(path).name
    for suffix in SPEC_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def spec_paths(sources: list[str]) -> list[str]:
    """Files as given; a folder stands for its ``*.step.yaml`` files, searched recursively."""
    paths: list[str] = []
    for source in sources:
        if os.path.isdir(source):
            found = sorted(str(p) for p in Path(source).rglob("*.step.yaml") if p.is_file())
            if not found:
                raise SpecError("the folder holds no *.step.yaml file", source=source)
            paths += found
        else:
            paths.append(source)
    return paths


def load_spec_sources(
    sources: list[str],
) -> tuple[dict[str, StepSpecification], list[SpecError]]:
    """Every spec the sources hold, by step name, and every problem found (all files read)."""
    from regman.specfile import load_spec_file

    specs: dict[str, StepSpecification] = {}
    problems: list[SpecError] = []
    for path in spec_paths(sources):
        if _is_bundle(path):
            try:
                for step, spec in _load_bundle(path).items():
                    _add(specs, step, spec, path)
            except SpecError as e:
                problems.append(e)
            continue
        step = step_name_for(path)
        try:
            validate_name(step, "step")
            _add(specs, step, load_spec_file(path), path)
        except SpecError as e:
            problems.append(e)
        except ValueError as e:  # an invalid step name
            problems.append(SpecError(str(e), source=path))
    return specs, problems


def _add(
    specs: dict[str, StepSpecification], step: str, spec: StepSpecification, path: str
) -> None:
    clash = next((other for other in specs if other.casefold() == step.casefold()), None)
    if clash is not None:
        raise SpecError(f"two sources name step '{clash}' (ignoring case)", source=path)
    specs[step] = spec


def _is_bundle(path: str) -> bool:
    from regman.bundle import looks_like_bundle

    try:
        with open(path, "rb") as f:
            return looks_like_bundle(f.read(4096))
    except OSError:
        return False  # reading it as a spec file reports the problem


def _load_bundle(path: str) -> dict[str, StepSpecification]:
    from regman.bundle import MAX_BUNDLE_BYTES, load_bundle

    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BUNDLE_BYTES + 1)
    except OSError as e:
        raise SpecError(f"cannot read the file: {e.strerror or e}", source=path) from None
    return load_bundle(data, path)
