"""Compatibility rules (NONE/BACKWARD/FORWARD/FULL) judged by wiring, and read-only contexts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import regman
from regman import DependencySpec, OutputSpec, RegistryManager, StepSpecification
from regman.cli import app
from regman.errors import CompatibilityError, ReadOnlyContextError
from tests.conftest import snapshot


def loader(
    *, output: str = "raw_data", aliases: tuple[str, ...] = (), path: str = ""
) -> StepSpecification:
    return StepSpecification(
        step_type="DataLoading",
        node_type="source",
        outputs=[
            OutputSpec(
                logical_name=output,
                output_type="processing_output",
                property_path=path
                or f"properties.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri",
                aliases=list(aliases),
            )
        ],
    )


def trainer(*extra: DependencySpec) -> StepSpecification:
    return StepSpecification(
        step_type="XGBoostTraining",
        node_type="internal",
        dependencies=[
            DependencySpec(
                logical_name="raw_data",
                dependency_type="processing_output",
                compatible_sources=["DataLoading"],
                semantic_keywords=["raw", "data"],
            ),
            *extra,
        ],
        outputs=[
            OutputSpec(
                logical_name="model",
                output_type="model_artifacts",
                property_path="properties.ModelArtifacts.S3ModelArtifacts",
            )
        ],
    )


SIGNING = DependencySpec(
    logical_name="signing_key", dependency_type="custom_property", semantic_keywords=["signing"]
)


@pytest.fixture
def pipeline(manager: RegistryManager) -> regman.SpecificationRegistry:
    registry = manager.get_registry("prod")
    assert registry is not None
    with registry.batch():
        registry.register_specification("load", loader())
        registry.register_specification("train", trainer())
    wiring = regman.DependencyResolver(registry).resolve_dependencies()
    assert wiring["train"]["raw_data"].step_name == "load"  # the wiring the tests rely on
    return registry


@pytest.mark.parametrize(
    ("mode", "refused"),
    [("NONE", False), ("BACKWARD", True), ("FORWARD", False), ("FULL", True)],
)
def test_removing_a_consumed_output(
    manager: RegistryManager, pipeline: regman.SpecificationRegistry, mode: str, refused: bool
) -> None:
    manager.set_context_settings("prod", compatibility=mode)
    before = pipeline.revision
    change = loader(output="other_data")
    if refused:
        with pytest.raises(CompatibilityError) as caught:
            pipeline.register_specification("load", change)
        assert any("load.raw_data" in f for f in caught.value.findings)
        assert pipeline.revision == before
    else:
        assert pipeline.register_specification("load", change) == "updated"


@pytest.mark.parametrize("mode", ["BACKWARD", "FULL"])
def test_renaming_an_output_that_keeps_the_old_name_as_alias_is_compatible(
    manager: RegistryManager, pipeline: regman.SpecificationRegistry, mode: str
) -> None:
    manager.set_context_settings("prod", compatibility=mode)
    renamed = loader(
        output="raw_dataset",
        aliases=("raw_data",),
        path="properties.ProcessingOutputConfig.Outputs['raw_data'].S3Output.S3Uri",
    )
    assert pipeline.register_specification("load", renamed) == "updated"


@pytest.mark.parametrize("mode", ["BACKWARD", "FULL"])
def test_changing_a_consumed_property_path_breaks_backward(
    manager: RegistryManager, pipeline: regman.SpecificationRegistry, mode: str
) -> None:
    manager.set_context_settings("prod", compatibility=mode)
    with pytest.raises(CompatibilityError, match="property_path"):
        pipeline.register_specification("load", loader(path="properties.Elsewhere.S3Uri"))


@pytest.mark.parametrize(
    ("mode", "refused"),
    [("NONE", False), ("BACKWARD", False), ("FORWARD", True), ("FULL", True)],
)
def test_a_required_dependency_nobody_provides(
    manager: RegistryManager, pipeline: regman.SpecificationRegistry, mode: str, refused: bool
) -> None:
    manager.set_context_settings("prod", compatibility=mode)
    change = trainer(SIGNING)
    if refused:
        with pytest.raises(CompatibilityError, match=r"train\.signing_key"):
            pipeline.register_specification("train", change)
    else:
        pipeline.register_specification("train", change)
    optional = trainer(SIGNING.model_copy(update={"required": False}))
    pipeline.register_specification("train", optional)  # never refused: nothing needs it


def test_removing_a_provider_breaks_backward_and_forward(
    manager: RegistryManager, pipeline: regman.SpecificationRegistry
) -> None:
    manager.set_context_settings("prod", compatibility="FULL")
    with pytest.raises(CompatibilityError) as caught:
        pipeline.remove_specification("load")
    text = " | ".join(caught.value.findings)
    assert "edge lost: train.raw_data <- load.raw_data" in text
    assert "required dependency without a provider: train.raw_data" in text
    with pytest.raises(CompatibilityError):
        manager.clear_context("prod")
    assert pipeline.list_step_names() == ["load", "train"]


def test_force_overrides_and_is_recorded(
    manager: RegistryManager, pipeline: regman.SpecificationRegistry
) -> None:
    manager.set_context_settings("prod", compatibility="BACKWARD")
    with manager.forcing():
        pipeline.remove_specification("load")
    [record] = pipeline.history(limit=1)
    assert record.command == "remove"
    assert record.summary()["forced"] is True
    assert any("load.raw_data" in o for o in record.overridden)
    history = json.loads(
        CliRunner()
        .invoke(app, ["--store", str(manager.store.location), "history", "prod", "--json"])
        .stdout
    )
    assert history[0]["forced"] is True


def test_settings_are_revisions_and_shown(
    manager: RegistryManager, pipeline: regman.SpecificationRegistry, store_path: Path
) -> None:
    run = CliRunner()
    base = ["--store", str(store_path)]
    result = run.invoke(app, [*base, "contexts", "set", "prod", "--compatibility", "full"])
    assert result.exit_code == 0, result.stderr
    assert manager.context_settings("prod") == {"compatibility": "FULL", "mode": "READWRITE"}
    assert pipeline.history(limit=1)[0].command == "set"
    shown = json.loads(run.invoke(app, [*base, "contexts", "show", "prod", "--json"]).stdout)
    assert (shown["compatibility"], shown["mode"]) == ("FULL", "READWRITE")
    again = run.invoke(app, [*base, "contexts", "set", "prod", "--compatibility", "FULL"])
    assert "already" in again.stderr
    bad = run.invoke(app, [*base, "contexts", "set", "prod", "--compatibility", "STRICT"])
    assert bad.exit_code == 2 and "NONE, BACKWARD, FORWARD, FULL" in bad.stderr


def test_cli_refuses_an_incompatible_apply_with_exit_1_and_the_list(
    manager: RegistryManager,
    pipeline: regman.SpecificationRegistry,
    store_path: Path,
    tmp_path: Path,
) -> None:
    manager.set_context_settings("prod", compatibility="BACKWARD")
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "train.step.yaml").write_text(trainer().to_yaml())
    before = snapshot(store_path)
    base = ["--store", str(store_path)]
    result = CliRunner().invoke(app, [*base, "apply", "prod", str(folder), "--prune", "--yes"])
    assert result.exit_code == 1
    assert "breaks BACKWARD compatibility" in result.stderr
    assert "load.raw_data" in result.stderr
    assert snapshot(store_path) == before
    forced = CliRunner().invoke(
        app, [*base, "apply", "prod", str(folder), "--prune", "--yes", "--force"]
    )
    assert forced.exit_code == 0, forced.stderr
    assert pipeline.list_step_names() == ["train"]


def test_readonly_refuses_every_write_path(
    manager: RegistryManager,
    pipeline: regman.SpecificationRegistry,
    store_path: Path,
    tmp_path: Path,
) -> None:
    manager.set_context_settings("prod", mode="READONLY")
    before = snapshot(store_path)
    writes: list[Callable[[], object]] = [
        lambda: pipeline.register_specification("new", loader()),
        lambda: pipeline.remove_specification("load"),
        lambda: pipeline.rollback(1),
        lambda: manager.clear_context("prod"),
        lambda: manager.clear_context("prod", purge=True),
        lambda: manager.register_specs("prod", {"x": loader()}),
        lambda: manager.apply("prod", {"x": loader()}),
    ]
    for write in writes:
        with pytest.raises(ReadOnlyContextError, match="READWRITE"):
            write()
    spec_file = tmp_path / "x.step.yaml"
    spec_file.write_text(loader().to_yaml())
    base = ["--store", str(store_path)]
    for args in (
        ["register", "prod", "x", str(spec_file)],
        ["import", "prod", str(spec_file)],
        ["remove", "prod", "load"],
        ["clear", "prod", "--yes"],
        ["rollback", "prod", "--to", "1", "--yes"],
        ["apply", "prod", str(spec_file), "--yes"],
    ):
        result = CliRunner().invoke(app, [*base, *args])
        assert result.exit_code == 1, (args, result.stderr)
        assert "read-only" in result.stderr and "--mode READWRITE" in result.stderr
    assert snapshot(store_path) == before
    manager.set_context_settings("prod", mode="READWRITE")
    assert pipeline.register_specification("new", loader()) == "created"


@pytest.mark.parametrize(
    "args",
    [
        ["remove", "prod", "load"],
        ["clear", "prod", "--yes"],
        ["rollback", "prod", "--to", "1", "--yes"],
    ],
)
def test_every_cli_write_is_checked_and_force_overrides(
    manager: RegistryManager,
    pipeline: regman.SpecificationRegistry,
    store_path: Path,
    args: list[str],
) -> None:
    manager.set_context_settings("prod", compatibility="BACKWARD")
    base = ["--store", str(store_path)]
    before = snapshot(store_path)
    refused = CliRunner().invoke(app, [*base, *args])
    assert refused.exit_code == 1, refused.stderr
    assert "breaks BACKWARD compatibility" in refused.stderr and "--force" in refused.stderr
    assert snapshot(store_path) == before
    forced = CliRunner().invoke(app, [*base, *args, "--force"])
    assert forced.exit_code == 0, forced.stderr
    [record] = pipeline.history(limit=1)
    assert record.summary()["forced"] is True


def test_cli_register_and_import_are_checked(
    manager: RegistryManager,
    pipeline: regman.SpecificationRegistry,
    store_path: Path,
    tmp_path: Path,
) -> None:
    manager.set_context_settings("prod", compatibility="FORWARD")
    spec_file = tmp_path / "train.step.yaml"
    spec_file.write_text(trainer(SIGNING).to_yaml())
    base = ["--store", str(store_path)]
    for args in (["register", "prod", "train", str(spec_file)], ["import", "prod", str(spec_file)]):
        refused = CliRunner().invoke(app, [*base, *args])
        assert refused.exit_code == 1 and "train.signing_key" in refused.stderr, refused.stderr
    assert (
        CliRunner().invoke(app, [*base, "import", "prod", str(spec_file), "--force"]).exit_code == 0
    )
    assert pipeline.history(limit=1)[0].overridden == [
        "required dependency without a provider: train.signing_key"
    ]


def test_under_none_the_cli_warns_about_what_a_write_breaks(
    pipeline: regman.SpecificationRegistry, store_path: Path
) -> None:
    base = ["--store", str(store_path)]
    result = CliRunner().invoke(app, [*base, "remove", "prod", "load"])
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert "warning: context 'prod': edge lost: train.raw_data <- load.raw_data" in warnings
    assert any("required dependency without a provider: train.raw_data" in w for w in warnings)
    assert pipeline.list_step_names() == ["train"]
    # a write that leaves the wiring as it was says nothing
    quiet = CliRunner().invoke(app, [*base, "restore", "prod", "load"])
    assert quiet.exit_code == 0 and "warning:" not in quiet.stderr


def test_info_and_stats_show_the_rules(
    manager: RegistryManager, pipeline: regman.SpecificationRegistry, store_path: Path
) -> None:
    manager.set_context_settings("prod", compatibility="BACKWARD", mode="READONLY")
    manager.get_registry("dev")
    base = ["--store", str(store_path)]
    info = json.loads(CliRunner().invoke(app, [*base, "info", "--json"]).stdout)
    assert info["compatibility_rules"] == {"prod": "BACKWARD"}
    assert info["read_only_contexts"] == ["prod"]
    table = CliRunner().invoke(app, [*base, "info"]).stdout
    assert "prod: BACKWARD" in table
    stats = manager.get_context_stats()
    assert (stats["prod"]["compatibility"], stats["prod"]["mode"]) == ("BACKWARD", "READONLY")
    assert (stats["dev"]["compatibility"], stats["dev"]["mode"]) == ("NONE", "READWRITE")
