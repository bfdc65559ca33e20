"""Bundles: one file holding every spec of a context; round trips are lossless."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

import regman
from regman.bundle import dump_bundle, load_bundle, looks_like_bundle
from regman.cli import app
from regman.errors import SpecError
from tests.conftest import EXAMPLES, make_spec

TRAINING = EXAMPLES / "training_pipeline"


def cli(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    return result


def test_export_import_round_trip_keeps_every_step_and_extra_section(tmp_path: Path) -> None:
    cli("import", "training", str(TRAINING))
    bundle = tmp_path / "training.bundle.yaml"
    cli("export", "training", "--output", str(bundle))
    assert looks_like_bundle(bundle.read_bytes()[:4096])
    cli("import", "copy", str(bundle))
    manager = regman.RegistryManager()
    original = manager.get_registry("training").list_specifications()  # type: ignore[union-attr]
    copied = manager.get_registry("copy").list_specifications()  # type: ignore[union-attr]
    assert copied == original
    assert copied["training"].metadata["compute"]["instance_type"] == "ml.m5.4xlarge"
    # the same again from stdout, and plan reads bundles: nothing would change
    text = cli("export", "training@1", "--output", "-").stdout
    assert load_bundle(text, "<stdout>") == original
    plan = json.loads(cli("plan", "copy", str(bundle), "--json").stdout)
    assert plan["changed"] is False and plan["counts"]["unchanged"] == 9
    # an existing file is refused without --force
    assert "exists" in cli("export", "training", "--output", str(bundle), code=1).stderr
    cli("export", "training", "--output", str(bundle), "--force")
    assert "one of them" in cli("export", "training", code=2).stderr


def test_problems_are_reported_with_the_line_in_the_whole_file(tmp_path: Path) -> None:
    specs = {"a": make_spec("A"), "b": make_spec("B")}
    text = dump_bundle("ctx", 3, specs)
    lines = text.splitlines()
    second = max(i for i, line in enumerate(lines) if line.startswith("regman_step: b"))
    broken_at = next(i for i in range(second, len(lines)) if lines[i].startswith("node_type:"))
    lines[broken_at] = "node_type: nonsense"
    path = tmp_path / "bad.bundle.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpecError) as caught:
        load_bundle(path.read_bytes(), str(path))
    assert caught.value.line == broken_at + 1
    result = cli("import", "ctx", str(path), code=2)
    assert f"bad.bundle.yaml:{broken_at + 1}:" in result.stderr
    assert regman.RegistryManager().list_contexts() == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("---\nregman_bundle: 1\n---\nstep_type: X\nnode_type: singular\n", "lacks its step name"),
        ("---\nregman_bundle: 2\n", "not a regman bundle"),
        (
            "---\nregman_bundle: 1\n---\nregman_step: ../x\nstep_type: X\nnode_type: singular\n",
            "invalid step name",
        ),
        (
            "---\nregman_bundle: 1\n---\nregman_step: a\nstep_type: X\nnode_type: singular\n"
            "---\nregman_step: a\nstep_type: X\nnode_type: singular\n",
            "appears twice",
        ),
    ],
)
def test_malformed_bundles_are_refused(text: str, problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        load_bundle(text, "<test>")


NAMES = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9_-]{0,20}[A-Za-z0-9])?", fullmatch=True).filter(
    regman.names.is_valid_name
)
EXTRA = st.dictionaries(
    st.sampled_from(["compute", "owner", "notes", "registry"]),
    st.one_of(
        st.text(max_size=30),
        st.integers(-(10**6), 10**6),
        st.lists(st.text(max_size=10), max_size=3),
        st.dictionaries(st.sampled_from(["a", "b"]), st.text(max_size=10), max_size=2),
    ),
    max_size=3,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.dictionaries(NAMES, st.tuples(NAMES, EXTRA), min_size=0, max_size=6).filter(
        lambda d: len({k.casefold() for k in d}) == len(d)
    ),
    revision=st.integers(0, 10**6),
)
def test_bundle_round_trip_is_lossless(
    steps: dict[str, tuple[str, dict[str, object]]], revision: int
) -> None:
    specs = {}
    for step, (step_type, extra) in steps.items():
        spec = make_spec(step_type)
        specs[step] = regman.StepSpecification.from_yaml(
            regman.yamlsafe.dump_yaml({**spec.to_document(), **extra})
        )
    text = dump_bundle("ctx", revision, specs)
    assert load_bundle(text, "<bundle>") == specs
    assert load_bundle(text.encode(), "<bundle>") == specs
