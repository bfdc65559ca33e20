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
        step = step_name_for(path)
        try:
            validate_name(step, "step")
            clash = next((other for other in specs if other.casefold() == step.casefold()), None)
            if clash is not None:
                raise SpecError(f"two files name step '{clash}' (ignoring case)", source=path)
            specs[step] = load_spec_file(path)
        except SpecError as e:
            problems.append(e)
        except ValueError as e:  # an invalid step name
            problems.append(SpecError(str(e), source=path))
    return specs, problems
