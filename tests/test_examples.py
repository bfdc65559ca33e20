"""Every file in examples/ validates, and the README's main job runs on them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import regman
from tests.conftest import EXAMPLES

README = EXAMPLES.parent / "README.md"
SPEC_FILES = sorted(EXAMPLES.rglob("*.step.yaml"))


def test_there_are_examples() -> None:
    assert len(SPEC_FILES) >= 15


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_validates_and_round_trips(path: Path) -> None:
    spec = regman.load_spec_file(path)
    again = regman.StepSpecification.from_yaml(spec.to_yaml(), str(path))
    assert again == spec


def test_dev_and_production_differ() -> None:
    dev = regman.load_spec_file(EXAMPLES / "environments/dev/training.step.yaml")
    prod = regman.load_spec_file(EXAMPLES / "environments/production/training.step.yaml")
    assert dev.dependencies["hyperparameters_s3_uri"].required is False
    assert prod.dependencies["hyperparameters_s3_uri"].required is True
    assert dev.metadata["compute"] != prod.metadata["compute"]


def test_readme_quickstart_commands(tmp_path: Path) -> None:
    """The README's two commands: the first's main job (the examples script) and the tests."""
    text = README.read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    install, tests = blocks[0].strip(), blocks[1].strip()
    assert "pip install -e '.[test]'" in install
    assert install.endswith('REGMAN_HOME="$(mktemp -d)" examples/register_examples.sh')
    assert tests == "python -m pytest -q"
    ci = (EXAMPLES.parent / ".ci" / "run").read_text()
    assert tests in ci.splitlines()
    env = {
        **os.environ,
        "REGMAN_HOME": str(tmp_path / "home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    result = subprocess.run(
        ["bash", str(EXAMPLES / "register_examples.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "training_pipeline" in result.stdout
    stats = regman.RegistryManager(tmp_path / "home").get_context_stats()
    assert sorted(stats) == ["dev", "inference_pipeline", "production", "training_pipeline"]
    assert stats["training_pipeline"]["step_count"] == 9


def test_example_training_pipeline_wires_as_the_readme_says() -> None:
    manager = regman.RegistryManager(":memory:")
    registry = manager.get_registry("training_pipeline")
    assert registry is not None
    for path in sorted((EXAMPLES / "training_pipeline").glob("*.step.yaml")):
        registry.register_specification(
            path.name.removesuffix(".step.yaml"), regman.load_spec_file(path)
        )
    resolver = regman.DependencyResolver(registry)
    wiring = resolver.resolve_dependencies(registry.list_step_names())
    edges = {
        (consumer, dep): (ref.step_name, ref.output_name)
        for consumer, deps in wiring.items()
        for dep, ref in deps.items()
    }
    assert edges[("training", "input_path")] == ("preprocessing_training", "processed_data")
    assert edges[("model_evaluation", "processed_data")] == (
        "preprocessing_calibration",
        "processed_data",
    )
    assert edges[("registration", "PackagedModel")] == ("packaging", "packaged_model")
    assert len(edges) == 11
    assert ("training", "hyperparameters_s3_uri") not in edges
    order = resolver.execution_order(registry.list_step_names())
    assert order.index("training") < order.index("model_evaluation") < order.index("packaging")
