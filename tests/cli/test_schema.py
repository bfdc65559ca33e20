"""``regman schema``: the shipped JSON Schema is the generated one, and agrees with validate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from regman.cli.schema import generate_schema
from tests.cli.conftest import Run
from tests.conftest import EXAMPLES
from tests.test_hostile_files import MALFORMED, MANIFEST, VALID

jsonschema = pytest.importorskip("jsonschema")

# What a JSON Schema cannot see, that 'regman validate' rejects: the YAML itself (duplicate
# keys, alias bombs, nesting and size caps, encodings), duplicate logical names in lists, the
# node type's rules, property path rules, a header that differs at top level and under
# 'spec', non-text keys (YAML keys 1, true, null become text in JSON), and typos of
# top-level sections (any other section is kept verbatim, so a schema must allow it).
KNOWN_PREFIXES: tuple[str, ...] = ("bomb_", "dup_", "list_dup_", "nesting_", "encoding_")
KNOWN_PREFIXES += ("nodetype_", "property_path_")
KNOWN = {
    "shape_header_differs.yaml",
    "shape_top_bool_key.yaml",
    "shape_top_int_key.yaml",
    "shape_top_null_key.yaml",
    "unknown_logical_name_differs.yaml",
    "unknown_top_dependancies.yaml",
    "unknown_top_output.yaml",
}


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = json.loads(Run()("schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_shipped_schema_is_generated_from_the_models(run: Run) -> None:
    assert json.loads(run("schema").stdout) == json.loads(json.dumps(generate_schema()))


@pytest.mark.parametrize(
    "path",
    [*sorted(EXAMPLES.rglob("*.step.yaml")), *sorted(VALID.rglob("*.yaml"))],
    ids=lambda p: p.name,
)
def test_the_schema_accepts_every_valid_file(validator: Any, path: Path, run: Run) -> None:
    run("validate", str(path))
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_bytes()))]
    assert errors == []


def _parsable(name: str) -> bool:
    try:
        yaml.safe_load((MALFORMED / name).read_bytes())
    except (yaml.YAMLError, RecursionError, ValueError):  # not YAML a schema could be applied to
        return False
    return True


SHAPE_CASES = sorted(
    name
    for name in MANIFEST
    if _parsable(name) and not name.startswith(KNOWN_PREFIXES) and name not in KNOWN
)


def test_there_are_shape_cases() -> None:
    assert len(SHAPE_CASES) >= 40


@pytest.mark.parametrize("name", SHAPE_CASES)
def test_the_schema_rejects_what_validate_rejects_for_shape(
    validator: Any, name: str, run: Run
) -> None:
    path = MALFORMED / name
    run("validate", str(path), code=2)
    assert not validator.is_valid(yaml.safe_load(path.read_bytes()))


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_the_known_differences_are_still_differences(validator: Any, name: str) -> None:
    """If the schema learns to see one of these, move it out of KNOWN."""
    assert validator.is_valid(yaml.safe_load((MALFORMED / name).read_bytes()))
