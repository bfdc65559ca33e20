"""SpecificationRegistry: one context, cached, backed by the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from regman import ConflictError, DependencySpec, RegistryManager, SpecificationRegistry
from tests.conftest import make_spec


@pytest.fixture
def registry(manager: RegistryManager) -> SpecificationRegistry:
    registry = manager.get_registry("ctx")
    assert registry is not None
    return registry


def test_register_get_list(registry: SpecificationRegistry) -> None:
    train = make_spec("XGBoostTraining", deps={"input_path": "training_data"})
    load = make_spec("CradleDataLoading", outs={"DATA": "processing_output"})
    assert registry.register_specification("training", train) == "created"
    assert registry.register("loading", load) == "created"  # the alias
    assert registry.register_specification("training", train) == "unchanged"
    assert registry.get_specification("training") == train
    assert registry.get_specification("missing") is None
    assert registry.list_step_names() == ["loading", "training"]
    assert list(registry.list_specifications()) == ["loading", "training"]
    assert registry.get_specifications_by_type("CradleDataLoading") == [load]
    assert "training" in registry and len(registry) == 2
    assert registry.context_name == "ctx"


def test_register_mapping_in_any_layout(registry: SpecificationRegistry) -> None:
    outcome = registry.register_specification(
        "loading",
        {
            "step_type": "CradleDataLoading",
            "node_type": "source",
            "spec": {
                "outputs": {
                    "DATA": {"type": "processing_output", "property_path": "properties.DATA"}
                }
            },
        },
    )
    assert outcome == "created"
    assert registry.get_specification("loading").outputs["DATA"].logical_name == "DATA"  # type: ignore[union-attr]


def test_re_register_leaves_no_stale_type(
    registry: SpecificationRegistry, manager: RegistryManager
) -> None:
    registry.register_specification("s", make_spec("TypeA"))
    registry.register_specification("s", make_spec("TypeB"))
    assert registry.list_step_types() == ["TypeB"]
    assert manager.get_context_stats()["ctx"]["step_type_count"] == 1
    assert registry.get_specifications_by_type("TypeA") == []


def test_no_replace(registry: SpecificationRegistry) -> None:
    registry.register_specification("s", make_spec("TypeA"))
    with pytest.raises(ConflictError):
        registry.register_specification("s", make_spec("TypeB"), replace=False)
    assert registry.get_specification("s").step_type == "TypeA"  # type: ignore[union-attr]


def test_remove(registry: SpecificationRegistry, manager: RegistryManager) -> None:
    registry.register_specification("s", make_spec())
    assert registry.remove_specification("s") is True
    assert registry.remove_specification("s") is False
    assert registry.list_step_names() == []
    assert manager.get_context_stats()["ctx"]["step_count"] == 0


def test_find_compatible_outputs_best_first(registry: SpecificationRegistry) -> None:
    registry.register_specification(
        "prep",
        make_spec(
            "TabularPreprocessing",
            deps={"DATA": "training_data"},
            outs={"processed_data": "processing_output"},
        ),
    )
    registry.register_specification(
        "train",
        make_spec(
            "XGBoostTraining",
            deps={"input_path": "training_data"},
            outs={"model_output": "model_artifacts"},
        ),
    )
    dependency = DependencySpec(
        logical_name="model_input",
        dependency_type="model_artifacts",
        compatible_sources=["XGBoostTraining"],
    )
    found = registry.find_compatible_outputs(dependency)
    assert [(step, name) for step, name, _, _ in found] == [("train", "model_output")]
    assert 0 < found[0][3] <= 1


def test_isolated_from_other_contexts(manager: RegistryManager) -> None:
    a, b = manager.get_registry("a"), manager.get_registry("b")
    assert a is not None and b is not None
    a.register_specification("s", make_spec())
    assert b.get_specification("s") is None and b.list_step_names() == []


def test_reload_only_changed_specs(manager: RegistryManager, store_path: Path) -> None:
    registry = manager.get_registry("ctx")
    assert registry is not None
    registry.register_specification("a", make_spec("A"))
    registry.register_specification("b", make_spec("B"))
    first_a = registry.get_specification("a")
    RegistryManager(store_path).get_registry("ctx").register_specification(  # type: ignore[union-attr]
        "b", make_spec("B2")
    )
    assert registry.get_specification("b").step_type == "B2"  # type: ignore[union-attr]
    assert registry.get_specification("a") is first_a  # not re-parsed


def test_standalone_registry_is_in_memory() -> None:
    registry = SpecificationRegistry("solo")
    registry.register_specification("s", make_spec())
    assert registry.list_step_names() == ["s"]


def test_a_held_registry_follows_clear_restore_and_rollback(
    manager: RegistryManager, store_path: Path
) -> None:
    held = manager.get_registry("ctx")
    assert held is not None
    held.register_specification("a", make_spec("A"))
    other = RegistryManager(store_path)  # another process
    other.clear_context("ctx")
    assert held.get_specification("a") is None and len(held) == 0
    other.restore("ctx")
    assert held.get_specification("a") == make_spec("A")
    other.register_specs("ctx", {"a": make_spec("B")})
    assert held.get_specification("a") == make_spec("B")
    other.rollback("ctx", held.revision - 1)
    assert held.get_specification("a") == make_spec("A")
    assert held.revision == other.revision("ctx")


def test_a_damaged_stored_spec_is_skipped_by_reads_and_named_by_require(
    registry: SpecificationRegistry, store_path: Path
) -> None:
    from regman.errors import DamagedStoreError, StepNotFoundError

    registry.register_specification("good", make_spec("Good"))
    registry.register_specification("bad", make_spec("Bad"))
    entry = registry.store.entry("ctx", "bad")
    (store_path / "contexts" / "ctx" / "specs" / "bad" / f"{entry.spec}.yaml").write_bytes(b"x")
    fresh = RegistryManager(store_path).get_registry("ctx")
    assert fresh is not None
    assert fresh.list_step_names() == ["good"]  # one bad file does not take the context down
    assert set(fresh.damaged) == {"bad"}
    with pytest.raises(DamagedStoreError):
        fresh.require_spec("bad")
    with pytest.raises(DamagedStoreError):
        fresh.require_all_readable()
    with pytest.raises(StepNotFoundError):
        fresh.require_spec("never")
    assert fresh.require_spec("good") == make_spec("Good")


def test_export_writes_files_that_import_back(
    registry: SpecificationRegistry, tmp_path: Path
) -> None:
    from regman.specfile import load_spec_file

    registry.register_specification("a", make_spec("A"))
    registry.register_specification("b", make_spec("B", deps={"x": "training_data"}))
    paths = registry.export(tmp_path / "out")
    assert sorted(Path(p).name for p in paths) == ["a.step.yaml", "b.step.yaml"]
    assert {Path(p).name.split(".")[0]: load_spec_file(p) for p in paths} == (
        registry.list_specifications()
    )
    with pytest.raises(ConflictError):
        registry.export(tmp_path / "out")
    registry.export(tmp_path / "out", overwrite=True)
    # an old revision exports as it was
    past = registry.at(registry.revision - 1)
    assert [Path(p).name for p in past.export(tmp_path / "past")] == ["a.step.yaml"]


def test_stats_of_a_registry(registry: SpecificationRegistry) -> None:
    registry.register_specification("a", make_spec("A", deps={"x": "training_data"}))
    stats = registry.stats()
    assert stats["step_count"] == 1 and stats["dependency_count"] == 1
    assert stats["revision"] == registry.revision
    assert stats["created_at"] <= stats["updated_at"]


def test_repr_names_the_revision(registry: SpecificationRegistry) -> None:
    registry.register_specification("a", make_spec("A"))
    assert "revision=" not in repr(registry)
    assert "revision=1" in repr(registry.at(1))
