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
